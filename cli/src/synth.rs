//! `systole sweep --synth BOARD`: the sweep's [`Synthesizer`] backed by `systole-fpga`'s
//! Yosys/nextpnr flow, one build folder per point.

use std::path::PathBuf;
use systole_core::ArchConfig;
use systole_fpga::bitstream::{self, BuildOptions};
use systole_fpga::Board;
use systole_sweep::synth::{FpgaRecord, Synthesizer};

/// What to build each point for.
#[derive(Debug, Clone)]
pub struct BoardSynth {
    /// The board.
    pub board: Board,
    /// Instruction depth, board memory, clock divider.
    pub opts: BuildOptions,
    /// Build folders go under here, one per point (`<dir>/<id>`).
    pub dir: PathBuf,
}

impl Synthesizer for BoardSynth {
    fn synthesize(&self, arch: &ArchConfig, id: u64) -> FpgaRecord {
        let out = self.dir.join(id.to_string());
        let mut record = FpgaRecord::unbuilt(self.board.name);
        if let Err(e) = std::fs::create_dir_all(&out) {
            record.error = Some(format!("{}: {e}", out.display()));
            return record;
        }
        match bitstream::build(&self.board, arch, &self.opts, &out, &mut |_, _| {}) {
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
}
