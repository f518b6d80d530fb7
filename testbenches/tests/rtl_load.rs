//! The load engine between a DRAM model and the scratchpads: random `Load` instructions
//! (both targets, byte offsets, runs longer and shorter than a DRAM beat, empty runs,
//! negative strides) issued back to back. The scratchpads must hold what the ISA's
//! semantics give, and every instruction must complete in exactly the cycle of the timing
//! model; in rust-hdl's simulator and as Verilog under Icarus.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::{Buffer, Dim, DramPattern, Op};
use systole_core::ArchConfig;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::fixtures::LoadFixture;
use systole_testbenches::stimulus::{completions, Stimulus};
use systole_testbenches::tools::{icarus_vectors, scratch, verilator_lint};

const WORDS: usize = 32;
const DRAM: usize = 512;

struct Case {
    rows: usize,
    cols: usize,
    lanes: usize,
    latency: usize,
    dram: Vec<i8>,
    ops: Vec<Op>,
}

fn random_case(rows: usize, cols: usize, lanes: usize, latency: usize, n: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dram = (0..DRAM).map(|_| rng.gen()).collect();
    let ops = (0..n)
        .map(|_| {
            let target = if rng.gen_bool(0.5) { Buffer::Wgt } else { Buffer::Act };
            let width = if target == Buffer::Act { rows } else { cols } as u32;
            let offset = rng.gen_range(0..=width);
            let len = rng.gen_range(0..=width - offset);
            let counts = [rng.gen_range(0..3u32), rng.gen_range(1..3u32), rng.gen_range(1..4u32)];
            let runs = counts.iter().product::<u32>() as usize;
            let strides = [rng.gen_range(-40i64..60), rng.gen_range(-20i64..30), rng.gen_range(-8i64..16)];
            // Place run 0 so that every run stays inside the DRAM.
            let (mut lo, mut hi) = (0i64, 0i64);
            for (c, s) in counts.iter().zip(strides) {
                let span = (*c as i64 - 1).max(0) * s;
                lo += span.min(0);
                hi += span.max(0);
            }
            let addr = rng.gen_range(-lo..(DRAM as i64 - hi - len as i64 - 8)) as u64;
            let dims = [0, 1, 2].map(|i| Dim { count: counts[i], stride: strides[i] });
            Op::Load { target, dst: rng.gen_range(0..=(WORDS - runs) as u32), offset, src: DramPattern { addr, len, dims } }
        })
        .collect();
    Case { rows, cols, lanes, latency, dram, ops }
}

/// Scratchpads after the loads, from the ISA's semantics (both start zeroed).
fn reference(c: &Case) -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let mut act = vec![vec![0i8; c.rows]; WORDS];
    let mut wgt = vec![vec![0i8; c.cols]; WORDS];
    for op in &c.ops {
        let Op::Load { target, dst, offset, src } = *op else { unreachable!() };
        let mem = if target == Buffer::Act { &mut act } else { &mut wgt };
        for (e, a) in src.run_addrs().enumerate() {
            let word = &mut mem[dst as usize + e];
            let (o, l) = (offset as usize, src.len as usize);
            for (i, b) in word.iter_mut().enumerate().skip(o) {
                *b = if i < o + l { c.dram[a as usize + i - o] } else { 0 };
            }
        }
    }
    (act, wgt)
}

/// Input ports in stimulus order.
fn ports(c: &Case) -> Vec<(String, usize)> {
    let mut p: Vec<(String, usize)> =
        [("start", 1), ("target", 1), ("dst", 24), ("offset", 16), ("addr", 32), ("len", 16)].map(|(n, b)| (n.to_string(), b)).to_vec();
    p.extend((0..3).map(|i| (format!("count${i}"), 24)));
    p.extend((0..3).map(|i| (format!("stride${i}"), 32)));
    p.extend((0..c.lanes).map(|i| (format!("host_dram_we${i}"), 1)));
    p.push(("host_dram_addr".into(), 32));
    p.extend((0..c.lanes).map(|i| (format!("host_dram_data${i}"), 8)));
    p.extend([("host_act_raddr".to_string(), 24), ("host_wgt_raddr".to_string(), 24)]);
    p
}

/// The stimulus, the cycle of the first start, and the completion cycles (`done - 1`).
fn stimulus(c: &Case) -> (Vec<Vec<i64>>, usize, Vec<u64>) {
    let arch =
        ArchConfig { rows: c.rows, cols: c.cols, dram_bytes_per_cycle: c.lanes, dram_latency: c.latency, ..ArchConfig::preset_4x4() };
    let mut stim = Stimulus::new(ports(c).len());
    stim.dram_fill(&c.dram, c.lanes, [12, 12 + c.lanes, 13 + c.lanes]);
    let (t0, done) = stim.instructions(&arch, &c.ops, |op| {
        let Op::Load { target, dst, offset, src } = *op else { unreachable!() };
        let mut f = vec![1, (target == Buffer::Wgt) as i64, dst as i64, offset as i64, src.addr as i64, src.len as i64];
        f.extend(src.dims.iter().map(|d| d.count as i64));
        f.extend(src.dims.iter().map(|d| (d.stride as u32) as i64));
        f
    });
    for w in 0..=WORDS {
        let v = stim.push();
        let n = v.len();
        v[n - 2] = w.min(WORDS - 1) as i64;
        v[n - 1] = w.min(WORDS - 1) as i64;
    }
    (stim.rows, t0, done)
}

