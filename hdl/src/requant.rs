//! The requantization and activation unit of the store path (docs/ARCHITECTURE.md section
//! 6): `y = clamp(round_half_even(f32(acc + bias) *f32 scale) + zp, lo, hi)` in integer
//! logic.
//!
//! ```text
//!  acc + bias -> |v|, sign -> round to 24 significant bits (RNE) --+
//!  scale: 24-bit significand, exponent -----------------------------+-> 24x24 product
//!     -> round to 24 bits (RNE) -> shift by the exponent (RNE) -> cap at 511
//!     -> sign, + zp, clamp [lo, hi]
//! ```
//!
//! Magnitudes of 512 and more are capped: with `|zp| <= 128` they clamp to `lo` or `hi`
//! exactly as the uncapped value would. The logic is three steps (sign, magnitude and first
//! rounding; product and second rounding; shift, zero point and clamp) with up to two
//! pipeline registers between them: [`Requant::new`]`(stages)` answers `stages` cycles
//! after its inputs (0 is combinational; 1 registers before the last step). The store
//! unit reads that many cycles ahead (`units::StoreUnit`). Its Verilog and its Rust model
//! ([`requantize`]) are written here side by side and both are tested against
//! `systole_core::requant`, the oracle.

use rust_hdl::prelude::*;

/// Largest magnitude the unit carries before the clamp.
pub const CAP: u64 = 511;

/// Rounds `m` to 24 significant bits (round half to even); returns the new significand
/// and how far it was shifted right.
fn round_24(m: u64) -> (u64, i64) {
    let bits = 64 - m.leading_zeros() as i64;
    if bits <= 24 {
        return (m, 0);
    }
    let sh = bits - 24;
    let (q, rem, half) = (m >> sh, m & ((1 << sh) - 1), 1u64 << (sh - 1));
    let q = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
    if q == 1 << 24 {
        (q >> 1, sh + 1)
    } else {
        (q, sh)
    }
}

/// The unit's function, structured as its logic: the Rust model of [`Requant`].
pub fn requantize(acc: i32, bias: i32, scale_bits: u32, zp: i8, lo: i8, hi: i8) -> i8 {
    let v = acc.wrapping_add(bias);
    let mag = v.unsigned_abs() as u64;
    let neg = (v < 0) ^ (scale_bits >> 31 == 1);
    let e = ((scale_bits >> 23) & 0xff) as i64;
    let frac = (scale_bits & 0x7f_ffff) as u64;
    let ms = if e == 0 { frac } else { frac | 1 << 23 };
    let es = if e == 0 { -149 } else { e - 150 };
    let (ma, ea) = round_24(mag);
    let (mp, sh) = round_24(ma * ms);
    let ep = ea + es + sh;
    let q = if mag == 0 || ms == 0 {
        0
    } else if e == 0xff || ep >= 9 {
        CAP
    } else if ep >= 0 {
        (mp << ep).min(CAP)
    } else if -ep > 25 {
        0
    } else {
        let s = -ep;
        let (q, rem, half) = (mp >> s, mp & ((1 << s) - 1), 1u64 << (s - 1));
        (if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q }).min(CAP)
    };
    let y = if neg { -(q as i64) } else { q as i64 } + zp as i64;
    y.clamp(lo as i64, hi as i64) as i8
}

