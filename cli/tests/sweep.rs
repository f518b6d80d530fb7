//! `systole sweep`: results, resumption, shards and merge, and bad spaces.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("systole-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("space.toml"),
        format!(
            "name = \"t\"\nbase = \"{}\"\n[params]\nrows = [4, 8]\ndram_bytes_per_cycle = [4, 8]\n",
            repo().join("configs/archs/4x4.toml").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("w.toml"),
        "name = \"w\"\n[[layer]]\nname = \"c\"\nop = \"conv\"\ninput = [8, 8, 8]\nout_channels = 8\nkernel = 3\npadding = 1\n\n[[layer]]\nname = \"fc\"\nop = \"gemm\"\nm = 1\nk = 64\nn = 10\n",
    )
    .unwrap();
    dir
}

fn sweep(dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sweep", "--space", "space.toml", "--workload", "w.toml", "--out", "out"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_systole")).args(&args).current_dir(dir).env("NO_COLOR", "1").output().unwrap()
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn by_id(mut r: Vec<serde_json::Value>) -> Vec<(u64, u64, String)> {
    r.sort_by_key(|v| v["id"].as_u64());
    r.iter().map(|v| (v["id"].as_u64().unwrap(), v["cycles"].as_u64().unwrap(), v["params"].to_string())).collect()
}

