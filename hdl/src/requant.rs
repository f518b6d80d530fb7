//! The requantization and activation unit of the store path (docs/ARCHITECTURE.md section
//! 6): `y = clamp(round_half_even(f32(acc + bias) *f32 scale) + zp, lo, hi)` in integer
//! logic.
//!
//! ```text
//!  acc + bias -> |v|, sign -> normalize (MSB at bit 31), round to 24 bits (RNE) --+
//!  scale: 24-bit significand (normal scales), exponent ----------------------------+-> 24x24
//!     product in [2^46, 2^48) -> round to 24 bits (RNE) -> value m * 2^ep, m in [2^23, 2^24)
//!     -> ep >= -14: cap at 511; ep <= -25: 0; else shift right by -ep (15..24, RNE)
//!     -> sign, + zp, clamp [lo, hi]
//! ```
//!
//! Both operands of the product are normalized, so each rounding to 24 bits chooses
//! between two bit positions, and the final shift has ten possible amounts: the unit is
//! a 32-bit normalizer, one multiplier and short muxes. Two facts keep it exact without
//! more: a subnormal (or zero) scale makes `|f32(v) * scale| < 2^31 * 2^-126`, which
//! rounds to 0; and magnitudes of 512 and more are capped, which with `|zp| <= 128` clamp
//! to `lo` or `hi` exactly as the uncapped value would. The logic is seven steps (1a: the
//! sum and its magnitude; 1b: normalization; 1c: the first rounding; 2a: the product; 2b:
//! its rounding; 3a: the shift and cap; 3b: sign, zero point and clamp) with up to eleven
//! pipeline registers around them (one at the inputs, one after each step, one between
//! the product's multipliers and their sum, one halfway through the normalization, one in
//! front of the inputs), placed in
//! [`BOUNDARY_ORDER`]: [`Requant::new`]`(stages)` answers `stages` cycles after its inputs
//! (0 is combinational; 1 registers after the product's rounding, 2 also after the first
//! rounding). `stages` is the ArchConfig's `requant_stages`; the store unit reads that many
//! cycles ahead (`units::StoreUnit`).
//!
//! The unit is written once, as an `hdl_gen` kernel that rust-hdl both simulates and emits;
//! what crosses a boundary is one bundle ([`Operands`], [`Magnitude`], [`Shifted`],
//! [`Normalized`], [`Partials`], [`Product`], [`Rounded`], [`Quantized`]) through a
//! [`Delay`] of 0 or 1 cycles, and the output stage (zero point and clamp bounds) waits in
//! one [`Delay`] as long as the steps before 3b. The 24x24 product is four leaves
//! [`DspProduct`] leaves, one DSP block each, and their sum; the significands cross the
//! boundaries before and after the multipliers in the DSP blocks' own registers.
//! Exponents are carried biased by 256 (`E = ep + 256`, always in `[83, 395]`), so that
//! every comparison is unsigned. Tested against `systole_core::requant`, the oracle.

use crate::delay::Delay;
use crate::pe::signed_cast_widen;
use crate::significands::{DspSignificands, SerialSignificands};
use rust_hdl::prelude::*;

/// Largest magnitude the unit carries before the clamp.
pub const CAP: u64 = 511;

/// Most pipeline registers the unit has: one at its inputs, one after each of its seven
/// steps, one inside the product, one inside the normalization and one in front of its
/// inputs (the read register, which the store unit moves onto its block RAM reads).
pub const MAX_STAGES: usize = systole_core::arch::MAX_REQUANT_STAGES;

/// The unit's boundaries (boundary `k` follows step `k` of 1a, 1b + 1c, 2a, 2b, 3a, 3b
/// for `k` in 1..=6; boundary 0 is at the inputs, boundary 7 between 1b and 1c and
/// boundary 8 inside 2a, between the multipliers and the sum of their partial products,
/// boundary 9 inside 1b, after its shifts by 16 and 8, boundary 10 in front of boundary 0),
/// in the
/// order they gain a register as `stages` grows: after the product's rounding, after the
/// first rounding, after the shift, at the multiplier's output, after the first addition,
/// between normalization and rounding (the deepest logic left at six stages), at the
/// unit's output, at the inputs (the accumulator's block RAM, the lane select and the
/// parameter table are then a cycle of their own), between the multipliers and their sum,
/// halfway through the normalization, and in front of the inputs: the read register, which
/// the store unit places on the accumulator's and the parameter table's block RAM reads,
/// in front of its lane select ([`Requant::without_read_register`]), so that those reads
/// meet a register directly.
pub const BOUNDARY_ORDER: [usize; MAX_STAGES] = [4, 2, 5, 3, 1, 7, 6, 0, 8, 9, 10];

