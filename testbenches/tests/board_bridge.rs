//! The board's host bridge in RTL (rust-hdl's simulator) against `systole-fpga`'s host
//! client, over a simulated serial line: identity, memory writes and reads, an unknown
//! command, and a whole compiled layer whose output must equal the golden model's and
//! whose cycle count, as the board's counter reports it, must equal the simulator's.
//! The layer runs are replayed on the board's Verilog under Verilator, whose serial output
//! must equal rust-hdl's cycle for cycle, and the Verilog passes Verilator's lint.

use std::io::{Read, Write};
use systole_core::bridge::{fingerprint, NAK};
use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};
use systole_fpga::host::Host;
use systole_hdl::board::{BoardCore, DramBoardCore};
use systole_hdl::verilog::emit;
use systole_testbenches::board_uart::{DramBoard, SimulatedBoard};
use systole_testbenches::native_port_model::NativePortModel;
use systole_testbenches::tools::{scratch, verilator_lint, Simulator, VectorRun};
use systole_testbenches::{conv_layer, golden_vs_sim};

const CLOCKS_PER_BIT: usize = 4;

/// Verilator warnings waived for the board's Verilog: the accelerator's (see
/// `rtl_top.rs`) and the bridge's.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    (
        "UNUSEDSIGNAL",
        "the accelerator's waived unused signals, and argument bits of the bridge's shift register that a command does not use",
    ),
    ("WIDTH", "rust-hdl writes integer literals as 32-bit constants"),
    ("UNOPTFLAT", "the accelerator's OS engine (see rtl_top.rs)"),
    ("UNUSEDPARAM", "rust-hdl declares the bridge's state constants in the board module too, which holds the bridge"),
];

fn arch(dataflow: Dataflow, lanes: usize) -> ArchConfig {
    ArchConfig {
        name: format!("2x2-{dataflow}-b{lanes}"),
        rows: 2,
        cols: 2,
        dataflow,
        act_sram_kib: 1,
        wgt_sram_kib: 1,
        acc_sram_kib: 1,
        param_entries: 32,
        dram_bytes_per_cycle: lanes,
        dram_latency: 3,
        ..ArchConfig::default()
    }
}

fn board(arch: &ArchConfig, instr_depth: usize, memory_bytes: usize) -> Host<SimulatedBoard> {
    Host::new(SimulatedBoard::new(BoardCore::new(arch, instr_depth, memory_bytes, CLOCKS_PER_BIT), CLOCKS_PER_BIT))
}

#[test]
fn identifies_and_round_trips_memory() {
    let a = arch(Dataflow::WeightStationary, 4);
    let mut host = board(&a, 8, 256);
    let id = host.identify().unwrap();
    assert_eq!((id.arch, id.instr_depth, id.clocks_per_bit, id.memory_bytes), (fingerprint(&a), 8, CLOCKS_PER_BIT as u16, 256));
    // Past the end of the 256 bytes the host refuses, naming the size and the fix.
    let bytes: Vec<u8> = (0..37u32).map(|i| (i * 97 + 13) as u8).collect();
    let e = host.write_memory(230, &bytes).unwrap_err().to_string();
    assert!(e.contains("holds 256 bytes") && e.contains("--mem-kib"), "{e}");
    assert!(host.read_memory(250, 7).unwrap_err().to_string().contains("holds 256 bytes"));
    // A host that has not asked does not know the size: the board decodes the address
    // only as far as its memory, so an access past the end wraps (unaligned, across banks).
    let mut host = Host::new(host.into_inner());
    host.write_memory(230, &bytes).unwrap();
    assert_eq!(host.read_memory(230, 37).unwrap(), bytes);
    host.write_memory(3, &[0xa5, 0x5a]).unwrap();
    assert_eq!(host.read_memory(0, 6).unwrap(), [bytes[26], bytes[27], bytes[28], 0xa5, 0x5a, bytes[31]]);
    assert_eq!(host.read_memory(5, 0).unwrap(), Vec::<u8>::new());
}

