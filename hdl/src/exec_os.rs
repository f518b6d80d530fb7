//! The output-stationary exec engine: scratchpads, band unit, array, tile read-out into
//! the accumulator, and the control that runs one `MatmulOs` after another on the timing
//! of docs/ARCHITECTURE.md sections 5 and 9.
//!
//! ```text
//!  start + fields --> pad (rows - K) --> WordSeq --(word addr)--> act lanes --> a_in --+
//!                                   \--(weight addr)--> wgt lanes -+-> band unit      |
//!                                                                  +-> b_in ----> OS array
//!  last busy cycle -- delay cols --> read-out of `rows` accumulator rows <-- out -----+
//!  complete <-- delay 2*rows+cols <-- last busy cycle
//! ```

use crate::band::BandUnit;
use crate::delay::Delay;
use crate::fields::MatmulFields;
use crate::memories::Memories;
use crate::os_array::OsArray;
use crate::sram::ADDR_BITS;
use crate::wordseq::WordSeq;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// The OS engine for a `rows x cols` array, without memories: it reads the scratchpads and
/// drives the accumulator through its ports.
#[derive(LogicBlock)]
pub struct OsEngine {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// An instruction completes: its effects are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
    /// Activation word to read (data in the next cycle).
    pub act_raddr: Signal<Out, Addr>,
    /// The activation word read, lane `i`.
    pub act_rdata: Vec<Signal<In, Signed<8>>>,
    /// Weight word to read (data in the next cycle).
    pub wgt_raddr: Signal<Out, Addr>,
    /// The weight word read, lane `j`.
    pub wgt_rdata: Vec<Signal<In, Signed<8>>>,
    /// An accumulator row is issued.
    pub acc_issue: Signal<Out, Bit>,
    /// Its row.
    pub acc_addr: Signal<Out, Addr>,
    /// Add to its old value.
    pub acc_accumulate: Signal<Out, Bit>,
    /// The tile row for it, one cycle after the issue.
    pub acc_input: Vec<Signal<Out, Signed<32>>>,
    band: BandUnit,
    array: OsArray,
    seq: WordSeq,
    rows: Constant<Bits<16>>,
    pad: DFF<Bits<16>>,
    t: DFF<Bits<24>>,
    b_addr: DFF<Addr>,
    f_band: DFF<Bit>,
    f_acc: DFF<Addr>,
    f_accumulate: DFF<Bit>,
    f_stride: DFF<Bits<8>>,
    f_taps: DFF<Bits<16>>,
    f_width: DFF<Bits<16>>,
    a_v: DFF<Bit>,
    first_d: DFF<Bit>,
    last_d: DFF<Bit>,
    trig_valid: Delay<Bit>,
    trig_acc: Delay<Addr>,
    trig_accum: Delay<Bit>,
    ro_left: DFF<Bits<16>>,
    ro_addr: DFF<Addr>,
    ro_accum: DFF<Bit>,
    done_line: Delay<Bit>,
    steps: Signal<Local, Bits<32>>,
    cur_pad: Signal<Local, Bits<16>>,
    cur_t: Signal<Local, Bits<24>>,
    cur_baddr: Signal<Local, Addr>,
    cur_band: Signal<Local, Bit>,
    cur_acc: Signal<Local, Addr>,
    cur_accum: Signal<Local, Bit>,
    active: Signal<Local, Bit>,
    busy_next: Signal<Local, Bit>,
}

