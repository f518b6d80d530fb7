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
use systole_core::network::{NetInput, NetOutput, Network, Node, Op, Quant, Value, ValueId};
use systole_core::Tensor;

/// A failure inside one node: message and fix.
struct Fail {
    message: String,
    help: String,
}

impl From<String> for Fail {
    fn from(message: String) -> Self {
        Fail { message, help: "see docs/ONNX.md for the operators and forms Systole imports".into() }
    }
}

fn fail<T>(message: impl Into<String>, help: impl Into<String>) -> Result<T, Fail> {
    Err(Fail { message: message.into(), help: help.into() })
}

/// `DequantizeLinear` applied to a constant: weights or bias.
#[derive(Clone)]
struct DqConst {
    q: Const,
    scale: Vec<f32>,
    zp: Vec<f64>,
    axis: usize,
}

/// A float op on dequantized inputs waiting for its output's QuantizeLinear.
#[derive(Clone)]
struct Pending {
    node: NodeProto,
    op: PendingOp,
    inputs: Vec<(ValueId, Quant)>,
    act: Activation,
}

#[derive(Clone)]
enum PendingOp {
    Conv { w: DqConst, bias: Option<Bias> },
    Gemm { trans_b: bool, w: DqConst, bias: Option<Bias> },
    Add,
    AvgPool(systole_core::network::Pool),
    GlobalAvgPool,
    Concat { axis: usize, shape: Vec<usize> },
    Activation,
}

#[derive(Clone)]
enum Bias {
    Int(Vec<i32>),
    Float(Vec<f32>),
}

/// What an ONNX tensor name stands for during import.
#[derive(Clone)]
enum Sym {
    Const(Const),
    DqConst(DqConst),
    FloatInput(String, Vec<usize>),
    Quant(ValueId),
    Dq(ValueId, Quant),
    Pending(Box<Pending>),
}