/// Most pipeline registers the unit has.
pub const MAX_STAGES: usize = 2;

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
        // Step outputs carried across each boundary.
        let first = ["a_ma", "a_ms", "a_ea", "a_es", "a_neg", "a_zero", "a_inf", "a_zp", "a_lo", "a_hi"];
        let second = ["b_mp", "b_ep", "b_neg", "b_zero", "b_inf", "b_zp", "b_lo", "b_hi"];
        Verilog::Custom(format!(
            r#"// Rounds m to 24 significant bits, half to even: {{sh, r}} with r the significand and sh
// the right shift applied (at most 25). Every width is the narrowest that holds its value,
// so that synthesis builds one 24x24 multiplier and short shifters. A function, not a
// task: Icarus loops forever on a task shared by two always blocks.
function [29:0] round24;
    input [47:0] m;
    reg [23:0] r;
    reg [5:0] sh;
    reg [5:0] nb;
    reg [47:0] t, low;
    reg [6:0] i;
    begin
        nb = 6'd0;
        for (i = 7'd0; i < 7'd48; i = i + 7'd1) if (m[i[5:0]]) nb = i[5:0] + 6'd1;
        if (nb <= 6'd24) begin
            r = m[23:0];
            sh = 6'd0;
        end else begin
            sh = nb - 6'd24;
            t = m >> sh;
            // The sh - 1 bits below the guard bit m[sh - 1], moved to the top.
            low = m << (6'd49 - sh);
            if (m[sh - 6'd1] && (low != 48'd0 || t[0])) t = t + 48'd1;
            if (t[24]) begin
                t = t >> 1;
                sh = sh + 6'd1;
            end
            r = t[23:0];
        end
        round24 = {{sh, r}};
    end
endfunction

// Step 1: sign, magnitude rounded to 24 bits, the scale's significand and exponent.
reg [31:0] v, mag;
reg [7:0] e;
reg [23:0] a_ma, a_ms, a_ma_q, a_ms_q;
reg [5:0] a_ea, a_ea_q;
reg signed [10:0] a_es, a_es_q;
reg a_neg, a_zero, a_inf, a_neg_q, a_zero_q, a_inf_q;
reg signed [7:0] a_zp, a_lo, a_hi, a_zp_q, a_lo_q, a_hi_q;
always @(*) begin
    v = acc + bias;
    mag = v[31] ? (~v + 32'd1) : v;
    e = scale[30:23];
    a_neg = v[31] ^ scale[31];
    a_ms = (e == 8'd0) ? {{1'b0, scale[22:0]}} : {{1'b1, scale[22:0]}};
    a_es = (e == 8'd0) ? -11'sd149 : $signed({{3'b000, e}}) - 11'sd150;
    a_zero = mag == 32'd0 || a_ms == 24'd0;
    a_inf = e == 8'hff;
    {{a_ea, a_ma}} = round24({{16'd0, mag}});
    a_zp = zp;
    a_lo = lo;
    a_hi = hi;
end
{b1}
// Step 2: the product rounded to 24 bits, and its binary exponent.
reg [47:0] prod;
reg [5:0] shp;
reg [23:0] b_mp, b_mp_q;
reg signed [10:0] b_ep, b_ep_q;
reg b_neg, b_zero, b_inf, b_neg_q, b_zero_q, b_inf_q;
reg signed [7:0] b_zp, b_lo, b_hi, b_zp_q, b_lo_q, b_hi_q;
always @(*) begin
    prod = a_ma_q * a_ms_q;
    {{shp, b_mp}} = round24(prod);
    b_ep = a_es_q + $signed({{5'b00000, a_ea_q}}) + $signed({{5'b00000, shp}});
    b_neg = a_neg_q;
    b_zero = a_zero_q;
    b_inf = a_inf_q;
    b_zp = a_zp_q;
    b_lo = a_lo_q;
    b_hi = a_hi_q;
end
{b2}
// Step 3: scale by the exponent (round half to even), cap, sign, zero point, clamp.
reg [4:0] s;
reg [32:0] up;
reg [24:0] down, below;
reg [9:0] q;
reg signed [15:0] yy, zp16, lo16, hi16;
always @(*) begin
    up = 33'd0;
    down = 25'd0;
    below = 25'd0;
    s = 5'd0;
    if (b_zero_q) q = 10'd0;
    else if (b_inf_q || b_ep_q >= 11'sd9) q = 10'd511;
    else if (b_ep_q >= 11'sd0) begin
        up = {{9'd0, b_mp_q}} << b_ep_q[3:0];
        q = (up > 33'd511) ? 10'd511 : up[9:0];
    end else if (b_ep_q < -11'sd25) q = 10'd0;
    else begin
        s = 5'd0 - b_ep_q[4:0];
        down = {{1'b0, b_mp_q}} >> s;
        below = {{1'b0, b_mp_q}} << (5'd26 - s);
        if (b_mp_q[s - 5'd1] && (below != 25'd0 || down[0])) down = down + 25'd1;
        q = (down > 25'd511) ? 10'd511 : down[9:0];
    end
    yy = b_neg_q ? -$signed({{6'd0, q}}) : $signed({{6'd0, q}});
    zp16 = {{{{8{{b_zp_q[7]}}}}, b_zp_q}};
    lo16 = {{{{8{{b_lo_q[7]}}}}, b_lo_q}};
    hi16 = {{{{8{{b_hi_q[7]}}}}, b_hi_q}};
    yy = yy + zp16;
    if (yy < lo16) yy = lo16;
    if (yy > hi16) yy = hi16;
    y = yy[7:0];
end
"#,
            b1 = boundary(stages >= 2, &first),
            b2 = boundary(stages >= 1, &second),
        ))
    }
}
