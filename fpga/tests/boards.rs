//! The boards' generated constraints and top levels: snapshotted, and accepted by the real
//! tools, which place each board's top level (PLL, UART and LEDs, around a small stand-in
//! for the accelerator) on its constrained pins and pack a bitstream.

use systole_fpga::board::{board, boards};
use systole_fpga::report::PnrReport;
use systole_fpga::tools::{build, Step};
use systole_fpga::top::{top_name, top_verilog, CORE};

#[test]
fn constraints_are_generated_per_board() {
    for b in boards() {
        insta::assert_snapshot!(b.constraints_file(), b.constraints());
    }
}

#[test]
fn unknown_board_names_the_choices() {
    assert_eq!(board("de0").unwrap_err(), "unknown board `de0`; choose one of: icebreaker, ulx3s, orangecrab");
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
    for b in boards() {
        let dir = std::env::temp_dir().join(format!("systole-fpga-pins-{}-{}", b.name, std::process::id()));
        let verilog = format!("{}{}", stand_in_core(), top_verilog(&b));
        let mut steps = vec![];
        let logs = build(&b, &verilog, &top_name(&b), &dir, &mut |step, log| steps.push((step, log.to_path_buf())))
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
        // The core's clock, through the PLL and divider where the board has them, is
        // constrained at its frequency; a divider's own clock is the oscillator's or the PLL's.
        let targets: Vec<f64> = r.clocks.iter().map(|c| c.target_mhz).collect();
        let want = if b.divide == 1 { vec![b.core_mhz()] } else { vec![b.pll_mhz(), b.core_mhz()] };
        let mut sorted = targets.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(sorted, want, "{}: clocks {:?}", b.name, r.clocks);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
