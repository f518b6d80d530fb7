//! The transposer's two buffer banks, shared by the transposed load and store engines
//! (docs/ARCHITECTURE.md section 5, "The transposer"), written once as an `hdl_gen` kernel.
//!
//! A group is *gathered* into a bank one lane at a time (several bytes of one lane per
//! cycle), then *drained* one byte position at a time (that position of several adjacent
//! lanes per cycle). The load engine's lanes are activation rows and its positions a run's
//! bytes; the store engine's lanes are a run's bytes and its positions the runs. Bank `b`
//! is full from the cycle after its group's last gathered byte is written until its last
//! drain cycle; the gather may issue into it again in that last drain cycle, since the
//! first gathered byte is written one cycle after its issue.
//!
//! The bookkeeping is an `hdl_gen` kernel; the bytes are a leaf, [`ByteFile`], a register
//! file (LUT RAM or flip-flops) that rust-hdl simulates as an array and emits as a Verilog
//! memory with an indexed write and indexed asynchronous reads.

use crate::wiring::signals;
use rust_hdl::prelude::*;

/// Bits of lane and position numbers.
const BITS: usize = 16;
type Num = Bits<BITS>;

/// Two banks of `lanes x positions` bytes with their bookkeeping.
#[derive(LogicBlock)]
pub struct TransposerBanks {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Empty both banks (an instruction starts).
    pub clear: Signal<In, Bit>,
    /// Write `w_data` at the end of this cycle.
    pub write: Signal<In, Bit>,
    /// Bank written.
    pub w_bank: Signal<In, Bit>,
    /// Lane written.
    pub w_lane: Signal<In, Num>,
    /// Position of `w_data[0]`; byte `i` goes to position `w_pos + i`...
    pub w_pos: Signal<In, Num>,
    /// ... when that is below `w_end`.
    pub w_end: Signal<In, Num>,
    /// Bytes written.
    pub w_data: Vec<Signal<In, Signed<8>>>,
    /// Bank read (and drained).
    pub r_bank: Signal<In, Bit>,
    /// Lane of `r_data[0]`; `r_data[k]` is lane `r_lane + k` (0 beyond the last lane).
    pub r_lane: Signal<In, Num>,
    /// Position read.
    pub r_pos: Signal<In, Num>,
    /// Bytes read.
    pub r_data: Vec<Signal<Out, Signed<8>>>,
    /// Mark bank `fill_bank` full at the end of this cycle (wins over `drained`).
    pub fill: Signal<In, Bit>,
    /// Bank marked full.
    pub fill_bank: Signal<In, Bit>,
    /// Lanes (load) or runs (store) of its group.
    pub fill_runs: Signal<In, Num>,
    /// Its group is the instruction's last.
    pub fill_last: Signal<In, Bit>,
    /// Its group ends an outer iteration (load).
    pub fill_outer: Signal<In, Bit>,
    /// The drain is in its last cycle on `r_bank`, which is empty at the end of it.
    pub drained: Signal<In, Bit>,
    /// Bank the gather issues into.
    pub gather_bank: Signal<In, Bit>,
    /// `r_bank` holds a gathered group not yet drained...
    pub full: Signal<Out, Bit>,
    /// ... of this many lanes or runs...
    pub runs: Signal<Out, Num>,
    /// ... that is the instruction's last...
    pub last: Signal<Out, Bit>,
    /// ... or ends an outer iteration.
    pub ends_outer: Signal<Out, Bit>,
    /// The gather may issue into `gather_bank` in this cycle: it is empty, or the drain is in
    /// its last cycle on it.
    pub free: Signal<Out, Bit>,
    /// The bytes.
    file: ByteFile,
    full0: DFF<Bit>,
    full1: DFF<Bit>,
    runs0: DFF<Num>,
    runs1: DFF<Num>,
    last0: DFF<Bit>,
    last1: DFF<Bit>,
    outer0: DFF<Bit>,
    outer1: DFF<Bit>,
}

