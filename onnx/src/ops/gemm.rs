//! Matrix products: `Gemm` and `MatMul` (float, or on dequantized int8 in QDQ models),
//! `QLinearMatMul` and com.microsoft's `QGemm`. Each becomes one accelerator GEMM layer with
//! constant weights; `transA = 1`, `alpha != 1` and (float) `beta != 1` are refused.

use super::{input, need, output, Eval, OpDef, MICROSOFT};
use crate::attrs;
use crate::float::{zeros, FTensor};
use crate::import::{fail, Fail, Importer, PendingOp};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::layer::Activation;

/// The GEMM family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Gemm", since: 7, import: import_float, eval: Some(eval_float) },
    OpDef { domain: "", name: "MatMul", since: 7, import: import_float, eval: Some(eval_float) },
    OpDef { domain: "", name: "QLinearMatMul", since: 10, import: import_quantized, eval: None },
    OpDef { domain: MICROSOFT, name: "QGemm", since: 1, import: import_quantized, eval: None },
];

fn import_quantized(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.operand(&need(n, 0)?, &need(n, 1)?, input(n, 2))?;
    let (w, ws, wz) = imp.int8_weights(&need(n, 3)?, &need(n, 4)?, input(n, 5))?;
    let gemm = n.op_type == "QGemm";
    let trans_b = gemm && attrs::int(n, "transB", 0) != 0;
    if gemm && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0) {
        return fail("transA = 1 or alpha != 1 is not supported", "export the Gemm with transA = 0 and alpha = 1");
    }
    let (bias, ys, yz) = if gemm { (input(n, 6), 7, 8) } else { (None, 6, 7) };
    let ys = input(n, ys).cloned().ok_or_else(|| Fail::from("has no y_scale: a float output is not supported".to_string()))?;
    let (yq, u8) = imp.quant(&ys, input(n, yz), false)?;
    let bias = bias.map(|b| imp.int_bias(b)).transpose()?;
    let v = imp.layer(n, Some(trans_b), x, &w, ws, &wz, bias, yq, Activation::None, &output(n))?;
    imp.define(n, v, u8);
    Ok(())
}

fn import_float(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.dq_input(&need(n, 0)?, n)?;
    let w = imp.dq_const(&need(n, 1)?, "weight")?;
    let bias = imp.float_bias(n)?;
    if n.op_type == "Gemm"
        && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0 || attrs::float(n, "beta", 1.0) != 1.0)
    {
        return fail("transA = 1, alpha != 1 or beta != 1 is not supported", "export the Gemm with transA = 0, alpha = beta = 1");
    }
    let trans_b = n.op_type == "Gemm" && attrs::int(n, "transB", 0) != 0;
    imp.pend(n, PendingOp::Gemm { trans_b, w, bias }, vec![x]);
    Ok(())
}

fn eval_float(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let (a, b) = (e.get(0)?, e.get(1)?);
    let gemm = n.op_type == "Gemm";
    if gemm && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0 || attrs::float(n, "beta", 1.0) != 1.0) {
        return Err("transA = 1, alpha != 1 or beta != 1 is not supported".into());
    }
    let tb = gemm && attrs::int(n, "transB", 0) != 0;
    let ([m, k], [b0, b1]) =
        (a.shape[..].try_into().map_err(|_| "A must be a matrix")?, b.shape[..].try_into().map_err(|_| "B must be a matrix")?);
    let (bk, nn) = if tb { (b1, b0) } else { (b0, b1) };
    if bk != k {
        return Err(NodeFault(format!("[{m}, {k}] times {:?}: inner sizes differ", b.shape)));
    }
    let c = if gemm && e.has(2) { Some(e.get(2)?) } else { None };
    if c.as_ref().is_some_and(|c| c.data.len() != nn && c.data.len() != 1) {
        return Err(NodeFault(format!("C must hold 1 or {nn} values")));
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
    Ok(FTensor { shape: vec![m, nn], data: out })
}
