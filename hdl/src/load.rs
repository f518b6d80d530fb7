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
//! With `r` read registers ([`LoadEngine::with_read_stages`], `ArchConfig::dram_read_stages`)
//! on the DRAM read path (on the data before the lane selection, and with two on the
//! address as well, outside the engine), the engine issues each beat `r` cycles earlier,
//! inside its wait: the beat's description waits with its data, and every write falls in
//! the cycle it does without the registers.
//!
//! Each word lane's part in a beat (written or not, fed a byte or zeroed, which byte) is
//! decided in the cycle after the beat is issued, from the registered beat, and passes the
//! read registers with it: with `r >= 1` the scratchpad writes meet only registered
//! decisions and the byte choice, not the lane arithmetic.
//!
//! Written once, as an `hdl_gen` kernel: the phases and the walk are a [`DmaWalk`], and a
//! lane's byte is chosen by comparing its constant number with the beat's first lane, since
//! a kernel cannot index lanes by a run-time value.

use crate::delay::Delay;
use crate::dma::{DmaPattern, DmaWalk, WalkState};
use crate::sram::ADDR_BITS;
use crate::wiring::signals;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// A beat's scratchpad write, from the cycle it is issued to the cycle its bytes arrive.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
struct BeatWrite {
    /// A beat was issued.
    valid: Bit,
    /// It goes to the weight scratchpad (else the activation scratchpad).
    wgt: Bit,
    /// It is its run's first, which also zeroes the word's lanes from `end` on.
    first: Bit,
    /// The word written.
    word: Addr,
    /// The word's lane of the beat's first byte.
    base: Bits<16>,
    /// The end of the run's bytes in the word.
    end: Bits<16>,
}

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
    /// The DRAM access pattern.
    pub pattern: Signal<In, DmaPattern>,
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
    /// With a shared walker ([`LoadEngine::with_shared_walker`]; one element each, else none):
    /// the walk's drive and the walker's state (see [`crate::dma::SharedWalker`]).
    pub walk_start: Vec<Signal<Out, Bit>>,
    pub walk_advance: Vec<Signal<Out, Bit>>,
    pub walk_pattern: Vec<Signal<Out, DmaPattern>>,
    pub walk_state: Vec<Signal<In, WalkState>>,
    dma: DmaWalk,
    /// The latched target, destination, offset and length.
    tgt: DFF<Bit>,
    f_dst: DFF<Addr>,
    f_off: DFF<Bits<16>>,
    f_len: DFF<Bits<16>>,
    /// The beat issued in the previous cycle, written in this one.
    issued: DFF<BeatWrite>,
    /// The read data and the beat through the `r` read registers.
    rd: Vec<Delay<Signed<8>>>,
    arriving: Delay<BeatWrite>,
    /// The beat whose bytes arrive in this cycle.
    beat: Signal<Local, BeatWrite>,
    /// Per word lane, decided from the issued beat and carried through the read registers
    /// with it: the lane takes one of the beat's bytes (`fed`), byte `src`, or is written
    /// at all (`hit`: fed, or zeroed after the run's end by its first beat).
    fed_now: Vec<Signal<Local, Bit>>,
    fed: Vec<Delay<Bit>>,
    hit: Vec<Delay<Bit>>,
    src: Vec<Delay<Bits<16>>>,
    /// The byte lane `l` takes, or 0.
    byte: Vec<Signal<Local, Signed<8>>>,
    /// `l`, for lane `l` of a word or of a beat.
    lane_of: Vec<Constant<Bits<16>>>,
    lanes: Constant<Bits<16>>,
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
            pattern: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: signals(lanes),
            act_we: signals(rows),
            act_addr: Default::default(),
            act_data: signals(rows),
            wgt_we: signals(cols),
            wgt_addr: Default::default(),
            wgt_data: signals(cols),
            walk_start: vec![],
            walk_advance: vec![],
            walk_pattern: vec![],
            walk_state: vec![],
            dma: DmaWalk::new(lanes, latency, 24, 16),
            tgt: Default::default(),
            f_dst: Default::default(),
            f_off: Default::default(),
            f_len: Default::default(),
            issued: Default::default(),
            rd: (0..lanes).map(|_| Delay::new(0)).collect(),
            arriving: Delay::new(0),
            beat: Default::default(),
            fed_now: signals(rows.max(cols)),
            fed: (0..rows.max(cols)).map(|_| Delay::new(0)).collect(),
            hit: (0..rows.max(cols)).map(|_| Delay::new(0)).collect(),
            src: (0..rows.max(cols)).map(|_| Delay::new(0)).collect(),
            byte: signals(rows.max(cols)),
            lane_of: crate::wiring::constants(0..rows.max(cols).max(lanes) as u64),
            lanes: Constant::new((lanes as u64).into()),
        }
    }

    /// The engine reading `stages` cycles ahead (`ArchConfig::dram_read_stages`; the wait
    /// must be at least `2 + stages`, as `ArchConfig::load_latency` is), `data_stages` of
    /// them (`ArchConfig::dram_read_data_stages`) registers on its read data
    /// and the rest on the read address outside the engine.
    pub fn with_read_stages(mut self, stages: usize, data_stages: usize) -> Self {
        assert!(data_stages <= stages, "{data_stages} of {stages} read registers on the data");
        self.dma = self.dma.with_read_ahead(stages);
        for d in &mut self.rd {
            *d = Delay::new(data_stages);
        }
        self.arriving = Delay::new(stages);
        for l in 0..self.hit.len() {
            (self.fed[l], self.hit[l], self.src[l]) = (Delay::new(stages), Delay::new(stages), Delay::new(stages));
        }
        self
    }

    /// The engine sharing one walker with an engine that never walks at the same time,
    /// through the `walk_*` ports.
    pub fn with_shared_walker(mut self) -> Self {
        self.dma = self.dma.shared();
        self.walk_start = vec![Default::default()];
        self.walk_advance = vec![Default::default()];
        self.walk_pattern = vec![Default::default()];
        self.walk_state = vec![Default::default()];
        self
    }

    /// The engine with its loop counters `count_bits` wide (at most 24) and its beat and
    /// byte counters `len_bits` wide (at most 16), for a controller that keeps that many
    /// bits of the count and length fields.
    pub fn with_field_bits(mut self, count_bits: usize, len_bits: usize) -> Self {
        assert!((1..=24).contains(&count_bits) && (1..=16).contains(&len_bits), "{count_bits}-bit loop and {len_bits}-bit beat counters");
        self.dma.narrow(count_bits, len_bits);
        self
    }
}

