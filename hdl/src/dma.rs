//! What the DMA engines share, written once as a Rust model and once as Verilog snippets
//! ([`verilog`]) that the engines splice in:
//!
//! - [`Phase`]: every instruction waits `L - 1` cycles (its start cycle included), issues
//!   one beat per cycle while it has work, and ends with a tail cycle for the last write,
//!   which is its last busy cycle.
//! - [`BeatWalk`]: the walk over a `DramPattern`: runs in loop order, each cut into
//!   `max(1, ceil(len / B))` beats of at most `B` bytes.

use crate::dram::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type DAddr = Bits<DRAM_ADDR_BITS>;

/// The value of a byte lane (the engines' Rust models read DRAM and requantized bytes).
pub fn byte(s: Signed<8>) -> i64 {
    s.bigint().try_into().unwrap_or(0)
}

/// Where a DMA engine is in its instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Ready for an instruction.
    #[default]
    Idle,
    /// Waiting out the DRAM latency; `left` wait cycles remain, this one included.
    Wait {
        /// Wait cycles remaining.
        left: usize,
    },
    /// Issuing one beat per cycle.
    Issue,
    /// The last busy cycle.
    Tail,
}

impl Phase {
    /// The phase after the start cycle of an instruction with DRAM latency `latency`;
    /// `work` says whether it has beats to issue.
    pub fn started(latency: usize, work: bool) -> Self {
        Self::after_wait(latency - 1, work)
    }

    /// The phase after a wait cycle with `left` wait cycles remaining (it included).
    pub fn after_wait(left: usize, work: bool) -> Self {
        match left {
            0 | 1 if work => Phase::Issue,
            0 | 1 => Phase::Tail,
            _ => Phase::Wait { left: left - 1 },
        }
    }
}

/// Position in a pattern: loop indices, the start address of each level's current
/// iteration (`base[2]` is the current run), the beat within the run and the run number.
#[derive(Clone, Copy, Debug, Default)]
pub struct BeatWalk {
    count: [u32; 3],
    stride: [u32; 3],
    idx: [u32; 3],
    base: [u32; 3],
    /// Beat within the current run.
    pub beat: usize,
    /// Runs completed.
    pub run: u32,
    beats_per_run: usize,
}

impl BeatWalk {
    /// The start of the pattern on an engine's field ports: `addr`, `count` and `stride`
    /// per level (outermost first), `len` bytes per run, `lanes` bytes per beat.
    pub fn from_ports(
        addr: &Signal<In, DAddr>,
        count: &[Signal<In, Bits<24>>],
        stride: &[Signal<In, DAddr>],
        len: usize,
        lanes: usize,
    ) -> Self {
        let c = |i: usize| count[i].val().index() as u32;
        let s = |i: usize| stride[i].val().index() as u32;
        Self::new(addr.val().index() as u32, [c(0), c(1), c(2)], [s(0), s(1), s(2)], len, lanes)
    }

    /// The start of the pattern at byte `addr` with `count` and two's-complement `stride`
    /// per level (outermost first), `len` bytes per run, `lanes` bytes per beat.
    pub fn new(addr: u32, count: [u32; 3], stride: [u32; 3], len: usize, lanes: usize) -> Self {
        Self { count, stride, idx: [0; 3], base: [addr; 3], beat: 0, run: 0, beats_per_run: len.div_ceil(lanes).max(1) }
    }

    /// True when the pattern has at least one run.
    pub fn nonempty(&self) -> bool {
        self.count.iter().all(|&c| c > 0)
    }

    /// True when the current beat is the last of its run.
    pub fn last_beat(&self) -> bool {
        self.beat + 1 >= self.beats_per_run
    }

    /// True when the current run is the last of its outermost iteration.
    pub fn last_inner_run(&self) -> bool {
        self.idx[1] + 1 >= self.count[1] && self.idx[2] + 1 >= self.count[2]
    }

    /// DRAM address of the current beat.
    pub fn beat_addr(&self, lanes: usize) -> u32 {
        self.base[2].wrapping_add((self.beat * lanes) as u32)
    }

