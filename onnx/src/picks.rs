//! Where each output element of the selecting layout operators comes from, read from their
//! attributes and constant inputs the way each opset states them: `Slice`, `Split`,
//! `Squeeze`, `Unsqueeze` and nearest-neighbour `Resize`. The constant folder, the importer
//! (which makes [`Op::Select`](systole_core::network::Op::Select) nodes of them) and the
//! float interpreter share these readings.
//!
//! A selection is given per axis: output index `i` of axis `d` reads input index
//! `picks[d][i]` ([`systole_core::tensor::select_indices`]).

use crate::attrs::{self, Const};
use crate::NodeFault;
use onnx_protobuf::NodeProto;

/// A selection: for each axis, the input index of each output index.
pub type Picks = Vec<Vec<usize>>;

/// Constant input `i` of the node being read, if it is given.
pub type Input<'a> = &'a dyn Fn(usize) -> Option<Const>;

impl Const {
    /// The values as integers, or an error naming `what` when one is not.
    pub fn ints(&self, what: &str) -> Result<Vec<i64>, NodeFault> {
        self.vals
            .iter()
            .map(|&v| if v.fract() == 0.0 { Ok(v as i64) } else { Err(NodeFault(format!("{what} holds {v}, not an integer"))) })
            .collect()
    }
}

/// An integer list from attribute `attr` before `since`, else from input `i`.
fn list(n: &NodeProto, opset: i64, since: i64, i: usize, attr: &str, input: Input) -> Result<Option<Vec<i64>>, NodeFault> {
    if opset < since {
        Ok(attrs::ints(n, attr))
    } else {
        input(i).map(|c| c.ints(attr)).transpose()
    }
}

/// Slice: `starts`, `ends`, `axes`, `steps` as inputs 1-4 (opset 10 on) or attributes
/// (before), clamped as ONNX says; negative steps walk backwards.
pub fn slice(n: &NodeProto, opset: i64, dims: &[usize], input: Input) -> Result<Picks, NodeFault> {
    let starts = list(n, opset, 10, 1, "starts", input)?.ok_or_else(|| NodeFault("has no starts".into()))?;
    let ends = list(n, opset, 10, 2, "ends", input)?.ok_or_else(|| NodeFault("has no ends".into()))?;
    let axes = list(n, opset, 10, 3, "axes", input)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = list(n, opset, 10, 4, "steps", input)?.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(NodeFault("starts, ends, axes and steps differ in length".into()));
    }
    let mut picks = all(dims);
    for k in 0..starts.len() {
        let axis = attrs::normalize_axis(axes[k], dims.len())?;
        let (size, step) = (dims[axis] as i64, steps[k]);
        if step == 0 {
            return Err(NodeFault("a step is 0".into()));
        }
        let clamp = |v: i64, lo: i64, hi: i64| (if v < 0 { v.saturating_add(size) } else { v }).clamp(lo, hi);
        picks[axis] = if step > 0 {
            let (s, e) = (clamp(starts[k], 0, size), clamp(ends[k], 0, size));
            (s..e).step_by(step as usize).map(|i| i as usize).collect()
        } else {
            let (s, e) = (clamp(starts[k], -1, size - 1), clamp(ends[k], -1, size - 1));
            let mut out = vec![];
            let mut i = s;
            while i > e {
                out.push(i as usize);
                i = i.saturating_add(step);
            }
            out
        };
    }
    Ok(picks)
}

