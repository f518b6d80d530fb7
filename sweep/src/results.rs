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

/// A results file that cannot be used as it is.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ResultsError {
    /// The file cannot be read (not a regular file, too large, not UTF-8, an OS error).
    #[error(transparent)]
    #[diagnostic(transparent)]
    File(#[from] systole_core::LoadError),
    /// A line is not a record, repeats a point, or belongs to another sweep.
    #[error("{path}:{line}: {message}")]
    #[diagnostic(code(systole::sweep::results))]
    Line {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: String,
    },
    /// Another sweep holds the file's lock.
    #[error("{path}: another sweep is writing this file")]
    #[diagnostic(code(systole::sweep::locked), help("wait for it to finish, or give this sweep another --out folder"))]
    Locked {
        /// The file.
        path: std::path::PathBuf,
    },
    /// The files given to `sweep merge` do not make one sweep.
    #[error("{0}")]
    #[diagnostic(code(systole::sweep::merge), help("give every results-K-of-N.jsonl file of one sweep, each once"))]
    Merge(String),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    #[diagnostic(code(systole::io))]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The records of a results file, read whole, and the byte length they span.
#[derive(Debug, Default)]
pub struct Contents {
    /// The complete records, in file order.
    pub records: Vec<Record>,
    /// Bytes of the complete lines (a torn last line, from a sweep stopped mid-write, is
    /// not part of them).
    pub valid_len: usize,
    /// Whether the file ends with a torn line.
    pub torn: bool,
}

/// Reads a results file (none yet is empty): every complete line must be a record of a
/// point not seen before in the file, of the same space, target and objective as the
/// first. An error names the line.
pub fn read(path: &Path) -> Result<Contents, ResultsError> {
    if !path.exists() {
        return Ok(Contents::default());
    }
    let text = systole_core::input::read_text(path, systole_core::input::MAX_RESULTS_BYTES, "a results file")?;
    let mut out = Contents::default();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bad = |message: String, help: &str| ResultsError::Line { path: path.to_owned(), line: i + 1, message, help: help.into() };
        if !line.ends_with('\n') {
            out.torn = true;
            break;
        }
        out.valid_len += line.len();
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line.trim_end())
            .map_err(|e| bad(format!("not a sweep record: {e}"), "delete the line, or the file to start over"))?;
        if let Some(first) = out.records.first() {
            if (&r.space, &r.target, r.objective) != (&first.space, &first.target, first.objective) {
                return Err(bad(
                    format!(
                        "point {} is from space {} on `{}` for {:?}; line 1 is from space {} on `{}` for {:?}",
                        r.id, r.space, r.target, r.objective, first.space, first.target, first.objective
                    ),
                    "a results file holds one sweep; move the foreign lines to their own file",
                ));
            }
        }
        if let Some(prev) = seen.insert(r.id, i + 1) {
            return Err(bad(format!("point {} again (first on line {prev})", r.id), "delete one of the two lines"));
        }
        out.records.push(r);
    }
    Ok(out)
}

