//! The multiplier leaf: an `A x B` product with optional input and output registers, which
//! the FPGA flow places in one DSP block with those registers inside it.
//!
//! Yosys infers multipliers, but `synth_ecp5` moves none of the registers around them into
//! the DSP block and `synth_ice40 -dsp` only some, so a registered product still pays the
//! routing into and out of the block, about 6 ns of an ECP5 PE's 11 ns. This leaf's
//! Verilog therefore has one body per target, chosen by a define of the FPGA flow
//! (`systole_fpga`): `SYSTOLE_ECP5` instantiates `MULT18X18D` with its input registers
//! (`REG_INPUTA_CLK`, `REG_INPUTB_CLK`) and output register (`REG_OUTPUT_CLK`) on as asked;
//! `SYSTOLE_ICE40` instantiates `SB_MAC16` in 16x16 mode with its A/B input registers and
//! its product pipeline register on as asked (for operands of at most 16 bits);
//! without a define (simulation, Verilator, Icarus, other parts) the body is the same
//! registers and product in plain Verilog. The Rust model below is that plain body.
//!
//! In the ECP5 body an operand narrower than 18 bits sits in the top of its input, below it
//! constant zeros ([`Ecp5Placement`]), and the product is read `sa + sb` bits up: nextpnr
//! ties constant DSP inputs in the block's own configuration, so only the operand's bits
//! are routed (8 of 18 for an int8 PE), where a sign extension would route all 18.
//!
//! Its latency is `reg_in + reg_out` cycles: `p` is the product of the `a` and `b` of that
//! many cycles ago (the registers start at zero).

use rust_hdl::prelude::*;
use std::fmt::Write;

/// Define of the FPGA flow that selects the ECP5 body.
pub const ECP5_DEFINE: &str = "SYSTOLE_ECP5";

/// Define of the FPGA flow that selects the iCE40 body.
pub const ICE40_DEFINE: &str = "SYSTOLE_ICE40";

/// Define of the FPGA flow that keeps the PEs' products (a [`DspProduct`] made with
/// [`DspProduct::in_pe`], every [`DspPair`]) in the plain body, so that synthesis maps them
/// to logic (with `-nodsp`) while the other products keep their DSP bodies: an array
/// whose PEs would fill a large part's DSP rows places as a compact grid instead, with
/// short partial-sum wires (docs/ARCHITECTURE.md section 10).
pub const LOGIC_PE_DEFINE: &str = "SYSTOLE_LOGIC_PE_PRODUCTS";

/// Where an `A x B -> P` product sits in a MULT18X18D: operand `a` shifted up by `a_shift`
/// bits (its low bits constant zero), `b` by `b_shift`, so that both fill the top of their
/// inputs and the product is `a * b * 2^(a_shift + b_shift)`, exact in the 36-bit output,
/// signed or not; its `A + B` significant bits are read from output bit `p_lo` on, and a
/// wider `P` is their sign (or zero) extension in logic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ecp5Placement {
    /// Bits below `a` on input A.
    pub a_shift: usize,
    /// Bits below `b` on input B.
    pub b_shift: usize,
    /// First output bit of the product.
    pub p_lo: usize,
}

impl Ecp5Placement {
    /// The placement of an `a_bits x b_bits -> p_bits` product.
    pub fn of(a_bits: usize, b_bits: usize) -> Self {
        let (a_shift, b_shift) = (18 - a_bits, 18 - b_bits);
        Self { a_shift, b_shift, p_lo: a_shift + b_shift }
    }
}

/// An `A x B -> P` bit product, signed or unsigned, with `reg_in` and `reg_out` registers.
#[derive(LogicBlock)]
pub struct DspProduct<const A: usize, const B: usize, const P: usize> {
    /// Clock (unused with no registers).
    pub clock: Signal<In, Clock>,
    /// Left operand.
    pub a: Signal<In, Bits<A>>,
    /// Right operand.
    pub b: Signal<In, Bits<B>>,
    /// The low `P` bits of the product, `reg_in + reg_out` cycles later.
    pub p: Signal<Out, Bits<P>>,
    _leaf: Leaf,
    // The registers' contents (the plain body's `a_r`, `b_r`, `p_r`).
    _regs: Regs,
}

