//! Energy from access counts.
//!
//! A simulated run reports how often each SRAM word was read and written, the DRAM bytes
//! moved and the MACs performed (`LayerReport`). Energy is the sum of each count times its
//! energy per event from a [`Process`] table. Static (leakage) energy and the controller
//! are not modelled.
//!
//! The 45 nm table ([`Process::horowitz_45nm`]) is M. Horowitz, "Computing's energy problem
//! (and what we can do about it)", ISSCC 2014, figure 1.1.9 (the numbers Accelergy's
//! `table_based_plug_ins` and many accelerator papers start from):
//!
//! | event | energy |
//! |---|---|
//! | 8-bit integer multiply | 0.2 pJ |
//! | 32-bit integer add | 0.1 pJ |
//! | SRAM read, 64 bits, 8 KB array | 10 pJ |
//! | SRAM read, 64 bits, 32 KB array | 20 pJ |
//! | SRAM read, 64 bits, 1 MB array | 100 pJ |
//! | DRAM access, 64 bits | 1.3-2.6 nJ (we take 2.0 nJ, 250 pJ/byte) |
//!
//! A MAC is one 8-bit multiply and one 32-bit add (0.3 pJ). An SRAM access of a `w`-bit word
//! in an `S`-byte memory costs the 64-bit figure for `S`, interpolated log-log between (and
//! extrapolated beyond) the three table sizes, times `w / 64`. Writes cost as much as reads.

use serde::{Deserialize, Serialize};
use systole_core::report::LayerReport;
use systole_core::ArchConfig;

/// Energies per event of one process node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// Name, e.g. `45nm (Horowitz ISSCC 2014)`.
    pub name: String,
    /// pJ per int8 x int8 multiply with int32 accumulate.
    pub mac_pj: f64,
    /// (array bytes, pJ per 64-bit access) points, ascending.
    pub sram_64b_pj: Vec<(f64, f64)>,
    /// pJ per DRAM byte.
    pub dram_pj_per_byte: f64,
}

impl Process {
    /// The 45 nm table of the module documentation.
    pub fn horowitz_45nm() -> Self {
        Self {
            name: "45nm (Horowitz, ISSCC 2014)".into(),
            mac_pj: 0.2 + 0.1,
            sram_64b_pj: vec![(8.0 * 1024.0, 10.0), (32.0 * 1024.0, 20.0), (1024.0 * 1024.0, 100.0)],
            dram_pj_per_byte: 2000.0 / 8.0,
        }
    }

    /// pJ per access of a `bits`-wide word in an SRAM of `bytes`.
    pub fn sram_access_pj(&self, bytes: f64, bits: f64) -> f64 {
        let pts = &self.sram_64b_pj;
        let i = pts.iter().position(|&(s, _)| s >= bytes).unwrap_or(pts.len() - 1).clamp(1, pts.len() - 1);
        let ((s0, e0), (s1, e1)) = (pts[i - 1], pts[i]);
        let slope = (e1 / e0).ln() / (s1 / s0).ln();
        let e64 = e0 * (bytes.max(1.0) / s0).powf(slope);
        e64 * bits / 64.0
    }
}

/// Energy of a run by component, in pJ.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Energy {
    /// MACs in the array.
    pub mac_pj: f64,
    /// Scratchpad, accumulator and parameter-table accesses.
    pub sram_pj: f64,
    /// DRAM traffic.
    pub dram_pj: f64,
}

impl Energy {
    /// Sum of the components, pJ.
    pub fn total_pj(&self) -> f64 {
        self.mac_pj + self.sram_pj + self.dram_pj
    }
}

/// The SRAMs of `arch` as (report key prefix, bytes, word bits).
pub fn memories(arch: &ArchConfig) -> [(&'static str, f64, f64); 5] {
    let kib = |k: usize| (k * 1024) as f64;
    let table_bytes = (4 * systole_core::arch::VECTOR_TABLE_ENTRIES * arch.vector_lanes) as f64;
    [
        ("act", kib(arch.act_sram_kib), (8 * arch.rows) as f64),
        ("wgt", kib(arch.wgt_sram_kib), (8 * arch.cols) as f64),
        ("acc", kib(arch.acc_sram_kib), (32 * arch.cols) as f64),
        // One entry: an int32 bias and an f32 scale.
        ("param", (arch.param_entries * 8) as f64, 64.0),
        // The vector unit's tables, a copy per lane (none without a vector unit); a word
        // read looks up an entry for each of its `vector_width` lanes.
        ("table", table_bytes, (32 * arch.vector_width()) as f64),
    ]
}

/// Energy of the run `report` (one layer or a total) on `arch`.
pub fn energy(arch: &ArchConfig, report: &LayerReport, process: &Process) -> Energy {
    let mut sram_pj = 0.0;
    for (key, bytes, bits) in memories(arch) {
        let count: u64 = ["read", "write"].iter().map(|op| report.sram.get(&format!("{key}.{op}")).copied().unwrap_or(0)).sum();
        sram_pj += count as f64 * process.sram_access_pj(bytes, bits);
    }
    let dram: u64 = report.dram_bytes.values().sum();
    Energy { mac_pj: report.macs as f64 * process.mac_pj, sram_pj, dram_pj: dram as f64 * process.dram_pj_per_byte }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sram_energy_hits_the_table_points_and_scales_with_width() {
        let p = Process::horowitz_45nm();
        for (bytes, pj) in [(8192.0, 10.0), (32768.0, 20.0), (1048576.0, 100.0)] {
            assert!((p.sram_access_pj(bytes, 64.0) - pj).abs() < 1e-9, "{bytes}");
        }
        // 16 KB is halfway in log size between 8 and 32 KB: sqrt(10 * 20) pJ.
        assert!((p.sram_access_pj(16384.0, 64.0) - 200f64.sqrt()).abs() < 1e-9);
        assert!((p.sram_access_pj(8192.0, 128.0) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn energy_by_hand() {
        let arch =
            ArchConfig { rows: 8, cols: 8, act_sram_kib: 8, wgt_sram_kib: 32, acc_sram_kib: 32, param_entries: 1024, ..Default::default() };
        let mut r = LayerReport { macs: 1000, ..Default::default() };
        r.sram.insert("act.read".into(), 10);
        r.sram.insert("wgt.write".into(), 2);
        r.sram.insert("acc.read".into(), 1);
        r.dram_bytes.insert("read".into(), 8);
        let e = energy(&arch, &r, &Process::horowitz_45nm());
        // 1000 MACs x 0.3 pJ; act: 10 x 10 pJ (64-bit words, 8 KiB); wgt: 2 x 20 pJ (32 KiB);
        // acc: 1 x 20 pJ x 256/64 bits; param untouched; DRAM 8 B x 250 pJ.
        assert!((e.mac_pj - 300.0).abs() < 1e-9);
        assert!((e.sram_pj - (100.0 + 40.0 + 80.0)).abs() < 1e-9, "{e:?}");
        assert!((e.dram_pj - 2000.0).abs() < 1e-9);
    }
}
