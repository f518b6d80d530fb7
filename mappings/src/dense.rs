//! The mapping space of dense and grouped convolutions and GEMMs, lowered by the compiler
//! as an implicit-im2col GEMM (`compiler/src/dense.rs`).
//!
//! The reduction dimension is cut into *runs* of bytes contiguous in the padded NHWC input:
//! with unit horizontal dilation and one group, a whole kernel row (`S * C` bytes); otherwise
//! one tap (`C / groups` bytes). Runs are cut into *chunks* of at most `rows` bytes, the
//! K-granule of the array. A tiling is an output tile of `pt x qt` pixels, the K-groups
//! whose activations and weights fit half their scratchpads (double buffering), the column
//! tiles per N-group and the loop order; each has a cycle estimate (steady state per unit
//! of work plus what nothing overlaps), by which the candidates are ranked.

use crate::MappingError;
use systole_core::layer::Layer;
use systole_core::mapping::{LoopOrder, Mapping};
use systole_core::{ArchConfig, Dataflow, Sparsity};

/// Bytes of the padded input that are contiguous for one kernel row or tap.
pub struct Run {
    pub dy: usize,
    pub dx: usize,
    /// `(r, s, c)` of each byte, `c` within the group.
    pub taps: Vec<(usize, usize, usize)>,
}

/// Bytes `off..off+len` of run `run`, placed at byte `at` of a K-chunk.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    pub run: usize,
    pub off: usize,
    pub len: usize,
    pub at: usize,
}

/// One K-granule: up to `rows` bytes from one or more runs.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub pieces: Vec<Piece>,
    pub len: usize,
}

impl Chunk {
    /// True for a chunk that is a single full-width slice of one run.
    pub fn is_full_slice(&self, rows: usize) -> bool {
        self.pieces.len() == 1 && self.len == rows
    }
}

/// The reduction's runs: a whole kernel row with unit horizontal dilation and one group,
/// else one tap.
pub fn runs(layer: &Layer) -> Vec<Run> {
    let s = &layer.shape;
    let mut runs = Vec::new();
    if s.groups == 1 && s.dilation[1] == 1 {
        for r in 0..s.r {
            let taps = (0..s.s).flat_map(|ss| (0..s.c).map(move |c| (r, ss, c))).collect();
            runs.push(Run { dy: r * s.dilation[0], dx: 0, taps });
        }
    } else {
        for r in 0..s.r {
            for ss in 0..s.s {
                runs.push(Run { dy: r * s.dilation[0], dx: ss * s.dilation[1], taps: (0..s.cg()).map(|c| (r, ss, c)).collect() });
            }
        }
    }
    runs
}

/// Cuts runs into full `rows`-byte chunks, then packs the shorter tails end to end into
/// further chunks (a tail may straddle two), so a 3-channel 3x3 kernel (three 9-byte
/// kernel rows) takes two 16-byte chunks instead of three.
pub fn chunks(runs: &[Run], rows: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut tails = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let n = run.taps.len();
        for off in (0..n - n % rows).step_by(rows) {
            out.push(Chunk { pieces: vec![Piece { run: i, off, len: rows, at: 0 }], len: rows });
        }
        if n % rows != 0 {
            tails.push((i, n - n % rows, n % rows));
        }
    }
    let mut current = Chunk { pieces: Vec::new(), len: 0 };
    for (run, mut off, mut len) in tails {
        while len > 0 {
            let take = len.min(rows - current.len);
            current.pieces.push(Piece { run, off, len: take, at: current.len });
            current.len += take;
            off += take;
            len -= take;
            if current.len == rows {
                out.push(std::mem::replace(&mut current, Chunk { pieces: Vec::new(), len: 0 }));
            }
        }
    }
    if current.len > 0 {
        out.push(current);
    }
    out
}

/// Tile sizes of a dense lowering, with their estimated cycles.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiling {
    pub pt: usize,
    pub qt: usize,
    /// Chunk index ranges of the k-groups.
    pub kgroups: Vec<(usize, usize)>,
    /// Column tiles per n-group.
    pub ng: usize,
    /// Loops over output tiles and n-groups.
    pub order: LoopOrder,
    /// Estimated cycles (steady state plus the first loads and last stores).
    pub estimate: u64,
}

