//! The CSC expander of the WS preload (docs/ARCHITECTURE.md sections 3 and 9): it turns the
//! words of a CSC weight tile, as the weight scratchpad returns them, into per-column
//! writes of the array's shadow tile.
//!
//! - A *mask* word (`capture`) shifts each column's presence bitmap down by eight bits and
//!   puts byte `j` of the word on top of column `j`'s: after `ceil(rows / 8)` mask words,
//!   bit `k` of column `j`'s bitmap is bit `k % 8` of byte `j` of mask word `k / 8`.
//! - A *value* word (`consume`) is written in the same cycle: column `j` sends lane `j` to
//!   the row of the lowest set bit of its bitmap (`valid[j]`, `row[j]`) and clears that
//!   bit; a column whose bitmap is empty writes nothing.
//!
//! The outputs follow the inputs in the same cycle (a value word meets the array in the
//! cycle it is read back, as a dense row does), so the flip after the preload still comes
//! after its last write. Written once, as an `hdl_gen` kernel: the bitmaps are registers of
//! the widest size, [`MASK_BITS`], of which the low `8 * ceil(rows / 8)` bits are ever set
//! (synthesis removes the rest); a column's lowest set bit is `m & -m`, and its row an OR of
//! the constant row numbers that bit selects.

use crate::wiring::signals;
use rust_hdl::prelude::*;

/// Widest bitmap: one bit per row of the largest array.
pub const MASK_BITS: usize = crate::pe::MAX_SIDE;

/// One column's bitmap and priority encoder.
#[derive(LogicBlock)]
pub struct CscColumn {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// This cycle's weight word is a mask word.
    pub capture: Signal<In, Bit>,
    /// This cycle's weight word is a value word.
    pub consume: Signal<In, Bit>,
    /// The column's lane of the weight word.
    pub data: Signal<In, Signed<8>>,
    /// The column writes its lane of the value word this cycle.
    pub valid: Signal<Out, Bit>,
    /// The PE row it writes.
    pub row: Signal<Out, Bits<8>>,
    /// The presence bitmap, bit `k` for PE row `k`.
    mask: DFF<Bits<MASK_BITS>>,
    /// `k`, for PE row `k`.
    row_of: Vec<Constant<Bits<8>>>,
    /// The bitmap bits that stand for PE rows: the low `rows`.
    rows_mask: Constant<Bits<MASK_BITS>>,
    /// Where a mask word's byte enters the bitmap: `8 * ceil(rows / 8) - 8`.
    top: Constant<Bits<16>>,
    /// The lowest set bitmap bit, one-hot.
    lowest: Signal<Local, Bits<MASK_BITS>>,
}

impl CscColumn {
    /// A column of `rows` PEs (at most [`MASK_BITS`]).
    pub fn new(rows: usize) -> Self {
        assert!((1..=MASK_BITS).contains(&rows), "{rows} rows");
        Self {
            clock: Default::default(),
            capture: Default::default(),
            consume: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            row: Default::default(),
            mask: Default::default(),
            row_of: crate::wiring::constants(0..rows as u64),
            rows_mask: Constant::new(crate::verilog::low_mask(rows)),
            top: Constant::new((8 * rows.div_ceil(8) as u64 - 8).into()),
            lowest: Default::default(),
        }
    }
}

impl Logic for CscColumn {
    #[hdl_gen]
    fn update(&mut self) {
        self.mask.clock.next = self.clock.val();
        self.lowest.next = self.mask.q.val() & (0 - self.mask.q.val());
        self.valid.next = self.consume.val() & ((self.lowest.val() & self.rows_mask.val()) != 0);
        self.row.next = 0.into();
        for k in 0..self.row_of.len() {
            if self.lowest.val().get_bit(k) {
                self.row.next = self.row.val() | self.row_of[k].val();
            }
        }
        if self.capture.val() {
            self.mask.d.next = (self.mask.q.val() >> 8) | (bit_cast::<MASK_BITS, 8>(unsigned_cast(self.data.val())) << self.top.val());
        } else if self.consume.val() {
            // `m & (m - 1)`: the lowest set bit of the whole bitmap cleared.
            self.mask.d.next = self.mask.q.val() & (self.mask.q.val() - 1);
        } else {
            self.mask.d.next = self.mask.q.val();
        }
    }
}

/// The expander for `rows x cols` PEs: a [`CscColumn`] per column.
#[derive(LogicBlock)]
pub struct CscExpander {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// This cycle's weight word is a mask word.
    pub capture: Signal<In, Bit>,
    /// This cycle's weight word is a value word.
    pub consume: Signal<In, Bit>,
    /// The weight word read, lane `j`.
    pub data: Vec<Signal<In, Signed<8>>>,
    /// Column `j` writes lane `j` of the value word this cycle.
    pub valid: Vec<Signal<Out, Bit>>,
    /// The PE row column `j` writes.
    pub row: Vec<Signal<Out, Bits<8>>>,
    columns: Vec<CscColumn>,
}

impl CscExpander {
    /// An expander for `rows` PE rows (at most 256) and `cols` columns.
    pub fn new(rows: usize, cols: usize) -> Self {
        Self {
            clock: Default::default(),
            capture: Default::default(),
            consume: Default::default(),
            data: signals(cols),
            valid: signals(cols),
            row: signals(cols),
            columns: (0..cols).map(|_| CscColumn::new(rows)).collect(),
        }
    }
}

impl Logic for CscExpander {
    #[hdl_gen]
    fn update(&mut self) {
        for j in 0..self.columns.len() {
            self.columns[j].clock.next = self.clock.val();
            self.columns[j].capture.next = self.capture.val();
            self.columns[j].consume.next = self.consume.val();
            self.columns[j].data.next = self.data[j].val();
            self.valid[j].next = self.columns[j].valid.val();
            self.row[j].next = self.columns[j].row.val();
        }
    }
}
