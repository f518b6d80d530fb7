//! The exec engines (WS and OS): random matmul sequences (full and band weights,
//! accumulation, two-level word sequences) issued back to back, in rust-hdl's simulator
//! and as Verilog under Icarus. The accumulator must hold what the ISA's semantics give,
//! and every instruction must complete in exactly the cycle of the timing model
//! (docs/ARCHITECTURE.md section 5).

use systole_core::Dataflow;
use systole_testbenches::exec_cases::{engine_verilog, ExecCase};
use systole_testbenches::tools::{block_ram_cell, scratch, verilator_lint, yosys_stats};

const SIZES: [(usize, usize); 7] = [(1, 1), (2, 3), (3, 2), (4, 4), (5, 3), (8, 8), (2, 7)];

fn cases(dataflow: Dataflow) -> Vec<ExecCase> {
    SIZES.iter().enumerate().map(|(i, &(r, c))| ExecCase::random(dataflow, r, c, 40, i as u64 + 1)).collect()
}

fn check(case: &ExecCase, outs: &[Vec<i64>], t0: usize, want_done: &[u64], backend: &str) {
    let (acc, done) = ExecCase::observed(outs, t0);
    let (r, c, df) = (case.arch.rows, case.arch.cols, case.arch.dataflow);
    assert_eq!(acc, case.reference(), "{backend} {df} {r}x{c}: accumulator");
    assert_eq!(done, want_done, "{backend} {df} {r}x{c}: completion cycles");
}

#[test]
fn rust_hdl_matches_semantics_and_timing() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        for case in cases(df) {
            let (stim, t0, want) = case.stimulus();
            check(&case, &case.run_rust_hdl(&stim), t0, &want, "rust-hdl");
        }
    }
}

#[test]
fn verilog_matches_semantics_and_timing() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        for case in cases(df).into_iter().take(5) {
            let (stim, t0, want) = case.stimulus();
            let dir = scratch(&format!("exec-{df}-{}x{}", case.arch.rows, case.arch.cols));
            let outs = case.run_verilog(&dir, &stim).unwrap_or_else(|e| panic!("{e}"));
            check(&case, &outs, t0, &want, "Icarus");
        }
    }
}

/// Warnings waived for the emitted engines, each with its reason.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    ("UNUSEDSIGNAL", "array-edge outputs, SRAM address bits above the depth, and the clock of zero-length delay lines"),
    ("WIDTH", "rust-hdl writes integer literals as 32-bit constants; each is a zero-extended constant in a compare or increment"),
    (
        "UNOPTFLAT",
        "rust-hdl puts a block's logic in one always @(*) that drives the OS engine's WordSeq enable and reads its issue output; \
         the signals themselves form no loop (enable depends only on the pad counter)",
    ),
];

/// Both engines pass Verilator's lint; Yosys puts their scratchpads in block RAM, the WS
/// engine's on iCE40 and the OS engine's on ECP5 here (each engine and each family once),
/// the other two pairs in the ignored test below.
#[test]
fn verilog_lints_and_synthesizes() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        let dir = scratch(&format!("exec-{df}-lint"));
        verilator_lint(&dir, ("top.v", &engine_verilog(df, 4, 4, [512, 512, 128])), WAIVERS).unwrap_or_else(|e| panic!("{df}: {e}"));
    }
    scratchpads_in_block_ram(Dataflow::WeightStationary, "ice40");
    scratchpads_in_block_ram(Dataflow::OutputStationary, "ecp5");
}

#[test]
#[ignore = "slow: two more engine syntheses"]
fn the_other_engine_family_pairs_keep_their_scratchpads_in_block_ram() {
    scratchpads_in_block_ram(Dataflow::WeightStationary, "ecp5");
    scratchpads_in_block_ram(Dataflow::OutputStationary, "ice40");
}

fn scratchpads_in_block_ram(df: Dataflow, family: &str) {
    let rtl = engine_verilog(df, 4, 4, [512, 512, 128]);
    let dir = scratch(&format!("exec-{df}-{family}-synth"));
    let stats = yosys_stats(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{df} {family}: {e}"));
    assert!(stats.contains(block_ram_cell(family)), "{df} {family}: scratchpads not in block RAM:\n{stats}");
}

/// The vector unit's engine is Verilog that Verilator accepts, and its per-lane tables are
/// block RAM on both families (the unit's cycles and rows are checked in rust-hdl against
/// the ISA, `systole_hdl::vector`'s tests).
#[test]
fn the_vector_engine_lints_and_keeps_its_tables_in_block_ram() {
    let rtl = systole_hdl::verilog::emit(&mut systole_hdl::vector::VectorEngine::new(4, 4, 2, 5));
    let dir = scratch("vector-synth");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{e}"));
    for family in ["ice40", "ecp5"] {
        let stats = yosys_stats(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
        assert!(stats.contains(block_ram_cell(family)), "{family}: tables not in block RAM:\n{stats}");
    }
}
