//! The timing model of `docs/ARCHITECTURE.md`: when each instruction starts, frees its
//! unit, and completes. Costs depend only on instruction fields, never on data, so a
//! program's exact cycle count is known without executing it. The simulator executes
//! programs on this schedule; the compiler uses it to rank candidate tilings.

use crate::isa::{DramPattern, Instr, Op, Unit};
use crate::ArchConfig;
use thiserror::Error;

/// A program whose synchronization cannot be scheduled.
#[derive(Debug, Error, miette::Diagnostic, PartialEq, Eq)]
pub enum TimingError {
    /// No unit can issue its next instruction.
    #[error("deadlock: no unit can proceed; next instructions: {pending}")]
    #[diagnostic(
        code(systole::timing::deadlock),
        help("a Sync field waits for an instruction that itself waits, directly or not, for this one")
    )]
    Deadlock {
        /// Description of each blocked unit's next instruction.
        pending: String,
    },
    /// With an instruction queue, a Sync field waits for an instruction later in the
    /// program, which the in-order fetcher may not have fetched.
    #[error("instruction {instr} waits for {need} completed {unit:?} instructions, but only {before} come before it in the program")]
    #[diagnostic(
        code(systole::timing::later),
        help("with instr_queue the fetcher streams the program in order: a wait may name only earlier instructions (the compiler's programs do)")
    )]
    WaitsForLater {
        /// Program index.
        instr: usize,
        /// Unit waited on.
        unit: Unit,
        /// Count required.
        need: u32,
        /// That unit's instructions before this one.
        before: usize,
    },
    /// On a single DRAM port, a load-unit and a store-unit instruction overlap.
    #[error("instruction {load} (load unit, cycles {load_cycles:?}) and instruction {store} (store, cycles {store_cycles:?}) share the single DRAM port in the same cycles")]
    #[diagnostic(
        code(systole::timing::port),
        help("with dram_single_port every DMA instruction must wait for the other DMA unit's earlier ones, as the compiler's programs do (timing::serialize_dram_port)")
    )]
    PortShared {
        /// Program index of the load-unit instruction.
        load: usize,
        /// Its cycles, start to completion.
        load_cycles: std::ops::Range<u64>,
        /// Program index of the store.
        store: usize,
        /// Its cycles, start to completion.
        store_cycles: std::ops::Range<u64>,
    },
    /// A Sync field waits for more instructions than the unit has.
    #[error("instruction {instr} waits for {need} completed {unit:?} instructions but the program has {have}")]
    #[diagnostic(code(systole::timing::sync))]
    SyncBeyondProgram {
        /// Program index.
        instr: usize,
        /// Unit waited on.
        unit: Unit,
        /// Count required.
        need: u32,
        /// Count available.
        have: usize,
    },
}

/// Cycle numbers of one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrTiming {
    /// Unit that ran it.
    pub unit: Unit,
    /// First cycle it occupies its unit.
    pub start: u64,
    /// First cycle its unit may start the next instruction.
    pub free: u64,
    /// First cycle its completion is visible to other units' Sync waits.
    pub done: u64,
    /// Cycles of useful streaming (exec) or transfer (DMA), for the cause breakdown.
    pub useful: u64,
}

/// Cycles of the transposer's double-buffered two-stage pipeline, after the DRAM wait.
///
/// Each group `g` of a transposed op first *gathers* into one of two buffer banks for
/// `r_g` cycles, then *drains* from it for `w_g` cycles. A group gathers once the previous
/// group has gathered and its bank has been drained (the group two before it, which may
/// end in the same cycle); it drains once it has gathered and the previous group has
/// drained. With `G_g` and `D_g` the end cycles of gather and drain:
/// `G_g = max(G_{g-1}, D_{g-2}) + r_g`, `D_g = max(G_g, D_{g-1}) + w_g`, and the result is
/// `D_last` (0 without groups).
pub fn transposer_cycles(groups: impl IntoIterator<Item = (u64, u64)>) -> u64 {
    let (mut gathered, mut drained, mut drained_before) = (0u64, 0u64, 0u64);
    for (gather, drain) in groups {
        gathered = gathered.max(drained_before) + gather;
        drained_before = drained;
        drained = gathered.max(drained) + drain;
    }
    drained
}

