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
//! to `lo` or `hi` exactly as the uncapped value would. The logic is six steps (1a: the
//! sum and its magnitude; 1b: normalization and first rounding; 2a: the product; 2b: its
//! rounding; 3a: the shift and cap; 3b: sign, zero point and clamp) with up to six
//! pipeline registers after them, placed in [`BOUNDARY_ORDER`]: [`Requant::new`]`(stages)`
//! answers `stages` cycles after its inputs (0 is combinational; 1 registers after the
//! product's rounding, 2 also after the normalization). `stages` is the ArchConfig's
//! `requant_stages`; the store unit reads that many cycles ahead (`units::StoreUnit`). Its
//! Verilog and its Rust model ([`requantize`]) are written here side by side and both are
//! tested against `systole_core::requant`, the oracle.

use rust_hdl::prelude::*;

/// Largest magnitude the unit carries before the clamp.
pub const CAP: u64 = 511;

/// Rounds `x`, whose top set bit is bit `top` or `top - 1`, to the 24 bits below and
/// including its top set bit, half to even; returns the significand (in `[2^23, 2^24)`)
/// and the right shift it stands for.
fn round_24(x: u64, top: u32) -> (u64, i64) {
    let sh = if x >> top & 1 == 1 { top - 23 } else { top - 24 };
    let (m, guard, sticky) = (x >> sh, x >> (sh - 1) & 1 == 1, x & ((1 << (sh - 1)) - 1) != 0);
    let m = m + (guard && (sticky || m & 1 == 1)) as u64;
    if m == 1 << 24 {
        (1 << 23, sh as i64 + 1)
    } else {
        (m, sh as i64)
    }
}

/// The unit's function, structured as its logic: the Rust model of [`Requant`].
pub fn requantize(acc: i32, bias: i32, scale_bits: u32, zp: i8, lo: i8, hi: i8) -> i8 {
    let v = acc.wrapping_add(bias);
    let mag = v.unsigned_abs() as u64;
    let neg = (v < 0) ^ (scale_bits >> 31 == 1);
    let e = ((scale_bits >> 23) & 0xff) as i64;
    let zero = mag == 0 || e == 0;
    // Step 1: normalize to bit 31 (`x = mag << lz`), round to 24 bits at bit 8.
    let lz = (mag as u32).leading_zeros() as i64;
    let (ma, sa) = round_24((mag << lz) & 0xffff_ffff, 31);
    let ms = (scale_bits & 0x7f_ffff) as u64 | 1 << 23;
    // Step 2: the product of two normalized significands has its top bit at 47 or 46.
    let (mp, sp) = round_24(ma * ms, 47);
    // mag = ma * 2^(sa - lz), scale = ms * 2^(e - 150): the f32 product is mp * 2^ep.
    let ep = sa - lz + e - 150 + sp;
    let q = if zero {
        0
    } else if e == 0xff || ep >= -14 {
        CAP
    } else if ep <= -25 {
        0
    } else {
        let s = -ep;
        let (q, guard, sticky) = (mp >> s, mp >> (s - 1) & 1 == 1, mp & ((1 << (s - 1)) - 1) != 0);
        (q + (guard && (sticky || q & 1 == 1)) as u64).min(CAP)
    };
    let y = if neg { -(q as i64) } else { q as i64 } + zp as i64;
    y.clamp(lo as i64, hi as i64) as i8
}

/// Most pipeline registers the unit has: one after each of its six steps.
pub const MAX_STAGES: usize = systole_core::arch::MAX_REQUANT_STAGES;

/// The boundaries after the steps (boundary `k` follows step `k` of 1a, 1b, 2a, 2b, 3a,
/// 3b), in the order they gain a register as `stages` grows: after the product's rounding,
/// after the normalization, after the shift, at the multiplier's output, after the first
/// addition, and at the unit's output.
pub const BOUNDARY_ORDER: [usize; MAX_STAGES] = [4, 2, 5, 3, 1, 6];

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
    /// Output zero point.
    pub zp: Signal<In, Signed<8>>,
    /// Lower clamp.
    pub lo: Signal<In, Signed<8>>,
    /// Upper clamp.
    pub hi: Signal<In, Signed<8>>,
    /// The int8 result for the inputs of `stages` cycles ago.
    pub y: Signal<Out, Signed<8>>,
    // Results in flight, oldest first.
    _pipe: Vec<i8>,
}

impl Requant {
    /// A unit with `stages <= MAX_STAGES` pipeline registers.
    pub fn new(stages: usize) -> Self {
        assert!(stages <= MAX_STAGES, "{stages} requantizer stages; at most {MAX_STAGES}");
        Self {
            clock: Default::default(),
            acc: Default::default(),
            bias: Default::default(),
            scale: Default::default(),
            zp: Default::default(),
            lo: Default::default(),
            hi: Default::default(),
            y: Default::default(),
            _pipe: vec![0; stages],
        }
    }
}

