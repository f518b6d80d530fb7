//! Verilog emission and cycle stepping of rust-hdl blocks.

use rust_hdl::prelude::*;

/// The Verilog of `block` and its sub-blocks, top module named `top`.
pub fn emit<B: Block>(block: &mut B) -> String {
    block.connect_all();
    generate_verilog(block)
}

/// Settles combinational logic after inputs change; false if it does not converge.
pub fn settle<B: Block>(block: &mut B) -> bool {
    simulate(block, 1000)
}

/// One clock cycle: a rising edge (registers take their inputs), then the falling edge.
pub fn clock_cycle<B: Block>(block: &mut B, clock: impl Fn(&mut B) -> &mut Signal<In, Clock>) {
    clock(block).next = Clock { clk: true };
    assert!(settle(block), "logic does not settle after the rising edge");
    clock(block).next = Clock { clk: false };
    assert!(settle(block), "logic does not settle after the falling edge");
}
