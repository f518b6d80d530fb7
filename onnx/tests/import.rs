//! The importer on bad input: every failure is an error that names the file and the node,
//! never a panic, including on randomly mutated model files.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder, OnnxError};

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models").join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// An imported network must compile (or refuse with an error) and run on the golden model.
fn exercise(net: &systole_core::network::Network) {
    let arch = systole_core::ArchConfig { rows: 4, cols: 4, ..Default::default() };
    for n in &net.nodes {
        if let systole_core::network::Op::Layer { layer, weights, bias } = &n.op {
            let data = systole_core::workload::LayerData {
                input: systole_core::Tensor::filled(layer.shape.input_dims(), 0),
                weights: weights.clone(),
                bias: bias.clone(),
            };
            let _ = systole_compiler::compile_layer(&arch, layer, &data);
        }
    }
    let inputs: Vec<_> = net
        .inputs
        .iter()
        .map(|i| {
            let shape = net.values[i.value].shape.clone();
            let len = shape.iter().product();
            if i.float {
                systole_core::network::HostTensor::F32 { shape, data: vec![0.5; len] }
            } else {
                systole_core::network::HostTensor::I8 { shape, data: vec![3; len] }
            }
        })
        .collect();
    systole_golden::network::run(net, &inputs).unwrap();
}

/// Read, quantize when float (one random calibration input), import.
fn load(path: &Path, bytes: &[u8]) -> Result<systole_core::network::Network, OnnxError> {
    let model = onnx::parse(path, bytes)?;
    let model = if ptq::is_float(&model) { ptq::quantize(&model, path, &ptq::random_samples(&model, 1, 1))? } else { model };
    onnx::import(&model, path)
}

fn tiny_float_model(build: impl FnOnce(&mut GraphBuilder) -> String) -> Vec<u8> {
    use onnx_protobuf::Message;
    let mut g = GraphBuilder::new("t", &[1, 4, 8, 8], 1);
    let y = build(&mut g);
    g.finish(&y).write_to_bytes().unwrap()
}

#[test]
fn a_float_model_imported_without_quantization_is_named() {
    let (path, bytes) = fixture("tiny_float.onnx");
    let e = onnx::import(&onnx::parse(&path, &bytes).unwrap(), &path).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("tiny_float.onnx") && text.contains("computes in float"), "{text}");
}

#[test]
fn an_add_of_shapes_that_do_not_broadcast_is_refused_with_the_node() {
    // [1, 4, 4, 4] + [1, 4, 8, 8]: 4 against 8 on two axes.
    let bytes = tiny_float_model(|g| {
        let a = g.conv("x", 4, 1, 1, 0, 1, 2.0, true);
        let p = g.maxpool(&a, 2, 2, 0);
        let b = g.conv("x", 4, 1, 1, 0, 1, 2.0, true);
        g.node("Add", "add", &[&p, &b], vec![], vec![1, 4, 8, 8])
    });
    let e = load(Path::new("m.onnx"), &bytes).unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("m.onnx: node `add") && text.contains("is Add") && text.contains("do not broadcast"), "{text}");
}

/// A BatchNormalization after something other than a Conv (DenseNet's pre-activation
/// blocks) runs as a scale and a shift per channel: the output stays within three output
/// steps of `gamma (x - mean) / sqrt(var + eps) + beta` computed here in f64.
#[test]
fn a_batchnorm_without_a_conv_before_it_runs_as_a_scale_and_shift() {
    use onnx_protobuf::Message;
    let mut g = GraphBuilder::new("t", &[1, 4, 8, 8], 1);
    let r = g.relu("x");
    let y = g.batchnorm(&r);
    let m = g.finish(&y);
    let bytes = m.write_to_bytes().unwrap();
    let net = load(Path::new("m.onnx"), &bytes).unwrap();
    let kinds: Vec<&str> = net.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["requantize", "mul", "add"]);
    let param = |i: usize| {
        let name = &m.graph.node[1].input[i];
        let t = m.graph.initializer.iter().find(|t| &t.name == name).unwrap();
        systole_onnx::attrs::Const::from_proto(t).unwrap().vals
    };
    let (gamma, beta, mean, var) = (param(1), param(2), param(3), param(4));
    let data: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    let out = systole_golden::network::run(&net, &[systole_core::network::HostTensor::F32 { shape: vec![1, 4, 8, 8], data: data.clone() }])
        .unwrap();
    let systole_core::network::HostTensor::F32 { data: y, .. } = &out[0] else { panic!("a float output") };
    let step = net.values[net.outputs[0].value].quant.scale as f64;
    for (i, (&x, &y)) in data.iter().zip(y).enumerate() {
        let c = i / 64;
        let want = gamma[c] * (x.max(0.0) as f64 - mean[c]) / (var[c] + 1e-5).sqrt() + beta[c];
        assert!((y as f64 - want).abs() <= 3.0 * step, "element {i}: {y}, BatchNormalization gives {want}");
    }
}

