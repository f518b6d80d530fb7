//! The accelerator's clock on a board: the board's PLL set for a target frequency
//! (`SB_PLL40` on iCE40, `EHXPLLL` on ECP5), the oscillator itself when it already runs at
//! the target, or, only below the PLL's output range, the oscillator divided in logic.
//!
//! Each PLL's divider ranges and frequency limits are the vendor's (Lattice TN1251 for the
//! iCE40 sysCLOCK PLL, TN1263 for the ECP5's); [`plan`] searches every setting and keeps the
//! fastest output that does not exceed the target, so a design that meets timing at the
//! target meets it at the chosen clock too.

use crate::board::{Board, Family};
use serde::Serialize;
use std::ops::RangeInclusive;

/// iCE40 PLL: the reference after the input divider (PFD input), MHz.
pub const ICE40_PFD_MHZ: RangeInclusive<f64> = 10.0..=133.0;
/// iCE40 PLL: the VCO, MHz.
pub const ICE40_VCO_MHZ: RangeInclusive<f64> = 533.0..=1066.0;
/// iCE40 PLL: the output, MHz.
pub const ICE40_OUT_MHZ: RangeInclusive<f64> = 16.0..=275.0;
/// ECP5 PLL: the phase detector's input, MHz.
pub const ECP5_PFD_MHZ: RangeInclusive<f64> = 3.125..=400.0;
/// ECP5 PLL: the VCO, MHz.
pub const ECP5_VCO_MHZ: RangeInclusive<f64> = 400.0..=800.0;
/// ECP5 PLL: the output, MHz.
pub const ECP5_OUT_MHZ: RangeInclusive<f64> = 10.0..=400.0;

/// An iCE40 `SB_PLL40_PAD` setting in simple feedback: the output runs at
/// `f_in * (divf + 1) / ((divr + 1) * 2^divq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ice40Pll {
    /// Input divider minus one (0..=15).
    pub divr: u8,
    /// Feedback divider minus one (0..=127).
    pub divf: u8,
    /// Output divider as a power of two (1..=6).
    pub divq: u8,
    /// Loop filter range for the PFD frequency (1..=6).
    pub filter_range: u8,
}

impl Ice40Pll {
    /// The PFD's input for an input of `in_mhz`.
    pub fn pfd_mhz(&self, in_mhz: f64) -> f64 {
        in_mhz / f64::from(self.divr + 1)
    }

    /// The VCO frequency.
    pub fn vco_mhz(&self, in_mhz: f64) -> f64 {
        self.pfd_mhz(in_mhz) * f64::from(u16::from(self.divf) + 1)
    }

    /// The output frequency (multiplied before it is divided, so that an exact ratio gives
    /// the exact figure).
    pub fn out_mhz(&self, in_mhz: f64) -> f64 {
        in_mhz * f64::from(u16::from(self.divf) + 1) / f64::from((u32::from(self.divr) + 1) << self.divq)
    }
}

/// The iCE40 loop filter range for a PFD input of `pfd_mhz` (TN1251's table).
fn ice40_filter_range(pfd_mhz: f64) -> u8 {
    match pfd_mhz {
        f if f < 17.0 => 1,
        f if f < 26.0 => 2,
        f if f < 44.0 => 3,
        f if f < 66.0 => 4,
        f if f < 101.0 => 5,
        _ => 6,
    }
}

/// An ECP5 `EHXPLLL` setting with feedback from its primary output: the output runs at
/// `f_in / clki_div * clkfb_div` and the VCO at `clkop_div` times that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Ecp5Pll {
    /// Input divider (1..=128).
    pub clki_div: u32,
    /// Feedback divider (1..=80).
    pub clkfb_div: u32,
    /// Primary output divider from the VCO (1..=128).
    pub clkop_div: u32,
}

impl Ecp5Pll {
    /// The phase detector's input.
    pub fn pfd_mhz(&self, in_mhz: f64) -> f64 {
        in_mhz / f64::from(self.clki_div)
    }

    /// The output frequency (multiplied before it is divided, so that an exact ratio gives
    /// the exact figure).
    pub fn out_mhz(&self, in_mhz: f64) -> f64 {
        in_mhz * f64::from(self.clkfb_div) / f64::from(self.clki_div)
    }

