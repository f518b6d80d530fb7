//! `systole fpga build`: an ArchConfig's accelerator on a board, from Verilog to bitstream,
//! with a typed report of what it used and how fast it runs.

use crate::blocks::{cells_by_block, table, BlockCells};
use crate::board::{Board, Family, PeProducts};
use crate::clock::{plan, CoreClock};
use crate::report::{PnrReport, Use};
use crate::tools::{self, FlowError};
use crate::top::{top_name, top_verilog, CORE};
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use systole_core::bridge::fingerprint;
use systole_core::{ArchConfig, Dataflow};
use systole_hdl::board::{BoardCore, DramBoardCore};
use systole_hdl::board_ram::{spram_count, BoardMemory};
use systole_hdl::verilog::{emit, rename_top};

/// The board-specific choices of a build.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BuildOptions {
    /// Instructions each unit's memory holds.
    pub instr_depth: usize,
    /// What the board memory is made of.
    pub memory: BoardMemory,
    /// Bytes of board memory (block RAM, or the UP5K's SPRAM) that stand in for DRAM; a
    /// power of two.
    pub memory_bytes: usize,
    /// UART baud rate; None: the fastest of the standard rates up to the board's
    /// [`Board::max_baud`] that the core clock makes within 2% ([`uart_rate`]).
    pub baud: Option<u32>,
    /// The core clock's target, MHz, instead of the ArchConfig's `clock_mhz`; the board's
    /// PLL makes the fastest clock at or below it ([`crate::clock::plan`]).
    pub clock_mhz: Option<f64>,
    /// Where the PEs' multipliers go.
    pub pe_products: PeProducts,
    /// nextpnr's placement seed ([`tools::NEXTPNR_SEED`] unless asked): one value, so that a
    /// build's Fmax is reproducible; another seed is another placement of the same netlist.
    pub seed: u32,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            instr_depth: 64,
            memory: BoardMemory::BlockRam,
            memory_bytes: 16 * 1024,
            baud: None,
            clock_mhz: None,
            pe_products: PeProducts::Dsp,
            seed: tools::NEXTPNR_SEED,
        }
    }
}

