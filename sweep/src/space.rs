//! Space files: a base architecture and the values each parameter takes.
//!
//! ```toml
//! name = "edge"
//! base = "../archs/16x16.toml"     # required, relative to this file
//!
//! [params]                         # any ArchConfig field, a list of values each
//! rows = [8, 16, 32]
//! cols = [8, 16, 32]
//! dataflow = ["ws", "os"]
//! act_sram_kib = [64, 256]
//! dram_bytes_per_cycle = [8, 16]
//!
//! [sample]                         # optional: evaluate this many points, drawn without
//! points = 200                     # replacement from the seed, instead of all
//! seed = 1
//! ```
//!
//! Point `i` is the mixed-radix number `i` over the parameters in name order, the last
//! name varying fastest. A shard `K/N` takes the points whose position in the sweep's
//! order is `K` modulo `N`, so that N machines split any sweep the same way.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use systole_core::{ArchConfig, ConfigError, LoadError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceFile {
    name: String,
    base: PathBuf,
    params: toml::Table,
    sample: Option<Sample>,
}

/// Most points a sweep evaluates (the whole space, or its sample): a million points take
/// hours on a workstation and a results file of about a GiB, and the sweep's order is
/// held in memory.
pub const MAX_SWEEP_POINTS: u64 = 1 << 20;

/// Sampling of a space too big to sweep whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    /// Points to evaluate.
    pub points: u64,
    /// Seed of the draw.
    #[serde(default = "one")]
    pub seed: u64,
}

fn one() -> u64 {
    1
}

/// A validated space.
#[derive(Debug, Clone)]
pub struct Space {
    /// Name for reports.
    pub name: String,
    /// The base architecture every point modifies.
    pub base: ArchConfig,
    /// Parameters and their values, by name.
    pub params: Vec<(String, Vec<toml::Value>)>,
    /// Sampling, if any.
    pub sample: Option<Sample>,
    /// `base` as a table, which every point's values override.
    base_table: toml::Table,
    /// See [`Space::digest`].
    digest: String,
}

/// The architecture `base` with `values` and the name `name`, unvalidated, or why the values
/// do not make one.
fn arch_with(base: &toml::Table, values: Vec<(String, toml::Value)>, name: String) -> Result<ArchConfig, PointError> {
    let mut table = base.clone();
    table.extend(values);
    table.insert("name".into(), toml::Value::String(name));
    let text = toml::to_string(&table).map_err(|e| PointError { message: e.to_string() })?;
    toml::from_str::<ArchConfig>(&text).map_err(|e| PointError { message: e.message().to_string() })
}

/// Why a point's values do not make an architecture (a value of another type than its
/// field's, as TOML's decoder words it).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PointError {
    /// The decoder's message.
    pub message: String,
}

/// One machine's part of a sweep: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 0-based.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    /// `K/N` with `0 <= K < N`.
    fn from_str(s: &str) -> Result<Self, ShardError> {
        let (k, n) = s.split_once('/').ok_or_else(|| ShardError::NotKOverN(s.into()))?;
        let (index, count): (u64, u64) = (
            k.trim().parse().map_err(|_| ShardError::NotANumber(k.into()))?,
            n.trim().parse().map_err(|_| ShardError::NotANumber(n.into()))?,
        );
        if count == 0 || index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Self { index, count })
    }
}

/// A `--shard` value that is not `K/N` with `0 <= K < N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// No `/`.
    #[error("`{0}` is not K/N")]
    NotKOverN(String),
    /// `K` or `N` is not a number.
    #[error("`{0}` is not a number")]
    NotANumber(String),
    /// `N = 0` or `K >= N`.
    #[error("shard {index}/{count}: need 0 <= K < N")]
    OutOfRange {
        /// `K`.
        index: u64,
        /// `N`.
        count: u64,
    },
}

