//! The band unit against `systole_core::isa::Band::at` (the oracle the simulator uses):
//! its rust-hdl simulation and the Verilog rust-hdl emits from the same kernel, under
//! Icarus, on random tap words and bands; plus lint and synthesis.
//!
//! The unit chooses a word's lanes in the cycle before the word arrives, from the `start_*`
//! ports or the running ones, so case `i`'s row and band go in with cycle `i` and its word
//! with cycle `i + 1`, when its row of the matrix comes out. Cases alternate at random
//! between the two sets of ports (the other set holds another case's values), and some are
//! plain words, which pass through. As in the engines, a start is an instruction's row 0
//! with a fresh stride and taps, and the cases after it keep them (their widths vary).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::Band;
use systole_hdl::band::BandUnit;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_testbenches::tools::{icarus_vectors, scratch, verilator_lint, yosys_synth};

/// One case: a word, a row, the band (`None`: a plain word) and whether it comes with a
/// start.
struct Case {
    word: Vec<i8>,
    row: usize,
    band: Option<Band>,
    start: bool,
    /// The instruction's stride and taps, on the ports even for a plain word.
    stride: u32,
    taps: u32,
}

/// Cases for `cols` columns, rows and bands within what the ISA allows.
fn cases(cols: usize, n: usize, seed: u64) -> Vec<Case> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut stride, mut taps) = (1, cols as u32);
    (0..n)
        .map(|i| {
            let start = i == 0 || rng.gen_bool(0.3);
            if start {
                stride = if rng.gen_bool(0.1) { 0 } else { rng.gen_range(1..=3) };
                taps = rng.gen_range(0..=cols as u32);
            }
            let width = rng.gen_range(0..=cols as u32);
            Case {
                word: (0..cols).map(|_| rng.gen()).collect(),
                row: if start { 0 } else { rng.gen_range(0..cols.max(2) * 2) },
                band: rng.gen_bool(0.9).then_some(Band { stride, taps, width }),
                start,
                stride,
                taps,
            }
        })
        .collect()
}

fn expected(case: &Case) -> Vec<i64> {
    match &case.band {
        Some(band) => (0..case.word.len()).map(|n| band.at(&case.word, case.row, n) as i64).collect(),
        None => case.word.iter().map(|&w| w as i64).collect(),
    }
}

/// The choice ports' values for a case: band, row, stride, taps, width.
fn choice(case: &Case) -> [i64; 5] {
    let width = case.band.map_or(0, |b| b.width);
    [case.band.is_some() as i64, case.row as i64, case.stride as i64, case.taps as i64, width as i64]
}

/// Cycle `i`'s inputs: case `i`'s choice on the ports its `start` names (case `i - 1`'s on
/// the others), and case `i - 1`'s word.
fn inputs(cs: &[Case], i: usize) -> (Vec<i64>, bool, [i64; 5], [i64; 5]) {
    let cols = cs[0].word.len();
    let word = if i > 0 { cs[i - 1].word.iter().map(|&w| w as i64).collect() } else { vec![0; cols] };
    let this = cs.get(i).map_or([0; 5], choice);
    let other = if i > 0 { choice(&cs[i - 1]) } else { [0; 5] };
    let start = cs.get(i).is_some_and(|c| c.start);
    let (first, running) = if start { (this, other) } else { (other, this) };
    (word, start, first, running)
}

#[test]
fn model_and_verilog_match_the_isa() {
    // Without word registers, and with one (a WS engine's edge register): every row `stages`
    // cycles later.
    for (cols, seed, stages) in [(1usize, 1u64, 0usize), (3, 2, 0), (4, 3, 1), (8, 4, 0), (8, 5, 1)] {
        let cs = cases(cols, 400, seed);
        let mut uut = BandUnit::new(cols).with_word_stages(stages);
        uut.connect_all();
        let mut vectors = Vec::new();
        for i in 0..=cs.len() + stages {
            let (word, start, first, running) = inputs(&cs, i.min(cs.len()));
            for (lane, &w) in uut.word.iter_mut().zip(&word) {
                lane.next = w.into();
            }
            uut.start.next = start;
            uut.start_banded.next = first[0] != 0;
            uut.start_stride.next = (first[2] as u64).into();
            uut.start_taps.next = (first[3] as u64).into();
            uut.start_width.next = (first[4] as u64).into();
            uut.banded.next = running[0] != 0;
            uut.row.next = (running[1] as u64).into();
            uut.stride.next = (running[2] as u64).into();
            uut.taps.next = (running[3] as u64).into();
            uut.width.next = (running[4] as u64).into();
            assert!(settle(&mut uut));
            if i > stages {
                let got: Vec<i64> = uut.out.iter().map(|o| o.val().bigint().try_into().unwrap()).collect();
                assert_eq!(got, expected(&cs[i - 1 - stages]), "model: {cols} cols, {stages} stages, case {}", i - 1 - stages);
            }
            clock_cycle(&mut uut, |u| &mut u.clock);
            let first = [first[0], first[2], first[3], first[4]];
            vectors.push(word.into_iter().chain([start as i64]).chain(first).chain(running).collect::<Vec<i64>>());
        }
        let mut ports: Vec<(String, usize)> = (0..cols).map(|i| (format!("word${i}"), 8)).collect();
        ports.push(("start".to_string(), 1));
        ports.extend([("banded", 1), ("stride", 8), ("taps", 16), ("width", 16)].map(|(n, b)| (format!("start_{n}"), b)));
        ports.extend([("banded", 1), ("row", 8), ("stride", 8), ("taps", 16), ("width", 16)].map(|(n, b)| (n.to_string(), b)));
        let outputs: Vec<(String, usize)> = (0..cols).map(|n| (format!("out${n}"), 8)).collect();
        let dir = scratch(&format!("band-{cols}-{stages}"));
        let rtl = emit(&mut BandUnit::new(cols).with_word_stages(stages));
        let got = icarus_vectors(&dir, &rtl, true, &ports, &outputs, &vectors).unwrap_or_else(|e| panic!("{e}"));
        for (i, case) in cs.iter().enumerate() {
            let want: Vec<Option<i64>> = expected(case).into_iter().map(Some).collect();
            assert_eq!(got[i + 1 + stages], want, "Icarus: {cols} cols, {stages} stages, case {i}");
        }
    }
}

#[test]
fn verilog_lints_and_synthesizes() {
    let dir = scratch("band-synth");
    let staged = emit(&mut BandUnit::new(8).with_word_stages(1));
    verilator_lint(&dir, ("top.v", &staged), &[("DECLFILENAME", "rust-hdl names the top module `top`"), ("WIDTH", "as below")])
        .unwrap_or_else(|e| panic!("with a word stage: {e}"));
    let rtl = emit(&mut BandUnit::new(8));
    let waivers = [
        ("DECLFILENAME", "rust-hdl names the top module `top`"),
        ("WIDTH", "rust-hdl writes integer literals as 32-bit constants and widens with a 16-bit mask"),
    ];
    verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{e}"));
    for family in ["ice40", "ecp5"] {
        yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
    }
}
