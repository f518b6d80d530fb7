//! ONNX graph to [`Network`]: both ONNX Runtime formats of a pre-quantized model.
//!
//! - **QOperator** nodes (QLinearConv, QLinearMatMul, QGemm, QLinearAdd, QLinearConcat,
//!   QLinear(Global)AveragePool) map one to one onto network nodes.
//! - **QDQ** groups `DequantizeLinear -> op -> [Relu | Clip] -> QuantizeLinear` become the
//!   node of the QOperator equivalent, which is how ONNX Runtime executes them: a float op on
//!   dequantized inputs stays *pending* until the QuantizeLinear that gives its output a
//!   quantization; a ReLU or ReLU6 in between is fused into it.
//!
//! Layout operators (MaxPool, Reshape, Flatten, Transpose, Pad, Identity) commute with
//! dequantization and run on the int8 data directly. uint8 activations are taken as int8
//! with the zero point moved by -128, which is exact for every operator here. Weights must be
//! int8 and symmetric (zero point 0), per tensor or per output channel.

use crate::attrs::{self, dtype, Const, Window};
use crate::{node_name, NodeOp, OnnxError, OnnxModel};
use onnx_protobuf::NodeProto;
use petgraph::graph::DiGraph;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use systole_core::layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
use systole_core::network::{BinaryFn, NetInput, NetOutput, Network, Node, Op, Quant, UnaryFn, Value, ValueId};
use systole_core::Tensor;

/// A failure inside one node: message and fix.
pub(crate) struct Fail {
    pub(crate) message: String,
    pub(crate) help: String,
}

impl From<crate::NodeFault> for Fail {
    fn from(fault: crate::NodeFault) -> Self {
        Fail::from(fault.0)
    }
}

impl From<String> for Fail {
    fn from(message: String) -> Self {
        Fail { message, help: "see docs/ONNX.md for the operators and forms Systole imports".into() }
    }
}

pub(crate) fn fail<T>(message: impl Into<String>, help: impl Into<String>) -> Result<T, Fail> {
    Err(Fail { message: message.into(), help: help.into() })
}

/// `DequantizeLinear` applied to a constant: weights or bias.
#[derive(Clone)]
pub(crate) struct DqConst {
    pub(crate) q: Const,
    pub(crate) scale: Vec<f32>,
    pub(crate) zp: Vec<f64>,
    pub(crate) axis: usize,
}

/// A float op on dequantized inputs waiting for its output's QuantizeLinear.
#[derive(Clone)]
pub(crate) struct Pending {
    pub(crate) node: NodeProto,
    pub(crate) op: PendingOp,
    pub(crate) inputs: Vec<(ValueId, Quant)>,
    pub(crate) act: Activation,
    /// Layout nodes that ONNX Runtime runs in float on the op's output before the
    /// QuantizeLinear (ONNX Runtime leaves e.g. `LRN -> MaxPool` unquantized); each reads
    /// the one before. They move or pick elements, so they commute with quantization, a
    /// monotone map: they run on the int8 result.
    pub(crate) after: Vec<NodeProto>,
}

impl Pending {
    pub(crate) fn new(node: &NodeProto, op: PendingOp, inputs: Vec<(ValueId, Quant)>, act: Activation) -> Self {
        Pending { node: node.clone(), op, inputs, act, after: vec![] }
    }
}

#[derive(Clone)]
pub(crate) enum PendingOp {
    Conv {
        w: DqConst,
        bias: Option<Bias>,
    },
    Gemm {
        trans_b: bool,
        w: DqConst,
        bias: Option<Bias>,
    },
    Add,
    Binary(BinaryFn),
    Sum,
    AddConst(Box<systole_core::network::ConstOperand>),
    BinaryConst(BinaryFn, Box<systole_core::network::ConstOperand>),
    Softmax {
        axis: usize,
        flat: bool,
    },
    Lrn(systole_core::network::Lrn),
    /// Float operators ONNX Runtime left unquantized, one after another (`crate::region`).
    Region(systole_core::region::FloatRegion),
    AvgPool(systole_core::network::Pool),
    /// GlobalAveragePool; `flat` drops the 1x1 axes (ReduceMean with keepdims = 0).
    GlobalAvgPool {
        flat: bool,
    },
    Concat {
        axis: usize,
        shape: Vec<usize>,
    },
    Activation,
    Unary(UnaryFn),
}

#[derive(Clone)]
pub(crate) enum Bias {
    Int(Vec<i32>),
    Float(Vec<f32>),
}

