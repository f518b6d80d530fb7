//! The parameter loader and the banked requantization table: random `LoadParams`
//! sequences against a DRAM model. The table must hold the DRAM bytes the ISA says, read
//! back a row of `cols` entries for any entry in it (lane 0 the entry itself, in a table
//! with entry reads; lane 0 the entry and the others 0 in a table in one bank), and every
//! instruction must complete in exactly the cycle of the timing model; in rust-hdl's
//! simulator and under Icarus.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::Op;
use systole_core::ArchConfig;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::fixtures::ParamFixture;
use systole_testbenches::stimulus::{completions, Stimulus};
use systole_testbenches::tools::{icarus_vectors, scratch};

const ENTRIES: usize = 40;
const DRAM: usize = 512;

struct Case {
    cols: usize,
    entry_reads: bool,
    one_bank: bool,
    lanes: usize,
    latency: usize,
    dram: Vec<i8>,
    ops: Vec<Op>,
}

fn random_case(cols: usize, lanes: usize, latency: usize, seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dram = (0..DRAM).map(|_| rng.gen()).collect();
    let ops = (0..12)
        .map(|_| {
            let count = rng.gen_range(0..=12u32);
            Op::LoadParams {
                dst: rng.gen_range(0..=ENTRIES as u32 - count),
                addr: rng.gen_range(0..(DRAM as u64 - 8 * count as u64)),
                count,
            }
        })
        .collect();
    // Tables read by row, by entry, and in one bank, in turn.
    Case { cols, entry_reads: seed % 3 == 1, one_bank: seed % 3 == 2, lanes, latency, dram, ops }
}

fn reference(c: &Case) -> Vec<u64> {
    let mut table = vec![0u64; ENTRIES];
    for op in &c.ops {
        let Op::LoadParams { dst, addr, count } = *op else { unreachable!() };
        for e in 0..count as usize {
            let bytes: Vec<u8> = (0..8).map(|i| c.dram[addr as usize + 8 * e + i] as u8).collect();
            table[dst as usize + e] = u64::from_le_bytes(bytes.try_into().unwrap());
        }
    }
    table
}

fn ports(c: &Case) -> Vec<(String, usize)> {
    let mut p: Vec<(String, usize)> = [("start", 1), ("dst", 24), ("addr", 32), ("count", 24)].map(|(n, b)| (n.to_string(), b)).to_vec();
    p.extend((0..c.lanes).map(|i| (format!("host_dram_we${i}"), 1)));
    p.push(("host_dram_addr".into(), 32));
    p.extend((0..c.lanes).map(|i| (format!("host_dram_data${i}"), 8)));
    p.push(("host_row".into(), 24));
    p.push(("host_entry".into(), 24));
    p
}

fn stimulus(c: &Case) -> (Vec<Vec<i64>>, usize, Vec<u64>) {
    let arch = ArchConfig { cols: c.cols, dram_bytes_per_cycle: c.lanes, dram_latency: c.latency, ..ArchConfig::preset_4x4() };
    let mut stim = Stimulus::new(ports(c).len());
    stim.dram_fill(&c.dram, c.lanes, [4, 4 + c.lanes, 5 + c.lanes]);
    let (t0, done) = stim.instructions(&arch, &c.ops, |op| {
        let Op::LoadParams { dst, addr, count } = *op else { unreachable!() };
        vec![1, dst as i64, addr as i64, count as i64]
    });
    for e in 0..=ENTRIES {
        let e = e.min(ENTRIES - 1);
        let row = stim.push();
        let n = row.len();
        (row[n - 2], row[n - 1]) = ((e / c.cols) as i64, e as i64);
    }
    (stim.rows, t0, done)
}

/// Checks the read-back (the row of every entry) and the completion cycles.
fn check(c: &Case, outs: &[Vec<Option<u64>>], t0: usize, want: &[u64], backend: &str) {
    let table = reference(c);
    let n = outs.len();
    for (p, row) in outs[n - ENTRIES..].iter().enumerate() {
        for (j, got) in row[1..].iter().enumerate() {
            let e = if j == 0 && (c.entry_reads || c.one_bank) { p } else { p - p % c.cols + j };
            let want = if c.one_bank && j > 0 { 0 } else { table.get(e).copied().unwrap_or(0) };
            assert_eq!(*got, Some(want), "{backend} cols {} B={}: entry {e} read at lane {j} for entry {p}", c.cols, c.lanes);
        }
    }
    let done = completions(outs[..n - ENTRIES - 1].iter().map(|o| o[0] == Some(1)), t0);
    assert_eq!(done, want, "{backend} cols {} B={} L={}: completion cycles", c.cols, c.lanes, c.latency);
}

fn fixture(c: &Case) -> ParamFixture {
    ParamFixture::new(ENTRIES, c.cols, c.entry_reads, c.one_bank, DRAM, c.lanes, c.latency)
}

fn cases() -> Vec<Case> {
    // The last two are one-row tables (cols = ENTRIES), read without a read register.
    [(4, 4, 2), (3, 8, 3), (5, 16, 4), (1, 3, 2), (8, 1, 6), (6, 5, 5), (12, 2, 3), (6, 4, 2), (ENTRIES, 4, 3), (ENTRIES, 1, 2)]
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
            uut.start.next = v[0] != 0;
            uut.dst.next = (v[1] as u64).into();
            uut.addr.next = (v[2] as u64).into();
            uut.count.next = (v[3] as u64).into();
            for i in 0..c.lanes {
                uut.host_dram_we[i].next = v[4 + i] != 0;
                uut.host_dram_data[i].next = v[5 + c.lanes + i].into();
            }
            uut.host_dram_addr.next = (v[4 + c.lanes] as u64).into();
            uut.host_row.next = (v[v.len() - 2] as u64).into();
            uut.host_entry.next = (v[v.len() - 1] as u64).into();
            assert!(settle(&mut uut));
            assert!(v[0] == 0 || uut.ready.val(), "the timing model starts a load while the loader is busy");
            let mut o = vec![Some(uut.complete.val() as u64)];
            o.extend(uut.host_data.iter().map(|d| Some(d.val().to_u64())));
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
        outputs.extend((0..c.cols).map(|j| (format!("host_data${j}"), 64)));
        let dir = scratch(&format!("params-{i}"));
        let outs = icarus_vectors(&dir, &emit(&mut fixture(&c)), true, &ports(&c), &outputs, &stim).unwrap_or_else(|e| panic!("{e}"));
        let outs: Vec<Vec<Option<u64>>> = outs.into_iter().map(|o| o.into_iter().map(|v| v.map(|x| x as u64)).collect()).collect();
        check(&c, &outs, t0, &want, "Icarus");
    }
}
