//! Weight pruning of float models, and the accuracy proxy of the result.
//!
//! ```text
//!  float ONNX ──prune each Conv / Gemm / MatMul weight by its policy (magnitude based):
//!     │          unstructured at a ratio, or N:M along the reduction (input channels)
//!     ▼ ──run the original and the pruned graph on the calibration inputs
//!  pruned float ONNX + per layer: weights, zeros, sparsity, output SQNR against the original
//! ```
//!
//! **N:M.** A weight's reduction runs over input channels: for a Conv `[K, C, R, S]`, each
//! output channel `k` and tap `(r, s)` has a run of `C` weights; for a Gemm, each output
//! column has a run of `K` weights. Each run is cut into groups of `M` consecutive
//! elements (the last group possibly shorter), and each group keeps its `N` weights of
//! largest magnitude (ties: the lower index), as sparse tensor cores store 2:4. A depthwise
//! convolution has runs of one weight, which N:M leaves dense.
//!
//! **Unstructured.** The `round(ratio * count)` weights of smallest magnitude in the layer
//! become zero (ties: the lower index).
//!
//! **Accuracy proxy.** The signal-to-quantization-noise ratio of a tensor over the
//! calibration samples, `10 log10(sum ref^2 / sum (ref - x)^2)` dB, where `ref` is the
//! original model's value and `x` the compressed model's; per layer at its output (so it
//! includes the error of every layer before it) and for every graph output. Equal tensors
//! give infinity.

use crate::CompressError;
use onnx_protobuf::NodeProto;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use systole_core::network::Quant;
use systole_onnx::attrs::{dtype, tensor_proto, Const};
use systole_onnx::float::{self, FTensor};
use systole_onnx::ptq::Sample;
use systole_onnx::{node_name, OnnxError, OnnxModel};

/// How a layer's weights are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pruning {
    /// Dense.
    #[default]
    None,
    /// The smallest `ratio` of the weights by magnitude become zero.
    Unstructured {
        /// Fraction pruned, in `[0, 1)`.
        ratio: f64,
    },
    /// The `ratio` of output channels (filters) of smallest L1 norm removed, with the
    /// matching input channels of the next dense Conv.
    Channels {
        /// Fraction removed, in `[0, 1)`.
        ratio: f64,
    },
    /// At most `n` nonzeros in every group of `m` consecutive reduction weights.
    NofM {
        /// Kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
}

/// What `--prune` and policy files accept.
const PRUNING_USAGE: &str = "use `none`, `unstructured:0.5`, `channels:0.25` or an N:M pattern such as `2:4` or `1:4`";

/// A value that is not a [`Pruning`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruningError {
    /// `unstructured:R` or `channels:R` with `R` outside `[0, 1)`.
    #[error("`{0}`: the ratio must be a number in [0, 1); {PRUNING_USAGE}")]
    Ratio(String),
    /// `N:M` without `1 <= N < M <= 64`.
    #[error("`{0}`: N:M needs 1 <= N < M <= 64")]
    NofM(String),
    /// Not a pruning at all.
    #[error("`{0}` is not a pruning; {PRUNING_USAGE}")]
    Unknown(String),
}

impl std::str::FromStr for Pruning {
    type Err = PruningError;

    /// `none`, `unstructured:R` (`0 <= R < 1`) or `N:M` (`1 <= N < M <= 64`), e.g. `2:4`.
    fn from_str(s: &str) -> Result<Self, PruningError> {
        if s == "none" {
            return Ok(Pruning::None);
        }
        for (prefix, make) in [
            ("unstructured:", (|ratio| Pruning::Unstructured { ratio }) as fn(f64) -> Pruning),
            ("channels:", |ratio| Pruning::Channels { ratio }),
        ] {
            if let Some(r) = s.strip_prefix(prefix) {
                return match r.parse::<f64>() {
                    Ok(ratio) if (0.0..1.0).contains(&ratio) => Ok(make(ratio)),
                    _ => Err(PruningError::Ratio(s.into())),
                };
            }
        }
        match s.split_once(':').map(|(n, m)| (n.parse::<usize>(), m.parse::<usize>())) {
            Some((Ok(n), Ok(m))) if 1 <= n && n < m && m <= 64 => Ok(Pruning::NofM { n, m }),
            Some((Ok(_), Ok(_))) => Err(PruningError::NofM(s.into())),
            _ => Err(PruningError::Unknown(s.into())),
        }
    }
}

