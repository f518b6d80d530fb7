//! The co-simulation ladder on whole compiled layers: (1) golden, (2) compiler +
//! simulator, (3) the accelerator in rust-hdl's simulator and (4) its Verilog under Icarus
//! produce the same output bytes, and the RTL's cycle counter and every instruction's
//! completion cycle equal the timing model's. A failure names the first differing element
//! or the first diverging completion.
//!
//! The default suite covers dense, strided, pointwise, grouped and depthwise convolutions
//! and GEMMs with edge tiles on 2x2 to 8x8 arrays of both dataflows, with requantizers of 0
//! to 6 pipeline stages, and the bundled tiny model as one program (its Add, pooling and
//! Concat on the vector unit) under Verilator; the `#[ignore]`d tests run 16x16 and larger
//! layers and MobileNetV2 and ResNet-18 at 224 as one program each (`cargo test --release
//! -p systole-testbenches --test cosim -- --ignored`).

use proptest::prelude::*;
use systole_core::layer::{Activation, ConvShape, Layer, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};
use systole_testbenches::conv_layer;
use systole_testbenches::cosim::{run_rust_hdl, run_verilog, Ladder};
use systole_testbenches::strategies::{arch as any_arch, conv_shape, gemm_shape, layer};
use systole_testbenches::tools::{scratch, Simulator};

const WS: Dataflow = Dataflow::WeightStationary;
const OS: Dataflow = Dataflow::OutputStationary;
const BOTH: Dataflow = Dataflow::Both;

fn arch(rows: usize, cols: usize, dataflow: Dataflow, lanes: usize, latency: usize, kib: usize) -> ArchConfig {
    ArchConfig {
        name: format!("{rows}x{cols}-{dataflow}-b{lanes}-l{latency}"),
        rows,
        cols,
        dataflow,
        act_sram_kib: kib,
        wgt_sram_kib: kib,
        acc_sram_kib: kib,
        param_entries: 32,
        dram_bytes_per_cycle: lanes,
        dram_latency: latency,
        ..ArchConfig::default()
    }
}

/// An `r x r` convolution with "same" padding `r / 2`.
fn conv(h: usize, w: usize, c: usize, k: usize, r: usize, stride: usize, groups: usize) -> ConvShape {
    ConvShape { n: 1, h, w, c, k, r, s: r, stride: [stride; 2], dilation: [1, 1], pad: [r / 2; 4], groups }
}

/// The conformance layers: every mapping the compiler has, with edge tiles.
fn layers() -> Vec<Layer> {
    vec![
        conv_layer("conv3x3", LayerOp::Conv, conv(4, 5, 3, 5, 3, 1, 1), 3, -2, Activation::Relu, true),
        conv_layer("conv3x3s2", LayerOp::Conv, conv(6, 5, 4, 3, 3, 2, 1), -5, 7, Activation::None, false),
        conv_layer("pointwise", LayerOp::Conv, conv(3, 3, 6, 7, 1, 1, 1), 0, 1, Activation::Relu6, true),
        conv_layer("grouped", LayerOp::Conv, conv(4, 4, 4, 6, 3, 1, 2), 2, 0, Activation::Relu, true),
        conv_layer("depthwise3x3", LayerOp::Depthwise, conv(5, 6, 5, 5, 3, 1, 5), -7, 4, Activation::Relu6, true),
        conv_layer("depthwise3x3s2", LayerOp::Depthwise, conv(7, 7, 3, 3, 3, 2, 3), 1, -3, Activation::Relu, true),
        conv_layer("gemm", LayerOp::Gemm, ConvShape::gemm(1, 5, 11, 6), 4, -1, Activation::None, true),
        // More than 256 reduction steps in one OS tile: found an 8-bit step counter.
        conv_layer("gemm_long_k", LayerOp::Gemm, ConvShape::gemm(1, 3, 300, 3), -2, 3, Activation::Relu, true),
    ]
}

