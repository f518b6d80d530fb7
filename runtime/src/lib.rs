//! Whole-network execution on the accelerator model.
//!
//! ```text
//!  Network ──compile (every layer, in parallel)──► Program per accelerator layer
//!     │
//!     ▼  in topological order
//!  accelerator layer: NCHW -> NHWC, simulate its Program, NHWC -> NCHW   (cycles, report)
//!  host operator:     pooling, Add, Concat, layout: the reference code    (bytes moved)
//!     ▼
//!  outputs (dequantized as the graph says) + per-node report
//! ```
//!
//! The glue between nodes is [`systole_golden::network::run_with`], the one the golden
//! oracle uses, so a simulated network and its oracle differ only in how layers compute.

use miette::Diagnostic;
use rayon::prelude::*;
use systole_core::network::{HostTensor, Network, Op};
use systole_core::{ArchConfig, Program, SimReport};
use systole_golden::network::InputError;
use thiserror::Error;

/// Why a network could not run.
#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    /// A layer did not compile.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Compile(#[from] systole_compiler::CompileError),
    /// The simulator refused a layer's program.
    #[error("layer `{layer}`: simulator: {source}")]
    #[diagnostic(code(systole::run::sim))]
    Sim {
        /// The node.
        layer: String,
        /// The simulator's error.
        source: systole_sim::SimError,
    },
    /// The inputs do not fit the network.
    #[error("{0}")]
    #[diagnostic(code(systole::run::input), help("give one .npy input per network input, with its shape and type"))]
    Input(#[from] InputError),
}

/// One host operator's row in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOp {
    /// Node name.
    pub name: String,
    /// Operator kind.
    pub kind: &'static str,
    /// Bytes it reads and writes.
    pub bytes: u64,
}

/// A row of the per-node report, in execution order.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// Index into [`NetworkRun::report`]`.layers`.
    Layer(usize),
    /// A host operator.
    Host(HostOp),
}

/// The result of simulating a network.
#[derive(Debug, Clone)]
pub struct NetworkRun {
    /// Outputs as the graph defines them.
    pub outputs: Vec<HostTensor>,
    /// Every value's int8 data.
    pub values: Vec<Vec<i8>>,
    /// Per accelerator layer and total.
    pub report: SimReport,
    /// Every node in execution order.
    pub rows: Vec<Row>,
}

/// Compiles every accelerator layer of `net` for `arch` (in parallel); `None` for host nodes.
pub fn compile(arch: &ArchConfig, net: &Network) -> Result<Vec<Option<Program>>, RunError> {
    net.nodes
        .par_iter()
        .map(|n| match n.op.layer_data() {
            Some((layer, data)) => systole_compiler::compile_layer(arch, layer, &data).map(Some).map_err(RunError::from),
            None => Ok(None),
        })
        .collect()
}

/// Runs `net` on `inputs` with each layer's program from [`compile`] on the simulator.
pub fn simulate(arch: &ArchConfig, net: &Network, programs: &[Option<Program>], inputs: &[HostTensor]) -> Result<NetworkRun, RunError> {
    let x = systole_golden::network::input_values(net, inputs)?;
    let mut layers = Vec::new();
    let values = systole_golden::network::run_with(net, x, |idx, layer, data| {
        let program = programs[idx].as_ref().expect("compile gives every layer a program");
        let (mut outs, exe) =
            systole_sim::run(arch, program, &[&data.input]).map_err(|source| RunError::Sim { layer: layer.name.clone(), source })?;
        let mut report = exe.report;
        report.name = net.nodes[idx].name.clone();
        layers.push(report);
        Ok::<_, RunError>(outs.swap_remove(0))
    })?;
    let mut rows = Vec::with_capacity(net.nodes.len());
    let mut layer_idx = 0;
    for n in &net.nodes {
        if let Op::Layer { .. } = n.op {
            rows.push(Row::Layer(layer_idx));
            layer_idx += 1;
        } else {
            let bytes = n.inputs.iter().map(|&v| net.values[v].len() as u64).sum::<u64>() + net.values[n.output].len() as u64;
            rows.push(Row::Host(HostOp { name: n.name.clone(), kind: n.op.kind(), bytes }));
        }
    }
    let outputs = systole_golden::network::outputs(net, &values);
    let report = SimReport::new(&arch.name, &net.name, arch.pes() as u64, arch.clock_mhz, layers);
    Ok(NetworkRun { outputs, values, report, rows })
}
