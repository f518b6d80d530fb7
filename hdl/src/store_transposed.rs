//! The transposed store engine for `StoreTransposed` (docs/ARCHITECTURE.md sections 4, 5
//! and 9): channel-major accumulator rows into pixel-major DRAM runs.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles; then, for each line and each
//! block of `width` runs, the gather reads one accumulator row per cycle, row
//! `acc + j*row_stride + line*line_pitch + block` with requantization entry `param + j`
//! for every column (the requantized bytes arrive in the next cycle and go to byte `j` of
//! the bank's lanes), and the drain writes the block's runs to DRAM, one beat per cycle,
//! run `r` of the block from lane `r`. Gather and drain overlap double-buffered as
//! [`crate::transposer`] describes, which gives `core::timing::transposer_cycles`
//! exactly; the last drain cycle of the last block is the instruction's last busy cycle
//! and pulses `complete`. An instruction without runs or with `len = 0` only waits.
//!
//! Written once as an `hdl_gen` kernel on [`DmaPhase`], [`BeatWalker`] and
//! [`TransposerBanks`], whose lanes here are a run's bytes and whose positions are the
//! runs (the columns).

use crate::dma::{BeatWalker, DmaPattern, DmaPhase};
use crate::requant::OutputStage;
use crate::sram::ADDR_BITS;
use crate::transposer::TransposerBanks;
use crate::wiring::{constants, signals};
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The transposed store engine.
#[derive(LogicBlock)]
pub struct StoreTransposedEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Accumulator row of byte 0 of run 0.
    pub acc: Signal<In, Addr>,
    /// Accumulator rows between bytes of a run.
    pub row_stride: Signal<In, Addr>,
    /// Accumulator rows between lines.
    pub line_pitch: Signal<In, Addr>,
    /// Runs per accumulator row (at most `cols`).
    pub width: Signal<In, Bits<16>>,
    /// The DRAM access pattern.
    pub pattern: Signal<In, DmaPattern>,
    /// First requantization entry.
    pub param: Signal<In, Addr>,
    /// The output stage.
    pub stage: Signal<In, OutputStage>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// Accumulator row to read this cycle.
    pub acc_addr: Signal<Out, Addr>,
    /// Requantization entry to read this cycle, for every column.
    pub param_entry: Signal<Out, Addr>,
    /// The output stage for the requantization units.
    pub rq_stage: Signal<Out, OutputStage>,
    /// The requantized row read in the previous cycle, lane `j` for column `j`.
    pub q: Vec<Signal<In, Signed<8>>>,
    /// DRAM: first byte written this cycle.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM: bytes.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM: lane enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    phase: DmaPhase,
    walk: BeatWalker,
    banks: TransposerBanks,
    f_acc: DFF<Addr>,
    f_rs: DFF<Addr>,
    f_lp: DFF<Addr>,
    f_param: DFF<Addr>,
    f_width: DFF<Bits<16>>,
    f_len: DFF<Bits<16>>,
    f_stage: DFF<OutputStage>,
    /// Runs per line (`count[2]`) and the line counts (`count[0]`, `count[1]`).
    f_pl: DFF<Bits<24>>,
    f_l0: DFF<Bits<24>>,
    f_l1: DFF<Bits<24>>,
    /// Gather: runs remain, its bank, the byte `j` of the block's runs, the accumulator
    /// row, the line's first row, the block within the line, the block's first run and
    /// the line indices.
    g_on: DFF<Bit>,
    g_bank: DFF<Bit>,
    g_j: DFF<Bits<16>>,
    g_row: DFF<Addr>,
    g_line: DFF<Addr>,
    g_block: DFF<Addr>,
    g_run0: DFF<Bits<24>>,
    g_l0: DFF<Bits<24>>,
    g_l1: DFF<Bits<24>>,
    /// Drain: its bank and the run it writes.
    d_bank: DFF<Bit>,
    d_lane: DFF<Bits<16>>,
    /// The row read in the previous cycle, written into a bank in this one.
    p_valid: DFF<Bit>,
    p_bank: DFF<Bit>,
    p_j: DFF<Bits<16>>,
    p_end: DFF<Bit>,
    p_runs: DFF<Bits<16>>,
    p_last: DFF<Bit>,
    cols_c: Constant<Bits<16>>,
    /// `i`, for DRAM lane `i`.
    lane_num: Vec<Constant<Bits<16>>>,
    starting: Signal<Local, Bit>,
    d_on: Signal<Local, Bit>,
    d_last: Signal<Local, Bit>,
    g_issue: Signal<Local, Bit>,
    end_group: Signal<Local, Bit>,
    more_blocks: Signal<Local, Bit>,
    last_line: Signal<Local, Bit>,
    last_block: Signal<Local, Bit>,
    /// Runs left in the line from the block's first.
    left: Signal<Local, Bits<24>>,
    enable: Signal<Local, Bit>,
}