    /// Moves to the next beat; false when the current one was the last.
    pub fn advance(&mut self) -> bool {
        if self.beat + 1 < self.beats_per_run {
            self.beat += 1;
            return true;
        }
        self.beat = 0;
        self.run = self.run.wrapping_add(1);
        for level in (0..3).rev() {
            if self.idx[level] + 1 < self.count[level] {
                self.idx[level] += 1;
                self.base[level] = self.base[level].wrapping_add(self.stride[level]);
                for inner in level + 1..3 {
                    self.idx[inner] = 0;
                    self.base[inner] = self.base[level];
                }
                return true;
            }
        }
        false
    }
}

/// The same in Verilog: the phase in registers `mode` (0 idle, 1 wait, 2 issue, 3 tail) and
/// `left`; the walk in `c0..c2`, `s0..s2`, `i0..i2`, `b0..b2`, `beat`, `bpr` and `run`.
pub mod verilog {
    /// Declarations of the phase registers for a DRAM latency of `latency` cycles.
    pub fn phase_decls(latency: usize) -> String {
        format!("reg [1:0] mode;\nreg [{}:0] left;\ninitial begin mode = 0; left = 0; end\n", wait_bits(latency) - 1)
    }

    /// Bits of the wait counter `left`, which holds at most `latency - 2`.
    fn wait_bits(latency: usize) -> usize {
        (usize::BITS - latency.leading_zeros()) as usize
    }

    /// Blocking assignments of the `ready` and `complete` outputs.
    pub const PHASE_OUTPUTS: &str = "ready = (mode == 0);
    complete = (mode == 3);";

    /// The walk has runs, from the field ports (in the start cycle).
    pub const NONEMPTY_AT_START: &str = "count$0 != 0 && count$1 != 0 && count$2 != 0";

    /// The walk has runs, from its registers.
    pub const NONEMPTY: &str = "c0 != 0 && c1 != 0 && c2 != 0";

    /// The `case (mode)` of the clocked block: `latch` runs in the start cycle, `work_at_start`
    /// and `work` say whether there are beats to issue (from the ports, from registers), and
    /// `issue` runs in every issue cycle (it sets `mode <= 3` after the last beat).
    pub fn phases(latency: usize, latch: &str, work_at_start: &str, work: &str, issue: &str) -> String {
        let wait = latency - 1;
        let (w, first) = (wait_bits(latency), wait.saturating_sub(1));
        format!(
            "case (mode)
    0: if (start) begin
        {latch}
        if ({wait} > 1) begin mode <= 1; left <= {w}'d{first}; end
        else mode <= ({work_at_start}) ? 2'd2 : 2'd3;
    end
    1: if (left > {w}'d1) left <= left - {w}'d1;
       else mode <= ({work}) ? 2'd2 : 2'd3;
    2: begin
        {issue}
    end
    3: mode <= 0;
    endcase"
        )
    }

    /// Register declarations and their reset values, with the loop counts and counters
    /// (`c*`, `i*`, `run`) `count_bits` wide and the beat counters `beat_bits` wide: 24 and
    /// 16 hold every ISA count and length; a configuration whose controller narrows the
    /// count and length fields (`controller::kept_bits`) needs fewer.
    pub fn decls(count_bits: usize, beat_bits: usize) -> String {
        let (top, btop) = (count_bits - 1, beat_bits - 1);
        format!(
            "reg [{top}:0] c0, c1, c2, i0, i1, i2, run;
reg [31:0] s0, s1, s2, b0, b1, b2;
reg [{btop}:0] beat, bpr;
initial begin c0 = 0; c1 = 0; c2 = 0; i0 = 0; i1 = 0; i2 = 0; run = 0; s0 = 0; s1 = 0; s2 = 0; b0 = 0; b1 = 0; b2 = 0; beat = 0; bpr = 0; end
"
        )
    }

    /// The declarations for every ISA count.
    pub const DECLS: &str = "reg [23:0] c0, c1, c2, i0, i1, i2, run;
reg [31:0] s0, s1, s2, b0, b1, b2;
reg [15:0] beat, bpr;
initial begin c0 = 0; c1 = 0; c2 = 0; i0 = 0; i1 = 0; i2 = 0; run = 0; s0 = 0; s1 = 0; s2 = 0; b0 = 0; b1 = 0; b2 = 0; beat = 0; bpr = 0; end
";

    /// Non-blocking assignments that start a walk from the field ports `addr`, `len`,
    /// `count$i`, `stride$i`.
    pub fn start(lanes: usize) -> String {
        format!(
            "c0 <= count$0; c1 <= count$1; c2 <= count$2; s0 <= stride$0; s1 <= stride$1; s2 <= stride$2;
        i0 <= 0; i1 <= 0; i2 <= 0; b0 <= addr; b1 <= addr; b2 <= addr; beat <= 0; run <= 0;
        bpr <= (len == 0) ? 16'd1 : ({{1'b0, len}} + 17'd{}) / 17'd{lanes};",
            lanes - 1
        )
    }

    /// Non-blocking assignments that advance the walk by one beat, running `last` after the
    /// final beat.
    pub fn advance(last: &str) -> String {
        format!(
            "if (beat + 1 < bpr) beat <= beat + 1;
        else begin
            beat <= 0;
            run <= run + 1;
            if (i2 + 1 < c2) begin i2 <= i2 + 1; b2 <= b2 + s2; end
            else if (i1 + 1 < c1) begin i1 <= i1 + 1; i2 <= 0; b1 <= b1 + s1; b2 <= b1 + s1; end
            else if (i0 + 1 < c0) begin i0 <= i0 + 1; i1 <= 0; i2 <= 0; b0 <= b0 + s0; b1 <= b0 + s0; b2 <= b0 + s0; end
            else {last}
        end"
        )
    }

    /// The current beat is the last of its run.
    pub const LAST_BEAT: &str = "(beat + 1 >= bpr)";

    /// The current run is the last of its outermost iteration.
    pub const LAST_INNER_RUN: &str = "(i1 + 1 >= c1 && i2 + 1 >= c2)";

    /// Runs remain after the current one.
    pub const MORE_RUNS: &str = "(i2 + 1 < c2 || i1 + 1 < c1 || i0 + 1 < c0)";

    /// The current beat's DRAM address.
    pub fn beat_addr(lanes: usize) -> String {
        format!("b2 + {}", crate::verilog::times("{16'd0, beat}", lanes, 32))
    }
}

