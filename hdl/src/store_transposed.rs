//! The transposed store engine for `StoreTransposed` (docs/ARCHITECTURE.md sections 4, 5
//! and 9): channel-major accumulator rows into pixel-major DRAM runs.
//!
//! An instruction starting in cycle `s` waits `L - 1` cycles; then, for each line and each
//! block of `width` runs, the gather reads one accumulator row per cycle, row
//! `acc + j*row_stride + line*line_pitch + block` with requantization entry `param + j`
//! for every column (the requantized bytes arrive in the next cycle and go to byte `j` of
//! the bank's lanes), and the drain writes the block's runs to DRAM, one beat per cycle,
//! run `r` of the block from lane `r`. Gather and drain overlap double-buffered as
//! [`crate::transposer`] describes, which gives `core::timing::transposer_cycles`
//! exactly; the last drain cycle of the last block is the instruction's last busy cycle
//! and pulses `complete`. An instruction without runs or with `len = 0` only waits.

use crate::dma::{self, BeatWalk, Phase};
use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use crate::transposer::{self, Banks};
use rust_hdl::prelude::*;
use std::fmt::Write;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The transposed store engine.
#[derive(LogicBlock)]
pub struct StoreTransposedEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// Accumulator row of byte 0 of run 0.
    pub acc: Signal<In, Addr>,
    /// Accumulator rows between bytes of a run.
    pub row_stride: Signal<In, Addr>,
    /// Accumulator rows between lines.
    pub line_pitch: Signal<In, Addr>,
    /// Runs per accumulator row (at most `cols`).
    pub width: Signal<In, Bits<16>>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run (at most the transposer depth).
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
    /// Requantization entry to read this cycle, for every column.
    pub param_entry: Signal<Out, Addr>,
    /// Zero point for the requantization units.
    pub rq_zp: Signal<Out, Signed<8>>,
    /// Lower clamp for the requantization units.
    pub rq_lo: Signal<Out, Signed<8>>,
    /// Upper clamp for the requantization units.
    pub rq_hi: Signal<Out, Signed<8>>,
    /// The requantized row read in the previous cycle, lane `j` for column `j`.
    pub q: Vec<Signal<In, Signed<8>>>,
    /// DRAM: first byte written this cycle.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM: bytes.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM: lane enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    _latency: usize,
    _depth: usize,
    _st: State,
}

/// The row read in the previous cycle, written into a bank in this one.
#[derive(Clone, Copy, Debug, Default)]
struct Pending {
    valid: bool,
    bank: usize,
    j: usize,
    end_group: bool,
    runs: u32,
    last: bool,
}

#[derive(Clone, Debug, Default)]
struct State {
    mode: Phase,
    acc: u32,
    row_stride: u32,
    line_pitch: u32,
    width: u32,
    len: usize,
    param: u32,
    out: [i64; 3],
    per_line: u32,
    lines: [u32; 2],
    walk: BeatWalk,
    g_on: bool,
    g_bank: usize,
    g_j: usize,
    g_row: u32,
    g_line: u32,
    g_block: u32,
    g_run0: u32,
    g_l: [u32; 2],
    pending: Pending,
    banks: Banks,
    d_bank: usize,
    d_lane: u32,
}

impl StoreTransposedEngine {
    /// An engine for `cols` accumulator columns, `lanes` DRAM bytes per cycle, a DRAM
    /// latency of `latency >= 2` cycles and banks of `depth` bytes per lane.
    pub fn new(cols: usize, lanes: usize, latency: usize, depth: usize) -> Self {
        assert!(latency >= 2, "the transposed store engine needs a DRAM latency of at least 2");
        Self {
            clock: Default::default(),
            start: Default::default(),
            acc: Default::default(),
            row_stride: Default::default(),
            line_pitch: Default::default(),
            width: Default::default(),
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
            rq_zp: Default::default(),
            rq_lo: Default::default(),
            rq_hi: Default::default(),
            q: (0..cols).map(|_| Default::default()).collect(),
            dram_wr_addr: Default::default(),
            dram_wr_data: (0..lanes).map(|_| Default::default()).collect(),
            dram_wr_en: (0..lanes).map(|_| Default::default()).collect(),
            _latency: latency,
            _depth: depth,
            _st: State { banks: Banks::new(cols, depth), ..Default::default() },
        }
    }
}

