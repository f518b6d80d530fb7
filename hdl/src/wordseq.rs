//! The address generator of an instruction's `WordGen`: `start + o * outer_stride +
//! i * inner_stride` for `o < outer_count`, `i < inner_count`, one address per enabled
//! cycle, without multipliers.

use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// Steps through a two-level word sequence.
#[derive(LogicBlock, Default)]
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
    words: Signal<Local, Bit>,
    cur_i_left: Signal<Local, Addr>,
    cur_o_left: Signal<Local, Addr>,
    cur_base: Signal<Local, Addr>,
    cur_addr: Signal<Local, Addr>,
    cur_ic_m1: Signal<Local, Addr>,
    cur_is: Signal<Local, Addr>,
    cur_os: Signal<Local, Addr>,
    /// The inner loop goes on after this word.
    inner: Signal<Local, Bit>,
    /// The outer loop goes on after this inner run.
    outer: Signal<Local, Bit>,
    /// The next address within the inner run.
    step_in: Signal<Local, Addr>,
    /// The first address of the next inner run.
    step_out: Signal<Local, Addr>,
}

impl Logic for WordSeq {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, on, i_left, o_left, base, next, ic_m1, is, os);
        // Each branch computes the loop steps from its own operands (the field ports or the
        // registers), so both are ready before `start`, which arrives late from the
        // controller's issue decision, selects between them. The loops count down to zero,
        // so whether one goes on is a zero test of a register, not a sum and a comparison.
        if self.start.val() {
            self.words.next = (self.inner_count.val() != 0) & (self.outer_count.val() != 0);
            self.cur_i_left.next = self.inner_count.val() - 1;
            self.cur_o_left.next = self.outer_count.val() - 1;
            self.cur_base.next = self.first_addr.val();
            self.cur_addr.next = self.first_addr.val();
            self.cur_ic_m1.next = self.inner_count.val() - 1;
            self.cur_is.next = self.inner_stride.val();
            self.cur_os.next = self.outer_stride.val();
            self.inner.next = self.inner_count.val() > 1;
            self.outer.next = self.outer_count.val() > 1;
            self.step_in.next = self.first_addr.val() + self.inner_stride.val();
            self.step_out.next = self.first_addr.val() + self.outer_stride.val();
        } else {
            self.words.next = self.on.q.val();
            self.cur_i_left.next = self.i_left.q.val();
            self.cur_o_left.next = self.o_left.q.val();
            self.cur_base.next = self.base.q.val();
            self.cur_addr.next = self.next.q.val();
            self.cur_ic_m1.next = self.ic_m1.q.val();
            self.cur_is.next = self.is.q.val();
            self.cur_os.next = self.os.q.val();
            self.inner.next = self.i_left.q.val() != 0;
            self.outer.next = self.o_left.q.val() != 0;
            self.step_in.next = self.next.q.val() + self.is.q.val();
            self.step_out.next = self.base.q.val() + self.os.q.val();
        }
        self.ic_m1.d.next = self.cur_ic_m1.val();
        self.is.d.next = self.cur_is.val();
        self.os.d.next = self.cur_os.val();
        self.i_left.d.next = self.cur_i_left.val();
        self.o_left.d.next = self.cur_o_left.val();
        self.base.d.next = self.cur_base.val();
        self.next.d.next = self.cur_addr.val();
        self.on.d.next = self.words.val();
        self.issue.next = self.words.val() & self.enable.val();
        self.addr.next = self.cur_addr.val();
        self.pending.next = self.words.val();
        self.busy.next = self.on.q.val();
        self.more.next = self.words.val();
        if self.words.val() & self.enable.val() {
            if self.inner.val() {
                self.i_left.d.next = self.cur_i_left.val() - 1;
                self.next.d.next = self.step_in.val();
            } else {
                self.i_left.d.next = self.cur_ic_m1.val();
                self.o_left.d.next = self.cur_o_left.val() - 1;
                self.base.d.next = self.step_out.val();
                self.next.d.next = self.step_out.val();
                self.on.d.next = self.outer.val();
                self.more.next = self.outer.val();
            }
        }
    }
}
