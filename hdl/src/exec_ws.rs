//! The weight-stationary exec engine: activation and weight scratchpads, band unit, array,
//! accumulator read-modify-write, and the control that runs one `MatmulWs` after another
//! on the timing of docs/ARCHITECTURE.md sections 5 and 9.
//!
//! ```text
//!  start + fields --> control --(word addr)--> act SRAM lanes --> a_in ------+
//!                       |  \--(weight addr)--> wgt SRAM lanes -+-> band unit  |
//!                       |                                      +-> w_in ----> WS array
//!                       +--(acc row, valid, accumulate) -- delay rows+cols-1 -+   |
//!                                                  acc SRAM read --> + out <--+
//!                                                  acc SRAM write <--+ (forwarded)
//!  complete <-- delay rows+cols+1 <-- last busy cycle
//! ```
//!
//! The `host_*` ports write the scratchpads (in the accelerator, the load unit's writes)
//! and read the accumulator's replica (the store unit's reads); the engine tests drive
//! them directly.

use crate::array::WsArray;
use crate::band::BandUnit;
use crate::csc::CscExpander;
use crate::delay::{Delay, RamDelay};
use crate::fields::MatmulFields;
use crate::memories::Memories;
use crate::pe::GROUP_LANES;
use crate::sram::ADDR_BITS;
use crate::wordseq::WordSeq;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// Bits of a drain line entry: from a word's issue to its column sums' arrival, the
/// accumulator issue (bit 0 valid, bit 1 accumulate or overwrite), the completion (bit 2)
/// and the row address (bits 3 on).
const DRAIN_BITS: usize = 3 + ADDR_BITS;

/// The WS engine for a `rows x cols` array, without memories: it reads the scratchpads and
/// drives the accumulator through its ports.
#[derive(LogicBlock)]
pub struct WsEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// An instruction completes: its effects are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
    /// Activation word to read (data in the next cycle).
    pub act_raddr: Signal<Out, Addr>,
    /// The activation word read, lane `k`.
    pub act_rdata: Vec<Signal<In, Signed<8>>>,
    /// Read word `act_raddr` of every bank (a sparse stream).
    pub act_wide: Signal<Out, Bit>,
    /// The wide read's words, bank `e` on lanes `e * rows..`.
    pub act_wide_data: Vec<Signal<In, Signed<8>>>,
    /// Weight word to read (data in the next cycle).
    pub wgt_raddr: Signal<Out, Addr>,
    /// The weight word read, lane `j`.
    pub wgt_rdata: Vec<Signal<In, Signed<8>>>,
    /// An accumulator row is issued.
    pub acc_issue: Signal<Out, Bit>,
    /// Its row.
    pub acc_addr: Signal<Out, Addr>,
    /// Add to its old value.
    pub acc_accumulate: Signal<Out, Bit>,
    /// The column sums for it, one cycle after the issue.
    pub acc_input: Vec<Signal<Out, Signed<32>>>,
    band: BandUnit,
    array: WsArray,
    csc: CscExpander,
    // Whether the instance expands CSC tiles; without, the field is masked to 0 and
    // synthesis drops the expander.
    cscs: Constant<Bit>,
    mask_words: Constant<Bits<16>>,
    f_csc: DFF<Bit>,
    f_end: DFF<Bits<16>>,
    cur_csc: Signal<Local, Bit>,
    cur_end: Signal<Local, Bits<16>>,
    wr_csc_mask: DFF<Bit>,
    wr_csc_value: DFF<Bit>,
    wr_clear: DFF<Bit>,
    rows: Constant<Bits<16>>,
    last_phase: Constant<Bits<3>>,
    // The formats this instance runs (bit 0: 2:4, bit 1: 1:4); a dense-only instance
    // masks the field to 0 and synthesis drops the sparse logic.
    formats: Constant<Bits<2>>,
    packs: Constant<Bit>,
    two: Constant<Bits<2>>,
    f_int4: DFF<Bit>,
    wr_int4: DFF<Bit>,
    a_int4: DFF<Bit>,
    cur_int4: Signal<Local, Bit>,
    // Whether the instance runs int4 x int4 (quad tiles); without, `act4` is masked to 0.
    quads: Constant<Bit>,
    rows2: Constant<Bits<16>>,
    f_act4: DFF<Bit>,
    a_act4: DFF<Bit>,
    cur_act4: Signal<Local, Bit>,
    // Loop bounds of the lane routing: each is `rows` when the instance has that routing,
    // else 0 (1-lane dense, 4-lane dense, 2:4 and 1:4).
    _route_plain: usize,
    _route_dense: usize,
    _route_two: usize,
    _route_one: usize,
    seq: WordSeq,
    acc_next: DFF<Addr>,
    f_accumulate: DFF<Bit>,
    f_sparse: DFF<Bits<2>>,
    // Sparse preload: phase within a group of five words (0: metadata) and each column's
    // metadata byte, shifted two bits per value word.
    r_phase: DFF<Bits<3>>,
    meta: Vec<DFF<Bits<8>>>,
    wr_meta: DFF<Bit>,
    wr_sparse: DFF<Bit>,
    a_mode: DFF<Bits<2>>,
    /// `seq.busy | r_on`, registered from the values they load, so the controller's issue
    /// decision starts at a register of this engine rather than at its logic.
    busy_r: DFF<Bit>,
    // Preload state (the next row to issue).
    r_on: DFF<Bit>,
    r_row: DFF<Bits<16>>,
    /// `r_row + 1`, kept beside it so the preload's end test is one comparison.
    r_row1: DFF<Bits<16>>,
    r_addr: DFF<Addr>,
    f_band: DFF<Bit>,
    f_preload: DFF<Bit>,
    f_stride: DFF<Bits<8>>,
    f_taps: DFF<Bits<16>>,
    f_width: DFF<Bits<16>>,
    pending_flip: DFF<Bit>,
    // One cycle behind the issue: aligned with the scratchpads' read data.
    a_v: DFF<Bit>,
    a_bubble: DFF<Bit>,
    a_flip: DFF<Bit>,
    wr_v: DFF<Bit>,
    wr_row: DFF<Bits<8>>,
    // Accumulator pipeline: the issue lines and the first `drain` cycles of the
    // completion line in one block RAM line (`drain_ram`, when the array's latency is at
    // least 2), or all in registers.
    drain_ram: Vec<RamDelay<DRAIN_BITS>>,
    d_valid: Delay<Bit>,
    d_addr: Delay<Addr>,
    d_accum: Delay<Bit>,
    done_line: Delay<Bit>,
    done_in: Signal<Local, Bit>,
    // What enters the block RAM line, and what leaves it.
    drain_entry: Signal<Local, Bits<DRAIN_BITS>>,
    drained: Signal<Local, Bits<DRAIN_BITS>>,
    // Bits of the accumulator's row addresses the drain line keeps.
    _acc_bits: usize,
    // Combinational values of this cycle.
    cur_acc: Signal<Local, Addr>,
    cur_accum: Signal<Local, Bit>,
    issue_w: Signal<Local, Bit>,
    issue_bubble: Signal<Local, Bit>,
    issue_flip: Signal<Local, Bit>,
    issue_r: Signal<Local, Bit>,
    cur_row: Signal<Local, Bits<16>>,
    /// `row_inc + 1`, from the start's constant or the register's increment, chosen by
    /// the start after the adder rather than in front of it.
    row_inc2: Signal<Local, Bits<16>>,
    cur_waddr: Signal<Local, Addr>,
    cur_sparse: Signal<Local, Bits<2>>,
    cur_phase: Signal<Local, Bits<3>>,
    issue_meta: Signal<Local, Bit>,
    /// The start cycle's row count, from the field ports.
    s_end: Signal<Local, Bits<16>>,
    /// The next accumulator row, weight address and preload row, each both ways (from the
    /// fields and from the registers) before `start` chooses.
    acc_inc: Signal<Local, Addr>,
    row_inc: Signal<Local, Bits<16>>,
    /// The weight address after the start's first read and after a running read, each
    /// settled (band or not) before `start` chooses between them.
    start_waddr_next: Signal<Local, Addr>,
    run_waddr_next: Signal<Local, Addr>,
    active: Signal<Local, Bit>,
    r_on_next: Signal<Local, Bit>,
    /// `r_on_next` and the last busy cycle, if `start` is high this cycle and if it is low,
    /// so that `start`, late from the controller, only chooses between them.
    r_on_at_start: Signal<Local, Bit>,
    r_on_running: Signal<Local, Bit>,
    last_at_start: Signal<Local, Bit>,
    last_running: Signal<Local, Bit>,
}