/// The boundaries of a unit with its product in logic ([`Requant::with_interval`]), in
/// the order they gain a register: as [`BOUNDARY_ORDER`], except that the seventh goes
/// halfway through the normalization (boundary 9), the deepest logic left at six stages
/// once the lane select in front of step 1a is a single multiplexer, rather than to the
/// unit's output (boundary 6).
pub const SERIAL_BOUNDARY_ORDER: [usize; systole_core::arch::MAX_SERIAL_REQUANT_STAGES] = [4, 2, 5, 3, 1, 7, 9, 0];

/// The unit's inputs, as bits (a bundle holds no signed field).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Operands {
    acc: Bits<32>,
    bias: Bits<32>,
    scale: Bits<32>,
}

/// After step 1a: `|acc + bias|`, the result's sign and the scale's fields.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Magnitude {
    mag: Bits<32>,
    neg: Bit,
    e: Bits<8>,
    frac: Bits<23>,
}

/// After step 1b: the magnitude shifted left by its leading zeros `lz` (the MSB at bit 31,
/// unless it is 0), and what step 1a passed on.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Shifted {
    x: Bits<32>,
    lz: Bits<5>,
    neg: Bit,
    e: Bits<8>,
    frac: Bits<23>,
    zero: Bit,
}

/// After step 1c: the exponent `ea` (biased, scaled by the scale's exponent) of the
/// magnitude rounded to a 24-bit significand, and the flags. The significands themselves
/// cross this boundary in the multipliers' input registers ([`DspProduct`]).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Normalized {
    ea: Bits<10>,
    neg: Bit,
    zero: Bit,
    inf: Bit,
}

/// After step 2a: the product of the significands.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Product {
    prod: Bits<48>,
    ea: Bits<10>,
    neg: Bit,
    zero: Bit,
    inf: Bit,
}

/// After step 2b: the f32 product `mp * 2^(ep - 256)`, `mp` in `[2^23, 2^24)`.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Rounded {
    mp: Bits<24>,
    ep: Bits<10>,
    neg: Bit,
    zero: Bit,
    inf: Bit,
}

/// After step 3a: the rounded magnitude, capped at [`CAP`], and its sign.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Quantized {
    q: Bits<10>,
    neg: Bit,
}

/// The output stage a result meets in step 3b, as bits (a bundle holds no signed field):
/// the zero point and the clamp bounds moved by it at the inputs (10-bit two's complement,
/// within 255 of 0), so that step 3b tests the magnitude `q` against them beside the
/// addition of `zp`, not after it. A positive result `zp + q` is above `hi` when
/// `q > hi - zp` and below `lo` when `q < lo - zp`; a negative one `zp - q` when
/// `q + (hi - zp) < 0` and `q + (lo - zp) > 0`. The bounds themselves are `zp` plus these.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Clamp {
    zp: Bits<8>,
    /// `hi - zp`.
    hi_off: Bits<10>,
    /// `lo - zp`.
    lo_off: Bits<10>,
}

/// An instruction's output stage (`out.zp`, `out.lo`, `out.hi`) as one signal, from the
/// controller's decoder through the store unit and its engines to the requantization
/// units: the int8 zero point and clamp bounds, as two's complement bits (a bundle holds no
/// signed field).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct OutputStage {
    /// Zero point.
    pub zp: Bits<8>,
    /// Lower clamp.
    pub lo: Bits<8>,
    /// Upper clamp.
    pub hi: Bits<8>,
}

impl OutputStage {
    /// The stage of zero point `zp` and clamp `[lo, hi]`.
    pub fn new(zp: i8, lo: i8, hi: i8) -> Self {
        let bits = |x: i8| -> Bits<8> { (x as u8 as u64).into() };
        Self { zp: bits(zp), lo: bits(lo), hi: bits(hi) }
    }
}

/// Inside step 2a, beside the four partial products of the significands (which cross
/// this boundary in the multipliers' output registers, [`DspProduct`]): the exponent and
/// flags.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct Partials {
    ea: Bits<10>,
    neg: Bit,
    zero: Bit,
    inf: Bit,
}

