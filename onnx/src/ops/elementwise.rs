//! Elementwise operators: `Add`, `Sub`, `Mul`, `Div`, `Sum`, `QLinearAdd` and `QLinearMul`
//! (numpy broadcasting; an Add of equal shapes may run on the vector unit, the rest on the
//! host; a Sum of two inputs is an Add),
//! `Relu` and `Clip` (fused into the layer or Add before them as ReLU or ReLU6, else a
//! requantization with the activation), and `BatchNormalization`, which post-training
//! quantization folds into the convolution before it.

use super::{input, need, Eval, OpDef, MICROSOFT};
use crate::attrs;
use crate::attrs::dtype;
use crate::float::{elements, map, FTensor};
use crate::import::{fail, Fail, Importer, Pending, PendingOp, Sym};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::layer::Activation;
use systole_core::network::{BinaryFn, ConstOperand, Quant, ValueId};
use systole_core::region::{FloatOp, FloatTensor};

/// The elementwise family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Add", since: 7, import: import_add, eval: Some(eval_add) },
    OpDef { domain: MICROSOFT, name: "QLinearAdd", since: 1, import: import_qlinear_add, eval: None },
    OpDef { domain: "", name: "Mul", since: 7, import: import_add, eval: Some(eval_add) },
    OpDef { domain: MICROSOFT, name: "QLinearMul", since: 1, import: import_qlinear_add, eval: None },
    OpDef { domain: "", name: "Sub", since: 7, import: import_add, eval: Some(eval_add) },
    OpDef { domain: "", name: "Div", since: 7, import: import_add, eval: Some(eval_add) },
    OpDef { domain: "", name: "Sum", since: 7, import: import_sum, eval: Some(eval_sum) },
    OpDef { domain: "", name: "Relu", since: 7, import: import_activation, eval: Some(eval_relu) },
    OpDef { domain: "", name: "Clip", since: 7, import: import_activation, eval: Some(eval_clip) },
    OpDef { domain: "", name: "BatchNormalization", since: 7, import: import_batch_norm, eval: Some(eval_batch_norm) },
];

fn import_qlinear_add(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let is_const = |imp: &Importer, i: usize| -> Result<bool, Fail> { Ok(matches!(imp.sym(&need(n, i)?)?, Sym::Const(_))) };
    // A constant operand (an int8 initializer with its scale and zero point) goes second.
    let (xa, ca) = if is_const(imp, 0)? { (3, Some(0)) } else { (0, is_const(imp, 3)?.then_some(3)) };
    let a = imp.operand(&need(n, xa)?, &need(n, xa + 1)?, input(n, xa + 2))?;
    let (op, inputs) = match ca {
        Some(c) => {
            let value = imp.constant(&need(n, c)?, "operand")?;
            let (q, _) = imp.quant(&need(n, c + 1)?, input(n, c + 2), value.dtype == dtype::UINT8)?;
            let data = match value.dtype {
                dtype::INT8 => value.vals.iter().map(|&v| v as i8).collect(),
                dtype::UINT8 => value.vals.iter().map(|&v| (v as i32 - 128) as i8).collect(),
                other => return fail(format!("the constant operand has {}", dtype::name(other)), "quantize it to int8"),
            };
            (constant_op(n, ConstOperand { shape: value.dims, data, quant: q, first: c == 0 }), vec![a])
        }
        None => (binary(n), vec![a, imp.operand(&need(n, 3)?, &need(n, 4)?, input(n, 5))?]),
    };
    let y = imp.quant(&need(n, 6)?, input(n, 7), false)?;
    imp.emit_quantized(n, op, inputs, y)
}

