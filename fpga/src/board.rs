//! Boards: device, package, clock, host UART and LEDs, and the device's resource totals,
//! from which the pin constraints (PCF for iCE40, LPF for ECP5) are generated.

use serde::Serialize;
use std::fmt::Write;

/// FPGA family, which picks the tools and the constraint format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Family {
    /// Lattice iCE40 (nextpnr-ice40, icepack, PCF).
    Ice40,
    /// Lattice ECP5 (nextpnr-ecp5, ecppack, LPF).
    Ecp5,
}

/// Resource totals of a device, for utilization reports and fit checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// Logic cells (iCE40) or LUT4s (ECP5).
    pub luts: u32,
    /// Flip-flops.
    pub ffs: u32,
    /// Block RAMs: SB_RAM40_4K (4 Kbit) or DP16KD (18 Kbit).
    pub brams: u32,
    /// Single-port RAMs: SB_SPRAM256KA (256 Kbit), 0 on ECP5.
    pub sprams: u32,
    /// Multipliers: SB_MAC16 or MULT18X18D.
    pub dsps: u32,
}

/// One pin: the top-level port name and the package site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// Port name in the board's top module.
    pub port: &'static str,
    /// Package site (iCE40: pin number; ECP5: ball).
    pub site: &'static str,
}

/// A board Systole can build for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Board {
    /// Name used on the command line.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// Family.
    pub family: Family,
    /// nextpnr device option without dashes (`up5k`, `25k`, `85k`).
    pub device: &'static str,
    /// nextpnr package.
    pub package: &'static str,
    /// The oscillator input.
    pub clock: Pin,
    /// Oscillator frequency.
    pub clock_mhz: f64,
    /// UART from the host into the FPGA.
    pub uart_rx: Pin,
    /// UART from the FPGA to the host.
    pub uart_tx: Pin,
    /// Status LEDs.
    pub leds: &'static [Pin],
    /// LEDs light when driven low.
    pub leds_active_low: bool,
    /// Device totals.
    pub resources: Resources,
    /// Programmer for `openFPGALoader -b <board>`.
    pub loader_board: &'static str,
    /// PLL between the oscillator and the accelerator's clock, if the oscillator is too fast.
    pub pll: Option<Pll>,
    /// Then a divider in logic (a power of two, 1 for none): the default core clock
    /// divider, which `systole fpga build --clock-divide` replaces for slower designs.
    pub divide: u32,
}

/// An ECP5 `EHXPLLL` setting with feedback from its primary output: the output runs at
/// `f_in / clki_div * clkfb_div` and the VCO at `clkop_div` times that (the settings
/// Project Trellis's `ecppll` computes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pll {
    /// Input divider.
    pub clki_div: u32,
    /// Feedback divider.
    pub clkfb_div: u32,
    /// Primary output divider from the VCO.
    pub clkop_div: u32,
    /// Primary output coarse phase, as `ecppll` sets it for 0 degrees with feedback from
    /// the primary output.
    pub clkop_cphase: u32,
}

/// The ECP5 PLL's VCO range, MHz (Lattice TN1263).
pub const ECP5_VCO_MHZ: std::ops::RangeInclusive<f64> = 400.0..=800.0;

/// The ECP5 PLL's output range, MHz, as `ecppll` enforces it.
pub const ECP5_PLL_OUT_MHZ: std::ops::RangeInclusive<f64> = 10.0..=400.0;

impl Pll {
    /// Output frequency for an input of `in_mhz`.
    pub fn out_mhz(&self, in_mhz: f64) -> f64 {
        in_mhz / self.clki_div as f64 * self.clkfb_div as f64
    }

    /// VCO frequency for an input of `in_mhz`.
    pub fn vco_mhz(&self, in_mhz: f64) -> f64 {
        self.out_mhz(in_mhz) * self.clkop_div as f64
    }
}