impl WsEngine {
    /// An engine for `rows x cols` PEs reading an activation scratchpad of `act_banks` banks:
    /// 1 (dense only), 2 (also 2:4) or 4 (also 2:4 and 1:4).
    pub fn new(rows: usize, cols: usize, act_banks: usize) -> Self {
        assert!(matches!(act_banks, 1 | 2 | 4), "{act_banks} activation banks");
        assert!(act_banks == 1 || rows.is_multiple_of(GROUP_LANES), "a sparse array needs rows in fours, not {rows}");
        let lanes = if act_banks > 1 { GROUP_LANES } else { 1 };
        let latency = rows + cols + 1;
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            act_raddr: Default::default(),
            act_rdata: (0..rows).map(|_| Default::default()).collect(),
            act_wide: Default::default(),
            act_wide_data: (0..rows * act_banks).map(|_| Default::default()).collect(),
            wgt_raddr: Default::default(),
            wgt_rdata: (0..cols).map(|_| Default::default()).collect(),
            acc_issue: Default::default(),
            acc_addr: Default::default(),
            acc_accumulate: Default::default(),
            acc_input: (0..cols).map(|_| Default::default()).collect(),
            band: BandUnit::new(cols),
            array: WsArray::new(rows, cols, lanes, false),
            csc: CscExpander::new(rows, cols),
            cscs: Constant::new(false),
            mask_words: Constant::new((systole_core::isa::csc_mask_words(rows) as u64).into()),
            f_csc: Default::default(),
            f_end: Default::default(),
            cur_csc: Default::default(),
            cur_end: Default::default(),
            wr_csc_mask: Default::default(),
            wr_csc_value: Default::default(),
            wr_clear: Default::default(),
            rows: Constant::new((rows as u64).into()),
            last_phase: Constant::new(4u64.into()),
            formats: Constant::new(
                match act_banks {
                    1 => 0u64,
                    2 => 1,
                    _ => 3,
                }
                .into(),
            ),
            packs: Constant::new(act_banks > 1),
            two: Constant::new(2u64.into()),
            f_int4: Default::default(),
            wr_int4: Default::default(),
            a_int4: Default::default(),
            cur_int4: Default::default(),
            quads: Constant::new(false),
            rows2: Constant::new(((2 * rows) as u64).into()),
            f_act4: Default::default(),
            a_act4: Default::default(),
            cur_act4: Default::default(),
            _route_plain: if lanes == 1 { rows } else { 0 },
            _route_dense: if lanes > 1 { rows } else { 0 },
            _route_two: if act_banks >= 2 { rows } else { 0 },
            _route_one: if act_banks == 4 { rows } else { 0 },
            seq: WordSeq::default(),
            acc_next: Default::default(),
            f_accumulate: Default::default(),
            f_sparse: Default::default(),
            r_phase: Default::default(),
            meta: (0..cols).map(|_| Default::default()).collect(),
            wr_meta: Default::default(),
            wr_sparse: Default::default(),
            a_mode: Default::default(),
            busy_r: Default::default(),
            r_on: Default::default(),
            r_row: Default::default(),
            r_row1: Default::default(),
            r_addr: Default::default(),
            f_band: Default::default(),
            f_preload: Default::default(),
            f_stride: Default::default(),
            f_taps: Default::default(),
            f_width: Default::default(),
            pending_flip: Default::default(),
            a_v: Default::default(),
            a_bubble: Default::default(),
            a_flip: Default::default(),
            wr_v: Default::default(),
            wr_row: Default::default(),
            drain_ram: vec![],
            d_valid: Delay::new(rows + cols - 1),
            d_addr: Delay::new(rows + cols - 1),
            d_accum: Delay::new(rows + cols - 1),
            done_line: Delay::new(latency),
            done_in: Default::default(),
            drain_entry: Default::default(),
            drained: Default::default(),
            _acc_bits: ADDR_BITS,
            cur_acc: Default::default(),
            cur_accum: Default::default(),
            issue_w: Default::default(),
            issue_bubble: Default::default(),
            issue_flip: Default::default(),
            issue_r: Default::default(),
            cur_row: Default::default(),
            row_inc2: Default::default(),
            cur_waddr: Default::default(),
            cur_sparse: Default::default(),
            cur_phase: Default::default(),
            issue_meta: Default::default(),
            s_end: Default::default(),
            acc_inc: Default::default(),
            start_waddr_next: Default::default(),
            run_waddr_next: Default::default(),
            row_inc: Default::default(),
            active: Default::default(),
            r_on_next: Default::default(),
            r_on_at_start: Default::default(),
            r_on_running: Default::default(),
            last_at_start: Default::default(),
            last_running: Default::default(),
        }
    }
}

