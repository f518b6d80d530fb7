//! Constant tensors and node attributes as the importer, the float interpreter and the
//! quantizer read them, with errors as plain messages (the caller names the node).

use crate::NodeFault;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    tensor_proto::DataLocation, type_proto, AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use systole_core::network::Pool;

/// ONNX element types the importer reads.
pub mod dtype {
    /// float32.
    pub const FLOAT: i32 = 1;
    /// uint8.
    pub const UINT8: i32 = 2;
    /// int8.
    pub const INT8: i32 = 3;
    /// int32.
    pub const INT32: i32 = 6;
    /// int64.
    pub const INT64: i32 = 7;
    /// float64.
    pub const DOUBLE: i32 = 11;
    /// int4 (ONNX IR 10, opset 21): two per byte, the lower index in the low nibble.
    pub const INT4: i32 = 22;

    /// The ONNX name of an element type.
    pub fn name(t: i32) -> String {
        match t {
            FLOAT => "float32".into(),
            UINT8 => "uint8".into(),
            INT8 => "int8".into(),
            INT32 => "int32".into(),
            INT64 => "int64".into(),
            DOUBLE => "float64".into(),
            INT4 => "int4".into(),
            other => format!("element type {other}"),
        }
    }
}

/// A constant tensor (initializer or Constant node), values widened to f64 (exact for every
/// type read here except int64 beyond 2^53, which only shapes use).
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Shape.
    pub dims: Vec<usize>,
    /// ONNX element type.
    pub dtype: i32,
    /// Row-major values.
    pub vals: Vec<f64>,
}

impl Const {
    /// Reads a `TensorProto`.
    pub fn from_proto(t: &TensorProto) -> Result<Self, NodeFault> {
        if t.data_location.value() == DataLocation::EXTERNAL as i32 {
            return Err(NodeFault(format!("tensor `{}` is stored in an external file, which Systole does not read", t.name)));
        }
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| NodeFault(format!("tensor `{}` has negative dimension {d}", t.name))))
            .collect::<Result<Vec<_>, _>>()?;
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).filter(|&n| n as u64 <= systole_core::input::MAX_TENSOR_ELEMENTS);
        let n = n.ok_or_else(|| NodeFault(format!("tensor `{}` has an absurd size {dims:?}", t.name)))?;
        let raw = &t.raw_data;
        if t.data_type == dtype::INT4 {
            // Packed bytes: in `raw_data`, or one per `int32_data` entry (as onnx's helpers
            // write them).
            let packed: Vec<u8> = if raw.is_empty() { t.int32_data.iter().map(|&v| v as u8).collect() } else { raw.to_vec() };
            if packed.len() != n.div_ceil(2) {
                return Err(NodeFault(format!(
                    "tensor `{}` has {} packed int4 bytes, its shape {dims:?} needs {}",
                    t.name,
                    packed.len(),
                    n.div_ceil(2)
                )));
            }
            let nibble = |b: u8| ((b << 4) as i8 >> 4) as f64;
            let vals = (0..n).map(|i| nibble(packed[i / 2] >> (4 * (i % 2)))).collect();
            return Ok(Self { dims, dtype: dtype::INT4, vals });
        }
        let width = match t.data_type {
            dtype::FLOAT | dtype::INT32 => 4,
            dtype::UINT8 | dtype::INT8 => 1,
            dtype::INT64 | dtype::DOUBLE => 8,
            other => return Err(NodeFault(format!("tensor `{}` has {}, which Systole does not read", t.name, dtype::name(other)))),
        };
        let vals: Vec<f64> = if !raw.is_empty() {
            if raw.len() != n * width {
                return Err(NodeFault(format!("tensor `{}` has {} raw bytes, its shape {dims:?} needs {}", t.name, raw.len(), n * width)));
            }
            raw.chunks_exact(width)
                .map(|b| match t.data_type {
                    dtype::FLOAT => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    dtype::INT32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    dtype::UINT8 => b[0] as f64,
                    dtype::INT8 => b[0] as i8 as f64,
                    dtype::INT64 => i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64,
                    _ => f64::from_le_bytes(b.try_into().expect("8 bytes")),
                })
                .collect()
        } else {
            match t.data_type {
                dtype::FLOAT => t.float_data.iter().map(|&v| v as f64).collect(),
                dtype::INT32 | dtype::UINT8 | dtype::INT8 => t.int32_data.iter().map(|&v| v as f64).collect(),
                dtype::INT64 => t.int64_data.iter().map(|&v| v as f64).collect(),
                _ => t.double_data.clone(),
            }
        };
        if vals.len() != n {
            return Err(NodeFault(format!("tensor `{}` has {} values, its shape {dims:?} needs {n}", t.name, vals.len())));
        }
        if let Some(i) = vals.iter().position(|v| !v.is_finite()) {
            return Err(NodeFault(format!("tensor `{}` holds {} at element {i}; weights and constants must be finite", t.name, vals[i])));
        }
        Ok(Self { dims, dtype: t.data_type, vals })
    }

    /// The values as f32.
    pub fn f32s(&self) -> Vec<f32> {
        self.vals.iter().map(|&v| v as f32).collect()
    }

    /// The single value of a scalar (or one-element) tensor.
    pub fn scalar(&self) -> Option<f64> {
        (self.vals.len() == 1).then(|| self.vals[0])
    }
}

