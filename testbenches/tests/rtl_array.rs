//! The systolic arrays, rung by rung: reference products, rust-hdl's simulator and the
//! emitted Verilog under Icarus see the same per-cycle stimulus and must agree on every
//! output in every cycle. The Verilog also passes Verilator's lint and Yosys synthesis.

use systole_hdl::rust_hdl::prelude::Block;
use systole_testbenches::array_cases::ArrayCase;
use systole_testbenches::tools::{scratch, verilator_lint, yosys_synth};

fn cases() -> Vec<ArrayCase> {
    vec![
        ArrayCase::weight_stationary(2, 2, &[3, 1, 2, 5], 1),
        ArrayCase::weight_stationary(4, 4, &[8, 4, 6, 1, 2, 9], 2),
        ArrayCase::weight_stationary(3, 5, &[5, 3, 1, 7], 3),
        ArrayCase::weight_stationary(5, 2, &[1, 1, 6, 5], 4),
        ArrayCase::weight_stationary(1, 1, &[2, 1, 3], 5),
        ArrayCase::weight_stationary(8, 8, &[16, 8, 3, 8], 6),
        // Each PE keeps only the bits its row's partial sums can have: the extremes reach
        // them (a column of twelve -128 * -128 is 196,608, 19 bits).
        ArrayCase::weight_stationary_extremes(12, 3, &[6, 4], 13),
        ArrayCase::weight_stationary_extremes(1, 2, &[3, 2], 14),
        ArrayCase::output_stationary(2, 2, &[3, 1, 2, 5], 7),
        ArrayCase::output_stationary(4, 4, &[8, 4, 6, 1, 2, 9], 8),
        ArrayCase::output_stationary(3, 5, &[5, 3, 1, 7], 9),
        ArrayCase::output_stationary(5, 2, &[1, 1, 6, 5], 10),
        ArrayCase::output_stationary(1, 1, &[2, 1, 3], 11),
        ArrayCase::output_stationary(8, 8, &[16, 8, 3, 8], 12),
    ]
}

#[test]
fn rust_hdl_matches_reference() {
    for case in cases() {
        if let Some(m) = case.first_mismatch(&case.run_rust_hdl()) {
            panic!("rust-hdl: {m}");
        }
    }
}

#[test]
fn verilog_matches_reference() {
    for (i, case) in cases().into_iter().enumerate() {
        let dir = scratch(&format!("array-{i}"));
        let outs = case.run_verilog(&dir).unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = case.first_mismatch(&outs) {
            panic!("Icarus: {m}");
        }
    }
}

/// Warnings waived for the emitted arrays, each with its reason.
const WAIVERS: &[(&str, &str)] = &[
    ("DECLFILENAME", "rust-hdl names the top module `top`"),
    ("UNUSEDSIGNAL", "the rightmost PEs' activation and flag outputs and the bottom PEs' weight outputs lead nowhere"),
];

#[test]
fn verilog_lints_and_synthesizes() {
    for (name, case) in [("ws", ArrayCase::weight_stationary(4, 4, &[], 0)), ("os", ArrayCase::output_stationary(4, 4, &[], 0))] {
        let rtl = case.verilog();
        let dir = scratch(&format!("array-lint-{name}"));
        verilator_lint(&dir, ("top.v", &rtl), WAIVERS).unwrap_or_else(|e| panic!("{name}: {e}"));
        for family in ["ice40", "ecp5"] {
            let log = yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{name}: {e}"));
            let stats = log.rsplit("Printing statistics").next().unwrap_or("");
            assert!(log.contains("Printing statistics") && stats.contains(" cells"), "{name} {family}: no statistics in the log:\n{log}");
        }
    }
}

/// Every cycle's product of the operands `latency` cycles earlier (`None` before then), as
/// two's complement or unsigned integers truncated to `p_bits`: the PE's multiplier leaf.
fn products(ins: &[(u64, u64)], (a_bits, b_bits, p_bits): (usize, usize, usize), signed: bool, latency: usize) -> Vec<Option<u64>> {
    let value = |x: u64, bits: usize| if signed { ((x << (64 - bits)) as i64) >> (64 - bits) } else { x as i64 };
    (0..ins.len())
        .map(|t| {
            let (a, b) = *ins.get(t.checked_sub(latency)?)?;
            Some((value(a, a_bits).wrapping_mul(value(b, b_bits)) as u64) & ((1u64 << p_bits) - 1))
        })
        .collect()
}

