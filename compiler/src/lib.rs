//! The Systole compiler: maps one layer onto an [`ArchConfig`] and emits a [`Program`].
//!
//! ```text
//!  Layer + LayerData
//!     │  layout:    DRAM placement of input (padded with the zero point), output, tables
//!     │  lowering:  dense conv / GEMM -> im2col GEMM (WS or OS);  depthwise -> Toeplitz GEMMs
//!     │  tiling:    tile sizes chosen by a cycle estimate, within every SRAM's capacity
//!     ▼
//!  Steps ──► emit: weight streaming, WS preload chaining, Sync waits from region use
//!     ▼
//!  Program
//! ```
//!
//! The input zero point is folded into the bias (`bias - x_zp * sum(w)`), so the array
//! multiplies raw int8 values; padding is stored in DRAM as the zero point and contributes
//! nothing. Both are exact in wrapping int32 arithmetic.

mod dense;
mod depthwise;
mod emit;
mod layout;
pub mod network;
pub mod passes;
pub mod schedule;
pub mod vector;

use miette::Diagnostic;
use systole_core::layer::{Layer, LayerOp};
use systole_core::mapping::{Mapping, Objective};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, ConfigError, Dataflow, Program};
use thiserror::Error;

pub use emit::{Emitter, Region, Step};
pub use layout::{Frame, View};

/// Why a layer could not be compiled.
#[derive(Debug, Error, Diagnostic)]
pub enum CompileError {
    /// The layer or the architecture is invalid.
    #[error("layer `{layer}`: {error}")]
    #[diagnostic(code(systole::compile::invalid))]
    Invalid {
        /// Layer name.
        layer: String,
        /// What is wrong.
        error: Box<ConfigError>,
        /// How to fix it (from `source`).
        #[help]
        help: Option<String>,
    },
    /// Even the smallest tile does not fit a memory.
    #[error("layer `{layer}` does not fit: {what} needs {need} but `{field}` provides {have}")]
    #[diagnostic(code(systole::compile::capacity))]
    DoesNotFit {
        /// Layer name.
        layer: String,
        /// The smallest tile's requirement.
        what: String,
        /// ArchConfig field to enlarge.
        field: &'static str,
        /// Amount needed.
        need: usize,
        /// Amount available.
        have: usize,
        /// Suggested fix.
        #[help]
        help: String,
    },
    /// An instruction field overflowed its encoding.
    #[error("layer `{layer}`: {source}")]
    #[diagnostic(code(systole::compile::encode), help("the layer is too large for the instruction encoding; split it"))]
    Encode {
        /// Layer name.
        layer: String,
        /// The field.
        #[source]
        source: systole_core::isa::EncodeError,
    },
}

/// How many of the best-estimated tilings are built and timed exactly.
const RANKED_CANDIDATES: usize = 6;

/// How the compiler picks a layer's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Search the tilings for the best under an objective.
    Best(Objective),
    /// Use exactly this mapping (an error if it does not fit the layer and the arch).
    Fixed(Mapping),
}

/// The energy of `program` on `arch` under the default 45 nm table, pJ: its access counts
/// (from instruction fields) and MACs.
pub fn program_energy_pj(arch: &ArchConfig, program: &Program) -> f64 {
    let report = systole_core::isa::access_totals(arch, &program.instrs).report(program.macs);
    systole_mappings::energy::energy(arch, &report, &systole_mappings::energy::Process::horowitz_45nm()).total_pj()
}

/// Builds the program of each candidate and keeps the best under `objective`, scored with
/// the exact timing model (and, for energy, the access counts); ties keep the earlier
/// candidate.
fn best<'a, T: 'a>(
    arch: &ArchConfig,
    objective: Objective,
    candidates: impl Iterator<Item = &'a T>,
    build: impl Fn(&T) -> Program,
) -> Result<Program, CompileError> {
    let mut best: Option<((f64, f64), Program)> = None;
    for c in candidates {
        let program = build(c);
        let score = score(arch, objective, &program);
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, program));
        }
    }
    Ok(best.expect("at least one candidate").1)
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

/// The error for a fixed mapping that is not one of the layer's feasible tilings.
fn infeasible(layer: &Layer, mapping: &Mapping) -> CompileError {
    CompileError::Invalid {
        layer: layer.name.clone(),
        help: Some("use a mapping a sweep or `systole compile` reported for this layer and arch".into()),
        error: Box::new(ConfigError::new("mapping", format!("{mapping} is not a feasible tiling of this layer on this arch"))),
    }
}