/// The phases of a DMA instruction, written once as an `hdl_gen` kernel (the engines that
/// are still Verilog strings use [`verilog::phases`], its twin): idle (`ready`), a wait of
/// `L - 2` cycles after the start cycle, issue (`issuing`, until the cycle `last` is set),
/// and the tail cycle (`complete`). An instruction without work goes from the wait straight
/// to the tail.
#[derive(LogicBlock)]
pub struct DmaPhase {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start an instruction (only when `ready`).
    pub start: Signal<In, Bit>,
    /// The starting instruction has beats to issue (from the field ports).
    pub work_at_start: Signal<In, Bit>,
    /// Beats remain (from the engine's registers), read in the last wait cycle.
    pub work: Signal<In, Bit>,
    /// This issue cycle is the instruction's last.
    pub last: Signal<In, Bit>,
    /// Ready for an instruction.
    pub ready: Signal<Out, Bit>,
    /// Issuing one beat this cycle.
    pub issuing: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// 0 idle, 1 wait, 2 issue, 3 tail.
    mode: DFF<Bits<2>>,
    /// Wait cycles left.
    left: DFF<Bits<16>>,
    /// Wait cycles after the start cycle, `L - 1`, and the count they start from, `L - 2`
    /// (not named `wait`, a Verilog keyword).
    wait_cycles: Constant<Bits<16>>,
    first_left: Constant<Bits<16>>,
}

impl DmaPhase {
    /// The phases for a DRAM latency of `latency >= 2` cycles.
    pub fn new(latency: usize) -> Self {
        assert!((2..1 << 16).contains(&latency), "DRAM latency {latency}");
        Self {
            clock: Default::default(),
            start: Default::default(),
            work_at_start: Default::default(),
            work: Default::default(),
            last: Default::default(),
            ready: Default::default(),
            issuing: Default::default(),
            complete: Default::default(),
            mode: Default::default(),
            left: Default::default(),
            wait_cycles: Constant::new(((latency - 1) as u64).into()),
            first_left: Constant::new(((latency - 1).saturating_sub(1) as u64).into()),
        }
    }
}

