//! `systole fpga`: build a bitstream for a board, flash it, and run a layer on it.

use miette::{miette, IntoDiagnostic, Result};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_fpga::bitstream::{self, BuildOptions, BuildReport};
use systole_fpga::board::{board, Board, BoardMemory};
use systole_fpga::host::{open_serial, Host};
use systole_fpga::{tools, Family};

/// The build options for `b`: the board's defaults where the command line (flags named
/// `--{flag_prefix}instr-depth` and `--{flag_prefix}mem-kib`) gave none.
pub fn options(
    b: &Board,
    instr_depth: Option<usize>,
    mem_kib: Option<usize>,
    memory: Option<BoardMemory>,
    flag_prefix: &str,
) -> Result<BuildOptions> {
    let d = BuildOptions::for_board(b);
    let memory = memory.unwrap_or(d.memory);
    // External DRAM: all of it unless --mem-kib says otherwise.
    let dram = systole_fpga::litedram::config(b).filter(|_| memory == BoardMemory::Dram);
    let memory_bytes = match (mem_kib, dram) {
        (None, Some(d)) => {
            usize::try_from(d.bytes).map_err(|_| miette!("the {}'s DRAM is larger than this machine's addresses", b.name))?
        }
        (None, None) => d.memory_bytes,
        (Some(k), _) => k.checked_mul(1024).ok_or_else(|| miette!("--{flag_prefix}mem-kib {k}: too large"))?,
    };
    Ok(BuildOptions { instr_depth: instr_depth.unwrap_or(d.instr_depth), memory_bytes, memory, ..d })
}

/// The UART rate `fpga build` picks by default for `arch_path`'s ArchConfig on `b`: the
/// fastest the board's bridge and the arch's clock allow.
pub fn default_baud(b: &Board, arch_path: &Path) -> Result<u32> {
    let arch = ArchConfig::from_file(arch_path)?;
    let clock = systole_fpga::clock::plan(b, arch.clock_mhz).map_err(|e| miette!("{}: {e}", arch_path.display()))?;
    Ok(systole_fpga::bitstream::uart_rate(b, clock.mhz, None).map_err(|e| miette!("{e}"))?.0)
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
        let fmax = report.pnr.fmax_mhz();
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

/// Where `systole fpga run` runs.
pub enum Target {
    /// A board on a serial port at a baud rate.
    Port(String, u32),
    /// The board design under Verilator, built with these options in a folder of this
    /// cache; with `back_door`, the instructions and the intermediate values go through the
    /// simulation's access to the memories instead of the simulated UART.
    Sim { opts: BuildOptions, cache: std::path::PathBuf, back_door: bool },
}

/// A byte stream to a board whose reads give up after a time-out.
trait BoardStream: std::io::Read + std::io::Write {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()>;

    /// A way into the board memory besides the host protocol (a simulated board's).
    fn back_door(&mut self) -> Option<&mut systole_fpga::sim::BoardSim> {
        None
    }
}

impl BoardStream for Box<dyn systole_fpga::host::SerialPort> {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.set_timeout(timeout).map_err(std::io::Error::other)
    }
}

impl BoardStream for systole_fpga::sim::BoardSim {
    fn set_read_timeout(&mut self, timeout: Duration) -> std::io::Result<()> {
        self.set_timeout(timeout);
        Ok(())
    }

    fn back_door(&mut self) -> Option<&mut systole_fpga::sim::BoardSim> {
        Some(self)
    }
}

