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
//! With `ahead = p` (the requantization units' latency, `ArchConfig::requant_latency`), the
//! engine issues its reads `p` cycles earlier, inside the DRAM wait, and delays the beats'
//! writes, `ready` and `complete` by `p` cycles, so that the bytes meet the units' results
//! and the timing stays that of section 5. Its wait `L` is the ArchConfig's
//! `store_latency()`, which is at least `p + 2`. For units that take a value every `I`
//! cycles ([`StoreEngine::with_interval`]) it issues a beat every `I` cycles instead of
//! every cycle, `1 + I (n - 1)` cycles for `n` beats, and keeps each beat's row on the
//! read port until the next beat.
//!
//! Written once, as `hdl_gen` kernels: the phases and the walk are a [`DmaWalk`] with the
//! wait shortened by `ahead`, the beat and the history of `ready` and `complete`
//! wait `ahead` cycles in registers. The requantization units sit outside, between the
//! memories and this engine, behind the [`LaneSelect`].

use crate::delay::Delay;
use crate::dma::{DmaPattern, DmaWalk, WalkState};
use crate::requant::OutputStage;
use crate::sram::ADDR_BITS;
use crate::verilog::{low_mask, ConstDivider};
use crate::wiring::signals;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// Most cycles an engine reads ahead of its writes: at least the requantizer's deepest
/// pipeline, and its latency with a product in logic (`ArchConfig::requant_latency`).
pub const MAX_AHEAD: usize = 16;
const _: () = assert!(
    crate::requant::MAX_STAGES <= MAX_AHEAD
        && systole_core::arch::MAX_SERIAL_REQUANT_STAGES
            + systole_core::arch::REQUANT_INTERVALS[systole_core::arch::REQUANT_INTERVALS.len() - 1]
            <= MAX_AHEAD
);

/// A count of cycles up to [`MAX_AHEAD`].
type Countdown = Bits<5>;
const _: () = assert!(MAX_AHEAD < 32, "the store engine's countdowns hold MAX_AHEAD");

/// A beat issued: its DRAM address, its first column and its byte count.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Beat {
    valid: Bit,
    addr: Bits<32>,
    base: Bits<16>,
    bytes: Bits<16>,
}