fn archs() -> Vec<ArchConfig> {
    vec![
        // Requantizers of every depth: 10 stages lengthen a store's wait of 3 to 12.
        acc_staged(staged(arch(2, 2, WS, 2, 3, 1), 10), 1),
        arch(2, 2, OS, 1, 2, 1),
        // Pipelined WS edge, PEs, accumulator and decode: every column sum one, then two
        // more cycles later, every accumulator write three more, every issue a cycle after its
        // fetch.
        // Its instructions streamed through queues of 4.
        queued(decoded(acc_staged(pe_staged(edged(staged(arch(4, 4, WS, 4, 5, 1), 3)), 2), 3)), 4),
        acc_staged(staged(arch(4, 4, OS, 3, 4, 1), 0), 2),
        // The weight bus broadcast down each column: every capture earlier, no cycle changed.
        broadcast(arch(4, 2, WS, 8, 2, 1)),
        staged(arch(2, 4, OS, 4, 3, 1), 1),
        staggered(broadcast(staged(arch(8, 8, WS, 8, 6, 2), 4))),
        arch(8, 8, OS, 8, 4, 2),
        // Both engines around shared memories: each layer on the engine the compiler picks.
        acc_staged(pe_staged(edged(arch(4, 4, BOTH, 4, 5, 1)), 1), 3),
        // Narrow instruction memories (streamed through queues of 2), and the small-FPGA
        // variant without the transposer (depthwise layers as grouped GEMMs).
        queued(staged(variant(arch(4, 4, OS, 2, 4, 1), 4, true), 7), 2),
        // Read registers on the DRAM address and data, read ahead inside a latency of 4
        // (the last arch has one on the data with a latency of 2, which leaves no room for it
        // and so lengthens each load's wait to 3). Eleven requantizer stages put their read
        // register in front of the lane select (two columns, one unit).
        read_staged(staged(variant(arch(2, 2, WS, 1, 4, 1), 8, false), 11), 2),
        // Requantizers with their product in logic: the iCEBreaker preset's six stages and a
        // value every six cycles (a store's beats six cycles apart, its one unit reading the
        // table by entry, one block RAM across two columns), with its two PE stages and
        // broadcast weight bus; and two units (two DRAM lanes) taking a value every two
        // cycles.
        staggered(broadcast(pe_staged(serial(staged(variant(arch(4, 2, WS, 1, 4, 1), 8, false), 6), 6), 2))),
        serial(read_staged(decoded(pe_staged(edged(staged(variant(arch(2, 4, WS, 2, 2, 1), 2, false), 5)), 2)), 1), 2),
        // One DRAM port (the iCEBreaker's SPRAM): loads and stores serialized, their engines
        // sharing one walker.
        single_port(broadcast(serial(staged(variant(arch(2, 2, WS, 1, 4, 1), 8, false), 6), 6))),
    ]
}

/// `a` with `requant_stages` pipeline registers in its requantizers, named after them.
fn staged(a: ArchConfig, requant_stages: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-rq{requant_stages}", a.name), requant_stages, ..a }
}

/// `a` with requantizers that take `interval` cycles per value, named after it.
fn serial(a: ArchConfig, interval: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-ri{interval}", a.name), requant_interval: interval, ..a }
}

/// `a` with `pe_stages` pipeline stages in each WS PE, named after them.
fn pe_staged(a: ArchConfig, pe_stages: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-pe{pe_stages}", a.name), pe_stages, ..a }
}

/// `a` with a register on its WS array's edge, named after it.
fn edged(a: ArchConfig) -> ArchConfig {
    ArchConfig { name: format!("{}-edge1", a.name), edge_stages: 1, ..a }
}

/// `a` with `acc_stages` pipeline stages in its accumulator, named after them.
fn acc_staged(a: ArchConfig, acc_stages: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-acc{acc_stages}", a.name), acc_stages, ..a }
}

/// `a` with its WS weight bus broadcast down each column, named after it.
fn broadcast(a: ArchConfig) -> ArchConfig {
    ArchConfig { name: format!("{}-bc", a.name), weight_broadcast: true, ..a }
}

/// `a` with its WS activation scratchpad read with a stagger, named after it.
fn staggered(a: ArchConfig) -> ArchConfig {
    ArchConfig { name: format!("{}-st", a.name), staggered_act_reads: true, ..a }
}

/// `a` with `dram_read_stages` registers on its DRAM read path, named after them.
fn read_staged(a: ArchConfig, dram_read_stages: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-rd{dram_read_stages}", a.name), dram_read_stages, ..a }
}

/// `a` with one DRAM port for loads and stores, named after it.
fn single_port(a: ArchConfig) -> ArchConfig {
    ArchConfig { name: format!("{}-1p", a.name), dram_single_port: true, ..a }
}

/// `a` with a decode stage in its controller, named after it.
fn decoded(a: ArchConfig) -> ArchConfig {
    ArchConfig { name: format!("{}-dec1", a.name), decode_stages: 1, ..a }
}

/// `a` with an instruction queue of `q` per unit, named after it.
fn queued(a: ArchConfig, q: usize) -> ArchConfig {
    ArchConfig { name: format!("{}-q{q}", a.name), instr_queue: Some(q), ..a }
}

/// `a` with `fetch_cycles` and `transposer` set, named after them.
fn variant(a: ArchConfig, fetch_cycles: usize, transposer: bool) -> ArchConfig {
    let name = format!("{}-f{fetch_cycles}{}", a.name, if transposer { "" } else { "-nt" });
    ArchConfig { name, fetch_cycles, transposer, ..a }
}

/// Programs longer than the instruction queues: the fetcher streams every unit's
/// instructions beyond the first `Q` from DRAM, stopping when a queue is full and paying
/// the DRAM latency again, in whole-instruction and eight-part fetches, with and without a
/// decode stage; every completion on the timing model's cycle.
#[test]
fn rtl_streams_instructions_through_a_queue() {
    let layers = layers();
    let picked = [&layers[0], &layers[4]].map(|l| l.clone());
    let archs = [queued(arch(4, 4, WS, 4, 5, 1), 2), queued(decoded(variant(arch(4, 4, WS, 2, 3, 1), 8, false)), 4)];
    ladder(&archs, &picked, true, Some(Simulator::Icarus));
}

