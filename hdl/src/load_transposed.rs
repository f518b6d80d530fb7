//! The transposed load engine for `LoadTransposed` (docs/ARCHITECTURE.md sections 4, 5
//! and 9): runs of pixel-major DRAM bytes into channel-major activation words.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles; then the gather issues one
//! DRAM beat per cycle, writing each beat's bytes one cycle later into lane `run % rows`
//! of its bank, and the drain writes one activation word per cycle from a full bank: word
//! `dst + group*pitch + i2*len + j` gets byte `j` of every lane (0 for lanes without a
//! run). Both overlap double-buffered as [`crate::transposer`] describes, which gives
//! `core::timing::transposer_cycles` exactly; the last drain cycle of the last group is the
//! instruction's last busy cycle and pulses `complete`. An instruction without runs or
//! with `len = 0` only waits.

use crate::dma::{self, BeatWalk, Phase};
use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use crate::transposer::{self, Banks};
use rust_hdl::prelude::*;
use std::fmt::Write;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The transposed load engine.
#[derive(LogicBlock)]
pub struct LoadTransposedEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Word of group 0, byte 0.
    pub dst: Signal<In, Addr>,
    /// Words between groups.
    pub pitch: Signal<In, Addr>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run (at most the transposer depth).
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
    _latency: usize,
    _depth: usize,
    _st: State,
}

/// The beat issued in the previous cycle, written into a bank in this one.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    valid: bool,
    bank: usize,
    lane: u32,
    base: usize,
    end_group: bool,
    ends_outer: bool,
    last: bool,
}

#[derive(Clone, Debug, Default)]
struct State {
    mode: Phase,
    dst: u32,
    pitch: u32,
    len: usize,
    walk: BeatWalk,
    g_on: bool,
    g_lane: u32,
    g_bank: usize,
    pending: Pending,
    banks: Banks,
    d_bank: usize,
    d_j: usize,
    d_base: u32,
    d_outer: u32,
}

impl LoadTransposedEngine {
    /// An engine for `rows`-byte activation words, `lanes` DRAM bytes per cycle, a DRAM
    /// latency of `latency >= 2` cycles and banks of `depth` bytes per lane.
    pub fn new(rows: usize, lanes: usize, latency: usize, depth: usize) -> Self {
        assert!(latency >= 2, "the transposed load engine needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            pitch: Default::default(),
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
            _latency: latency,
            _depth: depth,
            _st: State { banks: Banks::new(rows, depth), ..Default::default() },
        }
    }
}

impl Logic for LoadTransposedEngine {
    fn update(&mut self) {
        let lanes = self.dram_rd_data.len();
        let rows = self.act_we.len();
        let st = &self._st;
        let working = st.mode == Phase::Issue;
        let d_on = working && st.banks.full[st.d_bank];
        let d_last = d_on && st.d_j + 1 == st.len;
        let g_issue = working && st.g_on && st.banks.free(st.g_bank, d_last, st.d_bank);
        for l in 0..rows {
            self.act_we[l].next = d_on;
            let v = if d_on && (l as u32) < st.banks.runs[st.d_bank] { st.banks.at(st.d_bank, l, st.d_j) } else { 0 };
            self.act_data[l].next = (v as i64).into();
        }
        self.act_addr.next = (if d_on { st.d_base.wrapping_add(st.d_j as u32) } else { 0 } as u64).into();
        self.dram_rd_addr.next = if g_issue { (st.walk.beat_addr(lanes) as u64).into() } else { 0u64.into() };
        self.ready.next = st.mode == Phase::Idle;
        self.complete.next = st.mode == Phase::Tail || (d_last && st.banks.last[st.d_bank]);
        if !self.clock.pos_edge() {
            return;
        }
        let rd: Vec<i8> = self.dram_rd_data.iter().map(|d| dma::byte(d.val()) as i8).collect();
        let mut n = self._st.clone();
        let st = &self._st;
        n.pending = Pending::default();
        let p = st.pending;
        if p.valid {
            for (i, &b) in rd.iter().enumerate() {
                if p.base + i < st.len {
                    n.banks.set(p.bank, p.lane as usize, p.base + i, b);
                }
            }
        }
        match st.mode {
            Phase::Idle if self.start.val() => {
                n.dst = self.dst.val().index() as u32;
                n.pitch = self.pitch.val().index() as u32;
                n.len = self.len.val().index();
                n.walk = BeatWalk::from_ports(&self.addr, &self.count, &self.stride, n.len, lanes);
                n.g_on = n.walk.nonempty() && n.len > 0;
                (n.g_lane, n.g_bank, n.d_bank, n.d_j, n.d_base, n.d_outer) = (0, 0, 0, 0, n.dst, n.dst);
                n.banks.full = [false; 2];
                n.mode = Phase::started(self._latency, n.g_on);
            }
            Phase::Idle => {}
            Phase::Wait { left } => n.mode = Phase::after_wait(left, st.g_on),
            Phase::Issue => {
                if d_on {
                    if d_last {
                        n.banks.full[st.d_bank] = false;
                        n.d_bank = 1 - st.d_bank;
                        n.d_j = 0;
                        if st.banks.ends_outer[st.d_bank] {
                            n.d_outer = st.d_outer.wrapping_add(st.len as u32);
                            n.d_base = n.d_outer;
                        } else {
                            n.d_base = st.d_base.wrapping_add(st.pitch);
                        }
                        if st.banks.last[st.d_bank] {
                            n.mode = Phase::Idle;
                        }
                    } else {
                        n.d_j = st.d_j + 1;
                    }
                }
                if g_issue {
                    let last_beat = st.walk.last_beat();
                    let ends_outer = last_beat && st.walk.last_inner_run();
                    let last = !n.walk.advance();
                    let end_group = last_beat && (st.g_lane as usize + 1 == rows || ends_outer || last);
                    n.pending =
                        Pending { valid: true, bank: st.g_bank, lane: st.g_lane, base: st.walk.beat * lanes, end_group, ends_outer, last };
                    if end_group {
                        n.g_lane = 0;
                        n.g_bank = 1 - st.g_bank;
                    } else if last_beat {
                        n.g_lane = st.g_lane + 1;
                    }
                    n.g_on = !last;
                }
            }
            Phase::Tail => n.mode = Phase::Idle,
        }
        if p.valid && p.end_group {
            n.banks.fill(p.bank, p.lane + 1, p.last, p.ends_outer);
        }
        self._st = n;
    }

