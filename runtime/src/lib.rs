//! Whole-network execution on the accelerator model.
//!
//! ```text
//!  Network ──compile (every layer alone, in parallel)──► Program per accelerator layer
//!     │                                                        │ mappings, reach
//!     ▼  compile_network: one DRAM image, layers linked ◄──────┘
//!  NetworkProgram: runs of accelerator layers, host steps between them
//!     │  simulate: each run on the simulator over the one DRAM image (cycles, per-layer
//!     │  report); each host step with the reference code on the values it reads
//!     ▼
//!  outputs (dequantized as the graph says) + per-node report
//! ```
//!
//! The layers compiled alone (in [`Compiled::layers`]) give the layer-by-layer figures a
//! network program is compared with (`systole_sim::estimate` times each). Host steps use [`systole_golden::network::eval_node`], the glue the golden
//! oracle uses, so a simulated network and its oracle differ only in how layers compute.

use miette::Diagnostic;
use rayon::prelude::*;
use systole_core::layer::Activation;
use systole_core::network::{from_nhwc, to_nhwc, HostTensor, Network, Quant};
use systole_core::program::{NetStep, NetworkProgram, RunLayer};
use systole_core::report::HostStep;
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

/// A row of the per-node report, in execution order.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// An accelerator layer.
    Layer {
        /// Index into [`NetworkRun::report`]`.layers`.
        layer: usize,
        /// Index of its node in the network.
        node: usize,
    },
    /// A host operator.
    Host(HostStep),
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
    /// Cycles of every program the accelerator ran, in order: one per run, or each
    /// segment's with an instruction depth.
    pub segment_cycles: Vec<u64>,
}

/// A network compiled for one architecture.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Each accelerator layer and vector-unit node compiled alone (`None` for host nodes).
    pub layers: Vec<Option<Program>>,
    /// The whole network as one DRAM image and its steps.
    pub network: NetworkProgram,
}