impl WsEngine {
    /// The engine with the CSC expander in use (`ArchConfig::csc_weights`) or masked off.
    pub fn with_csc(mut self, csc: bool) -> Self {
        self.cscs = Constant::new(csc);
        self
    }

    /// The engine with `stages` product registers in every PE (`ArchConfig::pe_stages`):
    /// the column sums, their accumulator writes and the completion come that much later.
    pub fn with_pe_stages(mut self, stages: usize) -> Self {
        let acc_stages = self.acc_stages();
        self.array.set_pe_stages(stages);
        self.set_lines(acc_stages);
        self
    }

    /// The engine with `stages` registers on the array's edge (`ArchConfig::edge_stages`):
    /// the column sums, their accumulator writes and the completion come that much later.
    /// The weight words take theirs before the band unit, straight from the scratchpad.
    pub fn with_edge_stages(mut self, stages: usize) -> Self {
        let acc_stages = self.acc_stages();
        self.array.set_edge_stages(stages, 0);
        self.band = BandUnit::new(self.array.cols()).with_word_stages(stages);
        self.set_lines(acc_stages);
        self
    }

    /// The engine in front of an accumulator with `stages` pipeline stages
    /// (`ArchConfig::acc_stages`): its writes, and so the completion, come that much later.
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.set_lines(stages);
        self
    }

    /// The engine with its array's weight bus broadcast down each column
    /// (`ArchConfig::weight_broadcast`, [`WsArray::set_weight_broadcast`]); no cycle changes.
    pub fn with_weight_broadcast(mut self, on: bool) -> Self {
        self.array.set_weight_broadcast(on);
        self
    }

    /// The engine for a scratchpad whose read gives row `k` its activation `k` cycles late
    /// (`ArchConfig::staggered_act_reads`): its array keeps no activation skew registers
    /// ([`WsArray::set_act_skewed_before`]); no cycle changes.
    pub fn with_act_skewed_before(mut self, on: bool) -> Self {
        self.array.set_act_skewed_before(on);
        self
    }

    /// The accumulator's pipeline stages the completion line allows for.
    fn acc_stages(&self) -> usize {
        let in_ram: usize = self.drain_ram.iter().map(RamDelay::depth).sum();
        self.done_line.depth() + in_ram - self.array.latency() - 2
    }

    /// Sizes the accumulator issue lines to the array's latency and the completion line to
    /// it, the read, the write and `acc_stages`: the issue lines and the completion's
    /// first `drain` cycles in one [`RamDelay`] when `drain` is at least 2.
    fn set_lines(&mut self, acc_stages: usize) {
        let drain = self.array.latency();
        let in_ram = if drain >= 2 { drain } else { 0 };
        self.drain_ram = (in_ram > 0).then(|| RamDelay::new(drain).keeping(3 + self._acc_bits)).into_iter().collect();
        self.d_valid = Delay::new(drain - in_ram);
        self.d_addr = Delay::new(drain - in_ram);
        self.d_accum = Delay::new(drain - in_ram);
        self.done_line = Delay::new(drain - in_ram + 2 + acc_stages);
    }

    /// The engine for an accumulator of `rows` rows, whose row addresses the drain line
    /// keeps only as many bits of as the accumulator decodes.
    pub fn with_acc_rows(mut self, rows: usize) -> Self {
        self._acc_bits = crate::sram::index_bits(rows);
        let acc_stages = self.acc_stages();
        self.set_lines(acc_stages);
        self
    }

    /// The engine with its word sequencer's counters `bits` wide, for a controller that
    /// keeps that many bits of a matmul's counts (`controller::matmul_count_bits`).
    pub fn with_count_bits(mut self, bits: usize) -> Self {
        self.seq = std::mem::take(&mut self.seq).with_count_bits(bits);
        self
    }

    /// The engine with int4 x int4 PEs (`ArchConfig::int4_activations`, which needs four
    /// activation banks) or without.
    pub fn with_int4x4(mut self, on: bool) -> Self {
        let (rows, cols, lanes) = (self.array.rows(), self.array.cols(), self.array.lanes());
        assert!(!on || self.act_wide_data.len() == 4 * rows, "int4 x int4 needs four activation banks");
        let (stages, edge, broadcast) = (self.array.pe_stages(), self.array.edge_stages(), self.array.weight_broadcast());
        let skewed = self.array.act_skewed_before();
        self.array = WsArray::new(rows, cols, lanes, on);
        self.array.set_pe_stages(stages);
        self.array.set_edge_stages(edge.0, edge.1);
        self.array.set_weight_broadcast(broadcast);
        self.array.set_act_skewed_before(skewed);
        self.quads = Constant::new(on);
        self
    }
}