/// Runs the network of `model` on `board` (a real one on a serial port, or its design in
/// Verilator): writes its memory image once, runs every accelerator run in the segments
/// that the board's instruction memories hold and every host step on the host, reads the
/// outputs back, and checks every value against the golden network and every segment's
/// cycles against the simulator's. `timeout` bounds each wait for an answer (a run's also
/// gets twice its time at the core clock).
pub fn run_model(
    board: &Board,
    target: Target,
    timeout: Duration,
    arch_path: &Path,
    model_args: (&Path, &[std::path::PathBuf], Option<&Path>, &crate::model::Calibration),
) -> Result<()> {
    let arch = ArchConfig::from_file(arch_path)?;
    let (model_path, input_files, output, calibration) = model_args;
    let net = crate::model::load(model_path, calibration)?;
    let inputs = crate::model::inputs(&net, input_files, calibration.seed)?;
    match target {
        Target::Port(path, baud) => {
            let serial = open_serial(&path, baud, timeout).map_err(|e| miette!(help = PORT_HELP, "{e}"))?;
            let mut host = Host::new(serial);
            let id = host.identify().map_err(|e| miette!(help = PORT_HELP, "{path}: {e}"))?;
            let core_hz = f64::from(id.clocks_per_bit.max(1)) * f64::from(baud);
            println!(
                "board: {} on {path}, core clock {:.3} MHz ({} clocks per UART bit at {baud} baud)",
                board.name,
                core_hz / 1e6,
                id.clocks_per_bit
            );
            check_fingerprint(&id, &arch)?;
            let run = prepare(&arch, &net, &inputs, usize::from(id.instr_depth), u64::from(id.memory_bytes))?;
            let started = Instant::now();
            host.write_memory(0, &run.image).map_err(|e| miette!("writing the memory image: {e}"))?;
            println!("memory image: {} bytes written once (weights, tables, inputs)", run.image.len());
            let image_bytes = run.image.len();
            execute(&mut host, &id, run, (&arch, &net, &inputs), (core_hz, timeout, started, image_bytes), (output, false))
        }
        Target::Sim { opts, cache, back_door } => {
            let (clock, _) = systole_fpga::bitstream::check(board, &arch, &opts).map_err(|e| miette!("{}: {e}", arch_path.display()))?;
            // Refused before the (slow) Verilator build.
            let run = prepare(&arch, &net, &inputs, opts.instr_depth, opts.memory_bytes as u64)?;
            let started = Instant::now();
            let build = systole_fpga::sim::build(board, &arch, &opts, &cache).map_err(|e| miette!("simulated {}: {e}", board.name))?;
            eprintln!("simulated board: {} ({:.0} s to build or find)", build.binary.display(), started.elapsed().as_secs_f64());
            let sim = systole_fpga::sim::BoardSim::start(&build, timeout, Some(&run.image)).map_err(|e| miette!("{e}"))?;
            let mut host = Host::new(sim);
            let id = host.identify().map_err(|e| miette!("simulated {}: {e}", board.name))?;
            check_fingerprint(&id, &arch)?;
            println!(
                "board: {} in Verilator, core clock {} MHz, {} KiB of {} board memory, {} instructions per unit",
                board.name,
                clock.mhz,
                id.memory_bytes / 1024,
                match opts.memory {
                    BoardMemory::Spram => "SPRAM",
                    BoardMemory::BlockRam => "block RAM",
                    BoardMemory::Dram => "DRAM (LiteDRAM's controller on its memory model)",
                },
                id.instr_depth
            );
            println!("memory image: {} bytes preloaded into the simulated board memory (weights, tables, inputs)", run.image.len());
            execute(&mut host, &id, run, (&arch, &net, &inputs), (clock.mhz * 1e6, timeout, Instant::now(), 0), (output, back_door))
        }
    }
}

/// Refuses a board whose accelerator is not `arch`'s.
fn check_fingerprint(id: &systole_core::bridge::Identity, arch: &ArchConfig) -> Result<()> {
    let want = systole_core::bridge::fingerprint(arch);
    if id.arch != want {
        return Err(miette!(
            help = "build and flash the bitstream of this arch file, or pass the arch file the board's bitstream was built from",
            "the board's accelerator has fingerprint {:#010x}, but `{}` has {want:#010x}",
            id.arch,
            arch.name
        ));
    }
    Ok(())
}

