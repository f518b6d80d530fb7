//! The requantization table and its loader.
//!
//! [`ParamTable`]: `entries` 8-byte entries (bias, then f32 scale bits, little-endian) in
//! rows of `cols`: entry `e` is lane `e % cols` of row `e / cols`. A read returns row
//! `rd_row`, so the store path gets entries `p .. p + cols` in one cycle when `p` is a
//! multiple of `cols` (the ISA requires that of a `Store`'s `out.param`; the store engine
//! divides it once, at its start). With [`ParamTable::with_entry_reads`] the table is read
//! by entry instead, lane 0 holding entry `rd_entry` itself, for the transposed store,
//! which reads one entry per cycle from any position.
//!
//! [`ParamLoader`]: `LoadParams` (docs/ARCHITECTURE.md sections 4 and 5). It waits `L - 1`
//! cycles, then reads `min(B, 8)` DRAM bytes per cycle as one stream and writes an entry
//! in the cycle its eighth byte arrives: `L + max(count, ceil(8 * count / B))` cycles.
//!
//! Both are written as Verilog with their Rust model side by side.

use crate::dma::{self, Phase};
use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;
use std::fmt::Write;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The requantization table, in rows of `cols` entries.
#[derive(LogicBlock)]
pub struct ParamTable {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Write `wr_data` to lane `wr_lane` of row `wr_row` (entry `wr_row * cols + wr_lane`).
    pub wr_en: Signal<In, Bit>,
    /// Row written.
    pub wr_row: Signal<In, Addr>,
    /// Lane written (below `cols`).
    pub wr_lane: Signal<In, Bits<8>>,
    /// The entry's 8 bytes as a little-endian u64: bias in bits 0..32, scale in 32..64.
    pub wr_data: Signal<In, Bits<64>>,
    /// Row to read.
    pub rd_row: Signal<In, Addr>,
    /// With entry reads, the entry to read instead (its row is `rd_entry / cols`).
    pub rd_entry: Signal<In, Addr>,
    /// The previous cycle's row, lane `j` for its entry `j` (lane 0: the entry itself, with
    /// entry reads).
    pub rd_data: Vec<Signal<Out, Bits<64>>>,
    _mem: Vec<Bits<64>>,
    _entry_reads: bool,
}

impl ParamTable {
    /// A table of `entries` entries in rows of `cols`.
    pub fn new(entries: usize, cols: usize) -> Self {
        Self {
            clock: Default::default(),
            wr_en: Default::default(),
            wr_row: Default::default(),
            wr_lane: Default::default(),
            wr_data: Default::default(),
            rd_row: Default::default(),
            rd_entry: Default::default(),
            rd_data: (0..cols).map(|_| Default::default()).collect(),
            _mem: vec![Bits::default(); entries],
            _entry_reads: false,
        }
    }

    /// The table read by entry (`rd_entry`, divided by `cols` in the read path) rather than
    /// by row, with lane 0 holding that entry itself: for the transposed store, which reads
    /// one entry per cycle from any position.
    pub fn with_entry_reads(mut self) -> Self {
        self._entry_reads = true;
        self
    }
}

impl Logic for ParamTable {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let cols = self.rd_data.len();
            let bits = crate::sram::index_bits(self._mem.len());
            let r = self.rd_entry.val().index() & ((1 << bits) - 1);
            let row = if self._entry_reads { r / cols } else { self.rd_row.val().index() };
            for (j, lane) in self.rd_data.iter_mut().enumerate() {
                let e = if j == 0 && self._entry_reads { r } else { row * cols + j };
                lane.next = self._mem.get(e).copied().unwrap_or_default();
            }
            let w = self.wr_row.val().index() * cols + self.wr_lane.val().index();
            if self.wr_en.val() && w < self._mem.len() {
                self._mem[w] = self.wr_data.val();
            }
        }
    }

    fn connect(&mut self) {
        for lane in &mut self.rd_data {
            lane.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let cols = self.rd_data.len();
        let entries = self._mem.len();
        let depth = entries.div_ceil(cols);
        let ab = crate::sram::index_bits(entries);
        let (full, part) = (entries / cols, entries % cols);
        let in_range =
            if part == 0 { format!("wr_row < {full}") } else { format!("(wr_row < {full} || (wr_row == {full} && wr_lane < {part}))") };
        let mut v = format!("wire wr_ok = wr_en && {in_range};\n");
        let (row, lane) = crate::verilog::div_rem("rd_entry", ab, cols);
        if self._entry_reads {
            v += &crate::verilog::div_rem_functions(ab, cols);
            let _ = writeln!(v, "wire [{}:0] row = {row};", ab - 1);
        } else {
            v.push_str("wire [23:0] row = rd_row;\n");
        }
        for b in 0..cols {
            let _ = writeln!(v, "reg [63:0] bank{b} [0:{}];\nreg [63:0] out{b};", depth - 1);
        }
        let _ = writeln!(v, "integer i;\ninitial begin");
        for b in 0..cols {
            let _ = writeln!(v, "    out{b} = 0;\n    for (i = 0; i < {depth}; i = i + 1) bank{b}[i] = 0;");
        }
        v.push_str("end\nalways @(posedge clock) begin\n");
        for b in 0..cols {
            let _ = writeln!(v, "    out{b} <= bank{b}[row];");
            let _ = writeln!(v, "    if (wr_ok && wr_lane == {b}) bank{b}[wr_row] <= wr_data;");
        }
        v.push_str("end\n");
        if self._entry_reads && cols > 1 {
            let _ = writeln!(v, "reg [{}:0] rd_lane;\ninitial rd_lane = 0;", ab - 1);
            let _ = writeln!(v, "always @(posedge clock) rd_lane <= {lane};");
            v.push_str("always @(*) begin\n    case (rd_lane)\n");
            for b in 0..cols {
                let _ = writeln!(v, "        {b}: rd_data$0 = out{b};");
            }
            v.push_str("        default: rd_data$0 = 64'd0;\n    endcase\nend\n");
        } else {
            v.push_str("always @(*) rd_data$0 = out0;\n");
        }
        for j in 1..cols {
            let _ = writeln!(v, "always @(*) rd_data${j} = out{j};");
        }
        Verilog::Custom(v)
    }
}

