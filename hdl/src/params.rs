//! The requantization table and its loader.
//!
//! [`ParamTable`]: `entries` 8-byte entries (bias, then f32 scale bits, little-endian) in
//! rows of `cols`: entry `e` is lane `e % cols` of row `e / cols`. In a table of more than
//! one row a write is registered (its row, data and per-bank enables) and reaches the
//! banks in the next cycle, so the loader's byte count meets only that register, not the
//! banks' many write enables; an entry written in cycle `t` is read from cycle `t + 2` on,
//! and no read waits for it sooner: a `Store` that uses it starts after the `LoadParams`
//! completes, in cycle `t + 1` at the earliest, and reads after a wait of at least one
//! cycle. A one-row table (small FPGAs) is registers already: it writes directly and has no read
//! register, `rd_data` showing the entries as they are (what a read register would show
//! too, since no read meets the write of its entry in the cycle before). A read returns row
//! `rd_row`, so the store path gets entries `p .. p + cols` in one cycle when `p` is a
//! multiple of `cols` (the ISA requires that of a `Store`'s `out.param`; the store engine
//! divides it once, at its start). With [`ParamTable::with_entry_reads`] the table is read
//! by entry instead, lane 0 holding entry `rd_entry` itself, for the transposed store,
//! which reads one entry per cycle from any position. With [`ParamTable::in_one_bank`] it is
//! a single bank of `entries` words read by entry (lane 0), written directly: for a store
//! path with one requantization unit, which reads one entry per beat.
//!
//! [`ParamLoader`]: `LoadParams` (docs/ARCHITECTURE.md sections 4 and 5). It waits `L - 1`
//! cycles, then reads `min(B, 8)` DRAM bytes per cycle as one stream and writes an entry
//! in the cycle its eighth byte arrives: `L + max(count, ceil(8 * count / B))` cycles.
//! With `r` read registers ([`ParamLoader::with_read_stages`]) it reads `r` cycles earlier
//! and the bytes' count passes `r` registers beside the bytes (which pass those of the `r`
//! not on the read address), so every write keeps its cycle.
//!
//! Both are written once, as `hdl_gen` kernels that rust-hdl simulates and emits: the table
//! is `cols` [`SyncRam`] banks; the loader's phases are a [`crate::dma::DmaPhase`], and its
//! constant division of `dst` by `cols` the leaf [`crate::verilog::ConstDivider`].

use crate::delay::Delay;
use crate::dma::{DmaPhase, Widen};
use crate::sram::{ByteRam, SyncRam, ADDR_BITS};
use crate::verilog::{low_mask, ConstDivider};
use crate::wiring::signals;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

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
    /// The entry `wr_row * cols + wr_lane`, which a table in one bank writes.
    pub wr_entry: Signal<In, Addr>,
    /// A table in one bank writes bytes of entry `wr_entry` as they arrive: byte `k`
    /// (bits `8k..`) when `wr_byte_en[k]`.
    pub wr_byte_en: Vec<Signal<In, Bit>>,
    /// The bytes.
    pub wr_bytes: Vec<Signal<In, Bits<8>>>,
    /// The previous cycle's row, lane `j` for its entry `j` (lane 0: the entry itself, with
    /// entry reads).
    pub rd_data: Vec<Signal<Out, Bits<64>>>,
    /// Bank `j` holds lane `j` of every row (a table of more than one row).
    banks: Vec<SyncRam<Bits<64>>>,
    /// Entry `j` of a one-row table.
    cells: Vec<DFF<Bits<64>>>,
    /// A table read by entry from one bank of byte lanes ([`ParamTable::in_one_bank`]);
    /// one word, written never and read by no one, in the other tables.
    single: ByteRam,
    one_bank: Constant<Bit>,
    /// The write's entry is one of the table's.
    wr_in_range: Signal<Local, Bit>,
    /// The entry read, its bytes joined; `8k`, for byte `k`.
    joined: Signal<Local, Bits<128>>,
    read_byte: Vec<Widen>,
    placed: Vec<Signal<Local, Bits<128>>>,
    byte_pos: Vec<Constant<Bits<8>>>,
    /// `rd_entry` as a row and a lane.
    entry: ConstDivider,
    /// The lane of the previous cycle's entry read.
    rd_lane: DFF<Bits<8>>,
    /// `j`, for lane `j`.
    lane_of: Vec<Constant<Bits<8>>>,
    /// Rows, the last row, and the entries of the last row (1 to `cols`).
    depth: Constant<Addr>,
    last_row: Constant<Addr>,
    last_row_lanes: Constant<Bits<8>>,
    entry_reads: Constant<Bit>,
    /// The write addresses an entry of the table.
    wr_ok: Signal<Local, Bit>,
    /// The write, through 1 register in a table of more than one row, else 0: row, data,
    /// and per bank its enable.
    w_row: Delay<Addr>,
    w_data: Delay<Bits<64>>,
    w_en: Vec<Delay<Bit>>,
}