/// Opens (or creates) the results file `path` and locks it for this process alone, so that
/// two sweeps never write one file; the lock ends when the file is closed. A second sweep
/// into the same file stops with an error naming it.
pub fn lock(path: &Path) -> Result<std::fs::File, ResultsError> {
    let write = |source| ResultsError::Write { path: path.to_owned(), source };
    let f = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(write)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(ResultsError::Locked { path: path.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(write(e)),
    }
}

/// Positions the locked results file `f` for appending after its complete records
/// (truncating a torn last line).
pub fn append(f: &mut std::fs::File, valid_len: usize) -> std::io::Result<()> {
    use std::io::Seek;
    f.set_len(valid_len as u64)?;
    f.seek(std::io::SeekFrom::End(0))?;
    Ok(())
}

/// Writes one record as a line and flushes it.
pub fn write(f: &mut std::fs::File, r: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_string(r).map_err(std::io::Error::other)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.flush()
}

/// Checks that `records`, read from `path`, are exactly `shard`'s points of `space`.
fn check_shard(path: &Path, records: &[Record], space: &crate::space::Space, shard: crate::space::Shard) -> Result<(), ResultsError> {
    let merge_err = |m: String| ResultsError::Merge(m);
    if let Some(r) = records.iter().find(|r| r.space != space.digest()) {
        return Err(merge_err(format!(
            "{}: point {} is from space {}, not the given space ({})",
            path.display(),
            r.id,
            r.space,
            space.digest()
        )));
    }
    let expected: std::collections::BTreeSet<u64> = space.shard(shard).into_iter().collect();
    let held: std::collections::BTreeSet<u64> = records.iter().map(|r| r.id).collect();
    if let Some(id) = held.difference(&expected).next() {
        return Err(merge_err(format!("{}: point {id} is not one of shard {}/{}'s", path.display(), shard.index, shard.count)));
    }
    let missing: Vec<String> = expected.difference(&held).map(u64::to_string).collect();
    if !missing.is_empty() {
        let shown = if missing.len() > 8 { format!("{}, ...", missing[..8].join(", ")) } else { missing.join(", ") };
        return Err(merge_err(format!(
            "{}: holds {} of shard {}/{}'s {} points (missing {shown}); resume that shard's sweep (--shard {}/{}) to finish it",
            path.display(),
            held.len(),
            shard.index,
            shard.count,
            expected.len(),
            shard.index,
            shard.count
        )));
    }
    Ok(())
}

/// Joins the shard files `inputs` (`results-K-of-N.jsonl`, all N of them, each once, none
/// torn) into `out`: one record per id (sorted), all of one space, target and objective,
/// no id in two shards. With the sweep's `space`, each shard must also hold exactly its
/// points, all of that space. `out` must not exist, or already hold exactly the merged
/// records. Returns the number of records.
pub fn merge(inputs: &[&Path], out: &Path, space: Option<&crate::space::Space>) -> Result<usize, ResultsError> {
    let merge_err = |m: String| ResultsError::Merge(m);
    let mut shards: BTreeMap<u64, &Path> = BTreeMap::new();
    let mut count = None;
    for p in inputs {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let shard = name
            .strip_prefix("results-")
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.split_once("-of-"))
            .and_then(|(k, n)| Some((k.parse::<u64>().ok()?, n.parse::<u64>().ok()?)))
            .filter(|(k, n)| k < n);
        let Some((k, n)) = shard else {
            return Err(merge_err(format!("{}: not a shard's results file (results-K-of-N.jsonl)", p.display())));
        };
        if *count.get_or_insert(n) != n {
            return Err(merge_err(format!("{}: a shard of {n}, the others of {}", p.display(), count.unwrap_or(n))));
        }
        if let Some(other) = shards.insert(k, p) {
            return Err(merge_err(format!("shard {k} of {n} given twice: {} and {}", other.display(), p.display())));
        }
    }
    let n = count.ok_or_else(|| merge_err("no shard files given".into()))?;
    let missing: Vec<u64> = (0..n).filter(|k| !shards.contains_key(k)).collect();
    if !missing.is_empty() {
        let files: Vec<String> = missing.iter().map(|k| format!("results-{k}-of-{n}.jsonl")).collect();
        let list = missing.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
        let (what, verb) = if missing.len() == 1 { ("shard", "is") } else { ("shards", "are") };
        return Err(merge_err(format!("{what} {list} of {n} ({}) {verb} missing", files.join(", "))));
    }
    let mut all: BTreeMap<u64, Record> = BTreeMap::new();
    let mut first: Option<(String, Record)> = None;
    for (&k, p) in &shards {
        if !p.exists() {
            return Err(merge_err(format!("{}: no such file", p.display())));
        }
        let contents = read(p)?;
        if contents.torn {
            return Err(merge_err(format!("{}: ends with a torn line; resume that shard's sweep to finish it", p.display())));
        }
        if let Some(space) = space {
            check_shard(p, &contents.records, space, crate::space::Shard { index: k, count: n })?;
        }
        for r in contents.records {
            if let Some((from, f)) = &first {
                if (&r.space, &r.target, r.objective) != (&f.space, &f.target, f.objective) {
                    return Err(merge_err(format!(
                        "{}: from space {} on `{}` for {:?}, but {from} is from space {} on `{}` for {:?}",
                        p.display(),
                        r.space,
                        r.target,
                        r.objective,
                        f.space,
                        f.target,
                        f.objective
                    )));
                }
            } else {
                first = Some((p.display().to_string(), r.clone()));
            }
            let id = r.id;
            if all.insert(id, r).is_some() {
                return Err(merge_err(format!("{}: point {id} is also in another shard", p.display())));
            }
        }
    }
    let mut text = String::new();
    for r in all.values() {
        text.push_str(&serde_json::to_string(r).map_err(|e| merge_err(e.to_string()))?);
        text.push('\n');
    }
    match std::fs::read(out) {
        Ok(existing) if existing == text.as_bytes() => return Ok(all.len()),
        Ok(_) => {
            return Err(merge_err(format!(
                "{}: exists and holds other results; merging would overwrite them (move it, or merge into another --out)",
                out.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(ResultsError::Write { path: out.to_owned(), source }),
    }
    std::fs::write(out, text).map_err(|source| ResultsError::Write { path: out.to_owned(), source })?;
    Ok(all.len())
}