impl Logic for WsEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            acc_next,
            f_accumulate,
            busy_r,
            r_on,
            r_row,
            r_row1,
            r_addr,
            f_band,
            f_preload,
            f_stride,
            f_taps,
            f_width,
            pending_flip,
            a_v,
            a_bubble,
            a_flip,
            wr_v,
            wr_row,
            f_sparse,
            r_phase,
            wr_meta,
            wr_sparse,
            a_mode,
            f_int4,
            wr_int4,
            a_int4,
            f_act4,
            a_act4,
            f_csc,
            f_end,
            wr_csc_mask,
            wr_csc_value,
            wr_clear
        );
        self.d_valid.clock.next = self.clock.val();
        self.d_addr.clock.next = self.clock.val();
        self.d_accum.clock.next = self.clock.val();
        self.done_line.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();
        self.csc.clock.next = self.clock.val();

        // Each branch of `start` computes the preload's continuation and the next counter
        // values from its own operands: the field ports in the start cycle (row 0, phase 0,
        // the row count `s_end`), else the registers. Both are ready before `start`, which
        // arrives late from the controller's issue decision, selects between them.
        if self.fields.val().csc_valid & self.cscs.val() {
            self.s_end.next = self.fields.val().csc_values + self.mask_words.val();
        } else if self.fields.val().act4 & self.quads.val() {
            self.s_end.next = self.rows2.val();
        } else {
            self.s_end.next = self.rows.val();
        }

        // Issue: from the field ports in the start cycle, else from the registers.
        self.seq.clock.next = self.clock.val();
        self.seq.start.next = self.start.val();
        self.seq.first_addr.next = self.fields.val().a_start;
        self.seq.inner_count.next = self.fields.val().a_inner_count;
        self.seq.inner_stride.next = self.fields.val().a_inner_stride;
        self.seq.outer_count.next = self.fields.val().a_outer_count;
        self.seq.outer_stride.next = self.fields.val().a_outer_stride;
        self.seq.enable.next = true;
        self.ready.next = !self.busy_r.q.val();
        self.active.next = self.start.val() | self.seq.busy.val() | self.r_on.q.val();
        self.r_on_at_start.next =
            self.fields.val().preload_valid & ((self.fields.val().sparse & self.formats.val()).any() | ((self.s_end.val() >> 1) != 0));
        self.r_on_running.next = self.r_on.q.val()
            & ((self.f_sparse.q.val() & self.formats.val()).any() & !self.r_phase.q.val().any()
                | (self.r_row1.q.val() < self.f_end.q.val()));
        self.last_at_start.next = !self.seq.more_at_start.val() & !self.r_on_at_start.val();
        self.last_running.next = (self.seq.busy.val() | self.r_on.q.val()) & !self.seq.more_running.val() & !self.r_on_running.val();
        if self.start.val() {
            self.r_on_next.next = self.r_on_at_start.val();
            self.acc_inc.next = self.fields.val().acc + 1;
            self.row_inc.next = 1.into();
            self.row_inc2.next = 2.into();
            self.cur_acc.next = self.fields.val().acc;
            self.cur_accum.next = self.fields.val().accumulate;
            self.issue_r.next = self.fields.val().preload_valid;
            self.cur_row.next = 0.into();
            self.cur_waddr.next = self.fields.val().preload;
            self.cur_sparse.next = self.fields.val().sparse & self.formats.val();
            self.cur_phase.next = 0.into();
            self.f_sparse.d.next = self.fields.val().sparse & self.formats.val();
            self.cur_act4.next = self.fields.val().act4 & self.quads.val();
            self.f_act4.d.next = self.fields.val().act4 & self.quads.val();
            self.cur_int4.next = self.fields.val().int4 & self.packs.val() & !self.cur_act4.val();
            self.f_int4.d.next = self.fields.val().int4 & self.packs.val() & !self.cur_act4.val();
            self.cur_csc.next = self.fields.val().csc_valid & self.cscs.val();
            self.f_csc.d.next = self.fields.val().csc_valid & self.cscs.val();
            self.cur_end.next = self.s_end.val();
            self.f_end.d.next = self.cur_end.val();
            self.f_accumulate.d.next = self.fields.val().accumulate;
            self.f_band.d.next = self.fields.val().band_valid;
            self.f_preload.d.next = self.fields.val().preload_valid;
            self.f_stride.d.next = self.fields.val().band_stride;
            self.f_taps.d.next = self.fields.val().band_taps;
            self.f_width.d.next = self.fields.val().band_width;
        } else {
            self.r_on_next.next = self.r_on_running.val();
            self.acc_inc.next = self.acc_next.q.val() + 1;
            self.row_inc.next = self.r_row1.q.val();
            self.row_inc2.next = self.r_row1.q.val() + 1;
            self.cur_acc.next = self.acc_next.q.val();
            self.cur_accum.next = self.f_accumulate.q.val();
            self.issue_r.next = self.r_on.q.val();
            self.cur_row.next = self.r_row.q.val();
            self.cur_waddr.next = self.r_addr.q.val();
            // The masks again: a register loaded only with masked values still needs a
            // proof to be a constant, which synthesis does not always find.
            self.cur_sparse.next = self.f_sparse.q.val() & self.formats.val();
            self.cur_phase.next = self.r_phase.q.val();
            self.cur_int4.next = self.f_int4.q.val() & self.packs.val();
            self.cur_act4.next = self.f_act4.q.val() & self.quads.val();
            self.cur_csc.next = self.f_csc.q.val() & self.cscs.val();
            self.cur_end.next = self.f_end.q.val();
        }
        self.issue_w.next = self.seq.issue.val();
        // A flip rides the first word (or a bubble when there is none) after a preload.
        self.issue_flip.next = self.start.val() & self.pending_flip.q.val();
        self.issue_bubble.next = self.start.val() & self.pending_flip.q.val() & !self.seq.pending.val();
        if self.issue_flip.val() {
            self.pending_flip.d.next = false;
        }
        // The next word's accumulator row, loaded in every start cycle and every running
        // one: the same as loading it only with a word (a start without words leaves a row
        // that no word reads), without the start's word test before the register's enable.
        if self.start.val() | self.seq.busy.val() {
            self.acc_next.d.next = self.acc_inc.val();
        }

        // Advance the preload. A sparse tile reads a metadata word before every four rows.
        self.issue_meta.next = self.issue_r.val() & self.cur_sparse.val().any() & !self.cur_phase.val().any();
        // A band rereads its word; otherwise the address steps. Both ways are settled
        // before `start`, late from the controller, chooses one.
        if self.fields.val().band_valid {
            self.start_waddr_next.next = self.fields.val().preload;
        } else {
            self.start_waddr_next.next = self.fields.val().preload + 1;
        }
        if self.f_band.q.val() {
            self.run_waddr_next.next = self.r_addr.q.val();
        } else {
            self.run_waddr_next.next = self.r_addr.q.val() + 1;
        }
        if self.start.val() {
            if self.fields.val().preload_valid {
                self.r_addr.d.next = self.start_waddr_next.val();
            }
        } else if self.r_on.q.val() {
            self.r_addr.d.next = self.run_waddr_next.val();
        }
        if self.issue_r.val() {
            if self.issue_meta.val() {
                self.r_row.d.next = self.cur_row.val();
                self.r_row1.d.next = self.row_inc.val();
                self.r_phase.d.next = 1.into();
            } else {
                self.r_row.d.next = self.row_inc.val();
                self.r_row1.d.next = self.row_inc2.val();
                if self.cur_phase.val() == self.last_phase.val() {
                    self.r_phase.d.next = 0.into();
                } else {
                    self.r_phase.d.next = self.cur_phase.val() + 1;
                }
            }
        }
        self.r_on.d.next = self.r_on_next.val();
        if self.start.val() {
            self.busy_r.d.next = self.seq.more_at_start.val() | self.r_on_at_start.val();
        } else {
            self.busy_r.d.next = self.seq.more_running.val() | self.r_on_running.val();
        }

        // The last busy cycle: completion enters the latency line, a preload arms a flip.
        if self.start.val() {
            self.done_in.next = self.last_at_start.val();
            if self.last_at_start.val() & self.fields.val().preload_valid {
                self.pending_flip.d.next = true;
            }
        } else {
            self.done_in.next = self.last_running.val();
            if self.last_running.val() & self.f_preload.q.val() {
                self.pending_flip.d.next = true;
            }
        }
        self.complete.next = self.done_line.data_out.val();

        // Scratchpad reads.
        self.act_raddr.next = self.seq.addr.val();
        self.act_wide.next = self.cur_sparse.val().any() | self.cur_int4.val() | self.cur_act4.val();
        self.wgt_raddr.next = self.cur_waddr.val();
        for j in 0..self.wgt_rdata.len() {
            self.band.word[j].next = self.wgt_rdata[j].val();
        }

        // One cycle later the read data meets the array.
        self.a_v.d.next = self.issue_w.val();
        self.a_bubble.d.next = self.issue_bubble.val();
        self.a_flip.d.next = self.issue_flip.val();
        self.wr_v.d.next = self.issue_r.val() & !self.issue_meta.val() & !self.cur_csc.val();
        // A CSC preload: its first read also clears the shadow tile; mask words, then
        // value words.
        self.wr_clear.d.next = self.issue_r.val() & self.cur_csc.val() & (self.cur_row.val() == 0);
        self.wr_csc_mask.d.next = self.issue_r.val() & self.cur_csc.val() & (self.cur_row.val() < self.mask_words.val());
        self.wr_csc_value.d.next = self.issue_r.val() & self.cur_csc.val() & (self.cur_row.val() >= self.mask_words.val());
        self.wr_meta.d.next = self.issue_meta.val();
        self.wr_sparse.d.next = self.cur_sparse.val().any();
        // A quad tile sends two words per PE row.
        if self.cur_act4.val() {
            self.wr_row.d.next = self.cur_row.val().get_bits::<8>(1);
        } else {
            self.wr_row.d.next = self.cur_row.val().get_bits::<8>(0);
        }
        self.a_mode.d.next = self.cur_sparse.val();
        self.a_int4.d.next = self.cur_int4.val();
        self.wr_int4.d.next = self.cur_int4.val();
        self.a_act4.d.next = self.cur_act4.val();
        if self.a_act4.q.val() {
            self.array.packed_in.next = 2.into();
        } else if self.a_int4.q.val() {
            self.array.packed_in.next = 1.into();
        } else {
            self.array.packed_in.next = 0.into();
        }
        // Lane routing (docs/ARCHITECTURE.md section 3): row `k` gets lanes `4g..4g+4` of the
        // K-step, `g = k / N`; dense, `g = k / 4` of the word read (the PE's index is its
        // row's position in the group, so it takes lane `k`).
        // A plain lane goes from the scratchpad's read straight into the array: a slot
        // without a word sums whatever it reads, and its column sums are never written
        // (the accumulator writes only the slots `d_valid` marks).
        for k in 0..self._route_plain {
            self.array.a_in[k].next = self.act_rdata[k].val();
        }
        for k in 0..self._route_dense {
            for b in 0..4 {
                self.array.a_in[k * 4 + b].next = self.act_rdata[4 * (k / 4) + b].val();
            }
        }
        for k in 0..self._route_two {
            for b in 0..4 {
                if self.a_mode.q.val().get_bit(0) | self.a_int4.q.val() {
                    self.array.a_in[k * 4 + b].next = self.act_wide_data[4 * (k / 2) + b].val();
                }
            }
        }
        for k in 0..self._route_one {
            for b in 0..4 {
                if self.a_mode.q.val().get_bit(1) | self.a_act4.q.val() {
                    self.array.a_in[k * 4 + b].next = self.act_wide_data[4 * k + b].val();
                }
            }
        }
        for k in 0..self._route_dense {
            for b in 0..4 {
                if !self.a_v.q.val() {
                    self.array.a_in[k * 4 + b].next = 0.into();
                }
            }
        }
        self.array.flip_in.next = self.a_flip.q.val();
        // The band unit chooses the lanes of the word read now for the next cycle: from
        // the ports on a start (the first row, 0), else from the latched fields and the
        // row register, as `wr_row` gets it.
        self.band.clock.next = self.clock.val();
        self.band.start.next = self.start.val();
        self.band.start_banded.next = self.fields.val().band_valid;
        self.band.start_stride.next = self.fields.val().band_stride;
        self.band.start_taps.next = self.fields.val().band_taps;
        self.band.start_width.next = self.fields.val().band_width;
        self.band.banded.next = self.f_band.q.val();
        if self.f_act4.q.val() & self.quads.val() {
            self.band.row.next = self.r_row.q.val().get_bits::<8>(1);
        } else {
            self.band.row.next = self.r_row.q.val().get_bits::<8>(0);
        }
        self.band.stride.next = self.f_stride.q.val();
        self.band.taps.next = self.f_taps.q.val();
        self.band.width.next = self.f_width.q.val();
        for j in 0..self.wgt_rdata.len() {
            self.array.w_in[j].next = self.band.out[j].val();
            self.meta[j].clock.next = self.clock.val();
            self.meta[j].d.next = self.meta[j].q.val();
            if self.wr_sparse.q.val() {
                self.array.w_index_in[j].next = self.meta[j].q.val().get_bits::<2>(0);
            } else if self.wr_int4.q.val() {
                // Row `k` of a packed tile takes lanes `2(k % 2)` and `2(k % 2) + 1` of its group.
                if self.wr_row.q.val().get_bit(0) {
                    self.array.w_index_in[j].next = self.two.val();
                } else {
                    self.array.w_index_in[j].next = 0.into();
                }
            } else if self.wr_csc_value.q.val() {
                self.array.w_index_in[j].next = self.csc.row[j].val().get_bits::<2>(0);
            } else {
                self.array.w_index_in[j].next = self.wr_row.q.val().get_bits::<2>(0);
            }
            if self.wr_meta.q.val() {
                self.meta[j].d.next = unsigned_cast::<8>(self.wgt_rdata[j].val());
            }
            if self.wr_v.q.val() & self.wr_sparse.q.val() {
                self.meta[j].d.next = self.meta[j].q.val() >> 2;
            }
        }
        self.csc.capture.next = self.wr_csc_mask.q.val();
        self.csc.consume.next = self.wr_csc_value.q.val();
        for j in 0..self.wgt_rdata.len() {
            self.csc.data[j].next = self.wgt_rdata[j].val();
            self.array.w_valid_in[j].next = self.wr_v.q.val() | self.csc.valid[j].val();
            if self.wr_csc_value.q.val() {
                self.array.w_row_in[j].next = self.csc.row[j].val();
            } else {
                self.array.w_row_in[j].next = self.wr_row.q.val();
            }
        }
        self.array.w_clear_in.next = self.wr_clear.q.val();

        // Accumulator: a row is issued rows+cols-1 cycles after its word, as the array's
        // column sums arrive.
        self.d_valid.data_in.next = self.issue_w.val();
        self.d_addr.data_in.next = self.cur_acc.val();
        self.d_accum.data_in.next = self.cur_accum.val();
        self.done_line.data_in.next = self.done_in.val();
        self.acc_issue.next = self.d_valid.data_out.val();
        self.acc_addr.next = self.d_addr.data_out.val();
        self.acc_accumulate.next = self.d_accum.data_out.val();
        self.drain_entry.next = (bit_cast::<DRAIN_BITS, ADDR_BITS>(self.cur_acc.val()) << 3)
            | bit_cast::<DRAIN_BITS, 1>(self.issue_w.val().into())
            | (bit_cast::<DRAIN_BITS, 1>(self.cur_accum.val().into()) << 1)
            | (bit_cast::<DRAIN_BITS, 1>(self.done_in.val().into()) << 2);
        self.drained.next = self.drain_entry.val();
        for k in 0..self.drain_ram.len() {
            self.drain_ram[k].clock.next = self.clock.val();
            self.drain_ram[k].data_in.next = self.drain_entry.val();
            self.drained.next = self.drain_ram[k].data_out.val();
            self.acc_issue.next = self.drained.val().get_bit(0);
            self.acc_accumulate.next = self.drained.val().get_bit(1);
            self.done_line.data_in.next = self.drained.val().get_bit(2);
            self.acc_addr.next = self.drained.val().get_bits::<ADDR_BITS>(3);
        }
        for j in 0..self.acc_input.len() {
            self.acc_input[j].next = self.array.out[j].val();
        }
    }
}

