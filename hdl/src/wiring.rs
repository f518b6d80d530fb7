//! Nets between sub-blocks written once and used three ways: to propagate values in
//! rust-hdl's simulator, to claim the driven signals, and to emit Verilog assignments.
//!
//! rust-hdl's `hdl_gen` cannot index two levels of sub-blocks (`pes[k][j]`), which a
//! two-dimensional mesh needs, so the arrays list their nets with [`crate::net!`] instead.

use rust_hdl::core::ast::{VerilogExpression, VerilogStatement};
use rust_hdl::prelude::*;

/// What a block's wiring function does with each net.
pub enum Mode<'a> {
    /// Propagate values (simulation).
    Update,
    /// Claim the driven signals.
    Connect,
    /// Record Verilog assignments.
    Emit(&'a mut Vec<VerilogStatement>),
}

/// One net `$dst <= $src`, named `$dn` and `$sn` in the block's Verilog module.
#[macro_export]
macro_rules! net {
    ($mode:expr, $dst:expr, $dn:expr, $src:expr, $sn:expr) => {
        match $mode {
            $crate::wiring::Mode::Update => $dst.next = $src.val(),
            $crate::wiring::Mode::Connect => $dst.connect(),
            $crate::wiring::Mode::Emit(block) => block.push($crate::wiring::assign($dn, $sn)),
        }
    };
}

/// Where field `field` of a bundle of type `T` lies: its offset and width in bits (a
/// bundle's fields lie from bit 0 up, in declaration order).
pub fn field_bits<T: Synth>(field: &str) -> (usize, usize) {
    fn width(d: &TypeDescriptor) -> usize {
        match &d.kind {
            TypeKind::Bits(n) | TypeKind::Signed(n) => *n,
            TypeKind::Composite(fields) => fields.iter().map(|f| width(&f.kind)).sum(),
            TypeKind::Enum(names) => crate::sram::index_bits(names.len()),
        }
    }
    let d = T::descriptor();
    let TypeKind::Composite(fields) = &d.kind else { panic!("{} is not a bundle", d.name) };
    let mut offset = 0;
    for f in fields {
        let w = width(&f.kind);
        if f.fieldname == field {
            return (offset, w);
        }
        offset += w;
    }
    panic!("{} has no field `{field}`", d.name)
}

/// The offset of a field, as the literal of a part-select.
fn offset_literal(offset: usize) -> Box<VerilogExpression> {
    Box::new(VerilogExpression::Literal(Bits::<64>::from(offset as u64).verilog()))
}

/// The Verilog assignment `dst = src.field`, `src` a bundle of type `T`.
pub fn assign_from_field<T: Synth>(dst: String, src: &str, field: &str) -> VerilogStatement {
    let (offset, width) = field_bits::<T>(field);
    let slice = VerilogExpression::Slice(Box::new(VerilogExpression::Signal(src.into())), width, offset_literal(offset));
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), slice)
}

/// The Verilog assignment `dst.field = src`, `dst` a bundle of type `T`.
pub fn assign_to_field<T: Synth>(dst: &str, field: &str, src: String) -> VerilogStatement {
    assign_expression_to_field::<T>(dst, field, VerilogExpression::Signal(src))
}

/// The Verilog assignment `dst.field = expression`, `dst` a bundle of type `T`.
pub fn assign_expression_to_field<T: Synth>(dst: &str, field: &str, expression: VerilogExpression) -> VerilogStatement {
    let (offset, width) = field_bits::<T>(field);
    VerilogStatement::SliceAssignment {
        base: VerilogExpression::Signal(dst.into()),
        width,
        offset: *offset_literal(offset),
        replacement: expression,
    }
}

/// The Verilog expression `a op b` of two signals.
pub fn binary(a: &str, op: rust_hdl::core::ast::VerilogOp, b: &str) -> VerilogExpression {
    VerilogExpression::Binary(Box::new(VerilogExpression::Signal(a.into())), op, Box::new(VerilogExpression::Signal(b.into())))
}

/// The Verilog assignment `dst = src`.
pub fn assign(dst: String, src: String) -> VerilogStatement {
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), VerilogExpression::Signal(src))
}

/// The Verilog assignment of a 32-bit zero to `dst`.
pub fn assign_zero(dst: String) -> VerilogStatement {
    assign_literal(dst, Signed::<32>::from(0i64))
}

/// The Verilog assignment of an 8-bit zero to `dst`.
pub fn assign_zero_byte(dst: String) -> VerilogStatement {
    assign_literal(dst, Signed::<8>::from(0i64))
}

/// The Verilog assignment of `value`, a literal of its own width, to `dst`.
pub fn assign_literal<T: Synth>(dst: String, value: T) -> VerilogStatement {
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), VerilogExpression::Literal(value.verilog()))
}

/// `n` default signals (or sub-blocks): a block's per-lane ports and locals.
pub fn signals<T: Default>(n: usize) -> Vec<T> {
    (0..n).map(|_| T::default()).collect()
}

/// One `N`-bit constant per value: the per-lane numbers (lane, row, bit position) a kernel
/// compares with, since a loop variable cannot enter its arithmetic.
pub fn constants<const N: usize>(values: impl IntoIterator<Item = u64>) -> Vec<Constant<Bits<N>>> {
    values.into_iter().map(|v| Constant::new(v.into())).collect()
}

/// A block of wires: output `k` is input `from[k]`, or zero where `from[k]` is `None`. The
/// choice is made at construction, so a kernel can take a run-time-chosen lane of a vector
/// without a comparison per lane (which `hdl_gen` would unroll).
#[derive(LogicBlock)]
pub struct Router<T: Synth> {
    /// The inputs.
    pub inputs: Vec<Signal<In, T>>,
    /// The outputs.
    pub outputs: Vec<Signal<Out, T>>,
    _from: Vec<Option<usize>>,
}

impl<T: Synth> Router<T> {
    /// Output `k` of `inputs` inputs is input `from[k]` (zero for `None`).
    pub fn new(inputs: usize, from: Vec<Option<usize>>) -> Self {
        assert!(from.iter().flatten().all(|&i| i < inputs), "a route from beyond {inputs} inputs");
        Self { inputs: signals(inputs), outputs: signals(from.len()), _from: from }
    }
}

impl<T: Synth> Logic for Router<T> {
    fn update(&mut self) {
        for (k, from) in self._from.iter().enumerate() {
            self.outputs[k].next = from.map_or_else(T::default, |i| self.inputs[i].val());
        }
    }

    fn connect(&mut self) {
        for o in &mut self.outputs {
            o.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        Verilog::Combinatorial(
            self._from
                .iter()
                .enumerate()
                .map(|(k, from)| match from {
                    Some(i) => assign(format!("outputs${k}"), format!("inputs${i}")),
                    None => VerilogStatement::Assignment(
                        VerilogExpression::Signal(format!("outputs${k}")),
                        VerilogExpression::Literal(T::default().verilog()),
                    ),
                })
                .collect(),
        )
    }
}
