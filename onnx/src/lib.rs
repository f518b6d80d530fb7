//! Reading ONNX models: the file decoded with a maintained protobuf crate
//! (`onnx-protobuf`, rust-protobuf 3), then checked before any import work: a graph is
//! present, the default-domain opset is one we know, every node is an operator the
//! importer handles (in the domain and opset it comes from), and every graph input has a
//! fixed shape (a symbolic batch dimension is taken as 1). Each failure names the file and
//! what to fix; nothing here panics on any input.

pub mod attrs;
pub mod float;
pub mod fold;
mod import;
mod ops;
pub mod picks;
pub mod ptq;
mod region;
pub mod zoo;

pub use float::FTensor;
pub use import::import;

use miette::Diagnostic;
use onnx_protobuf::{tensor_shape_proto::dimension, type_proto, Message, ModelProto, NodeProto};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Default-domain opsets the reader accepts. Operators whose form changed are read per
/// version (Pad's and Clip's attributes before 11, Unsqueeze's and Squeeze's axes before
/// 13, Slice's before 10); the quantization operators exist from 10
/// (`ops::OpDef::since`), and post-training quantization writes opset 13 or later.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=21;

/// The largest input the importer accepts (a 4096 x 4096 RGB image is 50 M).
pub const MAX_INPUT_ELEMENTS: usize = 1 << 26;

/// Operators the importer handles, by domain (`""` is the default ONNX domain, listed
/// first), each domain's sorted by name: the registry of [`ops`](crate::ops)' families.
pub fn supported() -> Vec<(&'static str, Vec<&'static str>)> {
    ops::domains().into_iter().map(|d| (d, ops::names(d))).collect()
}

/// What is wrong with one node's attributes, inputs or values, before the node's name and
/// the file are attached (as [`OnnxError::Import`] or [`OnnxError::Node`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct NodeFault(pub String);

impl From<String> for NodeFault {
    fn from(message: String) -> Self {
        NodeFault(message)
    }
}

impl From<&str> for NodeFault {
    fn from(message: &str) -> Self {
        NodeFault(message.into())
    }
}

impl From<NodeFault> for String {
    fn from(fault: NodeFault) -> Self {
        fault.0
    }
}

/// Why a model file could not be read.
#[derive(Debug, Error, Diagnostic)]
pub enum OnnxError {
    /// The file is not a regular file of at most [`systole_core::input::MAX_ONNX_BYTES`].
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] systole_core::LoadError),
    /// The bytes are not a protobuf `ModelProto` (a truncated or corrupted file, or not ONNX).
    #[error("{path}: not a readable ONNX model: {reason}")]
    #[diagnostic(
        code(systole::onnx::decode),
        help("the file is truncated, corrupted or not ONNX; export it again (torch.onnx.export, onnx.save)")
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// The protobuf decoder's message.
        reason: String,
    },
    /// The model has no graph.
    #[error("{path}: the model has no graph")]
    #[diagnostic(code(systole::onnx::graph), help("an ONNX model needs a `graph`; export it again"))]
    NoGraph {
        /// The file.
        path: PathBuf,
    },
    /// The default-domain opset is missing or outside [`OPSETS`].
    #[error("{path}: opset {opset} of the default domain is not supported (supported: {}..={})", OPSETS.start(), OPSETS.end())]
    #[diagnostic(code(systole::onnx::opset), help("convert the model with onnx.version_converter.convert_version(model, 13)"))]
    Opset {
        /// The file.
        path: PathBuf,
        /// The model's opset (0 when it declares none).
        opset: i64,
    },
    /// A node's operator is not one the importer handles.
    #[error("{path}: node {node}, which Systole does not support")]
    #[diagnostic(code(systole::onnx::unsupported))]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The node.
        node: Box<NodeOp>,
        /// The operators of that domain that are supported.
        #[help]
        help: String,
    },
    /// A node the importer cannot translate (attributes, shapes or quantization it does not
    /// support, or a float tensor where a quantized one is needed).
    #[error("{path}: node {node}: {message}")]
    #[diagnostic(code(systole::onnx::import))]
    Import {
        /// The file.
        path: PathBuf,
        /// The node.
        node: Box<NodeOp>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: String,
    },
    /// A graph-level problem: an output never computed, a float output of an int8 graph, ...
    #[error("{path}: {message}")]
    #[diagnostic(code(systole::onnx::graph))]
    Graph {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: String,
    },
    /// A graph input has a dimension that is not a fixed size.
    #[error("{path}: input `{input}` has dimension {axis} = {dim}, which is not a fixed size")]
    #[diagnostic(
        code(systole::onnx::shape),
        help("fix the input shape when exporting (static shapes), or with onnxruntime.tools.make_dynamic_shape_fixed")
    )]
    DynamicShape {
        /// The file.
        path: PathBuf,
        /// The input.
        input: String,
        /// The axis.
        axis: usize,
        /// The dimension as written (a symbol, or a non-positive size).
        dim: String,
    },
    /// An input has more than [`MAX_INPUT_ELEMENTS`] elements.
    #[error("{path}: input `{input}` of shape {shape:?} has more than {MAX_INPUT_ELEMENTS} elements")]
    #[diagnostic(code(systole::onnx::shape), help("export the model for a smaller input (a batch of 1, a smaller image)"))]
    InputTooLarge {
        /// The file.
        path: PathBuf,
        /// The input.
        input: String,
        /// Its shape.
        shape: Vec<usize>,
    },
}