/// The mapping space of one dense layer on one single-engine instance: its reduction's
/// chunks, column tiles and weight-tile format, from which [`DenseSpace::candidates`] derives
/// every feasible [`Tiling`] with its estimate.
pub struct DenseSpace<'a> {
    pub arch: &'a ArchConfig,
    pub layer: &'a Layer,
    pub chunks: Vec<Chunk>,
    /// Column tiles per group.
    pub nt: usize,
    /// Format of the WS weight tiles: K-step `kt` is chunks `kt*expansion + e`, chunk `e`
    /// in activation bank `e` at one offset, and one compressed tile covers them all.
    pub format: Sparsity,
    /// The WS tiles hold packed int4 weights: a K-step of two chunks, PE row `k` taking
    /// lanes `2k` (low nibble) and `2k + 1` (high nibble).
    pub int4: bool,
    /// With `int4`, the activations are int4 too: quad tiles (`2 * rows` words, four int4
    /// weights per PE) and a K-step of four chunks, PE row `k` taking lanes `4k..4k + 4`.
    pub act4: bool,
    /// Words of the largest WS tile when the layer's tiles are stored CSC (each tile of
    /// `m` mask and `v` value words is CSC when `m + v < rows`, else dense); `None` when
    /// every tile is dense.
    pub csc_words: Option<usize>,
}

impl<'a> DenseSpace<'a> {
    /// The space of `layer` on `arch`, its reduction cut into `runs`' chunks; CSC tiles are
    /// sized from the layer's declared density.
    pub fn new(arch: &'a ArchConfig, layer: &'a Layer, runs: &[Run]) -> Self {
        let mut format = arch.format_for(layer.sparsity);
        // Packed int4 halves the passes like 2:4 sparsity, with smaller tiles: prefer it to
        // 2:4, not to 1:4.
        let int4 = layer.weight_bits == 4 && arch.int4_weights && arch.dataflow.has_ws() && format != Sparsity::OneOfFour;
        if int4 {
            format = Sparsity::Dense;
        }
        let chunks = chunks(runs, arch.rows);
        // int4 x int4 takes a K-step of four chunks but a tile of two words per row: only
        // where it saves passes over packed int4.
        let act4 = int4 && layer.act_bits == 4 && arch.int4_activations && chunks.len().div_ceil(4) < chunks.len().div_ceil(2);
        let mut problem = DenseSpace { arch, layer, chunks, nt: layer.shape.kg().div_ceil(arch.cols), format, int4, act4, csc_words: None };
        if problem.csc_eligible() {
            let masks = systole_core::isa::csc_mask_words(arch.rows);
            let values = expected_max_nonzeros(arch.rows, arch.cols.min(layer.shape.kg()), layer.density);
            problem.csc_words = (masks + values < arch.rows).then_some(masks + values);
        }
        problem
    }

    /// Whether the layer's WS tiles may be stored CSC: an instance with `csc_weights`
    /// running the layer dense int8 on its WS engine.
    pub fn csc_eligible(&self) -> bool {
        self.arch.csc_weights && !self.os() && self.format == Sparsity::Dense && !self.int4
    }

    /// Activation words per K-step (chunks read together).
    pub fn expansion(&self) -> usize {
        if self.act4 {
            4
        } else if self.int4 {
            2
        } else {
            self.format.expansion()
        }
    }

    /// K-steps: the array's passes over the reduction per output tile and column tile.
    pub fn ksteps(&self) -> usize {
        self.chunks.len().div_ceil(self.expansion())
    }

    /// Activation words one buffer of a sparse layer's banks may use (the same offsets in
    /// every bank), or of the whole scratchpad.
    pub fn act_space(&self) -> usize {
        if self.expansion() > 1 {
            self.arch.act_bank_words()
        } else {
            self.arch.act_words()
        }
    }

    /// Weight words of one WS tile (the largest, for CSC tiles).
    pub fn tile_words(&self) -> usize {
        self.csc_words.unwrap_or_else(|| systole_core::isa::preload_words(self.arch.rows, self.format, self.act4, None))
    }

    /// Whether the instance is output-stationary.
    pub fn os(&self) -> bool {
        self.arch.dataflow == Dataflow::OutputStationary
    }

    /// Accumulator rows and activation words per unit of work for an `m`-pixel tile.
    pub fn m_rows(&self, m: usize) -> usize {
        if self.os() {
            m.div_ceil(self.arch.rows) * self.arch.rows
        } else {
            m
        }
    }