/// Split into `outputs` parts along `axis`: sizes from the `split` attribute (before opset
/// 13) or input 1, else `num_outputs` parts of `ceil(size / num_outputs)` (opset 18), else
/// equal parts. One selection per output.
pub fn split(n: &NodeProto, opset: i64, dims: &[usize], outputs: usize, input: Input) -> Result<Vec<Picks>, NodeFault> {
    let axis = attrs::normalize_axis(attrs::int(n, "axis", 0), dims.len())?;
    let size = dims[axis];
    let sizes: Vec<usize> = match list(n, opset, 13, 1, "split", input)? {
        Some(s) => s
            .iter()
            .map(|&v| usize::try_from(v).map_err(|_| NodeFault(format!("split {s:?} has a negative size"))))
            .collect::<Result<_, _>>()?,
        None if opset >= 18 && attrs::int(n, "num_outputs", 0) > 0 => {
            let chunk = size.div_ceil(outputs.max(1));
            (0..outputs).map(|k| chunk.min(size.saturating_sub(k * chunk))).collect()
        }
        None if outputs > 0 && size.is_multiple_of(outputs) => vec![size / outputs; outputs],
        None => return Err(NodeFault(format!("splits axis {axis} of size {size} into {outputs} equal parts"))),
    };
    if sizes.len() != outputs || sizes.iter().sum::<usize>() != size {
        return Err(NodeFault(format!("split sizes {sizes:?} do not cut axis {axis} of size {size} into {outputs} outputs")));
    }
    let mut start = 0;
    Ok(sizes
        .iter()
        .map(|&len| {
            let mut picks = all(dims);
            picks[axis] = (start..start + len).collect();
            start += len;
            picks
        })
        .collect())
}

/// The axes of Squeeze or Unsqueeze: the attribute before opset 13, else input 1.
fn axes(n: &NodeProto, opset: i64, input: Input) -> Result<Option<Vec<i64>>, NodeFault> {
    list(n, opset, 13, 1, "axes", input)
}

/// Squeeze's output shape: `dims` without the listed axes (each of size 1), or without
/// every size-1 axis.
pub fn squeeze(n: &NodeProto, opset: i64, dims: &[usize], input: Input) -> Result<Vec<usize>, NodeFault> {
    Ok(match axes(n, opset, input)? {
        None => dims.iter().copied().filter(|&d| d != 1).collect(),
        Some(axes) => {
            let at: Vec<usize> = axes.iter().map(|&a| attrs::normalize_axis(a, dims.len())).collect::<Result<_, _>>()?;
            if let Some(&a) = at.iter().find(|&&a| dims[a] != 1) {
                return Err(NodeFault(format!("squeezes axis {a} of size {}", dims[a])));
            }
            dims.iter().enumerate().filter(|(i, _)| !at.contains(i)).map(|(_, &d)| d).collect()
        }
    })
}

/// Unsqueeze's output shape: size-1 axes inserted at the listed output positions.
pub fn unsqueeze(n: &NodeProto, opset: i64, dims: &[usize], input: Input) -> Result<Vec<usize>, NodeFault> {
    let Some(axes) = axes(n, opset, input)? else { return Err(NodeFault("has no axes".into())) };
    let rank = dims.len() + axes.len();
    let mut at: Vec<usize> = axes.iter().map(|&a| attrs::normalize_axis(a, rank)).collect::<Result<_, _>>()?;
    at.sort_unstable();
    let mut out = dims.to_vec();
    for &a in &at {
        out.insert(a.min(out.len()), 1);
    }
    Ok(out)
}

