//! Property tests: random layers x random architectures x both dataflows, compiled and
//! simulated, bit-exact against the golden model. Shrunk failures are pinned below as
//! named tests.

use proptest::prelude::*;
use systole_compiler::CompileError;
use systole_core::layer::{Activation, ConvShape, Layer, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};
use systole_testbenches::{conv_layer, golden_vs_sim};

/// One generated problem: an architecture, a layer and the seed of its tensors.
#[derive(Debug, Clone)]
struct Case {
    arch: ArchConfig,
    layer: Layer,
    seed: u64,
}

impl Case {
    /// Like [`Case::check`], but a capacity error naming a memory field also passes.
    fn check_or_capacity(&self) -> Result<(), TestCaseError> {
        let data = LayerData::random(&self.layer, self.seed);
        match systole_compiler::compile_layer(&self.arch, &self.layer, &data) {
            Err(CompileError::DoesNotFit { field, need, have, .. }) => {
                prop_assert!(field.ends_with("_sram_kib") || field == "param_entries", "field {}", field);
                prop_assert!(need > have);
                Ok(())
            }
            Err(e) => Err(TestCaseError::fail(e.to_string())),
            Ok(_) => self.check(),
        }
    }

    /// Compiles, simulates and compares with golden; also checks the report's invariants.
    fn check(&self) -> Result<(), TestCaseError> {
        let data = LayerData::random(&self.layer, self.seed);
        let out = golden_vs_sim(&self.arch, &self.layer, &data).map_err(TestCaseError::fail)?;
        if let Some(m) = out.mismatch() {
            return Err(TestCaseError::fail(m));
        }
        let r = &out.report;
        prop_assert_eq!(r.macs, self.layer.shape.macs());
        prop_assert_eq!(r.cycles_by_cause.values().sum::<u64>(), r.cycles, "causes must add up to the total");
        prop_assert!(r.utilization <= 1.0, "utilization {} above 1", r.utilization);
        Ok(())
    }
}

/// Array sides from 1 to 64, mostly small so that cases stay fast.
fn side() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..=9, 2 => 10usize..=20, 1 => 21usize..=64]
}

/// A valid architecture. With `roomy`, the activation scratchpad holds any window the
/// generated layers need; without, memories start at the validation minimum.
fn arch(roomy: bool) -> impl Strategy<Value = ArchConfig> {
    (side(), side(), any::<bool>(), 0usize..4, 0usize..4, 0usize..4, 1usize..=32, 2usize..64, 1usize..=3).prop_map(
        move |(rows, cols, os, act_x, wgt_x, acc_x, bw, lat, params)| {
            let kib = |bytes: usize, extra: usize| bytes.div_ceil(1024) << extra;
            ArchConfig {
                name: format!("{rows}x{cols}"),
                rows,
                cols,
                dataflow: if os { Dataflow::OutputStationary } else { Dataflow::WeightStationary },
                act_sram_kib: kib(if roomy { 128 } else { 4 } * rows * rows, act_x),
                wgt_sram_kib: kib(2 * rows * cols, wgt_x),
                acc_sram_kib: kib(2 * rows * cols * 4, acc_x),
                param_entries: cols * params,
                dram_bytes_per_cycle: bw,
                dram_latency: lat,
                clock_mhz: 100.0,
            }
        },
    )
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![Just(Activation::None), Just(Activation::Relu), Just(Activation::Relu6)]
}

/// A legal convolution shape; `depthwise` forces `groups = C = K`.
fn conv_shape(depthwise: bool) -> impl Strategy<Value = ConvShape> {
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

fn common_divisors(a: usize, b: usize) -> Vec<usize> {
    (1..=a.min(b)).filter(|g| a.is_multiple_of(*g) && b.is_multiple_of(*g)).collect()
}

fn gemm_shape() -> impl Strategy<Value = ConvShape> {
    (1usize..=40, 1usize..=80, 1usize..=40).prop_map(|(m, k, n)| ConvShape::gemm(1, m, k, n))
}

fn layer(op: LayerOp, shape: impl Strategy<Value = ConvShape>) -> impl Strategy<Value = Layer> {
    (shape, any::<i8>(), any::<i8>(), activation(), any::<bool>())
        .prop_map(move |(shape, x_zp, y_zp, act, per_channel)| conv_layer("prop", op, shape, x_zp, y_zp, act, per_channel))
}

fn case(roomy: bool, layer: impl Strategy<Value = Layer>) -> impl Strategy<Value = Case> {
    (arch(roomy), layer, any::<u64>()).prop_map(|(arch, layer, seed)| Case { arch, layer, seed })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn conv_matches_golden(c in case(true, layer(LayerOp::Conv, conv_shape(false)))) {
        c.check()?;
    }

    #[test]
    fn depthwise_matches_golden(c in case(true, layer(LayerOp::Depthwise, conv_shape(true)))) {
        c.check()?;
    }

    #[test]
    fn gemm_matches_golden(c in case(true, layer(LayerOp::Gemm, gemm_shape()))) {
        c.check()?;
    }

    #[test]
    fn minimal_memories_fit_or_say_which(
        c in case(false, prop_oneof![layer(LayerOp::Conv, conv_shape(false)), layer(LayerOp::Depthwise, conv_shape(true))])
    ) {
        c.check_or_capacity()?;
    }
}
