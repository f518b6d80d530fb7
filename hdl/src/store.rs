//! The store engine for `Store` (docs/ARCHITECTURE.md sections 4, 5 and 9): requantized
//! accumulator rows into DRAM runs.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles, then handles one DRAM beat
//! per cycle: it reads accumulator row `acc + run` and the requantization entries from
//! `param` on (data in the next cycle), and in the next cycle the requantization units'
//! bytes for columns `beat*B ..` go to DRAM at the beat's address. A run takes
//! `max(1, ceil(len / B))` beats; with `len = 0` its beat writes nothing. The last write is
//! in cycle `s + L + T - 1` with `T = max(runs, beats)`, the instruction's last busy cycle.
//!
//! With `ahead = p` (the requantization units' pipeline registers), the engine issues its
//! reads `p` cycles earlier, inside the DRAM wait, and delays the beats' writes, `ready`
//! and `complete` by `p` cycles, so that the bytes meet the units' results and the timing
//! stays that of section 5. Its wait `L` is the ArchConfig's `store_latency()`, which is
//! at least `p + 2`.
//!
//! The control is written as Verilog with its Rust model side by side; the requantization
//! units sit outside, between the memories and this engine.

use crate::dma::{self, BeatWalk, Phase};
use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;
use std::fmt::Write;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The store engine.
#[derive(LogicBlock)]
pub struct StoreEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// First accumulator row.
    pub acc: Signal<In, Addr>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run (at most `cols`).
    pub len: Signal<In, Bits<16>>,
    /// Runs per loop level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Byte stride per loop level (two's complement), outermost first.
    pub stride: Vec<Signal<In, DAddr>>,
    /// First requantization entry.
    pub param: Signal<In, Addr>,
    /// Output zero point.
    pub zp: Signal<In, Signed<8>>,
    /// Lower clamp.
    pub lo: Signal<In, Signed<8>>,
    /// Upper clamp.
    pub hi: Signal<In, Signed<8>>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// Accumulator row to read this cycle.
    pub acc_addr: Signal<Out, Addr>,
    /// First requantization entry to read this cycle.
    pub param_entry: Signal<Out, Addr>,
    /// The table row holding it (`param / cols`, divided once, at the start).
    pub param_row: Signal<Out, Addr>,
    /// Zero point for the requantization units.
    pub rq_zp: Signal<Out, Signed<8>>,
    /// Lower clamp for the requantization units.
    pub rq_lo: Signal<Out, Signed<8>>,
    /// Upper clamp for the requantization units.
    pub rq_hi: Signal<Out, Signed<8>>,
    /// The requantized row read in the previous cycle, lane `j` for column `j`.
    pub q: Vec<Signal<In, Signed<8>>>,
    /// The first column of the beat whose row was read in the previous cycle (its bytes
    /// are columns `beat_col ..`, one per DRAM lane).
    pub beat_col: Signal<Out, Bits<16>>,
    /// DRAM: first byte written this cycle.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM: bytes.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM: lane enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    _latency: usize,
    _count_bits: usize,
    _len_bits: usize,
    _ahead: usize,
    _table_bits: usize,
    _st: State,
}

/// Most cycles an engine reads ahead of its writes: the requantizer's deepest pipeline.
pub const MAX_AHEAD: usize = crate::requant::MAX_STAGES;

/// The beat issued in the previous cycle, written in this one.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    valid: bool,
    addr: u32,
    col_base: usize,
    bytes: usize,
}

#[derive(Clone, Copy, Debug, Default)]
struct State {
    mode: Phase,
    acc: u32,
    len: usize,
    param: u32,
    param_row: u32,
    zp: i64,
    lo: i64,
    hi: i64,
    walk: BeatWalk,
    pending: Pending,
    // `pending`, `ready` and `complete` of the last `MAX_AHEAD` cycles, latest first.
    delayed: [Pending; MAX_AHEAD],
    was_ready: [bool; MAX_AHEAD],
    was_complete: [bool; MAX_AHEAD],
}