impl Logic for DmaPhase {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, mode, left);
        self.ready.next = self.mode.q.val() == 0;
        self.issuing.next = self.mode.q.val() == 2;
        self.complete.next = self.mode.q.val() == 3;
        if self.mode.q.val() == 0 {
            if self.start.val() {
                if self.wait_cycles.val() > 1 {
                    self.mode.d.next = 1.into();
                    self.left.d.next = self.first_left.val();
                } else if self.work_at_start.val() {
                    self.mode.d.next = 2.into();
                } else {
                    self.mode.d.next = 3.into();
                }
            }
        } else if self.mode.q.val() == 1 {
            if self.left.q.val() > 1 {
                self.left.d.next = self.left.q.val() - 1;
            } else if self.work.val() {
                self.mode.d.next = 2.into();
            } else {
                self.mode.d.next = 3.into();
            }
        } else if self.mode.q.val() == 2 {
            if self.last.val() {
                self.mode.d.next = 3.into();
            }
        } else {
            self.mode.d.next = 0.into();
        }
    }
}

/// A DRAM byte lane as the low byte of a 128-bit word, for an engine that places lanes at
/// run-time positions of a wider register.
#[derive(LogicBlock, Default)]
pub struct Widen {
    /// The byte (not named `byte`, a SystemVerilog keyword).
    pub lane: Signal<In, Signed<8>>,
    /// It, zero-extended.
    pub wide: Signal<Out, Bits<128>>,
}

impl Logic for Widen {
    #[hdl_gen]
    fn update(&mut self) {
        self.wide.next = bit_cast::<128, 8>(unsigned_cast(self.lane.val()));
    }
}

/// The walk over a `DramPattern` ([`BeatWalk`]'s logic), written once as an `hdl_gen`
/// kernel: three loop levels (counts, strides, the base address of each level's current
/// iteration), the beat within the run and the run number. `start` latches the field
/// ports; `advance` moves one beat on.
#[derive(LogicBlock)]
pub struct BeatWalker {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Latch the pattern on the field ports.
    pub start: Signal<In, Bit>,
    /// Move to the next beat.
    pub advance: Signal<In, Bit>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run.
    pub len: Signal<In, Bits<16>>,
    /// Runs per loop level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Byte stride per loop level (two's complement), outermost first.
    pub stride: Vec<Signal<In, DAddr>>,
    /// The pattern on the field ports has runs.
    pub nonempty_at_start: Signal<Out, Bit>,
    /// The latched pattern has runs.
    pub nonempty: Signal<Out, Bit>,
    /// The current beat is the walk's last.
    pub last: Signal<Out, Bit>,
    /// The current beat's DRAM address.
    pub beat_addr: Signal<Out, DAddr>,
    /// The beat within the run.
    pub beat: Signal<Out, Bits<16>>,
    /// Runs completed.
    pub run: Signal<Out, Bits<24>>,
    /// The current beat's first byte within its run: `beat * lanes`.
    pub beat_offset: Signal<Out, Bits<16>>,
    c: Vec<DFF<Bits<24>>>,
    s: Vec<DFF<DAddr>>,
    i: Vec<DFF<Bits<24>>>,
    b: Vec<DFF<DAddr>>,
    beat_reg: DFF<Bits<16>>,
    bpr: DFF<Bits<16>>,
    run_reg: DFF<Bits<24>>,
    /// `ceil(len / lanes)`.
    beats: crate::verilog::ConstDivider,
    lanes: Constant<Bits<16>>,
    /// `k`, for bit `k` of `lanes`.
    bit_pos: Vec<Constant<Bits<8>>>,
    count_mask: Constant<Bits<24>>,
    beat_mask: Constant<Bits<16>>,
    last_beat: Signal<Local, Bit>,
    beat_bytes: Signal<Local, DAddr>,
}

