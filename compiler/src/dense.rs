//! Dense and grouped convolution and GEMM as an implicit-im2col GEMM.
//!
//! The reduction dimension is cut into *runs* of bytes contiguous in the padded NHWC input:
//! with unit horizontal dilation and one group, a whole kernel row (`S * C` bytes); otherwise
//! one tap (`C / groups` bytes). Runs are cut into *chunks* of at most `rows` bytes, the
//! K-granule of the array. An output tile is a rectangle of `pt x qt` output pixels.
//!
//! - WS: activation word `kt * M + m` holds chunk `kt` of pixel `m`; weight tile `(nt, kt)`
//!   (`rows` words) is preloaded while the previous tile streams. Accumulator row
//!   `nt * M + m` gathers channels `nt*cols..` of pixel `m`.
//! - WS, sparse (N:4) or packed int4 layers: a K-step of `E` chunks (`E = 4/N`, or 2 for
//!   int4) sits in activation banks `0..E` at one offset and one compressed or packed tile
//!   covers it (docs/ARCHITECTURE.md section 3), so the array makes `E` times fewer passes.
//! - OS: pixels go down the array in blocks of `rows`; the transposer writes activation word
//!   `block * Kg + k`; weight segment `(nt, k-group)` streams one word per step.

use crate::emit::{assemble, Region, Step, Tiles};
use crate::layout::{Frame, Layout};
use crate::CompileError;
use systole_core::isa::{Buffer, Dim, DramPattern, Op, OutputStage, WordGen};
use systole_core::layer::Layer;
use systole_core::mapping::LoopOrder;
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Program, Sparsity};
use systole_mappings::dense::{runs, Chunk, DenseSpace, Piece, Run, Tiling};
use systole_mappings::search::{best, infeasible, Choice, RANKED_CANDIDATES};

/// WS tiles of a CSC layer by (group, column tile, K-chunk): the value words of a CSC tile
/// (`None` for a tile kept dense) and its bytes.
type CscTiles = rustc_hash::FxHashMap<(usize, usize, usize), (Option<u32>, Vec<u8>)>;

