//! The three units of docs/ARCHITECTURE.md section 1 as blocks with one set of ports each:
//! [`LoadUnit`] (plain, transposed and parameter loads), [`ExecUnit`] (the WS or OS exec
//! engine with the scratchpads and the accumulator) and [`StoreUnit`] (plain and
//! transposed stores with the requantization units). A unit runs one instruction at a
//! time, so its engines share its ports.

use crate::delay::Delay;
use crate::dma::{DmaPattern, WalkState, Widen};
use crate::dual::ExecDual;
use crate::exec_os::ExecOs;
use crate::exec_ws::ExecWs;
use crate::fields::{ExecStarts, LoadFields, LoadStarts, MatmulFields, StoreFields, StoreStarts, UnitStatus};
use crate::load::LoadEngine;
use crate::load_transposed::LoadTransposedEngine;
use crate::net;
use crate::params::{ParamLoader, TableLoader};
use crate::requant::{OutputStage, Requant};
use crate::sram::ADDR_BITS;
use crate::store::{LaneSelect, StoreEngine};
use crate::store_transposed::StoreTransposedEngine;
use crate::vector::VectorEngine;
use crate::wiring::{assign_expression_to_field, assign_from_field, binary, signals, Mode};
use crate::DRAM_ADDR_BITS;
use rust_hdl::core::ast::VerilogOp;
use rust_hdl::prelude::*;
use systole_core::{ArchConfig, Dataflow};

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The load unit: `Load`, `LoadTransposed` and `LoadParams`.
#[derive(LogicBlock)]
pub struct LoadUnit {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start a `Load`, a `LoadTransposed` or a `LoadParams`.
    pub start: Signal<In, LoadStarts>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, LoadFields>,
    /// The unit may start an instruction; its instruction completes.
    pub status: Signal<Out, UnitStatus>,
    /// DRAM read address, `ArchConfig::dram_read_address_stages` cycles after its issue.
    pub dram_rd_addr: Signal<Out, DAddr>,
    /// DRAM bytes read in the previous cycle.
    pub dram_rd_data: Vec<Signal<In, Signed<8>>>,
    /// Activation scratchpad write: lane enables.
    pub act_we: Vec<Signal<Out, Bit>>,
    /// Activation scratchpad write: word.
    pub act_addr: Signal<Out, Addr>,
    /// Activation scratchpad write: lanes.
    pub act_data: Vec<Signal<Out, Signed<8>>>,
    /// Weight scratchpad write: lane enables.
    pub wgt_we: Vec<Signal<Out, Bit>>,
    /// Weight scratchpad write: word.
    pub wgt_addr: Signal<Out, Addr>,
    /// Weight scratchpad write: lanes.
    pub wgt_data: Vec<Signal<Out, Signed<8>>>,
    /// Parameter table write.
    pub param_we: Signal<Out, Bit>,
    /// Parameter table row written.
    pub param_row: Signal<Out, Addr>,
    /// Parameter table lane written.
    pub param_lane: Signal<Out, Bits<8>>,
    /// Table: entry written (row times columns plus lane).
    pub param_entry: Signal<Out, Addr>,
    /// Table in one bank: write byte `k` of the entry.
    pub param_byte_en: Vec<Signal<Out, Bit>>,
    /// Table in one bank: the bytes.
    pub param_bytes: Vec<Signal<Out, Bits<8>>>,
    /// Parameter table entry bytes.
    pub param_data: Signal<Out, Bits<64>>,
    /// With a vector unit (one each, else none, so that an instance without one is the
    /// Verilog of before the vector unit): start a `LoadTable`...
    pub start_table: Vec<Signal<In, Bit>>,
    /// ... write a table entry...
    pub table_we: Vec<Signal<Out, Bit>>,
    /// ... this one...
    pub table_entry: Vec<Signal<Out, Addr>>,
    /// ... with this value.
    pub table_data: Vec<Signal<Out, Bits<32>>>,
    /// With a walker shared by the load and store engines ([`shares_walker`]; one element
    /// each, else none): the engine's walk drive and the walker's state.
    pub walk_start: Vec<Signal<Out, Bit>>,
    pub walk_advance: Vec<Signal<Out, Bit>>,
    pub walk_pattern: Vec<Signal<Out, DmaPattern>>,
    pub walk_state: Vec<Signal<In, WalkState>>,
    load: LoadEngine,
    load_t: LoadTransposedEngine,
    params: ParamLoader,
    /// `LoadTable`'s loader, with a vector unit...
    tables: Vec<TableLoader>,
    /// ... and the DRAM lanes it reads, widened, placed (`8i`) and packed.
    table_widen: Vec<Widen>,
    table_shift: Vec<Constant<Bits<8>>>,
    table_pack: Vec<Signal<Local, Bits<128>>>,
    /// The read address's registers (`ArchConfig::dram_read_address_stages`).
    rd_addr_regs: Delay<DAddr>,
    /// The access pattern of the instruction's fields.
    pattern: Signal<Local, DmaPattern>,
}

