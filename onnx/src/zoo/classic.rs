//! The classic networks: ResNet-18 and -50, GoogLeNet, DenseNet-121 and VGG-16, with
//! torchvision's topologies.

use super::{Act, GraphBuilder};
use onnx_protobuf::ModelProto;

/// ResNet-50 (`bottleneck`: 1x1, 3x3 with the stride, 1x1 to four times the width; blocks
/// 3, 4, 6, 3) or ResNet-18 (two 3x3 convolutions; blocks 2, 2, 2, 2) for `size x size`
/// RGB inputs.
pub fn resnet(size: usize, seed: u64, bottleneck: bool) -> ModelProto {
    let name = if bottleneck { "resnet50" } else { "resnet18" };
    let mut g = GraphBuilder::new(name, &[1, 3, size, size], seed);
    let c = g.conv("x", 64, 7, 2, 3, 1, 2.0, false);
    let b = g.batchnorm(&c);
    let r = g.relu(&b);
    let mut x = g.maxpool(&r, 3, 2, 1);
    let mut ch = 64;
    let blocks = if bottleneck { [3, 4, 6, 3] } else { [2, 2, 2, 2] };
    for (stage, (width, n)) in [64, 128, 256, 512].into_iter().zip(blocks).enumerate() {
        let out = if bottleneck { 4 * width } else { width };
        for block in 0..n {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let y = if bottleneck {
                let y = g.conv_bn(&x, width, 1, 1, 1, Act::Relu);
                let y = g.conv_bn(&y, width, 3, stride, 1, Act::Relu);
                g.conv_bn(&y, out, 1, 1, 1, Act::None)
            } else {
                let y = g.conv_bn(&x, width, 3, stride, 1, Act::Relu);
                g.conv_bn(&y, out, 3, 1, 1, Act::None)
            };
            let skip = if stride != 1 || ch != out { g.conv_bn(&x, out, 1, stride, 1, Act::None) } else { x.clone() };
            let s = g.add(&y, &skip);
            x = g.relu(&s);
            ch = out;
        }
    }
    let f = g.pool_flatten(&x);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}

/// GoogLeNet (Inception v1, torchvision's: BatchNormalization after every convolution,
/// ceil-mode max pools, 3x3 convolutions in the "5x5" branch) for `size x size` RGB inputs.
pub fn googlenet(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("googlenet", &[1, 3, size, size], seed);
    let mut x = g.conv_bn("x", 64, 7, 2, 1, Act::Relu);
    x = g.pool("MaxPool", &x, 3, 2, 0, true);
    x = g.conv_bn(&x, 64, 1, 1, 1, Act::Relu);
    x = g.conv_bn(&x, 192, 3, 1, 1, Act::Relu);
    x = g.pool("MaxPool", &x, 3, 2, 0, true);
    // (1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection); None is a max pool.
    let stages: [&[Option<[usize; 6]>]; 3] = [
        &[Some([64, 96, 128, 16, 32, 32]), Some([128, 128, 192, 32, 96, 64]), None],
        &[
            Some([192, 96, 208, 16, 48, 64]),
            Some([160, 112, 224, 24, 64, 64]),
            Some([128, 128, 256, 24, 64, 64]),
            Some([112, 144, 288, 32, 64, 64]),
            Some([256, 160, 320, 32, 128, 128]),
            None,
        ],
        &[Some([256, 160, 320, 32, 128, 128]), Some([384, 192, 384, 48, 128, 128])],
    ];
    for (stage, blocks) in stages.iter().enumerate() {
        for block in blocks.iter() {
            let Some([b1, r3, b3, r5, b5, proj]) = *block else {
                // maxpool3 is 3x3 / 2, maxpool4 2x2 / 2, both ceil mode.
                x = g.pool("MaxPool", &x, if stage == 0 { 3 } else { 2 }, 2, 0, true);
                continue;
            };
            let one = g.conv_bn(&x, b1, 1, 1, 1, Act::Relu);
            let three = g.conv_bn(&x, r3, 1, 1, 1, Act::Relu);
            let three = g.conv_bn(&three, b3, 3, 1, 1, Act::Relu);
            let five = g.conv_bn(&x, r5, 1, 1, 1, Act::Relu);
            let five = g.conv_bn(&five, b5, 3, 1, 1, Act::Relu);
            let pool = g.pool("MaxPool", &x, 3, 1, 1, true);
            let pool = g.conv_bn(&pool, proj, 1, 1, 1, Act::Relu);
            x = g.concat(&[&one, &three, &five, &pool]);
        }
    }
    let f = g.pool_flatten(&x);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}

/// DenseNet-121 (growth 32, blocks 6, 12, 24, 16) for `size x size` RGB inputs: each layer
/// BatchNormalization, ReLU, 1x1 conv to 128, BatchNormalization, ReLU, 3x3 conv to 32,
/// concatenated onto its input; transitions halve the channels and average-pool 2x2. The
/// BatchNormalizations that follow a Concat or a pool run as a scale and shift per channel.
pub fn densenet121(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("densenet121", &[1, 3, size, size], seed);
    let c = g.conv_bn("x", 64, 7, 2, 1, Act::Relu);
    let mut x = g.maxpool(&c, 3, 2, 1);
    let mut ch = 64;
    for (i, layers) in [6, 12, 24, 16].into_iter().enumerate() {
        for _ in 0..layers {
            let b = g.batchnorm(&x);
            let r = g.relu(&b);
            let y = g.conv_bn(&r, 128, 1, 1, 1, Act::Relu);
            let y = g.conv(&y, 32, 3, 1, 1, 1, 2.0, false);
            x = g.concat(&[&x, &y]);
            ch += 32;
        }
        if i < 3 {
            let b = g.batchnorm(&x);
            let r = g.relu(&b);
            ch /= 2;
            let t = g.conv(&r, ch, 1, 1, 0, 1, 2.0, false);
            x = g.pool("AveragePool", &t, 2, 2, 0, false);
        }
    }
    let b = g.batchnorm(&x);
    let r = g.relu(&b);
    let f = g.pool_flatten(&r);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}

/// VGG-16 (configuration D, no BatchNormalization) for `size x size` RGB inputs. The
/// adaptive average pool to 7x7 before the classifier, the identity at 224, is left out, so
/// the first fully connected layer takes `512 * (size / 32)^2` features.
pub fn vgg16(size: usize, seed: u64) -> ModelProto {
    let mut g = GraphBuilder::new("vgg16", &[1, 3, size, size], seed);
    let mut x = "x".to_string();
    for (convs, width) in [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)] {
        for _ in 0..convs {
            let c = g.conv(&x, width, 3, 1, 1, 1, 2.0, true);
            x = g.relu(&c);
        }
        x = g.maxpool(&x, 2, 2, 0);
    }
    let [n, c, h, w] = g.shape(&x)[..] else { unreachable!("NCHW") };
    let f = g.node("Flatten", "flatten", &[&x], vec![crate::attrs::int_attr("axis", 1)], vec![n, c * h * w]);
    let f = g.linear(&f, 4096);
    let f = g.relu(&f);
    let f = g.linear(&f, 4096);
    let f = g.relu(&f);
    let y = g.linear(&f, 1000);
    g.finish(&y)
}
