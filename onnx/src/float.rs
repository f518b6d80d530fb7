//! A float interpreter for the operators of float models, used to calibrate post-training
//! quantization: it runs the graph on calibration inputs and reports every tensor.
//! Plain f32 loops in ONNX's NCHW layout, output channels in parallel.

use crate::attrs::Const;
use crate::ops::Eval;
use crate::NodeFault;
use onnx_protobuf::{GraphProto, NodeProto};
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
    /// The float values of constant `c`.
    pub(crate) fn from_const(c: &Const) -> Self {
        Self { shape: c.dims.clone(), data: c.f32s() }
    }
}

/// A node of a float model that could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("node `{node}`: {message}")]
pub struct EvalError {
    /// The node's name (its first output when it has none).
    pub node: String,
    /// What went wrong.
    pub message: String,
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
) -> Result<(), EvalError> {
    let mut env: HashMap<String, FTensor> = inputs.iter().cloned().collect();
    for n in &graph.node {
        let get = |i: usize| -> Result<FTensor, NodeFault> {
            let key = n.input.get(i).filter(|s| !s.is_empty()).ok_or_else(|| format!("input {i} is missing"))?;
            env.get(key)
                .cloned()
                .or_else(|| consts.get(key).map(FTensor::from_const))
                .ok_or_else(|| NodeFault(format!("input `{key}` is not computed")))
        };
        let mut outs = vec![];
        for (k, o) in n.output.iter().enumerate().filter(|(k, o)| *k == 0 || !o.is_empty()) {
            let mut out = eval(n, opset, consts, &get, k).map_err(|fault| EvalError { node: crate::node_name(n), message: fault.0 })?;
            if out.data.len() != out.shape.iter().product::<usize>() {
                return Err(EvalError {
                    node: crate::node_name(n),
                    message: format!("computes {} values for shape {:?}; its inputs do not fit together", out.data.len(), out.shape),
                });
            }
            visit(o, &mut out);
            outs.push((o.clone(), out));
        }
        env.extend(outs);
    }
    Ok(())
}

/// Output `output` of `n` evaluated by its operator's float semantics (`crate::ops`).
fn eval(
    n: &NodeProto,
    opset: i64,
    consts: &HashMap<String, Const>,
    input: &dyn Fn(usize) -> Result<FTensor, NodeFault>,
    output: usize,
) -> Result<FTensor, NodeFault> {
    match crate::ops::find(&n.domain, &n.op_type).and_then(|op| op.eval) {
        Some(eval) => eval(&Eval { n, opset, consts, input, output }),
        None => Err(NodeFault(format!("{} is not supported in float models", n.op_type))),
    }
}

/// The number of elements of `shape`, if it is at most
/// [`systole_core::input::MAX_TENSOR_ELEMENTS`]: checked before a result is computed.
pub(crate) fn elements(shape: &[usize]) -> Result<usize, NodeFault> {
    match systole_core::input::tensor_elements(shape.iter().map(|&d| d as u64)) {
        Some(n) => Ok(n as usize),
        None => {
            Err(NodeFault(format!("computes a tensor of shape {shape:?}, more than {} elements", systole_core::input::MAX_TENSOR_ELEMENTS)))
        }
    }
}

/// A tensor's data of `shape`, every element `value`, if it has at most
/// [`systole_core::input::MAX_TENSOR_ELEMENTS`] elements.
pub(crate) fn zeros(shape: &[usize], value: f32) -> Result<Vec<f32>, NodeFault> {
    Ok(vec![value; elements(shape)?])
}

/// `t` with `f` applied to every element.
pub(crate) fn map(mut t: FTensor, f: impl Fn(f32) -> f32) -> FTensor {
    t.data.iter_mut().for_each(|v| *v = f(*v));
    t
}
