//! Whole networks from ONNX files: ONNX Runtime's outputs (saved by
//! `scripts/dev/onnx_fixtures.py`) are the oracle; the golden network and the simulated one
//! must both equal them bit for bit.

use std::path::{Path, PathBuf};
use systole_core::network::{HostTensor, Network};
use systole_core::program::NetStep;
use systole_core::ArchConfig;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models")
}

fn load(name: &str) -> Network {
    let path = models().join(name);
    let model = systole_onnx::read(&path).unwrap();
    systole_onnx::import(&model, &path).unwrap()
}

fn input(net: &Network) -> HostTensor {
    let shape = net.values[net.inputs[0].value].shape.clone();
    let data = systole_core::npy::read::<f32>(&models().join("tiny_input.npy"), &shape, "input").unwrap();
    HostTensor::F32 { shape, data }
}

fn expected(name: &str, shape: &[usize]) -> Vec<f32> {
    systole_core::npy::read::<f32>(&models().join(name), shape, "expected").unwrap()
}

fn check(model: &str, out: &str) {
    let net = load(model);
    let x = input(&net);
    let golden = systole_golden::network::run(&net, std::slice::from_ref(&x)).unwrap();
    let HostTensor::F32 { shape, data } = &golden[0] else { panic!("float output expected") };
    let ort = expected(out, shape);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(data), bits(&ort), "{model}: golden network vs ONNX Runtime\n golden {data:?}\n ort    {ort:?}");
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs.network, &[x]).unwrap();
    assert_eq!(run.outputs, golden, "{model}: simulated network vs golden");
}

#[test]
fn qoperator_model_matches_onnx_runtime_bit_for_bit() {
    check("tiny_qop.onnx", "tiny_qop_out.npy");
}

/// The QDQ model node by node: each node computed from ONNX Runtime's int8 inputs must give
/// ONNX Runtime's int8 output. ONNX Runtime fuses DQ -> Conv/Gemm/Add/Concat -> Q into its
/// QLinear kernels, and Systole equals those bit for bit. It leaves DQ -> AveragePool -> Q
/// in float, where the accumulation order decides exact ties: Systole computes the QLinear
/// pooling (exact integer sum, ties to even), so there the two may differ only by one code,
/// only at exact ties.
#[test]
fn qdq_model_matches_onnx_runtime_node_by_node() {
    let net = load("tiny_qdq.onnx");
    let trace = |v: usize| {
        let value = &net.values[v];
        let path = models().join("tiny_qdq_trace").join(format!("{}.npy", value.name));
        path.exists().then(|| systole_core::npy::read::<i8>(&path, &value.shape, &value.name).unwrap())
    };
    let mut values: Vec<Vec<i8>> = (0..net.values.len()).map(|v| trace(v).unwrap_or_default()).collect();
    let (mut exact, mut ties) = (0, 0);
    for (idx, node) in net.nodes.iter().enumerate() {
        if node.inputs.iter().any(|&v| values[v].is_empty()) {
            panic!("node `{}` reads a value with no trace", node.name);
        }
        let ours = systole_golden::network::eval_node(&net, idx, &values, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
        let Some(ort) = trace(node.output) else {
            // A layout op between a DequantizeLinear and the next QuantizeLinear: no trace of its own.
            values[node.output] = ours;
            continue;
        };
        for (i, (&a, &b)) in ours.iter().zip(&ort).enumerate() {
            if a == b {
                exact += 1;
                continue;
            }
            let pooled = matches!(node.op, systole_core::network::Op::AvgPool(_) | systole_core::network::Op::GlobalAvgPool);
            assert!(pooled, "node `{}` ({}) element {i}: Systole {a}, ONNX Runtime {b}", node.name, node.op.kind());
            let real = pooled_real(&net, idx, &values, i);
            assert!(
                (a as i32 - b as i32).abs() == 1 && (real.fract().abs() - 0.5).abs() < 1e-6,
                "node `{}` element {i}: Systole {a}, ONNX Runtime {b}, exact value {real}",
                node.name
            );
            ties += 1;
        }
        values[node.output] = ort;
    }
    assert!(exact > 2000 && ties < exact / 20, "{exact} exact, {ties} ties");
}

/// The exact real output (before rounding, without the zero point) of element `i` of
/// pooling node `idx`: `sum(x - x_zp) * (x_scale / y_scale) / count`, in f64.
fn pooled_real(net: &Network, idx: usize, values: &[Vec<i8>], i: usize) -> f64 {
    use systole_core::network::{Op, Pool};
    let node = &net.nodes[idx];
    let (x, y) = (&net.values[node.inputs[0]], &net.values[node.output]);
    let [_, c, h, w] = x.shape[..] else { unreachable!() };
    let pool = match node.op {
        Op::AvgPool(p) => p,
        _ => Pool::global([h, w]),
    };
    let [p, q] = pool.out_hw(h, w);
    let (ch, oy, ox) = ((i / (p * q)) % c, (i / q) % p, i % q);
    let (mut sum, mut count) = (0i64, 0);
    for r in 0..pool.kernel[0] {
        for s in 0..pool.kernel[1] {
            let (yy, xx) =
                ((oy * pool.stride[0] + r) as isize - pool.pad[0] as isize, (ox * pool.stride[1] + s) as isize - pool.pad[1] as isize);
            if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                sum += values[node.inputs[0]][(ch * h + yy as usize) * w + xx as usize] as i64 - x.quant.zp as i64;
                count += 1;
            }
        }
    }
    if pool.count_include_pad {
        count = (pool.kernel[0] * pool.kernel[1]) as i64;
    }
    sum as f64 * (x.quant.scale as f64 / y.quant.scale as f64) / count as f64
}

