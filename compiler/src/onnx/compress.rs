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

use super::attrs::{dtype, tensor_proto, Const};
use super::float::{self, FTensor};
use super::ptq::Sample;
use super::{node_name, OnnxError, OnnxModel};
use onnx_protobuf::NodeProto;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
    /// At most `n` nonzeros in every group of `m` consecutive reduction weights.
    NofM {
        /// Kept per group.
        n: usize,
        /// Group size.
        m: usize,
    },
}

impl std::str::FromStr for Pruning {
    type Err = String;

    /// `none`, `unstructured:R` (`0 <= R < 1`) or `N:M` (`1 <= N < M <= 64`), e.g. `2:4`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = "use `none`, `unstructured:0.5` or an N:M pattern such as `2:4` or `1:4`";
        if s == "none" {
            return Ok(Pruning::None);
        }
        if let Some(r) = s.strip_prefix("unstructured:") {
            return match r.parse::<f64>() {
                Ok(ratio) if (0.0..1.0).contains(&ratio) => Ok(Pruning::Unstructured { ratio }),
                _ => Err(format!("`{s}`: the ratio must be a number in [0, 1); {usage}")),
            };
        }
        match s.split_once(':').map(|(n, m)| (n.parse::<usize>(), m.parse::<usize>())) {
            Some((Ok(n), Ok(m))) if 1 <= n && n < m && m <= 64 => Ok(Pruning::NofM { n, m }),
            Some((Ok(_), Ok(_))) => Err(format!("`{s}`: N:M needs 1 <= N < M <= 64")),
            _ => Err(format!("`{s}` is not a pruning; {usage}")),
        }
    }
}

impl std::fmt::Display for Pruning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pruning::None => f.write_str("none"),
            Pruning::Unstructured { ratio } => write!(f, "unstructured:{ratio}"),
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
}

impl Policy {
    /// Reads a policy file:
    ///
    /// ```toml
    /// [default]
    /// prune = "2:4"
    /// [layers."conv0"]        # node names, as `systole compress` lists them
    /// prune = "none"
    /// ```
    ///
    /// Errors name the file, the field and the fix.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, String> {
        let f: PolicyFile = toml::from_str(text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        let parse = |field: String, e: &LayerEntry| -> Result<Pruning, String> {
            e.prune.as_deref().map_or(Ok(Pruning::None), |s| s.parse().map_err(|m| format!("{}: `{field}`: {m}", path.display())))
        };
        let default = parse("default.prune".into(), &f.default)?;
        let layers =
            f.layers.iter().map(|(k, e)| Ok((k.clone(), parse(format!("layers.\"{k}\".prune"), e)?))).collect::<Result<_, String>>()?;
        Ok(Self { default, layers })
    }

