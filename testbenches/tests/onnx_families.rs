//! The operator families of the mobile and classic networks against ONNX Runtime 1.32 on an
//! AVX512-VNNI machine (fixtures written by `scripts/dev/onnx_fixtures.py families`; the
//! tests do not run Python): the QDQ models node by node from ONNX Runtime's own int8
//! tensors, the QOperator models end to end, through the golden network and the simulator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use systole_core::network::{HostTensor, Network};
use systole_core::ArchConfig;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models")
}

fn load(name: &str) -> Network {
    let path = models().join(name);
    systole_onnx::import(&systole_onnx::read(&path).unwrap(), &path).unwrap()
}

fn input(net: &Network, family: &str) -> HostTensor {
    let shape = net.values[net.inputs[0].value].shape.clone();
    let data = systole_core::npy::read::<f32>(&models().join(format!("{family}_input.npy")), &shape, "input").unwrap();
    HostTensor::F32 { shape, data }
}

/// Per node kind: elements equal to ONNX Runtime's, and those one step off.
type Agreement = BTreeMap<String, (usize, usize)>;

/// Every node of `family`'s QDQ model computed from ONNX Runtime's int8 inputs and compared
/// with ONNX Runtime's output of the same QuantizeLinear.
fn node_by_node(family: &str) -> Agreement {
    let net = load(&format!("{family}_qdq.onnx"));
    let trace = |v: usize| {
        let value = &net.values[v];
        let path = models().join(format!("{family}_qdq_trace")).join(format!("{}.npy", value.name));
        path.exists().then(|| systole_core::npy::read::<i8>(&path, &value.shape, &value.name).unwrap())
    };
    let mut values: Vec<Vec<i8>> = (0..net.values.len()).map(|v| trace(v).unwrap_or_default()).collect();
    let mut agreement = Agreement::new();
    for (idx, node) in net.nodes.iter().enumerate() {
        assert!(node.inputs.iter().all(|&v| !values[v].is_empty()), "node `{}` reads a value with no trace", node.name);
        let ours = systole_golden::network::eval_node(&net, idx, &values, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
        let Some(ort) = trace(node.output) else {
            values[node.output] = ours;
            continue;
        };
        let entry = agreement.entry(node.op.kind().to_string()).or_default();
        for (i, (&a, &b)) in ours.iter().zip(&ort).enumerate() {
            match (a as i32 - b as i32).abs() {
                0 => entry.0 += 1,
                1 => entry.1 += 1,
                d => panic!("{family}: node `{}` ({}) element {i}: Systole {a}, ONNX Runtime {b} ({d} steps)", node.name, node.op.kind()),
            }
        }
        values[node.output] = ort;
    }
    agreement
}

/// `family`'s model in `format` run by golden and the simulator (equal), and the output's
/// distance from ONNX Runtime's in output steps: (elements equal, largest distance).
fn end_to_end(family: &str, format: &str) -> (usize, f64) {
    let net = load(&format!("{family}_{format}.onnx"));
    let x = input(&net, family);
    let golden = systole_golden::network::run(&net, std::slice::from_ref(&x)).unwrap();
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs.network, &[x]).unwrap();
    assert_eq!(run.outputs, golden, "{family} {format}: simulator and golden");
    let HostTensor::F32 { data, shape } = &golden[0] else { panic!("a float output") };
    let ort = systole_core::npy::read::<f32>(&models().join(format!("{family}_{format}_out.npy")), shape, "expected").unwrap();
    let step = net.outputs[0].dequantize.unwrap().scale;
    let equal = data.iter().zip(&ort).filter(|(a, b)| a == b).count();
    let worst = data.iter().zip(&ort).map(|(a, b)| ((a - b) / step).abs() as f64).fold(0.0, f64::max);
    (equal, worst)
}

/// Asserts every node agrees exactly, except where ONNX Runtime computes in float or from a
/// table: `allowed` lists those kinds with their elements one step off.
fn agrees(family: &str, allowed: &[(&str, usize)]) {
    for (kind, (exact, off)) in node_by_node(family) {
        let want = allowed.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n);
        assert_eq!(off, want, "{family}: {kind} has {off} elements one step off ({exact} exact)");
        assert!(exact > 0, "{family}: {kind} checked no element");
    }
}