impl ParamTable {
    /// A table of `entries` entries in rows of `cols`.
    pub fn new(entries: usize, cols: usize) -> Self {
        let depth = entries.div_ceil(cols);
        Self {
            clock: Default::default(),
            wr_en: Default::default(),
            wr_row: Default::default(),
            wr_lane: Default::default(),
            wr_data: Default::default(),
            rd_row: Default::default(),
            rd_entry: Default::default(),
            wr_entry: Default::default(),
            wr_byte_en: signals(ENTRY_BYTES),
            wr_bytes: signals(ENTRY_BYTES),
            rd_data: signals(cols),
            banks: (0..if depth > 1 { cols } else { 0 }).map(|_| SyncRam::new(depth)).collect(),
            cells: signals(if depth > 1 { 0 } else { cols }),
            single: ByteRam::new(ENTRY_BYTES, 1),
            one_bank: Constant::new(false),
            wr_in_range: Default::default(),
            joined: Default::default(),
            read_byte: signals(ENTRY_BYTES),
            placed: signals(ENTRY_BYTES),
            byte_pos: crate::wiring::constants((0..ENTRY_BYTES as u64).map(|k| 8 * k)),
            entry: ConstDivider::new(crate::sram::index_bits(entries), cols),
            rd_lane: Default::default(),
            lane_of: crate::wiring::constants(0..cols as u64),
            depth: Constant::new((depth as u64).into()),
            last_row: Constant::new(((depth - 1) as u64).into()),
            last_row_lanes: Constant::new(((entries - (depth - 1) * cols) as u64).into()),
            entry_reads: Constant::new(false),
            wr_ok: Default::default(),
            w_row: Delay::new(usize::from(depth > 1)),
            w_data: Delay::new(usize::from(depth > 1)),
            w_en: (0..cols).map(|_| Delay::new(usize::from(depth > 1))).collect(),
        }
    }

    /// The table read by entry (`rd_entry`, divided by `cols` in the read path) rather than
    /// by row, with lane 0 holding that entry itself: for the transposed store, which reads
    /// one entry per cycle from any position.
    pub fn with_entry_reads(mut self) -> Self {
        self.entry_reads = Constant::new(true);
        self
    }

    /// The table as one bank of `entries` words (one block RAM, or a row of them, instead
    /// of `cols` banks or `cols` entries of flip-flops), read by entry: lane 0 holds entry
    /// `rd_entry`, the other lanes 0. For a store path with one requantization unit, which
    /// needs one entry per value. It is written a byte at a time as the bytes arrive
    /// (`wr_bytes`), so the loader assembles no entry; a write reaches the bank directly, as
    /// in a one-row table.
    pub fn in_one_bank(mut self) -> Self {
        // A `LoadParams` never writes an entry a running `Store` reads (`Sync` orders them,
        // as it orders every instruction pair that shares data).
        self.single = ByteRam::new(ENTRY_BYTES, self.entries());
        self.one_bank = Constant::new(true);
        self.banks.clear();
        self.cells.clear();
        self
    }