impl<const A: usize, const B: usize, const P: usize> DspProduct<A, B, P> {
    /// A product of `signed` (two's complement) or unsigned operands, with registers on
    /// the operands (`reg_in`) and on the product (`reg_out`). Both operands fit the
    /// 18-bit inputs of an ECP5 multiplier, and so does the product its 36-bit output.
    pub fn new(signed: bool, reg_in: bool, reg_out: bool) -> Self {
        assert!(A <= 18 && B <= 18 && P <= 36, "a {A} x {B} -> {P} bit product does not fit one DSP block");
        Self {
            clock: Default::default(),
            a: Default::default(),
            b: Default::default(),
            p: Default::default(),
            _leaf: Leaf { a: A, b: B, p: P, signed, reg_in, reg_out, pe: false },
            _regs: [0; 3],
        }
    }

    /// The product as a PE's: in logic under [`LOGIC_PE_DEFINE`].
    pub fn in_pe(mut self) -> Self {
        self._leaf.pe = true;
        self
    }

    /// Cycles from an operand to its product.
    pub fn latency(&self) -> usize {
        self._leaf.latency()
    }

    /// The `SYSTOLE_ICE40` branch: one SB_MAC16 in 16x16 mode, its A and B input registers
    /// and its product pipeline register (`PIPELINE_16x16_MULT_REG2`) on as asked, the
    /// operands sign- or zero-extended to 16 bits so that the 32-bit output is the exact
    /// product (`synth_ice40 -dsp` infers the multiplier but leaves most registers in
    /// logic cells, and its `ice40_dsp` pass clears an instantiated SB_MAC16's registers,
    /// so the flow synthesizes without `-dsp`). An operand wider than 16 bits keeps the
    /// plain body.
    fn ice40_body(&self, v: &mut String) {
        let leaf = &self._leaf;
        let extend = |name: &str, bits: usize| match (16 - bits, leaf.signed) {
            (0, _) => name.to_string(),
            (pad, true) => format!("{{{{{pad}{{{name}[{}]}}}}, {name}}}", bits - 1),
            (pad, false) => format!("{{{pad}'d0, {name}}}"),
        };
        let _ = writeln!(v, "`elsif {ICE40_DEFINE}");
        let _ = writeln!(v, "wire [15:0] ax = {};\nwire [15:0] bx = {};\nwire [31:0] px;", extend("a", A), extend("b", B));
        let mode =
            Mac16Mode { dual: false, signed: leaf.signed, reg_a: leaf.reg_in, reg_in: leaf.reg_in, reg_out: leaf.reg_out, b_hold: "1'b0" };
        mode.instance(v, "ax", "bx");
        let _ = writeln!(v, "assign p = px[{}:0];", P - 1);
    }
}

impl<const A: usize, const B: usize, const P: usize> Logic for DspProduct<A, B, P> {
    fn update(&mut self) {
        let ins = (self.a.val().to_u64(), self.b.val().to_u64());
        if self.clock.pos_edge() {
            self._leaf.clock(&mut self._regs, ins);
        }
        self.p.next = self._leaf.output(&self._regs, ins).into();
    }

    fn connect(&mut self) {
        self.p.connect();
    }

    fn hdl(&self) -> Verilog {
        let mut v = String::new();
        let leaf = &self._leaf;
        if leaf.pe {
            let _ = writeln!(v, "`ifdef {LOGIC_PE_DEFINE}");
            leaf.plain_body(&mut v, ["a", "b", "p"], "", None);
            let _ = writeln!(v, "`elsif {ECP5_DEFINE}");
        } else {
            let _ = writeln!(v, "`ifdef {ECP5_DEFINE}");
        }
        leaf.ecp5_body(&mut v, ["a", "b", "p"], "");
        if A <= 16 && B <= 16 && P <= 32 {
            self.ice40_body(&mut v);
        }
        let _ = writeln!(v, "`else");
        leaf.plain_body(&mut v, ["a", "b", "p"], "", None);
        let _ = writeln!(v, "`endif");
        Verilog::Wrapper(Wrapper { code: v, cores: String::new() })
    }
}

/// The contents of one product's registers: the operands `a` and `b` and the product.
type Regs = [u64; 3];

/// The shape and registers of one product: the model both leaves simulate and the Verilog
/// bodies both write.
#[derive(Clone, Copy, Debug)]
struct Leaf {
    a: usize,
    b: usize,
    p: usize,
    signed: bool,
    reg_in: bool,
    reg_out: bool,
    // A PE's product, in logic under `LOGIC_PE_DEFINE`.
    pe: bool,
}

