//! The boards' generated constraints and top levels: snapshotted, and accepted by the real
//! tools, which place each board's top level (PLL at a fast clock, UART and LEDs, around a small stand-in
//! for the accelerator) on its constrained pins and pack a bitstream.

use systole_fpga::board::{board, boards};
use systole_fpga::clock::{plan, ClockSource};
use systole_fpga::litedram::InitStep;
use systole_fpga::report::PnrReport;
use systole_fpga::tools::{build, FlowSettings, Step, NEXTPNR_SEED};
use systole_fpga::top::{top_name, top_verilog, CORE};

#[test]
fn constraints_are_generated_per_board() {
    for b in boards() {
        insta::assert_snapshot!(b.constraints_file(), b.constraints());
    }
}

#[test]
fn unknown_board_names_the_choices() {
    assert_eq!(board("de0").unwrap_err().to_string(), "unknown board `de0`; choose one of: icebreaker, ulx3s, orangecrab");
}

/// A stand-in with the board core's ports: a UART loopback and a counter on the status.
fn stand_in_core() -> String {
    format!(
        "module {CORE}(input clock, input uart_rx, output uart_tx, output running, output finished);\n  \
         reg [23:0] count = 0;\n  always @(posedge clock) count <= count + 1;\n  \
         assign uart_tx = uart_rx;\n  assign running = count[23];\n  assign finished = count[22];\nendmodule\n"
    )
}

#[test]
fn every_board_builds_a_bitstream_on_its_pins() {
    // Each board's PLL set for a fast core clock.
    for (b, mhz) in boards().into_iter().zip([30.0, 100.0, 100.0]) {
        let clock = plan(&b, mhz).unwrap();
        assert!(matches!(clock.source, ClockSource::Ice40Pll(_) | ClockSource::Ecp5Pll(_)) && clock.mhz == mhz, "{clock:?}");
        let dir = std::env::temp_dir().join(format!("systole-fpga-pins-{}-{}", b.name, std::process::id()));
        let verilog = format!("{}{}", stand_in_core(), top_verilog(&b, &clock));
        let mut steps = vec![];
        let settings = FlowSettings { core_mhz: clock.mhz, pe_products: b.default_pe_products, seed: NEXTPNR_SEED };
        let logs = build(&b, settings, &verilog, &top_name(&b), "", &dir, &mut |step, log| steps.push((step, log.to_path_buf())))
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        // Each step was announced, in order, with the log it then wrote.
        assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), [Step::Synthesis, Step::PlaceAndRoute, Step::Packing]);
        assert!(steps.iter().all(|(_, log)| log.is_file()), "{steps:?}");
        let size = std::fs::metadata(&logs.bitstream).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{}: bitstream of {size} bytes", b.name);
        // nextpnr's device totals are the independent check of the board table's.
        let r = PnrReport::parse(b.family, &logs.pnr).unwrap_or_else(|| panic!("{}: no utilisation in nextpnr's log", b.name));
        let res = b.resources;
        assert_eq!((r.luts.total, r.brams.total, r.dsps.total), (res.luts, res.brams, res.dsps), "{}", b.name);
        assert_eq!(r.sprams.map_or(0, |s| s.total), res.sprams, "{}", b.name);
        assert!(r.luts.used > 0 && r.clocks.iter().all(|c| c.pass), "{}: {r:?}", b.name);
        // The PLL's output is the one clock. nextpnr derives its frequency from the PLL's
        // parameters and the oscillator's, the independent check of `plan` (to the 10 kHz
        // its log prints: 48 MHz's period rounds to 20.833 ns).
        assert_eq!(r.clocks.len(), 1, "{}: clocks {:?}", b.name, r.clocks);
        assert!((r.clocks[0].target_mhz - mhz).abs() <= 0.011, "{}: clocks {:?}", b.name, r.clocks);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// LiteDRAM generates the ULX3S's SDRAM controller for the board and with its memory model
