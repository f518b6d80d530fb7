//! Test fixtures: engines wired to a DRAM model and scratchpads, with host ports to fill
//! the DRAM and read the scratchpads back, for the co-simulation tests.

use crate::dram::Dram;
use systole_core::ArchConfig;
use systole_hdl::dma::DmaPattern;
use systole_hdl::load::LoadEngine;
use systole_hdl::memories::{Accumulator, Scratchpad};
use systole_hdl::params::{ParamLoader, ParamTable};
use systole_hdl::requant::OutputStage;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::sram::ADDR_BITS;
use systole_hdl::units::StoreUnit;
use systole_hdl::DRAM_ADDR_BITS;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The load engine between a DRAM model and the two scratchpads.
#[derive(LogicBlock)]
pub struct LoadFixture {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Engine: start.
    pub start: Signal<In, Bit>,
    /// Engine: target (weights when set).
    pub target: Signal<In, Bit>,
    /// Engine: first destination word.
    pub dst: Signal<In, Addr>,
    /// Engine: byte offset within words.
    pub offset: Signal<In, Bits<16>>,
    /// Engine: DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Engine: bytes per run.
    pub len: Signal<In, Bits<16>>,
    /// Engine: runs per level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Engine: byte stride per level.
    pub stride: Vec<Signal<In, DAddr>>,
    /// Engine: ready.
    pub ready: Signal<Out, Bit>,
    /// Engine: last busy cycle of an instruction.
    pub complete: Signal<Out, Bit>,
    /// Host: DRAM lane write enables.
    pub host_dram_we: Vec<Signal<In, Bit>>,
    /// Host: DRAM address of lane 0.
    pub host_dram_addr: Signal<In, DAddr>,
    /// Host: DRAM lane data.
    pub host_dram_data: Vec<Signal<In, Signed<8>>>,
    /// Host: activation word to read.
    pub host_act_raddr: Signal<In, Addr>,
    /// Host: activation word read in the previous cycle.
    pub host_act_rdata: Vec<Signal<Out, Signed<8>>>,
    /// Host: weight word to read.
    pub host_wgt_raddr: Signal<In, Addr>,
    /// Host: weight word read in the previous cycle.
    pub host_wgt_rdata: Vec<Signal<Out, Signed<8>>>,
    dram: Dram,
    engine: LoadEngine,
    act: Scratchpad,
    wgt: Scratchpad,
}

impl LoadFixture {
    /// `rows`/`cols`-byte scratchpads of the given depths, a `dram_bytes` DRAM read and
    /// written `lanes` bytes per cycle, DRAM latency `latency`.
    pub fn new(rows: usize, cols: usize, [act_words, wgt_words]: [usize; 2], dram_bytes: usize, lanes: usize, latency: usize) -> Self {
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
            host_dram_we: (0..lanes).map(|_| Default::default()).collect(),
            host_dram_addr: Default::default(),
            host_dram_data: (0..lanes).map(|_| Default::default()).collect(),
            host_act_raddr: Default::default(),
            host_act_rdata: (0..rows).map(|_| Default::default()).collect(),
            host_wgt_raddr: Default::default(),
            host_wgt_rdata: (0..cols).map(|_| Default::default()).collect(),
            dram: Dram::new(dram_bytes, lanes),
            engine: LoadEngine::new(rows, cols, lanes, latency),
            act: Scratchpad::new(rows, act_words),
            wgt: Scratchpad::new(cols, wgt_words),
        }
    }
}