impl LoadUnit {
    /// The load unit of `arch`.
    pub fn new(arch: &ArchConfig) -> Self {
        let (rows, cols, lanes, lat) = (arch.rows, arch.cols, arch.dram_bytes_per_cycle, arch.load_latency());
        let vectors = usize::from(arch.vector_lanes > 0);
        let shared = usize::from(shares_walker(arch));
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            status: Default::default(),
            dram_rd_addr: Default::default(),
            dram_rd_data: (0..lanes).map(|_| Default::default()).collect(),
            act_we: (0..rows).map(|_| Default::default()).collect(),
            act_addr: Default::default(),
            act_data: (0..rows).map(|_| Default::default()).collect(),
            wgt_we: (0..cols).map(|_| Default::default()).collect(),
            wgt_addr: Default::default(),
            wgt_data: (0..cols).map(|_| Default::default()).collect(),
            param_we: Default::default(),
            param_row: Default::default(),
            param_lane: Default::default(),
            param_entry: Default::default(),
            param_byte_en: crate::wiring::signals(8),
            param_bytes: crate::wiring::signals(8),
            param_data: Default::default(),
            start_table: signals(vectors),
            table_we: signals(vectors),
            table_entry: signals(vectors),
            table_data: signals(vectors),
            walk_start: signals(shared),
            walk_advance: signals(shared),
            walk_pattern: signals(shared),
            walk_state: signals(shared),
            load: {
                let load = LoadEngine::new(rows, cols, lanes, lat)
                    .with_field_bits(crate::controller::count_bits(arch), crate::controller::len_bits(arch))
                    .with_read_stages(arch.dram_read_stages, arch.dram_read_data_stages());
                if shares_walker(arch) {
                    load.with_shared_walker()
                } else {
                    load
                }
            },
            load_t: LoadTransposedEngine::new(rows, lanes, lat, arch.transposer_depth()),
            params: ParamLoader::new(lanes, lat, arch.param_entries, arch.cols)
                .with_count_bits(crate::controller::count_bits(arch))
                .with_read_stages(arch.dram_read_stages, arch.dram_read_data_stages()),
            tables: (0..vectors)
                .map(|_| {
                    let stages = (arch.dram_read_stages, arch.dram_read_data_stages());
                    TableLoader::new(lanes, lat, crate::controller::count_bits(arch), stages)
                })
                .collect(),
            table_widen: signals(vectors * TableLoader::lanes(lanes)),
            table_shift: crate::wiring::constants((0..(vectors * TableLoader::lanes(lanes)) as u64).map(|i| 8 * i)),
            table_pack: signals(vectors),
            rd_addr_regs: Delay::new(arch.dram_read_address_stages()),
            pattern: Default::default(),
        }
    }
}