/// What an ONNX tensor name stands for during import.
#[derive(Clone)]
pub(crate) enum Sym {
    Const(Const),
    DqConst(DqConst),
    FloatInput(String, Vec<usize>),
    Quant(ValueId),
    Dq(ValueId, Quant),
    Pending(Box<Pending>),
}

pub(crate) struct Importer {
    pub(crate) syms: HashMap<String, Sym>,
    pub(crate) u8_values: HashSet<ValueId>,
    // Values quantized to int4 (-8..=7): the layers reading them have int4 activations.
    pub(crate) int4_values: HashSet<ValueId>,
    pub(crate) net: Network,
    pub(crate) opset: i64,
}

/// Imports a pre-quantized model read by [`crate::read`] into a validated [`Network`].
pub fn import(model: &OnnxModel, path: &Path) -> Result<Network, OnnxError> {
    let graph = model.proto.graph.as_ref().expect("read checks the graph");
    let mut imp = Importer {
        syms: HashMap::new(),
        u8_values: HashSet::new(),
        int4_values: HashSet::new(),
        net: Network { name: graph.name.clone(), values: vec![], nodes: vec![], inputs: vec![], outputs: vec![] },
        opset: model.opset,
    };
    let graph_err = |message: String, help: &str| OnnxError::Graph { path: path.into(), message, help: help.into() };
    for t in &graph.initializer {
        let c = Const::from_proto(t).map_err(|m| graph_err(m.0, "save the model with its weights inside the file"))?;
        imp.syms.insert(t.name.clone(), Sym::Const(c));
    }
    let mut float_inputs = vec![];
    for (name, shape) in &model.inputs {
        check_elements(name, shape).map_err(|f| graph_err(f.message, &f.help))?;
        let elem = graph
            .input
            .iter()
            .find(|i| &i.name == name)
            .and_then(|i| i.type_.as_ref())
            .and_then(|t| match &t.value {
                Some(onnx_protobuf::type_proto::Value::TensorType(t)) => Some(t.elem_type),
                _ => None,
            })
            .unwrap_or(0);
        match elem {
            dtype::FLOAT => {
                imp.syms.insert(name.clone(), Sym::FloatInput(name.clone(), shape.clone()));
                float_inputs.push(name.clone());
            }
            dtype::INT8 => {
                let v = imp.value(name, shape.clone(), Quant { scale: 1.0, zp: 0 }).map_err(|f| graph_err(f.message, &f.help))?;
                imp.net.inputs.push(NetInput { name: name.clone(), value: v, float: false });
                imp.syms.insert(name.clone(), Sym::Quant(v));
            }
            other => {
                return Err(graph_err(
                    format!("input `{name}` has {}; Systole takes float32 or int8 inputs", dtype::name(other)),
                    "export the model with a float32 input",
                ))
            }
        }
    }
    for node in sorted(graph.node.iter().collect(), path)? {
        imp.node(node).map_err(|f| OnnxError::Import {
            path: path.into(),
            node: Box::new(NodeOp {
                name: node_name(node),
                op: node.op_type.clone(),
                domain: node.domain.clone(),
                opset: if crate::canonical_domain(&node.domain).is_empty() { model.opset } else { 1 },
            }),
            message: f.message,
            help: f.help,
        })?;
    }
    for name in float_inputs {
        if !imp.net.inputs.iter().any(|i| i.name == name) {
            return Err(graph_err(
                format!("float input `{name}` is never quantized by a QuantizeLinear"),
                "this is a float model: let Systole quantize it (systole simulate --model M.onnx quantizes float models itself)",
            ));
        }
    }
    if graph.output.is_empty() {
        return Err(graph_err("the graph has no outputs, so nothing would be computed".into(), "export the model with its outputs"));
    }
    for out in &graph.output {
        let o =
            match imp.syms.get(&out.name) {
                Some(Sym::Quant(v)) if !imp.u8_values.contains(v) => NetOutput { name: out.name.clone(), value: *v, dequantize: None },
                Some(Sym::Dq(v, q)) => NetOutput { name: out.name.clone(), value: *v, dequantize: Some(*q) },
                Some(Sym::Quant(_)) => {
                    return Err(graph_err(format!("output `{}` is uint8", out.name), "end the graph with a DequantizeLinear"))
                }
                Some(Sym::Pending(p)) => return Err(graph_err(
                    format!(
                        "output `{}` is the float result of {} `{}`, which no QuantizeLinear quantizes",
                        out.name,
                        p.node.op_type,
                        node_name(&p.node)
                    ),
                    "quantize every compute node's output (onnxruntime.quantization.quantize_static does), or give Systole the float model",
                )),
                _ => return Err(graph_err(format!("output `{}` is not computed from the input", out.name), "remove the output")),
            };
        imp.net.outputs.push(o);
    }
    systole_compiler::passes::run(&mut imp.net, &systole_compiler::passes::pipeline("default").expect("the default pipeline exists"));
    imp.net.validate().map_err(|e| graph_err(e.to_string(), "report this as a Systole bug"))?;
    Ok(imp.net)
}

