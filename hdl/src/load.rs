//! The load engine for `Load` (docs/ARCHITECTURE.md sections 4, 5 and 9): DRAM runs into
//! activation or weight scratchpad words.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles, then issues one DRAM beat
//! (`B` bytes of one run) per cycle; a beat's bytes are written one cycle later, into the
//! lanes `offset + beat*B ..` of word `dst + run`. The first beat of a run also zeroes the
//! lanes from `offset + len` on; a run with `len = 0` takes one beat that only zeroes. The
//! last write is in cycle `s + L + T - 1` with `T = max(runs, beats)`, the instruction's
//! last busy cycle, which pulses `complete`.
//!
//! The control and the lane multiplexers are written as Verilog with their Rust model side
//! by side (rust-hdl's `hdl_gen` cannot index lanes by a run-time value).

use crate::dma::{self, BeatWalk, Phase};
use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;
use std::fmt::Write;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The load engine.
#[derive(LogicBlock)]
pub struct LoadEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Target: weight scratchpad when set, activation scratchpad otherwise.
    pub target: Signal<In, Bit>,
    /// First destination word.
    pub dst: Signal<In, Addr>,
    /// First byte written within each word.
    pub offset: Signal<In, Bits<16>>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run.
    pub len: Signal<In, Bits<16>>,
    /// Runs per loop level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Byte stride per loop level (two's complement), outermost first.
    pub stride: Vec<Signal<In, DAddr>>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// DRAM: first byte of this cycle's beat.
    pub dram_rd_addr: Signal<Out, DAddr>,
    /// DRAM: the beat read in the previous cycle.
    pub dram_rd_data: Vec<Signal<In, Signed<8>>>,
    /// Activation scratchpad: lane write enables.
    pub act_we: Vec<Signal<Out, Bit>>,
    /// Activation scratchpad: word written.
    pub act_addr: Signal<Out, Addr>,
    /// Activation scratchpad: lane data.
    pub act_data: Vec<Signal<Out, Signed<8>>>,
    /// Weight scratchpad: lane write enables.
    pub wgt_we: Vec<Signal<Out, Bit>>,
    /// Weight scratchpad: word written.
    pub wgt_addr: Signal<Out, Addr>,
    /// Weight scratchpad: lane data.
    pub wgt_data: Vec<Signal<Out, Signed<8>>>,
    _latency: usize,
    _count_bits: usize,
    _len_bits: usize,
    _st: State,
}

/// The beat issued in the previous cycle, written in this one.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    valid: bool,
    target: bool,
    word: u32,
    lane_base: usize,
    first: bool,
    end: usize,
}

/// Latched fields and loop counters.
#[derive(Clone, Copy, Debug, Default)]
struct State {
    mode: Phase,
    target: bool,
    dst: u32,
    offset: usize,
    len: usize,
    walk: BeatWalk,
    pending: Pending,
}

