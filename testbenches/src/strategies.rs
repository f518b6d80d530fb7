//! Proptest strategies for architectures and layers, shared by the property tests and the
//! RTL co-simulation sweep.

use crate::conv_layer;
use proptest::prelude::*;
use systole_core::layer::{Activation, ConvShape, Layer, LayerOp};
use systole_core::{ArchConfig, Dataflow};

/// Array sides from 1 to 64, mostly small so that cases stay fast.
pub fn side() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![4 => 1usize..=9, 2 => 10usize..=20, 1 => 21usize..=64]
}

/// A valid architecture with sides drawn from `side`. With `roomy`, the activation scratchpad holds any window the
/// generated layers need; without, memories start at the validation minimum.
pub fn arch(roomy: bool, side: impl Strategy<Value = usize> + Clone) -> impl Strategy<Value = ArchConfig> {
    (
        side.clone(),
        side,
        0usize..3,
        0usize..4,
        0usize..4,
        0usize..4,
        1usize..=32,
        2usize..64,
        1usize..=3,
        any::<bool>(),
        0usize..4,
        (
            0usize..=systole_core::arch::MAX_REQUANT_STAGES,
            0usize..=systole_core::arch::MAX_PE_STAGES,
            0usize..=systole_core::arch::MAX_ACC_STAGES,
            0usize..=systole_core::arch::MAX_DECODE_STAGES,
            0usize..=systole_core::arch::MAX_DRAM_READ_STAGES,
            0usize..=systole_core::arch::MAX_EDGE_STAGES,
            0usize..systole_core::arch::REQUANT_INTERVALS.len(),
            any::<bool>(),
            0usize..6,
        ),
    )
        .prop_map(
            move |(
                rows,
                cols,
                engines,
                act_x,
                wgt_x,
                acc_x,
                bw,
                lat,
                params,
                transposer,
                fetch,
                (requant_stages, pe_stages, acc_stages, decode_stages, read_stages, edge_stages, interval, broadcast, queue),
            )| {
                let dataflow = [Dataflow::WeightStationary, Dataflow::OutputStationary, Dataflow::Both][engines];
                let kib = |bytes: usize, extra: usize| bytes.div_ceil(1024) << extra;
                // OS needs the transposer.
                let transposer = transposer || dataflow.has_os();
                // A product in logic needs no transposer and leaves out the last stages.
                let requant_interval = if transposer { 1 } else { systole_core::arch::REQUANT_INTERVALS[interval] };
                ArchConfig {
                    name: format!("{rows}x{cols}"),
                    rows,
                    cols,
                    dataflow,
                    act_sram_kib: kib(if roomy { 128 } else { 4 } * rows * rows, act_x),
                    wgt_sram_kib: kib(2 * rows * cols, wgt_x),
                    acc_sram_kib: kib(2 * rows * cols * 4, acc_x),
                    param_entries: cols * params,
                    dram_bytes_per_cycle: bw,
                    dram_latency: lat,
                    clock_mhz: 100.0,
                    transposer,
                    fetch_cycles: systole_core::arch::FETCH_CYCLES[fetch],
                    sparsity: systole_core::Sparsity::Dense,
                    int4_weights: false,
                    int4_activations: false,
                    csc_weights: false,
                    requant_interval,
                    requant_stages: if requant_interval > 1 {
                        requant_stages.min(systole_core::arch::MAX_SERIAL_REQUANT_STAGES)
                    } else {
                        requant_stages
                    },
                    // The OS PEs have no product register.
                    pe_stages: if dataflow.has_ws() { pe_stages } else { 0 },
                    acc_stages,
                    decode_stages,
                    // Read registers need no transposer (a short latency grows the load wait).
                    dram_read_stages: if transposer { 0 } else { read_stages },
                    // The edge registers are the WS array's.
                    edge_stages: if dataflow.has_ws() { edge_stages } else { 0 },
                    // The broadcast weight bus is the WS array's (these tiles are dense).
                    weight_broadcast: broadcast && dataflow.has_ws(),
                    // A stagger of the WS engine's own scratchpad (with the broadcast bus).
                    staggered_act_reads: broadcast && dataflow == Dataflow::WeightStationary,
                    // Half of the instances stream their programs through a short queue.
                    instr_queue: [None, None, None, Some(2), Some(4), Some(16)][queue],
                    vector_lanes: 0,
                    // One of the unqueued instances has one DRAM port (as on SPRAM).
                    dram_single_port: queue == 1,
                }
            },
        )
}

pub fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::None), Just(Activation::Relu), Just(Activation::Relu6)]
}

/// A legal convolution shape; `depthwise` forces `groups = C = K`.
pub fn conv_shape(depthwise: bool) -> impl Strategy<Value = ConvShape> {
    (1usize..=2, 1usize..=10, 1usize..=10, 1usize..=12, 1usize..=12, 1usize..=5, 1usize..=5, 1usize..=3, 1usize..=3, 1usize..=2)
        .prop_flat_map(move |(n, h, w, c, k, r, s, sy, sx, dil)| {
            let groups = if depthwise { Just(c).boxed() } else { prop::sample::select(common_divisors(c, k)).boxed() };
            (Just((n, h, w, c, k, r, s, sy, sx, dil)), groups, prop::array::uniform4(0usize..3))
        })
        .prop_filter_map("window larger than the padded input", move |((n, h, w, c, k, r, s, sy, sx, dil), groups, pad)| {
            let k = if depthwise { c } else { k };
            let (r, s) = (r.min(h + 2), s.min(w + 2));
            let dilation = [dil, if s > 1 { dil } else { 1 }];
            let pad = [0, 1, 2, 3].map(|i| {
                let span = if i % 2 == 0 { (r - 1) * dilation[0] + 1 } else { (s - 1) * dilation[1] + 1 };
                pad[i].min(span - 1)
            });
            let shape = ConvShape { n, h, w, c, k, r, s, stride: [sy, sx], dilation, pad, groups };
            shape.validate().is_ok().then_some(shape)
        })
}

pub fn common_divisors(a: usize, b: usize) -> Vec<usize> {
    (1..=a.min(b)).filter(|g| a.is_multiple_of(*g) && b.is_multiple_of(*g)).collect()
}

pub fn gemm_shape() -> impl Strategy<Value = ConvShape> {
    (1usize..=40, 1usize..=80, 1usize..=40).prop_map(|(m, k, n)| ConvShape::gemm(1, m, k, n))
}

pub fn layer(op: LayerOp, shape: impl Strategy<Value = ConvShape>) -> impl Strategy<Value = Layer> {
    (shape, any::<i8>(), any::<i8>(), activation(), any::<bool>())
        .prop_map(move |(shape, x_zp, y_zp, act, per_channel)| conv_layer("prop", op, shape, x_zp, y_zp, act, per_channel))
}
