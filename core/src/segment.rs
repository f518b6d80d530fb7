//! Splitting a program into runs that fit instruction memories of a fixed depth.
//!
//! A board without an instruction queue holds at most `depth` instructions per unit, so a
//! longer program runs as consecutive *segments*: each a program of its own that the host
//! loads and starts once the previous one has finished (every unit drained). A segment
//! `[a, b)` of the program order is valid when every wait of its instructions is met by
//! the instructions before `a` (all complete when it starts) or by earlier ones inside it;
//! its waits are then rebased by the counts before `a`. The accelerator's scratchpads,
//! accumulators, tables and array registers keep their contents between runs, so a segment
//! may use data an earlier one loaded. Each segment starts from cycle 0 with its first
//! fetch, as [`crate::timing::schedule`] times any program, so the segments' cycles add
//! up to the board's.

use crate::isa::{Instr, Unit};
use crate::program::Program;
use std::ops::Range;

/// Why a program cannot be split for an instruction depth.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum SegmentError {
    /// An instruction memory of depth 0 holds nothing.
    #[error("an instruction depth of 0 holds no instruction")]
    #[diagnostic(code(systole::segment::depth), help("build the instruction memories at least one instruction deep"))]
    ZeroDepth,
    /// No prefix of the rest of the program both fits and has its waits met inside it.
    #[error(
        "instruction {instr} waits for {need} completed {unit:?} instructions, which no run of at most {depth} instructions per unit starting at instruction {start} reaches"
    )]
    #[diagnostic(
        code(systole::segment::wait),
        help("build the instruction memories deeper (`--instr-depth`), or give the instance an instruction queue")
    )]
    Unreachable {
        /// First instruction of the segment being formed.
        start: usize,
        /// The instruction whose wait cannot be met.
        instr: usize,
        /// The unit it waits on.
        unit: Unit,
        /// The count it waits for (of the whole program).
        need: u32,
        /// The instruction depth.
        depth: usize,
    },
}

/// The segments of `instrs` for instruction memories of `depth` per unit, in program
/// order: each as long as the depth and its waits allow (one segment when everything fits).
pub fn segment_bounds(instrs: &[Instr], depth: usize) -> Result<Vec<Range<usize>>, SegmentError> {
    if depth == 0 {
        return Err(SegmentError::ZeroDepth);
    }
    // positions[u][k]: program index of unit u's instruction k.
    let mut positions: [Vec<usize>; 3] = Default::default();
    for (i, ins) in instrs.iter().enumerate() {
        positions[ins.op.unit().index()].push(i);
    }
    // The end a segment needs for instruction i's waits, given the counts before it starts.
    let needed_end = |i: usize, base: &[usize; 3]| -> Result<usize, (Unit, u32)> {
        let ins = &instrs[i];
        let mut end = i + 1;
        for u in Unit::ALL.into_iter().filter(|&u| u != ins.op.unit()) {
            let need = ins.sync.on(u) as usize;
            if need > base[u.index()] {
                let last = *positions[u.index()].get(need - 1).ok_or((u, need as u32))?;
                end = end.max(last + 1);
            }
        }
        Ok(end)
    };
    let mut bounds = Vec::new();
    let mut base = [0usize; 3];
    let mut start = 0;
    while start < instrs.len() {
        let mut counts = [0usize; 3];
        let mut reach = start;
        let mut best = None;
        for (i, ins) in instrs.iter().enumerate().skip(start) {
            let u = ins.op.unit().index();
            if counts[u] == depth {
                break;
            }
            counts[u] += 1;
            let end = needed_end(i, &base).map_err(|(unit, need)| SegmentError::Unreachable { start, instr: i, unit, need, depth })?;
            reach = reach.max(end);
            if reach <= i + 1 {
                best = Some((i + 1, counts));
            }
        }
        let Some((end, counts)) = best else {
            let (instr, unit, need) = first_unmet(instrs, start, &base);
            return Err(SegmentError::Unreachable { start, instr, unit, need, depth });
        };
        for u in 0..3 {
            base[u] += counts[u];
        }
        bounds.push(start..end);
        start = end;
    }
    Ok(bounds)
}

/// The first wait from `start` on that the instructions before `start` do not meet.
fn first_unmet(instrs: &[Instr], start: usize, base: &[usize; 3]) -> (usize, Unit, u32) {
    instrs
        .iter()
        .enumerate()
        .skip(start)
        .find_map(|(i, ins)| {
            Unit::ALL.into_iter().find(|&u| u != ins.op.unit() && ins.sync.on(u) as usize > base[u.index()]).map(|u| (i, u, ins.sync.on(u)))
        })
        .expect("a segment that cannot end has an unmet wait")
}