    /// The VCO frequency.
    pub fn vco_mhz(&self, in_mhz: f64) -> f64 {
        self.out_mhz(in_mhz) * f64::from(self.clkop_div)
    }

    /// The coarse phase of the primary output for 0 degrees (the VCO cycles of a divider
    /// period less one, as Lattice's generator sets it).
    pub fn clkop_cphase(&self) -> u32 {
        self.clkop_div - 1
    }
}

/// Where the accelerator's clock comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClockSource {
    /// The board's oscillator, which runs at the target.
    Oscillator,
    /// The iCE40's PLL.
    Ice40Pll(Ice40Pll),
    /// The ECP5's PLL.
    Ecp5Pll(Ecp5Pll),
    /// The oscillator divided in logic by this power of two: only for targets below the
    /// PLL's output range.
    Divided(u32),
}

/// The accelerator's clock on a board.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CoreClock {
    /// Its source.
    pub source: ClockSource,
    /// Its frequency, MHz.
    pub mhz: f64,
}

/// Largest divider in logic: 1024 takes the slowest board clock, 12 MHz, under 12 kHz.
pub const MAX_DIVIDE: u32 = 1024;

/// Relative tolerance within which the oscillator counts as running at the target.
const SAME: f64 = 1e-9;

/// The fastest clock the board can make at or below `target_mhz`: its PLL's or its
/// oscillator's, whichever is faster, else (only below both) the oscillator divided by a
/// power of two. Fails, naming the range, for a target above the PLL's range or below the
/// slowest divider.
pub fn plan(board: &Board, target_mhz: f64) -> Result<CoreClock, ClockError> {
    let osc = board.clock_mhz;
    if !(target_mhz.is_finite() && target_mhz > 0.0) {
        return Err(ClockError::NotPositive { mhz: target_mhz });
    }
    if (target_mhz - osc).abs() <= SAME * osc {
        return Ok(CoreClock { source: ClockSource::Oscillator, mhz: osc });
    }
    let out_range = if board.family == Family::Ice40 { ICE40_OUT_MHZ } else { ECP5_OUT_MHZ };
    if target_mhz > *out_range.end() {
        return Err(ClockError::AbovePll { mhz: target_mhz, board: board.name, max_mhz: *out_range.end() });
    }
    let pll = match board.family {
        Family::Ice40 => ice40_pll(osc, target_mhz).map(|p| (ClockSource::Ice40Pll(p), p.out_mhz(osc))),
        Family::Ecp5 => ecp5_pll(osc, target_mhz).map(|p| (ClockSource::Ecp5Pll(p), p.out_mhz(osc))),
    };
    let oscillator = Some((ClockSource::Oscillator, osc)).filter(|_| osc <= target_mhz);
    if let Some((source, mhz)) = [pll, oscillator].into_iter().flatten().max_by(|a, b| a.1.total_cmp(&b.1)) {
        return Ok(CoreClock { source, mhz });
    }
    if target_mhz < *out_range.start() {
        let divide = (0..=MAX_DIVIDE.trailing_zeros()).map(|b| 1u32 << b).find(|d| osc / f64::from(*d) <= target_mhz * (1.0 + SAME));
        if let Some(d) = divide {
            return Ok(CoreClock {
                source: if d == 1 { ClockSource::Oscillator } else { ClockSource::Divided(d) },
                mhz: osc / f64::from(d),
            });
        }
    }
    Err(ClockError::Unreachable {
        mhz: target_mhz,
        board: board.name,
        pll_mhz: (*out_range.start(), *out_range.end()),
        oscillator_mhz: osc,
        divided_mhz: (osc / 2.0, osc / f64::from(MAX_DIVIDE)),
    })
}

