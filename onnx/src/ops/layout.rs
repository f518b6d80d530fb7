//! Layout and graph plumbing: `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`,
//! `Pad`, and the selections `Slice`, `Split` and nearest `Resize` and `Upsample` (they move int8 bytes and
//! keep their input's quantization; `crate::picks` reads where each element comes from),
//! `Concat` and com.microsoft's `QLinearConcat`, and `Identity`. (`Constant` nodes are folded into initializers as the model is read,
//! `crate::fold`.)

use super::{input, need, output, Eval, OpDef, MICROSOFT};
use crate::attrs::{self, Const};
use crate::float::{elements, zeros, FTensor};
use crate::import::{fail, Fail, Importer, PendingOp, Sym};
use crate::picks;
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::network::{Op, Quant, SelectFrom, ValueId};

/// The layout family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Reshape", since: 7, import: import_reshape, eval: Some(eval_reshape) },
    OpDef { domain: "", name: "Flatten", since: 7, import: import_flatten, eval: Some(eval_flatten) },
    OpDef { domain: "", name: "Transpose", since: 7, import: import_transpose, eval: Some(eval_transpose) },
    OpDef { domain: "", name: "Pad", since: 7, import: import_pad, eval: Some(eval_pad) },
    OpDef { domain: "", name: "Concat", since: 7, import: import_concat, eval: Some(eval_concat) },
    OpDef { domain: MICROSOFT, name: "QLinearConcat", since: 1, import: import_qlinear_concat, eval: None },
    OpDef { domain: "", name: "Identity", since: 7, import: import_identity, eval: Some(eval_identity) },
    OpDef { domain: "", name: "Squeeze", since: 7, import: import_squeeze, eval: Some(eval_squeeze) },
    OpDef { domain: "", name: "Unsqueeze", since: 7, import: import_squeeze, eval: Some(eval_squeeze) },
    OpDef { domain: "", name: "Slice", since: 7, import: import_select, eval: Some(eval_select) },
    OpDef { domain: "", name: "Split", since: 7, import: import_select, eval: Some(eval_select) },
    OpDef { domain: "", name: "Resize", since: 10, import: import_select, eval: Some(eval_select) },
    OpDef { domain: "", name: "Upsample", since: 7, import: import_select, eval: Some(eval_select) },
];

/// Inputs 1.. of `n`, each a constant (an input that is given but computed fails here).
fn constant_inputs(imp: &Importer, n: &NodeProto) -> Result<Vec<Option<Const>>, Fail> {
    n.input
        .iter()
        .enumerate()
        .map(|(i, name)| if i == 0 || name.is_empty() { Ok(None) } else { imp.constant(name, "input").map(Some) })
        .collect()
}

fn import_squeeze(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let consts = constant_inputs(imp, n)?;
    let read = |i: usize| consts.get(i).cloned().flatten();
    imp.layout(n, |imp, shape, _, _| Ok((Op::Reshape, squeezed(n, imp.opset, shape, &read)?)))
}

/// Squeeze's or Unsqueeze's output shape.
fn squeezed(n: &NodeProto, opset: i64, shape: &[usize], read: picks::Input) -> Result<Vec<usize>, NodeFault> {
    if n.op_type == "Squeeze" {
        picks::squeeze(n, opset, shape, read)
    } else {
        picks::unsqueeze(n, opset, shape, read)
    }
}

/// Slice, Split (one selection per output) and nearest Resize on int8 bytes.
fn import_select(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let consts = constant_inputs(imp, n)?;
    let read = |i: usize| consts.get(i).cloned().flatten();
    imp.layout_outputs(n, |imp, shape, _, _| {
        Ok(selections(n, imp.opset, shape, &read)?
            .into_iter()
            .map(|(indices, from)| {
                let out = indices.iter().map(Vec::len).collect();
                (Op::Select { indices, from }, out)
            })
            .collect())
    })
}

/// The selections of `n` on an input of `shape`, one per output.
fn selections(n: &NodeProto, opset: i64, shape: &[usize], read: picks::Input) -> Result<Vec<(picks::Picks, SelectFrom)>, NodeFault> {
    Ok(match n.op_type.as_str() {
        "Slice" => vec![(picks::slice(n, opset, shape, read)?, SelectFrom::Slice)],
        "Resize" | "Upsample" => vec![(picks::resize(n, opset, shape, read)?, SelectFrom::Resize)],
        _ => picks::split(n, opset, shape, n.output.len(), read)?.into_iter().map(|p| (p, SelectFrom::Split)).collect(),
    })
}

