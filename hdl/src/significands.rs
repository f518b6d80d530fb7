//! The requantizer's step 2a, the product of two 24-bit significands, in one of two forms
//! chosen by `ArchConfig::requant_interval` (docs/ARCHITECTURE.md section 9):
//!
//! - [`DspSignificands`] (interval 1): four [`DspProduct`] leaves, one DSP block each, on
//!   the operands split at bit 16, and the sum of their partial products; a new product
//!   every cycle.
//! - [`SerialSignificands`] (interval `I > 1`): the product in logic, `d = 24 / I` bits of
//!   the second operand per cycle, least significant first (a shift-and-add multiplier with
//!   `d`-bit digits); a new product every `I` cycles, and no DSP block, for parts whose DSP
//!   blocks all go to the PEs.

use crate::delay::Delay;
use crate::dsp::DspProduct;
use rust_hdl::prelude::*;

/// The widest digit [`SerialSignificands`] takes per cycle: 12 bits, two iterations.
pub const MAX_DIGIT_BITS: usize = 12;

/// `ma * ms` as four DSP blocks' partial products and their sum, `reg_in + reg_out`
/// cycles after the operands.
#[derive(LogicBlock)]
pub struct DspSignificands {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Left significand.
    pub ma: Signal<In, Bits<24>>,
    /// Right significand.
    pub ms: Signal<In, Bits<24>>,
    /// The product.
    pub prod: Signal<Out, Bits<48>>,
    // The partial products of the operands split at bit 16 (`ll = ma_lo * ms_lo`,
    // `hl = ma_hi * ms_lo`, ...).
    ll: DspProduct<16, 16, 32>,
    hl: DspProduct<16, 16, 32>,
    lh: DspProduct<16, 16, 32>,
    hh: DspProduct<16, 16, 32>,
}

impl DspSignificands {
    /// The product with registers on the operands (`reg_in`) and on the partial products
    /// (`reg_out`), inside the DSP blocks.
    pub fn new(reg_in: bool, reg_out: bool) -> Self {
        Self {
            clock: Default::default(),
            ma: Default::default(),
            ms: Default::default(),
            prod: Default::default(),
            ll: DspProduct::new(false, reg_in, reg_out),
            hl: DspProduct::new(false, reg_in, reg_out),
            lh: DspProduct::new(false, reg_in, reg_out),
            hh: DspProduct::new(false, reg_in, reg_out),
        }
    }
}

impl Logic for DspSignificands {
    #[hdl_gen]
    fn update(&mut self) {
        self.ll.clock.next = self.clock.val();
        self.hl.clock.next = self.clock.val();
        self.lh.clock.next = self.clock.val();
        self.hh.clock.next = self.clock.val();
        self.ll.a.next = self.ma.val().get_bits::<16>(0);
        self.ll.b.next = self.ms.val().get_bits::<16>(0);
        self.hl.a.next = bit_cast::<16, 8>(self.ma.val().get_bits::<8>(16));
        self.hl.b.next = self.ms.val().get_bits::<16>(0);
        self.lh.a.next = self.ma.val().get_bits::<16>(0);
        self.lh.b.next = bit_cast::<16, 8>(self.ms.val().get_bits::<8>(16));
        self.hh.a.next = bit_cast::<16, 8>(self.ma.val().get_bits::<8>(16));
        self.hh.b.next = bit_cast::<16, 8>(self.ms.val().get_bits::<8>(16));
        self.prod.next = bit_cast::<48, 32>(self.ll.p.val())
            + (bit_cast::<48, 32>(self.hl.p.val()) << 16)
            + (bit_cast::<48, 32>(self.lh.p.val()) << 16)
            + (bit_cast::<48, 32>(self.hh.p.val()) << 32);
    }
}

