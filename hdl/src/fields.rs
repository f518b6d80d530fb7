//! Each unit's decoded instruction fields as one bundle, declared once for the
//! controller's decoder, the unit and (for the exec unit) both engines and their kernels:
//! [`LoadFields`], [`MatmulFields`] and [`StoreFields`]; and the handshake between the
//! controller and each unit as two bundles, its starts ([`LoadStarts`], [`ExecStarts`],
//! [`StoreStarts`]: one bit per opcode) down and its [`UnitStatus`] (`ready`, `complete`)
//! up. A bundle inside a bundle (a
//! [`DmaPattern`], an [`OutputStage`]) is passed on whole; a kernel that reads its fields
//! copies it into a signal first, since a field is read one level deep.

use crate::dma::DmaPattern;
use crate::requant::OutputStage;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// The decoded fields of a `MatmulWs` or `MatmulOs` as one signal: what the controller
/// presents to the exec unit with a start, each engine reading the fields of its opcode
/// (synthesis drops the others). Counts and strides keep the scratchpad address width;
/// the controller's packed format keeps fewer bits where the instance needs fewer
/// (docs/ARCHITECTURE.md section 9).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct MatmulFields {
    /// `a.start` of the instruction's activation word sequence.
    pub a_start: Addr,
    /// `a.inner_count`.
    pub a_inner_count: Addr,
    /// `a.inner_stride`.
    pub a_inner_stride: Addr,
    /// `a.outer_count`.
    pub a_outer_count: Addr,
    /// `a.outer_stride`.
    pub a_outer_stride: Addr,
    /// First accumulator row.
    pub acc: Addr,
    /// Add to the accumulator instead of overwriting it.
    pub accumulate: Bit,
    /// WS: the instruction preloads.
    pub preload_valid: Bit,
    /// WS: first weight word of the preload.
    pub preload: Addr,
    /// OS: first weight word.
    pub b: Addr,
    /// The weights are a band.
    pub band_valid: Bit,
    /// Band stride.
    pub band_stride: Bits<8>,
    /// Band taps.
    pub band_taps: Bits<16>,
    /// Band width.
    pub band_width: Bits<16>,
    /// WS: tile format, 0 dense, 1 2:4, 2 1:4 (position in `Sparsity::ALL`).
    pub sparse: Bits<2>,
    /// WS: the tiles hold packed int4 weights.
    pub int4: Bit,
    /// WS: with `int4`, int4 activations too (quad tiles).
    pub act4: Bit,
    /// WS: the preload is a CSC tile.
    pub csc_valid: Bit,
    /// WS: its value words.
    pub csc_values: Bits<16>,
}

/// The decoded fields of a `Load`, `LoadTransposed` or `LoadParams` as one signal.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct LoadFields {
    /// `target` of `Load` (weights when set).
    pub target: Bit,
    /// `dst` of the three ops.
    pub dst: Addr,
    /// `offset` of `Load`, a byte offset in the word.
    pub offset: Bits<16>,
    /// `pitch` of `LoadTransposed`.
    pub pitch: Addr,
    /// `src` of `Load` and `LoadTransposed`, and `addr` of `LoadParams` as its address.
    pub pattern: DmaPattern,
    /// `count` of `LoadParams`.
    pub entries: Bits<24>,
}

/// The decoded fields of a `Store` or `StoreTransposed` as one signal.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct StoreFields {
    /// First accumulator row.
    pub acc: Addr,
    /// `row_stride` of `StoreTransposed`.
    pub row_stride: Addr,
    /// `line_pitch` of `StoreTransposed`.
    pub line_pitch: Addr,
    /// `width` of `StoreTransposed`.
    pub width: Bits<16>,
    /// `dst`, the DRAM access pattern.
    pub pattern: DmaPattern,
    /// `out.param`, the first requantization entry.
    pub param: Addr,
    /// `out.zp`, `out.lo` and `out.hi`.
    pub stage: OutputStage,
}

/// A unit's state as its controller sees it: what the unit presents every cycle.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct UnitStatus {
    /// The unit may start an instruction.
    pub ready: Bit,
    /// The unit's instruction completes in this cycle.
    pub complete: Bit,
}

/// The load unit's starts: one of them for a cycle when its instruction issues (a
/// `LoadTable`'s has a port of its own, which exists only with a vector unit).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct LoadStarts {
    /// Start a `Load`.
    pub load: Bit,
    /// Start a `LoadTransposed`.
    pub load_t: Bit,
    /// Start a `LoadParams`.
    pub params: Bit,
}

/// The exec unit's starts (a `Vector`'s has a port of its own, which exists only with a
/// vector unit).
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct ExecStarts {
    /// Start a `MatmulWs`.
    pub ws: Bit,
    /// Start a `MatmulOs`.
    pub os: Bit,
}

/// The store unit's starts.
#[derive(Clone, Copy, Debug, PartialEq, Default, LogicStruct)]
pub struct StoreStarts {
    /// Start a `Store`.
    pub store: Bit,
    /// Start a `StoreTransposed`.
    pub store_t: Bit,
}