/// The requantization unit.
#[derive(LogicBlock)]
pub struct Requant {
    /// Clock (unused with no stages).
    pub clock: Signal<In, Clock>,
    /// Accumulator value.
    pub acc: Signal<In, Signed<32>>,
    /// Channel bias (input zero point folded in).
    pub bias: Signal<In, Signed<32>>,
    /// IEEE-754 bits of the channel's f32 scale.
    pub scale: Signal<In, Bits<32>>,
    /// The output stage: zero point and clamp bounds.
    pub stage: Signal<In, OutputStage>,
    /// The int8 result for the inputs of `stages` cycles ago.
    pub y: Signal<Out, Signed<8>>,
    // The boundaries: at the inputs, after steps 1a, 1b + 1c, 2a, 2b, 3a and 3b, between
    // 1b and 1c; the output stage's wait.
    b10: Delay<Operands>,
    b0: Delay<Operands>,
    b1: Delay<Magnitude>,
    b2: Delay<Normalized>,
    b3: Delay<Product>,
    b4: Delay<Rounded>,
    b5: Delay<Quantized>,
    b6: Delay<Signed<8>>,
    b7: Delay<Shifted>,
    b9: Delay<Shifted>,
    b8: Delay<Partials>,
    clamp: Delay<Clamp>,
    /// With a product in logic (`with_interval`): the first cycle of a value at the
    /// inputs, which each value's inputs stay on for the interval.
    pub first: Signal<In, Bit>,
    // Step 2a, the product of the significands: in DSP blocks, registered at boundaries 2
    // and 8, or in logic, over the interval, registered at boundary 2 (one of the two).
    dsp: Vec<DspSignificands>,
    serial: Vec<SerialSignificands>,
    /// `first` on its way to step 2a, through the boundaries before it.
    first_line: Delay<Bit>,
    _stages: usize,
    // 1 when step 2a reads the scale's significand from the unit's inputs, which still
    // hold it when the iteration starts (`with_interval`), else 0.
    _ms_from_inputs: usize,
    // Bundle fields and casts are copied into locals before their bits are indexed: the
    // Verilog of a field or a cast cannot be indexed again.
    // Step 1a.
    acc_in: Signal<Local, Signed<32>>,
    bias_in: Signal<Local, Signed<32>>,
    scale_in: Signal<Local, Bits<32>>,
    v: Signal<Local, Signed<32>>,
    v_bits: Signal<Local, Bits<32>>,
    // Step 1b.
    mag: Signal<Local, Bits<32>>,
    z16: Signal<Local, Bit>,
    z8: Signal<Local, Bit>,
    z4: Signal<Local, Bit>,
    z2: Signal<Local, Bit>,
    n16: Signal<Local, Bits<32>>,
    n8: Signal<Local, Bits<32>>,
    n8b: Signal<Local, Bits<32>>,
    l8b: Signal<Local, Bits<5>>,
    n4: Signal<Local, Bits<32>>,
    n2: Signal<Local, Bits<32>>,
    l16: Signal<Local, Bits<5>>,
    l8: Signal<Local, Bits<5>>,
    l4: Signal<Local, Bits<5>>,
    l2: Signal<Local, Bits<5>>,
    lz: Signal<Local, Bits<5>>,
    ea0: Signal<Local, Bits<10>>,
    ea1: Signal<Local, Bits<10>>,
    x: Signal<Local, Bits<32>>,
    // Step 1c.
    x1: Signal<Local, Bits<32>>,
    lz1: Signal<Local, Bits<5>>,
    e1: Signal<Local, Bits<8>>,
    r1: Signal<Local, Bits<25>>,
    // Step 1c's significands: the multipliers' operands.
    ma: Signal<Local, Bits<24>>,
    ms: Signal<Local, Bits<24>>,
    // Step 2a's product.
    prod_ab: Signal<Local, Bits<48>>,
    // Step 2b: the significand at either alignment, each with its increment and its
    // rounding decision, all straight from the register.
    prod: Signal<Local, Bits<48>>,
    hi24: Signal<Local, Bits<24>>,
    lo24: Signal<Local, Bits<24>>,
    hi_inc: Signal<Local, Bits<25>>,
    lo_inc: Signal<Local, Bits<25>>,
    hi_up: Signal<Local, Bit>,
    lo_up: Signal<Local, Bit>,
    r2: Signal<Local, Bits<25>>,
    ep0: Signal<Local, Bits<10>>,
    ep1: Signal<Local, Bits<10>>,
    // Step 3a.
    mp: Signal<Local, Bits<24>>,
    ep: Signal<Local, Bits<10>>,
    j: Signal<Local, Bits<4>>,
    w: Signal<Local, Bits<34>>,
    down: Signal<Local, Bits<10>>,
    down1: Signal<Local, Bits<10>>,
    round_up: Signal<Local, Bit>,
    sum: Signal<Local, Bits<10>>,
    // Step 3b, and the output stage's fields as int8 at the inputs.
    zp: Signal<Local, Signed<8>>,
    lo: Signal<Local, Signed<8>>,
    hi: Signal<Local, Signed<8>>,
    q16: Signal<Local, Signed<16>>,
    zp16: Signal<Local, Signed<16>>,
    q12: Signal<Local, Signed<12>>,
    zp_in: Signal<Local, Signed<12>>,
    lo_in: Signal<Local, Signed<12>>,
    hi_in: Signal<Local, Signed<12>>,
    hi_off: Signal<Local, Signed<12>>,
    lo_off: Signal<Local, Signed<12>>,
    /// The offsets computed at the inputs, as bits.
    hi_off_in: Signal<Local, Bits<12>>,
    lo_off_in: Signal<Local, Bits<12>>,
    /// The bounds `zp + offset`, from the offsets' low bits.
    hi8: Signal<Local, Bits<8>>,
    lo8: Signal<Local, Bits<8>>,
    hi_sum: Signal<Local, Bits<12>>,
    lo_sum: Signal<Local, Bits<12>>,
    above: Signal<Local, Bit>,
    below: Signal<Local, Bit>,
    yy: Signal<Local, Signed<16>>,
}

