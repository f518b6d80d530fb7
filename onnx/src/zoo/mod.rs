//! Building float ONNX models in Rust: a small graph builder, and the mobile ([`mobile`]:
//! MobileNetV2, MobileNetV3-Small and -Large, EfficientNet-B0, ShuffleNetV2, SqueezeNet) and
//! classic ([`classic`]: ResNet-18 and -50, GoogLeNet, DenseNet-121, VGG-16) networks with the
//! torchvision topology and seeded random weights (He-normal convolutions,
//! BatchNormalization with random statistics), for architecture studies and tests without
//! downloads. Their accuracy is meaningless; their shapes, operators and data flow are real.

pub mod classic;
pub mod mobile;

use crate::attrs::{self, dtype, int_attr, ints_attr, tensor_proto};
use onnx_protobuf::tensor_shape_proto::dimension::Value as DimValue;
use onnx_protobuf::{AttributeProto, GraphProto, Message, ModelProto, OperatorSetIdProto, ValueInfoProto};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An activation after a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None.
    None,
    /// ReLU.
    Relu,
    /// ReLU6 (Clip 0, 6).
    Relu6,
    /// HardSwish (opset 14).
    HardSwish,
    /// HardSigmoid with PyTorch's slope 1/6.
    HardSigmoid,
    /// Sigmoid.
    Sigmoid,
    /// SiLU as PyTorch exports it: `x * Sigmoid(x)`.
    Silu,
}

/// Accumulates nodes and initializers of a float NCHW graph.
pub struct GraphBuilder {
    graph: GraphProto,
    rng: ChaCha8Rng,
    shapes: std::collections::HashMap<String, Vec<usize>>,
    count: usize,
}

/// A float value of fixed `shape`.
fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dims: Vec<DimValue> = shape.iter().map(|&d| DimValue::DimValue(d as i64)).collect();
    attrs::value_info(name, dtype::FLOAT, &dims)
}

impl GraphBuilder {
    /// A graph named `name` with one float input `x` of `shape`; weights from `seed`.
    pub fn new(name: &str, shape: &[usize], seed: u64) -> Self {
        let mut graph = GraphProto::new();
        graph.name = name.into();
        graph.input.push(value_info("x", shape));
        let mut shapes = std::collections::HashMap::new();
        shapes.insert("x".to_string(), shape.to_vec());
        Self { graph, rng: ChaCha8Rng::seed_from_u64(seed), shapes, count: 0 }
    }

    /// Shape of tensor `x`.
    pub fn shape(&self, x: &str) -> Vec<usize> {
        self.shapes[x].clone()
    }

    fn fresh(&mut self, base: &str) -> String {
        self.count += 1;
        format!("{base}{}", self.count)
    }

    fn normal(&mut self, n: usize, std: f64) -> Vec<f64> {
        (0..n).map(|_| crate::ptq::standard_normal(&mut self.rng) as f64 * std).collect()
    }

    fn init(&mut self, name: &str, dims: &[usize], vals: &[f64]) {
        self.graph.initializer.push(tensor_proto(name, dims, dtype::FLOAT, vals));
    }

    /// Adds a node; returns its output's name, whose shape is `shape`.
    pub fn node(&mut self, op: &str, base: &str, inputs: &[&str], attrs: Vec<AttributeProto>, shape: Vec<usize>) -> String {
        let out = self.fresh(base);
        self.graph.node.push(crate::attrs::node_proto(op, &out, inputs, &out, attrs));
        self.shapes.insert(out.clone(), shape);
        out
    }

