//! The WS exec engine: random `MatmulWs` sequences (full and band preloads, accumulation,
//! two-level word sequences) issued back to back, in rust-hdl's simulator and as Verilog
//! under Icarus. The accumulator must hold what the ISA's semantics give, and every
//! instruction must complete in exactly the cycle the timing model (docs/ARCHITECTURE.md
//! section 5) says.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::{Band, Instr, Op, Sync, WordGen};
use systole_core::timing::schedule;
use systole_core::ArchConfig;
use systole_hdl::exec_ws::ExecWs;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::tools::{icarus_vectors, scratch, verilator_lint, yosys_synth};

const ACT_WORDS: usize = 48;
const WGT_WORDS: usize = 24;
const ACC_ROWS: usize = 24;

struct Case {
    rows: usize,
    cols: usize,
    act: Vec<Vec<i8>>,
    wgt: Vec<Vec<i8>>,
    ops: Vec<Op>,
}

fn random_case(rows: usize, cols: usize, n: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let act = (0..ACT_WORDS).map(|_| (0..rows).map(|_| rng.gen()).collect()).collect();
    let wgt = (0..WGT_WORDS).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect();
    let mut ops = vec![];
    for i in 0..n {
        let (ic, oc) = (rng.gen_range(0..4u32), rng.gen_range(0..3u32));
        let (is, os) = (rng.gen_range(0..4u32), rng.gen_range(0..6u32));
        let span = ic.saturating_sub(1) * is + oc.saturating_sub(1) * os;
        let a = WordGen {
            start: rng.gen_range(0..ACT_WORDS as u32 - span),
            inner_count: ic,
            inner_stride: is,
            outer_count: oc,
            outer_stride: os,
        };
        let m = a.len() as usize;
        let preload = (i == 0 || rng.gen_bool(0.6)).then(|| rng.gen_range(0..=(WGT_WORDS - rows) as u32));
        let band = (preload.is_some() && rng.gen_bool(0.4)).then(|| Band {
            stride: rng.gen_range(1..=3),
            taps: rng.gen_range(0..=cols as u32),
            width: rng.gen_range(0..=cols as u32),
        });
        ops.push(Op::MatmulWs { a, acc: rng.gen_range(0..=(ACC_ROWS - m) as u32), accumulate: rng.gen_bool(0.5), preload, band });
    }
    Case { rows, cols, act, wgt, ops }
}

/// The accumulator after `ops`, from the ISA's semantics.
fn reference(c: &Case) -> Vec<Vec<i32>> {
    let mut acc = vec![vec![0i32; c.cols]; ACC_ROWS];
    let mut active = vec![vec![0i32; c.cols]; c.rows];
    for op in &c.ops {
        let Op::MatmulWs { a, acc: base, accumulate, preload, band } = *op else { unreachable!() };
        for (m, w) in a.addrs().enumerate() {
            let row = &mut acc[base as usize + m];
            for (j, out) in row.iter_mut().enumerate() {
                let dot = (0..c.rows).fold(0i32, |s, k| s.wrapping_add(c.act[w as usize][k] as i32 * active[k][j]));
                *out = if accumulate { out.wrapping_add(dot) } else { dot };
            }
        }
        if let Some(p) = preload {
            active = (0..c.rows)
                .map(|k| {
                    (0..c.cols)
                        .map(|j| match band {
                            Some(b) => b.at(&c.wgt[p as usize], k, j) as i32,
                            None => c.wgt[p as usize + k][j] as i32,
                        })
                        .collect()
                })
                .collect();
        }
    }
    acc
}

/// The engine's input ports, in the order of a stimulus row.
fn ports(rows: usize, cols: usize) -> Vec<(String, usize)> {
    let mut p: Vec<(String, usize)> = [
        ("start", 1),
        ("a_start", 24),
        ("a_inner_count", 24),
        ("a_inner_stride", 24),
        ("a_outer_count", 24),
        ("a_outer_stride", 24),
        ("acc", 24),
        ("accumulate", 1),
        ("preload_valid", 1),
        ("preload", 24),
        ("band_valid", 1),
        ("band_stride", 8),
        ("band_taps", 16),
        ("band_width", 16),
        ("host_act_we", 1),
        ("host_act_addr", 24),
    ]
    .map(|(n, b)| (n.to_string(), b))
    .to_vec();
    p.extend((0..rows).map(|k| (format!("host_act_data${k}"), 8)));
    p.extend([("host_wgt_we".to_string(), 1), ("host_wgt_addr".to_string(), 24)]);
    p.extend((0..cols).map(|j| (format!("host_wgt_data${j}"), 8)));
    p.extend([("host_acc_read".to_string(), 1), ("host_acc_addr".to_string(), 24)]);
    p
}

