//! What the DMA engines share, each written once as an `hdl_gen` kernel:
//!
//! - [`DmaPhase`]: every instruction waits `L - 1` cycles (its start cycle included),
//!   issues one beat per cycle while it has work, and ends with a tail cycle for the last
//!   write, which is its last busy cycle (or, for the transposed engines, in the drain's
//!   last cycle). An engine whose read data passes `r` registers
//!   (`ArchConfig::dram_read_stages`) reads ahead: it issues `r` cycles earlier, inside its
//!   wait, and its tail is `1 + r` cycles, so that every write and `complete` fall in the
//!   same cycles as without the registers.
//! - [`BeatWalker`]: the walk over a `DramPattern`: runs in loop order, each cut into
//!   `max(1, ceil(len / B))` beats of at most `B` bytes.
//! - [`DmaWalk`]: the two joined, for the engines that issue one beat per cycle.
//!
//! A pattern travels from the controller's decoder to the walk as one bundle, a
//! [`DmaPattern`].

use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::isa::DramPattern;

type DAddr = Bits<DRAM_ADDR_BITS>;

/// A `DramPattern` as one signal: the fields a DMA instruction's access pattern decodes
/// to, declared once for the controller's outputs, the units, the engines and the walk.
/// Loop levels are outermost first; strides are two's complement. Counts and lengths keep
/// the ISA's widths (24 and 16 bits); the walk masks them to the bits the controller keeps.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct DmaPattern {
    /// DRAM address of run 0.
    pub addr: DAddr,
    /// Bytes per run.
    pub len: Bits<16>,
    /// Runs of loop level 0 (outermost).
    pub count0: Bits<24>,
    /// Runs of loop level 1.
    pub count1: Bits<24>,
    /// Runs of loop level 2 (innermost).
    pub count2: Bits<24>,
    /// Byte stride of loop level 0.
    pub stride0: DAddr,
    /// Byte stride of loop level 1.
    pub stride1: DAddr,
    /// Byte stride of loop level 2.
    pub stride2: DAddr,
}

impl DmaPattern {
    /// The bundle of `p`: its address and strides taken modulo `2^32` (as the DRAM
    /// address wraps), counts and length as the ISA encodes them.
    pub fn of(p: &DramPattern) -> Self {
        let bits = |x: i64| -> DAddr { (x as u64 & 0xffff_ffff).into() };
        Self {
            addr: bits(p.addr as i64),
            len: (p.len as u64 & 0xffff).into(),
            count0: (p.dims[0].count as u64 & 0xff_ffff).into(),
            count1: (p.dims[1].count as u64 & 0xff_ffff).into(),
            count2: (p.dims[2].count as u64 & 0xff_ffff).into(),
            stride0: bits(p.dims[0].stride),
            stride1: bits(p.dims[1].stride),
            stride2: bits(p.dims[2].stride),
        }
    }
}

/// A [`BeatWalker`]'s outputs as one signal, for engines that share one walker
/// ([`SharedWalker`]).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct WalkState {
    /// The pattern on the walker's field ports has runs.
    pub nonempty_at_start: Bit,
    /// The latched pattern has runs.
    pub nonempty: Bit,
    /// The current beat is the walk's last.
    pub last: Bit,
    /// The current beat's DRAM address.
    pub beat_addr: DAddr,
    /// The beat within the run.
    pub beat: Bits<16>,
    /// Runs completed.
    pub run: Bits<24>,
    /// The current beat's first byte within its run.
    pub beat_offset: Bits<16>,
}

/// A [`WalkState`] field by field (`hdl_gen` reads a field of a signal, not of an
/// element of a `Vec` of signals).
#[derive(LogicBlock, Default)]
pub struct SplitWalkState {
    /// The state.
    pub state: Signal<In, WalkState>,
    /// Its fields.
    pub nonempty_at_start: Signal<Out, Bit>,
    pub nonempty: Signal<Out, Bit>,
    pub last: Signal<Out, Bit>,
    pub beat_addr: Signal<Out, DAddr>,
    pub beat: Signal<Out, Bits<16>>,
    pub run: Signal<Out, Bits<24>>,
    pub beat_offset: Signal<Out, Bits<16>>,
}

impl Logic for SplitWalkState {
    #[hdl_gen]
    fn update(&mut self) {
        self.nonempty_at_start.next = self.state.val().nonempty_at_start;
        self.nonempty.next = self.state.val().nonempty;
        self.last.next = self.state.val().last;
        self.beat_addr.next = self.state.val().beat_addr;
        self.beat.next = self.state.val().beat;
        self.run.next = self.state.val().run;
        self.beat_offset.next = self.state.val().beat_offset;
    }
}