impl LoadEngine {
    /// An engine for `rows`-byte activation words, `cols`-byte weight words, `lanes` DRAM
    /// bytes per cycle and a DRAM latency of `latency >= 2` cycles.
    pub fn new(rows: usize, cols: usize, lanes: usize, latency: usize) -> Self {
        assert!(latency >= 2, "the load engine needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            target: Default::default(),
            dst: Default::default(),
            offset: Default::default(),
            addr: Default::default(),
            len: Default::default(),
            count: (0..3).map(|_| Default::default()).collect(),
            stride: (0..3).map(|_| Default::default()).collect(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: (0..lanes).map(|_| Default::default()).collect(),
            act_we: (0..rows).map(|_| Default::default()).collect(),
            act_addr: Default::default(),
            act_data: (0..rows).map(|_| Default::default()).collect(),
            wgt_we: (0..cols).map(|_| Default::default()).collect(),
            wgt_addr: Default::default(),
            wgt_data: (0..cols).map(|_| Default::default()).collect(),
            _latency: latency,
            _count_bits: 24,
            _len_bits: 16,
            _st: State::default(),
        }
    }

    fn lanes(&self) -> usize {
        self.dram_rd_data.len()
    }
}

impl LoadEngine {
    /// The engine with its loop counters `count_bits` wide (at most 24) and its beat and
    /// byte counters `len_bits` wide (at most 16), for a controller that keeps that many
    /// bits of the count and length fields.
    pub fn with_field_bits(mut self, count_bits: usize, len_bits: usize) -> Self {
        assert!((1..=24).contains(&count_bits) && (1..=16).contains(&len_bits), "{count_bits}-bit loop and {len_bits}-bit beat counters");
        (self._count_bits, self._len_bits) = (count_bits, len_bits);
        self
    }
}

impl Logic for LoadEngine {
    fn update(&mut self) {
        let st = self._st;
        let lanes = self.lanes();
        // Writes of the beat issued in the previous cycle.
        let p = st.pending;
        let rd: Vec<Signed<8>> = self.dram_rd_data.iter().map(|d| d.val()).collect();
        let lane = |l: usize, target: bool| -> (bool, Signed<8>) {
            if !p.valid || p.target != target {
                return (false, Signed::default());
            }
            if l >= p.lane_base && l < (p.lane_base + lanes).min(p.end) {
                (true, rd[l - p.lane_base])
            } else {
                (p.first && l >= p.end, Signed::default())
            }
        };
        for l in 0..self.act_we.len() {
            let (en, v) = lane(l, false);
            self.act_we[l].next = en;
            self.act_data[l].next = v;
        }
        for l in 0..self.wgt_we.len() {
            let (en, v) = lane(l, true);
            self.wgt_we[l].next = en;
            self.wgt_data[l].next = v;
        }
        self.act_addr.next = (p.word as u64).into();
        self.wgt_addr.next = (p.word as u64).into();
        self.ready.next = st.mode == Phase::Idle;
        self.complete.next = st.mode == Phase::Tail;
        self.dram_rd_addr.next = if st.mode == Phase::Issue { (st.walk.beat_addr(lanes) as u64).into() } else { 0u64.into() };
        if !self.clock.pos_edge() {
            return;
        }
        // The edge: next state.
        let mut n = st;
        n.pending = Pending::default();
        match st.mode {
            Phase::Idle if self.start.val() => {
                n.target = self.target.val();
                n.dst = self.dst.val().index() as u32;
                n.offset = self.offset.val().index();
                n.len = self.len.val().index();
                n.walk = BeatWalk::from_ports(&self.addr, &self.count, &self.stride, n.len, lanes);
                n.mode = Phase::started(self._latency, n.walk.nonempty());
            }
            Phase::Idle => {}
            Phase::Wait { left } => n.mode = Phase::after_wait(left, st.walk.nonempty()),
            Phase::Issue => {
                n.pending = Pending {
                    valid: true,
                    target: st.target,
                    word: st.dst.wrapping_add(st.walk.run),
                    lane_base: st.offset + st.walk.beat * lanes,
                    first: st.walk.beat == 0,
                    end: st.offset + st.len,
                };
                if !n.walk.advance() {
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
        self.act_addr.connect();
        self.wgt_addr.connect();
        for s in self.act_we.iter_mut().chain(self.wgt_we.iter_mut()) {
            s.connect();
        }
        for s in self.act_data.iter_mut().chain(self.wgt_data.iter_mut()) {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let lanes = self.lanes();
        let beat_lanes = crate::verilog::times("beat", lanes, 32);
        let (rows, cols) = (self.act_we.len(), self.wgt_we.len());
        let mut v = String::new();
        let _ = write!(
            v,
            "{phase_decls}reg tgt;
reg [23:0] f_dst;
reg [15:0] f_off, f_len;
{decls}reg p_valid, p_tgt, p_first;
reg [23:0] p_word;
reg [15:0] p_base, p_end;
initial begin
    tgt = 0; f_dst = 0; f_off = 0; f_len = 0;
    p_valid = 0; p_tgt = 0; p_first = 0; p_word = 0; p_base = 0; p_end = 0;
end
always @(*) begin
    {phase_outputs}
    dram_rd_addr = (mode == 2) ? {beat_addr} : 32'd0;
    act_addr = p_word;
    wgt_addr = p_word;
",
            phase_decls = dma::verilog::phase_decls(self._latency),
            phase_outputs = dma::verilog::PHASE_OUTPUTS,
            decls = dma::verilog::decls(self._count_bits, self._len_bits),
            beat_addr = dma::verilog::beat_addr(lanes),
        );
        for (port, width, sel) in [("act", rows, "!p_tgt"), ("wgt", cols, "p_tgt")] {
            for l in 0..width {
                let _ = writeln!(v, "    {port}_we${l} = 1'b0;\n    {port}_data${l} = 8'sd0;");
                let _ = writeln!(v, "    if (p_valid && {sel} && p_first && {l} >= p_end) {port}_we${l} = 1'b1;");
                let _ = writeln!(v, "    if (p_valid && {sel} && {l} >= p_base && {l} < p_base + {lanes} && {l} < p_end) begin");
                let _ = writeln!(v, "        {port}_we${l} = 1'b1;\n        case ({l} - p_base)");
                for i in 0..lanes.min(width) {
                    let _ = writeln!(v, "            {i}: {port}_data${l} = dram_rd_data${i};");
                }
                let _ = writeln!(v, "            default: {port}_data${l} = 8'sd0;\n        endcase\n    end");
            }
        }
        let _ = write!(
            v,
            "end
always @(posedge clock) begin
    p_valid <= 0;
    {phases}
end
",
            phases = dma::verilog::phases(
                self._latency,
                &format!("tgt <= target; f_dst <= dst; f_off <= offset; f_len <= len;\n        {}", dma::verilog::start(lanes)),
                dma::verilog::NONEMPTY_AT_START,
                dma::verilog::NONEMPTY,
                &format!(
                    "p_valid <= 1; p_tgt <= tgt; p_word <= f_dst + run; p_base <= f_off + {beat_lanes};
        p_first <= (beat == 0); p_end <= f_off + f_len;
        {}",
                    dma::verilog::advance("mode <= 3;")
                ),
            ),
        );
        Verilog::Custom(v)
    }
}