/// A network ready for a board: what the simulator expects of it in segments of the
/// board's instruction depth, its program, its memory image with the inputs placed, and
/// every value the host knows so far (the inputs).
struct Prepared {
    expected: systole_runtime::NetworkRun,
    compiled: systole_runtime::Compiled,
    image: Vec<u8>,
    values: Vec<Vec<i8>>,
    depth: usize,
    /// Per value: the simulator's bytes of its buffer at the end of its run, for a layer
    /// output that a later layer of the run overwrites.
    run_end: Vec<Option<Vec<u8>>>,
}

/// Compiles and simulates `net` for instruction memories of `depth` (checking the
/// simulator against the golden network) and lays out its memory image, which must fit
/// `memory_bytes`.
fn prepare(
    arch: &ArchConfig,
    net: &systole_core::network::Network,
    inputs: &[systole_core::network::HostTensor],
    depth: usize,
    memory_bytes: u64,
) -> Result<Prepared> {
    let compiled = systole_runtime::compile(arch, net)?;
    fits_board_memory(net, compiled.network.dram_size, memory_bytes)?;
    let np = &compiled.network;
    // Each layer output's bytes as its run leaves them (a later layer of the run may reuse
    // the buffer: the board's memory holds the output only until then, and the host reads
    // after the run).
    let mut run_end: Vec<Option<Vec<u8>>> = vec![None; net.values.len()];
    let expected = systole_runtime::simulate_observed(arch, net, np, inputs, Some(depth), |r| {
        for l in r.layers {
            let out = net.nodes[l.node].output;
            let b = np.buffers[out].as_ref().expect("layer outputs have buffers");
            run_end[out] = Some(r.after[b.addr as usize..b.addr as usize + b.size()].to_vec());
        }
    })?;
    crate::model::check_values(net, inputs, &expected.values, "simulator")?;
    let x = systole_golden::network::input_values(net, inputs).into_diagnostic()?;
    let mut values: Vec<Vec<i8>> = vec![Vec::new(); net.values.len()];
    let mut image = np.initial_dram();
    for (i, data) in net.inputs.iter().zip(x) {
        if let Some(b) = &np.buffers[i.value] {
            b.write(&mut image, &systole_core::network::to_nhwc(&net.values[i.value].shape, &data));
        }
        values[i.value] = data;
    }
    // Kept only where the run's end no longer holds the layer's output: for those the host
    // compares the buffer with the simulator's at the run's end instead.
    for (out, bytes) in run_end.iter_mut().enumerate() {
        if let (Some(end), Some(b)) = (bytes.as_ref(), np.buffers[out].as_ref()) {
            let at_zero = systole_core::program::TensorPlacement { addr: 0, ..b.clone() };
            if systole_core::network::from_nhwc(&at_zero.read(end), net.values[out].shape.len()) == expected.values[out] {
                *bytes = None;
            }
        }
    }
    Ok(Prepared { expected, compiled, image, values, depth, run_end })
}

/// Refuses a network whose memory image (`needs` bytes) is larger than the board's memory.
fn fits_board_memory(net: &systole_core::network::Network, needs: u64, holds: u64) -> Result<()> {
    if needs > holds {
        return Err(miette!(
            help = "build the bitstream with a larger --mem-kib (or for a board with more memory), or run a smaller network",
            "network `{}` needs {needs} bytes of board memory (weights, tables and activations), the board memory holds {holds} bytes",
            net.name
        ));
    }
    Ok(())
}

/// Bytes of an instruction over the host protocol: the command, unit and index, the packed
/// instruction, the acknowledgement.
const INSTR_BYTES: usize = 1 + 1 + 2 + 64 + 1;

/// Bytes of a run over the host protocol: the command and three counts, the cycles.
const START_BYTES: usize = 1 + 6 + 6;

/// The simulated board's back door, when one is asked for.
fn door<P: BoardStream>(host: &mut Host<P>, back_door: bool) -> Option<&mut systole_fpga::sim::BoardSim> {
    host.port_mut().back_door().filter(|_| back_door)
}