impl BuildOptions {
    /// The defaults on `board`: its instruction depth, board memory and PE multipliers,
    /// 115200 baud, the ArchConfig's clock.
    pub fn for_board(board: &Board) -> Self {
        Self {
            instr_depth: board.default_instr_depth,
            memory: board.memory,
            memory_bytes: board.default_memory_kib * 1024,
            pe_products: board.default_pe_products,
            ..Self::default()
        }
    }
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The options or the ArchConfig cannot be built for a board.
    #[error("{0}")]
    Options(String),
    /// A tool failed or is missing.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The design does not fit the device: nextpnr's verdict and, where the netlist could
    /// be read, where its logic goes, so that the user sees which block to shrink.
    #[error("{source}{}", blocks.as_deref().map(|t| format!("\nwhere the logic goes (synthesized cells of blocks with at least {}% of the LUTs):\n{t}", MIN_BLOCK_SHARE * 100.0)).unwrap_or_default())]
    DoesNotFit {
        /// nextpnr's verdict ([`FlowError::DoesNotFit`]).
        source: FlowError,
        /// The per-block table of the synthesized netlist, if it could be read.
        blocks: Option<String>,
    },
    /// nextpnr's log has no utilisation table to report.
    #[error("nextpnr's log {0} has no `Device utilisation` table; the report cannot be made")]
    NoReport(PathBuf),
    /// Yosys's netlist could not be read for the per-block breakdown.
    #[error("cannot read the synthesized netlist {path}: {reason}")]
    Netlist {
        /// The netlist file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A report file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What `systole fpga build` produced: `report.json` is this, `report.txt` its
/// [`BuildReport::text`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BuildReport {
    /// Board name.
    pub board: String,
    /// FPGA family.
    pub family: Family,
    /// The ArchConfig's name.
    pub arch: String,
    /// Its fingerprint, which the board reports to the host.
    pub fingerprint: u32,
    /// PE rows and columns.
    pub array: (usize, usize),
    /// Dataflow.
    pub dataflow: Dataflow,
    /// Instruction memory depth, board memory and baud rate.
    pub options: BuildOptions,
    /// The accelerator's clock, MHz.
    pub core_mhz: f64,
    /// Where it comes from (the PLL's setting).
    pub clock: CoreClock,
    /// UART clocks per bit at that clock.
    pub clocks_per_bit: usize,
    /// Resource use and timing from nextpnr.
    pub pnr: PnrReport,
    /// The accelerator's clock meets its target.
    pub timing_met: bool,
    /// Peak throughput at the core clock: two operations per MAC, one MAC per PE per cycle.
    pub peak_gops: f64,
    /// Where the logic goes: the synthesized netlist's cells per block of the hierarchy
    /// (before nextpnr packs LUTs, carries and flip-flops into its cells).
    pub blocks: Vec<BlockCells>,
    /// The bitstream.
    pub bitstream: PathBuf,
}

/// The core clock for `arch` on `board`: the target is `opts.clock_mhz`, else the
/// ArchConfig's `clock_mhz`.
pub fn core_clock(board: &Board, arch: &ArchConfig, opts: &BuildOptions) -> Result<CoreClock, BuildError> {
    let (target, from) = match opts.clock_mhz {
        Some(mhz) => (mhz, format!("--clock-mhz {mhz}")),
        None => (arch.clock_mhz, format!("arch `{}`: clock_mhz = {}", arch.name, arch.clock_mhz)),
    };
    plan(board, target).map_err(|e| BuildError::Options(format!("{from}: {e}; set clock_mhz in the arch file or pass --clock-mhz")))
}

/// A frequency in MHz for people: at most three decimals, no trailing zeros (a PLL's
/// 25 x 16 / 7 MHz is `57.143`).
fn mhz(f: f64) -> String {
    let t = format!("{f:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The smallest share of the design's LUTs that a block needs to get a row of its own in
/// the report's breakdown.
const MIN_BLOCK_SHARE: f64 = 0.03;

/// Largest baud-rate error an 8N1 UART tolerates with margin.
const MAX_BAUD_ERROR: f64 = 0.02;

/// Checks `arch` and `opts` against what a board core can be; returns the core clock and
/// the UART's clocks per bit at it.
pub fn check(board: &Board, arch: &ArchConfig, opts: &BuildOptions) -> Result<(CoreClock, usize), BuildError> {
    arch.validate().map_err(|e| BuildError::Options(format!("arch `{}`: {e}", arch.name)))?;
    if let Some(q) = arch.instr_queue {
        return Err(BuildError::Options(format!(
            "arch `{}`: instr_queue = {q}, but the board memory has no port for the instruction fetcher yet; \
             leave instr_queue out (the instruction memories then hold each program, --instr-depth instructions per unit)",
            arch.name
        )));
    }
    if arch.vector_lanes > 0 {
        return Err(BuildError::Options(format!(
            "arch `{}`: vector_lanes = {}, but the board designs do not include the vector unit yet (its tables take a block RAM \
             of 512 x 32 bits per lane, which no board preset budgets); use vector_lanes = 0 (Add, pooling and Concat then run on the host)",
            arch.name, arch.vector_lanes
        )));
    }
    let lanes = arch.dram_bytes_per_cycle;
    if !lanes.is_power_of_two() {
        return Err(BuildError::Options(format!(
            "arch `{}`: dram_bytes_per_cycle = {lanes}, but the board memory is banked one byte per lane and needs a power of two; use {} or {}",
            arch.name,
            lanes.next_power_of_two() / 2,
            lanes.next_power_of_two()
        )));
    }
    let m = opts.memory_bytes;
    if opts.memory == BoardMemory::Spram {
        if board.resources.sprams == 0 {
            return Err(BuildError::Options(format!(
                "--memory spram: the {} has no single-port RAMs (SPRAM is the iCE40 UP5K's); use --memory block-ram",
                board.name
            )));
        }
        if !arch.dram_single_port {
            return Err(BuildError::Options(format!(
                "arch `{}`: the {} board memory is single-port SPRAM, but the arch has separate DRAM read and write ports; set dram_single_port = true (its programs then never read and write in one cycle)",
                arch.name, board.name
            )));
        }
        if lanes != 1 {
            return Err(BuildError::Options(format!(
                "arch `{}`: dram_bytes_per_cycle = {lanes}, but the {} SPRAM board memory serves one byte per cycle; use dram_bytes_per_cycle = 1",
                arch.name, board.name
            )));
        }
        if spram_count(m).is_none() {
            return Err(BuildError::Options(format!(
                "board memory of {} KiB: the {} board memory is one, two or four SPRAMs of 32 KiB; pass --mem-kib 32, 64 or 128",
                m / 1024,
                board.name
            )));
        }
    }
    if opts.memory == BoardMemory::Dram {
        let Some(dram) = crate::litedram::config(board) else {
            return Err(BuildError::Options(format!(
                "--memory dram: the {} has no external DRAM that LiteDRAM drives (the ULX3S and the OrangeCrab do); use --memory block-ram",
                board.name
            )));
        };
        if m as u64 > dram.bytes || m < dram.port_bits / 8 {
            return Err(BuildError::Options(format!(
                "board memory of {} KiB: the {}'s DRAM holds {} KiB; pass --mem-kib up to {}",
                m / 1024,
                board.name,
                dram.bytes / 1024,
                dram.bytes / 1024
            )));
        }
        let clock = core_clock(board, arch, opts)?;
        if clock.mhz < dram.min_clock_mhz() {
            return Err(BuildError::Options(format!(
                "--memory dram: a {} MHz core clock is too slow for LiteDRAM, whose refresher needs at least {} cycles per refresh \
                 interval ({:.1} us for the {}); pass --clock-mhz {:.0} or more",
                clock.mhz,
                crate::litedram::MIN_REFRESH_CYCLES,
                dram.trefi_ns / 1e3,
                dram.module,
                dram.min_clock_mhz().ceil()
            )));
        }
        if lanes > dram.port_bits / 8 {
            return Err(BuildError::Options(format!(
                "arch `{}`: dram_bytes_per_cycle = {lanes}, more than the {}'s DRAM port word of {} bytes; use at most {}",
                arch.name,
                board.name,
                dram.port_bits / 8,
                dram.port_bits / 8
            )));
        }
    }
    if !m.is_power_of_two() || m < 2 * lanes || u32::try_from(m).is_err() {
        return Err(BuildError::Options(format!(
            "board memory of {m} bytes: it must be a power of two of at least {} bytes (two rows of {lanes} lanes) and below 4 GiB; pass --mem-kib 16, for example",
            2 * lanes
        )));
    }
    if opts.instr_depth == 0 || opts.instr_depth > usize::from(u16::MAX) {
        return Err(BuildError::Options(format!(
            "--instr-depth {}: each unit holds 1 to {} instructions (the host protocol's index is 16 bits)",
            opts.instr_depth,
            u16::MAX
        )));
    }
    let clock = core_clock(board, arch, opts)?;
    let (_, cpb) = uart_rate(board, clock.mhz, opts.baud)?;
    Ok((clock, cpb))
}

/// The standard UART rates, fastest first, that a board's default is chosen from.
pub const UART_RATES: [u32; 9] = [3_000_000, 2_000_000, 1_500_000, 1_000_000, 921_600, 500_000, 460_800, 230_400, 115_200];

/// The UART's rate and clocks per bit at a core clock of `mhz`: `asked`, if the clock makes
/// it within 2% (4 to 65535 clocks per bit), else an error; without `asked`, the fastest of
/// [`UART_RATES`] up to the board's `max_baud` that the clock makes.
pub fn uart_rate(board: &Board, mhz: f64, asked: Option<u32>) -> Result<(u32, usize), BuildError> {
    let makes = |baud: u32| {
        let cpb = (mhz * 1e6 / f64::from(baud)).round() as usize;
        let actual = mhz * 1e6 / cpb.max(1) as f64;
        ((4..1 << 16).contains(&cpb) && (actual / f64::from(baud) - 1.0).abs() <= MAX_BAUD_ERROR).then_some((baud, cpb))
    };
    match asked {
        Some(baud) => makes(baud).ok_or_else(|| {
            BuildError::Options(format!(
                "--baud {baud}: a {mhz} MHz clock cannot make it within {}% (4 to 65535 clocks per bit); 115200 works on every board",
                MAX_BAUD_ERROR * 100.0
            ))
        }),
        None => UART_RATES.iter().filter(|&&b| b <= board.max_baud).find_map(|&b| makes(b)).ok_or_else(|| {
            BuildError::Options(format!(
                "a {mhz} MHz core clock makes none of the UART rates up to {} baud within 2%; pass --baud",
                board.max_baud
            ))
        }),
    }
}

/// The Verilog of `arch`'s board core and `board`'s top level around it.
pub fn board_verilog(board: &Board, clock: &CoreClock, arch: &ArchConfig, opts: &BuildOptions, clocks_per_bit: usize) -> String {
    format!("{}\n{}", core_verilog(board, arch, opts, clocks_per_bit), top_verilog(board, clock))
}

/// The Verilog of `arch`'s board core (module [`CORE`]) with `opts` and a UART of
/// `clocks_per_bit`.
pub fn core_verilog(board: &Board, arch: &ArchConfig, opts: &BuildOptions, clocks_per_bit: usize) -> String {
    if opts.memory == BoardMemory::Dram {
        let port_bytes = crate::litedram::config(board).map_or(4, |c| c.port_bits / 8);
        let mut core = DramBoardCore::new(arch, opts.instr_depth, opts.memory_bytes, port_bytes, clocks_per_bit);
        return rename_top(&emit(&mut core), CORE);
    }
    let mut core = BoardCore::with_memory(arch, opts.instr_depth, (opts.memory, opts.memory_bytes), clocks_per_bit);
    rename_top(&emit(&mut core), CORE)
}

/// The Verilog, top module and pin constraints of `board`'s DRAM design: the board core of
/// `arch` on LiteDRAM's core (generated in `out/litedram` for the board's pins), the
/// initialization sequence LiteDRAM generated, and the top level with the PLL, the
/// memory's clock and the core's clock gate (`crate::top::dram_top_verilog`).
fn dram_design(
    board: &Board,
    clock: &CoreClock,
    arch: &ArchConfig,
    opts: &BuildOptions,
    clocks_per_bit: usize,
    out: &Path,
) -> Result<(String, String, String), BuildError> {
    let dram = crate::litedram::config(board).ok_or_else(|| BuildError::Options(format!("the {} has no LiteDRAM memory", board.name)))?;
    let Some(pins) = dram.pins else {
        return Err(BuildError::Options(format!(
            "--memory dram: {}; build the {} with --memory block-ram",
            dram.bitstream_refusal().unwrap_or_default(),
            board.name
        )));
    };
    let top = crate::top::dram_top_verilog(board, clock, &dram, &pins).ok_or_else(|| {
        BuildError::Options(format!(
            "--memory dram: a {} MHz core clock does not come from the {}'s PLL, whose second output forwards the SDRAM's clock; \
             pass a --clock-mhz the PLL makes (10 to 400 MHz, not the oscillator's {} MHz)",
            clock.mhz, board.name, board.clock_mhz
        ))
    })?;
    let gen = out.join("litedram");
    let litedram = crate::litedram::generate(board, clock.mhz, false, &gen)?;
    let litedram = std::fs::read_to_string(&litedram).map_err(|source| BuildError::Io { path: litedram.clone(), source })?;
    let init = crate::litedram::init_verilog(&gen)?;
    let verilog = format!("{}\n{litedram}\n{init}\n{top}", core_verilog(board, arch, opts, clocks_per_bit));
    Ok((verilog, top_name(board), pins.constraints()))
}

/// Builds `arch`'s accelerator for `board` in `out`: Verilog, constraints, logs, the
/// bitstream, `report.json` and `report.txt`. A build whose clock misses its target still
/// writes everything and reports `timing_met: false`. `progress` hears of each step of the
/// flow before it runs, with the step's log.
pub fn build(
    board: &Board,
    arch: &ArchConfig,
    opts: &BuildOptions,
    out: &Path,
    progress: &mut dyn FnMut(tools::Step, &Path),
) -> Result<BuildReport, BuildError> {
    let (clock, clocks_per_bit) = check(board, arch, opts)?;
    let (verilog, top, extra_constraints) = if opts.memory == BoardMemory::Dram {
        dram_design(board, &clock, arch, opts, clocks_per_bit, out)?
    } else {
        (board_verilog(board, &clock, arch, opts, clocks_per_bit), top_name(board), String::new())
    };
    let netlist = out.join("design.json");
    let read_blocks = || -> Result<Vec<BlockCells>, String> {
        let json = std::fs::read_to_string(&netlist).map_err(|e| e.to_string())?;
        cells_by_block(&json).map_err(|e| e.to_string())
    };
    let settings = tools::FlowSettings { core_mhz: clock.mhz, pe_products: opts.pe_products, seed: opts.seed };
    let logs = tools::build(board, settings, &verilog, &top, &extra_constraints, out, progress).map_err(|e| match e {
        FlowError::DoesNotFit { .. } => {
            BuildError::DoesNotFit { source: e, blocks: read_blocks().ok().map(|b| table(&b, MIN_BLOCK_SHARE)) }
        }
        e => BuildError::Flow(e),
    })?;
    let pnr = PnrReport::parse(board.family, &logs.pnr).ok_or_else(|| BuildError::NoReport(out.join("nextpnr.log")))?;
    let timing_met = pnr.timing_met();
    let blocks = read_blocks().map_err(|reason| BuildError::Netlist { path: netlist.clone(), reason })?;
    let report = BuildReport {
        board: board.name.into(),
        family: board.family,
        arch: arch.name.clone(),
        fingerprint: fingerprint(arch),
        array: (arch.rows, arch.cols),
        dataflow: arch.dataflow,
        options: *opts,
        core_mhz: clock.mhz,
        clock,
        clocks_per_bit,
        pnr,
        timing_met,
        peak_gops: 2.0 * arch.peak_macs_per_cycle() as f64 * clock.mhz / 1e3,
        blocks,
        bitstream: logs.bitstream,
    };
    let json = serde_json::to_string_pretty(&report).expect("the report serializes");
    for (name, text) in [("report.json", json), ("report.txt", report.text())] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|source| BuildError::Io { path, source })?;
    }
    Ok(report)
}

impl BuildReport {
    /// The report for people.
    pub fn text(&self) -> String {
        let o = &self.options;
        let mut t = format!(
            "Systole on {}: `{}`, {}x{} {}, fingerprint {:#010x}\n\
             core clock {} MHz, UART {} baud ({} clocks per bit), {} instructions per unit, {} KiB board memory, \
             PE multipliers in {}, nextpnr seed {}\n\n",
            self.board,
            self.arch,
            self.array.0,
            self.array.1,
            self.dataflow,
            self.fingerprint,
            mhz(self.core_mhz),
            (self.core_mhz * 1e6 / self.clocks_per_bit as f64).round(),
            self.clocks_per_bit,
            o.instr_depth,
            o.memory_bytes / 1024,
            match o.pe_products {
                PeProducts::Dsp => "DSP blocks",
                PeProducts::Logic => "logic",
            },
            o.seed,
        );
        let _ = writeln!(t, "{:<28} {:>8} {:>8} {:>6}", "resource", "used", "total", "use");
        let ice40 = self.family == Family::Ice40;
        let rows: [(&str, Option<Use>); 5] = [
            (if ice40 { "logic cells (ICESTORM_LC)" } else { "LUT4 (TRELLIS_COMB)" }, Some(self.pnr.luts)),
            ("flip-flops (TRELLIS_FF)", self.pnr.ffs),
            (if ice40 { "block RAM (SB_RAM40_4K)" } else { "block RAM (DP16KD)" }, Some(self.pnr.brams)),
            ("single-port RAM (SPRAM)", self.pnr.sprams),
            (if ice40 { "DSP (SB_MAC16)" } else { "DSP (MULT18X18D)" }, Some(self.pnr.dsps)),
        ];
        for (name, u) in rows.iter().filter_map(|(n, u)| Some((n, (*u)?))) {
            let pct = if u.total == 0 { 0.0 } else { 100.0 * f64::from(u.used) / f64::from(u.total) };
            let _ = writeln!(t, "{name:<28} {:>8} {:>8} {pct:>5.1}%", u.used, u.total);
        }
        t.push('\n');
        for c in &self.pnr.clocks {
            let verdict = if c.pass { "met" } else { "NOT MET" };
            let _ = writeln!(t, "timing: clock `{}` Fmax {:.2} MHz, target {:.2} MHz: {verdict}", c.clock, c.fmax_mhz, c.target_mhz);
        }
        for p in &self.pnr.cross_clock {
            let verdict = if p.pass { "met" } else { "NOT MET" };
            let half = if p.period_share < 1.0 { " (half a period: opposite edges)" } else { "" };
            let _ = writeln!(
                t,
                "timing: path {} -> {} {:.2} ns, budget {:.2} ns{half}, {:.2} MHz at most: {verdict}",
                p.from,
                p.to,
                p.delay_ns,
                p.budget_ns,
                p.fmax_mhz()
            );
        }
        let _ = writeln!(
            t,
            "peak: {:.3} GOPS ({} MACs per cycle x 2 ops x {} MHz)\nbitstream: {}",
            self.peak_gops,
            self.array.0 * self.array.1,
            mhz(self.core_mhz),
            self.bitstream.display()
        );
        let _ = write!(
            t,
            "\nwhere the logic goes (synthesized cells of blocks with at least {}% of the LUTs):\n{}",
            MIN_BLOCK_SHARE * 100.0,
            table(&self.blocks, MIN_BLOCK_SHARE)
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::{board, boards};

    fn tiny(lanes: usize) -> ArchConfig {
        ArchConfig { name: "tiny".into(), rows: 2, cols: 2, dram_bytes_per_cycle: lanes, clock_mhz: 12.0, ..ArchConfig::default() }
    }

    fn refused(board_name: &str, arch: &ArchConfig, opts: BuildOptions) -> String {
        match check(&board(board_name).unwrap(), arch, &opts) {
            Err(BuildError::Options(msg)) => msg,
            other => panic!("{opts:?} accepted: {other:?}"),
        }
    }

    #[test]
    fn every_board_makes_115200_baud_within_two_percent() {
        for b in boards() {
            for mhz in [6.0, 12.0, 30.0, 100.0] {
                let opts = BuildOptions { clock_mhz: Some(mhz), baud: Some(115_200), ..BuildOptions::default() };
                let (clock, cpb) = check(&b, &tiny(4), &opts).unwrap();
                let baud = clock.mhz * 1e6 / cpb as f64;
                assert!((baud / 115_200.0 - 1.0).abs() < 0.02, "{}: {cpb} clocks per bit make {baud} baud", b.name);
            }
        }
        // 12 MHz / 104 = 115385 baud, +0.16%.
        let at_115200 = BuildOptions { baud: Some(115_200), ..BuildOptions::default() };
        assert_eq!(check(&board("icebreaker").unwrap(), &tiny(4), &at_115200).unwrap().1, 104);
    }

    #[test]
    fn the_default_rate_is_the_fastest_the_bridge_and_clock_allow() {
        let [ice, ulx3s, orangecrab] = [0, 1, 2].map(|i| boards().swap_remove(i));
        // The iCEBreaker's FT2232H at 3 Mbaud: 30 MHz / 10, 12 MHz / 4; at 25 MHz 3 Mbaud
        // (8.33 clocks per bit -> 8) and 2 Mbaud (12.5 -> 12) miss by 4%, 1.5 Mbaud
        // (16.67 -> 17) by 1.96%; at 27 MHz 3 Mbaud is 9 clocks per bit.
        assert_eq!(uart_rate(&ice, 30.0, None).unwrap(), (3_000_000, 10));
        assert_eq!(uart_rate(&ice, 12.0, None).unwrap(), (3_000_000, 4));
        assert_eq!(uart_rate(&ice, 25.0, None).unwrap(), (1_500_000, 17));
        assert_eq!(uart_rate(&ice, 27.0, None).unwrap(), (3_000_000, 9));
        // The ULX3S keeps 115200 (`Board::max_baud`): 100 MHz / 868.
        assert_eq!(uart_rate(&ulx3s, 100.0, None).unwrap(), (115_200, 868));
        // The OrangeCrab's UART is on header pins: 1 Mbaud, which USB-serial adapters take.
        assert_eq!(uart_rate(&orangecrab, 100.0, None).unwrap(), (1_000_000, 100));
        // At 460.8 kHz only the slowest rate is made (4 clocks per bit), below it none.
        assert_eq!(uart_rate(&ice, 0.4608, None).unwrap(), (115_200, 4));
        assert!(matches!(uart_rate(&ice, 0.3, None), Err(BuildError::Options(e)) if e.contains("pass --baud")));
    }

    #[test]
    fn bad_options_are_refused_with_the_fix() {
        let d = BuildOptions::default();
        assert!(refused("ulx3s", &tiny(3), d).contains("dram_bytes_per_cycle = 3"));
        assert!(refused("ulx3s", &tiny(4), BuildOptions { memory_bytes: 12 * 1024, ..d }).contains("--mem-kib"));
        assert!(refused("ulx3s", &tiny(4), BuildOptions { instr_depth: 0, ..d }).contains("--instr-depth 0"));
        assert!(refused("ulx3s", &tiny(4), BuildOptions { instr_depth: 70_000, ..d }).contains("16 bits"));
        assert!(refused("icebreaker", &tiny(4), BuildOptions { baud: Some(5_000_000), ..d }).contains("115200 works"));
        // 12 MHz / 5 clocks per bit = 2.4 Mbaud, 4% slow.
        assert!(refused("icebreaker", &tiny(4), BuildOptions { baud: Some(2_500_000), ..d }).contains("within 2%"));
        assert!(refused("ulx3s", &ArchConfig { rows: 0, ..tiny(4) }, d).contains("arch `tiny`"));
        assert!(refused("ulx3s", &ArchConfig { instr_queue: Some(64), ..tiny(4) }, d).contains("leave instr_queue out"));
        assert!(refused("ulx3s", &ArchConfig { vector_lanes: 2, ..tiny(4) }, d).contains("use vector_lanes = 0"));
        // The ArchConfig's clock is the default target; --clock-mhz replaces it.
        let fast = ArchConfig { clock_mhz: 500.0, ..tiny(4) };
        let e = refused("ulx3s", &fast, d);
        assert!(e.contains("arch `tiny`: clock_mhz = 500") && e.contains("above the 400 MHz") && e.contains("--clock-mhz"), "{e}");
        assert!(refused("ulx3s", &tiny(4), BuildOptions { clock_mhz: Some(0.0), ..d }).contains("--clock-mhz 0"));
        // 12 MHz / 64 = 187.5 kHz is 1.6 clocks per bit at 115200 baud.
        let slow = BuildOptions { clock_mhz: Some(0.1875), ..d };
        assert!(refused("icebreaker", &tiny(4), BuildOptions { baud: Some(115_200), ..slow }).contains("115200 works"));
        assert!(refused("icebreaker", &tiny(4), slow).contains("pass --baud"));
    }

    #[test]
    fn frequencies_are_written_with_at_most_three_decimals() {
        assert_eq!([mhz(400.0 / 7.0), mhz(12.0), mhz(57.6), mhz(12.5)], ["57.143", "12", "57.6", "12.5"]);
    }

    #[test]
    fn the_core_clock_comes_from_the_pll() {
        use crate::clock::ClockSource;
        let opts = BuildOptions { clock_mhz: Some(100.0), ..BuildOptions::default() };
        let (clock, cpb) = check(&board("ulx3s").unwrap(), &tiny(4), &opts).unwrap();
        assert!(matches!(clock.source, ClockSource::Ecp5Pll(_)) && clock.mhz == 100.0, "{clock:?}");
        // The ULX3S's default 115200 baud: 100 MHz / 115200 = 868.1 clocks per bit.
        assert_eq!(cpb, 868);
        // Without the option, the ArchConfig's 12 MHz: the iCEBreaker's oscillator itself.
        let (clock, _) = check(&board("icebreaker").unwrap(), &tiny(4), &BuildOptions::default()).unwrap();
        assert_eq!(clock.source, ClockSource::Oscillator);
    }
}