/// The phases of a DMA instruction: idle (`ready`), a wait of `L - 2` cycles after the
/// start cycle, issue (`issuing`, until the cycle `last` or `finish` is set), and the tail
/// cycle (`complete`) after `last`. An instruction without work goes from the wait straight
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
    /// This issue cycle is the instruction's last, a tail cycle follows.
    pub last: Signal<In, Bit>,
    /// This issue cycle is the instruction's last busy cycle: the engine completes in it and
    /// is ready in the next (the transposed engines, whose drain ends the instruction).
    pub finish: Signal<In, Bit>,
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
    /// The next cycle is the tail's last (so `complete` is a register).
    last_tail: DFF<Bit>,
    /// Wait cycles after the start cycle, `L - 1 - r`, and the count they start from,
    /// `L - 2 - r` (not named `wait`, a Verilog keyword).
    wait_cycles: Constant<Bits<16>>,
    first_left: Constant<Bits<16>>,
    /// Tail cycles after the first, `r`.
    tail: Constant<Bits<16>>,
    /// The bits the wait count needs (the latency's): the counter is masked to them, so
    /// that synthesis keeps only those.
    left_mask: Constant<Bits<16>>,
    /// Cycles until the next beat may issue, counted down from `gap_reload` after each
    /// beat (an engine that issues a beat every `interval` cycles); always 0 at interval 1.
    gap: DFF<Bits<4>>,
    gap_reload: Constant<Bits<4>>,
    /// The tail starts next cycle (from the start, the wait or the last issue).
    enter_tail: Signal<Local, Bit>,
    _latency: usize,
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
            finish: Default::default(),
            ready: Default::default(),
            issuing: Default::default(),
            complete: Default::default(),
            mode: Default::default(),
            left: Default::default(),
            last_tail: Default::default(),
            wait_cycles: Constant::new(((latency - 1) as u64).into()),
            first_left: Constant::new(((latency - 1).saturating_sub(1) as u64).into()),
            tail: Constant::new(0u64.into()),
            left_mask: Constant::new(crate::verilog::low_mask(crate::sram::index_bits(latency))),
            gap: Default::default(),
            gap_reload: Constant::new(0u64.into()),
            enter_tail: Default::default(),
            _latency: latency,
        }
    }

    /// The phases of an engine that issues a beat every `interval` cycles (1 to 16): each
    /// beat but the last is followed by `interval - 1` cycles without one, so `n` beats
    /// take `1 + interval * (n - 1)` cycles ([`systole_core::arch::ArchConfig::store_busy`]).
    pub fn with_interval(mut self, interval: usize) -> Self {
        assert!((1..=16).contains(&interval), "a beat every {interval} cycles");
        self.gap_reload = Constant::new(((interval - 1) as u64).into());
        self
    }

    /// The phases of an engine that reads `ahead` cycles early, for read data that passes
    /// `ahead` registers: it issues `ahead` cycles sooner and its tail is `ahead` cycles
    /// longer. The wait must keep a cycle: `L >= 2 + ahead`.
    pub fn with_read_ahead(mut self, ahead: usize) -> Self {
        let latency = self._latency;
        assert!(latency >= 2 + ahead, "a DRAM latency of {latency} has no room to read {ahead} cycles ahead");
        self.wait_cycles = Constant::new(((latency - 1 - ahead) as u64).into());
        self.first_left = Constant::new(((latency - 1 - ahead).saturating_sub(1) as u64).into());
        self.tail = Constant::new((ahead as u64).into());
        self
    }
}