/// Nearest-neighbour Resize (opset 10 on) and Upsample (opsets 7-9): the output size and scale of each axis from
/// `scales` (input 1 at opset 10, else 2) or `sizes` (input 3), then ONNX's
/// `coordinate_transformation_mode` and `nearest_mode`, in f32 as ONNX Runtime computes
/// them. Opset 10 has neither attribute: ONNX Runtime reads it as `asymmetric`, rounding
/// down when enlarging and up when shrinking.
pub fn resize(n: &NodeProto, opset: i64, dims: &[usize], input: Input) -> Result<Picks, NodeFault> {
    let mode = attrs::string(n, "mode", "nearest");
    if mode != "nearest" {
        return Err(NodeFault(format!("mode `{mode}` is not supported; Systole resizes by nearest neighbour")));
    }
    if attrs::ints(n, "axes").is_some() || attrs::string(n, "keep_aspect_ratio_policy", "stretch") != "stretch" {
        return Err(NodeFault("`axes` and `keep_aspect_ratio_policy` are not supported".into()));
    }
    // Upsample (opsets 7-9) is Resize as opset 10 reads it, its scales an attribute before 9.
    let scales_attribute = (n.op_type == "Upsample" && opset < 9).then(|| {
        let v: Vec<f64> =
            n.attribute.iter().find(|a| a.name == "scales").map(|a| a.floats.iter().map(|&f| f as f64).collect()).unwrap_or_default();
        Const { dims: vec![v.len()], dtype: crate::attrs::dtype::FLOAT, vals: v }
    });
    let upsample = n.op_type == "Upsample";
    let opset = if upsample { 10 } else { opset };
    let given =
        |i: usize| if i == 1 && scales_attribute.is_some() { scales_attribute.clone() } else { input(i) }.filter(|c| !c.vals.is_empty());
    let rank = dims.len();
    let (out, scales): (Vec<usize>, Vec<f32>) = match (given(if opset < 11 { 1 } else { 2 }), given(3).filter(|_| opset >= 11)) {
        (Some(s), None) => {
            let s = s.f32s();
            if s.len() != rank || s.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(NodeFault(format!("scales {s:?} do not give a positive factor per axis of {dims:?}")));
            }
            if upsample && s.iter().any(|&v| v < 1.0) {
                return Err(NodeFault(format!("Upsample scales {s:?} shrink an axis; ONNX requires scales of at least 1")));
            }
            ((0..rank).map(|d| (dims[d] as f32 * s[d]).floor() as usize).collect(), s)
        }
        (None, Some(z)) => {
            let z = z.ints("sizes")?;
            if z.len() != rank || z.iter().any(|&v| v < 1) {
                return Err(NodeFault(format!("sizes {z:?} do not give a positive size per axis of {dims:?}")));
            }
            let out: Vec<usize> = z.iter().map(|&v| v as usize).collect();
            let scales = (0..rank).map(|d| out[d] as f32 / dims[d] as f32).collect();
            (out, scales)
        }
        _ => return Err(NodeFault("needs exactly one of `scales` and `sizes` as a constant".into())),
    };
    let coordinate = if opset < 11 { "asymmetric".into() } else { attrs::string(n, "coordinate_transformation_mode", "half_pixel") };
    let nearest = attrs::string(n, "nearest_mode", "round_prefer_floor");
    let mut picks = Vec::with_capacity(rank);
    for d in 0..rank {
        if out[d] == 0 || dims[d] == 0 {
            return Err(NodeFault(format!("resizes axis {d} from {} to {} elements", dims[d], out[d])));
        }
        let (len, len_out, scale) = (dims[d] as f32, out[d] as f32, scales[d]);
        let mut axis = Vec::with_capacity(out[d]);
        for i in 0..out[d] {
            let x = i as f32;
            let original = match coordinate.as_str() {
                "half_pixel" => (x + 0.5) / scale - 0.5,
                "pytorch_half_pixel" if out[d] > 1 => (x + 0.5) / scale - 0.5,
                "pytorch_half_pixel" => 0.0,
                "align_corners" if out[d] > 1 => x * (len - 1.0) / (len_out - 1.0),
                "align_corners" => 0.0,
                "asymmetric" => x / scale,
                "tf_half_pixel_for_nearest" => (x + 0.5) / scale,
                "half_pixel_symmetric" => {
                    let adjustment = len_out / (scale * len);
                    len / 2.0 * (1.0 - adjustment) + (x + 0.5) / scale - 0.5
                }
                other => return Err(NodeFault(format!("coordinate_transformation_mode `{other}` is not supported"))),
            };
            let index = match (opset < 11, nearest.as_str()) {
                (true, _) if scale < 1.0 => original.ceil(),
                (true, _) => original.trunc(),
                (false, "round_prefer_floor") if original.fract() == 0.5 => original.floor(),
                (false, "round_prefer_ceil") if original.fract() == 0.5 => original.ceil(),
                (false, "round_prefer_floor" | "round_prefer_ceil") => original.round(),
                (false, "floor") => original.floor(),
                (false, "ceil") => original.ceil(),
                (false, other) => return Err(NodeFault(format!("nearest_mode `{other}` is not an ONNX value"))),
            };
            axis.push((index.max(0.0) as usize).min(dims[d] - 1));
        }
        picks.push(axis);
    }
    Ok(picks)
}

/// Every index of every axis: the identity selection.
fn all(dims: &[usize]) -> Picks {
    dims.iter().map(|&d| (0..d).collect()).collect()
}