fn to_i64<const N: usize>(s: Signed<N>) -> i64 {
    s.bigint().try_into().expect("fits in i64")
}

/// Verilog between two steps: registers, or wires when `registered` is false.
fn boundary(registered: bool, names: &[&str]) -> String {
    let moves: String = names.iter().map(|n| format!("    {n}_q {} {n};\n", if registered { "<=" } else { "=" })).collect();
    if registered {
        format!("always @(posedge clock) begin\n{moves}end\n")
    } else {
        format!("always @(*) begin\n{moves}end\n")
    }
}

impl Logic for Requant {
    fn update(&mut self) {
        let y = requantize(
            to_i64(self.acc.val()) as i32,
            to_i64(self.bias.val()) as i32,
            self.scale.val().index() as u32,
            to_i64(self.zp.val()) as i8,
            to_i64(self.lo.val()) as i8,
            to_i64(self.hi.val()) as i8,
        );
        if self._pipe.is_empty() {
            self.y.next = (y as i64).into();
            return;
        }
        if self.clock.pos_edge() {
            self._pipe.remove(0);
            self._pipe.push(y);
        }
        self.y.next = (self._pipe[0] as i64).into();
    }

    fn connect(&mut self) {
        self.y.connect();
    }

    fn hdl(&self) -> Verilog {
        let stages = self._pipe.len();
        // The boundaries between the six steps, in the order they gain a register.
        let registered = |boundary: usize| BOUNDARY_ORDER[..stages].contains(&boundary);
        let side = ["zp", "lo", "hi"];
        let carry = |prefix: &str, names: &[&str]| -> Vec<String> {
            names.iter().map(|n| format!("{prefix}_{n}")).chain(side.iter().map(|n| format!("{prefix}_{n}"))).collect()
        };
        let b = |k: usize, names: Vec<String>| boundary(registered(k), &names.iter().map(String::as_str).collect::<Vec<_>>());
        Verilog::Custom(format!(
            r#"// Step 1a: v = acc + bias, its magnitude, the result's sign; the scale's fields.
reg [31:0] v;
reg [31:0] s_mag, s_mag_q;
reg s_neg, s_neg_q;
reg [7:0] s_e, s_e_q;
reg [22:0] s_frac, s_frac_q;
reg signed [7:0] s_zp, s_lo, s_hi, s_zp_q, s_lo_q, s_hi_q;
always @(*) begin
    v = acc + bias;
    s_mag = v[31] ? (~v + 32'd1) : v;
    s_neg = v[31] ^ scale[31];
    s_e = scale[30:23];
    s_frac = scale[22:0];
    s_zp = zp;
    s_lo = lo;
    s_hi = hi;
end
{b1}
// Step 1b: the magnitude normalized to bit 31 and rounded to 24 bits (half to even); the
// scale's significand. A subnormal or zero scale gives 0.
reg [31:0] x;
reg [4:0] lz;
reg [24:0] r1;
reg [23:0] a_ma, a_ms, a_ma_q, a_ms_q;
reg signed [10:0] a_ea, a_ea_q;
reg a_neg, a_zero, a_inf, a_neg_q, a_zero_q, a_inf_q;
reg signed [7:0] a_zp, a_lo, a_hi, a_zp_q, a_lo_q, a_hi_q;
integer k;
always @(*) begin
    lz = 5'd0;
    for (k = 0; k < 32; k = k + 1) if (s_mag_q[k]) lz = 5'd31 - k[4:0];
    x = s_mag_q << lz;
    r1 = {{1'b0, x[31:8]}} + {{24'd0, x[7] && (x[6:0] != 7'd0 || x[8])}};
    a_neg = s_neg_q;
    a_ms = {{1'b1, s_frac_q}};
    a_zero = s_mag_q == 32'd0 || s_e_q == 8'd0;
    a_inf = s_e_q == 8'hff;
    // mag = a_ma * 2^(8 - lz), one more when the rounding carried out.
    a_ma = r1[24] ? 24'h800000 : r1[23:0];
    a_ea = $signed({{3'd0, s_e_q}}) - 11'sd150 + 11'sd8 + $signed({{10'd0, r1[24]}}) - $signed({{6'd0, lz}});
    a_zp = s_zp_q;
    a_lo = s_lo_q;
    a_hi = s_hi_q;
end
{b2}
// Step 2a: the product of the two significands (a DSP; its output register is the next
// boundary's).
reg [47:0] m_prod, m_prod_q;
reg signed [10:0] m_ea, m_ea_q;
reg m_neg, m_zero, m_inf, m_neg_q, m_zero_q, m_inf_q;
reg signed [7:0] m_zp, m_lo, m_hi, m_zp_q, m_lo_q, m_hi_q;
always @(*) begin
    m_prod = a_ma_q * a_ms_q;
    m_ea = a_ea_q;
    m_neg = a_neg_q;
    m_zero = a_zero_q;
    m_inf = a_inf_q;
    m_zp = a_zp_q;
    m_lo = a_lo_q;
    m_hi = a_hi_q;
end
{b3}
// Step 2b: the product, top bit 47 or 46, rounded to 24 bits; the f32 product is
// b_mp * 2^b_ep.
reg [24:0] r2;
reg [23:0] b_mp, b_mp_q;
reg signed [10:0] b_ep, b_ep_q;
reg b_neg, b_zero, b_inf, b_neg_q, b_zero_q, b_inf_q;
reg signed [7:0] b_zp, b_lo, b_hi, b_zp_q, b_lo_q, b_hi_q;
always @(*) begin
    if (m_prod_q[47]) r2 = {{1'b0, m_prod_q[47:24]}} + {{24'd0, m_prod_q[23] && (m_prod_q[22:0] != 23'd0 || m_prod_q[24])}};
    else r2 = {{1'b0, m_prod_q[46:23]}} + {{24'd0, m_prod_q[22] && (m_prod_q[21:0] != 22'd0 || m_prod_q[23])}};
    b_mp = r2[24] ? 24'h800000 : r2[23:0];
    b_ep = m_ea_q + (m_prod_q[47] ? 11'sd24 : 11'sd23) + $signed({{10'd0, r2[24]}});
    b_neg = m_neg_q;
    b_zero = m_zero_q;
    b_inf = m_inf_q;
    b_zp = m_zp_q;
    b_lo = m_lo_q;
    b_hi = m_hi_q;
end
{b4}
// Step 3a: b_mp * 2^b_ep is at least 512 from b_ep = -14 and below 0.5 up to b_ep = -25;
// between, shift right by 15..24 (half to even) and cap.
reg [4:0] s;
reg [23:0] mask;
reg [9:0] down;
reg [9:0] c_q, c_q_q;
reg c_neg, c_neg_q;
reg signed [7:0] c_zp, c_lo, c_hi, c_zp_q, c_lo_q, c_hi_q;
always @(*) begin
    s = 5'd0 - b_ep_q[4:0];
    // s >= 15 when it is used, so the quotient is the top ten bits shifted by s - 14.
    down = b_mp_q[23:14] >> (s - 5'd14);
    mask = (24'd1 << (s - 5'd1)) - 24'd1;
    if (b_zero_q) c_q = 10'd0;
    else if (b_inf_q || b_ep_q >= -11'sd14) c_q = 10'd511;
    else if (b_ep_q <= -11'sd25) c_q = 10'd0;
    else begin
        c_q = down + {{9'd0, b_mp_q[s - 5'd1] && ((b_mp_q & mask) != 24'd0 || down[0])}};
        if (c_q > 10'd511) c_q = 10'd511;
    end
    c_neg = b_neg_q;
    c_zp = b_zp_q;
    c_lo = b_lo_q;
    c_hi = b_hi_q;
end
{b5}
// Step 3b: sign and zero point in one addition, then the clamp, its two comparisons side
// by side: max(yy, lo) > hi exactly when yy > hi or lo > hi.
reg signed [15:0] yy, zp16, lo16, hi16, q16;
reg signed [7:0] d_y;
always @(*) begin
    q16 = $signed({{6'd0, c_q_q}});
    zp16 = {{{{8{{c_zp_q[7]}}}}, c_zp_q}};
    lo16 = {{{{8{{c_lo_q[7]}}}}, c_lo_q}};
    hi16 = {{{{8{{c_hi_q[7]}}}}, c_hi_q}};
    yy = c_neg_q ? zp16 - q16 : zp16 + q16;
    if (yy > hi16 || c_lo_q > c_hi_q) d_y = c_hi_q;
    else if (yy < lo16) d_y = c_lo_q;
    else d_y = yy[7:0];
end
{b6}"#,
            b1 = b(1, carry("s", &["mag", "neg", "e", "frac"])),
            b2 = b(2, carry("a", &["ma", "ms", "ea", "neg", "zero", "inf"])),
            b3 = b(3, carry("m", &["prod", "ea", "neg", "zero", "inf"])),
            b4 = b(4, carry("b", &["mp", "ep", "neg", "zero", "inf"])),
            b5 = b(5, carry("c", &["q", "neg"])),
            b6 = if registered(6) { "always @(posedge clock) y <= d_y;\n" } else { "always @(*) y = d_y;\n" },
        ))
    }
}