/// Applies one stimulus row.
fn apply(uut: &mut ExecWs, v: &[i64]) {
    let (rows, cols) = (uut.host_act_data.len(), uut.host_wgt_data.len());
    let b = |x: i64| x != 0;
    let u = |x: i64| -> Bits<24> { (x as u64).into() };
    uut.start.next = b(v[0]);
    uut.a_start.next = u(v[1]);
    uut.a_inner_count.next = u(v[2]);
    uut.a_inner_stride.next = u(v[3]);
    uut.a_outer_count.next = u(v[4]);
    uut.a_outer_stride.next = u(v[5]);
    uut.acc.next = u(v[6]);
    uut.accumulate.next = b(v[7]);
    uut.preload_valid.next = b(v[8]);
    uut.preload.next = u(v[9]);
    uut.band_valid.next = b(v[10]);
    uut.band_stride.next = (v[11] as u64).into();
    uut.band_taps.next = (v[12] as u64).into();
    uut.band_width.next = (v[13] as u64).into();
    uut.host_act_we.next = b(v[14]);
    uut.host_act_addr.next = u(v[15]);
    for (k, lane) in uut.host_act_data.iter_mut().enumerate() {
        lane.next = v[16 + k].into();
    }
    let w = 16 + rows;
    uut.host_wgt_we.next = b(v[w]);
    uut.host_wgt_addr.next = u(v[w + 1]);
    for (j, lane) in uut.host_wgt_data.iter_mut().enumerate() {
        lane.next = v[w + 2 + j].into();
    }
    uut.host_acc_read.next = b(v[w + 2 + cols]);
    uut.host_acc_addr.next = u(v[w + 3 + cols]);
}

/// The stimulus: host writes, then each instruction in the cycle the timing model starts
/// it (the engine must be ready then), then the accumulator read back.
fn stimulus(c: &Case) -> (Vec<Vec<i64>>, usize, Vec<u64>) {
    let arch = ArchConfig { rows: c.rows, cols: c.cols, ..ArchConfig::preset_4x4() };
    let instrs: Vec<Instr> = c.ops.iter().map(|&op| Instr { sync: Sync::default(), op }).collect();
    let timing = schedule(&arch, &instrs).unwrap();
    let width = ports(c.rows, c.cols).len();
    let (w, a) = (16 + c.rows, 16);
    let mut rows: Vec<Vec<i64>> = vec![];
    for i in 0..ACT_WORDS.max(WGT_WORDS) {
        let mut v = vec![0i64; width];
        if let Some(r) = c.act.get(i) {
            v[14] = 1;
            v[15] = i as i64;
            for (k, &x) in r.iter().enumerate() {
                v[a + k] = x as i64;
            }
        }
        if let Some(r) = c.wgt.get(i) {
            v[w] = 1;
            v[w + 1] = i as i64;
            for (j, &x) in r.iter().enumerate() {
                v[w + 2 + j] = x as i64;
            }
        }
        rows.push(v);
    }
    let t0 = rows.len();
    let end = t0 + timing.iter().map(|t| t.done).max().unwrap() as usize + 1;
    rows.resize(end, vec![0i64; width]);
    for (op, t) in c.ops.iter().zip(&timing) {
        let Op::MatmulWs { a, acc, accumulate, preload, band } = *op else { unreachable!() };
        let b = band.unwrap_or(Band { stride: 0, taps: 0, width: 0 });
        let v = &mut rows[t0 + t.start as usize];
        let fields = [1, a.start, a.inner_count, a.inner_stride, a.outer_count, a.outer_stride, acc, accumulate as u32];
        for (n, &x) in fields.iter().enumerate() {
            v[n] = x as i64;
        }
        let more = [preload.is_some() as u32, preload.unwrap_or(0), band.is_some() as u32, b.stride, b.taps, b.width];
        for (n, &x) in more.iter().enumerate() {
            v[8 + n] = x as i64;
        }
    }
    for r in 0..=ACC_ROWS {
        let mut v = vec![0i64; width];
        v[width - 2] = 1;
        v[width - 1] = r.min(ACC_ROWS - 1) as i64;
        rows.push(v);
    }
    let done = timing.iter().map(|t| t.done - 1).collect();
    (rows, t0, done)
}

