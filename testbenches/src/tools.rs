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
    run_program(tool, &find(tool)?, args, dir)
}

/// Runs `program` (named `tool` in errors) with `args` in `dir`; returns what it printed.
fn run_program(tool: &'static str, program: &Path, args: &[&str], dir: &Path) -> Result<String, ToolError> {
    let out =
        Command::new(program).args(args).current_dir(dir).output().map_err(|source| ToolError::Io { path: program.into(), source })?;
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

/// Synthesizes `file` (top module `top`) with the FPGA flow's Yosys for `family` (`ice40` or
/// `ecp5`) and returns its log (`yosys.log` in `dir`).
pub fn yosys_synth(dir: &Path, file: (&str, &str), family: &str) -> Result<String, ToolError> {
    write(dir, file.0, file.1)?;
    let script = format!("read_verilog -sv {}; synth_{family} -top top; stat", file.0);
    systole_fpga::tools::run_yosys(&script, dir).map_err(|e| match e {
        systole_fpga::tools::FlowError::Missing(_) => ToolError::Missing("yosys"),
        e => ToolError::Failed { tool: "yosys", output: e.to_string() },
    })
}

/// The statistics of the whole design that [`yosys_synth`] prints last (empty if Yosys
/// printed none).
pub fn yosys_stats(dir: &Path, file: (&str, &str), family: &str) -> Result<String, ToolError> {
    let log = yosys_synth(dir, file, family)?;
    Ok(log.rsplit("Printing statistics").next().unwrap_or("").to_string())
}

/// The block RAM cell Yosys maps memories to on `family` (`ice40` or `ecp5`).
pub fn block_ram_cell(family: &str) -> &'static str {
    if family == "ice40" {
        "SB_RAM40_4K"
    } else {
        "DP16KD"
    }
}

/// `rtl` (module `top`) synthesized for iCE40 by the FPGA flow's own Yosys script (with its
/// `SYSTOLE_ICE40` define and the DSP mapping), as a netlist followed by the modules of
/// Yosys's `ice40/cells_sim.v` that it instantiates (and the macros they use): ready for
/// [`icarus_vectors`].
pub fn ice40_netlist(dir: &Path, rtl: &str) -> Result<String, ToolError> {
    use systole_fpga::board::{Family, PeProducts};
    write(dir, "leaf.v", rtl)?;
    let script = systole_fpga::tools::synthesis_script(Family::Ice40, "up5k", PeProducts::Dsp, "top", "leaf.v", "leaf.json");
    let yosys_error = |e: systole_fpga::tools::FlowError| match e {
        systole_fpga::tools::FlowError::Missing(_) => ToolError::Missing("yosys"),
        e => ToolError::Failed { tool: "yosys", output: e.to_string() },
    };
    systole_fpga::tools::run_yosys(&format!("{script}; write_verilog -noattr net.v"), dir).map_err(yosys_error)?;
    let read = |path: &Path| std::fs::read_to_string(path).map_err(|source| ToolError::Io { path: path.to_path_buf(), source });
    let netlist = read(&dir.join("net.v"))?;
    let models_path = systole_fpga::tools::yosys_data("ice40/cells_sim.v").map_err(yosys_error)?;
    let cells = read(&models_path)?;
    let used = |m: &&str| {
        let name: String = m.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        netlist.lines().any(|l| l.trim_start().strip_prefix(name.as_str()).is_some_and(|r| r.starts_with([' ', '#'])))
    };
    let models: String = cells
        .split("\nmodule ")
        .skip(1)
        .map(|m| m.split("\nendmodule").next().unwrap_or(m))
        .filter(used)
        .map(|m| format!("module {m}\nendmodule\n"))
        .collect();
    // The macros that the models' port declarations use, without the file's timescale and
    // without port defaults (Verilog-2005 has none; the netlist drives every port it uses).
    let macros: String = "`define NO_ICE40_DEFAULT_ASSIGNMENTS\n".to_string()
        + &cells
            .split("\nmodule ")
            .next()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.starts_with("`timescale"))
            .map(|l| format!("{l}\n"))
            .collect::<String>();
    Ok(format!("{netlist}\n{macros}{models}"))
}

/// The Verilog simulators a test can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simulator {
    /// Icarus Verilog (`iverilog` + `vvp`): no build step to speak of.
    Icarus,
    /// Verilator (`--binary --timing`): a C++ build first, then a fast run.
    Verilator,
}

/// Runs the Verilog module `top` in `rtl` under Icarus, one clock cycle per row of
/// `cycles` (values for `inputs`, in order), and returns the values of `outputs` in every
/// cycle, read after the inputs settle and before the rising edge. Outputs wider than one
/// bit are read as signed numbers; `None` is an unknown (`x`/`z`) value. `clocked` says
/// whether `top` has a `clock` input.
pub fn icarus_vectors(
    dir: &Path,
    rtl: &str,
    clocked: bool,
    inputs: &[(String, usize)],
    outputs: &[(String, usize)],
    cycles: &[Vec<i64>],
) -> Result<Vec<Vec<Option<i64>>>, ToolError> {
    let run = VectorRun { dir, rtl, clocked, inputs, outputs, volatile: &[] };
    run.run(Simulator::Icarus, cycles).map(|(outs, _)| outs)
}

/// Every cycle's output values (`None`: unknown).
pub type Trace = Vec<Vec<Option<i64>>>;