/// From per-cycle outputs `[complete, act lanes.., wgt lanes..]`.
fn observed(c: &Case, outs: &[Vec<i64>], t0: usize) -> (Vec<Vec<i8>>, Vec<Vec<i8>>, Vec<u64>) {
    let n = outs.len();
    let tail = &outs[n - WORDS..];
    let act = tail.iter().map(|o| o[1..1 + c.rows].iter().map(|&x| x as i8).collect()).collect();
    let wgt = tail.iter().map(|o| o[1 + c.rows..].iter().map(|&x| x as i8).collect()).collect();
    (act, wgt, completions(outs[..n - WORDS - 1].iter().map(|o| o[0] != 0), t0))
}

fn fixture(c: &Case) -> LoadFixture {
    LoadFixture::new(c.rows, c.cols, [WORDS, WORDS], DRAM, c.lanes, c.latency)
}

fn run_rust_hdl(c: &Case, stim: &[Vec<i64>]) -> Vec<Vec<i64>> {
    let mut uut = fixture(c);
    uut.connect_all();
    let mut outs = vec![];
    for v in stim {
        uut.start.next = v[0] != 0;
        uut.target.next = v[1] != 0;
        uut.dst.next = (v[2] as u64).into();
        uut.offset.next = (v[3] as u64).into();
        uut.addr.next = (v[4] as u64).into();
        uut.len.next = (v[5] as u64).into();
        for i in 0..3 {
            uut.count[i].next = (v[6 + i] as u64).into();
            uut.stride[i].next = (v[9 + i] as u64).into();
        }
        for i in 0..c.lanes {
            uut.host_dram_we[i].next = v[12 + i] != 0;
            uut.host_dram_data[i].next = v[13 + c.lanes + i].into();
        }
        uut.host_dram_addr.next = (v[12 + c.lanes] as u64).into();
        uut.host_act_raddr.next = (v[v.len() - 2] as u64).into();
        uut.host_wgt_raddr.next = (v[v.len() - 1] as u64).into();
        assert!(settle(&mut uut));
        assert!(v[0] == 0 || uut.ready.val(), "the timing model starts a load while the engine is busy");
        let lane = |s: &Signal<Out, Signed<8>>| -> i64 { s.val().bigint().try_into().unwrap() };
        let mut o = vec![uut.complete.val() as i64];
        o.extend(uut.host_act_rdata.iter().map(lane));
        o.extend(uut.host_wgt_rdata.iter().map(lane));
        outs.push(o);
        clock_cycle(&mut uut, |u| &mut u.clock);
    }
    outs
}

fn cases() -> Vec<Case> {
    [(4, 4, 4, 2), (3, 5, 2, 3), (8, 2, 4, 7), (2, 8, 16, 2), (1, 1, 1, 4), (5, 5, 3, 5)]
        .iter()
        .enumerate()
        .map(|(i, &(r, c, b, l))| random_case(r, c, b, l, 30, i as u64 + 1))
        .collect()
}

fn check(c: &Case, outs: &[Vec<i64>], t0: usize, want: &[u64], backend: &str) {
    let (act, wgt, done) = observed(c, outs, t0);
    let (ra, rw) = reference(c);
    let what = format!("{backend} {}x{} B={} L={}", c.rows, c.cols, c.lanes, c.latency);
    assert_eq!(act, ra, "{what}: activation scratchpad");
    assert_eq!(wgt, rw, "{what}: weight scratchpad");
    assert_eq!(done, want, "{what}: completion cycles");
}

#[test]
fn rust_hdl_matches_semantics_and_timing() {
    for c in cases() {
        let (stim, t0, want) = stimulus(&c);
        check(&c, &run_rust_hdl(&c, &stim), t0, &want, "rust-hdl");
    }
}

#[test]
fn verilog_matches_semantics_and_timing() {
    for (i, c) in cases().into_iter().enumerate() {
        let (stim, t0, want) = stimulus(&c);
        let mut outputs = vec![("complete".to_string(), 1)];
        outputs.extend((0..c.rows).map(|k| (format!("host_act_rdata${k}"), 8)));
        outputs.extend((0..c.cols).map(|j| (format!("host_wgt_rdata${j}"), 8)));
        let dir = scratch(&format!("load-{i}"));
        let outs = icarus_vectors(&dir, &emit(&mut fixture(&c)), true, &ports(&c), &outputs, &stim).unwrap_or_else(|e| panic!("{e}"));
        let outs: Vec<Vec<i64>> = outs.into_iter().map(|o| o.into_iter().map(|v| v.unwrap_or(i64::MIN)).collect()).collect();
        check(&c, &outs, t0, &want, "Icarus");
    }
}

#[test]
fn engine_verilog_lints() {
    let rtl = emit(&mut systole_hdl::load::LoadEngine::new(4, 4, 4, 20));
    let waivers = [
        ("DECLFILENAME", "rust-hdl names the top module `top`"),
        ("WIDTH", "rust-hdl writes integer literals as 32-bit constants"),
        ("UNUSEDSIGNAL", "the walk's division of a 17-bit length by B returns 24 bits, of which 16 hold a beat count"),
    ];
    verilator_lint(&scratch("load-lint"), ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{e}"));
}
