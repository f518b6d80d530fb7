//! A layer as a loop nest over named dimensions, after Timeloop's problem shapes.
//!
//! Every supported operator is a (grouped) convolution over
//! `N, H, W, C -> N, P, Q, K` with an `R x S` window; GEMM/FC is the case `H = R = S = 1`,
//! `W = M`. Activations are NHWC, weights KRSC with `C / groups` input channels.

use crate::arch::{Sparsity, NM_GROUP};
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// The operator a layer performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerOp {
    /// Convolution, dense (`groups = 1`) or grouped.
    Conv,
    /// Depthwise convolution: `groups = C = K`.
    Depthwise,
    /// Fully connected / GEMM: `M x K` times `K x N`.
    Gemm,
}

/// The activation fused into the requantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

/// Most multiply-accumulates a layer may take: 2^40, 250 times a whole ResNet-50, so that a
/// simulation of one layer ends in minutes.
pub const MAX_LAYER_MACS: u64 = 1 << 40;

/// Most cycles a layer may need at the least (`ceil(MACs / PEs)`) on an instance: 2^26,
/// ten times the largest layer of ResNet-18 on a 2x2 array, so that compiling and
/// simulating one layer stays within a minute and a few GiB (its program grows with it).
pub const MAX_LAYER_MIN_CYCLES: u64 = 1 << 26;

/// Extents of the loop nest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvShape {
    /// Batch.
    pub n: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Input channels.
    pub c: usize,
    /// Output channels.
    pub k: usize,
    /// Kernel height.
    pub r: usize,
    /// Kernel width.
    pub s: usize,
    /// Stride (vertical, horizontal).
    pub stride: [usize; 2],
    /// Dilation (vertical, horizontal).
    pub dilation: [usize; 2],
    /// Zero padding: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Channel groups; `C` and `K` are multiples of it.
    pub groups: usize,
}

impl ConvShape {
    /// The loop nest of a GEMM: `batch` times an `m x k` matrix by a `k x n` one, i.e. a
    /// 1x1 convolution over a `1 x m` input with `k` channels and `n` outputs.
    pub fn gemm(batch: usize, m: usize, k: usize, n: usize) -> Self {
        Self { n: batch, h: 1, w: m, c: k, k: n, r: 1, s: 1, stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: 1 }
    }