/// The WS exec engine with its own memories: what a WS instance's exec unit holds, and what
/// the engine tests drive. The `host_*` ports write the scratchpads (in the accelerator,
/// the load unit's writes) and read the accumulator's replica (the store unit's reads).
#[derive(LogicBlock)]
pub struct ExecWs {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// An instruction completes: its effects are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
    /// Writer (load engines or test host): write lane `k` of `host_act_data` to activation
    /// word `host_act_addr`.
    pub host_act_we: Vec<Signal<In, Bit>>,
    /// Host: activation word address.
    pub host_act_addr: Signal<In, Addr>,
    /// Host: activation word, lane `k`.
    pub host_act_data: Vec<Signal<In, Signed<8>>>,
    /// Writer: write lane `j` of `host_wgt_data` to weight word `host_wgt_addr`.
    pub host_wgt_we: Vec<Signal<In, Bit>>,
    /// Host: weight word address.
    pub host_wgt_addr: Signal<In, Addr>,
    /// Host: weight word, lane `j`.
    pub host_wgt_data: Vec<Signal<In, Signed<8>>>,
    /// Host: accumulator row to read (data in the next cycle).
    pub host_acc_addr: Signal<In, Addr>,
    /// Host: accumulator row read in the previous cycle, lane `j`.
    pub host_acc_data: Vec<Signal<Out, Signed<32>>>,
    /// With a vector unit ([`crate::vector::VectorEngine`] beside the engine, one each,
    /// else none): it reads the activation scratchpad in this cycle...
    pub vec_act_on: Vec<Signal<In, Bit>>,
    /// ... at this word...
    pub vec_act_raddr: Vec<Signal<In, Addr>>,
    /// ... whose lanes come a cycle later (`rows` with a vector unit)...
    pub vec_act_rdata: Vec<Signal<Out, Signed<8>>>,
    /// ... and it issues an accumulator row...
    pub vec_acc_issue: Vec<Signal<In, Bit>>,
    /// ... this one...
    pub vec_acc_addr: Vec<Signal<In, Addr>>,
    /// ... with these values a cycle later (`cols` with a vector unit).
    pub vec_acc_input: Vec<Signal<In, Signed<32>>>,
    engine: WsEngine,
    mem: Memories,
}

