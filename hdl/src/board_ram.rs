//! The board's memory: the accelerator's DRAM ports on on-chip block RAM, for FPGA builds.
//!
//! It has the ports and the one-cycle read of [`crate::dram::Dram`]: `lanes` consecutive
//! bytes at any byte address are read per cycle (data in the next cycle) and up to as
//! many written. Byte `a` lives in bank `a mod lanes`, row `a / lanes`, so one access
//! touches each bank once; bank `k` reads row `a / lanes + (k < a mod lanes)`, and lane
//! `i` takes bank `(a + i) mod lanes` from the registered low address bits. Each bank is
//! a simple dual-port byte-wide memory that Yosys maps to SB_RAM40_4K or DP16KD, marked
//! `no_rw_check`: a byte is never read and written in one cycle (the host's accesses come
//! one at a time and only while no program runs, and a program's stores and loads of the
//! same bytes are ordered by `Sync`, so a load reads no earlier than the cycle after the
//! store's last write), so synthesis builds no logic to return the old byte on a collision,
//! which on ECP5 sat between the read address and a fabric register.
//!
//! `lanes` and the depth per bank are powers of two; addresses wrap at the size.

use rust_hdl::prelude::*;
use std::fmt::Write;

use crate::dram::DRAM_ADDR_BITS;

/// The banked on-chip memory.
#[derive(LogicBlock)]
pub struct BankedRam {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// First byte to read.
    pub rd_addr: Signal<In, Bits<DRAM_ADDR_BITS>>,
    /// Bytes `rd_addr..` of the previous cycle, lane `i` = byte `i`.
    pub rd_data: Vec<Signal<Out, Signed<8>>>,
    /// First byte to write.
    pub wr_addr: Signal<In, Bits<DRAM_ADDR_BITS>>,
    /// Bytes to write, lane `i` to byte `wr_addr + i`.
    pub wr_data: Vec<Signal<In, Signed<8>>>,
    /// Which lanes to write.
    pub wr_en: Vec<Signal<In, Bit>>,
    _mem: Vec<Signed<8>>,
}

impl BankedRam {
    /// `bytes` bytes in `lanes` banks; both powers of two, `bytes >= 2 * lanes`.
    pub fn new(bytes: usize, lanes: usize) -> Self {
        assert!(lanes.is_power_of_two() && bytes.is_power_of_two() && bytes >= 2 * lanes, "{bytes} bytes in {lanes} banks");
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

impl Logic for BankedRam {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let size = self._mem.len();
            let (ra, wa) = (self.rd_addr.val().index(), self.wr_addr.val().index());
            for i in 0..self.rd_data.len() {
                self.rd_data[i].next = self._mem[(ra + i) % size];
            }
            for i in 0..self.wr_data.len() {
                if self.wr_en[i].val() {
                    self._mem[(wa + i) % size] = self.wr_data[i].val();
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
        let lanes = self.rd_data.len();
        let lb = lanes.trailing_zeros() as usize;
        let depth = self._mem.len() / lanes;
        let db = depth.trailing_zeros() as usize;
        let mut v = String::new();
        let row = |addr: &str| format!("{addr}[{}:{lb}]", lb + db - 1);
        // Low address bits (bank of lane 0); a single bank has none.
        let low = |addr: &str| if lb == 0 { "1'b0".to_string() } else { format!("{addr}[{}:0]", lb - 1) };
        let sel_bits = lb.max(1);
        let _ = writeln!(v, "wire [{}:0] rlo = {};", sel_bits - 1, low("rd_addr"));
        let _ = writeln!(v, "wire [{}:0] wlo = {};", sel_bits - 1, low("wr_addr"));
        let _ = writeln!(v, "reg [{}:0] rsel;", sel_bits - 1);
        // A bank's row is the access's row or the next: one incrementer beside the low
        // bits' comparisons, which only choose (not the comparison into an adder's carry).
        let _ = writeln!(v, "wire [{}:0] rrow = {};\nwire [{}:0] rrow_next = rrow + 1'b1;", db - 1, row("rd_addr"), db - 1);
        let _ = writeln!(v, "wire [{}:0] wrow = {};\nwire [{}:0] wrow_next = wrow + 1'b1;", db - 1, row("wr_addr"), db - 1);
        for k in 0..lanes {
            let _ = writeln!(v, "(* no_rw_check *) reg [7:0] bank{k} [0:{}];", depth - 1);
            let _ = writeln!(v, "reg [7:0] q{k};\nreg we{k};\nreg [7:0] wd{k};");
            let _ = writeln!(v, "wire [{}:0] rrow{k} = ({k} < rlo) ? rrow_next : rrow;", db - 1);
            let _ = writeln!(v, "wire [{}:0] wrow{k} = ({k} < wlo) ? wrow_next : wrow;", db - 1);
            // Bank k takes lane (k - wlo) mod lanes.
            let _ = writeln!(v, "always @(*) begin\n    case (wlo)");
            for lo in 0..lanes {
                let i = (k + lanes - lo) % lanes;
                let _ = writeln!(v, "        {lo}: begin we{k} = wr_en${i}; wd{k} = wr_data${i}; end");
            }
            let _ = writeln!(v, "        default: begin we{k} = 1'b0; wd{k} = 8'd0; end\n    endcase\nend");
            let _ =
                writeln!(v, "always @(posedge clock) begin\n    q{k} <= bank{k}[rrow{k}];\n    if (we{k}) bank{k}[wrow{k}] <= wd{k};\nend");
        }
        let _ = writeln!(v, "always @(posedge clock) rsel <= rlo;");
        for i in 0..lanes {
            let _ = writeln!(v, "always @(*) begin\n    case (rsel)");
            for lo in 0..lanes {
                let _ = writeln!(v, "        {lo}: rd_data${i} = q{};", (lo + i) % lanes);
            }
            let _ = writeln!(v, "        default: rd_data${i} = 8'd0;\n    endcase\nend");
        }
        Verilog::Custom(v)
    }
}
