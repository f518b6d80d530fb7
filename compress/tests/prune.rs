//! `systole_compress::prune`: pruning patterns checked on the written model, and the accuracy proxy
//! against a hand computation.

use protobuf::Message;
use std::path::Path;
use systole_compress::prune::{compress, Policy, Pruning};
use systole_onnx::attrs::{dtype, tensor_proto, Const};
use systole_onnx::float::FTensor;
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder};

fn model(proto: &onnx_protobuf::ModelProto) -> onnx::OnnxModel {
    onnx::parse(Path::new("test.onnx"), &proto.write_to_bytes().unwrap()).unwrap()
}

/// One 1x1 conv, 4 input channels to 1 output, weights [0.5, -1, 0.25, 2], input
/// [1, 2, 3, 4]: y = 0.5 - 2 + 0.75 + 8 = 7.25. 2:4 keeps -1 and 2: y' = 6. SQNR =
/// 10 log10(7.25^2 / 1.25^2) = 15.27 dB.
#[test]
fn sqnr_of_a_hand_computed_layer() {
    let mut g = GraphBuilder::new("one", &[1, 4, 1, 1], 1);
    let y = g.conv("x", 1, 1, 1, 0, 1, 1.0, false);
    let mut proto = g.finish(&y);
    let graph = proto.graph.as_mut().unwrap();
    let w = graph.node[0].input[1].clone();
    let t = graph.initializer.iter_mut().find(|t| t.name == w).unwrap();
    *t = tensor_proto(&w, &[1, 4, 1, 1], dtype::FLOAT, &[0.5, -1.0, 0.25, 2.0]);
    let m = model(&proto);
    let sample = vec![("x".to_string(), FTensor { shape: vec![1, 4, 1, 1], data: vec![1.0, 2.0, 3.0, 4.0] })];
    let policy = Policy { default: Pruning::NofM { n: 2, m: 4 }, ..Policy::default() };
    let (pruned, report) = compress(&m, Path::new("one.onnx"), &policy, &[sample]).unwrap();
    let expected = 20.0 * (7.25f64 / 1.25).log10();
    assert!((report.outputs[0].1 - expected).abs() < 1e-4, "{report:?}");
    assert!((report.layers[0].sqnr_db - expected).abs() < 1e-4);
    assert_eq!((report.layers[0].weights, report.layers[0].zeros), (4, 2));
    let written =
        Const::from_proto(&pruned.proto.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == w).unwrap().clone()).unwrap();
    assert_eq!(written.vals, vec![0.0, -1.0, 0.0, 2.0]);
}

/// MobileNetV2 (32x32) under 2:4: the written weights hold at most 2 nonzeros in every
/// group of 4 input channels of one output channel and tap (checked here, independently
/// of the pruner), the report's zero counts are the written model's, depthwise layers stay
/// dense, and the pruned model quantizes and imports.
#[test]
fn two_of_four_holds_in_the_written_model() {
    let m = model(&zoo_model());
    let samples = ptq::random_samples(&m, 1, 3);
    let policy = Policy { default: Pruning::NofM { n: 2, m: 4 }, ..Policy::default() };
    let (pruned, report) = compress(&m, Path::new("mbv2.onnx"), &policy, &samples).unwrap();
    let graph = pruned.proto.graph.as_ref().unwrap();
    for l in &report.layers {
        let node = graph.node.iter().find(|n| n.name == l.name).unwrap();
        let t = graph.initializer.iter().find(|t| t.name == node.input[1]).unwrap();
        let c = Const::from_proto(t).unwrap();
        assert_eq!(c.vals.iter().filter(|&&v| v == 0.0).count(), l.zeros, "{}", l.name);
        let (k, cin) = (c.dims[0], c.dims[1]);
        let taps: usize = c.dims[2..].iter().product::<usize>().max(1);
        for kk in 0..k {
            for tap in 0..taps {
                for g0 in (0..cin).step_by(4) {
                    let nonzero = (g0..(g0 + 4).min(cin)).filter(|&ci| c.vals[(kk * cin + ci) * taps + tap] != 0.0).count();
                    assert!(nonzero <= 2, "{}: k {kk} tap {tap} channels {g0}..: {nonzero} nonzeros", l.name);
                }
            }
        }
        if cin == 1 {
            assert_eq!(l.zeros, 0, "{} is depthwise: N:M leaves it dense", l.name);
        }
        assert!(l.sqnr_db.is_finite() || l.zeros == 0, "{}", l.name);
    }
    let q = ptq::quantize(&pruned, Path::new("mbv2.onnx"), &samples).unwrap();
    onnx::import(&q, Path::new("mbv2_q.onnx")).unwrap();
}

