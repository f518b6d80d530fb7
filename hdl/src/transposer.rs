//! The transposer's two buffer banks, shared by the transposed load and store engines
//! (docs/ARCHITECTURE.md section 5, "The transposer").
//!
//! A group is *gathered* into a bank one lane (load) or one byte position (store) at a
//! time, then *drained* the other way. Bank `b` is full from the cycle after its group's
//! last gathered byte is written until its last drain cycle; the gather may issue into it
//! again in that last drain cycle, since the first gathered byte is written one cycle
//! after its issue. The engines keep the bookkeeping in [`Banks`] (Rust model) and in the
//! registers of [`verilog::decls`].

/// Bank bookkeeping and contents: `2 x lanes x depth` bytes.
#[derive(Clone, Debug, Default)]
pub struct Banks {
    /// The bank holds a gathered group not yet drained.
    pub full: [bool; 2],
    /// Lanes (load) or runs (store) of the bank's group.
    pub runs: [u32; 2],
    /// The bank's group is the instruction's last.
    pub last: [bool; 2],
    /// The bank's group ends an outer iteration (load only).
    pub ends_outer: [bool; 2],
    lanes: usize,
    depth: usize,
    bytes: Vec<i8>,
}

impl Banks {
    /// Two banks of `lanes` lanes of `depth` bytes.
    pub fn new(lanes: usize, depth: usize) -> Self {
        Self { lanes, depth, bytes: vec![0; 2 * lanes * depth], ..Default::default() }
    }

    fn index(&self, bank: usize, lane: usize, byte: usize) -> Option<usize> {
        (lane < self.lanes && byte < self.depth).then_some((bank * self.lanes + lane) * self.depth + byte)
    }

    /// Byte `byte` of lane `lane` of bank `bank` (0 outside the bank).
    pub fn at(&self, bank: usize, lane: usize, byte: usize) -> i8 {
        self.index(bank, lane, byte).map_or(0, |i| self.bytes[i])
    }

    /// Writes a byte (ignored outside the bank).
    pub fn set(&mut self, bank: usize, lane: usize, byte: usize, value: i8) {
        if let Some(i) = self.index(bank, lane, byte) {
            self.bytes[i] = value;
        }
    }

    /// The gather may issue into `bank` this cycle: it is empty, or the drain is in its last
    /// cycle on it.
    pub fn free(&self, bank: usize, drain_last: bool, drain_bank: usize) -> bool {
        !self.full[bank] || (drain_last && drain_bank == bank)
    }

    /// Marks `bank` full with a group of `runs` lanes or runs.
    pub fn fill(&mut self, bank: usize, runs: u32, last: bool, ends_outer: bool) {
        self.full[bank] = true;
        self.runs[bank] = runs;
        self.last[bank] = last;
        self.ends_outer[bank] = ends_outer;
    }
}

/// The same in Verilog.
pub mod verilog {
    /// Declarations of the bank registers for `lanes x depth` bytes per bank: `full`,
    /// `last`, `ends_outer` (2-bit vectors indexed by bank), `runs0`, `runs1`, and the bytes
    /// `tb[(bank * lanes + lane) * depth + byte]`.
    pub fn decls(lanes: usize, depth: usize) -> String {
        format!(
            "reg [1:0] full, last, ends_outer;
reg [15:0] runs0, runs1;
reg signed [7:0] tb [0:{}];
integer tbi;
initial begin
    full = 0; last = 0; ends_outer = 0; runs0 = 0; runs1 = 0;
    for (tbi = 0; tbi < {}; tbi = tbi + 1) tb[tbi] = 0;
end
",
            2 * lanes * depth - 1,
            2 * lanes * depth
        )
    }

    /// The gather may issue into bank `bank` (see [`super::Banks::free`]).
    pub fn free(bank: &str, drain_last: &str, drain_bank: &str) -> String {
        format!("(!full[{bank}] || ({drain_last} && {drain_bank} == {bank}))")
    }

    /// Non-blocking assignments that mark bank `bank` full.
    pub fn fill(bank: &str, runs: &str, last: &str, ends_outer: &str) -> String {
        format!(
            "full[{bank}] <= 1'b1; last[{bank}] <= {last}; ends_outer[{bank}] <= {ends_outer};
            if ({bank}) runs1 <= {runs}; else runs0 <= {runs};"
        )
    }

    /// The run count of bank `bank`.
    pub fn runs(bank: &str) -> String {
        format!("({bank} ? runs1 : runs0)")
    }

    /// The byte index of `tb` for `bank`, `lane`, `byte`.
    pub fn at(lanes: usize, depth: usize, bank: &str, lane: &str, byte: &str) -> String {
        format!("(({bank} * {lanes} + {lane}) * {depth} + {byte})")
    }
}