impl Logic for LoadFixture {
    #[hdl_gen]
    fn update(&mut self) {
        self.dram.clock.next = self.clock.val();
        self.engine.clock.next = self.clock.val();
        self.act.clock.next = self.clock.val();
        self.wgt.clock.next = self.clock.val();
        self.engine.start.next = self.start.val();
        self.engine.target.next = self.target.val();
        self.engine.dst.next = self.dst.val();
        self.engine.offset.next = self.offset.val();
        self.engine.pattern.next.addr = self.addr.val();
        self.engine.pattern.next.len = self.len.val();
        self.engine.pattern.next.count0 = self.count[0].val();
        self.engine.pattern.next.count1 = self.count[1].val();
        self.engine.pattern.next.count2 = self.count[2].val();
        self.engine.pattern.next.stride0 = self.stride[0].val();
        self.engine.pattern.next.stride1 = self.stride[1].val();
        self.engine.pattern.next.stride2 = self.stride[2].val();
        self.ready.next = self.engine.ready.val();
        self.complete.next = self.engine.complete.val();
        self.dram.rd_addr.next = self.engine.dram_rd_addr.val();
        self.dram.wr_addr.next = self.host_dram_addr.val();
        for i in 0..self.host_dram_we.len() {
            self.engine.dram_rd_data[i].next = self.dram.rd_data[i].val();
            self.dram.wr_en[i].next = self.host_dram_we[i].val();
            self.dram.wr_data[i].next = self.host_dram_data[i].val();
        }
        self.act.host_addr.next = self.engine.act_addr.val();
        self.act.read_address.next = self.host_act_raddr.val();
        for k in 0..self.host_act_rdata.len() {
            self.act.host_we[k].next = self.engine.act_we[k].val();
            self.act.host_data[k].next = self.engine.act_data[k].val();
            self.host_act_rdata[k].next = self.act.read_data[k].val();
        }
        self.wgt.host_addr.next = self.engine.wgt_addr.val();
        self.wgt.read_address.next = self.host_wgt_raddr.val();
        for j in 0..self.host_wgt_rdata.len() {
            self.wgt.host_we[j].next = self.engine.wgt_we[j].val();
            self.wgt.host_data[j].next = self.engine.wgt_data[j].val();
            self.host_wgt_rdata[j].next = self.wgt.read_data[j].val();
        }
    }
}

/// The parameter loader between a DRAM model and the requantization table.
#[derive(LogicBlock)]
pub struct ParamFixture {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Loader: start.
    pub start: Signal<In, Bit>,
    /// Loader: first entry.
    pub dst: Signal<In, Addr>,
    /// Loader: DRAM address.
    pub addr: Signal<In, DAddr>,
    /// Loader: entries.
    pub count: Signal<In, Bits<24>>,
    /// Loader: ready.
    pub ready: Signal<Out, Bit>,
    /// Loader: last busy cycle of an instruction.
    pub complete: Signal<Out, Bit>,
    /// Host: DRAM lane write enables.
    pub host_dram_we: Vec<Signal<In, Bit>>,
    /// Host: DRAM address of lane 0.
    pub host_dram_addr: Signal<In, DAddr>,
    /// Host: DRAM lane data.
    pub host_dram_data: Vec<Signal<In, Signed<8>>>,
    /// Host: the table row to read.
    pub host_row: Signal<In, Addr>,
    /// Host: the entry to read (a table with entry reads).
    pub host_entry: Signal<In, Addr>,
    /// Host: entries read in the previous cycle.
    pub host_data: Vec<Signal<Out, Bits<64>>>,
    dram: Dram,
    loader: ParamLoader,
    ptable: ParamTable,
}

impl ParamFixture {
    /// A table of `entries` in rows of `cols` (lane 0 reading single entries with
    /// `entry_reads`, or, with `one_bank`, the table in one bank read by entry), a
    /// `dram_bytes` DRAM with `lanes` bytes per cycle, DRAM latency `latency`.
    pub fn new(entries: usize, cols: usize, entry_reads: bool, one_bank: bool, dram_bytes: usize, lanes: usize, latency: usize) -> Self {
        let table = ParamTable::new(entries, cols);
        let table = if one_bank { table.in_one_bank() } else { table };
        Self {
            clock: Default::default(),
            start: Default::default(),
            dst: Default::default(),
            addr: Default::default(),
            count: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            host_dram_we: (0..lanes).map(|_| Default::default()).collect(),
            host_dram_addr: Default::default(),
            host_dram_data: (0..lanes).map(|_| Default::default()).collect(),
            host_row: Default::default(),
            host_entry: Default::default(),
            host_data: (0..cols).map(|_| Default::default()).collect(),
            dram: Dram::new(dram_bytes, lanes),
            loader: ParamLoader::new(lanes, latency, entries, cols),
            ptable: if entry_reads { table.with_entry_reads() } else { table },
        }
    }
}

