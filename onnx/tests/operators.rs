//! The operators of the mobile and classic networks beyond conv and GEMM, each imported from
//! a float model (Systole's post-training quantization) and run by golden: every element of
//! every such node is checked against a reference written here from ONNX's definitions (in
//! f64 on the dequantized inputs, within one output step where the network computes in f32;
//! exactly for the operators that only move bytes).

use onnx_protobuf::{Message, ModelProto};
use std::path::Path;
use systole_core::network::{HostTensor, Network, Node, Op, Quant, SelectFrom};
use systole_onnx::attrs::{dtype, float_attr, floats_attr, int_attr, ints_attr, node_proto, string_attr, Window};
use systole_onnx::{self as onnx, ptq, zoo::GraphBuilder};

/// `m` quantized by Systole and imported, with every value of a golden run on a seeded
/// input of `shape`.
fn quantize_and_run(m: &ModelProto, shape: &[usize], seed: u64) -> (Network, Vec<Vec<i8>>) {
    let path = Path::new("ops.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let net = onnx::import(&ptq::quantize(&model, path, &ptq::random_samples(&model, 2, seed)).unwrap(), path).unwrap();
    let count: usize = shape.iter().product();
    let data: Vec<f32> = (0..count).map(|i| ((i * 53 + seed as usize) % 41) as f32 / 10.0 - 2.0).collect();
    let x = systole_golden::network::input_values(&net, &[HostTensor::F32 { shape: shape.to_vec(), data }]).unwrap();
    let values = systole_golden::network::run_with(&net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).unwrap();
    (net, values)
}

fn real(v: i8, q: Quant) -> f64 {
    (v as f64 - q.zp as f64) * q.scale as f64
}

fn quantize(v: f64, q: Quant) -> i32 {
    ((v / q.scale as f64).round_ties_even() + q.zp as f64).clamp(-128.0, 127.0) as i32
}

/// Row-major multi-index of element `i` of a tensor of `shape`.
fn multi_index(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

fn flat_index(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |a, (&i, &d)| a * d + i)
}

/// The element of a tensor of `shape` that numpy broadcasting pairs with output position
/// `out_idx`.
fn broadcast_at(out_idx: &[usize], shape: &[usize]) -> usize {
    let lead = out_idx.len() - shape.len();
    let idx: Vec<usize> = shape.iter().enumerate().map(|(d, &s)| if s == 1 { 0 } else { out_idx[lead + d] }).collect();
    flat_index(&idx, shape)
}

/// Asserts that every element of `n`'s output is within `tolerance` steps of `want(i)`.
fn expect(net: &Network, values: &[Vec<i8>], n: &Node, tolerance: i32, want: impl Fn(usize) -> i32) -> usize {
    let y = &values[n.output];
    for (i, &v) in y.iter().enumerate() {
        let w = want(i);
        assert!((v as i32 - w).abs() <= tolerance, "{} `{}` element {i}: {v}, the definition {w}", n.op.kind(), n.name);
    }
    assert_eq!(y.len(), net.values[n.output].shape.iter().product::<usize>());
    y.len()
}

/// Pool output size by ONNX's formula: floor, or ceil without a window that starts in the
/// end padding.
fn pooled(len: usize, pad: (usize, usize), kernel: usize, stride: usize, dilation: usize, ceil: bool) -> usize {
    let room = len + pad.0 + pad.1 - (dilation * (kernel - 1) + 1);
    let mut out = if ceil { room.div_ceil(stride) } else { room / stride } + 1;
    if ceil && (out - 1) * stride >= len + pad.0 {
        out -= 1;
    }
    out
}

#[test]
fn pools_with_ceil_mode_and_dilations_take_the_defined_windows() {
    // 8x8 -> MaxPool 2x2 dilated 2 -> 6x6 -> MaxPool 3x3 / 2, ceil (3x3; floor gives 2x2)
    // -> AveragePool 2x2 / 2, ceil, count_include_pad 0 (2x2; the last windows hold one
    // row or column).
    let mut g = GraphBuilder::new("pools", &[1, 3, 8, 8], 3);
    let c = g.conv("x", 4, 3, 1, 1, 1, 2.0, true);
    let r = g.relu(&c);
    let k = |v: i64| ints_attr("kernel_shape", &[v, v]);
    let s = |v: i64| ints_attr("strides", &[v, v]);
    let d = g.node("MaxPool", "dilated", &[&r], vec![k(2), ints_attr("dilations", &[2, 2])], vec![1, 4, 6, 6]);
    let m = g.node("MaxPool", "ceil", &[&d], vec![k(3), s(2), int_attr("ceil_mode", 1)], vec![1, 4, 3, 3]);
    let a = g.node("AveragePool", "avg", &[&m], vec![k(2), s(2), int_attr("ceil_mode", 1)], vec![1, 4, 2, 2]);
    let (net, values) = quantize_and_run(&g.finish(&a), &[1, 3, 8, 8], 4);
    let mut checked = 0;
    for n in &net.nodes {
        let (kernel, stride, dilation, max) = match &n.op {
            Op::MaxPool(p) if p.dilation == [2, 2] => (2, 1, 2, true),
            Op::MaxPool(_) => (3, 2, 1, true),
            Op::AvgPool(_) => (2, 2, 1, false),
            _ => continue,
        };
        let (xv, yv) = (&net.values[n.inputs[0]], &net.values[n.output]);
        let [_, ch, h, w] = xv.shape[..] else { panic!("NCHW") };
        let out = pooled(h, (0, 0), kernel, stride, dilation, dilation == 1);
        assert_eq!(yv.shape, [1, ch, out, pooled(w, (0, 0), kernel, stride, dilation, dilation == 1)], "{}", n.name);
        let x = &values[n.inputs[0]];
        checked += expect(&net, &values, n, if max { 0 } else { 1 }, |i| {
            let [_, c, oy, ox] = multi_index(i, &yv.shape)[..] else { unreachable!() };
            let taps: Vec<i8> = (0..kernel)
                .flat_map(|r| (0..kernel).map(move |s| (oy * stride + r * dilation, ox * stride + s * dilation)))
                .filter(|&(y, xx)| y < h && xx < w)
                .map(|(y, xx)| x[(c * h + y) * w + xx])
                .collect();
            if max {
                *taps.iter().max().unwrap() as i32
            } else {
                let mean = taps.iter().map(|&t| real(t, xv.quant)).sum::<f64>() / taps.len() as f64;
                quantize(mean, yv.quant)
            }
        });
    }
    assert_eq!(checked, 4 * (36 + 9 + 4));

    // A 1x1 window with stride 2 on 6: ceil gives 4 windows, the last starting past the
    // input, which ONNX drops.
    let node = node_proto("MaxPool", "p", &["x"], "y", vec![k(1), s(2), int_attr("ceil_mode", 1)]);
    let pool = Window::read(&node, None, [6, 6]).unwrap().pool(&node, [6, 6]).unwrap();
    assert_eq!(pool.out_hw(6, 6), [3, 3]);
    // count_include_pad = 1 with ceil_mode: the padding counts, the ceiling's overhang does
    // not. ONNX Runtime 1.32's AveragePool (3x3 / 2, pads 1, on a 6x6 of ones) gives
    // [[4/9, 2/3, 2/3, 1/3], [2/3, 1, 1, 1/2], [2/3, 1, 1, 1/2], [1/3, 1/2, 1/2, 1/4]];
    // with an output scale of 1/9 that is 9 times each, rounded half to even.
    let attrs = vec![k(3), s(2), ints_attr("pads", &[1; 4]), int_attr("ceil_mode", 1), int_attr("count_include_pad", 1)];
    let node = node_proto("AveragePool", "p", &["x"], "y", attrs);
    let pool = Window::read(&node, None, [6, 6]).unwrap().pool(&node, [6, 6]).unwrap();
    let ones = systole_core::Tensor::from_vec([1, 6, 6, 1], vec![1; 36]);
    let y = systole_golden::avg_pool(&ones, &pool, 1.0, 0, 1.0 / 9.0, 0);
    let ort = [[4.0, 6.0, 6.0, 3.0], [6.0, 9.0, 9.0, 4.5], [6.0, 9.0, 9.0, 4.5], [3.0, 4.5, 4.5, 2.25]];
    let want: Vec<i8> = ort.iter().flatten().map(|v: &f64| v.round_ties_even() as i8).collect();
    assert_eq!(y.data, want);
}

#[test]
fn sub_div_and_sum_compute_as_defined() {
    // c1 - c2; (c1 - c2) / [per-channel constant]; 1 - that (a constant first); Sum of
    // three (a host Sum) and of two (an Add); and a Div by an activation (a sigmoid).
    let mut g = GraphBuilder::new("arith", &[1, 4, 5, 5], 9);
    let c1 = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let c2 = g.conv("x", 8, 1, 1, 0, 1, 1.0, true);
    let shape = vec![1, 8, 5, 5];
    let sub = g.node("Sub", "sub", &[&c1, &c2], vec![], shape.clone());
    let scale = g.constant("scale", &[1, 8, 1, 1], dtype::FLOAT, &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]);
    let div = g.node("Div", "div", &[&sub, &scale], vec![], shape.clone());
    let one = g.constant("one", &[], dtype::FLOAT, &[1.0]);
    let rsub = g.node("Sub", "rsub", &[&one, &div], vec![], shape.clone());
    let sum3 = g.node("Sum", "sum3", &[&c1, &c2, &rsub], vec![], shape.clone());
    let sum2 = g.node("Sum", "sum2", &[&sum3, &c1], vec![], shape.clone());
    let sig = g.node("Sigmoid", "sig", &[&c2], vec![], shape.clone());
    let y = g.node("Div", "divact", &[&sum2, &sig], vec![], shape);
    let (net, values) = quantize_and_run(&g.finish(&y), &[1, 4, 5, 5], 2);
    let kinds: Vec<&str> = net.nodes.iter().map(|n| n.op.kind()).filter(|k| !matches!(*k, "conv" | "sigmoid" | "reshape")).collect();
    assert_eq!(kinds, ["sub", "div", "sub", "sum", "add", "div"]);
    let mut checked = 0;
    for n in &net.nodes {
        let yv = &net.values[n.output];
        let operand = |k: usize, i: usize| {
            let v = &net.values[n.inputs[k]];
            real(values[n.inputs[k]][broadcast_at(&multi_index(i, &yv.shape), &v.shape)], v.quant)
        };
        let constant = |i: usize| match &n.op {
            Op::BinaryConst(_, c) => real(c.data[broadcast_at(&multi_index(i, &yv.shape), &c.shape)], c.quant),
            _ => unreachable!(),
        };
        let want: Box<dyn Fn(usize) -> f64> = match (&n.op, n.op.kind()) {
            (Op::Binary(_), "sub") => Box::new(|i| operand(0, i) - operand(1, i)),
            (Op::Binary(_), "div") => Box::new(|i| operand(0, i) / operand(1, i)),
            (Op::BinaryConst(_, c), "div") if !c.first => Box::new(|i| operand(0, i) / constant(i)),
            (Op::BinaryConst(_, c), "sub") if c.first => Box::new(|i| constant(i) - operand(0, i)),
            (Op::Sum | Op::Add(_), _) => Box::new(|i| (0..n.inputs.len()).map(|k| operand(k, i)).sum()),
            (Op::BinaryConst(..), k) => panic!("unexpected constant {k}"),
            _ => continue,
        };
        checked += expect(&net, &values, n, 1, |i| quantize(want(i), yv.quant));
    }
    assert_eq!(checked, 6 * 200);
}

