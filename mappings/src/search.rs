//! How a layer's mapping is chosen: which lowering's space it has, which engines a `both`
//! instance offers, and the search itself. The leading candidates by estimate (from
//! [`crate::dense`] or [`crate::depthwise`]) are built into programs by the compiler and
//! scored exactly ([`score`]: the timing model's cycles, or the energy of the access
//! counts); the lowest score wins, ties keeping the better estimate.

use crate::{dense, depthwise, MappingError};
use systole_core::layer::{Layer, LayerOp};
use systole_core::mapping::{Mapping, Objective};
use systole_core::{ArchConfig, ConfigError, Dataflow, Program};

/// How many of the best-estimated tilings are built and timed exactly.
pub const RANKED_CANDIDATES: usize = 6;

/// How the compiler picks a layer's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Search the tilings for the best under an objective.
    Best(Objective),
    /// Use exactly this mapping (an error if it does not fit the layer and the arch).
    Fixed(Mapping),
}

/// The lowering whose mapping space a layer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowering {
    /// Dense or grouped convolution, or GEMM: an implicit-im2col GEMM ([`crate::dense`]).
    Dense,
    /// Depthwise convolution as banded GEMMs ([`crate::depthwise`]).
    Depthwise,
}

/// Validates `arch` and `layer` and tells which lowering the layer takes.
pub fn lowering(arch: &ArchConfig, layer: &Layer) -> Result<Lowering, MappingError> {
    let invalid =
        |error: ConfigError| MappingError::Invalid { layer: layer.name.clone(), help: error.help.clone(), error: Box::new(error) };
    arch.validate().map_err(invalid)?;
    layer.validate().map_err(invalid)?;
    let min_cycles = layer.shape.macs().div_ceil(arch.pes() as u64);
    if min_cycles > systole_core::layer::MAX_LAYER_MIN_CYCLES {
        return Err(invalid(
            ConfigError::new(
                "input",
                format!(
                    "{} multiply-accumulates take at least {min_cycles} cycles on {} PEs, more than the {} accepted for one layer",
                    layer.shape.macs(),
                    arch.pes(),
                    systole_core::layer::MAX_LAYER_MIN_CYCLES
                ),
            )
            .help("split the layer, lower its batch, or use a larger array"),
        ));
    }
    // Without the transposer a depthwise layer is a grouped GEMM like any other.
    let depthwise = arch.transposer
        && (layer.op == LayerOp::Depthwise || (layer.shape.groups == layer.shape.c && layer.shape.k == layer.shape.c && layer.shape.c > 1));
    Ok(if depthwise { Lowering::Depthwise } else { Lowering::Dense })
}

/// The single-engine views of `arch`: `arch` itself, or for `both` its WS and its OS
/// engine, each seeing the shared memories as its own. A layer on a `both` instance takes
/// the better of its engines' programs, by [`score`] (ties: WS).
pub fn engines(arch: &ArchConfig) -> Vec<ArchConfig> {
    match arch.dataflow {
        Dataflow::Both => {
            [Dataflow::WeightStationary, Dataflow::OutputStationary].map(|dataflow| ArchConfig { dataflow, ..arch.clone() }).to_vec()
        }
        _ => vec![arch.clone()],
    }
}

/// Every feasible mapping of `layer` on `arch`, best estimate first (a `both` instance:
/// the WS engine's, then the OS engine's): what [`Choice::Best`] chooses among (the
/// compiler builds and times the leading ones) and what [`Choice::Fixed`] accepts.
pub fn feasible_mappings(arch: &ArchConfig, layer: &Layer) -> Result<Vec<Mapping>, MappingError> {
    let lowering = lowering(arch, layer)?;
    let mappings = |arch: &ArchConfig| match lowering {
        Lowering::Depthwise => depthwise::mappings(arch, layer),
        Lowering::Dense => dense::mappings(arch, layer),
    };
    let per_engine: Vec<_> = engines(arch).iter().map(mappings).collect();
    if per_engine.iter().all(Result::is_err) {
        return per_engine.into_iter().next().expect("at least one engine");
    }
    Ok(per_engine.into_iter().flat_map(Result::unwrap_or_default).collect())
}

/// The energy of `program` on `arch` under the default 45 nm table, pJ: its access counts
/// (from instruction fields) and MACs.
pub fn program_energy_pj(arch: &ArchConfig, program: &Program) -> f64 {
    let report = systole_core::isa::access_totals(arch, &program.instrs).report(program.macs);
    crate::energy::energy(arch, &report, &crate::energy::Process::horowitz_45nm()).total_pj()
}

/// What `objective` minimizes for `program` on `arch`, then the other measure: exact
/// cycles, or the energy of the access counts under the default 45 nm table. The search
/// keeps the lowest.
pub fn score(arch: &ArchConfig, objective: Objective, program: &Program) -> (f64, f64) {
    // Emitted programs wait only on earlier instructions, so program order is an issue
    // order and gives the schedule's exact cycles.
    let mut line = systole_core::timing::Timeline::new(arch);
    for ins in &program.instrs {
        line.issue(arch, ins).expect("emitted programs wait only on earlier instructions");
    }
    let cycles = line.cycles() as f64;
    match objective {
        Objective::Latency => (cycles, 0.0),
        Objective::Energy => (program_energy_pj(arch, program), cycles),
    }
}

/// Builds the program of each candidate (at least one) and keeps the best under
/// `objective` by [`score`]; ties keep the earlier candidate.
pub fn best<'a, T: 'a>(
    arch: &ArchConfig,
    objective: Objective,
    candidates: impl Iterator<Item = &'a T>,
    build: impl Fn(&T) -> Program,
) -> Program {
    let mut best: Option<((f64, f64), Program)> = None;
    for c in candidates {
        let program = build(c);
        let score = score(arch, objective, &program);
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, program));
        }
    }
    best.expect("at least one candidate").1
}

/// The program `lower_on` gives on `arch`, or on a `both` instance the better of its
/// engines' programs under `objective` (a layer may fit only one; ties: WS).
pub fn on_best_engine<E>(
    arch: &ArchConfig,
    objective: Objective,
    lower_on: impl Fn(&ArchConfig) -> Result<Program, E>,
) -> Result<Program, E> {
    let views = engines(arch);
    if views.len() == 1 {
        return lower_on(arch);
    }
    let mut best: Option<((f64, f64), Program)> = None;
    let mut first_error = None;
    for view in &views {
        match lower_on(view) {
            Ok(p) => {
                let s = score(arch, objective, &p);
                if best.as_ref().is_none_or(|(b, _)| s < *b) {
                    best = Some((s, p));
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| first_error.expect("an engine failed"))
}

/// The error for a fixed mapping that is not one of the layer's feasible tilings.
pub fn infeasible(layer: &Layer, mapping: &Mapping) -> MappingError {
    MappingError::Invalid {
        layer: layer.name.clone(),
        help: Some("use a mapping a sweep or `systole compile` reported for this layer and arch".into()),
        error: Box::new(ConfigError::new("mapping", format!("{mapping} is not a feasible tiling of this layer on this arch"))),
    }
}