impl Logic for DmaPhase {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, mode, left, last_tail, gap);
        self.ready.next = self.mode.q.val() == 0;
        self.issuing.next = (self.mode.q.val() == 2) & (self.gap.q.val() == 0);
        // The tail counts `left` down from `tail` to 0, its last cycle, which `last_tail`
        // marks a cycle ahead.
        self.complete.next = self.last_tail.q.val();
        self.last_tail.d.next = false;
        self.enter_tail.next = false;
        if self.mode.q.val() == 0 {
            if self.start.val() {
                if self.wait_cycles.val() > 1 {
                    self.mode.d.next = 1.into();
                    self.left.d.next = self.first_left.val();
                } else if self.work_at_start.val() {
                    self.mode.d.next = 2.into();
                } else {
                    self.enter_tail.next = true;
                }
            }
        } else if self.mode.q.val() == 1 {
            if (self.left.q.val() >> 1) != 0 {
                self.left.d.next = (self.left.q.val() - 1) & self.left_mask.val();
            } else if self.work.val() {
                self.mode.d.next = 2.into();
            } else {
                self.enter_tail.next = true;
            }
        } else if self.mode.q.val() == 2 {
            if self.gap.q.val() != 0 {
                self.gap.d.next = self.gap.q.val() - 1;
            } else if self.finish.val() {
                self.mode.d.next = 0.into();
            } else if self.last.val() {
                self.enter_tail.next = true;
            } else {
                self.gap.d.next = self.gap_reload.val();
            }
        } else if self.left.q.val() == 0 {
            self.mode.d.next = 0.into();
        } else {
            self.left.d.next = (self.left.q.val() - 1) & self.left_mask.val();
            self.last_tail.d.next = self.left.q.val() == 1;
        }
        if self.enter_tail.val() {
            self.mode.d.next = 3.into();
            self.left.d.next = self.tail.val();
            self.last_tail.d.next = self.tail.val() == 0;
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

/// The walk over a `DramPattern`: three loop levels (counts, strides, the base address of each level's current
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
    /// The pattern.
    pub pattern: Signal<In, DmaPattern>,
    /// The pattern on the field ports has runs.
    pub nonempty_at_start: Signal<Out, Bit>,
    /// The latched pattern has runs.
    pub nonempty: Signal<Out, Bit>,
    /// The current beat is the walk's last.
    pub last: Signal<Out, Bit>,
    /// The current beat is the last of its run.
    pub last_beat: Signal<Out, Bit>,
    /// The current run is the last of its outermost iteration.
    pub last_inner_run: Signal<Out, Bit>,
    /// The current beat's DRAM address.
    pub beat_addr: Signal<Out, DAddr>,
    /// The beat within the run.
    pub beat: Signal<Out, Bits<16>>,
    /// Runs completed.
    pub run: Signal<Out, Bits<24>>,
    /// The current beat's first byte within its run: `beat * lanes`.
    pub beat_offset: Signal<Out, Bits<16>>,
    /// Each level's count less one: the reload of `left`.
    c_m1: Vec<DFF<Bits<24>>>,
    s: Vec<DFF<DAddr>>,
    /// The iterations of each level left after its current one, counted down.
    left: Vec<DFF<Bits<24>>>,
    /// `left[k] != 0`, and `c_m1[k] != 0` (its value after a reload), kept as registers
    /// so that which level steps is decided from flip-flops: the decision enables every
    /// base register.
    more: Vec<DFF<Bit>>,
    many: Vec<DFF<Bit>>,
    /// The latched pattern has runs.
    has_runs: DFF<Bit>,
    b: Vec<DFF<DAddr>>,
    beat_reg: DFF<Bits<16>>,
    /// The current beat's address, `b[2] + beat * lanes`, kept beside the counters so that
    /// the DRAM address leaves a register.
    addr_reg: DFF<DAddr>,
    /// Beats per run less one, the beats left in the run after the current one, and the
    /// flags `beats_left != 0` and `bpr_m1 != 0`, as for the levels.
    bpr_m1: DFF<Bits<16>>,
    beats_left: DFF<Bits<16>>,
    beat_more: DFF<Bit>,
    beat_many: DFF<Bit>,
    run_reg: DFF<Bits<24>>,
    /// `ceil(len / lanes)`.
    beats: crate::verilog::ConstDivider,
    lanes: Constant<Bits<16>>,
    /// `k`, for bit `k` of `lanes`.
    bit_pos: Vec<Constant<Bits<8>>>,
    count_mask: Constant<Bits<24>>,
    beat_mask: Constant<Bits<16>>,
    beat_bytes: Signal<Local, DAddr>,
    /// The counts on the field ports, masked to the counters' bits.
    counts: Vec<Signal<Local, Bits<24>>>,
    /// Beats per run of the pattern on the field ports (a run of no bytes takes one).
    bpr: Signal<Local, Bits<16>>,
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
            pattern: Default::default(),
            nonempty_at_start: Default::default(),
            nonempty: Default::default(),
            last: Default::default(),
            last_beat: Default::default(),
            last_inner_run: Default::default(),
            beat_addr: Default::default(),
            beat: Default::default(),
            run: Default::default(),
            beat_offset: Default::default(),
            c_m1: crate::wiring::signals(3),
            s: crate::wiring::signals(3),
            left: crate::wiring::signals(3),
            more: crate::wiring::signals(3),
            many: crate::wiring::signals(3),
            has_runs: Default::default(),
            b: crate::wiring::signals(3),
            beat_reg: Default::default(),
            addr_reg: Default::default(),
            bpr_m1: Default::default(),
            beats_left: Default::default(),
            beat_more: Default::default(),
            beat_many: Default::default(),
            run_reg: Default::default(),
            beats: crate::verilog::ConstDivider::new(17, lanes),
            lanes: Constant::new((lanes as u64).into()),
            bit_pos: crate::wiring::constants(0..8),
            count_mask: Constant::new(crate::verilog::low_mask(count_bits)),
            beat_mask: Constant::new(crate::verilog::low_mask(len_bits)),
            beat_bytes: Default::default(),
            counts: crate::wiring::signals(3),
            bpr: Default::default(),
        }
    }
}

