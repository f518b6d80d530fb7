//! A behavioural DRAM for simulation: `bytes_per_cycle` consecutive bytes read per cycle
//! (data in the next cycle) and up to as many written, at any byte address. The fixed
//! latency of docs/ARCHITECTURE.md is the engines' business; this model answers in one
//! cycle. It is a test fixture (one byte array with several ports), not for synthesis.

use rust_hdl::prelude::*;
use std::fmt::Write;

/// Width of DRAM byte addresses in the RTL.
pub const DRAM_ADDR_BITS: usize = 32;

/// The DRAM model.
#[derive(LogicBlock)]
pub struct Dram {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// First byte to read.
    pub rd_addr: Signal<In, Bits<DRAM_ADDR_BITS>>,
    /// Bytes `rd_addr..` of the previous cycle, lane `i` = byte `i` (0 beyond the end).
    pub rd_data: Vec<Signal<Out, Signed<8>>>,
    /// First byte to write.
    pub wr_addr: Signal<In, Bits<DRAM_ADDR_BITS>>,
    /// Bytes to write, lane `i` to byte `wr_addr + i`.
    pub wr_data: Vec<Signal<In, Signed<8>>>,
    /// Which lanes to write.
    pub wr_en: Vec<Signal<In, Bit>>,
    _mem: Vec<Signed<8>>,
}

impl Dram {
    /// `bytes` bytes of zeros, `lanes` bytes per cycle.
    pub fn new(bytes: usize, lanes: usize) -> Self {
        Self {
            clock: Default::default(),
            rd_addr: Default::default(),
            rd_data: (0..lanes).map(|_| Default::default()).collect(),
            wr_addr: Default::default(),
            wr_data: (0..lanes).map(|_| Default::default()).collect(),
            wr_en: (0..lanes).map(|_| Default::default()).collect(),
            _mem: vec![Signed::default(); bytes],
        }
    }
}

impl Logic for Dram {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let (ra, wa) = (self.rd_addr.val().index(), self.wr_addr.val().index());
            for i in 0..self.rd_data.len() {
                self.rd_data[i].next = self._mem.get(ra + i).copied().unwrap_or_default();
            }
            for i in 0..self.wr_data.len() {
                if self.wr_en[i].val() && wa + i < self._mem.len() {
                    self._mem[wa + i] = self.wr_data[i].val();
                }
            }
        }
    }

    fn connect(&mut self) {
        for d in &mut self.rd_data {
            d.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let size = self._mem.len();
        let mut v =
            format!("reg [7:0] mem [0:{}];\ninteger i;\ninitial begin\n    for (i = 0; i < {size}; i = i + 1) mem[i] = 0;\n", size - 1);
        for i in 0..self.rd_data.len() {
            let _ = writeln!(v, "    rd_data${i} = 0;");
        }
        v.push_str("end\nalways @(posedge clock) begin\n");
        for i in 0..self.rd_data.len() {
            let _ = writeln!(v, "    rd_data${i} <= (rd_addr + {i} < {size}) ? mem[rd_addr + {i}] : 8'd0;");
            let _ = writeln!(v, "    if (wr_en${i} && wr_addr + {i} < {size}) mem[wr_addr + {i}] <= wr_data${i};");
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
