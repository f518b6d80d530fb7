//! The band unit at the top of the array: expands one tap word into row `k` of the banded
//! (Toeplitz) weight matrix of docs/ARCHITECTURE.md section 3: column `n` holds tap
//! `k - n * stride` when `n < width` and `0 <= k - n * stride < taps`, else 0. A word that
//! is not a band passes through, lane `n` to column `n`.
//!
//! The choice of lane depends only on the row and the band's fields, never on the word, so
//! it is made one cycle early, in the cycle the word is read, and registered: the word meets
//! only a decode of registered lane numbers on its way from the scratchpad to the array
//! (the same function as choosing it in the word's cycle; nothing moves in time).
//!
//! An instruction's first read is its row 0 and comes with its start, when the fields are
//! still on the `start_*` ports: at row 0 only the columns whose first row `n * stride` is 0
//! take a lane, lane 0, so that choice needs no arithmetic. The rows after it use the
//! latched fields, and each column's first row `n * stride` and end `n * stride +
//! min(taps, lanes)` are registered a cycle ahead, from the stride and taps of the cycle
//! before (the start ports' in a start cycle): a running row is compared with registers
//! only. So the running `stride` and `taps` must be those of the cycle before, as the
//! engines' latched fields are through an instruction.
//!
//! With `e` word stages ([`BandUnit::with_word_stages`]) the word's lanes and the choice
//! both pass `e` registers before the decode, so the word leaves its block RAM into a
//! register and the row comes out `e` cycles later.
//!
//! Written once, as an `hdl_gen` kernel. Column `n`'s first row is a sum of shifted strides
//! (the set bits of the constant `n`), so no multiplier is inferred.

use crate::delay::Delay;
use crate::wiring::{constants, signals};
use rust_hdl::prelude::*;

/// Bits of the band's row arithmetic: rows, strides and widths fit in 16.
const BITS: usize = 16;

/// Bits of a lane number: arrays have at most 256 columns.
const LANE_BITS: usize = 8;

/// The band unit for an array of `cols` columns: the lane choice for the next cycle's word,
/// registered, and the word's lanes routed by it.
#[derive(LogicBlock)]
pub struct BandUnit {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// An instruction starts: the next word's row and band come from the `start_*` ports.
    pub start: Signal<In, Bit>,
    /// With `start`: the next word is a band.
    pub start_banded: Signal<In, Bit>,
    /// With `start`: the band's stride.
    pub start_stride: Signal<In, Bits<8>>,
    /// With `start`: the band's taps.
    pub start_taps: Signal<In, Bits<BITS>>,
    /// With `start`: the band's width.
    pub start_width: Signal<In, Bits<BITS>>,
    /// Without `start`: the next word is a band.
    pub banded: Signal<In, Bit>,
    /// Without `start`: its row.
    pub row: Signal<In, Bits<8>>,
    /// Without `start`: the band's stride, that of the cycle before.
    pub stride: Signal<In, Bits<8>>,
    /// Without `start`: the band's taps, those of the cycle before.
    pub taps: Signal<In, Bits<BITS>>,
    /// Without `start`: the band's width.
    pub width: Signal<In, Bits<BITS>>,
    /// The word read in the previous cycle, lane `i` = tap `i`.
    pub word: Vec<Signal<In, Signed<8>>>,
    /// Its row of the weight matrix (or the word itself), lane `n` for column `n`.
    pub out: Vec<Signal<Out, Signed<8>>>,
    /// Column `n`'s first row and end for the next cycle's row, registered.
    base: Vec<DFF<Bits<BITS>>>,
    end: Vec<DFF<Bits<BITS>>>,
    /// The first rows `n * stride` from the start ports and from the running ports, each
    /// the sum of two partial sums: of the strides shifted by bits 0-1 of `n` and by the
    /// others, so a first row is two adder levels deep and its end, with `span` joining the
    /// partial sum of fewer terms (`span_low`), also two for `n` of up to three set bits.
    start_lo: Vec<Signal<Local, Bits<BITS>>>,
    start_hi: Vec<Signal<Local, Bits<BITS>>>,
    run_lo: Vec<Signal<Local, Bits<BITS>>>,
    run_hi: Vec<Signal<Local, Bits<BITS>>>,
    span_low: Vec<Constant<Bit>>,
    /// `min(taps, lanes)` from either set of ports.
    start_span: Signal<Local, Bits<BITS>>,
    run_span: Signal<Local, Bits<BITS>>,
    /// The running row, widened, and its offset from each column's first row.
    row16: Signal<Local, Bits<BITS>>,
    diff: Vec<Signal<Local, Bits<LANE_BITS>>>,
    /// The number of lanes.
    lanes: Constant<Bits<BITS>>,
    /// `n`, for column `n`, in the band's arithmetic.
    column: Vec<Constant<Bits<BITS>>>,
    /// The registered choice.
    tap: Vec<DFF<Bits<LANE_BITS>>>,
    ok: Vec<DFF<Bit>>,
    /// `n`, for lane `n`, and the lane numbers' used bits (a lane number is below the
    /// number of lanes, so only these bits are compared).
    lane: Vec<Constant<Bits<LANE_BITS>>>,
    lane_mask: Constant<Bits<LANE_BITS>>,
    /// Column `n`'s byte: the OR of the lanes it selects (at most one).
    picked: Vec<Signal<Local, Bits<8>>>,
    /// With word stages, the word's lanes and the registered choice that many cycles later
    /// (no lines without).
    word_line: Vec<Delay<Signed<8>>>,
    tap_line: Vec<Delay<Bits<LANE_BITS>>>,
    ok_line: Vec<Delay<Bit>>,
    /// The word and the choice the decode uses: the ports' and registers', or the lines'.
    word_now: Vec<Signal<Local, Signed<8>>>,
    tap_now: Vec<Signal<Local, Bits<LANE_BITS>>>,
    ok_now: Vec<Signal<Local, Bit>>,
}

