//! Cycle-accurate simulator of the microarchitecture in `docs/ARCHITECTURE.md`.
//!
//! ```text
//!   Program ──► schedule (per-unit in-order queues, Sync waits, exact op costs)
//!                  │  start / free / done cycle of every instruction
//!                  ▼
//!             execute (functional effects in start order, race checks per word)
//!                  │
//!                  ▼
//!             DRAM image + LayerReport
//! ```
//!
//! Op costs depend only on instruction fields, never on data, so the schedule is computed
//! first and exactly; the functional pass then applies each instruction's effect in the
//! order instructions start. Because units overlap, an effect applied "at start" is only
//! right if no other unit touches the same words meanwhile: the executor checks that for
//! every word (a race means the program's `Sync` fields are insufficient, and is an error).
//!
//! The simulator is flat and index-based: no graph walking, no allocation in the hot loops.

mod exec;

pub use exec::{estimate, execute, execute_observed, execute_segmented, window_report, Execution, Segmented};
pub use systole_core::timing::{schedule, InstrTiming};

use systole_core::isa::Unit;
use thiserror::Error;

/// A program the simulator cannot run.
#[derive(Debug, Error, miette::Diagnostic, PartialEq, Eq)]
pub enum SimError {
    /// The program's synchronization cannot be scheduled.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Timing(#[from] systole_core::timing::TimingError),
    /// An address or size outside what the hardware has.
    #[error("instruction {instr}: {detail}")]
    #[diagnostic(code(systole::sim::bounds))]
    OutOfBounds {
        /// Program index.
        instr: usize,
        /// What overflowed.
        detail: String,
    },
    /// An op the architecture was not built with.
    #[error("instruction {instr}: `{op}` is not an op of arch `{arch}`")]
    #[diagnostic(
        code(systole::sim::unsupported),
        help("a WS instance has no MatmulOs and an OS instance no MatmulWs; the transposed ops need `transposer = true`; compile the program for this arch")
    )]
    Unsupported {
        /// Program index.
        instr: usize,
        /// The op.
        op: String,
        /// The architecture's name.
        arch: String,
    },
    /// A program for a `both` instance that uses both engines.
    #[error("instruction {os}: a MatmulOs in a program whose instruction {ws} is a MatmulWs; arch `{arch}` runs one dataflow per program")]
    #[diagnostic(
        code(systole::sim::mixed_dataflows),
        help("the engines of a `both` instance share the scratchpads and accumulators; split the program by dataflow, as the compiler does per layer")
    )]
    MixedDataflows {
        /// Program index of the first MatmulWs.
        ws: usize,
        /// Program index of the first MatmulOs.
        os: usize,
        /// The architecture's name.
        arch: String,
    },
    /// A WS matmul streams in a format other than that of the active tile.
    #[error("instruction {instr}: a MatmulWs streams as `{stream}` but the active weight tile is `{active}`")]
    #[diagnostic(
        code(systole::sim::format_mismatch),
        help("a tile's format is set by the matmul that preloads it; stream with the same format, or preload the tile again")
    )]
    FormatMismatch {
        /// Program index.
        instr: usize,
        /// The instruction's format.
        stream: String,
        /// The active tile's format.
        active: String,
    },
    /// A `Store` whose first requantization entry does not start a table row.
    #[error("instruction {instr}: a Store reads requantization entries from {param}, which is not a multiple of the {cols} columns")]
    #[diagnostic(
        code(systole::sim::misaligned_param),
        help("the table is read a row of `cols` entries at a time; load the store's entries to a multiple of `cols` (LoadParams `dst`) and point `out.param` there")
    )]
    MisalignedParam {
        /// Program index.
        instr: usize,
        /// The instruction's `out.param`.
        param: u32,
        /// The array's columns.
        cols: usize,
    },
    /// The program cannot be split for the instruction memories.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Segment(#[from] systole_core::segment::SegmentError),
    /// Two units touch the same word at overlapping times.
    #[error("race: instruction {instr} ({unit:?}) {kind} {buffer}[{word}] while instruction {other} ({other_unit:?}) is still using it")]
    #[diagnostic(code(systole::sim::race), help("add a Sync wait so one instruction completes before the other starts"))]
    Race {
        /// Program index of the later-starting instruction.
        instr: usize,
        /// Its unit.
        unit: Unit,
        /// `reads` or `writes`.
        kind: &'static str,
        /// Buffer name.
        buffer: &'static str,
        /// Word or row index.
        word: usize,
        /// Program index of the conflicting instruction.
        other: usize,
        /// Its unit.
        other_unit: Unit,
    },
}

use systole_core::{ArchConfig, Program, Tensor};

/// Places `inputs` in a fresh DRAM image, runs `program`, and returns the outputs with the
/// execution record (report name set to the program's architecture-independent default).
pub fn run(arch: &ArchConfig, program: &Program, inputs: &[&Tensor]) -> Result<(Vec<Tensor>, Execution), SimError> {
    let mut dram = program.dram_with_inputs(inputs);
    let mut exe = execute(arch, program, &mut dram)?;
    let outputs: Vec<Tensor> = program.outputs.iter().map(|p| p.read(&dram)).collect();
    if let Some(o) = outputs.first() {
        exe.report.output_digest = format!("{:016x}", o.digest());
    }
    Ok((outputs, exe))
}