/// A node and its operator, for errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOp {
    /// The node's name (or its first output when it has none).
    pub name: String,
    /// Its op type.
    pub op: String,
    /// Its domain (`""` for the default ONNX domain).
    pub domain: String,
    /// The opset of that domain the model imports (0 when it imports none).
    pub opset: i64,
}

impl std::fmt::Display for NodeOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is {} (domain `{}`, opset {})", self.name, self.op, self.domain, self.opset)
    }
}

/// A model read and checked by [`read`].
#[derive(Debug, Clone)]
pub struct OnnxModel {
    /// The decoded model; its `graph` is present.
    pub proto: ModelProto,
    /// The opset of the default domain.
    pub opset: i64,
    /// Each graph input that is not an initializer, with its fixed shape.
    pub inputs: Vec<(String, Vec<usize>)>,
}

impl OnnxModel {
    /// The model as ONNX file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.write_to_bytes().expect("a decoded or built model serializes")
    }
}

/// Reads and checks the ONNX model at `path`.
pub fn read(path: &Path) -> Result<OnnxModel, OnnxError> {
    let bytes = systole_core::input::read_bytes(path, systole_core::input::MAX_ONNX_BYTES, "an ONNX model")?;
    parse(path, &bytes)
}

/// Decodes and checks `bytes`, the model file `path`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<OnnxModel, OnnxError> {
    let mut proto = ModelProto::parse_from_bytes(bytes).map_err(|e| OnnxError::Decode { path: path.into(), reason: e.to_string() })?;
    if proto.graph.is_none() {
        return Err(OnnxError::NoGraph { path: path.into() });
    }
    let imports = proto.opset_import.clone();
    let opset_of =
        |domain: &str| -> i64 { imports.iter().find(|o| canonical_domain(&o.domain) == canonical_domain(domain)).map_or(0, |o| o.version) };
    let opset = opset_of("");
    if !OPSETS.contains(&opset) {
        return Err(OnnxError::Opset { path: path.into(), opset });
    }
    fold::fold_constants(&mut proto, opset, path)?;
    let graph = proto.graph.as_ref().expect("checked above");
    for node in &graph.node {
        check_node(path, node, opset_of(&node.domain))?;
    }
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let mut inputs = vec![];
    for input in graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())) {
        let dims = match input.type_.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.shape.as_ref().map(|s| s.dim.clone()).unwrap_or_default(),
            _ => vec![],
        };
        let mut shape = vec![];
        for (axis, d) in dims.iter().enumerate() {
            let size = match &d.value {
                Some(dimension::Value::DimValue(v)) if *v > 0 => Some(*v as usize),
                // A symbolic batch: one image at a time.
                Some(dimension::Value::DimParam(_)) if axis == 0 => Some(1),
                _ => None,
            };
            let Some(size) = size else {
                let dim = match &d.value {
                    Some(dimension::Value::DimValue(v)) => v.to_string(),
                    Some(dimension::Value::DimParam(p)) => format!("`{p}`"),
                    _ => "unknown".into(),
                };
                return Err(OnnxError::DynamicShape { path: path.into(), input: input.name.clone(), axis, dim });
            };
            shape.push(size);
        }
        if shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
            return Err(OnnxError::InputTooLarge { path: path.into(), input: input.name.clone(), shape });
        }
        inputs.push((input.name.clone(), shape));
    }
    Ok(OnnxModel { proto, opset, inputs })
}

