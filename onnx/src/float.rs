//! A float interpreter for the operators of float models, used to calibrate post-training
//! quantization: it runs the graph on calibration inputs and reports every tensor.
//! Plain f32 loops in ONNX's NCHW layout, output channels in parallel.

use crate::attrs::{self, Const, Window};
use onnx_protobuf::{GraphProto, NodeProto};
use rayon::prelude::*;
use std::collections::HashMap;

/// A float tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct FTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major data.
    pub data: Vec<f32>,
}

impl FTensor {
    fn from_const(c: &Const) -> Self {
        Self { shape: c.dims.clone(), data: c.f32s() }
    }
}

/// Runs `graph` (nodes in topological order) on `inputs` and calls `visit(name, tensor)` for
/// every tensor a node computes, before its consumers read it (so `visit` may change it,
/// e.g. fake-quantize it). Errors name the node.
pub fn run(
    graph: &GraphProto,
    opset: i64,
    consts: &HashMap<String, Const>,
    inputs: &[(String, FTensor)],
    mut visit: impl FnMut(&str, &mut FTensor),
) -> Result<(), (String, String)> {
    let mut env: HashMap<String, FTensor> = inputs.iter().cloned().collect();
    for n in &graph.node {
        let get = |i: usize| -> Result<FTensor, String> {
            let key = n.input.get(i).filter(|s| !s.is_empty()).ok_or_else(|| format!("input {i} is missing"))?;
            env.get(key)
                .cloned()
                .or_else(|| consts.get(key).map(FTensor::from_const))
                .ok_or_else(|| format!("input `{key}` is not computed"))
        };
        let mut out = eval(n, opset, consts, &get).map_err(|m| (crate::node_name(n), m))?;
        if out.data.len() != out.shape.iter().product::<usize>() {
            return Err((
                crate::node_name(n),
                format!("computes {} values for shape {:?}; its inputs do not fit together", out.data.len(), out.shape),
            ));
        }
        if let Some(o) = n.output.first() {
            visit(o, &mut out);
            env.insert(o.clone(), out);
        }
    }
    Ok(())
}