impl Requant {
    /// A unit with `stages <= MAX_STAGES` pipeline registers.
    pub fn new(stages: usize) -> Self {
        assert!(stages <= MAX_STAGES, "{stages} requantizer stages; at most {MAX_STAGES}");
        let registered = |boundary: usize| registers_at(stages, boundary);
        Self {
            clock: Default::default(),
            acc: Default::default(),
            bias: Default::default(),
            scale: Default::default(),
            stage: Default::default(),
            y: Default::default(),
            b10: Delay::new(registered(10)),
            b0: Delay::new(registered(0)),
            b1: Delay::new(registered(1)),
            b2: Delay::new(registered(2)),
            b3: Delay::new(registered(3)),
            b4: Delay::new(registered(4)),
            b5: Delay::new(registered(5)),
            b6: Delay::new(registered(6)),
            b7: Delay::new(registered(7)),
            b9: Delay::new(registered(9)),
            clamp: Delay::new([0, 1, 2, 3, 4, 5, 7, 8, 9, 10].into_iter().map(registered).sum()),
            b8: Delay::new(registered(8)),
            first: Default::default(),
            dsp: vec![DspSignificands::new(registered(2) == 1, registered(8) == 1)],
            serial: vec![],
            first_line: Delay::new(0),
            _stages: stages,
            _ms_from_inputs: 0,
            acc_in: Default::default(),
            bias_in: Default::default(),
            scale_in: Default::default(),
            v: Default::default(),
            v_bits: Default::default(),
            mag: Default::default(),
            z16: Default::default(),
            z8: Default::default(),
            z4: Default::default(),
            z2: Default::default(),
            n16: Default::default(),
            n8: Default::default(),
            n8b: Default::default(),
            l8b: Default::default(),
            n4: Default::default(),
            n2: Default::default(),
            l16: Default::default(),
            l8: Default::default(),
            l4: Default::default(),
            l2: Default::default(),
            lz: Default::default(),
            ea0: Default::default(),
            ea1: Default::default(),
            x: Default::default(),
            x1: Default::default(),
            lz1: Default::default(),
            e1: Default::default(),
            r1: Default::default(),
            ma: Default::default(),
            ms: Default::default(),
            prod_ab: Default::default(),
            prod: Default::default(),
            hi24: Default::default(),
            lo24: Default::default(),
            hi_inc: Default::default(),
            lo_inc: Default::default(),
            hi_up: Default::default(),
            lo_up: Default::default(),
            r2: Default::default(),
            ep0: Default::default(),
            ep1: Default::default(),
            mp: Default::default(),
            ep: Default::default(),
            j: Default::default(),
            w: Default::default(),
            down: Default::default(),
            down1: Default::default(),
            round_up: Default::default(),
            sum: Default::default(),
            zp: Default::default(),
            lo: Default::default(),
            hi: Default::default(),
            q16: Default::default(),
            zp16: Default::default(),
            q12: Default::default(),
            zp_in: Default::default(),
            lo_in: Default::default(),
            hi_in: Default::default(),
            hi_off: Default::default(),
            lo_off: Default::default(),
            hi_off_in: Default::default(),
            lo_off_in: Default::default(),
            hi8: Default::default(),
            lo8: Default::default(),
            hi_sum: Default::default(),
            lo_sum: Default::default(),
            above: Default::default(),
            below: Default::default(),
            yy: Default::default(),
        }
    }
}

impl Requant {
    /// The unit without its read register (boundary 10), for a caller that registers the
    /// inputs itself, further upstream: it answers one cycle sooner when `stages` gave it
    /// one. The store unit puts that register on the block RAM reads, in front of its
    /// lane select ([`crate::units::StoreUnit`]).
    pub fn without_read_register(mut self) -> Self {
        if self.b10.depth() > 0 {
            self.clamp = Delay::new(self.clamp.depth() - self.b10.depth());
            self.first_line = Delay::new(self.first_line.depth().saturating_sub(self.b10.depth()));
            self.b10 = Delay::new(0);
        }
        self
    }

