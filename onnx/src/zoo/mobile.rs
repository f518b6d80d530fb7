//! The mobile networks: MobileNetV2, MobileNetV3-Small and -Large, EfficientNet-B0,
//! ShuffleNetV2 (x1.0) and SqueezeNet 1.1, with torchvision's topologies.

use super::{Act, GraphBuilder};
use crate::attrs::{dtype, int_attr, ints_attr};
use onnx_protobuf::ModelProto;

/// torchvision's `_make_divisible(v, 8)`: `v` rounded to a multiple of 8, at least 8 and not
/// below 90% of `v`.
fn make_divisible(v: usize) -> usize {
    let rounded = ((v + 4) / 8 * 8).max(8);
    if (rounded as f64) < 0.9 * v as f64 {
        rounded + 8
    } else {
        rounded
    }
}

/// An inverted residual block (MobileNetV2's, MobileNetV3's, EfficientNet's MBConv).
struct Block {
    /// Channels of the expansion (the input's: no expansion conv).
    expanded: usize,
    /// Output channels.
    out: usize,
    /// Depthwise kernel.
    kernel: usize,
    /// Depthwise stride.
    stride: usize,
    /// Activation after the expansion and the depthwise conv.
    act: Act,
    /// Squeeze-and-excitation: squeezed channels, its activation and its gate.
    se: Option<(usize, Act, Act)>,
}

/// `block` on `x`: 1x1 expansion, depthwise conv, squeeze-and-excitation, 1x1 projection,
/// and the residual when the shape stays.
fn inverted_residual(g: &mut GraphBuilder, x: &str, block: &Block) -> String {
    let c = g.shape(x)[1];
    let mut y = x.to_string();
    if block.expanded != c {
        y = g.conv_bn(&y, block.expanded, 1, 1, 1, block.act);
    }
    y = g.conv_bn(&y, block.expanded, block.kernel, block.stride, block.expanded, block.act);
    if let Some((squeeze, act, gate)) = block.se {
        y = g.squeeze_excite(&y, squeeze, act, gate);
    }
    y = g.conv_bn(&y, block.out, 1, 1, 1, Act::None);
    if block.stride == 1 && c == block.out {
        y = g.add(x, &y);
    }
    y
}

/// MobileNetV2 (width 1.0) for `size x size` RGB inputs.
pub fn mobilenet_v2(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("mobilenetv2", &[1, 3, size, size], seed);
    let mut x = g.conv_bn("x", 32, 3, 2, 1, Act::Relu6);
    let mut c = 32;
    for (t, out, n, s) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)] {
        for i in 0..n {
            let block = Block { expanded: c * t, out, kernel: 3, stride: if i == 0 { s } else { 1 }, act: Act::Relu6, se: None };
            x = inverted_residual(&mut g, &x, &block);
            c = out;
        }
    }
    x = g.conv_bn(&x, 1280, 1, 1, 1, Act::Relu6);
    let f = g.pool_flatten(&x);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}

/// MobileNetV3-Large (`large`) or -Small for `size x size` RGB inputs: inverted residuals
/// with HardSwish and squeeze-and-excitation gated by HardSigmoid (opset 14, HardSwish's).
pub fn mobilenet_v3(size: usize, seed: u64, large: bool) -> ModelProto {
    // (kernel, expanded, out, squeeze-and-excitation, HardSwish, stride)
    const SMALL: &[(usize, usize, usize, bool, bool, usize)] = &[
        (3, 16, 16, true, false, 2),
        (3, 72, 24, false, false, 2),
        (3, 88, 24, false, false, 1),
        (5, 96, 40, true, true, 2),
        (5, 240, 40, true, true, 1),
        (5, 240, 40, true, true, 1),
        (5, 120, 48, true, true, 1),
        (5, 144, 48, true, true, 1),
        (5, 288, 96, true, true, 2),
        (5, 576, 96, true, true, 1),
        (5, 576, 96, true, true, 1),
    ];
    const LARGE: &[(usize, usize, usize, bool, bool, usize)] = &[
        (3, 16, 16, false, false, 1),
        (3, 64, 24, false, false, 2),
        (3, 72, 24, false, false, 1),
        (5, 72, 40, true, false, 2),
        (5, 120, 40, true, false, 1),
        (5, 120, 40, true, false, 1),
        (3, 240, 80, false, true, 2),
        (3, 200, 80, false, true, 1),
        (3, 184, 80, false, true, 1),
        (3, 184, 80, false, true, 1),
        (3, 480, 112, true, true, 1),
        (3, 672, 112, true, true, 1),
        (5, 672, 160, true, true, 2),
        (5, 960, 160, true, true, 1),
        (5, 960, 160, true, true, 1),
    ];
    let (name, blocks, last) = if large { ("mobilenetv3-large", LARGE, 1280) } else { ("mobilenetv3-small", SMALL, 1024) };
    let mut g = GraphBuilder::new(name, &[1, 3, size, size], seed);
    let mut x = g.conv_bn("x", 16, 3, 2, 1, Act::HardSwish);
    let mut c = 16;
    for &(kernel, expanded, out, se, hs, stride) in blocks {
        let act = if hs { Act::HardSwish } else { Act::Relu };
        let se = se.then(|| (make_divisible(expanded / 4), Act::Relu, Act::HardSigmoid));
        x = inverted_residual(&mut g, &x, &Block { expanded, out, kernel, stride, act, se });
        c = out;
    }
    x = g.conv_bn(&x, 6 * c, 1, 1, 1, Act::HardSwish);
    let f = g.pool_flatten(&x);
    let f = g.linear(&f, last);
    let f = g.act(&f, Act::HardSwish);
    let y = g.linear(&f, 1000);
    g.finish_at(&y, 14)
}