/// The groups of a `LoadTransposed` as `(gather, drain)` cycles: per outer iteration,
/// the inner runs in groups of `rows`; a group of `n` runs gathers `n * ceil(len / B)` DRAM
/// beats and drains `len` activation words.
pub fn load_transposed_groups(src: &DramPattern, rows: u64, bytes_per_cycle: u64) -> impl Iterator<Item = (u64, u64)> {
    let inner = src.dims[1].count as u64 * src.dims[2].count as u64;
    let (len, beats) = (src.len as u64, (src.len as u64).div_ceil(bytes_per_cycle));
    let per_outer = inner.div_ceil(rows);
    (0..src.dims[0].count as u64 * per_outer).map(move |k| {
        let runs = (inner - (k % per_outer) * rows).min(rows);
        (runs * beats, len)
    })
}

/// The groups of a `StoreTransposed` as `(gather, drain)` cycles: per line, the runs in
/// blocks of `width`; a block of `n` runs gathers `len` accumulator rows and drains
/// `n * ceil(len / B)` DRAM beats.
pub fn store_transposed_groups(dst: &DramPattern, width: u64, bytes_per_cycle: u64) -> impl Iterator<Item = (u64, u64)> {
    let per_line = dst.dims[2].count as u64;
    let (len, beats) = (dst.len as u64, (dst.len as u64).div_ceil(bytes_per_cycle));
    let blocks = per_line.div_ceil(width.max(1));
    (0..dst.lines() * blocks).map(move |k| {
        let runs = (per_line - (k % blocks) * width).min(width);
        (len, runs * beats)
    })
}

/// Unit occupancy, completion latency after it, and useful cycles of one op.
pub fn cost(arch: &ArchConfig, op: &Op) -> (u64, u64, u64) {
    let bw = arch.dram_bytes_per_cycle;
    let lat = arch.load_latency() as u64;
    let rows = arch.rows as u64;
    match op {
        Op::Load { src, .. } => {
            let busy = src.num_runs().max(src.beats(bw));
            (lat + busy, 0, busy)
        }
        Op::LoadTransposed { src, .. } => {
            let busy = transposer_cycles(load_transposed_groups(src, rows, bw as u64));
            (lat + busy, 0, busy)
        }
        Op::LoadParams { count, .. } => {
            let busy = (*count as u64).max((8 * *count as u64).div_ceil(bw as u64));
            (lat + busy, 0, busy)
        }
        Op::LoadTable { count, .. } => {
            let busy = (*count as u64).max((4 * *count as u64).div_ceil(bw as u64));
            (lat + busy, 0, busy)
        }
        Op::Vector { window, count, .. } => {
            let busy = window.len() as u64 * *count as u64 * arch.vector_passes() as u64;
            (busy.max(1), arch.vector_latency(), busy)
        }
        Op::MatmulWs { a, preload, band, sparse, act4, csc, .. } => {
            let m = a.len() as u64;
            let fill = match (preload, band) {
                (Some(_), Some(_)) => rows,
                (Some(_), None) => crate::isa::preload_words(arch.rows, *sparse, *act4, *csc) as u64,
                (None, _) => 0,
            };
            let dur = m.max(fill).max(1);
            (dur, arch.ws_latency(), m)
        }
        Op::MatmulOs { a, .. } => {
            let k = a.len() as u64;
            (k.max(rows), arch.os_latency(), k)
        }
        Op::Store { dst, .. } => {
            let busy = arch.store_busy(dst.num_runs().max(dst.beats(bw)));
            (arch.store_latency() as u64 + busy, 0, busy)
        }
        Op::StoreTransposed { dst, width, .. } => {
            let busy = transposer_cycles(store_transposed_groups(dst, *width as u64, bw as u64));
            (arch.store_latency() as u64 + busy, 0, busy)
        }
    }
}