/// The nodes in a topological order (petgraph), whatever order the file lists them in.
pub(crate) fn sorted<'a>(nodes: Vec<&'a NodeProto>, path: &Path) -> Result<Vec<&'a NodeProto>, OnnxError> {
    let mut g = DiGraph::<usize, ()>::new();
    let idx: Vec<_> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    let mut producer = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.insert(o.as_str(), i);
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        for input in &n.input {
            if let Some(&p) = producer.get(input.as_str()) {
                g.add_edge(idx[p], idx[i], ());
            }
        }
    }
    let order = petgraph::algo::toposort(&g, None).map_err(|cycle| OnnxError::Graph {
        path: path.into(),
        message: format!("the graph has a cycle through node `{}`", node_name(nodes[g[cycle.node_id()]])),
        help: "an ONNX graph must be acyclic; export it again".into(),
    })?;
    Ok(order.into_iter().map(|i| nodes[g[i]]).collect())
}

/// Refuses a tensor of more than [`systole_core::input::MAX_TENSOR_ELEMENTS`] elements.
pub(crate) fn check_elements(name: &str, shape: &[usize]) -> Result<(), Fail> {
    match systole_core::input::tensor_elements(shape.iter().map(|&d| d as u64)) {
        Some(_) => Ok(()),
        None => fail(
            format!("tensor `{name}` of shape {shape:?} has more than {} elements", systole_core::input::MAX_TENSOR_ELEMENTS),
            "check the model's input shape and the attributes (pads, sizes) that grow it",
        ),
    }
}

impl Importer {
    /// A new value, after checking that its tensor has at most
    /// [`systole_core::input::MAX_TENSOR_ELEMENTS`] elements.
    pub(crate) fn value(&mut self, name: &str, shape: Vec<usize>, quant: Quant) -> Result<ValueId, Fail> {
        check_elements(name, &shape)?;
        self.net.values.push(Value { name: name.into(), shape, quant });
        Ok(self.net.values.len() - 1)
    }

    pub(crate) fn emit(
        &mut self,
        node: &NodeProto,
        op: Op,
        inputs: Vec<ValueId>,
        out: &str,
        shape: Vec<usize>,
        quant: Quant,
    ) -> Result<ValueId, Fail> {
        let v = self.value(out, shape, quant)?;
        self.net.nodes.push(Node { name: node_name(node), op, inputs, output: v });
        Ok(v)
    }

    pub(crate) fn sym(&self, name: &str) -> Result<&Sym, Fail> {
        self.syms.get(name).ok_or_else(|| Fail::from(format!("input `{name}` is not computed by any node or initializer")))
    }

    pub(crate) fn constant(&self, name: &str, what: &str) -> Result<Const, Fail> {
        match self.sym(name)? {
            Sym::Const(c) => Ok(c.clone()),
            _ => fail(format!("{what} `{name}` must be a constant (initializer)"), "fold constants before exporting (onnxsim)"),
        }
    }

    /// A scale input: positive normal f32 values.
    pub(crate) fn scales(&self, name: &str) -> Result<Vec<f32>, Fail> {
        let c = self.constant(name, "scale")?;
        let s = c.f32s();
        if c.dtype != dtype::FLOAT || s.is_empty() || s.iter().any(|v| !(v.is_normal() && *v > 0.0)) {
            return fail(format!("scale `{name}` must hold positive normal float32 values"), "quantize the model again");
        }
        Ok(s)
    }