impl std::fmt::Display for Pruning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pruning::None => f.write_str("none"),
            Pruning::Unstructured { ratio } => write!(f, "unstructured:{ratio}"),
            Pruning::Channels { ratio } => write!(f, "channels:{ratio}"),
            Pruning::NofM { n, m } => write!(f, "{n}:{m}"),
        }
    }
}

/// A compression policy: a default for every layer, and overrides by node name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// For layers not named in `layers`.
    pub default: Pruning,
    /// By Conv / Gemm / MatMul node name.
    pub layers: BTreeMap<String, Pruning>,
    /// Weight bits (4 or 8) for layers not named in `layer_bits`; `None`: the model is not
    /// quantized (unless a layer names its bits).
    pub default_bits: Option<u8>,
    /// Weight bits by node name.
    pub layer_bits: BTreeMap<String, u8>,
    /// Input activation bits (4 or 8) for layers not named in `layer_act_bits`; int4
    /// applies where the input can be int4 ([`systole_onnx::ptq::int4_inputs`]).
    pub default_act_bits: Option<u8>,
    /// Input activation bits by node name; a layer named with 4 must be able to take int4.
    pub layer_act_bits: BTreeMap<String, u8>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: LayerEntry,
    #[serde(default)]
    layers: BTreeMap<String, LayerEntry>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    prune: Option<String>,
    bits: Option<u8>,
    act_bits: Option<u8>,
}

impl Policy {
    /// Reads a policy file:
    ///
    /// ```toml
    /// [default]
    /// prune = "2:4"
    /// bits = 4                # int4 weights (per-channel PTQ); 8 by default
    /// act_bits = 4            # int4 input activations where the input can be int4
    /// [layers."conv0"]        # node names, as `systole compress` lists them
    /// prune = "none"
    /// bits = 8
    /// act_bits = 8
    /// ```
    ///
    /// Errors name the file, the field and the fix.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, CompressError> {
        let error = |message: String| CompressError::Policy { path: path.into(), message };
        let f: PolicyFile = toml::from_str(text).map_err(|e| error(e.message().to_string()))?;
        let parse = |field: String, e: &LayerEntry| -> Result<Pruning, CompressError> {
            e.prune.as_deref().map_or(Ok(Pruning::None), |s| s.parse().map_err(|m| error(format!("`{field}`: {m}"))))
        };
        let bits = |field: String, b: Option<u8>| match b {
            None | Some(4) | Some(8) => Ok(b),
            Some(b) => Err(error(format!("`{field}`: {b} bits is not supported; use 4 or 8"))),
        };
        let default = parse("default.prune".into(), &f.default)?;
        let default_bits = bits("default.bits".into(), f.default.bits)?;
        let default_act_bits = bits("default.act_bits".into(), f.default.act_bits)?;
        let (mut layers, mut layer_bits, mut layer_act_bits) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        for (k, e) in &f.layers {
            if e.prune.is_some() || (e.bits.is_none() && e.act_bits.is_none()) {
                layers.insert(k.clone(), parse(format!("layers.\"{k}\".prune"), e)?);
            }
            if let Some(b) = bits(format!("layers.\"{k}\".bits"), e.bits)? {
                layer_bits.insert(k.clone(), b);
            }
            if let Some(b) = bits(format!("layers.\"{k}\".act_bits"), e.act_bits)? {
                layer_act_bits.insert(k.clone(), b);
            }
        }
        Ok(Self { default, layers, default_bits, layer_bits, default_act_bits, layer_act_bits })
    }

    fn for_layer(&self, name: &str) -> Pruning {
        self.layers.get(name).copied().unwrap_or(self.default)
    }

    /// The weight bits of layer `name`, when the policy quantizes it.
    pub fn bits_for(&self, name: &str) -> Option<u8> {
        self.layer_bits.get(name).copied().or(self.default_bits)
    }

    /// Whether layer `name` asks for int4 input activations.
    pub fn wants_int4_input(&self, name: &str) -> bool {
        self.layer_act_bits.get(name).copied().or(self.default_act_bits) == Some(4)
    }

    /// Whether the policy sets weight or activation bits anywhere: `systole compress` then
    /// writes the quantized model.
    pub fn quantizes(&self) -> bool {
        self.default_bits.is_some() || !self.layer_bits.is_empty() || self.default_act_bits.is_some() || !self.layer_act_bits.is_empty()
    }
}