impl Space {
    /// Reads and checks a space file: every parameter is an ArchConfig field with at least one
    /// value, and the base architecture is valid.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        let file: SpaceFile = systole_core::error::read_toml(path, "a space file")?;
        let invalid = |e: ConfigError| LoadError::invalid(path, e);
        systole_core::arch::check_name("name", &file.name).map_err(invalid)?;
        let base = ArchConfig::from_file(&path.parent().unwrap_or(Path::new(".")).join(&file.base))?;
        let base_table = toml::Table::try_from(&base).map_err(|e| invalid(ConfigError::new("base", e.to_string())))?;
        let mut params = vec![];
        for (key, value) in file.params {
            let values = match value {
                toml::Value::Array(v) if !v.is_empty() => v,
                toml::Value::Array(_) => {
                    return Err(invalid(ConfigError::new(format!("params.{key}"), "has no values").help("list at least one value")))
                }
                single => vec![single],
            };
            if key == "name" {
                return Err(invalid(
                    ConfigError::new("params.name", "is not a parameter: each point is named `<space>-<id>`").help("remove it"),
                ));
            }
            for (i, v) in values.iter().enumerate() {
                arch_with(&base_table, vec![(key.clone(), v.clone())], String::new()).map_err(|e| {
                    invalid(
                        ConfigError::new(format!("params.{key}[{i}]"), e.message)
                            .help("name an ArchConfig field with values of its type (docs/ARCHITECTURE.md section 2)"),
                    )
                })?;
                if let Some(j) = values[..i].iter().position(|w| w == v) {
                    return Err(invalid(
                        ConfigError::new(
                            format!("params.{key}[{i}]"),
                            format!("repeats {v} (also at [{j}]), so points would be evaluated twice"),
                        )
                        .help("list each value once"),
                    ));
                }
            }
            params.push((key, values));
        }
        if params.is_empty() {
            return Err(invalid(ConfigError::new("params", "lists no parameters").help("add e.g. rows = [8, 16]")));
        }
        let size = params.iter().try_fold(1u64, |a, (_, v)| a.checked_mul(v.len() as u64));
        match (file.sample, size) {
            (Some(s), _) if s.points == 0 || s.points > MAX_SWEEP_POINTS => {
                return Err(invalid(
                    ConfigError::new("sample.points", format!("{} is not from 1 to {MAX_SWEEP_POINTS}", s.points))
                        .help("a sweep evaluates at most that many points; split a larger study into several spaces"),
                ))
            }
            (Some(_), Some(_)) => {}
            (None, Some(n)) if n <= MAX_SWEEP_POINTS => {}
            (_, n) => {
                let n = n.map_or("more than 2^64".to_string(), |n| n.to_string());
                return Err(invalid(
                    ConfigError::new("params", format!("make {n} points, more than the {MAX_SWEEP_POINTS} a sweep evaluates"))
                        .help("add a [sample] table (points = 1000) to draw some of them, or list fewer values"),
                ));
            }
        }
        let text = format!("{:?}{params:?}{:?}", Some(&base_table), file.sample);
        let digest = format!("{:016x}", systole_core::tensor::fnv1a(text.bytes()));
        Ok(Space { name: file.name, base, params, sample: file.sample, base_table, digest })
    }

    /// Number of points in the full space (saturating).
    pub fn size(&self) -> u64 {
        self.params.iter().fold(1u64, |a, (_, v)| a.saturating_mul(v.len() as u64))
    }

    /// The parameter values of point `id`.
    pub fn values(&self, mut id: u64) -> Vec<(String, toml::Value)> {
        let mut out = vec![toml::Value::Boolean(false); self.params.len()];
        for (i, (_, vals)) in self.params.iter().enumerate().rev() {
            out[i] = vals[(id % vals.len() as u64) as usize].clone();
            id /= vals.len() as u64;
        }
        self.params.iter().map(|(k, _)| k.clone()).zip(out).collect()
    }

    /// The architecture of point `id`, unvalidated (its own `name` is `<space>-<id>`), or why
    /// its values do not make one.
    pub fn arch(&self, id: u64) -> Result<ArchConfig, PointError> {
        arch_with(&self.base_table, self.values(id), format!("{}-{id}", self.name))
    }

    /// The ids this sweep evaluates, in its order: all, or a seeded sample.
    pub fn order(&self) -> Vec<u64> {
        let size = self.size();
        match self.sample {
            Some(s) if s.points < size => {
                let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
                if size <= 1 << 22 {
                    let mut all: Vec<u64> = (0..size).collect();
                    all.partial_shuffle(&mut rng, s.points as usize);
                    all.truncate(s.points as usize);
                    all
                } else {
                    let mut seen = std::collections::BTreeSet::new();
                    let mut out = vec![];
                    while (out.len() as u64) < s.points {
                        let id = rand::Rng::gen_range(&mut rng, 0..size);
                        if seen.insert(id) {
                            out.push(id);
                        }
                    }
                    out
                }
            }
            _ => (0..size).collect(),
        }
    }

    /// The ids of `shard`, in sweep order.
    pub fn shard(&self, shard: Shard) -> Vec<u64> {
        self.order().into_iter().enumerate().filter(|(i, _)| *i as u64 % shard.count == shard.index).map(|(_, id)| id).collect()
    }

    /// A digest of the space (base, parameters and sampling), so merged shards can be
    /// checked to come from the same sweep.
    pub fn digest(&self) -> &str {
        &self.digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(text: &str) -> Result<Space, LoadError> {
        let dir = std::env::temp_dir().join(format!("systole-space-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s.toml");
        let base = format!("base = {:?}\n[params]", concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/archs/16x16.toml"));
        std::fs::write(&p, text.replacen("[params]", &base, 1)).unwrap();
        Space::from_file(&p)
    }

    fn field(e: LoadError) -> String {
        match e {
            LoadError::Invalid { error, .. } => format!("{}: {}", error.field, error.message),
            other => other.to_string(),
        }
    }

    #[test]
    fn repeated_values_names_and_oversized_spaces_are_refused() {
        let e = field(space("name = \"t\"\n[params]\nrows = [4, 8, 4]\n").unwrap_err());
        assert_eq!(e, "params.rows[2]: repeats 4 (also at [0]), so points would be evaluated twice");
        let e = field(space("name = \"a/b\"\n[params]\nrows = [4]\n").unwrap_err());
        assert!(e.starts_with("name: \"a/b\" is not 1 to 64 printable ASCII characters"), "{e}");
        let e = field(space("name = \"t\"\n[params]\nrows = [4, \"x\"]\n").unwrap_err());
        assert!(e.starts_with("params.rows[1]: "), "{e}");
        // 2^21 points: 128 values of each of three fields.
        let many = |f: &str| format!("{f} = [{}]\n", (1..=128).map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
        let text = format!("name = \"t\"\n[params]\n{}{}{}", many("rows"), many("cols"), many("dram_latency"));
        let e = field(space(&text).unwrap_err());
        assert_eq!(e, "params: make 2097152 points, more than the 1048576 a sweep evaluates");
        let sampled = space(&format!("{text}[sample]\npoints = 100\n")).unwrap();
        assert_eq!(sampled.order().len(), 100);
        let e = field(space("name = \"t\"\n[params]\nrows = [4]\n[sample]\npoints = 0\n").unwrap_err());
        assert_eq!(e, "sample.points: 0 is not from 1 to 1048576");
        let dir = std::env::temp_dir().join(format!("systole-space-nobase-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.toml"), "name = \"t\"\n[params]\nrows = [4]\n").unwrap();
        let e = Space::from_file(&dir.join("s.toml")).unwrap_err().to_string();
        assert!(e.contains("missing field `base`"), "{e}");
    }

    #[test]
    fn points_are_mixed_radix_last_fastest() {
        let s = space("name = \"t\"\n[params]\nrows = [4, 8]\ncols = [2, 4, 8]\ndataflow = \"os\"\n").unwrap();
        assert_eq!(s.size(), 6);
        // Names in order: cols (3 values), dataflow (1), rows (2, fastest).
        // 4 = (2 * 1 + 0) * 2 + 0: cols[2], dataflow[0], rows[0].
        let a = s.arch(4).unwrap();
        assert_eq!((a.rows, a.cols, a.dataflow), (4, 8, systole_core::Dataflow::OutputStationary));
        assert_eq!(a.name, "t-4");
    }

    #[test]
    fn shards_partition_the_sweep_and_samples_are_distinct() {
        let s = space("name = \"t\"\n[params]\nrows = [1, 2, 3, 4, 5, 6, 7]\ncols = [1, 2, 3]\n[sample]\npoints = 10\nseed = 3\n").unwrap();
        let order = s.order();
        assert_eq!(order.len(), 10);
        let mut sorted = order.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 10);
        let mut joined: Vec<u64> = (0..3).flat_map(|k| s.shard(Shard { index: k, count: 3 })).collect();
        joined.sort();
        let mut all = order;
        all.sort();
        assert_eq!(joined, all);
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err());
    }

    #[test]
    fn unknown_parameters_and_empty_lists_are_named() {
        let e = space("name = \"t\"\n[params]\nrowz = [4]\n").unwrap_err();
        assert!(e.to_string().contains("params.rowz") || format!("{e:?}").contains("params.rowz"), "{e:?}");
        let e = space("name = \"t\"\n[params]\nrows = []\n").unwrap_err();
        assert!(format!("{e:?}").contains("params.rows"), "{e:?}");
    }
}
