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

use crate::wiring::{constants, signals};
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
    bytes: Vec<DFF<Signed<8>>>,
    /// Per byte: its bank, lane and position.
    entry_bank: Vec<Constant<Bit>>,
    entry_lane: Vec<Constant<Num>>,
    entry_pos: Vec<Constant<Num>>,
    /// `k`, for byte `k` of `w_data` or `r_data`.
    k_num: Vec<Constant<Num>>,
    full0: DFF<Bit>,
    full1: DFF<Bit>,
    runs0: DFF<Num>,
    runs1: DFF<Num>,
    last0: DFF<Bit>,
    last1: DFF<Bit>,
    outer0: DFF<Bit>,
    outer1: DFF<Bit>,
    offset: Signal<Local, Num>,
}

impl TransposerBanks {
    /// Banks of `lanes` lanes of `positions` bytes, written `writes` bytes and read `reads`
    /// bytes at a time.
    pub fn new(lanes: usize, positions: usize, writes: usize, reads: usize) -> Self {
        assert!(lanes < 1 << BITS && positions < 1 << BITS, "{lanes} x {positions} transposer");
        let entries = || (0..2).flat_map(move |b| (0..lanes).flat_map(move |l| (0..positions).map(move |p| (b, l, p))));
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
            bytes: signals(2 * lanes * positions),
            entry_bank: entries().map(|(b, _, _)| Constant::new(b == 1)).collect(),
            entry_lane: constants(entries().map(|(_, l, _)| l as u64)),
            entry_pos: constants(entries().map(|(_, _, p)| p as u64)),
            k_num: constants(0..writes.max(reads) as u64),
            full0: Default::default(),
            full1: Default::default(),
            runs0: Default::default(),
            runs1: Default::default(),
            last0: Default::default(),
            last1: Default::default(),
            outer0: Default::default(),
            outer1: Default::default(),
            offset: Default::default(),
        }
    }
}

impl Logic for TransposerBanks {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, full0, full1, runs0, runs1, last0, last1, outer0, outer1);
        self.offset.next = 0.into();
        for k in 0..self.r_data.len() {
            self.r_data[k].next = 0.into();
        }
        for e in 0..self.bytes.len() {
            self.bytes[e].clock.next = self.clock.val();
            self.bytes[e].d.next = self.bytes[e].q.val();
            if self.write.val()
                & (self.entry_bank[e].val() == self.w_bank.val())
                & (self.entry_lane[e].val() == self.w_lane.val())
                & (self.entry_pos[e].val() < self.w_end.val())
            {
                self.offset.next = self.entry_pos[e].val() - self.w_pos.val();
                for k in 0..self.w_data.len() {
                    if self.offset.val() == self.k_num[k].val() {
                        self.bytes[e].d.next = self.w_data[k].val();
                    }
                }
            }
            if (self.entry_bank[e].val() == self.r_bank.val()) & (self.entry_pos[e].val() == self.r_pos.val()) {
                self.offset.next = self.entry_lane[e].val() - self.r_lane.val();
                for k in 0..self.r_data.len() {
                    if self.offset.val() == self.k_num[k].val() {
                        self.r_data[k].next = self.bytes[e].q.val();
                    }
                }
            }
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
