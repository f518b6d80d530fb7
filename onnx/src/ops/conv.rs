//! Convolution: `Conv` (float, or on dequantized int8 in QDQ models) and `QLinearConv`.
//! Both become one accelerator layer (a dense, grouped or depthwise convolution).

use super::{input, need, output, Eval, OpDef};
use crate::attrs::{self, Window};
use crate::float::{zeros, FTensor};
use crate::import::{Fail, Importer, PendingOp};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use rayon::prelude::*;
use systole_core::layer::Activation;

/// The convolution family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "Conv", since: 7, import: import_conv, eval: Some(eval_conv) },
    OpDef { domain: "", name: "QLinearConv", since: 10, import: import_qlinear_conv, eval: None },
];

fn import_qlinear_conv(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.operand(&need(n, 0)?, &need(n, 1)?, input(n, 2))?;
    let (w, ws, wz) = imp.int8_weights(&need(n, 3)?, &need(n, 4)?, input(n, 5))?;
    let (yq, u8) = imp.quant(&need(n, 6)?, input(n, 7), false)?;
    let bias = input(n, 8).map(|b| imp.int_bias(b)).transpose()?;
    let v = imp.layer(n, None, x, &w, ws, &wz, bias, yq, Activation::None, &output(n))?;
    imp.define(n, v, u8);
    Ok(())
}

fn import_conv(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.dq_input(&need(n, 0)?, n)?;
    let w = imp.dq_const(&need(n, 1)?, "weight")?;
    let bias = imp.float_bias(n)?;
    imp.pend(n, PendingOp::Conv { w, bias }, vec![x]);
    Ok(())
}

fn eval_conv(e: &Eval) -> Result<FTensor, NodeFault> {
    let (n, x, w) = (e.n, &e.get(0)?, &e.get(1)?);
    let b = if e.has(2) { Some(e.get(2)?) } else { None };
    let ([nb, c, h, wd], [k, cg, r, s]) =
        (x.shape[..].try_into().map_err(|_| "Conv input must be NCHW")?, w.shape[..].try_into().map_err(|_| "Conv weights must be 4-D")?);
    let groups = attrs::group(n)?;
    if cg.checked_mul(groups) != Some(c) || k % groups != 0 {
        return Err(NodeFault(format!("{groups} groups of {cg} channels do not match {c} input and {k} output channels")));
    }
    let win = Window::read(n, Some([r, s]), [h, wd])?;
    if win.kernel != [r, s] {
        return Err(NodeFault(format!("kernel_shape {:?} differs from the weights' {:?}", win.kernel, [r, s])));
    }
    if b.as_ref().is_some_and(|b| b.data.len() != k) {
        return Err(NodeFault(format!("the bias must hold {k} values")));
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
