//! A whole quantized network: int8 tensors joined by accelerator layers and host operators.
//!
//! ```text
//!  f32 input ──QuantizeLinear──► v0 ──Layer (conv, depthwise, GEMM)──► v1 ──Add──► ... ──► vN ──DequantizeLinear──► f32 output
//!                                 └──────────────────────────────────────────┘
//! ```
//!
//! Every value is an int8 tensor with one quantization `(scale, zp)`, kept in ONNX's logical
//! layout (NCHW for images, `[M, K]` for matrices) and row-major order, so reshapes and
//! flattens move no data. [`Op::Layer`] nodes run on the accelerator (their data is converted
//! to the layer's NHWC at the boundary); the other operators run on the host.
//! Nodes are stored in a topological order; [`Network::graph`] gives the petgraph view.

use crate::error::ConfigError;
use crate::layer::{Activation, Layer};
use crate::tensor::Tensor;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

/// Index of a value in [`Network::values`].
pub type ValueId = usize;

/// Per-tensor quantization: `real = scale * (q - zp)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zp: i8,
}

impl Quant {
    /// ONNX QuantizeLinear: `saturate(round_half_even(x / scale) + zp)`.
    pub fn quantize(&self, x: f32) -> i8 {
        let v = ((x / self.scale).round_ties_even() as i64).saturating_add(self.zp as i64);
        v.clamp(i8::MIN as i64, i8::MAX as i64) as i8
    }

    /// ONNX DequantizeLinear: `(q - zp) * scale` in f32.
    pub fn dequantize(&self, q: i8) -> f32 {
        (q as i32 - self.zp as i32) as f32 * self.scale
    }
}

/// A pooling window over the two spatial axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Average pooling: divide by the full window (true) or only by in-bounds elements.
    pub count_include_pad: bool,
    /// Distance between the window's taps, per spatial axis (1: adjacent).
    #[serde(default = "adjacent_taps")]
    pub dilation: [usize; 2],
    /// Of the bottom and right padding, the rows and columns ONNX's `ceil_mode` added:
    /// padding that no average counts, even with `count_include_pad`.
    #[serde(default)]
    pub ceil_pad: [usize; 2],
}

fn adjacent_taps() -> [usize; 2] {
    [1, 1]
}

impl Pool {
    /// A window of `kernel` with `stride` and `pad` (top, left, bottom, right), adjacent
    /// taps, no ceiling.
    pub fn new(kernel: [usize; 2], stride: [usize; 2], pad: [usize; 4], count_include_pad: bool) -> Self {
        Pool { kernel, stride, pad, count_include_pad, dilation: [1, 1], ceil_pad: [0; 2] }
    }

    /// The window of a global average over an `h x w` image.
    pub fn global([h, w]: [usize; 2]) -> Self {
        Pool::new([h, w], [1, 1], [0; 4], true)
    }

    /// Height and width the window spans: `dilation * (kernel - 1) + 1`.
    pub fn extent(&self) -> [usize; 2] {
        [0, 1].map(|a| self.dilation[a] * (self.kernel[a] - 1) + 1)
    }

    /// The divisor of average pooling for output `(oy, ox)` of an `h x w` input whose window
    /// holds `in_bounds` input elements: those, or with `count_include_pad` every tap within
    /// the padded input (taps in `ceil_pad` excluded, as ONNX Runtime counts).
    pub fn divisor(&self, [oy, ox]: [usize; 2], [h, w]: [usize; 2], in_bounds: usize) -> usize {
        if !self.count_include_pad {
            return in_bounds;
        }
        let taps = |o: usize, a: usize, len: usize| {
            let end = self.pad[a] + len + self.pad[a + 2] - self.ceil_pad[a];
            (0..self.kernel[a]).filter(|&r| o * self.stride[a] + r * self.dilation[a] < end).count()
        };
        taps(oy, 0, h) * taps(ox, 1, w)
    }