impl StoreTransposedEngine {
    /// An engine for `cols` accumulator columns, `lanes` DRAM bytes per cycle, a DRAM
    /// latency of `latency >= 2` cycles and banks of `depth` bytes per lane.
    pub fn new(cols: usize, lanes: usize, latency: usize, depth: usize) -> Self {
        assert!(latency >= 2, "the transposed store engine needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            acc: Default::default(),
            row_stride: Default::default(),
            line_pitch: Default::default(),
            width: Default::default(),
            pattern: Default::default(),
            param: Default::default(),
            stage: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            acc_addr: Default::default(),
            param_entry: Default::default(),
            rq_stage: Default::default(),
            q: signals(cols),
            dram_wr_addr: Default::default(),
            dram_wr_data: signals(lanes),
            dram_wr_en: signals(lanes),
            phase: DmaPhase::new(latency),
            walk: BeatWalker::new(lanes, 24, 16),
            banks: TransposerBanks::new(depth, cols, cols, lanes),
            f_acc: Default::default(),
            f_rs: Default::default(),
            f_lp: Default::default(),
            f_param: Default::default(),
            f_width: Default::default(),
            f_len: Default::default(),
            f_stage: Default::default(),
            f_pl: Default::default(),
            f_l0: Default::default(),
            f_l1: Default::default(),
            g_on: Default::default(),
            g_bank: Default::default(),
            g_j: Default::default(),
            g_row: Default::default(),
            g_line: Default::default(),
            g_block: Default::default(),
            g_run0: Default::default(),
            g_l0: Default::default(),
            g_l1: Default::default(),
            d_bank: Default::default(),
            d_lane: Default::default(),
            p_valid: Default::default(),
            p_bank: Default::default(),
            p_j: Default::default(),
            p_end: Default::default(),
            p_runs: Default::default(),
            p_last: Default::default(),
            cols_c: Constant::new((cols as u64).into()),
            lane_num: constants(0..lanes as u64),
            starting: Default::default(),
            d_on: Default::default(),
            d_last: Default::default(),
            g_issue: Default::default(),
            end_group: Default::default(),
            more_blocks: Default::default(),
            last_line: Default::default(),
            last_block: Default::default(),
            left: Default::default(),
            enable: Default::default(),
        }
    }
}