    /// A 2-D convolution with He-normal weights (`gain` 2 before a ReLU, 1 otherwise), `k`
    /// outputs, square `kernel`, `stride`, symmetric `pad`, `groups`; with a bias if `bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(&mut self, x: &str, k: usize, kernel: usize, stride: usize, pad: usize, groups: usize, gain: f64, bias: bool) -> String {
        let [n, c, h, w] = self.shape(x)[..] else { panic!("conv input must be NCHW") };
        let fan_in = c / groups * kernel * kernel;
        let wname = self.fresh("w");
        let vals = self.normal(k * fan_in, (gain / fan_in as f64).sqrt());
        self.init(&wname, &[k, c / groups, kernel, kernel], &vals);
        let mut inputs = vec![x.to_string(), wname];
        if bias {
            let b = self.fresh("b");
            let vals = self.normal(k, 0.05);
            self.init(&b, &[k], &vals);
            inputs.push(b);
        }
        let out = |d: usize| (d + 2 * pad - kernel) / stride + 1;
        let attrs = vec![
            ints_attr("kernel_shape", &[kernel as i64; 2]),
            ints_attr("strides", &[stride as i64; 2]),
            ints_attr("pads", &[pad as i64; 4]),
            int_attr("group", groups as i64),
        ];
        let refs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        self.node("Conv", "conv", &refs, attrs, vec![n, k, out(h), out(w)])
    }

    /// BatchNormalization with random statistics near the identity.
    pub fn batchnorm(&mut self, x: &str) -> String {
        let c = self.shape(x)[1];
        let mut names = vec![x.to_string()];
        for (what, mean, std) in [("gamma", 1.0, 0.1), ("beta", 0.0, 0.1), ("mean", 0.0, 0.1), ("var", 1.0, 0.1)] {
            let name = self.fresh(what);
            let vals: Vec<f64> = self.normal(c, std).iter().map(|v| if what == "var" { mean + v.abs() } else { mean + v }).collect();
            self.init(&name, &[c], &vals);
            names.push(name);
        }
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let shape = self.shape(x);
        self.node("BatchNormalization", "bn", &refs, vec![], shape)
    }

    /// Zero padding of the spatial axes: top, left, bottom, right.
    pub fn pad(&mut self, x: &str, pad: [usize; 4]) -> String {
        let [n, c, h, w] = self.shape(x)[..] else { panic!("pad input must be NCHW") };
        let pads = self.fresh("pads");
        let vals = [0, 0, pad[0], pad[1], 0, 0, pad[2], pad[3]].map(|p| p as f64);
        self.graph.initializer.push(tensor_proto(&pads, &[8], dtype::INT64, &vals));
        self.node("Pad", "pad", &[x, &pads], vec![], vec![n, c, h + pad[0] + pad[2], w + pad[1] + pad[3]])
    }

    /// A constant (an initializer) of element type `elem`; returns its name.
    pub fn constant(&mut self, base: &str, dims: &[usize], elem: i32, vals: &[f64]) -> String {
        let name = self.fresh(base);
        self.graph.initializer.push(tensor_proto(&name, dims, elem, vals));
        name
    }

    /// Split of `x` along `axis` into parts of `sizes` (opset 13's `split` input); returns
    /// the parts.
    pub fn split(&mut self, x: &str, axis: usize, sizes: &[usize]) -> Vec<String> {
        let sizes_name = self.constant("split", &[sizes.len()], dtype::INT64, &sizes.iter().map(|&s| s as f64).collect::<Vec<_>>());
        let name = self.fresh("split");
        let outs: Vec<String> = (0..sizes.len()).map(|k| format!("{name}_{k}")).collect();
        let mut n = crate::attrs::node_proto("Split", &name, &[x, &sizes_name], &outs[0], vec![int_attr("axis", axis as i64)]);
        n.output = outs.clone();
        self.graph.node.push(n);
        for (o, &size) in outs.iter().zip(sizes) {
            let mut shape = self.shape(x);
            shape[axis] = size;
            self.shapes.insert(o.clone(), shape);
        }
        outs
    }

    /// A convolution without bias, BatchNormalization and `act` (`same` padding for odd
    /// kernels).
    pub fn conv_bn(&mut self, x: &str, k: usize, kernel: usize, stride: usize, groups: usize, act: Act) -> String {
        let gain = if act == Act::None { 1.0 } else { 2.0 };
        let c = self.conv(x, k, kernel, stride, kernel / 2, groups, gain, false);
        let b = self.batchnorm(&c);
        self.act(&b, act)
    }

    /// `act` applied to `x`.
    pub fn act(&mut self, x: &str, act: Act) -> String {
        let shape = self.shape(x);
        match act {
            Act::None => x.to_string(),
            Act::Relu => self.relu(x),
            Act::Relu6 => self.relu6(x),
            Act::HardSwish => self.node("HardSwish", "hardswish", &[x], vec![], shape),
            Act::HardSigmoid => self.node(
                "HardSigmoid",
                "hardsigmoid",
                &[x],
                vec![attrs::float_attr("alpha", 1.0 / 6.0), attrs::float_attr("beta", 0.5)],
                shape,
            ),
            Act::Sigmoid => self.node("Sigmoid", "sigmoid", &[x], vec![], shape),
            Act::Silu => {
                let s = self.node("Sigmoid", "sigmoid", &[x], vec![], shape.clone());
                self.node("Mul", "silu", &[x, &s], vec![], shape)
            }
        }
    }

    /// Squeeze-and-excitation: global average pool, a 1x1 conv to `squeeze` channels, `act`,
    /// a 1x1 conv back, `gate`, times `x`.
    pub fn squeeze_excite(&mut self, x: &str, squeeze: usize, act: Act, gate: Act) -> String {
        let shape = self.shape(x);
        let p = self.node("GlobalAveragePool", "se_pool", &[x], vec![], vec![shape[0], shape[1], 1, 1]);
        let f1 = self.conv(&p, squeeze, 1, 1, 0, 1, 2.0, true);
        let a = self.act(&f1, act);
        let f2 = self.conv(&a, shape[1], 1, 1, 0, 1, 1.0, true);
        let s = self.act(&f2, gate);
        self.node("Mul", "se_scale", &[x, &s], vec![], shape)
    }

    /// Concatenation along the channels.
    pub fn concat(&mut self, parts: &[&str]) -> String {
        let mut shape = self.shape(parts[0]);
        shape[1] = parts.iter().map(|p| self.shape(p)[1]).sum();
        self.node("Concat", "concat", parts, vec![int_attr("axis", 1)], shape)
    }

    /// ReLU.
    pub fn relu(&mut self, x: &str) -> String {
        let shape = self.shape(x);
        self.node("Relu", "relu", &[x], vec![], shape)
    }

    /// ReLU6 as Clip(x, 0, 6).
    pub fn relu6(&mut self, x: &str) -> String {
        let (lo, hi) = (self.fresh("zero"), self.fresh("six"));
        self.init(&lo, &[], &[0.0]);
        self.init(&hi, &[], &[6.0]);
        let shape = self.shape(x);
        self.node("Clip", "relu6", &[x, &lo, &hi], vec![], shape)
    }

    /// Elementwise sum of equal shapes.
    pub fn add(&mut self, a: &str, b: &str) -> String {
        let shape = self.shape(a);
        self.node("Add", "add", &[a, b], vec![], shape)
    }

    /// Max pooling with a square window.
    pub fn maxpool(&mut self, x: &str, kernel: usize, stride: usize, pad: usize) -> String {
        self.pool("MaxPool", x, kernel, stride, pad, false)
    }

    /// `op` (MaxPool, AveragePool) with a square window; `ceil` rounds the output size up
    /// (ONNX's `ceil_mode`, dropping a window that would start in the end padding).
    pub fn pool(&mut self, op: &str, x: &str, kernel: usize, stride: usize, pad: usize, ceil: bool) -> String {
        let [n, c, h, w] = self.shape(x)[..] else { panic!("pool input must be NCHW") };
        let out = |d: usize| {
            let room = d + 2 * pad - kernel;
            let windows = if ceil { room.div_ceil(stride) } else { room / stride } + 1;
            if ceil && (windows - 1) * stride >= d + pad {
                windows - 1
            } else {
                windows
            }
        };
        let mut attrs = vec![
            ints_attr("kernel_shape", &[kernel as i64; 2]),
            ints_attr("strides", &[stride as i64; 2]),
            ints_attr("pads", &[pad as i64; 4]),
        ];
        if ceil {
            attrs.push(int_attr("ceil_mode", 1));
        }
        self.node(op, &op.to_lowercase(), &[x], attrs, vec![n, c, out(h), out(w)])
    }

    /// GlobalAveragePool then Flatten: `[N, C]`.
    pub fn pool_flatten(&mut self, x: &str) -> String {
        let [n, c, _, _] = self.shape(x)[..] else { panic!("pool input must be NCHW") };
        let g = self.node("GlobalAveragePool", "gap", &[x], vec![], vec![n, c, 1, 1]);
        self.node("Flatten", "flatten", &[&g], vec![int_attr("axis", 1)], vec![n, c])
    }

    /// Fully connected `Gemm(x, W^T) + b` with `outputs` features.
    pub fn linear(&mut self, x: &str, outputs: usize) -> String {
        let [n, k] = self.shape(x)[..] else { panic!("linear input must be a matrix") };
        let (w, b) = (self.fresh("fc_w"), self.fresh("fc_b"));
        let wv = self.normal(outputs * k, (1.0 / k as f64).sqrt());
        self.init(&w, &[outputs, k], &wv);
        let bv = self.normal(outputs, 0.05);
        self.init(&b, &[outputs], &bv);
        self.node("Gemm", "fc", &[x, &w, &b], vec![int_attr("transB", 1)], vec![n, outputs])
    }

    /// The model with graph output `y`, default-domain opset 13.
    pub fn finish(self, y: &str) -> ModelProto {
        self.finish_at(y, 13)
    }

    /// The model with graph output `y`, default-domain `opset`.
    pub fn finish_at(mut self, y: &str, opset: i64) -> ModelProto {
        let shape = self.shape(y);
        self.graph.output.push(value_info(y, &shape));
        let mut m = ModelProto::new();
        m.ir_version = 8;
        m.producer_name = "systole".into();
        let mut o = OperatorSetIdProto::new();
        o.version = opset;
        m.opset_import.push(o);
        m.graph = Some(self.graph).into();
        m
    }
}