    /// K-step ranges whose activations fit half the activation space together (and their
    /// weights half the weight scratchpad).
    pub fn kgroups(&self, m: usize) -> Option<Vec<(usize, usize)>> {
        let act_half = self.act_space() / 2;
        let wgt_half = self.arch.wgt_words() / 2;
        let blocks = m.div_ceil(self.arch.rows);
        let mut groups = Vec::new();
        let (mut start, mut words, mut klen) = (0, 0, 0);
        for i in 0..self.ksteps() {
            let c = &self.chunks[i];
            let (w, k) = if self.os() { (blocks * c.len, c.len) } else { (m, self.tile_words()) };
            if w > act_half || k > wgt_half {
                return None;
            }
            if i > start && (words + w > act_half || klen + k > wgt_half) {
                groups.push((start, i));
                start = i;
                words = 0;
                klen = 0;
            }
            words += w;
            klen += k;
        }
        groups.push((start, self.ksteps()));
        Some(groups)
    }

    /// The tilings with `pt x qt` output tiles: pixels outer with as many column tiles
    /// per pass as the accumulator holds, and channels outer with groups whose weights fit
    /// half the weight scratchpad (and with the accumulator's largest group, if another).
    pub fn tilings(&self, pt: usize, qt: usize) -> Vec<Tiling> {
        let a = self.arch;
        let s = &self.layer.shape;
        let m = pt * qt;
        let acc_half = a.acc_rows() / 2;
        let wgt_half = (a.wgt_words() / 2) as u64;
        let mrows = self.m_rows(m);
        if mrows > acc_half {
            return vec![];
        }
        let Some(kgroups) = self.kgroups(m) else { return vec![] };
        // Without room for every channel's requantization entry, each N-group loads its own.
        let ng_cap = if s.k > a.param_entries { a.param_entries / a.cols } else { self.nt };
        let ng_max = self.nt.min(acc_half / mrows).min(ng_cap).max(1);
        let bw = a.dram_bytes_per_cycle;
        let lat = a.load_latency() as u64;
        let row_beats = |len: usize| len.div_ceil(bw) as u64;
        let tiles = (s.p().div_ceil(pt) * s.q().div_ceil(qt) * s.n * s.groups) as u64;
        let kt = self.ksteps() as u64;
        let nt = self.nt as u64;
        let fill = self.tile_words() as u64;
        let ktot: u64 = self.chunks.iter().map(|c| c.len as u64).sum();
        let exec_per_nt = if self.os() {
            let blocks = m.div_ceil(a.rows) as u64;
            blocks
                * kgroups
                    .iter()
                    .map(|&(lo, hi)| self.chunks[lo..hi].iter().map(|c| c.len as u64).sum::<u64>().max(a.rows as u64))
                    .sum::<u64>()
        } else if nt * kt == 1 {
            m as u64
        } else {
            kt * (m as u64).max(fill)
        };
        let words_loaded = self.chunks.len() as u64;
        let a_load = words_loaded * m as u64 * row_beats(a.rows) + lat * 2 * words_loaded.min(8);
        let w_per_nt = if self.os() { ktot } else { kt * fill };
        let resident = nt * w_per_nt <= a.wgt_words() as u64;
        let stream = |words: u64| words * row_beats(a.cols) + lat * (words / wgt_half).max(1);
        let store_per_nt = a.store_busy(m as u64 * row_beats(a.cols)) + a.store_latency() as u64;
        let tiling = |ng: usize, order: LoopOrder| {
            let (ngu, groups) = (ng as u64, self.nt.div_ceil(ng) as u64);
            // Steady state per unit of work, plus the first unit's loads and the last
            // unit's stores, which nothing overlaps.
            let estimate = match order {
                LoopOrder::PixelsOuter => {
                    let a_load = if kgroups.len() > 1 { groups } else { 1 } * a_load;
                    let w_load = if resident { 0 } else { stream(nt * w_per_nt) };
                    let store = nt * store_per_nt;
                    tiles * (nt * exec_per_nt).max(a_load + w_load).max(store) + a_load + store + lat
                }
                LoopOrder::ChannelsOuter => {
                    let w_group = ngu * w_per_nt;
                    let (w_each, w_once) = match (resident, w_group <= wgt_half) {
                        (true, _) => (0, 0),
                        (false, true) => (0, groups * stream(w_group)),
                        (false, false) => (stream(w_group), 0),
                    };
                    let store = ngu * store_per_nt;
                    tiles * groups * (ngu * exec_per_nt).max(a_load + w_each).max(store) + w_once + a_load + store + lat
                }
            };
            Tiling { pt, qt, kgroups: kgroups.clone(), ng, order, estimate }
        };
        let mut out = vec![tiling(ng_max, LoopOrder::PixelsOuter)];
        // With one N-group both orders are the same program.
        if ng_max < self.nt {
            let ng_fit = ng_max.min((wgt_half / w_per_nt).max(1) as usize);
            out.push(tiling(ng_fit, LoopOrder::ChannelsOuter));
            if ng_fit < ng_max {
                out.push(tiling(ng_max, LoopOrder::ChannelsOuter));
            }
        }
        out
    }