    /// Entries the table holds.
    fn entries(&self) -> usize {
        let (depth, cols) = (self.depth.val().index(), self.rd_data.len());
        (depth - 1) * cols + self.last_row_lanes.val().index()
    }
}

impl Logic for ParamTable {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, rd_lane);
        self.w_row.clock.next = self.clock.val();
        self.w_data.clock.next = self.clock.val();
        self.entry.x.next = self.rd_entry.val();
        self.rd_lane.d.next = self.entry.r.val();
        self.wr_in_range.next = (self.wr_row.val() < self.depth.val())
            & ((self.wr_row.val() != self.last_row.val()) | (self.wr_lane.val() < self.last_row_lanes.val()));
        self.wr_ok.next = self.wr_en.val() & self.wr_in_range.val();
        self.w_row.data_in.next = self.wr_row.val();
        self.w_data.data_in.next = self.wr_data.val();
        for j in 0..self.rd_data.len() {
            self.rd_data[j].next = 0.into();
        }
        self.joined.next = 0.into();
        self.single.clock.next = self.clock.val();
        self.single.write_address.next = self.wr_entry.val();
        self.single.read_address.next = self.rd_entry.val();
        for k in 0..self.wr_bytes.len() {
            self.single.write_enable[k].next = self.one_bank.val() & self.wr_byte_en[k].val() & self.wr_in_range.val();
            self.single.write_data[k].next = signed_cast(self.wr_bytes[k].val());
            self.read_byte[k].lane.next = self.single.read_data[k].val();
            self.placed[k].next = self.read_byte[k].wide.val() << self.byte_pos[k].val();
            self.joined.next = self.joined.val() | self.placed[k].val();
        }
        if self.one_bank.val() {
            self.rd_data[0].next = self.joined.val().get_bits::<64>(0);
        }
        for j in 0..self.w_en.len() {
            self.w_en[j].clock.next = self.clock.val();
            self.w_en[j].data_in.next = self.wr_ok.val() & (self.wr_lane.val() == self.lane_of[j].val());
        }
        for j in 0..self.banks.len() {
            self.banks[j].clock.next = self.clock.val();
            self.banks[j].write_address.next = self.w_row.data_out.val();
            self.banks[j].write_data.next = self.w_data.data_out.val();
            self.banks[j].write_enable.next = self.w_en[j].data_out.val();
            if self.entry_reads.val() {
                self.banks[j].read_address.next = self.entry.q.val();
            } else {
                self.banks[j].read_address.next = self.rd_row.val();
            }
            self.rd_data[j].next = self.banks[j].read_data.val();
        }
        for j in 0..self.cells.len() {
            self.cells[j].clock.next = self.clock.val();
            self.cells[j].d.next = self.cells[j].q.val();
            if self.w_en[j].data_out.val() {
                self.cells[j].d.next = self.w_data.data_out.val();
            }
            self.rd_data[j].next = self.cells[j].q.val();
        }
        if self.entry_reads.val() {
            self.rd_data[0].next = 0.into();
            for j in 0..self.banks.len() {
                if self.rd_lane.q.val() == self.lane_of[j].val() {
                    self.rd_data[0].next = self.banks[j].read_data.val();
                }
            }
            for j in 0..self.cells.len() {
                if self.rd_lane.q.val() == self.lane_of[j].val() {
                    self.rd_data[0].next = self.cells[j].q.val();
                }
            }
        }
    }
}

