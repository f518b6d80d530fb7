//! Per-cycle stimulus tables for the RTL blocks: fill memories through host ports, run
//! instructions in the cycles the timing model starts them, read results back.

use systole_core::isa::{Instr, Op, Sync};
use systole_core::timing::schedule;
use systole_core::ArchConfig;

/// One row of input-port values per cycle, in a test's port order.
pub struct Stimulus {
    /// The rows.
    pub rows: Vec<Vec<i64>>,
    width: usize,
}

impl Stimulus {
    /// An empty table for `width` input ports.
    pub fn new(width: usize) -> Self {
        Self { rows: vec![], width }
    }

    /// Appends an all-zero row and returns it.
    pub fn push(&mut self) -> &mut Vec<i64> {
        self.rows.push(vec![0; self.width]);
        self.rows.last_mut().expect("just pushed")
    }

    /// Rows that write `dram` into a DRAM model, `lanes` bytes per cycle, through the port
    /// columns `[lane 0's write enable, address, lane 0's data]` (lanes contiguous).
    pub fn dram_fill(&mut self, dram: &[i8], lanes: usize, [we, addr, data]: [usize; 3]) {
        for (chunk, bytes) in dram.chunks(lanes).enumerate() {
            let v = self.push();
            v[addr] = (chunk * lanes) as i64;
            for (i, &b) in bytes.iter().enumerate() {
                v[we + i] = 1;
                v[data + i] = b as i64;
            }
        }
    }

    /// Issues `ops` alone on one unit (no waits on other units), each in the cycle the timing
    /// model starts it, counted from the next row: `fields(op)` fills the first columns of
    /// that row. Returns the first row of the window and every instruction's completion
    /// cycle relative to it (`done - 1`: the completion pulse comes in the last cycle
    /// before the effects are visible).
    pub fn instructions(&mut self, arch: &ArchConfig, ops: &[Op], fields: impl Fn(&Op) -> Vec<i64>) -> (usize, Vec<u64>) {
        let instrs: Vec<Instr> = ops.iter().map(|&op| Instr { sync: Sync::default(), op }).collect();
        let timing = schedule(arch, &instrs).expect("single-unit programs schedule");
        let t0 = self.rows.len();
        self.rows.resize(t0 + timing.iter().map(|t| t.done).max().unwrap_or(0) as usize + 1, vec![0; self.width]);
        for (op, t) in ops.iter().zip(&timing) {
            let f = fields(op);
            self.rows[t0 + t.start as usize][..f.len()].copy_from_slice(&f);
        }
        (t0, timing.iter().map(|t| t.done - 1).collect())
    }
}

/// The cycles, relative to `t0`, whose completion flag is set.
pub fn completions(flags: impl Iterator<Item = bool>, t0: usize) -> Vec<u64> {
    flags.enumerate().filter(|&(_, f)| f).map(|(t, _)| (t - t0) as u64).collect()
}