impl OsEngine {
    /// An engine for `rows x cols` PEs.
    pub fn new(rows: usize, cols: usize) -> Self {
        Self {
            clock: Default::default(),
            start: Default::default(),
            fields: Default::default(),
            ready: Default::default(),
            complete: Default::default(),
            act_raddr: Default::default(),
            act_rdata: (0..rows).map(|_| Default::default()).collect(),
            wgt_raddr: Default::default(),
            wgt_rdata: (0..cols).map(|_| Default::default()).collect(),
            acc_issue: Default::default(),
            acc_addr: Default::default(),
            acc_accumulate: Default::default(),
            acc_input: (0..cols).map(|_| Default::default()).collect(),
            band: BandUnit::new(cols),
            array: OsArray::new(rows, cols),
            seq: WordSeq::default(),
            rows: Constant::new((rows as u64).into()),
            pad: Default::default(),
            t: Default::default(),
            b_addr: Default::default(),
            f_band: Default::default(),
            f_acc: Default::default(),
            f_accumulate: Default::default(),
            f_stride: Default::default(),
            f_taps: Default::default(),
            f_width: Default::default(),
            a_v: Default::default(),
            first_d: Default::default(),
            last_d: Default::default(),
            trig_valid: Delay::new(cols),
            trig_acc: Delay::new(cols),
            trig_accum: Delay::new(cols),
            ro_left: Default::default(),
            ro_addr: Default::default(),
            ro_accum: Default::default(),
            done_line: Delay::new(2 * rows + cols),
            steps: Default::default(),
            cur_pad: Default::default(),
            cur_t: Default::default(),
            cur_baddr: Default::default(),
            cur_band: Default::default(),
            cur_acc: Default::default(),
            cur_accum: Default::default(),
            active: Default::default(),
            busy_next: Default::default(),
        }
    }
}

impl OsEngine {
    /// The engine in front of an accumulator with `stages` pipeline stages
    /// (`ArchConfig::acc_stages`): its writes, and so the completion, come that much later.
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.done_line = Delay::new(2 * self.array.rows() + self.array.cols() + stages);
        self
    }
}