/// Writes a `TensorProto` with raw little-endian data.
pub fn tensor_proto(name: &str, dims: &[usize], dtype: i32, vals: &[f64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.into();
    t.dims = dims.iter().map(|&d| d as i64).collect();
    t.data_type = dtype;
    t.raw_data = match dtype {
        dtype::FLOAT => vals.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
        dtype::INT32 => vals.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
        dtype::INT8 => vals.iter().map(|&v| v as i8 as u8).collect(),
        dtype::UINT8 => vals.iter().map(|&v| v as u8).collect(),
        dtype::INT4 => vals.chunks(2).map(|p| (p[0] as i8 as u8 & 0xf) | (p.get(1).map_or(0, |&v| v as i8 as u8) << 4)).collect(),
        dtype::INT64 => vals.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect(),
        _ => vals.iter().flat_map(|&v| v.to_le_bytes()).collect(),
    };
    t
}

/// A node `name` applying `op` to `inputs`, with one `output` and `attributes`.
pub fn node_proto(op: &str, name: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.into();
    n.name = name.into();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.into()];
    n.attribute = attributes;
    n
}

/// An integer attribute.
pub fn int_attr(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.i = v;
    a.type_ = AttributeType::INT.into();
    a
}

/// A float attribute.
pub fn float_attr(name: &str, v: f32) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.f = v;
    a.type_ = AttributeType::FLOAT.into();
    a
}

/// A string attribute.
pub fn string_attr(name: &str, v: &str) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.s = v.as_bytes().to_vec();
    a.type_ = AttributeType::STRING.into();
    a
}

/// A float-list attribute.
pub fn floats_attr(name: &str, v: &[f32]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.floats = v.to_vec();
    a.type_ = AttributeType::FLOATS.into();
    a
}

/// An integer-list attribute.
pub fn ints_attr(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.ints = v.to_vec();
    a.type_ = AttributeType::INTS.into();
    a
}

/// A graph input or output `name` of element type `elem` and shape `dims`.
pub fn value_info(name: &str, elem: i32, dims: &[dimension::Value]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = Dimension::new();
        dim.value = Some(d.clone());
        shape.dim.push(dim);
    }
    let mut t = type_proto::Tensor::new();
    t.elem_type = elem;
    t.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(t));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

/// An integer attribute, or `default`.
pub fn int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).map_or(default, |a| a.i)
}

/// A float attribute, or `default`.
pub fn float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).map_or(default, |a| a.f)
}

/// An integer-list attribute, if present.
pub fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name).map(|a| a.ints.clone())
}

/// A string attribute, or `default`.
pub fn string(node: &NodeProto, name: &str, default: &str) -> String {
    attr(node, name).map_or(default.into(), |a| String::from_utf8_lossy(&a.s).into_owned())
}

/// A tensor attribute (Constant's `value`).
pub fn tensor<'a>(node: &'a NodeProto, name: &str) -> Option<&'a TensorProto> {
    attr(node, name).and_then(|a| a.t.as_ref())
}