    /// A zero-point input as int8 values (uint8 moved by -128); absent means 0 of type
    /// `u8_default`.
    pub(crate) fn zero_points(&self, name: Option<&String>, u8_default: bool) -> Result<(Vec<i8>, bool), Fail> {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok((vec![if u8_default { -128 } else { 0 }], u8_default));
        };
        let c = self.constant(name, "zero point")?;
        match c.dtype {
            dtype::INT8 => Ok((c.vals.iter().map(|&v| v as i8).collect(), false)),
            dtype::UINT8 => Ok((c.vals.iter().map(|&v| (v as i32 - 128) as i8).collect(), true)),
            // int4 values are int8 values in -8..=7.
            dtype::INT4 => Ok((c.vals.iter().map(|&v| v as i8).collect(), false)),
            other => fail(
                format!("zero point `{name}` has {}; Systole takes int8 or uint8 activations", dtype::name(other)),
                "quantize activations to int8 (or int4)",
            ),
        }
    }

    /// Whether the zero-point input `zp` is int4: its QuantizeLinear saturates to -8..=7.
    pub(crate) fn int4_zero_point(&self, zp: Option<&String>) -> Result<bool, Fail> {
        match zp.filter(|z| !z.is_empty()) {
            Some(z) => Ok(self.constant(z, "zero point")?.dtype == dtype::INT4),
            None => Ok(false),
        }
    }

    /// A per-tensor activation quantization from (scale, zero point) inputs.
    pub(crate) fn quant(&self, scale: &str, zp: Option<&String>, u8_default: bool) -> Result<(Quant, bool), Fail> {
        let s = self.scales(scale)?;
        let (z, u8) = self.zero_points(zp, u8_default)?;
        if s.len() != 1 || z.len() != 1 {
            return fail(
                format!("activation quantization `{scale}` is per axis; Systole quantizes activations per tensor"),
                "quantize activations per tensor",
            );
        }
        Ok((Quant { scale: s[0], zp: z[0] }, u8))
    }

    /// An int8 activation input `x` and the quantization the node reads it with (its
    /// scale and zero-point inputs).
    pub(crate) fn operand(&self, x: &str, scale: &str, zp: Option<&String>) -> Result<(ValueId, Quant), Fail> {
        let v = self.quant_input(x)?;
        let (q, _) = self.quant(scale, zp, self.u8_values.contains(&v))?;
        Ok((v, q))
    }

    /// Constant weights `w` with their scale and zero-point inputs (the zero points as the
    /// layer builder takes them).
    pub(crate) fn int8_weights(&self, w: &str, scale: &str, zp: Option<&String>) -> Result<(Const, Vec<f32>, Vec<f64>), Fail> {
        let (w, scales) = (self.constant(w, "weight")?, self.scales(scale)?);
        let (z, _) = self.zero_points(zp, false)?;
        Ok((w, scales, z.iter().map(|&z| z as f64).collect()))
    }

    pub(crate) fn quant_input(&self, name: &str) -> Result<ValueId, Fail> {
        match self.sym(name)? {
            Sym::Quant(v) => Ok(*v),
            _ => fail(format!("input `{name}` must be a quantized (int8) tensor"), "check the model's quantization"),
        }
    }

    pub(crate) fn dq_input(&self, name: &str, node: &NodeProto) -> Result<(ValueId, Quant), Fail> {
        match self.sym(name)? {
            Sym::Dq(v, q) => Ok((*v, *q)),
            Sym::Pending(p) => fail(
                format!("input `{name}` is the float output of {} `{}`, which no QuantizeLinear quantizes", p.node.op_type, node_name(&p.node)),
                "insert QuantizeLinear/DequantizeLinear between the two nodes (quantize_static does)",
            ),
            Sym::FloatInput(..) | Sym::Const(_) => fail(
                format!("{} computes in float on `{name}`; Systole runs only quantized tensors", node.op_type),
                "give the float model to `systole simulate --model`, which quantizes it, or quantize it with onnxruntime.quantization.quantize_static",
            ),
            _ => fail(format!("input `{name}` must be a dequantized activation"), "check the model's quantization"),
        }
    }

    /// Translates one node with its operator's registered translation (`crate::ops`).
    fn node(&mut self, n: &NodeProto) -> Result<(), Fail> {
        if n.output.len() > 1 && n.op_type != "Split" && !(n.op_type == "MaxPool" && n.output[1..].iter().all(|o| o.is_empty())) {
            return fail(format!("has {} outputs; Systole imports single-output nodes", n.output.len()), "remove the extra outputs");
        }
        if crate::region::continues(self, n) {
            return crate::region::extend(self, n);
        }
        match crate::ops::find(&n.domain, &n.op_type) {
            Some(op) => (op.import)(self, n),
            None => fail(format!("{} is not translated by the importer", n.op_type), "see docs/ONNX.md for the supported operators"),
        }
    }

    /// A layout operator on int8 data: `shape_op` gives the network op and the output shape
    /// from the input's shape and quantization and whether the input arrives dequantized; on
    /// a dequantized input the output is dequantized with the same parameters.
    pub(crate) fn layout(
        &mut self,
        n: &NodeProto,
        shape_op: impl FnOnce(&Self, &[usize], Quant, bool) -> Result<(Op, Vec<usize>), Fail>,
    ) -> Result<(), Fail> {
        self.layout_outputs(n, |imp, shape, quant, dq| Ok(vec![shape_op(imp, shape, quant, dq)?]))
    }

    /// [`Importer::layout`] for a node with an op and shape per output (Split); output `k`
    /// past the first is the node `<name>_<k>`.
    pub(crate) fn layout_outputs(
        &mut self,
        n: &NodeProto,
        shape_op: impl FnOnce(&Self, &[usize], Quant, bool) -> Result<Vec<(Op, Vec<usize>)>, Fail>,
    ) -> Result<(), Fail> {
        let x = crate::ops::need(n, 0)?;
        let (v, dq) = match self.sym(&x)? {
            Sym::Quant(v) => (*v, None),
            Sym::Dq(v, q) => (*v, Some(*q)),
            Sym::Pending(p) if n.output.iter().filter(|o| !o.is_empty()).count() == 1 => {
                let p = p.clone();
                // A float result: the layout operator joins its float region, or, after a
                // conv or GEMM, runs on the int8 result once quantized.
                if let Ok((mut region, inputs)) = crate::region::into_region(self, &p) {
                    let shape = region.steps.last().map(|s| s.shape.clone()).unwrap_or_default();
                    let outs = shape_op(self, &shape, Quant { scale: 1.0, zp: 0 }, true)?;
                    if let [(op, out_shape)] = &outs[..] {
                        if let Some(op) = crate::region::layout_step(op) {
                            let args = vec![systole_core::region::FloatArg::Step(region.steps.len() - 1)];
                            region.steps.push(systole_core::region::FloatStep { op, args, shape: out_shape.clone() });
                            self.pend(n, PendingOp::Region(region), inputs);
                            return Ok(());
                        }
                    }
                }
                let mut p = p;
                p.after.push(n.clone());
                self.set(n, Sym::Pending(p));
                return Ok(());
            }
            _ => {
                self.dq_input(&x, n)?;
                unreachable!("dq_input fails on every other symbol")
            }
        };
        let shape = self.shape(v);
        let quant = dq.unwrap_or(self.net.values[v].quant);
        let outs = shape_op(self, &shape, quant, dq.is_some())?;
        for (k, (op, out_shape)) in outs.into_iter().enumerate() {
            let Some(out) = n.output.get(k).filter(|o| !o.is_empty()).cloned() else { continue };
            let mut node = n.clone();
            if k > 0 {
                node.name = format!("{}_{k}", node_name(n));
            }
            let w = self.emit(&node, op, vec![v], &out, out_shape, quant)?;
            if self.u8_values.contains(&v) {
                self.u8_values.insert(w);
            }
            if self.int4_values.contains(&v) {
                self.int4_values.insert(w);
            }
            self.syms.insert(out, if let Some(q) = dq { Sym::Dq(w, q) } else { Sym::Quant(w) });
        }
        Ok(())
    }

    /// The output of QOperator node `n`: `op` on `inputs`, emitted now with the output
    /// quantization the node states (`y`, and whether it is uint8).
    pub(crate) fn emit_quantized(
        &mut self,
        n: &NodeProto,
        op: PendingOp,
        inputs: Vec<(ValueId, Quant)>,
        (y, u8): (Quant, bool),
    ) -> Result<(), Fail> {
        let p = Pending::new(n, op, inputs, Activation::None);
        let v = self.resolve(&p, y, &crate::ops::output(n))?;
        self.define(n, v, u8);
        Ok(())
    }

    /// `n`'s output is a float `op` on dequantized `inputs`, pending the QuantizeLinear that
    /// gives it a quantization.
    pub(crate) fn pend(&mut self, n: &NodeProto, op: PendingOp, inputs: Vec<(ValueId, Quant)>) {
        self.set(n, Sym::Pending(Box::new(Pending::new(n, op, inputs, Activation::None))));
    }

    /// The bias (input 2) of a float Conv, Gemm or MatMul: a float constant or a
    /// DequantizeLinear of an int32 constant.
    pub(crate) fn float_bias(&self, n: &NodeProto) -> Result<Option<Bias>, Fail> {
        Ok(match crate::ops::input(n, 2).map(|b| self.sym(b)).transpose()? {
            None => None,
            Some(Sym::DqConst(d)) if d.q.dtype == dtype::INT32 => Some(Bias::Int(d.q.vals.iter().map(|&v| v as i32).collect())),
            Some(Sym::Const(c)) if c.dtype == dtype::FLOAT => Some(Bias::Float(c.f32s())),
            Some(_) => {
                return fail("the bias must be a float constant or a DequantizeLinear of an int32 constant", "quantize the model again")
            }
        })
    }

    pub(crate) fn dq_const(&self, name: &str, what: &str) -> Result<DqConst, Fail> {
        match self.sym(name)? {
            Sym::DqConst(d) => Ok(d.clone()),
            _ => fail(
                format!("{what} `{name}` must be a DequantizeLinear of a constant"),
                "quantize the weights (quantize_static does) or give Systole the float model",
            ),
        }
    }

    pub(crate) fn set(&mut self, node: &NodeProto, sym: Sym) {
        if let Some(o) = node.output.first() {
            self.syms.insert(o.clone(), sym);
        }
    }

    pub(crate) fn shape(&self, v: ValueId) -> Vec<usize> {
        self.net.values[v].shape.clone()
    }

    pub(crate) fn mark(&mut self, v: ValueId, u8: bool) {
        if u8 {
            self.u8_values.insert(v);
        }
    }

    /// `n`'s output is the int8 value `v`.
    pub(crate) fn define(&mut self, n: &NodeProto, v: ValueId, u8: bool) {
        self.mark(v, u8);
        self.set(n, Sym::Quant(v));
    }

    pub(crate) fn int_bias(&self, name: &str) -> Result<Vec<i32>, Fail> {
        let c = self.constant(name, "bias")?;
        if c.dtype != dtype::INT32 {
            return fail(
                format!("bias `{name}` has {}, QLinearConv and QGemm take int32", dtype::name(c.dtype)),
                "quantize the model again",
            );
        }
        Ok(c.vals.iter().map(|&v| v as i32).collect())
    }

    /// Emits a pending op with output quantization `y`.
    pub(crate) fn resolve(&mut self, p: &Pending, y: Quant, out: &str) -> Result<ValueId, Fail> {
        if let Some((last, rest)) = p.after.split_last() {
            // The op and the layout nodes before `last` quantized with `y`, then `last` on
            // their int8 result, its output named `out`.
            let head = Pending { after: rest.to_vec(), ..p.clone() };
            let x = crate::ops::need(last, 0)?;
            let v = self.resolve(&head, y, &x)?;
            self.syms.insert(x, Sym::Quant(v));
            let mut node = last.clone();
            node.output = vec![out.to_string()];
            let op = crate::ops::find(&node.domain, &node.op_type).expect("only registered layout operators are deferred");
            (op.import)(self, &node)?;
            return match self.syms.get(out) {
                Some(Sym::Quant(w)) => Ok(*w),
                _ => fail(format!("{} after {} did not give an int8 tensor", node.op_type, p.node.op_type), "quantize its input"),
            };
        }
        let n = &p.node;
        let ids: Vec<ValueId> = p.inputs.iter().map(|i| i.0).collect();
        let (x, xq) = p.inputs[0];
        let shape = self.shape(x);
        let (op, out_shape) = match &p.op {
            PendingOp::Conv { w, bias } | PendingOp::Gemm { w, bias, .. } => {
                let trans_b = match &p.op {
                    PendingOp::Gemm { trans_b, .. } => Some(*trans_b),
                    _ => None,
                };
                if w.q.dtype != dtype::INT8 {
                    return fail("weights must be int8", "quantize weights to int8");
                }
                let k_axis = if trans_b == Some(false) { 1 } else { 0 };
                let k = w.q.dims.get(k_axis).copied().unwrap_or(0);
                let bias = match bias {
                    None => None,
                    Some(Bias::Int(b)) => Some(b.clone()),
                    Some(Bias::Float(b)) => Some(
                        (0..b.len())
                            .map(|i| {
                                let s = xq.scale * w.scale[if w.scale.len() == 1 { 0 } else { i.min(w.scale.len() - 1) }];
                                (b[i] / s).round_ties_even() as i32
                            })
                            .collect(),
                    ),
                };
                if w.scale.len() > 1 && w.axis != k_axis {
                    return fail(
                        format!("weights are quantized along axis {}, not the output channels (axis {k_axis})", w.axis),
                        "quantize per output channel",
                    );
                }
                if bias.as_ref().is_some_and(|b| b.len() != k) {
                    return fail(format!("{} bias values for {k} output channels", bias.map_or(0, |b| b.len())), "check the bias");
                }
                return self.layer(n, trans_b, (x, xq), &w.q, w.scale.clone(), &w.zp, bias, y, p.act, out);
            }
            PendingOp::Add | PendingOp::Binary(_) | PendingOp::Sum => {
                let mut out = shape.clone();
                for &(v, _) in &p.inputs[1..] {
                    let b = self.shape(v);
                    out = match attrs::broadcast(&out, &b) {
                        Some(o) => o,
                        None => {
                            return fail(
                                format!("combines shapes {out:?} and {b:?}, which do not broadcast"),
                                "each axis must be equal or 1 in one of them (numpy broadcasting)",
                            )
                        }
                    };
                }
                check_elements(&n.op_type, &out)?;
                let op = match p.op {
                    PendingOp::Add => Op::Add(p.act),
                    PendingOp::Binary(f) => Op::Binary(f),
                    _ => Op::Sum,
                };
                (op, out)
            }
            PendingOp::Softmax { axis, flat } => (Op::Softmax { axis: *axis, flat: *flat }, shape),
            PendingOp::Lrn(lrn) => (Op::Lrn(*lrn), shape),
            PendingOp::Region(_) => {
                let (region, _) = crate::region::into_region(self, p)?;
                let shape = region.steps.last().map(|s| s.shape.clone()).unwrap_or_default();
                (Op::FloatRegion(Box::new(region)), shape)
            }
            PendingOp::AddConst(c) | PendingOp::BinaryConst(_, c) => {
                let Some(out) = attrs::broadcast(&shape, &c.shape) else {
                    return fail(
                        format!("combines shape {shape:?} with a constant of shape {:?}, which do not broadcast", c.shape),
                        "each axis must be equal or 1 in one of them (numpy broadcasting)",
                    );
                };
                check_elements(&n.op_type, &out)?;
                let op = match p.op {
                    PendingOp::BinaryConst(f, _) => Op::BinaryConst(f, c.clone()),
                    _ => Op::AddConst(c.clone(), p.act),
                };
                (op, out)
            }
            PendingOp::AvgPool(pool) => {
                if !pool.fits(shape[2], shape[3]) {
                    return fail(format!("window {:?} exceeds the padded input {shape:?}", pool.kernel), "use a smaller window");
                }
                let hw = pool.out_hw(shape[2], shape[3]);
                (Op::AvgPool(*pool), vec![shape[0], shape[1], hw[0], hw[1]])
            }
            PendingOp::GlobalAvgPool { .. } => (Op::GlobalAvgPool, vec![shape[0], shape[1], 1, 1]),
            PendingOp::Concat { axis, shape } => (Op::Concat { axis: *axis }, shape.clone()),
            PendingOp::Activation => (Op::Requantize(p.act), shape),
            PendingOp::Unary(f) => (Op::Unary(*f), shape),
        };
        if p.act != Activation::None && !matches!(op, Op::Add(_) | Op::AddConst(..) | Op::Requantize(_) | Op::FloatRegion(_)) {
            return fail(
                format!("{} feeds a ReLU, which Systole fuses only into conv, GEMM and Add", n.op_type),
                "quantize the ReLU's input separately",
            );
        }
        // Each input is read with the quantization the graph states for it here.
        let mut inputs = ids;
        for (slot, &(id, q)) in p.inputs.iter().enumerate() {
            inputs[slot] = self.reinterpret(n, id, q);
        }
        if let PendingOp::GlobalAvgPool { flat: true } = p.op {
            let pooled = self.emit(n, op, inputs, &format!("{out}_pooled"), out_shape, y)?;
            let mut flatten = n.clone();
            flatten.name = format!("{}_flatten", node_name(n));
            let flat = self.net.values[pooled].shape[..2].to_vec();
            return self.emit(&flatten, Op::Reshape, vec![pooled], out, flat, y);
        }
        self.emit(n, op, inputs, out, out_shape, y)
    }

    /// `x` read with quantization `q`: itself when its producer gave it `q`, else the same
    /// bytes under a value with `q`.
    fn reinterpret(&mut self, n: &NodeProto, x: ValueId, q: Quant) -> ValueId {
        if self.net.values[x].quant == q {
            return x;
        }
        // The same shape as `x`, whose size was checked.
        self.net.values.push(Value { name: format!("{}_as_{}", self.net.values[x].name, node_name(n)), shape: self.shape(x), quant: q });
        let alias = self.net.values.len() - 1;
        self.net.nodes.push(Node { name: format!("{}_reinterpret", node_name(n)), op: Op::Reshape, inputs: vec![x], output: alias });
        alias
    }

    /// Builds an accelerator layer. `trans_b`: None for Conv, Some for GEMM (weights `[N, K]`
    /// when true, `[K, N]` when false).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn layer(
        &mut self,
        n: &NodeProto,
        trans_b: Option<bool>,
        (x, xq): (ValueId, Quant),
        w: &Const,
        w_scale: Vec<f32>,
        w_zp: &[f64],
        bias: Option<Vec<i32>>,
        y: Quant,
        act: Activation,
        out: &str,
    ) -> Result<ValueId, Fail> {
        if w.dtype != dtype::INT8 {
            return fail(
                format!("weights have {}; Systole takes int8 weights", dtype::name(w.dtype)),
                "quantize weights to int8 (QuantType.QInt8)",
            );
        }
        if w_zp.iter().any(|&z| z != 0.0) {
            return fail("weights have a non-zero zero point", "quantize weights symmetrically (the default of quantize_static for int8)");
        }
        let xs = self.shape(x);
        let wq: Vec<i8> = w.vals.iter().map(|&v| v as i8).collect();
        let (shape, weights, out_shape, op) = match trans_b {
            None => {
                let [k, cg, r, s] = w.dims[..] else {
                    return fail(format!("weights of shape {:?}; Systole supports 2-D convolutions", w.dims), "use Conv2d");
                };
                if xs.len() != 4 {
                    return fail(format!("input of shape {xs:?}; a 2-D convolution takes NCHW"), "use Conv2d");
                }
                let groups = attrs::group(n).map_err(|m| Fail { message: m.0, help: "set group to a divisor of the channels".into() })?;
                if cg.checked_mul(groups) != Some(xs[1]) {
                    return fail(
                        format!("{groups} groups of {cg} channels do not match the input's {} channels", xs[1]),
                        "check the weights",
                    );
                }
                let win = Window::read(n, Some([r, s]), [xs[2], xs[3]])?;
                let shape = ConvShape {
                    n: xs[0],
                    h: xs[2],
                    w: xs[3],
                    c: xs[1],
                    k,
                    r,
                    s,
                    stride: win.stride,
                    dilation: win.dilation,
                    pad: win.pad,
                    groups,
                };
                let mut krsc = vec![0i8; wq.len()];
                for ki in 0..k {
                    for c in 0..cg {
                        for ri in 0..r {
                            for si in 0..s {
                                krsc[((ki * r + ri) * s + si) * cg + c] = wq[((ki * cg + c) * r + ri) * s + si];
                            }
                        }
                    }
                }
                let op = if groups == xs[1] && k == xs[1] && groups > 1 { LayerOp::Depthwise } else { LayerOp::Conv };
                (shape, Tensor::from_vec([k, r, s, cg], krsc), None, op)
            }
            Some(tb) => {
                let [a, b] = w.dims[..] else {
                    return fail(format!("weights of shape {:?}; a GEMM takes a matrix", w.dims), "use 2-D weights");
                };
                let (kk, nn) = if tb { (b, a) } else { (a, b) };
                let [m, xk] = xs[..] else {
                    return fail(format!("input of shape {xs:?}; Systole's GEMM takes an [M, K] matrix"), "flatten the input first");
                };
                if xk != kk {
                    return fail(format!("input [{m}, {xk}] times weights {:?}: inner sizes differ", w.dims), "check the weights");
                }
                let nk: Vec<i8> =
                    if tb { wq } else { (0..nn).flat_map(|j| (0..kk).map(move |t| (t, j))).map(|(t, j)| wq[t * nn + j]).collect() };
                (ConvShape::gemm(1, m, kk, nn), Tensor::from_vec([nn, 1, 1, kk], nk), Some(vec![m, nn]), LayerOp::Gemm)
            }
        };
        let k = shape.k;
        if w_scale.len() != 1 && w_scale.len() != k {
            return fail(format!("{} weight scales for {k} output channels", w_scale.len()), "quantize per tensor or per output channel");
        }
        let bias = bias.unwrap_or_else(|| vec![0; k]);
        if bias.len() != k {
            return fail(format!("{} bias values for {k} output channels", bias.len()), "check the bias");
        }
        let layer = Layer {
            name: node_name(n),
            op,
            shape,
            quant: QuantParams { x_scale: xq.scale, x_zp: xq.zp, w_scale, y_scale: y.scale, y_zp: y.zp },
            activation: act,
            sparsity: systole_core::layer::weight_sparsity(&shape, &weights),
            weight_bits: systole_core::layer::value_bits(&weights),
            density: systole_core::layer::weight_density(&weights),
            act_bits: if self.int4_values.contains(&x) { 4 } else { 8 },
            output_bits: 8,
        };
        layer
            .validate()
            .map_err(|e| Fail { message: e.to_string(), help: e.help.clone().unwrap_or_else(|| "check the layer's attributes".into()) })?;
        let out_shape = out_shape.unwrap_or_else(|| vec![shape.n, k, shape.p(), shape.q()]);
        let x = self.reinterpret(n, x, xq);
        self.emit(n, Op::Layer { layer: Box::new(layer), weights, bias }, vec![x], out, out_shape, y)
    }
}