impl TransposerBanks {
    /// Banks of `lanes` lanes of `positions` bytes, written `writes` bytes and read `reads`
    /// bytes at a time.
    pub fn new(lanes: usize, positions: usize, writes: usize, reads: usize) -> Self {
        assert!(lanes < 1 << BITS && positions < 1 << BITS, "{lanes} x {positions} transposer");
        Self {
            clock: Default::default(),
            clear: Default::default(),
            write: Default::default(),
            w_bank: Default::default(),
            w_lane: Default::default(),
            w_pos: Default::default(),
            w_end: Default::default(),
            w_data: signals(writes),
            r_bank: Default::default(),
            r_lane: Default::default(),
            r_pos: Default::default(),
            r_data: signals(reads),
            fill: Default::default(),
            fill_bank: Default::default(),
            fill_runs: Default::default(),
            fill_last: Default::default(),
            fill_outer: Default::default(),
            drained: Default::default(),
            gather_bank: Default::default(),
            full: Default::default(),
            runs: Default::default(),
            last: Default::default(),
            ends_outer: Default::default(),
            free: Default::default(),
            file: ByteFile::new(lanes, positions, writes, reads),
            full0: Default::default(),
            full1: Default::default(),
            runs0: Default::default(),
            runs1: Default::default(),
            last0: Default::default(),
            last1: Default::default(),
            outer0: Default::default(),
            outer1: Default::default(),
        }
    }
}

impl Logic for TransposerBanks {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, full0, full1, runs0, runs1, last0, last1, outer0, outer1);
        self.file.clock.next = self.clock.val();
        self.file.write.next = self.write.val();
        self.file.w_bank.next = self.w_bank.val();
        self.file.w_lane.next = self.w_lane.val();
        self.file.w_pos.next = self.w_pos.val();
        self.file.w_end.next = self.w_end.val();
        for k in 0..self.w_data.len() {
            self.file.w_data[k].next = self.w_data[k].val();
        }
        self.file.r_bank.next = self.r_bank.val();
        self.file.r_lane.next = self.r_lane.val();
        self.file.r_pos.next = self.r_pos.val();
        for k in 0..self.r_data.len() {
            self.r_data[k].next = self.file.r_data[k].val();
        }
        if self.r_bank.val() {
            self.full.next = self.full1.q.val();
            self.runs.next = self.runs1.q.val();
            self.last.next = self.last1.q.val();
            self.ends_outer.next = self.outer1.q.val();
        } else {
            self.full.next = self.full0.q.val();
            self.runs.next = self.runs0.q.val();
            self.last.next = self.last0.q.val();
            self.ends_outer.next = self.outer0.q.val();
        }
        if self.gather_bank.val() {
            self.free.next = !self.full1.q.val() | (self.drained.val() & self.r_bank.val());
        } else {
            self.free.next = !self.full0.q.val() | (self.drained.val() & !self.r_bank.val());
        }
        if self.clear.val() {
            self.full0.d.next = false;
            self.full1.d.next = false;
        } else if self.drained.val() {
            if self.r_bank.val() {
                self.full1.d.next = false;
            } else {
                self.full0.d.next = false;
            }
        }
        if self.fill.val() {
            if self.fill_bank.val() {
                self.full1.d.next = true;
                self.runs1.d.next = self.fill_runs.val();
                self.last1.d.next = self.fill_last.val();
                self.outer1.d.next = self.fill_outer.val();
            } else {
                self.full0.d.next = true;
                self.runs0.d.next = self.fill_runs.val();
                self.last0.d.next = self.fill_last.val();
                self.outer0.d.next = self.fill_outer.val();
            }
        }
    }
}