#[test]
fn asymmetric_weights_are_refused() {
    use onnx_protobuf::Message;
    let (path, bytes) = fixture("tiny_qop.onnx");
    let mut model = onnx::parse(&path, &bytes).unwrap().proto;
    let g = model.graph.as_mut().unwrap();
    let zp = g.initializer.iter_mut().find(|t| t.name == "dw_w_zero_point").unwrap();
    if zp.raw_data.is_empty() {
        zp.int32_data[0] = 3;
    } else {
        zp.raw_data[0] = 3;
    }
    let e = load(&path, &model.write_to_bytes().unwrap()).unwrap_err();
    assert!(e.to_string().contains("node `dw_quant` is QLinearConv") && e.to_string().contains("non-zero zero point"), "{e}");
}

/// The fuzzers' seeds: every operator kind Systole imports, in both ONNX Runtime formats and
/// as a float model, and ONNX Runtime's float regions.
const FUZZED: &[&str] = &[
    "tiny_qop.onnx",
    "tiny_qdq.onnx",
    "tiny_float.onnx",
    "ops_mobile_qop.onnx",
    "ops_shuffle_qdq.onnx",
    "ops_classic_qdq.onnx",
    "ops_classic_qop.onnx",
    "ops_opset9.onnx",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Flipped, dropped and inserted bytes in real quantized and float models: a network or
    /// an error, never a panic.
    #[test]
    fn mutated_models_never_panic(model in 0usize..FUZZED.len(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let (path, mut bytes) = fixture(FUZZED[model]);
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len().max(1));
            match kind {
                0 if !bytes.is_empty() => bytes[i] ^= byte,
                1 if !bytes.is_empty() => { bytes.remove(i); }
                _ => bytes.insert(i.min(bytes.len()), byte),
            }
        }
        if let Ok(net) = load(&path, &bytes) {
            prop_assert!(net.validate().is_ok());
            exercise(&net);
        }
    }
}

/// One structural edit of a decoded model.
#[derive(Debug, Clone)]
enum Edit {
    /// Set attribute `attr` of node `node` to `value` (ints attributes: every element).
    Attr { node: prop::sample::Index, attr: prop::sample::Index, value: i64 },
    /// Drop one input of a node.
    DropInput { node: prop::sample::Index, input: prop::sample::Index },
    /// Point one node input at another tensor of the graph.
    Rewire { node: prop::sample::Index, input: prop::sample::Index, to: prop::sample::Index },
    /// Change one dimension of an initializer (its data stays).
    Dim { tensor: prop::sample::Index, dim: prop::sample::Index, value: i64 },
    /// Change an initializer's element type.
    Dtype { tensor: prop::sample::Index, dtype: i32 },
    /// Replace a node's operator by another supported one.
    Op { node: prop::sample::Index, op: prop::sample::Index },
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        (i(), i(), -3i64..10).prop_map(|(node, attr, value)| Edit::Attr { node, attr, value }),
        (i(), i()).prop_map(|(node, input)| Edit::DropInput { node, input }),
        (i(), i(), i()).prop_map(|(node, input, to)| Edit::Rewire { node, input, to }),
        (i(), i(), -1i64..40).prop_map(|(tensor, dim, value)| Edit::Dim { tensor, dim, value }),
        (i(), 0i32..12).prop_map(|(tensor, dtype)| Edit::Dtype { tensor, dtype }),
        (i(), i()).prop_map(|(node, op)| Edit::Op { node, op }),
    ]
}

