//! Hand-built programs whose cycle counts are derived here, step by step, from the cost
//! table of `docs/ARCHITECTURE.md` section 5, and whose outputs are hand-computed products.

use systole_core::isa::{Band, Buffer, DramPattern, Instr, Op, OutputStage, Sync, WordGen};
use systole_core::requant::ChannelParam;
use systole_core::{ArchConfig, Dataflow, Program};

const PARAMS: u64 = 0x100;
const WEIGHTS: u64 = 0x200;
const OUT: u64 = 0x300;
const IDENTITY: OutputStage = OutputStage { param: 0, zp: 0, lo: -128, hi: 127 };

fn arch(dataflow: Dataflow, bytes_per_cycle: usize) -> ArchConfig {
    ArchConfig { dataflow, dram_bytes_per_cycle: bytes_per_cycle, ..ArchConfig::preset_4x4() }
}

fn sync(load: u32, exec: u32) -> Sync {
    Sync { load, exec, store: 0 }
}

/// A program over a 1 KiB DRAM with an identity requantization table (bias 0, scale 1.0).
fn program(instrs: Vec<Instr>, act: &[i8], weights: &[i8]) -> (Program, Vec<u8>) {
    let mut dram = vec![0u8; 1024];
    for (d, &a) in dram.iter_mut().zip(act) {
        *d = a as u8;
    }
    for (d, &w) in dram[WEIGHTS as usize..].iter_mut().zip(weights) {
        *d = w as u8;
    }
    for e in 0..4 {
        let p = ChannelParam { bias: 0, scale_bits: 1.0f32.to_bits() }.to_bytes();
        dram[PARAMS as usize + 8 * e..][..8].copy_from_slice(&p);
    }
    let p = Program {
        arch: "test".into(),
        instrs,
        dram_size: 1024,
        dram_init: vec![],
        inputs: vec![],
        outputs: vec![],
        macs: 0,
        mapping: None,
    };
    (p, dram)
}

fn small(seed: usize, n: usize) -> Vec<i8> {
    (0..n).map(|i| ((i * 7 + seed * 3) % 7) as i8 - 3).collect()
}

fn done_cycles(arch: &ArchConfig, p: &Program, dram: &mut [u8]) -> Vec<u64> {
    systole_sim::execute(arch, p, dram).unwrap().timing.iter().map(|t| t.done).collect()
}

/// The worked example of ARCHITECTURE.md: a 1x1 conv, 16 pixels x 4 channels -> 4, on 4x4 WS.
fn pointwise_ws(b: usize) -> (ArchConfig, Program, Vec<u8>) {
    let arch = arch(Dataflow::WeightStationary, b);
    let instrs = vec![
        Instr { sync: Sync::default(), op: Op::LoadParams { dst: 0, addr: PARAMS, count: 4 } },
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Act, dst: 0, offset: 0, src: DramPattern::runs(0, 4, 16, 4) } },
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Wgt, dst: 0, offset: 0, src: DramPattern::runs(WEIGHTS, 4, 4, 4) } },
        Instr { sync: sync(3, 0), op: Op::dense_ws(WordGen::linear(0, 0), 0, false, Some(0), None) },
        Instr { sync: sync(2, 0), op: Op::dense_ws(WordGen::linear(0, 16), 0, false, None, None) },
        Instr { sync: sync(1, 2), op: Op::Store { acc: 0, dst: DramPattern::runs(OUT, 4, 16, 4), out: IDENTITY } },
    ];
    let (p, dram) = program(instrs, &small(1, 64), &small(2, 16));
    (arch, p, dram)
}