#[test]
fn softmax_and_lrn_normalize_as_defined() {
    // conv -> LRN (size 3, a large alpha so that it matters) -> pool -> FC -> Softmax.
    let mut g = GraphBuilder::new("norm", &[1, 4, 6, 6], 5);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let lrn_attrs = vec![int_attr("size", 3), float_attr("alpha", 0.5), float_attr("beta", 0.75), float_attr("bias", 2.0)];
    let l = g.node("LRN", "lrn", &[&c], lrn_attrs, vec![1, 8, 6, 6]);
    let p = g.pool_flatten(&l);
    let fc = g.linear(&p, 10);
    let y = g.node("Softmax", "softmax", &[&fc], vec![], vec![1, 10]);
    let mut m = g.finish(&y);
    let (net, values) = quantize_and_run(&m, &[1, 4, 6, 6], 8);
    let mut checked = 0;
    for n in &net.nodes {
        let (xv, yv) = (&net.values[n.inputs[0]], &net.values[n.output]);
        let x: Vec<f64> = values[n.inputs[0]].iter().map(|&v| real(v, xv.quant)).collect();
        let want: Vec<f64> = match n.op {
            Op::Lrn(_) => (0..x.len())
                .map(|i| {
                    // Channels c-1..=c+1 at the same position, clipped to 0..8.
                    let (ch, at) = ((i / 36) % 8, i % 36);
                    let sum: f64 = (ch.saturating_sub(1)..(ch + 2).min(8)).map(|k| x[k * 36 + at].powi(2)).sum();
                    x[i] / (2.0 + 0.5 / 3.0 * sum).powf(0.75)
                })
                .collect(),
            Op::Softmax { .. } => {
                let max = x.iter().cloned().fold(f64::MIN, f64::max);
                let total: f64 = x.iter().map(|v| (v - max).exp()).sum();
                x.iter().map(|v| (v - max).exp() / total).collect()
            }
            _ => continue,
        };
        checked += expect(&net, &values, n, 1, |i| quantize(want[i], yv.quant));
    }
    assert_eq!(checked, 288 + 10);

    // At opset 11 Softmax normalizes the axes from 1 on together: on [1, 10] the same;
    // on a 4-D tensor PTQ (which writes opset 13) refuses, naming the fix.
    m.opset_import[0].version = 11;
    let (net11, _) = quantize_and_run(&m, &[1, 4, 6, 6], 8);
    assert!(net11.nodes.iter().any(|n| matches!(n.op, Op::Softmax { axis: 1, flat: false })));
    let mut g = GraphBuilder::new("norm4", &[1, 4, 3, 3], 5);
    let c = g.conv("x", 4, 1, 1, 0, 1, 1.0, true);
    let y = g.node("Softmax", "softmax", &[&c], vec![int_attr("axis", 1)], vec![1, 4, 3, 3]);
    let mut m = g.finish(&y);
    m.opset_import[0].version = 11;
    let path = Path::new("norm4.onnx");
    let model = onnx::parse(path, &m.write_to_bytes().unwrap()).unwrap();
    let e = ptq::quantize(&model, path, &ptq::random_samples(&model, 1, 1)).unwrap_err();
    assert!(e.to_string().contains("normalizes axes 1.. of [1, 4, 3, 3] together"), "{e}");
}