/// Widest DRAM read of the parameter loader per cycle: one entry.
const ENTRY_BYTES: usize = 8;

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
    /// Table: the entry written (`wr_row * cols + wr_lane`), for a table read by entry.
    pub wr_entry: Signal<Out, Addr>,
    /// Table in one bank: write byte `k` of entry `wr_entry` (the bytes as they arrive
    /// when `min(B, 8)` divides 8, else the whole entry as `wr_en` writes it).
    pub wr_byte_en: Vec<Signal<Out, Bit>>,
    /// The bytes.
    pub wr_bytes: Vec<Signal<Out, Bits<8>>>,
    /// Table: its bytes.
    pub wr_data: Signal<Out, Bits<64>>,
    phase: DmaPhase,
    /// `dst` as a row and a lane of the table.
    first: ConstDivider,
    /// The DRAM lanes this engine reads (`min(B, 8)`), widened.
    lanes: Vec<Widen>,
    /// Bytes still to read.
    remaining: DFF<Bits<27>>,
    next_addr: DFF<DAddr>,
    /// Bytes read in the previous cycle (their data arrives now)...
    arriving: DFF<Bits<4>>,
    /// ... and both through the `r` read registers.
    arrived: Delay<Bits<4>>,
    rd: Vec<Delay<Signed<8>>>,
    /// Row and lane of the next entry written.
    w_row: DFF<Addr>,
    w_lane: DFF<Bits<8>>,
    /// The next entry written, counted beside its row and lane.
    w_entry: DFF<Addr>,
    /// The entry's bytes from byte `k` on (`wr_data >> 8k`), for whole-entry byte writes;
    /// `8k`, and `k`, for byte `k`.
    entry_from: Vec<Signal<Local, Bits<64>>>,
    byte_pos: Vec<Constant<Bits<8>>>,
    byte_of: Vec<Constant<Bits<5>>>,
    /// Where DRAM lane `i`'s byte goes in the entry: `have + i`.
    at_byte: Vec<Signal<Local, Bits<5>>>,
    lane5: Vec<Constant<Bits<5>>>,
    /// Assembled bytes not yet written, from bit 0, and how many.
    acc_bytes: DFF<Bits<128>>,
    have: DFF<Bits<5>>,
    /// The buffer with this cycle's bytes, and its byte count.
    cat: Signal<Local, Bits<128>>,
    got: Signal<Local, Bits<5>>,
    /// Bytes read per cycle, `r = min(B, 8)`, and `r` dividing 8: then every read brings `r`
    /// bytes of one entry, which shift into a 64-bit register from the top; otherwise an
    /// entry may straddle two reads, and a 16-byte buffer takes the bytes at `have`.
    per_cycle: Constant<Bits<27>>,
    shifts: Constant<Bit>,
    /// `64 - 8 * r + 8 * i`: where DRAM lane `i` enters a shifting entry.
    top_pos: Vec<Constant<Bits<8>>>,
    /// `i`, for DRAM lane `i`.
    lane_of: Vec<Constant<Bits<4>>>,
    last_lane: Constant<Bits<8>>,
    /// The byte counter's size: `8 * count` for the count bits the controller keeps.
    remaining_mask: Constant<Bits<27>>,
    /// With 4-byte entries (the vector unit's table, [`ParamLoader::for_vector_table`]),
    /// one `true`, else none: the kernel's 8-byte steps are overridden by 4-byte ones, so
    /// that the requantization table's loader is the Verilog of before.
    entry4: Vec<Constant<Bit>>,
    /// `log2` of the entry's bytes.
    _entry_shift: usize,
}

impl ParamLoader {
    /// A loader reading `lanes` DRAM bytes per cycle with DRAM latency `latency >= 2`, into
    /// a table of `entries` entries in rows of `cols`: it divides `dst` by `cols` once, at
    /// the start, and then counts rows and lanes.
    pub fn new(lanes: usize, latency: usize, entries: usize, cols: usize) -> Self {
        Self::with_entry_bytes(lanes, latency, entries, cols, ENTRY_BYTES)
    }

