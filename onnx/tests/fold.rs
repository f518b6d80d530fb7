//! Constant folding (`systole_onnx::fold`): a model written the way PyTorch exports it
//! (weights from `ConstantOfShape`, a reshape target from a `Shape` chain, a `Dropout`, a
//! `Cast`) must import to the same network as the same model written with plain
//! initializers, which is the oracle; and the evaluator's integer semantics by hand.

use onnx_protobuf::{Message, ModelProto};
use std::path::Path;
use systole_core::network::HostTensor;
use systole_onnx::attrs::{dtype, int_attr, ints_attr, node_proto, tensor_proto};
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder, OnnxError};

/// Conv (3x3, 8 channels, every weight 0.05) -> ReLU -> GlobalAveragePool -> reshape to
/// [1, 8] -> [Dropout] -> Gemm. `exported` writes the weights, the target and the dropout as
/// PyTorch does; otherwise as initializers.
fn model(exported: bool) -> ModelProto {
    let mut g = GraphBuilder::new("fold", &[1, 4, 8, 8], 3);
    let conv =
        g.node("Conv", "conv", &["x", "w"], vec![ints_attr("kernel_shape", &[3, 3]), ints_attr("pads", &[1, 1, 1, 1])], vec![1, 8, 8, 8]);
    let relu = g.relu(&conv);
    let gap = g.node("GlobalAveragePool", "gap", &[&relu], vec![], vec![1, 8, 1, 1]);
    let flat = g.node("Reshape", "flat", &[&gap, "target"], vec![], vec![1, 8]);
    let y = g.linear(&flat, 5);
    let mut m = g.finish(&y);
    let graph = m.graph.as_mut().unwrap();
    if !exported {
        graph.initializer.push(tensor_proto("w", &[8, 4, 3, 3], dtype::FLOAT, &[0.05; 288]));
        graph.initializer.push(tensor_proto("target", &[2], dtype::INT64, &[1.0, -1.0]));
        return m;
    }
    let mut value = tensor_proto("", &[1], dtype::FLOAT, &[0.05]);
    value.name.clear();
    let mut weights_of = node_proto("ConstantOfShape", "w_make", &["w_shape"], "w", vec![]);
    let mut attr = onnx_protobuf::AttributeProto::new();
    attr.name = "value".into();
    attr.type_ = onnx_protobuf::attribute_proto::AttributeType::TENSOR.into();
    attr.t = Some(value).into();
    weights_of.attribute.push(attr);
    graph.initializer.push(tensor_proto("w_shape", &[4], dtype::INT64, &[8.0, 4.0, 3.0, 3.0]));
    graph.initializer.push(tensor_proto("zero", &[], dtype::INT64, &[0.0]));
    graph.initializer.push(tensor_proto("minus_one", &[1], dtype::INT64, &[-1.0]));
    let chain = [
        weights_of,
        node_proto("Shape", "shape", &[&gap], "s", vec![]),
        node_proto("Gather", "batch", &["s", "zero"], "n", vec![int_attr("axis", 0)]),
        node_proto("Unsqueeze", "batch_1d", &["n", "axes0"], "n1", vec![]),
        node_proto("Concat", "target_cat", &["n1", "minus_one"], "target_i", vec![int_attr("axis", 0)]),
        node_proto("Cast", "target_cast", &["target_i"], "target", vec![int_attr("to", dtype::INT64 as i64)]),
    ];
    graph.initializer.push(tensor_proto("axes0", &[1], dtype::INT64, &[0.0]));
    graph.node.extend(chain);
    // Dropout between the reshape and the Gemm.
    let fc = graph.node.iter().position(|n| n.op_type == "Gemm").unwrap();
    graph.node[fc].input[0] = "dropped".into();
    graph.node.push(node_proto("Dropout", "drop", &[&flat], "dropped", vec![]));
    // PyTorch lists nodes in its own order; the pass sorts them.
    graph.node.rotate_right(3);
    m
}

fn outputs(bytes: &[u8]) -> Vec<HostTensor> {
    let path = Path::new("fold.onnx");
    let model = onnx::parse(path, bytes).unwrap();
    let samples = ptq::random_samples(&model, 2, 9);
    let net = onnx::import(&ptq::quantize(&model, path, &samples).unwrap(), path).unwrap();
    let x: Vec<f32> = (0..256).map(|i| ((i * 37) % 23) as f32 / 11.0 - 1.0).collect();
    systole_golden::network::run(&net, &[HostTensor::F32 { shape: vec![1, 4, 8, 8], data: x }]).unwrap()
}

#[test]
fn an_exported_model_folds_to_the_plain_one() {
    let (plain, exported) = (model(false).write_to_bytes().unwrap(), model(true).write_to_bytes().unwrap());
    let read = onnx::parse(Path::new("fold.onnx"), &exported).unwrap();
    let ops: Vec<&str> = read.proto.graph.as_ref().unwrap().node.iter().map(|n| n.op_type.as_str()).collect();
    assert_eq!(ops, ["Conv", "Relu", "GlobalAveragePool", "Reshape", "Identity", "Gemm"]);
    assert_eq!(outputs(&exported), outputs(&plain));
}