/// What compression did to one layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LayerStats {
    /// Node name.
    pub name: String,
    /// Operator.
    pub op: String,
    /// The pruning applied.
    pub pruning: String,
    /// Weights after pruning (channel pruning removes some, here and in the next layer).
    pub weights: usize,
    /// Weights removed by channel pruning (this layer's filters, or its input channels).
    pub removed: usize,
    /// Zero weights after pruning (including any that were zero before).
    pub zeros: usize,
    /// Weight bits when the policy quantizes the layer.
    pub bits: Option<u8>,
    /// Input activation bits: 4 where the policy asks it and the input can be int4, else 8
    /// (int8 rounding is outside the accuracy proxy; int4 is in it).
    pub act_bits: u8,
    /// Output SQNR against the original model, dB (all compression before it included).
    pub sqnr_db: f64,
}

/// The compressed model's report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Per compressible layer, in graph order.
    pub layers: Vec<LayerStats>,
    /// Per graph output: name and SQNR, dB.
    pub outputs: Vec<(String, f64)>,
}

/// How one weight tensor's reduction runs lie in memory: one run of `len` elements per
/// entry of `starts`, element `i` of run `v` at `starts[v] + i * stride`.
struct Runs {
    len: usize,
    stride: usize,
    starts: Vec<usize>,
}

impl Runs {
    /// Conv `[K, C, R, S]`: a run per `(k, r, s)` over `C`.
    fn conv(dims: &[usize]) -> Self {
        let (k, c, taps) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
        let starts = (0..k).flat_map(|k| (0..taps).map(move |t| k * c * taps + t)).collect();
        Runs { len: c, stride: taps, starts }
    }

    /// A 2-D weight whose reduction is axis `red` (0 for `[K, N]`, 1 for `[N, K]`).
    fn matrix(dims: &[usize], red: usize) -> Self {
        let (rows, cols) = (dims[0], dims[1]);
        if red == 1 {
            Runs { len: cols, stride: 1, starts: (0..rows).map(|r| r * cols).collect() }
        } else {
            Runs { len: rows, stride: cols, starts: (0..cols).collect() }
        }
    }
}

/// Prunes `w` in place; returns the zero count.
fn prune(w: &mut [f32], runs: &Runs, pruning: Pruning) -> usize {
    let by_magnitude = |a: &(usize, f32), b: &(usize, f32)| a.1.abs().total_cmp(&b.1.abs()).then(a.0.cmp(&b.0));
    match pruning {
        Pruning::None | Pruning::Channels { .. } => {}
        Pruning::Unstructured { ratio } => {
            let mut order: Vec<(usize, f32)> = w.iter().copied().enumerate().collect();
            order.sort_by(by_magnitude);
            let cut = (ratio * w.len() as f64).round() as usize;
            for &(i, _) in &order[..cut.min(w.len())] {
                w[i] = 0.0;
            }
        }
        Pruning::NofM { n, m } => {
            for &start in &runs.starts {
                for g0 in (0..runs.len).step_by(m) {
                    let mut group: Vec<(usize, f32)> =
                        (g0..(g0 + m).min(runs.len)).map(|i| start + i * runs.stride).map(|i| (i, w[i])).collect();
                    // Largest first: keep the first n.
                    group.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
                    for &(i, _) in group.iter().skip(n) {
                        w[i] = 0.0;
                    }
                }
            }
        }
    }
    w.iter().filter(|&&v| v == 0.0).count()
}

/// The weight input of a compressible node and its reduction runs, or None for other
/// nodes and non-constant weights.
fn weight_runs(n: &NodeProto, consts: &HashMap<String, Const>) -> Option<(String, Runs)> {
    let name = n.input.get(1)?.clone();
    let c = consts.get(&name)?;
    let runs = match (n.op_type.as_str(), c.dims.len()) {
        ("Conv", r) if r >= 3 => Runs::conv(&c.dims),
        ("Gemm", 2) => Runs::matrix(&c.dims, if systole_onnx::attrs::int(n, "transB", 0) != 0 { 1 } else { 0 }),
        ("MatMul", 2) => Runs::matrix(&c.dims, 0),
        _ => return None,
    };
    Some((name, runs))
}

/// Where a layer's output channels go: the per-channel constants along the way (batch
/// norm parameters, depthwise weights and biases: axis 0 is the channel), the depthwise
/// nodes whose `group` follows the channel count, the tensors that carry the channels, and
/// the consumer whose weights' axis 1 (input channels) shrinks with them.
struct ChannelChain {
    cuts: Vec<String>,
    depthwise: Vec<usize>,
    tensors: Vec<String>,
    consumer: usize,
}