/// Nearest Resize's input index for output index `i` (ONNX's formulas, in f64).
fn nearest(i: usize, len: usize, out: usize, mode: &str) -> usize {
    let scale = out as f64 / len as f64;
    let original = match mode {
        "asymmetric" => i as f64 / scale,
        _ => (i as f64 + 0.5) / scale - 0.5,
    };
    // asymmetric with nearest_mode floor; half_pixel with round_prefer_floor.
    let index = if mode == "asymmetric" || original - original.floor() == 0.5 { original.floor() } else { original.round() };
    (index.max(0.0) as usize).min(len - 1)
}

#[test]
fn slices_splits_squeezes_shuffles_and_resizes_move_the_defined_elements() {
    // conv (8 ch, 6x6) -> Split [3, 5] -> a: Slice rows 5, 3, 1 and columns 0, 2, 4 -> Resize
    // to 6x6 (sizes, asymmetric, floor); b: Unsqueeze(0) -> Squeeze(0) -> Concat -> channel
    // shuffle (Reshape, Transpose, Reshape) -> Resize x2 (scales, half_pixel,
    // round_prefer_floor) -> 12x12.
    let mut g = GraphBuilder::new("select", &[1, 4, 6, 6], 6);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let parts = g.split(&c, 1, &[3, 5]);
    let int64 = |g: &mut GraphBuilder, base: &str, v: &[i64]| {
        g.constant(base, &[v.len()], dtype::INT64, &v.iter().map(|&x| x as f64).collect::<Vec<_>>())
    };
    let (starts, ends, axes, steps) = (
        int64(&mut g, "starts", &[5, 0]),
        int64(&mut g, "ends", &[-7, 6]),
        int64(&mut g, "axes", &[2, 3]),
        int64(&mut g, "steps", &[-2, 2]),
    );
    let a = g.node("Slice", "slice", &[&parts[0], &starts, &ends, &axes, &steps], vec![], vec![1, 3, 3, 3]);
    let sizes = int64(&mut g, "sizes", &[1, 3, 6, 6]);
    let floor = vec![string_attr("coordinate_transformation_mode", "asymmetric"), string_attr("nearest_mode", "floor")];
    let a = g.node("Resize", "resize_sizes", &[&a, "", "", &sizes], floor, vec![1, 3, 6, 6]);
    let zero = int64(&mut g, "axis0", &[0]);
    let b = g.node("Unsqueeze", "unsqueeze", &[&parts[1], &zero], vec![], vec![1, 1, 5, 6, 6]);
    let b = g.node("Squeeze", "squeeze", &[&b, &zero], vec![], vec![1, 5, 6, 6]);
    let cat = g.node("Concat", "concat", &[&a, &b], vec![int_attr("axis", 1)], vec![1, 8, 6, 6]);
    let (five, four) = (int64(&mut g, "groups", &[1, 2, 4, 6, 6]), int64(&mut g, "flat", &[1, 8, 6, 6]));
    let r = g.node("Reshape", "group", &[&cat, &five], vec![], vec![1, 2, 4, 6, 6]);
    let t = g.node("Transpose", "shuffle", &[&r], vec![ints_attr("perm", &[0, 2, 1, 3, 4])], vec![1, 4, 2, 6, 6]);
    let s = g.node("Reshape", "ungroup", &[&t, &four], vec![], vec![1, 8, 6, 6]);
    let scales = g.constant("scales", &[4], dtype::FLOAT, &[1.0, 1.0, 2.0, 2.0]);
    let y = g.node("Resize", "resize_scales", &[&s, "", &scales], vec![], vec![1, 8, 12, 12]);
    let (net, values) = quantize_and_run(&g.finish(&y), &[1, 4, 6, 6], 3);
    let mut checked = 0;
    let mut seen = vec![];
    for n in &net.nodes {
        let Op::Select { from, .. } = &n.op else { continue };
        seen.push(n.op.kind());
        let (xv, yv) = (&net.values[n.inputs[0]], &net.values[n.output]);
        assert_eq!(xv.quant, yv.quant, "a selection keeps its input's quantization");
        let x = &values[n.inputs[0]];
        // For each output position, the input position by the definitions above.
        let source = |idx: Vec<usize>| -> Vec<usize> {
            match (from, yv.shape[2]) {
                (SelectFrom::Split, _) if yv.shape[1] == 3 => idx,
                (SelectFrom::Split, _) => vec![idx[0], idx[1] + 3, idx[2], idx[3]],
                (SelectFrom::Slice, _) => vec![idx[0], idx[1], [5, 3, 1][idx[2]], [0, 2, 4][idx[3]]],
                (SelectFrom::Resize, 6) => vec![idx[0], idx[1], nearest(idx[2], 3, 6, "asymmetric"), nearest(idx[3], 3, 6, "asymmetric")],
                (SelectFrom::Resize, _) => vec![idx[0], idx[1], nearest(idx[2], 6, 12, "half_pixel"), nearest(idx[3], 6, 12, "half_pixel")],
            }
        };
        checked += expect(&net, &values, n, 0, |i| x[flat_index(&source(multi_index(i, &yv.shape)), &xv.shape)] as i32);
    }
    assert_eq!(seen, ["split", "split", "slice", "resize", "resize"]);
    assert_eq!(checked, 108 + 180 + 27 + 108 + 1152);
    // By hand: 2x half_pixel reads 0 0 1 1 2 2 ...; asymmetric floor from 3 to 6 likewise.
    assert_eq!((0..6).map(|i| nearest(i, 6, 12, "half_pixel")).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2]);
    assert_eq!((0..6).map(|i| nearest(i, 3, 6, "asymmetric")).collect::<Vec<_>>(), [0, 0, 1, 1, 2, 2]);
}

