//! The weight-stationary array, rung by rung: reference products, rust-hdl's simulator and
//! the emitted Verilog under Icarus see the same stimulus and must agree on every output
//! in every cycle. The Verilog also passes Verilator's lint and Yosys synthesis.

use systole_testbenches::tools::{scratch, verilator_lint, yosys_synth};
use systole_testbenches::ws_array::ArrayCase;

fn cases() -> Vec<ArrayCase> {
    vec![
        ArrayCase::back_to_back(2, 2, &[3, 1, 2, 5], 1),
        ArrayCase::back_to_back(4, 4, &[8, 4, 6, 1, 2, 9], 2),
        ArrayCase::back_to_back(3, 5, &[5, 3, 1, 7], 3),
        ArrayCase::back_to_back(5, 2, &[1, 1, 6, 5], 4),
        ArrayCase::back_to_back(1, 1, &[2, 1, 3], 5),
        ArrayCase::back_to_back(8, 8, &[16, 8, 3, 8], 6),
    ]
}

#[test]
fn rust_hdl_matches_reference() {
    for case in cases() {
        if let Some(m) = case.first_mismatch(&case.run_rust_hdl()) {
            panic!("rust-hdl: {m}");
        }
    }
}

#[test]
fn verilog_matches_reference() {
    for (i, case) in cases().into_iter().enumerate() {
        let dir = scratch(&format!("ws-array-{i}"));
        let outs = case.run_verilog(&dir).unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = case.first_mismatch(&outs) {
            panic!("Icarus: {m}");
        }
    }
}

/// Warnings waived for the emitted array, each with its reason.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    ("UNUSEDSIGNAL", "the rightmost PEs' activation and flip outputs and the bottom PEs' weight-bus outputs lead nowhere"),
];

#[test]
fn verilog_lints_and_synthesizes() {
    let rtl = systole_hdl::verilog::emit(&mut systole_hdl::array::WsArray::new(4, 4));
    let dir = scratch("ws-array-lint");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{e}"));
    for family in ["ice40", "ecp5"] {
        let log = yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{e}"));
        assert!(log.contains("Number of cells"), "{family}: no statistics in the log:\n{log}");
    }
}