impl Logic for LoadEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, tgt, f_dst, f_off, f_len, issued);
        self.dma.clock.next = self.clock.val();
        self.dma.start.next = self.start.val();
        self.dma.pattern.next = self.pattern.val();
        self.ready.next = self.dma.ready.val();
        for i in 0..self.walk_state.len() {
            self.walk_start[i].next = self.dma.walk_start[i].val();
            self.walk_advance[i].next = self.dma.walk_advance[i].val();
            self.walk_pattern[i].next = self.dma.walk_pattern[i].val();
            self.dma.walk_state[i].next = self.walk_state[i].val();
        }
        self.complete.next = self.dma.complete.val();
        if self.dma.issuing.val() {
            self.dram_rd_addr.next = self.dma.beat_addr.val();
        } else {
            self.dram_rd_addr.next = 0.into();
        }

        // Writes of the beat issued `1 + r` cycles ago: its bytes into lanes
        // `base .. base + B` below `end`, and the first beat of a run zeroes the lanes from
        // `end` on.
        for i in 0..self.rd.len() {
            self.rd[i].clock.next = self.clock.val();
            self.rd[i].data_in.next = self.dram_rd_data[i].val();
        }
        self.arriving.clock.next = self.clock.val();
        self.arriving.data_in.next = self.issued.q.val();
        self.beat.next = self.arriving.data_out.val();
        self.act_addr.next = self.beat.val().word;
        self.wgt_addr.next = self.beat.val().word;
        // Each lane's part in the beat, decided as the beat is issued, so that with read
        // registers the write meets only registered decisions.
        for l in 0..self.hit.len() {
            self.fed[l].clock.next = self.clock.val();
            self.hit[l].clock.next = self.clock.val();
            self.src[l].clock.next = self.clock.val();
            self.fed_now[l].next = (self.lane_of[l].val() >= self.issued.q.val().base)
                & (self.lane_of[l].val() < self.issued.q.val().base + self.lanes.val())
                & (self.lane_of[l].val() < self.issued.q.val().end);
            self.fed[l].data_in.next = self.fed_now[l].val();
            self.hit[l].data_in.next =
                self.fed_now[l].val() | (self.issued.q.val().first & (self.lane_of[l].val() >= self.issued.q.val().end));
            self.src[l].data_in.next = self.lane_of[l].val() - self.issued.q.val().base;
        }
        // Lane `l`'s byte, the same for either scratchpad: the write enables pick one.
        for l in 0..self.byte.len() {
            self.byte[l].next = 0.into();
            if self.fed[l].data_out.val() {
                for i in 0..self.dram_rd_data.len() {
                    if self.src[l].data_out.val() == self.lane_of[i].val() {
                        self.byte[l].next = self.rd[i].data_out.val();
                    }
                }
            }
        }
        for l in 0..self.act_we.len() {
            self.act_we[l].next = self.beat.val().valid & !self.beat.val().wgt & self.hit[l].data_out.val();
            self.act_data[l].next = self.byte[l].val();
        }
        for l in 0..self.wgt_we.len() {
            self.wgt_we[l].next = self.beat.val().valid & self.beat.val().wgt & self.hit[l].data_out.val();
            self.wgt_data[l].next = self.byte[l].val();
        }

        self.issued.d.next.valid = false;
        if self.dma.starting.val() {
            self.tgt.d.next = self.target.val();
            self.f_dst.d.next = self.dst.val();
            self.f_off.d.next = self.offset.val();
            self.f_len.d.next = self.pattern.val().len;
        }
        if self.dma.issuing.val() {
            self.issued.d.next.valid = true;
            self.issued.d.next.wgt = self.tgt.q.val();
            self.issued.d.next.word = self.f_dst.q.val() + self.dma.run.val();
            self.issued.d.next.base = self.f_off.q.val() + self.dma.beat_offset.val();
            self.issued.d.next.first = self.dma.beat.val() == 0;
            self.issued.d.next.end = self.f_off.q.val() + self.f_len.q.val();
        }
    }
}
