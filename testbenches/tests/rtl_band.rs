//! The band unit against `systole_core::isa::Band::at` (the oracle the simulator uses):
//! its rust-hdl simulation and the Verilog rust-hdl emits from the same kernel, under
//! Icarus, on random tap words and bands; plus lint and synthesis.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::isa::Band;
use systole_hdl::band::BandUnit;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{emit, settle};
use systole_testbenches::tools::{icarus_vectors, scratch, verilator_lint, yosys_synth};

/// `(word, row, band)` cases for `cols` columns, rows and bands within what the ISA allows.
fn cases(cols: usize, n: usize, seed: u64) -> Vec<(Vec<i8>, usize, Band)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let word = (0..cols).map(|_| rng.gen()).collect();
            let band = Band { stride: rng.gen_range(1..=3), taps: rng.gen_range(0..=cols as u32), width: rng.gen_range(0..=cols as u32) };
            (word, rng.gen_range(0..cols.max(2) * 2), band)
        })
        .collect()
}

fn expected(word: &[i8], row: usize, band: &Band) -> Vec<i64> {
    (0..word.len()).map(|n| band.at(word, row, n) as i64).collect()
}

#[test]
fn model_and_verilog_match_the_isa() {
    for (cols, seed) in [(1usize, 1u64), (3, 2), (4, 3), (8, 4)] {
        let cs = cases(cols, 400, seed);
        let mut uut = BandUnit::new(cols);
        uut.connect_all();
        for (word, row, band) in &cs {
            for (lane, &w) in uut.word.iter_mut().zip(word) {
                lane.next = (w as i64).into();
            }
            uut.row.next = (*row as u64).into();
            uut.stride.next = (band.stride as u64).into();
            uut.taps.next = (band.taps as u64).into();
            uut.width.next = (band.width as u64).into();
            assert!(settle(&mut uut));
            let got: Vec<i64> = uut.out.iter().map(|o| o.val().bigint().try_into().unwrap()).collect();
            assert_eq!(got, expected(word, *row, band), "model: {cols} cols, row {row}, {band}");
        }
        let mut inputs: Vec<(String, usize)> = (0..cols).map(|i| (format!("word${i}"), 8)).collect();
        inputs.extend([("row", 8), ("stride", 8), ("taps", 16), ("width", 16)].map(|(n, b)| (n.to_string(), b)));
        let outputs: Vec<(String, usize)> = (0..cols).map(|n| (format!("out${n}"), 8)).collect();
        let cycles: Vec<Vec<i64>> = cs
            .iter()
            .map(|(w, r, b)| w.iter().map(|&x| x as i64).chain([*r as i64, b.stride as i64, b.taps as i64, b.width as i64]).collect())
            .collect();
        let dir = scratch(&format!("band-{cols}"));
        let got =
            icarus_vectors(&dir, &emit(&mut BandUnit::new(cols)), false, &inputs, &outputs, &cycles).unwrap_or_else(|e| panic!("{e}"));
        for ((word, row, band), g) in cs.iter().zip(&got) {
            let want: Vec<Option<i64>> = expected(word, *row, band).into_iter().map(Some).collect();
            assert_eq!(g, &want, "Icarus: {cols} cols, row {row}, {band}");
        }
    }
}

#[test]
fn verilog_lints_and_synthesizes() {
    let rtl = emit(&mut BandUnit::new(8));
    let dir = scratch("band-synth");
    let waivers = [
        ("DECLFILENAME", "rust-hdl names the top module `top`"),
        ("WIDTH", "rust-hdl writes integer literals as 32-bit constants and widens with a 16-bit mask"),
    ];
    verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{e}"));
    for family in ["ice40", "ecp5"] {
        yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
    }
}