impl Logic for StoreTransposedEngine {
    fn update(&mut self) {
        let lanes = self.dram_wr_data.len();
        let st = &self._st;
        let working = st.mode == Phase::Issue;
        let d_on = working && st.banks.full[st.d_bank];
        let d_last = d_on && st.walk.last_beat() && st.d_lane + 1 == st.banks.runs[st.d_bank];
        let g_issue = working && st.g_on && st.banks.free(st.g_bank, d_last, st.d_bank);
        for i in 0..lanes {
            let byte = st.walk.beat * lanes + i;
            let en = d_on && byte < st.len;
            self.dram_wr_en[i].next = en;
            self.dram_wr_data[i].next = (if en { st.banks.at(st.d_bank, st.d_lane as usize, byte) as i64 } else { 0 }).into();
        }
        self.dram_wr_addr.next = (if d_on { st.walk.beat_addr(lanes) } else { 0 } as u64).into();
        self.acc_addr.next = (st.g_row as u64).into();
        self.param_entry.next = (st.param.wrapping_add(st.g_j as u32) as u64).into();
        self.rq_zp.next = st.out[0].into();
        self.rq_lo.next = st.out[1].into();
        self.rq_hi.next = st.out[2].into();
        self.ready.next = st.mode == Phase::Idle;
        self.complete.next = st.mode == Phase::Tail || (d_last && st.banks.last[st.d_bank]);
        if !self.clock.pos_edge() {
            return;
        }
        let q: Vec<i8> = self.q.iter().map(|d| dma::byte(d.val()) as i8).collect();
        let mut n = self._st.clone();
        let st = &self._st;
        n.pending = Pending::default();
        let p = st.pending;
        if p.valid {
            for (c, &b) in q.iter().enumerate() {
                n.banks.set(p.bank, c, p.j, b);
            }
        }
        match st.mode {
            Phase::Idle if self.start.val() => {
                let c = |i: usize| self.count[i].val().index() as u32;
                n.acc = self.acc.val().index() as u32;
                n.row_stride = self.row_stride.val().index() as u32;
                n.line_pitch = self.line_pitch.val().index() as u32;
                n.width = self.width.val().index() as u32;
                n.len = self.len.val().index();
                n.param = self.param.val().index() as u32;
                n.out = [dma::byte(self.zp.val()), dma::byte(self.lo.val()), dma::byte(self.hi.val())];
                n.per_line = c(2);
                n.lines = [c(0), c(1)];
                n.walk = BeatWalk::from_ports(&self.addr, &self.count, &self.stride, n.len, lanes);
                n.g_on = n.walk.nonempty() && n.len > 0;
                (n.g_bank, n.g_j, n.g_row, n.g_line, n.g_block, n.g_run0, n.g_l) = (0, 0, n.acc, n.acc, 0, 0, [0, 0]);
                (n.d_bank, n.d_lane) = (0, 0);
                n.banks.full = [false; 2];
                n.mode = Phase::started(self._latency, n.g_on);
            }
            Phase::Idle => {}
            Phase::Wait { left } => n.mode = Phase::after_wait(left, st.g_on),
            Phase::Issue => {
                if d_on {
                    let last_beat = st.walk.last_beat();
                    n.walk.advance();
                    if d_last {
                        n.d_lane = 0;
                        n.banks.full[st.d_bank] = false;
                        n.d_bank = 1 - st.d_bank;
                        if st.banks.last[st.d_bank] {
                            n.mode = Phase::Idle;
                        }
                    } else if last_beat {
                        n.d_lane = st.d_lane + 1;
                    }
                }
                if g_issue {
                    let end_group = st.g_j + 1 == st.len;
                    let more_blocks = st.g_run0 + st.width < st.per_line;
                    let last_line = st.g_l[1] + 1 >= st.lines[1] && st.g_l[0] + 1 >= st.lines[0];
                    let last = end_group && !more_blocks && last_line;
                    let runs = st.width.min(st.per_line - st.g_run0);
                    n.pending = Pending { valid: true, bank: st.g_bank, j: st.g_j, end_group, runs, last };
                    if !end_group {
                        n.g_j = st.g_j + 1;
                        n.g_row = st.g_row.wrapping_add(st.row_stride);
                    } else {
                        n.g_j = 0;
                        n.g_bank = 1 - st.g_bank;
                        if more_blocks {
                            n.g_run0 = st.g_run0 + st.width;
                            n.g_block = st.g_block + 1;
                            n.g_row = st.g_line.wrapping_add(n.g_block);
                        } else {
                            n.g_run0 = 0;
                            n.g_block = 0;
                            n.g_line = st.g_line.wrapping_add(st.line_pitch);
                            n.g_row = n.g_line;
                            if st.g_l[1] + 1 < st.lines[1] {
                                n.g_l[1] = st.g_l[1] + 1;
                            } else {
                                n.g_l = [st.g_l[0] + 1, 0];
                            }
                        }
                    }
                    n.g_on = !last;
                }
            }
            Phase::Tail => n.mode = Phase::Idle,
        }
        if p.valid && p.end_group {
            n.banks.fill(p.bank, p.runs, p.last, false);
        }
        self._st = n;
    }