#[test]
fn unknown_commands_get_a_nak_and_change_nothing() {
    let a = arch(Dataflow::OutputStationary, 2);
    let mut host = board(&a, 4, 64);
    host.write_memory(10, &[1, 2, 3]).unwrap();
    let mut port = host.into_inner();
    port.write_all(b"x").unwrap();
    port.flush().unwrap();
    let mut answer = [0u8];
    port.read_exact(&mut answer).unwrap();
    assert_eq!(answer[0], NAK);
    let mut host = Host::new(port);
    assert_eq!(host.read_memory(10, 3).unwrap(), [1, 2, 3]);
    assert_eq!(host.identify().unwrap().arch, fingerprint(&a));
    // Block RAM never holds the core's clock: `CMD_STALLS` is unknown to this board.
    assert_eq!(host.stalls().unwrap(), None);
}

/// A board whose memory is a DRAM controller's native port (LiteDRAM's, on the ECP5
/// boards), here a behavioural port answering after random delays, with two lanes that
/// straddle its 4-byte words: the host protocol round-trips memory, and a layer's output
/// equals golden's while the core's cycle counter equals the simulator's; the board
/// answers the cycles it held the core's clock during the run, which with the counted
/// cycles make up every cycle the run took.
#[test]
fn runs_a_layer_on_a_board_with_dram_behind_a_native_port() {
    let a = ArchConfig { name: "2x2-ws-b2-dram".into(), ..arch(Dataflow::WeightStationary, 2) };
    let layer = conv_layer("layer", LayerOp::Gemm, ConvShape::gemm(1, 3, 5, 3), 3, -2, Activation::Relu, true);
    let data = LayerData::random(&layer, 7);
    let outcome = golden_vs_sim(&a, &layer, &data).unwrap();
    let program = &outcome.program;
    let dram = program.dram_with_inputs(&[&data.input]);
    let memory = dram.len().next_power_of_two().max(256);
    let depth = systole_testbenches::cosim::instr_depth(program);
    let core = DramBoardCore::new(&a, depth, memory, 4, CLOCKS_PER_BIT);
    let junk: Vec<u8> = (0..memory).map(|i| (i * 31 + 7) as u8).collect();
    let mut host = Host::new(SimulatedBoard::new(DramBoard::new(core, NativePortModel::new(junk, 4, 11)), CLOCKS_PER_BIT));
    let id = host.identify().unwrap();
    assert_eq!((id.arch, id.memory_bytes), (fingerprint(&a), memory as u32));
    host.write_memory(13, &[9, 8, 7, 6, 5]).unwrap();
    assert_eq!(host.read_memory(12, 7).unwrap(), [(12 * 31 + 7) as u8, 9, 8, 7, 6, 5, (18 * 31 + 7) as u8]);
    let run = host.run_program(&id, &a, program, &dram).unwrap();
    assert_eq!(outcome.golden.first_mismatch(&program.outputs[0].read(&run.dram)), None, "board output differs from golden");
    assert_eq!(run.cycles, outcome.report.cycles, "board cycle counter differs from the simulator");
    let stalls = host.stalls().unwrap().expect("a DRAM board counts its stalls");
    let board = &host.port_mut().core;
    assert_eq!(stalls, board.running_cycles - board.running_ticks, "every held cycle of the run is a counted stall");
    // `running` spans the program's cycles and the one in which `finished` rises.
    assert_eq!(board.running_ticks, run.cycles + 1, "the core's clock ticked once per counted cycle");
    assert!(stalls > 0, "a native port with delays holds the core");
    // The same program again: the same cycles, and the stalls of this run alone.
    let (cycles_before, ticks_before) = (board.running_cycles, board.running_ticks);
    assert_eq!(host.load_and_start(&id, &a, program).unwrap(), run.cycles);
    let again = host.stalls().unwrap().unwrap();
    let board = &host.port_mut().core;
    assert_eq!(again, (board.running_cycles - cycles_before) - (board.running_ticks - ticks_before), "stalls of the last run only");
    eprintln!(
        "2x2 GEMM on DRAM: {} cycles + {stalls} stalls, then + {again}; {} of {} free cycles ticked",
        run.cycles, board.ticks, board.cycles
    );
}

