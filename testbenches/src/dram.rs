//! A behavioural DRAM for simulation: `bytes_per_cycle` consecutive bytes read per cycle
//! (data in the next cycle) and up to as many written, at any byte address. The fixed
//! latency of docs/ARCHITECTURE.md is the engines' business; this model answers in one
//! cycle. It is a test fixture (one byte array with several ports), not for synthesis.

use std::fmt::Write;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::DRAM_ADDR_BITS;

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
    /// The instruction port ([`Dram::with_instr_port`]; none by default): first byte to
    /// read...
    pub ir_addr: Vec<Signal<In, Bits<DRAM_ADDR_BITS>>>,
    /// ... and the 64-bit little-endian words from it, of the previous cycle.
    pub ir_data: Vec<Signal<Out, Bits<64>>>,
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
            ir_addr: vec![],
            ir_data: vec![],
            _mem: vec![Signed::default(); bytes],
        }
    }

    /// With a read port of `words` 64-bit words (none for 0), for an instruction fetcher.
    pub fn with_instr_port(mut self, words: usize) -> Self {
        self.ir_addr = (0..words.min(1)).map(|_| Default::default()).collect();
        self.ir_data = (0..words).map(|_| Default::default()).collect();
        self
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
            if let Some(a) = self.ir_addr.first() {
                let a = a.val().index();
                for (w, d) in self.ir_data.iter_mut().enumerate() {
                    let word = (0..8).rev().fold(0u64, |acc, b| {
                        let byte = self._mem.get(a + 8 * w + b).map_or(0, |v| i64::try_from(v.bigint()).unwrap_or(0) as u64 & 0xff);
                        acc << 8 | byte
                    });
                    d.next = word.into();
                }
            }
        }
    }

    fn connect(&mut self) {
        for d in &mut self.rd_data {
            d.connect();
        }
        for d in &mut self.ir_data {
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
        for w in 0..self.ir_data.len() {
            let _ = writeln!(v, "    ir_data${w} = 0;");
        }
        v.push_str("end\nalways @(posedge clock) begin\n");
        for w in 0..self.ir_data.len() {
            let bytes: Vec<String> =
                (0..8).rev().map(|b| format!("((ir_addr$0 + {o} < {size}) ? mem[ir_addr$0 + {o}] : 8'd0)", o = 8 * w + b)).collect();
            let _ = writeln!(v, "    ir_data${w} <= {{{}}};", bytes.join(", "));
        }
        for i in 0..self.rd_data.len() {
            let _ = writeln!(v, "    rd_data${i} <= (rd_addr + {i} < {size}) ? mem[rd_addr + {i}] : 8'd0;");
            let _ = writeln!(v, "    if (wr_en${i} && wr_addr + {i} < {size}) mem[wr_addr + {i}] <= wr_data${i};");
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