/// Builds every WS tile of a CSC-eligible layer from its weights: CSC where that is
/// smaller, dense otherwise; and sets `csc_words` to the largest tile.
fn csc_tiles(problem: &mut DenseSpace, runs: &[Run], data: &LayerData) -> CscTiles {
    let (rows, cols) = (problem.arch.rows, problem.arch.cols);
    let s = &problem.layer.shape;
    let masks = systole_core::isa::csc_mask_words(rows);
    let mut tiles = CscTiles::default();
    let mut largest = 0;
    for g in 0..s.groups {
        for nt in 0..problem.nt {
            for (kt, chunk) in problem.chunks.iter().enumerate() {
                let mut dense = vec![0u8; rows * cols];
                write_dense(problem, runs, std::slice::from_ref(chunk), (g, nt), data, &mut dense);
                let values = (0..cols).map(|j| (0..rows).filter(|&k| dense[k * cols + j] != 0).count()).max().unwrap_or(0);
                let tile = if masks + values < rows { (Some(values as u32), pack_csc(rows, cols, values, &dense)) } else { (None, dense) };
                largest = largest.max(tile.1.len() / cols);
                tiles.insert((g, nt, kt), tile);
            }
        }
    }
    problem.csc_words = (largest < rows).then_some(largest);
    tiles
}
/// Writes the dense weights of `chunks` for column tile `nt` of group `g` into `bytes`,
/// one word per reduction index: a WS chunk takes `rows` words, an OS one its length.
fn write_dense(problem: &DenseSpace, runs: &[Run], chunks: &[Chunk], (g, nt): (usize, usize), data: &LayerData, bytes: &mut [u8]) {
    let (cols, kg) = (problem.arch.cols, problem.layer.shape.kg());
    let mut word = 0;
    for c in chunks {
        for p in &c.pieces {
            for k in 0..p.len {
                let (r, ss, ch) = runs[p.run].taps[p.off + k];
                for j in 0..cols.min(kg - nt * cols) {
                    bytes[(word + p.at + k) * cols + j] = data.weights.at([g * kg + nt * cols + j, r, ss, ch]) as u8;
                }
            }
        }
        word += if problem.os() { c.len } else { problem.arch.rows };
    }
}
/// Lowers a dense or grouped convolution, or a GEMM.
pub fn lower(
    arch: &ArchConfig,
    layer: &Layer,
    data: Option<&LayerData>,
    choice: Choice,
    frame: Option<&Frame>,
) -> Result<Program, CompileError> {
    let runs = runs(layer);
    let mut problem = DenseSpace::new(arch, layer, &runs);
    let csc_tiles = match data {
        Some(data) if problem.csc_eligible() => csc_tiles(&mut problem, &runs, data),
        _ => CscTiles::default(),
    };
    if let Some(data) = data {
        check_sparsity(layer, data, problem.format)?;
        if problem.int4 && systole_core::layer::value_bits(&data.weights) > 4 {
            return Err(CompileError::Invalid {
                layer: layer.name.clone(),
                help: Some("quantize the weights to int4 or declare weight_bits = 8".into()),
                error: Box::new(systole_core::ConfigError::new("weight_bits", "the layer declares 4, but its weights exceed -8..=7")),
            });
        }
        if problem.act4 && systole_core::layer::value_bits(&data.input) > 4 {
            return Err(CompileError::Invalid {
                layer: layer.name.clone(),
                help: Some("quantize the activations to int4 or declare act_bits = 8".into()),
                error: Box::new(systole_core::ConfigError::new("act_bits", "the layer declares 4, but its inputs exceed -8..=7")),
            });
        }
    }
    let candidates = problem.candidates()?;
    // WS weight tiles are one K-chunk each, the same bytes whatever the tiling: build each
    // once for all candidates.
    let ws_tiles = std::cell::RefCell::new(rustc_hash::FxHashMap::default());
    let build = |t: &Tiling| {
        let mut p = build(&problem, &runs, t, (data, frame), &ws_tiles, &csc_tiles);
        p.mapping = Some(t.mapping(arch.dataflow));
        p
    };
    match choice {
        Choice::Best(objective) => {
            // The best-estimated tilings of each loop order, so that the estimate's bias
            // between orders cannot crowd either out.
            let order = |o: LoopOrder, n: usize| candidates.iter().filter(move |t| t.order == o).take(n);
            let ranked = order(LoopOrder::PixelsOuter, RANKED_CANDIDATES).chain(order(LoopOrder::ChannelsOuter, RANKED_CANDIDATES / 2));
            Ok(best(arch, objective, ranked, build))
        }
        Choice::Fixed(m) => Ok(build(candidates.iter().find(|t| t.mapping(arch.dataflow) == m).ok_or_else(|| infeasible(layer, &m))?)),
    }
}

/// WS weight tiles by (group, column tile, K-chunk), shared by the candidates of a layer.
type TileCache = std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize, usize), Vec<u8>>>;

