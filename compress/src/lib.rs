//! Model compression for the accelerator, in one place:
//!
//! ```text
//!  float ONNX ──prune: pruning (unstructured, N:M, channels) and weight bits per layer,
//!     │               the accuracy proxy (output SQNR against the float model)
//!     ▼ ──search: candidates per layer, costs from the simulator, the Pareto front
//!     │ ──refine: policies measured by real compression runs (bisection, single-layer moves)
//!     ▼ ──policy_search: all of it on each architecture, as `systole search` runs it
//!  a compression policy (`systole compress --policy`) per architecture
//! ```

pub mod policy_search;
pub mod prune;
pub mod refine;
pub mod search;

use miette::Diagnostic;
use std::path::PathBuf;
use systole_compiler::CompileError;
use systole_onnx::OnnxError;
use thiserror::Error;

/// Why a compression or a search failed.
#[derive(Debug, Error, Diagnostic)]
pub enum CompressError {
    /// The model could not be read, quantized or run.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Onnx(#[from] OnnxError),
    /// A layer could not be compiled for the architecture being costed.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] CompileError),
    /// Compression starts from a float model.
    #[error("{}: the model is already quantized", path.display())]
    #[diagnostic(help("search compresses the float model"))]
    NotFloat {
        /// The model's file.
        path: PathBuf,
    },
    /// A policy file is malformed: `message` names the field.
    #[error("{}: {message}", path.display())]
    #[diagnostic(help("see docs/COMPRESSION.md for the policy format"))]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}