/// The chain from node `i`'s output to the one dense Conv it feeds through per-channel
/// operators (BatchNormalization, Relu, Clip, depthwise Conv), or why there is none.
fn channel_chain(nodes: &[NodeProto], consts: &HashMap<String, Const>, outputs: &[String], i: usize) -> Result<ChannelChain, String> {
    let mut chain = ChannelChain { cuts: vec![], depthwise: vec![], tensors: vec![nodes[i].output[0].clone()], consumer: 0 };
    let constant = |name: &str| consts.contains_key(name);
    loop {
        let t = chain.tensors.last().expect("the layer's output").clone();
        if outputs.contains(&t) {
            return Err(format!("its channels reach the graph output `{t}`"));
        }
        let users: Vec<usize> = (0..nodes.len()).filter(|&j| nodes[j].input.contains(&t)).collect();
        let [j] = users[..] else {
            return Err(format!("its channels reach {} nodes", users.len()));
        };
        let n = &nodes[j];
        let (op, out) = (n.op_type.as_str(), n.output[0].clone());
        let weights = n.input.get(1).and_then(|w| consts.get(w));
        match op {
            "BatchNormalization" if n.input[1..5].iter().all(|c| constant(c)) => chain.cuts.extend(n.input[1..5].iter().cloned()),
            "Relu" | "Clip" if n.input[0] == t => {}
            "Conv" if n.input[0] == t => {
                let w = weights.ok_or_else(|| format!("Conv `{}` has no constant weights", node_name(n)))?;
                let group = systole_onnx::attrs::group(n)?;
                if group > 1 && group == w.dims[0] && w.dims.get(1) == Some(&1) {
                    chain.cuts.extend(n.input[1..].iter().filter(|c| !c.is_empty()).cloned());
                    chain.depthwise.push(j);
                } else if group == 1 {
                    chain.consumer = j;
                    return Ok(chain);
                } else {
                    return Err(format!("its channels reach the grouped Conv `{}`", node_name(n)));
                }
            }
            _ => return Err(format!("its channels reach {op} `{}`", node_name(n))),
        }
        chain.tensors.push(out);
    }
}

/// Keeps the entries `keep` (sorted) of axis `axis` of `c`.
fn keep_along(c: &Const, axis: usize, keep: &[usize]) -> Const {
    let outer: usize = c.dims[..axis].iter().product();
    let inner: usize = c.dims[axis + 1..].iter().product();
    let n = c.dims[axis];
    let vals = (0..outer)
        .flat_map(|o| keep.iter().flat_map(move |&k| (0..inner).map(move |i| (o * n + k) * inner + i)))
        .map(|i| c.vals[i])
        .collect();
    let mut dims = c.dims.clone();
    dims[axis] = keep.len();
    Const { dims, vals, ..c.clone() }
}

