//! The scratchpads and the accumulator as the engines see them: lanes of [`SyncRam`] with a
//! host port, and the accumulator's read-modify-write with forwarding.

use crate::sram::{SyncRam, ADDR_BITS};
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// A scratchpad of `lanes`-byte words: the writer (host or load engine) writes any subset
/// of a word's bytes, the engine reads whole words (data one cycle after the address).
#[derive(LogicBlock)]
pub struct Scratchpad {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: write lane `k` of `host_data` to word `host_addr` (per lane).
    pub host_we: Vec<Signal<In, Bit>>,
    /// Host: word address.
    pub host_addr: Signal<In, Addr>,
    /// Host: the word, one byte per lane.
    pub host_data: Vec<Signal<In, Signed<8>>>,
    /// Engine: word to read.
    pub read_address: Signal<In, Addr>,
    /// Engine: the word addressed in the previous cycle.
    pub read_data: Vec<Signal<Out, Signed<8>>>,
    rams: Vec<SyncRam<Signed<8>>>,
}

impl Scratchpad {
    /// `depth` words of `lanes` bytes.
    pub fn new(lanes: usize, depth: usize) -> Self {
        Self {
            clock: Default::default(),
            host_we: (0..lanes).map(|_| Default::default()).collect(),
            host_addr: Default::default(),
            host_data: (0..lanes).map(|_| Default::default()).collect(),
            read_address: Default::default(),
            read_data: (0..lanes).map(|_| Default::default()).collect(),
            // The load unit writes and the exec unit reads, never one word in one cycle.
            rams: (0..lanes).map(|_| SyncRam::new(depth).without_collisions()).collect(),
        }
    }
}

impl Logic for Scratchpad {
    #[hdl_gen]
    fn update(&mut self) {
        for k in 0..self.rams.len() {
            self.rams[k].clock.next = self.clock.val();
            self.rams[k].write_enable.next = self.host_we[k].val();
            self.rams[k].write_address.next = self.host_addr.val();
            self.rams[k].write_data.next = self.host_data[k].val();
            self.rams[k].read_address.next = self.read_address.val();
            self.read_data[k].next = self.rams[k].read_data.val();
        }
    }
}

/// The accumulator: a row issued in cycle `c` (`issue`, `addr`, `accumulate`) is read in
/// `c` and written in `c + 1` with `input + (accumulate ? old : 0)`, where `old` is
/// forwarded from the write of cycle `c` when it hits the same row.
///
/// The host port (the store engine's) reads a replica that takes the same writes, so that
/// stores and accumulating matmuls, which run concurrently on different rows, each have a
/// read port of their own.
#[derive(LogicBlock)]
pub struct Accumulator {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// A row is issued this cycle.
    pub issue: Signal<In, Bit>,
    /// Its address.
    pub addr: Signal<In, Addr>,
    /// Add to its old value.
    pub accumulate: Signal<In, Bit>,
    /// The values written in the cycle after the issue, one per column.
    pub input: Vec<Signal<In, Signed<32>>>,
    /// Host: row of the replica to read (data in the next cycle).
    pub host_addr: Signal<In, Addr>,
    /// The row read in the previous cycle.
    pub host_data: Vec<Signal<Out, Signed<32>>>,
    rams: Vec<SyncRam<Signed<32>>>,
    replica: Vec<SyncRam<Signed<32>>>,
    p_valid: DFF<Bit>,
    p_addr: DFF<Addr>,
    p_accum: DFF<Bit>,
    last_we: DFF<Bit>,
    last_wa: DFF<Addr>,
    last_wd: Vec<DFF<Signed<32>>>,
    fwd: Signal<Local, Bit>,
}

impl Accumulator {
    /// `depth` rows of `cols` int32 values.
    pub fn new(cols: usize, depth: usize) -> Self {
        Self {
            clock: Default::default(),
            issue: Default::default(),
            addr: Default::default(),
            accumulate: Default::default(),
            input: (0..cols).map(|_| Default::default()).collect(),
            host_addr: Default::default(),
            host_data: (0..cols).map(|_| Default::default()).collect(),
            rams: (0..cols).map(|_| SyncRam::new(depth)).collect(),
            // The exec unit writes and the store unit reads, never one row in one cycle.
            replica: (0..cols).map(|_| SyncRam::new(depth).without_collisions()).collect(),
            p_valid: Default::default(),
            p_addr: Default::default(),
            p_accum: Default::default(),
            last_we: Default::default(),
            last_wa: Default::default(),
            last_wd: (0..cols).map(|_| Default::default()).collect(),
            fwd: Default::default(),
        }
    }
}

impl Logic for Accumulator {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, p_valid, p_addr, p_accum, last_we, last_wa);
        self.p_valid.d.next = self.issue.val();
        self.p_addr.d.next = self.addr.val();
        self.p_accum.d.next = self.accumulate.val();
        self.fwd.next = self.last_we.q.val() & (self.last_wa.q.val() == self.p_addr.q.val());
        self.last_we.d.next = self.p_valid.q.val();
        self.last_wa.d.next = self.p_addr.q.val();
        for j in 0..self.rams.len() {
            self.rams[j].clock.next = self.clock.val();
            self.replica[j].clock.next = self.clock.val();
            self.last_wd[j].clock.next = self.clock.val();
            self.last_wd[j].d.next = self.last_wd[j].q.val();
            self.rams[j].read_address.next = self.addr.val();
            self.replica[j].read_address.next = self.host_addr.val();
            self.host_data[j].next = self.replica[j].read_data.val();
            self.rams[j].write_enable.next = self.p_valid.q.val();
            self.rams[j].write_address.next = self.p_addr.q.val();
            self.replica[j].write_enable.next = self.p_valid.q.val();
            self.replica[j].write_address.next = self.p_addr.q.val();
            self.replica[j].write_data.next = self.rams[j].write_data.val();
            if self.p_accum.q.val() {
                if self.fwd.val() {
                    self.rams[j].write_data.next = self.input[j].val() + self.last_wd[j].q.val();
                } else {
                    self.rams[j].write_data.next = self.input[j].val() + self.rams[j].read_data.val();
                }
            } else {
                self.rams[j].write_data.next = self.input[j].val();
            }
            if self.p_valid.q.val() {
                self.last_wd[j].d.next = self.rams[j].write_data.val();
            }
        }
    }
}

