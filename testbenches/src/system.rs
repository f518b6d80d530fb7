//! The accelerator with the behavioural DRAM and a host port to it ([`System`]), the design
//! the co-simulation ladder runs in rust-hdl's simulator and as Verilog.

use crate::dram::Dram;
use systole_core::isa::INSTR_WORDS;
use systole_core::ArchConfig;
use systole_hdl::controller::CYCLE_BITS;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::sram::ADDR_BITS;
use systole_hdl::top::Accelerator;
use systole_hdl::wiring::signals;
use systole_hdl::DRAM_ADDR_BITS;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// The accelerator with a behavioural DRAM and a host port to it, for co-simulation.
#[derive(LogicBlock)]
pub struct System {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Host: write an instruction.
    pub host_we: Signal<In, Bit>,
    /// Host: unit of the instruction.
    pub host_unit: Signal<In, Bits<2>>,
    /// Host: index within the unit's instructions.
    pub host_index: Signal<In, Addr>,
    /// Host: one part of the encoded instruction (see [`Controller`]).
    pub host_word: Vec<Signal<In, Bits<64>>>,
    /// Host: start the program.
    pub run: Signal<In, Bit>,
    /// Instructions per unit.
    pub count: Vec<Signal<In, Addr>>,
    /// With an instruction queue: where the streamed instructions are in DRAM...
    pub stream_addr: Vec<Signal<In, DAddr>>,
    /// ... and how many.
    pub stream_count: Vec<Signal<In, Addr>>,
    /// A program is running.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    /// Program cycles.
    pub cycles: Signal<Out, Bits<CYCLE_BITS>>,
    /// Each unit completes an instruction in this cycle.
    pub unit_done: Vec<Signal<Out, Bit>>,
    /// Host owns the DRAM ports (only while no program runs).
    pub host_dram: Signal<In, Bit>,
    /// Host: DRAM lane write enables.
    pub host_dram_we: Vec<Signal<In, Bit>>,
    /// Host: DRAM address of lane 0 (write, and read with data in the next cycle).
    pub host_dram_addr: Signal<In, DAddr>,
    /// Host: DRAM bytes to write.
    pub host_dram_data: Vec<Signal<In, Signed<8>>>,
    /// Host: DRAM bytes read in the previous cycle.
    pub host_dram_rdata: Vec<Signal<Out, Signed<8>>>,
    acc: Accelerator,
    dram: Dram,
}

impl System {
    /// `arch`'s accelerator for programs of up to `instr_depth` instructions per unit and
    /// `dram_bytes` bytes of DRAM (with an instruction port when `arch` has a queue).
    pub fn new(arch: &ArchConfig, instr_depth: usize, dram_bytes: usize) -> Self {
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
            running: Default::default(),
            finished: Default::default(),
            cycles: Default::default(),
            unit_done: (0..3).map(|_| Default::default()).collect(),
            host_dram: Default::default(),
            host_dram_we: (0..lanes).map(|_| Default::default()).collect(),
            host_dram_addr: Default::default(),
            host_dram_data: (0..lanes).map(|_| Default::default()).collect(),
            host_dram_rdata: (0..lanes).map(|_| Default::default()).collect(),
            acc: Accelerator::new(arch, instr_depth),
            dram: Dram::new(dram_bytes, lanes).with_instr_port(queued * INSTR_WORDS / arch.fetch_cycles),
        }
    }
}

impl Logic for System {
    #[hdl_gen]
    fn update(&mut self) {
        self.acc.clock.next = self.clock.val();
        self.dram.clock.next = self.clock.val();
        self.acc.host_we.next = self.host_we.val();
        self.acc.host_unit.next = self.host_unit.val();
        self.acc.host_index.next = self.host_index.val();
        for w in 0..self.host_word.len() {
            self.acc.host_word[w].next = self.host_word[w].val();
        }
        self.acc.run.next = self.run.val();
        for u in 0..self.count.len() {
            self.acc.count[u].next = self.count[u].val();
        }
        for f in 0..self.stream_addr.len() {
            self.acc.stream_addr[f].next = self.stream_addr[f].val();
            self.acc.stream_count[f].next = self.stream_count[f].val();
            self.dram.ir_addr[f].next = self.acc.dram_ir_addr[f].val();
        }
        for w in 0..self.dram.ir_data.len() {
            self.acc.dram_ir_data[w].next = self.dram.ir_data[w].val();
        }
        self.running.next = self.acc.running.val();
        self.finished.next = self.acc.finished.val();
        self.cycles.next = self.acc.cycles.val();
        for u in 0..self.unit_done.len() {
            self.unit_done[u].next = self.acc.unit_done[u].val();
        }
        if self.host_dram.val() {
            self.dram.rd_addr.next = self.host_dram_addr.val();
            self.dram.wr_addr.next = self.host_dram_addr.val();
        } else {
            self.dram.rd_addr.next = self.acc.dram_rd_addr.val();
            self.dram.wr_addr.next = self.acc.dram_wr_addr.val();
        }
        for i in 0..self.host_dram_we.len() {
            self.acc.dram_rd_data[i].next = self.dram.rd_data[i].val();
            self.host_dram_rdata[i].next = self.dram.rd_data[i].val();
            if self.host_dram.val() {
                self.dram.wr_en[i].next = self.host_dram_we[i].val();
                self.dram.wr_data[i].next = self.host_dram_data[i].val();
            } else {
                self.dram.wr_en[i].next = self.acc.dram_wr_en[i].val();
                self.dram.wr_data[i].next = self.acc.dram_wr_data[i].val();
            }
        }
    }
}
