//! The requantization unit against `systole_core::requant` (the oracle, itself checked
//! against native f32): rust-hdl's simulation of its kernel on many random and edge-case
//! inputs, and at every pipeline depth both that simulation and the Verilog rust-hdl emits
//! from the same kernel, under Icarus, on a sample of them, answering that many cycles
//! late; plus Verilator lint and Yosys synthesis.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use systole_core::arch::{MAX_SERIAL_REQUANT_STAGES, REQUANT_INTERVALS};
use systole_core::requant::{requantize as oracle, ChannelParam};
use systole_hdl::requant::{read_registered, OutputStage, Requant, MAX_STAGES};
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
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
    // Every leading-zero count of |acc + bias| (the normalizer's five steps), rounding
    // both ways, with results inside the int8 range.
    for k in 0..31 {
        for (m, sign) in [(1i64 << k, 1), ((1i64 << k) + (1 << k) / 3, -1), ((2i64 << k) - 1, 1)] {
            let scale = 77.7f32 * 2f32.powi(-k);
            v.push(((sign * m.min(i32::MAX as i64)) as i32, 0, scale.to_bits(), 0, -128, 127));
        }
    }
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

/// Presents one case on the unit's inputs.
fn present(uut: &mut Requant, (acc, bias, scale, zp, lo, hi): (i32, i32, u32, i8, i8, i8)) {
    uut.acc.next = (acc as i64).into();
    uut.bias.next = (bias as i64).into();
    uut.scale.next = (scale as u64).into();
    uut.stage.next = OutputStage::new(zp, lo, hi);
}

fn output(uut: &Requant) -> i64 {
    uut.y.val().bigint().try_into().expect("a byte")
}

/// rust-hdl's simulation of the combinational unit on one case.
fn simulated(uut: &mut Requant, case: (i32, i32, u32, i8, i8, i8)) -> i8 {
    present(uut, case);
    assert!(settle(uut), "the unit settles");
    output(uut) as i8
}

fn combinational() -> Requant {
    let mut uut = Requant::new(0);
    uut.connect_all();
    uut
}

#[test]
fn simulation_matches_oracle_on_samples() {
    let mut uut = combinational();
    for case @ (acc, bias, scale, zp, lo, hi) in samples(50_000, 1) {
        assert_eq!(simulated(&mut uut, case), expected(acc, bias, scale, zp, lo, hi), "{acc} {bias} {scale:#x} {zp} {lo} {hi}");
    }
}