impl Leaf {
    /// Cycles from an operand to its product.
    fn latency(&self) -> usize {
        usize::from(self.reg_in) + usize::from(self.reg_out)
    }

    /// The low `p` bits of the product of the bit patterns `a` and `b`.
    fn product(&self, a: u64, b: u64) -> u64 {
        let value = |x: u64, bits: usize| if self.signed { ((x << (64 - bits)) as i64) >> (64 - bits) } else { x as i64 };
        let mask = if self.p == 64 { u64::MAX } else { (1 << self.p) - 1 };
        (value(a, self.a).wrapping_mul(value(b, self.b)) as u64) & mask
    }

    /// The registers after a clock edge with the operands `ins` at the inputs.
    fn clock(&self, regs: &mut Regs, ins: (u64, u64)) {
        let (x, y) = if self.reg_in { (regs[0], regs[1]) } else { ins };
        *regs = [ins.0, ins.1, self.product(x, y)];
    }

    /// The product at the output, from the registers and the operands `ins`.
    fn output(&self, regs: &Regs, ins: (u64, u64)) -> u64 {
        let (x, y) = if self.reg_in { (regs[0], regs[1]) } else { ins };
        if self.reg_out {
            regs[2]
        } else {
            self.product(x, y)
        }
    }

    /// The `SYSTOLE_ECP5` body: a MULT18X18D with the registers asked for, computing port
    /// `names[2]` from ports `names[0]` and `names[1]`; its wires and instance end in
    /// `suffix`.
    fn ecp5_body(&self, v: &mut String, [a, b, p]: [&str; 3], suffix: &str) {
        let place = Ecp5Placement::of(self.a, self.b);
        // An operand narrower than the input sits at its top, above constant zeros.
        let extend = |name: &str, shift: usize| if shift == 0 { name.to_string() } else { format!("{{{name}, {shift}'d0}}") };
        let clk = |on: bool| if on { "\"CLK0\"" } else { "\"NONE\"" };
        let _ = writeln!(
            v,
            "wire [17:0] ax{suffix} = {};\nwire [17:0] bx{suffix} = {};\nwire [35:0] px{suffix};",
            extend(a, place.a_shift),
            extend(b, place.b_shift)
        );
        let _ = write!(
            v,
            "MULT18X18D #(.REG_INPUTA_CLK({i}), .REG_INPUTB_CLK({i}), .REG_OUTPUT_CLK({o}), .GSR(\"DISABLED\")) mult{suffix} (",
            i = clk(self.reg_in),
            o = clk(self.reg_out)
        );
        for k in 0..18 {
            let _ = write!(v, ".A{k}(ax{suffix}[{k}]), .B{k}(bx{suffix}[{k}]), .C{k}(1'b0), ");
        }
        for k in 0..36 {
            let _ = write!(v, ".P{k}(px{suffix}[{k}]), ");
        }
        let sign = if self.signed { "1'b1" } else { "1'b0" };
        let _ = writeln!(v, ".SIGNEDA({sign}), .SIGNEDB({sign}), .SOURCEA(1'b0), .SOURCEB(1'b0), .CLK0(clock), .CE0(1'b1), .RST0(1'b0));");
        let significant = self.a + self.b;
        let px = format!("px{suffix}");
        if self.p <= significant {
            let _ = writeln!(v, "assign {p} = {px}[{}:{}];", place.p_lo + self.p - 1, place.p_lo);
        } else if self.signed {
            let _ = writeln!(v, "assign {p} = {{{{{}{{{px}[35]}}}}, {px}[35:{}]}};", self.p - significant, place.p_lo);
        } else {
            let _ = writeln!(v, "assign {p} = {{{}'d0, {px}[35:{}]}};", self.p - significant, place.p_lo);
        }
    }

