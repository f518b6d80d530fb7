//! Workload files: a list of layers with shapes and quantization, plus seeded random data.
//!
//! ```toml
//! name = "example"
//! seed = 7
//!
//! [[layer]]
//! name = "conv1"
//! op = "conv"            # conv | depthwise | gemm
//! input = [56, 56, 64]   # H, W, C
//! out_channels = 64
//! kernel = [3, 3]
//! stride = 1             # or [h, w]
//! padding = 1            # or [h, w] or [top, left, bottom, right]
//! activation = "relu"    # none | relu | relu6
//! quant = { x_scale = 0.05, x_zp = 3, w_scale = 0.01, y_scale = 0.1, y_zp = -4 }
//!
//! # optional: real tensors as NumPy .npy (paths relative to this file); random otherwise
//! data = { input = "conv1_x.npy", weights = "conv1_w.npy", bias = "conv1_b.npy" }
//!
//! [[layer]]
//! name = "fc"
//! op = "gemm"
//! m = 1
//! k = 512
//! n = 1000
//! ```

use crate::error::{read_toml, ConfigError, LoadError};
use crate::layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
use crate::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A scalar or a list in a workload file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// One value for every position.
    One(T),
    /// One value per position.
    Many(Vec<T>),
}

impl<T: Copy> OneOrMany<T> {
    fn expand(&self, field: &str, n: usize, forms: &[usize]) -> Result<Vec<T>, ConfigError> {
        match self {
            OneOrMany::One(v) => Ok(vec![*v; n]),
            OneOrMany::Many(v) if v.len() == n => Ok(v.clone()),
            OneOrMany::Many(v) if v.len() * 2 == n && forms.contains(&v.len()) => Ok(v.iter().chain(v.iter()).copied().collect()),
            OneOrMany::Many(v) => {
                Err(ConfigError::new(field, format!("has {} values; expected one of {:?} or a single value", v.len(), forms)))
            }
        }
    }
}

/// Quantization in a workload file; omitted values get defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QuantSpec {
    /// Input scale (default 0.05).
    pub x_scale: Option<f32>,
    /// Input zero point (default 0).
    pub x_zp: Option<i8>,
    /// Weight scale per tensor or per channel (default 0.01).
    pub w_scale: Option<OneOrMany<f32>>,
    /// Output scale (default: chosen so random data spans the int8 range).
    pub y_scale: Option<f32>,
    /// Output zero point (default 0).
    pub y_zp: Option<i8>,
}

/// One `[[layer]]` table as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Layer name.
    pub name: String,
    /// Operator.
    pub op: LayerOp,
    /// Conv: input `[H, W, C]`.
    pub input: Option<[usize; 3]>,
    /// Conv: output channels.
    pub out_channels: Option<usize>,
    /// Conv: kernel `[R, S]` (default 1x1).
    pub kernel: Option<OneOrMany<usize>>,
    /// Conv: stride (default 1).
    pub stride: Option<OneOrMany<usize>>,
    /// Conv: padding (default 0).
    pub padding: Option<OneOrMany<usize>>,
    /// Conv: dilation (default 1).
    pub dilation: Option<OneOrMany<usize>>,
    /// Conv: groups (default 1; depthwise: channels).
    pub groups: Option<usize>,
    /// Batch (default 1).
    pub batch: Option<usize>,
    /// GEMM: rows of the activation matrix.
    pub m: Option<usize>,
    /// GEMM: reduction length.
    pub k: Option<usize>,
    /// GEMM: output features.
    pub n: Option<usize>,
    /// Fused activation (default none).
    #[serde(default)]
    pub activation: Activation,
    /// N:4 weight sparsity (default dense): random weights are pruned to it, weights from a
    /// file must satisfy it.
    #[serde(default)]
    pub sparsity: crate::Sparsity,
    /// Weight bits, 8 (default) or 4: random weights are drawn in -7..=7, weights from a
    /// file must fit.
    #[serde(default)]
    pub weight_bits: Option<u8>,
    /// Fraction of nonzero weights, in (0, 1] (default 1): random weights are pruned to it
    /// by magnitude, unstructured; weights from a file must not be denser.
    #[serde(default)]
    pub density: Option<f64>,
    /// Input activation bits, 8 (default) or 4: random inputs are drawn in -8..=7, inputs
    /// from a file must fit, and the input zero point must be int4.
    #[serde(default)]
    pub act_bits: Option<u8>,
    /// Output bits, 8 (default) or 4: the outputs saturate to -8..=7.
    #[serde(default)]
    pub output_bits: Option<u8>,
    /// Quantization.
    #[serde(default)]
    pub quant: QuantSpec,
    /// Tensors from files instead of random ones.
    #[serde(default)]
    pub data: DataFiles,
}

