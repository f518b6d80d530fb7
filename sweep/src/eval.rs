//! Evaluating one point: every layer compiled for the point's architecture and timed on the
//! simulator's fast path (exact schedule and access counts without moving data), then
//! energy, area and lower bounds from `systole-mappings`.

use crate::results::{LayerRecord, Record};
use crate::space::Space;
use crate::synth::Synth;
use rustc_hash::FxHashMap;
use systole_core::layer::{ConvShape, Layer, LayerOp};
use systole_core::mapping::Objective;
use systole_core::network::Network;
use systole_core::workload::Workload;
use systole_mappings::{area, bounds, energy};

/// What a sweep runs at every point: the accelerator layers. Timing and access counts
/// depend on a layer's operator and shape, not on its data, so the layers are planned
/// without weights ([`systole_compiler::plan_layer`]).
pub struct Target {
    /// Name for reports (workload or model).
    pub name: String,
    /// The layers in order.
    pub layers: Vec<Layer>,
}

impl Target {
    /// The layers of a workload file.
    pub fn workload(wl: &Workload) -> Self {
        Self { name: wl.name.clone(), layers: wl.layers.clone() }
    }

    /// The accelerator layers of a network.
    pub fn network(net: &Network) -> Self {
        let layers = net.nodes.iter().filter_map(|n| n.op.layer_data().map(|(layer, _)| layer.clone())).collect();
        Self { name: net.name.clone(), layers }
    }
}

/// What one layer costs at a point: the chosen mapping's fast-path report.
type LayerCost = (systole_core::LayerReport, Option<systole_core::mapping::Mapping>);

/// Evaluates point `id` of `space` on `target`, each layer with the mapping that minimizes
/// `objective`.
pub fn evaluate(space: &Space, id: u64, target: &Target, process: &energy::Process, objective: Objective, synth: Option<&Synth>) -> Record {
    let mut rec = Record::new(space, id, &target.name);
    rec.objective = objective;
    let arch = match space.arch(id) {
        Ok(a) => a,
        Err(e) => return rec.failed("invalid", e),
    };
    if let Err(e) = arch.validate() {
        return rec.failed("invalid", format!("{e}{}", e.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()));
    }
    rec.pes = arch.pes() as u64;
    rec.clock_mhz = arch.clock_mhz;
    rec.dram_bytes_per_cycle = arch.dram_bytes_per_cycle as u64;
    let mut reports = Vec::with_capacity(target.layers.len());
    // Layers of equal operator and shape (repeated blocks) have equal programs up to their
    // data and output stage: plan and time each once.
    let mut costs: FxHashMap<(LayerOp, ConvShape), LayerCost> = FxHashMap::default();
    for layer in &target.layers {
        let (report, mapping) = match costs.get(&(layer.op, layer.shape)) {
            Some(cost) => cost.clone(),
            None => {
                let program = match systole_compiler::plan_layer(&arch, layer, systole_compiler::Choice::Best(objective)) {
                    Ok(p) => p,
                    Err(e) => return rec.failed("unmappable", e.to_string()),
                };
                // The fast path: exact schedule and access counts, no data (equal to the full
                // simulation, testbenches/tests/properties.rs).
                let report = match systole_sim::estimate(&arch, &program) {
                    Ok(exe) => exe.report,
                    Err(e) => return rec.failed("simulator", format!("layer `{}`: {e}", layer.name)),
                };
                costs.insert((layer.op, layer.shape), (report.clone(), program.mapping));
                (report, program.mapping)
            }
        };
        let b = bounds::bounds(&arch, layer);
        let e = energy::energy(&arch, &report, process);
        rec.layers.push(LayerRecord {
            name: layer.name.clone(),
            op: format!("{:?}", layer.op).to_lowercase(),
            cycles: report.cycles,
            macs: report.macs,
            utilization: report.utilization,
            bound: report.bound.clone(),
            compute_bound_cycles: b.compute,
            memory_bound_cycles: b.memory,
            energy_pj: e.total_pj(),
            dram_bytes: report.dram_bytes.values().sum(),
            mapping,
        });
        reports.push(report);
    }
    let total = systole_core::SimReport::new(&arch.name, &target.name, arch.pes() as u64, arch.clock_mhz, reports).total;
    let e = energy::energy(&arch, &total, process);
    let a = area::area(&arch);
    rec.status = "ok".into();
    rec.cycles = total.cycles;
    rec.latency_ms = total.cycles as f64 / arch.clock_mhz / 1000.0;
    rec.macs = total.macs;
    rec.utilization = total.utilization;
    rec.lower_bound_cycles = rec.layers.iter().map(|l| l.compute_bound_cycles.max(l.memory_bound_cycles)).sum();
    rec.energy = Some(e.clone());
    rec.energy_uj = e.total_pj() / 1e6;
    rec.area = Some(a.clone());
    rec.area_mm2 = a.total_mm2();
    rec.dram_bytes = total.dram_bytes.values().sum();
    rec.fpga = synth.map(|s| crate::synth::synthesize(s, &arch, id));
    rec
}
