//! The store engine with the accumulator, the requantization table and units, and a DRAM
//! model: random `Store` sequences (runs shorter and longer than a beat, empty runs,
//! negative strides, any clamps). DRAM must hold the bytes the ISA's semantics give, with
//! `core::requant` as the oracle, and every instruction must complete in exactly the cycle
//! of the timing model; in rust-hdl's simulator and under Icarus.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::{Dim, DramPattern, Op, OutputStage};
use systole_core::requant::{requantize, ChannelParam};
use systole_core::ArchConfig;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::fixtures::StoreFixture;
use systole_testbenches::stimulus::{completions, Stimulus};
use systole_testbenches::tools::{icarus_vectors, scratch};

const ACC_ROWS: usize = 16;
const ENTRIES: usize = 24;
const DRAM: usize = 256;

struct Case {
    cols: usize,
    lanes: usize,
    latency: usize,
    acc: Vec<Vec<i32>>,
    params: Vec<ChannelParam>,
    ops: Vec<Op>,
}

fn random_case(cols: usize, lanes: usize, latency: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let acc = (0..ACC_ROWS).map(|_| (0..cols).map(|_| rng.gen_range(-(1 << 20)..(1 << 20))).collect()).collect();
    let params = (0..ENTRIES)
        .map(|_| ChannelParam { bias: rng.gen_range(-5000..5000), scale_bits: rng.gen_range(1e-5f32..0.05).to_bits() })
        .collect();
    let ops = (0..10)
        .map(|_| {
            let len = rng.gen_range(0..=cols as u32);
            let counts = [rng.gen_range(0..2u32), rng.gen_range(1..3u32), rng.gen_range(1..4u32)];
            let runs = counts.iter().product::<u32>();
            let strides = [rng.gen_range(-30i64..40), rng.gen_range(-12i64..20), rng.gen_range(-6i64..12)];
            let (mut lo, mut hi) = (0i64, 0i64);
            for (c, s) in counts.iter().zip(strides) {
                let span = (*c as i64 - 1).max(0) * s;
                lo += span.min(0);
                hi += span.max(0);
            }
            let addr = rng.gen_range(-lo..(DRAM as i64 - hi - len as i64)) as u64;
            let (a, b): (i8, i8) = (rng.gen(), rng.gen());
            let param = cols as u32 * rng.gen_range(0..=(ENTRIES as u32 - len) / cols as u32);
            let out = OutputStage { param, zp: rng.gen(), lo: a.min(b), hi: a.max(b) };
            let dims = [0, 1, 2].map(|i| Dim { count: counts[i], stride: strides[i] });
            Op::Store { acc: rng.gen_range(0..=ACC_ROWS as u32 - runs), dst: DramPattern { addr, len, dims }, out }
        })
        .collect();
    Case { cols, lanes, latency, acc, params, ops }
}

fn reference(c: &Case) -> Vec<i8> {
    let mut dram = vec![0i8; DRAM];
    for op in &c.ops {
        let Op::Store { acc, dst, out } = *op else { unreachable!() };
        for (e, a) in dst.run_addrs().enumerate() {
            for j in 0..dst.len as usize {
                let p = c.params[out.param as usize + j];
                dram[a as usize + j] = requantize(c.acc[acc as usize + e][j], p, out.zp, out.lo, out.hi);
            }
        }
    }
    dram
}

/// Input ports in stimulus order.
fn ports(c: &Case) -> Vec<(String, usize)> {
    let mut p: Vec<(String, usize)> = [("start", 1), ("acc", 24), ("addr", 32), ("len", 16)].map(|(n, b)| (n.to_string(), b)).to_vec();
    p.extend((0..3).map(|i| (format!("count${i}"), 24)));
    p.extend((0..3).map(|i| (format!("stride${i}"), 32)));
    p.extend([("param", 24), ("zp", 8), ("lo", 8), ("hi", 8), ("host_acc_we", 1), ("host_acc_row", 24)].map(|(n, b)| (n.to_string(), b)));
    p.extend((0..c.cols).map(|j| (format!("host_acc_data${j}"), 32)));
    p.extend(
        [("host_param_we", 1), ("host_param_row", 24), ("host_param_lane", 8), ("host_param_data", 64), ("host_dram_raddr", 32)]
            .map(|(n, b)| (n.to_string(), b)),
    );
    p
}