/// A core clock a board cannot make.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    /// Zero, negative or not a number.
    #[error("core clock {mhz} MHz: not a positive frequency")]
    NotPositive {
        /// The asked frequency.
        mhz: f64,
    },
    /// Faster than the board's PLL makes.
    #[error("core clock {mhz} MHz: above the {max_mhz} MHz that {board}'s PLL can make")]
    AbovePll {
        /// The asked frequency.
        mhz: f64,
        /// The board.
        board: &'static str,
        /// The PLL's fastest output.
        max_mhz: f64,
    },
    /// Between what the divider and the PLL make.
    #[error(
        "core clock {mhz} MHz: {board}'s PLL makes {} to {} MHz from its {oscillator_mhz} MHz oscillator, and a divider in logic {} MHz down to {} MHz",
        pll_mhz.0, pll_mhz.1, divided_mhz.0, divided_mhz.1
    )]
    Unreachable {
        /// The asked frequency.
        mhz: f64,
        /// The board.
        board: &'static str,
        /// The PLL's output range.
        pll_mhz: (f64, f64),
        /// The board's oscillator.
        oscillator_mhz: f64,
        /// The divider's fastest and slowest outputs.
        divided_mhz: (f64, f64),
    },
}

/// Keeps the better of two candidates: the higher output, then the lower VCO (less power,
/// the same jitter budget).
fn better<T: Copy>(best: Option<(T, f64, f64)>, cand: (T, f64, f64)) -> Option<(T, f64, f64)> {
    match best {
        Some(b) if b.1 > cand.1 || (b.1 == cand.1 && b.2 <= cand.2) => Some(b),
        _ => Some(cand),
    }
}

/// The iCE40 PLL setting with the highest output at or below `target_mhz`.
pub fn ice40_pll(in_mhz: f64, target_mhz: f64) -> Option<Ice40Pll> {
    let mut best = None;
    for divr in 0..=15u8 {
        for divf in 0..=127u8 {
            for divq in 1..=6u8 {
                let p = Ice40Pll { divr, divf, divq, filter_range: 0 };
                let (pfd, vco, out) = (p.pfd_mhz(in_mhz), p.vco_mhz(in_mhz), p.out_mhz(in_mhz));
                if ICE40_PFD_MHZ.contains(&pfd)
                    && ICE40_VCO_MHZ.contains(&vco)
                    && ICE40_OUT_MHZ.contains(&out)
                    && out <= target_mhz * (1.0 + SAME)
                {
                    best = better(best, (Ice40Pll { filter_range: ice40_filter_range(pfd), ..p }, out, vco));
                }
            }
        }
    }
    best.map(|b| b.0)
}