fn build(
    problem: &DenseSpace,
    runs: &[Run],
    tiling: &Tiling,
    (data, frame): (Option<&LayerData>, Option<&Frame>),
    ws_tiles: &TileCache,
    csc_tiles: &CscTiles,
) -> Program {
    let (arch, layer) = (problem.arch, problem.layer);
    let s = &layer.shape;
    let lay = Layout::new(layer, data, 0, frame);
    let os = problem.os();
    let (rows, cols) = (arch.rows, arch.cols);
    let (act_half, acc_half) = ((problem.act_space() / 2) as u32, (arch.acc_rows() / 2) as u32);
    let (expansion, bank_words) = (problem.expansion(), arch.act_bank_words() as u32);
    let (cg, kg) = (s.cg(), s.kg());
    let row_pitch = lay.in_row_pitch();
    let cbytes = s.c as i64;

    let mut tiles = Tiles::new(cols, data);
    let mut tile_ids = rustc_hash::FxHashMap::default();
    let mut tile_id = |g: usize, nt: usize, ki: usize, chunks: &[Chunk], tiles: &mut Tiles| -> usize {
        *tile_ids.entry((g, nt, ki)).or_insert_with(|| {
            if let Some((csc, bytes)) = csc_tiles.get(&(g, nt, ki)) {
                return tiles.push_csc(bytes.len() / cols, *csc, |_, out| out.copy_from_slice(bytes));
            }
            if let (Some(words), false) = (problem.csc_words, os) {
                // Without the weights: tiles of the size estimated from the layer's density.
                let values = words - systole_core::isa::csc_mask_words(rows);
                return tiles.push_csc(words, Some(values as u32), |_, _| {});
            }
            let words: usize = if os { chunks.iter().map(|c| c.len).sum() } else { problem.tile_words() };
            tiles.push(words, |data, bytes| {
                if !os {
                    if let Some(cached) = ws_tiles.borrow().get(&(g, nt, ki)) {
                        bytes.copy_from_slice(cached);
                        return;
                    }
                }
                if problem.format != Sparsity::Dense || problem.int4 {
                    let weight = |j: usize, chunk: usize, lane: usize| -> i8 {
                        let Some(c) = chunks.get(chunk) else { return 0 };
                        let Some(p) = c.pieces.iter().find(|p| (p.at..p.at + p.len).contains(&lane)) else { return 0 };
                        let (r, ss, ch) = runs[p.run].taps[p.off + lane - p.at];
                        data.weights.at([g * kg + nt * cols + j, r, ss, ch])
                    };
                    if problem.act4 {
                        pack_int4x4(rows, cols.min(kg - nt * cols), weight, bytes);
                    } else if problem.int4 {
                        pack_int4(rows, cols.min(kg - nt * cols), weight, bytes);
                    } else {
                        pack_sparse(rows, cols.min(kg - nt * cols), problem.format, weight, bytes);
                    }
                    ws_tiles.borrow_mut().insert((g, nt, ki), bytes.to_vec());
                    return;
                }
                write_dense(problem, runs, chunks, (g, nt), data, bytes);
                if !os {
                    ws_tiles.borrow_mut().insert((g, nt, ki), bytes.to_vec());
                }
            })
        })
    };

    let mut steps = Vec::new();
    // A store reads its entries from a multiple of `cols` (a table row): the whole table is
    // loaded once only if every group's column tiles start on a row.
    let params_fit = s.k <= arch.param_entries && (s.groups == 1 || kg.is_multiple_of(cols));
    if params_fit {
        steps.push(Step::Load { op: Op::LoadParams { dst: 0, addr: lay.params, count: s.k as u32 }, region: Region::Param });
    }
    let (mut act_buf, mut acc_buf) = (0u32, 0u32);
    let chunks = &problem.chunks;
    let pixels_outer = tiling.order == LoopOrder::PixelsOuter;
    // (image, group, tile row, tile column, first column tile) in the tiling's loop order.
    let mut visits = Vec::new();
    for n in 0..s.n {
        for g in 0..s.groups {
            let tiles: Vec<(usize, usize)> =
                (0..s.p()).step_by(tiling.pt).flat_map(|p0| (0..s.q()).step_by(tiling.qt).map(move |q0| (p0, q0))).collect();
            let ngroups = (0..problem.nt).step_by(tiling.ng);
            if pixels_outer {
                visits.extend(tiles.iter().flat_map(|&(p0, q0)| ngroups.clone().map(move |ng0| (n, g, p0, q0, ng0))));
            } else {
                visits.extend(ngroups.flat_map(|ng0| tiles.iter().map(move |&(p0, q0)| (n, g, p0, q0, ng0))));
            }
        }
    }
    let mut params_held = None;
    for (n, g, p0, q0, ng0) in visits {
        let (pt, qt) = (tiling.pt.min(s.p() - p0), tiling.qt.min(s.q() - q0));
        let m = pt * qt;
        let mrows = problem.m_rows(m) as u32;
        let blocks = m.div_ceil(rows) as u32;
        let ng1 = problem.nt.min(ng0 + tiling.ng);
        if !params_fit && params_held != Some((n, g, ng0)) {
            params_held = Some((n, g, ng0));
            let k0 = g * kg + ng0 * cols;
            let count = (kg - ng0 * cols).min((ng1 - ng0) * cols);
            steps.push(Step::Load {
                op: Op::LoadParams { dst: 0, addr: lay.params + 8 * k0 as u64, count: count as u32 },
                region: Region::Param,
            });
        }
        let acc_region = Region::Acc(acc_buf);
        let acc_base = acc_buf * acc_half;
        // The DRAM runs of `piece` for `count` chunks `chunk_stride` bytes apart, every pixel
        // of the output tile.
        let piece_src = |piece: &Piece, count: usize, chunk_stride: usize| {
            let run = &runs[piece.run];
            DramPattern {
                addr: lay.in_addr(n, p0 * s.stride[0] + run.dy, q0 * s.stride[1] + run.dx, g * cg) + piece.off as u64,
                len: piece.len as u32,
                dims: [
                    Dim { count: count as u32, stride: chunk_stride as i64 },
                    Dim { count: pt as u32, stride: s.stride[0] as i64 * row_pitch },
                    Dim { count: qt as u32, stride: s.stride[1] as i64 * cbytes },
                ],
            }
        };
        for (gi, &(lo, hi)) in tiling.kgroups.iter().enumerate() {
            let act = Region::Act(act_buf);
            let a_base = act_buf * act_half;
            // Pixels outer with one k-group, the tile's activations stay for every N-group.
            if (!pixels_outer || ng0 == 0 || tiling.kgroups.len() > 1) && expansion > 1 {
                // Chunk `i` goes to bank `i % expansion`; full slices of one run that follow
                // each other in a bank merge into one DMA.
                let (c0, c1) = (lo * expansion, (hi * expansion).min(chunks.len()));
                let mut merged = vec![false; c1 - c0];
                for i in c0..c1 {
                    if merged[i - c0] {
                        continue;
                    }
                    let mut count = 1;
                    let same_run = |a: &Chunk, b: &Chunk, steps: usize| {
                        b.is_full_slice(rows) && b.pieces[0].run == a.pieces[0].run && b.pieces[0].off == a.pieces[0].off + steps * rows
                    };
                    if chunks[i].is_full_slice(rows) {
                        while i + count * expansion < c1 && same_run(&chunks[i], &chunks[i + count * expansion], count * expansion) {
                            merged[i + count * expansion - c0] = true;
                            count += 1;
                        }
                    }
                    let dst = (i % expansion) as u32 * bank_words + a_base + (i / expansion - lo) as u32 * m as u32;
                    for piece in &chunks[i].pieces {
                        let src = piece_src(piece, count, expansion * rows);
                        steps.push(Step::Load { op: Op::Load { target: Buffer::Act, dst, offset: piece.at as u32, src }, region: act });
                    }
                }
            } else if !pixels_outer || ng0 == 0 || tiling.kgroups.len() > 1 {
                let kgw: u32 = chunks[lo..hi].iter().map(|c| c.len as u32).sum();
                let mut koff = 0u32;
                let mut i = lo;
                while i < hi {
                    // Full single-run chunks that follow each other merge into one DMA.
                    let mut j = i + 1;
                    if chunks[i].is_full_slice(rows) {
                        while j < hi && chunks[j].is_full_slice(rows) && chunks[j].pieces[0].run == chunks[i].pieces[0].run {
                            j += 1;
                        }
                    }
                    for piece in &chunks[i].pieces {
                        let src = piece_src(piece, j - i, rows);
                        let op = if os {
                            Op::LoadTransposed { dst: a_base + koff + piece.at as u32, pitch: kgw, src }
                        } else {
                            Op::Load { target: Buffer::Act, dst: a_base + (i - lo) as u32 * m as u32, offset: piece.at as u32, src }
                        };
                        steps.push(Step::Load { op, region: act });
                    }
                    koff += chunks[i..j].iter().map(|c| c.len as u32).sum::<u32>();
                    i = j;
                }
            }
            for nt in ng0..ng1 {
                let acc_nt = acc_base + (nt - ng0) as u32 * mrows;
                if os {
                    let kgw: u32 = chunks[lo..hi].iter().map(|c| c.len as u32).sum();
                    let tile = tile_id(g, nt, gi, &chunks[lo..hi], &mut tiles);
                    for b in 0..blocks {
                        steps.push(Step::MatmulOs {
                            tile,
                            a: WordGen::linear(a_base + b * kgw, kgw),
                            acc: acc_nt + b * rows as u32,
                            accumulate: gi > 0,
                            act,
                            acc_region,
                            band: None,
                        });
                    }
                } else {
                    for kt in lo..hi {
                        let step_chunks = &chunks[kt * expansion..((kt + 1) * expansion).min(chunks.len())];
                        let tile = tile_id(g, nt, kt, step_chunks, &mut tiles);
                        steps.push(Step::MatmulWs {
                            tile,
                            a: WordGen::linear(a_base + (kt - lo) as u32 * m as u32, m as u32),
                            acc: acc_nt,
                            accumulate: kt > 0,
                            act,
                            acc_region,
                            band: None,
                            sparse: problem.format,
                            int4: problem.int4,
                            act4: problem.act4,
                        });
                    }
                }
            }
            if !pixels_outer || tiling.kgroups.len() > 1 || ng1 == problem.nt {
                act_buf ^= 1;
            }
        }
        for nt in ng0..ng1 {
            let len = cols.min(kg - nt * cols);
            let k0 = g * kg + nt * cols;
            let param = if params_fit { k0 } else { (nt - ng0) * cols } as u32;
            let out = OutputStage { param, zp: layer.quant.y_zp, lo: layer.clamp_bounds().0, hi: layer.clamp_bounds().1 };
            let dst = lay.out_pattern(n, p0..p0 + pt, q0..q0 + qt, k0..k0 + len);
            steps.push(Step::Store { op: Op::Store { acc: acc_base + (nt - ng0) as u32 * mrows, dst, out }, acc_region });
        }
        acc_buf ^= 1;
    }
    // A sparse array multiplies only the stored weights.
    let macs = s.macs() * problem.format.kept() as u64 / systole_core::arch::NM_GROUP as u64;
    assemble(arch, macs, lay, &steps, tiles)
}

