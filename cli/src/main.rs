//! `systole`: a thin command-line facade over the Systole libraries.

mod fpga;
mod model;
mod rtl;
mod run;
mod search;
mod sweep;
mod synth;

use clap::{Parser, Subcommand};
use miette::{IntoDiagnostic, Result, WrapErr};
use std::path::Path;
use std::path::PathBuf;
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_fpga::bitstream::BuildOptions;
use systole_fpga::PeProducts;

/// Most random calibration inputs (`--calib-samples`): each is a whole forward pass of the
/// float model; PTQ statistics settle within tens.
const MAX_CALIB_SAMPLES: u64 = 4096;
/// Most worker threads (`--jobs`): beyond the largest servers' cores, more only slow a run.
const MAX_JOBS: u64 = 1024;
/// Deepest instruction memory (`--instr-depth`): 65,536 instructions of 64 bytes per unit
/// (4 MiB), far beyond a board's block RAM.
const MAX_INSTR_DEPTH: u64 = 1 << 16;
/// Largest board memory in KiB (`--mem-kib`): 1 GiB, beyond every supported board's DRAM.
const MAX_MEM_KIB: u64 = 1 << 20;
/// Most repetitions of a benchmark (`--repeat`).
const MAX_REPEAT: u64 = 1000;
/// Input image sizes of `export-model` (`--size`): the networks' five stride-2 stages need
/// 32; 2048 makes tensors of hundreds of MiB.
const MIN_IMAGE_SIZE: u64 = 32;
const MAX_IMAGE_SIZE: u64 = 2048;

/// The simulation report's line stating the defaults the architecture file took.
fn defaults_line(path: &Path, defaults: &[String]) -> String {
    if defaults.is_empty() {
        format!("{}: every field given\n", path.display())
    } else {
        format!("{}: defaults taken (docs/ARCHITECTURE.md section 2): {}\n", path.display(), defaults.join(", "))
    }
}

/// A count flag from 1 to `max`.
fn counted(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max)
}

/// A finite number in `range`, or why not.
fn finite_in(s: &str, range: std::ops::RangeInclusive<f64>, unit: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    let positive = *range.start() == 0.0;
    if v.is_finite() && range.contains(&v) && !(positive && v == 0.0) {
        Ok(v)
    } else if positive {
        Err(format!("{v} is not a {unit} above 0 and at most {}", range.end()))
    } else {
        Err(format!("{v} is not a {unit} from {} to {}", range.start(), range.end()))
    }
}

/// `--clock-mhz`: a positive frequency up to [`systole_core::arch::MAX_CLOCK_MHZ`].
fn clock_mhz(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=systole_core::arch::MAX_CLOCK_MHZ, "frequency in MHz")
}

/// `--timeout-s`: a positive time up to a week.
fn seconds(s: &str) -> Result<f64, String> {
    finite_in(s, 0.0..=7.0 * 86400.0, "number of seconds")
}

/// `--budget-db`: a finite SQNR.
fn decibels(s: &str) -> Result<f64, String> {
    finite_in(s, -1000.0..=1000.0, "level in dB")
}

