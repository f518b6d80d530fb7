//! The transposed load engine for `LoadTransposed` (docs/ARCHITECTURE.md sections 4, 5
//! and 9): runs of pixel-major DRAM bytes into channel-major activation words.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles; then the gather issues one
//! DRAM beat per cycle, writing each beat's bytes one cycle later into lane `run % rows`
//! of its bank, and the drain writes one activation word per cycle from a full bank: word
//! `dst + group*pitch + i2*len + j` gets byte `j` of every lane (0 for lanes without a
//! run). Both overlap double-buffered as [`crate::transposer`] describes, which gives
//! `core::timing::transposer_cycles` exactly; the last drain cycle of the last group is the
//! instruction's last busy cycle and pulses `complete`. An instruction without runs or
//! with `len = 0` only waits.

use crate::dma::{BeatWalker, DmaPattern, DmaPhase};
use crate::sram::ADDR_BITS;
use crate::transposer::TransposerBanks;
use crate::wiring::{constants, signals};
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The transposed load engine.
#[derive(LogicBlock)]
pub struct LoadTransposedEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Word of group 0, byte 0.
    pub dst: Signal<In, Addr>,
    /// Words between groups.
    pub pitch: Signal<In, Addr>,
    /// The DRAM access pattern.
    pub pattern: Signal<In, DmaPattern>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// DRAM: first byte of this cycle's beat.
    pub dram_rd_addr: Signal<Out, DAddr>,
    /// DRAM: the beat read in the previous cycle.
    pub dram_rd_data: Vec<Signal<In, Signed<8>>>,
    /// Activation scratchpad: lane write enables.
    pub act_we: Vec<Signal<Out, Bit>>,
    /// Activation scratchpad: word written.
    pub act_addr: Signal<Out, Addr>,
    /// Activation scratchpad: lane data.
    pub act_data: Vec<Signal<Out, Signed<8>>>,
    phase: DmaPhase,
    walk: BeatWalker,
    banks: TransposerBanks,
    f_dst: DFF<Addr>,
    f_pitch: DFF<Addr>,
    f_len: DFF<Bits<16>>,
    /// Gather: runs remain, the lane (run of the group) and bank it fills.
    g_on: DFF<Bit>,
    g_lane: DFF<Bits<16>>,
    g_bank: DFF<Bit>,
    /// Drain: the bank, the byte of its runs and the word it writes, and the first word of
    /// the current outer iteration.
    d_bank: DFF<Bit>,
    d_j: DFF<Bits<16>>,
    d_base: DFF<Addr>,
    d_outer: DFF<Addr>,
    /// The beat issued in the previous cycle, written into a bank in this one.
    p_valid: DFF<Bit>,
    p_bank: DFF<Bit>,
    p_lane: DFF<Bits<16>>,
    p_base: DFF<Bits<16>>,
    p_end: DFF<Bit>,
    p_outer: DFF<Bit>,
    p_last: DFF<Bit>,
    rows_c: Constant<Bits<16>>,
    /// `l`, for activation lane `l`.
    lane_num: Vec<Constant<Bits<16>>>,
    starting: Signal<Local, Bit>,
    d_on: Signal<Local, Bit>,
    d_last: Signal<Local, Bit>,
    g_issue: Signal<Local, Bit>,
    outer_end: Signal<Local, Bit>,
    end_group: Signal<Local, Bit>,
}

impl LoadTransposedEngine {
    /// An engine for `rows`-byte activation words, `lanes` DRAM bytes per cycle, a DRAM
    /// latency of `latency >= 2` cycles and banks of `depth` bytes per lane.
    pub fn new(rows: usize, lanes: usize, latency: usize, depth: usize) -> Self {
        assert!(latency >= 2, "the transposed load engine needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            pitch: Default::default(),
            pattern: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: signals(lanes),
            act_we: signals(rows),
            act_addr: Default::default(),
            act_data: signals(rows),
            phase: DmaPhase::new(latency),
            walk: BeatWalker::new(lanes, 24, 16),
            banks: TransposerBanks::new(rows, depth, lanes, rows),
            f_dst: Default::default(),
            f_pitch: Default::default(),
            f_len: Default::default(),
            g_on: Default::default(),
            g_lane: Default::default(),
            g_bank: Default::default(),
            d_bank: Default::default(),
            d_j: Default::default(),
            d_base: Default::default(),
            d_outer: Default::default(),
            p_valid: Default::default(),
            p_bank: Default::default(),
            p_lane: Default::default(),
            p_base: Default::default(),
            p_end: Default::default(),
            p_outer: Default::default(),
            p_last: Default::default(),
            rows_c: Constant::new((rows as u64).into()),
            lane_num: constants(0..rows as u64),
            starting: Default::default(),
            d_on: Default::default(),
            d_last: Default::default(),
            g_issue: Default::default(),
            outer_end: Default::default(),
            end_group: Default::default(),
        }
    }
}

