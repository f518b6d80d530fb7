//! Post-training quantization of float models into the QDQ form the importer reads.
//!
//! ```text
//!  float ONNX ──fold BatchNormalization into the Conv before it
//!     │ ──calibrate: run the float graph on the calibration inputs, min/max of every tensor
//!     │ ──rewrite:   QuantizeLinear/DequantizeLinear after the input and every compute
//!     ▼              node (after its ReLU/ReLU6 when one follows); int8 weights, int32 biases
//!  QDQ ONNX (the same graph ONNX Runtime's quantize_static would give)
//! ```
//!
//! Weights are symmetric int8 per output channel (`scale = max|w| / 127`), activations
//! asymmetric int8 per tensor over the calibrated range widened to include 0, biases int32
//! with scale `x_scale * w_scale[k]`. Layout operators (MaxPool, Reshape, Flatten, Transpose,
//! Pad, Identity) keep their input's quantization, so they move bytes and never requantize.

use crate::attrs::{self, dtype, int_attr, node_proto, tensor_proto, Const};
use crate::float::{self, FTensor};
use crate::{node_name, NodeOp, OnnxError, OnnxModel};
use onnx_protobuf::NodeProto;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::Path;
use systole_core::network::Quant;

/// Operators whose result gets its own calibrated quantization.
const COMPUTE: &[&str] = &["Conv", "Gemm", "MatMul", "Add", "AveragePool", "GlobalAveragePool", "Concat"];
/// Operators that move bytes and keep their input's quantization.
const LAYOUT: &[&str] =
    &["MaxPool", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Pad", "Identity", "Slice", "Split", "Resize", "Upsample"];

/// One calibration sample: a tensor per graph input.
pub type Sample = Vec<(String, FTensor)>;

/// True when the model has no quantization at all (a float model for [`quantize`]).
pub fn is_float(model: &OnnxModel) -> bool {
    crate::is_float_graph(model.proto.graph.as_ref().expect("read checks the graph"))
}

/// `count` seeded samples of standard-normal values (the range of normalized images) for
/// every float input.
pub fn random_samples(model: &OnnxModel, count: usize, seed: u64) -> Vec<Sample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            model
                .inputs
                .iter()
                .map(|(name, shape)| {
                    let data = (0..shape.iter().product::<usize>()).map(|_| standard_normal(&mut rng)).collect();
                    (name.clone(), FTensor { shape: shape.clone(), data })
                })
                .collect()
        })
        .collect()
}

/// One standard-normal f32 (Box-Muller on two uniforms).
pub fn standard_normal(rng: &mut impl rand::Rng) -> f32 {
    let u: f64 = rng.gen_range(f64::EPSILON..1.0);
    let v: f64 = rng.gen();
    ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
}

/// Why a calibration batch does not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The model has other than one input.
    #[error("the model has {inputs} inputs; a calibration batch serves single-input models")]
    Inputs {
        /// The model's inputs.
        inputs: usize,
    },
    /// The batch is not inputs of the model's input shape stacked along axis 0.
    #[error("a batch of shape {batch:?} is not a whole number of inputs of shape {input:?}")]
    Shape {
        /// The batch's shape.
        batch: Vec<usize>,
        /// The model input's shape.
        input: Vec<usize>,
    },
}

/// Splits a calibration batch (axis 0) into samples of the model's (single) input shape.
pub fn samples_from_batch(model: &OnnxModel, batch: &FTensor) -> Result<Vec<Sample>, BatchError> {
    let [(name, shape)] = &model.inputs[..] else {
        return Err(BatchError::Inputs { inputs: model.inputs.len() });
    };
    let per: usize = shape.iter().product();
    let squeeze = systole_core::npy::squeeze;
    // One input, or a batch of inputs along axis 0: the other axes must be the input's.
    let one = squeeze(&batch.shape) == squeeze(shape);
    let stacked = batch.shape.len() >= 2 && shape.len() >= 2 && squeeze(&batch.shape[1..]) == squeeze(&shape[1..]);
    if per == 0 || !batch.data.len().is_multiple_of(per) || batch.data.is_empty() || !(one || stacked) {
        return Err(BatchError::Shape { batch: batch.shape.clone(), input: shape.clone() });
    }
    Ok(batch.data.chunks(per).map(|c| vec![(name.clone(), FTensor { shape: shape.clone(), data: c.to_vec() })]).collect())
}

