//! The UART: the transmitter's line equals the 8N1 waveform built here from the bytes sent
//! (start bit, 8 data bits LSB first, stop bit, `clocks_per_bit` cycles each), and the
//! receiver recovers bytes from such waveforms, ignores a glitch shorter than half a bit
//! and drops a frame whose stop bit is 0; in rust-hdl's simulator and under Icarus.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::uart::{UartRx, UartTx};
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::tools::{scratch, verilator_lint, Simulator, VectorRun};

/// The 10 line levels of one 8N1 frame.
fn frame(byte: u8) -> Vec<bool> {
    std::iter::once(false).chain((0..8).map(|i| byte >> i & 1 == 1)).chain(std::iter::once(true)).collect()
}

/// The receiver's stimulus: random frames (some with a broken stop bit), idle gaps and
/// short glitches; returns the line per cycle and the bytes a correct receiver reports.
fn rx_case(cpb: usize, seed: u64) -> (Vec<bool>, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut line = vec![true; 3 * cpb];
    let mut expect = vec![];
    for _ in 0..24 {
        match rng.gen_range(0..10) {
            0 => {
                line.resize(line.len() + (cpb - 1) / 2 - 1, false);
                line.resize(line.len() + 2 * cpb, true);
            }
            k => {
                let byte: u8 = rng.gen();
                let mut bits = frame(byte);
                if k == 1 {
                    bits[9] = false;
                } else {
                    expect.push(byte);
                }
                for b in bits {
                    line.resize(line.len() + cpb, b);
                }
                // A broken stop bit must not look like the next start bit.
                let gap = if k == 1 { 2 * cpb } else { rng.gen_range(0..2 * cpb) };
                line.resize(line.len() + gap, true);
            }
        }
    }
    line.resize(line.len() + 2 * cpb, true);
    (line, expect)
}

/// The transmitter's stimulus: `(data, send)` per cycle, sending each byte in a random
/// cycle after the previous frame; returns it with the expected line per cycle.
fn tx_case(cpb: usize, seed: u64) -> (Vec<(u8, bool)>, Vec<bool>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut stim, mut line) = (vec![], vec![]);
    for _ in 0..16 {
        for _ in 0..rng.gen_range(0..3 * cpb) {
            stim.push((rng.gen(), false));
            line.push(true);
        }
        let byte: u8 = rng.gen();
        stim.push((byte, true));
        line.push(true);
        for b in frame(byte) {
            for _ in 0..cpb {
                stim.push((rng.gen(), false));
                line.push(b);
            }
        }
    }
    (stim, line)
}

const CASES: [(usize, u64); 4] = [(4, 1), (5, 2), (13, 3), (16, 4)];

#[test]
fn receiver_recovers_bytes() {
    for (cpb, seed) in CASES {
        let (line, expect) = rx_case(cpb, seed);
        let mut rx = UartRx::new(cpb);
        rx.connect_all();
        let mut got = vec![];
        for &l in &line {
            rx.rx.next = l;
            assert!(settle(&mut rx));
            if rx.valid.val() {
                got.push(rx.data.val().index() as u8);
            }
            clock_cycle(&mut rx, |r| &mut r.clock);
        }
        assert_eq!(got, expect, "rust-hdl, {cpb} clocks per bit");
        let dir = scratch(&format!("uart-rx-{cpb}"));
        let rtl = emit(&mut UartRx::new(cpb));
        let inputs = [("rx".to_string(), 1)];
        let outputs = [("valid".to_string(), 1), ("data".to_string(), 9)];
        let rows: Vec<Vec<i64>> = line.iter().map(|&l| vec![l as i64]).collect();
        let run = VectorRun { dir: &dir, rtl: &rtl, clocked: true, inputs: &inputs, outputs: &outputs, volatile: &[] };
        let (outs, _) = run.run(Simulator::Icarus, &rows).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<u8> = outs.iter().filter(|o| o[0] == Some(1)).map(|o| o[1].unwrap_or(-1) as u8).collect();
        assert_eq!(got, expect, "Icarus, {cpb} clocks per bit");
    }
}

#[test]
fn transmitter_drives_the_8n1_waveform() {
    for (cpb, seed) in CASES {
        let (stim, expect) = tx_case(cpb, seed);
        let mut tx = UartTx::new(cpb);
        tx.connect_all();
        let mut line = vec![];
        for &(data, send) in &stim {
            tx.data.next = (data as u64).into();
            tx.send.next = send;
            assert!(settle(&mut tx));
            assert!(!send || tx.ready.val(), "sent while busy");
            line.push(tx.tx.val());
            clock_cycle(&mut tx, |t| &mut t.clock);
        }
        assert_eq!(line, expect, "rust-hdl, {cpb} clocks per bit");
        let dir = scratch(&format!("uart-tx-{cpb}"));
        let rtl = emit(&mut UartTx::new(cpb));
        let inputs = [("data".to_string(), 8), ("send".to_string(), 1)];
        let outputs = [("tx".to_string(), 1)];
        let rows: Vec<Vec<i64>> = stim.iter().map(|&(d, s)| vec![d as i64, s as i64]).collect();
        let run = VectorRun { dir: &dir, rtl: &rtl, clocked: true, inputs: &inputs, outputs: &outputs, volatile: &[] };
        let (outs, _) = run.run(Simulator::Icarus, &rows).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<bool> = outs.iter().map(|o| o[0] == Some(1)).collect();
        assert_eq!(got, expect, "Icarus, {cpb} clocks per bit");
    }
}

#[test]
fn uart_lints() {
    let waivers =
        [("DECLFILENAME", "rust-hdl names the top module `top`"), ("WIDTH", "rust-hdl writes integer literals as 32-bit constants")];
    for (name, rtl) in [("tx", emit(&mut UartTx::new(104))), ("rx", emit(&mut UartRx::new(104)))] {
        let dir = scratch(&format!("uart-lint-{name}"));
        verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
