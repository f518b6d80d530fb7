//! `systole fpga run` end to end without a board: the command opens a pseudo-terminal as
//! its serial port, and on the other end the board core's RTL runs in rust-hdl's simulator
//! behind a simulated 8N1 line. The command must load the layer, run it, find the board's
//! output equal to the golden model's and its cycle count equal to the simulator's.

use serialport::{SerialPort, TTYPort};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use systole_core::isa::Unit;
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_hdl::board::BoardCore;
use systole_testbenches::board_uart::SimulatedBoard;

const ARCH: &str = "name = \"2x2-os\"\nrows = 2\ncols = 2\ndataflow = \"os\"\nact_sram_kib = 1\nwgt_sram_kib = 1\nacc_sram_kib = 1\n\
                    param_entries = 32\ndram_bytes_per_cycle = 2\ndram_latency = 3\nclock_mhz = 500.0\n";
const WORKLOAD: &str = "name = \"tiny\"\nseed = 5\n\n[[layer]]\nname = \"fc\"\nop = \"gemm\"\nm = 2\nk = 3\nn = 5\nactivation = \"relu\"\n";

/// Clocks per UART bit of the simulated board (the pty ignores the baud rate).
const CLOCKS_PER_BIT: usize = 4;

/// The board core sized for the workload's first layer, as `systole fpga build` would be
/// asked to build it.
fn board_for(arch_file: &Path, workload_file: &Path) -> SimulatedBoard {
    let arch = ArchConfig::from_file(arch_file).unwrap();
    let wl = Workload::from_file(workload_file).unwrap();
    let (depth, bytes) = board_needs(&arch, &wl, 0);
    let memory = bytes.next_power_of_two();
    SimulatedBoard::new(BoardCore::new(&arch, depth, memory, CLOCKS_PER_BIT), CLOCKS_PER_BIT)
}

/// Carries bytes between the pty and the simulated board, clocking it, until `stop`.
fn pump(mut pty: TTYPort, mut board: SimulatedBoard, stop: Arc<AtomicBool>) {
    pty.set_timeout(Duration::from_millis(1)).unwrap();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(n) = pty.read(&mut buf) {
            board.write_all(&buf[..n]).unwrap();
        }
        board.run(500);
        let sent = board.take_sent();
        if !sent.is_empty() {
            pty.write_all(&sent).unwrap();
        }
    }
}

