//! Scheduling a [`Network`]: the order nodes run in and where each activation lives in DRAM.
//!
//! Nodes run in a topological order of the network's petgraph view. Each value lives in DRAM
//! from the node that writes it until the last node that reads it (network outputs until the
//! end); buffers whose lifetimes do not overlap share memory. Placement is greedy: values in
//! order of size, largest first, each at the lowest aligned offset that overlaps no live
//! buffer placed before it.

use petgraph::algo::toposort;
use systole_core::network::{Network, ValueId};

/// DRAM buffers are aligned to this many bytes (one DRAM beat of the widest preset).
pub const ALIGN: usize = systole_core::program::DRAM_LINE;

/// Where each value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferPlan {
    /// Node execution order.
    pub order: Vec<usize>,
    /// Byte offset of each value in the activation arena.
    pub offsets: Vec<usize>,
    /// First and last step (position in `order`; inputs at 0) each value is live.
    pub live: Vec<(usize, usize)>,
    /// Arena size: the highest end of any buffer.
    pub peak: usize,
    /// The sum of all buffers (what no reuse would need).
    pub total: usize,
}

/// Schedules `net` and places its values, each taking its int8 data's bytes.
pub fn plan(net: &Network) -> BufferPlan {
    let mut present = vec![false; net.values.len()];
    for v in net.inputs.iter().map(|i| i.value).chain(net.nodes.iter().map(|n| n.output)) {
        present[v] = true;
    }
    let sizes: Vec<usize> = (0..net.values.len()).map(|v| if present[v] { net.values[v].len() } else { 0 }).collect();
    plan_sized(net, &sizes, None)
}

/// Schedules `net` and places its values, value `v` taking `sizes[v]` bytes (0: not in
/// the arena), rounded up to [`ALIGN`]. With `kinds` (one per value), two values share
/// bytes only if they are of the same kind and never live at once.
pub fn plan_sized(net: &Network, sizes: &[usize], kinds: Option<&[usize]>) -> BufferPlan {
    let g = net.graph();
    let order: Vec<usize> =
        toposort(&g, None).expect("a network is acyclic: nodes are stored in a topological order").into_iter().map(|i| g[i]).collect();
    let end = order.len() + 1;
    let mut live = vec![(0, 0); net.values.len()];
    for (step, &n) in order.iter().enumerate() {
        let node = &net.nodes[n];
        live[node.output] = (step + 1, step + 1);
        for &v in &node.inputs {
            live[v].1 = live[v].1.max(step + 1);
        }
    }
    for o in &net.outputs {
        live[o.value].1 = end;
    }
    let size = |v: ValueId| sizes[v].div_ceil(ALIGN) * ALIGN;
    let mut by_size: Vec<ValueId> = (0..net.values.len()).collect();
    by_size.sort_by_key(|&v| (std::cmp::Reverse(size(v)), v));
    let mut offsets = vec![0; net.values.len()];
    let mut placed: Vec<ValueId> = vec![];
    for v in by_size {
        let mut blocks: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&p| (live[p].0 <= live[v].1 && live[v].0 <= live[p].1) || kinds.is_some_and(|k| k[p] != k[v]))
            .map(|&p| (offsets[p], offsets[p] + size(p)))
            .collect();
        blocks.sort();
        let mut at = 0;
        for (lo, hi) in blocks {
            if at + size(v) <= lo {
                break;
            }
            at = at.max(hi);
        }
        offsets[v] = at;
        placed.push(v);
    }
    let peak = (0..net.values.len()).map(|v| offsets[v] + size(v)).max().unwrap_or(0);
    let total = (0..net.values.len()).map(size).sum();
    BufferPlan { order, offsets, live, peak, total }
}

#[cfg(test)]
mod tests {
    use super::*;
    use systole_core::network::{NetInput, NetOutput, Node, Op, Quant, Value};

    fn value(name: &str, len: usize) -> Value {
        Value { name: name.into(), shape: vec![len], quant: Quant { scale: 1.0, zp: 0 } }
    }

    /// A chain a -> b -> c -> d with a residual a -> d: a stays live to the end.
    #[test]
    fn chain_with_a_skip_reuses_dead_buffers() {
        let node = |name: &str, inputs: Vec<usize>, output| Node { name: name.into(), op: Op::Reshape, inputs, output };
        let net = Network {
            name: "t".into(),
            values: vec![value("a", 128), value("b", 64), value("c", 64), value("d", 128)],
            nodes: vec![node("b", vec![0], 1), node("c", vec![1], 2), node("d", vec![0, 2], 3)],
            inputs: vec![NetInput { name: "a".into(), value: 0, float: false }],
            outputs: vec![NetOutput { name: "d".into(), value: 3, dequantize: None }],
        };
        let p = plan(&net);
        assert_eq!(p.order, vec![0, 1, 2]);
        assert_eq!(p.live, vec![(0, 3), (1, 2), (2, 3), (3, 4)]);
        // a [0,128) lives throughout; d may reuse b's space only where b and d do not overlap.
        assert_eq!(p.total, 384);
        // a: 0..128, d: 128..256 (overlaps a and c), b: 256.. or reuse; c overlaps a, d and b
        for v in 0..4 {
            for w in 0..4 {
                let overlap_time = p.live[v].0 <= p.live[w].1 && p.live[w].0 <= p.live[v].1;
                let sz = |x: usize| net.values[x].len();
                let overlap_space = p.offsets[v] < p.offsets[w] + sz(w) && p.offsets[w] < p.offsets[v] + sz(v);
                assert!(v == w || !(overlap_time && overlap_space), "values {v} and {w} collide: {p:?}");
            }
        }
        assert!(p.peak < p.total, "{p:?}");
    }
}