#[test]
fn a_sweep_writes_every_point_and_resumes_after_a_torn_line() {
    let dir = scratch("resume");
    let out = sweep(&dir, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.join("out/results.jsonl");
    let full = records(&path);
    assert_eq!(full.len(), 4);
    for r in &full {
        assert_eq!(r["status"], "ok", "{r}");
        let cycles = r["cycles"].as_u64().unwrap();
        assert!(
            cycles >= r["lower_bound_cycles"].as_u64().unwrap()
                && r["energy_uj"].as_f64().unwrap() > 0.0
                && r["area_mm2"].as_f64().unwrap() > 0.0
        );
        assert_eq!(r["layers"].as_array().unwrap().len(), 2);
    }
    // Stop mid-write: keep two records and half of the third line.
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..lines[2].len() / 2])).unwrap();
    let again = sweep(&dir, &[]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("2 already in"), "{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(by_id(records(&path)), by_id(full));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_merge_into_the_whole_sweep() {
    let dir = scratch("shards");
    assert!(sweep(&dir, &[]).status.success());
    for k in ["0/3", "1/3", "2/3"] {
        let out = sweep(&dir, &["--shard", k]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let shards: Vec<String> = (0..3).map(|k| format!("out/results-{k}-of-3.jsonl")).collect();
    let mut args = vec!["sweep", "merge", "--out", "merged"];
    args.extend(shards.iter().map(|s| s.as_str()));
    let merge = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_systole")).args(args).current_dir(&dir).env("NO_COLOR", "1").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let (ok, err) = merge(&args);
    assert!(ok, "{err}");
    // Byte for byte: the unsharded sweep's lines (in completion order) sorted by id are the
    // merged file, floats included.
    let whole = std::fs::read_to_string(dir.join("out/results.jsonl")).unwrap();
    let mut lines: Vec<&str> = whole.lines().collect();
    lines.sort_by_key(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64());
    assert_eq!(
        std::fs::read_to_string(dir.join("merged/results.jsonl")).unwrap(),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    // Merging again into the same folder is a no-op; into a folder holding other results, a refusal.
    assert!(merge(&args).0);
    std::fs::create_dir_all(dir.join("other")).unwrap();
    std::fs::write(dir.join("other/results.jsonl"), lines[0]).unwrap();
    let (ok, err) = merge(&["sweep", "merge", "--out", "other", &shards[0], &shards[1], &shards[2]]);
    assert!(!ok && err.contains("other/results.jsonl: exists and holds other results"), "{err}");
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", &shards[0], &shards[2]]);
    assert!(!ok && err.contains("shard 1 of 3 (results-1-of-3.jsonl) is missing"), "{err}");
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", &shards[0]]);
    assert!(!ok && err.contains("shards 1, 2 of 3 (results-1-of-3.jsonl, results-2-of-3.jsonl) are missing"), "{err}");
    // Given the space, each shard must hold all its points: shard 0 of 3 has two of the
    // four; with one dropped the merge names the shard, the count and the missing point.
    let with_space = |out: &'static str| -> Vec<String> {
        ["sweep", "merge", "--space", "space.toml", "--out", out].iter().map(|s| s.to_string()).chain(shards.iter().cloned()).collect()
    };
    let run = |v: Vec<String>| merge(&v.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run(with_space("m3")).0);
    let first = dir.join(&shards[0]);
    let kept = std::fs::read_to_string(&first).unwrap();
    let one = kept.lines().next().unwrap();
    std::fs::write(&first, format!("{one}\n")).unwrap();
    let (ok, err) = run(with_space("m4"));
    assert!(!ok && err.contains("results-0-of-3.jsonl: holds 1 of shard 0/3's 2 points (missing"), "{err}");
    std::fs::write(&first, kept).unwrap();
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", &shards[0], &shards[1], &shards[2], &shards[1]]);
    assert!(!ok && err.contains("shard 1 of 3 given twice"), "{err}");
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", "out/results.jsonl"]);
    assert!(!ok && err.contains("out/results.jsonl: not a shard's results file"), "{err}");
    // A torn shard, and a shard whose point is also in another.
    let torn = dir.join(&shards[2]);
    let text = std::fs::read_to_string(&torn).unwrap();
    std::fs::write(&torn, &text[..text.len() - 2]).unwrap();
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", &shards[0], &shards[1], &shards[2]]);
    assert!(!ok && err.contains("results-2-of-3.jsonl: ends with a torn line"), "{err}");
    std::fs::write(&torn, std::fs::read_to_string(dir.join(&shards[0])).unwrap()).unwrap();
    let (ok, err) = merge(&["sweep", "merge", "--out", "m2", &shards[0], &shards[1], &shards[2]]);
    assert!(!ok && err.contains("is also in another shard"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_results_file_with_a_repeated_or_foreign_line_is_refused_by_line() {
    let dir = scratch("dup");
    assert!(sweep(&dir, &[]).status.success());
    let path = dir.join("out/results.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap().to_string();
    std::fs::write(&path, format!("{text}{first}\n")).unwrap();
    let out = sweep(&dir, &[]);
    let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!out.status.success() && err.contains("results.jsonl:5: point") && err.contains("again (first on line 1)"), "{err}");
    let foreign = first.replacen("\"target\":\"", "\"target\":\"other", 1);
    std::fs::write(&path, format!("{text}{foreign}\n")).unwrap();
    let out = sweep(&dir, &[]);
    let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!out.status.success() && err.contains("results.jsonl:5: point") && err.contains("on `otherw`"), "{err}");
    // A second sweep while the first holds the file's lock.
    std::fs::write(&path, &text).unwrap();
    let held = systole_sweep::results::lock(&path).unwrap();
    let out = sweep(&dir, &[]);
    let err = String::from_utf8_lossy(&out.stderr).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!out.status.success() && err.contains("another sweep is writing this file"), "{err}");
    drop(held);
    assert!(sweep(&dir, &[]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_space_is_named() {
    let dir = scratch("bad");
    let base = repo().join("configs/archs/4x4.toml");
    std::fs::write(dir.join("space.toml"), format!("name = \"t\"\nbase = {:?}\n[params]\nrowz = [4]\n", base.display().to_string()))
        .unwrap();
    let out = sweep(&dir, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("space.toml") && err.contains("params.rowz") && !err.contains("panicked"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_report_draws_the_sweep() {
    let dir = scratch("report");
    assert!(sweep(&dir, &[]).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_systole")).args(["report", "out"]).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for svg in ["pareto.svg", "utilization.svg", "roofline.svg"] {
        let text = std::fs::read_to_string(dir.join("out").join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("<circle"), "{svg}");
    }
    // The PNGs decode at the charts' sizes, with the caption's text drawn (dark pixels in
    // the top band, which holds nothing else) and coloured marks.
    for (png, size) in [("pareto.png", (900, 640)), ("utilization.png", (1000, 560)), ("roofline.png", (900, 640))] {
        let decoder = png::Decoder::new(std::fs::File::open(dir.join("out").join(png)).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height, info.color_type), (size.0, size.1, png::ColorType::Rgb), "{png}");
        let pixels: Vec<&[u8]> = buf.chunks(3).collect();
        let caption_ink = pixels[..size.0 as usize * 40].iter().filter(|p| p.iter().all(|&c| c < 100)).count();
        let colour = pixels.iter().filter(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 100).count();
        assert!(caption_ink > 200 && colour > 50, "{png}: {caption_ink} caption pixels, {colour} coloured");
    }
    let page = std::fs::read_to_string(dir.join("out/report.md")).unwrap();
    assert!(page.contains("4 points, 4 valid") && page.contains("(chosen)") && page.contains("![Roofline](roofline.svg)"), "{page}");
    let none = Command::new(env!("CARGO_BIN_EXE_systole")).args(["report", "missing"]).current_dir(&dir).output().unwrap();
    assert!(!none.status.success() && String::from_utf8_lossy(&none.stderr).contains("no results"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_runs_on_an_onnx_model_with_the_energy_objective() {
    let dir = scratch("model");
    let model = repo().join("configs/models/tiny_qop.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["sweep", "--space", "space.toml", "--model", model.to_str().unwrap(), "--out", "out", "--objective", "energy"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let recs = records(&dir.join("out/results.jsonl"));
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!((r["status"].as_str(), r["objective"].as_str(), r["target"].as_str()), (Some("ok"), Some("energy"), Some("tiny")));
        // The QOperator fixture has six accelerator layers, each with its mapping.
        assert_eq!(r["layers"].as_array().unwrap().len(), 6);
        assert!(r["layers"].as_array().unwrap().iter().all(|l| l["mapping"]["kind"].is_string()), "{r}");
    }
    // A rerun for the other objective into the same folder is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["sweep", "--space", "space.toml", "--model", model.to_str().unwrap(), "--out", "out"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("mapped for Energy"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sweep of the iCEBreaker preset's one point with `--synth icebreaker` and `options`.
fn synth_sweep(dir: &Path, options: &[&str]) -> Vec<serde_json::Value> {
    std::fs::write(
        dir.join("ice.toml"),
        format!("name = \"ice\"\nbase = \"{}\"\n[params]\ncols = [2]\n", repo().join("configs/archs/icebreaker.toml").display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["sweep", "--space", "ice.toml", "--workload", "w.toml", "--out", "out", "--synth", "icebreaker"])
        .args(options)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    records(&dir.join("out/results.jsonl"))
}

/// `--synth` records why a point's FPGA build failed (here the options: 3 KiB of board
/// memory is not a power of two, refused before any tool runs).
#[test]
fn synth_records_a_failed_build() {
    let dir = scratch("synth-fail");
    let recs = synth_sweep(&dir, &["--synth-mem-kib", "3"]);
    let fpga = &recs[0]["fpga"];
    assert_eq!((fpga["board"].as_str(), fpga["fits"].as_bool()), (Some("icebreaker"), Some(false)), "{fpga}");
    assert!(fpga["error"].as_str().unwrap().contains("power of two"), "{fpga}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--synth` with the board's defaults builds the iCEBreaker preset as `systole fpga build`
/// does (the same build as fpga/tests/accelerator.rs, so it is not repeated in the default
/// suite) and records nextpnr's figures: the UP5K's totals, timing met at the preset's
/// 30 MHz, and the peak of 16 MACs x 2 operations x 30 MHz.
#[test]
#[ignore = "slow: a full iCE40 synthesis, place and route (about 2 minutes)"]
fn synth_records_the_real_build() {
    let dir = scratch("synth");
    let recs = synth_sweep(&dir, &[]);
    let fpga = &recs[0]["fpga"];
    assert_eq!(fpga["fits"].as_bool(), Some(true), "{fpga}");
    let total = |field: &str| fpga[field].as_array().unwrap()[1].as_u64();
    assert_eq!((total("luts"), total("brams"), total("sprams"), total("dsps")), (Some(5280), Some(30), Some(4), Some(8)), "{fpga}");
    assert!(fpga["luts"].as_array().unwrap()[0].as_u64().unwrap() <= 5280, "{fpga}");
    assert_eq!((fpga["target_mhz"].as_f64(), fpga["timing_met"].as_bool()), (Some(30.0), Some(true)), "{fpga}");
    assert!(fpga["fmax_mhz"].as_f64().unwrap() >= 30.0, "{fpga}");
    assert!((fpga["peak_gops"].as_f64().unwrap() - 0.96).abs() < 1e-9, "{fpga}");
    let _ = std::fs::remove_dir_all(&dir);
}
