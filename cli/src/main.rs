//! `systole`: a thin command-line facade over the Systole libraries.

mod fpga;
mod rtl;
mod run;

use clap::{Parser, Subcommand};
use miette::{IntoDiagnostic, Result, WrapErr};
use std::path::Path;
use std::path::PathBuf;
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_fpga::bitstream::BuildOptions;

/// Systole: simulate and co-design systolic-array DNN accelerators.
#[derive(Parser)]
#[command(name = "systole", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile every layer of a workload and run it on the cycle-accurate simulator.
    ///
    /// Prints a per-layer table (cycles, MACs, utilization, compute- or memory-bound) and
    /// totals. Tensors come from the layers' `data` files (.npy) or are random from the
    /// workload's seed.
    Simulate {
        /// Architecture file, e.g. configs/archs/16x16.toml.
        #[arg(long)]
        arch: PathBuf,
        /// Workload file, e.g. configs/workloads/resnet18.toml.
        #[arg(long)]
        workload: PathBuf,
        /// Also write the full SimReport as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Re-run every layer on the golden model and fail on any mismatch.
        #[arg(long)]
        check: bool,
        /// Layers simulated in parallel (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Compile one layer of a workload and print its program.
    Compile {
        #[command(flatten)]
        layer: LayerArgs,
        /// Write the encoded program (one 512-bit instruction per line, hex, LSB word first) here.
        #[arg(long)]
        hex: Option<PathBuf>,
    },
    /// Write the accelerator's Verilog for an architecture: one top module
    /// (`systole_top.v`) and a parameters header (`systole_params.vh`).
    Rtl {
        /// Architecture file.
        #[arg(long)]
        arch: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Instructions each unit's memory holds.
        #[arg(long, default_value_t = 1024)]
        instr_depth: usize,
    },
    /// Build bitstreams for FPGA boards, flash them, and run layers on them.
    Fpga {
        #[command(subcommand)]
        command: FpgaCommand,
    },
    /// Measure simulator speed on a workload: simulated MACs per second and wall time.
    Bench {
        /// Architecture file.
        #[arg(long)]
        arch: PathBuf,
        /// Workload file.
        #[arg(long)]
        workload: PathBuf,
        /// Timed repetitions (the best is reported).
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
}

#[derive(Subcommand)]
enum FpgaCommand {
    /// Synthesize, place, route and pack an architecture's accelerator for a board, with its
    /// UART host bridge; writes the bitstream, report.json and report.txt into --out.
    Build {
        /// Board: icebreaker, ulx3s or orangecrab.
        #[arg(long)]
        board: String,
        /// Architecture file.
        #[arg(long)]
        arch: PathBuf,
        /// Output folder (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Instructions each unit's memory holds.
        #[arg(long, default_value_t = BuildOptions::default().instr_depth)]
        instr_depth: usize,
        /// KiB of on-chip board memory for tensors (a power of two).
        #[arg(long, default_value_t = BuildOptions::default().memory_bytes / 1024)]
        mem_kib: usize,
        /// UART baud rate.
        #[arg(long, default_value_t = BuildOptions::default().baud)]
        baud: u32,
        /// Divide the board's clock by this power of two for the core (default: the
        /// board's own, 12 MHz on every board); for designs that miss timing.
        #[arg(long)]
        clock_divide: Option<u32>,
    },
    /// Program a board with a bitstream (openFPGALoader, or iceprog for iCE40).
    Flash {
        /// Board: icebreaker, ulx3s or orangecrab.
        #[arg(long)]
        board: String,
        /// The bitstream `systole fpga build` wrote (design.bin for iCE40, design.bit for ECP5).
        bitstream: PathBuf,
    },
    /// Run one layer of a workload on a board over its UART; check the output against the
    /// golden model and the board's cycle count against the simulator.
    Run {
        /// The board's serial port, e.g. /dev/ttyUSB1.
        #[arg(long)]
        port: String,
        /// UART baud rate the bitstream was built with.
        #[arg(long, default_value_t = BuildOptions::default().baud)]
        baud: u32,
        /// Seconds to wait for each answer of the board (the run's answer also gets twice
        /// the run's time at the core clock the board reports).
        #[arg(long, default_value_t = 5.0)]
        timeout_s: f64,
        /// The layer, and the architecture the bitstream was built from.
        #[command(flatten)]
        layer: LayerArgs,
    },
}

/// One layer of a workload, on an architecture.
#[derive(clap::Args)]
struct LayerArgs {
    /// Architecture file.
    #[arg(long)]
    arch: PathBuf,
    /// Workload file.
    #[arg(long)]
    workload: PathBuf,
    /// Name of the layer (default: the first).
    #[arg(long)]
    layer: Option<String>,
}

/// Index of the layer named `name` in `wl` (read from `path`), or the first layer.
fn layer_index(wl: &Workload, path: &Path, name: Option<&str>) -> Result<usize> {
    let Some(name) = name else { return Ok(0) };
    wl.layers
        .iter()
        .position(|l| l.name == name)
        .ok_or_else(|| miette::miette!(help = "leave out --layer to use the first layer", "{}: no layer named `{name}`", path.display()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate { arch, workload, json, check, jobs } => {
            let arch_cfg = ArchConfig::from_file(&arch)?;
            let wl = Workload::from_file(&workload)?;
            let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().into_diagnostic()?;
            let report = pool.install(|| run::simulate(&arch_cfg, &wl, check))?;
            print!("{}", run::table(&arch_cfg, &report));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).into_diagnostic()?;
                std::fs::write(&path, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
            }
            if check {
                println!("check: all {} layers bit-exact with the golden model", report.layers.len());
            }
            Ok(())
        }
        Command::Compile { layer: LayerArgs { arch, workload, layer }, hex } => {
            let arch_cfg = ArchConfig::from_file(&arch)?;
            let wl = Workload::from_file(&workload)?;
            let idx = layer_index(&wl, &workload, layer.as_deref())?;
            let l = &wl.layers[idx];
            let data = wl.layer_data(idx)?;
            let program = systole_compiler::compile_layer(&arch_cfg, l, &data)?;
            print!("{program}");
            if let Some(path) = hex {
                std::fs::write(&path, run::hex(&program)).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
            }
            Ok(())
        }
        Command::Rtl { arch, out, instr_depth } => {
            let arch_cfg = ArchConfig::from_file(&arch)?;
            for path in rtl::write(&arch_cfg, &out, instr_depth)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Fpga { command } => match command {
            FpgaCommand::Build { board, arch, out, instr_depth, mem_kib, baud, clock_divide } => {
                let memory_bytes = mem_kib.checked_mul(1024).ok_or_else(|| miette::miette!("--mem-kib {mem_kib}: too large"))?;
                fpga::build(&board, &arch, &out, &BuildOptions { instr_depth, memory_bytes, baud, clock_divide }).map(drop)
            }
            FpgaCommand::Flash { board, bitstream } => fpga::flash(&board, &bitstream),
            FpgaCommand::Run { port, baud, timeout_s, layer: LayerArgs { arch, workload, layer } } => {
                let timeout = std::time::Duration::try_from_secs_f64(timeout_s)
                    .map_err(|e| miette::miette!(help = "pass a positive number of seconds", "--timeout-s {timeout_s}: {e}"))?;
                fpga::run(&port, baud, timeout, &arch, &workload, layer.as_deref())
            }
        },
        Command::Bench { arch, workload, repeat } => {
            let arch_cfg = ArchConfig::from_file(&arch)?;
            let wl = Workload::from_file(&workload)?;
            run::bench(&arch_cfg, &wl, repeat.max(1))
        }
    }
}