    /// The input positions `[y, x]` of output `(oy, ox)`'s window over an `h x w` input, in
    /// window order, padding skipped.
    pub fn taps(&self, [oy, ox]: [usize; 2], [h, w]: [usize; 2]) -> impl Iterator<Item = [usize; 2]> + '_ {
        let at = |o: usize, a: usize, r: usize| (o * self.stride[a] + r * self.dilation[a]).checked_sub(self.pad[a]);
        (0..self.kernel[0]).flat_map(move |r| (0..self.kernel[1]).map(move |s| (at(oy, 0, r), at(ox, 1, s)))).filter_map(move |tap| {
            match tap {
                (Some(y), Some(x)) if y < h && x < w => Some([y, x]),
                _ => None,
            }
        })
    }

    /// Whether the window fits in an `h x w` input with its padding.
    pub fn fits(&self, h: usize, w: usize) -> bool {
        let e = self.extent();
        e[0] <= h + self.pad[0] + self.pad[2] && e[1] <= w + self.pad[1] + self.pad[3]
    }

    /// Output height and width for an `h x w` input (floor mode; ONNX's ceil mode is end
    /// padding, added by the importer).
    pub fn out_hw(&self, h: usize, w: usize) -> [usize; 2] {
        let e = self.extent();
        [
            (h + self.pad[0] + self.pad[2]).saturating_sub(e[0]) / self.stride[0] + 1,
            (w + self.pad[1] + self.pad[3]).saturating_sub(e[1]) / self.stride[1] + 1,
        ]
    }
}

/// One int8 tensor of the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Value {
    /// The ONNX tensor name (or a generated one).
    pub name: String,
    /// Logical shape, outermost first (NCHW for images).
    pub shape: Vec<usize>,
    /// The quantization its producer gives it.
    pub quant: Quant,
}

impl Value {
    /// Number of elements (bytes).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a node computes. Quantization of inputs and output comes from the values, except for
/// [`Op::Layer`], whose [`Layer::quant`] is authoritative (the value quantizations match it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// A convolution, depthwise convolution or GEMM on the accelerator (QLinearConv /
    /// QGemm semantics with fused bias, requantization and activation). Input NCHW or
    /// `[M, K]`, weights KRSC, bias in accumulator units.
    Layer {
        /// The layer.
        layer: Box<Layer>,
        /// Weights, KRSC with `C / groups` channels (GEMM: `[N, 1, 1, K]`).
        weights: Tensor,
        /// Bias per output channel.
        bias: Vec<i32>,
    },
    /// Max pooling (input and output share quantization).
    MaxPool(Pool),
    /// QLinearAveragePool.
    AvgPool(Pool),
    /// QLinearGlobalAveragePool: NCHW to `N x C x 1 x 1`.
    GlobalAvgPool,
    /// QLinearAdd, the inputs broadcast (numpy rules) to the output's shape, with a fused
    /// activation.
    Add(Activation),
    /// Mul (QLinearMul), Sub or Div of two int8 tensors broadcast (numpy rules) to the
    /// output's shape, in f32 on the dequantized inputs: a per-channel scale,
    /// squeeze-and-excitation, SiLU's `x * sigmoid(x)`.
    Binary(BinaryFn),
    /// [`Op::Add`] with a constant second operand (a bias per channel), with a fused
    /// activation.
    AddConst(Box<ConstOperand>, Activation),
    /// [`Op::Binary`] with a constant operand (a scale per channel, a mean to subtract).
    BinaryConst(BinaryFn, Box<ConstOperand>),
    /// Sum of any number of inputs broadcast (numpy rules) to the output's shape: each
    /// dequantized, added in f32 in input order, quantized (ONNX Runtime's float path).
    Sum,
    /// Softmax in f32 on the dequantized input: over `axis` (opset 13 on), or, when `flat`,
    /// over all the axes from `axis` on (ONNX's 2-D coercion before opset 13).
    Softmax {
        /// The (first) axis reduced.
        axis: usize,
        /// Reduce the axes from `axis` on together.
        flat: bool,
    },
    /// Local response normalization across channels (ONNX LRN) in f32 on the dequantized
    /// `N x C x ...` input.
    Lrn(Lrn),
    /// An element per output position picked along each axis independently: output
    /// element `(i0, .., ir)` is input element `(indices[0][i0], .., indices[r][ir])`.
    /// Slice, each output of Split, and nearest-neighbour Resize; int8 bytes move unchanged.
    Select {
        /// For each axis, the input index of each output index.
        indices: Vec<Vec<usize>>,
        /// The ONNX operator it comes from.
        from: SelectFrom,
    },
    /// QLinearConcat along `axis`: each input requantized to the output's quantization.
    Concat {
        /// The axis.
        axis: usize,
    },
    /// Reshape or Flatten: the same bytes under the output value's shape.
    Reshape,
    /// Transpose with ONNX's `perm`.
    Transpose {
        /// Output axis `i` is input axis `perm[i]`.
        perm: Vec<usize>,
    },
    /// Constant padding with the zero point: `pads` holds ONNX's begin values, then end values.
    Pad {
        /// Begin and end pads per axis.
        pads: Vec<usize>,
    },
    /// DequantizeLinear then QuantizeLinear to the output value's quantization, with an
    /// optional activation (a standalone ReLU / ReLU6 between two quantizations).
    Requantize(Activation),
    /// A nonlinear function of each element, as ONNX Runtime runs it on int8 data (a
    /// table of QuantizeLinear(f(DequantizeLinear(x))), f in f32).
    Unary(UnaryFn),
    /// Several float operators ONNX Runtime runs unquantized between DequantizeLinear and
    /// QuantizeLinear: the inputs dequantized, the steps in f32, the result quantized.
    FloatRegion(Box<crate::region::FloatRegion>),
}