impl Logic for LoadUnit {
    #[hdl_gen]
    fn update(&mut self) {
        self.pattern.next = self.fields.val().pattern;
        self.load.clock.next = self.clock.val();
        self.load_t.clock.next = self.clock.val();
        self.params.clock.next = self.clock.val();
        self.load.start.next = self.start.val().load;
        self.load_t.start.next = self.start.val().load_t;
        self.params.start.next = self.start.val().params;
        self.load.target.next = self.fields.val().target;
        self.load.dst.next = self.fields.val().dst;
        self.load_t.dst.next = self.fields.val().dst;
        self.params.dst.next = self.fields.val().dst;
        self.load.offset.next = self.fields.val().offset;
        self.load_t.pitch.next = self.fields.val().pitch;
        self.load.pattern.next = self.pattern.val();
        for i in 0..self.walk_state.len() {
            self.walk_start[i].next = self.load.walk_start[i].val();
            self.walk_advance[i].next = self.load.walk_advance[i].val();
            self.walk_pattern[i].next = self.load.walk_pattern[i].val();
            self.load.walk_state[i].next = self.walk_state[i].val();
        }
        self.load_t.pattern.next = self.pattern.val();
        self.params.addr.next = self.pattern.val().addr;
        self.params.count.next = self.fields.val().entries;
        self.status.next.ready = self.load.ready.val() & self.load_t.ready.val() & self.params.ready.val();
        self.status.next.complete = self.load.complete.val() | self.load_t.complete.val() | self.params.complete.val();
        // Idle engines drive address 0, so the read addresses can be ORed.
        self.rd_addr_regs.clock.next = self.clock.val();
        self.rd_addr_regs.data_in.next = self.load.dram_rd_addr.val() | self.load_t.dram_rd_addr.val() | self.params.dram_rd_addr.val();
        for v in 0..self.tables.len() {
            self.tables[v].clock.next = self.clock.val();
            self.tables[v].start.next = self.start_table[v].val();
            self.tables[v].dst.next = self.fields.val().dst;
            self.tables[v].addr.next = self.pattern.val().addr;
            self.tables[v].count.next = self.fields.val().entries;
            self.status.next.ready = self.load.ready.val() & self.load_t.ready.val() & self.params.ready.val() & self.tables[v].ready.val();
            self.status.next.complete =
                self.load.complete.val() | self.load_t.complete.val() | self.params.complete.val() | self.tables[v].complete.val();
            self.rd_addr_regs.data_in.next = self.load.dram_rd_addr.val()
                | self.load_t.dram_rd_addr.val()
                | self.params.dram_rd_addr.val()
                | self.tables[v].dram_rd_addr.val();
            self.table_we[v].next = self.tables[v].wr_en.val();
            self.table_entry[v].next = self.tables[v].wr_entry.val();
            self.table_data[v].next = self.tables[v].wr_data.val();
            self.table_pack[v].next = 0.into();
        }
        for i in 0..self.table_widen.len() {
            self.table_widen[i].lane.next = self.dram_rd_data[i].val();
            self.table_pack[0].next = self.table_pack[0].val() | (self.table_widen[i].wide.val() << self.table_shift[i].val());
        }
        for v in 0..self.tables.len() {
            self.tables[v].dram_bytes.next = self.table_pack[v].val();
        }
        self.dram_rd_addr.next = self.rd_addr_regs.data_out.val();
        for i in 0..self.dram_rd_data.len() {
            self.load.dram_rd_data[i].next = self.dram_rd_data[i].val();
            self.load_t.dram_rd_data[i].next = self.dram_rd_data[i].val();
            self.params.dram_rd_data[i].next = self.dram_rd_data[i].val();
        }
        // A transposed drain writes whole words.
        if self.load_t.act_we[0].val() {
            self.act_addr.next = self.load_t.act_addr.val();
        } else {
            self.act_addr.next = self.load.act_addr.val();
        }
        for k in 0..self.act_we.len() {
            self.act_we[k].next = self.load.act_we[k].val() | self.load_t.act_we[k].val();
            if self.load_t.act_we[k].val() {
                self.act_data[k].next = self.load_t.act_data[k].val();
            } else {
                self.act_data[k].next = self.load.act_data[k].val();
            }
        }
        self.wgt_addr.next = self.load.wgt_addr.val();
        for j in 0..self.wgt_we.len() {
            self.wgt_we[j].next = self.load.wgt_we[j].val();
            self.wgt_data[j].next = self.load.wgt_data[j].val();
        }
        self.param_we.next = self.params.wr_en.val();
        self.param_row.next = self.params.wr_row.val();
        self.param_lane.next = self.params.wr_lane.val();
        self.param_entry.next = self.params.wr_entry.val();
        for k in 0..self.param_bytes.len() {
            self.param_byte_en[k].next = self.params.wr_byte_en[k].val();
            self.param_bytes[k].next = self.params.wr_bytes[k].val();
        }
        self.param_data.next = self.params.wr_data.val();
    }
}