    /// [`ParamLoader::new`] for entries of `entry_bytes` bytes, 8 or 4: the lanes it reads,
    /// `min(B, entry_bytes)`, and where each enters an entry follow from it.
    fn with_entry_bytes(lanes: usize, latency: usize, entries: usize, cols: usize, entry_bytes: usize) -> Self {
        assert!(latency >= 2, "the parameter loader needs a DRAM latency of at least 2");
        assert!(entry_bytes == ENTRY_BYTES || entry_bytes == 4, "{entry_bytes}-byte entries");
        let r = lanes.min(entry_bytes);
        let table_bits = crate::sram::index_bits(entries);
        let entry_shift = entry_bytes.trailing_zeros() as usize;
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            addr: Default::default(),
            count: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: signals(lanes),
            wr_en: Default::default(),
            wr_row: Default::default(),
            wr_lane: Default::default(),
            wr_entry: Default::default(),
            wr_byte_en: signals(ENTRY_BYTES),
            wr_bytes: signals(ENTRY_BYTES),
            wr_data: Default::default(),
            phase: DmaPhase::new(latency),
            first: ConstDivider::new(table_bits, cols),
            lanes: signals(r),
            remaining: Default::default(),
            next_addr: Default::default(),
            arriving: Default::default(),
            arrived: Delay::new(0),
            rd: (0..r).map(|_| Delay::new(0)).collect(),
            w_row: Default::default(),
            w_lane: Default::default(),
            w_entry: Default::default(),
            entry_from: signals(ENTRY_BYTES),
            byte_pos: crate::wiring::constants((0..ENTRY_BYTES as u64).map(|k| 8 * k)),
            byte_of: crate::wiring::constants(0..ENTRY_BYTES as u64),
            at_byte: signals(r),
            lane5: crate::wiring::constants(0..r as u64),
            acc_bytes: Default::default(),
            have: Default::default(),
            cat: Default::default(),
            got: Default::default(),
            per_cycle: Constant::new((r as u64).into()),
            shifts: Constant::new(entry_bytes.is_multiple_of(r)),
            top_pos: crate::wiring::constants((0..r as u64).map(|i| 8 * (entry_bytes - r) as u64 + 8 * i)),
            lane_of: crate::wiring::constants(0..r as u64),
            last_lane: Constant::new(((cols - 1) as u64).into()),
            remaining_mask: Constant::new(low_mask(24 + entry_shift)),
            entry4: (entry_bytes == 4).then(|| Constant::new(true)).into_iter().collect(),
            _entry_shift: entry_shift,
        }
    }

    /// The loader of `LoadTable` (docs/ARCHITECTURE.md section 5): entries of 4 bytes
    /// (a little-endian i32 in `wr_data`'s low half) into the vector unit's table, read by
    /// entry (`wr_entry`), `L + max(count, ceil(4 * count / B))` cycles.
    pub fn for_vector_table(lanes: usize, latency: usize) -> Self {
        Self::with_entry_bytes(lanes, latency, systole_core::arch::VECTOR_TABLE_ENTRIES, 1, 4)
    }

    /// The loader reading `stages` cycles ahead (`ArchConfig::dram_read_stages`; the wait
    /// must be at least `2 + stages`, as `ArchConfig::load_latency` is), `data_stages` of
    /// them (`ArchConfig::dram_read_data_stages`) registers on its read data
    /// and the rest on the read address outside the loader.
    pub fn with_read_stages(mut self, stages: usize, data_stages: usize) -> Self {
        assert!(data_stages <= stages, "{data_stages} of {stages} read registers on the data");
        self.phase = std::mem::replace(&mut self.phase, DmaPhase::new(2)).with_read_ahead(stages);
        self.arrived = Delay::new(stages);
        for d in &mut self.rd {
            *d = Delay::new(data_stages);
        }
        self
    }

    /// The loader with its entry counters `bits` wide (at most 24), for a controller that
    /// keeps that many bits of the entry count.
    pub fn with_count_bits(mut self, bits: usize) -> Self {
        assert!((1..=24).contains(&bits), "{bits}-bit entry counters");
        self.remaining_mask = Constant::new(low_mask(bits + self._entry_shift));
        self
    }
}