/// The constant operand of [`Op::AddConst`] and [`Op::BinaryConst`]: int8 values, quantized
/// per tensor, broadcast (numpy rules) against the activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConstOperand {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<i8>,
    /// Their quantization.
    pub quant: Quant,
    /// The constant is the left operand (`c - x`, `c / x`); Add and Mul take it either side.
    #[serde(default)]
    pub first: bool,
}

/// The operator of [`Op::Binary`] and [`Op::BinaryConst`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryFn {
    /// `a * b`.
    Mul,
    /// `a - b`.
    Sub,
    /// `a / b` (a zero divisor gives an infinity, which quantization saturates).
    Div,
}

impl BinaryFn {
    /// `a op b` in f32.
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryFn::Mul => a * b,
            BinaryFn::Sub => a - b,
            BinaryFn::Div => a / b,
        }
    }

    /// Short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            BinaryFn::Mul => "mul",
            BinaryFn::Sub => "sub",
            BinaryFn::Div => "div",
        }
    }
}

/// ONNX LRN's attributes: `y = x / (bias + alpha / size * sum of x^2 over the size
/// channels around)^beta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Lrn {
    /// Channels summed (ONNX's `size`).
    pub size: usize,
    /// Scale of the sum (default 1e-4).
    pub alpha: f32,
    /// Exponent (default 0.75).
    pub beta: f32,
    /// Offset (default 1).
    pub bias: f32,
}

impl Lrn {
    /// LRN of an `N x C x ...` tensor (row-major, `shape` of rank 3 or more), in f32 as
    /// ONNX Runtime computes it.
    pub fn apply(&self, shape: &[usize], x: &[f32]) -> Vec<f32> {
        let (c, plane) = (shape[1], shape[2..].iter().product::<usize>());
        let (before, after) = ((self.size - 1) / 2, self.size / 2);
        let scale = self.alpha / self.size as f32;
        x.iter()
            .enumerate()
            .map(|(i, &v)| {
                let (image, ch, at) = (i / (c * plane), (i / plane) % c, i % plane);
                let sum: f32 = (ch.saturating_sub(before)..(ch + after + 1).min(c)).map(|k| x[(image * c + k) * plane + at].powi(2)).sum();
                v * (self.bias + scale * sum).powf(-self.beta)
            })
            .collect()
    }
}

/// Softmax of `x` (row-major, `shape`) over `axis`, or over the axes from `axis` on when
/// `flat`, in f32: `exp(x - max) / sum`.
pub fn softmax(shape: &[usize], x: &[f32], axis: usize, flat: bool) -> Vec<f32> {
    let (len, inner) =
        if flat { (shape[axis..].iter().product::<usize>(), 1) } else { (shape[axis], shape[axis + 1..].iter().product::<usize>()) };
    let mut y = vec![0.0; x.len()];
    for block in 0..x.len() / (len * inner).max(1) {
        for j in 0..inner {
            let at = |k: usize| block * len * inner + k * inner + j;
            let max = (0..len).map(|k| x[at(k)]).fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = (0..len).map(|k| (x[at(k)] - max).exp()).sum();
            for k in 0..len {
                y[at(k)] = (x[at(k)] - max).exp() / sum;
            }
        }
    }
    y
}

/// The ONNX operator behind an [`Op::Select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectFrom {
    /// Slice.
    Slice,
    /// One output of Split.
    Split,
    /// Resize in nearest mode.
    Resize,
}

/// An elementwise nonlinearity ([`Op::Unary`]), with ONNX's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnaryFn {
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `max(0, min(1, alpha * x + beta))`.
    HardSigmoid {
        /// Slope (ONNX default 0.2).
        alpha: f32,
        /// Offset (ONNX default 0.5).
        beta: f32,
    },
    /// `x * max(0, min(1, x / 6 + 1 / 2))` (ONNX's HardSwish: HardSigmoid with alpha 1/6,
    /// beta 1/2, times x).
    HardSwish,
    /// `x` for `x >= 0`, else `alpha * x`.
    LeakyRelu {
        /// Slope below zero (ONNX default 0.01).
        alpha: f32,
    },
}

