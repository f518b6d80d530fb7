//! Design-space sweeps.
//!
//! ```text
//!  space.toml ──points (mixed-radix over the listed values; sampled; sharded K/N)
//!      │
//!      ▼  rayon, one point per task
//!  ArchConfig ──validate──► compile + simulate every distinct layer ──► energy, area, bounds
//!      │
//!      ▼
//!  results.jsonl: one Record per point, appended as it finishes; a rerun skips done points
//! ```

pub mod eval;
pub mod results;
pub mod space;
pub mod synth;

pub use eval::{evaluate, Target};
pub use results::Record;
pub use space::{Shard, Space};
