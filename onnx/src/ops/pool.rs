//! Pooling: `MaxPool` (a layout operator: it runs on the int8 data, whatever its
//! quantization), `AveragePool`, `GlobalAveragePool` and `ReduceMean` over the two spatial
//! axes (torchvision's `x.mean([2, 3])`; quantized like a compute operator) and
//! com.microsoft's `QLinearAveragePool` and `QLinearGlobalAveragePool`. NCHW images only.

use super::{input, need, Eval, OpDef, MICROSOFT};
use crate::attrs::{self, Window};
use crate::float::{elements, FTensor};
use crate::import::{fail, Fail, Importer, PendingOp};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use systole_core::network::Op;

/// The pooling family.
pub(crate) const OPS: &[OpDef] = &[
    OpDef { domain: "", name: "MaxPool", since: 7, import: import_max_pool, eval: Some(eval_pool) },
    OpDef { domain: "", name: "AveragePool", since: 7, import: import_average_pool, eval: Some(eval_pool) },
    OpDef { domain: "", name: "GlobalAveragePool", since: 7, import: import_average_pool, eval: Some(eval_pool) },
    OpDef { domain: "", name: "ReduceMean", since: 7, import: import_average_pool, eval: Some(eval_pool) },
    OpDef { domain: MICROSOFT, name: "QLinearAveragePool", since: 1, import: import_qlinear_average_pool, eval: None },
    OpDef { domain: MICROSOFT, name: "QLinearGlobalAveragePool", since: 1, import: import_qlinear_average_pool, eval: None },
];

fn import_qlinear_average_pool(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.operand(&need(n, 0)?, &need(n, 1)?, input(n, 2))?;
    let (yq, u8) = imp.quant(&need(n, 3)?, input(n, 4), false)?;
    if attrs::int(n, "channels_last", 0) != 0 {
        return fail("channels_last = 1 is not supported", "use the NCHW form");
    }
    let op = pool_op(imp, n, &imp.shape(x.0))?;
    imp.emit_quantized(n, op, vec![x], (yq, u8))
}

fn import_average_pool(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    let x = imp.dq_input(&need(n, 0)?, n)?;
    let op = pool_op(imp, n, &imp.shape(x.0))?;
    imp.pend(n, op, vec![x]);
    Ok(())
}

fn import_max_pool(imp: &mut Importer, n: &NodeProto) -> Result<(), Fail> {
    imp.layout(n, |_, shape, _, _| {
        if shape.len() != 4 {
            return fail(format!("pools a rank-{} tensor", shape.len()), "pool NCHW images");
        }
        if attrs::int(n, "storage_order", 0) != 0 {
            return fail("storage_order = 1 is not supported", "export with the default storage order");
        }
        let pool = Window::read(n, None, [shape[2], shape[3]])?.pool(n, [shape[2], shape[3]])?;
        if !pool.fits(shape[2], shape[3]) {
            return fail(format!("window {:?} exceeds the padded input {shape:?}", pool.kernel), "use a smaller window");
        }
        let hw = pool.out_hw(shape[2], shape[3]);
        Ok((Op::MaxPool(pool), vec![shape[0], shape[1], hw[0], hw[1]]))
    })
}

/// The pending average pool of `n` on an input of `shape`.
pub(crate) fn pool_op(imp: &Importer, n: &NodeProto, shape: &[usize]) -> Result<PendingOp, Fail> {
    if shape.len() != 4 {
        return fail(format!("pools a rank-{} tensor; Systole pools NCHW images", shape.len()), "reshape to NCHW");
    }
    if n.op_type.ends_with("GlobalAveragePool") {
        return Ok(PendingOp::GlobalAvgPool { flat: false });
    }
    if n.op_type == "ReduceMean" {
        let axes = reduced_axes(imp, n)?;
        return Ok(PendingOp::GlobalAvgPool { flat: attrs::int(n, "keepdims", 1) == 0 }).and_then(|p| {
            if axes == [2, 3] {
                Ok(p)
            } else {
                fail(format!("reduces axes {axes:?}; Systole averages the spatial axes [2, 3] of an NCHW image"), "average over [2, 3]")
            }
        });
    }
    Ok(PendingOp::AvgPool(Window::read(n, None, [shape[2], shape[3]])?.pool(n, [shape[2], shape[3]])?))
}

/// ReduceMean's axes (attribute before opset 18, else input 1), normalized and sorted.
fn reduced_axes(imp: &Importer, n: &NodeProto) -> Result<Vec<usize>, Fail> {
    let axes = if imp.opset < 18 {
        attrs::ints(n, "axes")
    } else {
        input(n, 1).map(|a| imp.constant(a, "axes")).transpose()?.map(|c| c.ints("axes")).transpose()?
    };
    spatial_axes(axes)
}

/// `axes` on a rank-4 tensor, normalized and sorted (all four when absent).
fn spatial_axes(axes: Option<Vec<i64>>) -> Result<Vec<usize>, Fail> {
    let mut at: Vec<usize> = axes.unwrap_or(vec![0, 1, 2, 3]).iter().map(|&a| attrs::normalize_axis(a, 4)).collect::<Result<_, _>>()?;
    at.sort_unstable();
    Ok(at)
}

fn eval_pool(e: &Eval) -> Result<FTensor, NodeFault> {
    let n = e.n;
    let x = e.get(0)?;
    let [nb, c, h, w] = x.shape[..] else { return Err("pools NCHW images only".into()) };
    let global = systole_core::network::Pool::global([h, w]);
    let (pool, max) = match n.op_type.as_str() {
        "ReduceMean" => {
            let axes = if e.opset < 18 { attrs::ints(n, "axes") } else { e.constant(1).map(|c| c.ints("axes")).transpose()? };
            if spatial_axes(axes).map_err(|f| NodeFault(f.message))? != [2, 3] {
                return Err("averages axes other than the spatial [2, 3]".into());
            }
            let mean = windows(&x, &global, false)?;
            let shape = if attrs::int(n, "keepdims", 1) == 0 { vec![nb, c] } else { mean.shape };
            return Ok(FTensor { shape, data: mean.data });
        }
        "GlobalAveragePool" => (global, false),
        op => (Window::read(n, None, [h, w])?.pool(n, [h, w])?, op == "MaxPool"),
    };
    windows(&x, &pool, max)
}

/// The maximum or the average of every window of `pool` over NCHW `x`.
fn windows(x: &FTensor, pool: &systole_core::network::Pool, max: bool) -> Result<FTensor, NodeFault> {
    let [nb, c, h, w] = x.shape[..] else { return Err("pools NCHW images only".into()) };
    let [p, q] = pool.out_hw(h, w);
    elements(&[nb, c, p, q])?;
    Ok(FTensor { shape: vec![nb, c, p, q], data: systole_core::region::pool_f32(&x.shape, &x.data, pool, max) })
}
