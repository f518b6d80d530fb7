//! The exec engine of a `both` instance: the WS and the OS engine around one set of
//! memories. Each program uses one engine (the simulator refuses programs that mix them,
//! `SimError::MixedDataflows`), so the memories' engine ports follow the engine that
//! started last; in its start cycle, the one starting.
//!
//! ```text
//! start.ws --> WsEngine --+                     +--> act / wgt read data (to both)
//!                         +-- select (last started) --> Memories <-- host ports
//! start.os --> OsEngine --+
//! ```

use crate::exec_os::OsEngine;
use crate::exec_ws::WsEngine;
use crate::fields::{ExecStarts, MatmulFields};
use crate::memories::Memories;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// Both exec engines sharing the scratchpads and the accumulator.
#[derive(LogicBlock)]
pub struct ExecDual {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start a `MatmulWs` or a `MatmulOs` on the field ports in this cycle (only when
    /// `ready`).
    pub start: Signal<In, ExecStarts>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// Both engines may start an instruction (the idle one always can).
    pub ready: Signal<Out, Bit>,
    /// An instruction completes: its effects are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
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
    /// With a vector unit ([`crate::vector::VectorEngine`] beside the engine, one each,
    /// else none): it reads the activation scratchpad in this cycle...
    pub vec_act_on: Vec<Signal<In, Bit>>,
    /// ... at this word...
    pub vec_act_raddr: Vec<Signal<In, Addr>>,
    /// ... whose lanes come a cycle later (`rows` with a vector unit)...
    pub vec_act_rdata: Vec<Signal<Out, Signed<8>>>,
    /// ... and it issues an accumulator row...
    pub vec_acc_issue: Vec<Signal<In, Bit>>,
    /// ... this one...
    pub vec_acc_addr: Vec<Signal<In, Addr>>,
    /// ... with these values a cycle later (`cols` with a vector unit).
    pub vec_acc_input: Vec<Signal<In, Signed<32>>>,
    ws: WsEngine,
    os: OsEngine,
    mem: Memories,
    os_last: DFF<Bit>,
    use_os: Signal<Local, Bit>,
}

impl ExecDual {
    /// Both engines for `rows x cols` PEs and memories of the given depths, the activation
    /// scratchpad in `act_banks` banks (see [`WsEngine::new`]).
    pub fn new(rows: usize, cols: usize, act_words: usize, act_banks: usize, wgt_words: usize, acc_rows: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            host_act_we: (0..rows).map(|_| Default::default()).collect(),
            host_act_addr: Default::default(),
            host_act_data: (0..rows).map(|_| Default::default()).collect(),
            host_wgt_we: (0..cols).map(|_| Default::default()).collect(),
            host_wgt_addr: Default::default(),
            host_wgt_data: (0..cols).map(|_| Default::default()).collect(),
            host_acc_addr: Default::default(),
            host_acc_data: (0..cols).map(|_| Default::default()).collect(),
            vec_act_on: vec![],
            vec_act_raddr: vec![],
            vec_act_rdata: vec![],
            vec_acc_issue: vec![],
            vec_acc_addr: vec![],
            vec_acc_input: vec![],
            ws: WsEngine::new(rows, cols, act_banks).with_acc_rows(acc_rows),
            os: OsEngine::new(rows, cols),
            mem: Memories::new(rows, cols, act_words, act_banks, wgt_words, acc_rows),
            os_last: Default::default(),
            use_os: Default::default(),
        }
    }

    /// The engine with the ports of a vector unit beside it, which take the memories'
    /// engine ports while it runs ([`Memories::with_vector_ports`]).
    pub fn with_vector_ports(mut self) -> Self {
        let (rows, cols) = (self.host_act_data.len(), self.host_acc_data.len());
        self.vec_act_on = crate::wiring::signals(1);
        self.vec_act_raddr = crate::wiring::signals(1);
        self.vec_act_rdata = crate::wiring::signals(rows);
        self.vec_acc_issue = crate::wiring::signals(1);
        self.vec_acc_addr = crate::wiring::signals(1);
        self.vec_acc_input = crate::wiring::signals(cols);
        self.mem = std::mem::replace(&mut self.mem, Memories::new(1, 1, 1, 1, 1, 1)).with_vector_ports();
        self
    }
}

impl ExecDual {
    /// The WS engine with CSC preloads (`ArchConfig::csc_weights`) or without.
    pub fn with_csc(mut self, csc: bool) -> Self {
        self.ws = self.ws.with_csc(csc);
        self
    }

    /// The WS engine with int4 x int4 PEs or without (see [`WsEngine::with_int4x4`]).
    pub fn with_int4x4(mut self, on: bool) -> Self {
        self.ws = self.ws.with_int4x4(on);
        self
    }