/// Prunes `model` (a float model read from `path`) by `policy` and measures the result on
/// `samples`. A policy naming a layer the model does not have, or asking to prune the
/// channels of a layer whose channels do not lead to one dense Conv, is an error.
pub fn compress(model: &OnnxModel, path: &Path, policy: &Policy, samples: &[Sample]) -> Result<(OnnxModel, Report), OnnxError> {
    let graph_err = |message: String, help: String| OnnxError::Graph { path: path.into(), message, help };
    if !systole_onnx::ptq::is_float(model) {
        return Err(graph_err("the model is quantized".into(), "compress the float model, then quantize it".into()));
    }
    if samples.is_empty() {
        return Err(graph_err("no calibration samples".into(), "give at least one calibration input".into()));
    }
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let (consts, nodes) = systole_onnx::ptq::prepare(model, path)?;
    let layers: Vec<(usize, String)> = (0..nodes.len()).filter_map(|i| weight_runs(&nodes[i], &consts).map(|(w, _)| (i, w))).collect();
    if let Some(unknown) = policy
        .layers
        .keys()
        .chain(policy.layer_bits.keys())
        .chain(policy.layer_act_bits.keys())
        .find(|k| !layers.iter().any(|&(i, _)| &node_name(&nodes[i]) == *k))
    {
        let names: Vec<String> = layers.iter().map(|&(i, _)| node_name(&nodes[i])).collect();
        return Err(graph_err(
            format!("the policy names layer `{unknown}`, which the model does not have"),
            format!("the model's Conv/Gemm/MatMul layers are: {}", names.join(", ")),
        ));
    }
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();

    // Channels first: they change shapes, including the next layer's.
    let mut work = consts.clone();
    let mut out_nodes = nodes.clone();
    let mut kept: HashMap<String, Vec<usize>> = HashMap::new();
    let mut applied: HashMap<usize, Pruning> = HashMap::new();
    for &(i, ref w) in &layers {
        let name = node_name(&nodes[i]);
        let pruning = policy.for_layer(&name);
        let Pruning::Channels { ratio } = pruning else {
            applied.insert(i, pruning);
            continue;
        };
        let chain = match channel_chain(&out_nodes, &work, &outputs, i) {
            Ok(c) if nodes[i].op_type == "Conv" && systole_onnx::attrs::int(&nodes[i], "group", 1) == 1 => c,
            Ok(_) | Err(_) if !policy.layers.contains_key(&name) => {
                // The default applies where it can.
                applied.insert(i, Pruning::None);
                continue;
            }
            Ok(_) => return Err(graph_err(format!("layer `{name}`: channel pruning needs a dense Conv"), "prune it with N:M or unstructured".into())),
            Err(why) => {
                return Err(graph_err(
                    format!("layer `{name}`: its output channels cannot be pruned: {why}"),
                    "channel pruning needs the output to feed one dense Conv through BatchNormalization, Relu, Clip or depthwise convolutions; prune this layer with N:M or unstructured".into(),
                ))
            }
        };
        let c = &work[w];
        let k = c.dims[0];
        let per: usize = c.dims[1..].iter().product();
        let mut norms: Vec<(usize, f64)> = (0..k).map(|f| (f, c.vals[f * per..(f + 1) * per].iter().map(|v| v.abs()).sum())).collect();
        norms.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let cut = ((ratio * k as f64).round() as usize).min(k - 1);
        let mut keep: Vec<usize> = norms[cut..].iter().map(|&(f, _)| f).collect();
        keep.sort_unstable();
        let mut cuts = vec![w.clone()];
        cuts.extend(nodes[i].input.get(2).filter(|b| !b.is_empty()).cloned());
        cuts.extend(chain.cuts.iter().cloned());
        for name in cuts {
            let shrunk = keep_along(&work[&name], 0, &keep);
            work.insert(name, shrunk);
        }
        for &d in &chain.depthwise {
            let n = &mut out_nodes[d];
            n.attribute.retain(|a| a.name != "group");
            n.attribute.push(systole_onnx::attrs::int_attr("group", keep.len() as i64));
        }
        let consumer_w = out_nodes[chain.consumer].input[1].clone();
        let shrunk = keep_along(&work[&consumer_w], 1, &keep);
        work.insert(consumer_w, shrunk);
        for t in chain.tensors {
            kept.insert(t, keep.clone());
        }
        applied.insert(i, pruning);
    }

    // int4 input activations where asked and possible; a layer named for it must take it.
    let int4 = systole_onnx::ptq::int4_inputs(&out_nodes, &work, model.opset, &outputs, &|name| policy.wants_int4_input(name));
    if let Some((name, _)) = policy.layer_act_bits.iter().find(|(name, &b)| b == 4 && !int4.contains_key(*name)) {
        return Err(graph_err(
            format!("the policy gives layer `{name}` act_bits = 4, but its input is not the output of a Conv, Gemm or MatMul"),
            "only a conv or GEMM layer's requantizer saturates to int4 (through an optional BatchNormalization and ReLU); give this layer act_bits = 8".into(),
        ));
    }

    // Then the weights that remain.
    let mut stats = vec![];
    for &(i, ref w) in &layers {
        let n = &out_nodes[i];
        let (_, runs) = weight_runs(n, &work).expect("a compressible layer stays one");
        let pruning = applied[&i];
        let pruning_left = if matches!(pruning, Pruning::Channels { .. }) { Pruning::None } else { pruning };
        let bits = policy.bits_for(&node_name(n));
        let (vals, zeros) = compress_weights(n, &work[w], &runs, pruning_left, bits);
        let count = vals.len();
        work.insert(w.clone(), Const { vals, ..work[w].clone() });
        stats.push(LayerStats {
            name: node_name(n),
            op: n.op_type.clone(),
            pruning: pruning.to_string(),
            weights: count,
            removed: consts[w].vals.len() - count,
            zeros,
            bits,
            act_bits: if int4.contains_key(&node_name(n)) { 4 } else { 8 },
            sqnr_db: f64::INFINITY,
        });
    }

    // The accuracy proxy: both graphs on every sample; removed channels count as zeros.
    let (mut original, mut pruned) = (graph.clone(), graph.clone());
    original.node = nodes.clone();
    pruned.node = out_nodes.clone();
    let watched: Vec<String> = layers.iter().map(|&(i, _)| nodes[i].output[0].clone()).chain(outputs.iter().cloned()).collect();
    let mut energy: HashMap<String, (f64, f64)> = HashMap::new();
    let run_err = |e: float::EvalError| graph_err(e.to_string(), "see docs/ONNX.md for the operators of float models".into());
    // int4 activations: calibrated on the compressed graph as the quantizer does, then
    // fake-quantized where the graph computes them.
    let mut int4_range: HashMap<String, (f32, f32)> = int4.values().map(|t| (t.clone(), (0.0, 0.0))).collect();
    if !int4_range.is_empty() {
        for sample in samples {
            float::run(&pruned, model.opset, &work, sample, |name, t| {
                if let Some(r) = int4_range.get_mut(name) {
                    systole_onnx::ptq::widen_range(r, t);
                }
            })
            .map_err(run_err)?;
        }
    }
    let int4_quant: HashMap<String, Quant> =
        int4_range.iter().map(|(t, &(lo, hi))| (t.clone(), systole_onnx::ptq::calibrated_quant(lo, hi, 4))).collect();
    for sample in samples {
        let mut reference: HashMap<String, FTensor> = HashMap::new();
        float::run(&original, model.opset, &consts, sample, |name, t| {
            if watched.iter().any(|w| w == name) {
                reference.insert(name.to_string(), t.clone());
            }
        })
        .map_err(run_err)?;
        float::run(&pruned, model.opset, &work, sample, |name, t| {
            if let Some(&q) = int4_quant.get(name) {
                fake_quantize_int4(&mut t.data, q);
            }
            if let Some(r) = reference.get(name) {
                let e = energy.entry(name.to_string()).or_insert((0.0, 0.0));
                let mut add = |a: f32, b: f32| {
                    e.0 += (a as f64) * (a as f64);
                    e.1 += (a as f64 - b as f64) * (a as f64 - b as f64);
                };
                match kept.get(name) {
                    None => r.data.iter().zip(&t.data).for_each(|(&a, &b)| add(a, b)),
                    Some(keep) => {
                        let (batch, c) = (r.shape[0], r.shape[1]);
                        let plane = r.data.len() / (batch * c).max(1);
                        for nb in 0..batch {
                            for ch in 0..c {
                                let at = keep.binary_search(&ch).ok();
                                for p in 0..plane {
                                    let a = r.data[(nb * c + ch) * plane + p];
                                    add(a, at.map_or(0.0, |j| t.data[(nb * keep.len() + j) * plane + p]));
                                }
                            }
                        }
                    }
                }
            }
        })
        .map_err(run_err)?;
    }
    let sqnr = |name: &str| energy.get(name).map_or(f64::INFINITY, |&(s, e)| sqnr_db(s, e));
    for (s, &(i, _)) in stats.iter_mut().zip(&layers) {
        s.sqnr_db = sqnr(&nodes[i].output[0]);
    }
    let outputs = outputs.iter().map(|o| (o.clone(), sqnr(o))).collect();

    let mut proto = model.proto.clone();
    let g = proto.graph.as_mut().expect("read checks the graph");
    for t in g.initializer.iter_mut() {
        if let Some(c) = work.get(&t.name).filter(|c| consts.get(&t.name) != Some(*c)) {
            *t = tensor_proto(&t.name, &c.dims, dtype::FLOAT, &c.vals);
        }
    }
    g.node = out_nodes;
    // Shapes of narrowed tensors are stale; the importer infers them.
    g.value_info.retain(|v| !kept.contains_key(&v.name));
    Ok((OnnxModel { proto, opset: model.opset, inputs: model.inputs.clone() }, Report { layers: stats, outputs }))
}

