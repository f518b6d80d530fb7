//! A chain of registers of run-time length: the skew and de-skew lanes at the array edges.

use rust_hdl::prelude::*;

/// `data_out` is `data_in` delayed by `depth` clock cycles (`depth` may be 0).
#[derive(LogicBlock)]
pub struct Delay<T: Synth> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Input.
    pub data_in: Signal<In, T>,
    /// Input, `depth` cycles ago.
    pub data_out: Signal<Out, T>,
    regs: Vec<DFF<T>>,
}

impl<T: Synth> Delay<T> {
    /// A delay of `depth` cycles.
    pub fn new(depth: usize) -> Self {
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            regs: (0..depth).map(|_| DFF::default()).collect(),
        }
    }

    /// The delay in cycles.
    pub fn depth(&self) -> usize {
        self.regs.len()
    }
}

impl<T: Synth> Logic for Delay<T> {
    #[hdl_gen]
    fn update(&mut self) {
        for i in 0..self.regs.len() {
            self.regs[i].clock.next = self.clock.val();
            self.regs[i].d.next = self.regs[i].q.val();
        }
        // With depth 0 the first loop runs once and the others not at all.
        for _i in self.regs.len()..1 {
            self.data_out.next = self.data_in.val();
        }
        for i in 0..self.regs.len().min(1) {
            self.regs[i].d.next = self.data_in.val();
        }
        for i in 1..self.regs.len() {
            self.regs[i].d.next = self.regs[i - 1].q.val();
        }
        for i in (self.regs.len().max(1) - 1)..self.regs.len() {
            self.data_out.next = self.regs[i].q.val();
        }
    }
}