#[test]
fn qdq_model_simulates_as_its_golden_network() {
    let net = load("tiny_qdq.onnx");
    let x = input(&net);
    let golden = systole_golden::network::run(&net, std::slice::from_ref(&x)).unwrap();
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs.network, &[x]).unwrap();
    assert_eq!(run.outputs, golden);
    assert_eq!(run.report.layers.len(), 6, "stem, dw, pw, expand, head and fc run on the accelerator");
    // The rest is marked as the host's, after the layers that run before it.
    let host: Vec<(&str, usize)> = run.report.host.iter().map(|h| (h.kind.as_str(), h.after_layers)).collect();
    assert_eq!(host, [("add", 3), ("maxpool", 3), ("concat", 4), ("avgpool", 4), ("globalavgpool", 5), ("reshape", 5)]);
}

fn float_batch(name: &str) -> systole_onnx::FTensor {
    let path = models().join(name);
    let (shape, data) = systole_core::npy::read_any::<f32>(&path, name).unwrap();
    systole_onnx::FTensor { shape, data }
}

/// Systole's own post-training quantization of the float model (BatchNormalization folded,
/// calibrated on tiny_calib.npy): the quantized network's output stays within a few output
/// quantization steps of ONNX Runtime's float output, and the simulator equals the golden
/// network bit for bit.
#[test]
fn float_model_quantized_by_systole_tracks_the_float_model() {
    let path = models().join("tiny_float.onnx");
    let model = systole_onnx::read(&path).unwrap();
    assert!(systole_onnx::ptq::is_float(&model));
    let samples = systole_onnx::ptq::samples_from_batch(&model, &float_batch("tiny_calib.npy")).unwrap();
    let quantized = systole_onnx::ptq::quantize(&model, &path, &samples).unwrap();
    let net = systole_onnx::import(&quantized, &path).unwrap();
    assert_eq!(net.layers().count(), 6, "BatchNormalization folded, ReLUs fused: six accelerator layers");
    let x = input(&net);
    let golden = systole_golden::network::run(&net, std::slice::from_ref(&x)).unwrap();
    let HostTensor::F32 { shape, data } = &golden[0] else { panic!("float output expected") };
    let float = expected("tiny_float_out.npy", shape);
    let step = net.outputs[0].dequantize.unwrap().scale;
    let worst = data.iter().zip(&float).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    let range = float.iter().map(|v| v.abs()).fold(0f32, f32::max);
    assert!(
        worst < 4.0 * step && worst < 0.05 * range,
        "worst error {worst}, output step {step}, output range {range}\n{data:?}\n{float:?}"
    );
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs.network, &[x]).unwrap();
    assert_eq!(run.outputs, golden);
    // ONNX Runtime running the QDQ model `systole quantize` writes (the dev script saved its
    // output) gives the same bits: Systole's quantized model means the same to both.
    let ort = expected("tiny_float_systole_out.npy", shape);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(data), bits(&ort), "Systole vs ONNX Runtime on Systole's quantized model");
}

