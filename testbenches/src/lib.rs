//! Shared helpers of the differential test ladder: one layer case runs through golden and
//! through compiler + simulator, and the outputs must agree bit for bit.

use systole_core::layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
use systole_core::report::LayerReport;
use systole_core::timing::InstrTiming;
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Program, Sparsity, Tensor};

/// The outcome of one rung of the ladder.
pub struct Outcome {
    /// Golden output.
    pub golden: Tensor,
    /// Simulator output.
    pub sim: Tensor,
    /// Simulator report.
    pub report: LayerReport,
    /// The compiled program.
    pub program: Program,
    /// The timing model's schedule of the program.
    pub timing: Vec<InstrTiming>,
}

impl Outcome {
    /// Describes the first mismatch, if any.
    pub fn mismatch(&self) -> Option<String> {
        self.golden.first_mismatch(&self.sim).map(|(idx, g, s)| format!("first mismatch at NHWC {idx:?}: golden {g}, sim {s}"))
    }
}

/// Why a rung of the ladder failed.
#[derive(Debug, thiserror::Error)]
pub enum LadderError {
    /// The compiler refused the case.
    #[error("compile: {0}")]
    Compile(#[from] systole_compiler::CompileError),
    /// The simulator refused the program.
    #[error("sim: {0}")]
    Sim(#[from] systole_sim::SimError),
    /// Two rungs disagree: the first differing element or completion.
    #[error("{0}")]
    Mismatch(String),
}

/// Runs `layer` through golden and through compiler + simulator.
pub fn golden_vs_sim(arch: &ArchConfig, layer: &Layer, data: &LayerData) -> Result<Outcome, LadderError> {
    golden_vs_sim_with(arch, layer, data, systole_mappings::search::Choice::Best(Default::default()))
}

/// [`golden_vs_sim`] with the mapping `choice` picks.
pub fn golden_vs_sim_with(
    arch: &ArchConfig,
    layer: &Layer,
    data: &LayerData,
    choice: systole_mappings::search::Choice,
) -> Result<Outcome, LadderError> {
    let golden = systole_golden::layer(layer, data);
    let program = systole_compiler::compile_layer_with(arch, layer, data, choice)?;
    let (mut outs, exe) = systole_sim::run(arch, &program, &[&data.input])?;
    Ok(Outcome { golden, sim: outs.remove(0), report: exe.report, program, timing: exe.timing })
}

/// A convolution layer with explicit quantization, for tests.
#[allow(clippy::too_many_arguments)]
pub fn conv_layer(name: &str, op: LayerOp, shape: ConvShape, x_zp: i8, y_zp: i8, activation: Activation, per_channel: bool) -> Layer {
    let red = (shape.r * shape.s * shape.cg()) as f32;
    let w_scale = if per_channel { (0..shape.k).map(|k| 0.01 * (1.0 + (k % 7) as f32 * 0.1)).collect() } else { vec![0.01] };
    Layer {
        name: name.into(),
        op,
        shape,
        quant: QuantParams { x_scale: 0.05, x_zp, w_scale, y_scale: 0.05 * 0.01 * 74.0 * 74.0 * red.sqrt() / 40.0, y_zp },
        activation,
        sparsity: Sparsity::Dense,
        weight_bits: 8,
        density: 1.0,
        act_bits: 8,
        output_bits: 8,
    }
}

pub mod array_cases;
pub mod board_uart;
pub mod cosim;
pub mod dram;
pub mod exec_cases;
pub mod fixtures;
pub mod native_port_model;
pub mod networks;
pub mod stimulus;
pub mod strategies;
pub mod system;
pub mod tools;