/// Runs every case through rust-hdl (when `rust_hdl`) and the Verilog simulator `verilog`;
/// panics listing every failure.
fn ladder(archs: &[ArchConfig], layers: &[Layer], rust_hdl: bool, verilog: Option<Simulator>) {
    let mut failures = vec![];
    for arch in archs {
        for (i, layer) in layers.iter().enumerate() {
            let case = format!("{} on {}", layer.name, arch.name);
            let data = LayerData::random(layer, 100 + i as u64);
            let ladder = match Ladder::new(arch, layer, &data) {
                Ok(l) => l,
                Err(e) => {
                    failures.push(format!("{case}: {e}"));
                    continue;
                }
            };
            let script = ladder.script(arch);
            if rust_hdl {
                rust_hdl_case(arch, &ladder, format!("{case} (rust-hdl)"), &mut failures);
            }
            if let Some(sim) = verilog {
                let dir = scratch(&format!("cosim_{sim:?}_{}_{}", arch.name, layer.name));
                match run_verilog(sim, arch, &ladder.program, &ladder.dram, &script, &dir) {
                    Ok((rtl, _)) => {
                        if let Err(e) = ladder.check(&rtl) {
                            failures.push(format!("{case} ({sim:?}): {e}"));
                        }
                    }
                    Err(e) => failures.push(format!("{case} ({sim:?}): {e}")),
                }
            }
            eprintln!("{case}: {} instructions, {} cycles", ladder.program.instrs.len(), ladder.cycles);
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), archs.len() * layers.len(), failures.join("\n"));
}

#[test]
fn rust_hdl_matches_simulator() {
    ladder(&archs(), &layers(), true, None);
}

/// The Verilog of every instance under Icarus on one of three layers in turn (a 3x3
/// convolution, a strided depthwise one, a GEMM of more than 256 reduction steps), so each
/// instance's emission and each layer's mapping run in Verilog: rust-hdl runs all eight
/// layers on every instance on the same logic above, so this rung guards the emission.
/// (`verilog_runs_every_layer` runs them all.)
#[test]
fn verilog_matches_simulator() {
    let layers = layers();
    let picked = [&layers[0], &layers[5], &layers[7]];
    for (i, arch) in archs().iter().enumerate() {
        ladder(std::slice::from_ref(arch), std::slice::from_ref(picked[i % picked.len()]), false, Some(Simulator::Icarus));
    }
}

/// Every layer on every instance under Icarus (about 10 minutes): `cargo test --release -p
/// systole-testbenches --test cosim -- --ignored verilog_runs_every_layer`.
#[test]
#[ignore = "slow: every conformance layer on every instance under Icarus"]
fn verilog_runs_every_layer() {
    ladder(&archs(), &layers(), false, Some(Simulator::Icarus));
}

/// Runs `ladder`'s program in rust-hdl; a difference from the simulator is a failure named
/// `case`.
fn rust_hdl_case(arch: &ArchConfig, ladder: &Ladder, case: String, failures: &mut Vec<String>) {
    let rtl = run_rust_hdl(arch, &ladder.program, &ladder.dram, &ladder.script(arch));
    if let Err(e) = ladder.check(&rtl) {
        failures.push(format!("{case}: {e}"));
    }
}

