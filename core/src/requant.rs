//! The store path's requantization, in exact integer arithmetic.
//!
//! Systole follows ONNX Runtime's QLinearConv / QLinearMatMul output stage:
//!
//! ```text
//! y = clamp(round_half_even(f32(acc + bias) *f32 scale) + y_zp, lo, hi)
//! ```
//!
//! where `f32(.)` and `*f32` round to nearest-even in IEEE single precision and
//! `scale = x_scale * w_scale / y_scale` (per output channel). The hardware has no float
//! unit: [`scale_and_round`] reproduces the two f32 roundings with a 24x24-bit multiplier and
//! shifters, bit for bit. The golden model computes the same expression with native floats,
//! so each checks the other.

use serde::{Deserialize, Serialize};

/// One entry of the per-channel requantization table, 8 bytes in DRAM (bias first, LE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChannelParam {
    /// Added to the accumulator (wrapping int32).
    pub bias: i32,
    /// IEEE-754 bits of the f32 scale.
    pub scale_bits: u32,
}

impl ChannelParam {
    /// Bytes of one entry in DRAM.
    pub const BYTES: usize = 8;

    /// The 8-byte DRAM image.
    pub fn to_bytes(self) -> [u8; Self::BYTES] {
        let mut b = [0; Self::BYTES];
        b[..4].copy_from_slice(&self.bias.to_le_bytes());
        b[4..].copy_from_slice(&self.scale_bits.to_le_bytes());
        b
    }

    /// Parses the 8-byte DRAM image.
    pub fn from_bytes(b: &[u8]) -> Self {
        Self { bias: i32::from_le_bytes(b[..4].try_into().unwrap()), scale_bits: u32::from_le_bytes(b[4..8].try_into().unwrap()) }
    }
}

/// Rounds `m * 2^e` (`m > 0`) to 24 significant bits, nearest-even. Returns the new pair.
fn round_to_24_bits(mut m: u64, mut e: i32) -> (u64, i32) {
    let bits = 64 - m.leading_zeros() as i32;
    if bits > 24 {
        let sh = bits - 24;
        let rem = m & ((1u64 << sh) - 1);
        let half = 1u64 << (sh - 1);
        m >>= sh;
        e += sh;
        if rem > half || (rem == half && m & 1 == 1) {
            m += 1;
            if m == 1 << 24 {
                m >>= 1;
                e += 1;
            }
        }
    }
    (m, e)
}

/// `round_half_even(f32(v) *f32 f32::from_bits(scale_bits))` as an integer, computed without
/// floating point. Results beyond ±2^62 saturate (the caller clamps to int8 anyway).
pub fn scale_and_round(v: i32, scale_bits: u32) -> i64 {
    const SATURATED: i64 = 1 << 62;
    if v == 0 {
        return 0;
    }
    let negative = (v < 0) ^ (scale_bits >> 31 == 1);
    let sign = if negative { -1 } else { 1 };
    let exp_field = ((scale_bits >> 23) & 0xff) as i32;
    let frac = (scale_bits & 0x7f_ffff) as u64;
    if exp_field == 0xff {
        return sign * SATURATED;
    }
    let (ms, es) = if exp_field == 0 { (frac, -149) } else { (frac | 1 << 23, exp_field - 150) };
    if ms == 0 {
        return 0;
    }
    let (ma, ea) = round_to_24_bits(v.unsigned_abs() as u64, 0);
    let (mp, ep) = round_to_24_bits(ma * ms, ea + es);
    // f32 overflow (largest finite is (2^24 - 1) * 2^104) becomes infinity, i.e. saturation.
    if ep > 104 || ep + 24 > 62 {
        return sign * SATURATED;
    }
    if ep >= 0 {
        return sign * ((mp << ep) as i64);
    }
    let sh = -ep;
    if sh > 25 {
        return 0;
    }
    let q = mp >> sh;
    let rem = mp & ((1u64 << sh) - 1);
    let half = 1u64 << (sh - 1);
    let q = if rem > half || (rem == half && q & 1 == 1) { q + 1 } else { q };
    sign * q as i64
}

/// The full output stage: bias, scale, round, zero point, clamp to `[lo, hi]`.
pub fn requantize(acc: i32, p: ChannelParam, y_zp: i8, lo: i8, hi: i8) -> i8 {
    let v = acc.wrapping_add(p.bias);
    let y = scale_and_round(v, p.scale_bits) + y_zp as i64;
    y.clamp(lo as i64, hi as i64) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn float_reference(v: i32, s: f32) -> i64 {
        ((v as f32) * s).round_ties_even() as i64
    }

    #[test]
    fn hand_cases() {
        let s = 0.5f32.to_bits();
        assert_eq!(scale_and_round(3, s), 2); // 1.5 -> 2
        assert_eq!(scale_and_round(5, s), 2); // 2.5 -> 2
        assert_eq!(scale_and_round(-5, s), -2);
        assert_eq!(scale_and_round(7, s), 4); // 3.5 -> 4
        assert_eq!(scale_and_round(1000, 0.001f32.to_bits()), 1);
        // 2^24 + 1 is not representable in f32: it rounds to 2^24 before scaling.
        assert_eq!(scale_and_round((1 << 24) + 1, 1.0f32.to_bits()), 1 << 24);
        assert_eq!(requantize(100, ChannelParam { bias: 28, scale_bits: 0.25f32.to_bits() }, 3, -128, 127), 35);
        assert_eq!(requantize(-10_000, ChannelParam { bias: 0, scale_bits: 1.0f32.to_bits() }, 0, -128, 127), -128);
    }

    proptest! {
        #[test]
        fn matches_f32_for_any_scale(v in any::<i32>(), bits in 0x0080_0000u32..0x7f00_0000) {
            prop_assert_eq!(scale_and_round(v, bits), float_reference(v, f32::from_bits(bits)).clamp(-(1 << 62), 1 << 62));
        }

        #[test]
        fn matches_f32_for_typical_scales(v in -(1i32 << 26)..(1 << 26), s in 1e-7f32..1.0) {
            prop_assert_eq!(scale_and_round(v, s.to_bits()), float_reference(v, s));
        }
    }
}