/// Networks [`build`] knows.
pub const NETWORKS: &[&str] = &[
    "mobilenetv2",
    "mobilenetv3-small",
    "mobilenetv3-large",
    "efficientnet-b0",
    "shufflenetv2",
    "squeezenet",
    "googlenet",
    "resnet18",
    "resnet50",
    "densenet121",
    "vgg16",
];

/// The network `name` (one of [`NETWORKS`]) for `size x size` RGB inputs, as ONNX bytes.
pub fn build(name: &str, size: usize, seed: u64) -> Option<Vec<u8>> {
    let m = match name {
        "mobilenetv2" => mobile::mobilenet_v2(size, seed),
        "mobilenetv3-small" => mobile::mobilenet_v3(size, seed, false),
        "mobilenetv3-large" => mobile::mobilenet_v3(size, seed, true),
        "efficientnet-b0" => mobile::efficientnet_b0(size, seed),
        "shufflenetv2" => mobile::shufflenet_v2(size, seed),
        "squeezenet" => mobile::squeezenet(size, seed),
        "googlenet" => classic::googlenet(size, seed),
        "resnet18" => classic::resnet(size, seed, false),
        "resnet50" => classic::resnet(size, seed, true),
        "densenet121" => classic::densenet121(size, seed),
        "vgg16" => classic::vgg16(size, seed),
        _ => return None,
    };
    Some(m.write_to_bytes().expect("a built model serializes"))
}
