//! Mappings: how the compiler lays a layer onto the array, and what it optimizes for.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The tiling of one layer (docs/ARCHITECTURE.md section 7). The loop order within a tile
/// is fixed by the lowering; the tile sizes are the searched choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Mapping {
    /// Dense convolution or GEMM as an implicit-im2col GEMM: output tiles of `pt x qt`
    /// pixels; the reduction in `kgroups` groups that fit the scratchpads, and `ngroup`
    /// column tiles per pass over an activation tile.
    Dense {
        /// Output tile height.
        pt: usize,
        /// Output tile width.
        qt: usize,
        /// Reduction groups.
        kgroups: usize,
        /// Column tiles per N-group.
        ngroup: usize,
    },
    /// Depthwise convolution as banded Toeplitz GEMMs: `channels` per transposed group,
    /// `pt` output rows and `units` windows (or groups of windows in OS) per tile.
    Depthwise {
        /// Channels per group.
        channels: usize,
        /// Output rows per tile.
        pt: usize,
        /// Windows per tile.
        units: usize,
    },
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mapping::Dense { pt, qt, kgroups, ngroup } => {
                write!(f, "dense {pt}x{qt} px tiles, {kgroups} k-groups, {ngroup} col-tiles/pass")
            }
            Mapping::Depthwise { channels, pt, units } => write!(f, "band {channels} ch x {pt} rows x {units} windows"),
        }
    }
}

/// What the compiler's mapping search minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Total cycles (ties: energy).
    #[default]
    Latency,
    /// Energy under the default process table of `systole-mappings` (ties: cycles).
    Energy,
}

impl std::str::FromStr for Objective {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "latency" => Ok(Objective::Latency),
            "energy" => Ok(Objective::Energy),
            other => Err(format!("`{other}` is not an objective: latency or energy")),
        }
    }
}