fn import_identity(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let s = imp.sym(&need(n, 0)?)?.clone();
    imp.set(n, s);
    Ok(())
}

fn import_qlinear_concat(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let (yq, u8) = imp.quant(&need(n, 0)?, input(n, 1), false)?;
    let mut inputs = vec![];
    for i in (2..n.input.len()).step_by(3) {
        inputs.push(imp.operand(&need(n, i)?, &need(n, i + 1)?, input(n, i + 2))?);
    }
    let op = concat_op(imp, n, &inputs.iter().map(|i| i.0).collect::<Vec<_>>())?;
    imp.emit_quantized(n, op, inputs, (yq, u8))
}

/// A Concat of int8 tensors of one quantization is a layout operator; on dequantized
/// inputs it is quantized like a compute operator.
fn import_concat(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let names: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
    if names.is_empty() {
        return fail("has no inputs", "remove the Concat or give it its inputs");
    }
    if names.iter().all(|i| matches!(imp.syms.get(i), Some(Sym::Quant(_)))) {
        let vs: Vec<ValueId> = names.iter().map(|i| imp.quant_input(i)).collect::<Result<_, _>>()?;
        let q = imp.net.values[vs[0]].quant;
        if vs.iter().any(|&v| imp.net.values[v].quant != q) {
            return fail("concatenates int8 tensors of different quantizations", "use QLinearConcat");
        }
        let PendingOp::Concat { axis, shape } = concat_op(imp, n, &vs)? else { unreachable!() };
        let v = imp.emit(n, Op::Concat { axis }, vs, &output(n), shape, q)?;
        imp.set(n, Sym::Quant(v));
    } else {
        let inputs: Vec<(ValueId, Quant)> = names.iter().map(|i| imp.dq_input(i, n)).collect::<Result<_, _>>()?;
        let op = concat_op(imp, n, &inputs.iter().map(|i| i.0).collect::<Vec<_>>())?;
        imp.pend(n, op, inputs);
    }
    Ok(())
}

fn import_flatten(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    imp.layout(n, |_, shape, _, _| Ok((Op::Reshape, attrs::flatten(shape, attrs::int(n, "axis", 1))?)))
}

fn import_reshape(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    imp.layout(n, |imp, shape, _, _| {
        let target = n.input.get(1).ok_or_else(|| Fail::from("has no shape input".to_string()))?;
        let t = imp.constant(target, "shape")?;
        Ok((Op::Reshape, attrs::reshape(shape, &t.vals, attrs::int(n, "allowzero", 0) != 0)?))
    })
}

fn import_transpose(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    imp.layout(n, |_, shape, _, _| {
        let perm = attrs::perm(n, shape.len())?;
        let s = perm.iter().map(|&p| shape[p]).collect();
        Ok((Op::Transpose { perm }, s))
    })
}

/// Constant padding with the zero point (int8) or 0.0 (dequantized), without cropping.
fn import_pad(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    imp.layout(n, |imp, shape, quant, dequantized| {
        if attrs::string(n, "mode", "constant") != "constant" {
            return fail("only constant padding is supported", "pad with mode = constant");
        }
        let pads = if imp.opset < 11 {
            attrs::ints(n, "pads").unwrap_or_default().iter().map(|&p| p as f64).collect()
        } else {
            imp.constant(n.input.get(1).map_or("", |s| s.as_str()), "pads")?.vals
        };
        if n.input.len() > 3 && !n.input[3].is_empty() {
            return fail("the axes input is not supported", "give pads for every axis");
        }
        let value = match n.input.get(2).filter(|s| !s.is_empty()) {
            _ if imp.opset < 11 => attrs::float(n, "value", 0.0) as f64,
            Some(c) => imp.constant(c, "constant_value")?.scalar().unwrap_or(f64::NAN),
            None => 0.0,
        };
        let zero = if dequantized { 0.0 } else { quant.zp as f64 };
        if value != zero {
            return fail(format!("pads with {value}, not with the zero point"), "pad with 0.0 (float) or the zero point (int8)");
        }
        if pads.len() != 2 * shape.len() || pads.iter().any(|&p| p < 0.0) {
            return fail(format!("pads {pads:?} do not give two non-negative values per axis"), "pad every axis, without cropping");
        }
        let pads: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
        let s = (0..shape.len()).map(|d| shape[d].saturating_add(pads[d]).saturating_add(pads[shape.len() + d])).collect();
        Ok((Op::Pad { pads }, s))
    })
}