/// Computes every instruction's timing. Each unit issues its instructions in program order;
/// an instruction starts at the first cycle its unit is free, it has been fetched, and every
/// Sync wait is met. With `F = arch.fetch_cycles`, a unit's first instruction is fetched by
/// cycle `F - 1` and each later one `F` cycles after its predecessor started (the fetch
/// begins in the issue cycle); `F = 1` never delays an instruction, since every op keeps its
/// unit for at least one cycle. With an instruction queue (`arch.instr_queue`) a streamed
/// instruction is read no earlier than its arrival ([`Timeline`]), and every wait must name
/// an earlier instruction.
pub fn schedule(arch: &ArchConfig, instrs: &[Instr]) -> Result<Vec<InstrTiming>, TimingError> {
    let timing = schedule_any_port(arch, instrs)?;
    if arch.dram_single_port {
        if let Some((load, store)) = shared_port_overlap(&timing) {
            let cycles = |i: usize| timing[i].start..timing[i].done;
            return Err(TimingError::PortShared { load, load_cycles: cycles(load), store, store_cycles: cycles(store) });
        }
    }
    Ok(timing)
}

/// [`schedule`] without the single port's check.
fn schedule_any_port(arch: &ArchConfig, instrs: &[Instr]) -> Result<Vec<InstrTiming>, TimingError> {
    let mut queues: [Vec<usize>; 3] = Default::default();
    for (i, ins) in instrs.iter().enumerate() {
        queues[ins.op.unit().index()].push(i);
    }
    let mut before = [0usize; 3];
    let mut in_order = true;
    for (i, ins) in instrs.iter().enumerate() {
        for u in Unit::ALL {
            let need = ins.sync.on(u);
            if u == ins.op.unit() {
                continue;
            }
            if need as usize > queues[u.index()].len() {
                return Err(TimingError::SyncBeyondProgram { instr: i, unit: u, need, have: queues[u.index()].len() });
            }
            if need as usize > before[u.index()] {
                if arch.instr_queue.is_some() {
                    return Err(TimingError::WaitsForLater { instr: i, unit: u, need, before: before[u.index()] });
                }
                in_order = false;
            }
        }
        before[ins.op.unit().index()] += 1;
    }
    let mut line = Timeline::new(arch);
    if in_order {
        return Ok(instrs.iter().map(|ins| line.issue(arch, ins).expect("every wait names an earlier instruction")).collect());
    }
    let mut timing: Vec<Option<InstrTiming>> = vec![None; instrs.len()];
    loop {
        let mut progressed = false;
        let mut finished = true;
        for u in Unit::ALL {
            let ui = u.index();
            while line.done[ui].len() < queues[ui].len() {
                finished = false;
                let idx = queues[ui][line.done[ui].len()];
                let Some(t) = line.issue(arch, &instrs[idx]) else { break };
                timing[idx] = Some(t);
                progressed = true;
            }
        }
        let done = &line.done;
        if finished || done.iter().zip(&queues).all(|(d, q)| d.len() == q.len()) {
            break;
        }
        if !progressed {
            let pending = Unit::ALL
                .iter()
                .filter_map(|u| {
                    let q = &queues[u.index()];
                    let n = done[u.index()].len();
                    (n < q.len()).then(|| format!("{u:?} #{} (program index {}: {})", n, q[n], instrs[q[n]]))
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(TimingError::Deadlock { pending });
        }
    }
    Ok(timing.into_iter().map(|t| t.expect("every instruction scheduled")).collect())
}

/// The units' state while a program issues: when each unit is free, when its next
/// instruction is fetched, and when each of its instructions so far completes.
///
/// With an instruction queue of `Q` entries per unit (docs/ARCHITECTURE.md section 5), the
/// host preloads each unit's first `Q` instructions and the fetcher streams the others,
/// the *entries*, in program order: entry `n`, instruction `k >= Q` of its unit, goes to
/// the slot of the unit's instruction `k - Q`, free from the cycle after that one issued,
/// `s_n`. The entry's first part reaches the fetcher in cycle `t_n` (`t_0 = L`, the DRAM
/// latency); if its slot is free by then it is written in cycles `t_n .. t_n + F`, else the
/// fetcher stops and starts again when the slot frees, writing from `s_n + L`. The next
/// entry's first part follows in the cycle after the last write, and the unit may read
/// the instruction from then on. So issuing must follow program order.
pub struct Timeline {
    done: [Vec<u64>; 3],
    free: [u64; 3],
    fetched: [u64; 3],
    fetch: u64,
    last: u64,
    /// Start cycles of each unit's instructions so far (kept with a queue only).
    starts: [Vec<u64>; 3],
    /// The cycle the next entry's first part reaches the fetcher if it streams on.
    next_part: u64,
    /// Entries fetched so far (64 bytes of DRAM reads each).
    entries: u64,
    /// The exec unit's last instruction was a `Vector` op.
    after_vector: bool,
}

impl Timeline {
    /// No instruction issued yet.
    pub fn new(arch: &ArchConfig) -> Self {
        // An instruction is whole `fetch_cycles` cycles after its predecessor issued, and
        // can issue `decode_stages` cycles after that.
        let fetch = (arch.fetch_cycles.max(1) + arch.decode_stages) as u64;
        Self {
            done: Default::default(),
            free: [0; 3],
            fetched: [fetch - 1; 3],
            fetch,
            last: 0,
            starts: Default::default(),
            next_part: arch.dram_latency as u64,
            entries: 0,
            after_vector: false,
        }
    }

    /// Issues `ins` as its unit's next instruction, or returns `None` (changing nothing) if
    /// a Sync wait names an instruction not issued yet. Issuing a program in program order
    /// gives [`schedule`]'s timing whenever every wait names an earlier instruction, which
    /// the compiler's emitter guarantees; with an instruction queue, program order is
    /// required.
    pub fn issue(&mut self, arch: &ArchConfig, ins: &Instr) -> Option<InstrTiming> {
        let u = ins.op.unit();
        let ui = u.index();
        let mut ready = self.free[ui].max(self.fetched[ui]);
        let vector = matches!(ins.op, Op::Vector { .. });
        if u == Unit::Exec && (vector || self.after_vector) {
            // The vector unit and the array share the accumulator's write port: a Vector op
            // and the exec op after it do not overlap their writes.
            ready = ready.max(self.done[ui].last().copied().unwrap_or(0));
        }
        for v in Unit::ALL {
            let need = ins.sync.on(v) as usize;
            if v == u || need == 0 {
                continue;
            }
            ready = ready.max(*self.done[v.index()].get(need - 1)?);
        }
        let mut start = ready;
        if let Some(q) = arch.instr_queue {
            let k = self.done[ui].len();
            if k >= q {
                let fetch_parts = arch.fetch_cycles.max(1) as u64;
                let slot_free = self.starts[ui][k - q] + 1;
                let first_write = if slot_free <= self.next_part { self.next_part } else { slot_free + arch.dram_latency as u64 };
                let arrived = first_write + fetch_parts;
                self.next_part = arrived;
                self.entries += 1;
                start = start.max(arrived + self.fetch);
            }
            self.starts[ui].push(start);
        }
        let (busy, latency, useful) = cost(arch, &ins.op);
        let t = InstrTiming { unit: u, start, free: start + busy, done: start + busy + latency, useful };
        self.free[ui] = t.free;
        if u == Unit::Exec {
            self.after_vector = vector;
        }
        self.fetched[ui] = start + self.fetch;
        self.done[ui].push(t.done);
        self.last = self.last.max(t.done);
        Some(t)
    }

    /// The last completion so far: the total cycles once the whole program has issued.
    pub fn cycles(&self) -> u64 {
        self.last
    }

    /// Instructions the fetcher has streamed from DRAM so far (each [`crate::isa::INSTR_BITS`]
    /// bits, 64 bytes).
    pub fn streamed(&self) -> u64 {
        self.entries
    }
}

/// With `arch.dram_single_port`, makes every load-unit instruction wait for the store
/// unit's instructions before it in the program and every store for the load unit's, so
/// the two units' DRAM accesses never overlap (a load reads until its completion, a store
/// writes until its); without it, leaves `instrs` as they are. The waits name earlier
/// instructions only, so an in-order program stays in order.
pub fn serialize_dram_port(arch: &ArchConfig, instrs: &mut [Instr]) {
    if !arch.dram_single_port {
        return;
    }
    let mut counts = [0u32; 3];
    for ins in instrs.iter_mut() {
        let u = ins.op.unit();
        let other = match u {
            Unit::Load => Some(Unit::Store),
            Unit::Store => Some(Unit::Load),
            Unit::Exec => None,
        };
        if let Some(o) = other {
            let need = ins.sync.on_mut(o);
            *need = (*need).max(counts[o.index()]);
        }
        counts[u.index()] += 1;
    }
}

/// With `arch.dram_single_port`, the first load-unit and store instructions of `timing` whose
/// cycles from start to completion overlap.
fn shared_port_overlap(timing: &[InstrTiming]) -> Option<(usize, usize)> {
    let loads: Vec<usize> = (0..timing.len()).filter(|&i| timing[i].unit == Unit::Load).collect();
    // A unit starts its instructions in program order, so `loads` is sorted by start;
    // latest[k]: the load among loads[..=k] that completes last.
    let mut latest: Vec<usize> = Vec::with_capacity(loads.len());
    for (k, &l) in loads.iter().enumerate() {
        latest.push(if k > 0 && timing[latest[k - 1]].done >= timing[l].done { latest[k - 1] } else { l });
    }
    timing.iter().enumerate().filter(|(_, t)| t.unit == Unit::Store).find_map(|(s, t)| {
        let started = loads.partition_point(|&l| timing[l].start < t.done);
        let l = *latest.get(started.checked_sub(1)?)?;
        (timing[l].done > t.start).then_some((l, s))
    })
}

/// Total cycles of a program: the last completion.
pub fn total_cycles(timing: &[InstrTiming]) -> u64 {
    timing.iter().map(|t| t.done).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Dim;

    #[test]
    fn transposer_pipeline_by_hand() {
        // gather ends 3, drain 3..5; gather 3..6 (bank of group 0 is not needed), drain 6..8;
        // group 2 reuses bank 0, free at 5: gather 6..9, drain 9..11.
        assert_eq!(transposer_cycles([(3, 2), (3, 2), (3, 2)]), 11);
        // drain-bound: gather 0..1, drain 1..5; gather 1..2, drain 5..9; group 2 waits for
        // bank 0 (free at 5): gather 5..6, drain 9..13.
        assert_eq!(transposer_cycles([(1, 4), (1, 4), (1, 4)]), 13);
        assert_eq!(transposer_cycles([]), 0);
    }

    #[test]
    fn fetch_cycles_space_a_units_instructions() {
        // Three one-word matmuls (busy 1, latency 4 + 4 + 1 = 9) on the exec unit.
        let one = Instr { sync: crate::isa::Sync::default(), op: Op::dense_ws(crate::isa::WordGen::linear(0, 1), 0, false, None, None) };
        let program = vec![one; 3];
        let starts = |fetch_cycles, decode_stages| {
            let arch = ArchConfig { rows: 4, cols: 4, fetch_cycles, decode_stages, ..ArchConfig::default() };
            schedule(&arch, &program).unwrap().iter().map(|t| (t.start, t.done)).collect::<Vec<_>>()
        };
        // Whole-instruction fetch: back to back.
        assert_eq!(starts(1, 0), [(0, 10), (1, 11), (2, 12)]);
        // Four cycles per instruction: the first is fetched by cycle 3, the others 4 apart.
        assert_eq!(starts(4, 0), [(3, 13), (7, 17), (11, 21)]);
        // A decode stage: each issues a cycle after it is whole.
        assert_eq!(starts(1, 1), [(1, 11), (3, 13), (5, 15)]);
        assert_eq!(starts(4, 1), [(4, 14), (9, 19), (14, 24)]);
    }

    #[test]
    fn a_single_dram_port_serializes_loads_and_stores() {
        let arch = ArchConfig { rows: 4, cols: 4, dram_latency: 5, dram_single_port: true, ..ArchConfig::default() };
        let two_ports = ArchConfig { dram_single_port: false, ..arch.clone() };
        // L0 (params, 8 cycles of reads + 5) and S0 (one beat) are independent: on two ports
        // both start in cycle 0; on one they may not overlap.
        let mut p = vec![
            Instr { sync: crate::isa::Sync::default(), op: Op::LoadParams { dst: 0, addr: 0, count: 4 } },
            Instr {
                sync: crate::isa::Sync::default(),
                op: Op::Store { acc: 0, dst: DramPattern::runs(64, 4, 1, 4), out: Default::default() },
            },
        ];
        let both = schedule(&two_ports, &p).unwrap();
        assert_eq!((both[0].start, both[1].start), (0, 0));
        match schedule(&arch, &p) {
            Err(TimingError::PortShared { load: 0, store: 1, load_cycles, store_cycles }) => {
                assert_eq!((load_cycles.start, store_cycles.start), (0, 0))
            }
            other => panic!("{other:?}"),
        }
        // Serialized, the store waits for the load's completion.
        serialize_dram_port(&arch, &mut p);
        assert_eq!(p[1].sync, crate::isa::Sync { load: 1, exec: 0, store: 0 });
        assert_eq!(p[0].sync, crate::isa::Sync::default());
        let t = schedule(&arch, &p).unwrap();
        assert_eq!(t[1].start, t[0].done);
        // Without the single port the program is left as it is.
        let mut q = p.clone();
        q[1].sync = crate::isa::Sync::default();
        serialize_dram_port(&two_ports, &mut q);
        assert_eq!(q[1].sync, crate::isa::Sync::default());
    }

    #[test]
    fn a_queue_streams_the_instructions_beyond_it_by_hand() {
        let matmul = |words| Instr {
            sync: crate::isa::Sync::default(),
            op: Op::dense_ws(crate::isa::WordGen::linear(0, words), 0, false, None, None),
        };
        let arch = |instr_queue| ArchConfig { rows: 4, cols: 4, dram_latency: 5, instr_queue, ..ArchConfig::default() };
        let starts = |a: &ArchConfig, p: &[Instr]| schedule(a, p).unwrap().iter().map(|t| t.start).collect::<Vec<_>>();
        // One-cycle matmuls: entry 0 (instruction 2) reaches the fetcher at L = 5, its slot
        // free since cycle 1, is written in cycle 5 and read in 6, so it issues in 7; entry
        // 1 streams on behind it.
        let short = vec![matmul(1); 4];
        assert_eq!(starts(&arch(None), &short), [0, 1, 2, 3]);
        assert_eq!(starts(&arch(Some(2)), &short), [0, 1, 7, 8]);
        assert_eq!(starts(&arch(Some(4)), &short), [0, 1, 2, 3]);
        // Ten-cycle matmuls: entry 1's slot (instruction 1, issued in 10) frees in 11, after
        // the fetcher reached it in 6, so the fetcher starts again: written in 11 + 5 = 16,
        // long before the unit is free in 30.
        let long = vec![matmul(10); 4];
        assert_eq!(starts(&arch(Some(2)), &long), [0, 10, 20, 30]);
        let mut line = Timeline::new(&arch(Some(2)));
        for ins in &long {
            line.issue(&arch(Some(2)), ins).unwrap();
        }
        assert_eq!(line.streamed(), 2);
        // A wait on a later instruction cannot be fetched in order.
        let load = Op::LoadParams { dst: 0, addr: 0, count: 4 };
        let waits_ahead = [
            Instr { sync: crate::isa::Sync { load: 1, exec: 0, store: 0 }, op: matmul(1).op },
            Instr { sync: crate::isa::Sync::default(), op: load },
        ];
        assert!(schedule(&arch(None), &waits_ahead).is_ok());
        assert!(matches!(schedule(&arch(Some(2)), &waits_ahead), Err(TimingError::WaitsForLater { instr: 0, need: 1, before: 0, .. })));
    }

    #[test]
    fn vector_ops_by_hand() {
        // 8x4 array: the unit maps min(8, 4) = 4 lanes a word; with 2 lanes, 2 passes a word.
        let arch = ArchConfig { rows: 8, cols: 4, vector_lanes: 2, ..ArchConfig::default() };
        let plain = |op| Instr { sync: crate::isa::Sync::default(), op };
        // A 3x3 window, 5 outputs: 9 * 5 * 2 = 90 cycles busy, then 4 to the last write.
        let window = crate::isa::WordGen { start: 0, inner_count: 3, inner_stride: 1, outer_count: 3, outer_stride: 10 };
        let vector = Op::Vector { window, count: 5, stride: 2, acc: 0, max: true };
        assert_eq!(cost(&arch, &vector), (90, 4, 90));
        // A table load of 512 entries at 16 bytes a cycle: 512 beats after the wait of 40.
        let table = Op::LoadTable { dst: 0, addr: 0, count: 512 };
        assert_eq!(cost(&arch, &table), (40 + 512, 0, 512));
        // The array's latency is 8 + 4 + 1 = 13 (no pipeline stages): a vector op after a
        // 6-word matmul starts at its done, 6 + 13 = 19, not when the unit frees at 6; and
        // the matmul after it starts at its done, 19 + 90 + 4 = 113.
        let matmul = Op::dense_ws(crate::isa::WordGen::linear(0, 6), 0, false, None, None);
        let t = schedule(&arch, &[plain(matmul), plain(vector), plain(matmul)]).unwrap();
        assert_eq!(t.iter().map(|t| (t.start, t.done)).collect::<Vec<_>>(), [(0, 19), (19, 113), (113, 132)]);
    }

    #[test]
    fn transposed_groups_by_hand() {
        // 2 outer x 6 inner runs of 5 bytes on 4 rows, 2 bytes per beat: groups of 4 and 2
        // runs, 3 beats per run, 5 words each.
        let src = DramPattern {
            addr: 0,
            len: 5,
            dims: [Dim { count: 2, stride: 100 }, Dim { count: 2, stride: 30 }, Dim { count: 3, stride: 5 }],
        };
        assert_eq!(load_transposed_groups(&src, 4, 2).collect::<Vec<_>>(), vec![(12, 5), (6, 5), (12, 5), (6, 5)]);
        // 4 lines of 3 runs in blocks of width 2: blocks of 2 and 1 runs, 5 accumulator rows.
        assert_eq!(store_transposed_groups(&src, 2, 2).collect::<Vec<_>>(), [(5, 6), (5, 3)].repeat(4));
    }

    #[test]
    fn a_read_register_without_room_in_the_dram_latency_lengthens_only_the_loads() {
        // 3 runs of 4 bytes on 2 lanes: 6 beats. The store's wait is max(2, 0 + 2) = 2.
        let pattern =
            DramPattern { addr: 0, len: 4, dims: [Dim { count: 1, stride: 0 }, Dim { count: 1, stride: 0 }, Dim { count: 3, stride: 4 }] };
        let load = Op::Load { target: crate::isa::Buffer::Act, dst: 0, offset: 0, src: pattern };
        let store = Op::Store { acc: 0, dst: pattern, out: crate::isa::OutputStage::default() };
        let arch = |dram_latency, dram_read_stages| ArchConfig {
            dram_bytes_per_cycle: 2,
            dram_latency,
            dram_read_stages,
            requant_stages: 0,
            transposer: false,
            ..ArchConfig::preset_4x4()
        };
        let busy = |a: &ArchConfig| (cost(a, &load).0, cost(a, &store).0);
        assert_eq!(busy(&arch(2, 0)), (2 + 6, 2 + 6));
        // The engine needs a cycle of wait before it reads a cycle ahead: 3.
        assert_eq!(busy(&arch(2, 1)), (3 + 6, 2 + 6));
        assert_eq!(busy(&arch(5, 1)), (5 + 6, 5 + 6));
    }
}