/// The iCE40 body of one DSP leaf (`SYSTOLE_ICE40`: an SB_MAC16 with its registers as
/// asked), synthesized by the FPGA flow's own Yosys script and run as a netlist under
/// Icarus with Yosys's cell models: every cycle's output against [`products`].
fn check_ice40_leaf<const A: usize, const B: usize, const P: usize>(signed: bool, reg_in: bool, reg_out: bool) {
    use rand::{Rng, SeedableRng};
    let name = format!("ice40-dsp-{A}x{B}-{P}-{signed}-{reg_in}-{reg_out}");
    let mut leaf = systole_hdl::dsp::DspProduct::<A, B, P>::new(signed, reg_in, reg_out);
    let latency = leaf.latency();
    let dir = scratch(&name);
    let flat = ice40_netlist(&name, &mut leaf, &dir);
    let (amax, bmax) = ((1u64 << A) - 1, (1u64 << B) - 1);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(A as u64 * 31 + P as u64);
    // The corners, then random operands.
    let mut ins: Vec<(u64, u64)> = corners(amax).into_iter().flat_map(|a| corners(bmax).map(|b| (a, b))).collect();
    ins.extend((0..40).map(|_| (rng.gen_range(0..=amax), rng.gen_range(0..=bmax))));
    let rows: Vec<Vec<i64>> = ins.iter().map(|&(a, b)| vec![a as i64, b as i64]).collect();
    let outs =
        systole_testbenches::tools::icarus_vectors(&dir, &flat, true, &[("a".into(), A), ("b".into(), B)], &[("p".into(), P)], &rows)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (t, want) in products(&ins, (A, B, P), signed, latency).into_iter().enumerate() {
        let Some(want) = want else { continue };
        let got = outs[t][0].map(|p| (p as u64) & ((1u64 << P) - 1));
        assert_eq!(got, Some(want), "{name}, cycle {t}: {:?} x {:?}", ins[t - latency].0, ins[t - latency].1);
    }
}

/// Synthesizes `leaf`'s Verilog with the FPGA flow's own iCE40 script and returns the
/// netlist with the Yosys cell models it instantiates, checking that it holds an SB_MAC16.
fn ice40_netlist(name: &str, leaf: &mut impl Block, dir: &std::path::Path) -> String {
    let flat = systole_testbenches::tools::ice40_netlist(dir, &systole_hdl::verilog::emit(leaf)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(flat.matches("SB_MAC16 #(").count(), 1, "{name}: not one SB_MAC16 in the netlist:\n{flat}");
    flat
}

/// The corners of an operand of `max + 1` values (both signs' extremes, zero, one).
fn corners(max: u64) -> [u64; 5] {
    [0, 1, max, max >> 1, (max >> 1) + 1]
}

/// The iCE40 body of the shared multiplier ([`systole_hdl::dsp::DspPair`]: one SB_MAC16 in
/// dual 8x8 mode), synthesized by the flow's script and simulated with Yosys's cell
/// model: both products, every cycle, against [`products`] of each operand pair.
fn check_ice40_pair(reg_in: bool, reg_out: bool) {
    use rand::{Rng, SeedableRng};
    let name = format!("ice40-dsp-pair-{reg_in}-{reg_out}");
    let mut leaf = systole_hdl::dsp::DspPair::new(reg_in, reg_out);
    let latency = leaf.latency();
    let dir = scratch(&name);
    let flat = ice40_netlist(&name, &mut leaf, &dir);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(reg_in) * 2 + u64::from(reg_out));
    // Every pair of corners on one product while the other takes random operands (each
    // half of A and B must not disturb the other), then random operands on both.
    let mut ins: Vec<[u64; 4]> = vec![];
    for a in corners(255) {
        for b in corners(255) {
            let (x, y) = (rng.gen_range(0..256), rng.gen_range(0..256));
            ins.push([a, b, x, y]);
            ins.push([x, y, a, b]);
        }
    }
    ins.extend((0..40).map(|_| [0; 4].map(|_| rng.gen_range(0..256))));
    // With operand registers the SB_MAC16 takes the previous cycle's weights from the PEs'
    // `active` registers (`b0_q`, `b1_q`): here, the previous row's.
    let rows: Vec<Vec<i64>> = ins
        .iter()
        .enumerate()
        .map(|(t, i)| {
            let before = if t == 0 { [0; 4] } else { ins[t - 1] };
            [i[0], i[1], i[2], i[3], before[1], before[3]].map(|x| x as i64).to_vec()
        })
        .collect();
    let ports = ["a0", "b0", "a1", "b1", "b0_q", "b1_q"].map(|p| (p.to_string(), 8));
    let outs = systole_testbenches::tools::icarus_vectors(&dir, &flat, true, &ports, &[("p0".into(), 32), ("p1".into(), 32)], &rows)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, (a, b)) in [(0, 1), (2, 3)].into_iter().enumerate() {
        let operands: Vec<(u64, u64)> = ins.iter().map(|i| (i[a], i[b])).collect();
        for (t, want) in products(&operands, (8, 8, 32), true, latency).into_iter().enumerate() {
            let Some(want) = want else { continue };
            let got = outs[t][k].map(|p| (p as u64) & 0xffff_ffff);
            assert_eq!(got, Some(want), "{name}, product {k}, cycle {t}: {:?}", operands[t - latency]);
        }
    }
}

