//! FPGA area from real builds (`systole sweep --synth BOARD`): each valid point's
//! accelerator is synthesized, placed and routed for the board with `systole-fpga`'s flow,
//! and the record gets nextpnr's resource use and clock, or why it does not fit.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use systole_core::ArchConfig;
use systole_fpga::bitstream::{self, BuildOptions};
use systole_fpga::Board;

/// What to build each point for.
#[derive(Debug, Clone)]
pub struct Synth {
    /// The board.
    pub board: Board,
    /// Instruction depth, board memory, clock divider.
    pub opts: BuildOptions,
    /// Build folders go under here, one per point (`<dir>/<id>`).
    pub dir: PathBuf,
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

/// Builds point `id`'s accelerator.
pub fn synthesize(s: &Synth, arch: &ArchConfig, id: u64) -> FpgaRecord {
    let out = s.dir.join(id.to_string());
    let mut record = FpgaRecord {
        board: s.board.name.to_string(),
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
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        record.error = Some(format!("{}: {e}", out.display()));
        return record;
    }
    match bitstream::build(&s.board, arch, &s.opts, &out, &mut |_, _| {}) {
        Ok(r) => {
            let slowest = r.pnr.clocks.iter().min_by(|a, b| (a.fmax_mhz / a.target_mhz).total_cmp(&(b.fmax_mhz / b.target_mhz)));
            record.fits = true;
            let cells = |u: &systole_fpga::report::Use| (u.used, u.total);
            record.luts = Some(cells(&r.pnr.luts));
            record.ffs = r.pnr.ffs.as_ref().map(cells);
            record.brams = Some(cells(&r.pnr.brams));
            record.sprams = r.pnr.sprams.as_ref().map(cells);
            record.dsps = Some(cells(&r.pnr.dsps));
            record.fmax_mhz = slowest.map(|c| c.fmax_mhz);
            record.target_mhz = slowest.map(|c| c.target_mhz);
            record.timing_met = r.timing_met;
            record.peak_gops = Some(r.peak_gops);
        }
        // A sweep record keeps nextpnr's verdict, not the per-block table the CLI prints.
        Err(bitstream::BuildError::DoesNotFit { source, .. }) => record.error = Some(source.to_string()),
        Err(e) => record.error = Some(e.to_string()),
    }
    record
}