impl Logic for ParamLoader {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, remaining, next_addr, arriving, w_row, w_lane, w_entry, acc_bytes, have);
        self.phase.clock.next = self.clock.val();
        self.first.x.next = self.dst.val();
        self.arrived.clock.next = self.clock.val();
        self.arrived.data_in.next = self.arriving.q.val();
        for i in 0..self.lanes.len() {
            self.rd[i].clock.next = self.clock.val();
            self.rd[i].data_in.next = self.dram_rd_data[i].val();
            self.lanes[i].lane.next = self.rd[i].data_out.val();
        }

        // Bytes arriving this cycle join the buffer; a full entry is written.
        self.cat.next = self.acc_bytes.q.val();
        self.got.next = self.have.q.val();
        if self.shifts.val() {
            if self.arrived.data_out.val() != 0 {
                self.cat.next = self.acc_bytes.q.val() >> (bit_cast::<8, 27>(self.per_cycle.val()) << 3);
                for i in 0..self.lanes.len() {
                    self.cat.next = self.cat.val() | (self.lanes[i].wide.val() << self.top_pos[i].val());
                }
            }
            self.got.next = self.have.q.val() + bit_cast::<5, 4>(self.arrived.data_out.val());
        } else {
            for i in 0..self.lanes.len() {
                if self.lane_of[i].val() < self.arrived.data_out.val() {
                    self.cat.next = self.cat.val() | (self.lanes[i].wide.val() << (bit_cast::<8, 5>(self.got.val()) << 3));
                    self.got.next = self.got.val() + 1;
                }
            }
        }
        self.wr_en.next = self.got.val() >= 8;
        for e in 0..self.entry4.len() {
            self.wr_en.next = self.entry4[e].val() & (self.got.val() >= 4);
        }
        self.wr_row.next = self.w_row.q.val();
        self.wr_lane.next = self.w_lane.q.val();
        self.wr_entry.next = self.w_entry.q.val();
        self.wr_data.next = self.cat.val().get_bits::<64>(0);
        // Byte writes: each arriving byte at its place in the entry, or, when an entry may
        // straddle two reads, the whole entry as it completes.
        for i in 0..self.lanes.len() {
            self.at_byte[i].next = self.have.q.val() + self.lane5[i].val();
        }
        for k in 0..self.wr_bytes.len() {
            self.entry_from[k].next = self.wr_data.val() >> self.byte_pos[k].val();
            self.wr_byte_en[k].next = false;
            self.wr_bytes[k].next = 0.into();
            if !self.shifts.val() {
                self.wr_byte_en[k].next = self.got.val() >= 8;
                self.wr_bytes[k].next = self.entry_from[k].val().get_bits::<8>(0);
            }
            for i in 0..self.lanes.len() {
                if self.shifts.val()
                    & (self.lane_of[i].val() < self.arrived.data_out.val())
                    & (self.at_byte[i].val() == self.byte_of[k].val())
                {
                    self.wr_byte_en[k].next = true;
                    self.wr_bytes[k].next = unsigned_cast(self.rd[i].data_out.val());
                }
            }
        }
        self.ready.next = self.phase.ready.val();
        self.complete.next = self.phase.complete.val();
        if self.phase.issuing.val() {
            self.dram_rd_addr.next = self.next_addr.q.val();
        } else {
            self.dram_rd_addr.next = 0.into();
        }

        self.arriving.d.next = 0.into();
        if self.got.val() >= 8 {
            if self.shifts.val() {
                self.acc_bytes.d.next = self.cat.val();
                self.have.d.next = 0.into();
            } else {
                self.acc_bytes.d.next = self.cat.val() >> 64;
                self.have.d.next = self.got.val() - 8;
            }
            self.w_entry.d.next = self.w_entry.q.val() + 1;
            if self.w_lane.q.val() == self.last_lane.val() {
                self.w_lane.d.next = 0.into();
                self.w_row.d.next = self.w_row.q.val() + 1;
            } else {
                self.w_lane.d.next = self.w_lane.q.val() + 1;
            }
        } else {
            self.acc_bytes.d.next = self.cat.val();
            self.have.d.next = self.got.val();
        }
        for e in 0..self.entry4.len() {
            if self.entry4[e].val() & (self.got.val() >= 4) {
                if self.shifts.val() {
                    self.acc_bytes.d.next = self.cat.val();
                    self.have.d.next = 0.into();
                } else {
                    self.acc_bytes.d.next = self.cat.val() >> 32;
                    self.have.d.next = self.got.val() - 4;
                }
                self.w_entry.d.next = self.w_entry.q.val() + 1;
            } else {
                self.acc_bytes.d.next = self.cat.val();
                self.have.d.next = self.got.val();
            }
        }

        self.phase.start.next = self.start.val();
        self.phase.work_at_start.next = self.count.val() != 0;
        self.phase.work.next = self.remaining.q.val() != 0;
        self.phase.last.next = self.remaining.q.val() <= self.per_cycle.val();
        self.phase.finish.next = false;
        if self.phase.ready.val() & self.start.val() {
            self.w_row.d.next = self.first.q.val();
            self.w_lane.d.next = self.first.r.val();
            self.w_entry.d.next = self.dst.val();
            self.next_addr.d.next = self.addr.val();
            self.remaining.d.next = (bit_cast::<27, 24>(self.count.val()) << 3) & self.remaining_mask.val();
            for e in 0..self.entry4.len() {
                if self.entry4[e].val() {
                    self.remaining.d.next = (bit_cast::<27, 24>(self.count.val()) << 2) & self.remaining_mask.val();
                }
            }
            self.have.d.next = 0.into();
            self.acc_bytes.d.next = 0.into();
        }
        if self.phase.issuing.val() {
            if self.remaining.q.val() < self.per_cycle.val() {
                self.arriving.d.next = self.remaining.q.val().get_bits::<4>(0);
                self.remaining.d.next = 0.into();
            } else {
                self.arriving.d.next = self.per_cycle.val().get_bits::<4>(0);
                self.remaining.d.next = (self.remaining.q.val() - self.per_cycle.val()) & self.remaining_mask.val();
            }
            self.next_addr.d.next = self.next_addr.q.val() + bit_cast::<DRAM_ADDR_BITS, 27>(self.per_cycle.val());
        }
    }
}