/// HardSwish, SiLU (Sigmoid, Mul), squeeze-and-excitation (HardSigmoid, Mul) and LeakyRelu
/// equal ONNX Runtime's, node by node (QDQ) and at the output (QDQ and QOperator: its
/// QLinearSigmoid, QLinearMul, QLinearLeakyRelu, QLinearGlobalAveragePool).
#[test]
fn mobile_activations_and_excitation_equal_onnx_runtime() {
    agrees("ops_mobile", &[]);
    let kinds: Vec<String> = node_by_node("ops_mobile").into_keys().collect();
    for kind in ["hardswish", "sigmoid", "mul", "hardsigmoid", "leakyrelu", "globalavgpool"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} node checked");
    }
    for format in ["qdq", "qop"] {
        assert_eq!(end_to_end("ops_mobile", format), (10, 0.0), "{format}");
    }
}

/// Split, Concat, channel shuffle, a ceil-mode MaxPool and a nearest Resize equal ONNX
/// Runtime's (they move int8 bytes).
#[test]
fn shuffle_split_and_resize_equal_onnx_runtime() {
    agrees("ops_shuffle", &[]);
    for format in ["qdq", "qop"] {
        assert_eq!(end_to_end("ops_shuffle", format), (512, 0.0), "{format}");
    }
}

/// ONNX Runtime has no integer LRN, Sub, Div or Sum: it runs them in float between
/// DequantizeLinear and QuantizeLinear, together with what follows them until the next
/// quantized operator (LRN then a ceil-mode MaxPool; Sub then Div by float initializers then
/// a Sum), which Systole imports as float regions computed the same way. Every node equals
/// ONNX Runtime's, except Softmax, which ONNX Runtime runs as QLinearSoftmax from a table of
/// exponentials: within one output step of Systole's f32 `exp(x - max) / sum`. The
/// QOperator model, whose float regions reach further (the Sum, the pool and the flatten
/// after it), gives ONNX Runtime's output exactly.
#[test]
fn classic_normalizations_and_float_regions_equal_onnx_runtime() {
    agrees("ops_classic", &[("softmax", 1)]);
    let kinds: Vec<String> = node_by_node("ops_classic").into_keys().collect();
    for kind in ["float", "sub", "div", "sigmoid", "softmax"] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} node checked");
    }
    let (equal, worst) = end_to_end("ops_classic", "qdq");
    assert!(equal >= 9 && worst <= 1.0 + 1e-3, "{equal} of 10 equal, {worst} steps");
    assert_eq!(end_to_end("ops_classic", "qop"), (10, 0.0));
}

/// An opset-9 float model as old PyTorch exports write them (ConstantOfShape weights, a
/// Shape chain, Dropout, Pad and Clip attributes) quantized by Systole: ONNX Runtime running
/// the model `systole quantize` writes gives exactly Systole's output, which stays within a
/// few output steps of ONNX Runtime's float output.
#[test]
fn an_opset9_export_quantized_by_systole_runs_as_onnx_runtime_runs_it() {
    let path = models().join("ops_opset9.onnx");
    let model = systole_onnx::read(&path).unwrap();
    assert_eq!(model.opset, 9);
    let (shape, data) = systole_core::npy::read_any::<f32>(&models().join("ops_opset9_calib.npy"), "calibration").unwrap();
    let samples = systole_onnx::ptq::samples_from_batch(&model, &systole_onnx::FTensor { shape, data }).unwrap();
    let net = systole_onnx::import(&systole_onnx::ptq::quantize(&model, &path, &samples).unwrap(), &path).unwrap();
    let x = input(&net, "ops_opset9");
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs.network, std::slice::from_ref(&x)).unwrap();
    assert_eq!(run.outputs, systole_golden::network::run(&net, &[x]).unwrap());
    let HostTensor::F32 { data, shape } = &run.outputs[0] else { panic!("a float output") };
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let ort = systole_core::npy::read::<f32>(&models().join("ops_opset9_systole_out.npy"), shape, "expected").unwrap();
    assert_eq!(bits(data), bits(&ort), "Systole vs ONNX Runtime on Systole's quantized model");
    let float = systole_core::npy::read::<f32>(&models().join("ops_opset9_float_out.npy"), shape, "expected").unwrap();
    let step = net.outputs[0].dequantize.unwrap().scale;
    let worst = data.iter().zip(&float).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 4.0 * step, "worst error {worst}, output step {step}");
}
