//! Quantization: `QuantizeLinear` and `DequantizeLinear`, which give activations their int8
//! (or int4) quantization, fold constant weights to int8, and end QDQ groups: a float op
//! pending on dequantized inputs becomes a network node when its output is quantized.

use super::{input, need, output, OpDef};
use crate::attrs::{self, dtype, Const};
use crate::import::{fail, DqConst, Fail, Importer, Pending, PendingOp, Sym};
use crate::node_name;
use onnx_protobuf::NodeProto;
use systole_core::layer::Activation;
use systole_core::network::{NetInput, Node, Op, Quant};

/// The quantization family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "QuantizeLinear", since: 10, import: import_quantize, eval: None },
    OpDef { domain: "", name: "DequantizeLinear", since: 10, import: import_dequantize, eval: None },
];

fn import_quantize(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    quantize_linear(imp, n, &need(n, 0)?, &need(n, 1)?, input(n, 2), &output(n))
}

fn import_dequantize(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    dequantize_linear(imp, n, &need(n, 0)?, &need(n, 1)?, input(n, 2))
}

fn quantize_linear(imp: &mut Importer, n: &NodeProto, x: &str, scale: &str, zp: Option<&String>, out: &str) -> Result<(), Fail> {
    match imp.sym(x)?.clone() {
        Sym::Const(c) => {
            let s = imp.scales(scale)?;
            let (z, _) = imp.zero_points(zp, true)?;
            let axis = quantized_axis(n, &c, s.len())?;
            let q = quantize_const(&c, &s, &z, axis)?;
            imp.set(n, Sym::Const(q));
            return Ok(());
        }
        sym => {
            let (q, u8) = imp.quant(scale, zp, true)?;
            if imp.int4_zero_point(zp)? {
                let Sym::Pending(p) = sym else {
                    return fail(
                        format!("quantizes `{x}` to int4, but Systole saturates to int4 only in a conv or GEMM layer's requantizer"),
                        "quantize to int4 only the outputs of Conv, Gemm or MatMul (with an optional ReLU), or use int8",
                    );
                };
                let v = imp.resolve(&p, q, out)?;
                let Some(Node { op: Op::Layer { layer, .. }, .. }) = imp.net.nodes.iter_mut().rev().find(|n| n.output == v) else {
                    return fail(
                        format!(
                            "quantizes the output of {} `{}` to int4; only conv and GEMM layers saturate to int4",
                            p.node.op_type,
                            node_name(&p.node)
                        ),
                        "quantize to int4 only the outputs of Conv, Gemm or MatMul (with an optional ReLU), or use int8",
                    );
                };
                layer.output_bits = 4;
                layer.validate().map_err(|e| Fail { message: e.to_string(), help: e.help.clone().unwrap_or_default() })?;
                imp.int4_values.insert(v);
                imp.set(n, Sym::Quant(v));
                return Ok(());
            }
            let v = match sym {
                Sym::FloatInput(name, shape) => {
                    let v = imp.value(out, shape, q)?;
                    imp.net.inputs.push(NetInput { name, value: v, float: true });
                    v
                }
                Sym::Dq(v, from) if from == q => v,
                Sym::Dq(v, from) => {
                    let p = Pending::new(n, PendingOp::Activation, vec![(v, from)], Activation::None);
                    imp.resolve(&p, q, out)?
                }
                Sym::Pending(p) => imp.resolve(&p, q, out)?,
                _ => return fail(format!("input `{x}` is already quantized"), "remove the second QuantizeLinear"),
            };
            imp.mark(v, u8);
            imp.set(n, Sym::Quant(v));
        }
    }
    Ok(())
}

fn dequantize_linear(imp: &mut Importer, n: &NodeProto, x: &str, scale: &str, zp: Option<&String>) -> Result<(), Fail> {
    let sym = match imp.sym(x)?.clone() {
        Sym::Quant(v) => Sym::Dq(v, imp.quant(scale, zp, imp.u8_values.contains(&v))?.0),
        Sym::Const(c) => {
            let s = imp.scales(scale)?;
            let z: Vec<f64> = match zp.filter(|z| !z.is_empty()) {
                None => vec![0.0],
                Some(z) => imp.constant(z, "zero point")?.vals,
            };
            let axis = quantized_axis(n, &c, s.len())?;
            if !matches!(c.dtype, dtype::INT8 | dtype::INT32) {
                return fail(
                    format!("dequantizes a {} constant; weights must be int8 and biases int32", dtype::name(c.dtype)),
                    "quantize weights to int8",
                );
            }
            if (s.len() != 1 && s.len() != c.dims.get(axis).copied().unwrap_or(0)) || (z.len() != 1 && z.len() != s.len()) {
                return fail(format!("scale has {} values for axis {axis} of shape {:?}", s.len(), c.dims), "quantize the model again");
            }
            Sym::DqConst(DqConst { q: c, scale: s, zp: z, axis })
        }
        _ => return fail(format!("input `{x}` is not a quantized tensor"), "DequantizeLinear takes an int8 tensor"),
    };
    imp.set(n, sym);
    Ok(())
}

/// QuantizeLinear of a constant (weights stored as float behind Q/DQ pairs).
/// The axis a per-axis (de)quantization of constant `c` with `scales` scales runs along;
/// ONNX ignores `axis` when the quantization is per tensor (a scalar has no axis 1).
fn quantized_axis(n: &NodeProto, c: &Const, scales: usize) -> Result<usize, Fail> {
    if scales == 1 {
        return Ok(0);
    }
    Ok(attrs::normalize_axis(attrs::int(n, "axis", 1), c.dims.len().max(1))?)
}

fn quantize_const(c: &Const, scale: &[f32], zp: &[i8], axis: usize) -> Result<Const, Fail> {
    let per_axis = scale.len() > 1;
    let dim = c.dims.get(axis).copied().unwrap_or(1);
    if per_axis && scale.len() != dim {
        return fail(format!("{} scales for axis {axis} of shape {:?}", scale.len(), c.dims), "quantize the model again");
    }
    let inner: usize = c.dims.get(axis + 1..).map_or(1, |d| d.iter().product());
    let vals = c
        .vals
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let ch = if per_axis { (i / inner) % dim } else { 0 };
            let q = Quant { scale: scale[ch], zp: zp[if zp.len() == 1 { 0 } else { ch }] };
            q.quantize(v as f32) as f64
        })
        .collect();
    Ok(Const { dims: c.dims.clone(), dtype: dtype::INT8, vals })
}
