//! Snapshots of emitted programs for small layers, one per lowering and dataflow, so that
//! any change to what the compiler emits is reviewed as text.

use systole_core::layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};

fn layer(op: LayerOp, h: usize, c: usize, k: usize, r: usize, groups: usize) -> Layer {
    let shape = ConvShape { n: 1, h, w: h, c, k, r, s: r, stride: [1, 1], dilation: [1, 1], pad: [r / 2; 4], groups };
    let quant = QuantParams { x_scale: 0.05, x_zp: 2, w_scale: vec![0.01], y_scale: 0.1, y_zp: -1 };
    Layer { name: "t".into(), op, shape, quant, activation: Activation::Relu }
}

fn program(df: Dataflow, l: &Layer) -> String {
    let arch = ArchConfig { dataflow: df, ..ArchConfig::preset_4x4() };
    systole_compiler::compile_layer(&arch, l, &LayerData::random(l, 1)).unwrap().to_string()
}

#[test]
fn pointwise_programs() {
    let l = layer(LayerOp::Conv, 4, 4, 4, 1, 1);
    insta::assert_snapshot!("pointwise_ws", program(Dataflow::WeightStationary, &l));
    insta::assert_snapshot!("pointwise_os", program(Dataflow::OutputStationary, &l));
}

#[test]
fn conv3x3_programs() {
    let l = layer(LayerOp::Conv, 5, 3, 6, 3, 1);
    insta::assert_snapshot!("conv3x3_ws", program(Dataflow::WeightStationary, &l));
    insta::assert_snapshot!("conv3x3_os", program(Dataflow::OutputStationary, &l));
}

#[test]
fn depthwise_programs() {
    let l = layer(LayerOp::Depthwise, 6, 3, 3, 3, 3);
    insta::assert_snapshot!("depthwise_ws", program(Dataflow::WeightStationary, &l));
    insta::assert_snapshot!("depthwise_os", program(Dataflow::OutputStationary, &l));
}