/// From per-cycle outputs `[complete, host_acc_data...]`: the accumulator read back in the
/// last `ACC_ROWS` cycles and the completion cycles relative to `t0`.
fn observed(outs: &[Vec<i64>], t0: usize) -> (Vec<Vec<i32>>, Vec<u64>) {
    let n = outs.len();
    let acc = outs[n - ACC_ROWS..].iter().map(|o| o[1..].iter().map(|&x| x as i32).collect()).collect();
    let done = outs[..n - ACC_ROWS - 1].iter().enumerate().filter(|(_, o)| o[0] == 1).map(|(t, _)| (t - t0) as u64).collect();
    (acc, done)
}

fn run_rust_hdl(c: &Case, stim: &[Vec<i64>]) -> Vec<Vec<i64>> {
    let mut uut = ExecWs::new(c.rows, c.cols, ACT_WORDS, WGT_WORDS, ACC_ROWS);
    uut.connect_all();
    let mut outs = vec![];
    for v in stim {
        apply(&mut uut, v);
        assert!(settle(&mut uut));
        if v[0] == 1 {
            assert!(uut.ready.val(), "started while busy");
        }
        let mut o = vec![uut.complete.val() as i64];
        o.extend(uut.host_acc_data.iter().map(|d| -> i64 { d.val().bigint().try_into().unwrap() }));
        outs.push(o);
        clock_cycle(&mut uut, |u| &mut u.clock);
    }
    outs
}

fn cases() -> Vec<Case> {
    [(1, 1, 1), (2, 3, 2), (3, 2, 3), (4, 4, 4), (5, 3, 5), (8, 8, 6), (2, 7, 7)]
        .iter()
        .map(|&(r, c, seed)| random_case(r, c, 40, seed))
        .collect()
}

#[test]
fn rust_hdl_matches_semantics_and_timing() {
    for c in cases() {
        let (stim, t0, want_done) = stimulus(&c);
        let (acc, done) = observed(&run_rust_hdl(&c, &stim), t0);
        assert_eq!(acc, reference(&c), "{}x{}: accumulator", c.rows, c.cols);
        assert_eq!(done, want_done, "{}x{}: completion cycles", c.rows, c.cols);
    }
}

#[test]
fn verilog_matches_semantics_and_timing() {
    for c in cases().into_iter().take(5) {
        let (stim, t0, want_done) = stimulus(&c);
        let rtl = emit(&mut ExecWs::new(c.rows, c.cols, ACT_WORDS, WGT_WORDS, ACC_ROWS));
        let mut outputs = vec![("complete".to_string(), 1)];
        outputs.extend((0..c.cols).map(|j| (format!("host_acc_data${j}"), 32)));
        let dir = scratch(&format!("exec-ws-{}x{}", c.rows, c.cols));
        let outs = icarus_vectors(&dir, &rtl, true, &ports(c.rows, c.cols), &outputs, &stim).unwrap_or_else(|e| panic!("{e}"));
        let outs: Vec<Vec<i64>> = outs
            .iter()
            .map(|o| o.iter().enumerate().map(|(n, v)| v.unwrap_or_else(|| if n == 0 { 0 } else { i64::MIN })).collect())
            .collect();
        let (acc, done) = observed(&outs, t0);
        assert_eq!(acc, reference(&c), "{}x{}: accumulator", c.rows, c.cols);
        assert_eq!(done, want_done, "{}x{}: completion cycles", c.rows, c.cols);
    }
}

/// Warnings waived for the emitted engine, each with its reason.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    ("UNUSEDSIGNAL", "array-edge outputs, SRAM address bits above the depth, and the clock of zero-length delay lines"),
    ("WIDTH", "rust-hdl writes integer literals as 32-bit constants; each is a zero-extended constant in a compare or increment"),
];

#[test]
fn verilog_lints_and_synthesizes() {
    let rtl = emit(&mut ExecWs::new(4, 4, 512, 512, 128));
    let dir = scratch("exec-ws-synth");
    verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{e}"));
    for (family, bram) in [("ice40", "SB_RAM40_4K"), ("ecp5", "DP16KD")] {
        let log = yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
        let stats = log.rsplit("Printing statistics").next().unwrap_or("");
        assert!(stats.contains(bram), "{family}: scratchpads not in block RAM:\n{stats}");
    }
}