impl UnaryFn {
    /// The function at `x`, in f32 as ONNX Runtime computes it.
    pub fn apply(&self, x: f32) -> f32 {
        let hard_sigmoid = |x: f32, alpha: f32, beta: f32| (alpha * x + beta).clamp(0.0, 1.0);
        match *self {
            UnaryFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryFn::HardSigmoid { alpha, beta } => hard_sigmoid(x, alpha, beta),
            UnaryFn::HardSwish => x * hard_sigmoid(x, 1.0 / 6.0, 0.5),
            UnaryFn::LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha * x
                }
            }
        }
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            UnaryFn::Sigmoid => "sigmoid",
            UnaryFn::HardSigmoid { .. } => "hardsigmoid",
            UnaryFn::HardSwish => "hardswish",
            UnaryFn::LeakyRelu { .. } => "leakyrelu",
        }
    }
}

impl Op {
    /// An accelerator layer with its constant data, as the compiler takes it (the input
    /// tensor, which compiling does not read, filled with the input zero point).
    pub fn layer_data(&self) -> Option<(&Layer, crate::workload::LayerData)> {
        match self {
            Op::Layer { layer, weights, bias } => Some((
                layer,
                crate::workload::LayerData {
                    input: Tensor::filled(layer.shape.input_dims(), layer.quant.x_zp),
                    weights: weights.clone(),
                    bias: bias.clone(),
                },
            )),
            _ => None,
        }
    }

    /// Short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Layer { layer, .. } => match layer.op {
                crate::layer::LayerOp::Conv => "conv",
                crate::layer::LayerOp::Depthwise => "depthwise",
                crate::layer::LayerOp::Gemm => "gemm",
            },
            Op::MaxPool(_) => "maxpool",
            Op::AvgPool(_) => "avgpool",
            Op::GlobalAvgPool => "globalavgpool",
            Op::Add(_) => "add",
            Op::Binary(f) | Op::BinaryConst(f, _) => f.name(),
            Op::AddConst(..) => "add",
            Op::Sum => "sum",
            Op::Softmax { .. } => "softmax",
            Op::Lrn(_) => "lrn",
            Op::Select { from: SelectFrom::Slice, .. } => "slice",
            Op::Select { from: SelectFrom::Split, .. } => "split",
            Op::Select { from: SelectFrom::Resize, .. } => "resize",
            Op::Concat { .. } => "concat",
            Op::Reshape => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Pad { .. } => "pad",
            Op::Requantize(_) => "requantize",
            Op::Unary(f) => f.name(),
            Op::FloatRegion(_) => "float",
        }
    }
}

/// One operator application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The ONNX node name (or a generated one).
    pub name: String,
    /// The operator.
    pub op: Op,
    /// Input values.
    pub inputs: Vec<ValueId>,
    /// Output value.
    pub output: ValueId,
}

/// A network input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetInput {
    /// The ONNX graph input's name.
    pub name: String,
    /// The int8 value it becomes.
    pub value: ValueId,
    /// True when the graph input is float and quantized by QuantizeLinear with the value's
    /// quantization; false when it is already int8.
    pub float: bool,
}

/// A network output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetOutput {
    /// The ONNX graph output's name.
    pub name: String,
    /// The int8 value it comes from.
    pub value: ValueId,
    /// Some quantization when the graph output is float (DequantizeLinear with it).
    pub dequantize: Option<Quant>,
}

/// A whole quantized network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Name (the ONNX graph's).
    pub name: String,
    /// Every int8 tensor.
    pub values: Vec<Value>,
    /// Nodes in a topological order.
    pub nodes: Vec<Node>,
    /// Inputs.
    pub inputs: Vec<NetInput>,
    /// Outputs.
    pub outputs: Vec<NetOutput>,
}

/// A tensor crossing the network boundary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostTensor {
    /// Float data (before QuantizeLinear, after DequantizeLinear).
    F32 {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major data.
        data: Vec<f32>,
    },
    /// int8 data.
    I8 {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major data.
        data: Vec<i8>,
    },
}

impl HostTensor {
    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            HostTensor::F32 { shape, .. } | HostTensor::I8 { shape, .. } => shape,
        }
    }
}

impl Network {
    /// The accelerator layers, in order, with their node indices.
    pub fn layers(&self) -> impl Iterator<Item = (usize, &Layer)> {
        self.nodes.iter().enumerate().filter_map(|(i, n)| match &n.op {
            Op::Layer { layer, .. } => Some((i, &**layer)),
            _ => None,
        })
    }