/// (which `cli/tests/board_sim.rs` runs under Verilator with the accelerator), and the
/// OrangeCrab's DDR3 controller; the SDR chip's initialization is read from its headers.
#[test]
fn litedram_generates_the_boards_memory_controllers() {
    let dir = std::env::temp_dir().join(format!("systole-litedram-{}", std::process::id()));
    let all = systole_fpga::board::boards();
    let (ulx3s, orangecrab) = (&all[1], &all[2]);
    let sim = systole_fpga::litedram::generate(ulx3s, 50.0, true, &dir.join("ulx3s-sim")).unwrap();
    let text = std::fs::read_to_string(&sim).unwrap();
    // The native port, 128 bits of data on 2M words; the model's memory: four banks of 4M
    // 16-bit words.
    assert!(text.contains("output wire  [127:0] user_port_acc_rdata_data"), "{sim:?}");
    assert!(text.contains("input  wire   [20:0] user_port_acc_cmd_addr"), "{sim:?}");
    assert_eq!(text.matches(&"reg [15:0] mem".to_string()).count(), 4);
    assert!(text.contains("[0:4194303];"));
    let hw = std::fs::read_to_string(systole_fpga::litedram::generate(ulx3s, 50.0, false, &dir.join("ulx3s")).unwrap()).unwrap();
    assert!(hw.contains("sdram_ras_n") && hw.contains("[15:0] sdram_dq"), "the SDRAM pads");
    let ddr3 =
        std::fs::read_to_string(systole_fpga::litedram::generate(orangecrab, 48.0, false, &dir.join("orangecrab")).unwrap()).unwrap();
    assert!(ddr3.contains("ddram_dqs_p") && ddr3.contains("[127:0] user_port_acc_rdata_data"), "the DDR3 pads and a 128-bit port");
    // The SDR chip's initialization, read from the generated headers, against the JEDEC
    // SDR power-up (CKE high and 200 us, precharge all, mode register, precharge, two
    // auto refreshes, mode register: CAS latency 2, burst length 1, LiteDRAM's MT48LC16M16
    // at 50 MHz), at the generated registers' addresses (DFII control 0x800, then pi0's
    // command, command issue, address and bank address; init_done at 0).
    let steps = systole_fpga::litedram::init_steps(&dir.join("ulx3s")).unwrap();
    let w = |addr, value| InitStep::Write { addr, value };
    let command = |address, command| vec![w(0x80c, address), w(0x810, 0), w(0x804, command), w(0x808, 1)];
    let (cs, we, cas, ras) = (1, 2, 4, 8);
    let mut want = vec![w(0x80c, 0), w(0x810, 0), w(0x800, 0b1110), InitStep::Wait(20000)];
    want.extend(command(0x400, ras | we | cs));
    want.extend(command(0x120, ras | cas | we | cs));
    want.push(InitStep::Wait(200));
    want.extend(command(0x400, ras | we | cs));
    for _ in 0..2 {
        want.extend(command(0, ras | cas | cs));
        want.push(InitStep::Wait(4));
    }
    want.extend(command(0x20, ras | cas | we | cs));
    want.extend([InitStep::Wait(200), w(0, 1), w(0x800, 1)]);
    assert_eq!(steps, want);
    // The DDR3's: reset released and 500 us at 100 MHz before CKE, the four mode registers
    // (MR2, MR3, MR1, MR0 by bank address) and ZQ calibration; then hardware control. Its
    // DFII registers are at 0x1000, after the DDR3 PHY's.
    let ddr3 = systole_fpga::litedram::init_steps(&dir.join("orangecrab")).unwrap();
    assert_eq!(ddr3[..4], [w(0x100c, 0), w(0x1010, 0), w(0x1000, 0b1100), InitStep::Wait(50000)]);
    let mut bank = None;
    let mut banks = vec![];
    for step in &ddr3 {
        match *step {
            InitStep::Write { addr: 0x1010, value } => bank = Some(value),
            s if s == w(0x1004, ras | cas | we | cs) => banks.extend(bank),
            _ => {}
        }
    }
    assert_eq!(banks, [2, 3, 1, 0], "{ddr3:?}");
    assert_eq!(ddr3.last(), Some(&w(0x1000, 1)));
    let _ = std::fs::remove_dir_all(&dir);
}
