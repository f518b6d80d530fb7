//! Normalizations: `Softmax`, com.microsoft's `QLinearSoftmax` and `LRN`. Each runs on the
//! host in f32 on the dequantized input, as ONNX Runtime's float kernels do (its
//! QLinearSoftmax builds a table of exponentials instead, which agrees to one output step).

use super::{input, need, Eval, OpDef, MICROSOFT};
use crate::attrs;
use crate::float::FTensor;
use crate::import::{fail, Fail, Importer, PendingOp};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::network::{softmax, Lrn};

/// The normalization family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Softmax", since: 7, import: import_float, eval: Some(eval) },
    OpDef { domain: MICROSOFT, name: "QLinearSoftmax", since: 1, import: import_qlinear_softmax, eval: None },
    OpDef { domain: "", name: "LRN", since: 7, import: import_float, eval: Some(eval) },
];

/// Softmax's reduction on a tensor of `rank`: the axis and whether the axes after it join
/// it. `opset` is the default domain's (QLinearSoftmax states its own).
fn softmax_axes(n: &NodeProto, opset: i64, rank: usize) -> Result<(usize, bool), NodeFault> {
    let flat = opset < 13;
    let axis = attrs::normalize_axis(attrs::int(n, "axis", if flat { 1 } else { -1 }), rank)?;
    Ok((axis, flat))
}

/// LRN's attributes.
fn lrn(n: &NodeProto, shape: &[usize]) -> Result<Lrn, NodeFault> {
    if shape.len() < 3 {
        return Err(NodeFault(format!("normalizes a rank-{} tensor; LRN takes N x C x D1 x ...", shape.len())));
    }
    let size = attrs::int(n, "size", 0);
    if size < 1 {
        return Err(NodeFault(format!("size {size} is not a positive channel count")));
    }
    Ok(Lrn {
        size: size as usize,
        alpha: attrs::float(n, "alpha", 1e-4),
        beta: attrs::float(n, "beta", 0.75),
        bias: attrs::float(n, "bias", 1.0),
    })
}

/// The pending operator of `n` on an input of `shape`.
pub(crate) fn pending(n: &NodeProto, opset: i64, shape: &[usize]) -> Result<PendingOp, Fail> {
    Ok(if n.op_type == "LRN" {
        PendingOp::Lrn(lrn(n, shape)?)
    } else {
        let (axis, flat) = softmax_axes(n, opset, shape.len())?;
        PendingOp::Softmax { axis, flat }
    })
}

fn import_float(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.dq_input(&need(n, 0)?, n)?;
    let op = pending(n, imp.opset, &imp.shape(x.0))?;
    imp.pend(n, op, vec![x]);
    Ok(())
}

/// `QLinearSoftmax(X, X_scale, X_zero_point, Y_scale, Y_zero_point)` with `axis` and the
/// `opset` whose Softmax it follows.
fn import_qlinear_softmax(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.operand(&need(n, 0)?, &need(n, 1)?, input(n, 2))?;
    let y = imp.quant(&need(n, 3)?, input(n, 4), false)?;
    let opset = attrs::int(n, "opset", 0);
    if opset < 1 {
        return fail("has no `opset` attribute, which says how its axis reads", "quantize the model again with onnxruntime");
    }
    let op = pending(n, opset, &imp.shape(x.0))?;
    imp.emit_quantized(n, op, vec![x], y)
}

fn eval(e: &Eval) -> Result<FTensor, NodeFault> {
    let x = e.get(0)?;
    let data = if e.n.op_type == "LRN" {
        lrn(e.n, &x.shape)?.apply(&x.shape, &x.data)
    } else {
        let (axis, flat) = softmax_axes(e.n, e.opset, x.shape.len())?;
        softmax(&x.shape, &x.data, axis, flat)
    };
    Ok(FTensor { shape: x.shape, data })
}