/// Two banks of `lanes x positions` signed bytes, byte `(bank, lane, pos)` at
/// `(bank * lanes + lane) * positions + pos`: one write port of `W` bytes into one lane at
/// positions `w_pos..` (those below `w_end`, written at the clock edge) and one
/// asynchronous read port of `R` bytes from one position of lanes `r_lane..` (0 beyond the
/// last lane or position).
#[derive(LogicBlock)]
pub struct ByteFile {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Write at the end of this cycle.
    pub write: Signal<In, Bit>,
    /// Bank written.
    pub w_bank: Signal<In, Bit>,
    /// Lane written.
    pub w_lane: Signal<In, Num>,
    /// Position of `w_data[0]`.
    pub w_pos: Signal<In, Num>,
    /// Positions from here on are not written.
    pub w_end: Signal<In, Num>,
    /// Bytes written.
    pub w_data: Vec<Signal<In, Signed<8>>>,
    /// Bank read.
    pub r_bank: Signal<In, Bit>,
    /// Lane of `r_data[0]`.
    pub r_lane: Signal<In, Num>,
    /// Position read.
    pub r_pos: Signal<In, Num>,
    /// Bytes read.
    pub r_data: Vec<Signal<Out, Signed<8>>>,
    _lanes: usize,
    _positions: usize,
    _bytes: Vec<i8>,
}

impl ByteFile {
    /// The file of `lanes x positions` bytes per bank, `writes` bytes written and `reads`
    /// bytes read at a time.
    pub fn new(lanes: usize, positions: usize, writes: usize, reads: usize) -> Self {
        Self {
            clock: Default::default(),
            write: Default::default(),
            w_bank: Default::default(),
            w_lane: Default::default(),
            w_pos: Default::default(),
            w_end: Default::default(),
            w_data: signals(writes),
            r_bank: Default::default(),
            r_lane: Default::default(),
            r_pos: Default::default(),
            r_data: signals(reads),
            _lanes: lanes,
            _positions: positions,
            _bytes: vec![0; 2 * lanes * positions],
        }
    }

    /// The index of byte `(bank, lane, pos)`, if it exists.
    fn index(&self, bank: bool, lane: usize, pos: usize) -> Option<usize> {
        (lane < self._lanes && pos < self._positions).then(|| (bank as usize * self._lanes + lane) * self._positions + pos)
    }
}

impl Logic for ByteFile {
    fn update(&mut self) {
        if self.clock.pos_edge() && self.write.val() {
            let (bank, lane) = (self.w_bank.val(), self.w_lane.val().index());
            let (pos, end) = (self.w_pos.val().index(), self.w_end.val().index());
            for i in 0..self.w_data.len() {
                if pos + i < end {
                    if let Some(at) = self.index(bank, lane, pos + i) {
                        self._bytes[at] = self.w_data[i].val().bigint().try_into().unwrap_or(0);
                    }
                }
            }
        }
        let (bank, lane, pos) = (self.r_bank.val(), self.r_lane.val().index(), self.r_pos.val().index());
        for k in 0..self.r_data.len() {
            let byte = self.index(bank, lane + k, pos).map_or(0, |at| self._bytes[at]);
            self.r_data[k].next = (byte as i64).into();
        }
    }

    fn connect(&mut self) {
        for r in &mut self.r_data {
            r.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let (lanes, positions) = (self._lanes, self._positions);
        let size = 2 * lanes * positions;
        let mut v = format!(
            "reg signed [7:0] mem [0:{last}];
integer i;
initial for (i = 0; i < {size}; i = i + 1) mem[i] = 0;
always @(posedge clock) if (write) begin
",
            last = size - 1
        );
        for i in 0..self.w_data.len() {
            v += &format!(
                "    if (w_pos + {i} < w_end && w_lane < {lanes} && w_pos + {i} < {positions}) \
                 mem[(w_bank * {lanes} + w_lane) * {positions} + w_pos + {i}] <= w_data${i};\n"
            );
        }
        v += "end\nalways @(*) begin\n";
        for k in 0..self.r_data.len() {
            v += &format!(
                "    r_data${k} = (r_lane + {k} < {lanes} && r_pos < {positions}) ? \
                 mem[(r_bank * {lanes} + r_lane + {k}) * {positions} + r_pos] : 8'sd0;\n"
            );
        }
        v += "end";
        Verilog::Custom(v)
    }
}