impl BandUnit {
    /// A band unit for `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            start_banded: Default::default(),
            start_stride: Default::default(),
            start_taps: Default::default(),
            start_width: Default::default(),
            banded: Default::default(),
            row: Default::default(),
            stride: Default::default(),
            taps: Default::default(),
            width: Default::default(),
            word: signals(cols),
            out: signals(cols),
            base: signals(cols),
            end: signals(cols),
            start_lo: signals(cols),
            start_hi: signals(cols),
            run_lo: signals(cols),
            run_hi: signals(cols),
            span_low: (0..cols).map(|n| Constant::new((n & 3).count_ones() <= (n >> 2).count_ones())).collect(),
            start_span: Default::default(),
            run_span: Default::default(),
            row16: Default::default(),
            diff: signals(cols),
            lanes: Constant::new((cols as u64).into()),
            column: constants(0..cols as u64),
            tap: signals(cols),
            ok: signals(cols),
            lane: constants(0..cols as u64),
            lane_mask: Constant::new((cols.next_power_of_two() as u64 - 1).into()),
            picked: signals(cols),
            word_line: vec![],
            tap_line: vec![],
            ok_line: vec![],
            word_now: signals(cols),
            tap_now: signals(cols),
            ok_now: signals(cols),
        }
    }

    /// The unit with `stages` registers on the word's lanes, and as many on the choice, so
    /// that the word read from a block RAM reaches a register before the lane decode
    /// (`ArchConfig::edge_stages`, which the WS engine spends here for its weights): `out`
    /// is the row of the word `word` carried `stages` cycles earlier.
    pub fn with_word_stages(mut self, stages: usize) -> Self {
        let lines = if stages == 0 { 0 } else { self.out.len() };
        self.word_line = (0..lines).map(|_| Delay::new(stages)).collect();
        self.tap_line = (0..lines).map(|_| Delay::new(stages)).collect();
        self.ok_line = (0..lines).map(|_| Delay::new(stages)).collect();
        self
    }
}