#[test]
fn pointwise_ws_cycles_and_outputs() {
    let (arch, p, mut dram) = pointwise_ws(4);
    let (l, rows, cols) = (20, 4, 4);
    let params = l + 8; // max(4 entries, 32 bytes / 4)
    let act = params + l + 16; // 16 runs of 4 bytes: 16 beats
    let wgt = act + l + 4;
    let preload = wgt + rows + (rows + cols + 1); // waits for the weights; P = rows
    let stream_start = wgt + rows; // unit free before the activations' wait (64) matters
    let stream = stream_start + 16 + (rows + cols + 1);
    let store = stream + l + 16;
    assert_eq!(done_cycles(&arch, &p, &mut dram), vec![params, act, wgt, preload, stream, store]);
    assert_eq!(store, 153);

    let (a, w) = (small(1, 64), small(2, 16));
    for m in 0..16 {
        for j in 0..4 {
            let expect: i32 = (0..4).map(|k| a[m * 4 + k] as i32 * w[k * 4 + j] as i32).sum();
            assert_eq!(dram[OUT as usize + m * 4 + j] as i8 as i32, expect, "pixel {m} channel {j}");
        }
    }
}

#[test]
fn narrow_bus_makes_transfers_beat_bound() {
    let (arch, p, mut dram) = pointwise_ws(1);
    let l = 20;
    let params = l + 32; // 32 bytes at 1 byte per cycle
    let act = params + l + 64; // 16 runs x 4 beats
    let wgt = act + l + 16;
    let preload = wgt + 4 + 9;
    let stream = wgt + 4 + 16 + 9;
    let store = stream + l + 64;
    assert_eq!(done_cycles(&arch, &p, &mut dram), vec![params, act, wgt, preload, stream, store]);
}

#[test]
fn a_deep_requantizer_lengthens_only_the_stores_wait() {
    // DRAM latency 3 with five requantizer stages: loads wait 3 cycles, the store
    // max(3, 5 + 2) = 7 (ARCHITECTURE.md sections 5 and 9).
    let (base, p, mut dram) = pointwise_ws(4);
    let arch = ArchConfig { dram_latency: 3, requant_stages: 5, ..base };
    let (l, ls, rows, cols) = (3, 7, 4, 4);
    let params = l + 8;
    let act = params + l + 16;
    let wgt = act + l + 4;
    // The exec unit waits for the weights; then the 16-word stream runs after the preload.
    let preload = wgt + rows + (rows + cols + 1);
    let stream = wgt + rows + 16 + (rows + cols + 1);
    let store = stream + ls + 16;
    assert_eq!(done_cycles(&arch, &p, &mut dram), vec![params, act, wgt, preload, stream, store]);
    // Two stages need a wait of 2 + 2 = 4; one fits in the DRAM latency of 3.
    let two = ArchConfig { requant_stages: 2, ..arch.clone() };
    assert_eq!(done_cycles(&two, &p, &mut dram).last(), Some(&(stream + 4 + 16)));
    let none = ArchConfig { requant_stages: 1, ..arch };
    assert_eq!(done_cycles(&none, &p, &mut dram).last(), Some(&(stream + l + 16)));
}

/// OS: 4 pixels (array rows) x reduction 6 -> 4 channels; the transposer builds the
/// activation words from pixel-major rows.
#[test]
fn output_stationary_cycles_and_outputs() {
    for k in [6usize, 2] {
        let arch = arch(Dataflow::OutputStationary, 4);
        let instrs = vec![
            Instr { sync: Sync::default(), op: Op::LoadParams { dst: 0, addr: PARAMS, count: 4 } },
            Instr { sync: Sync::default(), op: Op::LoadTransposed { dst: 0, pitch: 0, src: DramPattern::runs(0, k as u32, 4, k as i64) } },
            Instr {
                sync: Sync::default(),
                op: Op::Load { target: Buffer::Wgt, dst: 0, offset: 0, src: DramPattern::runs(WEIGHTS, 4, k as u32, 4) },
            },
            Instr { sync: sync(3, 0), op: Op::MatmulOs { a: WordGen::linear(0, k as u32), b: 0, acc: 0, accumulate: false, band: None } },
            Instr { sync: sync(1, 1), op: Op::Store { acc: 0, dst: DramPattern::runs(OUT, 4, 4, 4), out: IDENTITY } },
        ];
        let (x, w) = (small(3, 4 * k), small(4, 4 * k));
        let (p, mut dram) = program(instrs, &x, &w);
        let (l, rows, cols) = (20u64, 4u64, 4u64);
        let params = l + 8;
        // one group: gather 4 runs of k bytes in 4 * ceil(k / 4) beats, then drain k words
        let transposed = params + l + 4 * (k as u64).div_ceil(4) + k as u64;
        let wgt = transposed + l + k as u64;
        let matmul = wgt + (k as u64).max(rows) + (2 * rows + cols);
        let store = matmul + l + 4;
        assert_eq!(done_cycles(&arch, &p, &mut dram), vec![params, transposed, wgt, matmul, store], "k = {k}");
        for i in 0..4 {
            for j in 0..4 {
                let expect: i32 = (0..k).map(|t| x[i * k + t] as i32 * w[t * 4 + j] as i32).sum();
                assert_eq!(dram[OUT as usize + i * 4 + j] as i8 as i32, expect, "k {k} pixel {i} channel {j}");
            }
        }
    }
}

