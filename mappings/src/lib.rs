//! The mapping space, its search, and the analytical models that score it.
//!
//! - [`dense`] and [`depthwise`]: which tilings (tile sizes, K-groups, N-groups, loop
//!   orders) are feasible for a layer on an instance, each with a cycle estimate.
//! - [`search`]: which lowering and engines a layer has, and how one mapping is chosen
//!   (the leading estimates, built by the compiler and scored exactly).
//! - [`energy`]: energy of a simulated run from its access counts, with a documented table
//!   of energies per access and per MAC for a named process node (45 nm, after Horowitz,
//!   ISSCC 2014).
//! - [`area`]: silicon area of an [`ArchConfig`] from per-component figures.
//! - [`bounds`]: the lower bounds a layer's latency is judged against (compute: MACs / PEs;
//!   memory: DRAM traffic / bandwidth).
//!
//! [`ArchConfig`]: systole_core::ArchConfig

pub mod area;
pub mod bounds;
pub mod dense;
pub mod depthwise;
pub mod energy;
pub mod search;

use miette::Diagnostic;
use systole_core::ConfigError;
use thiserror::Error;

/// Why a layer has no mapping on an instance.
#[derive(Debug, Error, Diagnostic)]
pub enum MappingError {
    /// The layer, the architecture or a fixed mapping is invalid.
    #[error("layer `{layer}`: {error}")]
    #[diagnostic(code(systole::compile::invalid))]
    Invalid {
        /// Layer name.
        layer: String,
        /// What is wrong.
        error: Box<ConfigError>,
        /// How to fix it.
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
}