    /// The unit with its product in logic over `interval` cycles (`ArchConfig::
    /// requant_interval`; 1 keeps the DSP blocks): a value's inputs arrive with `first`
    /// and stay for `interval` cycles, and its result comes `stages + interval` cycles
    /// after `first` ([`SerialSignificands`]). The exponent and flags wait at boundary 8,
    /// one cycle (two with the step register below), so that they leave step 2a with their
    /// product. At most
    /// [`systole_core::arch::MAX_SERIAL_REQUANT_STAGES`] stages (boundary 8 is inside the
    /// DSP product only). Two registers go or move, as the held inputs and the iteration allow: the
    /// scale's significand is read straight from the inputs when they still hold it as the
    /// iteration starts, and a register at boundary 3 (after 2a, where the iteration's own
    /// registers already hold the product) goes inside the iteration, between each digit's
    /// multiple of the significand and the running sum
    /// ([`SerialSignificands::with_step_register`]); neither moves the result's cycle.
    /// The registers take the places of [`SERIAL_BOUNDARY_ORDER`].
    pub fn with_interval(mut self, interval: usize) -> Self {
        if interval > 1 {
            let stages = self._stages;
            assert!(stages <= systole_core::arch::MAX_SERIAL_REQUANT_STAGES, "{stages} stages around a product in logic");
            let registered = |boundary: usize| placed_at(&SERIAL_BOUNDARY_ORDER, stages, boundary);
            // The orders differ only in boundaries 6 and 9; of the two, the output stage
            // waits beside boundary 9, not beside 6, which no serial unit registers.
            let was_halfway = registers_at(stages, 9);
            self.b6 = Delay::new(registered(6));
            self.b9 = Delay::new(registered(9));
            self.clamp = Delay::new(self.clamp.depth() + registered(9) - was_halfway);
            self.dsp = vec![];
            // Of the boundaries before step 2a, 10 is not in the order, so only 0, 1, 7
            // and 9 can hold a register here.
            let ahead = [0, 1, 7, 9].into_iter().map(registered).sum::<usize>();
            self.first_line = Delay::new(ahead);
            // A value's inputs stay for the interval, and the iteration starts
            // `ahead - registered(0) + registered(2)` cycles after boundary 0 passes them
            // on: while they are still there, the significand of the scale is read from
            // them, not carried through boundaries 1, 7 and 2.
            let mut serial = SerialSignificands::new(interval, registered(2) == 1);
            if ahead - registered(0) + registered(2) < interval {
                self._ms_from_inputs = 1;
                serial = serial.with_ms_read_at_start();
            }
            // The product leaves the iteration's own registers: a register of boundary 3
            // after them would hold it again, so it goes inside the iteration instead,
            // between each digit's multiple of the significand and the running sum, and
            // the unit's latency stays `stages + interval`.
            if registered(3) == 1 {
                self.b3 = Delay::new(0);
                serial = serial.with_step_register();
            }
            self.serial = vec![serial];
            // The exponent and flags leave step 2a with their product.
            self.b8 = Delay::new(1 + registered(3));
            self.clamp = Delay::new(self.clamp.depth() + interval);
        }
        self
    }

    /// The unit for an output stage that stays on its input while any of its values is in
    /// the pipeline (a store engine holds an instruction's stage until its last write): the
    /// stage, with its bounds moved by the zero point, crosses one register (none in a
    /// unit without registers) instead of waiting beside each value.
    pub fn with_held_stage(mut self) -> Self {
        self.clamp = Delay::new(self.clamp.depth().min(1));
        self
    }
}

/// The registers (0 or 1) at `boundary` of a unit with `stages` registers, which take the
/// first `stages` places of [`BOUNDARY_ORDER`].
fn registers_at(stages: usize, boundary: usize) -> usize {
    placed_at(&BOUNDARY_ORDER, stages, boundary)
}

/// The registers (0 or 1) at `boundary` of a unit whose `stages` registers take the first
/// places of `order`.
fn placed_at(order: &[usize], stages: usize, boundary: usize) -> usize {
    order[..stages.min(order.len())].contains(&boundary) as usize
}

/// Whether a unit with `stages` registers has its read register (boundary 10).
pub fn read_registered(stages: usize) -> bool {
    registers_at(stages, 10) == 1
}

