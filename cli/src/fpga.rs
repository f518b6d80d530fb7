//! `systole fpga`: build a bitstream for a board, flash it, and run a layer on it.

use miette::{miette, IntoDiagnostic, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_fpga::bitstream::{self, BuildOptions, BuildReport};
use systole_fpga::board::{board, Board};
use systole_fpga::host::{open_serial, Host};
use systole_fpga::{tools, Family};

/// The build options for `b`: the board's defaults where the command line (flags named
/// `--{flag_prefix}instr-depth` and `--{flag_prefix}mem-kib`) gave none.
pub fn options(b: &Board, instr_depth: Option<usize>, mem_kib: Option<usize>, flag_prefix: &str) -> Result<BuildOptions> {
    let d = BuildOptions::for_board(b);
    let memory_bytes = match mem_kib {
        None => d.memory_bytes,
        Some(k) => k.checked_mul(1024).ok_or_else(|| miette!("--{flag_prefix}mem-kib {k}: too large"))?,
    };
    Ok(BuildOptions { instr_depth: instr_depth.unwrap_or(d.instr_depth), memory_bytes, ..d })
}

/// The board named `name` (from `--{flag}`).
pub fn board_named(name: &str, flag: &str) -> Result<Board> {
    board(name).map_err(|e| miette!(help = format!("pass --{flag} with one of the names listed"), "--{flag}: {e}"))
}

/// Builds `arch`'s bitstream for the board `b` in `out`; fails after writing the report if
/// the clock misses its target.
pub fn build(b: &Board, arch_path: &Path, out: &Path, opts: &BuildOptions) -> Result<BuildReport> {
    let arch = ArchConfig::from_file(arch_path)?;
    let started = Instant::now();
    let mut step_started = started;
    let mut announce = |step: tools::Step, log: &Path| {
        if step != tools::Step::Synthesis {
            eprintln!("  done in {:.0} s", step_started.elapsed().as_secs_f64());
        }
        step_started = Instant::now();
        eprintln!("{step}: log in {}", log.display());
    };
    let report = bitstream::build(b, &arch, opts, out, &mut announce)
        .map_err(|e| miette!("{}: building `{}` for {}: {e}", arch_path.display(), arch.name, b.name))?;
    eprintln!("  done in {:.0} s; {:.0} s in all\n", step_started.elapsed().as_secs_f64(), started.elapsed().as_secs_f64());
    print!("{}", report.text());
    if !report.timing_met {
        let fmax = report.pnr.clocks.iter().map(|c| c.fmax_mhz).fold(f64::INFINITY, f64::min);
        let slower = format!(
            "pass --clock-mhz {} (the Fmax reached) or set clock_mhz in {}, or try another placement with --seed {}",
            fmax.floor().max(1.0),
            arch_path.display(),
            opts.seed.wrapping_add(1)
        );
        let full = ArchConfig { requant_stages: systole_hdl::requant::MAX_STAGES, ..arch.clone() };
        let help = if arch.requant_stages < full.requant_stages {
            format!(
                "set requant_stages = {} in {} to pipeline the requantizer fully (a store then waits {} cycles), or {slower}",
                full.requant_stages,
                arch_path.display(),
                full.store_latency()
            )
        } else {
            slower
        };
        return Err(miette!(
            help = help,
            "timing not met on {}: the bitstream in {} may misbehave (see report.txt)",
            b.name,
            out.display()
        ));
    }
    Ok(report)
}

/// Flashes `bitstream` to the board `board_name` with openFPGALoader, or iceprog for
/// iCE40 boards if openFPGALoader is missing.
pub fn flash(board_name: &str, bitstream: &Path) -> Result<()> {
    let b = board_named(board_name, "board")?;
    let want = if b.family == Family::Ice40 { "bin" } else { "bit" };
    if bitstream.extension().and_then(|e| e.to_str()) != Some(want) {
        return Err(miette!(
            help = format!("pass the design.{want} that `systole fpga build --board {}` wrote", b.name),
            "{}: {} bitstreams are .{want} files",
            bitstream.display(),
            b.name
        ));
    }
    if !bitstream.is_file() {
        return Err(miette!(help = "run `systole fpga build` first", "{}: no such file", bitstream.display()));
    }
    let (program, args) = match (tools::find("openFPGALoader"), b.family) {
        (Ok(p), _) => (p, vec!["-b".to_string(), b.loader_board.to_string(), bitstream.display().to_string()]),
        (Err(_), Family::Ice40) => (tools::find("iceprog").into_diagnostic()?, vec![bitstream.display().to_string()]),
        (Err(e), Family::Ecp5) => return Err(e).into_diagnostic(),
    };
    println!("{} {}", program.display(), args.join(" "));
    let status = Command::new(&program).args(&args).status().into_diagnostic()?;
    if !status.success() {
        return Err(miette!(
            help = "check that the board is plugged in and that you may open its USB device (udev rules or plugdev group)",
            "{} failed ({status})",
            program.display()
        ));
    }
    Ok(())
}

/// Where to look for a board's serial port.
const PORT_HELP: &str =
    "pass the board's UART with --port (FTDI boards show up as /dev/ttyUSB*, USB-serial adapters as /dev/ttyUSB* or /dev/ttyACM*)";

/// Streams one layer of `workload` to the board on `port` and checks its output against
/// the golden model and its cycle count against the simulator; waits up to `timeout` for
/// each answer.
pub fn run(port: &str, baud: u32, timeout: Duration, arch_path: &Path, workload: &Path, layer: Option<&str>) -> Result<()> {
    let arch = ArchConfig::from_file(arch_path)?;
    let wl = Workload::from_file(workload)?;
    let serial = open_serial(port, baud, timeout).map_err(|e| miette!(help = PORT_HELP, "{e}"))?;
    let idx = crate::layer_index(&wl, workload, layer)?;
    let l = &wl.layers[idx];
    let data = wl.layer_data(idx)?;
    let program = systole_compiler::compile_layer(&arch, l, &data)?;
    let (_, sim) = systole_sim::run(&arch, &program, &[&data.input]).map_err(|e| miette!("layer `{}`: simulator: {e}", l.name))?;
    let expected = sim.report.cycles;
    let mut host = Host::new(serial);
    let id = host.identify().map_err(|e| miette!(help = PORT_HELP, "{port}: {e}"))?;
    // The run's answer waits on top twice the run's time at the board's core clock.
    let core_hz = f64::from(id.clocks_per_bit.max(1)) * f64::from(baud);
    println!("board: core clock {:.3} MHz ({} clocks per UART bit at {baud} baud)", core_hz / 1e6, id.clocks_per_bit);
    let run_timeout = timeout + Duration::from_secs_f64(2.0 * expected as f64 / core_hz);
    host.port_mut().set_timeout(run_timeout).map_err(|e| miette!("{port}: cannot set the read timeout: {e}"))?;
    let dram = program.dram_with_inputs(&[&data.input]);
    println!("layer `{}`: {} instructions, {} bytes of memory, sending to {port} at {baud} baud", l.name, program.instrs.len(), dram.len());
    let board_run = host.run_program(&id, &arch, &program, &dram).map_err(|e| miette!("{port}: {e}"))?;
    let out = program.outputs[0].read(&board_run.dram);
    let golden = systole_golden::layer(l, &data);
    if let Some((i, g, b)) = golden.first_mismatch(&out) {
        return Err(miette!("layer `{}`: the board's output differs from the golden model at NHWC {i:?}: golden {g}, board {b}", l.name));
    }
    println!("output: bit-exact with the golden model ({} values)", out.data.len());
    if board_run.cycles != expected {
        return Err(miette!("layer `{}`: the board counted {} cycles, the simulator {expected}", l.name, board_run.cycles));
    }
    println!("cycles: {} on the board, as the simulator predicts", board_run.cycles);
    Ok(())
}