/// The pending Concat of `n` on values `vs`: its axis and output shape.
fn concat_op(imp: &Importer, n: &NodeProto, vs: &[ValueId]) -> Result<PendingOp, Fail> {
    let Some(&v0) = vs.first() else { return fail("has no inputs", "remove the node or give it its inputs") };
    let first = imp.shape(v0);
    let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), first.len())?;
    let mut shape = first.clone();
    shape[axis] = 0;
    for &v in vs {
        let s = imp.shape(v);
        if s.len() != first.len() || (0..s.len()).any(|d| d != axis && s[d] != first[d]) {
            return fail(format!("concatenates shapes {first:?} and {s:?} along axis {axis}"), "the other axes must agree");
        }
        shape[axis] += s[axis];
    }
    Ok(PendingOp::Concat { axis, shape })
}

fn eval_flatten(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let x = e.get(0)?;
    Ok(FTensor { shape: attrs::flatten(&x.shape, attrs::int(n, "axis", 1))?, data: x.data })
}

fn eval_reshape(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let x = e.get(0)?;
    let target = n.input.get(1).and_then(|t| e.consts.get(t)).ok_or("the shape must be a constant")?;
    Ok(FTensor { shape: attrs::reshape(&x.shape, &target.vals, attrs::int(n, "allowzero", 0) != 0)?, data: x.data })
}

fn eval_transpose(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let x = e.get(0)?;
    let perm = attrs::perm(n, x.shape.len())?;
    let order = systole_core::tensor::transpose_order(&x.shape, &perm);
    Ok(FTensor { shape: perm.iter().map(|&p| x.shape[p]).collect(), data: order.iter().map(|&i| x.data[i]).collect() })
}

fn eval_concat(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let parts: Vec<FTensor> = (0..n.input.len()).map(|i| e.get(i)).collect::<Result<_, _>>()?;
    let first = parts.first().ok_or("has no inputs")?.shape.clone();
    let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), first.len())?;
    if parts.iter().any(|p| p.shape.len() != first.len() || (0..first.len()).any(|d| d != axis && p.shape[d] != first[d])) {
        return Err(NodeFault(format!("concatenates shapes that differ off axis {axis}")));
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
    Ok(FTensor { shape, data })
}

fn eval_pad(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    if attrs::string(n, "mode", "constant") != "constant" {
        return Err(NodeFault("only constant padding is supported".into()));
    }
    let x = e.get(0)?;
    let pads: Vec<f64> = if e.opset < 11 {
        attrs::ints(n, "pads").unwrap_or_default().iter().map(|&p| p as f64).collect()
    } else {
        e.get(1)?.data.iter().map(|&p| p as f64).collect()
    };
    if let Some(p) = pads.iter().find(|&&p| p < 0.0) {
        return Err(NodeFault(format!("pads {pads:?} has the negative value {p} (a crop), which Systole does not support")));
    }
    let pads: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
    let rank = x.shape.len();
    if pads.len() != 2 * rank {
        return Err(NodeFault(format!("pads {pads:?} do not give two values per axis")));
    }
    let value = if e.opset < 11 {
        attrs::float(n, "value", 0.0)
    } else if e.has(2) {
        e.get(2)?.data.first().copied().unwrap_or(0.0)
    } else {
        0.0
    };
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
    Ok(FTensor { shape: out_shape, data })
}

fn eval_identity(e: &Eval) -> Result<FTensor, NodeFault> {
    e.get(0)
}

fn eval_squeeze(e: &Eval) -> Result<FTensor, NodeFault> {
    let x = e.get(0)?;
    Ok(FTensor { shape: squeezed(e.n, e.opset, &x.shape, &|i| e.constant(i))?, data: x.data })
}

fn eval_select(e: &Eval) -> Result<FTensor, NodeFault> {
    let x = e.get(0)?;
    let mut all = selections(e.n, e.opset, &x.shape, &|i| e.constant(i))?;
    if e.output >= all.len() {
        return Err(NodeFault(format!("has no output {}", e.output)));
    }
    let (picks, _) = all.swap_remove(e.output);
    let shape: Vec<usize> = picks.iter().map(Vec::len).collect();
    elements(&shape)?;
    let data = systole_core::tensor::select_indices(&x.shape, &picks).into_iter().map(|i| x.data[i]).collect();
    Ok(FTensor { shape, data })
}
