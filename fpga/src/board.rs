//! Boards: device, package, clock, host UART and LEDs, and the device's resource totals,
//! from which the pin constraints (PCF for iCE40, LPF for ECP5) are generated.

use serde::Serialize;
use std::fmt::Write;
pub use systole_hdl::board_ram::BoardMemory;

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

/// Where the PEs' multipliers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeProducts {
    /// DSP blocks (SB_MAC16, in dual 8x8 mode for weight-stationary pairs; MULT18X18D),
    /// registers inside.
    Dsp,
    /// Logic (LUTs and carry chains), the same registers in flip-flops: the array then
    /// places as one compact grid instead of along the device's DSP rows. The requantizer's
    /// products stay in DSP blocks.
    Logic,
}

impl std::str::FromStr for PeProducts {
    type Err = UnknownPeProducts;
    fn from_str(s: &str) -> Result<Self, UnknownPeProducts> {
        match s {
            "dsp" => Ok(Self::Dsp),
            "logic" => Ok(Self::Logic),
            _ => Err(UnknownPeProducts(s.into())),
        }
    }
}

/// A name that is not a [`PeProducts`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither `dsp` nor `logic`")]
pub struct UnknownPeProducts(pub String);

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
    /// Instructions per unit memory when the build does not say: what fits beside the
    /// board's preset.
    pub default_instr_depth: usize,
    /// The fastest UART rate the board's USB-serial bridge takes: the default rate of a
    /// build is the fastest standard rate up to it that the core clock makes.
    pub max_baud: u32,
    /// What the board memory is made of.
    pub memory: BoardMemory,
    /// KiB of board memory when the build does not say.
    pub default_memory_kib: usize,
    /// Where the PEs' multipliers go when the build does not say.
    pub default_pe_products: PeProducts,
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
            // The UP5K's 30 block RAMs: 12 for the instruction memories at 32 (64-bit
            // parts), 4 for 2 KiB of board memory, the rest for the scratchpads. The four
            // SPRAMs (128 KiB, `--memory spram`) do not fit beside the preset yet: its
            // DRAM addresses grow from 11 to 17 bits (5,638 of 5,280 logic cells).
            default_instr_depth: 32,
            // The FT2232H takes up to 12 Mbaud; 3 Mbaud is the fastest standard rate a
            // 30 MHz core makes (10 clocks per bit).
            max_baud: 3_000_000,
            memory: BoardMemory::BlockRam,
            default_memory_kib: 2,
            default_pe_products: PeProducts::Dsp,
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
            default_instr_depth: 64,
            // The FT231X takes 3 Mbaud, but the preset built with it (33 clocks per bit)
            // placed at 99.89 MHz, missing its 100 (seed 1; the slowest path the host
            // bridge's memory address into the board memory's bank rows, no UART logic), so
            // the default stays 115200 until the preset meets 100 MHz with it.
            max_baud: 115_200,
            memory: BoardMemory::BlockRam,
            default_memory_kib: 16,
            // The 85F's 156 multipliers lie in three rows across the die: an array that
            // fills them (the 12x12 preset) is stretched along those rows, its partial sums
            // wired across tens of tiles, and did not route in 150 minutes. In logic the
            // array places as one grid and routes in minutes (README, FPGA).
            default_pe_products: PeProducts::Logic,
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
            default_instr_depth: 64,
            // No USB-serial bridge on the board (the UART is on header pins): 1 Mbaud, which
            // the common adapters (FT232R, CP2102, CH340) take.
            max_baud: 1_000_000,
            memory: BoardMemory::BlockRam,
            default_memory_kib: 16,
            default_pe_products: PeProducts::Dsp,
        },
    ]
}

/// The board named `name`, or the list of names to choose from.
pub fn board(name: &str) -> Result<Board, UnknownBoard> {
    let all = boards();
    let choices: Vec<&'static str> = all.iter().map(|b| b.name).collect();
    all.into_iter().find(|b| b.name == name).ok_or_else(|| UnknownBoard { name: name.into(), choices })
}

/// A board name that is not one of [`boards`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown board `{name}`; choose one of: {}", choices.join(", "))]
pub struct UnknownBoard {
    /// The name given.
    pub name: String,
    /// The boards' names.
    pub choices: Vec<&'static str>,
}

impl Board {
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
