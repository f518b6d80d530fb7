//! Whole networks through the ladder: compiled and simulated, every node's output against
//! the golden network's.

use crate::LadderError;
use systole_core::network::{HostTensor, Network};
use systole_core::ArchConfig;
use systole_runtime::{Compiled, NetworkRun};

/// `net` compiled for `arch` and simulated on `inputs`, after checking that every node's
/// output equals the golden network's.
pub fn simulate_against_golden(arch: &ArchConfig, net: &Network, inputs: &[HostTensor]) -> Result<(Compiled, NetworkRun), LadderError> {
    let run_error = |e: systole_runtime::RunError| LadderError::Mismatch(format!("{}: {e}", net.name));
    let compiled = systole_runtime::compile(arch, net).map_err(run_error)?;
    let run = systole_runtime::simulate(arch, net, &compiled.network, inputs).map_err(run_error)?;
    let x = systole_golden::network::input_values(net, inputs).map_err(|e| LadderError::Mismatch(e.to_string()))?;
    let golden = systole_golden::network::run_with(net, x, |_, l, d| Ok::<_, ()>(systole_golden::layer(l, d)))
        .map_err(|()| LadderError::Mismatch("golden run".into()))?;
    if let Some(n) = net.nodes.iter().find(|n| golden[n.output] != run.values[n.output]) {
        return Err(LadderError::Mismatch(format!("{}: node `{}` ({}) differs from the golden network", net.name, n.name, n.op.kind())));
    }
    Ok((compiled, run))
}