/// Both loop orders of a dense layer whose weights do not all fit on chip (1 KiB weight
/// scratchpad), in both dataflows: the RTL runs the channels-outer programs (each column
/// tile's weights loaded once and kept across output tiles, activations reloaded) as
/// exactly as the pixels-outer ones.
#[test]
fn rust_hdl_runs_both_loop_orders() {
    use systole_core::mapping::{LoopOrder, Mapping};
    let layer = conv_layer("conv3x3_k12", LayerOp::Conv, conv(5, 4, 10, 12, 3, 1, 1), 1, -2, Activation::Relu, true);
    let data = LayerData::random(&layer, 7);
    let mut failures = vec![];
    for arch in [arch(4, 4, WS, 4, 5, 1), arch(4, 4, OS, 3, 4, 1)] {
        let mappings = systole_mappings::search::feasible_mappings(&arch, &layer).unwrap();
        for order in [LoopOrder::PixelsOuter, LoopOrder::ChannelsOuter] {
            let m = *mappings
                .iter()
                .find(|m| matches!(m, Mapping::Dense { order: o, .. } if *o == order))
                .unwrap_or_else(|| panic!("{}: no {order} mapping", arch.name));
            let ladder = Ladder::with_choice(&arch, &layer, &data, systole_mappings::search::Choice::Fixed(m)).unwrap();
            if order == LoopOrder::ChannelsOuter {
                // Every weight loaded once: 3 column tiles of 90 reduction bytes, in WS as
                // 23 four-byte chunks (3 x 7 full, the three 2-byte tails packed in two).
                let once = if arch.dataflow == WS { 3 * 23 * 4 } else { 3 * 90 };
                assert_eq!(systole_core::isa::access_totals(&arch, &ladder.program.instrs).report(0).sram["wgt.write"], once, "{m}");
            }
            rust_hdl_case(&arch, &ladder, format!("{m} on {}", arch.name), &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A `both` instance runs every conformance layer on either engine (the mapping fixed to
/// each in turn); between programs the memories change hands. (The ladder's `both` arch
/// runs the compiler's own picks.)
#[test]
fn rust_hdl_runs_both_engines() {
    let arch = arch(4, 4, BOTH, 4, 5, 1);
    let mut failures = vec![];
    for (i, layer) in layers().iter().enumerate() {
        let data = LayerData::random(layer, 200 + i as u64);
        let mappings = systole_mappings::search::feasible_mappings(&arch, layer).unwrap();
        for engine in [WS, OS] {
            let Some(&m) = mappings.iter().find(|m| m.dataflow() == engine) else { continue };
            let ladder = Ladder::with_choice(&arch, layer, &data, systole_mappings::search::Choice::Fixed(m)).unwrap();
            rust_hdl_case(&arch, &ladder, format!("{} on {engine}", layer.name), &mut failures);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Rung 4 under Verilator too, on one case per dataflow (each case is a C++ build).
#[test]
fn verilator_matches_simulator() {
    let layers = layers();
    ladder(&[arch(4, 4, WS, 4, 5, 1)], &layers[0..1], false, Some(Simulator::Verilator));
    ladder(&[arch(4, 4, OS, 3, 4, 1)], &layers[4..5], false, Some(Simulator::Verilator));
}

/// The larger sweep: 16x16 arrays and layers of ResNet-18 and MobileNetV2 sizes, in
/// Verilator. About 10 minutes on 2 cores:
/// `cargo test --release -p systole-testbenches --test cosim -- --ignored`.
#[test]
#[ignore = "slow: 16x16 arrays and network-sized layers in Verilator"]
fn verilator_sweep_16x16() {
    let big = vec![
        conv_layer("resnet_conv3x3_64", LayerOp::Conv, conv(14, 14, 64, 64, 3, 1, 1), 0, -3, Activation::Relu, true),
        conv_layer("resnet_conv3x3s2_128", LayerOp::Conv, conv(14, 14, 64, 128, 3, 2, 1), 2, 0, Activation::None, true),
        conv_layer("mbv2_pointwise", LayerOp::Conv, conv(14, 14, 32, 96, 1, 1, 1), -1, 5, Activation::Relu6, true),
        conv_layer("mbv2_depthwise", LayerOp::Depthwise, conv(28, 28, 48, 48, 3, 1, 48), 3, -2, Activation::Relu6, true),
        conv_layer("mbv2_depthwise_s2", LayerOp::Depthwise, conv(28, 28, 32, 32, 3, 2, 32), -4, 1, Activation::Relu6, true),
        conv_layer("classifier", LayerOp::Gemm, ConvShape::gemm(1, 4, 512, 100), 0, 0, Activation::None, true),
    ];
    let archs = [
        ArchConfig { name: "16x16-ws".into(), ..ArchConfig::preset_16x16() },
        ArchConfig { name: "16x16-os".into(), dataflow: OS, ..ArchConfig::preset_16x16() },
    ];
    let archs: Vec<ArchConfig> =
        archs.into_iter().map(|a| ArchConfig { act_sram_kib: 16, wgt_sram_kib: 16, acc_sram_kib: 16, dram_latency: 12, ..a }).collect();
    ladder(&archs, &big, false, Some(Simulator::Verilator));
}

proptest! {
    // Each case is a whole layer in rust-hdl's simulator; PROPTEST_CASES raises the count.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random small layers (dilation, asymmetric padding, batches, grouped and depthwise,
    /// GEMMs) on random arrays of 1 to 5 PEs a side, random memories, bus widths and DRAM
    /// latencies: the RTL in rust-hdl equals the simulator in bytes and cycles.
    #[test]
    fn random_layers_on_random_arrays(
        arch in any_arch(true, 1usize..=5),
        layer in prop_oneof![
            layer(LayerOp::Conv, conv_shape(false)),
            layer(LayerOp::Depthwise, conv_shape(true)),
            layer(LayerOp::Gemm, gemm_shape()),
        ],
        seed in any::<u64>(),
    ) {
        let arch = ArchConfig { dram_latency: arch.dram_latency.min(8), ..arch };
        let data = LayerData::random(&layer, seed);
        let ladder = Ladder::new(&arch, &layer, &data).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let rtl = run_rust_hdl(&arch, &ladder.program, &ladder.dram, &ladder.script(&arch));
        ladder.check(&rtl).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// Full-size network layers on the 16x16 presets (WS and OS, the presets' memories and
/// DRAM timing) in Verilator: ResNet-18's first 3x3 conv (56x56x64 -> 64, 116 M MACs) and
/// MobileNetV2's first depthwise conv (112x112x32). About 4 minutes on 2 cores:
/// `cargo test --release -p systole-testbenches --test cosim full_size -- --ignored`.
#[test]
#[ignore = "slow: full-size network layers on 16x16 arrays in Verilator"]
fn verilator_full_size_layers() {
    let full = vec![
        conv_layer("resnet18_layer1_conv", LayerOp::Conv, conv(56, 56, 64, 64, 3, 1, 1), 0, -3, Activation::Relu, true),
        conv_layer("mobilenetv2_dw1", LayerOp::Depthwise, conv(112, 112, 32, 32, 3, 1, 32), 3, -2, Activation::Relu6, true),
    ];
    let archs = [ArchConfig::preset_16x16(), ArchConfig { name: "16x16-os".into(), dataflow: OS, ..ArchConfig::preset_16x16() }];
    ladder(&archs, &full, false, Some(Simulator::Verilator));
}

/// N:4 sparse layers (docs/ARCHITECTURE.md section 3) on instances that skip them: the RTL
/// reads the banked activations and the compressed tiles and equals the simulator in bytes
/// and cycles; the dense layers of the conformance set run on the same sparse instances
/// (their PEs take the lane of their own row), in rust-hdl, and one sparse case in Icarus.
#[test]
fn rtl_runs_sparse_layers() {
    use systole_core::Sparsity::{OneOfFour, TwoOfFour};
    let sparse = |a: ArchConfig, s: systole_core::Sparsity| ArchConfig { name: format!("{}-{s}", a.name), sparsity: s, ..a };
    let archs = [sparse(pe_staged(arch(4, 4, WS, 4, 5, 1), 2), OneOfFour), sparse(arch(8, 4, BOTH, 8, 4, 2), TwoOfFour)];
    let dense = layers();
    let mut sparse_layers: Vec<Layer> = [
        ("sparse_conv3x3_2of4", conv(4, 5, 8, 5, 3, 1, 1), TwoOfFour),
        ("sparse_conv3x3s2_1of4", conv(5, 5, 12, 6, 3, 2, 1), OneOfFour),
        ("sparse_pointwise_1of4", conv(3, 3, 20, 9, 1, 1, 1), OneOfFour),
        ("sparse_grouped_2of4", conv(3, 4, 8, 6, 3, 1, 2), TwoOfFour),
    ]
    .into_iter()
    .map(|(name, shape, s)| {
        let mut l = conv_layer(name, LayerOp::Conv, shape, 2, -1, Activation::Relu, true);
        l.sparsity = s;
        l
    })
    .collect();
    let mut gemm = conv_layer("sparse_gemm_2of4", LayerOp::Gemm, ConvShape::gemm(1, 5, 16, 6), 1, 0, Activation::None, true);
    gemm.sparsity = TwoOfFour;
    sparse_layers.push(gemm);
    for (a, l) in archs.iter().flat_map(|a| sparse_layers.iter().map(move |l| (a, l))) {
        let program = systole_compiler::compile_layer(a, l, &LayerData::random(l, 1)).unwrap();
        let format = l.sparsity.min(a.sparsity);
        let sparse = |i: &systole_core::Instr| matches!(i.op, systole_core::Op::MatmulWs { sparse, .. } if sparse == format);
        assert!(program.instrs.iter().any(sparse), "{} on {} runs dense", l.name, a.name);
    }
    ladder(&archs, &sparse_layers, true, None);
    ladder(&archs, &[dense[0].clone(), dense[4].clone(), dense[6].clone()], true, None);
    ladder(&archs[..1], &sparse_layers[1..2], false, Some(Simulator::Icarus));
}

/// Packed int4 weights (docs/ARCHITECTURE.md section 3) on instances with
/// `int4_weights`: the fused multipliers take two activations per PE, the RTL equals the
/// simulator in bytes and cycles in rust-hdl (and one case in Icarus); an int8 layer on
/// the same instance uses the fused pair as one 8x8 multiplier.
#[test]
fn rtl_runs_int4_layers() {
    let int4 = |a: ArchConfig, s: systole_core::Sparsity| ArchConfig {
        name: format!("{}-{s}-int4", a.name),
        sparsity: s,
        int4_weights: true,
        ..a
    };
    let archs = [
        int4(pe_staged(arch(4, 4, WS, 4, 5, 1), 2), systole_core::Sparsity::Dense),
        int4(arch(8, 4, BOTH, 8, 4, 2), systole_core::Sparsity::OneOfFour),
    ];
    let int4_layers: Vec<Layer> = [
        ("int4_conv3x3", conv(4, 5, 3, 5, 3, 1, 1)),
        ("int4_conv3x3s2", conv(5, 5, 12, 6, 3, 2, 1)),
        ("int4_pointwise", conv(3, 3, 21, 9, 1, 1, 1)),
    ]
    .into_iter()
    .map(|(name, shape)| {
        let mut l = conv_layer(name, LayerOp::Conv, shape, -2, 1, Activation::Relu6, true);
        l.weight_bits = 4;
        l
    })
    .collect();
    for (a, l) in archs.iter().flat_map(|a| int4_layers.iter().map(move |l| (a, l))) {
        let program = systole_compiler::compile_layer(a, l, &LayerData::random(l, 1)).unwrap();
        let packed = |i: &systole_core::Instr| matches!(i.op, systole_core::Op::MatmulWs { int4: true, .. });
        assert!(program.instrs.iter().any(packed), "{} on {} is not packed", l.name, a.name);
    }
    ladder(&archs, &int4_layers, true, None);
    ladder(&archs, &layers()[0..1], true, None);
    ladder(&archs[..1], &int4_layers[1..2], false, Some(Simulator::Icarus));
}

/// int4 weights and activations (docs/ARCHITECTURE.md section 3) on instances with
/// `int4_activations`: each PE's 16-bit weight feeds four 4x4 products over four
/// activation banks; the RTL equals the simulator in bytes and cycles in rust-hdl (and one
/// case in Icarus), int4 and int8 outputs, with int4-weight and int8 layers on the same
/// instances.
#[test]
fn rtl_runs_int4x4_layers() {
    let quad = |a: ArchConfig, s: systole_core::Sparsity| ArchConfig {
        name: format!("{}-{s}-int4x4", a.name),
        sparsity: s,
        int4_weights: true,
        int4_activations: true,
        ..a
    };
    let archs = [
        quad(pe_staged(arch(4, 4, WS, 4, 5, 1), 2), systole_core::Sparsity::Dense),
        quad(arch(8, 4, BOTH, 8, 4, 2), systole_core::Sparsity::OneOfFour),
    ];
    let quad_layers: Vec<Layer> = [
        ("int4x4_conv3x3", conv(4, 5, 8, 5, 3, 1, 1), 4),
        ("int4x4_conv3x3s2", conv(5, 5, 12, 6, 3, 2, 1), 8),
        ("int4x4_pointwise", conv(3, 3, 37, 9, 1, 1, 1), 4),
    ]
    .into_iter()
    .map(|(name, shape, output_bits)| {
        let mut l = conv_layer(name, LayerOp::Conv, shape, -2, 1, Activation::Relu, true);
        (l.weight_bits, l.act_bits, l.output_bits) = (4, 4, output_bits);
        // Inputs a sixteenth and weights an eighteenth of the int8 spread.
        l.quant.y_scale /= if output_bits == 4 { 18.0 } else { 288.0 };
        l
    })
    .collect();
    for (a, l) in archs.iter().flat_map(|a| quad_layers.iter().map(move |l| (a, l))) {
        let program = systole_compiler::compile_layer(a, l, &LayerData::random(l, 1)).unwrap();
        let fused = |i: &systole_core::Instr| matches!(i.op, systole_core::Op::MatmulWs { act4: true, .. });
        assert!(program.instrs.iter().any(fused), "{} on {} is not int4 x int4", l.name, a.name);
        // Outputs inside the clamp, so that a wrong product shows.
        let (lo, hi) = l.clamp_bounds();
        let y = systole_golden::layer(l, &LayerData::random(l, 100));
        assert!(y.data.iter().filter(|&&v| lo < v && v < hi).count() * 5 >= y.data.len(), "{}: outputs saturate", l.name);
    }
    let mut int4_weights = conv_layer("int4_weights_conv", LayerOp::Conv, conv(4, 4, 8, 5, 3, 1, 1), -2, 1, Activation::Relu6, true);
    int4_weights.weight_bits = 4;
    ladder(&archs, &quad_layers, true, None);
    ladder(&archs, &[int4_weights, layers()[0].clone()], true, None);
    ladder(&archs[..1], &quad_layers[2..3], false, Some(Simulator::Icarus));
}

/// Unstructured-sparse layers on instances with `csc_weights` (docs/ARCHITECTURE.md
/// section 3): tiles sparse enough are stored CSC and the RTL's expander rebuilds them in
/// the shadow tile; the RTL equals the simulator in bytes and cycles, with CSC and dense
/// tiles mixed in one layer, in rust-hdl and one case in Icarus; a dense layer runs on the
/// same instances.
#[test]
fn rtl_runs_csc_layers() {
    let csc = |a: ArchConfig| ArchConfig { name: format!("{}-csc", a.name), csc_weights: true, ..a };
    let archs = [csc(arch(4, 4, WS, 4, 5, 1)), csc(pe_staged(arch(8, 4, BOTH, 8, 4, 2), 1))];
    let mut csc_layers: Vec<Layer> = [
        ("csc_conv3x3", conv(4, 5, 8, 5, 3, 1, 1), 0.2),
        ("csc_conv3x3s2", conv(5, 5, 6, 6, 3, 2, 1), 0.1),
        ("csc_pointwise", conv(3, 3, 20, 9, 1, 1, 1), 0.3),
    ]
    .into_iter()
    .map(|(name, shape, density)| {
        let mut l = conv_layer(name, LayerOp::Conv, shape, 2, -1, Activation::Relu, true);
        l.density = density;
        l
    })
    .collect();
    let mut gemm = conv_layer("csc_gemm", LayerOp::Gemm, ConvShape::gemm(1, 24, 16, 6), 1, 0, Activation::None, true);
    gemm.density = 0.1;
    csc_layers.push(gemm);
    for (a, l) in archs.iter().flat_map(|a| csc_layers.iter().map(move |l| (a, l))) {
        let program = systole_compiler::compile_layer(a, l, &LayerData::random(l, 1)).unwrap();
        let expands = |i: &systole_core::Instr| matches!(i.op, systole_core::Op::MatmulWs { csc: Some(_), .. });
        assert!(program.instrs.iter().any(expands), "{} on {} has no CSC tile", l.name, a.name);
    }
    ladder(&archs, &csc_layers, true, None);
    ladder(&archs, &layers()[0..1], true, None);
    ladder(&archs[..1], &csc_layers[1..2], false, Some(Simulator::Icarus));
}

/// A network program on the RTL: the bundled tiny model (QOperator) on the 4x4 preset with
/// instruction queues of 8 (the rest of each run streamed), compiled as one DRAM image with its layers linked into runs (docs/ARCHITECTURE.md
/// section 7). Each run starts from the simulator's image at that point and runs under
/// Icarus; its instruction completions and total cycles must equal the timing model's and
/// the whole activation arena afterwards the simulator's, byte for byte. (The host steps
/// between runs, pooling, Add and Concat, still split the model into four runs.)
#[test]
fn verilog_runs_network_programs() {
    use systole_core::program::TensorPlacement;
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models");
    let path = models.join("tiny_qop.onnx");
    let net = systole_onnx::import(&systole_onnx::read(&path).unwrap(), &path).unwrap();
    // Queues of 8: each run's instructions beyond them streamed from DRAM.
    let arch = ArchConfig { instr_queue: Some(8), ..ArchConfig::from_file(&models.join("../archs/4x4.toml")).unwrap() };
    let compiled = systole_runtime::compile(&arch, &net).unwrap();
    let buffers = compiled.network.buffers.iter().flatten();
    let arena = buffers.map(|b| b.addr as usize + b.size()).max().unwrap();
    let arena = TensorPlacement { name: "activations".into(), dims: [1, 1, 1, arena], addr: 0, pad: [0; 4], pad_value: 0, tail: 0 };
    let shape = net.values[net.inputs[0].value].shape.clone();
    let x = systole_core::npy::read::<f32>(&models.join("tiny_input.npy"), &shape, "input").unwrap();
    let mut runs = vec![];
    let golden =
        systole_golden::network::run(&net, &[systole_core::network::HostTensor::F32 { shape: shape.clone(), data: x.clone() }]).unwrap();
    let sim = systole_runtime::simulate_observed(
        &arch,
        &net,
        &compiled.network,
        &[systole_core::network::HostTensor::F32 { shape, data: x }],
        None,
        |r| {
            let program = systole_core::Program { outputs: vec![arena.clone()], ..r.program.clone() };
            runs.push((
                program,
                r.before.to_vec(),
                arena.read(r.after),
                r.execution.timing.clone(),
                r.execution.report.cycles,
                r.layers.len(),
            ));
        },
    )
    .unwrap();
    assert_eq!(sim.outputs, golden, "the network program equals the golden network");
    assert_eq!(runs.iter().map(|r| r.5).collect::<Vec<_>>(), [3, 1, 1, 1], "stem, dw and pw in one run; expand, head and fc alone");
    let mut failures = vec![];
    for (k, (program, before, after, timing, cycles, _)) in runs.iter().enumerate() {
        let script = systole_testbenches::cosim::HostScript::new(&arch, program, before, cycles + cycles / 8 + 64);
        let dir = scratch(&format!("cosim_network_run{k}"));
        match run_verilog(Simulator::Icarus, &arch, program, before, &script, &dir) {
            Ok((rtl, _)) => {
                if let Err(e) = systole_testbenches::cosim::compare(program, std::slice::from_ref(after), timing, *cycles, &rtl) {
                    failures.push(format!("run {k}: {e}"));
                }
            }
            Err(e) => failures.push(format!("run {k}: {e}")),
        }
        eprintln!("run {k}: {} instructions, {cycles} cycles", program.instrs.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a network's one program did on the RTL: instructions, cycles, and the wall times
/// of the simulator's run and of the Verilator run (without its build).
struct OneProgram {
    instrs: usize,
    cycles: u64,
    sim_wall: std::time::Duration,
    rtl_wall: std::time::Duration,
}

/// Runs `net` on `arch` (with a vector unit and an instruction queue) as one program:
/// the simulator's output must equal the golden network's, the program must have no host
/// step, and under Verilator the whole activation arena afterwards (every node's output),
/// every instruction's completion cycle and the total cycle count must equal the
/// simulator's.
fn one_program_on_verilator(
    arch: &ArchConfig,
    net: &systole_core::network::Network,
    x: Vec<systole_core::network::HostTensor>,
    dir: &str,
) -> OneProgram {
    let compiled = systole_runtime::compile(arch, net).unwrap();
    let golden = systole_golden::network::run(net, &x).unwrap();
    // The RTL's whole activation arena is compared, every layer's output in it.
    let arena = compiled.network.buffers.iter().flatten().map(|b| b.addr as usize + b.size()).max().unwrap();
    let arena = systole_core::program::TensorPlacement {
        name: "activations".into(),
        dims: [1, 1, 1, arena],
        addr: 0,
        pad: [0; 4],
        pad_value: 0,
        tail: 0,
    };
    let mut runs = vec![];
    let t = std::time::Instant::now();
    let sim = systole_runtime::simulate_observed(arch, net, &compiled.network, &x, None, |r| {
        let program = systole_core::Program { outputs: vec![arena.clone()], ..r.program.clone() };
        let after = vec![arena.read(r.after)];
        runs.push((program, r.before.to_vec(), after, r.execution.timing.clone(), r.execution.report.cycles));
    })
    .unwrap();
    let sim_wall = t.elapsed();
    assert_eq!(sim.outputs, golden, "{}: the one program equals the golden network", net.name);
    assert_eq!(runs.len(), 1, "{}: one program, no host step", net.name);
    let (program, before, after, timing, cycles) = runs.pop().unwrap();
    assert!(program.instrs.iter().any(|i| matches!(i.op, systole_core::Op::Vector { .. })), "the program uses the vector unit");
    let script = systole_testbenches::cosim::HostScript::new(arch, &program, &before, cycles + cycles / 8 + 64);
    let (rtl, rtl_wall) =
        run_verilog(Simulator::Verilator, arch, &program, &before, &script, &scratch(dir)).unwrap_or_else(|e| panic!("{e}"));
    systole_testbenches::cosim::compare(&program, &after, &timing, cycles, &rtl).unwrap_or_else(|e| panic!("{}: {e}", net.name));
    OneProgram { instrs: program.instrs.len(), cycles, sim_wall, rtl_wall }
}

/// The whole bundled tiny model (QOperator) as one program on the RTL
/// (docs/ARCHITECTURE.md section 7): the 4x4 preset with a vector unit of two lanes and
/// instruction queues of 8, so its QLinearAdd, pooling and Concat run on the vector unit
/// and no host step splits the program; bit- and cycle-exact under Verilator
/// ([`one_program_on_verilator`]).
#[test]
fn verilator_runs_the_tiny_model_as_one_program() {
    use systole_core::network::HostTensor;
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models");
    let path = models.join("tiny_qop.onnx");
    let net = systole_onnx::import(&systole_onnx::read(&path).unwrap(), &path).unwrap();
    let preset = ArchConfig::from_file(&models.join("../archs/4x4.toml")).unwrap();
    let arch = ArchConfig { name: "4x4-vector".into(), instr_queue: Some(8), vector_lanes: 2, ..preset };
    let shape = net.values[net.inputs[0].value].shape.clone();
    let x = systole_core::npy::read::<f32>(&models.join("tiny_input.npy"), &shape, "input").unwrap();
    let run = one_program_on_verilator(&arch, &net, vec![HostTensor::F32 { shape, data: x }], "cosim_tiny_one_program");
    eprintln!("tiny model: {} instructions, {} cycles, bit- and cycle-exact", run.instrs, run.cycles);
}

/// A zoo network at 224x224 (quantized by Systole on a random input) on the 16x16 preset
/// with a vector unit of 16 lanes (`configs/archs/16x16-vector.toml`), as one program
/// under Verilator; prints the wall times
/// and simulated cycles per second of the simulator and of Verilator (README).
fn zoo_network_on_verilator(name: &str) {
    use systole_core::network::HostTensor;
    let bytes = systole_onnx::zoo::build(name, 224, 7).unwrap();
    let path = std::path::PathBuf::from(format!("{name}.onnx"));
    let model = systole_onnx::parse(&path, &bytes).unwrap();
    let samples = systole_onnx::ptq::random_samples(&model, 1, 3);
    let net = systole_onnx::import(&systole_onnx::ptq::quantize(&model, &path, &samples).unwrap(), &path).unwrap();
    let x = samples[0].iter().map(|(_, t)| HostTensor::F32 { shape: t.shape.clone(), data: t.data.clone() }).collect();
    let arch = ArchConfig::from_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/16x16-vector.toml")).unwrap();
    let run = one_program_on_verilator(&arch, &net, x, &format!("cosim_{name}_one_program"));
    let rate = |w: std::time::Duration| run.cycles as f64 / w.as_secs_f64();
    eprintln!(
        "{name} 224 on 16x16-vector: {} instructions, {} cycles, bit- and cycle-exact; simulator {:.2} s ({:.3e} cycles/s), Verilator {:.1} s ({:.3e} cycles/s)",
        run.instrs,
        run.cycles,
        run.sim_wall.as_secs_f64(),
        rate(run.sim_wall),
        run.rtl_wall.as_secs_f64(),
        rate(run.rtl_wall)
    );
}

/// `cargo test --release -p systole-testbenches --test cosim -- --ignored --nocapture
/// verilator_runs_mobilenetv2_224`.
#[test]
#[ignore = "slow: MobileNetV2 at 224 as one program on the 16x16 preset in Verilator"]
fn verilator_runs_mobilenetv2_224_as_one_program() {
    zoo_network_on_verilator("mobilenetv2");
}

/// `cargo test --release -p systole-testbenches --test cosim -- --ignored --nocapture
/// verilator_runs_resnet18_224`.
#[test]
#[ignore = "slow: ResNet-18 at 224 as one program on the 16x16 preset in Verilator"]
fn verilator_runs_resnet18_224_as_one_program() {
    zoo_network_on_verilator("resnet18");
}