/// The `LoadParams` engine.
#[derive(LogicBlock)]
pub struct ParamLoader {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// First table entry.
    pub dst: Signal<In, Addr>,
    /// DRAM byte address.
    pub addr: Signal<In, DAddr>,
    /// Entries.
    pub count: Signal<In, Bits<24>>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// DRAM: first byte of this cycle's read.
    pub dram_rd_addr: Signal<Out, DAddr>,
    /// DRAM: bytes read in the previous cycle.
    pub dram_rd_data: Vec<Signal<In, Signed<8>>>,
    /// Table: write an entry.
    pub wr_en: Signal<Out, Bit>,
    /// Table: row written.
    pub wr_row: Signal<Out, Addr>,
    /// Table: lane written.
    pub wr_lane: Signal<Out, Bits<8>>,
    /// Table: its bytes.
    pub wr_data: Signal<Out, Bits<64>>,
    _latency: usize,
    _count_bits: usize,
    _cols: usize,
    _table_bits: usize,
    _st: LoaderState,
}

#[derive(Clone, Copy, Debug, Default)]
struct LoaderState {
    mode: Phase,
    /// Row and lane of the next entry written.
    row: u32,
    lane: u32,
    next_addr: u32,
    /// Bytes still to read.
    remaining: usize,
    /// Bytes read in the previous cycle (their data arrives now).
    arriving: usize,
    /// Assembled bytes not yet written, oldest first.
    acc_bytes: [u8; 16],
    have: usize,
}

impl ParamLoader {
    /// A loader reading `lanes` DRAM bytes per cycle with DRAM latency `latency >= 2`, into
    /// a table of `entries` entries in rows of `cols`: it divides `dst` by `cols` once, at
    /// the start, and then counts rows and lanes.
    pub fn new(lanes: usize, latency: usize, entries: usize, cols: usize) -> Self {
        assert!(latency >= 2, "the parameter loader needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            addr: Default::default(),
            count: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: (0..lanes).map(|_| Default::default()).collect(),
            wr_en: Default::default(),
            wr_row: Default::default(),
            wr_lane: Default::default(),
            wr_data: Default::default(),
            _latency: latency,
            _count_bits: 24,
            _cols: cols,
            _table_bits: crate::sram::index_bits(entries),
            _st: LoaderState::default(),
        }
    }

    /// The loader with its entry counters `bits` wide (at most 24), for a controller that
    /// keeps that many bits of the entry count.
    pub fn with_count_bits(mut self, bits: usize) -> Self {
        assert!((1..=24).contains(&bits), "{bits}-bit entry counters");
        self._count_bits = bits;
        self
    }

    fn per_cycle(&self) -> usize {
        self.dram_rd_data.len().min(8)
    }
}

