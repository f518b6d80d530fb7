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
use crate::{Choice, CompileError};
use systole_core::isa::{Buffer, Dim, DramPattern, Op, OutputStage, WordGen};
use systole_core::layer::Layer;
use systole_core::mapping::{LoopOrder, Mapping};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow, Program, Sparsity};

/// Bytes of the padded input that are contiguous for one kernel row or tap.
struct Run {
    dy: usize,
    dx: usize,
    /// `(r, s, c)` of each byte, `c` within the group.
    taps: Vec<(usize, usize, usize)>,
}

/// Bytes `off..off+len` of run `run`, placed at byte `at` of a K-chunk.
#[derive(Clone, Copy, Debug)]
struct Piece {
    run: usize,
    off: usize,
    len: usize,
    at: usize,
}

/// One K-granule: up to `rows` bytes from one or more runs.
#[derive(Clone, Debug)]
struct Chunk {
    pieces: Vec<Piece>,
    len: usize,
}

impl Chunk {
    /// True for a chunk that is a single full-width slice of one run.
    fn is_full_slice(&self, rows: usize) -> bool {
        self.pieces.len() == 1 && self.len == rows
    }
}

fn runs(layer: &Layer) -> Vec<Run> {
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
fn chunks(runs: &[Run], rows: usize) -> Vec<Chunk> {
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

/// Tile sizes of a dense lowering.
#[derive(Debug, Clone, PartialEq)]
struct Tiling {
    pt: usize,
    qt: usize,
    /// Chunk index ranges of the k-groups.
    kgroups: Vec<(usize, usize)>,
    /// Column tiles per n-group.
    ng: usize,
    /// Loops over output tiles and n-groups.
    order: LoopOrder,
    estimate: u64,
}

struct Problem<'a> {
    arch: &'a ArchConfig,
    layer: &'a Layer,
    chunks: Vec<Chunk>,
    /// Column tiles per group.
    nt: usize,
    /// Format of the WS weight tiles: K-step `kt` is chunks `kt*expansion + e`, chunk `e`
    /// in activation bank `e` at one offset, and one compressed tile covers them all.
    format: Sparsity,
    /// The WS tiles hold packed int4 weights: a K-step of two chunks, PE row `k` taking
    /// lanes `2k` (low nibble) and `2k + 1` (high nibble).
    int4: bool,
    /// With `int4`, the activations are int4 too: quad tiles (`2 * rows` words, four int4
    /// weights per PE) and a K-step of four chunks, PE row `k` taking lanes `4k..4k + 4`.
    act4: bool,
    /// Words of the largest WS tile when the layer's tiles are stored CSC (each tile of
    /// `m` mask and `v` value words is CSC when `m + v < rows`, else dense); `None` when
    /// every tile is dense.
    csc_words: Option<usize>,
}

/// WS tiles of a CSC layer by (group, column tile, K-chunk): the value words of a CSC tile
/// (`None` for a tile kept dense) and its bytes.
type CscTiles = rustc_hash::FxHashMap<(usize, usize, usize), (Option<u32>, Vec<u8>)>;

impl<'a> Problem<'a> {
    fn new(arch: &'a ArchConfig, layer: &'a Layer, runs: &[Run]) -> Self {
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
        let mut problem = Problem { arch, layer, chunks, nt: layer.shape.kg().div_ceil(arch.cols), format, int4, act4, csc_words: None };
        if problem.csc_eligible() {
            let masks = systole_core::isa::csc_mask_words(arch.rows);
            let values = expected_max_nonzeros(arch.rows, arch.cols.min(layer.shape.kg()), layer.density);
            problem.csc_words = (masks + values < arch.rows).then_some(masks + values);
        }
        problem
    }

    /// Whether the layer's WS tiles may be stored CSC: an instance with `csc_weights`
    /// running the layer dense int8 on its WS engine.
    fn csc_eligible(&self) -> bool {
        self.arch.csc_weights && !self.os() && self.format == Sparsity::Dense && !self.int4
    }

    /// Builds every WS tile of a CSC-eligible layer from its weights: CSC where that is
    /// smaller, dense otherwise; and sets `csc_words` to the largest tile.
    fn csc_tiles(&mut self, runs: &[Run], data: &LayerData) -> CscTiles {
        let (rows, cols) = (self.arch.rows, self.arch.cols);
        let s = &self.layer.shape;
        let masks = systole_core::isa::csc_mask_words(rows);
        let mut tiles = CscTiles::default();
        let mut largest = 0;
        for g in 0..s.groups {
            for nt in 0..self.nt {
                for (kt, chunk) in self.chunks.iter().enumerate() {
                    let mut dense = vec![0u8; rows * cols];
                    self.write_dense(runs, std::slice::from_ref(chunk), (g, nt), data, &mut dense);
                    let values = (0..cols).map(|j| (0..rows).filter(|&k| dense[k * cols + j] != 0).count()).max().unwrap_or(0);
                    let tile =
                        if masks + values < rows { (Some(values as u32), pack_csc(rows, cols, values, &dense)) } else { (None, dense) };
                    largest = largest.max(tile.1.len() / cols);
                    tiles.insert((g, nt, kt), tile);
                }
            }
        }
        self.csc_words = (largest < rows).then_some(largest);
        tiles
    }

    /// Activation words per K-step (chunks read together).
    fn expansion(&self) -> usize {
        if self.act4 {
            4
        } else if self.int4 {
            2
        } else {
            self.format.expansion()
        }
    }

    /// K-steps: the array's passes over the reduction per output tile and column tile.
    fn ksteps(&self) -> usize {
        self.chunks.len().div_ceil(self.expansion())
    }

    /// Activation words one buffer of a sparse layer's banks may use (the same offsets in
    /// every bank), or of the whole scratchpad.
    fn act_space(&self) -> usize {
        if self.expansion() > 1 {
            self.arch.act_bank_words()
        } else {
            self.arch.act_words()
        }
    }

    /// Writes the dense weights of `chunks` for column tile `nt` of group `g` into `bytes`,
    /// one word per reduction index: a WS chunk takes `rows` words, an OS one its length.
    fn write_dense(&self, runs: &[Run], chunks: &[Chunk], (g, nt): (usize, usize), data: &LayerData, bytes: &mut [u8]) {
        let (cols, kg) = (self.arch.cols, self.layer.shape.kg());
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
            word += if self.os() { c.len } else { self.arch.rows };
        }
    }

    /// Weight words of one WS tile (the largest, for CSC tiles).
    fn tile_words(&self) -> usize {
        self.csc_words.unwrap_or_else(|| systole_core::isa::preload_words(self.arch.rows, self.format, self.act4, None))
    }

    fn os(&self) -> bool {
        self.arch.dataflow == Dataflow::OutputStationary
    }

    /// Accumulator rows and activation words per unit of work for an `m`-pixel tile.
    fn m_rows(&self, m: usize) -> usize {
        if self.os() {
            m.div_ceil(self.arch.rows) * self.arch.rows
        } else {
            m
        }
    }

    /// K-step ranges whose activations fit half the activation space together (and their
    /// weights half the weight scratchpad).
    fn kgroups(&self, m: usize) -> Option<Vec<(usize, usize)>> {
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
    fn tilings(&self, pt: usize, qt: usize) -> Vec<Tiling> {
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
    fn candidates(&self) -> Result<Vec<Tiling>, CompileError> {
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

    fn does_not_fit(&self) -> CompileError {
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
        CompileError::DoesNotFit { layer, what, field, need, have, help: format!("raise `{field}` or use a smaller layer") }
    }
}

impl Tiling {
    fn mapping(&self, dataflow: Dataflow) -> Mapping {
        Mapping::Dense { pt: self.pt, qt: self.qt, kgroups: self.kgroups.len(), ngroup: self.ng, order: self.order, dataflow }
    }
}

/// The feasible mappings, best estimate first.
pub fn mappings(arch: &ArchConfig, layer: &Layer) -> Result<Vec<Mapping>, CompileError> {
    let problem = Problem::new(arch, layer, &runs(layer));
    Ok(problem.candidates()?.iter().map(|t| t.mapping(arch.dataflow)).collect())
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
    let mut problem = Problem::new(arch, layer, &runs);
    let csc_tiles = match data {
        Some(data) if problem.csc_eligible() => problem.csc_tiles(&runs, data),
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
            let ranked = order(LoopOrder::PixelsOuter, crate::RANKED_CANDIDATES)
                .chain(order(LoopOrder::ChannelsOuter, crate::RANKED_CANDIDATES / 2));
            crate::best(arch, objective, ranked, build)
        }
        Choice::Fixed(m) => {
            Ok(build(candidates.iter().find(|t| t.mapping(arch.dataflow) == m).ok_or_else(|| crate::infeasible(layer, &m))?))
        }
    }
}

/// WS weight tiles by (group, column tile, K-chunk), shared by the candidates of a layer.
type TileCache = std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize, usize), Vec<u8>>>;

fn build(
    problem: &Problem,
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
                problem.write_dense(runs, chunks, (g, nt), data, bytes);
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

/// The median of the largest nonzero count among `cols` columns of `rows` weights, each
/// nonzero with probability `density`: the smallest `v` with `P(Binomial(rows, density) <=
/// v)^cols >= 1/2`. It sizes CSC tiles when the weights are not at hand.
fn expected_max_nonzeros(rows: usize, cols: usize, density: f64) -> usize {
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