fn eval(
    n: &NodeProto,
    opset: i64,
    consts: &HashMap<String, Const>,
    get: &dyn Fn(usize) -> Result<FTensor, String>,
) -> Result<FTensor, String> {
    let has = |i: usize| n.input.get(i).is_some_and(|s| !s.is_empty());
    Ok(match n.op_type.as_str() {
        "Identity" => get(0)?,
        "Constant" => FTensor::from_const(&Const::from_proto(attrs::tensor(n, "value").ok_or("has no tensor `value`")?)?),
        "Relu" => map(get(0)?, |v| v.max(0.0)),
        "Clip" => {
            let bound = |i: usize, a: &str, d: f32| -> Result<f32, String> {
                if opset < 11 {
                    return Ok(attrs::float(n, a, d));
                }
                if !has(i) {
                    return Ok(d);
                }
                get(i)?.data.first().copied().ok_or_else(|| "empty Clip bound".into())
            };
            let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
            map(get(0)?, |v| v.max(lo).min(hi))
        }
        "Add" => {
            let (a, b) = (get(0)?, get(1)?);
            if a.shape == b.shape {
                FTensor { data: a.data.iter().zip(&b.data).map(|(x, y)| x + y).collect(), shape: a.shape }
            } else if b.data.len() == 1 {
                map(a, |v| v + b.data[0])
            } else {
                return Err(format!("adds shapes {:?} and {:?}; broadcasting is not supported", a.shape, b.shape));
            }
        }
        "Conv" => conv(n, &get(0)?, &get(1)?, if has(2) { Some(get(2)?) } else { None })?,
        "Gemm" | "MatMul" => {
            let (a, b) = (get(0)?, get(1)?);
            let gemm = n.op_type == "Gemm";
            if gemm && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0 || attrs::float(n, "beta", 1.0) != 1.0) {
                return Err("transA = 1, alpha != 1 or beta != 1 is not supported".into());
            }
            let tb = gemm && attrs::int(n, "transB", 0) != 0;
            let ([m, k], [b0, b1]) =
                (a.shape[..].try_into().map_err(|_| "A must be a matrix")?, b.shape[..].try_into().map_err(|_| "B must be a matrix")?);
            let (bk, nn) = if tb { (b1, b0) } else { (b0, b1) };
            if bk != k {
                return Err(format!("[{m}, {k}] times {:?}: inner sizes differ", b.shape));
            }
            let c = if gemm && has(2) { Some(get(2)?) } else { None };
            if c.as_ref().is_some_and(|c| c.data.len() != nn && c.data.len() != 1) {
                return Err(format!("C must hold 1 or {nn} values"));
            }
            let mut out = zeros(&[m, nn], 0.0)?;
            for i in 0..m {
                for j in 0..nn {
                    let mut acc = c.as_ref().map_or(0.0, |c| c.data[if c.data.len() == nn { j } else { 0 }]);
                    for t in 0..k {
                        acc += a.data[i * k + t] * if tb { b.data[j * k + t] } else { b.data[t * nn + j] };
                    }
                    out[i * nn + j] = acc;
                }
            }
            FTensor { shape: vec![m, nn], data: out }
        }
        "BatchNormalization" => {
            let x = get(0)?;
            let (g, b, m, v) = (get(1)?, get(2)?, get(3)?, get(4)?);
            let c = x.shape.get(1).copied().ok_or("input has no channel axis")?;
            if [&g, &b, &m, &v].iter().any(|t| t.data.len() != c) {
                return Err(format!("scale, bias, mean and variance must hold {c} values"));
            }
            let eps = attrs::batch_norm_epsilon(n, &v.data)?;
            let inner: usize = x.shape[2..].iter().product();
            let mut data = x.data.clone();
            for (i, d) in data.iter_mut().enumerate() {
                let ch = (i / inner) % c;
                *d = (*d - m.data[ch]) / (v.data[ch] + eps).sqrt() * g.data[ch] + b.data[ch];
            }
            FTensor { shape: x.shape, data }
        }
        "MaxPool" | "AveragePool" | "GlobalAveragePool" => {
            let x = get(0)?;
            let [nb, c, h, w] = x.shape[..] else { return Err("pools NCHW images only".into()) };
            let (pool, max) = match n.op_type.as_str() {
                "GlobalAveragePool" => {
                    (systole_core::network::Pool { kernel: [h, w], stride: [1, 1], pad: [0; 4], count_include_pad: true }, false)
                }
                op => (Window::read(n, None, [h, w])?.pool(n)?, op == "MaxPool"),
            };
            let [p, q] = pool.out_hw(h, w);
            let mut out = zeros(&[nb, c, p, q], 0.0)?;
            out.clear();
            for plane in x.data.chunks(h * w) {
                for oy in 0..p {
                    for ox in 0..q {
                        let (mut acc, mut count) = (if max { f32::MIN } else { 0.0 }, 0);
                        for r in 0..pool.kernel[0] {
                            for s in 0..pool.kernel[1] {
                                let (y, xx) = (
                                    (oy * pool.stride[0] + r) as isize - pool.pad[0] as isize,
                                    (ox * pool.stride[1] + s) as isize - pool.pad[1] as isize,
                                );
                                if y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w {
                                    let v = plane[y as usize * w + xx as usize];
                                    acc = if max { acc.max(v) } else { acc + v };
                                    count += 1;
                                }
                            }
                        }
                        if pool.count_include_pad {
                            count = pool.kernel[0] * pool.kernel[1];
                        }
                        out.push(if max { acc } else { acc / count as f32 });
                    }
                }
            }
            FTensor { shape: vec![nb, c, p, q], data: out }
        }
        "Flatten" => {
            let x = get(0)?;
            FTensor { shape: attrs::flatten(&x.shape, attrs::int(n, "axis", 1))?, data: x.data }
        }
        "Reshape" => {
            let x = get(0)?;
            let target = n.input.get(1).and_then(|t| consts.get(t)).ok_or("the shape must be a constant")?;
            FTensor { shape: attrs::reshape(&x.shape, &target.vals, attrs::int(n, "allowzero", 0) != 0)?, data: x.data }
        }
        "Transpose" => {
            let x = get(0)?;
            let perm = attrs::perm(n, x.shape.len())?;
            let order = systole_core::tensor::transpose_order(&x.shape, &perm);
            FTensor { shape: perm.iter().map(|&p| x.shape[p]).collect(), data: order.iter().map(|&i| x.data[i]).collect() }
        }
        "Concat" => {
            let parts: Vec<FTensor> = (0..n.input.len()).map(get).collect::<Result<_, _>>()?;
            let first = parts.first().ok_or("has no inputs")?.shape.clone();
            let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), first.len())?;
            if parts.iter().any(|p| p.shape.len() != first.len() || (0..first.len()).any(|d| d != axis && p.shape[d] != first[d])) {
                return Err(format!("concatenates shapes that differ off axis {axis}"));
            }
            let outer: usize = parts[0].shape[..axis].iter().product();
            let mut shape = parts[0].shape.clone();
            shape[axis] = parts.iter().map(|p| p.shape.get(axis).copied().unwrap_or(0)).sum();
            let mut data = Vec::new();
            for o in 0..outer {
                for p in &parts {
                    let chunk: usize = p.shape[axis..].iter().product();
                    data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
                }
            }
            FTensor { shape, data }
        }
        "Pad" => {
            let x = get(0)?;
            let pads: Vec<f64> = if opset < 11 {
                attrs::ints(n, "pads").unwrap_or_default().iter().map(|&p| p as f64).collect()
            } else {
                get(1)?.data.iter().map(|&p| p as f64).collect()
            };
            if let Some(p) = pads.iter().find(|&&p| p < 0.0) {
                return Err(format!("pads {pads:?} has the negative value {p} (a crop), which Systole does not support"));
            }
            let pads: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
            let rank = x.shape.len();
            if pads.len() != 2 * rank {
                return Err(format!("pads {pads:?} do not give two values per axis"));
            }
            let value = if has(2) { get(2)?.data.first().copied().unwrap_or(0.0) } else { 0.0 };
            let out_shape: Vec<usize> = (0..rank).map(|d| x.shape[d].saturating_add(pads[d]).saturating_add(pads[rank + d])).collect();
            let mut data = zeros(&out_shape, value)?;
            let strides = systole_core::tensor::row_major_strides(&out_shape);
            for (i, &v) in x.data.iter().enumerate() {
                let mut rest = i;
                let mut at = 0;
                for d in (0..rank).rev() {
                    at += (rest % x.shape[d] + pads[d]) * strides[d];
                    rest /= x.shape[d];
                }
                data[at] = v;
            }
            FTensor { shape: out_shape, data }
        }
        other => return Err(format!("{other} is not supported in float models")),
    })
}

