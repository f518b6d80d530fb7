//! Latency lower bounds of a layer on an instance: no mapping can beat either.

use systole_core::layer::Layer;
use systole_core::ArchConfig;

/// The two bounds, in cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    /// Every PE busy every cycle: `ceil(MACs / PEs)`.
    pub compute: u64,
    /// Compulsory DRAM traffic (input, weights, bias and scale per channel, output read or
    /// written once) at the DRAM bandwidth, reads and writes on separate channels.
    pub memory: u64,
}

impl Bounds {
    /// The larger of the two.
    pub fn cycles(&self) -> u64 {
        self.compute.max(self.memory)
    }
}

/// The bounds of `layer` on `arch`. A sparse layer on an instance that skips its format
/// performs only its stored weights' MACs and moves its compressed weights (one metadata
/// byte per four values and column). An int4 layer on an instance that packs int4 does two
/// MACs per PE and cycle (four with int4 activations on an `int4_activations` instance)
/// and moves half the weight bytes. Formats do not combine in a layer, so the bound takes
/// the fastest.
pub fn bounds(arch: &ArchConfig, layer: &Layer) -> Bounds {
    let s = &layer.shape;
    let format = arch.format_for(layer.sparsity);
    let kept = |n: usize| n * format.kept() / systole_core::arch::NM_GROUP;
    let input: usize = s.input_dims().iter().product();
    let all: usize = s.weight_dims().iter().product();
    let stored = kept(all);
    let meta = if format == systole_core::Sparsity::Dense { 0 } else { stored / 4 };
    let packs = layer.weight_bits == 4 && arch.int4_weights && arch.dataflow.has_ws();
    let per_pe = match (packs, layer.act_bits == 4 && arch.int4_activations) {
        (true, true) => 4,
        (true, false) => 2,
        (false, _) => 1,
    };
    let weights = if packs { (stored + meta).min(all / 2) } else { stored + meta } + 8 * s.k;
    let output: usize = s.output_dims().iter().product();
    let bw = arch.dram_bytes_per_cycle as u64;
    let sparse_macs = s.macs() * format.kept() as u64 / systole_core::arch::NM_GROUP as u64;
    Bounds {
        compute: sparse_macs.min(s.macs() / per_pe).div_ceil(arch.pes() as u64),
        memory: ((input + weights) as u64).div_ceil(bw).max((output as u64).div_ceil(bw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use systole_core::layer::{Activation, ConvShape, LayerOp, QuantParams};

    #[test]
    fn bounds_by_hand() {
        let layer = Layer {
            name: "fc".into(),
            op: LayerOp::Gemm,
            shape: ConvShape::gemm(1, 1, 512, 1000),
            quant: QuantParams { x_scale: 1.0, x_zp: 0, w_scale: vec![1.0], y_scale: 1.0, y_zp: 0 },
            activation: Activation::None,
            sparsity: Default::default(),
            weight_bits: 8,
            density: 1.0,
            act_bits: 8,
            output_bits: 8,
        };
        let arch = ArchConfig { rows: 16, cols: 16, dram_bytes_per_cycle: 16, ..Default::default() };
        let b = bounds(&arch, &layer);
        // 512,000 MACs / 256 PEs; (512 + 512,000 + 8,000) bytes / 16 per cycle.
        assert_eq!(b, Bounds { compute: 2000, memory: 32_532 });
        assert_eq!(b.cycles(), 32_532);
        // int4 weights packed: half the MACs' cycles and half the weight bytes,
        // (512 + 256,000 + 8,000) / 16; with int4 activations, a quarter.
        let int4 = Layer { weight_bits: 4, ..layer.clone() };
        let packs = ArchConfig { int4_weights: true, ..arch.clone() };
        assert_eq!(bounds(&packs, &int4), Bounds { compute: 1000, memory: 16_532 });
        assert_eq!(bounds(&arch, &int4), b);
        let int4x4 = Layer { act_bits: 4, ..int4 };
        let fused = ArchConfig { int4_activations: true, ..packs.clone() };
        assert_eq!(bounds(&fused, &int4x4), Bounds { compute: 500, memory: 16_532 });
        assert_eq!(bounds(&packs, &int4x4).compute, 1000);
    }
}
