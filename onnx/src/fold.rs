//! Constant folding, a named pass on the ONNX graph that runs as a model is read, before the
//! operator check: PyTorch and model-zoo exports compute reshape targets from `Shape`
//! chains, make weights with `ConstantOfShape`, and keep `Dropout` and `Cast` nodes, none
//! of which an accelerator runs.
//!
//! - A node of [`FOLDED`] whose inputs are all constants (initializers, `Constant` outputs or
//!   folded results) is evaluated here and becomes an initializer.
//! - `Shape` folds when its input's shape is known: a graph input's, an initializer's, one
//!   the graph's `value_info` states, or, in a float model, the shape the float interpreter
//!   computes on zeros (run only when such a `Shape` remains, and again while that makes
//!   progress).
//! - `Dropout` in inference is the identity: it becomes an `Identity` (its mask must be
//!   unread).
//!
//! Integer tensors keep ONNX's integer semantics (`Div` truncates toward zero, `Cast` to an
//! integer truncates). A node that cannot be folded stays, and the operator check then
//! names it.

use crate::attrs::{self, dtype, Const};
use crate::float::{self, FTensor};
use crate::picks;
use crate::{node_name, NodeFault, NodeOp, OnnxError};
use onnx_protobuf::{tensor_shape_proto::dimension, type_proto, GraphProto, ModelProto, NodeProto, ValueInfoProto};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Operators the pass evaluates on constant inputs.
pub const FOLDED: &[&str] = &[
    "Constant",
    "ConstantOfShape",
    "Identity",
    "Cast",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Reshape",
    "Slice",
    "Add",
    "Sub",
    "Mul",
    "Div",
];

/// The most elements a folded constant may have (256 MiB as the importer's f64 values); a
/// `ConstantOfShape` or `Gather` asking for more is refused before anything is allocated.
pub const MAX_FOLDED_ELEMENTS: u64 = 1 << 25;

/// The element count of `dims`, if it is at most [`MAX_FOLDED_ELEMENTS`].
fn folded_size(dims: &[usize]) -> Result<usize, NodeFault> {
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d as u64))
        .filter(|&n| n <= MAX_FOLDED_ELEMENTS)
        .map(|n| n as usize)
        .ok_or_else(|| NodeFault(format!("makes a constant of shape {dims:?}, more than the {MAX_FOLDED_ELEMENTS} elements Systole folds")))
}

/// What the pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Folded {
    /// Nodes evaluated into initializers.
    pub nodes: usize,
    /// `Dropout` nodes made `Identity`.
    pub dropouts: usize,
}

/// Folds the constant parts of `proto`'s graph (default-domain opset `opset`), read from
/// `path`. Errors name a node whose constant inputs do not fit its operator.
pub fn fold_constants(proto: &mut ModelProto, opset: i64, path: &Path) -> Result<Folded, OnnxError> {
    let Some(graph) = proto.graph.as_mut() else { return Ok(Folded::default()) };
    let mut done = Folded::default();
    let read: HashSet<String> =
        graph.node.iter().flat_map(|n| n.input.iter().cloned()).chain(graph.output.iter().map(|o| o.name.clone())).collect();
    for n in graph.node.iter_mut().filter(|n| is_default(n) && n.op_type == "Dropout") {
        if n.output.get(1).is_some_and(|m| read.contains(m)) {
            continue;
        }
        n.op_type = "Identity".into();
        n.input.truncate(1);
        n.output.truncate(1);
        n.attribute.clear();
        done.dropouts += 1;
    }
    let mut consts: HashMap<String, Const> = HashMap::new();
    for t in &graph.initializer {
        if let Ok(c) = Const::from_proto(t) {
            consts.insert(t.name.clone(), c);
        }
    }
    let mut shapes = static_shapes(graph);
    let float_model = crate::is_float_graph(graph);
    loop {
        let before = done.nodes;
        let order: Vec<NodeProto> = crate::import::sorted(graph.node.iter().collect(), path)?.into_iter().cloned().collect();
        let mut kept = vec![];
        for n in order {
            match fold_node(&n, opset, &consts, &shapes).map_err(|fault| node_error(path, &n, opset, fault))? {
                Some(c) => {
                    shapes.insert(n.output[0].clone(), c.dims.clone());
                    consts.insert(n.output[0].clone(), c);
                    done.nodes += 1;
                }
                None => kept.push(n),
            }
        }
        graph.node = kept;
        let pending =
            graph.node.iter().any(|n| is_default(n) && n.op_type == "Shape" && n.input.first().is_some_and(|x| !shapes.contains_key(x)));
        let learned = if pending && float_model { run_for_shapes(graph, opset, &consts, &mut shapes) } else { 0 };
        if done.nodes == before && learned == 0 {
            break;
        }
    }
    // Folded values that remaining nodes or the outputs read become initializers.
    let used: HashSet<String> =
        graph.node.iter().flat_map(|n| n.input.iter().cloned()).chain(graph.output.iter().map(|o| o.name.clone())).collect();
    let present: HashSet<String> = graph.initializer.iter().map(|t| t.name.clone()).collect();
    let mut added: Vec<_> = consts.iter().filter(|(name, _)| used.contains(*name) && !present.contains(*name)).collect();
    added.sort_by(|a, b| a.0.cmp(b.0));
    for (name, c) in added {
        graph.initializer.push(attrs::tensor_proto(name, &c.dims, c.dtype, &c.vals));
    }
    Ok(done)
}