fn import_add(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let (a, b) = (need(n, 0)?, need(n, 1)?);
    // A constant operand (DequantizeLinear of an int8 constant) goes second.
    let (x, c, first) = match (imp.sym(&a)?, imp.sym(&b)?) {
        (_, Sym::DqConst(d)) => (a, Some(d.clone()), false),
        (Sym::DqConst(d), _) => (b.clone(), Some(d.clone()), true),
        _ => (a, None, false),
    };
    let x = imp.dq_input(&x, n)?;
    match c {
        Some(d) => {
            if d.q.dtype != dtype::INT8 || d.scale.len() != 1 || d.zp.len() != 1 {
                return fail(
                    format!("the constant operand is {} quantized with {} scales", dtype::name(d.q.dtype), d.scale.len()),
                    "quantize the constant operand to int8 per tensor",
                );
            }
            let operand = ConstOperand {
                shape: d.q.dims.clone(),
                data: d.q.vals.iter().map(|&v| v as i8).collect(),
                quant: Quant { scale: d.scale[0], zp: d.zp[0] as i8 },
                first,
            };
            imp.pend(n, constant_op(n, operand), vec![x]);
        }
        None => {
            let y = imp.dq_input(&b, n)?;
            imp.pend(n, binary(n), vec![x, y]);
        }
    }
    Ok(())
}

/// The operator of Sub, Mul, Div and their QLinear forms; None for Add.
pub(crate) fn binary_fn(n: &NodeProto) -> Option<BinaryFn> {
    match n.op_type.trim_start_matches("QLinear") {
        "Mul" => Some(BinaryFn::Mul),
        "Sub" => Some(BinaryFn::Sub),
        "Div" => Some(BinaryFn::Div),
        _ => None,
    }
}

/// `n` with the constant `operand`.
fn constant_op(n: &NodeProto, operand: ConstOperand) -> PendingOp {
    match binary_fn(n) {
        Some(f) => PendingOp::BinaryConst(f, Box::new(operand)),
        None => PendingOp::AddConst(Box::new(operand)),
    }
}

/// `n` on two activations, whatever the form (QLinearAdd, QLinearMul).
fn binary(n: &NodeProto) -> PendingOp {
    binary_fn(n).map_or(PendingOp::Add, PendingOp::Binary)
}

/// `Sum` of dequantized inputs: one is a requantization, two an Add.
fn import_sum(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let inputs: Vec<(ValueId, Quant)> = n.input.iter().filter(|s| !s.is_empty()).map(|i| imp.dq_input(i, n)).collect::<Result<_, _>>()?;
    let op = match inputs.len() {
        0 => return fail("has no inputs", "remove the Sum or give it its inputs"),
        1 => PendingOp::Activation,
        2 => PendingOp::Add,
        _ => PendingOp::Sum,
    };
    imp.pend(n, op, inputs);
    Ok(())
}

/// ReLU, or Clip: fused into the operator before it when it is ReLU or ReLU6, else a clamp in
/// a float region (`crate::region`).
fn import_activation(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let (lo, hi) = bounds(imp, n)?;
    let x = need(n, 0)?;
    match (fused(lo, hi), imp.sym(&x)?.clone()) {
        (Some(act), Sym::Pending(mut p)) if p.act == Activation::None || p.act == act => {
            p.act = act;
            imp.set(n, Sym::Pending(p));
        }
        (Some(act), Sym::Dq(v, q)) => {
            let p = Pending::new(n, PendingOp::Activation, vec![(v, q)], act);
            imp.set(n, Sym::Pending(Box::new(p)));
        }
        (_, Sym::Dq(..) | Sym::Pending(_)) => return crate::region::extend(imp, n),
        _ => return fail(format!("input `{x}` is not a dequantized tensor or a quantizable op's output"), "quantize the model again"),
    }
    Ok(())
}

fn import_batch_norm(_: &mut Importer, _: &NodeProto) -> Result<(), Fail> {
    fail(
        "BatchNormalization in a quantized model",
        "fold it into the convolution before quantizing (quant_pre_process does), or give Systole the float model",
    )
}

