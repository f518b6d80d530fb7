//! A DRAM's initialization without a CPU: the register writes and waits that LiteDRAM's
//! generated `init_sequence` (`sdram_phy.h`) makes through the controller's Wishbone
//! control bus, played from a table, then the controller handed to hardware control.
//! LiteX's BIOS runs the same sequence on a CPU; a board without one runs it here.
//!
//! One step at a time: a write holds `cyc` and `stb` until `ack`, then leaves the bus idle
//! for a cycle (a classic Wishbone cycle each); a wait counts its cycles. `done` rises after
//! the last step and stays high.

use rust_hdl::prelude::*;

/// Bits of a wait's cycle count.
pub const WAIT_BITS: usize = 20;

/// Bits of the step counter.
const STEP_BITS: usize = 8;

/// One step of an initialization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitStep {
    /// Write `value` to the control register at byte address `addr` (a multiple of 4).
    Write {
        /// Byte address on the control bus.
        addr: u32,
        /// The value.
        value: u32,
    },
    /// Wait this many cycles.
    Wait(u32),
}

impl InitStep {
    /// The step as the table holds it: bit 63 a wait, then the word address (bits 32..62)
    /// and the value or cycle count (bits 0..32).
    fn encode(self) -> u64 {
        match self {
            InitStep::Write { addr, value } => u64::from(addr >> 2) << 32 | u64::from(value),
            InitStep::Wait(cycles) => 1 << 63 | u64::from(cycles),
        }
    }
}

/// The initialization sequencer, master of a Wishbone control bus.
#[derive(LogicBlock)]
pub struct DramInit {
    /// The controller's clock.
    pub clock: Signal<In, Clock>,
    /// Wishbone: word address, data, byte selects, cycle, strobe, write, acknowledge.
    pub wb_adr: Signal<Out, Bits<30>>,
    pub wb_dat_w: Signal<Out, Bits<32>>,
    pub wb_sel: Signal<Out, Bits<4>>,
    pub wb_cyc: Signal<Out, Bit>,
    pub wb_stb: Signal<Out, Bit>,
    pub wb_we: Signal<Out, Bit>,
    pub wb_ack: Signal<In, Bit>,
    /// Every step is done: the memory may be used.
    pub done: Signal<Out, Bit>,
    step: DFF<Bits<STEP_BITS>>,
    waited: DFF<Bits<WAIT_BITS>>,
    /// The cycle after a write's acknowledgement, in which the bus is idle.
    gap: DFF<Bit>,
    word: Signal<Local, Bits<64>>,
    table: Vec<Constant<Bits<64>>>,
    index: Vec<Constant<Bits<STEP_BITS>>>,
    steps: Constant<Bits<STEP_BITS>>,
}

impl DramInit {
    /// The sequencer of `steps` (fewer than 256, each wait shorter than 2^20 cycles, each
    /// address a multiple of 4).
    pub fn new(steps: &[InitStep]) -> Self {
        assert!(steps.len() < 1 << STEP_BITS, "{} initialization steps", steps.len());
        for s in steps {
            match *s {
                InitStep::Write { addr, .. } => assert_eq!(addr % 4, 0, "register address {addr:#x}"),
                InitStep::Wait(c) => assert!(c < 1 << WAIT_BITS, "a wait of {c} cycles"),
            }
        }
        Self {
            clock: Default::default(),
            wb_adr: Default::default(),
            wb_dat_w: Default::default(),
            wb_sel: Default::default(),
            wb_cyc: Default::default(),
            wb_stb: Default::default(),
            wb_we: Default::default(),
            wb_ack: Default::default(),
            done: Default::default(),
            step: Default::default(),
            waited: Default::default(),
            gap: Default::default(),
            word: Default::default(),
            table: steps.iter().map(|s| Constant::new(s.encode().into())).collect(),
            index: (0..steps.len() as u64).map(|k| Constant::new(k.into())).collect(),
            steps: Constant::new((steps.len() as u64).into()),
        }
    }
}

impl Logic for DramInit {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, step, waited, gap);
        self.word.next = 0.into();
        for k in 0..self.table.len() {
            if self.step.q.val() == self.index[k].val() {
                self.word.next = self.table[k].val();
            }
        }
        self.done.next = self.step.q.val() == self.steps.val();
        self.wb_adr.next = self.word.val().get_bits::<30>(32);
        self.wb_dat_w.next = self.word.val().get_bits::<32>(0);
        self.wb_sel.next = 15.into();
        self.wb_we.next = true;
        self.wb_cyc.next = false;
        self.wb_stb.next = false;
        self.gap.d.next = false;
        if !self.done.val() & !self.gap.q.val() {
            if self.word.val().get_bit(63) {
                if self.waited.q.val() == self.word.val().get_bits::<WAIT_BITS>(0) {
                    self.waited.d.next = 0.into();
                    self.step.d.next = self.step.q.val() + 1;
                } else {
                    self.waited.d.next = self.waited.q.val() + 1;
                }
            } else {
                self.wb_cyc.next = true;
                self.wb_stb.next = true;
                if self.wb_ack.val() {
                    self.step.d.next = self.step.q.val() + 1;
                    self.gap.d.next = true;
                }
            }
        }
    }
}