/// Writes one compressed WS tile (docs/ARCHITECTURE.md section 3) for `rows` PE rows and
/// `cols` columns into `bytes`: for every four PE rows a metadata word (byte `j`, bits
/// `2i..2i+2`: the index within its group of the weight PE row `4q + i` of column `j`
/// holds) and then their four value words. PE row `r` takes the `(r % N)`-th nonzero of
/// group `r / N`, `N = format.kept()`, or 0; group `g` is lanes `4g..4g+4` of the K-step,
/// lane `l` being lane `l % rows` of chunk `l / rows`. `weight(j, chunk, lane)` gives the
/// weight of column `j` at a lane of a chunk (0 beyond the chunks).
fn pack_sparse(rows: usize, cols: usize, format: Sparsity, weight: impl Fn(usize, usize, usize) -> i8, bytes: &mut [u8]) {
    let keep = format.kept();
    let stride = bytes.len() / systole_core::isa::ws_tile_words(rows, format);
    for j in 0..cols {
        for r in 0..rows {
            let first = (r / keep) * systole_core::arch::NM_GROUP;
            let nonzero = (0..systole_core::arch::NM_GROUP)
                .map(|i| (i, weight(j, (first + i) / rows, (first + i) % rows)))
                .filter(|&(_, w)| w != 0)
                .nth(r % keep);
            let (index, value) = nonzero.unwrap_or((0, 0));
            let (q, i) = (r / 4, r % 4);
            bytes[(5 * q + 1 + i) * stride + j] = value as u8;
            bytes[5 * q * stride + j] |= (index as u8) << (2 * i);
        }
    }
}

