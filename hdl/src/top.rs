//! The accelerator's top level ([`Accelerator`]).
//!
//! ```text
//!  host instr port, run --> Controller --fields, starts--> LoadUnit  ExecUnit  StoreUnit
//!                                  ^------- ready, complete ---------'    |        |
//!  DRAM read port  <------------------------------------ LoadUnit ------>+ writes |
//!  DRAM write port <------------------------------------------------- StoreUnit <-+ acc reads
//!                                       ParamTable <- LoadUnit writes, StoreUnit reads
//! ```
//!
//! The DRAM sits outside the accelerator: a board provides memory behind the two DRAM
//! ports with the one-cycle read of the co-simulation DRAM (`systole_testbenches::dram::Dram`) (the engines add the configured
//! latency themselves).

use crate::controller::{Controller, CYCLE_BITS};
use crate::dma::SharedWalker;
use crate::params::ParamTable;
use crate::sram::ADDR_BITS;
use crate::units::{ExecUnit, LoadUnit, StoreUnit};
use crate::wiring::signals;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::isa::INSTR_WORDS;
use systole_core::ArchConfig;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The accelerator of one `ArchConfig`.
#[derive(LogicBlock)]
pub struct Accelerator {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Host: write an instruction (see [`Controller`]).
    pub host_we: Signal<In, Bit>,
    /// Host: unit of the instruction (0 load, 1 exec, 2 store).
    pub host_unit: Signal<In, Bits<2>>,
    /// Host: index within the unit's instructions.
    pub host_index: Signal<In, Addr>,
    /// Host: one part of the encoded instruction, least significant word first (see
    /// [`Controller`]).
    pub host_word: Vec<Signal<In, Bits<64>>>,
    /// Host: start the program; program cycle 0 is the next cycle.
    pub run: Signal<In, Bit>,
    /// Instructions per unit, sampled with `run`.
    pub count: Vec<Signal<In, Addr>>,
    /// With an instruction queue (one each, else none; see [`crate::fetch::Fetcher`]): the
    /// DRAM address of the streamed instructions, sampled with `run`...
    pub stream_addr: Vec<Signal<In, DAddr>>,
    /// ... and their number.
    pub stream_count: Vec<Signal<In, Addr>>,
    /// With an instruction queue: the instruction port's DRAM read address...
    pub dram_ir_addr: Vec<Signal<Out, DAddr>>,
    /// ... and the part read in the previous cycle, `8 / fetch_cycles` little-endian words.
    pub dram_ir_data: Vec<Signal<In, Bits<64>>>,
    /// A program is running.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    /// Program cycles (the total once finished).
    pub cycles: Signal<Out, Bits<CYCLE_BITS>>,
    /// Each unit (load, exec, store) completes an instruction in this cycle.
    pub unit_done: Vec<Signal<Out, Bit>>,
    /// DRAM: read address (data in the next cycle).
    pub dram_rd_addr: Signal<Out, DAddr>,
    /// DRAM: bytes read in the previous cycle.
    pub dram_rd_data: Vec<Signal<In, Signed<8>>>,
    /// DRAM: write address.
    pub dram_wr_addr: Signal<Out, DAddr>,
    /// DRAM: bytes to write.
    pub dram_wr_data: Vec<Signal<Out, Signed<8>>>,
    /// DRAM: lane write enables.
    pub dram_wr_en: Vec<Signal<Out, Bit>>,
    ctl: Controller,
    ld: LoadUnit,
    ex: ExecUnit,
    st: StoreUnit,
    ptable: ParamTable,
    /// The walker the load and store engines share (one with
    /// [`crate::units::shares_walker`], else none).
    walker: Vec<SharedWalker>,
}

impl Accelerator {
    /// The accelerator of `arch` for programs of up to `instr_depth` instructions per unit.
    pub fn new(arch: &ArchConfig, instr_depth: usize) -> Self {
        Self::for_memory(arch, instr_depth, DRAM_ADDR_BITS)
    }