/// `LoadTable`'s loader ([`ParamLoader::for_vector_table`]) with scalar ports only, so that
/// a unit holds it as an optional sub-block (a `Vec` of none or one, whose ports a kernel
/// indexes one level deep): the DRAM bytes it reads, `min(B, 4)` lanes, arrive packed, lane
/// `i` at bits `8i..`.
#[derive(LogicBlock)]
pub struct TableLoader {
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
    /// DRAM: the bytes read in the previous cycle, packed.
    pub dram_bytes: Signal<In, Bits<128>>,
    /// Table: write entry `wr_entry`...
    pub wr_en: Signal<Out, Bit>,
    /// ... this one...
    pub wr_entry: Signal<Out, Addr>,
    /// ... with this value.
    pub wr_data: Signal<Out, Bits<32>>,
    loader: ParamLoader,
    /// `8i`, where lane `i` sits in `dram_bytes`, and the bytes from there on.
    byte_at: Vec<Constant<Bits<8>>>,
    from_byte: Vec<Signal<Local, Bits<128>>>,
}

impl TableLoader {
    /// The loader of a load unit reading `lanes` DRAM bytes per cycle with latency
    /// `latency`, its entry counters `count_bits` wide, reading `stages` cycles ahead with
    /// `data_stages` registers on its data (as [`ParamLoader::with_read_stages`]).
    pub fn new(lanes: usize, latency: usize, count_bits: usize, (stages, data_stages): (usize, usize)) -> Self {
        let r = Self::lanes(lanes);
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            addr: Default::default(),
            count: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            dram_rd_addr: Default::default(),
            dram_bytes: Default::default(),
            wr_en: Default::default(),
            wr_entry: Default::default(),
            wr_data: Default::default(),
            loader: ParamLoader::for_vector_table(r, latency).with_count_bits(count_bits).with_read_stages(stages, data_stages),
            byte_at: crate::wiring::constants((0..r as u64).map(|i| 8 * i)),
            from_byte: signals(r),
        }
    }

    /// The DRAM lanes the loader of a unit reading `lanes` bytes per cycle reads.
    pub fn lanes(lanes: usize) -> usize {
        lanes.min(4)
    }
}