impl Logic for OsEngine {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            pad,
            t,
            b_addr,
            f_band,
            f_acc,
            f_accumulate,
            f_stride,
            f_taps,
            f_width,
            a_v,
            first_d,
            last_d,
            ro_left,
            ro_addr,
            ro_accum
        );
        self.trig_valid.clock.next = self.clock.val();
        self.trig_acc.clock.next = self.clock.val();
        self.trig_accum.clock.next = self.clock.val();
        self.done_line.clock.next = self.clock.val();
        self.array.clock.next = self.clock.val();

        // Steps are right-aligned in max(K, rows) cycles: first `rows - K` idle cycles.
        self.steps.next = 0x1_0000.into();
        if (self.fields.val().a_inner_count < 0x100) & (self.fields.val().a_outer_count < 0x100) {
            self.steps.next = bit_cast::<16, 24>(self.fields.val().a_inner_count) * bit_cast::<16, 24>(self.fields.val().a_outer_count);
        }
        if self.start.val() {
            self.cur_pad.next = 0.into();
            if self.steps.val() < bit_cast::<32, 16>(self.rows.val()) {
                self.cur_pad.next = self.rows.val() - bit_cast::<16, 32>(self.steps.val());
            }
            self.cur_t.next = 0.into();
            self.cur_baddr.next = self.fields.val().b;
            self.cur_band.next = self.fields.val().band_valid;
            self.cur_acc.next = self.fields.val().acc;
            self.cur_accum.next = self.fields.val().accumulate;
            self.f_band.d.next = self.fields.val().band_valid;
            self.f_acc.d.next = self.fields.val().acc;
            self.f_accumulate.d.next = self.fields.val().accumulate;
            self.f_stride.d.next = self.fields.val().band_stride;
            self.f_taps.d.next = self.fields.val().band_taps;
            self.f_width.d.next = self.fields.val().band_width;
        } else {
            self.cur_pad.next = self.pad.q.val();
            self.cur_t.next = self.t.q.val();
            self.cur_baddr.next = self.b_addr.q.val();
            self.cur_band.next = self.f_band.q.val();
            self.cur_acc.next = self.f_acc.q.val();
            self.cur_accum.next = self.f_accumulate.q.val();
        }
        self.seq.clock.next = self.clock.val();
        self.seq.start.next = self.start.val();
        self.seq.first_addr.next = self.fields.val().a_start;
        self.seq.inner_count.next = self.fields.val().a_inner_count;
        self.seq.inner_stride.next = self.fields.val().a_inner_stride;
        self.seq.outer_count.next = self.fields.val().a_outer_count;
        self.seq.outer_stride.next = self.fields.val().a_outer_stride;
        self.seq.enable.next = self.cur_pad.val() == 0;
        self.ready.next = !(self.seq.busy.val() | (self.pad.q.val() != 0));
        self.active.next = self.start.val() | self.seq.busy.val() | (self.pad.q.val() != 0);
        if self.cur_pad.val() != 0 {
            self.pad.d.next = self.cur_pad.val() - 1;
            self.busy_next.next = ((self.cur_pad.val() >> 1) != 0) | self.seq.pending.val();
        } else {
            self.pad.d.next = 0.into();
            self.busy_next.next = self.seq.more.val();
        }
        self.t.d.next = self.cur_t.val();
        self.b_addr.d.next = self.cur_baddr.val();
        if self.seq.issue.val() {
            self.t.d.next = self.cur_t.val() + 1;
            if !self.cur_band.val() {
                self.b_addr.d.next = self.cur_baddr.val() + 1;
            }
        }

        // The last busy cycle: read-out and completion are timed from it.
        self.trig_valid.data_in.next = self.active.val() & !self.busy_next.val();
        self.trig_acc.data_in.next = self.cur_acc.val();
        self.trig_accum.data_in.next = self.cur_accum.val();
        self.done_line.data_in.next = self.active.val() & !self.busy_next.val();
        self.complete.next = self.done_line.data_out.val();

        // Scratchpad reads.
        self.act_raddr.next = self.seq.addr.val();
        self.wgt_raddr.next = self.cur_baddr.val();
        for j in 0..self.wgt_rdata.len() {
            self.band.word[j].next = self.wgt_rdata[j].val();
        }

        // One cycle later the read data meets the array.
        self.a_v.d.next = self.seq.issue.val();
        self.first_d.d.next = self.seq.issue.val() & (self.cur_t.val() == 0);
        self.last_d.d.next = self.seq.issue.val() & !self.seq.more.val();
        self.array.first_in.next = self.first_d.q.val();
        self.array.last_in.next = self.last_d.q.val();
        for i in 0..self.act_rdata.len() {
            if self.a_v.q.val() {
                self.array.a_in[i].next = self.act_rdata[i].val();
            } else {
                self.array.a_in[i].next = 0.into();
            }
        }
        // The band unit chooses the lanes of the word read now for the next cycle: from
        // the ports on a start (step 0), else from the latched fields and the step count.
        self.band.clock.next = self.clock.val();
        self.band.start.next = self.start.val();
        self.band.start_banded.next = self.fields.val().band_valid;
        self.band.start_stride.next = self.fields.val().band_stride;
        self.band.start_taps.next = self.fields.val().band_taps;
        self.band.start_width.next = self.fields.val().band_width;
        self.band.banded.next = self.f_band.q.val();
        self.band.row.next = self.t.q.val().get_bits::<8>(0);
        self.band.stride.next = self.f_stride.q.val();
        self.band.taps.next = self.f_taps.q.val();
        self.band.width.next = self.f_width.q.val();
        for j in 0..self.wgt_rdata.len() {
            if self.a_v.q.val() {
                self.array.b_in[j].next = self.band.out[j].val();
            } else {
                self.array.b_in[j].next = 0.into();
            }
        }

        // Read-out: `rows` accumulator rows, one per cycle, from the trigger on.
        self.acc_issue.next = false;
        self.acc_addr.next = self.ro_addr.q.val();
        self.acc_accumulate.next = self.ro_accum.q.val();
        if self.trig_valid.data_out.val() {
            self.acc_issue.next = true;
            self.acc_addr.next = self.trig_acc.data_out.val();
            self.acc_accumulate.next = self.trig_accum.data_out.val();
            self.ro_left.d.next = self.rows.val() - 1;
            self.ro_addr.d.next = self.trig_acc.data_out.val() + 1;
            self.ro_accum.d.next = self.trig_accum.data_out.val();
        } else if self.ro_left.q.val() != 0 {
            self.acc_issue.next = true;
            self.ro_left.d.next = self.ro_left.q.val() - 1;
            self.ro_addr.d.next = self.ro_addr.q.val() + 1;
        }
        for j in 0..self.acc_input.len() {
            self.acc_input[j].next = self.array.out[j].val();
        }
    }
}

