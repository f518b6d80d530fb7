//! Running workloads: compile, simulate, check, tabulate.

use miette::{miette, Result};
use rayon::prelude::*;
use std::fmt::Write;
use std::time::Instant;
use systole_core::report::LayerReport;
use systole_core::workload::{LayerData, Workload};
use systole_core::{ArchConfig, Program, SimReport};

fn simulate_layer(arch: &ArchConfig, wl: &Workload, idx: usize, check: bool) -> Result<LayerReport> {
    let layer = &wl.layers[idx];
    let data = wl.layer_data(idx)?;
    let program = systole_compiler::compile_layer(arch, layer, &data)?;
    let (outs, exe) = systole_sim::run(arch, &program, &[&data.input]).map_err(|e| miette!("layer `{}`: simulator: {e}", layer.name))?;
    if check {
        let golden = systole_golden::layer(layer, &data);
        if let Some((i, g, s)) = golden.first_mismatch(&outs[0]) {
            return Err(miette!(
                "layer `{}`: simulator output differs from the golden model at NHWC {i:?}: golden {g}, simulator {s}",
                layer.name
            ));
        }
    }
    let mut report = exe.report;
    report.name = layer.name.clone();
    Ok(report)
}

/// Simulates every layer (in parallel on the current rayon pool).
pub fn simulate(arch: &ArchConfig, wl: &Workload, check: bool) -> Result<SimReport> {
    let layers = (0..wl.layers.len()).into_par_iter().map(|i| simulate_layer(arch, wl, i, check)).collect::<Result<Vec<_>>>()?;
    Ok(SimReport::new(&arch.name, &wl.name, arch.pes() as u64, arch.clock_mhz, layers))
}

/// Header of the numeric columns [`layer_cells`] fills.
pub const CELLS_HEADER: &str = "      cycles           MACs   util   compute filldrain dramstall  bound";

/// A layer's numeric columns: cycles, MACs, utilization, cycles by cause, and its bound.
pub fn layer_cells(l: &LayerReport) -> String {
    let c = |k: &str| l.cycles_by_cause.get(k).copied().unwrap_or(0);
    format!(
        "{:>12} {:>14} {:>6.3} {:>9} {:>9} {:>9}  {:<7}",
        l.cycles,
        l.macs,
        l.utilization,
        c("compute"),
        c("fill_drain"),
        c("dram_stall"),
        l.bound
    )
}

/// The human-readable per-layer table with totals.
pub fn table(arch: &ArchConfig, report: &SimReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "arch {} ({}x{} {}, {} MHz), workload {}",
        arch.name, arch.rows, arch.cols, arch.dataflow, arch.clock_mhz, report.workload
    );
    let _ = writeln!(out, "{:<26} {CELLS_HEADER}", "layer");
    let row = |out: &mut String, l: &LayerReport| {
        let _ = writeln!(out, "{:<26} {}", l.name, layer_cells(l));
    };
    for l in &report.layers {
        row(&mut out, l);
    }
    row(&mut out, &report.total);
    let _ = writeln!(out, "total: {}", throughput(arch, &report.total));
    out
}

/// A host operator's columns, aligned with [`layer_cells`]: no cycles, the bytes it moves.
pub fn host_cells(bytes: u64) -> String {
    format!("{:>12} {:>14} {:>6} {:>9} {:>9} {:>9}  host ({bytes} B)", "-", "-", "-", "-", "-", "-")
}

/// Cycles, time, effective throughput and DRAM traffic of a total.
pub fn throughput(arch: &ArchConfig, total: &LayerReport) -> String {
    let us = total.cycles as f64 / arch.clock_mhz;
    format!(
        "{} cycles = {:.3} ms at {} MHz, {:.1} effective GOPS (2 ops/MAC), DRAM read {} B, write {} B",
        total.cycles,
        us / 1000.0,
        arch.clock_mhz,
        2.0 * total.macs as f64 / (us * 1000.0),
        total.dram_bytes.get("read").unwrap_or(&0),
        total.dram_bytes.get("write").unwrap_or(&0)
    )
}

/// Runs `f` `repeat` times; returns the best wall time in seconds and the last result.
pub fn best_of<T>(repeat: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((best, last.expect("at least one run")))
}

/// One hex line per encoded instruction.
pub fn hex(program: &Program) -> String {
    program
        .instrs
        .iter()
        .map(|i| {
            let words = i.encode().expect("compiler checked encodability");
            words.iter().map(|w| format!("{w:016x}")).collect::<Vec<_>>().join("") + "\n"
        })
        .collect()
}

/// Times the whole workload, compile plus simulate, on one core and on all cores, and the
/// simulator alone on one core (best of `repeat` runs each).
pub fn bench(arch: &ArchConfig, wl: &Workload, repeat: usize) -> Result<()> {
    let data: Vec<LayerData> = (0..wl.layers.len()).map(|i| wl.layer_data(i)).collect::<Result<_, _>>()?;
    let compile = |i: usize| systole_compiler::compile_layer(arch, &wl.layers[i], &data[i]);
    let programs = (0..wl.layers.len()).map(compile).collect::<Result<Vec<_>, _>>()?;
    let macs: u64 = programs.iter().map(|p| p.macs).sum();
    let simulate = |i: usize, p: &Program| {
        systole_sim::run(arch, p, &[&data[i].input]).map(|(_, e)| e.report.cycles).map_err(|e| miette!("layer {i}: simulator: {e}"))
    };
    let end_to_end = |i: usize| -> Result<u64> { simulate(i, &compile(i)?) };
    let n = wl.layers.len();
    let (sim_one, cycles) = best_of(repeat, || (0..n).map(|i| simulate(i, &programs[i])).sum::<Result<u64>>())?;
    let (all_one, _) = best_of(repeat, || (0..n).map(end_to_end).sum::<Result<u64>>())?;
    let (all_par, _) = best_of(repeat, || (0..n).into_par_iter().map(end_to_end).sum::<Result<u64>>())?;
    println!("workload {} on {}: {} layers, {} MACs, {} simulated cycles", wl.name, arch.name, n, macs, cycles);
    println!("compile + simulate, 1 core:   {:>8.3} s", all_one);
    println!("compile + simulate, {} cores:  {:>8.3} s", rayon::current_num_threads(), all_par);
    println!(
        "simulate only, 1 core:        {:>8.3} s  ({:.0} M simulated MACs/s, {:.1} M simulated cycles/s)",
        sim_one,
        macs as f64 / sim_one / 1e6,
        cycles as f64 / sim_one / 1e6
    );
    Ok(())
}