/// The store unit: `Store` and `StoreTransposed`, and the `cols` requantization units.
#[derive(LogicBlock)]
pub struct StoreUnit {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start a `Store` or a `StoreTransposed`.
    pub start: Signal<In, StoreStarts>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, StoreFields>,
    /// The unit may start an instruction; its instruction completes.
    pub status: Signal<Out, UnitStatus>,
    /// Accumulator row to read.
    pub acc_addr: Signal<Out, Addr>,
    /// The row read in the previous cycle.
    pub acc_data: Vec<Signal<In, Signed<32>>>,
    /// First table entry to read (a table with entry reads takes this).
    pub param_entry: Signal<Out, Addr>,
    /// The table row of a plain store's entries (a table read by row takes this).
    pub param_row: Signal<Out, Addr>,
    /// Entries read in the previous cycle.
    pub param_data: Vec<Signal<In, Bits<64>>>,
    /// DRAM write address.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM write bytes.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM write lane enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    /// With a walker shared by the load and store engines ([`shares_walker`]; one element
    /// each, else none): the engine's walk drive and the walker's state.
    pub walk_start: Vec<Signal<Out, Bit>>,
    pub walk_advance: Vec<Signal<Out, Bit>>,
    pub walk_pattern: Vec<Signal<Out, DmaPattern>>,
    pub walk_state: Vec<Signal<In, WalkState>>,
    // Reads `requant_latency` cycles ahead of its writes, for the pipelined requantization units.
    store: StoreEngine,
    store_t: StoreTransposedEngine,
    // A copy of the transposed engine with `stages` cycles less latency: it issues the same
    // reads `stages` cycles earlier.
    store_t_ahead: StoreTransposedEngine,
    rq: Vec<Requant>,
    sel: LaneSelect,
    // The read of the previous cycle was a transposed store's: one entry for all columns.
    bcast: DFF<Bit>,
    transposed: Signal<Local, Bit>,
    // The requantization units' read register (their boundary 10, when `requant_stages`
    // gives them one) sits in front of the lane select, so that the block RAM reads reach
    // a register directly: the row, the entries, the beat's first column, the broadcast
    // flag and the output stage wait here instead of inside the units.
    held_acc: Vec<Delay<Signed<32>>>,
    held_param: Vec<Delay<Bits<64>>>,
    held_col: Delay<Bits<16>>,
    held_bcast: Delay<Bit>,
    held_stage: Delay<OutputStage>,
    held_first: Delay<Bit>,
    /// The output stage of the read of the previous cycle.
    read_stage: Signal<Local, OutputStage>,
    /// The table is read by entry ([`params_in_one_bank`]): the unit takes lane 0.
    entry_params: Constant<Bit>,
}

impl StoreUnit {
    /// The store unit of `arch`.
    pub fn new(arch: &ArchConfig) -> Self {
        let (cols, lanes, lat) = (arch.cols, arch.dram_bytes_per_cycle, arch.store_latency());
        let stages = arch.requant_stages;
        let held = crate::requant::read_registered(stages) as usize;
        let shared = usize::from(shares_walker(arch));
        let unit = || {
            let unit = Requant::new(stages).without_read_register().with_interval(arch.requant_interval);
            // Without the transposer only the store engine feeds the units, and it holds
            // an instruction's output stage until its last write.
            if arch.transposer {
                unit
            } else {
                unit.with_held_stage()
            }
        };
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            status: Default::default(),
            acc_addr: Default::default(),
            acc_data: (0..cols).map(|_| Default::default()).collect(),
            param_entry: Default::default(),
            param_row: Default::default(),
            param_data: (0..cols).map(|_| Default::default()).collect(),
            dram_wr_addr: Default::default(),
            dram_wr_data: (0..lanes).map(|_| Default::default()).collect(),
            dram_wr_en: (0..lanes).map(|_| Default::default()).collect(),
            walk_start: signals(shared),
            walk_advance: signals(shared),
            walk_pattern: signals(shared),
            walk_state: signals(shared),
            store: {
                let store = StoreEngine::new(cols, lanes, lat, arch.requant_latency(), arch.param_entries)
                    .with_field_bits(crate::controller::count_bits(arch), crate::controller::len_bits(arch))
                    .with_interval(arch.requant_interval);
                let store = if params_in_one_bank(arch) { store.reading_entries() } else { store };
                if shares_walker(arch) {
                    store.with_shared_walker()
                } else {
                    store
                }
            },
            store_t: StoreTransposedEngine::new(cols, lanes, lat, arch.transposer_depth()),
            store_t_ahead: StoreTransposedEngine::new(cols, lanes, lat - stages, arch.transposer_depth()),
            rq: (0..rq_units(arch)).map(|_| unit()).collect(),
            sel: LaneSelect::new(cols, rq_units(arch)),
            bcast: Default::default(),
            transposed: Default::default(),
            held_acc: (0..cols).map(|_| Delay::new(held)).collect(),
            held_param: (0..cols).map(|_| Delay::new(held)).collect(),
            held_col: Delay::new(held),
            held_bcast: Delay::new(held),
            held_stage: Delay::new(held),
            held_first: Delay::new(held),
            read_stage: Default::default(),
            entry_params: Constant::new(params_in_one_bank(arch)),
        }
    }
}