impl Logic for TableLoader {
    #[hdl_gen]
    fn update(&mut self) {
        self.loader.clock.next = self.clock.val();
        self.loader.start.next = self.start.val();
        self.loader.dst.next = self.dst.val();
        self.loader.addr.next = self.addr.val();
        self.loader.count.next = self.count.val();
        self.ready.next = self.loader.ready.val();
        self.complete.next = self.loader.complete.val();
        self.dram_rd_addr.next = self.loader.dram_rd_addr.val();
        self.wr_en.next = self.loader.wr_en.val();
        self.wr_entry.next = self.loader.wr_entry.val();
        self.wr_data.next = self.loader.wr_data.val().get_bits::<32>(0);
        for i in 0..self.from_byte.len() {
            self.from_byte[i].next = self.dram_bytes.val() >> self.byte_at[i].val();
            self.loader.dram_rd_data[i].next = signed_cast(self.from_byte[i].val().get_bits::<8>(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::{clock_cycle, settle};

    /// Runs a `LoadTable` of `count` entries from `addr` to `dst` on a table loader reading
    /// `lanes` bytes a cycle with latency `latency`, from a DRAM that answers a read in the
    /// next cycle: the entries written (entry, value) and the cycle of the completion (the
    /// load starts in cycle 0).
    fn load_table(lanes: usize, latency: usize, (dst, addr, count): (u64, u64, u64), dram: &[u8]) -> (Vec<(u64, i32)>, u64) {
        let mut l = ParamLoader::for_vector_table(lanes, latency);
        l.connect_all();
        settle(&mut l);
        l.dst.next = dst.into();
        l.addr.next = addr.into();
        l.count.next = count.into();
        let (mut written, mut complete, mut read) = (vec![], None, None::<u64>);
        for cycle in 0..200u64 {
            l.start.next = cycle == 0;
            for i in 0..lanes {
                let byte = read.map_or(0, |a| dram[a as usize + i]);
                l.dram_rd_data[i].next = (byte as i8 as i64).into();
            }
            settle(&mut l);
            if l.wr_en.val() {
                written.push((l.wr_entry.val().to_u64(), l.wr_data.val().to_u64() as u32 as i32));
            }
            if l.complete.val() {
                complete = Some(cycle);
            }
            read = Some(l.dram_rd_addr.val().to_u64());
            clock_cycle(&mut l, |l| &mut l.clock);
        }
        (written, complete.expect("the load completes"))
    }

    #[test]
    fn the_table_loader_writes_little_endian_words_on_the_model_cycles() {
        let dram: Vec<u8> = (0..256u32).map(|i| (i * 37 + 11) as u8).collect();
        for lanes in [1, 2, 4, 8, 16] {
            for latency in [2, 5] {
                for (dst, addr, count) in [(0, 0, 1), (3, 8, 5), (500, 12, 12), (7, 40, 0)] {
                    let (written, complete) = load_table(lanes, latency, (dst, addr, count), &dram);
                    let want: Vec<(u64, i32)> = (0..count)
                        .map(|e| {
                            let at = (addr + 4 * e) as usize;
                            (dst + e, i32::from_le_bytes(dram[at..at + 4].try_into().expect("4 bytes")))
                        })
                        .collect();
                    assert_eq!(written, want, "{lanes} lanes, latency {latency}, {count} entries");
                    let busy = count.max((4 * count).div_ceil(lanes as u64));
                    assert_eq!(complete + 1, latency as u64 + busy, "{lanes} lanes, latency {latency}, {count} entries");
                }
            }
        }
    }
}