/// The iCE40 body of a pair that holds its PEs' weights
/// ([`systole_hdl::dsp::DspPair::with_held_weights`]: the SB_MAC16's B register loaded
/// with `b0_new`/`b1_new` when `b_load` is set, `BHOLD` otherwise): both products, every
/// cycle, against a model of that register, while `b0`, `b1`, `b0_q` and `b1_q` carry
/// noise that must not reach them.
fn check_ice40_held_pair(reg_out: bool) {
    use rand::{Rng, SeedableRng};
    let name = format!("ice40-dsp-held-pair-{reg_out}");
    let mut leaf = systole_hdl::dsp::DspPair::new(true, reg_out).with_held_weights();
    let latency = leaf.latency();
    let dir = scratch(&name);
    let flat = ice40_netlist(&name, &mut leaf, &dir);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17 + u64::from(reg_out));
    // Per cycle: a0, a1, b_load, b0_new, b1_new, then the noise on b0, b1, b0_q, b1_q.
    // Loads come in runs and gaps, with the weights' corners among the new values.
    let weights = corners(255);
    let ins: Vec<[u64; 9]> = (0..120)
        .map(|t| {
            let mut i = [0u64; 9].map(|_| rng.gen_range(0..256));
            i[2] = u64::from(t % 7 == 0 || rng.gen_range(0..4) == 0);
            for x in &mut i[3..5] {
                if rng.gen_range(0..3) == 0 {
                    *x = weights[rng.gen_range(0..5)];
                }
            }
            i
        })
        .collect();
    // The B registers: the new weights of the last load before each cycle.
    let mut held = [0u64; 2];
    let operands: Vec<[(u64, u64); 2]> = ins
        .iter()
        .map(|i| {
            let now = held;
            if i[2] == 1 {
                held = [i[3], i[4]];
            }
            [(i[0], now[0]), (i[1], now[1])]
        })
        .collect();
    let rows: Vec<Vec<i64>> = ins.iter().map(|i| i.iter().map(|&x| x as i64).collect()).collect();
    let ports = [("a0", 8), ("a1", 8), ("b_load", 1), ("b0_new", 8), ("b1_new", 8), ("b0", 8), ("b1", 8), ("b0_q", 8), ("b1_q", 8)]
        .map(|(p, w)| (p.to_string(), w));
    let outs = systole_testbenches::tools::icarus_vectors(&dir, &flat, true, &ports, &[("p0".into(), 32), ("p1".into(), 32)], &rows)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    for k in 0..2 {
        // The A register takes the previous cycle's activation, the B register holds the
        // weight loaded before it: a product of `a(t - 1)` and the weight in cycle `t`,
        // `reg_out` cycles later still.
        let pairs: Vec<(u64, u64)> = (0..ins.len()).map(|t| (if t == 0 { 0 } else { ins[t - 1][k] }, operands[t][k].1)).collect();
        // Before the first clock edge the cell model's registers are unknown.
        for (t, want) in products(&pairs, (8, 8, 32), true, latency - 1).into_iter().enumerate().skip(latency) {
            let Some(want) = want else { continue };
            let got = outs[t][k].map(|p| (p as u64) & 0xffff_ffff);
            assert_eq!(got, Some(want), "{name}, product {k}, cycle {t}: {:?}", pairs[t + 1 - latency]);
        }
    }
}

#[test]
fn the_ice40_dsp_pair_is_two_exact_products_after_their_registers() {
    for (reg_in, reg_out) in [(false, false), (true, false), (false, true), (true, true)] {
        check_ice40_pair(reg_in, reg_out);
    }
    for reg_out in [false, true] {
        check_ice40_held_pair(reg_out);
    }
}

#[test]
fn the_ice40_dsp_leaf_is_the_exact_product_after_its_registers() {
    // The PE's int8 product at each stage count, and the requantizer's unsigned 16x16
    // partial products.
    for (reg_in, reg_out) in [(false, false), (true, false), (false, true), (true, true)] {
        check_ice40_leaf::<8, 8, 32>(true, reg_in, reg_out);
    }
    check_ice40_leaf::<16, 16, 32>(false, true, true);
    check_ice40_leaf::<8, 8, 16>(true, false, true);
}