    /// The accelerator of `arch` for a memory that decodes `dram_addr_bits` address bits and
    /// wraps at that size (a board memory): the controller keeps only those bits of the DRAM
    /// address fields.
    pub fn for_memory(arch: &ArchConfig, instr_depth: usize, dram_addr_bits: usize) -> Self {
        let lanes = arch.dram_bytes_per_cycle;
        let queued = usize::from(arch.instr_queue.is_some());
        Self {
            clock: Default::default(),
            host_we: Default::default(),
            host_unit: Default::default(),
            host_index: Default::default(),
            host_word: (0..INSTR_WORDS / arch.fetch_cycles).map(|_| Default::default()).collect(),
            run: Default::default(),
            count: (0..3).map(|_| Default::default()).collect(),
            stream_addr: signals(queued),
            stream_count: signals(queued),
            dram_ir_addr: signals(queued),
            dram_ir_data: signals(queued * INSTR_WORDS / arch.fetch_cycles),
            running: Default::default(),
            finished: Default::default(),
            cycles: Default::default(),
            unit_done: (0..3).map(|_| Default::default()).collect(),
            dram_rd_addr: Default::default(),
            dram_rd_data: (0..lanes).map(|_| Default::default()).collect(),
            dram_wr_addr: Default::default(),
            dram_wr_data: (0..lanes).map(|_| Default::default()).collect(),
            dram_wr_en: (0..lanes).map(|_| Default::default()).collect(),
            ctl: Controller::new(arch, instr_depth, dram_addr_bits),
            ld: LoadUnit::new(arch),
            ex: ExecUnit::new(arch),
            st: StoreUnit::new(arch),
            ptable: {
                let table = ParamTable::new(arch.param_entries, arch.cols);
                if arch.transposer {
                    table.with_entry_reads()
                } else if crate::units::params_in_one_bank(arch) {
                    table.in_one_bank()
                } else {
                    table
                }
            },
            walker: (0..usize::from(crate::units::shares_walker(arch)))
                .map(|_| SharedWalker::new(lanes, crate::controller::count_bits(arch), crate::controller::len_bits(arch)))
                .collect(),
        }
    }
}