/// A tensor's data of `shape`, every element `value`, if it has at most
/// [`systole_core::input::MAX_TENSOR_ELEMENTS`] elements.
fn zeros(shape: &[usize], value: f32) -> Result<Vec<f32>, String> {
    match systole_core::input::tensor_elements(shape.iter().map(|&d| d as u64)) {
        Some(n) => Ok(vec![value; n as usize]),
        None => Err(format!("computes a tensor of shape {shape:?}, more than {} elements", systole_core::input::MAX_TENSOR_ELEMENTS)),
    }
}

fn map(mut t: FTensor, f: impl Fn(f32) -> f32) -> FTensor {
    t.data.iter_mut().for_each(|v| *v = f(*v));
    t
}

fn conv(n: &NodeProto, x: &FTensor, w: &FTensor, b: Option<FTensor>) -> Result<FTensor, String> {
    let ([nb, c, h, wd], [k, cg, r, s]) =
        (x.shape[..].try_into().map_err(|_| "Conv input must be NCHW")?, w.shape[..].try_into().map_err(|_| "Conv weights must be 4-D")?);
    let groups = attrs::group(n)?;
    if cg.checked_mul(groups) != Some(c) || k % groups != 0 {
        return Err(format!("{groups} groups of {cg} channels do not match {c} input and {k} output channels"));
    }
    let win = Window::read(n, Some([r, s]), [h, wd])?;
    if win.kernel != [r, s] {
        return Err(format!("kernel_shape {:?} differs from the weights' {:?}", win.kernel, [r, s]));
    }
    if b.as_ref().is_some_and(|b| b.data.len() != k) {
        return Err(format!("the bias must hold {k} values"));
    }
    let out = attrs::window_out(&x.shape, &win, k)?;
    let (p, q) = (out[2], out[3]);
    let kg = k / groups;
    let mut data = zeros(&[nb, k, p, q], 0.0)?;
    data.par_chunks_mut(p * q).enumerate().for_each(|(plane, o)| {
        let (bi, ki) = (plane / k, plane % k);
        let g = ki / kg;
        let bias = b.as_ref().map_or(0.0, |b| b.data[ki]);
        o.iter_mut().for_each(|v| *v = bias);
        for ci in 0..cg {
            let xc = &x.data[((bi * c) + g * cg + ci) * h * wd..][..h * wd];
            for ri in 0..r {
                for si in 0..s {
                    let wv = w.data[((ki * cg + ci) * r + ri) * s + si];
                    for oy in 0..p {
                        let y = (oy * win.stride[0] + ri * win.dilation[0]) as isize - win.pad[0] as isize;
                        if y < 0 || y as usize >= h {
                            continue;
                        }
                        let row = &xc[y as usize * wd..][..wd];
                        for (ox, ov) in o[oy * q..(oy + 1) * q].iter_mut().enumerate() {
                            let xx = (ox * win.stride[1] + si * win.dilation[1]) as isize - win.pad[1] as isize;
                            if xx >= 0 && (xx as usize) < wd {
                                *ov += wv * row[xx as usize];
                            }
                        }
                    }
                }
            }
        }
    });
    Ok(FTensor { shape: out, data })
}