/// Systole: simulate and co-design systolic-array DNN accelerators.
#[derive(Parser)]
#[command(name = "systole", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole ONNX model, or every layer of a workload, on the cycle-accurate simulator.
    ///
    /// With --model: the network runs end to end as its network program (accelerator layers
    /// linked into programs over one DRAM image; pooling, Add, Concat and layout on the host
    /// between them); float models are quantized first. With
    /// --workload: each layer runs alone, tensors from its `data` files or random.
    /// Prints a per-layer table (cycles, MACs, utilization, compute- or memory-bound) and
    /// totals.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["workload", "model"])))]
    Simulate {
        /// Architecture file, e.g. configs/archs/16x16.toml.
        #[arg(long)]
        arch: PathBuf,
        /// Workload file, e.g. configs/workloads/resnet18.toml.
        #[arg(long)]
        workload: Option<PathBuf>,
        /// ONNX model: int8 QDQ or QOperator (as onnxruntime.quantization writes), or float.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Model input as .npy (float32 for float inputs), one per input; default: seeded
        /// random values over the input's quantized range.
        #[arg(long, requires = "model")]
        input: Vec<PathBuf>,
        /// Write the model's output(s) here as .npy, as the graph defines them (float after
        /// a final DequantizeLinear).
        #[arg(long, requires = "model")]
        output: Option<PathBuf>,
        /// Float models: calibration inputs, a float32 .npy batch along axis 0 (default:
        /// --calib-samples seeded N(0, 1) inputs).
        #[arg(long, requires = "model")]
        calibrate: Option<PathBuf>,
        /// Float models: random calibration inputs when --calibrate is not given.
        #[arg(long, default_value_t = 4, requires = "model", value_parser = counted(MAX_CALIB_SAMPLES))]
        calib_samples: usize,
        /// Seed of random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also write the full SimReport as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Re-run every layer on the golden model and fail on any mismatch.
        #[arg(long)]
        check: bool,
        /// Layers simulated in parallel (default: all cores).
        #[arg(long, value_parser = counted(MAX_JOBS))]
        jobs: Option<usize>,
        /// With --model on an instance without instr_queue: run each accelerator run in the
        /// segments that instruction memories of this many instructions per unit hold, as a
        /// board built with `--instr-depth` does (cycles include every segment's drain).
        #[arg(long, requires = "model", value_parser = counted(MAX_INSTR_DEPTH))]
        instr_depth: Option<usize>,
    },
    /// Compile one layer of a workload and print its program.
    ///
    /// With --model: the whole network program instead (its DRAM map, every run's
    /// instructions under a line per layer, and the host steps between runs).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["workload", "model"])))]
    Compile {
        /// Architecture file.
        #[arg(long)]
        arch: PathBuf,
        /// Workload file.
        #[arg(long)]
        workload: Option<PathBuf>,
        /// ONNX model (float models are quantized first, on --calib-samples random inputs).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Name of the layer (default: the first).
        #[arg(long, conflicts_with = "model")]
        layer: Option<String>,
        /// Write the encoded program (one 512-bit instruction per line, hex, LSB word first) here.
        #[arg(long, conflicts_with = "model")]
        hex: Option<PathBuf>,
        /// Float models: random calibration inputs.
        #[arg(long, default_value_t = 4, conflicts_with = "workload", value_parser = counted(MAX_CALIB_SAMPLES))]
        calib_samples: usize,
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
        #[arg(long, default_value_t = 1024, value_parser = counted(MAX_INSTR_DEPTH))]
        instr_depth: usize,
    },
    /// Sweep a design space: every point (or a sample, or one shard) of a space file
    /// evaluated on a workload or an ONNX model, results streamed to OUT/results.jsonl.
    /// A rerun resumes where the last one stopped.
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        command: Option<SweepCommand>,
        /// Space file (see docs/SWEEP.md), e.g. configs/spaces/edge.toml.
        #[arg(long)]
        space: Option<PathBuf>,
        /// Workload file.
        #[arg(long, conflicts_with = "model")]
        workload: Option<PathBuf>,
        /// ONNX model (float models are quantized on 4 random inputs first).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Evaluate only shard K of N (0-based), for job arrays; join with `sweep merge`.
        #[arg(long)]
        shard: Option<systole_sweep::Shard>,
        /// What each layer's mapping search minimizes: latency or energy.
        #[arg(long, default_value = "latency")]
        objective: systole_core::mapping::Objective,
        /// Also build every valid point for this board (icebreaker, ulx3s, orangecrab) and
        /// record its real resource use and clock (minutes per point; builds in OUT/synth/).
        #[arg(long)]
        synth: Option<String>,
        /// With --synth: instructions each unit's memory holds (default: the board's, 32 on
        /// the iCEBreaker, 64 on the others).
        #[arg(long, requires = "synth", value_parser = counted(MAX_INSTR_DEPTH))]
        synth_instr_depth: Option<usize>,
        /// With --synth: KiB of on-chip board memory (default: the board's, 2 on the
        /// iCEBreaker, 16 on the others).
        #[arg(long, requires = "synth", value_parser = counted(MAX_MEM_KIB))]
        synth_mem_kib: Option<usize>,
        /// With --synth: the core clock's target in MHz (default: each point's clock_mhz),
        /// made by the board's PLL.
        #[arg(long, requires = "synth", value_parser = clock_mhz)]
        synth_clock_mhz: Option<f64>,
        /// Points evaluated in parallel (default: all cores).
        #[arg(long, value_parser = counted(MAX_JOBS))]
        jobs: Option<usize>,
    },
    /// Draw a sweep's results (DIR/results.jsonl): Pareto front, per-layer utilization and
    /// roofline as SVG, and report.md with the table of Pareto points.
    Report {
        /// The sweep's output folder.
        dir: PathBuf,
    },
    /// Build bitstreams for FPGA boards, flash them, and run layers on them.
    Fpga {
        #[command(subcommand)]
        command: FpgaCommand,
    },
    /// Quantize a float ONNX model to int8 (QDQ format, as Systole imports it) and write it;
    /// ONNX Runtime and other QDQ-aware runtimes read the result.
    Quantize {
        /// Float ONNX model.
        #[arg(long)]
        model: PathBuf,
        /// Output .onnx file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        calibration: CalibrationArgs,
    },
    /// Prune a float ONNX model's Conv/Gemm/MatMul weights (magnitude based: unstructured at a
    /// ratio, N:M along input channels, or whole channels) and report the accuracy proxy: output SQNR
    /// against the float model on calibration inputs, per layer and per graph output.
    Compress {
        /// Float ONNX model.
        #[arg(long)]
        model: PathBuf,
        /// Output .onnx file: the pruned float model, or with --bits or policy bits the
        /// quantized (QDQ) model, ready for `simulate`.
        #[arg(long)]
        out: PathBuf,
        /// Pruning of every layer the policy does not name: none, unstructured:R, N:M such as
        /// 2:4, or channels:R (filters removed with the next layer's input channels).
        #[arg(long)]
        prune: Option<String>,
        /// Per-layer policy file (TOML: [default] and [layers."name"], each `prune = "..."`,
        /// `bits = 4 | 8` and `act_bits = 4 | 8`).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// Weight bits of every layer the policy does not name (4 or 8): quantize per output
        /// channel and write the quantized model.
        #[arg(long)]
        bits: Option<u8>,
        /// Input activation bits of every layer the policy does not name (4 or 8): 4 makes
        /// the input int4 where a conv or GEMM layer produces it, and writes the quantized
        /// model.
        #[arg(long)]
        act_bits: Option<u8>,
        #[command(flatten)]
        calibration: CalibrationArgs,
        /// Also write the report as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Hardware-aware compression search (HAQ / AMC style): per-layer pruning (dense, 2:4,
    /// 1:4) and weight bits (8, 4) minimizing the simulator's latency or energy on an
    /// architecture, or on every point of a space (co-search), under an output-SQNR budget.
    /// Writes OUT/report.md, OUT/search.json (Pareto fronts, uniform baselines) and
    /// OUT/policy.toml (for `systole compress --policy`)
    Search {
        /// Float ONNX model.
        #[arg(long)]
        model: PathBuf,
        /// Architecture TOML.
        #[arg(long, conflicts_with = "space", required_unless_present = "space")]
        arch: Option<PathBuf>,
        /// Space file: search every point (architecture and compression chosen together).
        #[arg(long)]
        space: Option<PathBuf>,
        /// Minimum output SQNR of the chosen policy against the float model, dB.
        #[arg(long, value_parser = decibels)]
        budget_db: f64,
        /// What the search minimizes: latency or energy.
        #[arg(long, default_value = "latency")]
        objective: systole_core::mapping::Objective,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        calibration: CalibrationArgs,
    },
    /// Write a float ONNX model of a standard network (torchvision topology, seeded random
    /// weights) for architecture studies.
    ExportModel {
        /// The network: mobilenetv2, mobilenetv3-small, mobilenetv3-large, efficientnet-b0,
        /// shufflenetv2, squeezenet, googlenet, resnet18, resnet50, densenet121 or vgg16.
        network: String,
        /// Output .onnx file.
        #[arg(long)]
        out: PathBuf,
        /// Input height and width.
        #[arg(long, default_value_t = 224, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE))]
        size: usize,
        /// Seed of the random weights.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Measure speed on a workload or a whole ONNX model: simulated MACs per second and wall
    /// time of each stage; with --space, sweep points per second.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["workload", "model"])))]
    Bench {
        /// Architecture file (for a workload or a model).
        #[arg(long, required_unless_present = "space")]
        arch: Option<PathBuf>,
        /// A sweep space: time evaluating every point on the workload or model, on one core
        /// and on all cores, without writing results.
        #[arg(long, conflicts_with = "arch")]
        space: Option<PathBuf>,
        /// Workload file.
        #[arg(long)]
        workload: Option<PathBuf>,
        /// ONNX model (float models are quantized on --calib-samples random inputs).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Float models: random calibration inputs.
        #[arg(long, default_value_t = 4, requires = "model", value_parser = counted(MAX_CALIB_SAMPLES))]
        calib_samples: usize,
        /// Timed repetitions (the best is reported).
        #[arg(long, default_value_t = 3, value_parser = counted(MAX_REPEAT))]
        repeat: usize,
    },
}

/// The calibration inputs of a float model.
#[derive(clap::Args)]
struct CalibrationArgs {
    /// Calibration inputs: a float32 .npy batch along axis 0 (default: --calib-samples
    /// seeded N(0, 1) inputs).
    #[arg(long)]
    calibrate: Option<PathBuf>,
    /// Random calibration inputs when --calibrate is not given.
    #[arg(long, default_value_t = 4, value_parser = counted(MAX_CALIB_SAMPLES))]
    calib_samples: usize,
    /// Seed of the random calibration inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl From<CalibrationArgs> for model::Calibration {
    fn from(a: CalibrationArgs) -> Self {
        model::Calibration { file: a.calibrate, samples: a.calib_samples, seed: a.seed }
    }
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Join shard results (results-K-of-N.jsonl) into OUT/results.jsonl.
    Merge {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// The sweep's space file: each shard must then hold exactly its points.
        #[arg(long)]
        space: Option<PathBuf>,
        /// Shard result files.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
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
        /// Instructions each unit's memory holds (default: the board's, 32 on the
        /// iCEBreaker, 64 on the others).
        #[arg(long, value_parser = counted(MAX_INSTR_DEPTH))]
        instr_depth: Option<usize>,
        /// KiB of on-chip board memory for tensors, a power of two (default: the board's, 2
        /// on the iCEBreaker, 16 on the others).
        #[arg(long, value_parser = counted(MAX_MEM_KIB))]
        mem_kib: Option<usize>,
        /// The board memory: `block-ram`, `spram` (the iCE40 UP5K's single-port RAMs, 32,
        /// 64 or 128 KiB; the arch needs `dram_single_port`) or `dram` (the ULX3S's SDRAM
        /// through LiteDRAM, all 32 MiB unless --mem-kib says less); default: the board's.
        #[arg(long)]
        memory: Option<systole_fpga::board::BoardMemory>,
        /// UART baud rate (default: the fastest standard rate up to the board's USB-serial
        /// bridge's that the core clock makes within 2%: 3 Mbaud on the iCEBreaker, 1 Mbaud
        /// on the OrangeCrab, 115200 on the ULX3S).
        #[arg(long)]
        baud: Option<u32>,
        /// The core clock's target in MHz (default: the arch file's clock_mhz); the board's
        /// PLL makes the fastest clock at or below it.
        #[arg(long, value_parser = clock_mhz)]
        clock_mhz: Option<f64>,
        /// Where the PEs' multipliers go: `dsp` (DSP blocks) or `logic` (LUTs, so that a
        /// large array places as one grid); default: the board's, logic on the ULX3S,
        /// DSP blocks on the others.
        #[arg(long)]
        pe_products: Option<PeProducts>,
        /// nextpnr's placement seed: another seed places the same netlist differently, so a
        /// design that misses its clock by a little may meet it with another.
        #[arg(long, default_value_t = BuildOptions::default().seed)]
        seed: u32,
    },
    /// Program a board with a bitstream (openFPGALoader, or iceprog for iCE40).
    Flash {
        /// Board: icebreaker, ulx3s or orangecrab.
        #[arg(long)]
        board: String,
        /// The bitstream `systole fpga build` wrote (design.bin for iCE40, design.bit for ECP5).
        bitstream: PathBuf,
    },
    /// Run a whole network (--model) or one layer of a workload (--workload) on a board over
    /// its UART, or with --sim on the board's design in Verilator; check every output
    /// against the golden model and the cycles against the simulator.
    ///
    /// With --model: the memory image (weights, tables, inputs) is written once; each
    /// accelerator run goes in the segments that the board's instruction memories hold,
    /// each host step runs on the host between them; prints the cycles and the inferences
    /// per second at the board's core clock.
    Run {
        /// Board: icebreaker, ulx3s or orangecrab (needed with --sim or --model).
        #[arg(long, required_if_eq_any = [("sim", "true")])]
        board: Option<String>,
        /// The board's serial port, e.g. /dev/ttyUSB1.
        #[arg(long, required_unless_present = "sim", conflicts_with = "sim")]
        port: Option<String>,
        /// Run on the board design in Verilator instead of a board: the design `systole fpga
        /// build` would make with the same options, board memory included.
        #[arg(long)]
        sim: bool,
        /// UART baud rate the bitstream was (or with --sim, is) built with (default: the
        /// rate `fpga build` picks for --board at the arch file's clock).
        #[arg(long)]
        baud: Option<u32>,
        /// Seconds to wait for each answer of the board (the run's answer also gets twice
        /// the run's time at the core clock); default 5, or 600 with --sim (a simulated
        /// cycle takes far longer than a board's).
        #[arg(long, value_parser = seconds)]
        timeout_s: Option<f64>,
        /// Architecture file the bitstream was built from.
        #[arg(long)]
        arch: PathBuf,
        /// Workload file: run one of its layers.
        #[arg(long, required_unless_present = "model", conflicts_with = "model")]
        workload: Option<PathBuf>,
        /// Name of the workload's layer (default: the first).
        #[arg(long, requires = "workload")]
        layer: Option<String>,
        /// ONNX model: run the whole network.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Model input as .npy, one per input (default: seeded random values).
        #[arg(long, requires = "model")]
        input: Vec<PathBuf>,
        /// Write the board's output(s) here as .npy.
        #[arg(long, requires = "model")]
        output: Option<PathBuf>,
        /// Float models: calibration inputs, a float32 .npy batch along axis 0.
        #[arg(long, requires = "model")]
        calibrate: Option<PathBuf>,
        /// Float models: random calibration inputs when --calibrate is not given.
        #[arg(long, default_value_t = 4, requires = "model", value_parser = counted(MAX_CALIB_SAMPLES))]
        calib_samples: usize,
        /// Seed of random inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// With --sim: instructions per unit memory (default: the board's).
        #[arg(long, requires = "sim", value_parser = counted(MAX_INSTR_DEPTH))]
        instr_depth: Option<usize>,
        /// With --sim: KiB of board memory (default: the board's).
        #[arg(long, requires = "sim", value_parser = counted(MAX_MEM_KIB))]
        mem_kib: Option<usize>,
        /// With --sim: the board memory, `block-ram`, `spram` (iCE40 UP5K) or `dram` (the
        /// ULX3S's SDRAM through LiteDRAM, on its simulation model; all 32 MiB unless
        /// --mem-kib); default: the board's.
        #[arg(long, requires = "sim")]
        memory: Option<systole_fpga::board::BoardMemory>,
        /// With --sim: where the Verilated designs are kept (one folder per design).
        #[arg(long, default_value = "target/fpga-sim", requires = "sim")]
        sim_cache: PathBuf,
        /// With --sim: write the instructions and the intermediate values through the
        /// simulation's access to the memories instead of the simulated UART, which takes
        /// about a millisecond a byte (hours for a large network's megabytes of instructions);
        /// the runs, their cycles and stalls and the network's outputs still go over the host
        /// protocol.
        #[arg(long, requires = "sim")]
        back_door: bool,
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
        Command::Simulate { arch, workload, model, input, output, calibrate, calib_samples, seed, json, check, jobs, instr_depth } => {
            let (arch_cfg, defaults) = ArchConfig::read(&arch)?;
            let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().into_diagnostic()?;
            if let (Some(q), Some(_)) = (arch_cfg.instr_queue, instr_depth) {
                return Err(miette::miette!(
                    help = format!("leave out --instr-depth, or remove instr_queue from {}", arch.display()),
                    "--instr-depth: `{}` streams its instructions through queues of {q}, so no run is split into segments",
                    arch_cfg.name
                ));
            }
            if let Some(path) = model {
                let net = model::load(&path, &model::Calibration { file: calibrate, samples: calib_samples, seed })?;
                let x = model::inputs(&net, &input, seed)?;
                let (run, compiled) = pool.install(|| model::simulate(&arch_cfg, &net, &x, instr_depth, check))?;
                print!("{}", model::table(&arch_cfg, &net, &run, &compiled, instr_depth)?);
                print!("{}", defaults_line(&arch, &defaults));
                if let Some(out) = output {
                    for f in model::write_outputs(&net, &run, &out)? {
                        println!("wrote {}", f.display());
                    }
                }
                if let Some(path) = json {
                    let text = serde_json::to_string_pretty(&run.report).into_diagnostic()?;
                    std::fs::write(&path, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
                }
                if check {
                    println!("check: all {} nodes bit-exact with the golden network", net.nodes.len());
                }
                return Ok(());
            }
            let workload = workload.expect("clap requires --workload or --model");
            let wl = Workload::from_file(&workload)?;
            let report = pool.install(|| run::simulate(&arch_cfg, &wl, check))?;
            print!("{}", run::table(&arch_cfg, &report));
            print!("{}", defaults_line(&arch, &defaults));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&report).into_diagnostic()?;
                std::fs::write(&path, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", path.display()))?;
            }
            if check {
                println!("check: all {} layers bit-exact with the golden model", report.layers.len());
            }
            Ok(())
        }
        Command::Compile { arch, workload, model, layer, hex, calib_samples } => {
            let arch_cfg = ArchConfig::from_file(&arch)?;
            if let Some(path) = model {
                let net = model::load(&path, &model::Calibration { file: None, samples: calib_samples, seed: 1 })?;
                let compiled = systole_runtime::compile(&arch_cfg, &net)?;
                print!("{}", compiled.network.listing(|n| format!("{} ({})", net.nodes[n].name, net.nodes[n].op.kind())));
                return Ok(());
            }
            let workload = workload.expect("clap requires --workload or --model");
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
            FpgaCommand::Build { board, arch, out, instr_depth, mem_kib, memory, baud, clock_mhz, pe_products, seed } => {
                let board = fpga::board_named(&board, "board")?;
                let defaults = fpga::options(&board, instr_depth, mem_kib, memory, "")?;
                let opts = BuildOptions { baud, clock_mhz, pe_products: pe_products.unwrap_or(defaults.pe_products), seed, ..defaults };
                fpga::build(&board, &arch, &out, &opts).map(drop)
            }
            FpgaCommand::Flash { board, bitstream } => fpga::flash(&board, &bitstream),
            FpgaCommand::Run {
                board,
                port,
                sim: _,
                baud,
                timeout_s,
                arch,
                workload,
                layer,
                model,
                input,
                output,
                calibrate,
                calib_samples,
                seed,
                instr_depth,
                mem_kib,
                memory,
                sim_cache,
                back_door,
            } => {
                let timeout_s = timeout_s.unwrap_or(if port.is_some() { 5.0 } else { 600.0 });
                let timeout = std::time::Duration::try_from_secs_f64(timeout_s)
                    .map_err(|e| miette::miette!(help = "pass a positive number of seconds", "--timeout-s {timeout_s}: {e}"))?;
                let baud = match (baud, &board) {
                    (Some(b), _) => Some(b),
                    (None, Some(name)) if port.is_some() => Some(fpga::default_baud(&fpga::board_named(name, "board")?, &arch)?),
                    (None, _) => None,
                };
                match (model, workload) {
                    (Some(model_path), _) => {
                        let board = fpga::board_named(
                            &board.ok_or_else(|| {
                                miette::miette!(help = "pass --board icebreaker, ulx3s or orangecrab", "--model needs --board")
                            })?,
                            "board",
                        )?;
                        let target = match port {
                            Some(p) => fpga::Target::Port(p, baud.expect("a port run with a board has a rate")),
                            None => {
                                let opts = BuildOptions { baud, ..fpga::options(&board, instr_depth, mem_kib, memory, "")? };
                                fpga::Target::Sim { opts, cache: sim_cache, back_door }
                            }
                        };
                        let calibration = model::Calibration { file: calibrate, samples: calib_samples, seed };
                        fpga::run_model(&board, target, timeout, &arch, (&model_path, &input, output.as_deref(), &calibration))
                    }
                    (None, Some(workload)) => match port {
                        Some(port) => {
                            let baud = baud.ok_or_else(|| {
                                miette::miette!(
                                    help = "pass --board (for the rate its build picks) or the build's --baud",
                                    "--port: at which baud rate?"
                                )
                            })?;
                            fpga::run(&port, baud, timeout, &arch, &workload, layer.as_deref())
                        }
                        None => Err(miette::miette!(
                            help = "pass --port with the board's serial port, or run a network with --model",
                            "--sim runs a whole network (--model); a workload's layer runs on a board (--port)"
                        )),
                    },
                    (None, None) => unreachable!("clap requires --workload or --model"),
                }
            }
        },
        Command::Search { model, arch, space, budget_db, objective, out, calibration } => {
            let archs = match (arch, space) {
                (Some(a), _) => vec![ArchConfig::from_file(&a)?],
                (None, Some(s)) => {
                    let space = systole_sweep::Space::from_file(&s)?;
                    space.order().into_iter().filter_map(|id| space.arch(id).ok()).collect()
                }
                (None, None) => unreachable!("clap requires --arch or --space"),
            };
            if archs.is_empty() {
                return Err(miette::miette!(help = "check the space's parameters", "the space has no valid architecture"));
            }
            let args = search::SearchArgs { model: &model, archs, objective, budget_db, out: &out };
            search::search(&args, &calibration.into())
        }
        Command::Sweep { command: Some(SweepCommand::Merge { out, space, shards }), .. } => {
            let space = space.map(|s| systole_sweep::Space::from_file(&s)).transpose()?;
            std::fs::create_dir_all(&out).into_diagnostic().wrap_err_with(|| format!("cannot create {}", out.display()))?;
            let path = sweep::results_path(&out, None);
            let inputs: Vec<&Path> = shards.iter().map(|p| p.as_path()).collect();
            let n = systole_sweep::results::merge(&inputs, &path, space.as_ref())?;
            println!("merged {n} points into {}", path.display());
            Ok(())
        }
        Command::Sweep {
            command: None,
            space,
            workload,
            model,
            out,
            shard,
            objective,
            synth,
            synth_instr_depth,
            synth_mem_kib,
            synth_clock_mhz,
            jobs,
        } => {
            let need = |v: Option<PathBuf>, flag: &str| {
                v.ok_or_else(|| {
                    miette::miette!(help = "systole sweep --space S.toml --workload W.toml|--model M.onnx --out DIR", "{flag} is required")
                })
            };
            let (space, out) = (need(space, "--space")?, need(out, "--out")?);
            let target = match (workload, model) {
                (Some(w), _) => systole_sweep::Target::workload(&Workload::from_file(&w)?),
                (None, Some(m)) => {
                    systole_sweep::Target::network(&model::load(&m, &model::Calibration { file: None, samples: 4, seed: 1 })?)
                }
                (None, None) => return Err(miette::miette!(help = "give --workload W.toml or --model M.onnx", "nothing to sweep on")),
            };
            let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs.unwrap_or(0)).build().into_diagnostic()?;
            let synth = match synth {
                None => None,
                Some(name) => {
                    let board = fpga::board_named(&name, "synth")?;
                    let opts = BuildOptions {
                        clock_mhz: synth_clock_mhz,
                        ..fpga::options(&board, synth_instr_depth, synth_mem_kib, None, "synth-")?
                    };
                    Some(synth::BoardSynth { board, opts, dir: out.join("synth") })
                }
            };
            let synth = synth.as_ref().map(|s| s as &dyn systole_sweep::synth::Synthesizer);
            let path = pool.install(|| sweep::run(&space, &target, &out, shard, objective, synth))?;
            println!("results: {}", path.display());
            Ok(())
        }
        Command::Report { dir } => {
            let path = sweep::results_path(&dir, None);
            let records = systole_sweep::results::read(&path)?.records;
            if records.is_empty() {
                return Err(miette::miette!(
                    help = "run `systole sweep --out DIR` first (or `systole sweep merge` for shards)",
                    "{}: no results",
                    path.display()
                ));
            }
            let files = systole_reports::write(&records, &dir).map_err(|e| miette::miette!("{}: {e}", dir.display()))?;
            for f in files {
                println!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Quantize { model, out, calibration } => {
            let bytes = model::quantize(&model, &calibration.into())?;
            std::fs::write(&out, bytes).into_diagnostic().wrap_err_with(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Compress { model, out, prune, policy, bits, act_bits, calibration, json } => {
            let choice = model::CompressChoice { prune: prune.as_deref(), policy: policy.as_deref(), bits, act_bits };
            model::compress(&model, &out, &choice, &calibration.into(), json.as_deref())
        }
        Command::ExportModel { network, out, size, seed } => {
            if size < 32 {
                return Err(miette::miette!(
                    help = "use --size 32 or more (224 is the standard)",
                    "--size {size}: the networks downsample by 32"
                ));
            }
            let bytes = systole_onnx::zoo::build(&network, size, seed).ok_or_else(|| {
                miette::miette!(help = format!("choose one of: {}", systole_onnx::zoo::NETWORKS.join(", ")), "unknown network `{network}`")
            })?;
            std::fs::write(&out, bytes).into_diagnostic().wrap_err_with(|| format!("cannot write {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Bench { arch, space, workload, model, calib_samples, repeat } => {
            if let Some(space) = space {
                let target = match (workload, model) {
                    (Some(w), _) => systole_sweep::Target::workload(&Workload::from_file(&w)?),
                    (None, Some(m)) => systole_sweep::Target::network(&model::load(
                        &m,
                        &model::Calibration { file: None, samples: calib_samples, seed: 1 },
                    )?),
                    (None, None) => unreachable!("clap requires --workload or --model"),
                };
                return sweep::bench(&space, &target, repeat.max(1));
            }
            let arch_cfg = ArchConfig::from_file(&arch.expect("clap requires --arch without --space"))?;
            if let Some(path) = model {
                return model::bench(&arch_cfg, &path, &model::Calibration { file: None, samples: calib_samples, seed: 1 }, repeat.max(1));
            }
            let wl = Workload::from_file(&workload.expect("clap requires --workload or --model"))?;
            run::bench(&arch_cfg, &wl, repeat.max(1))
        }
    }
}