/// The instructions `instrs[range]` as a program of their own: every wait rebased by the
/// counts of the instructions before `range.start` (which have completed when it starts).
pub fn segment(instrs: &[Instr], range: Range<usize>) -> Vec<Instr> {
    let mut base = [0u32; 3];
    for ins in &instrs[..range.start] {
        base[ins.op.unit().index()] += 1;
    }
    instrs[range]
        .iter()
        .map(|ins| {
            let mut ins = *ins;
            for u in Unit::ALL {
                let need = ins.sync.on_mut(u);
                *need = need.saturating_sub(base[u.index()]);
            }
            ins
        })
        .collect()
}

/// Segment `range` of `program` as a program of its own ([`segment`]): the same DRAM size,
/// no constants, placements or MACs of its own (the whole program's stay with it).
pub fn segment_program(program: &Program, range: Range<usize>) -> Program {
    Program {
        arch: program.arch.clone(),
        instrs: segment(&program.instrs, range),
        dram_size: program.dram_size,
        dram_init: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        macs: 0,
        mapping: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::{Op, Sync};

    /// A program of units `units` (0 load, 1 exec, 2 store), instruction `i` waiting for
    /// `waits[i]` (load, exec, store counts).
    fn program(units: &[usize], waits: &[[u32; 3]]) -> Vec<Instr> {
        units
            .iter()
            .zip(waits)
            .map(|(&u, &[load, exec, store])| Instr {
                sync: Sync { load, exec, store },
                op: match u {
                    0 => Op::LoadParams { dst: 0, addr: 0, count: 1 },
                    1 => Op::Vector { window: Default::default(), count: 0, stride: 0, acc: 0, max: false },
                    _ => Op::Store { acc: 0, dst: Default::default(), out: Default::default() },
                },
            })
            .collect()
    }

    #[test]
    fn a_program_that_fits_is_one_segment() {
        let p = program(&[0, 1, 2], &[[0, 0, 0], [1, 0, 0], [0, 1, 0]]);
        assert_eq!(segment_bounds(&p, 1).unwrap(), vec![0..3]);
        assert_eq!(segment(&p, 0..3), p);
    }

    #[test]
    fn segments_end_where_a_unit_is_full_and_waits_are_rebased() {
        // L0 E0(L1) L1 E1(L2) S0(E2) L2 E2(L3) S1(E3)
        let p =
            program(&[0, 1, 0, 1, 2, 0, 1, 2], &[[0, 0, 0], [1, 0, 0], [0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, 0], [0, 3, 0]]);
        // Depth 2: the third load (index 5) starts a new segment.
        let b = segment_bounds(&p, 2).unwrap();
        assert_eq!(b, vec![0..5, 5..8]);
        let second = segment(&p, b[1].clone());
        assert_eq!(
            second.iter().map(|i| i.sync).collect::<Vec<_>>(),
            [Sync::default(), Sync { load: 1, exec: 0, store: 0 }, Sync { load: 0, exec: 1, store: 0 }]
        );
    }

    #[test]
    fn a_segment_does_not_end_before_what_its_instructions_wait_for() {
        // L0 E0(L2) L1: E0 waits for L1, which comes after it; a segment holding E0 must
        // hold L1 too.
        let p = program(&[0, 1, 0], &[[0, 0, 0], [2, 0, 0], [0, 0, 0]]);
        assert_eq!(segment_bounds(&p, 2).unwrap(), vec![0..3]);
        assert_eq!(segment_bounds(&p, 1).unwrap(), vec![0..1, 1..3]);
        assert_eq!(segment(&p, 1..3)[0].sync, Sync { load: 1, exec: 0, store: 0 });
        // E0(L2) L0 L1: with one load per segment, no segment can hold E0 and both loads.
        let p = program(&[1, 0, 0], &[[2, 0, 0], [0, 0, 0], [0, 0, 0]]);
        assert!(matches!(
            segment_bounds(&p, 1),
            Err(SegmentError::Unreachable { start: 0, instr: 0, unit: Unit::Load, need: 2, depth: 1 })
        ));
        assert_eq!(segment_bounds(&p, 0), Err(SegmentError::ZeroDepth));
    }

    #[test]
    fn a_wait_beyond_the_program_is_an_error() {
        let p = program(&[1], &[[5, 0, 0]]);
        assert!(matches!(segment_bounds(&p, 4), Err(SegmentError::Unreachable { instr: 0, need: 5, .. })));
    }
}
