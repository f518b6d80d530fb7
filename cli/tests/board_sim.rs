//! `systole fpga run --model --sim`: a whole network on a board's design under Verilator
//! (accelerator, board memory, host bridge and UART, as `fpga build` emits them), driven
//! over the host protocol. The board's output must equal ONNX Runtime's (made on an
//! AVX512-VNNI machine, `configs/models/tiny_qop_out.npy`), every node's the golden
//! network's, and every segment's cycles the simulator's; bad input gets an error naming
//! the sizes or the fix.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn systole(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_systole")).args(args).current_dir(repo()).env("NO_COLOR", "1").output().unwrap()
}

/// The Verilated designs of the tests, kept across runs like the CLI's default cache.
fn cache() -> String {
    repo().join("target/fpga-sim-tests").display().to_string()
}

/// Runs the bundled tiny CNN with its input on `board`'s design built from `arch` and
/// `flags` in Verilator; checks that every node is golden's, every segment's cycles the
/// simulator's and the output ONNX Runtime's bit for bit; answers what the run printed.
fn tiny_model_on(board: &str, arch: &str, flags: &[&str]) -> String {
    let out = std::env::temp_dir().join(format!("systole-board-sim-{board}-{}.npy", std::process::id()));
    let cache = cache();
    let mut args = vec!["fpga", "run", "--sim", "--board", board, "--arch", arch, "--sim-cache", &cache];
    args.extend(flags);
    args.extend(["--model", "configs/models/tiny_qop.onnx", "--input", "configs/models/tiny_input.npy", "--output", out.to_str().unwrap()]);
    let run = systole(&args);
    let text = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(text.contains("every node's output bit-exact with the golden network (12 nodes)"), "{text}");
    assert!(text.contains("each as the simulator predicts"), "{text}");
    let got = systole_core::npy::read::<f32>(&out, &[1, 10], "board").unwrap();
    let ort = systole_core::npy::read::<f32>(&repo().join("configs/models/tiny_qop_out.npy"), &[1, 10], "ort").unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), ort.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    text
}

#[test]
fn the_tiny_model_runs_on_the_icebreaker_spram_design() {
    let flags = ["--memory", "spram", "--mem-kib", "128"];
    let text = tiny_model_on("icebreaker", "configs/archs/icebreaker-spram.toml", &flags);
    assert!(text.contains("128 KiB of SPRAM board memory, 32 instructions per unit"), "{text}");
    assert!(!text.contains("stalls"), "fixed-latency memory never stalls: {text}");
    assert!(!text.contains("back door"), "everything but the memory image over the host protocol: {text}");
}

/// An ECP5 design on LiteDRAM's SDR controller and its memory model (the ULX3S board with
/// the OrangeCrab's smaller 4x6 arch, which builds faster under Verilator): the core's
/// cycles are the simulator's, and the cycles the DRAM held its clock are counted apart.
#[test]
fn the_tiny_model_runs_on_an_ecp5_design_with_litedram() {
    let text = tiny_model_on("ulx3s", "configs/archs/orangecrab.toml", &["--memory", "dram", "--baud", "12500000"]);
    assert!(text.contains("32768 KiB of DRAM (LiteDRAM's controller on its memory model) board memory"), "{text}");
    assert!(text.contains("cycles in which the DRAM held the core's clock"), "{text}");
    assert!(!text.contains("back door"), "{text}");
}

/// The OrangeCrab's DDR3 through LiteDRAM's controller and its memory model (128-bit
/// words, one burst each, 8 banks), with `--back-door` as for MobileNetV2 below: the
/// instructions and the intermediate values through the simulation's access to the
/// memories, the runs and the output over the host protocol, all of it checked as without.
#[test]
fn the_tiny_model_runs_on_the_orangecrab_ddr3_design_through_the_back_door() {
    let flags = ["--memory", "dram", "--baud", "12500000", "--back-door"];
    let text = tiny_model_on("orangecrab", "configs/archs/orangecrab.toml", &flags);
    assert!(text.contains("131072 KiB of DRAM (LiteDRAM's controller on its memory model) board memory"), "{text}");
    assert!(text.contains("cycles in which the DRAM held the core's clock"), "{text}");
    assert!(text.contains("back door:"), "{text}");
}