/// Quantizes the float model `model` (read from `path`) calibrated on `samples`.
pub fn quantize(model: &OnnxModel, path: &Path, samples: &[Sample]) -> Result<OnnxModel, OnnxError> {
    quantize_with_bits(model, path, samples, &|_| 8, &|_| false)
}

/// [`quantize`] with the weights of each Conv / Gemm / MatMul node quantized to
/// `weight_bits(node name)` bits, 8 or 4: symmetric per output channel, `scale = max|w| /
/// (2^(bits-1) - 1)`, so int4 weights lie in -7..=7 (stored as INT8, which the importer
/// recognizes as int4 and an `int4_weights` instance runs packed). The input activations
/// of the layers `int4_inputs` selects (see [`int4_inputs`]; `wants_int4` names them)
/// are quantized to int4: asymmetric over the calibrated range in 15 steps, with an INT4
/// zero point, so that the producing layer saturates to -8..=7 and an `int4_activations`
/// instance runs the reading layer int4 x int4.
pub fn quantize_with_bits(
    model: &OnnxModel,
    path: &Path,
    samples: &[Sample],
    weight_bits: &dyn Fn(&str) -> u8,
    wants_int4: &dyn Fn(&str) -> bool,
) -> Result<OnnxModel, OnnxError> {
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let node_err = |n: &NodeProto, message: String, help: &str| node_error(model, path, n, message, help);
    let graph_err = |message: String, help: &str| OnnxError::Graph { path: path.into(), message, help: help.into() };
    if samples.is_empty() {
        return Err(graph_err("no calibration samples".into(), "give at least one calibration input"));
    }
    let (mut consts, mut nodes) = prepare(model, path)?;
    // The rank of each BatchNormalization's input that follows no Conv (DenseNet's), from a
    // float run: it becomes a per-channel scale and shift of that rank.
    let mut ranks = HashMap::new();
    if nodes.iter().any(|n| n.op_type == "BatchNormalization" && conv_before(&nodes, n).is_none()) {
        let mut sorted = graph.clone();
        sorted.node = nodes.clone();
        for (name, t) in &samples[0] {
            ranks.insert(name.clone(), t.shape.len());
        }
        float::run(&sorted, model.opset, &consts, &samples[0], |name, t| {
            ranks.insert(name.to_string(), t.shape.len());
        })
        .map_err(|e| {
            let n = nodes.iter().find(|n| node_name(n) == e.node).cloned().unwrap_or_default();
            node_err(&n, e.message, "see docs/ONNX.md for the operators of float models")
        })?;
    }
    fold_batchnorm(&mut nodes, &mut consts, &ranks).map_err(|(n, m)| {
        node_err(&n, m, "Systole folds a BatchNormalization into the Conv right before it, or runs it as a scale and shift per channel")
    })?;

    // Calibration.
    let mut folded = graph.clone();
    folded.node = nodes.clone();
    let mut range: HashMap<String, (f32, f32)> = HashMap::new();
    let mut shapes: HashMap<String, Vec<usize>> = HashMap::new();
    let mut widen = |name: &str, t: &FTensor| {
        shapes.entry(name.to_string()).or_insert_with(|| t.shape.clone());
        widen_range(range.entry(name.to_string()).or_insert((0.0, 0.0)), t)
    };
    for sample in samples {
        for (name, t) in sample {
            let shape = model.inputs.iter().find(|(n, _)| n == name).map(|(_, s)| s);
            if shape != Some(&t.shape) {
                return Err(graph_err(
                    format!("calibration input `{name}` has shape {:?}, the model's is {:?}", t.shape, shape),
                    "give calibration inputs of the model's input shape",
                ));
            }
            widen(name, t);
        }
        float::run(&folded, model.opset, &consts, sample, |name, t| widen(name, t)).map_err(|e| {
            let n = nodes.iter().find(|n| node_name(n) == e.node).cloned().unwrap_or_default();
            node_err(&n, e.message, "see docs/ONNX.md for the operators of float models")
        })?;
    }

    // Before opset 13 Softmax normalizes the axes from `axis` on together; the opset written
    // says that with one Softmax only when those after `axis` have size 1.
    for n in nodes.iter().filter(|n| n.op_type == "Softmax" && model.opset < 13) {
        let dims = shapes.get(&n.input[0]).cloned().unwrap_or_default();
        let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), dims.len()).map_err(|f| node_err(n, f.0, "check the axis"))?;
        if dims[axis + 1..].iter().product::<usize>() > 1 {
            return Err(node_err(
                n,
                format!("Softmax at opset {} normalizes axes {axis}.. of {dims:?} together, which the opset-13 model Systole writes cannot say with one Softmax", model.opset),
                "export the model at opset 13 or later, or flatten before the Softmax",
            ));
        }
    }

    // Quantization parameters of every activation tensor.
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &nodes {
        for i in &n.input {
            consumers.entry(i.as_str()).or_default().push(n);
        }
    }
    let fused = |n: &NodeProto| -> bool {
        let out = &n.output[0];
        let is_output = graph.output.iter().any(|o| &o.name == out);
        COMPUTE.contains(&n.op_type.as_str())
            && !is_output
            && matches!(consumers.get(out.as_str()).map(|c| &c[..]), Some([c]) if fusable_activation(c, model.opset, &consts))
    };
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let int4: std::collections::HashSet<String> = int4_inputs(&nodes, &consts, model.opset, &outputs, wants_int4).into_values().collect();
    let calibrated = |name: &str| -> Quant {
        let (lo, hi) = range.get(name).copied().unwrap_or((0.0, 0.0));
        calibrated_quant(lo, hi, if int4.contains(name) { 4 } else { 8 })
    };
    let mut quant: HashMap<String, Quant> = HashMap::new();
    let mut out_nodes: Vec<NodeProto> = vec![];
    let mut inits = vec![];
    let mut rename: HashMap<String, String> = HashMap::new();
    let add_qdq = |tensor: &str, from: &str, to: &str, q: Quant, out_nodes: &mut Vec<NodeProto>, inits: &mut Vec<_>| {
        let (s, z) = (format!("{tensor}__scale"), format!("{tensor}__zp"));
        inits.push(tensor_proto(&s, &[], dtype::FLOAT, &[q.scale as f64]));
        inits.push(tensor_proto(&z, &[], if int4.contains(tensor) { dtype::INT4 } else { dtype::INT8 }, &[q.zp as f64]));
        out_nodes.push(node_proto("QuantizeLinear", &format!("{tensor}__quantize"), &[from, &s, &z], &format!("{tensor}__q"), vec![]));
        out_nodes.push(node_proto("DequantizeLinear", &format!("{tensor}__dequantize"), &[&format!("{tensor}__q"), &s, &z], to, vec![]));
    };
    for (name, _) in &model.inputs {
        let q = calibrated(name);
        quant.insert(name.clone(), q);
        add_qdq(name, name, &format!("{name}__dq"), q, &mut out_nodes, &mut inits);
        rename.insert(name.clone(), format!("{name}__dq"));
    }
    for n in &nodes {
        let mut m = n.clone();
        for i in m.input.iter_mut() {
            if let Some(r) = rename.get(i.as_str()) {
                *i = r.clone();
            }
        }
        let op = n.op_type.as_str();
        if matches!(op, "Add" | "Sub" | "Mul" | "Div") {
            quantize_operands(n, &mut m, &consts, &mut out_nodes, &mut inits);
        }
        if matches!(op, "Conv" | "Gemm" | "MatMul") {
            quantize_weights(n, &mut m, &consts, &quant, weight_bits(&node_name(n)), &mut out_nodes, &mut inits)
                .map_err(|msg| node_err(n, msg, "Systole quantizes constant weights"))?;
        }
        if fused(n) {
            out_nodes.push(m);
            continue;
        }
        let mut qdq = vec![];
        for (k, out) in n.output.iter().enumerate().filter(|(k, o)| *k == 0 || !o.is_empty()) {
            let q = if LAYOUT.contains(&op) {
                quant.get(n.input[0].as_str()).copied().unwrap_or_else(|| calibrated(out))
            } else {
                calibrated(out)
            };
            quant.insert(out.clone(), q);
            let raw = format!("{out}__f");
            m.output[k] = raw.clone();
            qdq.push((out.clone(), raw, q));
        }
        out_nodes.push(m);
        for (out, raw, q) in qdq {
            add_qdq(&out, &raw, &out, q, &mut out_nodes, &mut inits);
        }
    }
    to_input_form(&mut out_nodes, model.opset, &consts, &mut inits)
        .map_err(|(n, m)| node_err(&n, m, "resize every axis the same way (all up or all down), or export at opset 11 or later"))?;
    // int4 zero points (activations quantized to int4) exist in Q/DQ from opset 21.
    let int4_opset = if inits.iter().any(|t| t.data_type == dtype::INT4) { 21 } else { QUANTIZED_OPSET };
    let opset = model.opset.max(int4_opset);
    let mut proto = model.proto.clone();
    for o in proto.opset_import.iter_mut().filter(|o| crate::canonical_domain(&o.domain).is_empty()) {
        o.version = opset;
    }
    proto.ir_version = proto.ir_version.max(7);
    let g = proto.graph.as_mut().expect("read checks the graph");
    g.node = out_nodes;
    let used: std::collections::HashSet<&str> = g.node.iter().flat_map(|n| n.input.iter().map(|s| s.as_str())).collect();
    let mut kept: Vec<_> = graph.initializer.iter().filter(|t| used.contains(t.name.as_str())).cloned().collect();
    kept.extend(
        consts
            .iter()
            .filter(|(k, _)| {
                used.contains(k.as_str())
                    && !graph.initializer.iter().any(|t| &t.name == *k)
                    && !nodes.iter().any(|n| n.output.first() == Some(k))
            })
            .map(|(k, c)| tensor_proto(k, &c.dims, c.dtype, &c.vals)),
    );
    kept.extend(inits);
    g.initializer = kept;
    Ok(OnnxModel { proto, opset, inputs: model.inputs.clone() })
}

