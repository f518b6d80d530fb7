//! Evaluating one point: every layer compiled for the point's architecture and timed on the
//! simulator's fast path (exact schedule and access counts without moving data), then
//! energy, area and lower bounds from `systole-mappings`. With a vector unit, a network's
//! residual Adds, pools and flatten are timed the same way.

use crate::results::{LayerRecord, Record};
use crate::space::Space;
use crate::synth::Synthesizer;
use rustc_hash::FxHashMap;
use std::sync::{Arc, Mutex};
use systole_compiler::vector::VectorOp;
use systole_core::layer::{ConvShape, Layer, LayerOp};
use systole_core::mapping::Objective;
use systole_core::network::Network;
use systole_core::workload::Workload;
use systole_core::ArchConfig;
use systole_mappings::{area, bounds, energy};

/// What a sweep runs at every point: the accelerator layers. Timing and access counts
/// depend on a layer's operator and shape, not on its data, so the layers are planned
/// without weights ([`systole_compiler::plan_layer`]).
pub struct Target {
    /// Name for reports (workload or model).
    pub name: String,
    /// The layers in order.
    pub layers: Vec<Layer>,
    /// A network's nodes that a vector unit runs (residual Add, pooling, a flatten's copy),
    /// timed at points with `vector_lanes > 0` (compiled alone like the layers).
    vector: Option<VectorNodes>,
    /// Each (engine view, operator, shape, weight format, objective) planned so far, shared by the points:
    /// repeated layers, and a `both` point and the WS and OS points beside it, plan once.
    costs: Mutex<FxHashMap<CostKey, CostResult>>,
}

/// Engine view, operator, shape, format (sparsity, weight bits, density as bits, input
/// activation bits), objective.
type CostKey = (String, LayerOp, ConvShape, (systole_core::Sparsity, u8, u64, u8), Objective);