    /// Every feasible tiling, best estimate first.
    pub fn candidates(&self) -> Result<Vec<Tiling>, MappingError> {
        let s = &self.layer.shape;
        let (p, q) = (s.p(), s.q());
        let mut cands: Vec<(usize, usize)> = (1..=p).map(|pt| (pt, q)).collect();
        let mut qts: Vec<usize> = (1..q).map(|d| q.div_ceil(d + 1)).collect();
        qts.dedup();
        cands.extend(qts.into_iter().map(|qt| (1, qt)));
        let mut all: Vec<Tiling> = cands.into_iter().flat_map(|(pt, qt)| self.tilings(pt, qt)).collect();
        if all.is_empty() {
            return Err(self.does_not_fit());
        }
        all.sort_by_key(|t| (t.estimate, usize::MAX - t.pt * t.qt));
        Ok(all)
    }

    /// Why no tiling fits: the memory even the smallest tile overflows.
    pub fn does_not_fit(&self) -> MappingError {
        let a = self.arch;
        let layer = self.layer.name.clone();
        let longest = self.chunks.iter().map(|c| c.len).max().unwrap_or(0);
        let (field, need, have, what) = if self.m_rows(1) > a.acc_rows() / 2 {
            ("acc_sram_kib", self.m_rows(1) * 2, a.acc_rows(), "a one-pixel output tile (double-buffered)".to_string())
        } else if self.os() && longest > a.wgt_words() / 2 {
            ("wgt_sram_kib", 2 * longest, a.wgt_words(), format!("a {longest}-step weight segment (double-buffered)"))
        } else {
            ("act_sram_kib", 2 * a.rows.max(longest), self.act_space(), "one activation chunk (double-buffered)".to_string())
        };
        MappingError::DoesNotFit { layer, what, field, need, have, help: format!("raise `{field}` or use a smaller layer") }
    }
}

impl Tiling {
    /// The mapping this tiling is.
    pub fn mapping(&self, dataflow: Dataflow) -> Mapping {
        Mapping::Dense { pt: self.pt, qt: self.qt, kgroups: self.kgroups.len(), ngroup: self.ng, order: self.order, dataflow }
    }
}

/// The feasible mappings, best estimate first.
pub fn mappings(arch: &ArchConfig, layer: &Layer) -> Result<Vec<Mapping>, MappingError> {
    let space = DenseSpace::new(arch, layer, &runs(layer));
    Ok(space.candidates()?.iter().map(|t| t.mapping(arch.dataflow)).collect())
}

/// The median of the largest nonzero count among `cols` columns of `rows` weights, each
/// nonzero with probability `density`: the smallest `v` with `P(Binomial(rows, density) <=
/// v)^cols >= 1/2`. It sizes CSC tiles when the weights are not at hand.
pub fn expected_max_nonzeros(rows: usize, cols: usize, density: f64) -> usize {
    let d = density.clamp(0.0, 1.0);
    if d >= 1.0 {
        return rows;
    }
    let (mut pmf, mut cdf) = ((1.0 - d).powi(rows as i32), 0.0);
    for v in 0..=rows {
        cdf += pmf;
        if f64::min(cdf, 1.0).powi(cols as i32) >= 0.5 {
            return v;
        }
        pmf *= (rows - v) as f64 / (v + 1) as f64 * d / (1.0 - d);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csc_sizes_from_density_by_hand() {
        // One column of 4 weights at density 1/2: P(X <= 1) = 5/16, P(X <= 2) = 11/16.
        assert_eq!(expected_max_nonzeros(4, 1, 0.5), 2);
        // Two columns: (11/16)^2 = 0.47 < 1/2, (15/16)^2 = 0.88.
        assert_eq!(expected_max_nonzeros(4, 2, 0.5), 3);
        assert_eq!(expected_max_nonzeros(16, 16, 1.0), 16);
        assert_eq!(expected_max_nonzeros(16, 16, 0.0), 0);
    }
}
