//! The systolic arrays, rung by rung: reference products, rust-hdl's simulator and the
//! emitted Verilog under Icarus see the same per-cycle stimulus and must agree on every
//! output in every cycle. The Verilog also passes Verilator's lint and Yosys synthesis.

use systole_testbenches::array_cases::ArrayCase;
use systole_testbenches::tools::{scratch, verilator_lint, yosys_synth};

fn cases() -> Vec<ArrayCase> {
    vec![
        ArrayCase::weight_stationary(2, 2, &[3, 1, 2, 5], 1),
        ArrayCase::weight_stationary(4, 4, &[8, 4, 6, 1, 2, 9], 2),
        ArrayCase::weight_stationary(3, 5, &[5, 3, 1, 7], 3),
        ArrayCase::weight_stationary(5, 2, &[1, 1, 6, 5], 4),
        ArrayCase::weight_stationary(1, 1, &[2, 1, 3], 5),
        ArrayCase::weight_stationary(8, 8, &[16, 8, 3, 8], 6),
        // Each PE keeps only the bits its row's partial sums can have: the extremes reach
        // them (a column of twelve -128 * -128 is 196,608, 19 bits).
        ArrayCase::weight_stationary_extremes(12, 3, &[6, 4], 13),
        ArrayCase::weight_stationary_extremes(1, 2, &[3, 2], 14),
        ArrayCase::output_stationary(2, 2, &[3, 1, 2, 5], 7),
        ArrayCase::output_stationary(4, 4, &[8, 4, 6, 1, 2, 9], 8),
        ArrayCase::output_stationary(3, 5, &[5, 3, 1, 7], 9),
        ArrayCase::output_stationary(5, 2, &[1, 1, 6, 5], 10),
        ArrayCase::output_stationary(1, 1, &[2, 1, 3], 11),
        ArrayCase::output_stationary(8, 8, &[16, 8, 3, 8], 12),
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
        let dir = scratch(&format!("array-{i}"));
        let outs = case.run_verilog(&dir).unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = case.first_mismatch(&outs) {
            panic!("Icarus: {m}");
        }
    }
}

/// Warnings waived for the emitted arrays, each with its reason.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    ("UNUSEDSIGNAL", "the rightmost PEs' activation and flag outputs and the bottom PEs' weight outputs lead nowhere"),
];

#[test]
fn verilog_lints_and_synthesizes() {
    for (name, case) in [("ws", ArrayCase::weight_stationary(4, 4, &[], 0)), ("os", ArrayCase::output_stationary(4, 4, &[], 0))] {
        let rtl = case.verilog();
        let dir = scratch(&format!("array-lint-{name}"));
        verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{name}: {e}"));
        for family in ["ice40", "ecp5"] {
            let log = yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{name}: {e}"));
            let stats = log.rsplit("Printing statistics").next().unwrap_or("");
            assert!(log.contains("Printing statistics") && stats.contains(" cells"), "{name} {family}: no statistics in the log:\n{log}");
        }
    }
}