#[test]
fn a_shape_chain_in_a_quantized_model_without_known_shapes_is_named() {
    // The chain reads an activation whose shape the graph does not state, in a model the
    // float interpreter cannot run (it has a QuantizeLinear): the Shape node stays.
    let mut m = model(true);
    let graph = m.graph.as_mut().unwrap();
    graph.initializer.push(tensor_proto("qs", &[], dtype::FLOAT, &[0.1]));
    graph.initializer.push(tensor_proto("qz", &[], dtype::INT8, &[0.0]));
    let first = graph.node.iter().position(|n| n.op_type == "Conv").unwrap();
    graph.node[first].input[0] = "xd".into();
    graph.node.push(node_proto("QuantizeLinear", "q", &["x", "qs", "qz"], "xq", vec![]));
    graph.node.push(node_proto("DequantizeLinear", "dq", &["xq", "qs", "qz"], "xd", vec![]));
    let e = onnx::parse(Path::new("q.onnx"), &m.write_to_bytes().unwrap()).unwrap_err();
    let OnnxError::Unsupported { node, help, .. } = &e else { panic!("{e:?}") };
    assert_eq!(node.op, "Shape");
    assert!(help.contains("folds Shape only when"), "{help}");
}

/// One node folded from constant inputs, through a model that outputs it from `x`'s Add.
fn folded(
    op: &str,
    inputs: &[(&str, &[usize], i32, &[f64])],
    attributes: Vec<onnx_protobuf::AttributeProto>,
    opset: i64,
) -> (Vec<usize>, i32, Vec<f64>) {
    let mut g = GraphBuilder::new("one", &[1, 4], 1);
    let y = g.add("x", "x");
    let mut m = g.finish(&y);
    m.opset_import[0].version = opset;
    let graph = m.graph.as_mut().unwrap();
    let names: Vec<String> = (0..inputs.len()).map(|i| format!("in{i}")).collect();
    for (name, (_, dims, t, vals)) in names.iter().zip(inputs) {
        if !dims.is_empty() || !vals.is_empty() {
            graph.initializer.push(tensor_proto(name, dims, *t, vals));
        }
    }
    let refs: Vec<&str> = names.iter().zip(inputs).map(|(n, i)| if i.0.is_empty() { "" } else { n.as_str() }).collect();
    graph.node.push(node_proto(op, "under_test", &refs, "c", attributes));
    // Keep the result alive: a Reshape of the output reads it as its target.
    let keep = node_proto("Reshape", "keep", &[&y, "c"], "kept", vec![]);
    graph.node.push(keep);
    let mut proto = m;
    systole_onnx::fold::fold_constants(&mut proto, opset, Path::new("m.onnx")).unwrap();
    let t = proto.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == "c").expect("folded").clone();
    let c = systole_onnx::attrs::Const::from_proto(&t).unwrap();
    (c.dims, c.dtype, c.vals)
}

#[test]
fn the_evaluator_keeps_onnx_integer_semantics() {
    let i64s = dtype::INT64;
    // Integer division truncates toward zero: -7 / 2 = -3, 7 / -2 = -3.
    assert_eq!(folded("Div", &[("a", &[2], i64s, &[-7.0, 7.0]), ("b", &[2], i64s, &[2.0, -2.0])], vec![], 13).2, [-3.0, -3.0]);
    // Cast to an integer truncates.
    assert_eq!(folded("Cast", &[("a", &[2], dtype::FLOAT, &[2.9, -2.9])], vec![int_attr("to", 7)], 13), (vec![2], i64s, vec![2.0, -2.0]));
    // Gather with a negative index, along axis 1 of a 2x3.
    assert_eq!(
        folded(
            "Gather",
            &[("a", &[2, 3], i64s, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), ("i", &[1], i64s, &[-1.0])],
            vec![int_attr("axis", 1)],
            13
        ),
        (vec![2, 1], i64s, vec![3.0, 6.0])
    );
    // Slice backwards with step -2 (ends clamp to "before the start").
    assert_eq!(
        folded(
            "Slice",
            &[
                ("a", &[5], i64s, &[10.0, 11.0, 12.0, 13.0, 14.0]),
                ("s", &[1], i64s, &[-1.0]),
                ("e", &[1], i64s, &[-100.0]),
                ("x", &[1], i64s, &[0.0]),
                ("st", &[1], i64s, &[-2.0])
            ],
            vec![],
            13
        )
        .2,
        [14.0, 12.0, 10.0]
    );
    // Unsqueeze takes its axes from the attribute before opset 13, from input 1 after.
    assert_eq!(folded("Unsqueeze", &[("a", &[2], i64s, &[2.0, 2.0])], vec![ints_attr("axes", &[0])], 11).0, [1, 2]);
    assert_eq!(folded("Unsqueeze", &[("a", &[2], i64s, &[2.0, 2.0]), ("x", &[1], i64s, &[-1.0])], vec![], 13).0, [2, 1]);
}
