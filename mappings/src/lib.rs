//! Analytical models for design-space exploration.
//!
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
pub mod energy;
