//! A sweep's `both` points cost each layer as the compiler compiles it for that instance,
//! although the sweep plans each engine once and shares it with the WS and OS points.

use systole_compiler::plan_layer;
use systole_core::mapping::Objective;
use systole_core::workload::Workload;
use systole_mappings::energy::Process;
use systole_mappings::search::Choice;
use systole_sweep::{evaluate, Space, Target};

#[test]
fn both_points_equal_compiling_for_the_instance() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("systole-engines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let space_path = dir.join("s.toml");
    let base = root.join("configs/archs/16x16.toml");
    std::fs::write(
        &space_path,
        format!("name = \"e\"\nbase = {:?}\n[params]\ndataflow = [\"ws\", \"os\", \"both\"]\nrows = [8, 16]\n", base),
    )
    .unwrap();
    let space = Space::from_file(&space_path).unwrap();
    let mut wl = Workload::from_file(&root.join("configs/workloads/mobilenetv2.toml")).unwrap();
    wl.layers.truncate(8);
    let target = Target::workload(&wl);
    for objective in [Objective::Latency, Objective::Energy] {
        // WS and OS points first, then `both`, and `both` alone on a cold target: equal.
        let records: Vec<_> =
            space.order().iter().map(|&id| evaluate(&space, id, &target, &Process::horowitz_45nm(), objective, None)).collect();
        for (id, rec) in space.order().into_iter().zip(&records) {
            let arch = space.arch(id).unwrap();
            assert_eq!(rec.status, "ok", "{:?}", rec.error);
            let cold = evaluate(&space, id, &target.cold(), &Process::horowitz_45nm(), objective, None);
            assert_eq!(serde_json::to_string(&cold).unwrap(), serde_json::to_string(rec).unwrap(), "point {id}");
            let mut cycles = 0;
            for (layer, lr) in wl.layers.iter().zip(&rec.layers) {
                let program = plan_layer(&arch, layer, Choice::Best(objective)).unwrap();
                assert_eq!(lr.mapping, program.mapping, "point {id} {}", layer.name);
                cycles += systole_sim::estimate(&arch, &program).unwrap().report.cycles;
            }
            assert_eq!(rec.cycles, cycles, "point {id} ({})", arch.dataflow);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Layers of one shape in different formats are costed apart: on a sparse, int4 x int4
/// point each costs what compiling it costs, the formats are faster than dense, and int4
/// activations faster than int4 weights alone.
#[test]
fn weight_formats_are_costed_apart() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("systole-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let space_path = dir.join("s.toml");
    let base = root.join("configs/archs/16x16-int4x4.toml");
    std::fs::write(&space_path, format!("name = \"f\"\nbase = {:?}\n[params]\nrows = [16]\n", base)).unwrap();
    let space = Space::from_file(&space_path).unwrap();
    let wl = Workload::from_file(&root.join("configs/workloads/compressed.toml")).unwrap();
    let mut layers = vec![];
    let dense = systole_core::Sparsity::Dense;
    for (sparsity, bits, act_bits) in [(dense, 8, 8), (systole_core::Sparsity::TwoOfFour, 8, 8), (dense, 4, 8), (dense, 4, 4)] {
        layers.push(systole_core::Layer { sparsity, weight_bits: bits, act_bits, ..wl.layers[1].clone() });
    }
    let target = Target::workload(&Workload { layers: layers.clone(), ..wl });
    let rec = evaluate(&space, 0, &target, &Process::horowitz_45nm(), Objective::Latency, None);
    let arch = space.arch(0).unwrap();
    let cycles: Vec<u64> = rec.layers.iter().map(|l| l.cycles).collect();
    for (layer, &c) in layers.iter().zip(&cycles) {
        let program = plan_layer(&arch, layer, Choice::Best(Objective::Latency)).unwrap();
        assert_eq!(
            c,
            systole_sim::estimate(&arch, &program).unwrap().report.cycles,
            "{:?}",
            (layer.sparsity, layer.weight_bits, layer.act_bits)
        );
    }
    assert!(cycles[1] < cycles[0] && cycles[2] < cycles[0] && cycles[3] < cycles[2], "{cycles:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A network's Adds, pools, Concat and flatten are costed at points with a vector unit, each
/// as the network compiler compiles it alone with its exact tables; without one they are
/// the host's and not in the record.
#[test]
fn vector_nodes_are_costed_at_points_with_a_vector_unit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("systole-vector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let space_path = dir.join("s.toml");
    let base = root.join("configs/archs/4x4.toml");
    std::fs::write(&space_path, format!("name = \"v\"\nbase = {:?}\n[params]\nvector_lanes = [0, 1, 4]\n", base)).unwrap();
    let space = Space::from_file(&space_path).unwrap();
    let path = root.join("configs/models/tiny_qop.onnx");
    let net = systole_onnx::import(&systole_onnx::read(&path).unwrap(), &path).unwrap();
    let target = Target::network(&net);
    let layers = net.layers().count();
    for id in space.order() {
        let arch = space.arch(id).unwrap();
        let rec = evaluate(&space, id, &target, &Process::horowitz_45nm(), Objective::Latency, None);
        assert_eq!(rec.status, "ok", "{:?}", rec.error);
        let compiled = systole_runtime::compile(&arch, &net).unwrap();
        let vector: Vec<_> =
            compiled.layers.iter().enumerate().filter(|(n, p)| p.is_some() && net.nodes[*n].op.layer_data().is_none()).collect();
        assert_eq!(rec.layers.len(), layers + vector.len(), "lanes {}", arch.vector_lanes);
        assert_eq!(vector.is_empty(), arch.vector_lanes == 0);
        for (lr, (n, program)) in rec.layers[layers..].iter().zip(vector) {
            assert_eq!(lr.name, net.nodes[n].name);
            assert_eq!(lr.cycles, systole_sim::estimate(&arch, program.as_ref().unwrap()).unwrap().report.cycles, "{}", lr.name);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
