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
//! exactly as the uncapped value would. The block is combinational; the store unit
//! registers around it. Its Verilog and its Rust model ([`requantize`]) are written here
//! side by side and both are tested against `systole_core::requant`, the oracle.

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

/// The combinational requantization unit.
#[derive(LogicBlock, Default)]
pub struct Requant {
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
    /// The int8 result.
    pub y: Signal<Out, Signed<8>>,
}

fn to_i64<const N: usize>(s: Signed<N>) -> i64 {
    s.bigint().try_into().expect("fits in i64")
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
        self.y.next = (y as i64).into();
    }

    fn connect(&mut self) {
        self.y.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(
            r#"// Rounds m to 24 significant bits, half to even: r, and sh = the right shift applied
// (at most 25). Every width is the narrowest that holds its value, so that synthesis
// builds one 24x24 multiplier and short shifters.
task round24;
    input [47:0] m;
    output [23:0] r;
    output [5:0] sh;
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
    end
endtask

reg [31:0] v, mag;
reg neg;
reg [7:0] e;
reg [23:0] ms, ma, mp;
reg [47:0] prod;
reg [5:0] ea, shp;
reg signed [10:0] es, ep;
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
    v = acc + bias;
    mag = v[31] ? (~v + 32'd1) : v;
    neg = v[31] ^ scale[31];
    e = scale[30:23];
    ms = (e == 8'd0) ? {1'b0, scale[22:0]} : {1'b1, scale[22:0]};
    es = (e == 8'd0) ? -11'sd149 : $signed({3'b000, e}) - 11'sd150;
    round24({16'd0, mag}, ma, ea);
    prod = ma * ms;
    round24(prod, mp, shp);
    ep = es + $signed({5'b00000, ea}) + $signed({5'b00000, shp});
    if (mag == 32'd0 || ms == 24'd0) q = 10'd0;
    else if (e == 8'hff || ep >= 11'sd9) q = 10'd511;
    else if (ep >= 11'sd0) begin
        up = {9'd0, mp} << ep[3:0];
        q = (up > 33'd511) ? 10'd511 : up[9:0];
    end else if (ep < -11'sd25) q = 10'd0;
    else begin
        s = 5'd0 - ep[4:0];
        down = {1'b0, mp} >> s;
        below = {1'b0, mp} << (5'd26 - s);
        if (mp[s - 5'd1] && (below != 25'd0 || down[0])) down = down + 25'd1;
        q = (down > 25'd511) ? 10'd511 : down[9:0];
    end
    yy = neg ? -$signed({6'd0, q}) : $signed({6'd0, q});
    zp16 = {{8{zp[7]}}, zp};
    lo16 = {{8{lo[7]}}, lo};
    hi16 = {{8{hi[7]}}, hi};
    yy = yy + zp16;
    if (yy < lo16) yy = lo16;
    if (yy > hi16) yy = hi16;
    y = yy[7:0];
end
"#
            .into(),
        )
    }
}