/// `ma * ms` in logic over `interval` cycles: in the cycle `first` is set the iteration
/// starts over, and each cycle adds `ma` times the next `d = 24 / interval` bits of `ms`
/// to the running sum, whose low `d` bits then shift into `lo`. With `reg_in` the
/// operands and `first` pass a register first; with a step register
/// ([`SerialSignificands::with_step_register`]) each digit's multiple of `ma` is
/// registered before it meets the running sum, so that a cycle holds either the digit's
/// additions or the running sum's, not both. The product is in the registers
/// `interval + reg_in + step` cycles after `first` and stays there until the next
/// `first` (or, with a step register, until the cycle after it). `ms` is taken in the
/// cycle of `first` (after the register); `ma` is read in every iteration, so it must not
/// change during one (the store engine holds a beat's reads until the next beat,
/// `interval` cycles later).
#[derive(LogicBlock)]
pub struct SerialSignificands {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Left significand, held through the iteration.
    pub ma: Signal<In, Bits<24>>,
    /// Right significand.
    pub ms: Signal<In, Bits<24>>,
    /// The operands' first cycle.
    pub first: Signal<In, Bit>,
    /// The product, from the registers.
    pub prod: Signal<Out, Bits<48>>,
    a_in: Delay<Bits<24>>,
    s_in: Delay<Bits<24>>,
    f_in: Delay<Bit>,
    /// The running sum's high part (below `2^24`: `hi + ma * digit < 2^(24 + d)`), and the
    /// bits shifted out of it.
    hi: DFF<Bits<24>>,
    lo: DFF<Bits<24>>,
    /// The digits of `ms` not yet taken, lowest first.
    rest: DFF<Bits<24>>,
    /// Iterations left after the current one.
    left: DFF<Bits<5>>,
    /// The step register (0 or 1 cycles): the digit's multiple of `ma`, whether it is the
    /// iteration's first, and whether it is one of its steps.
    partial_line: Delay<Bits<36>>,
    first_line: Delay<Bit>,
    step_line: Delay<Bit>,
    digit_mask: Constant<Bits<24>>,
    /// `d` and `24 - d`, as shift amounts.
    d: Constant<Bits<8>>,
    up: Constant<Bits<8>>,
    /// `interval - 1`, the iterations after the first.
    more: Constant<Bits<5>>,
    /// For pair `k` of a digit's bits: bits `2k` and `2k + 1` as masks, and as shifts.
    even_bit: Vec<Constant<Bits<24>>>,
    odd_bit: Vec<Constant<Bits<24>>>,
    even_pos: Vec<Constant<Bits<8>>>,
    odd_pos: Vec<Constant<Bits<8>>>,
    src: Signal<Local, Bits<24>>,
    base: Signal<Local, Bits<24>>,
    lo_base: Signal<Local, Bits<24>>,
    digit: Signal<Local, Bits<24>>,
    a36: Signal<Local, Bits<36>>,
    even_term: Vec<Signal<Local, Bits<36>>>,
    odd_term: Vec<Signal<Local, Bits<36>>>,
    pair: Vec<Signal<Local, Bits<36>>>,
    partial: Signal<Local, Bits<36>>,
    sum: Signal<Local, Bits<36>>,
    shifted: Signal<Local, Bits<36>>,
    sum_lo: Signal<Local, Bits<24>>,
    step: Signal<Local, Bit>,
}

/// Pairs of bits in the widest digit.
const DIGIT_PAIRS: usize = MAX_DIGIT_BITS / 2;

impl SerialSignificands {
    /// The product over `interval` cycles (2 to 24, a divisor of 24 with digits of at most
    /// [`MAX_DIGIT_BITS`] bits), with an input register when `reg_in`.
    pub fn new(interval: usize, reg_in: bool) -> Self {
        assert!(interval >= 2 && 24 % interval == 0 && 24 / interval <= MAX_DIGIT_BITS, "a 24-bit product over {interval} cycles");
        let d = 24 / interval;
        Self {
            clock: Default::default(),
            ma: Default::default(),
            ms: Default::default(),
            first: Default::default(),
            prod: Default::default(),
            a_in: Delay::new(reg_in as usize),
            s_in: Delay::new(reg_in as usize),
            f_in: Delay::new(reg_in as usize),
            hi: Default::default(),
            lo: Default::default(),
            rest: Default::default(),
            left: Default::default(),
            partial_line: Delay::new(0),
            first_line: Delay::new(0),
            step_line: Delay::new(0),
            digit_mask: Constant::new(crate::verilog::low_mask(d)),
            d: Constant::new((d as u64).into()),
            up: Constant::new(((24 - d) as u64).into()),
            more: Constant::new(((interval - 1) as u64).into()),
            even_bit: crate::wiring::constants((0..DIGIT_PAIRS).map(|k| 1 << (2 * k))),
            odd_bit: crate::wiring::constants((0..DIGIT_PAIRS).map(|k| 1 << (2 * k + 1))),
            even_pos: crate::wiring::constants((0..DIGIT_PAIRS as u64).map(|k| 2 * k)),
            odd_pos: crate::wiring::constants((0..DIGIT_PAIRS as u64).map(|k| 2 * k + 1)),
            src: Default::default(),
            base: Default::default(),
            lo_base: Default::default(),
            digit: Default::default(),
            a36: Default::default(),
            even_term: crate::wiring::signals(DIGIT_PAIRS),
            odd_term: crate::wiring::signals(DIGIT_PAIRS),
            pair: crate::wiring::signals(DIGIT_PAIRS),
            partial: Default::default(),
            sum: Default::default(),
            shifted: Default::default(),
            sum_lo: Default::default(),
            step: Default::default(),
        }
    }
}

impl SerialSignificands {
    /// The product with `ms` read only in the first cycle of the iteration, straight from
    /// the input: for a caller whose `ms` is still on the input in the cycle the iteration
    /// starts (its inputs held longer than the input register delays them), so the input
    /// register of `ms` goes.
    pub fn with_ms_read_at_start(mut self) -> Self {
        self.s_in = Delay::new(0);
        self
    }

    /// The product with a register between each digit's multiple of `ma` and the running
    /// sum: one cycle later, with half the logic in each cycle.
    pub fn with_step_register(mut self) -> Self {
        self.partial_line = Delay::new(1);
        self.first_line = Delay::new(1);
        self.step_line = Delay::new(1);
        self
    }
}