/// A whole network from `zoo` at 224x224: quantized by Systole on two random inputs, then
/// simulated on the 16x16 preset with a vector unit as one program without a host step;
/// every node's output equals the golden network's.
fn zoo_network_end_to_end(name: &str, layers: usize, depthwise: usize) -> systole_runtime::NetworkRun {
    let bytes = systole_onnx::zoo::build(name, 224, 7).unwrap();
    let path = PathBuf::from(format!("{name}.onnx"));
    let model = systole_onnx::parse(&path, &bytes).unwrap();
    let samples = systole_onnx::ptq::random_samples(&model, 2, 3);
    let net = systole_onnx::import(&systole_onnx::ptq::quantize(&model, &path, &samples).unwrap(), &path).unwrap();
    assert_eq!(net.layers().count(), layers);
    assert_eq!(net.layers().filter(|(_, l)| l.op == systole_core::LayerOp::Depthwise).count(), depthwise);
    let x = vec![samples[0][0].1.clone()].into_iter().map(|t| HostTensor::F32 { shape: t.shape, data: t.data }).collect::<Vec<_>>();
    let preset = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/16x16.toml")).unwrap();
    let arch = ArchConfig { vector_lanes: 16, ..preset };
    let (compiled, run) = systole_testbenches::networks::simulate_against_golden(&arch, &net, &x).unwrap();
    assert_eq!(compiled.network.runs().count(), 1, "{name}: one program");
    assert!(compiled.network.steps.iter().all(|s| matches!(s, NetStep::Run { .. })), "{name}: a host step");
    assert_eq!(run.report.total.macs, net.macs());
    // Linked into one program, a layer starts no later than after the whole of the one
    // before it, so the network takes at most the sum of its layers run alone.
    let alone: u64 = compiled.layers.iter().flatten().map(|p| systole_sim::estimate(&arch, p).unwrap().report.cycles).sum();
    assert!(run.report.total.cycles <= alone, "{name}: {} cycles as one program, {alone} layer by layer", run.report.total.cycles);
    run
}

#[test]
fn mobilenet_v2_224_runs_end_to_end_bit_exact() {
    let run = zoo_network_end_to_end("mobilenetv2", 53, 17);
    // torchvision lists MobileNetV2 at 0.30 G multiply-adds for 224x224.
    let macs = run.report.total.macs as f64;
    assert!((macs / 0.30e9 - 1.0).abs() < 0.01, "{macs} MACs");
}

#[test]
#[ignore = "a whole network at 224x224; tests/zoo.rs runs it at 32 by default"]
fn resnet18_224_runs_end_to_end_bit_exact() {
    let run = zoo_network_end_to_end("resnet18", 21, 0);
    // torchvision lists ResNet-18 at 1.81 G multiply-adds for 224x224.
    let macs = run.report.total.macs as f64;
    assert!((macs / 1.81e9 - 1.0).abs() < 0.005, "{macs} MACs");
}

/// uint8 activations (ONNX Runtime's default) are int8 with the zero point moved by -128:
/// the same bits out as ONNX Runtime.
#[test]
fn uint8_qoperator_model_matches_onnx_runtime_bit_for_bit() {
    check("tiny_qop_u8.onnx", "tiny_qop_u8_out.npy");
}

