//! The Systole compiler: maps one layer onto an [`ArchConfig`] and emits a [`Program`].
//!
//! ```text
//!  Layer + LayerData
//!     │  layout:    DRAM placement of input (padded with the zero point), output, tables
//!     │  lowering:  dense conv / GEMM -> im2col GEMM (WS or OS);  depthwise -> Toeplitz GEMMs
//!     │  tiling:    the mapping systole-mappings chooses (its space, estimates and search)
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
use systole_core::layer::Layer;
use systole_core::mapping::{Mapping, Objective};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, ConfigError, Program};
use systole_mappings::search::{engines, infeasible, lowering, on_best_engine, Choice, Lowering};
use systole_mappings::MappingError;
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
    let lowering = lowering(arch, layer)?;
    let lower_on = |arch: &ArchConfig, choice| {
        let program = match lowering {
            Lowering::Depthwise => depthwise::lower(arch, layer, data, choice, frame)?,
            Lowering::Dense => dense::lower(arch, layer, data, choice, frame)?,
        };
        for ins in &program.instrs {
            ins.encode().map_err(|source| CompileError::Encode { layer: layer.name.clone(), source })?;
        }
        Ok(program)
    };
    match choice {
        Choice::Fixed(m) => {
            lower_on(engines(arch).iter().find(|v| v.dataflow == m.dataflow()).ok_or_else(|| infeasible(layer, &m))?, choice)
        }
        Choice::Best(objective) => on_best_engine(arch, objective, |view| lower_on(view, choice)),
    }
}

impl From<MappingError> for CompileError {
    fn from(e: MappingError) -> Self {
        match e {
            MappingError::Invalid { layer, error, help } => CompileError::Invalid { layer, error, help },
            MappingError::DoesNotFit { layer, what, field, need, have, help } => {
                CompileError::DoesNotFit { layer, what, field, need, have, help }
            }
        }
    }
}