    /// Padded input height.
    pub fn hp(&self) -> usize {
        self.h + self.pad[0] + self.pad[2]
    }
    /// Padded input width.
    pub fn wp(&self) -> usize {
        self.w + self.pad[1] + self.pad[3]
    }
    /// Effective kernel extent in rows, with dilation.
    pub fn r_span(&self) -> usize {
        (self.r - 1) * self.dilation[0] + 1
    }
    /// Effective kernel extent in columns, with dilation.
    pub fn s_span(&self) -> usize {
        (self.s - 1) * self.dilation[1] + 1
    }
    /// Output height.
    pub fn p(&self) -> usize {
        (self.hp() - self.r_span()) / self.stride[0] + 1
    }
    /// Output width.
    pub fn q(&self) -> usize {
        (self.wp() - self.s_span()) / self.stride[1] + 1
    }
    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }
    /// Output channels per group.
    pub fn kg(&self) -> usize {
        self.k / self.groups
    }
    /// Useful multiply-accumulates.
    pub fn macs(&self) -> u64 {
        (self.n * self.p() * self.q() * self.k * self.r * self.s * self.cg()) as u64
    }
    /// Input tensor dims, NHWC.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.n, self.h, self.w, self.c]
    }
    /// Output tensor dims, NHWC.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.n, self.p(), self.q(), self.k]
    }
    /// Weight tensor dims, KRSC.
    pub fn weight_dims(&self) -> [usize; 4] {
        [self.k, self.r, self.s, self.cg()]
    }

    /// Checks that the loop nest is legal.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (f, v) in [
            ("batch", self.n),
            ("input[0] (height)", self.h),
            ("input[1] (width)", self.w),
            ("input[2] (channels)", self.c),
            ("out_channels", self.k),
            ("kernel[0]", self.r),
            ("kernel[1]", self.s),
            ("stride[0]", self.stride[0]),
            ("stride[1]", self.stride[1]),
            ("dilation[0]", self.dilation[0]),
            ("dilation[1]", self.dilation[1]),
            ("groups", self.groups),
        ] {
            if v == 0 {
                return Err(ConfigError::new(f, "must be at least 1"));
            }
            if v as u64 > crate::input::MAX_TENSOR_ELEMENTS {
                return Err(ConfigError::new(f, format!("{v} is more than the {} accepted", crate::input::MAX_TENSOR_ELEMENTS)));
            }
        }
        for (i, &p) in self.pad.iter().enumerate() {
            if p as u64 > crate::input::MAX_TENSOR_ELEMENTS {
                return Err(ConfigError::new(
                    format!("padding[{i}]"),
                    format!("{p} is more than the {} accepted", crate::input::MAX_TENSOR_ELEMENTS),
                ));
            }
        }
        // Every extent is at most 2^30 here, so the products below fit in 128 bits.
        let elements = |dims: [usize; 4]| dims.iter().map(|&d| d as u128).product::<u128>();
        let max = crate::input::MAX_TENSOR_ELEMENTS as u128;
        for (what, dims) in [("input", [self.n, self.h, self.w, self.c]), ("weights", [self.k, self.r, self.s, self.c / self.groups])] {
            if elements(dims) > max {
                return Err(ConfigError::new(
                    what,
                    format!("{dims:?} is a tensor of {} elements, more than the {max} accepted", elements(dims)),
                )
                .help("split the layer, or lower its batch"));
            }
        }
        if !self.c.is_multiple_of(self.groups) || !self.k.is_multiple_of(self.groups) {
            return Err(ConfigError::new(
                "groups",
                format!("{} groups do not divide {} input and {} output channels", self.groups, self.c, self.k),
            ));
        }
        if self.r_span() > self.hp() || self.s_span() > self.wp() {
            return Err(ConfigError::new(
                "kernel",
                format!(
                    "a {}x{} window (dilated {}x{}) exceeds the padded {}x{} input",
                    self.r,
                    self.s,
                    self.r_span(),
                    self.s_span(),
                    self.hp(),
                    self.wp()
                ),
            )
            .help("use a smaller kernel or more padding"));
        }
        let out = [self.n, self.p(), self.q(), self.k];
        if elements(out) > max {
            return Err(ConfigError::new(
                "out_channels",
                format!("the output {out:?} has {} elements, more than the {max} accepted", elements(out)),
            )
            .help("split the layer, or lower its batch"));
        }
        let macs = elements(out) * (self.r * self.s * self.cg()) as u128;
        if macs > MAX_LAYER_MACS as u128 {
            return Err(ConfigError::new(
                "input",
                format!("the layer takes {macs} multiply-accumulates, more than the {MAX_LAYER_MACS} accepted"),
            )
            .help("split the layer, or lower its batch"));
        }
        for (i, side) in ["top", "left", "bottom", "right"].iter().enumerate() {
            let span = if i % 2 == 0 { self.r_span() } else { self.s_span() };
            if self.pad[i] >= span {
                return Err(ConfigError::new(
                    format!("padding[{i}]"),
                    format!(
                        "{side} padding {} is not smaller than the kernel extent {span}: whole output rows would see only padding",
                        self.pad[i]
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Quantization parameters in ONNX QLinearConv terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// Input scale.
    pub x_scale: f32,
    /// Input zero point.
    pub x_zp: i8,
    /// Weight scale, one value (per tensor) or one per output channel.
    pub w_scale: Vec<f32>,
    /// Output scale.
    pub y_scale: f32,
    /// Output zero point.
    pub y_zp: i8,
}

impl QuantParams {
    /// The requantization scale of output channel `k`, computed as ONNX Runtime does:
    /// `x_scale * w_scale[k] / y_scale`, each step rounded to f32.
    pub fn channel_scale(&self, k: usize) -> f32 {
        let ws = if self.w_scale.len() == 1 { self.w_scale[0] } else { self.w_scale[k] };
        self.x_scale * ws / self.y_scale
    }

    fn validate(&self, k: usize) -> Result<(), ConfigError> {
        let ok = |v: f32| v.is_finite() && v > 0.0 && v.is_normal();
        if !ok(self.x_scale) {
            return Err(ConfigError::new("quant.x_scale", format!("{} is not a positive normal float", self.x_scale))
                .help("a scale is a positive number such as 0.05"));
        }
        // The weight scales before the output scale, whose default is derived from them.
        if self.w_scale.len() != 1 && self.w_scale.len() != k {
            return Err(ConfigError::new(
                "quant.w_scale",
                format!("has {} values; give one (per tensor) or {k} (per output channel)", self.w_scale.len()),
            ));
        }
        if let Some(i) = self.w_scale.iter().position(|&v| !ok(v)) {
            return Err(ConfigError::new(format!("quant.w_scale[{i}]"), format!("{} is not a positive normal float", self.w_scale[i]))
                .help("a scale is a positive number such as 0.01"));
        }
        if !ok(self.y_scale) {
            return Err(ConfigError::new("quant.y_scale", format!("{} is not a positive normal float", self.y_scale))
                .help("a scale is a positive number such as 0.1"));
        }
        for i in 0..k {
            let s = self.channel_scale(i);
            if !(s.is_finite() && s.is_normal()) {
                return Err(ConfigError::new("quant", format!("x_scale * w_scale[{i}] / y_scale = {s} is not a normal float")));
            }
        }
        Ok(())
    }
}

/// One layer: operator, loop-nest shape, quantization and fused activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Name for reports.
    pub name: String,
    /// The operator.
    pub op: LayerOp,
    /// Loop-nest extents.
    pub shape: ConvShape,
    /// Quantization parameters.
    pub quant: QuantParams,
    /// Fused activation.
    pub activation: Activation,
    /// The N:4 format its weights satisfy (at most N nonzeros in every group of four input
    /// channels of one output channel and tap): an instance that skips that format runs the
    /// layer sparse (docs/ARCHITECTURE.md section 3). `dense` (the default) claims nothing.
    #[serde(default)]
    pub sparsity: Sparsity,
    /// Bits of its weights: 8, or 4 (every weight in -8..=7), which an instance with
    /// `int4_weights` runs packed, two per PE.
    #[serde(default = "eight")]
    pub weight_bits: u8,
    /// Fraction of its weights that are nonzero (default 1). An instance with
    /// `csc_weights` sizes the layer's CSC tiles from it when the weights are not at hand
    /// (docs/ARCHITECTURE.md section 3); with the weights, their own zeros decide.
    #[serde(default = "one")]
    pub density: f64,
    /// Bits of its input activations: 8, or 4 (every input value, and the input zero
    /// point, in -8..=7), which an instance with `int4_activations` runs with int4 weights
    /// at four MACs per PE (docs/ARCHITECTURE.md section 3).
    #[serde(default = "eight")]
    pub act_bits: u8,
    /// Bits of its outputs: 8, or 4, when the requantizer saturates to -8..=7 (ONNX
    /// `QuantizeLinear` to INT4), so that the next layer's activations are int4.
    #[serde(default = "eight")]
    pub output_bits: u8,
}

fn eight() -> u8 {
    8
}

fn one() -> f64 {
    1.0
}

/// Fraction of `weights` that are nonzero (1 for an empty tensor).
pub fn weight_density(weights: &crate::Tensor) -> f64 {
    if weights.data.is_empty() {
        return 1.0;
    }
    weights.data.iter().filter(|&&w| w != 0).count() as f64 / weights.data.len() as f64
}

impl Layer {
    /// Checks shape, operator consistency and quantization.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.shape.validate()?;
        let s = &self.shape;
        match self.op {
            LayerOp::Depthwise if !(s.groups == s.c && s.k == s.c) => {
                return Err(ConfigError::new(
                    "groups",
                    format!(
                        "a depthwise layer needs groups = channels = out_channels, got groups {}, channels {}, out_channels {}",
                        s.groups, s.c, s.k
                    ),
                )
                .help("use op = \"conv\" with groups for other grouped convolutions"))
            }
            LayerOp::Gemm if !(s.h == 1 && s.r == 1 && s.s == 1 && s.groups == 1) => {
                return Err(ConfigError::new("op", "a gemm layer must be 1 x M with a 1x1 kernel"))
            }
            _ => {}
        }
        if self.sparsity != Sparsity::Dense && (self.op == LayerOp::Depthwise || !s.cg().is_multiple_of(NM_GROUP)) {
            return Err(ConfigError::new(
                "sparsity",
                format!(
                    "\"{}\" needs groups of {NM_GROUP} input channels, but this {} layer has {} per group",
                    self.sparsity,
                    if self.op == LayerOp::Depthwise { "depthwise" } else { "dense" },
                    s.cg()
                ),
            )
            .help("use sparsity = \"dense\" for this layer (depthwise layers and channel counts not divisible by 4 run dense)"));
        }
        for (field, bits) in [("weight_bits", self.weight_bits), ("act_bits", self.act_bits), ("output_bits", self.output_bits)] {
            if bits != 8 && bits != 4 {
                return Err(ConfigError::new(field, format!("{bits} bits is not supported")).help("use 8 or 4"));
            }
        }
        if self.act_bits == 4 && !INT4.contains(&self.quant.x_zp) {
            return Err(ConfigError::new("quant.x_zp", format!("{} is outside -8..=7, the range of int4 activations", self.quant.x_zp))
                .help("give an int4 input zero point, or act_bits = 8"));
        }
        if self.output_bits == 4 && !INT4.contains(&self.quant.y_zp) {
            return Err(ConfigError::new("quant.y_zp", format!("{} is outside -8..=7, the range of int4 outputs", self.quant.y_zp))
                .help("give an int4 output zero point, or output_bits = 8"));
        }
        self.quant.validate(s.k)
    }

    /// Output clamp bounds `(lo, hi)` that implement the fused activation.
    /// With `output_bits = 4` they are narrowed to the int4 range.
    pub fn clamp_bounds(&self) -> (i8, i8) {
        let (lo, hi) = activation_bounds(self.activation, self.quant.y_scale, self.quant.y_zp);
        if self.output_bits == 4 {
            (lo.clamp(*INT4.start(), *INT4.end()), hi.clamp(*INT4.start(), *INT4.end()))
        } else {
            (lo, hi)
        }
    }
}

/// The quantized output range of an activation: ReLU clamps at the zero point, ReLU6 also at
/// `y_zp + round_half_even(6 / y_scale)`, both saturated to int8.
pub fn activation_bounds(act: Activation, y_scale: f32, y_zp: i8) -> (i8, i8) {
    match act {
        Activation::None => (i8::MIN, i8::MAX),
        Activation::Relu => (y_zp, i8::MAX),
        Activation::Relu6 => {
            let six = ((6.0f32 / y_scale).round_ties_even() as i64).saturating_add(y_zp as i64);
            (y_zp, six.clamp(i8::MIN as i64, i8::MAX as i64) as i8)
        }
    }
}

/// The densest N:4 format that `weights` (KRSC, `C` per group, of a layer of shape `shape`)
/// satisfy: the largest count of nonzeros in a group of four input channels of one output
/// channel and tap decides. Dense when the channels do not divide into fours.
pub fn weight_sparsity(shape: &ConvShape, weights: &crate::Tensor) -> Sparsity {
    let cg = shape.cg();
    if !cg.is_multiple_of(NM_GROUP) || weights.data.is_empty() {
        return Sparsity::Dense;
    }
    let worst = weights.data.chunks(NM_GROUP).map(|g| g.iter().filter(|&&w| w != 0).count()).max().unwrap_or(0);
    Sparsity::for_nonzeros(worst)
}

/// The values of a signed int4.
pub const INT4: std::ops::RangeInclusive<i8> = -8..=7;

/// The fewest bits, 4 or 8, that hold every value of `values` (int4: -8..=7).
pub fn value_bits(values: &crate::Tensor) -> u8 {
    if values.data.iter().all(|w| INT4.contains(w)) {
        4
    } else {
        8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::prune_to;

    #[test]
    fn weight_formats_by_hand() {
        let shape = ConvShape { n: 1, h: 1, w: 1, c: 8, k: 1, r: 1, s: 1, stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: 1 };
        let t = |v: Vec<i8>| crate::Tensor::from_vec([1, 1, 1, 8], v);
        // Groups [3, 0, -2, 0] and [0, 0, 0, 9]: at most two nonzeros per four.
        assert_eq!(weight_sparsity(&shape, &t(vec![3, 0, -2, 0, 0, 0, 0, 9])), Sparsity::TwoOfFour);
        assert_eq!(weight_sparsity(&shape, &t(vec![3, 0, 0, 0, 0, 0, 0, 9])), Sparsity::OneOfFour);
        assert_eq!(weight_sparsity(&shape, &t(vec![3, 1, -2, 0, 0, 0, 0, 9])), Sparsity::Dense);
        assert_eq!(value_bits(&t(vec![-8, 7, 0, 1, 2, 3, 4, 5])), 4);
        assert_eq!(value_bits(&t(vec![-9, 7, 0, 1, 2, 3, 4, 5])), 8);
        // Six channels do not divide into fours.
        let six = ConvShape { c: 6, ..shape };
        assert_eq!(weight_sparsity(&six, &crate::Tensor::from_vec([1, 1, 1, 6], vec![0; 6])), Sparsity::Dense);
        // Pruning keeps the largest magnitudes, ties to the lower index.
        let mut w = t(vec![1, -5, 5, 2, 7, 7, 7, 7]);
        prune_to(&mut w, Sparsity::TwoOfFour);
        assert_eq!(w.data, vec![0, -5, 5, 0, 7, 7, 0, 0]);
        prune_to(&mut w, Sparsity::OneOfFour);
        assert_eq!(w.data, vec![0, -5, 0, 0, 7, 0, 0, 0]);
    }
}