/// One clocked vector run: `top` in `rtl`, driven on `inputs` and observed on `outputs`.
/// The testbench prints a cycle's outputs only when one of them other than the
/// `volatile` ones (indices into `outputs`, e.g. a free-running counter) changed, and the
/// reader carries values forward, so that long runs stay cheap to print and parse.
pub struct VectorRun<'a> {
    /// Scratch folder.
    pub dir: &'a Path,
    /// The Verilog.
    pub rtl: &'a str,
    /// `top` has a `clock` input.
    pub clocked: bool,
    /// Input ports (name, bits), in row order.
    pub inputs: &'a [(String, usize)],
    /// Output ports (name, bits).
    pub outputs: &'a [(String, usize)],
    /// Outputs whose changes alone do not print a cycle.
    pub volatile: &'a [usize],
}

impl VectorRun<'_> {
    fn testbench(&self, cycles: usize) -> String {
        let mut tb = String::from("module tb;\n  reg clock = 0;\n  integer fd, r, t;\n  reg signed [63:0] v;\n");
        for (n, (_, bits)) in self.inputs.iter().enumerate() {
            let _ = writeln!(tb, "  reg [{}:0] i{n} = 0;", bits - 1);
        }
        for (n, (_, bits)) in self.outputs.iter().enumerate() {
            let sign = if *bits > 1 { "signed " } else { "" };
            let _ = writeln!(tb, "  wire {sign}[{}:0] o{n};", bits - 1);
            let _ = writeln!(tb, "  reg {sign}[{}:0] p{n};", bits - 1);
        }
        let mut conns = if self.clocked { vec![".clock(clock)".to_string()] } else { vec![] };
        conns.extend(self.inputs.iter().enumerate().map(|(n, (p, _))| format!(".{p}(i{n})")));
        conns.extend(self.outputs.iter().enumerate().map(|(n, (p, _))| format!(".{p}(o{n})")));
        let _ = writeln!(tb, "  top dut({});", conns.join(", "));
        // Each line of vectors.txt: a repeat count, then the inputs held for that many cycles.
        let _ = writeln!(
            tb,
            "  integer hold;\n  initial begin\n    fd = $fopen(\"vectors.txt\", \"r\");\n    hold = 0;\n    for (t = 0; t < {cycles}; t = t + 1) begin"
        );
        let _ = writeln!(tb, "      if (hold == 0) begin\n        r = $fscanf(fd, \"%d\", v); hold = v;");
        for n in 0..self.inputs.len() {
            let _ = writeln!(tb, "        r = $fscanf(fd, \"%d\", v); i{n} = v;");
        }
        let _ = writeln!(tb, "      end\n      hold = hold - 1;");
        let changed: Vec<String> =
            (0..self.outputs.len()).filter(|n| !self.volatile.contains(n)).map(|n| format!("o{n} !== p{n}")).collect();
        let changed = if changed.is_empty() { "0".to_string() } else { changed.join(" || ") };
        let fmt = vec!["%0d"; self.outputs.len()].join(" ");
        let outs: Vec<String> = (0..self.outputs.len()).map(|n| format!("o{n}")).collect();
        let _ = writeln!(
            tb,
            "      #1 if (t == 0 || t == {} || {changed}) $display(\"out %0d {fmt}\", t, {});",
            cycles.saturating_sub(1),
            outs.join(", ")
        );
        for n in 0..self.outputs.len() {
            let _ = writeln!(tb, "      p{n} = o{n};");
        }
        let _ = writeln!(tb, "      clock = 1; #1 clock = 0; #1;\n    end\n    $finish;\n  end\nendmodule");
        tb
    }

    /// Runs `cycles` under `sim`; returns every cycle's outputs and the wall time of the
    /// simulation itself (without compiling).
    pub fn run(&self, sim: Simulator, cycles: &[Vec<i64>]) -> Result<(Trace, std::time::Duration), ToolError> {
        let mut vectors = String::new();
        for run in cycles.chunk_by(|a, b| a == b) {
            let _ = writeln!(vectors, "{} {}", run.len(), run[0].iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" "));
        }
        write(self.dir, "vectors.txt", &vectors)?;
        write(self.dir, "top.v", self.rtl)?;
        write(self.dir, "tb.v", &self.testbench(cycles.len()))?;
        let (printed, elapsed) = match sim {
            Simulator::Icarus => {
                run("iverilog", &["-g2012", "-o", "sim.vvp", "-s", "tb", "top.v", "tb.v"], self.dir)?;
                let t = std::time::Instant::now();
                let out = run("vvp", &["-n", "sim.vvp"], self.dir)?;
                (out, t.elapsed())
            }
            Simulator::Verilator => {
                let args = [
                    "--binary",
                    "--timing",
                    "-O2",
                    "-Wno-fatal",
                    "-Wno-lint",
                    "-Wno-style",
                    "--top-module",
                    "tb",
                    "-o",
                    "simv",
                    "tb.v",
                    "top.v",
                ];
                run("verilator", &args, self.dir)?;
                let t = std::time::Instant::now();
                let out = run_program("simulation binary", &self.dir.join("obj_dir/simv"), &[], self.dir)?;
                (out, t.elapsed())
            }
        };
        let mut outs: Trace = Vec::with_capacity(cycles.len());
        for line in printed.lines().filter_map(|l| l.strip_prefix("out ")) {
            let mut fields = line.split_whitespace();
            let t: usize = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            let values: Vec<Option<i64>> = fields.map(|v| v.parse().ok()).collect();
            while outs.len() < t {
                let last = outs.last().cloned().unwrap_or_else(|| values.clone());
                outs.push(last);
            }
            outs.push(values);
        }
        Ok((outs, elapsed))
    }
}