/// Non-negative integers from an attribute list, each checked.
/// The shape numpy broadcasting gives `a` and `b` (aligned to the right, size-1 axes
/// stretched), if they broadcast.
pub fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], d: usize| if d + s.len() >= rank { s[d + s.len() - rank] } else { 1 };
    (0..rank)
        .map(|d| match (at(a, d), at(b, d)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// A BatchNormalization's `epsilon` (default 1e-5), after checking that it is finite and
/// not negative, that every channel's `variance + epsilon` is positive (its square root
/// divides), and that statistics are per channel (`spatial = 1`, the only form after opset 8).
pub fn batch_norm_epsilon(node: &NodeProto, variance: &[f32]) -> Result<f32, NodeFault> {
    if int(node, "spatial", 1) != 1 {
        return Err(NodeFault("spatial = 0 (statistics per element, opsets 7-8) is not supported".into()));
    }
    let eps = float(node, "epsilon", 1e-5);
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(NodeFault(format!("epsilon = {eps}; it must be a finite value of at least 0")));
    }
    match variance.iter().position(|&v| (v + eps).is_nan() || v + eps <= 0.0) {
        Some(ch) => Err(NodeFault(format!("channel {ch}'s variance {} plus epsilon {eps} is not positive", variance[ch]))),
        None => Ok(eps),
    }
}

/// A Conv's `group` attribute (default 1), which must be at least 1.
pub fn group(node: &NodeProto) -> Result<usize, NodeFault> {
    let g = int(node, "group", 1);
    usize::try_from(g).ok().filter(|&g| g >= 1).ok_or_else(|| NodeFault(format!("group = {g}; it must be at least 1")))
}

/// Largest window attribute (kernel extent, stride, dilation, pad) accepted: 2^20, beyond
/// any image's extent, so that the window arithmetic cannot overflow.
pub const MAX_WINDOW_ATTRIBUTE: usize = 1 << 20;

fn sizes(v: &[i64], what: &str) -> Result<Vec<usize>, NodeFault> {
    v.iter()
        .map(|&x| match usize::try_from(x) {
            Err(_) => Err(NodeFault(format!("{what} has the negative value {x}"))),
            Ok(x) if x > MAX_WINDOW_ATTRIBUTE => {
                Err(NodeFault(format!("{what} has the value {x}, more than the {MAX_WINDOW_ATTRIBUTE} accepted")))
            }
            Ok(x) => Ok(x),
        })
        .collect()
}

/// The spatial window attributes of Conv and the pools, for a 2-D window over an `h x w`
/// input: kernel, strides, pads (top, left, bottom, right; `auto_pad` resolved) and
/// dilations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Strides.
    pub stride: [usize; 2],
    /// Pads: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Dilations.
    pub dilation: [usize; 2],
}

impl Window {
    /// Reads the attributes; `kernel` is the weight's spatial size for Conv (None for pools,
    /// which need `kernel_shape`).
    pub fn read(node: &NodeProto, kernel: Option<[usize; 2]>, hw: [usize; 2]) -> Result<Self, NodeFault> {
        let two = |name: &str, default: [usize; 2]| -> Result<[usize; 2], NodeFault> {
            match ints(node, name) {
                None => Ok(default),
                Some(v) if v.len() == 2 => {
                    let s = sizes(&v, name)?;
                    if s.contains(&0) {
                        return Err(NodeFault(format!("{name} {v:?} has a zero")));
                    }
                    Ok([s[0], s[1]])
                }
                Some(v) => Err(NodeFault(format!("{name} {v:?} is not 2-D; Systole supports 2-D windows only"))),
            }
        };
        let kernel = match (ints(node, "kernel_shape"), kernel) {
            (None, Some(k)) => k,
            (None, None) => return Err("kernel_shape is missing".into()),
            (Some(_), k) => two("kernel_shape", k.unwrap_or([1, 1]))?,
        };
        let stride = two("strides", [1, 1])?;
        let dilation = two("dilations", [1, 1])?;
        let auto_pad = string(node, "auto_pad", "NOTSET");
        let pad = match auto_pad.as_str() {
            "NOTSET" => match ints(node, "pads") {
                None => [0; 4],
                Some(v) if v.len() == 4 => {
                    let s = sizes(&v, "pads")?;
                    [s[0], s[1], s[2], s[3]]
                }
                Some(v) => return Err(NodeFault(format!("pads {v:?} is not 2-D (four values)"))),
            },
            "VALID" => [0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let mut pad = [0; 4];
                for d in 0..2 {
                    let out = hw[d].div_ceil(stride[d]);
                    let span = (kernel[d] - 1) * dilation[d] + 1;
                    let total = ((out - 1) * stride[d] + span).saturating_sub(hw[d]);
                    let (small, big) = (total / 2, total - total / 2);
                    (pad[d], pad[d + 2]) = if auto_pad == "SAME_UPPER" { (small, big) } else { (big, small) };
                }
                pad
            }
            other => return Err(NodeFault(format!("auto_pad `{other}` is not an ONNX value"))),
        };
        Ok(Self { kernel, stride, pad, dilation })
    }