#[test]
fn fpga_run_streams_a_layer_to_a_simulated_board() {
    let dir = std::env::temp_dir().join(format!("systole-board-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (arch, workload) = (dir.join("arch.toml"), dir.join("tiny.toml"));
    std::fs::write(&arch, ARCH).unwrap();
    std::fs::write(&workload, WORKLOAD).unwrap();
    let board = board_for(&arch, &workload);
    // The test keeps the terminal's own end open, so that the line stays up between opens.
    let (host_side, terminal) = TTYPort::pair().unwrap();
    let port = terminal.name().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pumping = {
        let stop = stop.clone();
        std::thread::spawn(move || pump(host_side, board, stop))
    };
    let out = Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["fpga", "run", "--port", &port, "--baud", "115200", "--timeout-s", "600"])
        .arg("--arch")
        .arg(&arch)
        .arg("--workload")
        .arg(&workload)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    pumping.join().unwrap();
    drop(terminal);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}{stderr}");
    // 4 clocks per bit x 115200 baud: the core clock the run's time-out is measured in.
    assert!(stdout.contains("board: core clock 0.461 MHz (4 clocks per UART bit at 115200 baud)"), "{stdout}");
    assert!(stdout.contains("output: bit-exact with the golden model (10 values)"), "{stdout}");
    assert!(stdout.contains("as the simulator predicts"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a layer needs of a board build: instructions of its busiest unit, memory bytes.
fn board_needs(arch: &ArchConfig, wl: &Workload, idx: usize) -> (usize, usize) {
    let data = wl.layer_data(idx).unwrap();
    let program = systole_compiler::compile_layer(arch, &wl.layers[idx], &data).unwrap();
    let depth = Unit::ALL.iter().map(|&u| program.count(u)).max().unwrap();
    (depth, program.dram_with_inputs(&[&data.input]).len())
}

/// Each layer of `configs/workloads/board.toml` compiled for `configs/archs/<arch>`: its
/// name and what it needs of a board build.
fn board_workload_needs(arch: &str) -> Vec<(String, (usize, usize))> {
    let needs = workload_needs(arch, "board.toml");
    assert!(needs.len() >= 4);
    needs
}

/// Each layer of `configs/workloads/<workload>` compiled for `configs/archs/<arch>`: its
/// name and what it needs of a board build.
fn workload_needs(arch: &str, workload: &str) -> Vec<(String, (usize, usize))> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let arch = ArchConfig::from_file(&root.join("configs/archs").join(arch)).unwrap();
    let wl = Workload::from_file(&root.join("configs/workloads").join(workload)).unwrap();
    wl.layers.iter().enumerate().map(|(idx, l)| (l.name.clone(), board_needs(&arch, &wl, idx))).collect()
}

#[test]
fn the_bundled_board_workload_fits_the_default_build_of_the_4x4_preset() {
    let opts = systole_fpga::bitstream::BuildOptions::default();
    let needs = board_workload_needs("4x4.toml");
    assert!(needs.iter().all(|&(_, (depth, bytes))| depth <= opts.instr_depth && bytes <= opts.memory_bytes), "{needs:?}");
}

/// The small-FPGA 4x4 runs depthwise layers as grouped convolutions, one GEMM per channel:
/// every layer but the depthwise one fits the default build.
#[test]
fn the_board_workload_on_the_small_fpga_4x4() {
    let opts = systole_fpga::bitstream::BuildOptions::default();
    let needs = board_workload_needs("4x4-small.toml");
    let over: Vec<&str> = needs
        .iter()
        .filter(|&&(_, (depth, bytes))| depth > opts.instr_depth || bytes > opts.memory_bytes)
        .map(|(name, _)| name.as_str())
        .collect();
    eprintln!("{needs:?}");
    assert!(over.iter().all(|name| name.contains("depthwise")), "{needs:?}");
}

/// The iCEBreaker's workload fits the default build of its preset on that board (32
/// instructions per unit, 2 KiB).
#[test]
fn the_icebreaker_workload_fits_the_default_build_of_its_preset() {
    let opts = systole_fpga::bitstream::BuildOptions::for_board(&systole_fpga::board::board("icebreaker").unwrap());
    assert_eq!((opts.instr_depth, opts.memory_bytes), (32, 2048));
    let needs = workload_needs("icebreaker.toml", "icebreaker.toml");
    eprintln!("{needs:?}");
    assert!(
        needs.len() >= 3 && needs.iter().all(|&(_, (depth, bytes))| depth <= opts.instr_depth && bytes <= opts.memory_bytes),
        "{needs:?}"
    );
}

/// `fpga run --model` on a port whose board holds another accelerator: refused after the
/// identity, naming both fingerprints and the fix.
#[test]
fn fpga_run_refuses_a_board_with_another_accelerator() {
    let dir = std::env::temp_dir().join(format!("systole-board-other-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let arch = dir.join("arch.toml");
    std::fs::write(&arch, ARCH).unwrap();
    // The board runs the 2x2 OS instance; the command asks for the 4x4 preset.
    let board = SimulatedBoard::new(BoardCore::new(&ArchConfig::from_file(&arch).unwrap(), 4, 256, CLOCKS_PER_BIT), CLOCKS_PER_BIT);
    let (host_side, terminal) = TTYPort::pair().unwrap();
    let port = terminal.name().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let pumping = {
        let stop = stop.clone();
        std::thread::spawn(move || pump(host_side, board, stop))
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["fpga", "run", "--board", "icebreaker", "--port", &port, "--timeout-s", "60", "--arch", "configs/archs/4x4.toml"])
        .args(["--model", "configs/models/tiny_qop.onnx"])
        .current_dir(repo)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    pumping.join().unwrap();
    drop(terminal);
    let err: String = String::from_utf8_lossy(&out.stderr).chars().filter(|c| !c.is_whitespace() && *c != '│').collect();
    assert!(!out.status.success(), "{err}");
    let want = format!("{:#010x}", systole_core::bridge::fingerprint(&ArchConfig::from_file(&arch).unwrap()));
    assert!(err.contains(&format!("theboard'sacceleratorhasfingerprint{want}")) && err.contains("`4x4-ws`has"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
