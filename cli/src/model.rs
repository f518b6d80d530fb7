//! Whole ONNX models: load (quantizing float models), simulate, check, tabulate.

use miette::{miette, IntoDiagnostic, Result, WrapErr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use systole_core::network::{HostTensor, Network, Op};
use systole_core::ArchConfig;
use systole_onnx::{self as onnx, ptq, FTensor};
use systole_runtime::{Compiled, NetworkRun, Row};

/// How to calibrate a float model.
pub struct Calibration {
    /// A float32 .npy batch of inputs (axis 0), or None for seeded random inputs.
    pub file: Option<PathBuf>,
    /// Random samples when no file is given.
    pub samples: usize,
    /// Seed of the random samples.
    pub seed: u64,
}

/// The calibration samples for `model`.
pub(crate) fn samples(model: &onnx::OnnxModel, calibration: &Calibration) -> Result<Vec<ptq::Sample>> {
    Ok(match &calibration.file {
        Some(file) => {
            let (shape, data) = systole_core::npy::read_any::<f32>(file, "calibration batch")?;
            ptq::samples_from_batch(model, &FTensor { shape, data })
                .map_err(|e| miette!(help = "save a float32 batch [B, ...input shape] with numpy.save", "{}: {e}", file.display()))?
        }
        None => ptq::random_samples(model, calibration.samples.max(1), calibration.seed),
    })
}

/// What `systole compress` was asked to do.
pub struct CompressChoice<'a> {
    /// `--prune`: the default pruning.
    pub prune: Option<&'a str>,
    /// `--policy`: the per-layer policy file.
    pub policy: Option<&'a Path>,
    /// `--bits`: the default weight bits.
    pub bits: Option<u8>,
    /// `--act-bits`: the default input activation bits.
    pub act_bits: Option<u8>,
}