impl ExecWs {
    /// An engine for `rows x cols` PEs with the given scratchpad and accumulator depths, the
    /// activation scratchpad in `act_banks` banks (see [`WsEngine::new`]).
    pub fn new(rows: usize, cols: usize, act_words: usize, act_banks: usize, wgt_words: usize, acc_rows: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            host_act_we: (0..rows).map(|_| Default::default()).collect(),
            host_act_addr: Default::default(),
            host_act_data: (0..rows).map(|_| Default::default()).collect(),
            host_wgt_we: (0..cols).map(|_| Default::default()).collect(),
            host_wgt_addr: Default::default(),
            host_wgt_data: (0..cols).map(|_| Default::default()).collect(),
            host_acc_addr: Default::default(),
            host_acc_data: (0..cols).map(|_| Default::default()).collect(),
            vec_act_on: vec![],
            vec_act_raddr: vec![],
            vec_act_rdata: vec![],
            vec_acc_issue: vec![],
            vec_acc_addr: vec![],
            vec_acc_input: vec![],
            engine: WsEngine::new(rows, cols, act_banks).with_acc_rows(acc_rows),
            mem: Memories::new(rows, cols, act_words, act_banks, wgt_words, acc_rows),
        }
    }

    /// The engine with the ports of a vector unit beside it, which take the memories'
    /// engine ports while it runs ([`Memories::with_vector_ports`]).
    pub fn with_vector_ports(mut self) -> Self {
        let (rows, cols) = (self.host_act_data.len(), self.host_acc_data.len());
        self.vec_act_on = crate::wiring::signals(1);
        self.vec_act_raddr = crate::wiring::signals(1);
        self.vec_act_rdata = crate::wiring::signals(rows);
        self.vec_acc_issue = crate::wiring::signals(1);
        self.vec_acc_addr = crate::wiring::signals(1);
        self.vec_acc_input = crate::wiring::signals(cols);
        self.mem = std::mem::replace(&mut self.mem, Memories::new(1, 1, 1, 1, 1, 1)).with_vector_ports();
        self
    }

    /// The engine with CSC preloads (`ArchConfig::csc_weights`) or without.
    pub fn with_csc(mut self, csc: bool) -> Self {
        self.engine = self.engine.with_csc(csc);
        self
    }

    /// The unit with `stages` accumulator pipeline stages (see
    /// [`WsEngine::with_acc_stages`]).
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.engine = self.engine.with_acc_stages(stages);
        self.mem = self.mem.with_acc_stages(stages);
        self
    }

    /// The engine with `stages` product registers per PE (see [`WsEngine::with_pe_stages`]).
    pub fn with_pe_stages(mut self, stages: usize) -> Self {
        self.engine = self.engine.with_pe_stages(stages);
        self
    }

    /// The engine with `stages` edge registers on its array (see
    /// [`WsEngine::with_edge_stages`]).
    pub fn with_edge_stages(mut self, stages: usize) -> Self {
        self.engine = self.engine.with_edge_stages(stages);
        self
    }

    /// The engine's weight bus broadcast or registered (see
    /// [`WsEngine::with_weight_broadcast`]).
    pub fn with_weight_broadcast(mut self, on: bool) -> Self {
        self.engine = self.engine.with_weight_broadcast(on);
        self
    }

    /// The activation scratchpad read with a stagger of one cycle per row, pairs of rows
    /// sharing a block RAM (one row per block RAM for an odd count), and the array without
    /// its activation skew registers (`ArchConfig::staggered_act_reads`); no cycle changes.
    pub fn with_staggered_act_reads(mut self, on: bool) -> Self {
        if on {
            let rows = self.engine.act_rdata.len();
            self.mem = self.mem.with_staggered_act_reads(if rows.is_multiple_of(2) { 2 } else { 1 });
            self.engine = self.engine.with_act_skewed_before(true);
        }
        self
    }

    /// The engine with int4 x int4 PEs or without (see [`WsEngine::with_int4x4`]).
    pub fn with_int4x4(mut self, on: bool) -> Self {
        self.engine = self.engine.with_int4x4(on);
        self
    }

    /// The engine's word counters `bits` wide (see [`WsEngine::with_count_bits`]).
    pub fn with_count_bits(mut self, bits: usize) -> Self {
        self.engine = self.engine.with_count_bits(bits);
        self
    }
}