fn is_default(n: &NodeProto) -> bool {
    crate::canonical_domain(&n.domain).is_empty()
}

fn node_error(path: &Path, n: &NodeProto, opset: i64, fault: NodeFault) -> OnnxError {
    OnnxError::Import {
        path: path.into(),
        node: Box::new(NodeOp { name: node_name(n), op: n.op_type.clone(), domain: n.domain.clone(), opset }),
        message: fault.0,
        help: "the node computes a constant (a shape or a weight); check its inputs and attributes".into(),
    }
}

/// Shapes the graph states: its inputs' (a symbolic batch is 1), its initializers' and its
/// `value_info`'s, where every dimension is a number.
fn static_shapes(graph: &GraphProto) -> HashMap<String, Vec<usize>> {
    let of = |v: &ValueInfoProto| -> Option<Vec<usize>> {
        let Some(type_proto::Value::TensorType(t)) = v.type_.as_ref()?.value.as_ref() else { return None };
        t.shape
            .as_ref()?
            .dim
            .iter()
            .enumerate()
            .map(|(axis, d)| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => Some(*v as usize),
                Some(dimension::Value::DimParam(_)) if axis == 0 => Some(1),
                _ => None,
            })
            .collect()
    };
    let mut shapes: HashMap<String, Vec<usize>> =
        graph.input.iter().chain(&graph.value_info).filter_map(|v| of(v).map(|s| (v.name.clone(), s))).collect();
    for t in &graph.initializer {
        shapes.insert(t.name.clone(), t.dims.iter().map(|&d| d.max(0) as usize).collect());
    }
    shapes
}

/// Runs the float graph on zeros as far as it goes and records every tensor's shape;
/// returns how many shapes it learned.
fn run_for_shapes(graph: &GraphProto, opset: i64, consts: &HashMap<String, Const>, shapes: &mut HashMap<String, Vec<usize>>) -> usize {
    let initializers: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = vec![];
    for i in graph.input.iter().filter(|i| !initializers.contains(i.name.as_str())) {
        let Some(shape) = shapes.get(&i.name) else { return 0 };
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > crate::MAX_INPUT_ELEMENTS) {
            return 0;
        }
        inputs.push((i.name.clone(), FTensor { shape: shape.clone(), data: vec![0.0; shape.iter().product()] }));
    }
    let mut learned = 0;
    // The run stops at the first node it cannot evaluate (the Shape chain's consumer); the
    // shapes before it are what folding needs next.
    let _ = float::run(graph, opset, consts, &inputs, |name, t| {
        if !shapes.contains_key(name) {
            shapes.insert(name.to_string(), t.shape.clone());
            learned += 1;
        }
    });
    learned
}

/// `n` evaluated, if it is a folded operator whose inputs are all known; `None` leaves it.
fn fold_node(
    n: &NodeProto,
    opset: i64,
    consts: &HashMap<String, Const>,
    shapes: &HashMap<String, Vec<usize>>,
) -> Result<Option<Const>, NodeFault> {
    if !is_default(n) || !FOLDED.contains(&n.op_type.as_str()) || n.output.len() != 1 || n.output[0].is_empty() {
        return Ok(None);
    }
    if n.op_type == "Shape" {
        let Some(shape) = n.input.first().and_then(|x| shapes.get(x)) else { return Ok(None) };
        return shape_of(n, shape).map(Some);
    }
    let mut inputs = vec![];
    for name in &n.input {
        if name.is_empty() {
            inputs.push(None);
        } else if let Some(c) = consts.get(name) {
            inputs.push(Some(c));
        } else {
            return Ok(None);
        }
    }
    evaluate(n, opset, &inputs)
}

