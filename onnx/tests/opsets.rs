//! Opsets 7-21: a float model written at opset 9 (Pad's and Clip's attributes, a Dropout
//! with its mask) imports to the same network as the same model at opset 13, which is the
//! oracle; quantizing it writes opset 13 in input form; quantization operators before
//! opset 10 are refused.

use onnx_protobuf::{Message, ModelProto};
use std::path::Path;
use systole_core::network::HostTensor;
use systole_onnx::attrs::{float_attr, ints_attr, node_proto};
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder};

/// Pad -> Conv -> BatchNormalization -> Clip(0, 6) -> GlobalAveragePool/Flatten -> Gemm.
fn model_13() -> ModelProto {
    let mut g = GraphBuilder::new("versions", &[1, 3, 8, 8], 5);
    let p = g.pad("x", [1, 1, 1, 1]);
    let c = g.conv(&p, 8, 3, 1, 0, 1, 2.0, true);
    let b = g.batchnorm(&c);
    let r = g.relu6(&b);
    let f = g.pool_flatten(&r);
    let y = g.linear(&f, 4);
    g.finish(&y)
}

/// The same model in opset 9's forms.
fn model_9() -> ModelProto {
    let mut m = model_13();
    m.opset_import[0].version = 9;
    m.ir_version = 4;
    let graph = m.graph.as_mut().unwrap();
    let constant = |name: &str| graph.initializer.iter().find(|t| t.name == name).cloned().unwrap();
    let values = |t: onnx_protobuf::TensorProto| systole_onnx::attrs::Const::from_proto(&t).unwrap().vals;
    let mut nodes = graph.node.clone();
    for n in nodes.iter_mut() {
        match n.op_type.as_str() {
            "Pad" => {
                let pads: Vec<i64> = values(constant(&n.input[1])).iter().map(|&p| p as i64).collect();
                n.input.truncate(1);
                n.attribute.push(ints_attr("pads", &pads));
                n.attribute.push(float_attr("value", 0.0));
            }
            "Clip" => {
                let (lo, hi) = (values(constant(&n.input[1]))[0], values(constant(&n.input[2]))[0]);
                n.input.truncate(1);
                n.attribute.push(float_attr("min", lo as f32));
                n.attribute.push(float_attr("max", hi as f32));
            }
            _ => {}
        }
    }
    // A Dropout with a mask nothing reads, as opset-9 zoo models have, before the Gemm.
    let fc = nodes.iter().position(|n| n.op_type == "Gemm").unwrap();
    let x = nodes[fc].input[0].clone();
    nodes[fc].input[0] = "dropped".into();
    let mut drop = node_proto("Dropout", "drop", &[&x], "dropped", vec![float_attr("ratio", 0.5)]);
    drop.output.push("mask".into());
    nodes.insert(fc, drop);
    graph.node = nodes;
    m
}

fn run(bytes: &[u8]) -> (Vec<HostTensor>, ModelProto) {
    let path = Path::new("v.onnx");
    let model = onnx::parse(path, bytes).unwrap();
    let samples = ptq::random_samples(&model, 2, 4);
    let quantized = ptq::quantize(&model, path, &samples).unwrap();
    let net = onnx::import(&quantized, path).unwrap();
    let x: Vec<f32> = (0..192).map(|i| ((i * 29) % 17) as f32 / 8.0 - 1.0).collect();
    (systole_golden::network::run(&net, &[HostTensor::F32 { shape: vec![1, 3, 8, 8], data: x }]).unwrap(), quantized.proto)
}

#[test]
fn an_opset_9_model_imports_as_its_opset_13_twin() {
    let (old, written) = run(&model_9().write_to_bytes().unwrap());
    let (new, _) = run(&model_13().write_to_bytes().unwrap());
    assert_eq!(old, new);
    // The quantized model is written at opset 13, Pad and Clip in their input forms, and
    // reads back.
    assert_eq!(written.opset_import[0].version, 13);
    let graph = written.graph.as_ref().unwrap();
    for n in graph.node.iter().filter(|n| n.op_type == "Pad" || n.op_type == "Clip") {
        assert!(n.attribute.iter().all(|a| a.name == "mode"), "{} keeps attributes {:?}", n.op_type, n.attribute);
    }
    let again = onnx::parse(Path::new("w.onnx"), &written.write_to_bytes().unwrap()).unwrap();
    onnx::import(&again, Path::new("w.onnx")).unwrap();
}

#[test]
fn pad_values_and_modes_of_opset_9_are_read() {
    // A Pad of 1.5 (the attribute before opset 11): quantization carries it into the input
    // form, and the importer names it, since an int8 pad must be the zero point (ignoring
    // the attribute would pad with 0 silently).
    let mut m = model_9();
    let graph = m.graph.as_mut().unwrap();
    let pad = graph.node.iter_mut().find(|n| n.op_type == "Pad").unwrap();
    pad.attribute.retain(|a| a.name != "value");
    pad.attribute.push(float_attr("value", 1.5));
    let path = Path::new("v.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let quantized = ptq::quantize(&model, path, &ptq::random_samples(&model, 1, 1)).unwrap();
    let e = onnx::import(&quantized, path).unwrap_err();
    assert!(e.to_string().contains("pads with 1.5"), "{e}");
    // Reflect padding is refused by the float interpreter, not computed as constant.
    let mut m = model_9();
    let graph = m.graph.as_mut().unwrap();
    let pad = graph.node.iter_mut().find(|n| n.op_type == "Pad").unwrap();
    let mut mode = onnx_protobuf::AttributeProto::new();
    mode.name = "mode".into();
    mode.type_ = onnx_protobuf::attribute_proto::AttributeType::STRING.into();
    mode.s = b"reflect".to_vec();
    pad.attribute.push(mode);
    let path = Path::new("r.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let e = ptq::quantize(&model, path, &ptq::random_samples(&model, 1, 1)).unwrap_err();
    assert!(e.to_string().contains("only constant padding"), "{e}");
}
