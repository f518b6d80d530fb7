//! The co-simulation ladder on whole compiled layers: golden, simulator, the accelerator
//! in rust-hdl's simulator, and its Verilog under Icarus must produce the same output
//! bytes, and the RTL's cycle counter and every instruction's completion cycle must equal
//! the timing model's.

use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};
use systole_testbenches::conv_layer;
use systole_testbenches::cosim::{run_icarus, run_rust_hdl, Ladder};
use systole_testbenches::tools::scratch;

fn small(rows: usize, cols: usize, dataflow: Dataflow, lanes: usize, latency: usize) -> ArchConfig {
    ArchConfig {
        name: format!("{rows}x{cols}"),
        rows,
        cols,
        dataflow,
        act_sram_kib: 1,
        wgt_sram_kib: 1,
        acc_sram_kib: 1,
        param_entries: 32,
        dram_bytes_per_cycle: lanes,
        dram_latency: latency,
        ..ArchConfig::default()
    }
}

fn conv(h: usize, w: usize, c: usize, k: usize, r: usize, stride: usize, pad: usize, groups: usize) -> ConvShape {
    ConvShape { n: 1, h, w, c, k, r, s: r, stride: [stride; 2], dilation: [1, 1], pad: [pad; 4], groups }
}

#[test]
fn rust_hdl_dense_conv() {
    let arch = small(2, 2, Dataflow::WeightStationary, 2, 3);
    let layer = conv_layer("c", LayerOp::Conv, conv(3, 3, 2, 3, 3, 1, 1, 1), 3, -2, Activation::Relu, true);
    let data = LayerData::random(&layer, 1);
    let ladder = Ladder::new(&arch, &layer, &data).unwrap();
    eprintln!("{} instructions, {} cycles", ladder.program.instrs.len(), ladder.cycles);
    let script = ladder.script(&arch);
    let rtl = run_rust_hdl(&arch, &ladder.program, &ladder.dram, &script);
    eprintln!(
        "rtl cycles {:?}, completions {:?}, out {:?}",
        rtl.cycles,
        rtl.completions.iter().map(Vec::len).collect::<Vec<_>>(),
        &rtl.outputs[0].data[..8]
    );
    ladder.check(&rtl).unwrap();
    let dir = scratch("cosim_dense");
    let v = run_icarus(&arch, &ladder.program, &ladder.dram, &script, &dir).unwrap();
    ladder.check(&v).unwrap();
}
