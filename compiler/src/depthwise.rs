//! Depthwise convolution (placeholder until the Toeplitz lowering lands).

use crate::CompileError;
use systole_core::layer::Layer;
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Program};

/// Lowers a depthwise convolution.
pub fn lower(arch: &ArchConfig, layer: &Layer, data: &LayerData) -> Result<Program, CompileError> {
    crate::dense::lower(arch, layer, data)
}