impl Logic for Accelerator {
    #[hdl_gen]
    fn update(&mut self) {
        self.ctl.clock.next = self.clock.val();
        self.ld.clock.next = self.clock.val();
        self.ex.clock.next = self.clock.val();
        self.st.clock.next = self.clock.val();
        self.ptable.clock.next = self.clock.val();
        // Host and status.
        self.ctl.host_we.next = self.host_we.val();
        self.ctl.host_unit.next = self.host_unit.val();
        self.ctl.host_index.next = self.host_index.val();
        for w in 0..self.host_word.len() {
            self.ctl.host_word[w].next = self.host_word[w].val();
        }
        self.ctl.run.next = self.run.val();
        for u in 0..self.count.len() {
            self.ctl.count[u].next = self.count[u].val();
        }
        for f in 0..self.stream_addr.len() {
            self.ctl.stream_addr[f].next = self.stream_addr[f].val();
            self.ctl.stream_count[f].next = self.stream_count[f].val();
            self.dram_ir_addr[f].next = self.ctl.ir_addr[f].val();
        }
        for w in 0..self.dram_ir_data.len() {
            self.ctl.ir_data[w].next = self.dram_ir_data[w].val();
        }
        self.running.next = self.ctl.running.val();
        self.finished.next = self.ctl.finished.val();
        self.cycles.next = self.ctl.cycles.val();
        self.ctl.ld_status.next = self.ld.status.val();
        self.ctl.ex_status.next = self.ex.status.val();
        self.ctl.st_status.next = self.st.status.val();
        self.unit_done[0].next = self.ld.status.val().complete;
        self.unit_done[1].next = self.ex.status.val().complete;
        self.unit_done[2].next = self.st.status.val().complete;
        // Load unit.
        self.ld.start.next = self.ctl.ld_start.val();
        self.ld.fields.next = self.ctl.ld.val();
        self.dram_rd_addr.next = self.ld.dram_rd_addr.val();
        for i in 0..self.dram_rd_data.len() {
            self.ld.dram_rd_data[i].next = self.dram_rd_data[i].val();
        }
        self.ptable.wr_en.next = self.ld.param_we.val();
        self.ptable.wr_row.next = self.ld.param_row.val();
        self.ptable.wr_lane.next = self.ld.param_lane.val();
        self.ptable.wr_entry.next = self.ld.param_entry.val();
        for k in 0..self.ld.param_bytes.len() {
            self.ptable.wr_byte_en[k].next = self.ld.param_byte_en[k].val();
            self.ptable.wr_bytes[k].next = self.ld.param_bytes[k].val();
        }
        self.ptable.wr_data.next = self.ld.param_data.val();
        // Exec unit.
        self.ex.start.next = self.ctl.ex_start.val();
        self.ex.fields.next = self.ctl.ex.val();
        for f in 0..self.ex.vector_raw.len() {
            self.ex.vector_raw[f].next = self.ctl.ex_raw[f].val();
        }
        for v in 0..self.ex.table_we.len() {
            self.ld.start_table[v].next = self.ctl.ld_start_table[v].val();
            self.ex.start_vector[v].next = self.ctl.ex_start_vector[v].val();
            self.ex.table_we[v].next = self.ld.table_we[v].val();
            self.ex.table_entry[v].next = self.ld.table_entry[v].val();
            self.ex.table_data[v].next = self.ld.table_data[v].val();
        }
        self.ex.act_addr.next = self.ld.act_addr.val();
        for k in 0..self.ld.act_we.len() {
            self.ex.act_we[k].next = self.ld.act_we[k].val();
            self.ex.act_data[k].next = self.ld.act_data[k].val();
        }
        self.ex.wgt_addr.next = self.ld.wgt_addr.val();
        for j in 0..self.ld.wgt_we.len() {
            self.ex.wgt_we[j].next = self.ld.wgt_we[j].val();
            self.ex.wgt_data[j].next = self.ld.wgt_data[j].val();
        }
        // Store unit.
        self.st.start.next = self.ctl.st_start.val();
        self.st.fields.next = self.ctl.st.val();
        for i in 0..self.walker.len() {
            self.walker[i].clock.next = self.clock.val();
            self.walker[i].ld_start.next = self.ld.walk_start[i].val();
            self.walker[i].ld_advance.next = self.ld.walk_advance[i].val();
            self.walker[i].ld_pattern.next = self.ld.walk_pattern[i].val();
            self.walker[i].st_start.next = self.st.walk_start[i].val();
            self.walker[i].st_advance.next = self.st.walk_advance[i].val();
            self.walker[i].st_pattern.next = self.st.walk_pattern[i].val();
            self.ld.walk_state[i].next = self.walker[i].state.val();
            self.st.walk_state[i].next = self.walker[i].state.val();
        }
        self.ex.acc_raddr.next = self.st.acc_addr.val();
        self.ptable.rd_row.next = self.st.param_row.val();
        self.ptable.rd_entry.next = self.st.param_entry.val();
        for j in 0..self.st.acc_data.len() {
            self.st.acc_data[j].next = self.ex.acc_rdata[j].val();
            self.st.param_data[j].next = self.ptable.rd_data[j].val();
        }
        self.dram_wr_addr.next = self.st.dram_wr_addr.val();
        for i in 0..self.dram_wr_en.len() {
            self.dram_wr_en[i].next = self.st.dram_wr_en[i].val();
            self.dram_wr_data[i].next = self.st.dram_wr_data[i].val();
        }
    }
}
