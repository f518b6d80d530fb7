//! The band unit at the top of the array: expands one tap word into row `k` of the banded
//! (Toeplitz) weight matrix of docs/ARCHITECTURE.md section 3: column `n` holds tap
//! `k - n * stride` when `n < width` and `0 <= k - n * stride < taps`, else 0. A word that
//! is not a band passes through, lane `n` to column `n`.
//!
//! The choice of lane depends only on the row and the band's fields, never on the word, so
//! it is made one cycle early, in the cycle the word is read, and registered: the word meets
//! only a decode of registered lane numbers on its way from the scratchpad to the array
//! (the same function as choosing it in the word's cycle; nothing moves in time). The row
//! of an instruction's first read comes with its start, when the fields are still on the
//! ports, so two [`BandTaps`] make the choice from the ports and from the latched fields,
//! and `start` picks one late.
//!
//! Written once, as `hdl_gen` kernels. Column `n`'s first row `n * stride` is a sum of
//! shifted strides (the set bits of the constant `n`), so no multiplier is inferred.

use crate::wiring::{constants, signals};
use rust_hdl::prelude::*;

/// Bits of the band's row arithmetic: rows, strides and widths fit in 16.
const BITS: usize = 16;

/// Bits of a lane number: arrays have at most 256 columns.
const LANE_BITS: usize = 8;

/// The lane each column takes for one row: combinational.
#[derive(LogicBlock)]
pub struct BandTaps {
    /// The word is a band (else column `n` takes lane `n`).
    pub banded: Signal<In, Bit>,
    /// The weight-matrix row to generate.
    pub row: Signal<In, Bits<8>>,
    /// Row offset between adjacent columns.
    pub stride: Signal<In, Bits<8>>,
    /// Taps used from the word.
    pub taps: Signal<In, Bits<BITS>>,
    /// Columns generated.
    pub width: Signal<In, Bits<BITS>>,
    /// The lane column `n` takes, when `ok[n]`.
    pub tap: Vec<Signal<Out, Bits<LANE_BITS>>>,
    /// Column `n` takes a lane (else it is 0).
    pub ok: Vec<Signal<Out, Bit>>,
    /// `n`, for column `n`.
    lane: Vec<Constant<Bits<BITS>>>,
    /// The number of lanes.
    lanes: Constant<Bits<BITS>>,
    /// Column `n`'s first row, `n * stride`.
    base: Vec<Signal<Local, Bits<BITS>>>,
    /// `row - n * stride`.
    diff: Vec<Signal<Local, Bits<BITS>>>,
}

impl BandTaps {
    /// The lane choice for `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            banded: Default::default(),
            row: Default::default(),
            stride: Default::default(),
            taps: Default::default(),
            width: Default::default(),
            tap: signals(cols),
            ok: signals(cols),
            lane: constants(0..cols as u64),
            lanes: Constant::new((cols as u64).into()),
            base: signals(cols),
            diff: signals(cols),
        }
    }
}

impl Logic for BandTaps {
    #[hdl_gen]
    fn update(&mut self) {
        for n in 0..self.tap.len() {
            self.base[n].next = 0.into();
            for b in 0..8 {
                if ((n >> b) & 1) == 1 {
                    self.base[n].next = self.base[n].val() + (bit_cast::<BITS, 8>(self.stride.val()) << b);
                }
            }
            self.diff[n].next = bit_cast::<BITS, 8>(self.row.val()) - self.base[n].val();
            if self.banded.val() {
                self.tap[n].next = self.diff[n].val().get_bits::<LANE_BITS>(0);
                self.ok[n].next = (self.lane[n].val() < self.width.val())
                    & (bit_cast::<BITS, 8>(self.row.val()) >= self.base[n].val())
                    & (self.diff[n].val() < self.taps.val())
                    & (self.diff[n].val() < self.lanes.val());
            } else {
                self.tap[n].next = self.lane[n].val().get_bits::<LANE_BITS>(0);
                self.ok[n].next = true;
            }
        }
    }
}

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
    /// With `start`: its row.
    pub start_row: Signal<In, Bits<8>>,
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
    /// Without `start`: the band's stride.
    pub stride: Signal<In, Bits<8>>,
    /// Without `start`: the band's taps.
    pub taps: Signal<In, Bits<BITS>>,
    /// Without `start`: the band's width.
    pub width: Signal<In, Bits<BITS>>,
    /// The word read in the previous cycle, lane `i` = tap `i`.
    pub word: Vec<Signal<In, Signed<8>>>,
    /// Its row of the weight matrix (or the word itself), lane `n` for column `n`.
    pub out: Vec<Signal<Out, Signed<8>>>,
    first: BandTaps,
    running: BandTaps,
    /// The registered choice.
    tap: Vec<DFF<Bits<LANE_BITS>>>,
    ok: Vec<DFF<Bit>>,
    /// `n`, for lane `n`, and the lane numbers' used bits (a lane number is below the
    /// number of lanes, so only these bits are compared).
    lane: Vec<Constant<Bits<LANE_BITS>>>,
    lane_mask: Constant<Bits<LANE_BITS>>,
    /// Column `n`'s byte: the OR of the lanes it selects (at most one).
    picked: Vec<Signal<Local, Bits<8>>>,
}

impl BandUnit {
    /// A band unit for `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            start_banded: Default::default(),
            start_row: Default::default(),
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
            first: BandTaps::new(cols),
            running: BandTaps::new(cols),
            tap: signals(cols),
            ok: signals(cols),
            lane: constants(0..cols as u64),
            lane_mask: Constant::new((cols.next_power_of_two() as u64 - 1).into()),
            picked: signals(cols),
        }
    }
}

impl Logic for BandUnit {
    #[hdl_gen]
    fn update(&mut self) {
        self.first.banded.next = self.start_banded.val();
        self.first.row.next = self.start_row.val();
        self.first.stride.next = self.start_stride.val();
        self.first.taps.next = self.start_taps.val();
        self.first.width.next = self.start_width.val();
        self.running.banded.next = self.banded.val();
        self.running.row.next = self.row.val();
        self.running.stride.next = self.stride.val();
        self.running.taps.next = self.taps.val();
        self.running.width.next = self.width.val();
        for n in 0..self.out.len() {
            self.tap[n].clock.next = self.clock.val();
            self.ok[n].clock.next = self.clock.val();
            if self.start.val() {
                self.tap[n].d.next = self.first.tap[n].val();
                self.ok[n].d.next = self.first.ok[n].val();
            } else {
                self.tap[n].d.next = self.running.tap[n].val();
                self.ok[n].d.next = self.running.ok[n].val();
            }
            self.picked[n].next = 0.into();
            for t in 0..self.word.len() {
                if self.ok[n].q.val() & ((self.tap[n].q.val() & self.lane_mask.val()) == self.lane[t].val()) {
                    self.picked[n].next = self.picked[n].val() | unsigned_cast(self.word[t].val());
                }
            }
            self.out[n].next = signed_cast(self.picked[n].val());
        }
    }
}
