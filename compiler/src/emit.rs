//! Program emission: a list of abstract steps becomes instructions with `Sync` waits.
//!
//! Lowerings produce [`Step`]s that name the buffer *regions* they read and write. The
//! [`Emitter`] derives each instruction's waits from those regions like a scoreboard: an
//! instruction waits for the other units' last writer of every region it touches, and a
//! writer also for their last reader. Waits only ever point at earlier instructions, so the
//! program cannot deadlock; and a region is never touched by two units at once, so it
//! cannot race. Double buffering is the lowering's job: alternate between two regions.
//!
//! Weights are planned here too: lowerings reference weight tiles by id in consumption
//! order; the [`WeightPlan`] keeps them resident when they all fit in the weight scratchpad
//! and otherwise streams them in batches through its two halves.

use crate::layout::Layout;
use systole_core::isa::{Band, Buffer, DramPattern, Instr, Op, Sync, Unit, WordGen};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Program, Sparsity};

/// A piece of on-chip memory that the scoreboard tracks as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// Activation scratchpad buffer `id`.
    Act(u32),
    /// Weight scratchpad half (ids 0 and 1), or resident chunk `id - 2`.
    Wgt(u32),
    /// Accumulator buffer `id`.
    Acc(u32),
    /// Requantization table.
    Param,
    /// The vector unit's tables.
    Table,
}