/// The oldest default-domain opset post-training quantization writes: per-axis
/// QuantizeLinear and DequantizeLinear (the weights' per-channel scales) need 13, and int4
/// activations 21.
pub const QUANTIZED_OPSET: i64 = 13;

/// Rewrites the nodes of a model read at `opset` whose form changed at opset 11 (Pad's
/// `pads` and `value` attributes, Clip's `min` and `max`) into the input form that
/// [`QUANTIZED_OPSET`] reads, adding their values to `inits`, states Softmax's axis, whose
/// default changed at 13 (1 before, -1 after), and writes Upsample and opset 10's Resize as
/// the Resize of opset 13 that computes the same.
fn to_input_form(
    nodes: &mut [NodeProto],
    opset: i64,
    consts: &HashMap<String, Const>,
    inits: &mut Vec<onnx_protobuf::TensorProto>,
) -> Result<(), (Box<NodeProto>, String)> {
    if opset >= 13 {
        return Ok(());
    }
    for n in nodes.iter_mut() {
        let out = n.output.first().cloned().unwrap_or_default();
        match n.op_type.as_str() {
            "Pad" if opset < 11 => {
                let pads: Vec<f64> = attrs::ints(n, "pads").unwrap_or_default().iter().map(|&p| p as f64).collect();
                let (p, v) = (format!("{out}__pads"), format!("{out}__value"));
                inits.push(tensor_proto(&p, &[pads.len()], dtype::INT64, &pads));
                inits.push(tensor_proto(&v, &[], dtype::FLOAT, &[attrs::float(n, "value", 0.0) as f64]));
                n.input.truncate(1);
                n.input.extend([p, v]);
                n.attribute.retain(|a| a.name == "mode");
            }
            // Upsample and opset 10's Resize: ONNX Runtime reads them as asymmetric, rounding
            // down when enlarging and up when shrinking; opset 13 says so with attributes.
            "Resize" | "Upsample" if opset < 11 => {
                let scales: Vec<f64> = if n.op_type == "Upsample" && opset < 9 {
                    n.attribute
                        .iter()
                        .find(|a| a.name == "scales")
                        .map(|a| a.floats.iter().map(|&f| f as f64).collect())
                        .unwrap_or_default()
                } else {
                    n.input.get(1).and_then(|s| consts.get(s)).map(|c| c.vals.clone()).unwrap_or_default()
                };
                let (up, down) = (scales.iter().any(|&s| s > 1.0), scales.iter().any(|&s| s < 1.0));
                if up && down {
                    return Err((
                        Box::new(n.clone()),
                        format!("scales {scales:?} enlarge some axes and shrink others, which opset 10 rounds differently"),
                    ));
                }
                let name = format!("{out}__scales");
                inits.push(tensor_proto(&name, &[scales.len()], dtype::FLOAT, &scales));
                n.op_type = "Resize".into();
                n.input = vec![n.input[0].clone(), String::new(), name];
                n.attribute.retain(|a| a.name == "mode");
                n.attribute.push(attrs::string_attr("coordinate_transformation_mode", "asymmetric"));
                n.attribute.push(attrs::string_attr("nearest_mode", if down { "ceil" } else { "floor" }));
            }
            "Softmax" if !n.attribute.iter().any(|a| a.name == "axis") => {
                n.attribute.push(attrs::int_attr("axis", 1));
            }
            "Clip" if opset < 11 => {
                n.input.truncate(1);
                for bound in ["min", "max"] {
                    match n.attribute.iter().find(|a| a.name == bound) {
                        Some(a) => {
                            let name = format!("{out}__{bound}");
                            inits.push(tensor_proto(&name, &[], dtype::FLOAT, &[a.f as f64]));
                            n.input.push(name);
                        }
                        None => n.input.push(String::new()),
                    }
                }
                while n.input.last().is_some_and(|i| i.is_empty()) {
                    n.input.pop();
                }
                n.attribute.retain(|a| a.name != "min" && a.name != "max");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Widens the calibration range `r` (min, max) to the finite values of `t`.
pub fn widen_range(r: &mut (f32, f32), t: &FTensor) {
    for &v in t.data.iter().filter(|v| v.is_finite()) {
        *r = (r.0.min(v), r.1.max(v));
    }
}

/// Asymmetric quantization of the range `lo..hi` (widened to include 0) to `bits` bits (8
/// or 4): `2^bits - 1` steps, the zero point placing `lo` at the lowest code.
pub fn calibrated_quant(lo: f32, hi: f32, bits: u8) -> Quant {
    let (lo, hi) = (lo.min(0.0) as f64, hi.max(0.0) as f64);
    let steps = ((1u32 << bits) - 1) as f64;
    let min = -((1i32 << (bits - 1)) as f64);
    let scale = ((hi - lo) / steps) as f32;
    let scale = if scale.is_normal() { scale } else { 1.0 };
    let zp = (min - lo / scale as f64).round().clamp(min, min + steps) as i8;
    Quant { scale, zp }
}

/// The error for node `n` of `model`, read from `path`.
fn node_error(model: &OnnxModel, path: &Path, n: &NodeProto, message: String, help: &str) -> OnnxError {
    OnnxError::Import {
        path: path.into(),
        node: Box::new(NodeOp { name: node_name(n), op: n.op_type.clone(), domain: n.domain.clone(), opset: model.opset }),
        message,
        help: help.into(),
    }
}

/// The output-channel axis of `n`'s weights.
fn weight_axis(n: &NodeProto) -> usize {
    match n.op_type.as_str() {
        "Conv" => 0,
        "Gemm" if attrs::int(n, "transB", 0) != 0 => 0,
        _ => 1,
    }
}

/// `vals` (weights of node `n`, shape `dims`) quantized symmetrically per output channel to
/// `bits` bits: the integers and each channel's scale.
pub fn quantize_channels(n: &NodeProto, dims: &[usize], vals: &[f64], bits: u8) -> (Vec<i32>, Vec<f32>) {
    let axis = weight_axis(n);
    let qmax = ((1i32 << (bits - 1)) - 1) as f32;
    let k = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let mut scale = vec![0f32; k];
    for (i, &v) in vals.iter().enumerate() {
        let ch = (i / inner) % k;
        scale[ch] = scale[ch].max((v as f32).abs());
    }
    for s in scale.iter_mut() {
        *s = if (*s / qmax).is_normal() { *s / qmax } else { 1.0 };
    }
    let q =
        vals.iter().enumerate().map(|(i, &v)| (v as f32 / scale[(i / inner) % k]).round_ties_even().clamp(-qmax, qmax) as i32).collect();
    (q, scale)
}

/// `vals` quantized as [`quantize_channels`] does and dequantized again: the weights the
/// quantized model computes with.
pub fn fake_quantize(n: &NodeProto, dims: &[usize], vals: &[f64], bits: u8) -> Vec<f64> {
    let (q, scale) = quantize_channels(n, dims, vals, bits);
    let axis = weight_axis(n);
    let inner: usize = dims[axis + 1..].iter().product();
    q.iter().enumerate().map(|(i, &v)| v as f64 * scale[(i / inner) % scale.len()] as f64).collect()
}

/// The float graph's constants (its initializers, with the constants folded as it was read)
/// by name and its nodes in a topological order, each checked to have its required inputs
/// and one output (Split: its named outputs).
pub fn prepare(model: &OnnxModel, path: &Path) -> Result<(HashMap<String, Const>, Vec<NodeProto>), OnnxError> {
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let node_err = |n: &NodeProto, message: String, help: &str| node_error(model, path, n, message, help);
    let graph_err = |message: String, help: &str| OnnxError::Graph { path: path.into(), message, help: help.into() };
    let mut consts: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        consts.insert(t.name.clone(), Const::from_proto(t).map_err(|m| graph_err(m.0, "save the model with its weights inside"))?);
    }
    for n in &graph.node {
        let need = required_inputs(&n.op_type, model.opset);
        let outputs_named = n.output.len() == 1 || (n.op_type == "Split" && !n.output.is_empty());
        if !outputs_named || n.output.iter().any(|o| o.is_empty()) || n.input.len() < need || n.input[..need].iter().any(|i| i.is_empty()) {
            let outputs = if n.op_type == "Split" { "named outputs" } else { "one output" };
            return Err(node_err(n, format!("needs {need} input(s) and {outputs}"), "export the model again"));
        }
    }
    let nodes = crate::import::sorted(graph.node.iter().collect(), path)?.into_iter().cloned().collect();
    Ok((consts, nodes))
}

/// Inputs an operator of a float model cannot do without.
fn required_inputs(op: &str, opset: i64) -> usize {
    match op {
        "Conv" | "Gemm" | "MatMul" | "Add" | "Sub" | "Mul" | "Div" | "Reshape" => 2,
        "Pad" if opset >= 11 => 2,
        "Slice" if opset >= 10 => 3,
        "BatchNormalization" => 5,
        _ => 1,
    }
}

/// ReLU, or Clip(0, 6) / Clip(0, inf) with constant bounds: what the importer fuses.
fn fusable_activation(n: &NodeProto, opset: i64, consts: &HashMap<String, Const>) -> bool {
    match n.op_type.as_str() {
        "Relu" => true,
        "Clip" => {
            let bound = |i: usize, a: &str, d: f32| -> Option<f32> {
                if opset < 11 {
                    return Some(attrs::float(n, a, d));
                }
                match n.input.get(i).filter(|s| !s.is_empty()) {
                    None => Some(d),
                    Some(name) => consts.get(name).and_then(|c| c.scalar()).map(|v| v as f32),
                }
            };
            matches!((bound(1, "min", f32::MIN), bound(2, "max", f32::MAX)), (Some(0.0), Some(6.0)) | (Some(0.0), Some(f32::MAX)))
        }
        _ => false,
    }
}

/// The layers (Conv / Gemm / MatMul node names) for which `wants_int4` asks int4 input
/// activations and whose input can be int4, each with that input tensor. An input can be
/// int4 when a Conv, Gemm or MatMul produces it (through a BatchNormalization and a fused
/// ReLU / ReLU6, each its producer's only consumer), because only a layer's requantizer
/// saturates to -8..=7 (docs/COMPRESSION.md).
pub fn int4_inputs(
    nodes: &[NodeProto],
    consts: &HashMap<String, Const>,
    opset: i64,
    outputs: &[String],
    wants_int4: &dyn Fn(&str) -> bool,
) -> std::collections::BTreeMap<String, String> {
    let producer = |t: &str| nodes.iter().find(|n| n.output.first().map(|o| o.as_str()) == Some(t));
    let sole_use = |t: &str| !outputs.iter().any(|o| o == t) && nodes.iter().filter(|n| n.input.iter().any(|i| i == t)).count() == 1;
    let from_layer = |t: &str| -> bool {
        let mut at = producer(t);
        if let Some(act) = at.filter(|n| fusable_activation(n, opset, consts)) {
            at = producer(&act.input[0]).filter(|_| sole_use(&act.input[0]));
        }
        if let Some(bn) = at.filter(|n| n.op_type == "BatchNormalization") {
            at = producer(&bn.input[0]).filter(|_| sole_use(&bn.input[0]));
        }
        at.is_some_and(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul"))
    };
    nodes
        .iter()
        .filter(|n| matches!(n.op_type.as_str(), "Conv" | "Gemm" | "MatMul") && wants_int4(&node_name(n)))
        .filter(|n| from_layer(&n.input[0]))
        .map(|n| (node_name(n), n.input[0].clone()))
        .collect()
}

/// Folds each BatchNormalization into the Conv that feeds only it.
/// The Conv whose output only BatchNormalization `bn` reads, if there is one.
fn conv_before(nodes: &[NodeProto], bn: &NodeProto) -> Option<usize> {
    let x = bn.input.first()?;
    let users = nodes.iter().filter(|n| n.input.contains(x)).count();
    nodes.iter().position(|n| n.op_type == "Conv" && n.output.first() == Some(x)).filter(|_| users == 1)
}

fn fold_batchnorm(
    nodes: &mut Vec<NodeProto>,
    consts: &mut HashMap<String, Const>,
    ranks: &HashMap<String, usize>,
) -> Result<(), (Box<NodeProto>, String)> {
    while let Some(bi) = nodes.iter().position(|n| n.op_type == "BatchNormalization") {
        let bn = nodes[bi].clone();
        let x = bn.input[0].clone();
        let get = |i: usize| bn.input.get(i).and_then(|n| consts.get(n)).map(|c| c.f32s());
        let (Some(g), Some(b), Some(m), Some(v)) = (get(1), get(2), get(3), get(4)) else {
            return Err((Box::new(bn.clone()), "scale, bias, mean and variance must be constants".into()));
        };
        let eps = attrs::batch_norm_epsilon(&bn, &v).map_err(|m| (Box::new(bn.clone()), m.0))?;
        let factor: Vec<f64> = g.iter().zip(&v).map(|(&g, &v)| g as f64 / ((v + eps) as f64).sqrt()).collect();
        let Some(ci) = conv_before(nodes, &bn) else {
            let Some(&rank) = ranks.get(&x).filter(|&&r| r >= 2) else {
                return Err((
                    Box::new(bn.clone()),
                    format!("input `{x}` is not the output of a Conv used only here, nor a tensor of known rank"),
                ));
            };
            let k = g.len();
            if b.len() != k || m.len() != k || v.len() != k {
                return Err((Box::new(bn.clone()), "scale, bias, mean and variance differ in length".into()));
            }
            // y = x * factor + (bias - mean * factor), the constants [C, 1, ..] along axis 1.
            let dims: Vec<usize> = std::iter::once(k).chain(std::iter::repeat_n(1, rank - 2)).collect();
            let name = node_name(&bn);
            let (scale, shift, scaled) = (format!("{name}__scale"), format!("{name}__shift"), format!("{name}__scaled"));
            let f32s =
                |vals: Vec<f64>| Const { dims: dims.clone(), dtype: dtype::FLOAT, vals: vals.iter().map(|&v| v as f32 as f64).collect() };
            consts.insert(scale.clone(), f32s(factor.clone()));
            consts.insert(shift.clone(), f32s((0..k).map(|i| b[i] as f64 - m[i] as f64 * factor[i]).collect()));
            let mul = node_proto("Mul", &format!("{name}__mul"), &[&x, &scale], &scaled, vec![]);
            let add = node_proto("Add", &name, &[&scaled, &shift], &bn.output[0], vec![]);
            nodes.splice(bi..=bi, [mul, add]);
            continue;
        };
        let conv = nodes[ci].clone();
        let w = conv
            .input
            .get(1)
            .and_then(|n| consts.get(n))
            .cloned()
            .ok_or_else(|| (Box::new(conv.clone()), "weights must be a constant".to_string()))?;
        let k = w.dims.first().copied().unwrap_or(0);
        if g.len() != k || b.len() != k || m.len() != k || v.len() != k {
            return Err((Box::new(bn.clone()), format!("{} channels, the Conv has {k}", g.len())));
        }
        if w.dims.len() != 4 {
            return Err((Box::new(conv.clone()), format!("weights of shape {:?} are not 4-D", w.dims)));
        }
        let per: usize = w.dims[1..].iter().product();
        let old_bias = conv.input.get(2).filter(|s| !s.is_empty()).and_then(|n| consts.get(n)).map(|c| c.f32s()).unwrap_or(vec![0.0; k]);
        if old_bias.len() != k {
            return Err((Box::new(conv.clone()), format!("{} bias values for {k} output channels", old_bias.len())));
        }
        let w2 = Const {
            dims: w.dims.clone(),
            dtype: dtype::FLOAT,
            vals: w.vals.iter().enumerate().map(|(i, &x)| ((x * factor[i / per]) as f32) as f64).collect(),
        };
        let b2 = Const {
            dims: vec![k],
            dtype: dtype::FLOAT,
            vals: (0..k).map(|i| (((old_bias[i] - m[i]) as f64 * factor[i] + b[i] as f64) as f32) as f64).collect(),
        };
        let (wn, bn_name) = (format!("{}__bnfold_w", node_name(&conv)), format!("{}__bnfold_b", node_name(&conv)));
        consts.insert(wn.clone(), w2);
        consts.insert(bn_name.clone(), b2);
        let c = &mut nodes[ci];
        c.input.truncate(1);
        c.input.push(wn);
        c.input.push(bn_name);
        c.output[0] = bn.output[0].clone();
        nodes.remove(bi);
    }
    Ok(())
}

/// Replaces the float constant operands of an Add or Mul (a bias or scale per channel)
/// with DequantizeLinear of int8 values, quantized per tensor over their range.
fn quantize_operands(
    n: &NodeProto,
    m: &mut NodeProto,
    consts: &HashMap<String, Const>,
    out_nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<onnx_protobuf::TensorProto>,
) {
    for k in 0..2 {
        let Some(c) = n.input.get(k).and_then(|i| consts.get(i)).filter(|c| c.dtype == dtype::FLOAT) else { continue };
        let (lo, hi) = c.vals.iter().fold((0.0f32, 0.0f32), |(a, b), &v| (a.min(v as f32), b.max(v as f32)));
        let q = calibrated_quant(lo, hi, 8);
        let base = format!("{}__operand{k}", n.output[0]);
        let (values, scale, zp) = (format!("{base}_q"), format!("{base}_scale"), format!("{base}_zp"));
        let quantized: Vec<f64> = c.vals.iter().map(|&v| q.quantize(v as f32) as f64).collect();
        inits.push(tensor_proto(&values, &c.dims, dtype::INT8, &quantized));
        inits.push(tensor_proto(&scale, &[], dtype::FLOAT, &[q.scale as f64]));
        inits.push(tensor_proto(&zp, &[], dtype::INT8, &[q.zp as f64]));
        out_nodes.push(node_proto("DequantizeLinear", &format!("{base}_dequantize"), &[&values, &scale, &zp], &base, vec![]));
        m.input[k] = base;
    }
}

/// Replaces a Conv/Gemm/MatMul's float weights and bias with DequantizeLinear of int8
/// weights (per output channel) and an int32 bias.
fn quantize_weights(
    n: &NodeProto,
    m: &mut NodeProto,
    consts: &HashMap<String, Const>,
    quant: &HashMap<String, Quant>,
    bits: u8,
    out_nodes: &mut Vec<NodeProto>,
    inits: &mut Vec<onnx_protobuf::TensorProto>,
) -> Result<(), String> {
    let w = n.input.get(1).and_then(|i| consts.get(i)).ok_or("the weights (input 1) must be a constant")?;
    let xq = quant.get(n.input[0].as_str()).copied().ok_or("the input is not a quantized activation")?;
    if w.dims.len() < 2 {
        return Err(format!("weights of shape {:?}", w.dims));
    }
    let (q, scale) = quantize_channels(n, &w.dims, &w.vals, bits);
    let k = scale.len();
    let q: Vec<f64> = q.into_iter().map(|v| v as f64).collect();
    let base = node_name(n);
    let (wq, ws, wz, wd) = (format!("{base}__w_q"), format!("{base}__w_scale"), format!("{base}__w_zp"), format!("{base}__w"));
    inits.push(tensor_proto(&wq, &w.dims, dtype::INT8, &q));
    inits.push(tensor_proto(&ws, &[k], dtype::FLOAT, &scale.iter().map(|&s| s as f64).collect::<Vec<_>>()));
    inits.push(tensor_proto(&wz, &[k], dtype::INT8, &vec![0.0; k]));
    out_nodes.push(node_proto(
        "DequantizeLinear",
        &format!("{base}__w_dequantize"),
        &[&wq, &ws, &wz],
        &wd,
        vec![int_attr("axis", weight_axis(n) as i64)],
    ));
    m.input[1] = wd;
    if let Some(b) = n.input.get(2).filter(|s| !s.is_empty()) {
        let b = consts.get(b).ok_or("the bias must be a constant")?;
        if b.vals.len() != k {
            return Err(format!("{} bias values for {k} output channels", b.vals.len()));
        }
        let bs: Vec<f32> = scale.iter().map(|&s| xq.scale * s).collect();
        let bq: Vec<f64> = b
            .vals
            .iter()
            .zip(&bs)
            .map(|(&v, &s)| ((v as f32 / s) as f64).round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64))
            .collect();
        let (bqn, bsn, bzn, bdn) = (format!("{base}__b_q"), format!("{base}__b_scale"), format!("{base}__b_zp"), format!("{base}__b"));
        inits.push(tensor_proto(&bqn, &[k], dtype::INT32, &bq));
        inits.push(tensor_proto(&bsn, &[k], dtype::FLOAT, &bs.iter().map(|&s| s as f64).collect::<Vec<_>>()));
        inits.push(tensor_proto(&bzn, &[k], dtype::INT32, &vec![0.0; k]));
        out_nodes.push(node_proto(
            "DequantizeLinear",
            &format!("{base}__b_dequantize"),
            &[&bqn, &bsn, &bzn],
            &bdn,
            vec![int_attr("axis", 0)],
        ));
        m.input[2] = bdn;
    }
    Ok(())
}