#[test]
fn activations_and_excitation_run_on_the_host_between_accelerator_layers() {
    // Conv -> Sigmoid -> Conv -> HardSwish -> Conv -> LeakyRelu -> squeeze-and-excitation
    // (opset 14, quantized by Systole): the simulated network equals the golden one, whose
    // activations and products onnx/tests/activations.rs checks against ONNX's definitions.
    use systole_onnx::zoo::GraphBuilder;
    let mut g = GraphBuilder::new("acts", &[1, 8, 6, 6], 2);
    let mut x = "x".to_string();
    for op in ["Sigmoid", "HardSwish", "LeakyRelu"] {
        let c = g.conv(&x, 8, 3, 1, 1, 1, 1.0, true);
        x = g.node(op, "act", &[&c], vec![], vec![1, 8, 6, 6]);
    }
    // Squeeze-and-excitation: a [1, 8, 1, 1] gate multiplies the feature map.
    let gap = g.node("GlobalAveragePool", "gap", &[&x], vec![], vec![1, 8, 1, 1]);
    let fc = g.conv(&gap, 8, 1, 1, 0, 1, 1.0, true);
    let gate = g.node("Sigmoid", "gate", &[&fc], vec![], vec![1, 8, 1, 1]);
    x = g.node("Mul", "excite", &[&x, &gate], vec![], vec![1, 8, 6, 6]);
    // A scale and a bias per channel from initializers.
    x = g.node("Mul", "scale", &[&x, "gamma"], vec![], vec![1, 8, 6, 6]);
    x = g.node("Add", "shift", &[&x, "beta"], vec![], vec![1, 8, 6, 6]);
    let mut m = g.finish(&x);
    m.opset_import[0].version = 14;
    let graph = m.graph.as_mut().unwrap();
    let f32s = systole_onnx::attrs::dtype::FLOAT;
    graph.initializer.push(systole_onnx::attrs::tensor_proto("gamma", &[1, 8, 1, 1], f32s, &[0.5, 1.0, 1.5, 2.0, -0.5, -1.0, 0.25, 3.0]));
    graph.initializer.push(systole_onnx::attrs::tensor_proto("beta", &[8, 1, 1], f32s, &[0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8]));
    let host = host_operators_of_simulated(systole_onnx::OnnxModel { proto: m, opset: 14, inputs: vec![] }, &[1, 8, 6, 6]);
    assert_eq!(host, ["sigmoid", "hardswish", "leakyrelu", "globalavgpool", "sigmoid", "mul", "mul", "add"]);
}

/// The float model `m` quantized by Systole and simulated on the 4x4 preset (equal to the
/// golden network node by node) on a fixed input of `shape`: the host operators' kinds.
fn host_operators_of_simulated(m: systole_onnx::OnnxModel, shape: &[usize]) -> Vec<String> {
    let path = Path::new("float.onnx");
    let bytes = m.to_bytes();
    let model = systole_onnx::parse(path, &bytes).unwrap();
    let quantized = systole_onnx::ptq::quantize(&model, path, &systole_onnx::ptq::random_samples(&model, 2, 3)).unwrap();
    let net = systole_onnx::import(&quantized, path).unwrap();
    let data: Vec<f32> = (0..shape.iter().product::<usize>()).map(|i| ((i * 31) % 29) as f32 / 7.0 - 2.0).collect();
    let x = HostTensor::F32 { shape: shape.to_vec(), data };
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let (_, run) = systole_testbenches::networks::simulate_against_golden(&arch, &net, &[x]).unwrap();
    run.report.host.iter().map(|h| h.kind.clone()).collect()
}