/// `.npy` files holding a layer's tensors; each one absent is random from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFiles {
    /// int8 input, NHWC (`[N, H, W, C]`; GEMM: `[M, K]`).
    pub input: Option<PathBuf>,
    /// int8 weights, KRSC with `C / groups` channels (GEMM: `[N, K]`, i.e. `Gemm` with `transB = 1`).
    pub weights: Option<PathBuf>,
    /// int32 bias per output channel, in accumulator units (`x_scale * w_scale`).
    pub bias: Option<PathBuf>,
}

/// A workload file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Workload name.
    pub name: String,
    /// Seed for random tensors (default 1).
    pub seed: Option<u64>,
    /// Layers in order.
    pub layer: Vec<LayerSpec>,
}

/// A validated workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Name.
    pub name: String,
    /// Seed for random tensors.
    pub seed: u64,
    /// Layers in order.
    pub layers: Vec<Layer>,
    /// Per layer, the data files (resolved against the workload file's folder).
    pub data: Vec<DataFiles>,
}

fn need<T: Copy>(v: Option<T>, field: &str, op: &str) -> Result<T, ConfigError> {
    v.ok_or_else(|| ConfigError::new(field, format!("is required for op = \"{op}\"")))
}

impl LayerSpec {
    /// Converts to a validated [`Layer`].
    pub fn to_layer(&self) -> Result<Layer, ConfigError> {
        let shape = match self.op {
            LayerOp::Gemm => {
                for (f, v) in
                    [("input", self.input.is_some()), ("kernel", self.kernel.is_some()), ("out_channels", self.out_channels.is_some())]
                {
                    if v {
                        return Err(ConfigError::new(f, "does not apply to op = \"gemm\"").help("give m, k and n"));
                    }
                }
                let m = need(self.m, "m", "gemm")?;
                ConvShape::gemm(self.batch.unwrap_or(1), m, need(self.k, "k", "gemm")?, need(self.n, "n", "gemm")?)
            }
            LayerOp::Conv | LayerOp::Depthwise => {
                let op = if self.op == LayerOp::Conv { "conv" } else { "depthwise" };
                for (f, v) in [("m", self.m), ("k", self.k), ("n", self.n)] {
                    if v.is_some() {
                        return Err(
                            ConfigError::new(f, format!("does not apply to op = \"{op}\"")).help("give input, out_channels and kernel")
                        );
                    }
                }
                let [h, w, c] = need(self.input, "input", op)?;
                let k = match self.op {
                    LayerOp::Depthwise => self.out_channels.unwrap_or(c),
                    _ => need(self.out_channels, "out_channels", op)?,
                };
                let kernel = self.kernel.clone().unwrap_or(OneOrMany::One(1)).expand("kernel", 2, &[2])?;
                let stride = self.stride.clone().unwrap_or(OneOrMany::One(1)).expand("stride", 2, &[2])?;
                let dilation = self.dilation.clone().unwrap_or(OneOrMany::One(1)).expand("dilation", 2, &[2])?;
                let pad = self.padding.clone().unwrap_or(OneOrMany::One(0)).expand("padding", 4, &[2, 4])?;
                let groups = match self.op {
                    LayerOp::Depthwise => self.groups.unwrap_or(c),
                    _ => self.groups.unwrap_or(1),
                };
                ConvShape {
                    n: self.batch.unwrap_or(1),
                    h,
                    w,
                    c,
                    k,
                    r: kernel[0],
                    s: kernel[1],
                    stride: [stride[0], stride[1]],
                    dilation: [dilation[0], dilation[1]],
                    // [h, w] means top = bottom = h and left = right = w.
                    pad: match &self.padding {
                        Some(OneOrMany::Many(v)) if v.len() == 2 => [v[0], v[1], v[0], v[1]],
                        _ => [pad[0], pad[1], pad[2], pad[3]],
                    },
                    groups,
                }
            }
        };
        let q = &self.quant;
        let w_scale = match &q.w_scale {
            None => vec![0.01],
            Some(OneOrMany::One(v)) => vec![*v],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        let x_scale = q.x_scale.unwrap_or(0.05);
        // int4 inputs are int8 ones shifted right by 4 (a sixteenth of the spread), and int4
        // outputs should spread over a sixteenth of the codes.
        let spread = |bits: Option<u8>| if bits == Some(4) { 16.0 } else { 1.0 };
        let y_scale =
            q.y_scale.unwrap_or_else(|| default_y_scale(&shape, x_scale, w_scale[0]) / spread(self.act_bits) * spread(self.output_bits));
        let layer = Layer {
            name: self.name.clone(),
            op: self.op,
            shape,
            quant: QuantParams { x_scale, x_zp: q.x_zp.unwrap_or(0), w_scale, y_scale, y_zp: q.y_zp.unwrap_or(0) },
            activation: self.activation,
            sparsity: self.sparsity,
            weight_bits: self.weight_bits.unwrap_or(8),
            density: self.density.unwrap_or(1.0),
            act_bits: self.act_bits.unwrap_or(8),
            output_bits: self.output_bits.unwrap_or(8),
        };
        if !(layer.density > 0.0 && layer.density <= 1.0) {
            return Err(ConfigError::new("density", format!("{} is outside (0, 1]", layer.density))
                .help("give the fraction of weights kept, e.g. density = 0.25 for 75% unstructured sparsity"));
        }
        layer.validate().map_err(|mut e| {
            // A GEMM is checked as a 1x1 convolution: name its fields as the file does.
            if self.op == LayerOp::Gemm {
                let gemm_name = match e.field.as_str() {
                    "input[1] (width)" => Some("m"),
                    "input[2] (channels)" => Some("k"),
                    "out_channels" => Some("n"),
                    _ => None,
                };
                if let Some(name) = gemm_name {
                    e.field = name.into();
                }
            }
            e
        })?;
        Ok(layer)
    }
}

/// An output scale under which uniformly random int8 data gives outputs with a standard
/// deviation of about 40 codes: the accumulator of `R*S*C/G` products of two uniform int8
/// values has a standard deviation of about `74 * 74 * sqrt(R*S*C/G)`.
pub fn default_y_scale(shape: &ConvShape, x_scale: f32, w_scale: f32) -> f32 {
    // In floats: the shape is validated after this (an absurd one must not overflow here).
    let red = (shape.r as f64 * shape.s as f64 * (shape.c / shape.groups.max(1)) as f64).max(1.0) as f32;
    let acc_std = 74.0 * 74.0 * red.sqrt();
    x_scale * w_scale * acc_std / 40.0
}

impl Workload {
    /// Reads and validates a workload file.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let spec: WorkloadSpec = read_toml(path, "a workload file")?;
        let mut wl = spec.validate().map_err(|source| LoadError::invalid(path, source))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for files in &mut wl.data {
            for f in [&mut files.input, &mut files.weights, &mut files.bias].into_iter().flatten() {
                *f = dir.join(&*f);
            }
        }
        Ok(wl)
    }

