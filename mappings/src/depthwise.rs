//! The mapping space of depthwise convolutions, lowered by the compiler as banded
//! (Toeplitz) GEMMs, one per channel and kernel row (`compiler/src/depthwise.rs`): for one
//! channel and kernel row, a *window* of `rows` consecutive input pixels times a banded
//! weight matrix gives `Wo` adjacent outputs. A tiling is a group of channels, output rows
//! and tiling units (windows in WS, groups of `rows` windows in OS) whose activations and
//! accumulator rows fit half their memories; each has a cycle estimate, by which the
//! candidates are ranked.

use crate::MappingError;
use systole_core::layer::Layer;
use systole_core::mapping::Mapping;
use systole_core::{ArchConfig, Dataflow};

/// How a depthwise layer sits on the array: tap chunks, outputs per window and windows per
/// tiling unit.
pub struct Geometry {
    /// Largest channel group (bytes per transposed run).
    pub g_max: usize,
    /// Taps per tap chunk.
    pub sl: usize,
    /// Tap chunks.
    pub nsc: usize,
    /// Outputs per window.
    pub wo: usize,
    /// Window pixels actually used: `(wo - 1) * stride + (sl - 1) * dilation + 1`.
    pub span: usize,
    /// Windows per output row.
    pub bpr: usize,
    /// Windows per tiling unit: 1 (WS) or `rows` (OS).
    pub unit: usize,
}

impl Geometry {
    /// The geometry of `layer` on `arch`.
    pub fn new(arch: &ArchConfig, layer: &Layer) -> Self {
        let s = &layer.shape;
        let (st, dil) = (s.stride[1], s.dilation[1]);
        let sl = s.s.min((arch.rows.min(arch.cols) - 1) / dil + 1);
        let used = (sl - 1) * dil + 1;
        let wo = arch.cols.min((arch.rows - used) / st + 1);
        let span = (wo - 1) * st + used;
        let unit = if arch.dataflow == Dataflow::OutputStationary { arch.rows } else { 1 };
        Self { g_max: s.c.min(arch.transposer_depth()), sl, nsc: s.s.div_ceil(sl), wo, span, bpr: s.q().div_ceil(wo), unit }
    }
}

/// A depthwise tiling: channels per group, output rows and tiling units per tile, with its
/// estimated cycles.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Channels per group (bytes per transposed run).
    pub g: usize,
    pub pt: usize,
    /// Tiling units (windows in WS, groups of `rows` windows in OS) per tile.
    pub ut: usize,
    pub estimate: u64,
}

/// Activation words of a tile of `g` channels, `ht` input rows and `ut` units.
pub fn act_words(arch: &ArchConfig, geo: &Geometry, g: usize, ht: usize, ut: usize) -> usize {
    if arch.dataflow == Dataflow::OutputStationary {
        geo.nsc * ht * geo.span * ut * g
    } else {
        geo.nsc * ht * ut * g
    }
}

/// Every feasible tiling, best estimate first.
pub fn candidates(arch: &ArchConfig, layer: &Layer, geo: &Geometry) -> Result<Vec<Tile>, MappingError> {
    let s = &layer.shape;
    let units = geo.bpr.div_ceil(geo.unit);
    let ht = |pt: usize| (pt - 1) * s.stride[0] + (s.r - 1) * s.dilation[0] + 1;
    let fits = |g: usize, pt: usize, ut: usize| {
        act_words(arch, geo, g, ht(pt), ut) <= arch.act_words() / 2 && g * pt * ut * geo.unit <= arch.acc_rows() / 2
    };
    let (lat, rows, bw) = (arch.load_latency() as u64, arch.rows as u64, arch.dram_bytes_per_cycle);
    let os = geo.unit > 1;
    let estimate = |g: usize, pt: usize, ut: usize| {
        let tiles = (s.p().div_ceil(pt) * units.div_ceil(ut) * s.c.div_ceil(g) * s.n) as u64;
        let exec = (geo.nsc * g * s.r) as u64 * if os { (pt * ut) as u64 * rows } else { ((pt * ut) as u64).max(rows) };
        let (ht, ut) = (ht(pt) as u64, ut as u64);
        let per_row = if os { geo.span as u64 } else { 1 };
        let words = ht * ut * per_row * g as u64;
        let beats = ht * ut * per_row * rows * g.div_ceil(bw) as u64;
        let load = geo.nsc as u64 * (lat * if os { ht } else { 1 } + words.max(beats));
        let store = pt as u64 * (arch.store_latency() as u64 + arch.store_busy(ut * (geo.unit * geo.wo) as u64));
        tiles * exec.max(load).max(store)
    };
    // Without room for every channel's requantization entry, each channel group loads its own.
    let g_max = if s.k > arch.param_entries { geo.g_max.min(arch.param_entries) } else { geo.g_max };
    let groups = std::iter::successors(Some(g_max), |&g| (g > 1).then_some(g / 2));
    let mut all: Vec<Tile> = groups
        .flat_map(|g| (1..=s.p()).map(move |pt| (g, pt, units)).chain((1..units).map(move |ut| (g, 1, ut))))
        .filter(|&(g, pt, ut)| fits(g, pt, ut))
        .map(|(g, pt, ut)| Tile { g, pt, ut, estimate: estimate(g, pt, ut) })
        .collect();
    all.sort_by_key(|t| (t.estimate, usize::MAX - t.g * t.pt * t.ut));
    if !all.is_empty() {
        return Ok(all);
    }
    let words = act_words(arch, geo, 1, ht(1), 1);
    Err(if words > arch.act_words() / 2 {
        MappingError::DoesNotFit {
            layer: layer.name.clone(),
            what: format!("one depthwise window tile of one channel ({words} words, double-buffered)"),
            field: "act_sram_kib",
            need: 2 * words,
            have: arch.act_words(),
            help: format!("raise `act_sram_kib` to at least {} KiB", (2 * words * arch.rows).div_ceil(1024)),
        }
    } else {
        MappingError::DoesNotFit {
            layer: layer.name.clone(),
            what: "one depthwise output tile of one channel (double-buffered)".into(),
            field: "acc_sram_kib",
            need: 2 * geo.unit,
            have: arch.acc_rows(),
            help: format!("raise `acc_sram_kib` to at least {} KiB", (2 * geo.unit * arch.cols * 4).div_ceil(1024)),
        }
    })
}

impl Tile {
    /// The mapping this tiling is.
    pub fn mapping(&self, dataflow: Dataflow) -> Mapping {
        Mapping::Depthwise { channels: self.g, pt: self.pt, units: self.ut, dataflow }
    }
}

/// The feasible mappings, best estimate first.
pub fn mappings(arch: &ArchConfig, layer: &Layer) -> Result<Vec<Mapping>, MappingError> {
    Ok(candidates(arch, layer, &Geometry::new(arch, layer))?.iter().map(|t| t.mapping(arch.dataflow)).collect())
}