#[test]
fn the_classic_and_mobile_operators_run_on_the_host_between_accelerator_layers() {
    // Pools with ceil_mode and dilations, LRN, Split, Slice, Resize, Sub, Div, Sum, a
    // channel shuffle and Softmax between convolutions (quantized by Systole): the simulated
    // network equals the golden one, whose operators onnx/tests/operators.rs checks against
    // ONNX's definitions.
    use systole_onnx::attrs::{dtype, int_attr, ints_attr};
    use systole_onnx::zoo::GraphBuilder;
    let mut g = GraphBuilder::new("classic", &[1, 4, 9, 9], 4);
    let c = g.conv("x", 8, 3, 1, 1, 1, 2.0, true);
    let r = g.relu(&c);
    let k = |v: i64| ints_attr("kernel_shape", &[v, v]);
    let p = g.node("MaxPool", "pool", &[&r], vec![k(3), ints_attr("strides", &[2, 2]), int_attr("ceil_mode", 1)], vec![1, 8, 4, 4]);
    let l = g.node("LRN", "lrn", &[&p], vec![int_attr("size", 5)], vec![1, 8, 4, 4]);
    let d = g.node(
        "MaxPool",
        "dilated",
        &[&l],
        vec![k(2), ints_attr("dilations", &[2, 2]), ints_attr("pads", &[1, 1, 1, 1])],
        vec![1, 8, 4, 4],
    );
    let parts = g.split(&d, 1, &[4, 4]);
    let int64 =
        |g: &mut GraphBuilder, v: &[i64]| g.constant("i", &[v.len()], dtype::INT64, &v.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let (starts, ends, axes) = (int64(&mut g, &[0]), int64(&mut g, &[2]), int64(&mut g, &[2]));
    let top = g.node("Slice", "slice", &[&parts[0], &starts, &ends, &axes], vec![], vec![1, 4, 2, 4]);
    let scales = g.constant("scales", &[4], dtype::FLOAT, &[1.0, 1.0, 2.0, 1.0]);
    let up = g.node("Resize", "resize", &[&top, "", &scales], vec![], vec![1, 4, 4, 4]);
    let diff = g.node("Sub", "sub", &[&up, &parts[1]], vec![], vec![1, 4, 4, 4]);
    let two = g.constant("two", &[], dtype::FLOAT, &[2.0]);
    let half = g.node("Div", "div", &[&diff, &two], vec![], vec![1, 4, 4, 4]);
    let sum = g.node("Sum", "sum", &[&half, &up, &parts[1]], vec![], vec![1, 4, 4, 4]);
    let cat = g.node("Concat", "cat", &[&sum, &parts[0]], vec![int_attr("axis", 1)], vec![1, 8, 4, 4]);
    let (grouped, flat) = (int64(&mut g, &[1, 2, 4, 4, 4]), int64(&mut g, &[1, 8, 4, 4]));
    let sh = g.node("Reshape", "group", &[&cat, &grouped], vec![], vec![1, 2, 4, 4, 4]);
    let sh = g.node("Transpose", "shuffle", &[&sh], vec![ints_attr("perm", &[0, 2, 1, 3, 4])], vec![1, 4, 2, 4, 4]);
    let sh = g.node("Reshape", "ungroup", &[&sh, &flat], vec![], vec![1, 8, 4, 4]);
    let c2 = g.conv(&sh, 8, 3, 1, 1, 1, 1.0, true);
    let fc = g.pool_flatten(&c2);
    let fc = g.linear(&fc, 10);
    let y = g.node("Softmax", "softmax", &[&fc], vec![], vec![1, 10]);
    let host = host_operators_of_simulated(systole_onnx::OnnxModel { proto: g.finish(&y), opset: 13, inputs: vec![] }, &[1, 4, 9, 9]);
    assert_eq!(
        host,
        [
            "maxpool",
            "lrn",
            "maxpool",
            "split",
            "split",
            "slice",
            "resize",
            "sub",
            "div",
            "sum",
            "concat",
            "reshape",
            "transpose",
            "reshape",
            "globalavgpool",
            "reshape",
            "softmax"
        ]
    );
}
