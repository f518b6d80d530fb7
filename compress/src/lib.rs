//! Model compression for the accelerator, in one place:
//!
//! ```text
//!  float ONNX ──prune: pruning (unstructured, N:M, channels) and weight bits per layer,
//!     │               the accuracy proxy (output SQNR against the float model)
//!     ▼ ──search: candidates per layer, costs from the simulator, the Pareto front,
//!     │           its measured refinement (real compression runs)
//!  a compression policy (`systole compress --policy`) per architecture
//! ```

pub mod prune;
pub mod search;
