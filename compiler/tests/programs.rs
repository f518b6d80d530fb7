//! Snapshots of emitted programs for small layers, one per lowering and dataflow, so that
//! any change to what the compiler emits is reviewed as text.

use systole_core::layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
use systole_core::workload::LayerData;
use systole_core::{ArchConfig, Dataflow};

fn layer(op: LayerOp, h: usize, c: usize, k: usize, r: usize, groups: usize) -> Layer {
    let shape = ConvShape { n: 1, h, w: h, c, k, r, s: r, stride: [1, 1], dilation: [1, 1], pad: [r / 2; 4], groups };
    let quant = QuantParams { x_scale: 0.05, x_zp: 2, w_scale: vec![0.01], y_scale: 0.1, y_zp: -1 };
    Layer {
        name: "t".into(),
        op,
        shape,
        quant,
        activation: Activation::Relu,
        sparsity: Default::default(),
        weight_bits: 8,
        density: 1.0,
        act_bits: 8,
        output_bits: 8,
    }
}

/// The MobileNetV2 workload of configs/workloads.
fn mobilenetv2() -> systole_core::workload::Workload {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/workloads/mobilenetv2.toml");
    systole_core::workload::Workload::from_file(&path).unwrap()
}

/// An architecture preset of configs/archs.
fn preset(name: &str) -> ArchConfig {
    ArchConfig::from_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../configs/archs/{name}.toml"))).unwrap()
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

/// The mapping the search picks is recorded, and compiling with it fixed gives the same
/// program; the energy objective never costs more energy than the latency objective, nor
/// the latency objective more cycles; an infeasible mapping is refused by name.
#[test]
fn mapping_search_is_reproducible_and_objectives_hold() {
    use systole_compiler::compile_layer_with;
    use systole_core::mapping::{Mapping, Objective};
    use systole_mappings::search::{program_energy_pj, Choice};
    let wl = mobilenetv2();
    let arch = preset("8x8");
    let cycles = |p: &systole_core::Program| systole_core::timing::total_cycles(&systole_core::timing::schedule(&arch, &p.instrs).unwrap());
    for i in [1, 2, 3, wl.layers.len() - 1] {
        let (layer, data) = (&wl.layers[i], wl.layer_data(i).unwrap());
        let fast = compile_layer_with(&arch, layer, &data, Choice::Best(Objective::Latency)).unwrap();
        let frugal = compile_layer_with(&arch, layer, &data, Choice::Best(Objective::Energy)).unwrap();
        assert!(program_energy_pj(&arch, &frugal) <= program_energy_pj(&arch, &fast), "{}", layer.name);
        assert!(cycles(&fast) <= cycles(&frugal), "{}", layer.name);
        let m = fast.mapping.expect("compiled programs record their mapping");
        assert_eq!(compile_layer_with(&arch, layer, &data, Choice::Fixed(m)).unwrap(), fast, "{}", layer.name);
    }
    let (layer, data) = (&wl.layers[0], wl.layer_data(0).unwrap());
    let e = compile_layer_with(
        &arch,
        layer,
        &data,
        Choice::Fixed(Mapping::Dense { pt: 1000, qt: 1, kgroups: 1, ngroup: 1, order: Default::default(), dataflow: arch.dataflow }),
    )
    .unwrap_err();
    assert!(e.to_string().contains("dense 1000x1 px tiles") && e.to_string().contains("not a feasible tiling"), "{e}");
}

/// The two loop orders move the traffic the way their definitions say, counted by hand for
/// a 28x28x128 -> 128 3x3 conv on the 16x16 preset (64 KiB weight scratchpad: one column
/// tile's weights, 72 chunks x 16 words = 1152 words, fit in a 2048-word half; all eight
/// do not fit). With 7x28 output tiles (4 tiles of 196 pixels; 2 k-groups; the accumulator
/// holds 2 column tiles):
/// - channels outer, one column tile per group: every weight is loaded once (8 x 1152
///   words) and the activations once per group (8 x 4 tiles x 72 chunks x 196 words);
/// - pixels outer: all weights again for every tile (4 x 9216) and, with two k-groups, the
///   activations once per pair of column tiles (4 x 56448).
#[test]
fn loop_orders_trade_weight_for_activation_traffic() {
    use systole_compiler::plan_layer;
    use systole_core::mapping::{LoopOrder, Mapping, Objective};
    use systole_mappings::search::Choice;
    let arch = preset("16x16");
    let mut l = layer(LayerOp::Conv, 28, 128, 128, 3, 1);
    l.shape.pad = [1; 4];
    let writes = |order, ngroup| {
        let m = Mapping::Dense { pt: 7, qt: 28, kgroups: 2, ngroup, order, dataflow: arch.dataflow };
        let p = plan_layer(&arch, &l, Choice::Fixed(m)).unwrap();
        assert_eq!(p.mapping, Some(m));
        let r = systole_core::isa::access_totals(&arch, &p.instrs).report(p.macs);
        (r.sram["wgt.write"], r.sram["act.write"])
    };
    assert_eq!(writes(LoopOrder::ChannelsOuter, 1), (8 * 1152, 8 * 4 * 72 * 196));
    assert_eq!(writes(LoopOrder::PixelsOuter, 2), (4 * 8 * 1152, 4 * 4 * 72 * 196));
    // Either order, when the search picks it, is rebuilt exactly from its mapping.
    for objective in [Objective::Latency, Objective::Energy] {
        let best = plan_layer(&arch, &l, Choice::Best(objective)).unwrap();
        assert_eq!(plan_layer(&arch, &l, Choice::Fixed(best.mapping.unwrap())).unwrap(), best);
    }
}

/// On a `both` instance each layer gets the better engine: its program scores exactly the
/// minimum of the WS-only and the OS-only instance's best (same memories and timing), and
/// over MobileNetV2's first blocks on 16x16 the energy search uses both engines.
#[test]
fn both_engines_take_the_better_per_layer() {
    use systole_compiler::plan_layer;
    use systole_core::mapping::Objective;
    use systole_mappings::search::{program_energy_pj, Choice};
    let wl = mobilenetv2();
    let base = preset("16x16");
    let on = |dataflow| ArchConfig { dataflow, ..base.clone() };
    let (both, ws, os) = (on(Dataflow::Both), on(Dataflow::WeightStationary), on(Dataflow::OutputStationary));
    let cycles = |a: &ArchConfig, p: &systole_core::Program| {
        systole_core::timing::total_cycles(&systole_core::timing::schedule(a, &p.instrs).unwrap())
    };
    let mut engines = std::collections::BTreeSet::new();
    for layer in &wl.layers[..12] {
        for objective in [Objective::Latency, Objective::Energy] {
            let score = |a: &ArchConfig| {
                let p = plan_layer(a, layer, Choice::Best(objective)).unwrap();
                let (c, e) = (cycles(a, &p) as f64, program_energy_pj(a, &p));
                (if objective == Objective::Latency { (c, 0.0) } else { (e, c) }, p.mapping.unwrap())
            };
            let ((b, m), (w, _), (o, _)) = (score(&both), score(&ws), score(&os));
            assert_eq!(b, if o < w { o } else { w }, "{} {objective:?}", layer.name);
            if objective == Objective::Energy {
                engines.insert(m.dataflow());
            }
        }
    }
    assert_eq!(engines.len(), 2, "{engines:?}");
}