impl Logic for ExecWs {
    #[hdl_gen]
    fn update(&mut self) {
        self.engine.clock.next = self.clock.val();
        self.engine.start.next = self.start.val();
        self.engine.fields.next = self.fields.val();
        self.mem.act_wide.next = self.engine.act_wide.val();
        for l in 0..self.mem.act_wide_data.len() {
            self.engine.act_wide_data[l].next = self.mem.act_wide_data[l].val();
        }
        self.ready.next = self.engine.ready.val();
        self.complete.next = self.engine.complete.val();
        self.mem.clock.next = self.clock.val();
        self.mem.host_act_addr.next = self.host_act_addr.val();
        self.mem.host_wgt_addr.next = self.host_wgt_addr.val();
        self.mem.host_acc_addr.next = self.host_acc_addr.val();
        self.mem.act_raddr.next = self.engine.act_raddr.val();
        self.mem.wgt_raddr.next = self.engine.wgt_raddr.val();
        self.mem.acc_issue.next = self.engine.acc_issue.val();
        self.mem.acc_addr.next = self.engine.acc_addr.val();
        self.mem.acc_accumulate.next = self.engine.acc_accumulate.val();
        for k in 0..self.host_act_data.len() {
            self.mem.host_act_we[k].next = self.host_act_we[k].val();
            self.mem.host_act_data[k].next = self.host_act_data[k].val();
            self.engine.act_rdata[k].next = self.mem.act_rdata[k].val();
        }
        for j in 0..self.host_wgt_data.len() {
            self.mem.host_wgt_we[j].next = self.host_wgt_we[j].val();
            self.mem.host_wgt_data[j].next = self.host_wgt_data[j].val();
            self.engine.wgt_rdata[j].next = self.mem.wgt_rdata[j].val();
            self.mem.acc_input[j].next = self.engine.acc_input[j].val();
            self.host_acc_data[j].next = self.mem.host_acc_data[j].val();
        }
        for v in 0..self.vec_act_on.len() {
            self.mem.vec_act_on[v].next = self.vec_act_on[v].val();
            self.mem.vec_act_raddr[v].next = self.vec_act_raddr[v].val();
            self.mem.vec_acc_issue[v].next = self.vec_acc_issue[v].val();
            self.mem.vec_acc_addr[v].next = self.vec_acc_addr[v].val();
        }
        for k in 0..self.vec_act_rdata.len() {
            self.vec_act_rdata[k].next = self.mem.act_rdata[k].val();
        }
        for j in 0..self.vec_acc_input.len() {
            self.mem.vec_acc_input[j].next = self.vec_acc_input[j].val();
        }
    }
}