/// The store engine.
#[derive(LogicBlock)]
pub struct StoreEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// First accumulator row.
    pub acc: Signal<In, Addr>,
    /// The DRAM access pattern.
    pub pattern: Signal<In, DmaPattern>,
    /// First requantization entry.
    pub param: Signal<In, Addr>,
    /// The output stage.
    pub stage: Signal<In, OutputStage>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// The instruction's last busy cycle.
    pub complete: Signal<Out, Bit>,
    /// Accumulator row to read this cycle.
    pub acc_addr: Signal<Out, Addr>,
    /// First requantization entry to read this cycle: the instruction's, or for a table
    /// read by entry ([`StoreEngine::reading_entries`]) that of the beat's column.
    pub param_entry: Signal<Out, Addr>,
    /// The table row holding it (`param / cols`, divided once, at the start).
    pub param_row: Signal<Out, Addr>,
    /// The output stage for the requantization units.
    pub rq_stage: Signal<Out, OutputStage>,
    /// The requantized row read in the previous cycle, lane `j` for column `j`.
    pub q: Vec<Signal<In, Signed<8>>>,
    /// The first column of the beat whose row was read in the previous cycle (its bytes
    /// are columns `beat_col ..`, one per DRAM lane).
    pub beat_col: Signal<Out, Bits<16>>,
    /// A beat's row was read in the previous cycle: its values reach the requantization
    /// units in this cycle (and, at an interval above 1, stay there until the next beat's).
    pub beat_read: Signal<Out, Bit>,
    /// DRAM: first byte written this cycle.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM: bytes.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM: lane enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    /// With a shared walker ([`StoreEngine::with_shared_walker`]; one element each, else none):
    /// the walk's drive and the walker's state (see [`crate::dma::SharedWalker`]).
    pub walk_start: Vec<Signal<Out, Bit>>,
    pub walk_advance: Vec<Signal<Out, Bit>>,
    pub walk_pattern: Vec<Signal<Out, DmaPattern>>,
    pub walk_state: Vec<Signal<In, WalkState>>,
    dma: DmaWalk,
    /// `param` as a table row.
    first_row: ConstDivider,
    /// The latched fields.
    f_acc: DFF<Addr>,
    f_param: DFF<Addr>,
    f_prow: DFF<Addr>,
    f_len: DFF<Bits<16>>,
    f_stage: DFF<OutputStage>,
    /// The row of the last beat issued: with an interval above 1 the read port stays on it
    /// until the next beat, so that the requantization units' inputs hold for the interval.
    held_row: DFF<Addr>,
    /// The entry of the beat's column, for a table read by entry (held like the row).
    held_entry: DFF<Addr>,
    entry_now: Signal<Local, Addr>,
    by_entry: Constant<Bit>,
    paced: Constant<Bit>,
    row_now: Signal<Local, Addr>,
    /// The beat issued in the previous cycle, and the same `ahead` cycles later: through a
    /// line of `ahead` registers, or with an interval `I > 1` (beats at least `I` cycles
    /// apart, so at most `ceil(ahead / I)` of them in flight) through a ring of one more
    /// slot than that, written at `ring_in` as each beat issues and read at `ring_out` as
    /// a line of valid bits brings each one's cycle.
    pending: DFF<Beat>,
    written: Delay<Beat>,
    ring_valid: Delay<Bit>,
    ring: Vec<DFF<Beat>>,
    ring_in: DFF<Bits<4>>,
    ring_out: DFF<Bits<4>>,
    ring_slot: Vec<Constant<Bits<4>>>,
    /// The last slot, with a ring (none without, so that no constant goes unused).
    ring_last: Vec<Constant<Bits<4>>>,
    /// Cycles until the write side is idle: `ahead` after a busy cycle, then down to 0.
    drain: DFF<Countdown>,
    /// Cycles until the walk's `complete` reaches the write side, from `ahead` down to 1
    /// (its cycle), else 0. A walk completes at most once in `ahead` cycles: the next one
    /// starts only when `drain` is 0.
    tail: DFF<Countdown>,
    ahead_count: Constant<Countdown>,
    reads_ahead: Constant<Bit>,
    /// `j`, for column or lane `j`; the DRAM lanes and the columns.
    lane_of: Vec<Constant<Bits<16>>>,
    lanes: Constant<Bits<16>>,
    cols: Constant<Bits<16>>,
    /// The bits of a column (a store's runs are at most `cols` long, so a beat's first
    /// column is below `cols`) and of a beat's byte count (at most `lanes`), so that the
    /// beats carry no wider values and the column choices compare no more bits.
    col_mask: Constant<Bits<16>>,
    bytes_mask: Constant<Bits<16>>,
    beat: Signal<Local, Beat>,
    busy: Signal<Local, Bit>,
    w_base: Signal<Local, Bits<16>>,
    w_bytes: Signal<Local, Bits<16>>,
    left_bytes: Signal<Local, Bits<16>>,
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
            pattern: Default::default(),
            param: Default::default(),
            stage: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            acc_addr: Default::default(),
            param_entry: Default::default(),
            param_row: Default::default(),
            rq_stage: Default::default(),
            q: signals(cols),
            beat_col: Default::default(),
            beat_read: Default::default(),
            dram_wr_addr: Default::default(),
            dram_wr_data: signals(lanes),
            dram_wr_en: signals(lanes),
            walk_start: vec![],
            walk_advance: vec![],
            walk_pattern: vec![],
            walk_state: vec![],
            dma: DmaWalk::new(lanes, latency - ahead, 24, 16),
            first_row: ConstDivider::new(crate::sram::index_bits(entries), cols),
            f_acc: Default::default(),
            f_param: Default::default(),
            f_prow: Default::default(),
            f_len: Default::default(),
            f_stage: Default::default(),
            held_row: Default::default(),
            held_entry: Default::default(),
            entry_now: Default::default(),
            by_entry: Constant::new(false),
            paced: Constant::new(false),
            row_now: Default::default(),
            pending: Default::default(),
            written: Delay::new(ahead),
            ring_valid: Delay::new(0),
            ring: vec![],
            ring_in: Default::default(),
            ring_out: Default::default(),
            ring_slot: vec![],
            ring_last: vec![],
            drain: Default::default(),
            tail: Default::default(),
            ahead_count: Constant::new((ahead as u64).into()),
            reads_ahead: Constant::new(ahead > 0),
            lane_of: crate::wiring::constants(0..cols.max(lanes) as u64),
            lanes: Constant::new((lanes as u64).into()),
            cols: Constant::new((cols as u64).into()),
            col_mask: Constant::new(low_mask(crate::sram::index_bits(cols))),
            bytes_mask: Constant::new(low_mask(crate::sram::index_bits(lanes + 1))),
            beat: Default::default(),
            busy: Default::default(),
            w_base: Default::default(),
            w_bytes: Default::default(),
            left_bytes: Default::default(),
        }
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

    /// The engine for a table read by entry, with one column per beat (one DRAM lane, or
    /// one column):
    /// `param_entry` is the entry of the beat's column, `param + column`, in the cycle of
    /// the beat's read (and held with its row), so the table returns the one entry the
    /// beat's requantization unit needs.
    pub fn reading_entries(mut self) -> Self {
        assert!(
            self.dram_wr_en.len() == 1 || self.q.len() == 1,
            "a store reads one entry per beat only with one column per beat (one DRAM lane or one column)"
        );
        self.by_entry = Constant::new(true);
        self
    }

    /// The engine issuing a beat every `interval` cycles, for requantization units that
    /// take a value every `interval` cycles (`ArchConfig::requant_interval`). The row and
    /// the entries read for a beat stay on the read ports until the next beat.
    pub fn with_interval(mut self, interval: usize) -> Self {
        self.dma = self.dma.with_interval(interval);
        self.paced = Constant::new(interval > 1);
        let ahead = self.written.depth() + self.ring_valid.depth();
        if interval > 1 && ahead > 1 {
            let slots = ahead.div_ceil(interval) + 1;
            assert!(slots <= 16, "{slots} ring slots");
            self.written = Delay::new(0);
            self.ring_valid = Delay::new(ahead);
            self.ring = (0..slots).map(|_| DFF::default()).collect();
            self.ring_slot = crate::wiring::constants(0..slots as u64);
            self.ring_last = crate::wiring::constants([(slots - 1) as u64]);
        }
        self
    }
}

