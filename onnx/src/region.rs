//! Float regions in quantized models: ONNX Runtime's quantizer leaves operators it has no
//! integer kernel for (Sub, Div, Sum, LRN, ... in QOperator models, and whatever follows them
//! until the next quantized operator) in float, so a float result can feed another float
//! operator, and an operand can be a float initializer. The importer gathers such operators
//! into one [`FloatRegion`], evaluated in f32 on the dequantized inputs and quantized once by
//! the QuantizeLinear that ends it, as ONNX Runtime computes it.

use crate::attrs::{self, dtype};
use crate::import::{fail, DqConst, Fail, Importer, Pending, PendingOp, Sym};
use crate::ops::output;
use crate::ops::{activation, elementwise, normalize, pool};
use onnx_protobuf::NodeProto;
use systole_core::layer::Activation;
use systole_core::network::{Pool, Quant, ValueId};
use systole_core::region::{FloatArg, FloatOp, FloatRegion, FloatStep, FloatTensor};

/// Operators a float region can hold (beyond the layout operators that follow a float
/// result, `Pending::after`).
const REGION_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sum",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "LeakyRelu",
    "Softmax",
    "LRN",
    "AveragePool",
    "GlobalAveragePool",
    "ReduceMean",
    "Concat",
];

/// Whether `n` continues a float region: an operator a region holds reading the float result
/// of an operator that no QuantizeLinear quantized, or an elementwise operator with a float
/// initializer operand.
pub(crate) fn continues(imp: &Importer, n: &NodeProto) -> bool {
    if !crate::canonical_domain(&n.domain).is_empty() || !REGION_OPS.contains(&n.op_type.as_str()) {
        return false;
    }
    let syms: Vec<Option<&Sym>> = n.input.iter().filter(|i| !i.is_empty()).map(|i| imp.syms.get(i)).collect();
    let pending = syms.iter().any(|s| matches!(s, Some(Sym::Pending(_))));
    let float_const = matches!(n.op_type.as_str(), "Add" | "Sub" | "Mul" | "Div" | "Sum")
        && syms.iter().any(|s| matches!(s, Some(Sym::Const(c)) if c.dtype == dtype::FLOAT))
        && syms.iter().any(|s| matches!(s, Some(Sym::Dq(..) | Sym::Pending(_))));
    pending || float_const
}

/// Adds `n` to the float region of its inputs (starting one from a pending operator or a
/// dequantized tensor), its output pending until a QuantizeLinear.
pub(crate) fn extend(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let mut steps: Vec<FloatStep> = vec![];
    let mut inputs: Vec<(ValueId, Quant)> = vec![];
    let mut args = vec![];
    // Clip's bounds are attributes of its step, not operands.
    let operands = if n.op_type == "Clip" { 1 } else { n.input.len() };
    for name in n.input.iter().take(operands).filter(|i| !i.is_empty()) {
        let arg = match imp.sym(name)?.clone() {
            Sym::Pending(p) => {
                let (region, ins) = into_region(imp, &p)?;
                append(&mut steps, &mut inputs, region, ins)
            }
            Sym::Dq(v, q) => {
                inputs.push((v, q));
                FloatArg::Input(inputs.len() - 1)
            }
            Sym::Const(c) if c.dtype == dtype::FLOAT => FloatArg::Const(Box::new(FloatTensor { shape: c.dims.clone(), data: c.f32s() })),
            Sym::DqConst(d) => FloatArg::Const(Box::new(dequantized(&d))),
            _ => {
                imp.dq_input(name, n)?;
                unreachable!("dq_input fails on every other symbol")
            }
        };
        args.push(arg);
    }
    let shapes: Vec<Vec<usize>> = args.iter().map(|a| arg_shape(imp, &steps, &inputs, a)).collect();
    for (op, shape) in float_ops(imp, n, &shapes)? {
        crate::import::check_elements(&output(n), &shape)?;
        steps.push(FloatStep { op, args: std::mem::take(&mut args), shape });
        args = vec![FloatArg::Step(steps.len() - 1)];
    }
    imp.pend(n, PendingOp::Region(FloatRegion { steps }), inputs);
    Ok(())
}

/// The steps of `region` appended after `steps` (its inputs after `inputs`), returning the
/// argument that reads its result.
fn append(steps: &mut Vec<FloatStep>, inputs: &mut Vec<(ValueId, Quant)>, region: FloatRegion, ins: Vec<(ValueId, Quant)>) -> FloatArg {
    let (step0, input0) = (steps.len(), inputs.len());
    inputs.extend(ins);
    for mut s in region.steps {
        for a in s.args.iter_mut() {
            match a {
                FloatArg::Input(k) => *k += input0,
                FloatArg::Step(j) => *j += step0,
                FloatArg::Const(_) => {}
            }
        }
        steps.push(s);
    }
    FloatArg::Step(steps.len() - 1)
}