impl Logic for ParamFixture {
    #[hdl_gen]
    fn update(&mut self) {
        self.dram.clock.next = self.clock.val();
        self.loader.clock.next = self.clock.val();
        self.ptable.clock.next = self.clock.val();
        self.loader.start.next = self.start.val();
        self.loader.dst.next = self.dst.val();
        self.loader.addr.next = self.addr.val();
        self.loader.count.next = self.count.val();
        self.ready.next = self.loader.ready.val();
        self.complete.next = self.loader.complete.val();
        self.dram.rd_addr.next = self.loader.dram_rd_addr.val();
        self.dram.wr_addr.next = self.host_dram_addr.val();
        for i in 0..self.host_dram_we.len() {
            self.loader.dram_rd_data[i].next = self.dram.rd_data[i].val();
            self.dram.wr_en[i].next = self.host_dram_we[i].val();
            self.dram.wr_data[i].next = self.host_dram_data[i].val();
        }
        self.ptable.wr_en.next = self.loader.wr_en.val();
        self.ptable.wr_row.next = self.loader.wr_row.val();
        self.ptable.wr_lane.next = self.loader.wr_lane.val();
        self.ptable.wr_entry.next = self.loader.wr_entry.val();
        for k in 0..self.loader.wr_bytes.len() {
            self.ptable.wr_byte_en[k].next = self.loader.wr_byte_en[k].val();
            self.ptable.wr_bytes[k].next = self.loader.wr_bytes[k].val();
        }
        self.ptable.wr_data.next = self.loader.wr_data.val();
        self.ptable.rd_row.next = self.host_row.val();
        self.ptable.rd_entry.next = self.host_entry.val();
        for j in 0..self.host_data.len() {
            self.host_data[j].next = self.ptable.rd_data[j].val();
        }
    }
}

/// The store unit (plain store engine and requantization units; the transposed engine
/// stays idle) with the accumulator, the requantization table and a DRAM model; the host
/// fills the accumulator and the table and reads the DRAM back.
#[derive(LogicBlock)]
pub struct StoreFixture {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Engine: start.
    pub start: Signal<In, Bit>,
    /// Engine: first accumulator row.
    pub acc: Signal<In, Addr>,
    /// Engine: DRAM address of run 0.
    pub addr: Signal<In, DAddr>,
    /// Engine: bytes per run.
    pub len: Signal<In, Bits<16>>,
    /// Engine: runs per level, outermost first.
    pub count: Vec<Signal<In, Bits<24>>>,
    /// Engine: byte stride per level.
    pub stride: Vec<Signal<In, DAddr>>,
    /// Engine: first requantization entry.
    pub param: Signal<In, Addr>,
    /// Engine: output zero point.
    pub zp: Signal<In, Signed<8>>,
    /// Engine: lower clamp.
    pub lo: Signal<In, Signed<8>>,
    /// Engine: upper clamp.
    pub hi: Signal<In, Signed<8>>,
    /// Engine: ready.
    pub ready: Signal<Out, Bit>,
    /// Engine: last busy cycle of an instruction.
    pub complete: Signal<Out, Bit>,
    /// Host: write an accumulator row (its data follows one cycle later).
    pub host_acc_we: Signal<In, Bit>,
    /// Host: the row.
    pub host_acc_row: Signal<In, Addr>,
    /// Host: the row's values, one cycle after `host_acc_we`.
    pub host_acc_data: Vec<Signal<In, Signed<32>>>,
    /// Host: write a requantization entry.
    pub host_param_we: Signal<In, Bit>,
    /// Host: the entry's row.
    pub host_param_row: Signal<In, Addr>,
    /// Host: the entry's lane.
    pub host_param_lane: Signal<In, Bits<8>>,
    /// Host: its bytes (bias in bits 0..32, scale in 32..64).
    pub host_param_data: Signal<In, Bits<64>>,
    /// Host: DRAM bytes to read.
    pub host_dram_raddr: Signal<In, DAddr>,
    /// Host: DRAM bytes read in the previous cycle.
    pub host_dram_rdata: Vec<Signal<Out, Signed<8>>>,
    unit: StoreUnit,
    // The pattern and output stage, built from the ports before they join the fields.
    pattern: Signal<Local, DmaPattern>,
    stage: Signal<Local, OutputStage>,
    accs: Accumulator,
    ptable: ParamTable,
    dram: Dram,
}

