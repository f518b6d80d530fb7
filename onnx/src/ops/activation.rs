//! Nonlinear activations: `Sigmoid`, `HardSigmoid`, `HardSwish` and `LeakyRelu` (float, or
//! on dequantized int8 in QDQ models) and com.microsoft's `QLinearSigmoid` and
//! `QLinearLeakyRelu`. Each becomes a host [`Op::Unary`](systole_core::network::Op::Unary):
//! QuantizeLinear(f(DequantizeLinear(x))) per element, the table ONNX Runtime's QLinear
//! kernels build (and its float path computes).

use super::{input, need, Eval, OpDef, MICROSOFT};
use crate::attrs;
use crate::float::{map, FTensor};
use crate::import::{Fail, Importer, PendingOp};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::network::UnaryFn;

/// The activation family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Sigmoid", since: 7, import: import_float, eval: Some(eval) },
    OpDef { domain: "", name: "HardSigmoid", since: 7, import: import_float, eval: Some(eval) },
    OpDef { domain: "", name: "HardSwish", since: 14, import: import_float, eval: Some(eval) },
    OpDef { domain: "", name: "LeakyRelu", since: 7, import: import_float, eval: Some(eval) },
    OpDef { domain: MICROSOFT, name: "QLinearSigmoid", since: 1, import: import_qlinear, eval: None },
    OpDef { domain: MICROSOFT, name: "QLinearLeakyRelu", since: 1, import: import_qlinear, eval: None },
];

/// The function of `n`, with its attributes' ONNX defaults.
pub(crate) fn function(n: &NodeProto) -> UnaryFn {
    match n.op_type.trim_start_matches("QLinear") {
        "HardSigmoid" => UnaryFn::HardSigmoid { alpha: attrs::float(n, "alpha", 0.2), beta: attrs::float(n, "beta", 0.5) },
        "HardSwish" => UnaryFn::HardSwish,
        "LeakyRelu" => UnaryFn::LeakyRelu { alpha: attrs::float(n, "alpha", 0.01) },
        _ => UnaryFn::Sigmoid,
    }
}

fn import_float(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.dq_input(&need(n, 0)?, n)?;
    imp.pend(n, PendingOp::Unary(function(n)), vec![x]);
    Ok(())
}

/// `QLinearSigmoid(X, X_scale, X_zero_point, Y_scale, Y_zero_point)`, likewise
/// `QLinearLeakyRelu` with its `alpha`.
fn import_qlinear(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.operand(&need(n, 0)?, &need(n, 1)?, input(n, 2))?;
    let y = imp.quant(&need(n, 3)?, input(n, 4), false)?;
    imp.emit_quantized(n, PendingOp::Unary(function(n)), vec![x], y)
}

fn eval(e: &Eval) -> Result<FTensor, NodeFault> {
    let f = function(e.n);
    Ok(map(e.get(0)?, |v| f.apply(v)))
}