impl Logic for StoreUnit {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, bcast);
        self.store.clock.next = self.clock.val();
        self.store_t.clock.next = self.clock.val();
        self.store.start.next = self.start.val().store;
        self.store_t.start.next = self.start.val().store_t;
        self.store.acc.next = self.fields.val().acc;
        self.store_t.acc.next = self.fields.val().acc;
        self.store_t.row_stride.next = self.fields.val().row_stride;
        self.store_t.line_pitch.next = self.fields.val().line_pitch;
        self.store_t.width.next = self.fields.val().width;
        self.store.pattern.next = self.fields.val().pattern;
        for i in 0..self.walk_state.len() {
            self.walk_start[i].next = self.store.walk_start[i].val();
            self.walk_advance[i].next = self.store.walk_advance[i].val();
            self.walk_pattern[i].next = self.store.walk_pattern[i].val();
            self.store.walk_state[i].next = self.walk_state[i].val();
        }
        self.store_t.pattern.next = self.fields.val().pattern;
        self.store_t_ahead.pattern.next = self.fields.val().pattern;
        self.store.param.next = self.fields.val().param;
        self.store_t.param.next = self.fields.val().param;
        self.store.stage.next = self.fields.val().stage;
        self.store_t.stage.next = self.fields.val().stage;
        self.store_t_ahead.clock.next = self.clock.val();
        self.store_t_ahead.start.next = self.start.val().store_t;
        self.store_t_ahead.acc.next = self.fields.val().acc;
        self.store_t_ahead.row_stride.next = self.fields.val().row_stride;
        self.store_t_ahead.line_pitch.next = self.fields.val().line_pitch;
        self.store_t_ahead.width.next = self.fields.val().width;
        self.store_t_ahead.param.next = self.fields.val().param;
        self.store_t_ahead.stage.next = self.fields.val().stage;
        self.status.next.ready = self.store.ready.val() & self.store_t.ready.val();
        self.status.next.complete = self.store.complete.val() | self.store_t.complete.val();
        self.transposed.next = !self.store_t.ready.val();
        self.bcast.d.next = self.transposed.val();
        // The original transposed engine is busy over the whole window of its copy's reads.
        if self.transposed.val() {
            self.acc_addr.next = self.store_t_ahead.acc_addr.val();
            self.param_entry.next = self.store_t_ahead.param_entry.val();
        } else {
            self.acc_addr.next = self.store.acc_addr.val();
            self.param_entry.next = self.store.param_entry.val();
        }
        self.param_row.next = self.store.param_row.val();
        self.held_col.clock.next = self.clock.val();
        self.held_bcast.clock.next = self.clock.val();
        self.held_stage.clock.next = self.clock.val();
        self.held_col.data_in.next = self.store.beat_col.val();
        self.held_bcast.data_in.next = self.bcast.q.val();
        if self.bcast.q.val() {
            self.read_stage.next = self.store_t.rq_stage.val();
        } else {
            self.read_stage.next = self.store.rq_stage.val();
        }
        self.held_stage.data_in.next = self.read_stage.val();
        self.held_first.clock.next = self.clock.val();
        self.held_first.data_in.next = self.store.beat_read.val();
        self.sel.beat_col.next = self.held_col.data_out.val();
        for j in 0..self.acc_data.len() {
            self.held_acc[j].clock.next = self.clock.val();
            self.held_param[j].clock.next = self.clock.val();
            self.held_acc[j].data_in.next = self.acc_data[j].val();
            self.held_param[j].data_in.next = self.param_data[j].val();
            self.sel.acc_in[j].next = self.held_acc[j].data_out.val();
            self.sel.param_in[j].next = self.held_param[j].data_out.val();
            self.store_t_ahead.q[j].next = 0.into();
            self.store.q[j].next = self.sel.q_out[j].val();
            self.store_t.q[j].next = self.sel.q_out[j].val();
        }
        for j in 0..self.rq.len() {
            self.rq[j].clock.next = self.clock.val();
            self.rq[j].acc.next = self.sel.acc_out[j].val();
            self.rq[j].stage.next = self.held_stage.data_out.val();
            self.rq[j].first.next = self.held_first.data_out.val();
            self.sel.y_in[j].next = self.rq[j].y.val();
            if self.held_bcast.data_out.val() | self.entry_params.val() {
                self.rq[j].bias.next = signed_cast(self.held_param[0].data_out.val().get_bits::<32>(0));
                self.rq[j].scale.next = self.held_param[0].data_out.val().get_bits::<32>(32);
            } else {
                self.rq[j].bias.next = signed_cast(self.sel.param_out[j].val().get_bits::<32>(0));
                self.rq[j].scale.next = self.sel.param_out[j].val().get_bits::<32>(32);
            }
        }
        if self.transposed.val() {
            self.dram_wr_addr.next = self.store_t.dram_wr_addr.val();
        } else {
            self.dram_wr_addr.next = self.store.dram_wr_addr.val();
        }
        for i in 0..self.dram_wr_en.len() {
            self.dram_wr_en[i].next = self.store.dram_wr_en[i].val() | self.store_t.dram_wr_en[i].val();
            if self.store_t.dram_wr_en[i].val() {
                self.dram_wr_data[i].next = self.store_t.dram_wr_data[i].val();
            } else {
                self.dram_wr_data[i].next = self.store.dram_wr_data[i].val();
            }
        }
    }
}

