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

/// The human-readable per-layer table with totals.
pub fn table(arch: &ArchConfig, report: &SimReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "arch {} ({}x{} {}, {} MHz), workload {}",
        arch.name, arch.rows, arch.cols, arch.dataflow, arch.clock_mhz, report.workload
    );
    let _ = writeln!(
        out,
        "{:<26} {:>12} {:>14} {:>6} {:>9} {:>9} {:>9}  {:<7}",
        "layer", "cycles", "MACs", "util", "compute", "filldrain", "dramstall", "bound"
    );
    let row = |out: &mut String, l: &LayerReport| {
        let c = |k: &str| l.cycles_by_cause.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "{:<26} {:>12} {:>14} {:>6.3} {:>9} {:>9} {:>9}  {:<7}",
            l.name,
            l.cycles,
            l.macs,
            l.utilization,
            c("compute"),
            c("fill_drain"),
            c("dram_stall"),
            l.bound
        );
    };
    for l in &report.layers {
        row(&mut out, l);
    }
    row(&mut out, &report.total);
    let us = report.total.cycles as f64 / arch.clock_mhz;
    let _ = writeln!(
        out,
        "total: {} cycles = {:.3} ms at {} MHz, {:.1} effective GOPS (2 ops/MAC), DRAM read {} B, write {} B",
        report.total.cycles,
        us / 1000.0,
        arch.clock_mhz,
        2.0 * report.total.macs as f64 / (us * 1000.0),
        report.total.dram_bytes.get("read").unwrap_or(&0),
        report.total.dram_bytes.get("write").unwrap_or(&0)
    );
    out
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

/// Times compile + simulate of the whole workload, single-threaded and on all cores.
pub fn bench(arch: &ArchConfig, wl: &Workload, repeat: usize) -> Result<()> {
    let data: Vec<LayerData> = (0..wl.layers.len()).map(|i| wl.layer_data(i)).collect::<Result<_, _>>()?;
    let programs = wl.layers.iter().zip(&data).map(|(l, d)| systole_compiler::compile_layer(arch, l, d)).collect::<Result<Vec<_>, _>>()?;
    let macs: u64 = programs.iter().map(|p| p.macs).sum();
    let sim_one = |i: usize| systole_sim::run(arch, &programs[i], &[&data[i].input]).map(|(_, e)| e.report.cycles);
    let time = |parallel: bool| -> Result<(f64, u64)> {
        let mut best = f64::INFINITY;
        let mut cycles = 0;
        for _ in 0..repeat {
            let t = Instant::now();
            let c: Vec<u64> = if parallel {
                (0..programs.len()).into_par_iter().map(sim_one).collect::<Result<_, _>>()
            } else {
                (0..programs.len()).map(sim_one).collect::<Result<_, _>>()
            }
            .map_err(|e| miette!("simulator: {e}"))?;
            best = best.min(t.elapsed().as_secs_f64());
            cycles = c.iter().sum();
        }
        Ok((best, cycles))
    };
    let t = Instant::now();
    for (l, d) in wl.layers.iter().zip(&data) {
        systole_compiler::compile_layer(arch, l, d)?;
    }
    let compile = t.elapsed().as_secs_f64();
    let (one, cycles) = time(false)?;
    let (all, _) = time(true)?;
    println!("workload {} on {}: {} layers, {} MACs, {} simulated cycles", wl.name, arch.name, wl.layers.len(), macs, cycles);
    println!("compile (1 core):          {:>8.3} s", compile);
    println!(
        "simulate (1 core):         {:>8.3} s  {:>8.1} M simulated MACs/s  {:>8.1} M simulated cycles/s",
        one,
        macs as f64 / one / 1e6,
        cycles as f64 / one / 1e6
    );
    println!(
        "simulate ({} cores):        {:>8.3} s  {:>8.1} M simulated MACs/s",
        rayon::current_num_threads(),
        all,
        macs as f64 / all / 1e6
    );
    Ok(())
}