impl Region {
    /// A dense index for the scoreboard's table (the kinds interleaved, ids unbounded).
    fn slot(self) -> usize {
        match self {
            Region::Param => 0,
            Region::Table => 1,
            Region::Act(i) => 2 + 3 * i as usize,
            Region::Acc(i) => 3 + 3 * i as usize,
            Region::Wgt(i) => 4 + 3 * i as usize,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct RegionUse {
    last_write: [u32; 3],
    last_read: [u32; 3],
}

/// Builds the instruction list and derives every Sync from region use.
#[derive(Default)]
pub struct Emitter {
    /// Instructions emitted so far.
    pub instrs: Vec<Instr>,
    counts: [u32; 3],
    regions: Vec<RegionUse>,
}

impl Emitter {
    /// Appends `op`, which reads `reads` and writes `writes`.
    pub fn emit(&mut self, op: Op, reads: &[Region], writes: &[Region]) {
        let u = op.unit().index();
        let mut sync = Sync::default();
        if let Some(top) = reads.iter().chain(writes).map(|r| r.slot()).max() {
            if top >= self.regions.len() {
                self.regions.resize(top + 1, RegionUse::default());
            }
        }
        for (r, is_write) in reads.iter().map(|r| (r, false)).chain(writes.iter().map(|r| (r, true))) {
            let state = self.regions[r.slot()];
            for v in Unit::ALL {
                if v.index() == u {
                    continue;
                }
                let mut need = state.last_write[v.index()];
                if is_write {
                    need = need.max(state.last_read[v.index()]);
                }
                let s = sync.on_mut(v);
                *s = (*s).max(need);
            }
        }
        self.counts[u] += 1;
        let n = self.counts[u];
        for r in reads {
            self.regions[r.slot()].last_read[u] = n;
        }
        for r in writes {
            self.regions[r.slot()].last_write[u] = n;
        }
        self.instrs.push(Instr { sync, op });
    }
}

/// An abstract step of a lowering.
#[derive(Debug, Clone)]
pub enum Step {
    /// A DMA into the activation scratchpad (or the parameter table).
    Load {
        /// The op.
        op: Op,
        /// Region written.
        region: Region,
    },
    /// WS matmul with weight tile `tile` active (the planner adds preloads).
    MatmulWs {
        /// Weight tile whose values must be active.
        tile: usize,
        /// Activation words.
        a: WordGen,
        /// First accumulator row.
        acc: u32,
        /// Accumulate or overwrite.
        accumulate: bool,
        /// Activation region read.
        act: Region,
        /// Accumulator region written.
        acc_region: Region,
        /// Expand the weight word as a band (depthwise) instead of reading a tile.
        band: Option<Band>,
        /// Format of the tile (all tiles of a layer share one).
        sparse: Sparsity,
        /// The tile holds packed int4 weights.
        int4: bool,
        /// With `int4`: int4 activations too, a quad tile.
        act4: bool,
    },
    /// OS matmul reading weight segment `tile`.
    MatmulOs {
        /// Weight segment streamed alongside the activations.
        tile: usize,
        /// Activation words.
        a: WordGen,
        /// First accumulator row.
        acc: u32,
        /// Accumulate or overwrite.
        accumulate: bool,
        /// Activation region read.
        act: Region,
        /// Accumulator region written.
        acc_region: Region,
        /// Expand the weight word as a band (depthwise) instead of reading a tile.
        band: Option<Band>,
    },
    /// A store from an accumulator region.
    Store {
        /// The op.
        op: Op,
        /// Accumulator region read.
        acc_region: Region,
    },
}

/// Where weight tiles live in DRAM and how they reach the weight scratchpad.
pub struct WeightPlan {
    tile_words: Vec<u32>,
    /// Scratchpad word where each resident tile starts (prefix sums of `tile_words`).
    tile_start: Vec<u32>,
    tile_addr: Vec<u64>,
    cols: usize,
    half: u32,
    resident: bool,
    /// Per stream position: batch index and word offset within the batch.
    batch_of_pos: Vec<(usize, u32)>,
    /// Per batch: DRAM address and words.
    batches: Vec<(u64, u32)>,
    /// DRAM range held by each half, and the half used last.
    halves: [Option<(u64, u32)>; 2],
    current: u32,
    /// Resident tiles loaded so far, and the end tile of each loaded chunk.
    resident_loaded: usize,
    resident_chunks: Vec<usize>,
}

impl WeightPlan {
    /// Plans tiles of `tile_words` words placed at `tile_addr`, consumed in `stream` order.
    /// Consecutive DRAM-contiguous tiles are grouped into batches that fit in half the
    /// weight scratchpad; a batch already held by a half is reused, not reloaded.
    pub fn new(arch: &ArchConfig, tile_words: Vec<u32>, tile_addr: Vec<u64>, stream: &[usize]) -> Self {
        let total: u64 = tile_words.iter().map(|&w| w as u64).sum();
        let resident = total <= arch.wgt_words() as u64;
        let half = (arch.wgt_words() / 2) as u32;
        let mut batch_of_pos = Vec::with_capacity(stream.len());
        let mut batches: Vec<(u64, u32)> = Vec::new();
        if !resident {
            // Split the stream into segments of DRAM-contiguous tiles, then each segment into
            // equally sized batches, so that every batch leaves the next one time to load.
            let mut segments: Vec<(usize, usize, u32)> = Vec::new();
            for (pos, &t) in stream.iter().enumerate() {
                let extends = pos > 0 && {
                    let p = stream[pos - 1];
                    p == t || tile_addr[p] + tile_words[p] as u64 * arch.cols as u64 == tile_addr[t]
                };
                let new_words = if pos > 0 && stream[pos - 1] == t { 0 } else { tile_words[t] };
                match segments.last_mut() {
                    Some(seg) if extends => {
                        seg.1 = pos + 1;
                        seg.2 += new_words;
                    }
                    _ => segments.push((pos, pos + 1, tile_words[t])),
                }
            }
            // The same tiles again right after (a group of column tiles kept across
            // output tiles), fitting in one half.
            let reused = |a: &(usize, usize, u32), b: &(usize, usize, u32)| {
                a.2 <= half && stream[a.1 - 1] == stream[b.1 - 1] && stream[a.0] == stream[b.0] && a.2 == b.2
            };
            let first_reused = segments.len() > 1 && reused(&segments[0], &segments[1]);
            for (si, &(start, end, words)) in segments.iter().enumerate() {
                let target = words.div_ceil(words.div_ceil(half));
                // The first batches ramp up (1, 2, 4, ... tiles) so the array starts early,
                // unless that would split tiles that stay on chip to be used again.
                let mut ramp = if si == 0 && !first_reused { Some(1u32) } else { None };
                let mut prev: Option<usize> = None;
                for &t in &stream[start..end] {
                    let w = tile_words[t];
                    let last = batches.len().wrapping_sub(1);
                    match (prev, batches.last_mut()) {
                        (Some(p), Some(b)) if p == t => batch_of_pos.push((last, b.1 - w)),
                        (Some(_), Some(b)) if b.1 + w <= ramp.map_or(target, |r| (r * w).min(target)).max(w) && b.1 + w <= half => {
                            batch_of_pos.push((last, b.1));
                            b.1 += w;
                        }
                        _ => {
                            if !batches.is_empty() {
                                ramp = ramp.map(|r| r * 2).filter(|r| r * w < target);
                            }
                            batches.push((tile_addr[t], w));
                            batch_of_pos.push((batches.len() - 1, 0));
                        }
                    }
                    prev = Some(t);
                }
            }
        }
        let tile_start = tile_words.iter().scan(0u32, |acc, &w| Some(std::mem::replace(acc, *acc + w))).collect();
        Self {
            tile_words,
            tile_start,
            tile_addr,
            cols: arch.cols,
            half,
            resident,
            batch_of_pos,
            batches,
            halves: [None, None],
            current: 1,
            resident_loaded: 0,
            resident_chunks: Vec::new(),
        }
    }

    /// Scratchpad word and region of the tile consumed at stream position `pos`, emitting
    /// its load first unless it is already on chip. Resident tiles (tile ids follow first
    /// use) are loaded in chunks of 1, 2, 4, ... tiles, each chunk its own region, so the
    /// array starts after the first tile instead of after all of them.
    pub fn locate(&mut self, em: &mut Emitter, stream: &[usize], pos: usize) -> (u32, Region) {
        let tile = stream[pos];
        if self.resident {
            while self.resident_loaded <= tile {
                let first = self.resident_loaded;
                let count = (1usize << self.resident_chunks.len().min(16)).min(self.tile_words.len() - first);
                let words: u32 = self.tile_words[first..first + count].iter().sum();
                let dst = self.tile_start[first];
                let region = Region::Wgt(2 + self.resident_chunks.len() as u32);
                let src = DramPattern::runs(self.tile_addr[first], self.cols as u32, words, self.cols as i64);
                em.emit(Op::Load { target: Buffer::Wgt, dst, offset: 0, src }, &[], &[region]);
                self.resident_chunks.push(first + count);
                self.resident_loaded = first + count;
            }
            let chunk = self.resident_chunks.iter().position(|&end| tile < end).expect("tile loaded");
            return (self.tile_start[tile], Region::Wgt(2 + chunk as u32));
        }
        let (batch, offset) = self.batch_of_pos[pos];
        let range = self.batches[batch];
        let half = match self.halves.iter().position(|h| *h == Some(range)) {
            Some(h) => h as u32,
            None => {
                let h = self.current ^ 1;
                let src = DramPattern::runs(range.0, self.cols as u32, range.1, self.cols as i64);
                em.emit(Op::Load { target: Buffer::Wgt, dst: h * self.half, offset: 0, src }, &[], &[Region::Wgt(h)]);
                self.halves[h as usize] = Some(range);
                h
            }
        };
        self.current = half;
        (half * self.half + offset, Region::Wgt(half))
    }
}

/// Weight tiles in id order, the order they are laid out in DRAM: their sizes, and their
/// bytes when the program carries its DRAM image (compiled with the layer's data).
pub struct Tiles<'a> {
    data: Option<&'a LayerData>,
    cols: usize,
    words: Vec<u32>,
    /// Value words of each CSC tile (`None`: not CSC).
    csc: Vec<Option<u32>>,
    bytes: Vec<u8>,
}

impl<'a> Tiles<'a> {
    /// No tiles yet, for an array of `cols` columns; bytes are written only with `data`.
    pub fn new(cols: usize, data: Option<&'a LayerData>) -> Self {
        Self { data, cols, words: Vec::new(), csc: Vec::new(), bytes: Vec::new() }
    }

    /// Appends a tile of `words` words and returns its id; `fill` writes its bytes from the
    /// layer's data (called only when the program carries its DRAM image).
    pub fn push(&mut self, words: usize, fill: impl FnOnce(&LayerData, &mut [u8])) -> usize {
        self.push_csc(words, None, fill)
    }

    /// [`Tiles::push`] for a tile that is CSC with `csc` value words when given.
    pub fn push_csc(&mut self, words: usize, csc: Option<u32>, fill: impl FnOnce(&LayerData, &mut [u8])) -> usize {
        if let Some(data) = self.data {
            let start = self.bytes.len();
            self.bytes.resize(start + words * self.cols, 0);
            fill(data, &mut self.bytes[start..]);
        }
        self.words.push(words as u32);
        self.csc.push(csc);
        self.words.len() - 1
    }
}

/// Places the weight tiles after the layout, plans their streaming and emits `steps` into
/// the finished program.
pub fn assemble(arch: &ArchConfig, macs: u64, mut lay: Layout, steps: &[Step], tiles: Tiles) -> Program {
    let addrs = lay.place_weights(arch.cols, &tiles.words, tiles.data.map(|_| tiles.bytes));
    let mut em = Emitter { instrs: Vec::with_capacity(steps.len() + steps.len() / 4), ..Emitter::default() };
    emit_steps(arch, steps, tiles.words, &tiles.csc, addrs, &mut em);
    // A framed layer's tensors belong to the program it is part of.
    let (inputs, outputs) = if lay.framed() { (vec![], vec![]) } else { (vec![lay.input.clone()], vec![lay.output.clone()]) };
    systole_core::timing::serialize_dram_port(arch, &mut em.instrs);
    Program {
        arch: arch.name.clone(),
        instrs: em.instrs,
        dram_size: lay.size(),
        dram_init: lay.segments,
        inputs,
        outputs,
        macs,
        mapping: None,
    }
}

/// Emits `steps`, adding weight loads and WS preloads.
fn emit_steps(arch: &ArchConfig, steps: &[Step], tile_words: Vec<u32>, tile_csc: &[Option<u32>], tile_addr: Vec<u64>, em: &mut Emitter) {
    let matmuls: Vec<(usize, Option<Band>)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::MatmulWs { tile, band, .. } | Step::MatmulOs { tile, band, .. } => Some((*tile, *band)),
            _ => None,
        })
        .collect();
    let stream: Vec<usize> = matmuls.iter().map(|m| m.0).collect();
    let mut plan = WeightPlan::new(arch, tile_words, tile_addr, &stream);
    let mut pos = 0usize;
    let mut active: Option<usize> = None;
    for step in steps {
        match step {
            Step::Load { op, region } => em.emit(*op, &[], &[*region]),
            Step::Store { op, acc_region } => em.emit(*op, &[*acc_region, Region::Param], &[]),
            Step::MatmulOs { a, acc, accumulate, act, acc_region, band, .. } => {
                let (b, wr) = plan.locate(em, &stream, pos);
                em.emit(Op::MatmulOs { a: *a, b, acc: *acc, accumulate: *accumulate, band: *band }, &[*act, wr], &[*acc_region]);
                pos += 1;
            }
            Step::MatmulWs { tile, a, acc, accumulate, act, acc_region, band, sparse, int4, act4 } => {
                let (sparse, int4, act4) = (*sparse, *int4, *act4);
                if active != Some(*tile) {
                    // Only the first tile of the stream needs a preload of its own.
                    let (w, wr) = plan.locate(em, &stream, pos);
                    let op = Op::MatmulWs {
                        a: WordGen::linear(0, 0),
                        acc: 0,
                        accumulate: false,
                        preload: Some(w),
                        band: *band,
                        sparse,
                        int4,
                        act4,
                        csc: tile_csc[*tile],
                    };
                    em.emit(op, &[wr], &[]);
                    active = Some(*tile);
                }
                let next = matmuls.get(pos + 1).copied().filter(|&(t, _)| t != *tile);
                let (preload, next_band, csc, reads) = match next {
                    Some((t, nb)) => {
                        let (w, wr) = plan.locate(em, &stream, pos + 1);
                        (Some(w), nb, tile_csc[t], [*act, wr])
                    }
                    None => (None, None, None, [*act, *act]),
                };
                let reads = if reads[0] == reads[1] { &reads[..1] } else { &reads[..] };
                let op = Op::MatmulWs { a: *a, acc: *acc, accumulate: *accumulate, preload, band: next_band, sparse, int4, act4, csc };
                em.emit(op, reads, &[*acc_region]);
                if let Some((t, _)) = next {
                    active = Some(t);
                }
                pos += 1;
            }
        }
    }
}
