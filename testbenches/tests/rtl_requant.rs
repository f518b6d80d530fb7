//! The requantization unit against `systole_core::requant` (the oracle, itself checked
//! against native f32): its Rust model on many random and edge-case inputs, and its
//! Verilog under Icarus on a sample of them at every pipeline depth, answering that many
//! cycles late; plus Verilator lint and Yosys synthesis.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::requant::{requantize as oracle, ChannelParam};
use systole_hdl::requant::{requantize, Requant, MAX_STAGES};
use systole_hdl::verilog::emit;
use systole_testbenches::tools::{icarus_vectors, scratch, verilator_lint, yosys_synth};

fn expected(acc: i32, bias: i32, scale: u32, zp: i8, lo: i8, hi: i8) -> i8 {
    oracle(acc, ChannelParam { bias, scale_bits: scale }, zp, lo, hi)
}

/// Inputs: typical scales, extreme accumulators, exact ties, subnormal, huge and infinite
/// scales, and clamps that implement ReLU and ReLU6.
fn samples(n: usize, seed: u64) -> Vec<(i32, i32, u32, i8, i8, i8)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![
        (i32::MIN, 0, 1.0f32.to_bits(), 0, -128, 127),
        (i32::MAX, 1, 0.5f32.to_bits(), 3, -128, 127),
        (5, 0, 0.5f32.to_bits(), 0, -128, 127),
        (-5, 0, 0.5f32.to_bits(), 0, -128, 127),
        (7, 0, 0.5f32.to_bits(), -1, -1, 127),
        ((1 << 24) + 1, 0, 1.0f32.to_bits(), 0, -128, 127),
        (1000, 0, 1, 0, -128, 127),
        (123, 0, 0x7f80_0000, 0, -128, 127),
        (-123, 0, 0xff80_0000, 0, -128, 127),
        (0, 0, 0.25f32.to_bits(), 9, 9, 70),
    ];
    for _ in v.len()..n {
        let acc = if rng.gen_bool(0.2) { rng.gen() } else { rng.gen_range(-(1 << 20)..(1 << 20)) };
        let scale = match rng.gen_range(0..4) {
            0 => rng.gen::<u32>(),
            1 => rng.gen_range(1e-7f32..1e-2).to_bits(),
            2 => (rng.gen_range(1..64) as f32 * 2f32.powi(-rng.gen_range(1..12))).to_bits(),
            _ => rng.gen_range(1e-4f32..1.0).to_bits(),
        };
        let (zp, a, b): (i8, i8, i8) = (rng.gen(), rng.gen(), rng.gen());
        v.push((acc, rng.gen_range(-(1 << 16)..(1 << 16)), scale, zp, a.min(b), a.max(b)));
    }
    v
}

#[test]
fn model_matches_oracle_on_samples() {
    for (acc, bias, scale, zp, lo, hi) in samples(200_000, 1) {
        assert_eq!(
            requantize(acc, bias, scale, zp, lo, hi),
            expected(acc, bias, scale, zp, lo, hi),
            "{acc} {bias} {scale:#x} {zp} {lo} {hi}"
        );
    }
}

proptest! {
    #[test]
    fn model_matches_oracle(acc in any::<i32>(), bias in any::<i32>(), scale in any::<u32>(), zp in any::<i8>(), a in any::<i8>(), b in any::<i8>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert_eq!(requantize(acc, bias, scale, zp, lo, hi), expected(acc, bias, scale, zp, lo, hi));
    }
}

#[test]
fn verilog_matches_oracle_at_every_depth() {
    let cases = samples(3000, 2);
    let inputs = [("acc", 32), ("bias", 32), ("scale", 32), ("zp", 8), ("lo", 8), ("hi", 8)].map(|(n, b)| (n.to_string(), b));
    let cycles: Vec<Vec<i64>> =
        cases.iter().map(|&(a, b, s, z, l, h)| vec![a as i64, b as i64, s as i64, z as i64, l as i64, h as i64]).collect();
    for stages in 0..=MAX_STAGES {
        let dir = scratch(&format!("requant-{stages}"));
        let rtl = emit(&mut Requant::new(stages));
        let out = icarus_vectors(&dir, &rtl, stages > 0, &inputs, &[("y".to_string(), 8)], &cycles).unwrap_or_else(|e| panic!("{e}"));
        for (n, (&(acc, bias, scale, zp, lo, hi), row)) in cases.iter().zip(&out[stages..]).enumerate() {
            let want = expected(acc, bias, scale, zp, lo, hi) as i64;
            assert_eq!(row[0], Some(want), "{stages} stages, case {n}: acc {acc} bias {bias} scale {scale:#x} zp {zp} clamp [{lo}, {hi}]");
        }
    }
}

#[test]
fn verilog_lints_and_synthesizes() {
    for stages in 0..=MAX_STAGES {
        let rtl = emit(&mut Requant::new(stages));
        let dir = scratch(&format!("requant-synth-{stages}"));
        let mut waivers = vec![("DECLFILENAME", "rust-hdl names the top module `top`")];
        if stages == 0 {
            waivers.push(("UNUSEDSIGNAL", "the combinational unit has a clock port it does not use"));
        }
        verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{stages} stages: {e}"));
        if stages == MAX_STAGES {
            for family in ["ice40", "ecp5"] {
                yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
            }
        }
    }
}
