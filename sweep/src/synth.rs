//! FPGA area from real builds (`systole sweep --synth BOARD`): each valid point's
//! accelerator is built by a [`Synthesizer`] that the caller supplies (the CLI's runs
//! `systole-fpga`'s Yosys/nextpnr flow), and the record gets the resource use and clock, or
//! why it does not fit. The sweep itself needs no hardware toolchain.

use serde::{Deserialize, Serialize};
use systole_core::ArchConfig;

/// Builds one point's accelerator for a board and reports what it used.
pub trait Synthesizer: Sync {
    /// The build of point `id`, whose architecture is `arch` (valid); a failed or
    /// overflowing build is a record with `fits = false` and its `error`.
    fn synthesize(&self, arch: &ArchConfig, id: u64) -> FpgaRecord;
}

/// Used and available cells of one kind.
pub type Cells = (u32, u32);

/// One point's FPGA build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FpgaRecord {
    /// Board name.
    pub board: String,
    /// The design placed and routed on the device.
    pub fits: bool,
    /// Why it did not (a resource overflow names the cell type), or why the flow failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Logic cells or LUT4s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub luts: Option<Cells>,
    /// Flip-flops, where nextpnr counts them apart from the logic cells (ECP5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffs: Option<Cells>,
    /// Block RAMs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brams: Option<Cells>,
    /// Single-port RAMs (the UP5K's SPRAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sprams: Option<Cells>,
    /// Multipliers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsps: Option<Cells>,
    /// The accelerator clock's achieved maximum frequency, MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fmax_mhz: Option<f64>,
    /// Its target, MHz.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_mhz: Option<f64>,
    /// Every clock met its target.
    #[serde(default)]
    pub timing_met: bool,
    /// Peak throughput at the core clock the board's PLL makes, GOPS (two operations per
    /// MAC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_gops: Option<f64>,
}

impl FpgaRecord {
    /// A record of a build on `board` that has not succeeded (yet).
    pub fn unbuilt(board: &str) -> Self {
        FpgaRecord {
            board: board.to_string(),
            fits: false,
            error: None,
            luts: None,
            ffs: None,
            brams: None,
            sprams: None,
            dsps: None,
            fmax_mhz: None,
            target_mhz: None,
            timing_met: false,
            peak_gops: None,
        }
    }
}