    /// The plain body (simulation and other parts): the same registers around a Verilog
    /// product of the extended operands.
    /// With `held = Some((load, b_new))` the `b` register is loaded with port `b_new` in the
    /// cycles `load` is set and holds otherwise ([`DspPair::with_held_weights`]).
    fn plain_body(&self, v: &mut String, [a, b, p]: [&str; 3], suffix: &str, held: Option<(&str, &str)>) {
        let (ar, br, pr) = (format!("a_r{suffix}"), format!("b_r{suffix}"), format!("p_r{suffix}"));
        let _ = writeln!(v, "reg [{}:0] {ar} = 0;\nreg [{}:0] {br} = 0;\nreg [{}:0] {pr} = 0;", self.a - 1, self.b - 1, self.p - 1);
        let (ai, bi) = if self.reg_in { (ar.as_str(), br.as_str()) } else { (a, b) };
        let (ax, bx) = if self.signed { (format!("$signed({ai})"), format!("$signed({bi})")) } else { (ai.to_string(), bi.to_string()) };
        let _ = writeln!(v, "wire [{}:0] prod{suffix} = {ax} * {bx};", self.p - 1);
        let b_load = match held {
            Some((load, b_new)) => format!("if ({load}) {br} <= {b_new};"),
            None => format!("{br} <= {b};"),
        };
        let _ = writeln!(v, "always @(posedge clock) begin\n    {ar} <= {a};\n    {b_load}\n    {pr} <= prod{suffix};\nend");
        let _ = writeln!(v, "assign {p} = {};", if self.reg_out { pr } else { format!("prod{suffix}") });
    }
}

/// How an SB_MAC16 is used: one 16x16 product (its output the product, its pipeline
/// register `PIPELINE_16x16_MULT_REG2` the product register) or two 8x8 products (`dual`:
/// `MODE_8x8`, the top and bottom outputs the two products, their registers
/// `TOP_8x8_MULT_REG` and `BOT_8x8_MULT_REG`), with the A/B input registers as asked.
struct Mac16Mode {
    dual: bool,
    signed: bool,
    /// The A input register (the B one is `reg_in`).
    reg_a: bool,
    reg_in: bool,
    reg_out: bool,
    /// The B register's hold input (`1'b0`: it loads every cycle).
    b_hold: &'static str,
}

impl Mac16Mode {
    /// The instance `mac`, inputs A and B driven by the expressions `a` and `b`, output O on
    /// the wire `px`; the accumulators, C and D inputs and holds unused.
    fn instance(&self, v: &mut String, a: &str, b: &str) {
        let on = |b: bool| u8::from(b);
        let (reg8, reg16, select) = if self.dual { (self.reg_out, false, "10") } else { (false, self.reg_out, "11") };
        let _ = writeln!(
            v,
            "SB_MAC16 #(.A_REG(1'b{ia}), .B_REG(1'b{i}), .C_REG(1'b0), .D_REG(1'b0), .TOP_8x8_MULT_REG(1'b{r8}), \
             .BOT_8x8_MULT_REG(1'b{r8}), .PIPELINE_16x16_MULT_REG1(1'b0), .PIPELINE_16x16_MULT_REG2(1'b{r16}), \
             .TOPOUTPUT_SELECT(2'b{select}), .BOTOUTPUT_SELECT(2'b{select}), .MODE_8x8(1'b{d}), .A_SIGNED(1'b{s}), .B_SIGNED(1'b{s})) mac (",
            ia = on(self.reg_a),
            i = on(self.reg_in),
            r8 = on(reg8),
            r16 = on(reg16),
            d = on(self.dual),
            s = on(self.signed)
        );
        let _ = writeln!(
            v,
            "    .CLK(clock), .CE(1'b1), .A({a}), .B({b}), .C(16'd0), .D(16'd0), .AHOLD(1'b0), .BHOLD({hold}), .CHOLD(1'b0), \
             .DHOLD(1'b0), .IRSTTOP(1'b0), .IRSTBOT(1'b0), .ORSTTOP(1'b0), .ORSTBOT(1'b0), .OLOADTOP(1'b0), \
             .OLOADBOT(1'b0), .ADDSUBTOP(1'b0), .ADDSUBBOT(1'b0), .OHOLDTOP(1'b0), .OHOLDBOT(1'b0), .CI(1'b0), \
             .ACCUMCI(1'b0), .SIGNEXTIN(1'b0), .O(px), .CO(), .ACCUMCO(), .SIGNEXTOUT());",
            hold = self.b_hold
        );
    }
}