    /// The pool description of `node` on an `hw` image. ONNX's `ceil_mode` becomes end
    /// padding (`ceil_pad`): the windows a ceiling adds, except one that would start in the
    /// end padding (ONNX's and PyTorch's rule), reach past the input into padding every pool
    /// skips and no average counts.
    pub fn pool(&self, node: &NodeProto, hw: [usize; 2]) -> Result<Pool, NodeFault> {
        let count_include_pad = int(node, "count_include_pad", 0) != 0;
        let mut pool =
            Pool { kernel: self.kernel, stride: self.stride, pad: self.pad, count_include_pad, dilation: self.dilation, ceil_pad: [0; 2] };
        if int(node, "ceil_mode", 0) == 0 {
            return Ok(pool);
        }
        let extent = pool.extent();
        for d in 0..2 {
            let span = hw[d] + pool.pad[d] + pool.pad[d + 2];
            let Some(room) = span.checked_sub(extent[d]) else { continue };
            let mut windows = room.div_ceil(pool.stride[d]) + 1;
            if (windows - 1) * pool.stride[d] >= hw[d] + pool.pad[d] {
                windows -= 1;
            }
            let extra = ((windows - 1) * pool.stride[d] + extent[d]).saturating_sub(span);
            pool.pad[d + 2] += extra;
            pool.ceil_pad[d] = extra;
        }
        Ok(pool)
    }
}

/// Resolves a Reshape target (ONNX: 0 copies the input's dimension, -1 is inferred).
pub fn reshape(input: &[usize], target: &[f64], allowzero: bool) -> Result<Vec<usize>, NodeFault> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t as i64 {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| NodeFault(format!("shape {target:?}: 0 at axis {i} copies no input axis")))?)
            }
            v if v >= 0 && t.fract() == 0.0 => out.push(v as usize),
            _ => return Err(NodeFault(format!("shape {target:?} is not a valid Reshape target"))),
        }
    }
    let known = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| NodeFault(format!("shape {target:?} is too large")))?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(NodeFault(format!("shape {target:?} cannot hold {total} elements")));
        }
        out[i] = total / known;
    }
    let holds = out.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if holds != Some(total) {
        return Err(NodeFault(format!("shape {target:?} does not hold the {total} elements of the input {input:?}")));
    }
    Ok(out)
}

/// Flatten's output shape.
pub fn flatten(input: &[usize], axis: i64) -> Result<Vec<usize>, NodeFault> {
    let axis = normalize_axis(axis, input.len() + 1)?;
    Ok(vec![input[..axis].iter().product(), input[axis..].iter().product()])
}

/// An ONNX axis (negative counts from the end) checked against `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Result<usize, NodeFault> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    usize::try_from(a).ok().filter(|&a| a < rank).ok_or_else(|| NodeFault(format!("axis {axis} is outside a rank-{rank} tensor")))
}

/// Transpose's permutation (default: reversed axes), checked.
pub fn perm(node: &NodeProto, rank: usize) -> Result<Vec<usize>, NodeFault> {
    let p = match ints(node, "perm") {
        None => (0..rank).rev().collect(),
        Some(v) => sizes(&v, "perm")?,
    };
    let mut seen = vec![false; rank];
    for &a in &p {
        if a >= rank || std::mem::replace(&mut seen[a], true) {
            return Err(NodeFault(format!("perm {p:?} is not a permutation of {rank} axes")));
        }
    }
    if p.len() != rank {
        return Err(NodeFault(format!("perm {p:?} is not a permutation of {rank} axes")));
    }
    Ok(p)
}

/// Output shape of a 2-D window over NCHW `x` with `k` output channels.
pub fn window_out(x: &[usize], w: &Window, k: usize) -> Result<Vec<usize>, NodeFault> {
    let mut out = vec![x[0], k];
    for d in 0..2 {
        let span = (w.kernel[d] - 1) * w.dilation[d] + 1;
        let padded = x[2 + d] + w.pad[d] + w.pad[d + 2];
        if span > padded {
            return Err(NodeFault(format!("a window of extent {span} exceeds the padded input extent {padded}")));
        }
        out.push((padded - span) / w.stride[d] + 1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_tensors_pack_two_per_byte_low_nibble_first() {
        let t = tensor_proto("z", &[5], dtype::INT4, &[-8.0, 7.0, 1.0, -1.0, 3.0]);
        assert_eq!(t.raw_data, vec![0x78, 0xf1, 0x03]);
        assert_eq!(Const::from_proto(&t).unwrap().vals, vec![-8.0, 7.0, 1.0, -1.0, 3.0]);
        let mut ints = TensorProto::new();
        ints.name = "z".into();
        ints.dims = vec![2];
        ints.data_type = dtype::INT4;
        ints.int32_data = vec![0x9e];
        assert_eq!(Const::from_proto(&ints).unwrap().vals, vec![-2.0, -7.0]);
        ints.dims = vec![3];
        assert!(Const::from_proto(&ints).unwrap_err().0.contains("needs 2"));
    }
}