/// `domain` with the default domain spelled `""` (ONNX also spells it `"ai.onnx"`).
pub(crate) fn canonical_domain(domain: &str) -> &str {
    if domain == "ai.onnx" {
        ""
    } else {
        domain
    }
}

/// True when `graph` has no quantization at all: no QuantizeLinear, DequantizeLinear or
/// QLinear operator (a float model).
pub(crate) fn is_float_graph(graph: &onnx_protobuf::GraphProto) -> bool {
    !graph.node.iter().any(|n| n.op_type.starts_with('Q') || n.op_type == "DequantizeLinear")
}

/// A node's name for messages: its name, or its first output when it has none.
pub fn node_name(n: &NodeProto) -> String {
    if n.name.is_empty() {
        n.output.first().cloned().unwrap_or_default()
    } else {
        n.name.clone()
    }
}

fn check_node(path: &Path, node: &NodeProto, opset: i64) -> Result<(), OnnxError> {
    let domain = canonical_domain(&node.domain);
    if let Some(op) = ops::find(domain, &node.op_type) {
        if opset >= op.since {
            return Ok(());
        }
        let name = node_name(node);
        let help = format!("{} exists from opset {} of its domain; re-export the model at opset 13 or later", node.op_type, op.since);
        let node = Box::new(NodeOp { name, op: node.op_type.clone(), domain: domain.into(), opset });
        return Err(OnnxError::Unsupported { path: path.into(), node, help });
    }
    let ops = ops::names(domain);
    let name = node_name(node);
    let help = if fold::FOLDED.contains(&node.op_type.as_str()) && domain.is_empty() {
        format!(
            "Systole folds {} only when its inputs are constants (for Shape: when its input's shape is known); here they are computed from the input",
            node.op_type
        )
    } else if ops.is_empty() {
        format!("Systole reads the default ONNX domain and com.microsoft, not `{domain}`")
    } else {
        format!("supported in this domain: {}", ops.join(", "))
    };
    let node = Box::new(NodeOp { name, op: node.op_type.clone(), domain: domain.into(), opset });
    Err(OnnxError::Unsupported { path: path.into(), node, help })
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{GraphProto, OperatorSetIdProto};

    fn node(name: &str, op: &str, domain: &str) -> NodeProto {
        let mut n = NodeProto::new();
        (n.name, n.op_type, n.domain) = (name.into(), op.into(), domain.into());
        n.input.push("x".into());
        n.output.push(format!("{name}_out"));
        n
    }

    /// A model of `nodes` with input `x` of `dims`, importing `opset` (and com.microsoft 1).
    fn model(nodes: Vec<NodeProto>, dims: &[dimension::Value], opset: i64) -> Vec<u8> {
        let mut g = GraphProto::new();
        g.name = "g".into();
        g.node = nodes;
        g.input.push(attrs::value_info("x", attrs::dtype::INT8, dims));
        let mut m = ModelProto::new();
        m.ir_version = 8;
        for (domain, version) in [("", opset), ("com.microsoft", 1)] {
            let mut o = OperatorSetIdProto::new();
            (o.domain, o.version) = (domain.into(), version);
            m.opset_import.push(o);
        }
        m.graph = Some(g).into();
        m.write_to_bytes().unwrap()
    }

    fn nchw() -> Vec<dimension::Value> {
        vec![
            dimension::Value::DimParam("batch".into()),
            dimension::Value::DimValue(3),
            dimension::Value::DimValue(8),
            dimension::Value::DimValue(8),
        ]
    }

    const FILE: &str = "models/m.onnx";

    #[test]
    fn a_quantized_model_reads_with_its_input_shape() {
        let bytes = model(vec![node("conv", "QLinearConv", ""), node("add", "QLinearAdd", "com.microsoft")], &nchw(), 13);
        let m = parse(Path::new(FILE), &bytes).unwrap();
        assert_eq!((m.opset, m.inputs.clone()), (13, vec![("x".to_string(), vec![1, 3, 8, 8])]));
        assert_eq!(m.proto.graph.node.len(), 2);
    }

    #[test]
    fn an_unsupported_operator_names_the_node_its_op_and_opset() {
        let bytes = model(vec![node("conv", "QLinearConv", ""), node("rnn", "LSTM", "")], &nchw(), 13);
        let e = parse(Path::new(FILE), &bytes).unwrap_err();
        assert_eq!(e.to_string(), "models/m.onnx: node `rnn` is LSTM (domain ``, opset 13), which Systole does not support");
        let bytes = model(vec![node("x", "Foo", "com.example")], &nchw(), 13);
        let e = parse(Path::new(FILE), &bytes).unwrap_err();
        assert!(matches!(&e, OnnxError::Unsupported { node, .. } if node.domain == "com.example" && node.opset == 0), "{e:?}");
    }

    #[test]
    fn bad_opsets_shapes_and_missing_graphs_are_named() {
        let e = parse(Path::new(FILE), &model(vec![], &nchw(), 6)).unwrap_err();
        assert!(matches!(e, OnnxError::Opset { opset: 6, .. }), "{e:?}");
        // Opset 9 reads, but the quantization operators exist from 10.
        let q = crate::attrs::node_proto("QuantizeLinear", "q", &["x", "s"], "y", vec![]);
        let e = parse(Path::new(FILE), &model(vec![q], &nchw(), 9)).unwrap_err();
        assert!(matches!(&e, OnnxError::Unsupported { node, help, .. } if node.opset == 9 && help.contains("from opset 10")), "{e:?}");
        let dims = [dimension::Value::DimValue(1), dimension::Value::DimParam("h".into())];
        let e = parse(Path::new(FILE), &model(vec![], &dims, 13)).unwrap_err();
        assert_eq!(e.to_string(), "models/m.onnx: input `x` has dimension 1 = `h`, which is not a fixed size");
        let e = parse(Path::new(FILE), &ModelProto::new().write_to_bytes().unwrap()).unwrap_err();
        assert!(matches!(e, OnnxError::NoGraph { .. }), "{e:?}");
        let e = read(Path::new("/nonexistent/m.onnx")).unwrap_err();
        assert_eq!(e.to_string(), "cannot read /nonexistent/m.onnx: No such file or directory (os error 2)");
    }

    #[test]
    fn truncated_and_foreign_files_are_decode_errors() {
        let bytes = model(vec![node("conv", "QLinearConv", "")], &nchw(), 13);
        let e = parse(Path::new(FILE), &bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(e, OnnxError::Decode { .. }), "{e:?}");
        let e = parse(Path::new(FILE), b"\x89PNG\r\n\x1a\n not a model").unwrap_err();
        assert!(matches!(e, OnnxError::Decode { .. }), "{e:?}");
    }
}