/// Every supported board.
pub fn boards() -> Vec<Board> {
    vec![
        Board {
            name: "icebreaker",
            description: "1BitSquared iCEBreaker: iCE40 UP5K (sg48), 12 MHz, FTDI UART",
            family: Family::Ice40,
            device: "up5k",
            package: "sg48",
            clock: Pin { port: "clk", site: "35" },
            clock_mhz: 12.0,
            uart_rx: Pin { port: "uart_rx", site: "6" },
            uart_tx: Pin { port: "uart_tx", site: "9" },
            leds: &[Pin { port: "led_r", site: "11" }, Pin { port: "led_g", site: "37" }],
            leds_active_low: true,
            resources: Resources { luts: 5280, ffs: 5280, brams: 30, sprams: 4, dsps: 8 },
            loader_board: "ice40_generic",
            pll: None,
            divide: 1,
        },
        Board {
            name: "ulx3s",
            description: "Radiona ULX3S: ECP5 LFE5U-85F (CABGA381), 25 MHz, FTDI UART",
            family: Family::Ecp5,
            device: "85k",
            package: "CABGA381",
            clock: Pin { port: "clk", site: "G2" },
            clock_mhz: 25.0,
            uart_rx: Pin { port: "uart_rx", site: "M1" },
            uart_tx: Pin { port: "uart_tx", site: "L4" },
            leds: &[
                Pin { port: "led0", site: "B2" },
                Pin { port: "led1", site: "C2" },
                Pin { port: "led2", site: "C1" },
                Pin { port: "led3", site: "D2" },
            ],
            leds_active_low: false,
            resources: Resources { luts: 83_640, ffs: 83_640, brams: 208, sprams: 0, dsps: 156 },
            loader_board: "ulx3s",
            // The core closes timing near 23 MHz with a two-stage requantizer and near 9 MHz
            // with none (README, FPGA): half the oscillator leaves a margin.
            pll: None,
            divide: 2,
        },
        Board {
            name: "orangecrab",
            description: "Good Stuff Department OrangeCrab r0.2: ECP5 LFE5U-25F (CSFBGA285), 48 MHz, UART on header pins 0 (RX) and 1 (TX)",
            family: Family::Ecp5,
            device: "25k",
            package: "CSFBGA285",
            clock: Pin { port: "clk", site: "A9" },
            clock_mhz: 48.0,
            uart_rx: Pin { port: "uart_rx", site: "N17" },
            uart_tx: Pin { port: "uart_tx", site: "M18" },
            leds: &[Pin { port: "led_r", site: "K4" }, Pin { port: "led_g", site: "M3" }, Pin { port: "led_b", site: "J3" }],
            leds_active_low: true,
            resources: Resources { luts: 24_288, ffs: 24_288, brams: 56, sprams: 0, dsps: 28 },
            loader_board: "orangeCrab",
            // 12 MHz from the PLL, like the ULX3S's halved oscillator (README, FPGA).
            pll: Some(Pll { clki_div: 4, clkfb_div: 1, clkop_div: 50, clkop_cphase: 24 }),
            divide: 1,
        },
    ]
}

/// The board named `name`, or the list of names to choose from.
pub fn board(name: &str) -> Result<Board, String> {
    let all = boards();
    let names: Vec<&str> = all.iter().map(|b| b.name).collect();
    all.into_iter().find(|b| b.name == name).ok_or_else(|| format!("unknown board `{name}`; choose one of: {}", names.join(", ")))
}

impl Board {
    /// The PLL's output, or the oscillator.
    pub fn pll_mhz(&self) -> f64 {
        self.pll.map_or(self.clock_mhz, |p| p.out_mhz(self.clock_mhz))
    }

    /// The accelerator's clock: [`Board::pll_mhz`] over [`Board::divide`].
    pub fn core_mhz(&self) -> f64 {
        self.pll_mhz() / f64::from(self.divide)
    }

    /// Every constrained pin: clock, UART, LEDs.
    pub fn pins(&self) -> Vec<Pin> {
        [self.clock, self.uart_rx, self.uart_tx].into_iter().chain(self.leds.iter().copied()).collect()
    }

    /// The pin constraint file: PCF for iCE40, LPF for ECP5 (with the clock's frequency).
    pub fn constraints(&self) -> String {
        let mut c = format!("# {} pin constraints, generated by Systole from fpga/src/board.rs; do not edit.\n", self.name);
        match self.family {
            Family::Ice40 => {
                for p in self.pins() {
                    let _ = writeln!(c, "set_io {} {}", p.port, p.site);
                }
            }
            Family::Ecp5 => {
                for p in self.pins() {
                    let _ = writeln!(c, "LOCATE COMP \"{}\" SITE \"{}\";", p.port, p.site);
                    let _ = writeln!(c, "IOBUF PORT \"{}\" IO_TYPE=LVCMOS33;", p.port);
                }
                let _ = writeln!(c, "FREQUENCY PORT \"{}\" {} MHZ;", self.clock.port, self.clock_mhz);
            }
        }
        c
    }

    /// File name of [`Board::constraints`].
    pub fn constraints_file(&self) -> String {
        format!("{}.{}", self.name, if self.family == Family::Ice40 { "pcf" } else { "lpf" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plls_are_in_range_and_only_on_ecp5() {
        for b in boards() {
            let Some(p) = b.pll else { continue };
            assert_eq!(b.family, Family::Ecp5, "{}: the top level makes ECP5 PLLs only", b.name);
            assert!(ECP5_VCO_MHZ.contains(&p.vco_mhz(b.clock_mhz)), "{}: VCO at {} MHz", b.name, p.vco_mhz(b.clock_mhz));
            assert!(ECP5_PLL_OUT_MHZ.contains(&b.pll_mhz()), "{}: PLL output at {} MHz", b.name, b.pll_mhz());
            assert!(p.clkop_cphase < p.clkop_div, "{}", b.name);
        }
        for b in boards() {
            assert!(b.divide.is_power_of_two(), "{}: divide by {}", b.name, b.divide);
        }
        // OrangeCrab: 48 MHz / 4 * 1 = 12 MHz, VCO 12 * 50 = 600 MHz (as `ecppll -i 48 -o 12`
        // computes), halved.
        let crab = board("orangecrab").unwrap();
        assert_eq!((crab.pll_mhz(), crab.pll.unwrap().vco_mhz(48.0), crab.core_mhz()), (12.0, 600.0, 12.0));
    }
}