impl Logic for StoreEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, f_acc, f_param, f_prow, f_len, f_stage, held_row, held_entry, pending, drain, tail, ring_in, ring_out);
        self.dma.clock.next = self.clock.val();
        self.dma.start.next = self.start.val();
        self.dma.pattern.next = self.pattern.val();
        self.written.clock.next = self.clock.val();
        for i in 0..self.walk_state.len() {
            self.walk_start[i].next = self.dma.walk_start[i].val();
            self.walk_advance[i].next = self.dma.walk_advance[i].val();
            self.walk_pattern[i].next = self.dma.walk_pattern[i].val();
            self.dma.walk_state[i].next = self.walk_state[i].val();
        }
        self.first_row.x.next = self.param.val();

        // The write side, `ahead` cycles behind the reads.
        // `busy` first: a `~` inside the sum would invert the bit widened to the sum's width.
        self.busy.next = !self.dma.ready.val();
        self.drain.d.next = self.drain.q.val();
        if self.busy.val() {
            self.drain.d.next = self.ahead_count.val();
        } else if self.drain.q.val() != 0 {
            self.drain.d.next = self.drain.q.val() - 1;
        }
        self.tail.d.next = self.tail.q.val();
        if self.dma.complete.val() {
            self.tail.d.next = self.ahead_count.val();
        } else if self.tail.q.val() != 0 {
            self.tail.d.next = self.tail.q.val() - 1;
        }
        self.ready.next = self.dma.ready.val() & (self.drain.q.val() == 0);
        if self.reads_ahead.val() {
            self.complete.next = self.tail.q.val() == 1;
        } else {
            self.complete.next = self.dma.complete.val();
        }
        self.written.data_in.next = self.pending.q.val();
        self.beat.next = self.written.data_out.val();
        self.ring_valid.clock.next = self.clock.val();
        self.ring_valid.data_in.next = self.pending.q.val().valid;
        self.ring_in.d.next = self.ring_in.q.val();
        self.ring_out.d.next = self.ring_out.q.val();
        for k in 0..self.ring.len() {
            self.ring[k].clock.next = self.clock.val();
            self.ring[k].d.next = self.ring[k].q.val();
            if self.pending.q.val().valid & (self.ring_in.q.val() == self.ring_slot[k].val()) {
                self.ring[k].d.next = self.pending.q.val();
            }
            if self.ring_out.q.val() == self.ring_slot[k].val() {
                self.beat.next = self.ring[k].q.val();
            }
        }
        for k in 0..self.ring_last.len() {
            self.beat.next.valid = self.ring_valid.data_out.val();
            if self.pending.q.val().valid {
                if self.ring_in.q.val() == self.ring_last[k].val() {
                    self.ring_in.d.next = 0.into();
                } else {
                    self.ring_in.d.next = self.ring_in.q.val() + 1;
                }
            }
            if self.ring_valid.data_out.val() {
                if self.ring_out.q.val() == self.ring_last[k].val() {
                    self.ring_out.d.next = 0.into();
                } else {
                    self.ring_out.d.next = self.ring_out.q.val() + 1;
                }
            }
        }
        self.w_base.next = self.beat.val().base;
        self.w_bytes.next = self.beat.val().bytes;
        self.dram_wr_addr.next = self.beat.val().addr;
        for i in 0..self.dram_wr_en.len() {
            self.dram_wr_en[i].next = self.beat.val().valid
                & (self.lane_of[i].val() < self.w_bytes.val())
                & (self.w_base.val() + self.lane_of[i].val() < self.cols.val());
            self.dram_wr_data[i].next = 0.into();
            for j in 0..self.q.len() {
                if self.w_base.val() + self.lane_of[i].val() == self.lane_of[j].val() {
                    self.dram_wr_data[i].next = self.q[j].val();
                }
            }
            if !self.dram_wr_en[i].val() {
                self.dram_wr_data[i].next = 0.into();
            }
        }

        // The read side.
        self.row_now.next = self.f_acc.q.val() + self.dma.run.val();
        if self.dma.issuing.val() {
            self.held_row.d.next = self.row_now.val();
        }
        if self.paced.val() & !self.dma.issuing.val() {
            self.acc_addr.next = self.held_row.q.val();
        } else {
            self.acc_addr.next = self.row_now.val();
        }
        self.entry_now.next = self.f_param.q.val() + bit_cast::<ADDR_BITS, 16>(self.dma.beat_offset.val() & self.col_mask.val());
        if self.dma.issuing.val() {
            self.held_entry.d.next = self.entry_now.val();
        }
        if !self.by_entry.val() {
            self.param_entry.next = self.f_param.q.val();
        } else if self.paced.val() & !self.dma.issuing.val() {
            self.param_entry.next = self.held_entry.q.val();
        } else {
            self.param_entry.next = self.entry_now.val();
        }
        self.param_row.next = self.f_prow.q.val();
        self.rq_stage.next = self.f_stage.q.val();
        self.beat_col.next = self.pending.q.val().base;
        self.beat_read.next = self.pending.q.val().valid;
        if self.dma.starting.val() {
            self.f_acc.d.next = self.acc.val();
            self.f_len.d.next = self.pattern.val().len;
            self.f_param.d.next = self.param.val();
            self.f_prow.d.next = self.first_row.q.val();
            self.f_stage.d.next = self.stage.val();
        }
        self.pending.d.next.valid = false;
        if self.dma.issuing.val() {
            self.pending.d.next.valid = true;
            self.pending.d.next.addr = self.dma.beat_addr.val();
            self.pending.d.next.base = self.dma.beat_offset.val() & self.col_mask.val();
            self.left_bytes.next = self.f_len.q.val() - self.dma.beat_offset.val();
            if self.f_len.q.val() > self.dma.beat_offset.val() {
                if self.left_bytes.val() < self.lanes.val() {
                    self.pending.d.next.bytes = self.left_bytes.val() & self.bytes_mask.val();
                } else {
                    self.pending.d.next.bytes = self.lanes.val();
                }
            } else {
                self.pending.d.next.bytes = 0.into();
            }
        } else {
            self.left_bytes.next = 0.into();
        }
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
    /// A unit per column: unit `i` takes column `i`.
    direct: Constant<Bit>,
    /// `j`, for column or unit `j`; `j % n`, the unit of column `j`.
    lane_of: Vec<Constant<Bits<16>>>,
    unit_of: Vec<Constant<Bits<16>>>,
}

