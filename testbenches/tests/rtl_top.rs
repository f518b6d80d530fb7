//! The whole accelerator's Verilog: lint-clean under Verilator `-Wall` (with the waivers
//! below, each with its reason) and synthesizable by Yosys for iCE40 and ECP5 with the
//! scratchpads in block RAM.

use systole_core::{ArchConfig, Dataflow};
use systole_hdl::top::Accelerator;
use systole_hdl::verilog::emit;
use systole_testbenches::tools::{scratch, verilator_lint, yosys_synth};

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

#[test]
fn accelerator_lints() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        let rtl = emit(&mut Accelerator::new(&small(df), 16));
        let dir = scratch(&format!("top-{df}-lint"));
        verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{df}: {e}"));
    }
}

#[test]
fn accelerator_synthesizes_with_block_ram() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        let rtl = emit(&mut Accelerator::new(&small(df), 16));
        let dir = scratch(&format!("top-{df}-synth"));
        for (family, bram) in [("ice40", "SB_RAM40_4K"), ("ecp5", "DP16KD")] {
            let log = yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{df} {family}: {e}"));
            let stats = log.rsplit("Printing statistics").next().unwrap_or("");
            assert!(stats.contains(bram), "{df} {family}: memories not in block RAM:\n{stats}");
            eprintln!(
                "{df} {family}:\n{}",
                stats
                    .lines()
                    .filter(|l| l.contains("SB_")
                        || l.contains("LUT4")
                        || l.contains("TRELLIS")
                        || l.contains("DP16KD")
                        || l.contains("MULT"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
