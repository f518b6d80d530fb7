//! The band unit at the top of the array: expands one tap word into row `k` of the banded
//! (Toeplitz) weight matrix of docs/ARCHITECTURE.md section 3: column `n` holds tap
//! `k - n * stride` when `n < width` and `0 <= k - n * stride < taps`, else 0.
//! Combinational; its Verilog and its Rust model are written side by side.

use rust_hdl::prelude::*;
use std::fmt::Write;

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
    pub taps: Signal<In, Bits<16>>,
    /// Columns generated.
    pub width: Signal<In, Bits<16>>,
    /// The generated row, lane `n` for column `n`.
    pub out: Vec<Signal<Out, Signed<8>>>,
}

impl BandUnit {
    /// A band unit for `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            word: (0..cols).map(|_| Default::default()).collect(),
            row: Default::default(),
            stride: Default::default(),
            taps: Default::default(),
            width: Default::default(),
            out: (0..cols).map(|_| Default::default()).collect(),
        }
    }
}

impl Logic for BandUnit {
    fn update(&mut self) {
        let (k, stride) = (self.row.val().index(), self.stride.val().index());
        let (taps, width) = (self.taps.val().index(), self.width.val().index());
        for n in 0..self.out.len() {
            let base = n * stride;
            let tap = k.checked_sub(base).filter(|&t| n < width && t < taps && t < self.word.len());
            self.out[n].next = match tap {
                Some(t) => self.word[t].val(),
                None => Signed::<8>::default(),
            };
        }
    }

    fn connect(&mut self) {
        for o in &mut self.out {
            o.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let cols = self.out.len();
        let mut v = String::from("reg [15:0] base, tap;\nalways @(*) begin\n");
        for n in 0..cols {
            let _ = writeln!(
                v,
                "    base = {};\n    tap = {{8'd0, row}} - base;\n    out${n} = 8'sd0;",
                crate::verilog::times("{8'd0, stride}", n, 16)
            );
            let _ = writeln!(v, "    if ({n} < width && {{8'd0, row}} >= base && tap < taps) begin\n        case (tap)");
            for t in 0..cols {
                let _ = writeln!(v, "            16'd{t}: out${n} = word${t};");
            }
            let _ = writeln!(v, "            default: out${n} = 8'sd0;\n        endcase\n    end");
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