impl StoreEngine {
    /// An engine for `cols` accumulator columns, `lanes` DRAM bytes per cycle and a DRAM
    /// latency of `latency` cycles, reading `ahead` cycles before it writes
    /// (`latency - ahead >= 2`, `ahead <= MAX_AHEAD`), for a table of `entries` entries (its
    /// row divider takes an entry's low address bits only).
    pub fn new(cols: usize, lanes: usize, latency: usize, ahead: usize, entries: usize) -> Self {
        assert!(
            ahead <= MAX_AHEAD && latency >= ahead + 2,
            "the store engine needs a DRAM latency of at least {} to read {ahead} cycles ahead",
            ahead + 2
        );
        Self {
            clock: Default::default(),
            start: Default::default(),
            acc: Default::default(),
            addr: Default::default(),
            len: Default::default(),
            count: (0..3).map(|_| Default::default()).collect(),
            stride: (0..3).map(|_| Default::default()).collect(),
            param: Default::default(),
            zp: Default::default(),
            lo: Default::default(),
            hi: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            acc_addr: Default::default(),
            param_entry: Default::default(),
            param_row: Default::default(),
            rq_zp: Default::default(),
            rq_lo: Default::default(),
            rq_hi: Default::default(),
            q: (0..cols).map(|_| Default::default()).collect(),
            beat_col: Default::default(),
            dram_wr_addr: Default::default(),
            dram_wr_data: (0..lanes).map(|_| Default::default()).collect(),
            dram_wr_en: (0..lanes).map(|_| Default::default()).collect(),
            _latency: latency,
            _count_bits: 24,
            _len_bits: 16,
            _ahead: ahead,
            _table_bits: crate::sram::index_bits(entries),
            _st: State { was_ready: [true; MAX_AHEAD], ..State::default() },
        }
    }
}

impl StoreEngine {
    /// The engine with its loop counters `count_bits` wide (at most 24) and its beat and
    /// byte counters `len_bits` wide (at most 16), for a controller that keeps that many
    /// bits of the count and length fields.
    pub fn with_field_bits(mut self, count_bits: usize, len_bits: usize) -> Self {
        assert!((1..=24).contains(&count_bits) && (1..=16).contains(&len_bits), "{count_bits}-bit loop and {len_bits}-bit beat counters");
        (self._count_bits, self._len_bits) = (count_bits, len_bits);
        self
    }
}

impl Logic for StoreEngine {
    fn update(&mut self) {
        let st = self._st;
        let lanes = self.dram_wr_data.len();
        let ahead = self._ahead;
        let p = if ahead == 0 { st.pending } else { st.delayed[ahead - 1] };
        for i in 0..lanes {
            let col = p.col_base + i;
            let en = p.valid && i < p.bytes && col < self.q.len();
            self.dram_wr_en[i].next = en;
            self.dram_wr_data[i].next = if en { self.q[col].val() } else { Signed::default() };
        }
        self.dram_wr_addr.next = (p.addr as u64).into();
        self.beat_col.next = (st.pending.col_base as u64).into();
        let (ready, complete) = (st.mode == Phase::Idle, st.mode == Phase::Tail);
        self.ready.next = ready && st.was_ready[..ahead].iter().all(|&r| r);
        self.complete.next = if ahead == 0 { complete } else { st.was_complete[ahead - 1] };
        self.acc_addr.next = (st.acc.wrapping_add(st.walk.run) as u64).into();
        self.param_entry.next = (st.param as u64).into();
        self.param_row.next = (st.param_row as u64).into();
        self.rq_zp.next = st.zp.into();
        self.rq_lo.next = st.lo.into();
        self.rq_hi.next = st.hi.into();
        if !self.clock.pos_edge() {
            return;
        }
        let mut n = st;
        n.pending = Pending::default();
        n.delayed = std::array::from_fn(|k| if k == 0 { st.pending } else { st.delayed[k - 1] });
        n.was_ready = std::array::from_fn(|k| if k == 0 { ready } else { st.was_ready[k - 1] });
        n.was_complete = std::array::from_fn(|k| if k == 0 { complete } else { st.was_complete[k - 1] });
        match st.mode {
            Phase::Idle if self.start.val() => {
                n.acc = self.acc.val().index() as u32;
                n.len = self.len.val().index();
                n.param = self.param.val().index() as u32;
                n.param_row = (n.param & ((1 << self._table_bits) - 1)) / self.q.len() as u32;
                n.zp = dma::byte(self.zp.val());
                n.lo = dma::byte(self.lo.val());
                n.hi = dma::byte(self.hi.val());
                n.walk = BeatWalk::from_ports(&self.addr, &self.count, &self.stride, n.len, lanes);
                n.mode = Phase::started(self._latency - self._ahead, n.walk.nonempty());
            }
            Phase::Idle => {}
            Phase::Wait { left } => n.mode = Phase::after_wait(left, st.walk.nonempty()),
            Phase::Issue => {
                let col_base = st.walk.beat * lanes;
                n.pending =
                    Pending { valid: true, addr: st.walk.beat_addr(lanes), col_base, bytes: st.len.saturating_sub(col_base).min(lanes) };
                if !n.walk.advance() {
                    n.mode = Phase::Tail;
                }
            }
            Phase::Tail => n.mode = Phase::Idle,
        }
        self._st = n;
    }

