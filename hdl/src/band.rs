//! The band unit at the top of the array: expands one tap word into row `k` of the banded
//! (Toeplitz) weight matrix of docs/ARCHITECTURE.md section 3: column `n` holds tap
//! `k - n * stride` when `n < width` and `0 <= k - n * stride < taps`, else 0.
//! Combinational, written once as an `hdl_gen` kernel.
//!
//! Column `n`'s first row `n * stride` is a sum of shifted strides (the set bits of the
//! constant `n`), so no multiplier is inferred; the tap a column takes is decoded against
//! the constant lane numbers, so each output is a short multiplexer of the word's lanes.

use crate::wiring::{constants, signals};
use rust_hdl::prelude::*;

/// Bits of the band's row arithmetic: rows, strides and widths fit in 16.
const BITS: usize = 16;

/// The band expander for an array of `cols` columns.
#[derive(LogicBlock)]
pub struct BandUnit {
    /// The tap word, lane `i` = tap `i`.
    pub word: Vec<Signal<In, Signed<8>>>,
    /// The weight-matrix row to generate.
    pub row: Signal<In, Bits<8>>,
    /// Row offset between adjacent columns.
    pub stride: Signal<In, Bits<8>>,
    /// Taps used from the word.
    pub taps: Signal<In, Bits<BITS>>,
    /// Columns generated.
    pub width: Signal<In, Bits<BITS>>,
    /// The generated row, lane `n` for column `n`.
    pub out: Vec<Signal<Out, Signed<8>>>,
    /// `n`, for lane or column `n`.
    lane: Vec<Constant<Bits<BITS>>>,
    /// Column `n`'s first row, `n * stride`.
    base: Vec<Signal<Local, Bits<BITS>>>,
    /// The tap column `n` takes, `row - n * stride`, when `row >= n * stride`.
    tap: Vec<Signal<Local, Bits<BITS>>>,
    /// Lane `t` is one of the band's taps: `t < taps`.
    used: Vec<Signal<Local, Bit>>,
    /// Column `n`'s byte: the OR of the lanes it selects (at most one).
    picked: Vec<Signal<Local, Bits<8>>>,
}

impl BandUnit {
    /// A band unit for `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            word: signals(cols),
            row: Default::default(),
            stride: Default::default(),
            taps: Default::default(),
            width: Default::default(),
            out: signals(cols),
            lane: constants(0..cols as u64),
            base: signals(cols),
            tap: signals(cols),
            used: signals(cols),
            picked: signals(cols),
        }
    }
}

impl Logic for BandUnit {
    #[hdl_gen]
    fn update(&mut self) {
        for t in 0..self.word.len() {
            self.used[t].next = self.lane[t].val() < self.taps.val();
        }
        for n in 0..self.out.len() {
            self.base[n].next = 0.into();
            for b in 0..8 {
                if ((n >> b) & 1) == 1 {
                    self.base[n].next = self.base[n].val() + (bit_cast::<BITS, 8>(self.stride.val()) << b);
                }
            }
            self.tap[n].next = bit_cast::<BITS, 8>(self.row.val()) - self.base[n].val();
            self.picked[n].next = 0.into();
            if (self.lane[n].val() < self.width.val()) & (bit_cast::<BITS, 8>(self.row.val()) >= self.base[n].val()) {
                for t in 0..self.word.len() {
                    if (self.tap[n].val() == self.lane[t].val()) & self.used[t].val() {
                        self.picked[n].next = self.picked[n].val() | unsigned_cast(self.word[t].val());
                    }
                }
            }
            self.out[n].next = signed_cast(self.picked[n].val());
        }
    }
}