impl Logic for ParamLoader {
    fn update(&mut self) {
        let st = self._st;
        // Bytes arriving this cycle join the buffer; a full entry is written.
        let mut acc_bytes = st.acc_bytes;
        let mut have = st.have;
        for i in 0..st.arriving {
            acc_bytes[have] = dma::byte(self.dram_rd_data[i].val()) as u8;
            have += 1;
        }
        let full = have >= 8;
        self.wr_en.next = full;
        self.wr_row.next = (st.row as u64).into();
        self.wr_lane.next = (st.lane as u64).into();
        self.wr_data.next = u64::from_le_bytes(acc_bytes[..8].try_into().unwrap()).into();
        self.ready.next = st.mode == Phase::Idle;
        self.complete.next = st.mode == Phase::Tail;
        let take = self.per_cycle().min(st.remaining);
        self.dram_rd_addr.next = if st.mode == Phase::Issue { (st.next_addr as u64).into() } else { 0u64.into() };
        if !self.clock.pos_edge() {
            return;
        }
        let mut n = st;
        n.arriving = 0;
        if full {
            acc_bytes.copy_within(8..16, 0);
            have -= 8;
            (n.row, n.lane) = if st.lane + 1 == self._cols as u32 { (st.row + 1, 0) } else { (st.row, st.lane + 1) };
        }
        n.acc_bytes = acc_bytes;
        n.have = have;
        match st.mode {
            Phase::Idle if self.start.val() => {
                let dst = self.dst.val().index() as u32 & ((1 << self._table_bits) - 1);
                (n.row, n.lane) = (dst / self._cols as u32, dst % self._cols as u32);
                n.next_addr = self.addr.val().index() as u32;
                n.remaining = 8 * self.count.val().index();
                n.have = 0;
                n.mode = Phase::started(self._latency, n.remaining > 0);
            }
            Phase::Idle => {}
            Phase::Wait { left } => n.mode = Phase::after_wait(left, st.remaining > 0),
            Phase::Issue => {
                n.arriving = take;
                n.remaining = st.remaining - take;
                n.next_addr = st.next_addr.wrapping_add(take as u32);
                if n.remaining == 0 {
                    n.mode = Phase::Tail;
                }
            }
            Phase::Tail => n.mode = Phase::Idle,
        }
        self._st = n;
    }

    fn connect(&mut self) {
        self.ready.connect();
        self.complete.connect();
        self.dram_rd_addr.connect();
        self.wr_en.connect();
        self.wr_row.connect();
        self.wr_lane.connect();
        self.wr_data.connect();
    }

    fn hdl(&self) -> Verilog {
        let r = self.per_cycle();
        let mut v = dma::verilog::phase_decls(self._latency);
        v += &crate::verilog::div_rem_functions(self._table_bits, self._cols);
        // With `r` dividing 8 (1, 2, 4 or 8 bytes per cycle) every beat brings exactly `r`
        // bytes of one entry: they shift into a 64-bit register from the top. Otherwise an
        // entry may straddle two beats, and a 16-byte buffer takes the bytes at `have`.
        let shift = 8 % r == 0;
        let (cb, rb) = (self._count_bits, self._count_bits + 3);
        let _ = write!(
            v,
            "reg [{rt}:0] remaining;
reg [31:0] next_addr;
reg [3:0] arriving;
reg [23:0] w_row;
reg [7:0] w_lane;
reg [{bt}:0] acc_bytes, cat;
reg [4:0] have, got;
initial begin
    remaining = 0; next_addr = 0; arriving = 0; w_row = 0; w_lane = 0; acc_bytes = 0; have = 0;
end
always @(*) begin
",
            rt = rb - 1,
            bt = if shift { 63 } else { 127 },
        );
        if shift {
            let bytes: Vec<String> = (0..r).rev().map(|i| format!("dram_rd_data${i}")).collect();
            let rest = if r == 8 { String::new() } else { format!(", acc_bytes[63:{}]", 8 * r) };
            let _ = writeln!(
                v,
                "    cat = (arriving != 0) ? {{{}{rest}}} : acc_bytes;\n    got = have + {{1'b0, arriving}};",
                bytes.join(", ")
            );
        } else {
            v.push_str("    cat = acc_bytes;\n    got = have;\n");
            for i in 0..r {
                let _ = writeln!(v, "    if ({i} < arriving) begin cat[got*8 +: 8] = dram_rd_data${i}; got = got + 1; end");
            }
        }
        let last = self._cols - 1;
        let next_entry =
            format!("if (w_lane == 8'd{last}) begin w_lane <= 8'd0; w_row <= w_row + 24'd1; end else w_lane <= w_lane + 8'd1;");
        let (row, lane) = crate::verilog::div_rem("dst", self._table_bits, self._cols);
        let keep = if shift { "acc_bytes <= cat; have <= 5'd0;" } else { "acc_bytes <= cat >> 64; have <= got - 8;" };
        let _ = write!(
            v,
            "    wr_en = (got >= 8);
    wr_row = w_row;
    wr_lane = w_lane;
    wr_data = cat[63:0];
    {phase_outputs}
    dram_rd_addr = (mode == 2) ? next_addr : 32'd0;
end
always @(posedge clock) begin
    arriving <= 0;
    if (got >= 8) begin {keep} {next_entry} end
    else begin acc_bytes <= cat; have <= got; end
    {phases}
end
",
            phase_outputs = dma::verilog::PHASE_OUTPUTS,
            phases = dma::verilog::phases(
                self._latency,
                &format!(
                    "w_row <= {row}; w_lane <= {lane}; next_addr <= addr; remaining <= {{count[{}:0], 3'd0}}; have <= 0; acc_bytes <= 0;",
                    cb - 1
                ),
                "count != 0",
                "remaining != 0",
                &format!(
                    "arriving <= (remaining < {r}) ? remaining[3:0] : 4'd{r};
        remaining <= (remaining < {r}) ? {rb}'d0 : remaining - {rb}'d{r};
        next_addr <= next_addr + {r};
        if (remaining <= {r}) mode <= 3;"
                ),
            ),
        );
        Verilog::Custom(v)
    }
}