    /// The tensors of layer `idx`: from its data files where given, else random from the
    /// workload's seed (each layer has its own stream).
    pub fn layer_data(&self, idx: usize) -> Result<LayerData, LoadError> {
        let layer = &self.layers[idx];
        let mut data = LayerData::random(layer, self.seed.wrapping_mul(1_000_003).wrapping_add(idx as u64));
        let files = &self.data[idx];
        let what = |t: &str| format!("layer[{idx}] ({}).data.{t}", layer.name);
        if let Some(p) = &files.input {
            data.input.data = crate::npy::read(p, &data.input.dims, &what("input"))?;
            if crate::layer::value_bits(&data.input) > layer.act_bits {
                let error = ConfigError::new(what("input"), "the layer declares act_bits = 4, but these inputs exceed -8..=7")
                    .help("quantize the activations to int4 (`systole compress --policy` with act_bits = 4) or declare act_bits = 8");
                return Err(LoadError::invalid(p, error));
            }
        }
        if let Some(p) = &files.weights {
            data.weights.data = crate::npy::read(p, &data.weights.dims, &what("weights"))?;
            if crate::layer::value_bits(&data.weights) > layer.weight_bits {
                let error = ConfigError::new(what("weights"), "the layer declares weight_bits = 4, but these weights exceed -8..=7")
                    .help("quantize the weights to int4 (`systole compress --policy` with bits = 4) or declare weight_bits = 8");
                return Err(LoadError::invalid(p, error));
            }
            let density = crate::layer::weight_density(&data.weights);
            if density > layer.density + 1e-9 {
                let error = ConfigError::new(
                    what("weights"),
                    format!("the layer declares density = {}, but {:.4} of these weights are nonzero", layer.density, density),
                )
                .help(format!(
                    "prune the weights (`systole compress --prune unstructured:{:.2}`) or declare density = {density:.4}",
                    1.0 - layer.density
                ));
                return Err(LoadError::invalid(p, error));
            }
            let found = crate::layer::weight_sparsity(&layer.shape, &data.weights);
            if found < layer.sparsity {
                let error = ConfigError::new(
                    what("weights"),
                    format!("the layer declares sparsity \"{}\", but these weights are only \"{found}\"", layer.sparsity),
                )
                .help(format!("prune the weights (`systole compress --prune {}`) or declare sparsity = \"{found}\"", layer.sparsity));
                return Err(LoadError::invalid(p, error));
            }
        }
        if let Some(p) = &files.bias {
            data.bias = crate::npy::read(p, &[layer.shape.k], &what("bias"))?;
        }
        Ok(data)
    }
}