/// Compiles `net` for `arch`: every accelerator layer alone (in parallel), then the network
/// program with the same mappings.
pub fn compile(arch: &ArchConfig, net: &Network) -> Result<Compiled, RunError> {
    let mut layers = compile_layers(arch, net)?;
    let mut kernels = vector_kernels(arch, net);
    for (n, kernel) in kernels.iter_mut().enumerate() {
        if let Some(k) = kernel {
            match systole_compiler::vector::compile_alone(arch, net, n, k) {
                Ok(program) => layers[n] = Some(program),
                // A window whose input row outgrows the scratchpads runs on the host.
                Err(systole_compiler::CompileError::DoesNotFit { .. }) => *kernel = None,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let network = systole_compiler::network::compile_network(arch, net, &layers, &kernels)?;
    Ok(Compiled { layers, network })
}

/// The golden model's operators, which vector kernels are made to equal.
struct Golden;

impl systole_compiler::vector::Reference for Golden {
    fn add(&self, a: i8, aq: Quant, b: i8, bq: Quant, yq: Quant, act: Activation) -> i8 {
        systole_golden::add_one(a, aq, b, bq, yq, act)
    }

    fn average(&self, sum: i32, count: usize, xq: Quant, yq: Quant) -> i8 {
        systole_golden::average(sum, count as f32, xq.scale, yq.scale, yq.zp)
    }

    fn requantize(&self, x: i8, from: Quant, to: Quant) -> i8 {
        systole_golden::network::requantize(&[x], from, to)[0]
    }
}

/// The vector kernel of every node that runs on `arch`'s vector unit (in parallel), equal to
/// the golden model's operator on every input; `None` for the others.
pub fn vector_kernels(arch: &ArchConfig, net: &Network) -> Vec<Option<Vec<systole_compiler::vector::Kernel>>> {
    (0..net.nodes.len()).into_par_iter().map(|n| systole_compiler::vector::kernels(arch, net, n, &Golden)).collect()
}

/// Compiles every accelerator layer of `net` for `arch` alone (in parallel); `None` for host
/// nodes.
pub fn compile_layers(arch: &ArchConfig, net: &Network) -> Result<Vec<Option<Program>>, RunError> {
    net.nodes
        .par_iter()
        .map(|n| match n.op.layer_data() {
            Some((layer, data)) => systole_compiler::compile_layer(arch, layer, &data).map(Some).map_err(RunError::from),
            None => Ok(None),
        })
        .collect()
}

/// Runs `net` on `inputs` as its network program on the simulator: the runs of accelerator
/// layers over one DRAM image, the host steps between them. Every value is read back from
/// DRAM when its producer's last store has been applied (before any later layer may reuse
/// its space); each layer's report covers the cycles it adds to its run.
pub fn simulate(arch: &ArchConfig, net: &Network, program: &NetworkProgram, inputs: &[HostTensor]) -> Result<NetworkRun, RunError> {
    simulate_observed(arch, net, program, inputs, None, |_| {})
}

/// One accelerator run of a network program, as [`simulate_observed`] shows it.
pub struct RunRecord<'a> {
    /// The run's program.
    pub program: &'a Program,
    /// Its layers.
    pub layers: &'a [RunLayer],
    /// The DRAM image when it starts.
    pub before: &'a [u8],
    /// The DRAM image when it has finished.
    pub after: &'a [u8],
    /// Its schedule and report (with instruction segments, cycles counted across them).
    pub execution: &'a systole_sim::Execution,
    /// The segments it ran in (program indices and cycles): one unless an instruction
    /// depth split it.
    pub segments: &'a [(std::ops::Range<usize>, u64)],
}

/// [`simulate`], calling `on_run` after each accelerator run (the co-simulation ladder runs
/// the same program from the same image on the RTL). With `instr_depth`, each run executes
/// in the segments that instruction memories of that depth per unit hold
/// (`systole_sim::execute_segmented`), as on a board without an instruction queue.
pub fn simulate_observed(
    arch: &ArchConfig,
    net: &Network,
    program: &NetworkProgram,
    inputs: &[HostTensor],
    instr_depth: Option<usize>,
    mut on_run: impl FnMut(RunRecord),
) -> Result<NetworkRun, RunError> {
    let x = systole_golden::network::input_values(net, inputs)?;
    let mut values: Vec<Vec<i8>> = vec![Vec::new(); net.values.len()];
    let mut dram = program.initial_dram();
    let write = |values: &[Vec<i8>], v: usize, dram: &mut [u8]| {
        if let Some(buffer) = &program.buffers[v] {
            buffer.write(dram, &to_nhwc(&net.values[v].shape, &values[v]));
        }
    };
    for (i, data) in net.inputs.iter().zip(x) {
        values[i.value] = data;
        write(&values, i.value, &mut dram);
    }
    let mut layers = Vec::new();
    let mut rows = Vec::with_capacity(net.nodes.len());
    let mut segment_cycles = Vec::new();
    for step in &program.steps {
        match step {
            NetStep::Run { program: run, layers: run_layers } => {
                let mut last_store = vec![None; run.instrs.len()];
                for (k, l) in run_layers.iter().enumerate() {
                    let store = (l.first..l.end).rev().find(|&i| run.instrs[i].op.unit() == systole_core::Unit::Store);
                    last_store[store.expect("a layer stores its output")] = Some(k);
                }
                let mut digests = vec![String::new(); run_layers.len()];
                let before = dram.clone();
                let observe = |i: usize, dram: &[u8]| {
                    if let Some(k) = last_store[i] {
                        let out = net.nodes[run_layers[k].node].output;
                        let t = program.buffers[out].as_ref().expect("layer outputs have buffers").read(dram);
                        digests[k] = format!("{:016x}", t.digest());
                        values[out] = from_nhwc(&t, net.values[out].shape.len());
                    }
                };
                let segmented = match instr_depth {
                    None => systole_sim::execute_observed(arch, run, &mut dram, observe).map(|execution| {
                        let whole = vec![(0..run.instrs.len(), execution.report.cycles)];
                        systole_sim::Segmented { execution, segments: whole }
                    }),
                    Some(depth) => systole_sim::execute_segmented(arch, run, depth, &mut dram, observe),
                }
                .map_err(|source| RunError::Sim { layer: format!("run of {}", run_names(net, run_layers)), source })?;
                let exe = &segmented.execution;
                segment_cycles.extend(segmented.segments.iter().map(|(_, c)| c));
                on_run(RunRecord {
                    program: run,
                    layers: run_layers,
                    before: &before,
                    after: &dram,
                    execution: exe,
                    segments: &segmented.segments,
                });
                let mut end = 0;
                for (k, l) in run_layers.iter().enumerate() {
                    let timing = &exe.timing[l.first..l.end];
                    let from = end;
                    end = end.max(timing.iter().map(|t| t.done).max().unwrap_or(0));
                    let mut report = systole_sim::window_report(arch, (&run.instrs[l.first..l.end], l.macs), timing, from..end);
                    report.name = net.nodes[l.node].name.clone();
                    report.output_digest = std::mem::take(&mut digests[k]);
                    rows.push(Row::Layer { layer: layers.len(), node: l.node });
                    layers.push(report);
                }
            }
            &NetStep::Host { node } => {
                // The compiler leaves only operators that are not layers to the host.
                let result = systole_golden::network::eval_node(net, node, &values, |_, layer, data| {
                    Ok::<_, std::convert::Infallible>(systole_golden::layer(layer, data))
                })
                .unwrap_or_else(|never| match never {});
                let n = &net.nodes[node];
                values[n.output] = result;
                write(&values, n.output, &mut dram);
                let bytes = n.inputs.iter().map(|&v| net.values[v].len() as u64).sum::<u64>() + net.values[n.output].len() as u64;
                rows.push(Row::Host(HostStep { name: n.name.clone(), kind: n.op.kind().into(), bytes, after_layers: layers.len() }));
            }
        }
    }
    let outputs = systole_golden::network::outputs(net, &values);
    let mut report = SimReport::new(&arch.name, &net.name, arch.pes() as u64, arch.clock_mhz, layers);
    report.host = host_steps(&rows);
    Ok(NetworkRun { outputs, values, report, rows, segment_cycles })
}

fn host_steps(rows: &[Row]) -> Vec<HostStep> {
    rows.iter()
        .filter_map(|r| match r {
            Row::Host(h) => Some(h.clone()),
            Row::Layer { .. } => None,
        })
        .collect()
}

fn run_names(net: &Network, layers: &[RunLayer]) -> String {
    match layers {
        [] => String::new(),
        [only] => format!("`{}`", net.nodes[only.node].name),
        [first, .., last] => format!("`{}`..`{}`", net.nodes[first.node].name, net.nodes[last.node].name),
    }
}