impl LaneSelect {
    /// A selector from `cols` columns to `units <= cols` requantization units.
    pub fn new(cols: usize, units: usize) -> Self {
        assert!((1..=cols).contains(&units), "{units} requantization units for {cols} columns");
        Self {
            beat_col: Default::default(),
            acc_in: signals(cols),
            param_in: signals(cols),
            acc_out: signals(units),
            param_out: signals(units),
            y_in: signals(units),
            q_out: signals(cols),
            direct: Constant::new(units == cols),
            lane_of: crate::wiring::constants(0..cols as u64),
            unit_of: crate::wiring::constants((0..cols).map(|j| (j % units) as u64)),
        }
    }
}

impl Logic for LaneSelect {
    #[hdl_gen]
    fn update(&mut self) {
        for i in 0..self.acc_out.len() {
            if self.direct.val() {
                self.acc_out[i].next = self.acc_in[i].val();
                self.param_out[i].next = self.param_in[i].val();
            } else {
                self.acc_out[i].next = 0.into();
                self.param_out[i].next = 0.into();
                for j in 0..self.acc_in.len() {
                    if self.beat_col.val() + self.lane_of[i].val() == self.lane_of[j].val() {
                        self.acc_out[i].next = self.acc_in[j].val();
                        self.param_out[i].next = self.param_in[j].val();
                    }
                }
            }
        }
        for j in 0..self.q_out.len() {
            self.q_out[j].next = 0.into();
            for u in 0..self.y_in.len() {
                if self.unit_of[j].val() == self.lane_of[u].val() {
                    self.q_out[j].next = self.y_in[u].val();
                }
            }
        }
    }
}