/// The ECP5 PLL setting with the highest output at or below `target_mhz`.
pub fn ecp5_pll(in_mhz: f64, target_mhz: f64) -> Option<Ecp5Pll> {
    let mut best = None;
    for clki_div in 1..=128 {
        for clkfb_div in 1..=80 {
            for clkop_div in 1..=128 {
                let p = Ecp5Pll { clki_div, clkfb_div, clkop_div };
                let (pfd, vco, out) = (p.pfd_mhz(in_mhz), p.vco_mhz(in_mhz), p.out_mhz(in_mhz));
                if ECP5_PFD_MHZ.contains(&pfd)
                    && ECP5_VCO_MHZ.contains(&vco)
                    && ECP5_OUT_MHZ.contains(&out)
                    && out <= target_mhz * (1.0 + SAME)
                {
                    best = better(best, (p, out, vco));
                }
            }
        }
    }
    best.map(|b| b.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::board;

    #[test]
    fn ice40_settings_by_hand() {
        // 12 MHz * 80 / 2^5 = 30 MHz, VCO 960 MHz, PFD 12 MHz (filter range 1).
        let p = ice40_pll(12.0, 30.0).unwrap();
        assert_eq!((p.out_mhz(12.0), p.vco_mhz(12.0), p.filter_range), (30.0, 960.0, 1));
        assert_eq!((p.divr, p.divf, p.divq), (0, 79, 5));
        // 12 MHz * 67 / 2^4 = 50.25 MHz is the fastest at or below 50.3.
        assert_eq!(ice40_pll(12.0, 50.3).unwrap().out_mhz(12.0), 50.25);
        // Below 16 MHz the PLL has no output.
        assert_eq!(ice40_pll(12.0, 15.9), None);
    }

    #[test]
    fn ecp5_settings_by_hand() {
        // 48 MHz / 12 * 25 = 100 MHz with a VCO of 100 * 4..8 in range: the lowest, 400.
        let p = ecp5_pll(48.0, 100.0).unwrap();
        assert_eq!((p.out_mhz(48.0), p.vco_mhz(48.0)), (100.0, 400.0));
        // 25 MHz * 4 = 100 MHz.
        assert_eq!(ecp5_pll(25.0, 100.0).unwrap().out_mhz(25.0), 100.0);
        // 45 MHz would need 48 / 16 x 15, a PFD input of 3 MHz, below its 3.125: 48 / 15 x 14
        // = 44.8 MHz is the fastest below.
        assert_eq!(ecp5_pll(48.0, 45.0).unwrap().out_mhz(48.0), 44.8);
        // 12 MHz from 48: the VCO at 12 * 34..66.
        let slow = ecp5_pll(48.0, 12.0).unwrap();
        assert_eq!(slow.out_mhz(48.0), 12.0);
        assert!(ECP5_VCO_MHZ.contains(&slow.vco_mhz(48.0)));
        assert_eq!(slow.clkop_cphase(), slow.clkop_div - 1);
    }

    #[test]
    fn every_plan_is_in_range_and_at_most_the_target() {
        for name in ["icebreaker", "ulx3s", "orangecrab"] {
            let b = board(name).unwrap();
            for target in [0.5, 3.0, 6.0, 9.9, 12.0, 16.0, 25.0, 30.0, 33.3, 48.0, 60.0, 100.0, 125.0, 200.0] {
                let c = plan(&b, target).unwrap_or_else(|e| panic!("{name} {target}: {e}"));
                assert!(c.mhz <= target * (1.0 + 1e-9), "{name}: {c:?} above {target}");
                match c.source {
                    ClockSource::Oscillator => assert_eq!(c.mhz, b.clock_mhz),
                    ClockSource::Ice40Pll(p) => {
                        assert_eq!(b.family, Family::Ice40);
                        assert!(ICE40_VCO_MHZ.contains(&p.vco_mhz(b.clock_mhz)) && ICE40_PFD_MHZ.contains(&p.pfd_mhz(b.clock_mhz)));
                        assert!(ICE40_OUT_MHZ.contains(&c.mhz));
                    }
                    ClockSource::Ecp5Pll(p) => {
                        assert_eq!(b.family, Family::Ecp5);
                        assert!(ECP5_VCO_MHZ.contains(&p.vco_mhz(b.clock_mhz)) && ECP5_PFD_MHZ.contains(&p.pfd_mhz(b.clock_mhz)));
                        assert!(ECP5_OUT_MHZ.contains(&c.mhz));
                    }
                    ClockSource::Divided(d) => {
                        assert!(d.is_power_of_two() && d > 1);
                        // Only below the PLL's range.
                        assert!(target < 16.0, "{name}: divided for {target} MHz");
                    }
                }
                // Within 10% of the target wherever a PLL makes it (16 MHz is beyond the
                // iCE40's from 12: 12 * 85 / 64 is 15.94, so the oscillator).
                if target > 16.0 {
                    assert!(c.mhz >= 0.9 * target, "{name}: {c:?} for {target}");
                }
            }
        }
        // 6 MHz on the iCEBreaker: its 12 MHz oscillator halved.
        assert_eq!(plan(&board("icebreaker").unwrap(), 6.0).unwrap(), CoreClock { source: ClockSource::Divided(2), mhz: 6.0 });
        assert_eq!(plan(&board("icebreaker").unwrap(), 12.0).unwrap().source, ClockSource::Oscillator);
        assert_eq!(plan(&board("icebreaker").unwrap(), 16.0).unwrap(), CoreClock { source: ClockSource::Oscillator, mhz: 12.0 });
    }

    #[test]
    fn unreachable_targets_name_the_range() {
        let e = plan(&board("ulx3s").unwrap(), 450.0).unwrap_err().to_string();
        assert!(e.contains("above the 400 MHz"), "{e}");
        assert!(plan(&board("icebreaker").unwrap(), 0.001).unwrap_err().to_string().contains("down to"));
        assert!(plan(&board("icebreaker").unwrap(), f64::NAN).unwrap_err().to_string().contains("not a positive frequency"));
    }
}