/// The CSC form (docs/ARCHITECTURE.md section 3) of the dense `rows x cols` tile `dense`
/// whose columns hold at most `values` nonzeros: mask words (bit `i` of byte `j` of word
/// `q`: PE `(8q + i, j)` is nonzero), then `values` value words (lane `j` of word `v`: the
/// `v`-th nonzero of column `j` in row order, or 0).
fn pack_csc(rows: usize, cols: usize, values: usize, dense: &[u8]) -> Vec<u8> {
    let masks = systole_core::isa::csc_mask_words(rows);
    let mut bytes = vec![0u8; (masks + values) * cols];
    for j in 0..cols {
        let nonzero = (0..rows).filter(|&k| dense[k * cols + j] != 0);
        for (v, k) in nonzero.enumerate() {
            bytes[(k / 8) * cols + j] |= 1 << (k % 8);
            bytes[(masks + v) * cols + j] = dense[k * cols + j];
        }
    }
    bytes
}

/// Writes one packed int4 WS tile: byte `j` of word `k` holds the weights of column `j` at
/// lanes `2k` (bits 0..4) and `2k + 1` (bits 4..8) of the K-step, lane `l` being lane
/// `l % rows` of chunk `l / rows` (docs/ARCHITECTURE.md section 3).
fn pack_int4(rows: usize, cols: usize, weight: impl Fn(usize, usize, usize) -> i8, bytes: &mut [u8]) {
    let stride = bytes.len() / rows;
    for j in 0..cols {
        for k in 0..rows {
            let nibble = |lane: usize| weight(j, lane / rows, lane % rows) as u8 & 0xf;
            bytes[k * stride + j] = nibble(2 * k) | nibble(2 * k + 1) << 4;
        }
    }
}

