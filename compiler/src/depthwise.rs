//! Depthwise convolution as banded (Toeplitz) GEMMs, one per channel and kernel row.
//!
//! A depthwise layer is a batch of matrix-vector products, which a plain systolic array
//! runs at `1 / cols` utilization. Instead, for one channel and kernel row `r`, take a
//! *window* of `rows` consecutive input pixels and a banded weight matrix
//! `B[k][n] = w[r][s]` where `k = n * stride + s * dilation`: the product of the window with
//! `B` gives `Wo` adjacent outputs at once, using `Wo * S` of the array's MACs per window
//! (14 x 3 of 256 on a 16x16 array) instead of `S`. Windows advance by `Wo * stride` pixels.
//!
//! The transposer turns pixel-major input (one run = `G` channels of one pixel) into
//! channel-major activation words (one word = `rows` pixels of one channel), and the
//! transposed store turns channel-major accumulator rows back into NHWC.
//!
//! - WS: activation word `(window, input row, channel)` streams through the array once per
//!   kernel row; weight tile `(channel, r, tap chunk)` is the Toeplitz matrix.
//! - OS: the array's rows are `rows` windows; a step `k` feeds pixel `k` of each window.

use crate::emit::{assemble, Region, Step, Tiles};
use crate::layout::{Frame, Layout};
use crate::CompileError;
use systole_core::isa::{Band, Dim, DramPattern, Op, OutputStage, WordGen};
use systole_core::layer::Layer;
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow, Program, Sparsity};
use systole_mappings::depthwise::{act_words, candidates, Geometry, Tile};
use systole_mappings::search::{best, infeasible, Choice, RANKED_CANDIDATES};

/// Lowers a depthwise convolution (`groups = C = K`).
pub fn lower(
    arch: &ArchConfig,
    layer: &Layer,
    data: Option<&LayerData>,
    choice: Choice,
    frame: Option<&Frame>,
) -> Result<Program, CompileError> {
    let geo = Geometry::new(arch, layer);
    let tiles = candidates(arch, layer, &geo)?;
    let build = |t: &Tile| {
        let mut p = build(arch, layer, (data, frame), &geo, t);
        systole_core::timing::serialize_dram_port(arch, &mut p.instrs);
        p.mapping = Some(t.mapping(arch.dataflow));
        p
    };
    match choice {
        Choice::Best(objective) => Ok(best(arch, objective, tiles.iter().take(RANKED_CANDIDATES), build)),
        Choice::Fixed(m) => Ok(build(tiles.iter().find(|t| t.mapping(arch.dataflow) == m).ok_or_else(|| infeasible(layer, &m))?)),
    }
}