impl Logic for StoreTransposedEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, f_acc, f_rs, f_lp, f_param, f_width, f_len, f_stage, f_pl, f_l0, f_l1, g_on, g_bank, g_j, g_row, g_line, g_block,
            g_run0, g_l0, g_l1, d_bank, d_lane, p_valid, p_bank, p_j, p_end, p_runs, p_last
        );
        self.phase.clock.next = self.clock.val();
        self.walk.clock.next = self.clock.val();
        self.banks.clock.next = self.clock.val();
        self.walk.pattern.next = self.pattern.val();
        self.starting.next = self.phase.ready.val() & self.start.val();
        self.d_on.next = self.phase.issuing.val() & self.banks.full.val();
        self.d_last.next = self.d_on.val() & self.walk.last_beat.val() & ((self.d_lane.q.val() + 1) == self.banks.runs.val());
        self.g_issue.next = self.phase.issuing.val() & self.g_on.q.val() & self.banks.free.val();
        self.end_group.next = (self.g_j.q.val() + 1) == self.f_len.q.val();
        self.more_blocks.next =
            (bit_cast::<32, 24>(self.g_run0.q.val()) + bit_cast::<32, 16>(self.f_width.q.val())) < bit_cast::<32, 24>(self.f_pl.q.val());
        self.last_line.next = ((self.g_l1.q.val() + 1) >= self.f_l1.q.val()) & ((self.g_l0.q.val() + 1) >= self.f_l0.q.val());
        self.last_block.next = self.end_group.val() & !self.more_blocks.val() & self.last_line.val();
        self.left.next = self.f_pl.q.val() - self.g_run0.q.val();
        // An instruction with runs of at least one byte has work after its wait.
        self.phase.start.next = self.start.val();
        self.phase.work_at_start.next = self.walk.nonempty_at_start.val() & (self.pattern.val().len != 0);
        self.phase.work.next = self.g_on.q.val();
        self.phase.last.next = false;
        self.phase.finish.next = self.d_last.val() & self.banks.last.val();
        self.walk.start.next = self.starting.val();
        self.walk.advance.next = self.d_on.val();
        self.ready.next = self.phase.ready.val();
        self.complete.next = self.phase.complete.val() | (self.d_last.val() & self.banks.last.val());
        // Each output is assigned once per evaluation (no default then override), so that an
        // event-driven simulator sees no glitch on it.
        if self.d_on.val() {
            self.dram_wr_addr.next = self.walk.beat_addr.val();
        } else {
            self.dram_wr_addr.next = 0.into();
        }
        self.acc_addr.next = self.g_row.q.val();
        self.param_entry.next = self.f_param.q.val() + bit_cast::<ADDR_BITS, 16>(self.g_j.q.val());
        self.rq_stage.next = self.f_stage.q.val();
        self.banks.r_bank.next = self.d_bank.q.val();
        self.banks.r_lane.next = self.walk.beat_offset.val();
        self.banks.r_pos.next = self.d_lane.q.val();
        for i in 0..self.dram_wr_en.len() {
            self.enable.next = self.d_on.val() & ((self.walk.beat_offset.val() + self.lane_num[i].val()) < self.f_len.q.val());
            self.dram_wr_en[i].next = self.enable.val();
            if self.enable.val() {
                self.dram_wr_data[i].next = self.banks.r_data[i].val();
            } else {
                self.dram_wr_data[i].next = 0.into();
            }
        }
        self.banks.write.next = self.p_valid.q.val();
        self.banks.w_bank.next = self.p_bank.q.val();
        self.banks.w_lane.next = self.p_j.q.val();
        self.banks.w_pos.next = 0.into();
        self.banks.w_end.next = self.cols_c.val();
        for c in 0..self.q.len() {
            self.banks.w_data[c].next = self.q[c].val();
        }
        self.banks.fill.next = self.p_valid.q.val() & self.p_end.q.val();
        self.banks.fill_bank.next = self.p_bank.q.val();
        self.banks.fill_runs.next = self.p_runs.q.val();
        self.banks.fill_last.next = self.p_last.q.val();
        self.banks.fill_outer.next = false;
        self.banks.drained.next = self.d_last.val();
        self.banks.gather_bank.next = self.g_bank.q.val();
        self.banks.clear.next = self.starting.val();
        self.p_valid.d.next = false;
        if self.starting.val() {
            self.f_acc.d.next = self.acc.val();
            self.f_rs.d.next = self.row_stride.val();
            self.f_lp.d.next = self.line_pitch.val();
            self.f_width.d.next = self.width.val();
            self.f_len.d.next = self.pattern.val().len;
            self.f_param.d.next = self.param.val();
            self.f_stage.d.next = self.stage.val();
            self.f_pl.d.next = self.pattern.val().count2;
            self.f_l0.d.next = self.pattern.val().count0;
            self.f_l1.d.next = self.pattern.val().count1;
            self.g_on.d.next = self.walk.nonempty_at_start.val() & (self.pattern.val().len != 0);
            self.g_bank.d.next = false;
            self.g_j.d.next = 0.into();
            self.g_row.d.next = self.acc.val();
            self.g_line.d.next = self.acc.val();
            self.g_block.d.next = 0.into();
            self.g_run0.d.next = 0.into();
            self.g_l0.d.next = 0.into();
            self.g_l1.d.next = 0.into();
            self.d_bank.d.next = false;
            self.d_lane.d.next = 0.into();
        }
        if self.d_on.val() {
            if self.d_last.val() {
                self.d_lane.d.next = 0.into();
                self.d_bank.d.next = !self.d_bank.q.val();
            } else if self.walk.last_beat.val() {
                self.d_lane.d.next = self.d_lane.q.val() + 1;
            }
        }
        if self.g_issue.val() {
            self.p_valid.d.next = true;
            self.p_bank.d.next = self.g_bank.q.val();
            self.p_j.d.next = self.g_j.q.val();
            self.p_end.d.next = self.end_group.val();
            if self.left.val() < bit_cast::<24, 16>(self.f_width.q.val()) {
                self.p_runs.d.next = self.left.val().get_bits::<16>(0);
            } else {
                self.p_runs.d.next = self.f_width.q.val();
            }
            self.p_last.d.next = self.last_block.val();
            if self.last_block.val() {
                self.g_on.d.next = false;
            }
            if !self.end_group.val() {
                self.g_j.d.next = self.g_j.q.val() + 1;
                self.g_row.d.next = self.g_row.q.val() + self.f_rs.q.val();
            } else {
                self.g_j.d.next = 0.into();
                self.g_bank.d.next = !self.g_bank.q.val();
                if self.more_blocks.val() {
                    self.g_run0.d.next = self.g_run0.q.val() + bit_cast::<24, 16>(self.f_width.q.val());
                    self.g_block.d.next = self.g_block.q.val() + 1;
                    self.g_row.d.next = self.g_line.q.val() + self.g_block.q.val() + 1;
                } else {
                    self.g_run0.d.next = 0.into();
                    self.g_block.d.next = 0.into();
                    self.g_line.d.next = self.g_line.q.val() + self.f_lp.q.val();
                    self.g_row.d.next = self.g_line.q.val() + self.f_lp.q.val();
                    if (self.g_l1.q.val() + 1) < self.f_l1.q.val() {
                        self.g_l1.d.next = self.g_l1.q.val() + 1;
                    } else {
                        self.g_l1.d.next = 0.into();
                        self.g_l0.d.next = self.g_l0.q.val() + 1;
                    }
                }
            }
        }
    }
}