/// Writes one quad WS tile (int4 weights and activations): PE row `k` holds the weights of
/// lanes `4k..4k + 4` of the K-step as a 16-bit register sent high byte first, so byte `j`
/// of word `2k` holds column `j`'s weights at lanes `4k + 2` (bits 0..4) and `4k + 3`
/// (bits 4..8), and of word `2k + 1` those at lanes `4k` and `4k + 1`
/// (docs/ARCHITECTURE.md section 3).
fn pack_int4x4(rows: usize, cols: usize, weight: impl Fn(usize, usize, usize) -> i8, bytes: &mut [u8]) {
    let stride = bytes.len() / (2 * rows);
    for j in 0..cols {
        for k in 0..rows {
            let nibble = |lane: usize| weight(j, lane / rows, lane % rows) as u8 & 0xf;
            bytes[2 * k * stride + j] = nibble(4 * k + 2) | nibble(4 * k + 3) << 4;
            bytes[(2 * k + 1) * stride + j] = nibble(4 * k) | nibble(4 * k + 1) << 4;
        }
    }
}

/// An error unless `data`'s weights are in `format` (the layer claims a format its weights
/// do not have).
fn check_sparsity(layer: &Layer, data: &LayerData, format: Sparsity) -> Result<(), CompileError> {
    let found = systole_core::layer::weight_sparsity(&layer.shape, &data.weights);
    if found >= format {
        return Ok(());
    }
    Err(CompileError::Invalid {
        layer: layer.name.clone(),
        help: Some(format!("prune the weights to {format} (`systole compress --prune {format}`) or declare the layer dense")),
        error: Box::new(systole_core::ConfigError::new(
            "sparsity",
            format!("the layer declares {}, but its weights have groups of four with more nonzeros ({found})", layer.sparsity),
        )),
    })
}

#[cfg(test)]
mod csc_tests {
    use super::*;

    #[test]
    fn csc_tiles_by_hand() {
        // A 10 x 2 tile: column 0 holds 5 at row 1 and -3 at row 9, column 1 holds 7 at row 8.
        let (rows, cols) = (10, 2);
        let mut dense = vec![0u8; rows * cols];
        dense[cols] = 5;
        dense[9 * cols] = (-3i8) as u8;
        dense[8 * cols + 1] = 7;
        let bytes = pack_csc(rows, cols, 2, &dense);
        // Two mask words (rows 0..8 and 8..16), then two value words.
        assert_eq!(bytes, vec![0b10, 0, 0b10, 0b1, 5, 7, (-3i8) as u8, 0]);
    }
}