    fn connect(&mut self) {
        for s in [&mut self.ready, &mut self.complete] {
            s.connect();
        }
        self.acc_addr.connect();
        self.param_entry.connect();
        self.param_row.connect();
        self.beat_col.connect();
        for s in [&mut self.rq_zp, &mut self.rq_lo, &mut self.rq_hi] {
            s.connect();
        }
        self.dram_wr_addr.connect();
        for s in &mut self.dram_wr_data {
            s.connect();
        }
        for s in &mut self.dram_wr_en {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let lanes = self.dram_wr_data.len();
        let beat_lanes = crate::verilog::times("beat", lanes, 32);
        let cols = self.q.len();
        let ahead = self._ahead;
        // The write side: the pending beat `ahead` cycles late (w_*), and the history of
        // `ready` and `complete` (rh*, ch*, latest first).
        let (lt, lb) = (self._len_bits - 1, self._len_bits);
        let mut delay_decls = String::new();
        let mut delay_moves = String::new();
        let mut ready_terms = String::new();
        for k in 0..ahead {
            let (src, rsrc, csrc) = if k == 0 {
                ("p".to_string(), "(mode == 0)".to_string(), "(mode == 3)".to_string())
            } else {
                (format!("d{}", k - 1), format!("rh{}", k - 1), format!("ch{}", k - 1))
            };
            let _ = write!(
                delay_decls,
                "reg d{k}_valid, rh{k}, ch{k};\nreg [31:0] d{k}_addr;\nreg [{lt}:0] d{k}_base, d{k}_bytes;\ninitial begin d{k}_valid = 0; rh{k} = 1; ch{k} = 0; d{k}_addr = 0; d{k}_base = 0; d{k}_bytes = 0; end\n"
            );
            let _ = write!(
                delay_moves,
                "d{k}_valid <= {src}_valid; d{k}_addr <= {src}_addr; d{k}_base <= {src}_base; d{k}_bytes <= {src}_bytes;\n    rh{k} <= {rsrc}; ch{k} <= {csrc};\n    "
            );
            let _ = write!(ready_terms, " && rh{k}");
        }
        let w = if ahead == 0 { "p".to_string() } else { format!("d{}", ahead - 1) };
        let complete = if ahead == 0 { "(mode == 3)".to_string() } else { format!("ch{}", ahead - 1) };
        let mut v = crate::verilog::div_rem_functions(self._table_bits, cols);
        let _ = write!(
            v,
            "{phase_decls}reg [23:0] f_acc, f_param, f_prow;
reg [15:0] f_len;
reg signed [7:0] f_zp, f_lo, f_hi;
{decls}{delay_decls}reg p_valid;
reg [31:0] p_addr;
reg [{lt}:0] p_base, p_bytes;
initial begin
    f_acc = 0; f_param = 0; f_prow = 0; f_len = 0; f_zp = 0; f_lo = 0; f_hi = 0;
    p_valid = 0; p_addr = 0; p_base = 0; p_bytes = 0;
end
always @(*) begin
    ready = (mode == 0){ready_terms};
    complete = {complete};
    acc_addr = f_acc + run;
    param_entry = f_param;
    param_row = f_prow;
    rq_zp = f_zp;
    rq_lo = f_lo;
    rq_hi = f_hi;
    dram_wr_addr = {w}_addr;
    beat_col = p_base;
",
            phase_decls = dma::verilog::phase_decls(self._latency - ahead),
            decls = dma::verilog::decls(self._count_bits, self._len_bits),
        );
        for i in 0..lanes {
            let _ =
                writeln!(v, "    dram_wr_en${i} = {w}_valid && {i} < {w}_bytes && {w}_base + {i} < {cols};\n    dram_wr_data${i} = 8'sd0;");
            let _ = writeln!(v, "    if (dram_wr_en${i}) case ({w}_base + {i})");
            for j in 0..cols {
                let _ = writeln!(v, "        {j}: dram_wr_data${i} = q${j};");
            }
            let _ = writeln!(v, "        default: dram_wr_data${i} = 8'sd0;\n    endcase");
        }
        let _ = write!(
            v,
            "end
always @(posedge clock) begin
    {delay_moves}p_valid <= 0;
    {phases}
end
",
            phases = dma::verilog::phases(
                self._latency - ahead,
                &format!(
                    "f_acc <= acc; f_len <= len; f_param <= param; f_prow <= {}; f_zp <= zp; f_lo <= lo; f_hi <= hi;\n        {}",
                    crate::verilog::div_rem("param", self._table_bits, cols).0,
                    dma::verilog::start(lanes)
                ),
                dma::verilog::NONEMPTY_AT_START,
                dma::verilog::NONEMPTY,
                &format!(
                    "p_valid <= 1;
        p_addr <= {};
        p_base <= {beat_lanes};
        p_bytes <= (f_len > {beat_lanes}) ? ((f_len - {beat_lanes} < {lanes}) ? f_len - {beat_lanes} : {lanes}) : {lb}'d0;
        {}",
                    dma::verilog::beat_addr(lanes),
                    dma::verilog::advance("mode <= 3;")
                ),
            ),
        );
        Verilog::Custom(v)
    }
}

/// Routes the accumulator row and the table entries read in the previous cycle to `n`
/// requantization units: unit `i` gets column `beat_col + i` (the column DRAM lane `i` of
/// the beat writes) when `n` is below the column count, else column `i`; and the units'
/// results back to the columns, column `j` from unit `j % n` (a beat's first column is a
/// multiple of `n`). With fewer DRAM lanes than columns (and no transposed store, which
/// requantizes whole rows) a store needs only one unit per lane.
#[derive(LogicBlock)]
pub struct LaneSelect {
    /// First column of the beat (`StoreEngine::beat_col`).
    pub beat_col: Signal<In, Bits<16>>,
    /// The accumulator row, one value per column.
    pub acc_in: Vec<Signal<In, Signed<32>>>,
    /// The table entries, one per column.
    pub param_in: Vec<Signal<In, Bits<64>>>,
    /// Per unit: its accumulator value.
    pub acc_out: Vec<Signal<Out, Signed<32>>>,
    /// Per unit: its table entry.
    pub param_out: Vec<Signal<Out, Bits<64>>>,
    /// Per unit: its result.
    pub y_in: Vec<Signal<In, Signed<8>>>,
    /// Per column: the result of the unit that requantized it.
    pub q_out: Vec<Signal<Out, Signed<8>>>,
}

impl LaneSelect {
    /// A selector from `cols` columns to `units <= cols` requantization units.
    pub fn new(cols: usize, units: usize) -> Self {
        assert!((1..=cols).contains(&units), "{units} requantization units for {cols} columns");
        Self {
            beat_col: Default::default(),
            acc_in: (0..cols).map(|_| Default::default()).collect(),
            param_in: (0..cols).map(|_| Default::default()).collect(),
            acc_out: (0..units).map(|_| Default::default()).collect(),
            param_out: (0..units).map(|_| Default::default()).collect(),
            y_in: (0..units).map(|_| Default::default()).collect(),
            q_out: (0..cols).map(|_| Default::default()).collect(),
        }
    }