fn stimulus(c: &Case) -> (Vec<Vec<i64>>, usize, Vec<u64>) {
    let arch = ArchConfig { cols: c.cols, dram_bytes_per_cycle: c.lanes, dram_latency: c.latency, ..ArchConfig::preset_4x4() };
    let ports = ports(c);
    let col = |name: &str| ports.iter().position(|(n, _)| n == name).unwrap();
    let mut stim = Stimulus::new(ports.len());
    // A row issued in one cycle takes its data in the next.
    for _ in 0..=ACC_ROWS {
        stim.push();
    }
    for (r, vals) in c.acc.iter().enumerate() {
        stim.rows[r][col("host_acc_we")] = 1;
        stim.rows[r][col("host_acc_row")] = r as i64;
        for (j, &x) in vals.iter().enumerate() {
            stim.rows[r + 1][col("host_acc_data$0") + j] = x as i64;
        }
    }
    for (e, p) in c.params.iter().enumerate() {
        let v = stim.push();
        v[col("host_param_we")] = 1;
        (v[col("host_param_row")], v[col("host_param_lane")]) = ((e / c.cols) as i64, (e % c.cols) as i64);
        v[col("host_param_data")] = u64::from_le_bytes(p.to_bytes()) as i64;
    }
    let (t0, done) = stim.instructions(&arch, &c.ops, |op| {
        let Op::Store { acc, dst, out } = *op else { unreachable!() };
        let mut f = vec![1, acc as i64, dst.addr as i64, dst.len as i64];
        f.extend(dst.dims.iter().map(|d| d.count as i64));
        f.extend(dst.dims.iter().map(|d| (d.stride as u32) as i64));
        f.extend([out.param as i64, out.zp as i64, out.lo as i64, out.hi as i64]);
        f
    });
    let chunks = DRAM.div_ceil(c.lanes);
    for k in 0..=chunks {
        *stim.push().last_mut().expect("ports") = (k.min(chunks - 1) * c.lanes) as i64;
    }
    (stim.rows, t0, done)
}

fn check(c: &Case, outs: &[Vec<Option<i64>>], t0: usize, want: &[u64], backend: &str) {
    let chunks = DRAM.div_ceil(c.lanes);
    let n = outs.len();
    let dram: Vec<i8> = outs[n - chunks..].iter().flat_map(|o| o[1..].iter().map(|v| v.expect("known byte") as i8)).take(DRAM).collect();
    let what = format!("{backend} cols {} B={} L={}", c.cols, c.lanes, c.latency);
    assert_eq!(dram, reference(c), "{what}: DRAM");
    assert_eq!(completions(outs[..n - chunks - 1].iter().map(|o| o[0] == Some(1)), t0), want, "{what}: completion cycles");
}

fn fixture(c: &Case) -> StoreFixture {
    StoreFixture::new(c.cols, ACC_ROWS, ENTRIES, DRAM, c.lanes, c.latency)
}

fn cases() -> Vec<Case> {
    [(4, 4, 2), (3, 2, 3), (5, 8, 4), (1, 1, 2), (8, 3, 5)]
        .iter()
        .enumerate()
        .map(|(i, &(c, b, l))| random_case(c, b, l, i as u64 + 1))
        .collect()
}

#[test]
fn rust_hdl_matches_semantics_and_timing() {
    for c in cases() {
        let (stim, t0, want) = stimulus(&c);
        let mut uut = fixture(&c);
        uut.connect_all();
        let mut outs = vec![];
        for v in &stim {
            let s8 = |x: i64| -> Signed<8> { x.into() };
            uut.start.next = v[0] != 0;
            uut.acc.next = (v[1] as u64).into();
            uut.addr.next = (v[2] as u64).into();
            uut.len.next = (v[3] as u64).into();
            for i in 0..3 {
                uut.count[i].next = (v[4 + i] as u64).into();
                uut.stride[i].next = (v[7 + i] as u64).into();
            }
            uut.param.next = (v[10] as u64).into();
            uut.zp.next = s8(v[11]);
            uut.lo.next = s8(v[12]);
            uut.hi.next = s8(v[13]);
            uut.host_acc_we.next = v[14] != 0;
            uut.host_acc_row.next = (v[15] as u64).into();
            for j in 0..c.cols {
                uut.host_acc_data[j].next = v[16 + j].into();
            }
            let h = 16 + c.cols;
            uut.host_param_we.next = v[h] != 0;
            uut.host_param_row.next = (v[h + 1] as u64).into();
            uut.host_param_lane.next = (v[h + 2] as u64).into();
            uut.host_param_data.next = (v[h + 3] as u64).into();
            uut.host_dram_raddr.next = (v[h + 4] as u64).into();
            assert!(settle(&mut uut));
            assert!(v[0] == 0 || uut.ready.val(), "the timing model starts a store while the engine is busy");
            let mut o = vec![Some(uut.complete.val() as i64)];
            o.extend(uut.host_dram_rdata.iter().map(|d| d.val().bigint().try_into().ok()));
            outs.push(o);
            clock_cycle(&mut uut, |u| &mut u.clock);
        }
        check(&c, &outs, t0, &want, "rust-hdl");
    }
}

#[test]
fn verilog_matches_semantics_and_timing() {
    for (i, c) in cases().into_iter().enumerate() {
        let (stim, t0, want) = stimulus(&c);
        let mut outputs = vec![("complete".to_string(), 1)];
        outputs.extend((0..c.lanes).map(|k| (format!("host_dram_rdata${k}"), 8)));
        outputs.push(("ready".to_string(), 1));
        let dir = scratch(&format!("store-{i}"));
        let mut outs = icarus_vectors(&dir, &emit(&mut fixture(&c)), true, &ports(&c), &outputs, &stim).unwrap_or_else(|e| panic!("{e}"));
        for (row, (v, o)) in stim.iter().zip(&mut outs).enumerate() {
            let ready = o.pop().flatten();
            assert!(v[0] == 0 || ready == Some(1), "Icarus: the timing model starts a store in row {row} while the engine is busy");
        }
        check(&c, &outs, t0, &want, "Icarus");
    }
}