#[test]
fn a_policy_naming_an_unknown_layer_lists_the_layers() {
    let m = model(&zoo_model());
    let policy = Policy::from_toml(Path::new("p.toml"), "[layers.\"nope\"]\nprune = \"2:4\"\n").unwrap();
    let e = compress(&m, Path::new("mbv2.onnx"), &policy, &ptq::random_samples(&m, 1, 3)).unwrap_err();
    let text = format!("{e} {}", miette::Diagnostic::help(&e).map(|h| h.to_string()).unwrap_or_default());
    assert!(text.contains("`nope`") && text.contains("conv"), "{text}");
}

fn zoo_model() -> onnx_protobuf::ModelProto {
    let bytes = systole_onnx::zoo::build("mobilenetv2", 32, 1).unwrap();
    onnx_protobuf::ModelProto::parse_from_bytes(&bytes).unwrap()
}

/// Channel pruning by hand: conv 2 -> 4 (1x1), Relu, conv 4 -> 1. Filter L1 norms 1, 0.1,
/// 4, 0.2: `channels:0.5` removes filters 1 and 3, and the second conv's input channels 1
/// and 3. With x = [1, 3]: the first conv gives [1, 0.3, 8, -0.6], of which [1, 8] remain
/// (SQNR 10 log10(65.45 / 0.45) = 21.63 dB, the removed channels counted as zeros); the
/// output is 9.3 before and 9 after (20 log10(9.3 / 0.3) = 29.83 dB).
#[test]
fn channel_pruning_by_hand() {
    let mut g = GraphBuilder::new("two", &[1, 2, 1, 1], 1);
    let c1 = g.conv("x", 4, 1, 1, 0, 1, 1.0, false);
    let r = g.relu(&c1);
    let c2 = g.conv(&r, 1, 1, 1, 0, 1, 1.0, false);
    let mut proto = g.finish(&c2);
    let graph = proto.graph.as_mut().unwrap();
    let (w1, w2) = (graph.node[0].input[1].clone(), graph.node[2].input[1].clone());
    for t in graph.initializer.iter_mut() {
        if t.name == w1 {
            *t = tensor_proto(&w1, &[4, 2, 1, 1], dtype::FLOAT, &[1.0, 0.0, 0.0, 0.1, 2.0, 2.0, 0.0, -0.2]);
        } else if t.name == w2 {
            *t = tensor_proto(&w2, &[1, 4, 1, 1], dtype::FLOAT, &[1.0; 4]);
        }
    }
    let m = model(&proto);
    let sample = vec![("x".to_string(), FTensor { shape: vec![1, 2, 1, 1], data: vec![1.0, 3.0] })];
    let first = m.proto.graph.as_ref().unwrap().node[0].name.clone();
    let policy = Policy::from_toml(Path::new("p.toml"), &format!("[layers.\"{first}\"]\nprune = \"channels:0.5\"\n")).unwrap();
    let (pruned, report) = compress(&m, Path::new("two.onnx"), &policy, &[sample]).unwrap();
    let weights =
        |name: &str| Const::from_proto(pruned.proto.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == name).unwrap()).unwrap();
    assert_eq!((weights(&w1).dims, weights(&w1).vals), (vec![2, 2, 1, 1], vec![1.0, 0.0, 2.0, 2.0]));
    assert_eq!(weights(&w2).dims, vec![1, 2, 1, 1]);
    assert_eq!((report.layers[0].weights, report.layers[0].removed, report.layers[1].weights, report.layers[1].removed), (4, 4, 2, 2));
    assert!((report.layers[0].sqnr_db - 10.0 * (65.45f64 / 0.45).log10()).abs() < 1e-3, "{report:?}");
    assert!((report.outputs[0].1 - 20.0 * (9.3f64 / 0.3).log10()).abs() < 1e-3, "{report:?}");
}

/// MobileNetV2 (32x32) with channels:0.25 by default: every expand conv (and the stem)
/// loses a quarter of its filters, its depthwise conv and the projection follow, layers
/// whose channels reach an Add or the pooling stay whole, and the result quantizes, imports
/// and runs. Naming a layer that cannot be channel-pruned is an error that says why.
#[test]
fn channel_pruning_shrinks_mobilenetv2() {
    let m = model(&zoo_model());
    let samples = ptq::random_samples(&m, 1, 3);
    let policy = Policy { default: "channels:0.25".parse().unwrap(), ..Policy::default() };
    let (pruned, report) = compress(&m, Path::new("mbv2.onnx"), &policy, &samples).unwrap();
    let graph = pruned.proto.graph.as_ref().unwrap();
    let narrowed: Vec<_> = report.layers.iter().filter(|l| l.pruning.starts_with("channels") && l.removed > 0).collect();
    assert!(narrowed.len() >= 16, "{} layers narrowed", narrowed.len());
    for l in &narrowed {
        let node = graph.node.iter().find(|n| n.name == l.name).unwrap();
        let w = Const::from_proto(graph.initializer.iter().find(|t| t.name == node.input[1]).unwrap()).unwrap();
        let original = m.proto.graph.as_ref().unwrap().initializer.iter().find(|t| t.name == node.input[1]).unwrap().dims[0] as usize;
        assert_eq!(w.dims[0], original - (original as f64 * 0.25).round() as usize, "{}", l.name);
    }
    assert!(report.layers.iter().any(|l| l.pruning == "none" && l.op == "Conv"), "layers feeding Adds stay whole");
    assert!(report.outputs[0].1.is_finite());
    let q = ptq::quantize(&pruned, Path::new("mbv2.onnx"), &samples).unwrap();
    onnx::import(&q, Path::new("mbv2_q.onnx")).unwrap();
    let last_conv = report.layers.iter().rev().find(|l| l.op == "Conv").unwrap().name.clone();
    let policy = Policy::from_toml(Path::new("p.toml"), &format!("[layers.\"{last_conv}\"]\nprune = \"channels:0.5\"\n")).unwrap();
    let e = compress(&m, Path::new("mbv2.onnx"), &policy, &samples).unwrap_err();
    assert!(e.to_string().contains(&last_conv) && e.to_string().contains("cannot be pruned"), "{e}");
}