/// The requantization table is one bank read by entry
/// ([`crate::params::ParamTable::in_one_bank`]): with
/// one requantization unit that takes a value every few cycles (`requant_interval > 1`,
/// the small-FPGA variant with one DRAM lane), so one entry per beat is all the store
/// path reads, and one block RAM holds the table that would otherwise take `cols` banks
/// or `64 * cols` flip-flops. No cycle changes.
pub fn params_in_one_bank(arch: &ArchConfig) -> bool {
    !arch.transposer && rq_units(arch) == 1 && arch.requant_interval > 1
}

/// The load and store engines share one walker ([`crate::dma::SharedWalker`]): with a
/// single DRAM port they never walk at once (every load waits for the stores before it
/// and every store for the loads before it), and without the transposer they are the
/// only engines that walk a full pattern.
pub fn shares_walker(arch: &ArchConfig) -> bool {
    arch.dram_single_port && !arch.transposer
}

/// Requantization units in the store unit: one per column, or, without the transposer
/// (whose store requantizes a whole accumulator row per cycle), one per DRAM lane when
/// there are fewer lanes than columns (`store::LaneSelect`).
pub fn rq_units(arch: &ArchConfig) -> usize {
    if arch.transposer {
        arch.cols
    } else {
        arch.cols.min(arch.dram_bytes_per_cycle)
    }
}

/// The exec unit: the WS or OS engine of the configured dataflow, or both around shared
/// memories ([`ExecDual`]), with the scratchpads and the accumulator. Its write ports take
/// the load unit's writes; its accumulator read port serves the store unit.
#[derive(LogicBlock)]
pub struct ExecUnit {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start a `MatmulWs` or a `MatmulOs`.
    pub start: Signal<In, ExecStarts>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// The unit may start an instruction; its instruction completes.
    pub status: Signal<Out, UnitStatus>,
    /// Activation scratchpad write: lane enables.
    pub act_we: Vec<Signal<In, Bit>>,
    /// Activation scratchpad write: word.
    pub act_addr: Signal<In, Addr>,
    /// Activation scratchpad write: lanes.
    pub act_data: Vec<Signal<In, Signed<8>>>,
    /// Weight scratchpad write: lane enables.
    pub wgt_we: Vec<Signal<In, Bit>>,
    /// Weight scratchpad write: word.
    pub wgt_addr: Signal<In, Addr>,
    /// Weight scratchpad write: lanes.
    pub wgt_data: Vec<Signal<In, Signed<8>>>,
    /// Accumulator row to read (replica port).
    pub acc_raddr: Signal<In, Addr>,
    /// The row read in the previous cycle.
    pub acc_rdata: Vec<Signal<Out, Signed<32>>>,
    /// With a vector unit (one each, else none): start a `Vector`...
    pub start_vector: Vec<Signal<In, Bit>>,
    /// ... the exec unit's decoded fields, of which it takes its count, stride and
    /// reduction (`controller::vector_field_index`)...
    pub vector_raw: Vec<Signal<In, Bits<32>>>,
    /// ... and the load unit's table writes (`LoadTable`): enable...
    pub table_we: Vec<Signal<In, Bit>>,
    /// ... entry...
    pub table_entry: Vec<Signal<In, Addr>>,
    /// ... and value.
    pub table_data: Vec<Signal<In, Bits<32>>>,
    ws: Vec<ExecWs>,
    os: Vec<ExecOs>,
    dual: Vec<ExecDual>,
    /// The vector unit, beside the engine, with `vector_lanes`.
    vector: Vec<VectorEngine>,
    _arch: ArchConfig,
}

