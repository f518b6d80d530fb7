//! The network program's structure, on the bundled tiny model: every wait points at an
//! earlier instruction, layers partition their runs, buffers that live at the same time
//! never share bytes (bordered ones only with buffers of the same border), constants sit apart from the
//! activations, and a layer's table entries follow the previous layer's. (That it computes
//! the network is checked against the golden network in the runtime and testbenches.)

use std::path::Path;
use systole_compiler::network::compile_network;
use systole_compiler::schedule::plan;
use systole_core::isa::{Op, Unit};
use systole_core::network::Network;
use systole_core::program::{NetStep, NetworkProgram};
use systole_core::{ArchConfig, Program};

fn tiny(arch: &ArchConfig) -> (Network, Vec<Option<Program>>, NetworkProgram) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models/tiny_qop.onnx");
    let net = systole_onnx::import(&systole_onnx::read(&path).unwrap(), &path).unwrap();
    let alone: Vec<Option<Program>> = net
        .nodes
        .iter()
        .map(|n| n.op.layer_data().map(|(layer, data)| systole_compiler::compile_layer(arch, layer, &data).unwrap()))
        .collect();
    let program = compile_network(arch, &net, &alone, &[]).unwrap();
    (net, alone, program)
}

#[test]
fn runs_wait_only_on_earlier_instructions_and_keep_each_layer_whole() {
    for arch in [ArchConfig::preset_4x4(), ArchConfig::preset_16x16()] {
        let (net, alone, np) = tiny(&arch);
        let mut seen = vec![];
        for (program, layers) in np.runs() {
            let mut before = [0u32; 3];
            for ins in &program.instrs {
                for u in Unit::ALL.into_iter().filter(|&u| u != ins.op.unit()) {
                    assert!(ins.sync.on(u) <= before[u.index()], "{}: `{ins}` waits for a later {u:?} instruction", arch.name);
                }
                before[ins.op.unit().index()] += 1;
            }
            let mut next = 0;
            for l in layers {
                assert_eq!(l.first, next, "layers follow each other");
                let own = alone[l.node].as_ref().unwrap();
                assert_eq!(l.end - l.first, own.instrs.len(), "layer `{}` has the instructions it has alone", net.nodes[l.node].name);
                for (linked, own) in program.instrs[l.first..l.end].iter().zip(&own.instrs) {
                    assert_eq!(linked.op.opcode(), own.op.opcode());
                }
                assert_eq!(l.macs, own.macs);
                next = l.end;
                seen.push(l.node);
            }
            assert_eq!(next, program.instrs.len());
            assert_eq!(program.macs, layers.iter().map(|l| l.macs).sum::<u64>());
        }
        let hosts = np.steps.iter().filter(|s| matches!(s, NetStep::Host { .. })).count();
        assert_eq!(seen.len() + hosts, net.nodes.len(), "every node runs once");
        assert_eq!(seen.len(), net.layers().count());
    }
}

#[test]
fn buffers_live_at_once_never_share_bytes_and_constants_sit_apart() {
    let arch = ArchConfig::preset_16x16();
    let (net, _, np) = tiny(&arch);
    let live = plan(&net).live;
    let span = |v: usize| {
        let b = np.buffers[v].as_ref().unwrap();
        (b.addr, b.addr + b.size() as u64)
    };
    let placed: Vec<usize> = (0..net.values.len()).filter(|&v| np.buffers[v].is_some()).collect();
    let arena_end = placed.iter().map(|&v| span(v).1).max().unwrap();
    for &v in &placed {
        let b = np.buffers[v].as_ref().unwrap();
        assert_eq!(b.addr % 64, 0, "buffers start on DRAM lines");
        for &w in placed.iter().filter(|&&w| w != v) {
            let (a, c) = (span(v), span(w));
            let overlap = a.0 < c.1 && c.0 < a.1;
            let c = np.buffers[w].as_ref().unwrap();
            // Borders are written once: only a buffer whose border coincides may reuse them.
            let borders_differ =
                (b.pad != [0; 4] || c.pad != [0; 4]) && (b.dims, b.pad, b.pad_value, b.tail) != (c.dims, c.pad, c.pad_value, c.tail);
            let together = live[v].0 <= live[w].1 && live[w].0 <= live[v].1;
            assert!(!(overlap && (together || borders_differ)), "values {} and {} share bytes", net.values[v].name, net.values[w].name);
        }
    }
    // A buffer's border is the widest padding of the layers that read it.
    for n in &net.nodes {
        if let Some((layer, _)) = n.op.layer_data() {
            let b = np.buffers[n.inputs[0]].as_ref().unwrap();
            assert!(b.pad.iter().zip(layer.shape.pad).all(|(&b, p)| b >= p), "`{}` reads past its input's border", n.name);
            assert_eq!(b.pad_value, layer.quant.x_zp);
        }
    }
    let mut segments: Vec<(u64, u64)> = np.dram_init.iter().map(|s| (s.addr, s.addr + s.bytes.len() as u64)).collect();
    segments.sort();
    assert!(segments[0].0 >= arena_end, "constants after the activations");
    assert!(segments.windows(2).all(|w| w[0].1 <= w[1].0), "constants placed once each");
    assert!(segments.last().unwrap().1 <= np.dram_size);
}

/// In a run, each layer's table entries start after the previous layer's (rounded up to a
/// table row) when they fit, so its table load does not wait for the stores before it.
#[test]
fn consecutive_layers_use_different_table_entries() {
    let arch = ArchConfig::preset_16x16();
    let (net, _, np) = tiny(&arch);
    let (program, layers) = np.runs().find(|(_, layers)| layers.len() > 1).expect("a run of several layers");
    let first_entry = |l: &systole_core::program::RunLayer| {
        program.instrs[l.first..l.end].iter().find_map(|i| match i.op {
            Op::LoadParams { dst, .. } => Some(dst),
            _ => None,
        })
    };
    let mut end = 0u32;
    for l in layers {
        let k = net.nodes[l.node].op.layer_data().unwrap().0.shape.k as u32;
        let want = end.div_ceil(arch.cols as u32) * arch.cols as u32;
        assert_eq!(first_entry(l), Some(want), "layer `{}`", net.nodes[l.node].name);
        end = want + k;
    }
}