/// Step 3b on its own: every magnitude up to past the cap, of both signs (scale 1), through
/// zero points and clamp bounds at and between their extremes, equal bounds included.
#[test]
fn every_magnitude_meets_the_zero_point_and_clamp_exactly() {
    let mut uut = combinational();
    let bounds = [(-128, 127), (0, 127), (0, 6), (-5, -5), (-128, -128), (127, 127), (-100, 30)];
    for zp in [-128i8, -77, -1, 0, 1, 64, 127] {
        for (lo, hi) in bounds {
            for q in 0..=520i32 {
                for acc in [q, -q] {
                    let case = (acc, 0, 1.0f32.to_bits(), zp, lo, hi);
                    assert_eq!(simulated(&mut uut, case), expected(acc, 0, case.2, zp, lo, hi), "{acc} with zp {zp}, [{lo}, {hi}]");
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn simulation_matches_oracle(acc in any::<i32>(), bias in any::<i32>(), scale in any::<u32>(), zp in any::<i8>(), a in any::<i8>(), b in any::<i8>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let mut uut = combinational();
        prop_assert_eq!(simulated(&mut uut, (acc, bias, scale, zp, lo, hi)), expected(acc, bias, scale, zp, lo, hi));
    }
}

#[test]
fn simulation_answers_stages_cycles_late_at_every_depth() {
    let cases = samples(500, 3);
    for stages in 0..=MAX_STAGES {
        // Without its read register a unit answers one cycle sooner, from the depth that
        // gives it one.
        let outside = read_registered(stages) as usize;
        assert_eq!(outside == 1, stages >= 11, "the read register is the eleventh");
        for (mut uut, late) in [(Requant::new(stages), stages), (Requant::new(stages).without_read_register(), stages - outside)] {
            uut.connect_all();
            for (n, &case) in cases.iter().enumerate() {
                present(&mut uut, case);
                assert!(settle(&mut uut));
                if n >= late {
                    let (acc, bias, scale, zp, lo, hi) = cases[n - late];
                    assert_eq!(
                        output(&uut),
                        expected(acc, bias, scale, zp, lo, hi) as i64,
                        "{stages} stages answering {late} late, case {}",
                        n - late
                    );
                }
                clock_cycle(&mut uut, |u| &mut u.clock);
            }
        }
    }
}

/// The inputs of a unit with its product in logic, one case per `interval` cycles, held,
/// with `first` in each case's first cycle; the case whose result is due in cycle `t`.
fn paced(
    cases: &[(i32, i32, u32, i8, i8, i8)],
    interval: usize,
    latency: usize,
) -> impl Iterator<Item = (usize, bool, Option<usize>)> + '_ {
    (0..cases.len() * interval + latency + 1).map(move |t| {
        let due = t.checked_sub(latency).filter(|d| d.is_multiple_of(interval) && d / interval < cases.len()).map(|d| d / interval);
        ((t / interval).min(cases.len() - 1), t % interval == 0 && t / interval < cases.len(), due)
    })
}

/// With its product in logic (`requant_interval` > 1), a unit takes a value every
/// `interval` cycles, held on its inputs from `first`, and answers `stages + interval`
/// cycles after `first`, at every interval and every depth it allows; with a held output
/// stage (the store engine's, constant over an instruction) as well.
#[test]
fn a_unit_with_its_product_in_logic_answers_stages_plus_interval_cycles_late() {
    let cases = samples(150, 4);
    for interval in REQUANT_INTERVALS.into_iter().filter(|&i| i > 1) {
        for stages in 0..=MAX_SERIAL_REQUANT_STAGES {
            for held in [false, true] {
                let mut uut = Requant::new(stages).with_interval(interval);
                // A held stage is one instruction's: every case gets the same.
                let case_at = |n: usize| if held { (cases[n].0, cases[n].1, cases[n].2, 3, -100, 120) } else { cases[n] };
                if held {
                    uut = uut.with_held_stage();
                }
                uut.connect_all();
                for (n, first, due) in paced(&cases, interval, stages + interval) {
                    present(&mut uut, case_at(n));
                    uut.first.next = first;
                    assert!(settle(&mut uut));
                    if let Some(d) = due {
                        let (acc, bias, scale, zp, lo, hi) = case_at(d);
                        assert_eq!(
                            output(&uut),
                            expected(acc, bias, scale, zp, lo, hi) as i64,
                            "interval {interval}, {stages} stages, held stage {held}, case {d}"
                        );
                    }
                    clock_cycle(&mut uut, |u| &mut u.clock);
                }
            }
        }
    }
}

/// The same unit's Verilog under Icarus, and its synthesis for the iCE40 without a DSP
/// block.
#[test]
fn verilog_with_the_product_in_logic_matches_oracle_and_uses_no_dsp_block() {
    let cases = samples(400, 5);
    let inputs = [("acc", 32), ("bias", 32), ("scale", 32), ("stage", 24), ("first", 1)].map(|(n, b)| (n.to_string(), b));
    let stage = |z: i8, l: i8, h: i8| z as u8 as i64 | (l as u8 as i64) << 8 | (h as u8 as i64) << 16;
    for (interval, stages) in [(6, 7), (2, 0), (8, 8)] {
        let dir = scratch(&format!("requant-serial-{interval}-{stages}"));
        let rtl = emit(&mut Requant::new(stages).with_interval(interval));
        let schedule: Vec<_> = paced(&cases, interval, stages + interval).collect();
        let cycles: Vec<Vec<i64>> = schedule
            .iter()
            .map(|&(n, first, _)| {
                let (a, b, s, z, l, h) = cases[n];
                vec![a as i64, b as i64, s as i64, stage(z, l, h), first as i64]
            })
            .collect();
        let out = icarus_vectors(&dir, &rtl, true, &inputs, &[("y".to_string(), 8)], &cycles).unwrap_or_else(|e| panic!("{e}"));
        let mut checked = 0;
        for (&(_, _, due), row) in schedule.iter().zip(&out) {
            if let Some(d) = due {
                let (acc, bias, scale, zp, lo, hi) = cases[d];
                assert_eq!(row[0], Some(expected(acc, bias, scale, zp, lo, hi) as i64), "interval {interval}, {stages} stages, case {d}");
                checked += 1;
            }
        }
        assert_eq!(checked, cases.len());
        if (interval, stages) == (6, 7) {
            let report = yosys_synth(&dir, ("top.v", &rtl), "ice40").unwrap_or_else(|e| panic!("{e}"));
            // The statistics' cell lines: a count, then the cell type.
            let count = |kind: &str| -> usize {
                let counts = report.lines().filter_map(|l| match l.split_whitespace().collect::<Vec<_>>()[..] {
                    [n, k] if k == kind => n.parse::<usize>().ok(),
                    _ => None,
                });
                counts.sum()
            };
            assert_eq!(count("SB_MAC16"), 0, "a product in logic synthesizes to no DSP block");
            assert!(count("SB_LUT4") > 0, "{report}");
        }
    }
}

#[test]
fn verilog_matches_oracle_at_every_depth() {
    let cases = samples(3000, 2);
    let inputs = [("acc", 32), ("bias", 32), ("scale", 32), ("stage", 24)].map(|(n, b)| (n.to_string(), b));
    // The output stage's bundle holds its first field (zp) in its lowest bits.
    let stage = |z: i8, l: i8, h: i8| z as u8 as i64 | (l as u8 as i64) << 8 | (h as u8 as i64) << 16;
    let cycles: Vec<Vec<i64>> = cases.iter().map(|&(a, b, s, z, l, h)| vec![a as i64, b as i64, s as i64, stage(z, l, h)]).collect();
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
        let waivers = [
            ("DECLFILENAME", "rust-hdl names the top module `top`"),
            ("WIDTH", "rust-hdl writes integer literals and bundle offsets as 32- and 64-bit constants"),
            (
                "UNUSEDSIGNAL",
                "a boundary without a register is a zero-cycle delay with an unused clock; the rounding bit is bit 0 of a shift",
            ),
        ];
        verilator_lint(&dir, ("top.v", &rtl), &waivers).unwrap_or_else(|e| panic!("{stages} stages: {e}"));
        if stages == MAX_STAGES {
            for family in ["ice40", "ecp5"] {
                yosys_synth(&dir, ("top.v", &rtl), family).unwrap_or_else(|e| panic!("{family}: {e}"));
            }
        }
    }
}
