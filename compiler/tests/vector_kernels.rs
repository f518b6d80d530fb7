//! The vector unit's kernels against the golden model's operators, on every input.

use rand::{Rng, SeedableRng};
use systole_compiler::vector::Kernel;
use systole_core::layer::Activation;
use systole_core::network::Quant;

fn quant(rng: &mut impl Rng) -> Quant {
    Quant { scale: rng.gen_range(0.001f32..0.5), zp: rng.gen_range(-20i8..20) }
}

/// The kernel's result for one pair: the tables, the sum, the store's rounding.
fn add_by_kernel(k: &Kernel, a: i8, b: i8) -> i8 {
    k.output(k.tables[0][a as u8 as usize].wrapping_add(k.tables[1][b as u8 as usize]))
}

#[test]
fn add_kernels_equal_qlinearadd_on_every_pair() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    for case in 0..24 {
        let (aq, bq, yq) = (quant(&mut rng), quant(&mut rng), quant(&mut rng));
        let act = [Activation::None, Activation::Relu][case % 2];
        let hint_a = |v: i8| (aq.scale as f64 * (v as f64 - aq.zp as f64)) / yq.scale as f64 + yq.zp as f64;
        let hint_b = |v: i8| (bq.scale as f64 * (v as f64 - bq.zp as f64)) / yq.scale as f64;
        let k = Kernel::add((hint_a, hint_b), |a, b| systole_golden::add_one(a, aq, b, bq, yq, act))
            .unwrap_or_else(|| panic!("no add kernel for {aq:?} + {bq:?} -> {yq:?}"));
        for a in i8::MIN..=i8::MAX {
            for b in i8::MIN..=i8::MAX {
                assert_eq!(add_by_kernel(&k, a, b), systole_golden::add_one(a, aq, b, bq, yq, act), "{a} + {b}, {aq:?} {bq:?} {yq:?}");
            }
        }
    }
}

#[test]
fn average_kernels_equal_qlinearaveragepool_on_every_sum() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for count in [4usize, 9, 49] {
        let (xq, yq) = (quant(&mut rng), quant(&mut rng));
        let k = Kernel::average(count, xq, yq, |s| systole_golden::average(s, count as f32, xq.scale, yq.scale, yq.zp))
            .unwrap_or_else(|| panic!("no average kernel for {count} of {xq:?} -> {yq:?}"));
        for s in count as i32 * (-128 - xq.zp as i32)..=count as i32 * (127 - xq.zp as i32) {
            assert_eq!(k.output(s), systole_golden::average(s, count as f32, xq.scale, yq.scale, yq.zp), "sum {s}");
        }
        // The table maps each byte to its distance from the zero point.
        assert_eq!(k.tables[0][(xq.zp as u8).wrapping_add(1) as usize], 1);
    }
}