/// Compiles one layer with its constant data (weights, bias) for `arch`, with the mapping of
/// lowest latency.
pub fn compile_layer(arch: &ArchConfig, layer: &Layer, data: &LayerData) -> Result<Program, CompileError> {
    compile_layer_with(arch, layer, data, Choice::Best(Objective::Latency))
}

/// Compiles one layer with the mapping `choice` picks; the program records it.
pub fn compile_layer_with(arch: &ArchConfig, layer: &Layer, data: &LayerData, choice: Choice) -> Result<Program, CompileError> {
    lower(arch, layer, Some(data), choice, None)
}

/// The program [`compile_layer_with`] emits for `layer`, without its constant data: the
/// same instructions, mapping and DRAM addresses, with no DRAM image (`dram_init` is
/// empty). Timing and access counts depend only on the instructions, so this is what
/// design-space sweeps time (`systole_sim::estimate`); it cannot be simulated with data.
pub fn plan_layer(arch: &ArchConfig, layer: &Layer, choice: Choice) -> Result<Program, CompileError> {
    lower(arch, layer, None, choice, None)
}

/// Every feasible mapping of `layer` on `arch`, best estimate first (a `both` instance:
/// the WS engine's, then the OS engine's): what
/// [`Choice::Best`] chooses among (it builds and times the leading ones) and what
/// [`Choice::Fixed`] accepts.
pub fn feasible_mappings(arch: &ArchConfig, layer: &Layer) -> Result<Vec<Mapping>, CompileError> {
    let depthwise = is_depthwise(arch, layer)?;
    let mappings = |arch: &ArchConfig| if depthwise { depthwise::mappings(arch, layer) } else { dense::mappings(arch, layer) };
    let per_engine: Vec<_> = engines(arch).iter().map(mappings).collect();
    if per_engine.iter().all(Result::is_err) {
        return per_engine.into_iter().next().expect("at least one engine");
    }
    Ok(per_engine.into_iter().flat_map(Result::unwrap_or_default).collect())
}

/// Validates both and tells whether the layer takes the depthwise lowering.
fn is_depthwise(arch: &ArchConfig, layer: &Layer) -> Result<bool, CompileError> {
    let invalid =
        |error: ConfigError| CompileError::Invalid { layer: layer.name.clone(), help: error.help.clone(), error: Box::new(error) };
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
    Ok(arch.transposer
        && (layer.op == LayerOp::Depthwise || (layer.shape.groups == layer.shape.c && layer.shape.k == layer.shape.c && layer.shape.c > 1)))
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

/// Compiles `layer` with `mapping` (one [`compile_layer_with`] chose) into `frame` of a
/// larger program: the same instructions, addressing the frame's tensors, with the table and
/// weights from `frame.consts` (`dram_size` is their end; no tensor placements).
pub fn compile_layer_framed(
    arch: &ArchConfig,
    layer: &Layer,
    data: &LayerData,
    mapping: Mapping,
    frame: &Frame,
) -> Result<Program, CompileError> {
    lower(arch, layer, Some(data), Choice::Fixed(mapping), Some(frame))
}

fn lower(
    arch: &ArchConfig,
    layer: &Layer,
    data: Option<&LayerData>,
    choice: Choice,
    frame: Option<&Frame>,
) -> Result<Program, CompileError> {
    let depthwise = is_depthwise(arch, layer)?;
    let lower_on = |arch: &ArchConfig, choice| {
        let program =
            if depthwise { depthwise::lower(arch, layer, data, choice, frame)? } else { dense::lower(arch, layer, data, choice, frame)? };
        for ins in &program.instrs {
            ins.encode().map_err(|source| CompileError::Encode { layer: layer.name.clone(), source })?;
        }
        Ok(program)
    };
    let views = engines(arch);
    match choice {
        Choice::Fixed(m) => lower_on(views.iter().find(|v| v.dataflow == m.dataflow()).ok_or_else(|| infeasible(layer, &m))?, choice),
        Choice::Best(_) if views.len() == 1 => lower_on(arch, choice),
        Choice::Best(objective) => {
            // The better of the engines' best programs (a layer may fit only one).
            let mut best: Option<((f64, f64), Program)> = None;
            let mut first_error = None;
            for view in &views {
                match lower_on(view, choice) {
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
    }
}