/// The weights `c` of node `n` pruned by `pruning` (not channel pruning) and, with `bits`,
/// quantized per output channel and dequantized (the accuracy proxy sees the quantized
/// weights; the written model is quantized from the pruned float weights the same way);
/// and how many are zero.
fn compress_weights(n: &NodeProto, c: &Const, runs: &Runs, pruning: Pruning, bits: Option<u8>) -> (Vec<f64>, usize) {
    let mut values = c.f32s();
    let zeros = prune(&mut values, runs, pruning);
    let vals: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    match bits {
        Some(bits) => (systole_onnx::ptq::fake_quantize(n, &c.dims, &vals, bits), zeros),
        None => (vals, zeros),
    }
}

/// Per-layer sensitivity: for every compressible layer and every candidate `(pruning,
/// bits, act_bits)`, the noise-to-signal ratio `sum (ref - x)^2 / sum ref^2` over the
/// graph outputs and `samples` when only that layer is compressed (the rest stay float).
/// `act_bits = 4` fake-quantizes the layer's input to int4 (calibrated on the reference
/// run) where [`systole_onnx::ptq::int4_inputs`] allows it, and leaves it alone elsewhere. Under
/// the usual additive-noise model a policy's ratio is about the sum of its layers'; the
/// search uses that and checks its choice with [`compress`].
pub fn sensitivity(
    model: &OnnxModel,
    path: &Path,
    candidates: &[(Pruning, Option<u8>, u8)],
    samples: &[Sample],
) -> Result<Sensitivity, OnnxError> {
    use rayon::prelude::*;
    let graph_err = |message: String, help: String| OnnxError::Graph { path: path.into(), message, help };
    if let Some(p) = candidates.iter().find(|(p, _, _)| matches!(p, Pruning::Channels { .. })) {
        return Err(graph_err(format!("candidate {}: channel pruning changes shapes", p.0), "use N:M or unstructured candidates".into()));
    }
    if samples.is_empty() {
        return Err(graph_err("no calibration samples".into(), "give at least one calibration input".into()));
    }
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let (consts, nodes) = systole_onnx::ptq::prepare(model, path)?;
    let mut g = graph.clone();
    g.node = nodes.clone();
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let run_err = |e: float::EvalError| graph_err(e.to_string(), "see docs/ONNX.md for the operators of float models".into());
    let int4 = systole_onnx::ptq::int4_inputs(&nodes, &consts, model.opset, &outputs, &|_| true);
    let mut ranges: HashMap<String, (f32, f32)> = int4.values().map(|t| (t.clone(), (0.0, 0.0))).collect();
    let run = |consts: &HashMap<String, Const>,
               fake: Option<(&str, Quant)>,
               ranges: &mut HashMap<String, (f32, f32)>|
     -> Result<Vec<FTensor>, OnnxError> {
        let mut outs = vec![];
        for sample in samples {
            float::run(&g, model.opset, consts, sample, |name, t| {
                if let Some(r) = ranges.get_mut(name) {
                    systole_onnx::ptq::widen_range(r, t);
                }
                if let Some((_, q)) = fake.filter(|(f, _)| *f == name) {
                    fake_quantize_int4(&mut t.data, q);
                }
                if outputs.iter().any(|o| o == name) {
                    outs.push(t.clone());
                }
            })
            .map_err(run_err)?;
        }
        Ok(outs)
    };
    let reference = run(&consts, None, &mut ranges)?;
    let int4_quant: HashMap<&String, Quant> =
        ranges.iter().map(|(t, &(lo, hi))| (t, systole_onnx::ptq::calibrated_quant(lo, hi, 4))).collect();
    let signal: f64 = reference.iter().flat_map(|t| &t.data).map(|&v| (v as f64) * (v as f64)).sum();
    let layers: Vec<(usize, String, Runs)> =
        (0..nodes.len()).filter_map(|i| weight_runs(&nodes[i], &consts).map(|(w, r)| (i, w, r))).collect();
    let jobs: Vec<(usize, usize)> = (0..layers.len()).flat_map(|l| (0..candidates.len()).map(move |c| (l, c))).collect();
    let ratios: Vec<f64> = jobs
        .par_iter()
        .map(|&(l, c)| {
            let (i, ref w, ref runs) = layers[l];
            let (pruning, bits, act_bits) = candidates[c];
            let (vals, _) = compress_weights(&nodes[i], &consts[w], runs, pruning, bits);
            let mut changed = consts.clone();
            changed.insert(w.clone(), Const { vals, ..consts[w].clone() });
            let fake = match int4.get(&node_name(&nodes[i])) {
                Some(t) if act_bits == 4 => Some((t.as_str(), int4_quant[t])),
                _ => None,
            };
            let outs = run(&changed, fake, &mut HashMap::new())?;
            let noise: f64 = reference
                .iter()
                .zip(&outs)
                .flat_map(|(r, x)| r.data.iter().zip(&x.data))
                .map(|(&a, &b)| (a as f64 - b as f64) * (a as f64 - b as f64))
                .sum();
            Ok(noise / signal.max(f64::MIN_POSITIVE))
        })
        .collect::<Result<_, OnnxError>>()?;
    Ok(Sensitivity {
        int4_inputs: layers.iter().map(|&(i, _, _)| int4.contains_key(&node_name(&nodes[i]))).collect(),
        layers: layers.iter().map(|&(i, _, _)| node_name(&nodes[i])).collect(),
        ratio: ratios.chunks(candidates.len()).map(<[f64]>::to_vec).collect(),
    })
}

