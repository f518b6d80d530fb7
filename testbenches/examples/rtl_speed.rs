//! Simulated clock cycles per second of the four ways to run the accelerator on the same
//! 8x8 layer: the cycle-accurate simulator (`systole-sim`), rust-hdl's simulator, Icarus
//! and Verilator on the emitted Verilog. Each RTL run is checked against the simulator
//! first, so the figures are for runs that agree bit for bit and cycle for cycle.
//!
//! `cargo run --release -p systole-testbenches --example rtl_speed`

use std::time::Instant;
use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::ArchConfig;
use systole_testbenches::conv_layer;
use systole_testbenches::cosim::{run_rust_hdl, run_verilog, Ladder};
use systole_testbenches::tools::{scratch, Simulator};

fn main() {
    let arch = ArchConfig { act_sram_kib: 16, wgt_sram_kib: 8, acc_sram_kib: 8, ..ArchConfig::preset_8x8() };
    let shape = ConvShape { n: 1, h: 14, w: 14, c: 32, k: 32, r: 3, s: 3, stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups: 1 };
    let layer = conv_layer("conv3x3_14x14x32", LayerOp::Conv, shape, 1, -1, Activation::Relu, true);
    let data = LayerData::random(&layer, 7);
    let ladder = Ladder::new(&arch, &layer, &data).expect("golden and simulator agree");
    let script = ladder.script(&arch);
    let clock_cycles = script.rows.len() as f64;
    println!(
        "layer {} on {} ({} instructions): program {} cycles; RTL runs clock {} cycles including host load and read-back\n",
        layer.name,
        arch.name,
        ladder.program.instrs.len(),
        ladder.cycles,
        script.rows.len()
    );
    println!("| engine | run time | simulated cycles/s | build time |\n|---|---|---|---|");

    let repeat = 200;
    let t = Instant::now();
    for _ in 0..repeat {
        systole_sim::run(&arch, &ladder.program, &[&data.input]).expect("simulates");
    }
    let sim = t.elapsed().as_secs_f64() / repeat as f64;
    println!("| systole-sim | {:.3} ms | {:.3e} | - |", sim * 1e3, ladder.cycles as f64 / sim);

    let t = Instant::now();
    let rtl = run_rust_hdl(&arch, &ladder.program, &ladder.dram, &script);
    let rust_hdl = t.elapsed().as_secs_f64();
    ladder.check(&rtl).expect("rust-hdl agrees with the simulator");
    println!("| rust-hdl | {:.2} s | {:.3e} | - |", rust_hdl, clock_cycles / rust_hdl);

    for sim in [Simulator::Icarus, Simulator::Verilator] {
        let dir = scratch(&format!("rtl_speed_{sim:?}"));
        let t = Instant::now();
        let (rtl, run) = run_verilog(sim, &arch, &ladder.program, &ladder.dram, &script, &dir).expect("tool runs");
        let total = t.elapsed().as_secs_f64();
        ladder.check(&rtl).expect("the Verilog agrees with the simulator");
        let run = run.as_secs_f64();
        println!("| {sim:?} | {:.2} s | {:.3e} | {:.1} s |", run, clock_cycles / run, total - run);
    }
}