impl Logic for BandUnit {
    #[hdl_gen]
    fn update(&mut self) {
        if self.start_taps.val() < self.lanes.val() {
            self.start_span.next = self.start_taps.val();
        } else {
            self.start_span.next = self.lanes.val();
        }
        if self.taps.val() < self.lanes.val() {
            self.run_span.next = self.taps.val();
        } else {
            self.run_span.next = self.lanes.val();
        }
        self.row16.next = bit_cast::<BITS, 8>(self.row.val());
        for n in 0..self.out.len() {
            self.start_lo[n].next = 0.into();
            self.start_hi[n].next = 0.into();
            self.run_lo[n].next = 0.into();
            self.run_hi[n].next = 0.into();
            for b in 0..2 {
                if ((n >> b) & 1) == 1 {
                    self.start_lo[n].next = self.start_lo[n].val() + (bit_cast::<BITS, 8>(self.start_stride.val()) << b);
                    self.run_lo[n].next = self.run_lo[n].val() + (bit_cast::<BITS, 8>(self.stride.val()) << b);
                }
            }
            for b in 2..8 {
                if ((n >> b) & 1) == 1 {
                    self.start_hi[n].next = self.start_hi[n].val() + (bit_cast::<BITS, 8>(self.start_stride.val()) << b);
                    self.run_hi[n].next = self.run_hi[n].val() + (bit_cast::<BITS, 8>(self.stride.val()) << b);
                }
            }
            self.base[n].clock.next = self.clock.val();
            self.end[n].clock.next = self.clock.val();
            if self.start.val() {
                self.base[n].d.next = self.start_lo[n].val() + self.start_hi[n].val();
                if self.span_low[n].val() {
                    self.end[n].d.next = (self.start_lo[n].val() + self.start_span.val()) + self.start_hi[n].val();
                } else {
                    self.end[n].d.next = self.start_lo[n].val() + (self.start_hi[n].val() + self.start_span.val());
                }
            } else {
                self.base[n].d.next = self.run_lo[n].val() + self.run_hi[n].val();
                if self.span_low[n].val() {
                    self.end[n].d.next = (self.run_lo[n].val() + self.run_span.val()) + self.run_hi[n].val();
                } else {
                    self.end[n].d.next = self.run_lo[n].val() + (self.run_hi[n].val() + self.run_span.val());
                }
            }
            self.tap[n].clock.next = self.clock.val();
            self.ok[n].clock.next = self.clock.val();
            self.diff[n].next = self.row.val() - self.base[n].q.val().get_bits::<LANE_BITS>(0);
            if self.start.val() {
                // Row 0: column n takes lane 0 when its first row n * stride is 0.
                if self.start_banded.val() {
                    self.tap[n].d.next = 0.into();
                    self.ok[n].d.next = (self.column[n].val() < self.start_width.val())
                        & ((self.column[n].val() == 0) | (self.start_stride.val() == 0))
                        & (self.start_taps.val() != 0);
                } else {
                    self.tap[n].d.next = self.lane[n].val();
                    self.ok[n].d.next = true;
                }
            } else if self.banded.val() {
                self.tap[n].d.next = self.diff[n].val();
                self.ok[n].d.next = (self.column[n].val() < self.width.val())
                    & (self.row16.val() >= self.base[n].q.val())
                    & (self.row16.val() < self.end[n].q.val());
            } else {
                self.tap[n].d.next = self.lane[n].val();
                self.ok[n].d.next = true;
            }
            self.word_now[n].next = self.word[n].val();
            self.tap_now[n].next = self.tap[n].q.val();
            self.ok_now[n].next = self.ok[n].q.val();
        }
        for n in 0..self.word_line.len() {
            self.word_line[n].clock.next = self.clock.val();
            self.word_line[n].data_in.next = self.word[n].val();
            self.word_now[n].next = self.word_line[n].data_out.val();
            self.tap_line[n].clock.next = self.clock.val();
            self.tap_line[n].data_in.next = self.tap[n].q.val();
            self.tap_now[n].next = self.tap_line[n].data_out.val();
            self.ok_line[n].clock.next = self.clock.val();
            self.ok_line[n].data_in.next = self.ok[n].q.val();
            self.ok_now[n].next = self.ok_line[n].data_out.val();
        }
        for n in 0..self.out.len() {
            self.picked[n].next = 0.into();
            for t in 0..self.word.len() {
                if self.ok_now[n].val() & ((self.tap_now[n].val() & self.lane_mask.val()) == self.lane[t].val()) {
                    self.picked[n].next = self.picked[n].val() | unsigned_cast(self.word_now[t].val());
                }
            }
            self.out[n].next = signed_cast(self.picked[n].val());
        }
    }
}