impl Logic for SerialSignificands {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, hi, lo, rest, left);
        self.a_in.clock.next = self.clock.val();
        self.s_in.clock.next = self.clock.val();
        self.f_in.clock.next = self.clock.val();
        self.partial_line.clock.next = self.clock.val();
        self.first_line.clock.next = self.clock.val();
        self.step_line.clock.next = self.clock.val();
        self.a_in.data_in.next = self.ma.val();
        self.s_in.data_in.next = self.ms.val();
        self.f_in.data_in.next = self.first.val();
        // The digit and its multiple of `ma`.
        if self.f_in.data_out.val() {
            self.src.next = self.s_in.data_out.val();
        } else {
            self.src.next = self.rest.q.val();
        }
        self.digit.next = self.src.val() & self.digit_mask.val();
        // ma * digit as shifted copies of ma, added in pairs and then the pairs, so that
        // no multiplier is inferred and two additions deep for a digit of up to 4 bits;
        // the copies for bits at and above `d` are 0 and their adders vanish in synthesis.
        self.a36.next = bit_cast::<36, 24>(self.a_in.data_out.val());
        self.partial.next = 0.into();
        for k in 0..self.pair.len() {
            self.even_term[k].next = 0.into();
            self.odd_term[k].next = 0.into();
            if (self.digit.val() & self.even_bit[k].val()).any() {
                self.even_term[k].next = self.a36.val() << self.even_pos[k].val();
            }
            if (self.digit.val() & self.odd_bit[k].val()).any() {
                self.odd_term[k].next = self.a36.val() << self.odd_pos[k].val();
            }
            self.pair[k].next = self.even_term[k].val() + self.odd_term[k].val();
            self.partial.next = self.partial.val() + self.pair[k].val();
        }
        self.step.next = self.f_in.data_out.val() | (self.left.q.val() != 0);
        if self.step.val() {
            self.rest.d.next = self.src.val() >> self.d.val();
            if self.f_in.data_out.val() {
                self.left.d.next = self.more.val();
            } else {
                self.left.d.next = self.left.q.val() - 1;
            }
        }
        self.partial_line.data_in.next = self.partial.val();
        self.first_line.data_in.next = self.f_in.data_out.val();
        self.step_line.data_in.next = self.step.val();
        // The running sum, through the step register.
        if self.first_line.data_out.val() {
            self.base.next = 0.into();
            self.lo_base.next = 0.into();
        } else {
            self.base.next = self.hi.q.val();
            self.lo_base.next = self.lo.q.val();
        }
        self.sum.next = bit_cast::<36, 24>(self.base.val()) + self.partial_line.data_out.val();
        self.shifted.next = self.sum.val() >> self.d.val();
        self.sum_lo.next = self.sum.val().get_bits::<24>(0);
        if self.step_line.data_out.val() {
            self.hi.d.next = self.shifted.val().get_bits::<24>(0);
            self.lo.d.next = (self.lo_base.val() >> self.d.val()) | (self.sum_lo.val() << self.up.val());
        }
        self.prod.next = (bit_cast::<48, 24>(self.hi.q.val()) << 24) | bit_cast::<48, 24>(self.lo.q.val());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::verilog::{clock_cycle, settle};

    /// Runs the serial product on `(ma, ms)` pairs, each held for `interval` cycles from its
    /// `first`, and returns the product read `interval + reg_in` cycles after each `first`.
    fn serial_products(pairs: &[(u64, u64)], interval: usize, reg_in: bool, step_reg: bool) -> Vec<u64> {
        let mut uut = SerialSignificands::new(interval, reg_in);
        if step_reg {
            uut = uut.with_step_register();
        }
        uut.connect_all();
        let lag = interval + reg_in as usize + step_reg as usize;
        let mut out = vec![];
        for t in 0..pairs.len() * interval + lag + 1 {
            let (i, phase) = (t / interval, t % interval);
            let (a, s) = pairs.get(i).copied().unwrap_or((0, 0));
            uut.ma.next = a.into();
            uut.ms.next = s.into();
            uut.first.next = phase == 0 && i < pairs.len();
            assert!(settle(&mut uut));
            if t >= lag && (t - lag).is_multiple_of(interval) && (t - lag) / interval < pairs.len() {
                out.push(uut.prod.val().to_u64());
            }
            clock_cycle(&mut uut, |u| &mut u.clock);
        }
        out
    }

    #[test]
    fn the_serial_product_is_exact_at_every_interval() {
        let edge = (1 << 24) - 1;
        let pairs = [(edge, edge), (1 << 23, 1 << 23), (0xabcdef, 0x800001), (0x812345, 0xfedcba), (edge, 1 << 23), (0x800000, edge)];
        for interval in [2, 3, 4, 6, 8, 12, 24] {
            for (reg_in, step_reg) in [(false, false), (true, false), (false, true), (true, true)] {
                let got = serial_products(&pairs, interval, reg_in, step_reg);
                let want: Vec<u64> = pairs.iter().map(|&(a, s)| a * s).collect();
                assert_eq!(got, want, "interval {interval}, input register {reg_in}, step register {step_reg}");
            }
        }
    }
}
