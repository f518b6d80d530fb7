//! Structured-sparse layers (docs/ARCHITECTURE.md section 3): compiled for an instance that
//! skips their N:4 format, the simulator must give golden's output, and the array must do
//! the fewer passes the format promises.

use systole_core::isa::Op;
use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Sparsity};
use systole_testbenches::{conv_layer, golden_vs_sim};

fn arch(rows: usize, cols: usize, sparsity: Sparsity) -> ArchConfig {
    ArchConfig { name: format!("{rows}x{cols}-{sparsity}"), rows, cols, sparsity, ..ArchConfig::preset_8x8() }
}

fn shape(h: usize, c: usize, k: usize, r: usize) -> ConvShape {
    ConvShape { n: 1, h, w: h, c, k, r, s: r, stride: [1, 1], dilation: [1, 1], pad: [r / 2; 4], groups: 1 }
}

/// The K-steps of a layer of `runs` kernel rows of `run` bytes with `expansion` chunks per
/// pass (chunks are the runs cut at `rows`, the short tails packed), and the words its
/// program streams; `check` sees every WS matmul's format. Each (pixel, K-step, column
/// tile) streams once, so the words streamed are `P*Q*ksteps*ceil(K/cols)`.
fn passes(
    program: &systole_core::Program,
    rows: usize,
    run: usize,
    runs: usize,
    expansion: usize,
    check: impl Fn(Sparsity, bool, bool),
) -> (usize, usize) {
    let ksteps = ksteps(rows, run, runs, expansion);
    let streamed = program
        .instrs
        .iter()
        .filter_map(|i| match i.op {
            Op::MatmulWs { a, sparse, int4, act4, .. } => {
                check(sparse, int4, act4);
                Some(a.len() as usize)
            }
            _ => None,
        })
        .sum();
    (ksteps, streamed)
}

/// K-steps of `expansion` chunks for `runs` kernel rows of `run` bytes on `rows` rows.
fn ksteps(rows: usize, run: usize, runs: usize, expansion: usize) -> usize {
    let tails = if run.is_multiple_of(rows) { 0 } else { (runs * (run % rows)).div_ceil(rows) };
    (runs * (run / rows) + tails).div_ceil(expansion)
}

#[test]
fn sparse_layers_match_golden_in_every_format() {
    for (rows, cols) in [(4, 4), (8, 8), (8, 4), (16, 8)] {
        for hw in [Sparsity::TwoOfFour, Sparsity::OneOfFour] {
            for weights in [Sparsity::TwoOfFour, Sparsity::OneOfFour] {
                for (h, c, k, r) in [(6, 8, 8, 3), (5, 12, 6, 1), (4, 20, 9, 3), (3, 4, 3, 2)] {
                    let mut layer = conv_layer("sparse", LayerOp::Conv, shape(h, c, k, r), 3, -2, Activation::Relu, true);
                    layer.sparsity = weights;
                    let data = LayerData::random(&layer, (rows * 31 + c * 7 + k) as u64);
                    let a = arch(rows, cols, hw);
                    let out = golden_vs_sim(&a, &layer, &data).unwrap_or_else(|e| panic!("{} {layer:?}: {e}", a.name));
                    assert_eq!(out.mismatch(), None, "{} {}x{}x{} k{} r{}", a.name, h, h, c, k, r);
                    let format = weights.min(hw);
                    let (ksteps, streamed) =
                        passes(&out.program, rows, r * c, r, format.expansion(), |sparse, _, _| assert_eq!(sparse, format));
                    assert_eq!(streamed, layer.shape.p() * layer.shape.q() * ksteps * k.div_ceil(cols), "{} c{c} k{k} r{r}", a.name);
                }
            }
        }
    }
}