/// What [`sensitivity`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sensitivity {
    /// The compressible layers (node names), in graph order.
    pub layers: Vec<String>,
    /// `ratio[layer][candidate]`: output noise-to-signal ratio with only that layer compressed.
    pub ratio: Vec<Vec<f64>>,
    /// Per layer: whether its input can be int4 ([`systole_onnx::ptq::int4_inputs`]).
    pub int4_inputs: Vec<bool>,
}

/// Quantizes `data` to int4 with `q` (saturating to -8..=7) and back, in place.
fn fake_quantize_int4(data: &mut [f32], q: Quant) {
    for v in data {
        *v = (((*v / q.scale).round_ties_even() + q.zp as f32).clamp(-8.0, 7.0) - q.zp as f32) * q.scale;
    }
}

/// `10 log10(signal / noise)` dB; infinity without noise.
pub fn sqnr_db(signal: f64, noise: f64) -> f64 {
    if noise == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (signal / noise).log10()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_refuse_with_the_fix() {
        assert_eq!("2:4".parse::<Pruning>(), Ok(Pruning::NofM { n: 2, m: 4 }));
        assert_eq!("unstructured:0.5".parse::<Pruning>(), Ok(Pruning::Unstructured { ratio: 0.5 }));
        assert_eq!("none".parse::<Pruning>(), Ok(Pruning::None));
        for bad in ["4:2", "0:4", "unstructured:1.5", "half"] {
            let e = bad.parse::<Pruning>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn two_of_four_by_hand() {
        // Conv [K=1, C=8, 1, 1]: one run of 8 channels, groups {0..4} and {4..8}.
        let mut w = vec![0.1, -0.9, 0.3, 0.2, 0.5, 0.5, -0.5, 0.0];
        let zeros = prune(&mut w, &Runs::conv(&[1, 8, 1, 1]), Pruning::NofM { n: 2, m: 4 });
        // Group 1 keeps -0.9 and 0.3; group 2 has three of magnitude 0.5: the lower two stay.
        assert_eq!(w, vec![0.0, -0.9, 0.3, 0.0, 0.5, 0.5, 0.0, 0.0]);
        assert_eq!(zeros, 4);
    }

    #[test]
    fn conv_runs_are_input_channels_of_one_tap() {
        // [K=1, C=4, R=1, S=2]: flat index c*2 + s. Run s=0 is indices 0, 2, 4, 6.
        let mut w: Vec<f32> = vec![1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0];
        prune(&mut w, &Runs::conv(&[1, 4, 1, 2]), Pruning::NofM { n: 1, m: 4 });
        assert_eq!(w, vec![0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 4.0, 0.0]);
        // A Gemm [N=2, K=3] with transB: runs are rows; a short last group keeps up to N.
        let mut g: Vec<f32> = vec![1.0, -3.0, 2.0, 0.5, 0.25, 4.0];
        prune(&mut g, &Runs::matrix(&[2, 3], 1), Pruning::NofM { n: 1, m: 2 });
        assert_eq!(g, vec![0.0, -3.0, 2.0, 0.5, 0.0, 4.0]);
    }

    #[test]
    fn unstructured_zeroes_the_smallest() {
        let mut w = vec![0.4, -0.1, 0.3, -0.2, 0.05];
        assert_eq!(prune(&mut w, &Runs::matrix(&[1, 5], 1), Pruning::Unstructured { ratio: 0.6 }), 3);
        assert_eq!(w, vec![0.4, 0.0, 0.3, 0.0, 0.0]);
    }

    #[test]
    fn sqnr_by_hand() {
        // signal 100, noise 1: 20 dB.
        assert!((sqnr_db(100.0, 1.0) - 20.0).abs() < 1e-12);
        assert_eq!(sqnr_db(5.0, 0.0), f64::INFINITY);
    }

    #[test]
    fn policy_files_name_the_field() {
        let p = Path::new("p.toml");
        let ok = Policy::from_toml(p, "[default]\nprune = \"2:4\"\n[layers.\"conv0\"]\nprune = \"none\"\n").unwrap();
        assert_eq!(
            (ok.default, ok.for_layer("conv0"), ok.for_layer("other")),
            (Pruning::NofM { n: 2, m: 4 }, Pruning::None, Pruning::NofM { n: 2, m: 4 })
        );
        let e = Policy::from_toml(p, "[layers.\"c\"]\nprune = \"3:2\"\n").unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("layers.\"c\".prune") && e.contains("N < M"), "{e}");
        let e = Policy::from_toml(p, "[default]\nprun = \"2:4\"\n").unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("prun"), "{e}");
    }
}
