//! Results files: JSON Lines, one [`Record`] per point (schema in docs/SWEEP.md). Records are
//! appended as points finish, in completion order; a rerun reads the file, drops a torn last
//! line and skips the points already there. [`merge`] joins shard files.

use crate::space::Space;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use systole_core::mapping::{Mapping, Objective};
use systole_mappings::{area::Area, energy::Energy};

/// One layer of a point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Layer (node) name.
    pub name: String,
    /// conv, depthwise or gemm.
    pub op: String,
    /// Simulated cycles.
    pub cycles: u64,
    /// MACs.
    pub macs: u64,
    /// MACs / (PEs x cycles).
    pub utilization: f64,
    /// `compute` or `memory`, from the simulated unit occupancy.
    pub bound: String,
    /// `ceil(MACs / PEs)`.
    pub compute_bound_cycles: u64,
    /// Compulsory DRAM traffic / bandwidth.
    pub memory_bound_cycles: u64,
    /// Energy, pJ.
    pub energy_pj: f64,
    /// DRAM bytes read and written.
    #[serde(default)]
    pub dram_bytes: u64,
    /// The mapping the compiler chose (tile sizes), as it then uses it.
    #[serde(default)]
    pub mapping: Option<Mapping>,
}

/// One evaluated point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Point id in the space (mixed-radix index).
    pub id: u64,
    /// Digest of the space, equal across the shards of one sweep.
    pub space: String,
    /// Workload or model name.
    pub target: String,
    /// What each layer's mapping minimizes.
    #[serde(default)]
    pub objective: Objective,
    /// PEs of the point's array.
    #[serde(default)]
    pub pes: u64,
    /// Clock, MHz.
    #[serde(default)]
    pub clock_mhz: f64,
    /// DRAM bytes per cycle.
    #[serde(default)]
    pub dram_bytes_per_cycle: u64,
    /// The point's parameter values.
    pub params: BTreeMap<String, serde_json::Value>,
    /// `ok`, `invalid` (the values make no valid ArchConfig), `unmappable` (a layer does not
    /// fit) or `simulator`.
    pub status: String,
    /// Why the point failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Total cycles, all layers in sequence.
    pub cycles: u64,
    /// Latency at the point's clock, ms.
    pub latency_ms: f64,
    /// MACs.
    pub macs: u64,
    /// Whole-target utilization.
    pub utilization: f64,
    /// Sum over layers of max(compute bound, memory bound).
    pub lower_bound_cycles: u64,
    /// Energy, uJ.
    pub energy_uj: f64,
    /// Energy by component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy: Option<Energy>,
    /// Area, mm^2.
    pub area_mm2: f64,
    /// Area by component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
    /// DRAM bytes read and written.
    pub dram_bytes: u64,
    /// The FPGA build, with `--synth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fpga: Option<crate::synth::FpgaRecord>,
    /// Per layer.
    pub layers: Vec<LayerRecord>,
}

impl Record {
    /// An empty record for point `id`.
    pub fn new(space: &Space, id: u64, target: &str) -> Self {
        let params = space.values(id).into_iter().map(|(k, v)| (k, serde_json::to_value(&v).unwrap_or(serde_json::Value::Null))).collect();
        Self {
            id,
            space: space.digest().into(),
            target: target.into(),
            objective: Objective::Latency,
            pes: 0,
            clock_mhz: 0.0,
            dram_bytes_per_cycle: 0,
            params,
            status: String::new(),
            error: None,
            cycles: 0,
            latency_ms: 0.0,
            macs: 0,
            utilization: 0.0,
            lower_bound_cycles: 0,
            energy_uj: 0.0,
            energy: None,
            area_mm2: 0.0,
            area: None,
            dram_bytes: 0,
            fpga: None,
            layers: vec![],
        }
    }

    /// This record marked failed.
    pub fn failed(mut self, status: &str, error: String) -> Self {
        self.status = status.into();
        self.error = Some(error);
        self.layers.clear();
        self
    }
}

/// Reads a results file: the complete records, and the byte length they span (a torn last
/// line, from a sweep stopped mid-write, is not part of it).
pub fn read(path: &Path) -> std::io::Result<(Vec<Record>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
        Err(e) => return Err(e),
    };
    let mut records = vec![];
    let mut good = 0;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str::<Record>(line.trim_end()) {
            Ok(r) => records.push(r),
            Err(_) if line.trim().is_empty() => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: line {}: {e}", path.display(), records.len() + 1),
                ))
            }
        }
        good += line.len();
    }
    Ok((records, good))
}

/// Opens `path` for appending after its complete records (truncating a torn last line).
pub fn append(path: &Path, valid_len: usize) -> std::io::Result<std::fs::File> {
    let f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path)?;
    f.set_len(valid_len as u64)?;
    let mut f = f;
    use std::io::Seek;
    f.seek(std::io::SeekFrom::End(0))?;
    Ok(f)
}

/// Writes one record as a line and flushes it.
pub fn write(f: &mut std::fs::File, r: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.flush()
}

/// Joins shard files into `out`: one record per id (sorted), every record from the same
/// space. Returns the number of records.
pub fn merge(inputs: &[&Path], out: &Path) -> Result<usize, String> {
    let mut all: BTreeMap<u64, Record> = BTreeMap::new();
    let mut digest: Option<String> = None;
    for p in inputs {
        let (records, _) = read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for r in records {
            match &digest {
                Some(d) if *d != r.space => {
                    return Err(format!(
                        "{}: point {} comes from space {}, the others from {d}; merge shards of one sweep",
                        p.display(),
                        r.id,
                        r.space
                    ))
                }
                None => digest = Some(r.space.clone()),
                _ => {}
            }
            all.insert(r.id, r);
        }
    }
    let mut f = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for r in all.values() {
        write(&mut f, r).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    Ok(all.len())
}