struct Importer {
    syms: HashMap<String, Sym>,
    u8_values: HashSet<ValueId>,
    // Values quantized to int4 (-8..=7): the layers reading them have int4 activations.
    int4_values: HashSet<ValueId>,
    net: Network,
    opset: i64,
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
        let c = Const::from_proto(t).map_err(|m| graph_err(m, "save the model with its weights inside the file"))?;
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
                opset: if node.domain.is_empty() || node.domain == "ai.onnx" { model.opset } else { 1 },
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
fn check_elements(name: &str, shape: &[usize]) -> Result<(), Fail> {
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
    fn value(&mut self, name: &str, shape: Vec<usize>, quant: Quant) -> Result<ValueId, Fail> {
        check_elements(name, &shape)?;
        self.net.values.push(Value { name: name.into(), shape, quant });
        Ok(self.net.values.len() - 1)
    }

    fn emit(
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

    fn sym(&self, name: &str) -> Result<&Sym, Fail> {
        self.syms.get(name).ok_or_else(|| Fail::from(format!("input `{name}` is not computed by any node or initializer")))
    }

    fn constant(&self, name: &str, what: &str) -> Result<Const, Fail> {
        match self.sym(name)? {
            Sym::Const(c) => Ok(c.clone()),
            _ => fail(format!("{what} `{name}` must be a constant (initializer)"), "fold constants before exporting (onnxsim)"),
        }
    }

    /// A scale input: positive normal f32 values.
    fn scales(&self, name: &str) -> Result<Vec<f32>, Fail> {
        let c = self.constant(name, "scale")?;
        let s = c.f32s();
        if c.dtype != dtype::FLOAT || s.is_empty() || s.iter().any(|v| !(v.is_normal() && *v > 0.0)) {
            return fail(format!("scale `{name}` must hold positive normal float32 values"), "quantize the model again");
        }
        Ok(s)
    }

    /// A zero-point input as int8 values (uint8 moved by -128); absent means 0 of type
    /// `u8_default`.
    fn zero_points(&self, name: Option<&String>, u8_default: bool) -> Result<(Vec<i8>, bool), Fail> {
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
    fn int4_zero_point(&self, zp: Option<&String>) -> Result<bool, Fail> {
        match zp.filter(|z| !z.is_empty()) {
            Some(z) => Ok(self.constant(z, "zero point")?.dtype == dtype::INT4),
            None => Ok(false),
        }
    }

    /// A per-tensor activation quantization from (scale, zero point) inputs.
    fn quant(&self, scale: &str, zp: Option<&String>, u8_default: bool) -> Result<(Quant, bool), Fail> {
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
    fn operand(&self, x: &str, scale: &str, zp: Option<&String>) -> Result<(ValueId, Quant), Fail> {
        let v = self.quant_input(x)?;
        let (q, _) = self.quant(scale, zp, self.u8_values.contains(&v))?;
        Ok((v, q))
    }

    /// Constant weights `w` with their scale and zero-point inputs (the zero points as the
    /// layer builder takes them).
    fn int8_weights(&self, w: &str, scale: &str, zp: Option<&String>) -> Result<(Const, Vec<f32>, Vec<f64>), Fail> {
        let (w, scales) = (self.constant(w, "weight")?, self.scales(scale)?);
        let (z, _) = self.zero_points(zp, false)?;
        Ok((w, scales, z.iter().map(|&z| z as f64).collect()))
    }

    fn quant_input(&self, name: &str) -> Result<ValueId, Fail> {
        match self.sym(name)? {
            Sym::Quant(v) => Ok(*v),
            _ => fail(format!("input `{name}` must be a quantized (int8) tensor"), "check the model's quantization"),
        }
    }

    fn dq_input(&self, name: &str, node: &NodeProto) -> Result<(ValueId, Quant), Fail> {
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

    fn dq_const(&self, name: &str, what: &str) -> Result<DqConst, Fail> {
        match self.sym(name)? {
            Sym::DqConst(d) => Ok(d.clone()),
            _ => fail(
                format!("{what} `{name}` must be a DequantizeLinear of a constant"),
                "quantize the weights (quantize_static does) or give Systole the float model",
            ),
        }
    }

    fn set(&mut self, node: &NodeProto, sym: Sym) {
        if let Some(o) = node.output.first() {
            self.syms.insert(o.clone(), sym);
        }
    }

    fn shape(&self, v: ValueId) -> Vec<usize> {
        self.net.values[v].shape.clone()
    }

    fn node(&mut self, n: &NodeProto) -> Result<(), Fail> {
        let input = |i: usize| n.input.get(i).filter(|s| !s.is_empty());
        let need = |i: usize| input(i).cloned().ok_or_else(|| Fail::from(format!("input {i} is missing")));
        if n.output.len() > 1 && !(n.op_type == "MaxPool" && n.output[1..].iter().all(|o| o.is_empty())) {
            return fail(format!("has {} outputs; Systole imports single-output nodes", n.output.len()), "remove the extra outputs");
        }
        let out = n.output.first().cloned().unwrap_or_default();
        match n.op_type.as_str() {
            "Constant" => {
                let t = attrs::tensor(n, "value").ok_or_else(|| Fail::from("has no tensor `value`".to_string()))?;
                self.set(n, Sym::Const(Const::from_proto(t)?));
            }
            "Identity" => {
                let s = self.sym(&need(0)?)?.clone();
                self.set(n, s);
            }
            "QuantizeLinear" => self.quantize_linear(n, &need(0)?, &need(1)?, input(2), &out)?,
            "DequantizeLinear" => self.dequantize_linear(n, &need(0)?, &need(1)?, input(2))?,
            "QLinearConv" => {
                let x = self.operand(&need(0)?, &need(1)?, input(2))?;
                let (w, ws, wz) = self.int8_weights(&need(3)?, &need(4)?, input(5))?;
                let (yq, u8) = self.quant(&need(6)?, input(7), false)?;
                let bias = input(8).map(|b| self.int_bias(b)).transpose()?;
                let v = self.layer(n, None, x, &w, ws, &wz, bias, yq, Activation::None, &out)?;
                self.define(n, v, u8);
            }
            "QLinearMatMul" | "QGemm" => {
                let x = self.operand(&need(0)?, &need(1)?, input(2))?;
                let (w, ws, wz) = self.int8_weights(&need(3)?, &need(4)?, input(5))?;
                let gemm = n.op_type == "QGemm";
                let trans_b = gemm && attrs::int(n, "transB", 0) != 0;
                if gemm && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0) {
                    return fail("transA = 1 or alpha != 1 is not supported", "export the Gemm with transA = 0 and alpha = 1");
                }
                let (bias, ys, yz) = if gemm { (input(6), 7, 8) } else { (None, 6, 7) };
                let ys = input(ys).cloned().ok_or_else(|| Fail::from("has no y_scale: a float output is not supported".to_string()))?;
                let (yq, u8) = self.quant(&ys, input(yz), false)?;
                let bias = bias.map(|b| self.int_bias(b)).transpose()?;
                let v = self.layer(n, Some(trans_b), x, &w, ws, &wz, bias, yq, Activation::None, &out)?;
                self.define(n, v, u8);
            }
            "QLinearAdd" => {
                let a = self.operand(&need(0)?, &need(1)?, input(2))?;
                let b = self.operand(&need(3)?, &need(4)?, input(5))?;
                let (yq, u8) = self.quant(&need(6)?, input(7), false)?;
                let v =
                    self.resolve(&Pending { node: n.clone(), op: PendingOp::Add, inputs: vec![a, b], act: Activation::None }, yq, &out)?;
                self.define(n, v, u8);
            }
            "QLinearAveragePool" | "QLinearGlobalAveragePool" => {
                let x = self.operand(&need(0)?, &need(1)?, input(2))?;
                let (yq, u8) = self.quant(&need(3)?, input(4), false)?;
                if attrs::int(n, "channels_last", 0) != 0 {
                    return fail("channels_last = 1 is not supported", "use the NCHW form");
                }
                let op = self.pool_op(n, x.0)?;
                let v = self.resolve(&Pending { node: n.clone(), op, inputs: vec![x], act: Activation::None }, yq, &out)?;
                self.define(n, v, u8);
            }
            "QLinearConcat" => {
                let (yq, u8) = self.quant(&need(0)?, input(1), false)?;
                let mut inputs = vec![];
                for i in (2..n.input.len()).step_by(3) {
                    inputs.push(self.operand(&need(i)?, &need(i + 1)?, input(i + 2))?);
                }
                let op = self.concat_op(n, &inputs.iter().map(|i| i.0).collect::<Vec<_>>())?;
                let v = self.resolve(&Pending { node: n.clone(), op, inputs, act: Activation::None }, yq, &out)?;
                self.define(n, v, u8);
            }
            "Conv" | "Gemm" | "MatMul" => {
                let x = self.dq_input(&need(0)?, n)?;
                let w = self.dq_const(&need(1)?, "weight")?;
                let bias = match input(2).map(|b| self.sym(b)).transpose()? {
                    None => None,
                    Some(Sym::DqConst(d)) if d.q.dtype == dtype::INT32 => Some(Bias::Int(d.q.vals.iter().map(|&v| v as i32).collect())),
                    Some(Sym::Const(c)) if c.dtype == dtype::FLOAT => Some(Bias::Float(c.f32s())),
                    Some(_) => {
                        return fail(
                            "the bias must be a float constant or a DequantizeLinear of an int32 constant",
                            "quantize the model again",
                        )
                    }
                };
                let op = if n.op_type == "Conv" {
                    PendingOp::Conv { w, bias }
                } else {
                    if n.op_type == "Gemm"
                        && (attrs::int(n, "transA", 0) != 0 || attrs::float(n, "alpha", 1.0) != 1.0 || attrs::float(n, "beta", 1.0) != 1.0)
                    {
                        return fail(
                            "transA = 1, alpha != 1 or beta != 1 is not supported",
                            "export the Gemm with transA = 0, alpha = beta = 1",
                        );
                    }
                    PendingOp::Gemm { trans_b: n.op_type == "Gemm" && attrs::int(n, "transB", 0) != 0, w, bias }
                };
                self.set(n, Sym::Pending(Box::new(Pending { node: n.clone(), op, inputs: vec![x], act: Activation::None })));
            }
            "Add" => {
                let a = self.dq_input(&need(0)?, n)?;
                let b = self.dq_input(&need(1)?, n)?;
                self.set(
                    n,
                    Sym::Pending(Box::new(Pending { node: n.clone(), op: PendingOp::Add, inputs: vec![a, b], act: Activation::None })),
                );
            }
            "AveragePool" | "GlobalAveragePool" => {
                let x = self.dq_input(&need(0)?, n)?;
                let op = self.pool_op(n, x.0)?;
                self.set(n, Sym::Pending(Box::new(Pending { node: n.clone(), op, inputs: vec![x], act: Activation::None })));
            }
            "Concat" => {
                let names: Vec<String> = n.input.iter().filter(|s| !s.is_empty()).cloned().collect();
                if names.is_empty() {
                    return fail("has no inputs", "remove the Concat or give it its inputs");
                }
                if names.iter().all(|i| matches!(self.syms.get(i), Some(Sym::Quant(_)))) {
                    let vs: Vec<ValueId> = names.iter().map(|i| self.quant_input(i)).collect::<Result<_, _>>()?;
                    let q = self.net.values[vs[0]].quant;
                    if vs.iter().any(|&v| self.net.values[v].quant != q) {
                        return fail("concatenates int8 tensors of different quantizations", "use QLinearConcat");
                    }
                    let PendingOp::Concat { axis, shape } = self.concat_op(n, &vs)? else { unreachable!() };
                    let v = self.emit(n, Op::Concat { axis }, vs, &out, shape, q)?;
                    self.set(n, Sym::Quant(v));
                } else {
                    let inputs: Vec<(ValueId, Quant)> = names.iter().map(|i| self.dq_input(i, n)).collect::<Result<_, _>>()?;
                    let op = self.concat_op(n, &inputs.iter().map(|i| i.0).collect::<Vec<_>>())?;
                    self.set(n, Sym::Pending(Box::new(Pending { node: n.clone(), op, inputs, act: Activation::None })));
                }
            }
            "Relu" | "Clip" => {
                let act = self.activation(n)?;
                let x = need(0)?;
                match self.sym(&x)?.clone() {
                    Sym::Pending(mut p) if p.act == Activation::None || p.act == act => {
                        p.act = act;
                        self.set(n, Sym::Pending(p));
                    }
                    Sym::Dq(v, q) => {
                        let p = Pending { node: n.clone(), op: PendingOp::Activation, inputs: vec![(v, q)], act };
                        self.set(n, Sym::Pending(Box::new(p)));
                    }
                    _ => {
                        return fail(
                            format!("input `{x}` is not a dequantized tensor or a quantizable op's output"),
                            "quantize the model again",
                        )
                    }
                }
            }
            "MaxPool" | "Reshape" | "Flatten" | "Transpose" | "Pad" => self.layout(n, &need(0)?, &out)?,
            "BatchNormalization" => {
                return fail(
                    "BatchNormalization in a quantized model",
                    "fold it into the convolution before quantizing (quant_pre_process does), or give Systole the float model",
                )
            }
            other => return fail(format!("{other} is not translated by the importer"), "see docs/ONNX.md for the supported operators"),
        }
        Ok(())
    }

    fn mark(&mut self, v: ValueId, u8: bool) {
        if u8 {
            self.u8_values.insert(v);
        }
    }

    /// `n`'s output is the int8 value `v`.
    fn define(&mut self, n: &NodeProto, v: ValueId, u8: bool) {
        self.mark(v, u8);
        self.set(n, Sym::Quant(v));
    }

    fn int_bias(&self, name: &str) -> Result<Vec<i32>, Fail> {
        let c = self.constant(name, "bias")?;
        if c.dtype != dtype::INT32 {
            return fail(
                format!("bias `{name}` has {}, QLinearConv and QGemm take int32", dtype::name(c.dtype)),
                "quantize the model again",
            );
        }
        Ok(c.vals.iter().map(|&v| v as i32).collect())
    }

    fn activation(&self, n: &NodeProto) -> Result<Activation, Fail> {
        if n.op_type == "Relu" {
            return Ok(Activation::Relu);
        }
        let bound = |i: usize, attr: &str, default: f32| -> Result<f32, Fail> {
            if self.opset < 11 {
                return Ok(attrs::float(n, attr, default));
            }
            match n.input.get(i).filter(|s| !s.is_empty()) {
                None => Ok(default),
                Some(name) => self
                    .constant(name, "Clip bound")?
                    .scalar()
                    .map(|v| v as f32)
                    .ok_or_else(|| Fail::from(format!("Clip bound `{name}` is not a scalar"))),
            }
        };
        let (lo, hi) = (bound(1, "min", f32::MIN)?, bound(2, "max", f32::MAX)?);
        match (lo, hi) {
            (0.0, 6.0) => Ok(Activation::Relu6),
            (0.0, f32::MAX) => Ok(Activation::Relu),
            _ => fail(format!("Clip({lo}, {hi}) is not ReLU or ReLU6"), "Systole fuses Clip(0, 6) and Clip(0, inf) only"),
        }
    }

    fn pool_op(&self, n: &NodeProto, x: ValueId) -> Result<PendingOp, Fail> {
        let shape = self.shape(x);
        if shape.len() != 4 {
            return fail(format!("pools a rank-{} tensor; Systole pools NCHW images", shape.len()), "reshape to NCHW");
        }
        if n.op_type.ends_with("GlobalAveragePool") {
            return Ok(PendingOp::GlobalAvgPool);
        }
        Ok(PendingOp::AvgPool(Window::read(n, None, [shape[2], shape[3]])?.pool(n)?))
    }

    fn concat_op(&self, n: &NodeProto, vs: &[ValueId]) -> Result<PendingOp, Fail> {
        let Some(&v0) = vs.first() else { return fail("has no inputs", "remove the node or give it its inputs") };
        let first = self.shape(v0);
        let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), first.len())?;
        let mut shape = first.clone();
        shape[axis] = 0;
        for &v in vs {
            let s = self.shape(v);
            if s.len() != first.len() || (0..s.len()).any(|d| d != axis && s[d] != first[d]) {
                return fail(format!("concatenates shapes {first:?} and {s:?} along axis {axis}"), "the other axes must agree");
            }
            shape[axis] += s[axis];
        }
        Ok(PendingOp::Concat { axis, shape })
    }

    fn quantize_linear(&mut self, n: &NodeProto, x: &str, scale: &str, zp: Option<&String>, out: &str) -> Result<(), Fail> {
        match self.sym(x)?.clone() {
            Sym::Const(c) => {
                let s = self.scales(scale)?;
                let (z, _) = self.zero_points(zp, true)?;
                let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), c.dims.len().max(1))?;
                let q = quantize_const(&c, &s, &z, axis)?;
                self.set(n, Sym::Const(q));
                return Ok(());
            }
            sym => {
                let (q, u8) = self.quant(scale, zp, true)?;
                if self.int4_zero_point(zp)? {
                    let Sym::Pending(p) = sym else {
                        return fail(
                            format!("quantizes `{x}` to int4, but Systole saturates to int4 only in a conv or GEMM layer's requantizer"),
                            "quantize to int4 only the outputs of Conv, Gemm or MatMul (with an optional ReLU), or use int8",
                        );
                    };
                    let v = self.resolve(&p, q, out)?;
                    let Some(Node { op: Op::Layer { layer, .. }, .. }) = self.net.nodes.iter_mut().rev().find(|n| n.output == v) else {
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
                    self.int4_values.insert(v);
                    self.set(n, Sym::Quant(v));
                    return Ok(());
                }
                let v = match sym {
                    Sym::FloatInput(name, shape) => {
                        let v = self.value(out, shape, q)?;
                        self.net.inputs.push(NetInput { name, value: v, float: true });
                        v
                    }
                    Sym::Dq(v, from) if from == q => v,
                    Sym::Dq(v, from) => {
                        let p = Pending { node: n.clone(), op: PendingOp::Activation, inputs: vec![(v, from)], act: Activation::None };
                        self.resolve(&p, q, out)?
                    }
                    Sym::Pending(p) => self.resolve(&p, q, out)?,
                    _ => return fail(format!("input `{x}` is already quantized"), "remove the second QuantizeLinear"),
                };
                self.mark(v, u8);
                self.set(n, Sym::Quant(v));
            }
        }
        Ok(())
    }

    fn dequantize_linear(&mut self, n: &NodeProto, x: &str, scale: &str, zp: Option<&String>) -> Result<(), Fail> {
        let sym = match self.sym(x)?.clone() {
            Sym::Quant(v) => Sym::Dq(v, self.quant(scale, zp, self.u8_values.contains(&v))?.0),
            Sym::Const(c) => {
                let s = self.scales(scale)?;
                let z: Vec<f64> = match zp.filter(|z| !z.is_empty()) {
                    None => vec![0.0],
                    Some(z) => self.constant(z, "zero point")?.vals,
                };
                let axis = attrs::normalize_axis(attrs::int(n, "axis", 1), c.dims.len().max(1))?;
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
        self.set(n, sym);
        Ok(())
    }

    /// MaxPool, Reshape, Flatten, Transpose and Pad on int8 data; on a dequantized input the
    /// output is dequantized with the same parameters.
    fn layout(&mut self, n: &NodeProto, x: &str, out: &str) -> Result<(), Fail> {
        let (v, dq) = match self.sym(x)? {
            Sym::Quant(v) => (*v, None),
            Sym::Dq(v, q) => (*v, Some(*q)),
            _ => {
                self.dq_input(x, n)?;
                unreachable!("dq_input fails on every other symbol")
            }
        };
        let shape = self.shape(v);
        let quant = dq.unwrap_or(self.net.values[v].quant);
        let (op, out_shape) = match n.op_type.as_str() {
            "MaxPool" => {
                if shape.len() != 4 {
                    return fail(format!("pools a rank-{} tensor", shape.len()), "pool NCHW images");
                }
                if attrs::int(n, "storage_order", 0) != 0 {
                    return fail("storage_order = 1 is not supported", "export with the default storage order");
                }
                let pool = Window::read(n, None, [shape[2], shape[3]])?.pool(n)?;
                if pool.kernel[0] > shape[2] + pool.pad[0] + pool.pad[2] || pool.kernel[1] > shape[3] + pool.pad[1] + pool.pad[3] {
                    return fail(format!("window {:?} exceeds the padded input {shape:?}", pool.kernel), "use a smaller window");
                }
                let hw = pool.out_hw(shape[2], shape[3]);
                (Op::MaxPool(pool), vec![shape[0], shape[1], hw[0], hw[1]])
            }
            "Flatten" => (Op::Reshape, attrs::flatten(&shape, attrs::int(n, "axis", 1))?),
            "Reshape" => {
                let target = n.input.get(1).ok_or_else(|| Fail::from("has no shape input".to_string()))?;
                let t = self.constant(target, "shape")?;
                (Op::Reshape, attrs::reshape(&shape, &t.vals, attrs::int(n, "allowzero", 0) != 0)?)
            }
            "Transpose" => {
                let perm = attrs::perm(n, shape.len())?;
                let s = perm.iter().map(|&p| shape[p]).collect();
                (Op::Transpose { perm }, s)
            }
            _ => {
                if attrs::string(n, "mode", "constant") != "constant" {
                    return fail("only constant padding is supported", "pad with mode = constant");
                }
                let pads = if self.opset < 11 {
                    attrs::ints(n, "pads").unwrap_or_default().iter().map(|&p| p as f64).collect()
                } else {
                    self.constant(n.input.get(1).map_or("", |s| s.as_str()), "pads")?.vals
                };
                if n.input.len() > 3 && !n.input[3].is_empty() {
                    return fail("the axes input is not supported", "give pads for every axis");
                }
                let value = match n.input.get(2).filter(|s| !s.is_empty()) {
                    Some(c) => self.constant(c, "constant_value")?.scalar().unwrap_or(f64::NAN),
                    None => 0.0,
                };
                let zero = if dq.is_some() { 0.0 } else { quant.zp as f64 };
                if value != zero {
                    return fail(format!("pads with {value}, not with the zero point"), "pad with 0.0 (float) or the zero point (int8)");
                }
                if pads.len() != 2 * shape.len() || pads.iter().any(|&p| p < 0.0) {
                    return fail(format!("pads {pads:?} do not give two non-negative values per axis"), "pad every axis, without cropping");
                }
                let pads: Vec<usize> = pads.iter().map(|&p| p as usize).collect();
                let s = (0..shape.len()).map(|d| shape[d].saturating_add(pads[d]).saturating_add(pads[shape.len() + d])).collect();
                (Op::Pad { pads }, s)
            }
        };
        let w = self.emit(n, op, vec![v], out, out_shape, quant)?;
        if self.u8_values.contains(&v) {
            self.u8_values.insert(w);
        }
        if self.int4_values.contains(&v) {
            self.int4_values.insert(w);
        }
        self.set(n, if let Some(q) = dq { Sym::Dq(w, q) } else { Sym::Quant(w) });
        Ok(())
    }

    /// Emits a pending op with output quantization `y`.
    fn resolve(&mut self, p: &Pending, y: Quant, out: &str) -> Result<ValueId, Fail> {
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
            PendingOp::Add => {
                let b = self.shape(p.inputs[1].0);
                if b != shape {
                    return fail(format!("adds shapes {shape:?} and {b:?}; broadcasting is not supported"), "add tensors of equal shape");
                }
                (Op::Add(p.act), shape)
            }
            PendingOp::AvgPool(pool) => {
                if pool.kernel[0] > shape[2] + pool.pad[0] + pool.pad[2] || pool.kernel[1] > shape[3] + pool.pad[1] + pool.pad[3] {
                    return fail(format!("window {:?} exceeds the padded input {shape:?}", pool.kernel), "use a smaller window");
                }
                let hw = pool.out_hw(shape[2], shape[3]);
                (Op::AvgPool(*pool), vec![shape[0], shape[1], hw[0], hw[1]])
            }
            PendingOp::GlobalAvgPool => (Op::GlobalAvgPool, vec![shape[0], shape[1], 1, 1]),
            PendingOp::Concat { axis, shape } => (Op::Concat { axis: *axis }, shape.clone()),
            PendingOp::Activation => (Op::Requantize(p.act), shape),
        };
        if p.act != Activation::None && !matches!(op, Op::Add(_) | Op::Requantize(_)) {
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
    fn layer(
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
                let groups = attrs::group(n).map_err(|m| Fail { message: m, help: "set group to a divisor of the channels".into() })?;
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

/// QuantizeLinear of a constant (weights stored as float behind Q/DQ pairs).
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
