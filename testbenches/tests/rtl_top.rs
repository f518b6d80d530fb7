//! The whole accelerator's Verilog: lint-clean under Verilator `-Wall` (with the waivers
//! below, each with its reason) and synthesizable by Yosys for iCE40 and ECP5 with the
//! scratchpads in block RAM.

use systole_core::{ArchConfig, Dataflow};
use systole_hdl::top::Accelerator;
use systole_hdl::verilog::emit;
use systole_testbenches::tools::{block_ram_cell, scratch, verilator_lint, yosys_stats, yosys_synth};

/// Warnings waived for the emitted accelerator, each with its reason.
pub const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    (
        "UNUSEDSIGNAL",
        "array-edge outputs, SRAM address bits above the depth, the clock of zero-length delay lines, \
         instruction bits a unit's ops do not use, and the other dataflow's exec inputs",
    ),
    ("WIDTH", "rust-hdl writes integer literals as 32-bit constants; each is a zero-extended constant in a compare or increment"),
    (
        "UNOPTFLAT",
        "rust-hdl puts a block's logic in one always @(*) that drives the OS engine's WordSeq enable and reads its issue output; \
         the signals themselves form no loop (enable depends only on the pad counter)",
    ),
];

fn small(dataflow: Dataflow) -> ArchConfig {
    ArchConfig { dataflow, param_entries: 64, act_sram_kib: 2, wgt_sram_kib: 2, acc_sram_kib: 2, ..ArchConfig::preset_4x4() }
}

/// `small(Both)` with every compression feature: four activation banks, 4-lane PEs with
/// packed int4 and int4 x int4, the CSC expander.
fn compression() -> ArchConfig {
    ArchConfig {
        sparsity: systole_core::Sparsity::OneOfFour,
        int4_weights: true,
        int4_activations: true,
        csc_weights: true,
        ..small(Dataflow::Both)
    }
}

#[test]
fn accelerator_lints() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        // The OS instance streams its instructions through queues of 8 (the fetcher).
        let queue = (df == Dataflow::OutputStationary).then_some(8);
        let rtl = emit(&mut Accelerator::new(&ArchConfig { instr_queue: queue, ..small(df) }, 16));
        let dir = scratch(&format!("top-{df}-lint"));
        verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{df}: {e}"));
    }
    let rtl = emit(&mut Accelerator::new(&compression(), 16));
    let dir = scratch("top-sparse-int4-lint");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("sparse int4: {e}"));
}

/// The compression features synthesize (about 4 minutes): `cargo test -p
/// systole-testbenches --test rtl_top -- --ignored`.
#[test]
#[ignore = "slow: Yosys synthesis of a 4x4 instance with sparse and int4 support"]
fn sparse_int4_accelerator_synthesizes() {
    let rtl = emit(&mut Accelerator::new(&compression(), 16));
    let dir = scratch("top-sparse-int4-synth");
    let log = yosys_synth(&dir, ("top.v", &rtl), "ice40").unwrap_or_else(|e| panic!("sparse int4: {e}"));
    let stats = log.rsplit("Printing statistics").next().unwrap_or("");
    assert!(log.contains("Printing statistics") && stats.contains(" cells"), "no statistics in the log:\n{log}");
}

/// The smallest useful configuration for synthesis: a 2x2 array, 1 KiB memories and 256
/// instructions per unit (enough that Yosys puts the instruction memories in block RAM).
fn tiny(dataflow: Dataflow) -> ArchConfig {
    ArchConfig {
        dataflow,
        rows: 2,
        cols: 2,
        param_entries: 32,
        act_sram_kib: 1,
        wgt_sram_kib: 1,
        acc_sram_kib: 1,
        dram_bytes_per_cycle: 2,
        dram_latency: 3,
        ..ArchConfig::preset_4x4()
    }
}

fn synthesizes(dataflow: Dataflow, family: &str) {
    let rtl = emit(&mut Accelerator::new(&tiny(dataflow), 256));
    let dir = scratch(&format!("top-{dataflow}-{family}-synth"));
    let stats = yosys_stats(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{dataflow} {family}: {e}"));
    assert!(stats.contains(block_ram_cell(family)), "{dataflow} {family}: memories not in block RAM:\n{stats}");
}

/// Yosys synthesizes the whole accelerator: OS for ECP5 here (about 3 minutes); WS for
/// ECP5 and iCE40 in `fpga/tests/accelerator.rs` (a bitstream and a fit error), and every
/// pair in the ignored test below.
#[test]
fn os_accelerator_synthesizes_for_ecp5() {
    synthesizes(Dataflow::OutputStationary, "ecp5");
}

#[test]
#[ignore = "slow: three more whole-accelerator syntheses"]
fn accelerator_synthesizes_other_pairs() {
    synthesizes(Dataflow::WeightStationary, "ice40");
    synthesizes(Dataflow::OutputStationary, "ice40");
    synthesizes(Dataflow::WeightStationary, "ecp5");
}

/// Every multiplication in the PEs' Verilog (and in the multipliers two WS PEs share) is
/// signed x signed (an unsigned operand would make Verilog multiply unsigned); the
/// co-simulation ladder checks the products' values.
#[test]
fn every_product_is_signed() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        let rtl = emit(&mut Accelerator::new(&small(df), 4));
        let mut module = "";
        let mut products = 0;
        // A product leaf writes its plain body twice: for PE products in logic, and as the
        // default; each product is counted once.
        let mut logic_branch = false;
        for line in rtl.lines() {
            if let Some(m) = line.strip_prefix("module ") {
                module = m.split('(').next().unwrap_or("");
            } else if line.trim_start().starts_with('`') {
                logic_branch = line.trim() == format!("`ifdef {}", systole_hdl::dsp::LOGIC_PE_DEFINE);
            } else if (module.contains("$pes$") || module.contains("$pairs$")) && line.contains(" * ") {
                let (lhs, rhs) = line.split_once(" * ").expect("a product");
                assert!(
                    lhs.trim_end().ends_with(')') && lhs.contains("$signed(") && rhs.trim_start().starts_with("$signed("),
                    "{df} {module}: {line}"
                );
                products += usize::from(!logic_branch);
            }
        }
        assert_eq!(products, 16, "{df}: every PE of the 4x4 array multiplies");
    }
}