/// A 3-tap 1-D convolution as one band matmul: a band preload reads one weight word and
/// fills the shadow tile in `rows` cycles like a full preload; a window of 4 pixels yields
/// 2 outputs.
#[test]
fn band_preload_streams_like_a_full_preload() {
    let arch = arch(Dataflow::WeightStationary, 4);
    let band = Band { stride: 1, taps: 3, width: 2 };
    let instrs = vec![
        Instr { sync: Sync::default(), op: Op::LoadParams { dst: 0, addr: PARAMS, count: 4 } },
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Act, dst: 0, offset: 0, src: DramPattern::runs(0, 4, 3, 4) } },
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Wgt, dst: 0, offset: 0, src: DramPattern::runs(WEIGHTS, 3, 1, 4) } },
        Instr { sync: sync(3, 0), op: Op::dense_ws(WordGen::linear(0, 0), 0, false, Some(0), Some(band)) },
        Instr { sync: sync(2, 0), op: Op::dense_ws(WordGen::linear(0, 3), 0, false, None, None) },
        Instr { sync: sync(1, 2), op: Op::Store { acc: 0, dst: DramPattern::runs(OUT, 2, 3, 2), out: IDENTITY } },
    ];
    let (x, taps) = (small(5, 12), small(6, 3));
    let (p, mut dram) = program(instrs, &x, &taps);
    let l = 20;
    let params = l + 8;
    let act = params + l + 3;
    let wgt = act + l + 1;
    let preload = wgt + 4 + 9;
    let stream = wgt + 4 + 3 + 9;
    let store = stream + l + 3;
    assert_eq!(done_cycles(&arch, &p, &mut dram), vec![params, act, wgt, preload, stream, store]);
    for m in 0..3 {
        for n in 0..2 {
            let expect: i32 = (0..3).map(|s| x[m * 4 + n + s] as i32 * taps[s] as i32).sum();
            assert_eq!(dram[OUT as usize + m * 2 + n] as i8 as i32, expect, "window {m} output {n}");
        }
    }
}

/// Back-to-back matmuls pay the pipeline latency once: the second starts when the unit is
/// free, not when the first is done.
#[test]
fn fill_and_drain_are_paid_once_per_stream() {
    let arch = arch(Dataflow::WeightStationary, 4);
    let mm = |acc, preload| Op::dense_ws(WordGen::linear(0, 8), acc, false, preload, None);
    let instrs = vec![
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Act, dst: 0, offset: 0, src: DramPattern::runs(0, 4, 8, 4) } },
        Instr { sync: Sync::default(), op: Op::Load { target: Buffer::Wgt, dst: 0, offset: 0, src: DramPattern::runs(WEIGHTS, 4, 8, 4) } },
        Instr { sync: sync(2, 0), op: Op::dense_ws(WordGen::linear(0, 0), 0, false, Some(0), None) },
        Instr { sync: sync(2, 0), op: mm(0, Some(4)) },
        Instr { sync: sync(2, 0), op: mm(8, None) },
    ];
    let (p, mut dram) = program(instrs, &small(7, 32), &small(8, 32));
    let act = 20 + 8;
    let wgt = act + 20 + 8;
    let first = wgt + 4;
    assert_eq!(done_cycles(&arch, &p, &mut dram), vec![act, wgt, first + 9, first + 8 + 9, first + 16 + 9]);
}