    /// Multiply-accumulates of all accelerator layers.
    pub fn macs(&self) -> u64 {
        self.layers().map(|(_, l)| l.shape.macs()).sum()
    }

    /// The dataflow graph: one graph node per network node (weight = index into
    /// [`Network::nodes`]), an edge per consumed value (weight = the value).
    pub fn graph(&self) -> DiGraph<usize, ValueId> {
        let mut g = DiGraph::with_capacity(self.nodes.len(), self.nodes.len() * 2);
        let idx: Vec<NodeIndex> = (0..self.nodes.len()).map(|i| g.add_node(i)).collect();
        let mut producer = vec![None; self.values.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            producer[n.output] = Some(i);
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for &v in &n.inputs {
                if let Some(p) = producer[v] {
                    g.add_edge(idx[p], idx[i], v);
                }
            }
        }
        g
    }

    /// Checks that every value is defined once before use, that nodes are in topological
    /// order and that every layer is valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut defined = vec![false; self.values.len()];
        let bad = |what: String| ConfigError::new("network", what);
        for i in &self.inputs {
            *defined.get_mut(i.value).ok_or_else(|| bad(format!("input `{}` names no value", i.name)))? = true;
        }
        for n in &self.nodes {
            for &v in &n.inputs {
                if !defined.get(v).copied().unwrap_or(false) {
                    return Err(bad(format!("node `{}` reads value {v} before it is computed", n.name)));
                }
            }
            let out = defined.get_mut(n.output).ok_or_else(|| bad(format!("node `{}` writes no value", n.name)))?;
            if *out {
                return Err(bad(format!("node `{}` writes value `{}` a second time", n.name, self.values[n.output].name)));
            }
            *out = true;
            if let Op::Layer { layer, .. } = &n.op {
                layer.validate().map_err(|e| e.within(&format!("node `{}`", n.name)))?;
            }
        }
        for o in &self.outputs {
            if !defined.get(o.value).copied().unwrap_or(false) {
                return Err(bad(format!("output `{}` is never computed", o.name)));
            }
        }
        Ok(())
    }
}

/// NCHW int8 data to an NHWC [`Tensor`]; `[M, K]` becomes `[1, 1, M, K]`.
pub fn to_nhwc(shape: &[usize], data: &[i8]) -> Tensor {
    match *shape {
        [n, c, h, w] => {
            let mut out = vec![0; data.len()];
            for ni in 0..n {
                for ci in 0..c {
                    for hi in 0..h {
                        for wi in 0..w {
                            out[((ni * h + hi) * w + wi) * c + ci] = data[((ni * c + ci) * h + hi) * w + wi];
                        }
                    }
                }
            }
            Tensor::from_vec([n, h, w, c], out)
        }
        [m, k] => Tensor::from_vec([1, 1, m, k], data.to_vec()),
        _ => panic!("to_nhwc: rank {} tensor; the importer only builds rank 2 and 4 layer inputs", shape.len()),
    }
}

/// An NHWC [`Tensor`] back to NCHW data (for a `[1, 1, M, N]` GEMM result, the `[M, N]` data).
pub fn from_nhwc(t: &Tensor, rank: usize) -> Vec<i8> {
    if rank == 2 {
        return t.data.clone();
    }
    let [n, h, w, c] = t.dims;
    let mut out = vec![0; t.data.len()];
    for ni in 0..n {
        for hi in 0..h {
            for wi in 0..w {
                for ci in 0..c {
                    out[((ni * c + ci) * h + hi) * w + wi] = t.data[((ni * h + hi) * w + wi) * c + ci];
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let q = Quant { scale: 0.5, zp: 3 };
        assert_eq!(q.quantize(1.25), 5); // 2.5 -> 2, + 3
        assert_eq!(q.quantize(1.75), 7); // 3.5 -> 4, + 3
        assert_eq!(q.quantize(1000.0), 127);
        assert_eq!(q.quantize(-1000.0), -128);
        assert_eq!(q.dequantize(7), 2.0);
    }

    #[test]
    fn layout_round_trip() {
        let data: Vec<i8> = (0..24).collect();
        let t = to_nhwc(&[1, 2, 3, 4], &data);
        assert_eq!(t.dims, [1, 3, 4, 2]);
        // NCHW [0, 1, 2, 3] (c=1, h=2, w=3) = 12 + 8 + 3 = 23
        assert_eq!(t.at([0, 2, 3, 1]), 23);
        assert_eq!(from_nhwc(&t, 4), data);
    }
}