    fn connect(&mut self) {
        for s in [&mut self.ready, &mut self.complete] {
            s.connect();
        }
        self.acc_addr.connect();
        self.param_entry.connect();
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
        use transposer::verilog as tv;
        let lanes = self.dram_wr_data.len();
        let beat_lanes = crate::verilog::times("beat", lanes, 32);
        let cols = self.q.len();
        let depth = self._depth;
        // An instruction with runs of at least one byte has work after its wait.
        let work_at_start = format!("({}) && len != 0", dma::verilog::NONEMPTY_AT_START);
        let mut v = String::new();
        let _ = write!(
            v,
            "{phase_decls}{decls}{banks}reg [23:0] f_acc, f_rs, f_lp, f_param, g_row, g_line, g_block, g_run0, g_l0, g_l1, f_pl, f_l0, f_l1;
reg [15:0] f_width, f_len, g_j, d_lane;
reg signed [7:0] f_zp, f_lo, f_hi;
reg g_on, g_bank, d_bank;
reg p_valid, p_bank, p_end, p_last;
reg [15:0] p_j, p_runs;
reg d_on, d_last, g_issue, end_group, more_blocks, last_line;
initial begin
    f_acc = 0; f_rs = 0; f_lp = 0; f_param = 0; g_row = 0; g_line = 0; g_block = 0; g_run0 = 0;
    g_l0 = 0; g_l1 = 0; f_pl = 0; f_l0 = 0; f_l1 = 0; f_width = 0; f_len = 0; g_j = 0; d_lane = 0;
    f_zp = 0; f_lo = 0; f_hi = 0; g_on = 0; g_bank = 0; d_bank = 0;
    p_valid = 0; p_bank = 0; p_end = 0; p_last = 0; p_j = 0; p_runs = 0;
end
always @(*) begin
    ready = (mode == 0);
    d_on = (mode == 2) && full[d_bank];
    d_last = d_on && {last_beat} && (d_lane + 1 == {runs});
    g_issue = (mode == 2) && g_on && {free};
    complete = (mode == 3) || (d_last && last[d_bank]);
    dram_wr_addr = d_on ? {beat_addr} : 32'd0;
    acc_addr = g_row;
    param_entry = f_param + g_j;
    rq_zp = f_zp;
    rq_lo = f_lo;
    rq_hi = f_hi;
    end_group = (g_j + 1 == f_len);
    more_blocks = ({{8'd0, g_run0}} + f_width < {{8'd0, f_pl}});
    last_line = (g_l1 + 1 >= f_l1) && (g_l0 + 1 >= f_l0);
",
            phase_decls = dma::verilog::phase_decls(self._latency),
            decls = dma::verilog::DECLS,
            banks = tv::decls(cols, depth),
            last_beat = dma::verilog::LAST_BEAT,
            runs = tv::runs("d_bank"),
            free = tv::free("g_bank", "d_last", "d_bank"),
            beat_addr = dma::verilog::beat_addr(lanes),
        );
        for i in 0..lanes {
            let _ = writeln!(
                v,
                "    dram_wr_en${i} = d_on && ({beat_lanes} + {i} < f_len);\n    dram_wr_data${i} = dram_wr_en${i} ? tb[{at}] : 8'sd0;",
                at = tv::at(cols, depth, "d_bank", "d_lane", &format!("({beat_lanes} + {i})"))
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
        for c in 0..cols {
            let _ = writeln!(v, "        tb[{at}] <= q${c};", at = tv::at(cols, depth, "p_bank", &c.to_string(), "p_j"));
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
                    "f_acc <= acc; f_rs <= row_stride; f_lp <= line_pitch; f_width <= width; f_len <= len;
        f_param <= param; f_zp <= zp; f_lo <= lo; f_hi <= hi;
        f_pl <= count$2; f_l0 <= count$0; f_l1 <= count$1;
        {start}
        g_on <= {work};
        g_bank <= 0; g_j <= 0; g_row <= acc; g_line <= acc; g_block <= 0; g_run0 <= 0; g_l0 <= 0; g_l1 <= 0;
        d_bank <= 0; d_lane <= 0;
        full <= 2'b00;",
                    start = dma::verilog::start(lanes),
                    work = work_at_start,
                ),
                &work_at_start,
                "g_on",
                &format!(
                    "if (d_on) begin
            {advance}
            if (d_last) begin
                d_lane <= 0;
                full[d_bank] <= 1'b0;
                d_bank <= !d_bank;
                if (last[d_bank]) mode <= 0;
            end else if ({last_beat}) d_lane <= d_lane + 1;
        end
        if (g_issue) begin
            p_valid <= 1; p_bank <= g_bank; p_j <= g_j; p_end <= end_group;
            p_runs <= (f_pl - g_run0 < f_width) ? f_pl - g_run0 : f_width;
            p_last <= end_group && !more_blocks && last_line;
            if (end_group && !more_blocks && last_line) g_on <= 0;
            if (!end_group) begin g_j <= g_j + 1; g_row <= g_row + f_rs; end
            else begin
                g_j <= 0;
                g_bank <= !g_bank;
                if (more_blocks) begin
                    g_run0 <= g_run0 + f_width; g_block <= g_block + 1; g_row <= g_line + g_block + 1;
                end else begin
                    g_run0 <= 0; g_block <= 0; g_line <= g_line + f_lp; g_row <= g_line + f_lp;
                    if (g_l1 + 1 < f_l1) g_l1 <= g_l1 + 1;
                    else begin g_l1 <= 0; g_l0 <= g_l0 + 1; end
                end
            end
        end",
                    advance = dma::verilog::advance(";"),
                    last_beat = dma::verilog::LAST_BEAT,
                ),
            ),
            fill = tv::fill("p_bank", "p_runs", "p_last", "1'b0"),
        );
        Verilog::Custom(v)
    }
}