fn arg_shape(imp: &Importer, steps: &[FloatStep], inputs: &[(ValueId, Quant)], a: &FloatArg) -> Vec<usize> {
    match a {
        FloatArg::Input(k) => imp.shape(inputs[*k].0),
        FloatArg::Step(j) => steps[*j].shape.clone(),
        FloatArg::Const(c) => c.shape.clone(),
    }
}

/// `d`'s values as DequantizeLinear gives them, in f32.
fn dequantized(d: &DqConst) -> FloatTensor {
    let inner: usize = d.q.dims.get(d.axis + 1..).map_or(1, |r| r.iter().product());
    let per = |i: usize| if d.scale.len() == 1 { 0 } else { (i / inner.max(1)) % d.scale.len() };
    let data = d.q.vals.iter().enumerate().map(|(i, &v)| ((v - d.zp[per(i).min(d.zp.len() - 1)]) as f32) * d.scale[per(i)]).collect();
    FloatTensor { shape: d.q.dims.clone(), data }
}

/// A layout operator of the network as a float operator, if a region can hold it.
pub(crate) fn layout_step(op: &systole_core::network::Op) -> Option<FloatOp> {
    use systole_core::network::Op;
    Some(match op {
        Op::MaxPool(pool) => FloatOp::Pool { pool: *pool, max: true },
        Op::Reshape => FloatOp::Reshape,
        Op::Transpose { perm } => FloatOp::Transpose { perm: perm.clone() },
        Op::Select { indices, .. } => FloatOp::Select { indices: indices.clone() },
        _ => return None,
    })
}

/// The clamp of a fused activation as a float operator.
fn clamp(act: Activation) -> Option<FloatOp> {
    match act {
        Activation::None => None,
        Activation::Relu => Some(FloatOp::Clip { lo: 0.0, hi: f32::MAX }),
        Activation::Relu6 => Some(FloatOp::Clip { lo: 0.0, hi: 6.0 }),
    }
}

/// A pending operator as a float region (its activation as a last clamp).
pub(crate) fn into_region(imp: &Importer, p: &Pending) -> Result<(FloatRegion, Vec<(ValueId, Quant)>), Fail> {
    if !p.after.is_empty() {
        return fail(
            format!(
                "the float result of {} `{}` passes {} before another float operator reads it",
                p.node.op_type,
                crate::node_name(&p.node),
                p.after[0].op_type
            ),
            "quantize it (QuantizeLinear) before the layout operator",
        );
    }
    let input_shape = |k: usize| imp.shape(p.inputs[k].0);
    let all: Vec<FloatArg> = (0..p.inputs.len()).map(FloatArg::Input).collect();
    let broadcast = |shapes: &[Vec<usize>]| {
        shapes[1..]
            .iter()
            .try_fold(shapes[0].clone(), |a, b| attrs::broadcast(&a, b))
            .ok_or_else(|| Fail::from(format!("shapes {shapes:?} do not broadcast")))
    };
    let in_shapes: Vec<Vec<usize>> = (0..p.inputs.len()).map(input_shape).collect();
    let one = |op, args, shape| vec![FloatStep { op, args, shape }];
    let mut steps = match &p.op {
        PendingOp::Region(r) => r.steps.clone(),
        PendingOp::Add => one(FloatOp::Binary(None), all, broadcast(&in_shapes)?),
        PendingOp::Binary(f) => one(FloatOp::Binary(Some(*f)), all, broadcast(&in_shapes)?),
        PendingOp::Sum => one(FloatOp::Sum, all, broadcast(&in_shapes)?),
        PendingOp::AddConst(c) | PendingOp::BinaryConst(_, c) => {
            let f = if let PendingOp::BinaryConst(f, _) = &p.op { Some(*f) } else { None };
            let constant = FloatArg::Const(Box::new(FloatTensor {
                shape: c.shape.clone(),
                data: c.data.iter().map(|&v| c.quant.dequantize(v)).collect(),
            }));
            let args = if c.first { vec![constant, FloatArg::Input(0)] } else { vec![FloatArg::Input(0), constant] };
            one(FloatOp::Binary(f), args, broadcast(&[in_shapes[0].clone(), c.shape.clone()])?)
        }
        PendingOp::Unary(f) => one(FloatOp::Unary(*f), all, in_shapes[0].clone()),
        PendingOp::Softmax { axis, flat } => one(FloatOp::Softmax { axis: *axis, flat: *flat }, all, in_shapes[0].clone()),
        PendingOp::Lrn(l) => one(FloatOp::Lrn(*l), all, in_shapes[0].clone()),
        PendingOp::Activation => one(FloatOp::Clip { lo: f32::MIN, hi: f32::MAX }, all, in_shapes[0].clone()),
        PendingOp::AvgPool(pool) => {
            let s = &in_shapes[0];
            let hw = pool.out_hw(s[2], s[3]);
            one(FloatOp::Pool { pool: *pool, max: false }, all, vec![s[0], s[1], hw[0], hw[1]])
        }
        PendingOp::GlobalAvgPool { flat } => {
            let s = &in_shapes[0];
            let mut steps = one(FloatOp::Pool { pool: global(s), max: false }, all, vec![s[0], s[1], 1, 1]);
            if *flat {
                steps.push(FloatStep { op: FloatOp::Reshape, args: vec![FloatArg::Step(0)], shape: vec![s[0], s[1]] });
            }
            steps
        }
        PendingOp::Concat { axis, shape } => one(FloatOp::Concat { axis: *axis }, all, shape.clone()),
        PendingOp::Conv { .. } | PendingOp::Gemm { .. } => {
            return fail(
                format!("reads the float output of {} `{}`, which no QuantizeLinear quantizes", p.node.op_type, crate::node_name(&p.node)),
                "quantize every conv and GEMM output (quantize_static does)",
            )
        }
    };
    if let Some(op) = clamp(p.act) {
        let shape = steps.last().map(|s| s.shape.clone()).unwrap_or_default();
        steps.push(FloatStep { op, args: vec![FloatArg::Step(steps.len() - 1)], shape });
    }
    Ok((FloatRegion { steps }, p.inputs.clone()))
}

