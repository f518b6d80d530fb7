//! Typed results parsed from nextpnr's log: resource use against the device's totals, the
//! maximum frequency of each clock against its target, and the paths between clocks.

use crate::board::Family;
use serde::Serialize;

/// Cells of one kind: used and available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Use {
    /// Cells used.
    pub used: u32,
    /// Cells on the device.
    pub total: u32,
}

/// One clock's timing after routing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClockTiming {
    /// nextpnr's name of the clock net.
    pub clock: String,
    /// Achieved maximum frequency.
    pub fmax_mhz: f64,
    /// Target frequency.
    pub target_mhz: f64,
    /// `fmax >= target`.
    pub pass: bool,
}

/// The slowest path from one clock's edge to another's, which nextpnr reports but does not
/// judge (it judges paths within a clock, both edges included). Systole's designs derive
/// every clock of one frequency from one PLL output, the DRAM designs' core clock through
/// a clock buffer with enable, so such a path is synchronous: it has a period from an edge
/// to the same edge of the other clock and half a period to the opposite edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossClockPath {
    /// The launching clock and edge (`posedge` or `negedge`), nextpnr's names.
    pub from: String,
    /// The capturing clock and edge.
    pub to: String,
    /// The path's delay.
    pub delay_ns: f64,
    /// The share of a period it has: 1, or 0.5 between opposite edges.
    pub period_share: f64,
    /// The time that is at the clocks' target.
    pub budget_ns: f64,
    /// `delay <= budget`.
    pub pass: bool,
}

impl CrossClockPath {
    /// The fastest clock at which the path meets its budget.
    pub fn fmax_mhz(&self) -> f64 {
        1e3 * self.period_share / self.delay_ns
    }
}

/// The last `Max delay` line of each pair of clocks in `log` whose targets (from `clocks`)
/// are equal, judged as [`CrossClockPath`] says; paths from or to pins (`<async>`) are left
/// out.
pub fn cross_clock_paths(log: &str, clocks: &[ClockTiming]) -> Vec<CrossClockPath> {
    let mut out: Vec<CrossClockPath> = vec![];
    for l in log.lines() {
        let Some(rest) = l.split("Max delay ").nth(1) else { continue };
        let Some((pair, delay)) = rest.rsplit_once(':') else { continue };
        let Some((from, to)) = pair.split_once("->") else { continue };
        let edge_and_clock = |t: &str| {
            let mut w = t.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        };
        let (Some((from_edge, from_clock)), Some((to_edge, to_clock))) = (edge_and_clock(from), edge_and_clock(to)) else { continue };
        let Some(delay_ns) = delay.split_whitespace().next().and_then(|d| d.parse::<f64>().ok()) else { continue };
        let target = |name: &str| clocks.iter().find(|c| c.clock == name).map(|c| c.target_mhz);
        let (Some(a), Some(b)) = (target(&from_clock), target(&to_clock)) else { continue };
        if a != b || from_clock == to_clock {
            continue;
        }
        let period_share = if from_edge == to_edge { 1.0 } else { 0.5 };
        let budget_ns = 1e3 / a * period_share;
        let path = CrossClockPath {
            from: format!("{from_edge} {from_clock}"),
            to: format!("{to_edge} {to_clock}"),
            delay_ns,
            period_share,
            budget_ns,
            pass: delay_ns <= budget_ns,
        };
        match out.iter_mut().find(|p| p.from == path.from && p.to == path.to) {
            Some(p) => *p = path,
            None => out.push(path),
        }
    }
    out
}

/// What a place-and-route run used and achieved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PnrReport {
    /// Logic cells (iCE40 `ICESTORM_LC`) or LUT4s (ECP5 `TRELLIS_COMB`).
    pub luts: Use,
    /// Flip-flops (ECP5 `TRELLIS_FF`; on iCE40 they live in the logic cells).
    pub ffs: Option<Use>,
    /// Block RAMs (`ICESTORM_RAM`, `DP16KD`).
    pub brams: Use,
    /// Single-port RAMs (`ICESTORM_SPRAM`; absent on ECP5).
    pub sprams: Option<Use>,
    /// Multipliers (`ICESTORM_DSP`, `MULT18X18D`).
    pub dsps: Use,
    /// Every clock's final timing.
    pub clocks: Vec<ClockTiming>,
    /// The final paths between clocks of one frequency.
    pub cross_clock: Vec<CrossClockPath>,
}