impl BeatWalker {
    /// A walk of `lanes`-byte beats (at most 255) whose counters are `count_bits` (runs) and
    /// `len_bits` (beats) wide: 24 and 16 hold every ISA count and length.
    pub fn new(lanes: usize, count_bits: usize, len_bits: usize) -> Self {
        assert!((1..=24).contains(&count_bits) && (1..=16).contains(&len_bits), "{count_bits}-bit runs, {len_bits}-bit beats");
        Self {
            clock: Default::default(),
            start: Default::default(),
            advance: Default::default(),
            addr: Default::default(),
            len: Default::default(),
            count: crate::wiring::signals(3),
            stride: crate::wiring::signals(3),
            nonempty_at_start: Default::default(),
            nonempty: Default::default(),
            last: Default::default(),
            beat_addr: Default::default(),
            beat: Default::default(),
            run: Default::default(),
            beat_offset: Default::default(),
            c: crate::wiring::signals(3),
            s: crate::wiring::signals(3),
            i: crate::wiring::signals(3),
            b: crate::wiring::signals(3),
            beat_reg: Default::default(),
            bpr: Default::default(),
            run_reg: Default::default(),
            beats: crate::verilog::ConstDivider::new(17, lanes),
            lanes: Constant::new((lanes as u64).into()),
            bit_pos: crate::wiring::constants(0..8),
            count_mask: Constant::new(crate::verilog::low_mask(count_bits)),
            beat_mask: Constant::new(crate::verilog::low_mask(len_bits)),
            last_beat: Default::default(),
            beat_bytes: Default::default(),
        }
    }
}

impl Logic for BeatWalker {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, beat_reg, bpr, run_reg);
        for k in 0..3 {
            self.c[k].clock.next = self.clock.val();
            self.s[k].clock.next = self.clock.val();
            self.i[k].clock.next = self.clock.val();
            self.b[k].clock.next = self.clock.val();
            self.c[k].d.next = self.c[k].q.val();
            self.s[k].d.next = self.s[k].q.val();
            self.i[k].d.next = self.i[k].q.val();
            self.b[k].d.next = self.b[k].q.val();
        }
        self.nonempty_at_start.next = (self.count[0].val() != 0) & (self.count[1].val() != 0) & (self.count[2].val() != 0);
        self.nonempty.next = (self.c[0].q.val() != 0) & (self.c[1].q.val() != 0) & (self.c[2].q.val() != 0);
        self.last_beat.next = (self.beat_reg.q.val() + 1) >= self.bpr.q.val();
        self.last.next = self.last_beat.val()
            & ((self.i[2].q.val() + 1) >= self.c[2].q.val())
            & ((self.i[1].q.val() + 1) >= self.c[1].q.val())
            & ((self.i[0].q.val() + 1) >= self.c[0].q.val());
        // beat * lanes as shifted beats, so that no multiplier is inferred.
        self.beat_bytes.next = 0.into();
        for k in 0..8 {
            if self.lanes.val().get_bit(k) {
                self.beat_bytes.next =
                    self.beat_bytes.val() + (bit_cast::<DRAM_ADDR_BITS, 16>(self.beat_reg.q.val()) << self.bit_pos[k].val());
            }
        }
        self.beat_addr.next = self.b[2].q.val() + self.beat_bytes.val();
        self.beat_offset.next = self.beat_bytes.val().get_bits::<16>(0);
        self.beat.next = self.beat_reg.q.val();
        self.run.next = self.run_reg.q.val();
        self.beats.x.next = bit_cast::<24, 16>(self.len.val()) + bit_cast::<24, 16>(self.lanes.val()) - 1;
        if self.start.val() {
            for k in 0..3 {
                self.c[k].d.next = self.count[k].val() & self.count_mask.val();
                self.s[k].d.next = self.stride[k].val();
                self.i[k].d.next = 0.into();
                self.b[k].d.next = self.addr.val();
            }
            self.beat_reg.d.next = 0.into();
            self.run_reg.d.next = 0.into();
            if self.len.val() == 0 {
                self.bpr.d.next = 1.into();
            } else {
                self.bpr.d.next = self.beats.q.val().get_bits::<16>(0) & self.beat_mask.val();
            }
        } else if self.advance.val() {
            if !self.last_beat.val() {
                self.beat_reg.d.next = (self.beat_reg.q.val() + 1) & self.beat_mask.val();
            } else {
                self.beat_reg.d.next = 0.into();
                self.run_reg.d.next = (self.run_reg.q.val() + 1) & self.count_mask.val();
                if (self.i[2].q.val() + 1) < self.c[2].q.val() {
                    self.i[2].d.next = (self.i[2].q.val() + 1) & self.count_mask.val();
                    self.b[2].d.next = self.b[2].q.val() + self.s[2].q.val();
                } else if (self.i[1].q.val() + 1) < self.c[1].q.val() {
                    self.i[1].d.next = (self.i[1].q.val() + 1) & self.count_mask.val();
                    self.i[2].d.next = 0.into();
                    self.b[1].d.next = self.b[1].q.val() + self.s[1].q.val();
                    self.b[2].d.next = self.b[1].q.val() + self.s[1].q.val();
                } else if (self.i[0].q.val() + 1) < self.c[0].q.val() {
                    self.i[0].d.next = (self.i[0].q.val() + 1) & self.count_mask.val();
                    self.i[1].d.next = 0.into();
                    self.i[2].d.next = 0.into();
                    self.b[0].d.next = self.b[0].q.val() + self.s[0].q.val();
                    self.b[1].d.next = self.b[0].q.val() + self.s[0].q.val();
                    self.b[2].d.next = self.b[0].q.val() + self.s[0].q.val();
                }
            }
        }
    }
}

