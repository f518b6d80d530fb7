//! Sigmoid, HardSigmoid, HardSwish and LeakyRelu on int8: every element of every
//! activation node equals QuantizeLinear(f(DequantizeLinear(x))) computed here in f64 from
//! ONNX's definitions (the oracle), to within one output step (f32 against f64 at a
//! rounding boundary), and exactly at hand-checked points.

use onnx_protobuf::Message;
use std::path::Path;
use systole_core::network::{BinaryFn, HostTensor, Network, Op, Quant};
use systole_onnx::attrs::{dtype, float_attr, node_proto, tensor_proto, value_info};
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder};

/// ONNX's definitions, in f64.
fn reference(op: &str, x: f64) -> f64 {
    let hard_sigmoid = |x: f64, a: f64, b: f64| (a * x + b).clamp(0.0, 1.0);
    match op {
        "sigmoid" => 1.0 / (1.0 + (-x).exp()),
        "hardsigmoid" => hard_sigmoid(x, 0.2, 0.5),
        "hardswish" => x * hard_sigmoid(x, 1.0 / 6.0, 0.5),
        "leakyrelu" => {
            if x >= 0.0 {
                x
            } else {
                0.1 * x
            }
        }
        other => panic!("no reference for {other}"),
    }
}

fn quantize(v: f64, q: Quant) -> i32 {
    ((v / q.scale as f64).round_ties_even() + q.zp as f64).clamp(-128.0, 127.0) as i32
}