    /// The column unit `i` takes when the beat starts at column `base`.
    fn column(&self, base: usize, i: usize) -> usize {
        if self.acc_out.len() == self.acc_in.len() {
            i
        } else {
            base + i
        }
    }
}

impl Logic for LaneSelect {
    fn update(&mut self) {
        let base = self.beat_col.val().index();
        for i in 0..self.acc_out.len() {
            let j = self.column(base, i);
            self.acc_out[i].next = self.acc_in.get(j).map_or(Signed::default(), |s| s.val());
            self.param_out[i].next = self.param_in.get(j).map_or(Bits::default(), |s| s.val());
        }
        let units = self.y_in.len();
        for j in 0..self.q_out.len() {
            self.q_out[j].next = self.y_in[j % units].val();
        }
    }

    fn connect(&mut self) {
        for s in &mut self.acc_out {
            s.connect();
        }
        for s in &mut self.param_out {
            s.connect();
        }
        for s in &mut self.q_out {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let (cols, units) = (self.acc_in.len(), self.acc_out.len());
        let mut v = String::from("always @(*) begin\n");
        for i in 0..units {
            if units == cols {
                let _ = writeln!(v, "    acc_out${i} = acc_in${i};\n    param_out${i} = param_in${i};");
                continue;
            }
            let _ = writeln!(v, "    acc_out${i} = 32'sd0;\n    param_out${i} = 64'd0;\n    case (beat_col + {i})");
            for j in i..cols {
                let _ = writeln!(v, "        {j}: begin acc_out${i} = acc_in${j}; param_out${i} = param_in${j}; end");
            }
            let _ = writeln!(v, "        default: ;\n    endcase");
        }
        for j in 0..cols {
            let _ = writeln!(v, "    q_out${j} = y_in${};", j % units);
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
