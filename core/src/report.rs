//! What a simulation measures.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Measurements of one layer (or one program).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer name.
    pub name: String,
    /// Cycles from start until every unit is done.
    pub cycles: u64,
    /// Cycles by cause; they add up to `cycles`. Keys: `compute` (the array streams useful
    /// rows), `fill_drain` (pipeline fill and drain, and weight preloads the array waits for),
    /// `dram_stall` (the array waits for the DMAs).
    pub cycles_by_cause: BTreeMap<String, u64>,
    /// Useful multiply-accumulates.
    pub macs: u64,
    /// `macs / (PEs * cycles)`.
    pub utilization: f64,
    /// Scratchpad and accumulator accesses by memory: `act.read`, `act.write`, `wgt.read`,
    /// `wgt.write`, `acc.read`, `acc.write` (in words or rows), `param.read`, `param.write`.
    pub sram: BTreeMap<String, u64>,
    /// DRAM bytes: `read`, `write`.
    pub dram_bytes: BTreeMap<String, u64>,
    /// Busy cycles per unit: `load`, `exec`, `store`.
    pub unit_busy: BTreeMap<String, u64>,
    /// Instructions per unit.
    pub instructions: BTreeMap<String, u64>,
    /// `compute` if the array is busy at least as long as either DMA, else `memory`.
    pub bound: String,
    /// FNV-1a digest of the output tensor.
    pub output_digest: String,
}

/// An operator the host ran between accelerator programs, a fallback for an operator the
/// instance lacks; its time is not in the cycles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStep {
    /// Node name.
    pub name: String,
    /// Operator kind (`add`, `maxpool`, ...).
    pub kind: String,
    /// Bytes it reads and writes.
    pub bytes: u64,
    /// Accelerator layers (rows of [`SimReport::layers`]) that ran before it.
    pub after_layers: usize,
}

/// A whole workload's report: per-layer rows and totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// Architecture name.
    pub arch: String,
    /// Workload name.
    pub workload: String,
    /// PEs of the array.
    pub pes: u64,
    /// Clock, for converting cycles to time.
    pub clock_mhz: f64,
    /// One row per layer, in workload order.
    pub layers: Vec<LayerReport>,
    /// Operators the host ran between programs (networks only), in execution order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<HostStep>,
    /// Sum over layers. Layers compiled alone run one after another; in a network program a
    /// layer's cycles are those it adds after the layers before it (it may overlap them), so
    /// they sum to the program's.
    pub total: LayerReport,
}

fn add_maps(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

impl SimReport {
    /// Bytes the host operators read and write.
    pub fn host_bytes(&self) -> u64 {
        self.host.iter().map(|h| h.bytes).sum()
    }

    /// The host operators' share of all bytes moved: their bytes over theirs plus the
    /// accelerator's DRAM traffic (0 when nothing moves).
    pub fn host_byte_share(&self) -> f64 {
        let host = self.host_bytes() as f64;
        let dram: u64 = self.total.dram_bytes.values().sum();
        if host + dram as f64 == 0.0 {
            0.0
        } else {
            host / (host + dram as f64)
        }
    }

    /// Builds the report and its totals from per-layer rows.
    pub fn new(arch: &str, workload: &str, pes: u64, clock_mhz: f64, layers: Vec<LayerReport>) -> Self {
        let mut total = LayerReport { name: "total".into(), ..Default::default() };
        for l in &layers {
            total.cycles += l.cycles;
            total.macs += l.macs;
            add_maps(&mut total.cycles_by_cause, &l.cycles_by_cause);
            add_maps(&mut total.sram, &l.sram);
            add_maps(&mut total.dram_bytes, &l.dram_bytes);
            add_maps(&mut total.unit_busy, &l.unit_busy);
            add_maps(&mut total.instructions, &l.instructions);
        }
        total.utilization = utilization(total.macs, pes, total.cycles);
        let exec = total.unit_busy.get("exec").copied().unwrap_or(0);
        let dma = ["load", "store"].iter().map(|k| total.unit_busy.get(*k).copied().unwrap_or(0)).max().unwrap_or(0);
        total.bound = if exec >= dma { "compute" } else { "memory" }.into();
        Self { arch: arch.into(), workload: workload.into(), pes, clock_mhz, layers, host: vec![], total }
    }
}

/// `macs / (pes * cycles)`, 0 for an empty run.
pub fn utilization(macs: u64, pes: u64, cycles: u64) -> f64 {
    if cycles == 0 {
        0.0
    } else {
        macs as f64 / (pes as f64 * cycles as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_share_counts_host_bytes_against_all_bytes_moved() {
        let layer = LayerReport { dram_bytes: BTreeMap::from([("read".into(), 600), ("write".into(), 200)]), ..Default::default() };
        let mut r = SimReport::new("a", "w", 4, 100.0, vec![layer]);
        assert_eq!(r.host_byte_share(), 0.0);
        let step = |bytes| HostStep { name: "h".into(), kind: "add".into(), bytes, after_layers: 1 };
        r.host = vec![step(150), step(50)];
        // 200 host bytes of 200 + 800.
        assert_eq!((r.host_bytes(), r.host_byte_share()), (200, 0.2));
    }
}
