//! The board's memory: the accelerator's DRAM ports on on-chip block RAM, for FPGA builds.
//!
//! It has the ports and the one-cycle read of the co-simulation DRAM (`systole_testbenches::dram::Dram`): `lanes` consecutive
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
//!
//! On the iCE40 UP5K the memory can instead be the device's single-port RAMs
//! ([`BoardMemory::Spram`]): one to four SB_SPRAM256KA of 16K x 16 bits (32 to 128 KiB),
//! one byte lane. A cycle either writes (`wr_en`) or reads, so the accelerator must never
//! do both: its ArchConfig has `dram_single_port`, whose programs order every load after
//! the stores before it and every store after the loads before it; the host's accesses come
//! one at a time. The read has the block RAMs' timing: the byte of `rd_addr` in the next
//! cycle, from the SPRAM's output register through a byte and SPRAM choice made by
//! registered address bits.

use rust_hdl::prelude::*;
use std::fmt::Write;

use crate::DRAM_ADDR_BITS;

/// Which on-chip memory a board's memory is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoardMemory {
    /// Block RAM banks, one per byte lane (SB_RAM40_4K or DP16KD), a read and a write port.
    BlockRam,
    /// The iCE40 UP5K's single-port SB_SPRAM256KA, one byte lane, 32, 64 or 128 KiB.
    Spram,
    /// The board's external DRAM through a LiteDRAM controller's native port
    /// ([`crate::board::DramBoardCore`]), the core's clock held while the memory answers.
    Dram,
}

impl std::str::FromStr for BoardMemory {
    type Err = UnknownMemory;
    fn from_str(s: &str) -> Result<Self, UnknownMemory> {
        match s {
            "block-ram" => Ok(Self::BlockRam),
            "spram" => Ok(Self::Spram),
            "dram" => Ok(Self::Dram),
            _ => Err(UnknownMemory(s.into())),
        }
    }
}

/// A name that is not a [`BoardMemory`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is none of `block-ram`, `spram` and `dram`")]
pub struct UnknownMemory(pub String);

/// Bytes in one SB_SPRAM256KA (16K x 16 bits).
pub const SPRAM_BYTES: usize = 32 * 1024;

/// The SB_SPRAM256KA that make `bytes` of board memory: one, two or four, else None.
pub fn spram_count(bytes: usize) -> Option<usize> {
    [1, 2, 4].into_iter().find(|&n| n * SPRAM_BYTES == bytes)
}

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
    _kind: BoardMemory,
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
            _kind: BoardMemory::BlockRam,
        }
    }

    /// `bytes` bytes of `kind`: [`BankedRam::new`] for block RAM; for SPRAM one lane and
    /// one, two or four SB_SPRAM256KA (`bytes` of 32, 64 or 128 KiB).
    pub fn of_kind(kind: BoardMemory, bytes: usize, lanes: usize) -> Self {
        assert!(kind != BoardMemory::Dram, "external DRAM is no on-chip memory (see DramBoardCore)");
        if kind == BoardMemory::Spram {
            assert!(lanes == 1 && spram_count(bytes).is_some(), "SPRAM of {bytes} bytes, {lanes} lanes");
        }
        Self { _kind: kind, ..Self::new(bytes, lanes) }
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
        if self._kind == BoardMemory::Spram {
            return Verilog::Custom(spram_verilog(self._mem.len() / SPRAM_BYTES));
        }
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

/// One byte lane on `count` SB_SPRAM256KA: byte `a` is byte `a[0]` of word `a[14:1]` of
/// SPRAM `a / 32K`. A write cycle writes the byte's two nibbles (MASKWREN) of the chosen
/// SPRAM; any other cycle reads `rd_addr`'s word from it, and the next cycle picks the
/// byte by the registered address bits.
fn spram_verilog(count: usize) -> String {
    let mut v = String::new();
    let sel_bits = count.trailing_zeros() as usize;
    let _ = writeln!(v, "wire we = wr_en$0;\nwire [{}:0] a = we ? wr_addr[{0}:0] : rd_addr[{0}:0];", 14 + sel_bits);
    let _ = writeln!(v, "reg rbyte;\nalways @(posedge clock) rbyte <= rd_addr[0];");
    if sel_bits > 0 {
        let _ = writeln!(v, "reg [{}:0] rsel;\nalways @(posedge clock) rsel <= rd_addr[{}:15];", sel_bits - 1, 14 + sel_bits);
    }
    for k in 0..count {
        let chip = if sel_bits == 0 { "1'b1".to_string() } else { format!("a[{}:15] == {sel_bits}'d{k}", 14 + sel_bits) };
        let _ = writeln!(
            v,
            "wire [15:0] q{k};\nSB_SPRAM256KA spram{k} (.ADDRESS(a[14:1]), .DATAIN({{wr_data$0, wr_data$0}}), \
             .MASKWREN(a[0] ? 4'b1100 : 4'b0011), .WREN(we), .CHIPSELECT({chip}), .CLOCK(clock), \
             .STANDBY(1'b0), .SLEEP(1'b0), .POWEROFF(1'b1), .DATAOUT(q{k}));"
        );
    }
    let word = if sel_bits == 0 {
        "q0".to_string()
    } else {
        let mut w = String::new();
        for k in (1..count).rev() {
            let _ = write!(w, "rsel == {sel_bits}'d{k} ? q{k} : ");
        }
        w + "q0"
    };
    let _ = writeln!(v, "wire [15:0] word = {word};");
    let _ = writeln!(v, "always @(*) rd_data$0 = rbyte ? word[15:8] : word[7:0];");
    v
}
