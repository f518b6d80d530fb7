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

use std::collections::HashMap;
use systole_core::isa::{Buffer, DramPattern, Instr, Op, Sync, Unit, WordGen};
use systole_core::ArchConfig;

/// A piece of on-chip memory that the scoreboard tracks as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    /// Activation scratchpad buffer `id`.
    Act(u32),
    /// Weight scratchpad half, or the resident area (id 2).
    Wgt(u32),
    /// Accumulator buffer `id`.
    Acc(u32),
    /// Requantization table.
    Param,
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
    regions: HashMap<Region, RegionUse>,
}

impl Emitter {
    /// Appends `op`, which reads `reads` and writes `writes`.
    pub fn emit(&mut self, op: Op, reads: &[Region], writes: &[Region]) {
        let u = op.unit().index();
        let mut sync = Sync::default();
        for (r, is_write) in reads
            .iter()
            .map(|r| (r, false))
            .chain(writes.iter().map(|r| (r, true)))
        {
            let state = self.regions.get(r).copied().unwrap_or_default();
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
            self.regions.entry(*r).or_default().last_read[u] = n;
        }
        for r in writes {
            self.regions.entry(*r).or_default().last_write[u] = n;
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
    /// Words per tile, by tile id.
    tile_words: Vec<u32>,
    /// DRAM byte address of each tile.
    tile_addr: Vec<u64>,
    cols: usize,
    half: u32,
    resident: bool,
    /// Current batch: first stream position, half, word offset of each tile in it.
    loaded: HashMap<usize, u32>,
    batch_of_pos: Vec<(u32, u32)>,
}

impl WeightPlan {
    /// Plans tiles of `tile_words` words placed at `tile_addr`, consumed in `stream` order.
    pub fn new(
        arch: &ArchConfig,
        tile_words: Vec<u32>,
        tile_addr: Vec<u64>,
        stream: &[usize],
    ) -> Self {
        let total: u64 = tile_words.iter().map(|&w| w as u64).sum();
        let resident = total <= arch.wgt_words() as u64;
        let half = (arch.wgt_words() / 2) as u32;
        let mut batch_of_pos = Vec::with_capacity(stream.len());
        if !resident {
            // Greedy batches of consecutive, DRAM-contiguous tiles that fit in a half.
            let (mut batch, mut used, mut prev): (u32, u32, Option<usize>) = (0, 0, None);
            for &t in stream {
                if prev == Some(t) {
                    batch_of_pos.push((batch, used - tile_words[t]));
                    continue;
                }
                let contiguous = prev.is_some_and(|p| {
                    tile_addr[p] + (tile_words[p] as u64) * arch.cols as u64 == tile_addr[t]
                });
                if prev.is_some() && (used + tile_words[t] > half || !contiguous) {
                    batch += 1;
                    used = 0;
                }
                batch_of_pos.push((batch, used));
                used += tile_words[t];
                prev = Some(t);
            }
        }
        Self {
            tile_words,
            tile_addr,
            cols: arch.cols,
            half,
            resident,
            loaded: HashMap::new(),
            batch_of_pos,
        }
    }

    /// Emits the one load of all weights if they are resident.
    pub fn emit_resident(&self, em: &mut Emitter) {
        if !self.resident || self.tile_words.is_empty() {
            return;
        }
        let words: u32 = self.tile_words.iter().sum();
        let src = DramPattern::runs(self.tile_addr[0], self.cols as u32, words, self.cols as i64);
        em.emit(
            Op::Load {
                target: Buffer::Wgt,
                dst: 0,
                src,
            },
            &[],
            &[Region::Wgt(2)],
        );
    }

    /// Scratchpad word and region of the tile consumed at stream position `pos`, emitting
    /// the batch load first if this position starts a new batch.
    pub fn locate(&mut self, em: &mut Emitter, stream: &[usize], pos: usize) -> (u32, Region) {
        let tile = stream[pos];
        if self.resident {
            let word: u32 = self.tile_words[..tile].iter().sum();
            return (word, Region::Wgt(2));
        }
        let (batch, offset) = self.batch_of_pos[pos];
        let half = batch % 2;
        if self.loaded.get(&(half as usize)) != Some(&batch) {
            // Load the whole batch: the tiles from here on with the same batch number.
            let end = (pos..stream.len())
                .take_while(|&p| self.batch_of_pos[p].0 == batch)
                .last()
                .unwrap_or(pos);
            let words = self.batch_of_pos[end].1 + self.tile_words[stream[end]] - offset;
            let src = DramPattern::runs(
                self.tile_addr[tile],
                self.cols as u32,
                words,
                self.cols as i64,
            );
            em.emit(
                Op::Load {
                    target: Buffer::Wgt,
                    dst: half * self.half + offset,
                    src,
                },
                &[],
                &[Region::Wgt(half)],
            );
            self.loaded.insert(half as usize, batch);
        }
        (half * self.half + offset, Region::Wgt(half))
    }
}

/// Emits `steps`, adding weight loads and WS preloads, and returns the instructions.
pub fn emit_steps(arch: &ArchConfig, steps: &[Step], mut plan: WeightPlan, em: &mut Emitter) {
    let stream: Vec<usize> = steps
        .iter()
        .filter_map(|s| match s {
            Step::MatmulWs { tile, .. } | Step::MatmulOs { tile, .. } => Some(*tile),
            _ => None,
        })
        .collect();
    plan.emit_resident(em);
    let mut pos = 0usize;
    let mut active: Option<usize> = None;
    for step in steps {
        match step {
            Step::Load { op, region } => em.emit(*op, &[], &[*region]),
            Step::Store { op, acc_region } => em.emit(*op, &[*acc_region, Region::Param], &[]),
            Step::MatmulOs {
                a,
                acc,
                accumulate,
                act,
                acc_region,
                ..
            } => {
                let (b, wr) = plan.locate(em, &stream, pos);
                em.emit(
                    Op::MatmulOs {
                        a: *a,
                        b,
                        acc: *acc,
                        accumulate: *accumulate,
                    },
                    &[*act, wr],
                    &[*acc_region],
                );
                pos += 1;
            }
            Step::MatmulWs {
                tile,
                a,
                acc,
                accumulate,
                act,
                acc_region,
            } => {
                if active != Some(*tile) {
                    // Only the first tile of the stream needs a preload of its own.
                    let (w, wr) = plan.locate(em, &stream, pos);
                    em.emit(
                        Op::MatmulWs {
                            a: WordGen::linear(0, 0),
                            acc: 0,
                            accumulate: false,
                            preload: Some(w),
                        },
                        &[wr],
                        &[],
                    );
                    active = Some(*tile);
                }
                let next = stream.get(pos + 1).copied().filter(|&t| t != *tile);
                let (preload, mut reads) = match next {
                    Some(_) => {
                        let (w, wr) = plan.locate(em, &stream, pos + 1);
                        (Some(w), vec![*act, wr])
                    }
                    None => (None, vec![*act]),
                };
                reads.dedup();
                em.emit(
                    Op::MatmulWs {
                        a: *a,
                        acc: *acc,
                        accumulate: *accumulate,
                        preload,
                    },
                    &reads,
                    &[*acc_region],
                );
                if let Some(t) = next {
                    active = Some(t);
                }
                pos += 1;
            }
        }
    }
    let _ = arch;
}