fn apply(model: &mut onnx_protobuf::ModelProto, e: &Edit) {
    let g = model.graph.as_mut().unwrap();
    let names: Vec<String> = g.node.iter().flat_map(|n| n.output.clone()).chain(g.initializer.iter().map(|t| t.name.clone())).collect();
    let ops: Vec<&str> = onnx::supported().into_iter().flat_map(|(_, ops)| ops).chain(onnx::fold::FOLDED.iter().copied()).collect();
    match e {
        Edit::Attr { node, attr, value } => {
            let n = node.get_mut(&mut g.node);
            if !n.attribute.is_empty() {
                let a = attr.get_mut(&mut n.attribute);
                a.i = *value;
                a.ints.iter_mut().for_each(|v| *v = *value);
            }
        }
        Edit::DropInput { node, input } => {
            let n = node.get_mut(&mut g.node);
            if !n.input.is_empty() {
                n.input.remove(input.index(n.input.len()));
            }
        }
        Edit::Rewire { node, input, to } => {
            let n = node.get_mut(&mut g.node);
            if !n.input.is_empty() {
                *input.get_mut(&mut n.input) = to.get(&names).clone();
            }
        }
        Edit::Dim { tensor, dim, value } => {
            if !g.initializer.is_empty() {
                let t = tensor.get_mut(&mut g.initializer);
                if !t.dims.is_empty() {
                    *dim.get_mut(&mut t.dims) = *value;
                }
            }
        }
        Edit::Dtype { tensor, dtype } => {
            if !g.initializer.is_empty() {
                tensor.get_mut(&mut g.initializer).data_type = *dtype;
            }
        }
        Edit::Op { node, op } => {
            let n = node.get_mut(&mut g.node);
            n.op_type = op.get(&ops).to_string();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Structural edits that keep the file decodable (attributes, inputs, shapes, types,
    /// operators) reach the importer's checks: a network or an error, never a panic.
    #[test]
    fn edited_models_never_panic(model in 0usize..FUZZED.len(), edits in proptest::collection::vec(edit(), 1..4)) {
        use onnx_protobuf::Message;
        let (path, bytes) = fixture(FUZZED[model]);
        let mut proto = onnx::parse(&path, &bytes).unwrap().proto;
        for e in &edits {
            apply(&mut proto, e);
        }
        if let Ok(net) = load(&path, &proto.write_to_bytes().unwrap()) {
            prop_assert!(net.validate().is_ok());
            exercise(&net);
        }
    }
}

fn golden_output(net: &systole_core::network::Network) -> Vec<systole_core::network::HostTensor> {
    let shape = net.values[net.inputs[0].value].shape.clone();
    let data = (0..shape.iter().product::<usize>()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
    systole_golden::network::run(net, &[systole_core::network::HostTensor::F32 { shape, data }]).unwrap()
}

/// An explicit zero Pad before a convolution (as TensorFlow exports emit) becomes the
/// convolution's own padding: no host Pad remains, and the result equals the same network
/// written with the convolution's padding attribute.
#[test]
fn a_zero_pad_before_a_conv_folds_into_it() {
    let explicit = tiny_float_model(|g| {
        let p = g.pad("x", [1, 1, 1, 1]);
        let c = g.conv(&p, 4, 3, 1, 0, 1, 2.0, true);
        g.relu(&c)
    });
    let attribute = tiny_float_model(|g| {
        let c = g.conv("x", 4, 3, 1, 1, 1, 2.0, true);
        g.relu(&c)
    });
    let a = load(Path::new("a.onnx"), &explicit).unwrap();
    let b = load(Path::new("b.onnx"), &attribute).unwrap();
    assert_eq!(a.nodes.len(), 1, "{:?}", a.nodes.iter().map(|n| n.op.kind()).collect::<Vec<_>>());
    assert!(matches!(&a.nodes[0].op, systole_core::network::Op::Layer { layer, .. } if layer.shape.pad == [1; 4] && layer.shape.h == 8));
    assert_eq!(golden_output(&a), golden_output(&b));
    // TensorFlow's SAME padding for a stride-2 3x3 conv pads only bottom and right.
    let same = tiny_float_model(|g| {
        let p = g.pad("x", [0, 0, 1, 1]);
        g.conv(&p, 4, 3, 2, 0, 1, 1.0, true)
    });
    let s = load(Path::new("s.onnx"), &same).unwrap();
    assert!(
        matches!(&s.nodes[..], [n] if matches!(&n.op, systole_core::network::Op::Layer { layer, .. } if layer.shape.pad == [0, 0, 1, 1] && layer.shape.p() == 4))
    );
}
