//! Silicon area of an accelerator instance, 45 nm, from per-component figures.
//!
//! | component | area | source |
//! |---|---|---|
//! | 8-bit integer multiplier | 282 um^2 | Horowitz, ISSCC 2014, fig. 1.1.9 |
//! | 32-bit integer adder | 137 um^2 | same |
//! | flip-flop | 4.5 um^2 | NanGate 45 nm open cell library, DFF_X1 (4.52 um^2) |
//! | SRAM bit | 0.346 um^2 / 0.7 array efficiency | Intel 45 nm 6T cell (Mistry et al., IEDM 2007) |
//! | 2-input multiplexer bit | 1.862 um^2 | NanGate 45 nm, MUX2_X1 |
//!
//! A PE is a multiplier, an adder and 48 flip-flops (an int8 weight or operand register, an
//! int8 activation pipeline register and an int32 partial sum). Each column has a
//! requantizer, counted as two 32-bit multipliers' worth of adders (16 adders) and 64
//! flip-flops. A `both` instance has two arrays (the RTL builds the WS and the OS array
//! around one set of memories), so twice the PEs. A WS array that skips N:4 sparse weights
//! adds per PE three activation lanes (24 flip-flops), the weight's 2-bit index (active,
//! shadow and the bus register: 6 flip-flops) and a 4:1 byte multiplexer (24 two-input
//! multiplexer bits); its banked scratchpad holds the same bits. Packed int4 weights use
//! the same lanes (and the 8x8 multiplier's halves, so no more multiplier). int4 x int4 PEs
//! (`int4_activations`) add the high bytes of the active and shadow weights (16 flip-flops)
//! and 16 two-input multiplexer bits: 8 for the shift of the weight byte and 8 for the
//! fused multiplier's mode (its four 4x4 products summed instead of shifted). SRAMs count
//! their bits. Wires, the controller and the DMA engines are not
//! modelled; the figure is a comparison between instances, not a floor plan.

use systole_core::ArchConfig;

/// um^2 of an 8-bit multiplier.
pub const MULT8_UM2: f64 = 282.0;
/// um^2 of a 32-bit adder.
pub const ADD32_UM2: f64 = 137.0;
/// um^2 of a flip-flop.
pub const FF_UM2: f64 = 4.5;
/// um^2 of a 2-input multiplexer bit.
pub const MUX2_UM2: f64 = 1.862;
/// um^2 per SRAM bit, array overhead included.
pub const SRAM_BIT_UM2: f64 = 0.346 / 0.7;

/// Area by component, mm^2.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Area {
    /// The PE array.
    pub array_mm2: f64,
    /// Requantizers, one per column.
    pub requant_mm2: f64,
    /// Scratchpads, accumulator and parameter table.
    pub sram_mm2: f64,
}

impl Area {
    /// Sum, mm^2.
    pub fn total_mm2(&self) -> f64 {
        self.array_mm2 + self.requant_mm2 + self.sram_mm2
    }
}

/// The area of `arch`.
pub fn area(arch: &ArchConfig) -> Area {
    let pe = MULT8_UM2 + ADD32_UM2 + 48.0 * FF_UM2;
    let requant = 16.0 * ADD32_UM2 + 64.0 * FF_UM2;
    let sram_bits: f64 = crate::energy::memories(arch).iter().map(|(_, bytes, _)| bytes * 8.0).sum();
    let arrays = if arch.dataflow == systole_core::Dataflow::Both { 2.0 } else { 1.0 };
    let lanes = arch.sparsity != systole_core::Sparsity::Dense || arch.int4_weights;
    let sparse = if lanes { 30.0 * FF_UM2 + 24.0 * MUX2_UM2 } else { 0.0 };
    let fused = if arch.int4_activations { 16.0 * FF_UM2 + 16.0 * MUX2_UM2 } else { 0.0 };
    // CSC preloads: per PE the clear on the weight bus (a register and the zeroing of the
    // shadow byte); per column the bitmap, its priority encoder and the row select.
    let csc = if arch.csc_weights {
        let mask_bits = 8.0 * systole_core::isa::csc_mask_words(arch.rows) as f64;
        arch.pes() as f64 * (FF_UM2 + 8.0 * MUX2_UM2) + arch.cols as f64 * (mask_bits * FF_UM2 + (arch.rows as f64 + 8.0) * MUX2_UM2)
    } else {
        0.0
    };
    Area {
        array_mm2: ((arrays * pe + sparse + fused) * arch.pes() as f64 + csc) / 1e6,
        requant_mm2: arch.cols as f64 * requant / 1e6,
        sram_mm2: sram_bits * SRAM_BIT_UM2 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense_arch() -> ArchConfig {
        ArchConfig { rows: 4, cols: 4, act_sram_kib: 1, wgt_sram_kib: 1, acc_sram_kib: 2, param_entries: 128, ..Default::default() }
    }

    #[test]
    fn area_by_hand() {
        let arch =
            ArchConfig { rows: 2, cols: 4, act_sram_kib: 1, wgt_sram_kib: 1, acc_sram_kib: 2, param_entries: 128, ..Default::default() };
        let a = area(&arch);
        // 8 PEs x (282 + 137 + 216) um^2
        assert!((a.array_mm2 - 8.0 * 635.0 / 1e6).abs() < 1e-12);
        // 4 requantizers x (2192 + 288) um^2
        assert!((a.requant_mm2 - 4.0 * 2480.0 / 1e6).abs() < 1e-12);
        // (1 + 1 + 2) KiB + 128 x 8 B = 5 KiB = 40960 bits
        assert!((a.sram_mm2 - 40960.0 * 0.346 / 0.7 / 1e6).abs() < 1e-12);
        // Both engines: two arrays, the same memories.
        let both = area(&ArchConfig { dataflow: systole_core::Dataflow::Both, ..arch.clone() });
        assert!((both.array_mm2 - 2.0 * a.array_mm2).abs() < 1e-12 && both.sram_mm2 == a.sram_mm2);
        // Sparse WS PEs: + 30 x 4.5 + 24 x 1.862 = 179.688 um^2 each.
        let sparse = area(&ArchConfig { rows: 4, sparsity: systole_core::Sparsity::TwoOfFour, ..arch.clone() });
        let dense = area(&ArchConfig { rows: 4, ..arch.clone() });
        assert!((sparse.array_mm2 - dense.array_mm2 - 16.0 * 179.688 / 1e6).abs() < 1e-12);
        let int4 = area(&ArchConfig { rows: 4, int4_weights: true, ..arch.clone() });
        assert_eq!(int4.array_mm2, sparse.array_mm2);
        // int4 x int4: + 16 x 4.5 + 16 x 1.862 = 101.792 um^2 per PE.
        let int4x4 = area(&ArchConfig { rows: 4, int4_weights: true, int4_activations: true, ..arch });
        assert!((int4x4.array_mm2 - int4.array_mm2 - 16.0 * 101.792 / 1e6).abs() < 1e-12);
        // CSC on 4x4: 16 PEs x (4.5 + 8 x 1.862) + 4 columns x (8 x 4.5 + (4 + 8) x 1.862).
        let csc = area(&ArchConfig { rows: 4, csc_weights: true, ..dense_arch() });
        assert!((csc.array_mm2 - area(&dense_arch()).array_mm2 - 543.712 / 1e6).abs() < 1e-12);
    }
}