/// The bounds of ReLU (0, inf) or Clip (constant bounds; attributes before opset 11).
pub(crate) fn bounds(imp: &Importer, n: &NodeProto) -> Result<(f32, f32), Fail> {
    if n.op_type == "Relu" {
        return Ok((0.0, f32::MAX));
    }
    let bound = |i: usize, attr: &str, default: f32| -> Result<f32, Fail> {
        if imp.opset < 11 {
            return Ok(attrs::float(n, attr, default));
        }
        match n.input.get(i).filter(|s| !s.is_empty()) {
            None => Ok(default),
            Some(name) => imp
                .constant(name, "Clip bound")?
                .scalar()
                .map(|v| v as f32)
                .ok_or_else(|| Fail::from(format!("Clip bound `{name}` is not a scalar"))),
        }
    };
    Ok((bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?))
}

/// The activation a conv, GEMM or Add fuses for bounds `lo..=hi`: ReLU or ReLU6.
fn fused(lo: f32, hi: f32) -> Option<Activation> {
    match (lo, hi) {
        (0.0, 6.0) => Some(Activation::Relu6),
        (0.0, f32::MAX) => Some(Activation::Relu),
        _ => None,
    }
}

fn eval_relu(e: &Eval) -> Result<FTensor, NodeFault> {
    Ok(map(e.get(0)?, |v| v.max(0.0)))
}

fn eval_clip(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let bound = |i: usize, a: &str, d: f32| -> Result<f32, NodeFault> {
        if e.opset < 11 {
            return Ok(attrs::float(n, a, d));
        }
        if !e.has(i) {
            return Ok(d);
        }
        e.get(i)?.data.first().copied().ok_or_else(|| "empty Clip bound".into())
    };
    let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
    Ok(map(e.get(0)?, |v| v.max(lo).min(hi)))
}

/// Add, Sub, Mul or Div with numpy broadcasting.
fn eval_add(e: &Eval) -> Result<FTensor, NodeFault> {
    broadcast_op(FloatOp::Binary(binary_fn(e.n)), vec![e.get(0)?, e.get(1)?])
}

/// Sum with numpy broadcasting, added in input order.
fn eval_sum(e: &Eval) -> Result<FTensor, NodeFault> {
    let parts: Vec<FTensor> = (0..e.n.input.len()).map(|i| e.get(i)).collect::<Result<_, _>>()?;
    broadcast_op(FloatOp::Sum, parts)
}

/// `op` (Binary or Sum) on `parts` broadcast (numpy rules) to one shape, as float regions
/// compute it.
fn broadcast_op(op: FloatOp, parts: Vec<FTensor>) -> Result<FTensor, NodeFault> {
    let first = parts.first().ok_or("has no inputs")?;
    let mut shape = first.shape.clone();
    for p in &parts[1..] {
        shape = attrs::broadcast(&shape, &p.shape)
            .ok_or_else(|| NodeFault(format!("combines shapes {shape:?} and {:?}, which do not broadcast", p.shape)))?;
    }
    elements(&shape)?;
    let args: Vec<FloatTensor> = parts.into_iter().map(|p| FloatTensor { shape: p.shape, data: p.data }).collect();
    let data = op.apply(&args.iter().collect::<Vec<_>>(), &shape);
    Ok(FTensor { shape, data })
}

fn eval_batch_norm(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let x = e.get(0)?;
    let (g, b, m, v) = (e.get(1)?, e.get(2)?, e.get(3)?, e.get(4)?);
    let c = x.shape.get(1).copied().ok_or("input has no channel axis")?;
    if [&g, &b, &m, &v].iter().any(|t| t.data.len() != c) {
        return Err(NodeFault(format!("scale, bias, mean and variance must hold {c} values")));
    }
    let eps = attrs::batch_norm_epsilon(n, &v.data)?;
    let inner: usize = x.shape[2..].iter().product();
    let mut data = x.data.clone();
    for (i, d) in data.iter_mut().enumerate() {
        let ch = (i / inner) % c;
        *d = (*d - m.data[ch]) / (v.data[ch] + eps).sqrt() * g.data[ch] + b.data[ch];
    }
    Ok(FTensor { shape: x.shape, data })
}
