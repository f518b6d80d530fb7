//! The address generator of an instruction's `WordGen`: `start + o * outer_stride +
//! i * inner_stride` for `o < outer_count`, `i < inner_count`, one address per enabled
//! cycle, without multipliers.

use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// Steps through a two-level word sequence.
#[derive(LogicBlock)]
pub struct WordSeq {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Load the sequence from the field ports this cycle (it may also issue its first word).
    pub start: Signal<In, Bit>,
    /// `start` field.
    pub first_addr: Signal<In, Addr>,
    /// `inner_count`.
    pub inner_count: Signal<In, Addr>,
    /// `inner_stride`.
    pub inner_stride: Signal<In, Addr>,
    /// `outer_count`.
    pub outer_count: Signal<In, Addr>,
    /// `outer_stride`.
    pub outer_stride: Signal<In, Addr>,
    /// Issue the next word this cycle if one remains.
    pub enable: Signal<In, Bit>,
    /// A word is issued this cycle.
    pub issue: Signal<Out, Bit>,
    /// Its address.
    pub addr: Signal<Out, Addr>,
    /// Words remain (including one issued this cycle).
    pub pending: Signal<Out, Bit>,
    /// Words remain after this cycle.
    pub more: Signal<Out, Bit>,
    /// A loaded sequence has words left (registered state: does not depend on `start`).
    pub busy: Signal<Out, Bit>,
    /// `more` if `start` is high this cycle (settled before `start`, so a user may choose
    /// between its own results late, as `more` does)...
    pub more_at_start: Signal<Out, Bit>,
    /// ... and if it is low.
    pub more_running: Signal<Out, Bit>,
    on: DFF<Bit>,
    /// Words left in the inner run after the current one.
    i_left: DFF<Addr>,
    /// Inner runs left after the current one.
    o_left: DFF<Addr>,
    base: DFF<Addr>,
    next: DFF<Addr>,
    /// `inner_count - 1`, the reload of `i_left`.
    ic_m1: DFF<Addr>,
    is: DFF<Addr>,
    os: DFF<Addr>,
    /// The count bits above those the controller keeps ([`WordSeq::with_count_bits`]),
    /// cleared in the counters' registers so that synthesis drops them.
    count_drop: Constant<Addr>,
    /// The step from a start (the field ports) and from the registers: both are ready
    /// before `start`, which arrives late from the controller's issue decision and only
    /// chooses between their results.
    at_start: WordStep,
    running: WordStep,
}

/// One step of a word sequence, from the state it is given: whether a word is issued and
/// the state after it. Combinational.
#[derive(LogicBlock, Default)]
pub struct WordStep {
    /// Words remain.
    pub words: Signal<In, Bit>,
    /// Issue a word if one remains.
    pub enable: Signal<In, Bit>,
    /// The inner loop goes on after this word (`i_left != 0`).
    pub inner: Signal<In, Bit>,
    /// The outer loop goes on after this inner run (`o_left != 0`).
    pub outer: Signal<In, Bit>,
    /// Words left in the inner run after this one.
    pub i_left: Signal<In, Addr>,
    /// Inner runs left after this one.
    pub o_left: Signal<In, Addr>,
    /// First address of this inner run.
    pub base: Signal<In, Addr>,
    /// This word's address.
    pub addr: Signal<In, Addr>,
    /// `inner_count - 1`.
    pub ic_m1: Signal<In, Addr>,
    /// `addr + inner_stride`.
    pub step_in: Signal<In, Addr>,
    /// `base + outer_stride`.
    pub step_out: Signal<In, Addr>,
    /// A word is issued.
    pub issue: Signal<Out, Bit>,
    /// Words remain after this step.
    pub more: Signal<Out, Bit>,
    /// `i_left` after this step.
    pub i_left_next: Signal<Out, Addr>,
    /// `o_left` after this step.
    pub o_left_next: Signal<Out, Addr>,
    /// `base` after this step.
    pub base_next: Signal<Out, Addr>,
    /// The next word's address.
    pub addr_next: Signal<Out, Addr>,
}

impl Logic for WordStep {
    #[hdl_gen]
    fn update(&mut self) {
        self.issue.next = self.words.val() & self.enable.val();
        self.more.next = self.words.val();
        self.i_left_next.next = self.i_left.val();
        self.o_left_next.next = self.o_left.val();
        self.base_next.next = self.base.val();
        self.addr_next.next = self.addr.val();
        if self.words.val() & self.enable.val() {
            if self.inner.val() {
                self.i_left_next.next = self.i_left.val() - 1;
                self.addr_next.next = self.step_in.val();
            } else {
                self.i_left_next.next = self.ic_m1.val();
                self.o_left_next.next = self.o_left.val() - 1;
                self.base_next.next = self.step_out.val();
                self.addr_next.next = self.step_out.val();
                self.more.next = self.outer.val();
            }
        }
    }
}