/// [`run_model`] on a connected board whose identity is `id`, whose core runs at `core_hz`
/// and whose memory holds `run`'s image (since `started`, with `moved` bytes sent so far).
fn execute<P: BoardStream>(
    host: &mut Host<P>,
    id: &systole_core::bridge::Identity,
    run: Prepared,
    (arch, net, inputs): (&ArchConfig, &systole_core::network::Network, &[systole_core::network::HostTensor]),
    (core_hz, timeout, started, mut moved): (f64, Duration, Instant, usize),
    (output, back_door): (Option<&Path>, bool),
) -> Result<()> {
    use systole_core::network::{from_nhwc, to_nhwc};
    use systole_core::program::NetStep;
    let Prepared { expected, compiled, mut image, mut values, depth, run_end } = run;
    let mut overwritten = 0;
    let np = &compiled.network;
    let mut segment = 0;
    let mut cycles = 0u64;
    // Cycles the board's memory held the core's clock, from a board whose memory can.
    let mut stalls: Option<u64> = None;
    let mut through_door = 0;
    let runs = np.steps.iter().filter(|s| matches!(s, NetStep::Run { .. })).count();
    let mut runs_done = 0;
    for step in &np.steps {
        match step {
            NetStep::Run { program, layers } => {
                let bounds = systole_core::segment::segment_bounds(&program.instrs, depth).map_err(|e| miette!("{e}"))?;
                for range in bounds {
                    let part = systole_core::segment::segment_program(program, range);

                    let want = expected.segment_cycles[segment];
                    let wait = timeout + Duration::from_secs_f64(2.0 * want as f64 / core_hz);
                    host.port_mut().set_read_timeout(wait).into_diagnostic()?;
                    let got = match door(host, back_door) {
                        Some(door) => {
                            let images =
                                systole_fpga::host::packed_instructions(id, arch, &part).map_err(|e| miette!("segment {segment}: {e}"))?;
                            for (unit, unit_images) in images.iter().enumerate() {
                                door.write_instructions(unit as u8, 0, unit_images)
                                    .map_err(|e| miette!("segment {segment}: writing instructions through the back door: {e}"))?;
                                through_door += 64 * unit_images.len();
                            }
                            moved += START_BYTES;
                            host.start(images.map(|i| i.len() as u16)).map_err(|e| miette!("segment {segment}: {e}"))?
                        }
                        None => {
                            moved += part.instrs.len() * INSTR_BYTES + START_BYTES;
                            host.load_and_start(id, arch, &part).map_err(|e| miette!("segment {segment}: {e}"))?
                        }
                    };
                    if got != want {
                        return Err(miette!(
                            "segment {segment} ({} instructions): the board counted {got} cycles, the simulator {want}",
                            part.instrs.len()
                        ));
                    }
                    cycles += got;
                    if let Some(held) = host.stalls().map_err(|e| miette!("segment {segment}: {e}"))? {
                        stalls = Some(stalls.unwrap_or(0) + held);
                    }
                    segment += 1;
                }
                runs_done += 1;
                eprintln!(
                    "run {runs_done} of {runs}: {segment} segment(s), {cycles} cycles{} so far; {:.0} s",
                    stalls.map(|s| format!(" and {s} stalls")).unwrap_or_default(),
                    started.elapsed().as_secs_f64()
                );
                for l in layers {
                    let out = net.nodes[l.node].output;
                    let b = np.buffers[out].as_ref().expect("layer outputs have buffers");
                    let name = &net.nodes[l.node].name;
                    // The network's outputs come over the host protocol; a simulated
                    // board's intermediate values through its back door.
                    let bytes = match door(host, back_door).filter(|_| net.outputs.iter().all(|o| o.value != out)) {
                        Some(door) => {
                            through_door += b.size();
                            door.peek(b.addr, b.size()).map_err(|e| miette!("reading `{name}` through the back door: {e}"))?
                        }
                        None => {
                            moved += b.size();
                            host.read_memory(b.addr as u32, b.size() as u32).map_err(|e| miette!("reading `{name}`: {e}"))?
                        }
                    };
                    image[b.addr as usize..b.addr as usize + b.size()].copy_from_slice(&bytes);
                    match &run_end[out] {
                        Some(want) if *want != bytes => {
                            let i = want.iter().zip(&bytes).position(|(a, b)| a != b).unwrap_or(0);
                            return Err(miette!(
                                "`{name}`'s buffer (overwritten later in its run): the board's memory at the run's end differs from the simulator's at byte {i}: simulator {}, board {}",
                                want[i],
                                bytes[i]
                            ));
                        }
                        Some(_) => {
                            overwritten += 1;
                            values[out] = expected.values[out].clone();
                        }
                        None => values[out] = from_nhwc(&b.read(&image), net.values[out].shape.len()),
                    }
                }
            }
            &NetStep::Host { node } => {
                let result = systole_golden::network::eval_node(net, node, &values, |_, layer, data| {
                    Ok::<_, std::convert::Infallible>(systole_golden::layer(layer, data))
                })
                .unwrap_or_else(|never| match never {});
                let out = net.nodes[node].output;
                values[out] = result;
                if let Some(b) = &np.buffers[out] {
                    b.write(&mut image, &to_nhwc(&net.values[out].shape, &values[out]));
                    let range = b.addr as usize..b.addr as usize + b.size();
                    let name = &net.nodes[node].name;
                    match door(host, back_door) {
                        Some(door) => {
                            door.poke(b.addr, &image[range]).map_err(|e| miette!("writing `{name}` through the back door: {e}"))?;
                            through_door += b.size();
                        }
                        None => {
                            host.write_memory(b.addr as u32, &image[range]).map_err(|e| miette!("writing `{name}`: {e}"))?;
                            moved += b.size();
                        }
                    }
                }
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    crate::model::check_values(net, inputs, &values, "board")?;
    println!("outputs: every node's output bit-exact with the golden network ({} nodes)", net.nodes.len());
    if overwritten > 0 {
        println!(
            "  ({overwritten} layer outputs are overwritten by later layers of their run before the host reads: for those the board's memory at the run's end equals the simulator's, whose layer outputs are golden's)"
        );
    }
    println!(
        "cycles: {cycles} in {segment} segment(s) of at most {depth} instructions per unit, each as the simulator predicts ({} cycles in all)",
        expected.segment_cycles.iter().sum::<u64>()
    );
    let total = cycles + stalls.unwrap_or(0);
    if let Some(held) = stalls {
        println!(
            "stalls: {held} cycles in which the DRAM held the core's clock ({:.1}% of the {total} cycles the runs took), counted apart",
            100.0 * held as f64 / total.max(1) as f64
        );
    }
    // A large network on a slow board runs well under one inference a second: three
    // decimals then, so that the figure is not rounded away.
    let rate = core_hz / total.max(1) as f64;
    let rate = if rate >= 10.0 { format!("{rate:.1}") } else { format!("{rate:.3}") };
    println!(
        "inference: {:.3} ms of accelerator time at {:.3} MHz = {rate} inferences/s; {:.2} s on the wall with the host protocol ({} bytes over it)",
        total as f64 / core_hz * 1e3,
        core_hz / 1e6,
        wall,
        moved
    );
    if through_door > 0 {
        println!(
            "back door: {through_door} bytes of instructions and intermediate values written and read through the simulation's access to the memories, not the simulated UART"
        );
    }
    if let Some(path) = output {
        let run = systole_runtime::NetworkRun {
            outputs: systole_golden::network::outputs(net, &values),
            values,
            report: expected.report.clone(),
            rows: vec![],
            segment_cycles: vec![],
        };
        for f in crate::model::write_outputs(net, &run, path)? {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}
