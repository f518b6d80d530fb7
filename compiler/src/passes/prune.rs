//! `prune`: removes nodes whose output nothing reads.

use super::Pass;
use systole_core::network::Network;

/// See the module documentation.
pub struct Prune;

impl Pass for Prune {
    fn name(&self) -> &'static str {
        "prune"
    }

    fn description(&self) -> &'static str {
        "removes nodes whose output no node and no network output reads"
    }

    fn run(&self, net: &mut Network) -> usize {
        let mut used = vec![false; net.values.len()];
        for o in &net.outputs {
            used[o.value] = true;
        }
        let mut keep = vec![false; net.nodes.len()];
        for (i, n) in net.nodes.iter().enumerate().rev() {
            if used[n.output] {
                keep[i] = true;
                for &v in &n.inputs {
                    used[v] = true;
                }
            }
        }
        let before = net.nodes.len();
        let mut k = keep.iter();
        net.nodes.retain(|_| *k.next().expect("one flag per node"));
        before - net.nodes.len()
    }
}