/// int4 input activations by hand: conv `a` (1x1, weight 1) -> Relu -> conv `b` (1x1,
/// weight 1) on x = [0, 1.2, 3, 7.5]. `b`'s input calibrates to 0..7.5: int4 scale 7.5 / 15
/// = 0.5, zero point -8, so 1.2 becomes 1.0 and the rest are exact; the output's SQNR is
/// 10 log10((1.2^2 + 3^2 + 7.5^2) / 0.2^2) = 32.22 dB. `a` reads the graph input and stays
/// int8. The written model quantizes that tensor with an INT4 zero point, and the importer
/// turns it into `a`'s saturation to int4 and `b`'s int4 inputs.
#[test]
fn int4_activations_by_hand() {
    let mut g = GraphBuilder::new("two", &[1, 1, 1, 4], 1);
    let a = g.conv("x", 1, 1, 1, 0, 1, 1.0, false);
    let t = g.relu(&a);
    let b = g.conv(&t, 1, 1, 1, 0, 1, 1.0, false);
    let mut proto = g.finish(&b);
    let graph = proto.graph.as_mut().unwrap();
    let names: Vec<String> = graph.node.iter().filter(|n| n.op_type == "Conv").map(|n| n.input[1].clone()).collect();
    for w in &names {
        let init = graph.initializer.iter_mut().find(|t| &t.name == w).unwrap();
        *init = tensor_proto(w, &[1, 1, 1, 1], dtype::FLOAT, &[1.0]);
    }
    let m = model(&proto);
    let sample = vec![("x".to_string(), FTensor { shape: vec![1, 1, 1, 4], data: vec![0.0, 1.2, 3.0, 7.5] })];
    let policy = Policy::from_toml(Path::new("p.toml"), "[default]\nact_bits = 4\n").unwrap();
    let (pruned, report) = compress(&m, Path::new("two.onnx"), &policy, std::slice::from_ref(&sample)).unwrap();
    let expected = 10.0 * ((1.44 + 9.0 + 56.25) / 0.04f64).log10();
    assert!((report.outputs[0].1 - expected).abs() < 1e-3, "{report:?}");
    assert_eq!(report.layers.iter().map(|l| l.act_bits).collect::<Vec<_>>(), vec![8, 4]);
    assert_eq!(report.layers[0].sqnr_db, f64::INFINITY);

    // The search's sensitivity of int4 inputs alone: the same noise, on `b` only.
    let sens = systole_compress::prune::sensitivity(&m, Path::new("two.onnx"), &[(Pruning::None, None, 4)], std::slice::from_ref(&sample))
        .unwrap();
    assert_eq!(sens.int4_inputs, vec![false, true]);
    assert_eq!(sens.ratio[0][0], 0.0);
    assert!((sens.ratio[1][0] - 0.04 / 66.69).abs() < 1e-6, "{sens:?}");

    let wants = |name: &str| report.layers.iter().any(|l| l.name == name && l.act_bits == 4);
    let q = ptq::quantize_with_bits(&pruned, Path::new("two.onnx"), &[sample], &|_| 8, &wants).unwrap();
    let zp = q.proto.graph.as_ref().unwrap().initializer.iter().find(|z| z.name == format!("{t}__zp")).unwrap();
    assert_eq!((zp.data_type, Const::from_proto(zp).unwrap().vals), (dtype::INT4, vec![-8.0]));
    let net = onnx::import(&q, Path::new("two_q.onnx")).unwrap();
    let layers: Vec<&systole_core::layer::Layer> = net
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            systole_core::network::Op::Layer { layer, .. } => Some(&**layer),
            _ => None,
        })
        .collect();
    assert_eq!(layers.iter().map(|l| (l.act_bits, l.output_bits)).collect::<Vec<_>>(), vec![(8, 4), (4, 8)]);
    assert_eq!((layers[1].quant.x_scale, layers[1].quant.x_zp, layers[0].clamp_bounds()), (0.5, -8, (-8, 7)));
}
