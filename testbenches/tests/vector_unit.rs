//! The vector unit's operators, each compiled alone and simulated on random tensors, against
//! the golden model's operators: residual Add (with a fused ReLU), max and average pooling
//! (padded, strided), global average pooling, a flatten's copy and a concatenation along
//! the channels (each part requantized into its slice of the pixels), on instances whose
//! vector unit maps a word in one pass or several, square or not, with scratchpads small
//! enough that the operators run in several bands; and the same operators on the RTL, in
//! rust-hdl's simulator, bit- and cycle-exact with the simulator.

use rand::{Rng, SeedableRng};
use systole_core::layer::Activation;
use systole_core::network::{from_nhwc, to_nhwc, NetInput, NetOutput, Network, Node, Op, Pool, Quant, Value};
use systole_core::ArchConfig;

fn value(name: &str, shape: &[usize], scale: f32, zp: i8) -> Value {
    Value { name: name.into(), shape: shape.to_vec(), quant: Quant { scale, zp } }
}

/// A network of one node `op` over inputs of `shapes`, giving a value of `out`.
fn one_node(op: Op, shapes: &[&[usize]], out: &[usize], rng: &mut impl Rng) -> Network {
    let mut values: Vec<Value> =
        shapes.iter().enumerate().map(|(k, s)| value(&format!("x{k}"), s, rng.gen_range(0.01..0.1), rng.gen_range(-10..10))).collect();
    let same = matches!(op, Op::MaxPool(_) | Op::Reshape);
    let yq = if same { values[0].quant } else { Quant { scale: rng.gen_range(0.01..0.1), zp: rng.gen_range(-10..10) } };
    values.push(value("y", out, yq.scale, yq.zp));
    let inputs = (0..shapes.len()).map(|k| NetInput { name: format!("x{k}"), value: k, float: false }).collect();
    let outputs = vec![NetOutput { name: "y".into(), value: shapes.len(), dequantize: None }];
    Network {
        name: "one".into(),
        nodes: vec![Node { name: "op".into(), op, inputs: (0..shapes.len()).collect(), output: shapes.len() }],
        values,
        inputs,
        outputs,
    }
}

/// Simulates `net`'s node alone on random data against golden; notes the program's stores
/// (one per band) in `stores`.
fn check(arch: &ArchConfig, net: &Network, rng: &mut impl Rng, stores: &mut Vec<usize>) {
    let kernels = systole_runtime::vector_kernels(arch, net);
    let kernels = kernels[0].as_ref().unwrap_or_else(|| panic!("{}: no kernel for {}", arch.name, net.nodes[0].op.kind()));
    let program = systole_compiler::vector::compile_alone(arch, net, 0, kernels).unwrap();
    let data: Vec<Vec<i8>> = net.inputs.iter().map(|i| (0..net.values[i.value].len()).map(|_| rng.gen()).collect()).collect();
    let tensors: Vec<_> = net.inputs.iter().zip(&data).map(|(i, d)| to_nhwc(&net.values[i.value].shape, d)).collect();
    let (outputs, exe) = systole_sim::run(arch, &program, &tensors.iter().collect::<Vec<_>>()).unwrap();
    let mut values = vec![vec![]; net.values.len()];
    values[..data.len()].clone_from_slice(&data);
    let golden = systole_golden::network::eval_node(net, 0, &values, |_, _, _| Err::<systole_core::Tensor, ()>(())).unwrap();
    let y = &net.values[net.nodes[0].output];
    assert_eq!(from_nhwc(&outputs[0], y.shape.len()), golden, "{}: {} differs from golden", arch.name, net.nodes[0].op.kind());
    assert_eq!(exe.report.cycles, systole_core::timing::total_cycles(&exe.timing));
    stores.push(program.instrs.iter().filter(|i| matches!(i.op, systole_core::isa::Op::Store { .. })).count());
}

fn instances() -> Vec<ArchConfig> {
    let small = |name: &str, rows, cols, lanes, kib| ArchConfig {
        name: name.into(),
        rows,
        cols,
        act_sram_kib: kib,
        acc_sram_kib: kib,
        wgt_sram_kib: 2,
        param_entries: 64,
        vector_lanes: lanes,
        ..ArchConfig::preset_4x4()
    };
    vec![
        small("4x4, 4 lanes", 4, 4, 4, 2),
        small("4x4, 1 lane", 4, 4, 1, 4),
        small("3x5, 3 lanes", 3, 5, 3, 2),
        small("8x4, 2 lanes", 8, 4, 2, 4),
    ]
}

#[test]
fn vector_operators_equal_golden_on_random_tensors() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let pool = |k: usize, s: usize, p: usize| Pool::new([k, k], [s, s], [p; 4], true);
    for arch in instances() {
        arch.validate().unwrap();
        let mut stores = vec![];
        let shape: &[usize] = &[1, 7, 20, 10];
        check(&arch, &one_node(Op::Add(Activation::Relu), &[shape, shape], shape, &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::Add(Activation::None), &[shape, shape], shape, &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::MaxPool(pool(2, 2, 0)), &[shape], &[1, 7, 10, 5], &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::AvgPool(pool(3, 1, 1)), &[shape], shape, &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::AvgPool(pool(3, 2, 0)), &[shape], &[1, 7, 9, 4], &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::GlobalAvgPool, &[shape], &[1, 7, 1, 1], &mut rng), &mut rng, &mut stores);
        check(&arch, &one_node(Op::Reshape, &[&[1, 6, 1, 1]], &[1, 6], &mut rng), &mut rng, &mut stores);
        let parts: [&[usize]; 3] = [&[1, 3, 5, 6], &[1, 6, 5, 6], &[1, 1, 5, 6]];
        check(&arch, &one_node(Op::Concat { axis: 1 }, &parts, &[1, 10, 5, 6], &mut rng), &mut rng, &mut stores);
        // The Adds run in several bands of rows per channel group.
        let groups = 7usize.div_ceil(arch.vector_width());
        assert!(stores[0] > groups, "{}: {stores:?}", arch.name);
    }
}