/// Two independent signed int8 x int8 products (`p0 = a0 * b0`, `p1 = a1 * b1`, each
/// sign-extended from its 16 bits to 32 outside the block) with the same `reg_in` and `reg_out` registers, in one DSP block where the part
/// has a dual mode: `SYSTOLE_ICE40` instantiates one SB_MAC16 in 8x8 mode (`MODE_8x8`),
/// `{a1, a0}` on A and `{b1, b0}` on B, its A/B input registers and both 8x8 product
/// registers (`TOP_8x8_MULT_REG`, `BOT_8x8_MULT_REG`) on as asked and its outputs taken
/// from the products (`TOPOUTPUT_SELECT = BOTOUTPUT_SELECT = 2`), so two PEs share the
/// block that one [`DspProduct`] would fill. The ECP5 flow has no 9x9 mode (prjtrellis
/// issue 152), so `SYSTOLE_ECP5` is two MULT18X18D as [`DspProduct`] writes them, and so
/// is the plain body. Latency and register contents are as for two [`DspProduct`]s.
#[derive(LogicBlock)]
pub struct DspPair {
    /// Clock (unused with no registers).
    pub clock: Signal<In, Clock>,
    /// First product's left operand.
    pub a0: Signal<In, Bits<8>>,
    /// First product's right operand.
    pub b0: Signal<In, Bits<8>>,
    /// Second product's left operand.
    pub a1: Signal<In, Bits<8>>,
    /// Second product's right operand.
    pub b1: Signal<In, Bits<8>>,
    /// With operand registers: `b0` of the previous cycle, as the PE's own `active`
    /// register holds it. Unless the pair holds the weights itself
    /// ([`DspPair::with_held_weights`]), the iCE40 body takes the weights `b0_q` and `b1_q`
    /// with the SB_MAC16's B register off, so that a PE's weight choice feeds its `active`
    /// register alone and packs with it into one logic cell (the block's two halves of B
    /// share one hold input, and two PEs off one anti-diagonal flip their weights in
    /// different cycles); it keeps its A register. The ECP5 body keeps the MULT18X18D's
    /// own input registers.
    pub b0_q: Signal<In, Bits<8>>,
    /// `b1` of the previous cycle (see [`DspPair::b0_q`]).
    pub b1_q: Signal<In, Bits<8>>,
    /// With held weights ([`DspPair::with_held_weights`]): both PEs flip in this cycle, to
    /// `b0_new` and `b1_new`.
    pub b_load: Signal<In, Bit>,
    /// The weight the first PE flips to (its `shadow`).
    pub b0_new: Signal<In, Bits<8>>,
    /// The weight the second PE flips to.
    pub b1_new: Signal<In, Bits<8>>,
    /// `a0 * b0`, `reg_in + reg_out` cycles later.
    pub p0: Signal<Out, Bits<32>>,
    /// `a1 * b1`, `reg_in + reg_out` cycles later.
    pub p1: Signal<Out, Bits<32>>,
    _leaf: Leaf,
    // The registers' contents, per product.
    _regs: [Regs; 2],
    // The B registers hold the weights between flips.
    _held: bool,
}

impl DspPair {
    /// Two signed products with registers on the operands (`reg_in`) and products
    /// (`reg_out`).
    pub fn new(reg_in: bool, reg_out: bool) -> Self {
        Self {
            clock: Default::default(),
            a0: Default::default(),
            b0: Default::default(),
            a1: Default::default(),
            b1: Default::default(),
            b0_q: Default::default(),
            b1_q: Default::default(),
            b_load: Default::default(),
            b0_new: Default::default(),
            b1_new: Default::default(),
            p0: Default::default(),
            p1: Default::default(),
            _leaf: Leaf { a: 8, b: 8, p: 32, signed: true, reg_in, reg_out, pe: true },
            _regs: [[0; 3]; 2],
            _held: false,
        }
    }

    /// The pair with its weights held in its operand registers, for two PEs that flip in
    /// the same cycles (they sit on one anti-diagonal of the array): each B register loads
    /// the PE's next weight (`b0_new`, `b1_new`) when `b_load` is set and holds otherwise,
    /// so it is the PEs' `active` register and theirs goes unused. On iCE40 that is the
    /// SB_MAC16's B register with `BHOLD = !b_load`; the plain body writes the same
    /// register; the ECP5 body keeps taking `b0` and `b1`, equal by the PEs' rule
    /// (`active` takes the weight chosen, the shadow in a flip). Needs operand registers.
    pub fn with_held_weights(mut self) -> Self {
        assert!(self._leaf.reg_in, "weights are held in the operand registers");
        self._held = true;
        self
    }