/// The error text of a failing run, without the spaces and frame that miette wraps it in.
fn failure(args: &[&str]) -> String {
    let run = systole(args);
    let err = String::from_utf8_lossy(&run.stderr).to_string();
    assert!(!run.status.success(), "{args:?} succeeded: {}", String::from_utf8_lossy(&run.stdout));
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    squeeze(&err)
}

/// `text` without whitespace and miette's frame characters, so that a phrase is found
/// wherever the terminal width broke it.
fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && !['│', '×'].contains(c)).collect()
}

/// `err` (squeezed) holds every phrase.
fn says(err: &str, phrases: &[&str]) -> bool {
    phrases.iter().all(|p| err.contains(&squeeze(p)))
}

#[test]
fn bad_runs_name_the_sizes_or_the_fix() {
    let tiny = ["--model", "configs/models/tiny_qop.onnx"];
    fn sim<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["fpga", "run", "--sim", "--board", "icebreaker"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&["--model", "configs/models/tiny_qop.onnx"]);
        a
    }
    // The network's image (8,256 bytes) in 2 KiB of block RAM: refused before any build.
    let e = failure(&sim(&["--arch", "configs/archs/icebreaker.toml"]));
    assert!(says(&e, &["needs 8256 bytes of board memory", "holds 2048 bytes", "--mem-kib"]), "{e}");
    // SPRAM under an arch with two DRAM ports.
    let e = failure(&sim(&["--arch", "configs/archs/icebreaker.toml", "--memory", "spram", "--mem-kib", "128"]));
    assert!(says(&e, &["single-port SPRAM", "dram_single_port = true"]), "{e}");
    // SPRAM in sizes the UP5K does not have, and on a board without it.
    let e = failure(&sim(&["--arch", "configs/archs/icebreaker-spram.toml", "--memory", "spram", "--mem-kib", "96"]));
    assert!(says(&e, &["--mem-kib 32, 64 or 128"]), "{e}");
    let e =
        failure(&["fpga", "run", "--sim", "--board", "ulx3s", "--arch", "configs/archs/ulx3s.toml", "--memory", "spram", tiny[0], tiny[1]]);
    assert!(says(&e, &["no single-port RAMs"]), "{e}");
    // A unit the board designs do not include.
    let vector = std::env::temp_dir().join(format!("systole-board-sim-vector-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(repo().join("configs/archs/4x4.toml")).unwrap() + "vector_lanes = 4\n";
    std::fs::write(&vector, text).unwrap();
    let e = failure(&sim(&["--arch", vector.to_str().unwrap()]));
    let _ = std::fs::remove_file(&vector);
    assert!(says(&e, &["vector_lanes = 4", "use vector_lanes = 0"]), "{e}");
    // An absent serial port.
    let e = failure(&[
        "fpga",
        "run",
        "--board",
        "icebreaker",
        "--port",
        "/dev/systole-no-such-port",
        "--arch",
        "configs/archs/icebreaker.toml",
        tiny[0],
        tiny[1],
    ]);
    assert!(says(&e, &["cannot open serial port /dev/systole-no-such-port", "--port"]), "{e}");
    // --sim runs networks only.
    let e = failure(&[
        "fpga",
        "run",
        "--sim",
        "--board",
        "icebreaker",
        "--arch",
        "configs/archs/icebreaker.toml",
        "--workload",
        "configs/workloads/board.toml",
    ]);
    assert!(says(&e, &["--sim runs a whole network"]), "{e}");
    // External DRAM only where LiteDRAM drives some, and no bitstream of it yet.
    let e = failure(&[
        "fpga",
        "run",
        "--sim",
        "--board",
        "icebreaker",
        "--arch",
        "configs/archs/icebreaker.toml",
        "--memory",
        "dram",
        tiny[0],
        tiny[1],
    ]);
    assert!(says(&e, &["--memory dram: the icebreaker has no external DRAM", "--memory block-ram"]), "{e}");
    // The OrangeCrab's DDR3 bitstream would need read leveling; the ULX3S's SDRAM needs
    // the PLL's second output for its clock, which the oscillator's own 25 MHz lacks, and
    // LiteDRAM's refresher 100 cycles per 7.8 us. All are refused before anything is
    // generated.
    let out = std::env::temp_dir().join(format!("systole-dram-build-{}", std::process::id()));
    let build = |board: &str, arch: &str, clock: &[&str]| {
        let mut args = vec!["fpga", "build", "--board", board, "--arch", arch, "--memory", "dram", "--out", out.to_str().unwrap()];
        args.extend_from_slice(clock);
        failure(&args)
    };
    let e = build("orangecrab", "configs/archs/orangecrab.toml", &[]);
    assert!(
        says(&e, &["--memory dram: the DDR3 (MT41K64M16) needs", "read leveling", "fpga run --sim --memory dram", "--memory block-ram"]),
        "{e}"
    );
    let e = build("ulx3s", "configs/archs/ulx3s.toml", &["--clock-mhz", "25"]);
    assert!(says(&e, &["--memory dram: a 25 MHz core clock does not come from the ulx3s's PLL", "pass a --clock-mhz"]), "{e}");
    let e = build("ulx3s", "configs/archs/ulx3s-dram.toml", &["--clock-mhz", "12.5"]);
    assert!(
        says(&e, &["a 12.5 MHz core clock is too slow for LiteDRAM", "7.8 us for the MT48LC16M16", "pass --clock-mhz 13 or more"]),
        "{e}"
    );
    assert!(!out.join("design.v").exists(), "nothing is built");
}

/// The same network on an ECP5 board's design (the OrangeCrab preset, block RAM): about a
/// minute with its Verilator build.
#[test]
#[ignore]
fn the_tiny_model_runs_on_the_orangecrab_design() {
    tiny_model_on("orangecrab", "configs/archs/orangecrab.toml", &["--baud", "3000000"]);
}

/// MobileNetV2 at 224 (README command 1 fetches `target/mobilenetv2.onnx`) on the ULX3S
/// DRAM preset's design (`ulx3s-dram.toml`, 30 MHz, as its bitstream is built) with its
/// SDRAM through LiteDRAM's model: every node golden, every
/// segment's cycles the simulator's, the DRAM's stalls counted apart. Long under
/// Verilator: `cargo test --release -p systole --test board_sim -- --ignored mobilenetv2`.
#[test]
#[ignore]
fn mobilenetv2_runs_on_the_ulx3s_dram_design() {
    let model = repo().join("target/mobilenetv2.onnx");
    assert!(model.is_file(), "{} is missing: run README command 1 first", model.display());
    let cache = cache();
    let run = systole(&[
        "fpga",
        "run",
        "--sim",
        "--board",
        "ulx3s",
        "--arch",
        "configs/archs/ulx3s-dram.toml",
        "--memory",
        "dram",
        "--baud",
        "3000000",
        "--timeout-s",
        "20000",
        "--sim-cache",
        &cache,
        "--back-door",
        "--model",
        model.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(text.contains("every node's output bit-exact with the golden network"), "{text}");
    assert!(text.contains("each as the simulator predicts"), "{text}");
    // The output came over the host protocol, the intermediate values through the
    // simulation's back door (checked against golden all the same).
    assert!(text.contains("back door:"), "{text}");
    assert!(text.contains("cycles in which the DRAM held the core's clock"), "{text}");
    eprintln!("{text}");
}