/// The RTL rung: `net`'s node compiled alone runs on the accelerator in rust-hdl's
/// simulator with every output byte, every instruction's completion cycle and the total
/// cycle count equal to the simulator's (which the test above holds to golden).
fn check_rtl(arch: &ArchConfig, net: &Network, rng: &mut impl Rng) {
    let kernels = systole_runtime::vector_kernels(arch, net);
    let kernels = kernels[0].as_ref().unwrap_or_else(|| panic!("{}: no kernel for {}", arch.name, net.nodes[0].op.kind()));
    let program = systole_compiler::vector::compile_alone(arch, net, 0, kernels).unwrap();
    let tensors: Vec<_> = net
        .inputs
        .iter()
        .map(|i| {
            let shape = &net.values[i.value].shape;
            to_nhwc(shape, &(0..net.values[i.value].len()).map(|_| rng.gen()).collect::<Vec<i8>>())
        })
        .collect();
    let inputs: Vec<_> = tensors.iter().collect();
    let (outputs, exe) = systole_sim::run(arch, &program, &inputs).unwrap();
    let dram = program.dram_with_inputs(&inputs);
    let cycles = exe.report.cycles;
    let script = systole_testbenches::cosim::HostScript::new(arch, &program, &dram, cycles + cycles / 8 + 64);
    let rtl = systole_testbenches::cosim::run_rust_hdl(arch, &program, &dram, &script);
    systole_testbenches::cosim::compare(&program, &outputs, &exe.timing, cycles, &rtl)
        .unwrap_or_else(|e| panic!("{}: {} on the RTL: {e}", arch.name, net.nodes[0].op.kind()));
}

#[test]
fn the_rtl_runs_every_vector_operator_as_the_simulator_does() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let pool = |k: usize, s: usize, p: usize| Pool::new([k, k], [s, s], [p; 4], true);
    for arch in instances() {
        let shape: &[usize] = &[1, 5, 6, 4];
        check_rtl(&arch, &one_node(Op::Add(Activation::Relu), &[shape, shape], shape, &mut rng), &mut rng);
        check_rtl(&arch, &one_node(Op::MaxPool(pool(2, 2, 0)), &[shape], &[1, 5, 3, 2], &mut rng), &mut rng);
        check_rtl(&arch, &one_node(Op::AvgPool(pool(3, 1, 1)), &[shape], shape, &mut rng), &mut rng);
        check_rtl(&arch, &one_node(Op::GlobalAvgPool, &[shape], &[1, 5, 1, 1], &mut rng), &mut rng);
        let parts: [&[usize]; 2] = [&[1, 3, 2, 3], &[1, 2, 2, 3]];
        check_rtl(&arch, &one_node(Op::Concat { axis: 1 }, &parts, &[1, 5, 2, 3], &mut rng), &mut rng);
    }
}

#[test]
fn operators_the_unit_cannot_run_exactly_stay_on_the_host() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let arch = &instances()[0];
    let shape: &[usize] = &[1, 4, 6, 6];
    // A padded max pool whose input is not clamped: a border would need a value below all.
    let pool = Pool::new([3, 3], [2, 2], [1; 4], false);
    let net = one_node(Op::MaxPool(pool), &[shape], &[1, 4, 3, 3], &mut rng);
    assert!(systole_runtime::vector_kernels(arch, &net)[0].is_none());
    // Average pooling over windows of varying size (padding not counted).
    let net = one_node(Op::AvgPool(pool), &[shape], &[1, 4, 3, 3], &mut rng);
    assert!(systole_runtime::vector_kernels(arch, &net)[0].is_none());
    // Without a vector unit every operator is the host's.
    let net = one_node(Op::Add(Activation::None), &[shape, shape], shape, &mut rng);
    assert!(systole_runtime::vector_kernels(&ArchConfig { vector_lanes: 0, ..arch.clone() }, &net)[0].is_none());
}

#[test]
fn a_window_too_large_for_the_scratchpads_runs_on_the_host() {
    // A global average over 64 x 64 pixels: one output row's input outgrows the smallest
    // instance's scratchpad, so the network compiles with the node on the host, bit-exact.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let arch = &instances()[0];
    let net = one_node(Op::GlobalAvgPool, &[&[1, 8, 64, 64]], &[1, 8, 1, 1], &mut rng);
    let kernels = systole_runtime::vector_kernels(arch, &net);
    let e = systole_compiler::vector::compile_alone(arch, &net, 0, kernels[0].as_ref().expect("the unit runs the operator")).unwrap_err();
    assert!(matches!(e, systole_compiler::CompileError::DoesNotFit { .. }), "{e}");
    let data: Vec<i8> = (0..8 * 64 * 64).map(|_| rng.gen()).collect();
    let x = systole_core::network::HostTensor::I8 { shape: vec![1, 8, 64, 64], data };
    let (compiled, run) = systole_testbenches::networks::simulate_against_golden(arch, &net, &[x]).unwrap();
    assert!(compiled.layers[0].is_none());
    assert_eq!(run.report.host.iter().map(|h| h.kind.as_str()).collect::<Vec<_>>(), ["globalavgpool"]);
}