    fn for_layer(&self, name: &str) -> Pruning {
        self.layers.get(name).copied().unwrap_or(self.default)
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
    /// Weights.
    pub weights: usize,
    /// Zero weights after pruning (including any that were zero before).
    pub zeros: usize,
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

/// How one weight tensor's reduction runs lie in memory: `runs` runs of `len` elements,
/// element `i` of run `v` at `run_start(v) + i * stride`.
struct Runs {
    runs: usize,
    len: usize,
    stride: usize,
    starts: Vec<usize>,
}

impl Runs {
    /// Conv `[K, C, R, S]`: a run per `(k, r, s)` over `C`.
    fn conv(dims: &[usize]) -> Self {
        let (k, c, taps) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
        let starts = (0..k).flat_map(|k| (0..taps).map(move |t| k * c * taps + t)).collect();
        Runs { runs: k * taps, len: c, stride: taps, starts }
    }

    /// A 2-D weight whose reduction is axis `red` (0 for `[K, N]`, 1 for `[N, K]`).
    fn matrix(dims: &[usize], red: usize) -> Self {
        let (rows, cols) = (dims[0], dims[1]);
        if red == 1 {
            Runs { runs: rows, len: cols, stride: 1, starts: (0..rows).map(|r| r * cols).collect() }
        } else {
            Runs { runs: cols, len: rows, stride: cols, starts: (0..cols).collect() }
        }
    }
}

/// Prunes `w` in place; returns the zero count.
fn prune(w: &mut [f32], runs: &Runs, pruning: Pruning) -> usize {
    let by_magnitude = |a: &(usize, f32), b: &(usize, f32)| a.1.abs().total_cmp(&b.1.abs()).then(a.0.cmp(&b.0));
    match pruning {
        Pruning::None => {}
        Pruning::Unstructured { ratio } => {
            let mut order: Vec<(usize, f32)> = w.iter().copied().enumerate().collect();
            order.sort_by(by_magnitude);
            let cut = (ratio * w.len() as f64).round() as usize;
            for &(i, _) in &order[..cut.min(w.len())] {
                w[i] = 0.0;
            }
        }
        Pruning::NofM { n, m } => {
            debug_assert_eq!(runs.starts.len(), runs.runs);
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
        ("Gemm", 2) => Runs::matrix(&c.dims, if super::attrs::int(n, "transB", 0) != 0 { 1 } else { 0 }),
        ("MatMul", 2) => Runs::matrix(&c.dims, 0),
        _ => return None,
    };
    Some((name, runs))
}

/// Prunes `model` (a float model read from `path`) by `policy` and measures the result on
/// `samples`. A policy naming a layer the model does not have is an error that lists the
/// model's layers.
pub fn compress(model: &OnnxModel, path: &Path, policy: &Policy, samples: &[Sample]) -> Result<(OnnxModel, Report), OnnxError> {
    let graph_err = |message: String, help: String| OnnxError::Graph { path: path.into(), message, help };
    if !super::ptq::is_float(model) {
        return Err(graph_err("the model is quantized".into(), "compress the float model, then quantize it".into()));
    }
    if samples.is_empty() {
        return Err(graph_err("no calibration samples".into(), "give at least one calibration input".into()));
    }
    let (consts, nodes) = super::ptq::prepare(model, path)?;
    let layers: Vec<(&NodeProto, String, Runs)> =
        nodes.iter().filter_map(|n| weight_runs(n, &consts).map(|(w, runs)| (n, w, runs))).collect();
    if let Some(unknown) = policy.layers.keys().find(|k| !layers.iter().any(|(n, ..)| &node_name(n) == *k)) {
        let names: Vec<String> = layers.iter().map(|(n, ..)| node_name(n)).collect();
        return Err(graph_err(
            format!("the policy names layer `{unknown}`, which the model does not have"),
            format!("the model's Conv/Gemm/MatMul layers are: {}", names.join(", ")),
        ));
    }
    let mut pruned_consts = consts.clone();
    let mut stats = vec![];
    let mut replaced: HashMap<String, Vec<f32>> = HashMap::new();
    for (n, w, runs) in &layers {
        let pruning = policy.for_layer(&node_name(n));
        let mut values = replaced.get(w).cloned().unwrap_or_else(|| consts[w].f32s());
        let zeros = prune(&mut values, runs, pruning);
        let c = &consts[w];
        pruned_consts.insert(w.clone(), Const { vals: values.iter().map(|&v| v as f64).collect(), ..c.clone() });
        replaced.insert(w.clone(), values);
        stats.push(LayerStats {
            name: node_name(n),
            op: n.op_type.clone(),
            pruning: pruning.to_string(),
            weights: runs.runs * runs.len,
            zeros,
            sqnr_db: f64::INFINITY,
        });
    }

    // The accuracy proxy: both graphs on every sample.
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let mut sorted = graph.clone();
    sorted.node = nodes.clone();
    let watched: Vec<String> = stats
        .iter()
        .filter_map(|s| layers.iter().find(|(n, ..)| node_name(n) == s.name))
        .map(|(n, ..)| n.output[0].clone())
        .chain(graph.output.iter().map(|o| o.name.clone()))
        .collect();
    let mut energy: HashMap<String, (f64, f64)> = HashMap::new();
    let run_err =
        |(node, m): (String, String)| graph_err(format!("node `{node}`: {m}"), "see docs/ONNX.md for the operators of float models".into());
    for sample in samples {
        let mut reference: HashMap<String, FTensor> = HashMap::new();
        float::run(&sorted, model.opset, &consts, sample, |name, t| {
            if watched.iter().any(|w| w == name) {
                reference.insert(name.to_string(), t.clone());
            }
        })
        .map_err(run_err)?;
        float::run(&sorted, model.opset, &pruned_consts, sample, |name, t| {
            if let Some(r) = reference.get(name) {
                let e = energy.entry(name.to_string()).or_insert((0.0, 0.0));
                for (&a, &b) in r.data.iter().zip(&t.data) {
                    e.0 += (a as f64) * (a as f64);
                    e.1 += (a as f64 - b as f64) * (a as f64 - b as f64);
                }
            }
        })
        .map_err(run_err)?;
    }
    let sqnr = |name: &str| energy.get(name).map_or(f64::INFINITY, |&(s, e)| sqnr_db(s, e));
    for (s, (n, ..)) in stats.iter_mut().zip(&layers) {
        s.sqnr_db = sqnr(&n.output[0]);
    }
    let outputs = graph.output.iter().map(|o| (o.name.clone(), sqnr(&o.name))).collect();

    let mut proto = model.proto.clone();
    let g = proto.graph.as_mut().expect("read checks the graph");
    for t in g.initializer.iter_mut() {
        if let Some(values) = replaced.get(&t.name) {
            let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
            *t = tensor_proto(&t.name, &dims, dtype::FLOAT, &values.iter().map(|&v| v as f64).collect::<Vec<_>>());
        }
    }
    Ok((OnnxModel { proto, opset: model.opset, inputs: model.inputs.clone() }, Report { layers: stats, outputs }))
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
            let e = bad.parse::<Pruning>().unwrap_err();
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
        let e = Policy::from_toml(p, "[layers.\"c\"]\nprune = \"3:2\"\n").unwrap_err();
        assert!(e.contains("p.toml") && e.contains("layers.\"c\".prune") && e.contains("N < M"), "{e}");
        let e = Policy::from_toml(p, "[default]\nprun = \"2:4\"\n").unwrap_err();
        assert!(e.contains("p.toml") && e.contains("prun"), "{e}");
    }
}
