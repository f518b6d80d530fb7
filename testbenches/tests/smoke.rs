use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};
use systole_testbenches::{conv_layer, golden_vs_sim};

fn shape(h: usize, w: usize, c: usize, k: usize, r: usize, stride: usize, pad: usize) -> ConvShape {
    ConvShape { n: 1, h, w, c, k, r, s: r, stride: [stride; 2], dilation: [1, 1], pad: [pad; 4], groups: 1 }
}

#[test]
fn smoke_dense() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        for arch in [ArchConfig::preset_4x4(), ArchConfig::preset_8x8(), ArchConfig::default()] {
            let arch = ArchConfig { dataflow: df, ..arch };
            for (i, sh) in [shape(5, 6, 3, 5, 3, 1, 1), shape(9, 9, 20, 17, 3, 2, 1), shape(4, 4, 8, 8, 1, 1, 0)].into_iter().enumerate() {
                let l = conv_layer("t", LayerOp::Conv, sh, 3, -2, Activation::Relu, true);
                let d = LayerData::random(&l, i as u64);
                let o = golden_vs_sim(&arch, &l, &d).unwrap();
                assert!(o.mismatch().is_none(), "{} {df:?} case {i}: {}", arch.name, o.mismatch().unwrap());
                eprintln!("{} {df} case {i}: {} cycles, util {:.3}", arch.name, o.report.cycles, o.report.utilization);
            }
        }
    }
}

#[test]
fn smoke_depthwise() {
    for df in [Dataflow::WeightStationary, Dataflow::OutputStationary] {
        for arch in [ArchConfig::preset_4x4(), ArchConfig::preset_8x8(), ArchConfig::default()] {
            let arch = ArchConfig { dataflow: df, ..arch };
            for (i, (h, c, r, st)) in [(7, 5, 3, 1), (12, 20, 3, 2), (9, 3, 5, 1), (30, 16, 3, 1)].into_iter().enumerate() {
                let sh = ConvShape { n: 1, h, w: h + 1, c, k: c, r, s: r, stride: [st; 2], dilation: [1, 1], pad: [r / 2; 4], groups: c };
                let l = conv_layer("dw", LayerOp::Depthwise, sh, -7, 4, Activation::Relu6, true);
                let d = LayerData::random(&l, 10 + i as u64);
                let o = golden_vs_sim(&arch, &l, &d).unwrap();
                assert!(o.mismatch().is_none(), "{} {df:?} case {i}: {}", arch.name, o.mismatch().unwrap());
                eprintln!("dw {} {df} case {i}: {} cycles, util {:.3}", arch.name, o.report.cycles, o.report.utilization);
            }
        }
    }
}