/// A DMA instruction over a `DramPattern`: the [`DmaPhase`] issuing the [`BeatWalker`]'s
/// beats, joined once for every engine that walks a pattern.
#[derive(LogicBlock)]
pub struct DmaWalk {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Bytes per run.
    pub len: Signal<In, Bits<16>>,
    /// Runs per loop level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Byte stride per loop level (two's complement), outermost first.
    pub stride: Vec<Signal<In, DAddr>>,
    /// Ready for an instruction.
    pub ready: Signal<Out, Bit>,
    /// An instruction starts this cycle: the engine latches its other fields.
    pub starting: Signal<Out, Bit>,
    /// Issuing the current beat this cycle.
    pub issuing: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// The current beat's DRAM address.
    pub beat_addr: Signal<Out, DAddr>,
    /// The beat within the run.
    pub beat: Signal<Out, Bits<16>>,
    /// Runs completed.
    pub run: Signal<Out, Bits<24>>,
    /// The current beat's first byte within its run: `beat * lanes`.
    pub beat_offset: Signal<Out, Bits<16>>,
    phase: DmaPhase,
    walk: BeatWalker,
    _lanes: usize,
}

impl DmaWalk {
    /// The walk of `lanes`-byte beats after a DRAM latency of `latency >= 2` cycles, with
    /// counters `count_bits` (runs) and `len_bits` (beats) wide.
    pub fn new(lanes: usize, latency: usize, count_bits: usize, len_bits: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            addr: Default::default(),
            len: Default::default(),
            count: crate::wiring::signals(3),
            stride: crate::wiring::signals(3),
            ready: Default::default(),
            starting: Default::default(),
            issuing: Default::default(),
            complete: Default::default(),
            beat_addr: Default::default(),
            beat: Default::default(),
            run: Default::default(),
            beat_offset: Default::default(),
            phase: DmaPhase::new(latency),
            walk: BeatWalker::new(lanes, count_bits, len_bits),
            _lanes: lanes,
        }
    }

    /// Narrows the walk's counters to `count_bits` (runs) and `len_bits` (beats).
    pub fn narrow(&mut self, count_bits: usize, len_bits: usize) {
        self.walk = BeatWalker::new(self._lanes, count_bits, len_bits);
    }
}

impl Logic for DmaWalk {
    #[hdl_gen]
    fn update(&mut self) {
        self.phase.clock.next = self.clock.val();
        self.walk.clock.next = self.clock.val();
        self.walk.addr.next = self.addr.val();
        self.walk.len.next = self.len.val();
        for k in 0..3 {
            self.walk.count[k].next = self.count[k].val();
            self.walk.stride[k].next = self.stride[k].val();
        }
        self.phase.start.next = self.start.val();
        self.phase.work_at_start.next = self.walk.nonempty_at_start.val();
        self.phase.work.next = self.walk.nonempty.val();
        self.phase.last.next = self.walk.last.val();
        self.starting.next = self.phase.ready.val() & self.start.val();
        self.walk.start.next = self.phase.ready.val() & self.start.val();
        self.walk.advance.next = self.phase.issuing.val();
        self.ready.next = self.phase.ready.val();
        self.issuing.next = self.phase.issuing.val();
        self.complete.next = self.phase.complete.val();
        self.beat_addr.next = self.walk.beat_addr.val();
        self.beat.next = self.walk.beat.val();
        self.run.next = self.walk.run.val();
        self.beat_offset.next = self.walk.beat_offset.val();
    }
}