/// The window of a global average over an NCHW tensor of `shape`.
fn global(shape: &[usize]) -> Pool {
    Pool::global([shape[2], shape[3]])
}

/// `n` on arguments of `shapes` as float operators, each reading the one before.
fn float_ops(imp: &Importer, n: &NodeProto, shapes: &[Vec<usize>]) -> Result<Vec<(FloatOp, Vec<usize>)>, Fail> {
    let s0 = shapes.first().cloned().ok_or_else(|| Fail::from("has no inputs".to_string()))?;
    let broadcast = || {
        shapes[1..].iter().try_fold(s0.clone(), |a, b| attrs::broadcast(&a, b)).ok_or_else(|| Fail {
            message: format!("combines shapes {shapes:?}, which do not broadcast"),
            help: "each axis must be equal or 1 in one of them (numpy broadcasting)".into(),
        })
    };
    let rank4 = || if s0.len() == 4 { Ok(()) } else { fail(format!("pools a rank-{} tensor", s0.len()), "pool NCHW images") };
    Ok(match n.op_type.as_str() {
        "Add" | "Sub" | "Mul" | "Div" if shapes.len() != 2 => return fail(format!("has {} operands", shapes.len()), "give it two"),
        "Add" | "Sub" | "Mul" | "Div" => vec![(FloatOp::Binary(elementwise::binary_fn(n)), broadcast()?)],
        "Sum" => vec![(FloatOp::Sum, broadcast()?)],
        "Relu" | "Clip" => {
            let (lo, hi) = elementwise::bounds(imp, n)?;
            vec![(FloatOp::Clip { lo, hi }, s0)]
        }
        "Sigmoid" | "HardSigmoid" | "HardSwish" | "LeakyRelu" => vec![(FloatOp::Unary(activation::function(n)), s0)],
        "Softmax" | "LRN" => match normalize::pending(n, imp.opset, &s0)? {
            PendingOp::Softmax { axis, flat } => vec![(FloatOp::Softmax { axis, flat }, s0)],
            PendingOp::Lrn(l) => vec![(FloatOp::Lrn(l), s0)],
            _ => unreachable!("normalize::pending gives Softmax or Lrn"),
        },
        "AveragePool" | "GlobalAveragePool" | "ReduceMean" => {
            rank4()?;
            match pool::pool_op(imp, n, &s0)? {
                PendingOp::AvgPool(p) => {
                    if !p.fits(s0[2], s0[3]) {
                        return fail(format!("window {:?} exceeds the padded input {s0:?}", p.kernel), "use a smaller window");
                    }
                    let hw = p.out_hw(s0[2], s0[3]);
                    vec![(FloatOp::Pool { pool: p, max: false }, vec![s0[0], s0[1], hw[0], hw[1]])]
                }
                PendingOp::GlobalAvgPool { flat } => {
                    let mut ops = vec![(FloatOp::Pool { pool: global(&s0), max: false }, vec![s0[0], s0[1], 1, 1])];
                    if flat {
                        ops.push((FloatOp::Reshape, vec![s0[0], s0[1]]));
                    }
                    ops
                }
                _ => unreachable!("pool_op gives an average pool"),
            }
        }
        _ => {
            let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), s0.len())?;
            let mut shape = s0.clone();
            shape[axis] = 0;
            for s in shapes {
                if s.len() != s0.len() || (0..s.len()).any(|d| d != axis && s[d] != s0[d]) {
                    return fail(format!("concatenates shapes {s0:?} and {s:?} along axis {axis}"), "the other axes must agree");
                }
                shape[axis] += s[axis];
            }
            vec![(FloatOp::Concat { axis }, shape)]
        }
    })
}
