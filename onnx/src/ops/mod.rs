//! The operators Systole reads, registered per family, one file each (after tract's
//! `onnx/src/ops/`): each family lists its operators with their domain, their translation
//! into the [`Network`](systole_core::network::Network) of a pre-quantized model, and,
//! where float models may use them, their float semantics for the interpreter that
//! calibrates post-training quantization. Adding an operator is one entry in one family.
//!
//! | family | operators |
//! |---|---|
//! | [`conv`] | Conv, QLinearConv |
//! | [`gemm`] | Gemm, MatMul, QLinearMatMul, QGemm |
//! | [`quant`] | QuantizeLinear, DequantizeLinear |
//! | [`elementwise`] | Add, Sub, Mul, Div, Sum, QLinearAdd, QLinearMul, Relu, Clip, BatchNormalization |
//! | [`pool`] | MaxPool, AveragePool, GlobalAveragePool, QLinearAveragePool, QLinearGlobalAveragePool |
//! | [`layout`] | Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Pad, Slice, Split, Resize, Upsample, Concat, QLinearConcat, Identity |
//! | [`activation`] | Sigmoid, HardSigmoid, HardSwish, LeakyRelu, QLinearSigmoid, QLinearLeakyRelu |
//! | [`normalize`] | Softmax, QLinearSoftmax, LRN |

use crate::attrs::Const;
use crate::float::FTensor;
use crate::import::{Fail, Importer};
use crate::NodeFault;
use onnx_protobuf::NodeProto;
use std::collections::HashMap;

pub(crate) mod activation;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod gemm;
pub(crate) mod layout;
pub(crate) mod normalize;
pub(crate) mod pool;
pub(crate) mod quant;

/// The ONNX domain of Microsoft's contributed operators (ONNX Runtime's QOperator forms).
pub(crate) const MICROSOFT: &str = "com.microsoft";

/// One operator: where it is defined and what Systole does with it.
pub(crate) struct OpDef {
    /// `""` for the default ONNX domain, else e.g. [`MICROSOFT`].
    pub domain: &'static str,
    /// The `op_type`.
    pub name: &'static str,
    /// The first opset of its domain in which it has the form imported here (10 for the
    /// quantization operators; 7, the oldest default-domain opset read, for the others).
    pub since: i64,
    /// Its translation into the network being imported.
    pub import: Translate,
    /// Its float semantics, for operators of float models.
    pub eval: Option<Evaluate>,
}

/// An operator's translation of one node into the network being imported.
pub(crate) type Translate = fn(&mut Importer, &NodeProto) -> Result<(), Fail>;

/// An operator's float semantics: the output of one node from its inputs.
pub(crate) type Evaluate = fn(&Eval) -> Result<FTensor, NodeFault>;

/// Every family's operators.
const FAMILIES: &[&[OpDef]] =
    &[conv::OPS, gemm::OPS, quant::OPS, elementwise::OPS, activation::OPS, normalize::OPS, pool::OPS, layout::OPS];

/// The operator `op_type` of `domain` (`""` and `"ai.onnx"` both name the default domain).
pub(crate) fn find(domain: &str, op_type: &str) -> Option<&'static OpDef> {
    let domain = crate::canonical_domain(domain);
    FAMILIES.iter().flat_map(|f| f.iter()).find(|op| op.domain == domain && op.name == op_type)
}

/// The operators of `domain`, sorted by name.
pub(crate) fn names(domain: &str) -> Vec<&'static str> {
    let mut names: Vec<&str> = FAMILIES.iter().flat_map(|f| f.iter()).filter(|op| op.domain == domain).map(|op| op.name).collect();
    names.sort_unstable();
    names
}

/// The domains that have operators, the default domain (`""`) first.
pub(crate) fn domains() -> Vec<&'static str> {
    let mut domains: Vec<&str> = FAMILIES.iter().flat_map(|f| f.iter()).map(|op| op.domain).collect();
    domains.sort_unstable();
    domains.dedup();
    domains
}

/// Input `i` of `n`, if it is given (an empty name is an omitted optional input).
pub(crate) fn input(n: &NodeProto, i: usize) -> Option<&String> {
    n.input.get(i).filter(|s| !s.is_empty())
}

/// Input `i` of `n`, which the operator needs.
pub(crate) fn need(n: &NodeProto, i: usize) -> Result<String, Fail> {
    input(n, i).cloned().ok_or_else(|| Fail::from(format!("input {i} is missing")))
}

/// The name of `n`'s output.
pub(crate) fn output(n: &NodeProto) -> String {
    n.output.first().cloned().unwrap_or_default()
}

/// A node of a float model being evaluated: its proto, the model's opset and constants, and
/// its inputs' values.
pub(crate) struct Eval<'a> {
    /// The node.
    pub n: &'a NodeProto,
    /// The default domain's opset.
    pub opset: i64,
    /// Initializers (with the folded constants) by name.
    pub consts: &'a HashMap<String, Const>,
    /// Input `i`'s value.
    pub input: &'a dyn Fn(usize) -> Result<FTensor, NodeFault>,
    /// The output computed (Split's part; 0 for single-output operators).
    pub output: usize,
}

impl Eval<'_> {
    /// Input `i`'s value, or an error naming the missing input.
    pub fn get(&self, i: usize) -> Result<FTensor, NodeFault> {
        (self.input)(i)
    }

    /// Whether optional input `i` is given.
    pub fn has(&self, i: usize) -> bool {
        input(self.n, i).is_some()
    }

    /// Input `i` as a constant, if it is given and constant (for `crate::picks`).
    pub fn constant(&self, i: usize) -> Option<Const> {
        input(self.n, i).and_then(|name| self.consts.get(name)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn each_operator_is_registered_once() {
        let mut seen = BTreeSet::new();
        for op in FAMILIES.iter().flat_map(|f| f.iter()) {
            assert!(seen.insert((op.domain, op.name)), "{} `{}` is registered twice", op.domain, op.name);
        }
        assert_eq!(domains(), ["", MICROSOFT]);
    }

    #[test]
    fn the_float_operators_are_those_docs_onnx_lists() {
        let doc = include_str!("../../../docs/ONNX.md");
        let row = doc.lines().find(|l| l.starts_with("| float (quantized by Systole) |")).expect("docs/ONNX.md has the float row");
        let listed: BTreeSet<&str> =
            row.split('|').nth(2).unwrap().split(',').map(|s| s.split_whitespace().next().unwrap_or_default()).collect();
        let evaluated: BTreeSet<&str> = FAMILIES.iter().flat_map(|f| f.iter()).filter(|op| op.eval.is_some()).map(|op| op.name).collect();
        assert_eq!(listed, evaluated);
    }
}
