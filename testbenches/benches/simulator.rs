//! Simulator and compiler throughput on representative layers of the 16x16 WS preset:
//! `cargo bench -p systole-testbenches`. Throughput is in simulated MACs.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use systole_core::layer::{Activation, ConvShape, LayerOp};
use systole_core::workload::LayerData;
use systole_core::ArchConfig;
use systole_testbenches::conv_layer;

fn layers() -> Vec<(&'static str, systole_core::Layer)> {
    let conv = |h, c, k, r, stride, groups| ConvShape {
        n: 1,
        h,
        w: h,
        c,
        k,
        r,
        s: r,
        stride: [stride; 2],
        dilation: [1, 1],
        pad: [r / 2; 4],
        groups,
    };
    vec![
        ("resnet18 layer1 conv 56x56x64 3x3", conv_layer("l1", LayerOp::Conv, conv(56, 64, 64, 3, 1, 1), 0, 0, Activation::Relu, true)),
        ("mobilenetv2 dw 112x112x32 3x3", conv_layer("dw", LayerOp::Depthwise, conv(112, 32, 32, 3, 1, 32), 0, 0, Activation::Relu6, true)),
    ]
}

fn bench(c: &mut Criterion) {
    let arch = ArchConfig::default();
    let mut g = c.benchmark_group("16x16-ws");
    g.sample_size(10);
    for (name, layer) in layers() {
        let data = LayerData::random(&layer, 1);
        let program = systole_compiler::compile_layer(&arch, &layer, &data).unwrap();
        g.throughput(Throughput::Elements(program.macs));
        g.bench_function(format!("simulate {name}"), |b| b.iter(|| systole_sim::run(&arch, &program, &[&data.input]).unwrap()));
        g.bench_function(format!("compile {name}"), |b| b.iter(|| systole_compiler::compile_layer(&arch, &layer, &data).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