impl StoreFixture {
    /// `cols` columns, `acc_rows` accumulator rows, `entries` table entries, a
    /// `dram_bytes` DRAM with `lanes` bytes per cycle, DRAM latency `latency`.
    pub fn new(cols: usize, acc_rows: usize, entries: usize, dram_bytes: usize, lanes: usize, latency: usize) -> Self {
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
            host_acc_we: Default::default(),
            host_acc_row: Default::default(),
            host_acc_data: (0..cols).map(|_| Default::default()).collect(),
            host_param_we: Default::default(),
            host_param_row: Default::default(),
            host_param_lane: Default::default(),
            host_param_data: Default::default(),
            host_dram_raddr: Default::default(),
            host_dram_rdata: (0..lanes).map(|_| Default::default()).collect(),
            unit: StoreUnit::new(&ArchConfig {
                cols,
                dram_bytes_per_cycle: lanes,
                dram_latency: latency,
                param_entries: entries,
                ..ArchConfig::default()
            }),
            pattern: Default::default(),
            stage: Default::default(),
            accs: Accumulator::new(cols, acc_rows, 0),
            ptable: ParamTable::new(entries, cols),
            dram: Dram::new(dram_bytes, lanes),
        }
    }
}

impl Logic for StoreFixture {
    #[hdl_gen]
    fn update(&mut self) {
        self.unit.clock.next = self.clock.val();
        self.accs.clock.next = self.clock.val();
        self.ptable.clock.next = self.clock.val();
        self.dram.clock.next = self.clock.val();
        self.unit.start.next.store = self.start.val();
        self.unit.start.next.store_t = false;
        self.pattern.next.addr = self.addr.val();
        self.pattern.next.len = self.len.val();
        self.pattern.next.count0 = self.count[0].val();
        self.pattern.next.count1 = self.count[1].val();
        self.pattern.next.count2 = self.count[2].val();
        self.pattern.next.stride0 = self.stride[0].val();
        self.pattern.next.stride1 = self.stride[1].val();
        self.pattern.next.stride2 = self.stride[2].val();
        self.stage.next.zp = unsigned_cast(self.zp.val());
        self.stage.next.lo = unsigned_cast(self.lo.val());
        self.stage.next.hi = unsigned_cast(self.hi.val());
        self.unit.fields.next.acc = self.acc.val();
        self.unit.fields.next.row_stride = 0.into();
        self.unit.fields.next.line_pitch = 0.into();
        self.unit.fields.next.width = 0.into();
        self.unit.fields.next.pattern = self.pattern.val();
        self.unit.fields.next.param = self.param.val();
        self.unit.fields.next.stage = self.stage.val();
        self.ready.next = self.unit.status.val().ready;
        self.complete.next = self.unit.status.val().complete;
        self.accs.issue.next = self.host_acc_we.val();
        self.accs.addr.next = self.host_acc_row.val();
        self.accs.accumulate.next = false;
        self.accs.host_addr.next = self.unit.acc_addr.val();
        self.ptable.wr_en.next = self.host_param_we.val();
        self.ptable.wr_row.next = self.host_param_row.val();
        self.ptable.wr_lane.next = self.host_param_lane.val();
        // A table in rows (this one) writes by row and lane.
        self.ptable.wr_entry.next = 0.into();
        for k in 0..self.ptable.wr_bytes.len() {
            self.ptable.wr_byte_en[k].next = false;
            self.ptable.wr_bytes[k].next = 0.into();
        }
        self.ptable.wr_data.next = self.host_param_data.val();
        self.ptable.rd_row.next = self.unit.param_row.val();
        self.ptable.rd_entry.next = self.unit.param_entry.val();
        for j in 0..self.host_acc_data.len() {
            self.accs.input[j].next = self.host_acc_data[j].val();
            self.unit.acc_data[j].next = self.accs.host_data[j].val();
            self.unit.param_data[j].next = self.ptable.rd_data[j].val();
        }
        self.dram.wr_addr.next = self.unit.dram_wr_addr.val();
        self.dram.rd_addr.next = self.host_dram_raddr.val();
        for i in 0..self.host_dram_rdata.len() {
            self.dram.wr_en[i].next = self.unit.dram_wr_en[i].val();
            self.dram.wr_data[i].next = self.unit.dram_wr_data[i].val();
            self.host_dram_rdata[i].next = self.dram.rd_data[i].val();
        }
    }
}