/// Packed int4 weights on an instance with `int4_weights`: golden's output, in half the
/// K-steps (two chunks per pass); on an instance without, the same layer runs dense.
#[test]
fn int4_layers_match_golden_in_half_the_passes() {
    for (rows, cols) in [(4, 4), (8, 4), (16, 8)] {
        for (h, c, k, r) in [(6, 8, 8, 3), (5, 3, 6, 3), (4, 21, 9, 1), (3, 5, 3, 2)] {
            let mut layer = conv_layer("int4", LayerOp::Conv, shape(h, c, k, r), -3, 2, Activation::Relu6, true);
            layer.weight_bits = 4;
            let data = LayerData::random(&layer, (rows * 17 + c * 5 + k) as u64);
            assert!(data.weights.data.iter().all(|w| (-7..=7).contains(w)) && data.weights.data.iter().any(|&w| w.abs() == 7));
            for int4_weights in [true, false] {
                let a = ArchConfig { int4_weights, ..arch(rows, cols, Sparsity::Dense) };
                let out = golden_vs_sim(&a, &layer, &data).unwrap_or_else(|e| panic!("{}: {e}", a.name));
                assert_eq!(out.mismatch(), None, "{} c{c} k{k} r{r}", a.name);
                let expansion = if int4_weights { 2 } else { 1 };
                let (ksteps, streamed) =
                    passes(&out.program, rows, r * c, r, expansion, |_, int4, act4| assert_eq!((int4, act4), (int4_weights, false)));
                assert_eq!(streamed, layer.shape.p() * layer.shape.q() * ksteps * k.div_ceil(cols), "{} c{c} k{k} r{r}", a.name);
            }
        }
    }
}

/// int4 weights and int4 activations on an instance with `int4_activations`: golden's
/// output (int4 or int8 outputs) in a quarter of the K-steps (four chunks per pass) where
/// that is fewer than half (else the compiler keeps packed int4, whose tiles are half the
/// size); with only `int4_weights` the same layer takes half, and on a plain instance all
/// of them.
#[test]
fn int4x4_layers_match_golden_in_a_quarter_of_the_passes() {
    let (mut saturated, mut quads) = (false, 0);
    for (rows, cols) in [(4, 4), (8, 4), (16, 8)] {
        for (h, c, k, r) in [(6, 8, 8, 3), (5, 3, 6, 3), (4, 37, 9, 1), (3, 5, 3, 2), (2, 64, 5, 1)] {
            for output_bits in [4, 8] {
                let mut layer = conv_layer("int4x4", LayerOp::Conv, shape(h, c, k, r), -3, 2, Activation::Relu, true);
                (layer.weight_bits, layer.act_bits, layer.output_bits) = (4, 4, output_bits);
                // Inputs a sixteenth and weights an eighteenth of the int8 spread; int4
                // outputs spread over a sixteenth of the codes.
                layer.quant.y_scale /= if output_bits == 4 { 18.0 } else { 288.0 };
                let data = LayerData::random(&layer, (rows * 13 + c * 3 + k) as u64);
                assert!(data.input.data.iter().all(|x| (-8..=7).contains(x)) && data.input.data.iter().any(|&x| x < -4));
                let expected = systole_golden::layer(&layer, &data);
                let inside = expected.data.iter().filter(|&&y| 2 < y && y < if output_bits == 4 { 7 } else { 127 }).count();
                assert!(inside * 8 >= expected.data.len(), "c{c} k{k} r{r} bits {output_bits}: outputs saturate: {:?}", expected.data);
                if output_bits == 4 {
                    assert!(expected.data.iter().all(|y| (2..=7).contains(y)), "ReLU with zero point 2, saturated at 7");
                    saturated |= expected.data.contains(&7);
                }
                for (int4_weights, int4_activations) in [(true, true), (true, false), (false, false)] {
                    let quad = int4_activations && ksteps(rows, r * c, r, 4) < ksteps(rows, r * c, r, 2);
                    quads += usize::from(quad);
                    let expansion = if quad {
                        4
                    } else if int4_weights {
                        2
                    } else {
                        1
                    };
                    let a = ArchConfig { int4_weights, int4_activations, ..arch(rows, cols, Sparsity::Dense) };
                    let out = golden_vs_sim(&a, &layer, &data).unwrap_or_else(|e| panic!("{}: {e}", a.name));
                    assert_eq!(out.mismatch(), None, "{} c{c} k{k} r{r}", a.name);
                    let (ksteps, streamed) =
                        passes(&out.program, rows, r * c, r, expansion, |_, int4, act4| assert_eq!((int4, act4), (int4_weights, quad)));
                    assert_eq!(streamed, layer.shape.p() * layer.shape.q() * ksteps * k.div_ceil(cols), "{} c{c} k{k} r{r}", a.name);
                }
            }
        }
    }
    assert!(saturated, "some int4 outputs should saturate at 7");
    assert!(quads >= 20, "{quads} of 30 cases run int4 x int4");
}