impl Logic for LoadTransposedEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, f_dst, f_pitch, f_len, g_on, g_lane, g_bank, d_bank, d_j, d_base, d_outer, p_valid, p_bank, p_lane, p_base, p_end,
            p_outer, p_last
        );
        self.phase.clock.next = self.clock.val();
        self.walk.clock.next = self.clock.val();
        self.banks.clock.next = self.clock.val();
        self.walk.pattern.next = self.pattern.val();
        self.starting.next = self.phase.ready.val() & self.start.val();
        self.d_on.next = self.phase.issuing.val() & self.banks.full.val();
        self.d_last.next = self.d_on.val() & ((self.d_j.q.val() + 1) == self.f_len.q.val());
        self.g_issue.next = self.phase.issuing.val() & self.g_on.q.val() & self.banks.free.val();
        self.outer_end.next = self.walk.last_beat.val() & self.walk.last_inner_run.val();
        self.end_group.next =
            self.walk.last_beat.val() & (((self.g_lane.q.val() + 1) == self.rows_c.val()) | self.outer_end.val() | self.walk.last.val());
        // An instruction with runs of at least one byte has work after its wait.
        self.phase.start.next = self.start.val();
        self.phase.work_at_start.next = self.walk.nonempty_at_start.val() & (self.pattern.val().len != 0);
        self.phase.work.next = self.g_on.q.val();
        self.phase.last.next = false;
        self.phase.finish.next = self.d_last.val() & self.banks.last.val();
        self.walk.start.next = self.starting.val();
        self.walk.advance.next = self.g_issue.val();
        self.ready.next = self.phase.ready.val();
        self.complete.next = self.phase.complete.val() | (self.d_last.val() & self.banks.last.val());
        // Each output is assigned once per evaluation (no default then override), so that an
        // event-driven simulator sees no glitch on it.
        if self.g_issue.val() {
            self.dram_rd_addr.next = self.walk.beat_addr.val();
        } else {
            self.dram_rd_addr.next = 0.into();
        }
        if self.d_on.val() {
            self.act_addr.next = self.d_base.q.val() + bit_cast::<ADDR_BITS, 16>(self.d_j.q.val());
        } else {
            self.act_addr.next = 0.into();
        }
        self.banks.r_bank.next = self.d_bank.q.val();
        self.banks.r_lane.next = 0.into();
        self.banks.r_pos.next = self.d_j.q.val();
        for l in 0..self.act_we.len() {
            self.act_we[l].next = self.d_on.val();
            if self.d_on.val() & (self.lane_num[l].val() < self.banks.runs.val()) {
                self.act_data[l].next = self.banks.r_data[l].val();
            } else {
                self.act_data[l].next = 0.into();
            }
        }
        self.banks.write.next = self.p_valid.q.val();
        self.banks.w_bank.next = self.p_bank.q.val();
        self.banks.w_lane.next = self.p_lane.q.val();
        self.banks.w_pos.next = self.p_base.q.val();
        self.banks.w_end.next = self.f_len.q.val();
        for i in 0..self.dram_rd_data.len() {
            self.banks.w_data[i].next = self.dram_rd_data[i].val();
        }
        self.banks.fill.next = self.p_valid.q.val() & self.p_end.q.val();
        self.banks.fill_bank.next = self.p_bank.q.val();
        self.banks.fill_runs.next = self.p_lane.q.val() + 1;
        self.banks.fill_last.next = self.p_last.q.val();
        self.banks.fill_outer.next = self.p_outer.q.val();
        self.banks.drained.next = self.d_last.val();
        self.banks.gather_bank.next = self.g_bank.q.val();
        self.banks.clear.next = self.starting.val();
        self.p_valid.d.next = false;
        if self.starting.val() {
            self.f_dst.d.next = self.dst.val();
            self.f_pitch.d.next = self.pitch.val();
            self.f_len.d.next = self.pattern.val().len;
            self.g_on.d.next = self.walk.nonempty_at_start.val() & (self.pattern.val().len != 0);
            self.g_lane.d.next = 0.into();
            self.g_bank.d.next = false;
            self.d_bank.d.next = false;
            self.d_j.d.next = 0.into();
            self.d_base.d.next = self.dst.val();
            self.d_outer.d.next = self.dst.val();
        }
        if self.d_on.val() {
            if self.d_last.val() {
                self.d_bank.d.next = !self.d_bank.q.val();
                self.d_j.d.next = 0.into();
                if self.banks.ends_outer.val() {
                    self.d_outer.d.next = self.d_outer.q.val() + bit_cast::<ADDR_BITS, 16>(self.f_len.q.val());
                    self.d_base.d.next = self.d_outer.q.val() + bit_cast::<ADDR_BITS, 16>(self.f_len.q.val());
                } else {
                    self.d_base.d.next = self.d_base.q.val() + self.f_pitch.q.val();
                }
            } else {
                self.d_j.d.next = self.d_j.q.val() + 1;
            }
        }
        if self.g_issue.val() {
            self.p_valid.d.next = true;
            self.p_bank.d.next = self.g_bank.q.val();
            self.p_lane.d.next = self.g_lane.q.val();
            self.p_base.d.next = self.walk.beat_offset.val();
            self.p_end.d.next = self.end_group.val();
            self.p_outer.d.next = self.outer_end.val();
            self.p_last.d.next = self.walk.last.val();
            if self.end_group.val() {
                self.g_lane.d.next = 0.into();
                self.g_bank.d.next = !self.g_bank.q.val();
            } else if self.walk.last_beat.val() {
                self.g_lane.d.next = self.g_lane.q.val() + 1;
            }
            if self.walk.last.val() {
                self.g_on.d.next = false;
            }
        }
    }
}
