//! Network passes: each one file and one struct with a name and a description, run in
//! named pipelines (after Calyx's pass manager).
//!
//! The ONNX importer builds a [`Network`] node for node; these passes then rewrite it. Passes
//! on the float ONNX graph before quantization (BatchNormalization folding) live with the
//! quantizer in `onnx::ptq`, and the fusion of bias, requantization and activation into a
//! layer happens as the importer reads QDQ groups.

mod fold_pad;
mod prune;

pub use fold_pad::FoldPad;
pub use prune::Prune;
use systole_core::network::Network;

/// A rewrite of a [`Network`] that keeps its results bit for bit.
pub trait Pass {
    /// Short name, e.g. `fold-pad`.
    fn name(&self) -> &'static str;
    /// One line on what it does.
    fn description(&self) -> &'static str;
    /// Rewrites `net`; returns how many rewrites it made.
    fn run(&self, net: &mut Network) -> usize;
}

/// Named pipelines: `default` runs after every import.
pub fn pipeline(name: &str) -> Option<Vec<Box<dyn Pass>>> {
    match name {
        "default" => Some(vec![Box::new(FoldPad), Box::new(Prune)]),
        "none" => Some(vec![]),
        _ => None,
    }
}

/// Runs `passes` in order; returns each pass's name and rewrite count.
pub fn run(net: &mut Network, passes: &[Box<dyn Pass>]) -> Vec<(&'static str, usize)> {
    passes.iter().map(|p| (p.name(), p.run(net))).collect()
}