impl Logic for BeatWalker {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, has_runs, beat_reg, addr_reg, bpr_m1, beats_left, beat_more, beat_many, run_reg);
        for k in 0..3 {
            self.c_m1[k].clock.next = self.clock.val();
            self.s[k].clock.next = self.clock.val();
            self.left[k].clock.next = self.clock.val();
            self.more[k].clock.next = self.clock.val();
            self.many[k].clock.next = self.clock.val();
            self.b[k].clock.next = self.clock.val();
            self.c_m1[k].d.next = self.c_m1[k].q.val();
            self.s[k].d.next = self.s[k].q.val();
            self.left[k].d.next = self.left[k].q.val();
            self.more[k].d.next = self.more[k].q.val();
            self.many[k].d.next = self.many[k].q.val();
            self.b[k].d.next = self.b[k].q.val();
        }
        self.nonempty_at_start.next =
            (self.pattern.val().count0 != 0) & (self.pattern.val().count1 != 0) & (self.pattern.val().count2 != 0);
        self.nonempty.next = self.has_runs.q.val();
        self.last_beat.next = !self.beat_more.q.val();
        self.last_inner_run.next = !self.more[2].q.val() & !self.more[1].q.val();
        self.last.next = self.last_beat.val() & self.last_inner_run.val() & !self.more[0].q.val();
        // beat * lanes as shifted beats, so that no multiplier is inferred.
        self.beat_bytes.next = 0.into();
        for k in 0..8 {
            if self.lanes.val().get_bit(k) {
                self.beat_bytes.next =
                    self.beat_bytes.val() + (bit_cast::<DRAM_ADDR_BITS, 16>(self.beat_reg.q.val()) << self.bit_pos[k].val());
            }
        }
        self.beat_addr.next = self.addr_reg.q.val();
        self.beat_offset.next = self.beat_bytes.val().get_bits::<16>(0);
        self.beat.next = self.beat_reg.q.val();
        self.run.next = self.run_reg.q.val();
        self.beats.x.next = bit_cast::<24, 16>(self.pattern.val().len) + bit_cast::<24, 16>(self.lanes.val()) - 1;
        self.counts[0].next = self.pattern.val().count0 & self.count_mask.val();
        self.counts[1].next = self.pattern.val().count1 & self.count_mask.val();
        self.counts[2].next = self.pattern.val().count2 & self.count_mask.val();
        if self.pattern.val().len == 0 {
            self.bpr.next = 1.into();
        } else {
            self.bpr.next = self.beats.q.val().get_bits::<16>(0) & self.beat_mask.val();
        }
        if self.start.val() {
            self.s[0].d.next = self.pattern.val().stride0;
            self.s[1].d.next = self.pattern.val().stride1;
            self.s[2].d.next = self.pattern.val().stride2;
            for k in 0..3 {
                self.c_m1[k].d.next = (self.counts[k].val() - 1) & self.count_mask.val();
                self.left[k].d.next = (self.counts[k].val() - 1) & self.count_mask.val();
                self.more[k].d.next = self.counts[k].val() > 1;
                self.many[k].d.next = self.counts[k].val() > 1;
                self.b[k].d.next = self.pattern.val().addr;
            }
            self.has_runs.d.next = self.nonempty_at_start.val();
            self.beat_reg.d.next = 0.into();
            self.addr_reg.d.next = self.pattern.val().addr;
            self.run_reg.d.next = 0.into();
            self.bpr_m1.d.next = (self.bpr.val() - 1) & self.beat_mask.val();
            self.beats_left.d.next = (self.bpr.val() - 1) & self.beat_mask.val();
            self.beat_more.d.next = self.bpr.val() > 1;
            self.beat_many.d.next = self.bpr.val() > 1;
        } else if self.advance.val() {
            if self.beat_more.q.val() {
                self.beat_reg.d.next = (self.beat_reg.q.val() + 1) & self.beat_mask.val();
                self.beats_left.d.next = (self.beats_left.q.val() - 1) & self.beat_mask.val();
                self.beat_more.d.next = (self.beats_left.q.val() & self.beat_mask.val()) != 1;
                self.addr_reg.d.next = self.addr_reg.q.val() + bit_cast::<DRAM_ADDR_BITS, 16>(self.lanes.val());
            } else {
                self.beat_reg.d.next = 0.into();
                self.beats_left.d.next = self.bpr_m1.q.val();
                self.beat_more.d.next = self.beat_many.q.val();
                self.run_reg.d.next = (self.run_reg.q.val() + 1) & self.count_mask.val();
                if self.more[2].q.val() {
                    self.left[2].d.next = (self.left[2].q.val() - 1) & self.count_mask.val();
                    self.more[2].d.next = (self.left[2].q.val() & self.count_mask.val()) != 1;
                    self.b[2].d.next = self.b[2].q.val() + self.s[2].q.val();
                    self.addr_reg.d.next = self.b[2].q.val() + self.s[2].q.val();
                } else if self.more[1].q.val() {
                    self.left[1].d.next = (self.left[1].q.val() - 1) & self.count_mask.val();
                    self.more[1].d.next = (self.left[1].q.val() & self.count_mask.val()) != 1;
                    self.left[2].d.next = self.c_m1[2].q.val();
                    self.more[2].d.next = self.many[2].q.val();
                    self.b[1].d.next = self.b[1].q.val() + self.s[1].q.val();
                    self.b[2].d.next = self.b[1].q.val() + self.s[1].q.val();
                    self.addr_reg.d.next = self.b[1].q.val() + self.s[1].q.val();
                } else if self.more[0].q.val() {
                    self.left[0].d.next = (self.left[0].q.val() - 1) & self.count_mask.val();
                    self.more[0].d.next = (self.left[0].q.val() & self.count_mask.val()) != 1;
                    self.left[1].d.next = self.c_m1[1].q.val();
                    self.more[1].d.next = self.many[1].q.val();
                    self.left[2].d.next = self.c_m1[2].q.val();
                    self.more[2].d.next = self.many[2].q.val();
                    self.b[0].d.next = self.b[0].q.val() + self.s[0].q.val();
                    self.b[1].d.next = self.b[0].q.val() + self.s[0].q.val();
                    self.b[2].d.next = self.b[0].q.val() + self.s[0].q.val();
                    self.addr_reg.d.next = self.b[0].q.val() + self.s[0].q.val();
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
    /// The pattern.
    pub pattern: Signal<In, DmaPattern>,
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
    /// With a shared walker ([`DmaWalk::shared`], one element each, else none): start
    /// the walk, advance it, the pattern it starts from, and its state.
    pub walk_start: Vec<Signal<Out, Bit>>,
    pub walk_advance: Vec<Signal<Out, Bit>>,
    pub walk_pattern: Vec<Signal<Out, DmaPattern>>,
    pub walk_state: Vec<Signal<In, WalkState>>,
    phase: DmaPhase,
    /// The own walker, whose outputs go unused (and are synthesized away) with a shared one.
    walk: BeatWalker,
    /// The shared walker's state, field by field.
    split: Vec<SplitWalkState>,
    _lanes: usize,
}

impl DmaWalk {
    /// The walk of `lanes`-byte beats after a DRAM latency of `latency >= 2` cycles, with
    /// counters `count_bits` (runs) and `len_bits` (beats) wide.
    pub fn new(lanes: usize, latency: usize, count_bits: usize, len_bits: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            pattern: Default::default(),
            ready: Default::default(),
            starting: Default::default(),
            issuing: Default::default(),
            complete: Default::default(),
            beat_addr: Default::default(),
            beat: Default::default(),
            run: Default::default(),
            beat_offset: Default::default(),
            walk_start: vec![],
            walk_advance: vec![],
            walk_pattern: vec![],
            walk_state: vec![],
            split: vec![],
            phase: DmaPhase::new(latency),
            walk: BeatWalker::new(lanes, count_bits, len_bits),
            _lanes: lanes,
        }
    }

    /// The walk of an engine that reads `ahead` cycles early (see [`DmaPhase::with_read_ahead`]).
    pub fn with_read_ahead(mut self, ahead: usize) -> Self {
        self.phase = self.phase.with_read_ahead(ahead);
        self
    }

    /// The walk of an engine that issues a beat every `interval` cycles (see
    /// [`DmaPhase::with_interval`]).
    pub fn with_interval(mut self, interval: usize) -> Self {
        self.phase = self.phase.with_interval(interval);
        self
    }

    /// The walk of an engine that never walks while another engine does and shares one
    /// [`SharedWalker`] with it, through the `walk_*` ports.
    pub fn shared(mut self) -> Self {
        self.walk_start = vec![Default::default()];
        self.walk_advance = vec![Default::default()];
        self.walk_pattern = vec![Default::default()];
        self.walk_state = vec![Default::default()];
        self.split = vec![SplitWalkState::default()];
        self
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
        self.walk.pattern.next = self.pattern.val();
        self.phase.start.next = self.start.val();
        self.phase.work_at_start.next = self.walk.nonempty_at_start.val();
        self.phase.work.next = self.walk.nonempty.val();
        self.phase.last.next = self.walk.last.val();
        self.phase.finish.next = false;
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
        for i in 0..self.walk_state.len() {
            self.walk_start[i].next = self.phase.ready.val() & self.start.val();
            self.walk_advance[i].next = self.phase.issuing.val();
            self.walk_pattern[i].next = self.pattern.val();
            self.split[i].state.next = self.walk_state[i].val();
            self.phase.work_at_start.next = self.split[i].nonempty_at_start.val();
            self.phase.work.next = self.split[i].nonempty.val();
            self.phase.last.next = self.split[i].last.val();
            self.beat_addr.next = self.split[i].beat_addr.val();
            self.beat.next = self.split[i].beat.val();
            self.run.next = self.split[i].run.val();
            self.beat_offset.next = self.split[i].beat_offset.val();
        }
    }
}

/// One [`BeatWalker`] for two engines that never walk at once (the load and store
/// engines on a single DRAM port, `ArchConfig::dram_single_port`: every load waits for
/// the stores before it and every store for the loads before it, so one walk ends before
/// the other starts). It starts from the pattern of the engine that starts; both see its
/// state. Half the address logic of two walkers, for a 2:1 choice of the pattern.
#[derive(LogicBlock)]
pub struct SharedWalker {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// The load engine's `walk_start`, `walk_advance` and `walk_pattern`...
    pub ld_start: Signal<In, Bit>,
    pub ld_advance: Signal<In, Bit>,
    pub ld_pattern: Signal<In, DmaPattern>,
    /// ... and the store engine's.
    pub st_start: Signal<In, Bit>,
    pub st_advance: Signal<In, Bit>,
    pub st_pattern: Signal<In, DmaPattern>,
    /// The walker's state, for both.
    pub state: Signal<Out, WalkState>,
    walk: BeatWalker,
}

impl SharedWalker {
    /// A walker for two engines of `lanes`-byte beats with counters `count_bits` (runs)
    /// and `len_bits` (beats) wide.
    pub fn new(lanes: usize, count_bits: usize, len_bits: usize) -> Self {
        Self {
            clock: Default::default(),
            ld_start: Default::default(),
            ld_advance: Default::default(),
            ld_pattern: Default::default(),
            st_start: Default::default(),
            st_advance: Default::default(),
            st_pattern: Default::default(),
            state: Default::default(),
            walk: BeatWalker::new(lanes, count_bits, len_bits),
        }
    }
}

impl Logic for SharedWalker {
    #[hdl_gen]
    fn update(&mut self) {
        self.walk.clock.next = self.clock.val();
        self.walk.start.next = self.ld_start.val() | self.st_start.val();
        self.walk.advance.next = self.ld_advance.val() | self.st_advance.val();
        if self.st_start.val() {
            self.walk.pattern.next = self.st_pattern.val();
        } else {
            self.walk.pattern.next = self.ld_pattern.val();
        }
        self.state.next.nonempty_at_start = self.walk.nonempty_at_start.val();
        self.state.next.nonempty = self.walk.nonempty.val();
        self.state.next.last = self.walk.last.val();
        self.state.next.beat_addr = self.walk.beat_addr.val();
        self.state.next.beat = self.walk.beat.val();
        self.state.next.run = self.walk.run.val();
        self.state.next.beat_offset = self.walk.beat_offset.val();
    }
}