#[test]
fn a_clip_that_is_not_relu_clamps_as_defined() {
    // Clip(-0.5, 0.5) (PyTorch's Hardtanh scaled) is no fusable activation: a float region
    // clamps the dequantized values and quantizes them.
    let mut g = GraphBuilder::new("clip", &[1, 4, 5, 5], 3);
    let c = g.conv("x", 8, 3, 1, 1, 1, 1.0, true);
    let lo = g.constant("lo", &[], dtype::FLOAT, &[-0.5]);
    let hi = g.constant("hi", &[], dtype::FLOAT, &[0.5]);
    let y = g.node("Clip", "clip", &[&c, &lo, &hi], vec![], vec![1, 8, 5, 5]);
    let (net, values) = quantize_and_run(&g.finish(&y), &[1, 4, 5, 5], 1);
    let n = net.nodes.iter().find(|n| matches!(n.op, Op::FloatRegion(_))).expect("a float region");
    let (xv, yv) = (&net.values[n.inputs[0]], &net.values[n.output]);
    let x = &values[n.inputs[0]];
    assert_eq!(expect(&net, &values, n, 1, |i| quantize(real(x[i], xv.quant).clamp(-0.5, 0.5), yv.quant)), 200);
}

#[test]
fn upsample_and_opset_10_resize_pick_what_onnx_runtime_picks() {
    // ONNX Runtime 1.32 on arange inputs (so its outputs are the indices picked): opset 10
    // Resize by 0.6 of 10 -> [0 2 4 5 7 9] (shrinking rounds up), by 2.5 of 4 -> [0 0 0 1 1
    // 2 2 2 3 3] (enlarging rounds down), the same from opset 9's Upsample, and opset 7's
    // Upsample by 3 (an attribute) of 3 -> [0 0 0 1 1 1 2 2 2]. Post-training quantization
    // writes each as an opset-13 Resize that reads the same.
    let cases: [(i64, &str, usize, f32, &[usize]); 4] = [
        (10, "Resize", 10, 0.6, &[0, 2, 4, 5, 7, 9]),
        (10, "Resize", 4, 2.5, &[0, 0, 0, 1, 1, 2, 2, 2, 3, 3]),
        (9, "Upsample", 4, 2.5, &[0, 0, 0, 1, 1, 2, 2, 2, 3, 3]),
        (7, "Upsample", 3, 3.0, &[0, 0, 0, 1, 1, 1, 2, 2, 2]),
    ];
    for (opset, op, len, scale, want) in cases {
        let mut g = GraphBuilder::new("resize", &[1, 1, 1, len], 1);
        let y = if opset < 9 {
            g.node(
                op,
                "up",
                &["x"],
                vec![floats_attr("scales", &[1.0, 1.0, 1.0, scale]), string_attr("mode", "nearest")],
                vec![1, 1, 1, want.len()],
            )
        } else {
            let scales = g.constant("scales", &[4], dtype::FLOAT, &[1.0, 1.0, 1.0, scale as f64]);
            g.node(op, "up", &["x", &scales], vec![string_attr("mode", "nearest")], vec![1, 1, 1, want.len()])
        };
        let (net, _) = quantize_and_run(&g.finish_at(&y, opset), &[1, 1, 1, len], 1);
        let picks = net.nodes.iter().find_map(|n| match &n.op {
            Op::Select { indices, .. } => Some(indices[3].clone()),
            _ => None,
        });
        assert_eq!(picks.as_deref(), Some(want), "opset {opset} {op} by {scale}");
    }
}
