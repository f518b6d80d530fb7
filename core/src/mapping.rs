//! Mappings: how the compiler lays a layer onto the array, and what it optimizes for.

use crate::Dataflow;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The order of a dense lowering's two outer loops, over output tiles and over groups of
/// column tiles: which operand stays on chip while the other streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopOrder {
    /// Output tiles outer: a tile's activations are loaded once and serve every column
    /// tile; the weights stream again for every output tile unless they all fit on chip.
    #[default]
    PixelsOuter,
    /// Column-tile groups outer: a group's weights are loaded once and stay on chip while
    /// every output tile passes (when they fit in half the weight scratchpad); the
    /// activations are loaded once per group.
    ChannelsOuter,
}

impl fmt::Display for LoopOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoopOrder::PixelsOuter => "pixels outer",
            LoopOrder::ChannelsOuter => "channels outer",
        })
    }
}

/// The tiling of one layer (docs/ARCHITECTURE.md section 7): tile sizes and, for dense
/// layers, the order of the loops over tiles. The loop nest within a tile is fixed by the
/// lowering.
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
        /// Loops over output tiles and N-groups (absent in results before it was searched:
        /// pixels outer).
        #[serde(default)]
        order: LoopOrder,
        /// The engine that runs it (`ws` or `os`).
        dataflow: Dataflow,
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
        /// The engine that runs it (`ws` or `os`).
        dataflow: Dataflow,
    },
}

impl Mapping {
    /// The engine that runs the mapping.
    pub fn dataflow(&self) -> Dataflow {
        match self {
            Mapping::Dense { dataflow, .. } | Mapping::Depthwise { dataflow, .. } => *dataflow,
        }
    }
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mapping::Dense { pt, qt, kgroups, ngroup, order, dataflow } => {
                write!(f, "{dataflow} dense {pt}x{qt} px tiles, {kgroups} k-groups, {ngroup} col-tiles/pass, {order}")
            }
            Mapping::Depthwise { channels, pt, units, dataflow } => {
                write!(f, "{dataflow} band {channels} ch x {pt} rows x {units} windows")
            }
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
    type Err = UnknownObjective;

    fn from_str(s: &str) -> Result<Self, UnknownObjective> {
        match s {
            "latency" => Ok(Objective::Latency),
            "energy" => Ok(Objective::Energy),
            other => Err(UnknownObjective(other.into())),
        }
    }
}

/// A name that is not an [`Objective`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an objective: latency or energy")]
pub struct UnknownObjective(pub String);
