//! The `systole` binary end to end: bad input gets an error naming the file, the field and
//! the fix (snapshotted with paths normalized), and data files feed real tensors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch folder removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("systole-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An architecture file: the 16x16 preset's required fields (`ArchConfig::default()`) with
/// the lines of `over` replacing or adding fields.
fn arch(over: &str) -> String {
    let base = "name = \"16x16-ws\"\nrows = 16\ncols = 16\ndataflow = \"ws\"\nact_sram_kib = 256\nwgt_sram_kib = 64\n\
                acc_sram_kib = 64\nparam_entries = 2048\ndram_bytes_per_cycle = 16\ndram_latency = 40\nclock_mhz = 500.0\n";
    let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_string();
    let given: Vec<String> = over.lines().map(key).collect();
    base.lines().filter(|l| !given.contains(&key(l))).map(|l| format!("{l}\n")).collect::<String>() + over
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn systole_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_systole")).args(args).current_dir(dir).env("NO_COLOR", "1").output().unwrap()
}

fn systole(args: &[&str]) -> Output {
    systole_in(&repo(), args)
}

/// Runs a command in `dir` that must fail cleanly and returns its stderr. Files are named
/// relative to `dir`, so that messages (and their line wrapping) do not depend on where
/// the repository or the temporary folder is.
fn failure_in(dir: &Path, args: &[&str]) -> String {
    let out = systole_in(dir, args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected failure, got success: {err}");
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    err
}

/// [`failure_in`] the scratch folder, with the repository's example files at hand.
fn failure(scratch: &Scratch, args: &[&str]) -> String {
    for (name, src) in [(WL, "configs/workloads/resnet18.toml"), (ARCH, "configs/archs/4x4.toml")] {
        std::fs::copy(repo().join(src), scratch.0.join(name)).unwrap();
    }
    failure_in(&scratch.0, args)
}

const WL: &str = "resnet18.toml";
const ARCH: &str = "4x4.toml";

#[test]
fn bad_arch_files() {
    let s = Scratch::new("arch");
    s.file("rows.toml", &arch("rows = 0\n"));
    insta::assert_snapshot!("arch_rows_zero", failure(&s, &["simulate", "--arch", "rows.toml", "--workload", WL]));
    s.file("unknown.toml", &arch("rows = 4\nrowz = 4\n"));
    insta::assert_snapshot!("arch_unknown_field", failure(&s, &["simulate", "--arch", "unknown.toml", "--workload", WL]));
    s.file("dataflow.toml", &arch("dataflow = \"xs\"\n"));
    insta::assert_snapshot!("arch_bad_dataflow", failure(&s, &["simulate", "--arch", "dataflow.toml", "--workload", WL]));
    s.file("acc.toml", &arch("rows = 32\ncols = 32\nacc_sram_kib = 1\n"));
    insta::assert_snapshot!("arch_small_accumulator", failure(&s, &["simulate", "--arch", "acc.toml", "--workload", WL]));
    let err = failure(&s, &["simulate", "--arch", "missing.toml", "--workload", WL]);
    assert!(err.contains("cannot read missing.toml"), "{err}");
}

#[test]
fn bad_workload_files() {
    let s = Scratch::new("workload");
    let layer = |body: &str| format!("name = \"w\"\n[[layer]]\nname = \"l\"\n{body}\n");
    let cases = [
        ("workload_stride_zero", layer("op = \"conv\"\ninput = [8, 8, 4]\nout_channels = 4\nkernel = 3\nstride = 0")),
        ("workload_groups", layer("op = \"conv\"\ninput = [8, 8, 6]\nout_channels = 4\ngroups = 4")),
        ("workload_unknown_op", layer("op = \"lstm\"\ninput = [8, 8, 4]")),
        ("workload_kernel_too_big", layer("op = \"conv\"\ninput = [2, 2, 4]\nout_channels = 4\nkernel = 5")),
        ("workload_gemm_missing_k", layer("op = \"gemm\"\nm = 4\nn = 4")),
        ("workload_no_layers", "name = \"w\"\nlayer = []\n".to_string()),
    ];
    for (name, text) in cases {
        s.file(&format!("{name}.toml"), &text);
        insta::assert_snapshot!(name, failure(&s, &["simulate", "--arch", ARCH, "--workload", &format!("{name}.toml")]));
    }
}

#[test]
fn layer_that_cannot_fit_names_the_memory() {
    let s = Scratch::new("fit");
    s.file(
        "tiny.toml",
        &arch("rows = 4\ncols = 4\ndataflow = \"os\"\nact_sram_kib = 1\nwgt_sram_kib = 1\nacc_sram_kib = 1\nparam_entries = 64\n"),
    );
    s.file(
        "dw.toml",
        "name = \"w\"\n[[layer]]\nname = \"dilated\"\nop = \"depthwise\"\ninput = [20, 20, 8]\nkernel = 5\ndilation = 3\npadding = 6\n",
    );
    insta::assert_snapshot!("does_not_fit", failure(&s, &["simulate", "--arch", "tiny.toml", "--workload", "dw.toml"]));
}

/// `systole compile --model`: the tiny model's network program on the 4x4 preset, its DRAM
/// map and steps (snapshot), every node once, the instructions under their layers.
#[test]
fn compile_prints_the_network_program() {
    let out = systole(&["compile", "--arch", "configs/archs/4x4.toml", "--model", "configs/models/tiny_qop.onnx"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let is_instr = |l: &str| l.len() > 1 && l.starts_with(['L', 'E', 'S']) && l.as_bytes()[1].is_ascii_digit();
    let structure: Vec<&str> = text.lines().filter(|l| !is_instr(l)).collect();
    insta::assert_snapshot!("network_program", structure.join("\n"));
    let named =
        |n: &str| structure.iter().filter(|l| l.starts_with("host ") || l.starts_with("; layer ")).any(|l| l.contains(&format!(" {n} (")));
    for n in [
        "stem_quant",
        "dw_quant",
        "pw_quant",
        "res_quant",
        "pool",
        "expand_quant",
        "cat_quant",
        "avg_quant",
        "head_quant",
        "gap_quant",
        "flat",
        "fc_quant",
    ] {
        assert!(named(n), "node {n} missing:\n{}", structure.join("\n"));
    }
    let runs: usize = structure
        .iter()
        .filter_map(|l| l.strip_prefix("run "))
        .map(|l| l.split(", ").nth(1).unwrap().split(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(text.lines().filter(|l| is_instr(l)).count(), runs, "every run's instructions listed");
    let e =
        failure_in(&repo(), &["compile", "--arch", "configs/archs/4x4.toml", "--model", "configs/models/tiny_qop.onnx", "--hex", "x.hex"]);
    assert!(e.contains("cannot be used with"), "{e}");
}

#[test]
fn compile_unknown_layer() {
    let args = ["compile", "--arch", "configs/archs/4x4.toml", "--workload", "configs/workloads/resnet18.toml", "--layer", "conv9"];
    insta::assert_snapshot!("unknown_layer", failure_in(&repo(), &args));
}

#[test]
fn bad_data_file() {
    let s = Scratch::new("data");
    systole_core::npy::write(&s.0.join("x.npy"), &[4, 4, 3], &[0i8; 48]).unwrap();
    s.file(
        "w.toml",
        "name = \"w\"\n[[layer]]\nname = \"l\"\nop = \"conv\"\ninput = [4, 5, 3]\nout_channels = 2\ndata = { input = \"x.npy\" }\n",
    );
    insta::assert_snapshot!("data_wrong_shape", failure(&s, &["simulate", "--arch", ARCH, "--workload", "w.toml"]));
}

/// Real tensors from .npy files go through the simulator; the output digest in the JSON
/// report must be the golden model's on the same tensors.
#[test]
fn data_files_feed_the_simulator() {
    use systole_core::workload::Workload;
    let s = Scratch::new("npy");
    let x: Vec<i8> = (0..6 * 7 * 5).map(|i| ((i * 37) % 255) as i8).collect();
    let w: Vec<i8> = (0..3 * 3 * 3 * 5).map(|i| ((i * 11) % 200 - 100) as i8).collect();
    let b: Vec<i32> = vec![100, -2000, 5];
    systole_core::npy::write(&s.0.join("x.npy"), &[1, 6, 7, 5], &x).unwrap();
    systole_core::npy::write(&s.0.join("w.npy"), &[3, 3, 3, 5], &w).unwrap();
    systole_core::npy::write(&s.0.join("b.npy"), &[3], &b).unwrap();
    let wl_path = s.file(
        "w.toml",
        "name = \"w\"\n[[layer]]\nname = \"l\"\nop = \"conv\"\ninput = [6, 7, 5]\nout_channels = 3\nkernel = 3\npadding = 1\n\
         quant = { x_scale = 0.02, x_zp = 5, w_scale = 0.01, y_scale = 0.05, y_zp = -3 }\n\
         data = { input = \"x.npy\", weights = \"w.npy\", bias = \"b.npy\" }\n",
    );
    let json = s.0.join("report.json");
    let out = systole(&[
        "simulate",
        "--arch",
        "configs/archs/4x4.toml",
        "--workload",
        wl_path.to_str().unwrap(),
        "--check",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let wl = Workload::from_file(&wl_path).unwrap();
    let data = wl.layer_data(0).unwrap();
    assert_eq!((data.input.data.clone(), data.weights.data.clone(), data.bias.clone()), (x, w, b));
    let golden = systole_golden::layer(&wl.layers[0], &data);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["layers"][0]["output_digest"], format!("{:016x}", golden.digest()));
}

#[test]
fn rtl_writes_the_top_module_and_parameters() {
    let s = Scratch::new("rtl");
    let out = systole_in(&s.0, &["rtl", "--arch", repo().join("configs/archs/4x4.toml").to_str().unwrap(), "--out", "rtl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verilog = std::fs::read_to_string(s.0.join("rtl/systole_top.v")).unwrap();
    assert!(verilog.contains("module systole_top("), "top module missing");
    assert!(!verilog.contains("module top"), "a module kept rust-hdl's name `top`");
    let header = std::fs::read_to_string(s.0.join("rtl/systole_params.vh")).unwrap();
    insta::assert_snapshot!("rtl_params_4x4", header);
}

#[test]
fn rtl_rejects_an_empty_instruction_memory() {
    let s = Scratch::new("rtl-depth");
    insta::assert_snapshot!("rtl_instr_depth_zero", failure(&s, &["rtl", "--arch", ARCH, "--out", "rtl", "--instr-depth", "0"]));
}

#[test]
fn rtl_emits_the_vector_unit_and_simulate_refuses_a_lane_count_that_does_not_divide() {
    let s = Scratch::new("rtl-vector");
    s.file("vector.toml", &arch("rows = 4\ncols = 4\nvector_lanes = 2\n"));
    let out = systole_in(&s.0, &["rtl", "--arch", "vector.toml", "--out", "rtl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let verilog = std::fs::read_to_string(s.0.join("rtl/systole_top.v")).expect("the Verilog");
    // The engine with its two lanes' table copies.
    assert!(verilog.contains("vector$0$tables$1"), "no vector unit in the Verilog");
    s.file("lanes.toml", &arch("rows = 4\ncols = 4\nvector_lanes = 3\n"));
    insta::assert_snapshot!("arch_vector_lanes", failure(&s, &["simulate", "--arch", "lanes.toml", "--workload", WL]));
}

#[test]
fn fpga_commands_refuse_bad_input_before_running_tools() {
    let s = Scratch::new("fpga");
    let build = |arch: &str, extra: &[&str]| {
        let mut args = vec!["fpga", "build", "--board", "ulx3s", "--arch", arch, "--out", "out"];
        args.extend(extra);
        failure(&s, &args)
    };
    insta::assert_snapshot!("fpga_unknown_board", failure(&s, &["fpga", "build", "--board", "de0", "--arch", ARCH, "--out", "out"]));
    s.file("lanes3.toml", &arch("name = \"lanes3\"\nrows = 2\ncols = 2\ndram_bytes_per_cycle = 3\n"));
    insta::assert_snapshot!("fpga_lanes_not_power_of_two", build("lanes3.toml", &[]));
    insta::assert_snapshot!("fpga_memory_not_power_of_two", build(ARCH, &["--mem-kib", "12"]));
    insta::assert_snapshot!("fpga_clock_above_the_pll", build(ARCH, &["--clock-mhz", "450"]));
    s.file("design.bit", "not a bitstream");
    insta::assert_snapshot!("fpga_flash_wrong_format", failure(&s, &["fpga", "flash", "--board", "icebreaker", "design.bit"]));
    insta::assert_snapshot!("fpga_flash_missing", failure(&s, &["fpga", "flash", "--board", "ulx3s", "missing.bit"]));
    let run = ["fpga", "run", "--port", "/dev/systole-no-such-tty", "--baud", "115200", "--arch", ARCH, "--workload", WL];
    insta::assert_snapshot!("fpga_run_no_port", failure(&s, &run));
    let run = ["fpga", "run", "--port", "/dev/systole-no-such-tty", "--arch", ARCH, "--workload", WL];
    insta::assert_snapshot!("fpga_run_which_baud", failure(&s, &run));
}

/// Puts a stand-in for `tool` into `bin` that records its arguments in `<bin>/<tool>.args`
/// and exits with `status`.
fn fake_tool(bin: &Path, tool: &str, status: i32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(bin).unwrap();
    let path = bin.join(tool);
    std::fs::write(&path, format!("#!/bin/sh\necho \"$@\" > \"$0.args\"\nexit {status}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `systole fpga flash` in `dir` with only `bin` on PATH.
fn flash_with(dir: &Path, bin: &Path, board: &str, bitstream: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["fpga", "flash", "--board", board, bitstream])
        .current_dir(dir)
        .env("PATH", bin)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn fpga_flash_calls_the_programmer_for_the_board() {
    let s = Scratch::new("flash");
    s.file("design.bit", "ecp5 bitstream");
    s.file("design.bin", "ice40 bitstream");
    let args = |bin: &Path, tool: &str| std::fs::read_to_string(bin.join(format!("{tool}.args"))).unwrap();
    // openFPGALoader with the board's own name.
    let loader = s.0.join("loader");
    fake_tool(&loader, "openFPGALoader", 0);
    for (board, file, name) in
        [("orangecrab", "design.bit", "orangeCrab"), ("ulx3s", "design.bit", "ulx3s"), ("icebreaker", "design.bin", "ice40_generic")]
    {
        let out = flash_with(&s.0, &loader, board, file);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(args(&loader, "openFPGALoader"), format!("-b {name} {file}\n"));
    }
    // Without openFPGALoader, iceprog programs the iCEBreaker; ECP5 boards have no fallback.
    let iceprog = s.0.join("iceprog-only");
    fake_tool(&iceprog, "iceprog", 0);
    assert!(flash_with(&s.0, &iceprog, "icebreaker", "design.bin").status.success());
    assert_eq!(args(&iceprog, "iceprog"), "design.bin\n");
    let err = String::from_utf8_lossy(&flash_with(&s.0, &iceprog, "ulx3s", "design.bit").stderr).to_string();
    assert!(err.contains("openFPGALoader") && !err.contains("panicked"), "{err}");
    // A programmer that fails (no board plugged in) is reported with what to check.
    let failing = s.0.join("failing");
    fake_tool(&failing, "openFPGALoader", 1);
    let out = flash_with(&s.0, &failing, "ulx3s", "design.bit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("plugged in"), "{err}");
}

/// Bad models and model inputs: the file, the node and the fix, never a panic.
#[test]
fn bad_models_and_inputs_are_named() {
    let s = Scratch::new("models");
    let models = repo().join("configs/models");
    let qop = std::fs::read(models.join("tiny_qop.onnx")).unwrap();
    std::fs::write(s.0.join("truncated.onnx"), &qop[..qop.len() / 2]).unwrap();
    std::fs::write(s.0.join("tiny_qop.onnx"), &qop).unwrap();
    std::fs::copy(models.join("tiny_calib.npy"), s.0.join("batch.npy")).unwrap();
    let model = |m: &str, extra: &[&str]| {
        let mut args = vec!["simulate", "--arch", ARCH, "--model", m];
        args.extend_from_slice(extra);
        failure(&s, &args)
    };
    insta::assert_snapshot!("model_truncated", model("truncated.onnx", &[]));
    insta::assert_snapshot!("model_missing", model("missing.onnx", &[]));
    // The calibration batch [8, 3, 16, 16] is not one input of shape [1, 3, 16, 16].
    insta::assert_snapshot!("model_input_wrong_shape", model("tiny_qop.onnx", &["--input", "batch.npy"]));
    insta::assert_snapshot!(
        "model_and_workload",
        failure(&s, &["simulate", "--arch", ARCH, "--model", "tiny_qop.onnx", "--workload", "w.toml"])
    );
}

/// A real input through the QOperator fixture: the output file equals ONNX Runtime's output.
#[test]
fn model_input_and_output_files_round_trip() {
    let s = Scratch::new("model-io");
    let models = repo().join("configs/models");
    let out = s.0.join("y.npy");
    let run = systole(&[
        "simulate",
        "--arch",
        "configs/archs/4x4.toml",
        "--model",
        models.join("tiny_qop.onnx").to_str().unwrap(),
        "--input",
        models.join("tiny_input.npy").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--check",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(text.contains("check: all 12 nodes bit-exact") && text.contains("depthwise"), "{text}");
    let ours = systole_core::npy::read::<f32>(&out, &[1, 10], "ours").unwrap();
    let ort = systole_core::npy::read::<f32>(&models.join("tiny_qop_out.npy"), &[1, 10], "ort").unwrap();
    assert_eq!(ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), ort.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

/// `systole compress`: bad patterns, policies and models are named with the fix; a good
/// run writes a model that simulates, and prints every layer's sparsity and SQNR.
#[test]
fn compress_refuses_bad_input_and_prunes() {
    let s = Scratch::new("compress");
    let models = repo().join("configs/models");
    for f in ["tiny_float.onnx", "tiny_qop.onnx"] {
        std::fs::copy(models.join(f), s.0.join(f)).unwrap();
    }
    std::fs::write(s.0.join("bad.toml"), "[layers.\"x\"]\nprune = \"5:4\"\n").unwrap();
    fn compress<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["compress", "--model", "tiny_float.onnx", "--out", "p.onnx"];
        args.extend_from_slice(extra);
        args
    }
    let e = failure_in(&s.0, &compress(&[]));
    assert!(e.contains("give --prune, --bits, --act-bits or --policy"), "{e}");
    let e = failure_in(&s.0, &compress(&["--bits", "3"]));
    assert!(e.contains("--bits 3") && e.contains("4 or 8"), "{e}");
    let e = failure_in(&s.0, &compress(&["--act-bits", "2"]));
    assert!(e.contains("--act-bits 2") && e.contains("4 or 8"), "{e}");
    // `expand`'s input is not a conv or GEMM layer's output, so it cannot be int4.
    std::fs::write(s.0.join("act4.toml"), "[layers.\"expand\"]\nact_bits = 4\n").unwrap();
    let e = failure_in(&s.0, &compress(&["--policy", "act4.toml"]));
    assert!(e.contains("`expand`") && e.contains("act_bits = 4") && e.contains("act_bits = 8"), "{e}");
    let e = failure_in(&s.0, &compress(&["--prune", "2:8:1"]));
    assert!(e.contains("--prune") && e.contains("2:4"), "{e}");
    let e = failure_in(&s.0, &compress(&["--policy", "bad.toml"]));
    assert!(e.contains("bad.toml") && e.contains("layers.\"x\".prune") && e.contains("N < M"), "{e}");
    let e = failure_in(&s.0, &["compress", "--model", "tiny_qop.onnx", "--out", "p.onnx", "--prune", "2:4"]);
    assert!(e.contains("tiny_qop.onnx") && e.contains("quantized") && e.contains("float model"), "{e}");
    let ok = systole_in(&s.0, &compress(&["--prune", "2:4", "--json", "r.json"]));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success() && text.contains("SQNR") && text.contains("2:4"), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.0.join("r.json")).unwrap()).unwrap();
    assert!(report["layers"].as_array().is_some_and(|l| !l.is_empty()));
    let sim =
        systole_in(&s.0, &["simulate", "--arch", repo().join("configs/archs/4x4.toml").to_str().unwrap(), "--model", "p.onnx", "--check"]);
    assert!(sim.status.success() && String::from_utf8_lossy(&sim.stdout).contains("bit-exact"), "{}", String::from_utf8_lossy(&sim.stderr));
    // Int4 weights: the written model is quantized, its weights lie in -7..=7, and an
    // instance that packs int4 runs it bit-exact.
    let ok = systole_in(&s.0, &compress(&["--prune", "2:4", "--bits", "4"]));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success() && text.contains("bits") && text.contains(" 4 "), "{text}{}", String::from_utf8_lossy(&ok.stderr));
    std::fs::write(s.0.join("int4.toml"), arch("rows = 4\ncols = 4\nint4_weights = true\nsparsity = \"2:4\"\nact_sram_kib = 16\nwgt_sram_kib = 4\nacc_sram_kib = 4\nparam_entries = 256\n")).unwrap();
    let sim = systole_in(&s.0, &["simulate", "--arch", "int4.toml", "--model", "p.onnx", "--check"]);
    assert!(sim.status.success() && String::from_utf8_lossy(&sim.stdout).contains("bit-exact"), "{}", String::from_utf8_lossy(&sim.stderr));
    let net = systole_onnx::import(&systole_onnx::read(&s.0.join("p.onnx")).unwrap(), &s.0.join("p.onnx")).unwrap();
    assert!(net.layers().all(|(_, l)| l.weight_bits == 4), "every layer's weights are int4");
    // Int4 activations: the layers whose input a conv layer produces read int4 (their
    // producers saturate to int4), and an int4 x int4 instance runs the model bit-exact.
    // (Its layers have too few channels for int4 x int4 to save a pass on 4 rows: the
    // quarter passes are tested in testbenches/tests/sparse.rs.)
    let ok = systole_in(&s.0, &compress(&["--bits", "4", "--act-bits", "4"]));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let net = systole_onnx::import(&systole_onnx::read(&s.0.join("p.onnx")).unwrap(), &s.0.join("p.onnx")).unwrap();
    let int4_inputs: Vec<&str> = net.layers().filter(|(_, l)| l.act_bits == 4).map(|(_, l)| l.name.as_str()).collect();
    assert!(!int4_inputs.is_empty() && int4_inputs.len() < net.layers().count(), "{int4_inputs:?}");
    std::fs::write(s.0.join("int4x4.toml"), arch("rows = 4\ncols = 4\nint4_weights = true\nint4_activations = true\nact_sram_kib = 16\nwgt_sram_kib = 4\nacc_sram_kib = 4\nparam_entries = 256\n")).unwrap();
    std::fs::write(
        s.0.join("int4w.toml"),
        arch("rows = 4\ncols = 4\nint4_weights = true\nact_sram_kib = 16\nwgt_sram_kib = 4\nacc_sram_kib = 4\nparam_entries = 256\n"),
    )
    .unwrap();
    let cycles = |arch: &str| -> u64 {
        let sim = systole_in(&s.0, &["simulate", "--arch", arch, "--model", "p.onnx", "--check", "--json", &format!("{arch}.json")]);
        assert!(
            sim.status.success() && String::from_utf8_lossy(&sim.stdout).contains("bit-exact"),
            "{}",
            String::from_utf8_lossy(&sim.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.0.join(format!("{arch}.json"))).unwrap()).unwrap();
        let host: Vec<&str> = report["host"].as_array().unwrap().iter().map(|h| h["kind"].as_str().unwrap()).collect();
        assert_eq!(host, ["add", "maxpool", "concat", "avgpool", "globalavgpool", "reshape"], "host steps are in the JSON, marked");
        report["total"]["cycles"].as_u64().unwrap()
    };
    assert_eq!(cycles("int4x4.toml"), cycles("int4w.toml"), "the compiler keeps packed int4 where int4 x int4 saves no pass");
}

/// `systole search`: on the tiny float model and a 4x4 instance with sparse and int4
/// support, the report lists every uniform policy and the chosen one, whose measured SQNR
/// meets the budget, and the policy file compresses the model; an unreachable budget is an
/// error that says so.
#[test]
fn search_finds_a_policy_within_the_budget() {
    let s = Scratch::new("search");
    std::fs::copy(repo().join("configs/models/tiny_float.onnx"), s.0.join("m.onnx")).unwrap();
    std::fs::write(s.0.join("a.toml"), arch("rows = 4\ncols = 4\nint4_weights = true\nsparsity = \"1:4\"\nact_sram_kib = 16\nwgt_sram_kib = 4\nacc_sram_kib = 4\nparam_entries = 256\n")).unwrap();
    let run = systole_in(&s.0, &["search", "--model", "m.onnx", "--arch", "a.toml", "--budget-db", "15", "--out", "out"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}{}", String::from_utf8_lossy(&run.stderr));
    for row in ["uniform dense/8", "uniform 2:4/8", "uniform 1:4/8", "uniform dense/4", "| chosen |"] {
        assert!(text.contains(row), "{row}: {text}");
    }
    for f in ["report.md", "policy.toml", "pareto.svg", "pareto.png"] {
        assert!(s.0.join("out").join(f).is_file(), "{f}");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.0.join("out/search.json")).unwrap()).unwrap();
    let chosen = &json["archs"][0]["chosen"];
    assert!(chosen["measured_db"].as_f64().unwrap() >= 15.0, "{chosen}");
    let dense = &json["archs"][0]["uniform"][0];
    assert!(chosen["point"]["cycles"].as_u64().unwrap() <= dense["point"]["cycles"].as_u64().unwrap());
    let ok = systole_in(&s.0, &["compress", "--model", "m.onnx", "--out", "c.onnx", "--policy", "out/policy.toml"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // Co-search: architecture and compression together over a space's points.
    std::fs::write(s.0.join("s.toml"), "name = \"s\"\nbase = \"a.toml\"\n[params]\nsparsity = [\"dense\", \"1:4\"]\n").unwrap();
    let run = systole_in(&s.0, &["search", "--model", "m.onnx", "--space", "s.toml", "--budget-db", "15", "--out", "co"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.0.join("co/search.json")).unwrap()).unwrap();
    let archs = json["archs"].as_array().unwrap();
    assert_eq!(archs.len(), 2);
    let cycles = |i: usize| archs[i]["chosen"]["point"]["cycles"].as_u64().unwrap();
    // The instance that skips sparse weights is never slower at the same budget.
    assert!(cycles(1) <= cycles(0), "{} vs {}", cycles(1), cycles(0));
    let e = failure_in(&s.0, &["search", "--model", "m.onnx", "--arch", "a.toml", "--budget-db", "500", "--out", "out2"]);
    assert!(e.contains("no policy meets 500 dB") && e.contains("lower --budget-db"), "{e}");
}

/// `simulate --instr-depth`: each run in segments that instruction memories of that depth
/// hold, every node still equal to the golden network's (and the output to ONNX
/// Runtime's); an instance with an instruction queue is refused.
#[test]
fn a_network_simulated_in_segments_stays_bit_exact() {
    let s = Scratch::new("segments");
    let models = repo().join("configs/models");
    let out = s.0.join("y.npy");
    let model = models.join("tiny_qop.onnx");
    let input = models.join("tiny_input.npy");
    let args = |arch: &'static str, depth: &'static str| {
        vec![
            "simulate".to_string(),
            "--arch".into(),
            arch.into(),
            "--model".into(),
            model.display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--output".into(),
            out.display().to_string(),
            "--check".into(),
            "--instr-depth".into(),
            depth.into(),
        ]
    };
    let a = args("configs/archs/4x4.toml", "3");
    let run = systole(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{text}{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        text.contains("in instruction memories of 3 per unit the runs take") && text.contains("check: all 12 nodes bit-exact"),
        "{text}"
    );
    let ours = systole_core::npy::read::<f32>(&out, &[1, 10], "ours").unwrap();
    let ort = systole_core::npy::read::<f32>(&models.join("tiny_qop_out.npy"), &[1, 10], "ort").unwrap();
    assert_eq!(ours.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), ort.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let a = args("configs/archs/16x16.toml", "3");
    let e = failure_in(&repo(), &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("streams its instructions through queues of 256"), "{e}");
}