/// A layer's cost on one engine, or the failed record's status and message.
type CostResult = Result<LayerCost, (&'static str, String)>;

/// A network and its nodes a vector unit runs, with what each computes.
type VectorNodes = (Arc<Network>, Vec<(usize, VectorOp)>);

/// Planned layers a sweep keeps for reuse.
const MAX_CACHED_COSTS: usize = 20_000;

/// What one layer costs on one engine: the best mapping's fast-path report and its
/// compiler score.
#[derive(Clone)]
struct LayerCost {
    report: systole_core::LayerReport,
    mapping: Option<systole_core::mapping::Mapping>,
    score: (f64, f64),
}

impl Target {
    /// The layers of a workload file.
    pub fn workload(wl: &Workload) -> Self {
        Self::new(&wl.name, wl.layers.clone(), None)
    }

    /// The accelerator layers of a network, and the nodes a vector unit runs.
    pub fn network(net: &Network) -> Self {
        let layers = net.nodes.iter().filter_map(|n| n.op.layer_data().map(|(layer, _)| layer.clone())).collect();
        let vector = (0..net.nodes.len()).filter_map(|n| systole_compiler::vector::vector_op(net, n).map(|op| (n, op))).collect();
        Self::new(&net.name, layers, Some((Arc::new(net.clone()), vector)))
    }

    /// The same layers with nothing planned yet (for timing a sweep from a cold start).
    pub fn cold(&self) -> Self {
        Self::new(&self.name, self.layers.clone(), self.vector.clone())
    }

    fn new(name: &str, layers: Vec<Layer>, vector: Option<VectorNodes>) -> Self {
        Self { name: name.into(), layers, vector, costs: Mutex::default() }
    }

    /// `layer` on the single-engine arch `view` (with its table key), planned and timed once
    /// per sweep; an error is the record's status and message.
    fn cost(&self, (view, view_key): &(ArchConfig, String), layer: &Layer, objective: Objective) -> CostResult {
        let key = (
            view_key.clone(),
            layer.op,
            layer.shape,
            (layer.sparsity, layer.weight_bits, layer.density.to_bits(), layer.act_bits),
            objective,
        );
        if let Some(c) = self.costs.lock().expect("no thread panics holding the lock").get(&key) {
            return c.clone();
        }
        let cost = systole_compiler::plan_layer(view, layer, systole_mappings::search::Choice::Best(objective))
            .map_err(|e| ("unmappable", e.to_string()))
            .and_then(|program| {
                // The fast path: exact schedule and access counts, no data (equal to the full
                // simulation, testbenches/tests/properties.rs).
                let report =
                    systole_sim::estimate(view, &program).map_err(|e| ("simulator", format!("layer `{}`: {e}", layer.name)))?.report;
                Ok(LayerCost { report, mapping: program.mapping, score: systole_mappings::search::score(view, objective, &program) })
            });
        let mut costs = self.costs.lock().expect("no thread panics holding the lock");
        // A bound on memory for long sweeps (a few KB per entry); dropping entries only
        // costs replanning.
        if costs.len() >= MAX_CACHED_COSTS {
            costs.clear();
        }
        costs.insert(key, cost.clone());
        cost
    }
}

/// Evaluates point `id` of `space` on `target`, each layer with the mapping that minimizes
/// `objective`.
pub fn evaluate(
    space: &Space,
    id: u64,
    target: &Target,
    process: &energy::Process,
    objective: Objective,
    synth: Option<&dyn Synthesizer>,
) -> Record {
    let mut rec = Record::new(space, id, &target.name);
    rec.objective = objective;
    let arch = match space.arch(id) {
        Ok(a) => a,
        Err(e) => return rec.failed("invalid", e.message),
    };
    if let Err(e) = arch.validate() {
        return rec.failed("invalid", format!("{e}{}", e.help.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()));
    }
    rec.pes = arch.pes() as u64;
    rec.clock_mhz = arch.clock_mhz;
    rec.dram_bytes_per_cycle = arch.dram_bytes_per_cycle as u64;
    let mut reports = Vec::with_capacity(target.layers.len());
    // Everything but the name and the clock shapes a program and its timing: the key of
    // each engine view in the shared cost table, made once per point.
    let views: Vec<(ArchConfig, String)> = systole_mappings::search::engines(&arch)
        .into_iter()
        .map(|v| {
            let key = format!("{:?}", ArchConfig { name: String::new(), clock_mhz: 0.0, ..v.clone() });
            (v, key)
        })
        .collect();
    for layer in &target.layers {
        // Layers of equal operator and shape (repeated blocks) have equal programs up to
        // their data and output stage. On a `both` instance the compiler takes the better
        // engine by its score, ties to WS (its program is that engine's program).
        let mut best: Option<LayerCost> = None;
        let mut first_error = None;
        for view in &views {
            match target.cost(view, layer, objective) {
                Ok(c) if best.as_ref().is_none_or(|b| c.score < b.score) => best = Some(c),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let LayerCost { report, mapping, .. } = match best {
            Some(c) => c,
            None => {
                let (status, message) = first_error.expect("an engine failed");
                return rec.failed(status, message);
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
    if let (Some((net, nodes)), true) = (&target.vector, arch.vector_lanes > 0) {
        for &(n, op) in nodes {
            // Timing and accesses depend on the node's shapes, not on its tables (which the
            // full simulation makes and checks exactly).
            let name = &net.nodes[n].name;
            let program = match systole_compiler::vector::compile_alone(&arch, net, n, &op.timing_kernels(net, n)) {
                Ok(p) => p,
                // Too large for the scratchpads: a host step, as `systole_runtime::compile`
                // makes it, uncounted like the others.
                Err(systole_compiler::CompileError::DoesNotFit { .. }) => continue,
                Err(e) => return rec.failed("unmappable", e.to_string()),
            };
            let report = match systole_sim::estimate(&arch, &program) {
                Ok(x) => x.report,
                Err(e) => return rec.failed("simulator", format!("node `{name}`: {e}")),
            };
            let busy: u64 = program
                .instrs
                .iter()
                .filter(|i| matches!(i.op, systole_core::isa::Op::Vector { .. }))
                .map(|i| systole_core::timing::cost(&arch, &i.op).0)
                .sum();
            let dram: u64 = report.dram_bytes.values().sum();
            let e = energy::energy(&arch, &report, process);
            rec.layers.push(LayerRecord {
                name: name.clone(),
                op: net.nodes[n].op.kind().into(),
                cycles: report.cycles,
                macs: 0,
                utilization: 0.0,
                bound: report.bound.clone(),
                compute_bound_cycles: busy,
                memory_bound_cycles: dram.div_ceil(arch.dram_bytes_per_cycle as u64),
                energy_pj: e.total_pj(),
                dram_bytes: dram,
                mapping: None,
            });
            reports.push(report);
        }
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
    rec.fpga = synth.map(|s| s.synthesize(&arch, id));
    rec
}