    /// The WS engine with `stages` product registers per PE (see
    /// [`WsEngine::with_pe_stages`]).
    pub fn with_pe_stages(mut self, stages: usize) -> Self {
        self.ws = self.ws.with_pe_stages(stages);
        self
    }

    /// The WS engine with `stages` edge registers on its array (see
    /// [`WsEngine::with_edge_stages`]).
    pub fn with_edge_stages(mut self, stages: usize) -> Self {
        self.ws = self.ws.with_edge_stages(stages);
        self
    }

    /// The WS engine's weight bus broadcast or registered (see
    /// [`WsEngine::with_weight_broadcast`]).
    pub fn with_weight_broadcast(mut self, on: bool) -> Self {
        self.ws = self.ws.with_weight_broadcast(on);
        self
    }

    /// Both engines and the memories with `stages` accumulator pipeline stages (see
    /// [`WsEngine::with_acc_stages`]).
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.ws = self.ws.with_acc_stages(stages);
        self.os = self.os.with_acc_stages(stages);
        self.mem = self.mem.with_acc_stages(stages);
        self
    }
}

impl Logic for ExecDual {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, os_last);
        self.ws.clock.next = self.clock.val();
        self.os.clock.next = self.clock.val();
        self.mem.clock.next = self.clock.val();
        self.ws.start.next = self.start.val().ws;
        self.os.start.next = self.start.val().os;
        self.ws.fields.next = self.fields.val();
        self.os.fields.next = self.fields.val();
        self.ready.next = self.ws.ready.val() & self.os.ready.val();
        self.complete.next = self.ws.complete.val() | self.os.complete.val();

        // The engine that started last owns the memories' engine ports.
        if self.start.val().os {
            self.os_last.d.next = true;
        } else if self.start.val().ws {
            self.os_last.d.next = false;
        }
        self.use_os.next = self.start.val().os | (!self.start.val().ws & self.os_last.q.val());
        self.mem.host_act_addr.next = self.host_act_addr.val();
        self.mem.host_wgt_addr.next = self.host_wgt_addr.val();
        self.mem.host_acc_addr.next = self.host_acc_addr.val();
        for l in 0..self.ws.act_wide_data.len() {
            self.ws.act_wide_data[l].next = self.mem.act_wide_data[l].val();
        }
        if self.use_os.val() {
            self.mem.act_wide.next = false;
            self.mem.act_raddr.next = self.os.act_raddr.val();
            self.mem.wgt_raddr.next = self.os.wgt_raddr.val();
            self.mem.acc_issue.next = self.os.acc_issue.val();
            self.mem.acc_addr.next = self.os.acc_addr.val();
            self.mem.acc_accumulate.next = self.os.acc_accumulate.val();
        } else {
            self.mem.act_wide.next = self.ws.act_wide.val();
            self.mem.act_raddr.next = self.ws.act_raddr.val();
            self.mem.wgt_raddr.next = self.ws.wgt_raddr.val();
            self.mem.acc_issue.next = self.ws.acc_issue.val();
            self.mem.acc_addr.next = self.ws.acc_addr.val();
            self.mem.acc_accumulate.next = self.ws.acc_accumulate.val();
        }
        for k in 0..self.host_act_data.len() {
            self.mem.host_act_we[k].next = self.host_act_we[k].val();
            self.mem.host_act_data[k].next = self.host_act_data[k].val();
            self.ws.act_rdata[k].next = self.mem.act_rdata[k].val();
            self.os.act_rdata[k].next = self.mem.act_rdata[k].val();
        }
        for j in 0..self.host_wgt_data.len() {
            self.mem.host_wgt_we[j].next = self.host_wgt_we[j].val();
            self.mem.host_wgt_data[j].next = self.host_wgt_data[j].val();
            self.ws.wgt_rdata[j].next = self.mem.wgt_rdata[j].val();
            self.os.wgt_rdata[j].next = self.mem.wgt_rdata[j].val();
            if self.use_os.val() {
                self.mem.acc_input[j].next = self.os.acc_input[j].val();
            } else {
                self.mem.acc_input[j].next = self.ws.acc_input[j].val();
            }
            self.host_acc_data[j].next = self.mem.host_acc_data[j].val();
        }
        for v in 0..self.vec_act_on.len() {
            self.mem.vec_act_on[v].next = self.vec_act_on[v].val();
            self.mem.vec_act_raddr[v].next = self.vec_act_raddr[v].val();
            self.mem.vec_acc_issue[v].next = self.vec_acc_issue[v].val();
            self.mem.vec_acc_addr[v].next = self.vec_acc_addr[v].val();
        }
        for k in 0..self.vec_act_rdata.len() {
            self.vec_act_rdata[k].next = self.mem.act_rdata[k].val();
        }
        for j in 0..self.vec_acc_input.len() {
            self.mem.vec_acc_input[j].next = self.vec_acc_input[j].val();
        }
    }
}