impl Logic for Requant {
    #[hdl_gen]
    fn update(&mut self) {
        self.b10.clock.next = self.clock.val();
        self.b0.clock.next = self.clock.val();
        self.b7.clock.next = self.clock.val();
        self.b9.clock.next = self.clock.val();
        self.b1.clock.next = self.clock.val();
        self.b2.clock.next = self.clock.val();
        self.b3.clock.next = self.clock.val();
        self.b4.clock.next = self.clock.val();
        self.b5.clock.next = self.clock.val();
        self.b6.clock.next = self.clock.val();
        self.clamp.clock.next = self.clock.val();
        self.zp.next = signed_cast(self.stage.val().zp);
        self.lo.next = signed_cast(self.stage.val().lo);
        self.hi.next = signed_cast(self.stage.val().hi);
        self.clamp.data_in.next.zp = self.stage.val().zp;
        self.zp_in.next = signed_cast_widen::<12, 8>(self.zp.val());
        self.lo_in.next = signed_cast_widen::<12, 8>(self.lo.val());
        self.hi_in.next = signed_cast_widen::<12, 8>(self.hi.val());
        self.hi_off_in.next = unsigned_cast(self.hi_in.val() - self.zp_in.val());
        self.lo_off_in.next = unsigned_cast(self.lo_in.val() - self.zp_in.val());
        self.clamp.data_in.next.hi_off = self.hi_off_in.val().get_bits::<10>(0);
        self.clamp.data_in.next.lo_off = self.lo_off_in.val().get_bits::<10>(0);

        self.b10.data_in.next.acc = unsigned_cast(self.acc.val());
        self.b10.data_in.next.bias = unsigned_cast(self.bias.val());
        self.b10.data_in.next.scale = self.scale.val();
        self.b0.data_in.next = self.b10.data_out.val();

        // Step 1a: v = acc + bias, its magnitude, the result's sign; the scale's fields.
        self.acc_in.next = signed_cast(self.b0.data_out.val().acc);
        self.bias_in.next = signed_cast(self.b0.data_out.val().bias);
        self.v.next = self.acc_in.val() + self.bias_in.val();
        self.v_bits.next = unsigned_cast(self.v.val());
        if self.v_bits.val().get_bit(31) {
            self.b1.data_in.next.mag = unsigned_cast(-self.v.val());
        } else {
            self.b1.data_in.next.mag = self.v_bits.val();
        }
        self.scale_in.next = self.b0.data_out.val().scale;
        self.b1.data_in.next.neg = self.v_bits.val().get_bit(31) ^ self.scale_in.val().get_bit(31);
        self.b1.data_in.next.e = self.scale_in.val().get_bits::<8>(23);
        self.b1.data_in.next.frac = self.scale_in.val().get_bits::<23>(0);

        // Step 1b: the magnitude normalized to bit 31.
        self.mag.next = self.b1.data_out.val().mag;
        // Normalization as a binary search (16, 8, 4, 2, 1): five short steps instead of
        // a 32-way priority chain before the shift.
        self.z16.next = self.mag.val().get_bits::<16>(16) == 0;
        if self.z16.val() {
            self.n16.next = self.mag.val() << 16;
            self.l16.next = 16.into();
        } else {
            self.n16.next = self.mag.val();
            self.l16.next = 0.into();
        }
        self.z8.next = self.n16.val().get_bits::<8>(24) == 0;
        if self.z8.val() {
            self.n8.next = self.n16.val() << 8;
            self.l8.next = self.l16.val() | 8;
        } else {
            self.n8.next = self.n16.val();
            self.l8.next = self.l16.val();
        }
        // Boundary 9, halfway through the normalization.
        self.b9.data_in.next.x = self.n8.val();
        self.b9.data_in.next.lz = self.l8.val();
        self.b9.data_in.next.neg = self.b1.data_out.val().neg;
        self.b9.data_in.next.e = self.b1.data_out.val().e;
        self.b9.data_in.next.frac = self.b1.data_out.val().frac;
        // A subnormal or zero scale gives 0.
        self.b9.data_in.next.zero = (self.mag.val() == 0) | (self.b1.data_out.val().e == 0);
        self.n8b.next = self.b9.data_out.val().x;
        self.l8b.next = self.b9.data_out.val().lz;
        self.z4.next = self.n8b.val().get_bits::<4>(28) == 0;
        if self.z4.val() {
            self.n4.next = self.n8b.val() << 4;
            self.l4.next = self.l8b.val() | 4;
        } else {
            self.n4.next = self.n8b.val();
            self.l4.next = self.l8b.val();
        }
        self.z2.next = self.n4.val().get_bits::<2>(30) == 0;
        if self.z2.val() {
            self.n2.next = self.n4.val() << 2;
            self.l2.next = self.l4.val() | 2;
        } else {
            self.n2.next = self.n4.val();
            self.l2.next = self.l4.val();
        }
        if self.n2.val().get_bit(31) {
            self.x.next = self.n2.val();
            self.lz.next = self.l2.val();
        } else {
            self.x.next = self.n2.val() << 1;
            self.lz.next = self.l2.val() | 1;
        }
        self.b7.data_in.next.x = self.x.val();
        self.b7.data_in.next.lz = self.lz.val();
        self.b7.data_in.next.neg = self.b9.data_out.val().neg;
        self.b7.data_in.next.e = self.b9.data_out.val().e;
        self.b7.data_in.next.frac = self.b9.data_out.val().frac;
        self.b7.data_in.next.zero = self.b9.data_out.val().zero;

        // Step 1c: the normalized magnitude rounded to 24 bits (half to even); the scale's
        // significand. mag = ma * 2^(8 - lz), one more when the rounding carried out, so
        // ea = e - 150 + 8 + carry - lz, plus the bias 256.
        self.x1.next = self.b7.data_out.val().x;
        self.lz1.next = self.b7.data_out.val().lz;
        self.e1.next = self.b7.data_out.val().e;
        self.r1.next = bit_cast::<25, 24>(self.x1.val().get_bits::<24>(8))
            + (self.x1.val().get_bit(7) & ((self.x1.val().get_bits::<7>(0) != 0) | self.x1.val().get_bit(8)));
        if self.r1.val().get_bit(24) {
            self.ma.next = 0x80_0000.into();
        } else {
            self.ma.next = self.r1.val().get_bits::<24>(0);
        }
        self.ms.next = bit_cast::<24, 23>(self.b7.data_out.val().frac) | 0x80_0000;
        for _u in 0..self._ms_from_inputs {
            self.ms.next = bit_cast::<24, 23>(self.scale_in.val().get_bits::<23>(0)) | 0x80_0000;
        }
        // Both exponents, with and without the rounding's carry, side by side.
        self.ea0.next = bit_cast::<10, 8>(self.e1.val()) + 114 - bit_cast::<10, 5>(self.lz1.val());
        self.ea1.next = bit_cast::<10, 8>(self.e1.val()) + 115 - bit_cast::<10, 5>(self.lz1.val());
        if self.r1.val().get_bit(24) {
            self.b2.data_in.next.ea = self.ea1.val();
        } else {
            self.b2.data_in.next.ea = self.ea0.val();
        }
        self.b2.data_in.next.neg = self.b7.data_out.val().neg;
        self.b2.data_in.next.zero = self.b7.data_out.val().zero;
        self.b2.data_in.next.inf = self.e1.val() == 0xff;

        // Step 2a: the product of the two significands, in DSP blocks or in logic.
        self.b8.clock.next = self.clock.val();
        self.first_line.clock.next = self.clock.val();
        self.first_line.data_in.next = self.first.val();
        self.prod_ab.next = 0.into();
        for k in 0..self.dsp.len() {
            self.dsp[k].clock.next = self.clock.val();
            self.dsp[k].ma.next = self.ma.val();
            self.dsp[k].ms.next = self.ms.val();
            self.prod_ab.next = self.dsp[k].prod.val();
        }
        for k in 0..self.serial.len() {
            self.serial[k].clock.next = self.clock.val();
            self.serial[k].ma.next = self.ma.val();
            self.serial[k].ms.next = self.ms.val();
            self.serial[k].first.next = self.first_line.data_out.val();
            self.prod_ab.next = self.serial[k].prod.val();
        }
        self.b8.data_in.next.ea = self.b2.data_out.val().ea;
        self.b8.data_in.next.neg = self.b2.data_out.val().neg;
        self.b8.data_in.next.zero = self.b2.data_out.val().zero;
        self.b8.data_in.next.inf = self.b2.data_out.val().inf;
        self.b3.data_in.next.prod = self.prod_ab.val();
        self.b3.data_in.next.ea = self.b8.data_out.val().ea;
        self.b3.data_in.next.neg = self.b8.data_out.val().neg;
        self.b3.data_in.next.zero = self.b8.data_out.val().zero;
        self.b3.data_in.next.inf = self.b8.data_out.val().inf;

        // Step 2b: the product, top bit 47 or 46, rounded to 24 bits. Both alignments and
        // their increments are computed side by side and chosen last, so that neither the
        // sticky bits' OR nor the choice of alignment lies in front of a carry chain.
        self.prod.next = self.b3.data_out.val().prod;
        self.hi24.next = self.prod.val().get_bits::<24>(24);
        self.lo24.next = self.prod.val().get_bits::<24>(23);
        self.hi_inc.next = bit_cast::<25, 24>(self.hi24.val()) + 1;
        self.lo_inc.next = bit_cast::<25, 24>(self.lo24.val()) + 1;
        self.hi_up.next = self.prod.val().get_bit(23) & ((self.prod.val().get_bits::<23>(0) != 0) | self.prod.val().get_bit(24));
        self.lo_up.next = self.prod.val().get_bit(22) & ((self.prod.val().get_bits::<22>(0) != 0) | self.prod.val().get_bit(23));
        if self.prod.val().get_bit(47) {
            if self.hi_up.val() {
                self.r2.next = self.hi_inc.val();
            } else {
                self.r2.next = bit_cast::<25, 24>(self.hi24.val());
            }
        } else if self.lo_up.val() {
            self.r2.next = self.lo_inc.val();
        } else {
            self.r2.next = bit_cast::<25, 24>(self.lo24.val());
        }
        if self.r2.val().get_bit(24) {
            self.b4.data_in.next.mp = 0x80_0000.into();
        } else {
            self.b4.data_in.next.mp = self.r2.val().get_bits::<24>(0);
        }
        // Both exponents, with and without the rounding's carry, side by side.
        self.ep0.next = self.b3.data_out.val().ea + 23 + self.prod.val().get_bit(47);
        self.ep1.next = self.b3.data_out.val().ea + 24 + self.prod.val().get_bit(47);
        if self.r2.val().get_bit(24) {
            self.b4.data_in.next.ep = self.ep1.val();
        } else {
            self.b4.data_in.next.ep = self.ep0.val();
        }
        self.b4.data_in.next.neg = self.b3.data_out.val().neg;
        self.b4.data_in.next.zero = self.b3.data_out.val().zero;
        self.b4.data_in.next.inf = self.b3.data_out.val().inf;

        // Step 3a: mp * 2^(ep - 256) is at least 512 from ep = 242 and below 0.5 up to
        // ep = 231; between, shift right by 256 - ep, 15..24 (half to even), and cap. With
        // j = ep - 232 (0..9, the low four bits of ep with bit 3 flipped), w = mp << j puts
        // the quotient in bits 24..33 (below 512), the rounding bit at 23 and the rest
        // below, so the step has no subtraction and no comparison in series.
        self.mp.next = self.b4.data_out.val().mp;
        self.ep.next = self.b4.data_out.val().ep;
        self.j.next = self.ep.val().get_bits::<4>(0) ^ 8;
        self.w.next = bit_cast::<34, 24>(self.mp.val()) << self.j.val();
        self.down.next = self.w.val().get_bits::<10>(24);
        // The rounding's increment beside its decision (which waits for the 23-bit sticky
        // test), not after it: the decision chooses.
        self.down1.next = self.down.val() + 1;
        self.round_up.next = self.w.val().get_bit(23) & ((self.w.val().get_bits::<23>(0) != 0) | self.down.val().get_bit(0));
        if self.round_up.val() {
            self.sum.next = self.down1.val();
        } else {
            self.sum.next = self.down.val();
        }
        if self.b4.data_out.val().zero {
            self.b5.data_in.next.q = 0.into();
        } else if self.b4.data_out.val().inf | (self.ep.val() >= 242) {
            self.b5.data_in.next.q = 511.into();
        } else if self.ep.val() <= 231 {
            self.b5.data_in.next.q = 0.into();
        } else if self.sum.val().get_bit(9) {
            self.b5.data_in.next.q = 511.into();
        } else {
            self.b5.data_in.next.q = self.sum.val();
        }
        self.b5.data_in.next.neg = self.b4.data_out.val().neg;

        // Step 3b: sign and zero point in one addition `yy`, and beside it the clamp's tests
        // of `q` against the bounds moved by the zero point (yy > hi exactly when q > hi - zp
        // for a positive result, q < zp - hi for a negative one; likewise for lo), so no
        // comparison waits for the sum. max(yy, lo) > hi exactly when yy > hi or lo > hi.
        self.q16.next = signed_cast(bit_cast::<16, 10>(self.b5.data_out.val().q));
        self.q12.next = signed_cast(bit_cast::<12, 10>(self.b5.data_out.val().q));
        self.zp16.next = signed_cast_widen::<16, 8>(signed_cast(self.clamp.data_out.val().zp));
        self.hi_off.next = signed_cast_widen::<12, 10>(signed_cast(self.clamp.data_out.val().hi_off));
        self.lo_off.next = signed_cast_widen::<12, 10>(signed_cast(self.clamp.data_out.val().lo_off));
        self.hi_sum.next = bit_cast::<12, 10>(self.b5.data_out.val().q) + unsigned_cast(self.hi_off.val());
        self.lo_sum.next = bit_cast::<12, 10>(self.b5.data_out.val().q) + unsigned_cast(self.lo_off.val());
        self.hi8.next = self.clamp.data_out.val().zp + bit_cast::<8, 10>(self.clamp.data_out.val().hi_off);
        self.lo8.next = self.clamp.data_out.val().zp + bit_cast::<8, 10>(self.clamp.data_out.val().lo_off);
        if self.b5.data_out.val().neg {
            self.yy.next = self.zp16.val() - self.q16.val();
            self.above.next = self.hi_sum.val().get_bit(11);
            self.below.next = !self.lo_sum.val().get_bit(11) & (self.lo_sum.val() != 0);
        } else {
            self.yy.next = self.zp16.val() + self.q16.val();
            self.above.next = self.q12.val() > self.hi_off.val();
            self.below.next = self.q12.val() < self.lo_off.val();
        }
        // max(yy, lo) > hi exactly when yy > hi or lo > hi; the bounds are zp plus offsets.
        if self.above.val() | (self.lo_off.val() > self.hi_off.val()) {
            self.b6.data_in.next = signed_cast(self.hi8.val());
        } else if self.below.val() {
            self.b6.data_in.next = signed_cast(self.lo8.val());
        } else {
            self.b6.data_in.next = signed_bit_cast::<8, 16>(self.yy.val());
        }
        self.y.next = self.b6.data_out.val();
    }
}