impl ExecUnit {
    /// The exec unit of `arch`.
    pub fn new(arch: &ArchConfig) -> Self {
        let (rows, cols) = (arch.rows, arch.cols);
        let sizes = (rows, cols, arch.act_words(), arch.wgt_words(), arch.acc_rows());
        let banks = arch.act_banks();
        let df = arch.dataflow;
        let vectors = usize::from(arch.vector_lanes > 0);
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            status: Default::default(),
            act_we: (0..rows).map(|_| Default::default()).collect(),
            act_addr: Default::default(),
            act_data: (0..rows).map(|_| Default::default()).collect(),
            wgt_we: (0..cols).map(|_| Default::default()).collect(),
            wgt_addr: Default::default(),
            wgt_data: (0..cols).map(|_| Default::default()).collect(),
            acc_raddr: Default::default(),
            acc_rdata: (0..cols).map(|_| Default::default()).collect(),
            start_vector: signals(vectors),
            vector_raw: signals(vectors * crate::controller::vector_exec_fields()),
            table_we: signals(vectors),
            table_entry: signals(vectors),
            table_data: signals(vectors),
            ws: (df == Dataflow::WeightStationary)
                .then(|| {
                    ExecWs::new(sizes.0, sizes.1, sizes.2, banks, sizes.3, sizes.4)
                        .with_csc(arch.csc_weights)
                        .with_int4x4(arch.int4_activations)
                        .with_pe_stages(arch.pe_stages)
                        .with_edge_stages(arch.edge_stages)
                        .with_weight_broadcast(arch.weight_broadcast)
                        .with_staggered_act_reads(arch.staggered_act_reads)
                        .with_acc_stages(arch.acc_stages)
                        .with_count_bits(crate::controller::matmul_count_bits(arch))
                })
                .map(|e| if vectors > 0 { e.with_vector_ports() } else { e })
                .into_iter()
                .collect(),
            os: (df == Dataflow::OutputStationary)
                .then(|| ExecOs::new(sizes.0, sizes.1, sizes.2, sizes.3, sizes.4).with_acc_stages(arch.acc_stages))
                .map(|e| if vectors > 0 { e.with_vector_ports() } else { e })
                .into_iter()
                .collect(),
            dual: (df == Dataflow::Both)
                .then(|| {
                    ExecDual::new(sizes.0, sizes.1, sizes.2, banks, sizes.3, sizes.4)
                        .with_csc(arch.csc_weights)
                        .with_int4x4(arch.int4_activations)
                        .with_pe_stages(arch.pe_stages)
                        .with_edge_stages(arch.edge_stages)
                        .with_weight_broadcast(arch.weight_broadcast)
                        .with_acc_stages(arch.acc_stages)
                })
                .map(|e| if vectors > 0 { e.with_vector_ports() } else { e })
                .into_iter()
                .collect(),
            vector: (0..vectors).map(|_| VectorEngine::new(rows, cols, arch.vector_lanes, arch.vector_latency() as usize)).collect(),
            _arch: arch.clone(),
        }
    }

    fn wire(&mut self, mode: &mut Mode) {
        let (rows, cols) = (self.act_we.len(), self.acc_rdata.len());
        let vectors = self.vector.len();
        macro_rules! common {
            ($eng:expr, $name:expr) => {{
                let e = $name;
                let p = |port: &str| format!("{e}$0${port}");
                let l = |port: &str, i: usize| format!("{e}$0${port}${i}");
                net!(mode, $eng.clock, p("clock"), self.clock, "clock".into());
                net!(mode, $eng.fields, p("fields"), self.fields, "fields".into());
                // The engine's `ready` and `complete` are the unit's status, with the
                // vector unit's joined when there is one.
                match mode {
                    Mode::Update => {
                        self.status.next = UnitStatus { ready: $eng.ready.val(), complete: $eng.complete.val() };
                        for v in &self.vector {
                            self.status.next.ready &= v.ready.val();
                            self.status.next.complete |= v.complete.val();
                        }
                    }
                    Mode::Connect => self.status.connect(),
                    Mode::Emit(block) => {
                        let (ready, complete) = if vectors > 0 {
                            (
                                binary(&p("ready"), VerilogOp::BitAnd, "vector$0$ready"),
                                binary(&p("complete"), VerilogOp::BitOr, "vector$0$complete"),
                            )
                        } else {
                            (
                                rust_hdl::core::ast::VerilogExpression::Signal(p("ready")),
                                rust_hdl::core::ast::VerilogExpression::Signal(p("complete")),
                            )
                        };
                        block.push(assign_expression_to_field::<UnitStatus>("status", "ready", ready));
                        block.push(assign_expression_to_field::<UnitStatus>("status", "complete", complete));
                    }
                }
                for v in 0..vectors {
                    let vp = |port: &str| format!("vector${v}${port}");
                    net!(mode, $eng.vec_act_on[v], l("vec_act_on", v), self.vector[v].act_on, vp("act_on"));
                    net!(mode, $eng.vec_act_raddr[v], l("vec_act_raddr", v), self.vector[v].act_raddr, vp("act_raddr"));
                    net!(mode, $eng.vec_acc_issue[v], l("vec_acc_issue", v), self.vector[v].acc_issue, vp("acc_issue"));
                    net!(mode, $eng.vec_acc_addr[v], l("vec_acc_addr", v), self.vector[v].acc_addr, vp("acc_addr"));
                    for k in 0..rows {
                        net!(
                            mode,
                            self.vector[v].act_rdata[k],
                            format!("vector${v}$act_rdata${k}"),
                            $eng.vec_act_rdata[k],
                            l("vec_act_rdata", k)
                        );
                    }
                    for j in 0..cols {
                        net!(
                            mode,
                            $eng.vec_acc_input[j],
                            l("vec_acc_input", j),
                            self.vector[v].acc_input[j],
                            format!("vector${v}$acc_input${j}")
                        );
                    }
                }
                net!(mode, $eng.host_act_addr, p("host_act_addr"), self.act_addr, "act_addr".into());
                net!(mode, $eng.host_wgt_addr, p("host_wgt_addr"), self.wgt_addr, "wgt_addr".into());
                net!(mode, $eng.host_acc_addr, p("host_acc_addr"), self.acc_raddr, "acc_raddr".into());
                for k in 0..rows {
                    net!(mode, $eng.host_act_we[k], l("host_act_we", k), self.act_we[k], format!("act_we${k}"));
                    net!(mode, $eng.host_act_data[k], l("host_act_data", k), self.act_data[k], format!("act_data${k}"));
                }
                for j in 0..cols {
                    net!(mode, $eng.host_wgt_we[j], l("host_wgt_we", j), self.wgt_we[j], format!("wgt_we${j}"));
                    net!(mode, $eng.host_wgt_data[j], l("host_wgt_data", j), self.wgt_data[j], format!("wgt_data${j}"));
                    net!(mode, self.acc_rdata[j], format!("acc_rdata${j}"), $eng.host_acc_data[j], l("host_acc_data", j));
                }
            }};
        }
        // A start bit of the unit's starts to an engine's start port.
        macro_rules! start {
            ($dst:expr, $dn:expr, $field:ident) => {
                match mode {
                    Mode::Update => $dst.next = self.start.val().$field,
                    Mode::Connect => $dst.connect(),
                    Mode::Emit(block) => block.push(assign_from_field::<ExecStarts>($dn.into(), "start", stringify!($field))),
                }
            };
        }
        if !self.ws.is_empty() {
            common!(self.ws[0], "ws");
            start!(self.ws[0].start, "ws$0$start", ws);
        }
        if !self.os.is_empty() {
            common!(self.os[0], "os");
            start!(self.os[0].start, "os$0$start", os);
        }
        if !self.dual.is_empty() {
            common!(self.dual[0], "dual");
            net!(mode, self.dual[0].start, "dual$0$start".into(), self.start, "start".into());
        }
        for v in 0..vectors {
            let vp = |port: &str| format!("vector${v}${port}");
            let l = |port: &str| format!("{port}${v}");
            net!(mode, self.vector[v].clock, vp("clock"), self.clock, "clock".into());
            net!(mode, self.vector[v].start, vp("start"), self.start_vector[v], l("start_vector"));
            net!(mode, self.vector[v].fields, vp("fields"), self.fields, "fields".into());
            for (k, port) in ["count", "stride_field", "max_field"].into_iter().enumerate() {
                let f = crate::controller::vector_field_index(k);
                let dst = match k {
                    0 => &mut self.vector[v].count,
                    1 => &mut self.vector[v].stride_field,
                    _ => &mut self.vector[v].max_field,
                };
                net!(mode, dst, vp(port), self.vector_raw[f], format!("vector_raw${f}"));
            }
            net!(mode, self.vector[v].table_we, vp("table_we"), self.table_we[v], l("table_we"));
            net!(mode, self.vector[v].table_entry, vp("table_entry"), self.table_entry[v], l("table_entry"));
            net!(mode, self.vector[v].table_data, vp("table_data"), self.table_data[v], l("table_data"));
        }
    }
}

impl Logic for ExecUnit {
    fn update(&mut self) {
        self.wire(&mut Mode::Update);
    }

    fn connect(&mut self) {
        self.wire(&mut Mode::Connect);
    }

    fn hdl(&self) -> Verilog {
        let mut block = vec![];
        // Emission reads no signal values; `wire` takes `&mut self` for the other modes.
        ExecUnit::new(&self._arch).wire(&mut Mode::Emit(&mut block));
        Verilog::Combinatorial(block)
    }
}