    /// The weights are held in the operand registers.
    pub fn held_weights(&self) -> bool {
        self._held
    }

    /// Cycles from an operand to its product.
    pub fn latency(&self) -> usize {
        self._leaf.latency()
    }
}

impl Logic for DspPair {
    fn update(&mut self) {
        let ins = [(self.a0.val().to_u64(), self.b0.val().to_u64()), (self.a1.val().to_u64(), self.b1.val().to_u64())];
        if self.clock.pos_edge() {
            let new = [self.b0_new.val().to_u64(), self.b1_new.val().to_u64()];
            let load = self.b_load.val();
            for ((regs, &operands), new) in self._regs.iter_mut().zip(&ins).zip(new) {
                let b_before = regs[1];
                self._leaf.clock(regs, operands);
                if self._held {
                    regs[1] = if load { new } else { b_before };
                }
            }
        }
        self.p0.next = self._leaf.output(&self._regs[0], ins[0]).into();
        self.p1.next = self._leaf.output(&self._regs[1], ins[1]).into();
    }

    fn connect(&mut self) {
        self.p0.connect();
        self.p1.connect();
    }

    fn hdl(&self) -> Verilog {
        let mut v = String::new();
        let leaf = &self._leaf;
        let held = self._held;
        let plain = |v: &mut String| {
            leaf.plain_body(v, ["a0", "b0", "p0"], "0", held.then_some(("b_load", "b0_new")));
            leaf.plain_body(v, ["a1", "b1", "p1"], "1", held.then_some(("b_load", "b1_new")));
        };
        let _ = writeln!(v, "`ifdef {LOGIC_PE_DEFINE}");
        plain(&mut v);
        let _ = writeln!(v, "`elsif {ICE40_DEFINE}\nwire [31:0] px;");
        let (b, b_reg, b_hold) = match (held, leaf.reg_in) {
            (true, _) => ("{b1_new, b0_new}", true, "~b_load"),
            (false, true) => ("{b1_q, b0_q}", false, "1'b0"),
            (false, false) => ("{b1, b0}", false, "1'b0"),
        };
        Mac16Mode { dual: true, signed: true, reg_a: leaf.reg_in, reg_in: b_reg, reg_out: leaf.reg_out, b_hold }
            .instance(&mut v, "{a1, a0}", b);
        let _ =
            writeln!(v, "assign p1 = {{{{16{{px[31]}}}}, px[31:16]}};\nassign p0 = {{{{16{{px[15]}}}}, px[15:0]}};\n`elsif {ECP5_DEFINE}");
        leaf.ecp5_body(&mut v, ["a0", "b0", "p0"], "0");
        leaf.ecp5_body(&mut v, ["a1", "b1", "p1"], "1");
        let _ = writeln!(v, "`else");
        plain(&mut v);
        let _ = writeln!(v, "`endif");
        Verilog::Wrapper(Wrapper { code: v, cores: String::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::clock_cycle;

    fn run<const A: usize, const B: usize, const P: usize>(m: &mut DspProduct<A, B, P>, a: u64, b: u64) -> u64 {
        m.a.next = a.into();
        m.b.next = b.into();
        crate::verilog::settle(m);
        let before = m.p.val().to_u64();
        clock_cycle(m, |m| &mut m.clock);
        before
    }

    #[test]
    fn the_product_comes_after_its_registers() {
        for (reg_in, reg_out) in [(false, false), (true, false), (false, true), (true, true)] {
            let mut m = DspProduct::<8, 8, 16>::new(true, reg_in, reg_out);
            m.connect_all();
            let latency = m.latency();
            // (-128) x (-128) = 16384, (-1) x 127 = -127, 5 x 7 = 35, then zeros.
            let ins = [(0x80, 0x80), (0xff, 0x7f), (5, 7), (0, 0), (0, 0), (0, 0)];
            let expected = [16384u64, 0xff81, 35, 0, 0, 0];
            let seen: Vec<u64> = ins.iter().map(|&(a, b)| run(&mut m, a, b)).collect();
            for (t, &s) in seen.iter().enumerate() {
                let want = if t >= latency { expected[t - latency] } else { 0 };
                assert_eq!(s, want, "cycle {t} with registers in {reg_in} out {reg_out}: {seen:?}");
            }
        }
    }

    #[test]
    fn unsigned_operands_are_not_sign_extended() {
        let mut m = DspProduct::<16, 16, 32>::new(false, false, false);
        m.connect_all();
        assert_eq!(run(&mut m, 0xffff, 0xffff), 0xfffe_0001);
    }

    #[test]
    fn the_ecp5_body_turns_on_the_registers_asked_for() {
        let Verilog::Wrapper(w) = DspProduct::<8, 8, 16>::new(true, true, false).hdl() else { panic!("not a wrapper") };
        assert!(w.code.contains(".REG_INPUTA_CLK(\"CLK0\"), .REG_INPUTB_CLK(\"CLK0\"), .REG_OUTPUT_CLK(\"NONE\")"), "{}", w.code);
        assert!(w.code.contains("wire [17:0] ax = {a, 10'd0};"), "{}", w.code);
        assert!(w.code.contains("assign p = px[35:20];"), "{}", w.code);
        assert!(w.code.contains(".SIGNEDA(1'b1)"), "{}", w.code);
        // A product wider than its operands' bits: their 16 bits, sign-extended in logic.
        let Verilog::Wrapper(wide) = DspProduct::<8, 8, 32>::new(true, false, false).hdl() else { panic!("not a wrapper") };
        assert!(wide.code.contains("wire [17:0] ax = {a, 10'd0};"), "{}", wide.code);
        assert!(wide.code.contains("assign p = {{16{px[35]}}, px[35:20]};"), "{}", wide.code);
    }

    #[test]
    fn a_pes_products_are_plain_under_the_logic_define() {
        let code = |v: Verilog| match v {
            Verilog::Wrapper(w) => w.code,
            _ => panic!("not a wrapper"),
        };
        let pe = code(DspProduct::<8, 8, 32>::new(true, true, true).in_pe().hdl());
        let plain = format!("`ifdef {LOGIC_PE_DEFINE}\nreg [7:0] a_r = 0;");
        assert!(pe.starts_with(&plain) && pe.contains(&format!("`elsif {ECP5_DEFINE}")) && pe.contains("MULT18X18D"), "{pe}");
        let pair = code(DspPair::new(true, true).hdl());
        assert!(pair.starts_with(&format!("`ifdef {LOGIC_PE_DEFINE}\nreg [7:0] a_r0 = 0;")), "{pair}");
        assert!(pair.contains(&format!("`elsif {ICE40_DEFINE}")) && pair.contains("SB_MAC16"), "{pair}");
        // The requantizer's products keep their DSP bodies.
        let other = code(DspProduct::<12, 12, 24>::new(false, true, true).hdl());
        assert!(!other.contains(LOGIC_PE_DEFINE) && other.starts_with(&format!("`ifdef {ECP5_DEFINE}")), "{other}");
    }

    /// The MULT18X18D as its data sheet gives it: the 36-bit product of two 18-bit inputs,
    /// two's complement when `signed`.
    fn mult18x18(a: u64, b: u64, signed: bool) -> u64 {
        let value = |x: u64| if signed { ((x << 46) as i64) >> 46 } else { x as i64 };
        (value(a).wrapping_mul(value(b)) as u64) & ((1 << 36) - 1)
    }

    #[test]
    fn operands_at_the_top_of_the_inputs_give_the_exact_product() {
        // Every int8 pair, and 12 x 12 -> 24 unsigned (the requantizer's partial products)
        // at its corners and a stride through the rest.
        let int8 = Ecp5Placement::of(8, 8);
        assert_eq!(int8, Ecp5Placement { a_shift: 10, b_shift: 10, p_lo: 20 });
        for a in 0..256u64 {
            for b in 0..256u64 {
                let want = ((a as u8 as i8 as i64 * b as u8 as i8 as i64) as u64) & 0xffff;
                let got = (mult18x18(a << int8.a_shift, b << int8.b_shift, true) >> int8.p_lo) & 0xffff;
                assert_eq!(got, want, "{a} x {b}");
            }
        }
        let wide = Ecp5Placement::of(12, 12);
        for a in (0..4096u64).step_by(37).chain([4095]) {
            for b in (0..4096u64).step_by(41).chain([4095]) {
                let got = (mult18x18(a << wide.a_shift, b << wide.b_shift, false) >> wide.p_lo) & 0xff_ffff;
                assert_eq!(got, a * b, "{a} x {b}");
            }
        }
    }
}