/// `Shape` of a tensor of `shape` (with opset 15's `start` and `end`).
fn shape_of(n: &NodeProto, shape: &[usize]) -> Result<Const, NodeFault> {
    let rank = shape.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
    let (start, end) = (clamp(attrs::int(n, "start", 0)), clamp(attrs::int(n, "end", rank)));
    let vals: Vec<f64> = shape[start..end.max(start)].iter().map(|&d| d as f64).collect();
    Ok(Const { dims: vec![vals.len()], dtype: dtype::INT64, vals })
}

fn is_integer(t: i32) -> bool {
    matches!(t, dtype::INT8 | dtype::UINT8 | dtype::INT32 | dtype::INT64)
}

/// One folded operator on constant `inputs`.
fn evaluate(n: &NodeProto, opset: i64, inputs: &[Option<&Const>]) -> Result<Option<Const>, NodeFault> {
    let input = |i: usize| -> Result<&Const, NodeFault> {
        inputs.get(i).copied().flatten().ok_or_else(|| NodeFault(format!("input {i} is missing")))
    };
    Ok(Some(match n.op_type.as_str() {
        "Constant" => constant(n)?,
        "Identity" => input(0)?.clone(),
        "ConstantOfShape" => {
            let dims: Vec<usize> = input(0)?
                .ints("the shape")?
                .into_iter()
                .map(|d| usize::try_from(d).map_err(|_| NodeFault(format!("negative dimension {d}"))))
                .collect::<Result<_, _>>()?;
            let count = folded_size(&dims)?;
            let (value, dt) = match attrs::tensor(n, "value") {
                Some(t) => {
                    let c = Const::from_proto(t)?;
                    (c.scalar().ok_or_else(|| NodeFault("`value` must hold one element".into()))?, c.dtype)
                }
                None => (0.0, dtype::FLOAT),
            };
            Const { dims, dtype: dt, vals: vec![value; count] }
        }
        "Cast" => {
            let x = input(0)?;
            let to = attrs::int(n, "to", 0) as i32;
            let vals = match to {
                dtype::FLOAT => x.vals.iter().map(|&v| v as f32 as f64).collect(),
                dtype::DOUBLE => x.vals.clone(),
                dtype::INT64 | dtype::INT32 | dtype::INT8 | dtype::UINT8 => x.vals.iter().map(|v| v.trunc()).collect(),
                _ => return Ok(None),
            };
            Const { dims: x.dims.clone(), dtype: to, vals }
        }
        "Gather" => {
            let (data, idx) = (input(0)?, input(1)?);
            let axis = attrs::normalize_axis(attrs::int(n, "axis", 0), data.dims.len())?;
            let size = data.dims[axis] as i64;
            let outer: usize = data.dims[..axis].iter().product();
            let inner: usize = data.dims[axis + 1..].iter().product();
            let dims = [&data.dims[..axis], &idx.dims[..], &data.dims[axis + 1..]].concat();
            let mut vals = Vec::with_capacity(folded_size(&dims)?);
            let picks: Vec<usize> = idx
                .ints("indices")?
                .into_iter()
                .map(|i| {
                    let j = if i < 0 { i + size } else { i };
                    if (0..size).contains(&j) {
                        Ok(j as usize)
                    } else {
                        Err(NodeFault(format!("index {i} is outside axis {axis} of size {size}")))
                    }
                })
                .collect::<Result<_, _>>()?;
            for o in 0..outer {
                for &j in &picks {
                    vals.extend_from_slice(&data.vals[(o * data.dims[axis] + j) * inner..][..inner]);
                }
            }
            Const { dims, dtype: data.dtype, vals }
        }
        "Unsqueeze" | "Squeeze" => {
            let x = input(0)?;
            let read = |i: usize| inputs.get(i).copied().flatten().cloned();
            let dims = if n.op_type == "Squeeze" {
                picks::squeeze(n, opset, &x.dims, &read)?
            } else {
                picks::unsqueeze(n, opset, &x.dims, &read)?
            };
            Const { dims, dtype: x.dtype, vals: x.vals.clone() }
        }
        "Concat" => {
            let parts: Vec<&Const> = inputs.iter().copied().flatten().collect();
            let first = parts.first().ok_or_else(|| NodeFault("has no inputs".into()))?;
            let axis = attrs::normalize_axis(attrs::int(n, "axis", 0), first.dims.len())?;
            if parts
                .iter()
                .any(|p| p.dims.len() != first.dims.len() || (0..first.dims.len()).any(|d| d != axis && p.dims[d] != first.dims[d]))
            {
                return Err(NodeFault(format!("concatenates shapes that differ off axis {axis}")));
            }
            let mut dims = first.dims.clone();
            dims[axis] = parts.iter().map(|p| p.dims[axis]).sum();
            let outer: usize = first.dims[..axis].iter().product();
            let mut vals = Vec::with_capacity(folded_size(&dims)?);
            for o in 0..outer {
                for p in &parts {
                    let chunk: usize = p.dims[axis..].iter().product();
                    vals.extend_from_slice(&p.vals[o * chunk..(o + 1) * chunk]);
                }
            }
            Const { dims, dtype: first.dtype, vals }
        }
        "Reshape" => {
            let x = input(0)?;
            let dims = attrs::reshape(&x.dims, &input(1)?.vals, attrs::int(n, "allowzero", 0) != 0)?;
            Const { dims, dtype: x.dtype, vals: x.vals.clone() }
        }
        "Slice" => {
            let x = input(0)?;
            let picks = picks::slice(n, opset, &x.dims, &|i| inputs.get(i).copied().flatten().cloned())?;
            let dims: Vec<usize> = picks.iter().map(Vec::len).collect();
            folded_size(&dims)?;
            let vals = systole_core::tensor::select_indices(&x.dims, &picks).into_iter().map(|j| x.vals[j]).collect();
            Const { dims, dtype: x.dtype, vals }
        }
        op @ ("Add" | "Sub" | "Mul" | "Div") => {
            let (a, b) = (input(0)?, input(1)?);
            let (dims, count) = if a.dims == b.dims || b.vals.len() == 1 {
                (a.dims.clone(), a.vals.len())
            } else if a.vals.len() == 1 {
                (b.dims.clone(), b.vals.len())
            } else {
                return Ok(None);
            };
            let at = |c: &Const, i: usize| c.vals[if c.vals.len() == 1 { 0 } else { i }];
            let integer = is_integer(a.dtype);
            let vals = (0..count)
                .map(|i| {
                    let (x, y) = (at(a, i), at(b, i));
                    match op {
                        "Add" => Ok(x + y),
                        "Sub" => Ok(x - y),
                        "Mul" => Ok(x * y),
                        _ if integer && y == 0.0 => Err(NodeFault("divides an integer by zero".into())),
                        _ if integer => Ok((x / y).trunc()),
                        _ => Ok(x / y),
                    }
                })
                .collect::<Result<Vec<f64>, _>>()?;
            let vals = if a.dtype == dtype::FLOAT { vals.into_iter().map(|v| v as f32 as f64).collect() } else { vals };
            Const { dims, dtype: a.dtype, vals }
        }
        _ => return Ok(None),
    }))
}

/// `Constant`'s value from whichever attribute holds it.
fn constant(n: &NodeProto) -> Result<Const, NodeFault> {
    if let Some(t) = attrs::tensor(n, "value") {
        return Const::from_proto(t);
    }
    let attr = n.attribute.first().ok_or_else(|| NodeFault("has no value".into()))?;
    Ok(match attr.name.as_str() {
        "value_float" => Const { dims: vec![], dtype: dtype::FLOAT, vals: vec![attr.f as f64] },
        "value_floats" => {
            Const { dims: vec![attr.floats.len()], dtype: dtype::FLOAT, vals: attr.floats.iter().map(|&v| v as f64).collect() }
        }
        "value_int" => Const { dims: vec![], dtype: dtype::INT64, vals: vec![attr.i as f64] },
        "value_ints" => Const { dims: vec![attr.ints.len()], dtype: dtype::INT64, vals: attr.ints.iter().map(|&v| v as f64).collect() },
        other => return Err(NodeFault(format!("value attribute `{other}` is not read"))),
    })
}