/// The `Device utilisation:` table of `log` (its last occurrence): `(cell, used, total)`.
pub fn utilisation(log: &str) -> Vec<(String, u32, u32)> {
    let Some(start) = log.rfind("Device utilisation:") else { return vec![] };
    log[start..]
        .lines()
        .skip(1)
        .map(|l| l.trim_start_matches("Info:").trim())
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (cell, rest) = l.split_once(':')?;
            let (used, rest) = rest.split_once('/')?;
            let total = rest.split_whitespace().next()?;
            Some((cell.trim().to_string(), used.trim().parse().ok()?, total.parse().ok()?))
        })
        .collect()
}

/// The last `Max frequency for clock` line of each clock in `log`.
pub fn clocks(log: &str) -> Vec<ClockTiming> {
    let mut out: Vec<ClockTiming> = vec![];
    for l in log.lines() {
        // nextpnr aligns the names: global nets get two spaces before the quote.
        let Some(rest) = l.split("Max frequency for clock").nth(1).and_then(|r| r.trim_start().strip_prefix('\'')) else { continue };
        let Some((clock, rest)) = rest.split_once("': ") else { continue };
        let mut words = rest.split_whitespace();
        let fmax = words.next().and_then(|w| w.parse().ok());
        let verdict = rest.split_once('(').map(|(_, v)| v);
        let target = verdict.and_then(|v| v.split_whitespace().nth(2)).and_then(|w| w.parse().ok());
        let (Some(fmax_mhz), Some(target_mhz), Some(v)) = (fmax, target, verdict) else { continue };
        // nextpnr-ice40 times the DSPs' unused clock inputs, tied to ground, as a clock.
        if clock.starts_with("$PACKER_") {
            continue;
        }
        let t = ClockTiming { clock: clock.to_string(), fmax_mhz, target_mhz, pass: v.starts_with("PASS") };
        match out.iter_mut().find(|c| c.clock == t.clock) {
            Some(c) => *c = t,
            None => out.push(t),
        }
    }
    out
}

impl PnrReport {
    /// Parses a nextpnr log of `family`; `None` when the log has no utilisation table.
    pub fn parse(family: Family, log: &str) -> Option<Self> {
        let table = utilisation(log);
        let get = |cell: &str| table.iter().find(|(c, _, _)| c == cell).map(|&(_, used, total)| Use { used, total });
        let (luts, ffs, brams, sprams, dsps) = match family {
            Family::Ice40 => (get("ICESTORM_LC")?, None, get("ICESTORM_RAM")?, get("ICESTORM_SPRAM"), get("ICESTORM_DSP")?),
            Family::Ecp5 => (get("TRELLIS_COMB")?, get("TRELLIS_FF"), get("DP16KD")?, None, get("MULT18X18D")?),
        };
        let clocks = clocks(log);
        let cross_clock = cross_clock_paths(log, &clocks);
        Some(Self { luts, ffs, brams, sprams, dsps, clocks, cross_clock })
    }

    /// Whether every clock and every path between clocks meets its target (and there is a
    /// clock at all).
    pub fn timing_met(&self) -> bool {
        !self.clocks.is_empty() && self.clocks.iter().all(|c| c.pass) && self.cross_clock.iter().all(|p| p.pass)
    }