/// The bundled compressed workload: its layers' random data satisfy their declared
/// formats, and on the sparse preset each runs in that format (depthwise stays dense).
#[test]
fn bundled_compressed_workload_runs_in_its_formats() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let wl = systole_core::workload::Workload::from_file(&root.join("configs/workloads/compressed.toml")).unwrap();
    let arch = ArchConfig::from_file(&root.join("configs/archs/16x16-sparse.toml")).unwrap();
    for (i, layer) in wl.layers.iter().enumerate() {
        let data = wl.layer_data(i).unwrap();
        assert!(systole_core::layer::weight_sparsity(&layer.shape, &data.weights) >= layer.sparsity, "{}", layer.name);
        assert!(systole_core::layer::value_bits(&data.weights) <= layer.weight_bits, "{}", layer.name);
        let program = systole_compiler::plan_layer(&arch, layer, systole_mappings::search::Choice::Best(Default::default())).unwrap();
        let formats: std::collections::BTreeSet<(Sparsity, bool)> = program
            .instrs
            .iter()
            .filter_map(|i| match i.op {
                Op::MatmulWs { sparse, int4, .. } => Some((sparse, int4)),
                _ => None,
            })
            .collect();
        let want = (layer.sparsity, layer.weight_bits == 4);
        assert_eq!(formats.into_iter().collect::<Vec<_>>(), vec![want], "{}", layer.name);
    }
}

/// Unstructured-sparse GEMMs (docs/ARCHITECTURE.md section 3, CSC tiles) on instances
/// with `csc_weights`: the simulator gives golden's output, and the program preloads
/// exactly the CSC tiles the weights call for, counted here from the weights: tile
/// `(kt, nt)` covers reduction rows `kt*rows..` and output columns `nt*cols..`; its `V` is
/// the most nonzeros of any of its columns, and it is CSC when `ceil(rows/8) + V < rows`.
#[test]
fn csc_gemms_match_golden_and_preload_the_nonzeros() {
    for (rows, cols) in [(4, 4), (8, 8), (16, 8)] {
        for (k, n, density) in [(40, 12, 0.1), (64, 16, 0.3), (33, 9, 0.05)] {
            let layer = systole_core::Layer {
                density,
                ..conv_layer("csc_gemm", LayerOp::Gemm, ConvShape::gemm(1, 1, k, n), 1, 0, Activation::None, true)
            };
            let data = LayerData::random(&layer, (rows * 13 + k + n) as u64);
            let a = ArchConfig { name: format!("{rows}x{cols}-csc"), rows, cols, csc_weights: true, ..ArchConfig::preset_8x8() };
            let out = golden_vs_sim(&a, &layer, &data).unwrap_or_else(|e| panic!("{} {k}x{n}: {e}", a.name));
            assert_eq!(out.mismatch(), None, "{} {k}x{n}", a.name);
            let mut expected = vec![];
            for kt in 0..k.div_ceil(rows) {
                for nt in 0..n.div_ceil(cols) {
                    let column =
                        |j: usize| (kt * rows..((kt + 1) * rows).min(k)).filter(|&kk| j < n && data.weights.at([j, 0, 0, kk]) != 0).count();
                    let v = (nt * cols..(nt + 1) * cols).map(column).max().unwrap_or(0);
                    if rows.div_ceil(8) + v < rows {
                        expected.push(v as u32);
                    }
                }
            }
            let program = systole_compiler::compile_layer(&a, &layer, &data).unwrap();
            let mut preloaded: Vec<u32> = program
                .instrs
                .iter()
                .filter_map(|i| match i.op {
                    Op::MatmulWs { csc, .. } => csc,
                    _ => None,
                })
                .collect();
            assert!(density > 0.1 || !expected.is_empty(), "{} {k}x{n}: no tile sparse enough for CSC", a.name);
            expected.sort_unstable();
            preloaded.sort_unstable();
            assert_eq!(preloaded, expected, "{} {k}x{n} density {density}", a.name);
        }
    }
}