/// The OS exec engine with its own memories: what an OS instance's exec unit holds, and
/// what the engine tests drive (`host_*` as in [`crate::exec_ws::ExecWs`]).
#[derive(LogicBlock)]
pub struct ExecOs {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start the instruction on the field ports in this cycle (only when `ready`).
    pub start: Signal<In, Bit>,
    /// The instruction's fields, read in the start cycle.
    pub fields: Signal<In, MatmulFields>,
    /// The engine may start an instruction in this cycle.
    pub ready: Signal<Out, Bit>,
    /// An instruction completes: its effects are visible from the next cycle.
    pub complete: Signal<Out, Bit>,
    /// Writer (load engines or test host): write lane `k` of `host_act_data` to activation
    /// word `host_act_addr`.
    pub host_act_we: Vec<Signal<In, Bit>>,
    /// Host: activation word address.
    pub host_act_addr: Signal<In, Addr>,
    /// Host: activation word, lane `i`.
    pub host_act_data: Vec<Signal<In, Signed<8>>>,
    /// Writer: write lane `j` of `host_wgt_data` to weight word `host_wgt_addr`.
    pub host_wgt_we: Vec<Signal<In, Bit>>,
    /// Host: weight word address.
    pub host_wgt_addr: Signal<In, Addr>,
    /// Host: weight word, lane `j`.
    pub host_wgt_data: Vec<Signal<In, Signed<8>>>,
    /// Host: accumulator row to read (data in the next cycle).
    pub host_acc_addr: Signal<In, Addr>,
    /// Host: accumulator row read in the previous cycle, lane `j`.
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
    engine: OsEngine,
    mem: Memories,
}

impl ExecOs {
    /// An engine for `rows x cols` PEs with the given scratchpad and accumulator depths.
    pub fn new(rows: usize, cols: usize, act_words: usize, wgt_words: usize, acc_rows: usize) -> Self {
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
            engine: OsEngine::new(rows, cols),
            mem: Memories::new(rows, cols, act_words, 1, wgt_words, acc_rows),
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

impl ExecOs {
    /// The unit with `stages` accumulator pipeline stages (see
    /// [`OsEngine::with_acc_stages`]).
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.engine = self.engine.with_acc_stages(stages);
        self.mem = self.mem.with_acc_stages(stages);
        self
    }
}

impl Logic for ExecOs {
    #[hdl_gen]
    fn update(&mut self) {
        self.engine.clock.next = self.clock.val();
        self.engine.start.next = self.start.val();
        self.engine.fields.next = self.fields.val();
        self.ready.next = self.engine.ready.val();
        self.complete.next = self.engine.complete.val();
        self.mem.clock.next = self.clock.val();
        self.mem.host_act_addr.next = self.host_act_addr.val();
        self.mem.host_wgt_addr.next = self.host_wgt_addr.val();
        self.mem.host_acc_addr.next = self.host_acc_addr.val();
        self.mem.act_raddr.next = self.engine.act_raddr.val();
        self.mem.act_wide.next = false;
        self.mem.wgt_raddr.next = self.engine.wgt_raddr.val();
        self.mem.acc_issue.next = self.engine.acc_issue.val();
        self.mem.acc_addr.next = self.engine.acc_addr.val();
        self.mem.acc_accumulate.next = self.engine.acc_accumulate.val();
        for i in 0..self.host_act_data.len() {
            self.mem.host_act_we[i].next = self.host_act_we[i].val();
            self.mem.host_act_data[i].next = self.host_act_data[i].val();
            self.engine.act_rdata[i].next = self.mem.act_rdata[i].val();
        }
        for j in 0..self.host_wgt_data.len() {
            self.mem.host_wgt_we[j].next = self.host_wgt_we[j].val();
            self.mem.host_wgt_data[j].next = self.host_wgt_data[j].val();
            self.engine.wgt_rdata[j].next = self.mem.wgt_rdata[j].val();
            self.mem.acc_input[j].next = self.engine.acc_input[j].val();
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