    fn connect(&mut self) {
        for s in [&mut self.ready, &mut self.complete] {
            s.connect();
        }
        self.dram_rd_addr.connect();
        self.act_addr.connect();
        for s in &mut self.act_we {
            s.connect();
        }
        for s in &mut self.act_data {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        use transposer::verilog as tv;
        let lanes = self.dram_rd_data.len();
        let beat_lanes = crate::verilog::times("beat", lanes, 32);
        let rows = self.act_we.len();
        let depth = self._depth;
        // An instruction with runs of at least one byte has work after its wait.
        let work_at_start = format!("({}) && len != 0", dma::verilog::NONEMPTY_AT_START);
        let mut v = String::new();
        let _ = write!(
            v,
            "{phase_decls}{decls}{banks}reg [23:0] f_dst, f_pitch, d_base, d_outer;
reg [15:0] f_len, g_lane, d_j;
reg g_on, g_bank, d_bank;
reg p_valid, p_bank, p_end, p_outer, p_last;
reg [15:0] p_lane, p_base;
reg d_on, d_last, g_issue;
reg last_beat, outer_end, last_run;
initial begin
    f_dst = 0; f_pitch = 0; d_base = 0; d_outer = 0; f_len = 0; g_lane = 0; d_j = 0;
    g_on = 0; g_bank = 0; d_bank = 0;
    p_valid = 0; p_bank = 0; p_end = 0; p_outer = 0; p_last = 0; p_lane = 0; p_base = 0;
end
always @(*) begin
    ready = (mode == 0);
    d_on = (mode == 2) && full[d_bank];
    d_last = d_on && (d_j + 1 == f_len);
    g_issue = (mode == 2) && g_on && {free};
    complete = (mode == 3) || (d_last && last[d_bank]);
    dram_rd_addr = g_issue ? {beat_addr} : 32'd0;
    act_addr = d_on ? d_base + d_j : 24'd0;
    last_beat = {last_beat};
    outer_end = last_beat && {last_inner};
    last_run = last_beat && !{more};
",
            phase_decls = dma::verilog::phase_decls(self._latency),
            decls = dma::verilog::DECLS,
            banks = tv::decls(rows, depth),
            free = tv::free("g_bank", "d_last", "d_bank"),
            beat_addr = dma::verilog::beat_addr(lanes),
            last_beat = dma::verilog::LAST_BEAT,
            last_inner = dma::verilog::LAST_INNER_RUN,
            more = dma::verilog::MORE_RUNS,
        );
        for l in 0..rows {
            let _ = writeln!(
                v,
                "    act_we${l} = d_on;\n    act_data${l} = (d_on && {l} < {runs}) ? tb[{at}] : 8'sd0;",
                runs = tv::runs("d_bank"),
                at = tv::at(rows, depth, "d_bank", &l.to_string(), "d_j"),
            );
        }
        let _ = write!(
            v,
            "end
always @(posedge clock) begin
    p_valid <= 0;
    if (p_valid) begin
"
        );
        for i in 0..lanes {
            let _ = writeln!(
                v,
                "        if (p_base + {i} < f_len) tb[{at}] <= dram_rd_data${i};",
                at = tv::at(rows, depth, "p_bank", "p_lane", &format!("(p_base + {i})"))
            );
        }
        let _ = write!(
            v,
            "    end
    {phases}
    if (p_valid && p_end) begin
        {fill}
    end
end
",
            phases = dma::verilog::phases(
                self._latency,
                &format!(
                    "f_dst <= dst; f_pitch <= pitch; f_len <= len;
        {start}
        g_on <= {work};
        g_lane <= 0; g_bank <= 0; d_bank <= 0; d_j <= 0; d_base <= dst; d_outer <= dst;
        full <= 2'b00;",
                    start = dma::verilog::start(lanes),
                    work = work_at_start,
                ),
                &work_at_start,
                "g_on",
                &format!(
                    "if (d_on) begin
            if (d_last) begin
                full[d_bank] <= 1'b0;
                d_bank <= !d_bank;
                d_j <= 0;
                if (ends_outer[d_bank]) begin d_outer <= d_outer + f_len; d_base <= d_outer + f_len; end
                else d_base <= d_base + f_pitch;
                if (last[d_bank]) mode <= 0;
            end else d_j <= d_j + 1;
        end
        if (g_issue) begin
            p_valid <= 1; p_bank <= g_bank; p_lane <= g_lane; p_base <= {beat_lanes};
            p_end <= last_beat && (g_lane + 1 == {rows} || outer_end || last_run);
            p_outer <= outer_end; p_last <= last_run;
            if (last_beat && (g_lane + 1 == {rows} || outer_end || last_run)) begin g_lane <= 0; g_bank <= !g_bank; end
            else if (last_beat) g_lane <= g_lane + 1;
            if (last_run) g_on <= 0;
            {advance}
        end",
                    advance = dma::verilog::advance(";"),
                ),
            ),
            fill = tv::fill("p_bank", "p_lane + 1", "p_last", "p_outer"),
        );
        Verilog::Custom(v)
    }
}