/// Checks every Unary node of `net` after a golden run on `inputs`; returns the elements
/// checked.
fn check(net: &Network, inputs: &[HostTensor]) -> usize {
    let x = systole_golden::network::input_values(net, inputs).unwrap();
    let values = systole_golden::network::run_with(net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
    let mut checked = 0;
    for n in &net.nodes {
        let Op::Unary(f) = n.op else { continue };
        let (xq, yq) = (net.values[n.inputs[0]].quant, net.values[n.output].quant);
        for (&a, &y) in values[n.inputs[0]].iter().zip(&values[n.output]) {
            let want = quantize(reference(f.name(), (a as f64 - xq.zp as f64) * xq.scale as f64), yq);
            assert!((y as i32 - want).abs() <= 1, "{}: x = {a} gives {y}, the definition {want}", f.name());
            checked += 1;
        }
    }
    checked
}

#[test]
fn float_models_with_each_activation_match_the_definitions() {
    let mut g = GraphBuilder::new("acts", &[1, 4, 6, 6], 8);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let s = g.node("Sigmoid", "sig", &[&c], vec![], vec![1, 8, 6, 6]);
    let c2 = g.conv(&s, 8, 1, 1, 0, 1, 1.0, true);
    let h = g.node("HardSwish", "hsw", &[&c2], vec![], vec![1, 8, 6, 6]);
    let c3 = g.conv(&h, 8, 1, 1, 0, 1, 1.0, true);
    let hs = g.node("HardSigmoid", "hsig", &[&c3], vec![], vec![1, 8, 6, 6]);
    let c4 = g.conv(&hs, 8, 1, 1, 0, 1, 1.0, true);
    let y = g.node("LeakyRelu", "leaky", &[&c4], vec![float_attr("alpha", 0.1)], vec![1, 8, 6, 6]);
    let mut m = g.finish(&y);
    m.opset_import[0].version = 14;
    let path = Path::new("acts.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let net = onnx::import(&ptq::quantize(&model, path, &ptq::random_samples(&model, 2, 6)).unwrap(), path).unwrap();
    let kinds: Vec<&str> = net.nodes.iter().map(|n| n.op.kind()).filter(|k| !matches!(*k, "conv" | "requantize")).collect();
    assert_eq!(kinds, ["sigmoid", "hardswish", "hardsigmoid", "leakyrelu"]);
    let data: Vec<f32> = (0..144).map(|i| ((i * 53) % 41) as f32 / 10.0 - 2.0).collect();
    assert_eq!(check(&net, &[HostTensor::F32 { shape: vec![1, 4, 6, 6], data }]), 4 * 288);
    // HardSwish exists from opset 14.
    m.opset_import[0].version = 13;
    let e = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap_err();
    assert!(e.to_string().contains("HardSwish"), "{e}");
}

#[test]
fn qlinear_sigmoid_matches_the_definition_on_every_int8_value() {
    // QLinearSigmoid(x; 0.1, 0 -> 1/256, -128), ONNX Runtime's QOperator form, on all 256
    // inputs.
    let mut m = GraphBuilder::new("qsig", &[1, 256], 1).finish("x");
    let graph = m.graph.as_mut().unwrap();
    graph.input[0] =
        value_info("x", dtype::INT8, &[1.into(), 256.into()].map(onnx_protobuf::tensor_shape_proto::dimension::Value::DimValue));
    graph.output.clear();
    graph.output.push(value_info(
        "y",
        dtype::INT8,
        &[1.into(), 256.into()].map(onnx_protobuf::tensor_shape_proto::dimension::Value::DimValue),
    ));
    for (name, t, v) in
        [("xs", dtype::FLOAT, 0.1), ("xz", dtype::INT8, 0.0), ("ys", dtype::FLOAT, 1.0 / 256.0), ("yz", dtype::INT8, -128.0)]
    {
        graph.initializer.push(tensor_proto(name, &[], t, &[v]));
    }
    let mut sig = node_proto("QLinearSigmoid", "sig", &["x", "xs", "xz", "ys", "yz"], "y", vec![]);
    sig.domain = "com.microsoft".into();
    graph.node.push(sig);
    let mut ms = onnx_protobuf::OperatorSetIdProto::new();
    ms.domain = "com.microsoft".into();
    ms.version = 1;
    m.opset_import.push(ms);
    let path = Path::new("qsig.onnx");
    let net = onnx::import(&onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap(), path).unwrap();
    let data: Vec<i8> = (-128..=127).collect();
    let inputs = [HostTensor::I8 { shape: vec![1, 256], data }];
    assert_eq!(check(&net, &inputs), 256);
    let out = systole_golden::network::run(&net, &inputs).unwrap();
    let HostTensor::I8 { data: y, .. } = &out[0] else { panic!("int8 output") };
    // By hand: sigmoid(0) = 0.5 = 128 steps of 1/256, -128 + 128 = 0; sigmoid(-12.8) is
    // 2.8e-6, under half a step: -128; sigmoid(12.7) = 0.999997, 256 steps saturate at 127.
    assert_eq!((y[128], y[0], y[255]), (0, -128, 127));
}

#[test]
fn squeeze_excitation_and_silu_multiply_as_defined() {
    // x -> conv (8 ch) -> SiLU (x * Sigmoid(x)) -> SE: GlobalAveragePool -> 1x1 conv ->
    // Sigmoid -> Mul with the [1, 8, 1, 1] scale broadcast over 6 x 6.
    let mut g = GraphBuilder::new("se", &[1, 4, 6, 6], 12);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let s = g.node("Sigmoid", "sig", &[&c], vec![], vec![1, 8, 6, 6]);
    let silu = g.node("Mul", "silu", &[&c, &s], vec![], vec![1, 8, 6, 6]);
    let gap = g.node("GlobalAveragePool", "gap", &[&silu], vec![], vec![1, 8, 1, 1]);
    let fc = g.conv(&gap, 8, 1, 1, 0, 1, 1.0, true);
    let gate = g.node("Sigmoid", "gate", &[&fc], vec![], vec![1, 8, 1, 1]);
    let y = g.node("Mul", "excite", &[&silu, &gate], vec![], vec![1, 8, 6, 6]);
    let m = g.finish(&y);
    let path = Path::new("se.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let net = onnx::import(&ptq::quantize(&model, path, &ptq::random_samples(&model, 2, 5)).unwrap(), path).unwrap();
    let data: Vec<f32> = (0..144).map(|i| ((i * 43) % 37) as f32 / 9.0 - 2.0).collect();
    let inputs = [HostTensor::F32 { shape: vec![1, 4, 6, 6], data }];
    let x = systole_golden::network::input_values(&net, &inputs).unwrap();
    let values = systole_golden::network::run_with(&net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
    let muls: Vec<_> = net.nodes.iter().filter(|n| n.op == Op::Binary(BinaryFn::Mul)).collect();
    assert_eq!(muls.len(), 2);
    for n in muls {
        let (a, b, y) = (&net.values[n.inputs[0]], &net.values[n.inputs[1]], &net.values[n.output]);
        assert_eq!(y.shape, [1, 8, 6, 6]);
        for i in 0..y.len() {
            // The second operand is either [1, 8, 6, 6] or the [1, 8, 1, 1] gate.
            let j = if b.shape == [1, 8, 1, 1] { i / 36 } else { i };
            let real = (values[n.inputs[0]][i] as f64 - a.quant.zp as f64)
                * a.quant.scale as f64
                * ((values[n.inputs[1]][j] as f64 - b.quant.zp as f64) * b.quant.scale as f64);
            let want = quantize(real, y.quant);
            let got = values[n.output][i] as i32;
            assert!((got - want).abs() <= 1, "element {i}: {got}, the definition {want}");
        }
    }
    // By hand: 0.5 * 0.5 with scales 1/64 and a product scale 1/256: 32 * 32 steps -> 64.
    let q = |scale: f32, zp: i8| Quant { scale, zp };
    assert_eq!(systole_golden::binary_one(BinaryFn::Mul, 32, q(1.0 / 64.0, 0), 32, q(1.0 / 64.0, 0), q(1.0 / 256.0, 0)), 64);
    assert_eq!(systole_golden::binary_one(BinaryFn::Mul, 127, q(0.5, 0), 127, q(0.5, 0), q(0.5, 0)), 127, "saturates");
}

#[test]
fn per_channel_scales_and_biases_from_initializers_apply_as_defined() {
    // conv -> Mul by a [1, 8, 1, 1] initializer -> Add of an [8, 1, 1] initializer -> ReLU:
    // quantization makes each constant an int8 operand (per tensor), and every element is
    // the definition's, computed here from the imported operand.
    let mut g = GraphBuilder::new("affine", &[1, 4, 6, 6], 21);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let scaled = g.node("Mul", "scale", &[&c, "gamma"], vec![], vec![1, 8, 6, 6]);
    let shifted = g.node("Add", "shift", &["beta", &scaled], vec![], vec![1, 8, 6, 6]);
    let y = g.relu(&shifted);
    let mut m = g.finish(&y);
    let graph = m.graph.as_mut().unwrap();
    graph.initializer.push(tensor_proto("gamma", &[1, 8, 1, 1], dtype::FLOAT, &[0.5, 1.0, 1.5, 2.0, -0.5, -1.0, 0.25, 3.0]));
    graph.initializer.push(tensor_proto("beta", &[8, 1, 1], dtype::FLOAT, &[0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8]));
    let path = Path::new("affine.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let net = onnx::import(&ptq::quantize(&model, path, &ptq::random_samples(&model, 2, 7)).unwrap(), path).unwrap();
    let kinds: Vec<&str> = net.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["conv", "mul", "add"], "the ReLU fuses into the Add");
    let data: Vec<f32> = (0..144).map(|i| ((i * 19) % 31) as f32 / 8.0 - 2.0).collect();
    let x = systole_golden::network::input_values(&net, &[HostTensor::F32 { shape: vec![1, 4, 6, 6], data }]).unwrap();
    let values = systole_golden::network::run_with(&net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
    let mut checked = 0;
    for n in &net.nodes {
        let (Op::BinaryConst(_, c) | Op::AddConst(c, _)) = &n.op else { continue };
        let (a, y) = (&net.values[n.inputs[0]], &net.values[n.output]);
        assert_eq!(c.shape.iter().product::<usize>(), 8);
        for (i, (&va, &got)) in values[n.inputs[0]].iter().zip(&values[n.output]).enumerate() {
            let real_a = (va as f64 - a.quant.zp as f64) * a.quant.scale as f64;
            let real_c = (c.data[i / 36] as f64 - c.quant.zp as f64) * c.quant.scale as f64;
            let want = match n.op {
                Op::BinaryConst(..) => quantize(real_a * real_c, y.quant),
                _ => quantize(real_a + real_c, y.quant).max(y.quant.zp as i32),
            };
            let got = got as i32;
            assert!((got - want).abs() <= 1, "{} element {i}: {got}, the definition {want}", n.op.kind());
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 288);
}

#[test]
fn qlinear_mul_by_a_constant_by_hand() {
    // QLinearMul(c, x): c = [2, 4, -2, 0] at scale 0.25 (the constant first), x at 0.5, y at
    // 0.5: y = x * 0.5 * c * 0.25 / 0.5 = x * c / 4; for x = 10: 5, 10, -5, 0.
    let dims = || [1.into(), 4.into()].map(onnx_protobuf::tensor_shape_proto::dimension::Value::DimValue);
    let mut m = GraphBuilder::new("qmul", &[1, 4], 1).finish("x");
    let graph = m.graph.as_mut().unwrap();
    graph.input[0] = value_info("x", dtype::INT8, &dims());
    graph.output.clear();
    graph.output.push(value_info("y", dtype::INT8, &dims()));
    graph.initializer.push(tensor_proto("c", &[4], dtype::INT8, &[2.0, 4.0, -2.0, 0.0]));
    for (name, t, v) in [("cs", dtype::FLOAT, 0.25), ("z", dtype::INT8, 0.0), ("xs", dtype::FLOAT, 0.5), ("ys", dtype::FLOAT, 0.5)] {
        graph.initializer.push(tensor_proto(name, &[], t, &[v]));
    }
    let mut mul = node_proto("QLinearMul", "mul", &["c", "cs", "z", "x", "xs", "z", "ys", "z"], "y", vec![]);
    mul.domain = "com.microsoft".into();
    graph.node.push(mul);
    let mut ms = onnx_protobuf::OperatorSetIdProto::new();
    ms.domain = "com.microsoft".into();
    ms.version = 1;
    m.opset_import.push(ms);
    let path = Path::new("qmul.onnx");
    let net = onnx::import(&onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap(), path).unwrap();
    let out = systole_golden::network::run(&net, &[HostTensor::I8 { shape: vec![1, 4], data: vec![10; 4] }]).unwrap();
    assert_eq!(out[0], HostTensor::I8 { shape: vec![1, 4], data: vec![5, 10, -5, 0] });
}