/// `systole compress`: prunes (and, with weight bits, quantizes) the float model at `path`
/// by `--prune` / `--bits` (the defaults) and `--policy` (per layer), writes it to `out` and
/// prints the accuracy proxy per layer.
pub fn compress(path: &Path, out: &Path, choice: &CompressChoice, calibration: &Calibration, json: Option<&Path>) -> Result<()> {
    use systole_compress::prune::{self as compress, Policy};
    let (prune, policy) = (choice.prune, choice.policy);
    let mut p = match policy {
        Some(file) => {
            let text = systole_core::input::read_text(file, systole_core::input::MAX_TOML_BYTES, "a compression policy file")?;
            Policy::from_toml(file, &text)?
        }
        None => Policy::default(),
    };
    if let Some(spec) = prune {
        p.default = spec.parse().map_err(|e| miette!("--prune {e}"))?;
    }
    if let Some(b) = choice.bits {
        if b != 4 && b != 8 {
            return Err(miette!(help = "use --bits 4 or --bits 8", "--bits {b}: weights are quantized to 4 or 8 bits"));
        }
        p.default_bits = Some(b);
    }
    if let Some(b) = choice.act_bits {
        if b != 4 && b != 8 {
            return Err(miette!(help = "use --act-bits 4 or --act-bits 8", "--act-bits {b}: activations are quantized to 4 or 8 bits"));
        }
        p.default_act_bits = Some(b);
    }
    if p.quantizes() && p.default_bits.is_none() {
        // Every layer of the written model is quantized; the proxy should see all of them.
        p.default_bits = Some(8);
    }
    if prune.is_none() && policy.is_none() && choice.bits.is_none() && choice.act_bits.is_none() {
        return Err(miette!(
            help = "e.g. --prune 2:4, --bits 4, --act-bits 4, or --policy policy.toml",
            "nothing to do: give --prune, --bits, --act-bits or --policy"
        ));
    }
    let model = onnx::read(path)?;
    let samples = samples(&model, calibration)?;
    let (pruned, report) = compress::compress(&model, path, &p, &samples)?;
    let written = if p.quantizes() {
        let q = ptq::quantize_with_bits(&pruned, out, &samples, &|name| p.bits_for(name).unwrap_or(8), &|name| {
            report.layers.iter().any(|l| l.name == name && l.act_bits == 4)
        })?;
        onnx::import(&q, out)?;
        q
    } else {
        pruned
    };
    std::fs::write(out, written.to_bytes()).into_diagnostic().wrap_err_with(|| format!("cannot write {}", out.display()))?;
    let db = |v: f64| if v.is_finite() { format!("{v:.1}") } else { "exact".into() };
    println!(
        "{:<28} {:<7} {:<18} {:>5} {:>5} {:>10} {:>9} {:>9}",
        "layer", "op", "pruning", "bits", "act", "weights", "sparsity", "SQNR dB"
    );
    for l in &report.layers {
        let sparsity = l.zeros as f64 / l.weights.max(1) as f64;
        let bits = l.bits.map_or("float".to_string(), |b| b.to_string());
        println!(
            "{:<28} {:<7} {:<18} {:>5} {:>5} {:>10} {:>9.3} {:>9}",
            l.name,
            l.op,
            l.pruning,
            bits,
            l.act_bits,
            l.weights,
            sparsity,
            db(l.sqnr_db)
        );
    }
    let (w, z): (usize, usize) = report.layers.iter().fold((0, 0), |(w, z), l| (w + l.weights, z + l.zeros));
    println!("total: {w} weights, {z} zero ({:.3})", z as f64 / w.max(1) as f64);
    for (name, v) in &report.outputs {
        println!("output `{name}`: SQNR {} dB against the float model", db(*v));
    }
    if let Some(file) = json {
        let text = serde_json::to_string_pretty(&report).into_diagnostic()?;
        std::fs::write(file, text).into_diagnostic().wrap_err_with(|| format!("cannot write {}", file.display()))?;
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// Quantizes the float model at `path`; returns the QDQ model's bytes.
pub fn quantize(path: &Path, calibration: &Calibration) -> Result<Vec<u8>> {
    let model = onnx::read(path)?;
    if !ptq::is_float(&model) {
        return Err(miette!(help = "give the float model", "{}: the model is already quantized", path.display()));
    }
    let q = ptq::quantize(&model, path, &samples(&model, calibration)?)?;
    onnx::import(&q, path)?;
    Ok(q.to_bytes())
}

/// Reads `path`; a float model is quantized first (and said so on stderr).
pub fn load(path: &Path, calibration: &Calibration) -> Result<Network> {
    let model = onnx::read(path)?;
    let model = if ptq::is_float(&model) {
        let samples = samples(&model, calibration)?;
        eprintln!(
            "{}: float model, quantized by Systole (int8 per-channel weights, per-tensor activations) on {} calibration input(s){}",
            path.display(),
            samples.len(),
            if calibration.file.is_none() { " drawn from N(0, 1) (give --calibrate for real data)" } else { "" }
        );
        ptq::quantize(&model, path, &samples)?
    } else {
        model
    };
    Ok(onnx::import(&model, path)?)
}

/// The network's inputs: from .npy files, or seeded uniform over each input's quantized range.
pub fn inputs(net: &Network, files: &[PathBuf], seed: u64) -> Result<Vec<HostTensor>> {
    if !files.is_empty() && files.len() != net.inputs.len() {
        return Err(miette!(
            help = "give one --input per network input, in the graph's order",
            "{} --input file(s) for a network with {} input(s)",
            files.len(),
            net.inputs.len()
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    net.inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let v = &net.values[input.value];
            let shape = v.shape.clone();
            let what = format!("input `{}`", input.name);
            Ok(match (files.get(i), input.float) {
                (Some(f), true) => HostTensor::F32 { data: systole_core::npy::read::<f32>(f, &shape, &what)?, shape },
                (Some(f), false) => HostTensor::I8 { data: systole_core::npy::read::<i8>(f, &shape, &what)?, shape },
                (None, true) => {
                    let (lo, hi) = (v.quant.dequantize(i8::MIN), v.quant.dequantize(i8::MAX));
                    HostTensor::F32 { data: (0..v.len()).map(|_| rng.gen_range(lo..=hi)).collect(), shape }
                }
                (None, false) => HostTensor::I8 { data: (0..v.len()).map(|_| rng.gen()).collect(), shape },
            })
        })
        .collect()
}

/// Compiles the network program and simulates it (each run in the segments that
/// instruction memories of `instr_depth` hold, if given); with `check`, every value must
/// equal the golden network's.
pub fn simulate(
    arch: &ArchConfig,
    net: &Network,
    inputs: &[HostTensor],
    instr_depth: Option<usize>,
    check: bool,
) -> Result<(NetworkRun, Compiled)> {
    let compiled = systole_runtime::compile(arch, net)?;
    let run = systole_runtime::simulate_observed(arch, net, &compiled.network, inputs, instr_depth, |_| {})?;
    if check {
        check_values(net, inputs, &run.values, "simulator")?;
    }
    Ok((run, compiled))
}

/// Every node's output in `values` (from `who`) must equal the golden network's on `inputs`.
pub fn check_values(net: &Network, inputs: &[HostTensor], values: &[Vec<i8>], who: &str) -> Result<()> {
    let x = systole_golden::network::input_values(net, inputs).into_diagnostic()?;
    let golden =
        systole_golden::network::run_with(net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d))).expect("golden layers do not fail");
    for n in &net.nodes {
        if golden[n.output] != values[n.output] {
            let i = golden[n.output].iter().zip(&values[n.output]).position(|(a, b)| a != b).unwrap_or(0);
            let differ = golden[n.output].iter().zip(&values[n.output]).filter(|(a, b)| a != b).count();
            return Err(miette!(
                "node `{}` ({}): the {who}'s output differs from the golden network in {differ} of {} elements, first at element {i}: golden {}, {who} {}",
                n.name,
                n.op.kind(),
                golden[n.output].len(),
                golden[n.output].get(i).copied().unwrap_or_default(),
                values[n.output].get(i).copied().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// Writes the outputs: one output to `path`, several to `path` with `.NAME` before `.npy`.
pub fn write_outputs(net: &Network, run: &NetworkRun, path: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    for (o, t) in net.outputs.iter().zip(&run.outputs) {
        let file = if net.outputs.len() == 1 {
            path.to_path_buf()
        } else {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            path.with_file_name(format!("{stem}.{}.npy", o.name.replace(['/', '\\', ':'], "_")))
        };
        let r = match t {
            HostTensor::F32 { shape, data } => systole_core::npy::write(&file, shape, data),
            HostTensor::I8 { shape, data } => systole_core::npy::write(&file, shape, data),
        };
        r.into_diagnostic().wrap_err_with(|| format!("cannot write {}", file.display()))?;
        written.push(file);
    }
    Ok(written)
}

/// The per-node table: accelerator layers with cycles, utilization and bound; host operators
/// with the bytes they move; totals and the DRAM buffer plan.
/// `instr_depth` is the depth the runs were segmented for, if any.
pub fn table(arch: &ArchConfig, net: &Network, run: &NetworkRun, compiled: &Compiled, instr_depth: Option<usize>) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(out, "arch {} ({}x{} {}, {} MHz), model {}", arch.name, arch.rows, arch.cols, arch.dataflow, arch.clock_mhz, net.name);
    let _ = writeln!(out, "{:<28} {:<13} {}", "node", "op", crate::run::CELLS_HEADER);
    let mut layer_kind = vec![""; run.report.layers.len()];
    for row in &run.rows {
        match row {
            &Row::Layer { layer, node } => {
                let l = &run.report.layers[layer];
                layer_kind[layer] = net.nodes[node].op.kind();
                let _ = writeln!(out, "{:<28} {:<13} {}", l.name, layer_kind[layer], crate::run::layer_cells(l));
            }
            Row::Host(h) => {
                let _ = writeln!(out, "{:<28} {:<13} {}", h.name, h.kind, crate::run::host_cells(h.bytes));
            }
        }
    }
    let t = &run.report.total;
    let _ = writeln!(out, "{:<28} {:<13} {}", "total", "", crate::run::layer_cells(t));
    for kind in ["conv", "depthwise", "gemm"] {
        let rows: Vec<_> = run.report.layers.iter().zip(&layer_kind).filter(|(_, k)| **k == kind).map(|(l, _)| l).collect();
        if rows.is_empty() {
            continue;
        }
        let (cycles, macs): (u64, u64) = rows.iter().fold((0, 0), |(c, m), l| (c + l.cycles, m + l.macs));
        let _ = writeln!(
            out,
            "  {kind:<10} {:>3} layers, {:>11} cycles ({:>5.1}%), utilization {:.3}",
            rows.len(),
            cycles,
            100.0 * cycles as f64 / t.cycles.max(1) as f64,
            systole_core::report::utilization(macs, arch.pes() as u64, cycles)
        );
    }
    let host_ops = run.rows.iter().filter(|r| matches!(r, Row::Host(_))).count();
    let _ = writeln!(
        out,
        "total: {} accelerator layers, {host_ops} host operators moving {} B ({:.1}% of all bytes moved); {}",
        run.report.layers.len(),
        run.report.host_bytes(),
        100.0 * run.report.host_byte_share(),
        crate::run::throughput(arch, t)
    );
    let np = &compiled.network;
    let runs = np.runs().count();
    let alone = compiled
        .layers
        .iter()
        .flatten()
        .map(|p| Ok(systole_sim::estimate(arch, p)?.report.cycles))
        .sum::<Result<u64, systole_sim::SimError>>()?;
    let arena = np.buffers.iter().flatten().map(|b| b.addr + b.size() as u64).max().unwrap_or(0);
    let longest = np.runs().flat_map(|(p, _)| systole_core::Unit::ALL.map(|u| p.count(u))).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "one program: {runs} accelerator run(s) and {host_ops} host step(s) over one DRAM image of {:.1} KiB ({:.1} KiB activations); {} cycles, against {alone} with each layer alone ({:+.1}%)",
        np.dram_size as f64 / 1024.0,
        arena as f64 / 1024.0,
        t.cycles,
        100.0 * (t.cycles as f64 - alone as f64) / alone.max(1) as f64
    );
    match arch.instr_queue {
        Some(q) => {
            let streamed: usize = np.runs().flat_map(|(p, _)| systole_core::Unit::ALL.map(|u| p.count(u).saturating_sub(q))).sum();
            let _ = writeln!(
                out,
                "longest run: {longest} instructions on one unit; with queues of {q}, {streamed} instructions ({:.1} KiB) streamed from DRAM",
                streamed as f64 * 64.0 / 1024.0
            );
        }
        None if run.segment_cycles.len() > runs => {
            let _ = writeln!(
                out,
                "longest run: {longest} instructions on one unit; in instruction memories of {} per unit the runs take {} segments, each loaded once the one before has finished",
                instr_depth.unwrap_or(longest),
                run.segment_cycles.len()
            );
        }
        None => {
            let _ = writeln!(
                out,
                "longest run: {longest} instructions on one unit (without instr_queue the RTL's instruction memories must hold it: `systole rtl --instr-depth`)"
            );
        }
    }
    let plan = systole_compiler::schedule::plan(net);
    let weights: usize = net
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Layer { weights, bias, .. } => weights.data.len() + 4 * bias.len(),
            _ => 0,
        })
        .sum();
    let _ = writeln!(
        out,
        "DRAM: activations {:.1} KiB with buffer reuse ({:.1} KiB without), weights and biases {:.1} KiB",
        plan.peak as f64 / 1024.0,
        plan.total as f64 / 1024.0,
        weights as f64 / 1024.0
    );
    Ok(out)
}

/// Times a whole model, best of `repeat`: reading and quantizing, compiling every layer and
/// the network program (all cores), and simulating the network program on one core.
pub fn bench(arch: &ArchConfig, path: &Path, calibration: &Calibration, repeat: usize) -> Result<()> {
    use crate::run::best_of;
    let (t_load, net) = best_of(repeat, || load(path, calibration))?;
    let x = inputs(&net, &[], calibration.seed)?;
    let (t_compile, compiled) = best_of(repeat, || Ok(systole_runtime::compile(arch, &net)?))?;
    let (t_sim, cycles) = best_of(repeat, || Ok(systole_runtime::simulate(arch, &net, &compiled.network, &x)?.report.total.cycles))?;
    let macs = net.macs();
    println!(
        "model {} on {}: {} nodes ({} accelerator layers), {} MACs, {} simulated cycles",
        net.name,
        arch.name,
        net.nodes.len(),
        net.layers().count(),
        macs,
        cycles
    );
    println!("read + quantize + import:      {t_load:>8.3} s");
    println!("compile network, {} cores:     {t_compile:>8.3} s", rayon::current_num_threads());
    println!(
        "simulate network, 1 core:      {t_sim:>8.3} s  ({:.0} M simulated MACs/s, {:.1} M simulated cycles/s)",
        macs as f64 / t_sim / 1e6,
        cycles as f64 / t_sim / 1e6
    );
    println!("end to end:                    {:>8.3} s", t_load + t_compile + t_sim);
    Ok(())
}