    /// The fastest clock that every clock and every path between clocks allows.
    pub fn fmax_mhz(&self) -> f64 {
        let within = self.clocks.iter().map(|c| c.fmax_mhz);
        within.chain(self.cross_clock.iter().map(CrossClockPath::fmax_mhz)).fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICE40: &str = "Info: Device utilisation:
Info: \t         ICESTORM_LC:    27/ 5280     0%
Info: \t        ICESTORM_RAM:     3/   30    10%
Info: \t        ICESTORM_DSP:     2/    8    25%
Info: \t      ICESTORM_SPRAM:     1/    4    25%

Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 90.00 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 83.85 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock '$PACKER_GND_NET': 256.08 MHz (PASS at 12.00 MHz)
";

    const ECP5: &str = "Info: Device utilisation:
Info: \t              DP16KD:       4/    208     1%
Info: \t          MULT18X18D:      16/    156    10%
Info: \t          TRELLIS_FF:      24/  83640     0%
Info: \t        TRELLIS_COMB:      30/  83640     0%

Info: Max frequency for clock  '$glbnet$core_clk': 18.50 MHz (FAIL at 25.00 MHz)
Info: Max frequency for clock 'clk$TRELLIS_IO_IN': 655.74 MHz (PASS at 100.00 MHz)
";

    #[test]
    fn ice40_log() {
        let r = PnrReport::parse(Family::Ice40, ICE40).unwrap();
        assert_eq!((r.luts, r.brams, r.dsps), (Use { used: 27, total: 5280 }, Use { used: 3, total: 30 }, Use { used: 2, total: 8 }));
        assert_eq!((r.ffs, r.sprams), (None, Some(Use { used: 1, total: 4 })));
        assert_eq!(r.clocks, vec![ClockTiming { clock: "clk$SB_IO_IN_$glb_clk".into(), fmax_mhz: 83.85, target_mhz: 12.0, pass: true }]);
    }

    #[test]
    fn ecp5_log() {
        let r = PnrReport::parse(Family::Ecp5, ECP5).unwrap();
        assert_eq!((r.luts, r.ffs), (Use { used: 30, total: 83640 }, Some(Use { used: 24, total: 83640 })));
        assert_eq!((r.brams.used, r.dsps.used), (4, 16));
        assert!(!r.clocks[0].pass && r.clocks[0].fmax_mhz == 18.5 && r.clocks[0].target_mhz == 25.0);
        assert_eq!((r.clocks.len(), r.clocks[0].clock.as_str(), r.clocks[1].pass), (2, "$glbnet$core_clk", true));
    }

    #[test]
    fn paths_between_clocks_of_one_frequency_are_judged_by_their_edges() {
        // A DRAM design's log: the free clock and the core's gated clock at 100 MHz.
        let log = format!(
            "{ECP5}Info: Max frequency for clock 'core.clock': 120.00 MHz (PASS at 100.00 MHz)
Info: Max frequency for clock '$glbnet$core_clk': 101.00 MHz (PASS at 100.00 MHz)
Info: Max delay <async>                -> posedge $glbnet$core_clk: 9.44 ns
Info: Max delay posedge $glbnet$core_clk -> posedge core.clock      : 6.00 ns
Info: Max delay posedge core.clock      -> posedge $glbnet$core_clk: 9.50 ns
Info: Max delay posedge core.clock      -> negedge $glbnet$core_clk: 15.12 ns
Info: Max delay posedge core.clock      -> negedge $glbnet$core_clk: 5.10 ns
Info: Max frequency for clock 'slow': 300.00 MHz (PASS at 25.00 MHz)
Info: Max delay posedge slow -> posedge core.clock: 50.00 ns
"
        );
        let r = PnrReport::parse(Family::Ecp5, &log).unwrap();
        let found: Vec<_> = r.cross_clock.iter().map(|p| (p.from.as_str(), p.to.as_str(), p.delay_ns, p.budget_ns, p.pass)).collect();
        // The last line of a pair counts (after routing); paths between clocks of other
        // frequencies, and those from pins, are not judged.
        assert_eq!(
            found,
            [
                ("posedge $glbnet$core_clk", "posedge core.clock", 6.0, 10.0, true),
                ("posedge core.clock", "posedge $glbnet$core_clk", 9.5, 10.0, true),
                ("posedge core.clock", "negedge $glbnet$core_clk", 5.1, 5.0, false),
            ]
        );
        // Every clock passes; the path to the opposite edge does not, and its 5.1 ns in
        // half a period allow 98.04 MHz, the slowest of all.
        assert!(r.clocks.iter().all(|c| c.pass) && !r.timing_met(), "{r:?}");
        assert!((r.fmax_mhz() - 1e3 / 10.2).abs() < 1e-9, "{}", r.fmax_mhz());
    }

    #[test]
    fn a_log_without_a_table_is_none() {
        assert_eq!(PnrReport::parse(Family::Ice40, "ERROR: Failed to place"), None);
    }
}
