//! The fields of a matmul instruction as one bundle, [`MatmulFields`], declared once for
//! the controller's decoder, the exec unit, both exec engines and their kernels.

use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::isa::{Band, Op, WordGen};
use systole_core::Sparsity;

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

impl MatmulFields {
    /// The fields of `op`, a `MatmulWs` or `MatmulOs` (any other op gives the default),
    /// each taken modulo its width as the ISA's encoding keeps it.
    pub fn of(op: &Op) -> Self {
        let addr = |x: u32| -> Addr { (x as u64).into() };
        let pattern = |a: &WordGen, acc: u32, accumulate: bool, band: Option<Band>| {
            let bd = band.unwrap_or(Band { stride: 0, taps: 0, width: 0 });
            Self {
                a_start: addr(a.start),
                a_inner_count: addr(a.inner_count),
                a_inner_stride: addr(a.inner_stride),
                a_outer_count: addr(a.outer_count),
                a_outer_stride: addr(a.outer_stride),
                acc: addr(acc),
                accumulate,
                band_valid: band.is_some(),
                band_stride: (bd.stride as u64 & 0xff).into(),
                band_taps: (bd.taps as u64 & 0xffff).into(),
                band_width: (bd.width as u64 & 0xffff).into(),
                ..Self::default()
            }
        };
        match *op {
            Op::MatmulWs { a, acc, accumulate, preload, band, sparse, int4, act4, csc } => Self {
                preload_valid: preload.is_some(),
                preload: addr(preload.unwrap_or(0)),
                sparse: (Sparsity::ALL.iter().position(|&s| s == sparse).unwrap_or(0) as u64).into(),
                int4,
                act4,
                csc_valid: csc.is_some(),
                csc_values: (csc.unwrap_or(0) as u64 & 0xffff).into(),
                ..pattern(&a, acc, accumulate, band)
            },
            Op::MatmulOs { a, b, acc, accumulate, band } => Self { b: addr(b), ..pattern(&a, acc, accumulate, band) },
            _ => Self::default(),
        }
    }
}