impl WorkloadSpec {
    /// Validates every layer; errors name `layer[i]` and the field.
    pub fn validate(&self) -> Result<Workload, ConfigError> {
        if self.layer.is_empty() {
            return Err(ConfigError::new("layer", "the workload has no layers").help("add at least one [[layer]] table"));
        }
        crate::arch::check_name("name", &self.name)?;
        for (i, l) in self.layer.iter().enumerate() {
            if let Some(j) = self.layer[..i].iter().position(|m| m.name == l.name) {
                return Err(ConfigError::new(
                    format!("layer[{i}].name"),
                    format!("`{}` is also layer[{j}]'s name: a name is used twice", l.name),
                )
                .help("give every layer its own name (--layer picks one by it)"));
            }
            if l.name.is_empty() || l.name.len() > 256 || l.name.chars().any(char::is_control) {
                return Err(ConfigError::new(format!("layer[{i}].name"), format!("{:?} is not 1 to 256 printable characters", l.name)));
            }
        }
        let layers = self
            .layer
            .iter()
            .enumerate()
            .map(|(i, l)| l.to_layer().map_err(|e| e.within(&format!("layer[{i}] ({})", l.name))))
            .collect::<Result<Vec<_>, _>>()?;
        let data = self.layer.iter().map(|l| l.data.clone()).collect();
        Ok(Workload { name: self.name.clone(), seed: self.seed.unwrap_or(1), layers, data })
    }
}

/// Zeroes all but the `N` largest-magnitude weights of every group of four consecutive
/// values of `weights` (input channels, innermost in KRSC) for the format `format`; ties
/// keep the lower index.
pub fn prune_to(weights: &mut Tensor, format: crate::Sparsity) {
    let keep = format.kept();
    if keep >= crate::arch::NM_GROUP {
        return;
    }
    for group in weights.data.chunks_mut(crate::arch::NM_GROUP) {
        let mut order: Vec<usize> = (0..group.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(group[i].unsigned_abs()));
        for &i in &order[keep..] {
            group[i] = 0;
        }
    }
}

/// Zeroes the smallest-magnitude weights of `weights` until at most `density` of them are
/// nonzero (unstructured magnitude pruning; ties keep the lower index).
pub fn prune_unstructured(weights: &mut Tensor, density: f64) {
    let keep = (density * weights.data.len() as f64).round() as usize;
    let mut order: Vec<usize> = (0..weights.data.len()).filter(|&i| weights.data[i] != 0).collect();
    if order.len() <= keep {
        return;
    }
    order.sort_by_key(|&i| (std::cmp::Reverse(weights.data[i].unsigned_abs()), i));
    for &i in &order[keep..] {
        weights.data[i] = 0;
    }
}

/// The tensors of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerData {
    /// Input activations, NHWC.
    pub input: Tensor,
    /// Weights, KRSC (C per group).
    pub weights: Tensor,
    /// Bias per output channel (int32, in accumulator units).
    pub bias: Vec<i32>,
}

impl LayerData {
    /// Uniform random int8 activations and weights (weights in -127..=127, as symmetric
    /// quantization produces) and small random biases, from `seed`.
    pub fn random(layer: &Layer, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s = &layer.shape;
        let mut tensor = |dims: [usize; 4], lo: i8| {
            let n = dims.iter().product();
            Tensor::from_vec(dims, (0..n).map(|_| rng.gen_range(lo..=i8::MAX)).collect())
        };
        let mut input = tensor(s.input_dims(), i8::MIN);
        if layer.act_bits == 4 {
            for x in &mut input.data {
                *x >>= 4;
            }
        }
        let mut weights = tensor(s.weight_dims(), -127);
        if layer.weight_bits == 4 {
            for w in &mut weights.data {
                *w /= 18;
            }
        }
        prune_to(&mut weights, layer.sparsity);
        prune_unstructured(&mut weights, layer.density);
        // Biases on the scale of the accumulator: int4 inputs and weights shrink it.
        let shrink = if layer.act_bits == 4 { 16 } else { 1 } * if layer.weight_bits == 4 { 16 } else { 1 };
        let bias = (0..s.k).map(|_| rng.gen_range(-(1 << 14) / shrink..(1 << 14) / shrink)).collect();
        Self { input, weights, bias }
    }
}