/// EfficientNet-B0 for `size x size` RGB inputs: MBConv blocks with SiLU (`x * Sigmoid(x)`)
/// and squeeze-and-excitation gated by Sigmoid.
pub fn efficientnet_b0(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("efficientnet-b0", &[1, 3, size, size], seed);
    let mut x = g.conv_bn("x", 32, 3, 2, 1, Act::Silu);
    let mut c = 32;
    // (expansion, kernel, stride, out, layers)
    for (t, kernel, s, out, n) in
        [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
    {
        for i in 0..n {
            let se = Some(((c / 4).max(1), Act::Silu, Act::Sigmoid));
            let block = Block { expanded: c * t, out, kernel, stride: if i == 0 { s } else { 1 }, act: Act::Silu, se };
            x = inverted_residual(&mut g, &x, &block);
            c = out;
        }
    }
    x = g.conv_bn(&x, 1280, 1, 1, 1, Act::Silu);
    let f = g.pool_flatten(&x);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}

/// ShuffleNetV2 x1.0 for `size x size` RGB inputs: channel split (Split), branches, Concat
/// and channel shuffle (Reshape, Transpose, Reshape); the head averages with ReduceMean as
/// torchvision's `x.mean([2, 3])` exports.
pub fn shufflenet_v2(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("shufflenetv2", &[1, 3, size, size], seed);
    let c1 = g.conv_bn("x", 24, 3, 2, 1, Act::Relu);
    let mut x = g.maxpool(&c1, 3, 2, 1);
    let mut c = 24;
    for (repeats, out) in [(4, 116), (8, 232), (4, 464)] {
        let half = out / 2;
        for i in 0..repeats {
            let (left, right) = if i == 0 {
                let d = g.conv_bn(&x, c, 3, 2, c, Act::None);
                let left = g.conv_bn(&d, half, 1, 1, 1, Act::Relu);
                (left, x.clone())
            } else {
                let parts = g.split(&x, 1, &[half, half]);
                (parts[0].clone(), parts[1].clone())
            };
            let stride = if i == 0 { 2 } else { 1 };
            let r = g.conv_bn(&right, half, 1, 1, 1, Act::Relu);
            let r = g.conv_bn(&r, half, 3, stride, half, Act::None);
            let r = g.conv_bn(&r, half, 1, 1, 1, Act::Relu);
            let cat = g.concat(&[&left, &r]);
            x = channel_shuffle(&mut g, &cat);
            c = out;
        }
    }
    let x = g.conv_bn(&x, 1024, 1, 1, 1, Act::Relu);
    let mean = g.node("ReduceMean", "mean", &[&x], vec![ints_attr("axes", &[2, 3]), int_attr("keepdims", 0)], vec![1, 1024]);
    let y = g.linear(&mean, 1000);
    g.finish(&y)
}

/// ShuffleNet's channel shuffle with two groups: `[N, 2, C/2, H, W]`, swap the group axes,
/// back to `[N, C, H, W]`.
fn channel_shuffle(g: &mut GraphBuilder, x: &str) -> String {
    let [n, c, h, w] = g.shape(x)[..] else { panic!("shuffle input must be NCHW") };
    let as_f64 = |v: &[usize]| v.iter().map(|&d| d as f64).collect::<Vec<_>>();
    let grouped = g.constant("groups", &[5], dtype::INT64, &as_f64(&[n, 2, c / 2, h, w]));
    let flat = g.constant("flat", &[4], dtype::INT64, &as_f64(&[n, c, h, w]));
    let r = g.node("Reshape", "group", &[x, &grouped], vec![], vec![n, 2, c / 2, h, w]);
    let t = g.node("Transpose", "shuffle", &[&r], vec![ints_attr("perm", &[0, 2, 1, 3, 4])], vec![n, c / 2, 2, h, w]);
    g.node("Reshape", "ungroup", &[&t, &flat], vec![], vec![n, c, h, w])
}

/// SqueezeNet 1.1 for `size x size` RGB inputs: Fire modules (squeeze 1x1, expand 1x1 and
/// 3x3, Concat) between ceil-mode max pools; the classifier is a 1x1 conv and a global
/// average.
pub fn squeezenet(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("squeezenet", &[1, 3, size, size], seed);
    let c = g.conv("x", 64, 3, 2, 0, 1, 2.0, true);
    let mut x = g.relu(&c);
    let fire = |g: &mut GraphBuilder, x: &str, squeeze: usize, expand: usize| {
        let s = g.conv(x, squeeze, 1, 1, 0, 1, 2.0, true);
        let s = g.relu(&s);
        let e1 = g.conv(&s, expand, 1, 1, 0, 1, 2.0, true);
        let e1 = g.relu(&e1);
        let e3 = g.conv(&s, expand, 3, 1, 1, 1, 2.0, true);
        let e3 = g.relu(&e3);
        g.concat(&[&e1, &e3])
    };
    for stage in [&[(16, 64), (16, 64)][..], &[(32, 128), (32, 128)], &[(48, 192), (48, 192), (64, 256), (64, 256)]] {
        x = g.pool("MaxPool", &x, 3, 2, 0, true);
        for &(squeeze, expand) in stage {
            x = fire(&mut g, &x, squeeze, expand);
        }
    }
    let c = g.conv(&x, 1000, 1, 1, 0, 1, 2.0, true);
    let r = g.relu(&c);
    let y = g.pool_flatten(&r);
    g.finish(&y)
}
