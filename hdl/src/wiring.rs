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

/// The Verilog assignment `dst = src`.
pub fn assign(dst: String, src: String) -> VerilogStatement {
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), VerilogExpression::Signal(src))
}

/// The Verilog assignment of a 32-bit zero to `dst`.
pub fn assign_zero(dst: String) -> VerilogStatement {
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), VerilogExpression::Literal(Signed::<32>::from(0i64).verilog()))
}

/// The Verilog assignment of an 8-bit zero to `dst`.
pub fn assign_zero_byte(dst: String) -> VerilogStatement {
    VerilogStatement::Assignment(VerilogExpression::Signal(dst), VerilogExpression::Literal(Signed::<8>::from(0i64).verilog()))
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