/// Runs one layer through the host client on the simulated board; see the module doc.
fn runs_a_layer_as_golden_and_the_simulator_say(a: ArchConfig, op: LayerOp, shape: ConvShape) {
    let (dataflow, lanes) = (&a.name, a.dram_bytes_per_cycle);
    let layer = conv_layer("layer", op, shape, 3, -2, Activation::Relu, true);
    let data = LayerData::random(&layer, 7);
    let outcome = golden_vs_sim(&a, &layer, &data).unwrap();
    assert_eq!(outcome.mismatch(), None);
    let program = &outcome.program;
    let dram = program.dram_with_inputs(&[&data.input]);
    let memory = dram.len().next_power_of_two().max(2 * lanes);
    let depth = systole_testbenches::cosim::instr_depth(program);
    let mut host = board(&a, depth, memory);
    let id = host.identify().unwrap();
    let run = host.run_program(&id, &a, program, &dram).unwrap();
    let out = program.outputs[0].read(&run.dram);
    assert_eq!(outcome.golden.first_mismatch(&out), None, "{dataflow}: board output differs from golden");
    assert_eq!(run.cycles, outcome.report.cycles, "{dataflow}: board cycle counter differs from the simulator");
    let port = host.into_inner();
    eprintln!(
        "{dataflow}: {} instructions, {} bytes, {} cycles on the board, {} UART cycles",
        program.instrs.len(),
        dram.len(),
        run.cycles,
        port.cycles
    );
    let rtl = emit(&mut BoardCore::new(&a, depth, memory, CLOCKS_PER_BIT));
    let dir = scratch(&format!("board-bridge-{dataflow}"));
    let inputs = [("uart_rx".to_string(), 1)];
    let outputs = [("uart_tx".to_string(), 1)];
    let rows: Vec<Vec<i64>> = port.trace.iter().map(|&(rx, _)| vec![rx as i64]).collect();
    let replay = VectorRun { dir: &dir, rtl: &rtl, clocked: true, inputs: &inputs, outputs: &outputs, volatile: &[] };
    let (outs, took) = replay.run(Simulator::Verilator, &rows).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{dataflow}: Verilator replay {took:?}");
    let first_difference = port.trace.iter().zip(&outs).position(|(&(_, tx), o)| o[0] != Some(tx as i64));
    assert_eq!(first_difference, None, "{dataflow}: the Verilog's uart_tx differs from rust-hdl's");
}

#[test]
fn board_verilog_lints() {
    let a = arch(Dataflow::WeightStationary, 4);
    let rtl = emit(&mut BoardCore::new(&a, 16, 1024, 104));
    let dir = scratch("board-lint");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{e}"));
    let rtl = emit(&mut DramBoardCore::new(&arch(Dataflow::WeightStationary, 2), 16, 1 << 25, 4, 104));
    let dir = scratch("board-dram-lint");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("DRAM board: {e}"));
}

/// Behind `--ignored` to keep the default suite short: its arch and layer are the DRAM
/// board's (`runs_a_layer_on_a_board_with_dram_behind_a_native_port`), and the depthwise
/// board replays its run in Verilator.
#[test]
#[ignore = "slow (about 100 s): the DRAM board runs the same GEMM on the same arch"]
fn runs_a_gemm_on_a_weight_stationary_board() {
    runs_a_layer_as_golden_and_the_simulator_say(arch(Dataflow::WeightStationary, 2), LayerOp::Gemm, ConvShape::gemm(1, 3, 5, 3));
}

/// The small-FPGA variant: instructions fetched 64 bits a cycle (the bridge writes each
/// part as its 8 bytes arrive), no transposer (a depthwise layer as a grouped GEMM), one
/// requantizer for the one DRAM lane, a DRAM latency that gives it two stages.
#[test]
fn runs_a_depthwise_layer_on_a_small_fpga_board() {
    let a = ArchConfig {
        name: "2x2-ws-b1-f8-nt".into(),
        fetch_cycles: 8,
        transposer: false,
        dram_latency: 4,
        ..arch(Dataflow::WeightStationary, 1)
    };
    let dw = ConvShape { n: 1, h: 3, w: 3, c: 3, k: 3, r: 3, s: 3, stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups: 3 };
    runs_a_layer_as_golden_and_the_simulator_say(a, LayerOp::Depthwise, dw);
}

#[test]
fn runs_a_convolution_on_an_output_stationary_board() {
    let conv = ConvShape { n: 1, h: 3, w: 4, c: 3, k: 3, r: 3, s: 3, stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups: 1 };
    runs_a_layer_as_golden_and_the_simulator_say(arch(Dataflow::OutputStationary, 4), LayerOp::Conv, conv);
}