impl Default for WordSeq {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            first_addr: Default::default(),
            inner_count: Default::default(),
            inner_stride: Default::default(),
            outer_count: Default::default(),
            outer_stride: Default::default(),
            enable: Default::default(),
            issue: Default::default(),
            addr: Default::default(),
            pending: Default::default(),
            more: Default::default(),
            busy: Default::default(),
            more_at_start: Default::default(),
            more_running: Default::default(),
            on: Default::default(),
            i_left: Default::default(),
            o_left: Default::default(),
            base: Default::default(),
            next: Default::default(),
            ic_m1: Default::default(),
            is: Default::default(),
            os: Default::default(),
            count_drop: Constant::new(0.into()),
            at_start: Default::default(),
            running: Default::default(),
        }
    }
}

impl WordSeq {
    /// The sequencer with its loop counters `bits` wide, for a controller that keeps that
    /// many bits of the count fields (`controller::matmul_count_bits`).
    pub fn with_count_bits(mut self, bits: usize) -> Self {
        self.count_drop = Constant::new(!crate::verilog::low_mask::<ADDR_BITS>(bits));
        self
    }
}

impl Logic for WordSeq {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, on, i_left, o_left, base, next, ic_m1, is, os);
        // The loops count down to zero, so whether one goes on is a zero test of a
        // register, not a sum and a comparison; `count > 1` is written as a zero test of
        // `count >> 1`, which synthesis maps to LUTs instead of a carry chain.
        self.at_start.words.next = (self.inner_count.val() != 0) & (self.outer_count.val() != 0);
        self.at_start.enable.next = self.enable.val();
        self.at_start.inner.next = (self.inner_count.val() >> 1) != 0;
        self.at_start.outer.next = (self.outer_count.val() >> 1) != 0;
        self.at_start.i_left.next = self.inner_count.val() - 1;
        self.at_start.o_left.next = self.outer_count.val() - 1;
        self.at_start.base.next = self.first_addr.val();
        self.at_start.addr.next = self.first_addr.val();
        self.at_start.ic_m1.next = self.inner_count.val() - 1;
        self.at_start.step_in.next = self.first_addr.val() + self.inner_stride.val();
        self.at_start.step_out.next = self.first_addr.val() + self.outer_stride.val();
        self.running.words.next = self.on.q.val();
        self.running.enable.next = self.enable.val();
        self.running.inner.next = self.i_left.q.val() != 0;
        self.running.outer.next = self.o_left.q.val() != 0;
        self.running.i_left.next = self.i_left.q.val();
        self.running.o_left.next = self.o_left.q.val();
        self.running.base.next = self.base.q.val();
        self.running.addr.next = self.next.q.val();
        self.running.ic_m1.next = self.ic_m1.q.val();
        self.running.step_in.next = self.next.q.val() + self.is.q.val();
        self.running.step_out.next = self.base.q.val() + self.os.q.val();
        self.busy.next = self.on.q.val();
        self.more_at_start.next = self.at_start.more.val();
        self.more_running.next = self.running.more.val();
        if self.start.val() {
            self.ic_m1.d.next = (self.inner_count.val() - 1) & !self.count_drop.val();
            self.is.d.next = self.inner_stride.val();
            self.os.d.next = self.outer_stride.val();
            self.on.d.next = self.at_start.more.val();
            self.i_left.d.next = self.at_start.i_left_next.val() & !self.count_drop.val();
            self.o_left.d.next = self.at_start.o_left_next.val() & !self.count_drop.val();
            self.base.d.next = self.at_start.base_next.val();
            self.next.d.next = self.at_start.addr_next.val();
            self.issue.next = self.at_start.issue.val();
            self.addr.next = self.first_addr.val();
            self.pending.next = self.at_start.words.val();
            self.more.next = self.at_start.more.val();
        } else {
            self.on.d.next = self.running.more.val();
            self.i_left.d.next = self.running.i_left_next.val() & !self.count_drop.val();
            self.o_left.d.next = self.running.o_left_next.val() & !self.count_drop.val();
            self.base.d.next = self.running.base_next.val();
            self.next.d.next = self.running.addr_next.val();
            self.issue.next = self.running.issue.val();
            self.addr.next = self.next.q.val();
            self.pending.next = self.on.q.val();
            self.more.next = self.running.more.val();
        }
    }
}