/// The exec unit's memories: activation and weight scratchpads and the accumulator, with
/// the writer's and reader's host ports on one side and an engine's ports on the other.
/// The engines ([`crate::exec_ws::WsEngine`], [`crate::exec_os::OsEngine`]) hold no
/// memory, so that one set can serve both in a `both` instance.
#[derive(LogicBlock)]
pub struct Memories {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: write lane `k` of `host_act_data` to activation word `host_act_addr`.
    pub host_act_we: Vec<Signal<In, Bit>>,
    /// Writer: activation word address.
    pub host_act_addr: Signal<In, Addr>,
    /// Writer: activation word, lane `k`.
    pub host_act_data: Vec<Signal<In, Signed<8>>>,
    /// Writer: write lane `j` of `host_wgt_data` to weight word `host_wgt_addr`.
    pub host_wgt_we: Vec<Signal<In, Bit>>,
    /// Writer: weight word address.
    pub host_wgt_addr: Signal<In, Addr>,
    /// Writer: weight word, lane `j`.
    pub host_wgt_data: Vec<Signal<In, Signed<8>>>,
    /// Reader: accumulator row to read (data in the next cycle).
    pub host_acc_addr: Signal<In, Addr>,
    /// Reader: the row read in the previous cycle, lane `j`.
    pub host_acc_data: Vec<Signal<Out, Signed<32>>>,
    /// Engine: activation word to read.
    pub act_raddr: Signal<In, Addr>,
    /// Engine: the activation word addressed in the previous cycle.
    pub act_rdata: Vec<Signal<Out, Signed<8>>>,
    /// Engine: weight word to read.
    pub wgt_raddr: Signal<In, Addr>,
    /// Engine: the weight word addressed in the previous cycle.
    pub wgt_rdata: Vec<Signal<Out, Signed<8>>>,
    /// Engine: an accumulator row is issued (see [`Accumulator`]).
    pub acc_issue: Signal<In, Bit>,
    /// Engine: its row.
    pub acc_addr: Signal<In, Addr>,
    /// Engine: add to its old value.
    pub acc_accumulate: Signal<In, Bit>,
    /// Engine: the values, one cycle after the issue.
    pub acc_input: Vec<Signal<In, Signed<32>>>,
    act: Scratchpad,
    wgt: Scratchpad,
    accs: Accumulator,
}

impl Memories {
    /// Memories for `rows x cols` PEs with the given depths.
    pub fn new(rows: usize, cols: usize, act_words: usize, wgt_words: usize, acc_rows: usize) -> Self {
        Self {
            clock: Default::default(),
            host_act_we: (0..rows).map(|_| Default::default()).collect(),
            host_act_addr: Default::default(),
            host_act_data: (0..rows).map(|_| Default::default()).collect(),
            host_wgt_we: (0..cols).map(|_| Default::default()).collect(),
            host_wgt_addr: Default::default(),
            host_wgt_data: (0..cols).map(|_| Default::default()).collect(),
            host_acc_addr: Default::default(),
            host_acc_data: (0..cols).map(|_| Default::default()).collect(),
            act_raddr: Default::default(),
            act_rdata: (0..rows).map(|_| Default::default()).collect(),
            wgt_raddr: Default::default(),
            wgt_rdata: (0..cols).map(|_| Default::default()).collect(),
            acc_issue: Default::default(),
            acc_addr: Default::default(),
            acc_accumulate: Default::default(),
            acc_input: (0..cols).map(|_| Default::default()).collect(),
            act: Scratchpad::new(rows, act_words),
            wgt: Scratchpad::new(cols, wgt_words),
            accs: Accumulator::new(cols, acc_rows),
        }
    }
}

impl Logic for Memories {
    #[hdl_gen]
    fn update(&mut self) {
        self.act.clock.next = self.clock.val();
        self.act.host_addr.next = self.host_act_addr.val();
        self.act.read_address.next = self.act_raddr.val();
        for k in 0..self.act_rdata.len() {
            self.act.host_we[k].next = self.host_act_we[k].val();
            self.act.host_data[k].next = self.host_act_data[k].val();
            self.act_rdata[k].next = self.act.read_data[k].val();
        }
        self.wgt.clock.next = self.clock.val();
        self.wgt.host_addr.next = self.host_wgt_addr.val();
        self.wgt.read_address.next = self.wgt_raddr.val();
        for j in 0..self.wgt_rdata.len() {
            self.wgt.host_we[j].next = self.host_wgt_we[j].val();
            self.wgt.host_data[j].next = self.host_wgt_data[j].val();
            self.wgt_rdata[j].next = self.wgt.read_data[j].val();
        }
        self.accs.clock.next = self.clock.val();
        self.accs.issue.next = self.acc_issue.val();
        self.accs.addr.next = self.acc_addr.val();
        self.accs.accumulate.next = self.acc_accumulate.val();
        self.accs.host_addr.next = self.host_acc_addr.val();
        for j in 0..self.acc_input.len() {
            self.accs.input[j].next = self.acc_input[j].val();
            self.host_acc_data[j].next = self.accs.host_data[j].val();
        }
    }
}