fn build(arch: &ArchConfig, layer: &Layer, (data, frame): (Option<&LayerData>, Option<&Frame>), geo: &Geometry, tile: &Tile) -> Program {
    let s = &layer.shape;
    let os = arch.dataflow == Dataflow::OutputStationary;
    let (rows, cols) = (arch.rows, arch.cols);
    let (st, dil) = ((s.stride[0], s.stride[1]), (s.dilation[0], s.dilation[1]));
    let step = geo.wo * st.1;
    // Windows of the last unit may read up to this many pixels past the padded row.
    let reach = (geo.bpr.div_ceil(geo.unit) * geo.unit) * step + (s.s - 1) * dil.1 + rows;
    let lay = Layout::new(layer, data, reach * s.c, frame);
    let row_pitch = lay.in_row_pitch();
    let c = s.c as i64;
    let (act_half, acc_half) = ((arch.act_words() / 2) as u32, (arch.acc_rows() / 2) as u32);
    let units = geo.bpr.div_ceil(geo.unit);
    let ht_full = (tile.pt - 1) * st.0 + (s.r - 1) * dil.0 + 1;
    let (lo, hi) = layer.clamp_bounds();

    let mut tiles = Tiles::new(cols, data);
    let mut tile_ids = rustc_hash::FxHashMap::default();
    let mut band_word = |ch: usize, r: usize, sc: usize, tiles: &mut Tiles| -> usize {
        *tile_ids.entry((ch, r, sc)).or_insert_with(|| {
            tiles.push(1, |data, bytes| {
                let s0 = sc * geo.sl;
                for ss in s0..s.s.min(s0 + geo.sl) {
                    bytes[(ss - s0) * dil.1] = data.weights.at([ch, r, ss, 0]) as u8;
                }
            })
        })
    };

    let mut steps = vec![];
    let params_fit = s.k <= arch.param_entries;
    if params_fit {
        steps.push(Step::Load { op: Op::LoadParams { dst: 0, addr: lay.params, count: s.k as u32 }, region: Region::Param });
    }
    let (mut act_buf, mut acc_buf) = (0u32, 0u32);
    for n in 0..s.n {
        for c0 in (0..s.c).step_by(tile.g) {
            let g = tile.g.min(s.c - c0);
            if !params_fit {
                steps.push(Step::Load {
                    op: Op::LoadParams { dst: 0, addr: lay.params + 8 * c0 as u64, count: g as u32 },
                    region: Region::Param,
                });
            }
            for p0 in (0..s.p()).step_by(tile.pt) {
                let pt = tile.pt.min(s.p() - p0);
                let ht = (pt - 1) * st.0 + (s.r - 1) * dil.0 + 1;
                for u0 in (0..units).step_by(tile.ut) {
                    let ut = tile.ut.min(units - u0);
                    let w0 = u0 * geo.unit;
                    let nw = ut * geo.unit;
                    let act = Region::Act(act_buf);
                    let acc_region = Region::Acc(acc_buf);
                    let (a_base, acc_base) = (act_buf * act_half, acc_buf * acc_half);
                    let per_sc = act_words(arch, geo, tile.g, ht_full, tile.ut) / geo.nsc;
                    let g32 = g as u32;
                    for sc in 0..geo.nsc {
                        let base = a_base + (sc * per_sc) as u32;
                        let x0 = w0 * step + sc * geo.sl * dil.1;
                        if os {
                            let per_row = (geo.span * ut * g) as u32;
                            for h in 0..ht {
                                let src = DramPattern {
                                    addr: lay.in_addr(n, p0 * st.0 + h, x0, c0),
                                    len: g32,
                                    dims: [
                                        Dim { count: ut as u32, stride: (rows * step) as i64 * c },
                                        Dim { count: geo.span as u32, stride: c },
                                        Dim { count: rows as u32, stride: step as i64 * c },
                                    ],
                                };
                                steps.push(Step::Load {
                                    op: Op::LoadTransposed { dst: base + h as u32 * per_row, pitch: ut as u32 * g32, src },
                                    region: act,
                                });
                            }
                        } else {
                            let src = DramPattern {
                                addr: lay.in_addr(n, p0 * st.0, x0, c0),
                                len: g32,
                                dims: [
                                    Dim { count: ht as u32, stride: row_pitch },
                                    Dim { count: ut as u32, stride: step as i64 * c },
                                    Dim { count: rows as u32, stride: c },
                                ],
                            };
                            steps.push(Step::Load { op: Op::LoadTransposed { dst: base, pitch: ht as u32 * g32, src }, region: act });
                        }
                        for j in 0..g {
                            for r in 0..s.r {
                                let tile_id = band_word(c0 + j, r, sc, &mut tiles);
                                let taps_here = s.s.min((sc + 1) * geo.sl) - sc * geo.sl;
                                let band =
                                    Some(Band { stride: st.1 as u32, taps: ((taps_here - 1) * dil.1 + 1) as u32, width: geo.wo as u32 });
                                let accumulate = sc > 0 || r > 0;
                                let acc_j = acc_base + (j * pt * nw) as u32;
                                if os {
                                    let per_row = (geo.span * ut * g) as u32;
                                    for pl in 0..pt {
                                        let h = (pl * st.0 + r * dil.0) as u32;
                                        for wc in 0..ut as u32 {
                                            let a = WordGen {
                                                start: base + h * per_row + wc * g32 + j as u32,
                                                inner_count: geo.span as u32,
                                                inner_stride: ut as u32 * g32,
                                                outer_count: 1,
                                                outer_stride: 0,
                                            };
                                            let acc = acc_j + ((pl * ut) as u32 + wc) * rows as u32;
                                            steps.push(Step::MatmulOs { tile: tile_id, a, acc, accumulate, act, acc_region, band });
                                        }
                                    }
                                } else {
                                    let a = WordGen {
                                        start: base + (r * dil.0 * g + j) as u32,
                                        inner_count: ut as u32,
                                        inner_stride: ht as u32 * g32,
                                        outer_count: pt as u32,
                                        outer_stride: (st.0 * g) as u32,
                                    };
                                    steps.push(Step::MatmulWs {
                                        tile: tile_id,
                                        a,
                                        acc: acc_j,
                                        accumulate,
                                        act,
                                        acc_region,
                                        band,
                                        sparse: Sparsity::Dense,
                                        int4: false,
                                        act4: false,
                                    });
                                }
                            }
                        }
                    }
                    let q0 = w0 * geo.wo;
                    let nq = s.q().min((w0 + nw) * geo.wo) - q0;
                    let dst = lay.out_pattern(n, p0..p0 + pt, q0..q0 + nq, c0..c0 + g);
                    let out = OutputStage { param: if params_fit { c0 as u32 } else { 0 }, zp: layer.quant.y_zp, lo, hi };
                    let op = Op::StoreTransposed {
                        acc: acc_base,
                        row_stride: (pt * nw) as u32,
                        line_pitch: nw as u32,
                        width: geo.wo as u32,
                        dst,
                        out,
                    };
                    steps.push(Step::Store { op, acc_region });
                    act_buf ^= 1;
                    acc_buf ^= 1;
                }
            }
        }
    }
    assemble(arch, s.macs(), lay, &steps, tiles)
}
