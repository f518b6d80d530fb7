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
//! after its last write. The priority encoders are written as Verilog with their Rust model
//! side by side (rust-hdl's `hdl_gen` cannot index bits by a run-time value).

use rust_hdl::prelude::*;
use std::fmt::Write;

/// The expander for `rows x cols` PEs.
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
    _rows: usize,
    // Bitmap bits per column: `8 * ceil(rows / 8)`, one byte per mask word.
    _mask: Vec<Vec<bool>>,
}

impl CscExpander {
    /// An expander for `rows` PE rows (at most 256) and `cols` columns.
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!((1..=crate::pe::MAX_SIDE).contains(&rows), "{rows} rows");
        Self {
            clock: Default::default(),
            capture: Default::default(),
            consume: Default::default(),
            data: (0..cols).map(|_| Default::default()).collect(),
            valid: (0..cols).map(|_| Default::default()).collect(),
            row: (0..cols).map(|_| Default::default()).collect(),
            _rows: rows,
            _mask: vec![vec![false; 8 * rows.div_ceil(8)]; cols],
        }
    }

    fn mask_bits(&self) -> usize {
        8 * self._rows.div_ceil(8)
    }

    /// The row of column `j`'s lowest set bitmap bit below `rows`.
    fn lowest(&self, j: usize) -> Option<usize> {
        (0..self._rows).find(|&k| self._mask[j][k])
    }
}

impl Logic for CscExpander {
    fn update(&mut self) {
        let consume = self.consume.val();
        for j in 0..self.valid.len() {
            let low = self.lowest(j).filter(|_| consume);
            self.valid[j].next = low.is_some();
            self.row[j].next = (low.unwrap_or(0) as u64).into();
        }
        if !self.clock.pos_edge() {
            return;
        }
        let bits = self.mask_bits();
        for j in 0..self.valid.len() {
            if self.capture.val() {
                let byte = unsigned_cast::<8>(self.data[j].val()).index();
                self._mask[j].drain(..8);
                self._mask[j].extend((0..8).map(|i| byte >> i & 1 == 1));
                debug_assert_eq!(self._mask[j].len(), bits);
            } else if consume {
                // `m & (m - 1)`: the lowest set bit of the whole bitmap.
                if let Some(k) = self._mask[j].iter().position(|&b| b) {
                    self._mask[j][k] = false;
                }
            }
        }
    }

    fn connect(&mut self) {
        for s in &mut self.valid {
            s.connect();
        }
        for s in &mut self.row {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let (bits, rows) = (self.mask_bits(), self._rows);
        let mut v = String::new();
        for j in 0..self.valid.len() {
            let _ = writeln!(v, "reg [{}:0] mask{j};\ninitial mask{j} = {bits}'d0;", bits - 1);
        }
        let _ = writeln!(v, "always @(*) begin");
        for j in 0..self.valid.len() {
            let _ = writeln!(v, "    valid${j} = 1'b0;\n    row${j} = 8'd0;");
            // Highest first, so the lowest set bit is assigned last.
            for k in (0..rows).rev() {
                let _ = writeln!(v, "    if (consume && mask{j}[{k}]) begin valid${j} = 1'b1; row${j} = 8'd{k}; end");
            }
        }
        let _ = writeln!(v, "end\nalways @(posedge clock) begin");
        for j in 0..self.valid.len() {
            let shifted = if bits > 8 { format!("{{data${j}, mask{j}[{}:8]}}", bits - 1) } else { format!("data${j}") };
            let _ =
                writeln!(v, "    if (capture) mask{j} <= {shifted};\n    else if (consume) mask{j} <= mask{j} & (mask{j} - {bits}'d1);");
        }
        let _ = writeln!(v, "end");
        Verilog::Custom(v)
    }
}
