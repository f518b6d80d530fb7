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

/// A [`Delay`] of `depth` cycles for `W`-bit words whose registers, on iCE40
/// (`SYSTOLE_ICE40`, the FPGA flow's define), are a circular buffer in one block RAM: the
/// word written in cycle `t` at slot `t mod M` (`M`, a power of two, at least `depth`) is
/// read in cycle `t + depth - 1` into the block RAM's output register, so that it leaves in
/// cycle `t + depth`, as from the chain of registers that the other targets keep. Only the
/// low `kept` bits of a word travel ([`RamDelay::keeping`]; the others leave as 0), so
/// that the words fit as few block RAM columns as they need. The slots and the output
/// register start at zero, so the line starts as a chain of zeros too. Two counters of
/// `log2 M` bits address the slots (the read one `depth - 1` behind, so a slot is never
/// read and written in one cycle), so a long line costs a block RAM and about a dozen
/// logic cells instead of a logic cell per bit and cycle: for lines that a small part's
/// logic cannot afford and its spare block RAM can (the WS engine's drain lines).
#[derive(LogicBlock)]
pub struct RamDelay<const W: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Input.
    pub data_in: Signal<In, Bits<W>>,
    /// The low `kept` bits of the input `depth` cycles ago.
    pub data_out: Signal<Out, Bits<W>>,
    // The chain's contents, newest first.
    _line: Vec<Bits<W>>,
    _kept: usize,
    _mask: Bits<W>,
}

impl<const W: usize> RamDelay<W> {
    /// A delay of `depth` cycles, at least 2 (the block RAM's write and its read register).
    pub fn new(depth: usize) -> Self {
        assert!(depth >= 2, "a block RAM line of {depth} cycles");
        Self {
            clock: Default::default(),
            data_in: Default::default(),
            data_out: Default::default(),
            _line: vec![Bits::default(); depth],
            _kept: W,
            _mask: crate::verilog::low_mask(W),
        }
    }

    /// The line carrying only the low `bits` bits of each word (1 to `W`).
    pub fn keeping(mut self, bits: usize) -> Self {
        assert!((1..=W).contains(&bits), "{bits} of {W} bits");
        self._kept = bits;
        self._mask = crate::verilog::low_mask(bits);
        self
    }

    /// The delay in cycles.
    pub fn depth(&self) -> usize {
        self._line.len()
    }
}

impl<const W: usize> Logic for RamDelay<W> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self._line.rotate_right(1);
            self._line[0] = self.data_in.val() & self._mask;
        }
        self.data_out.next = self._line[self._line.len() - 1];
    }

    fn connect(&mut self) {
        self.data_out.connect();
    }

    fn hdl(&self) -> Verilog {
        use std::fmt::Write;
        let (kept, depth) = (self._kept, self.depth());
        let slots = depth.next_power_of_two();
        let bits = crate::sram::index_bits(slots);
        let top = kept - 1;
        let out = if kept == W { "out".to_string() } else { format!("{{{}'d0, out}}", W - kept) };
        let mut v = format!("`ifdef {}\n", crate::dsp::ICE40_DEFINE);
        let _ = writeln!(
            v,
            "(* ram_style = \"block\", no_rw_check *) reg [{top}:0] slots [0:{last}];\n\
             reg [{b}:0] write_slot = 0;\n\
             reg [{b}:0] read_slot = {bits}'d{read};\n\
             reg [{top}:0] out = 0;\n\
             integer i;\n\
             initial for (i = 0; i < {slots}; i = i + 1) slots[i] = 0;\n\
             always @(posedge clock) begin\n    \
                 slots[write_slot] <= data_in[{top}:0];\n    \
                 out <= slots[read_slot];\n    \
                 write_slot <= write_slot + 1'b1;\n    \
                 read_slot <= read_slot + 1'b1;\n\
             end\n\
             assign data_out = {out};",
            last = slots - 1,
            b = bits - 1,
            // The read slot trails the write slot by `depth - 1`.
            read = (slots + 1 - depth) % slots,
        );
        let _ = writeln!(v, "`else");
        for k in 0..depth {
            let _ = writeln!(v, "reg [{top}:0] r{k} = 0;");
        }
        let _ = write!(v, "always @(posedge clock) begin\n    r0 <= data_in[{top}:0];\n");
        for k in 1..depth {
            let _ = writeln!(v, "    r{k} <= r{};", k - 1);
        }
        let out = if kept == W { format!("r{}", depth - 1) } else { format!("{{{}'d0, r{}}}", W - kept, depth - 1) };
        let _ = writeln!(v, "end\nassign data_out = {out};\n`endif");
        Verilog::Wrapper(Wrapper { code: v, cores: String::new() })
    }
}
