//! Systole's central types, shared by every other crate.
//!
//! - [`arch::ArchConfig`]: the accelerator's parameters, validated.
//! - [`layer::Layer`]: one layer as a loop nest over named dimensions, with quantization.
//! - [`network::Network`]: a whole quantized network: accelerator layers and host operators.
//! - [`isa`]: the instruction set the compiler emits and the simulator and RTL execute.
//! - [`requant`]: the bit-exact integer requantization algorithm of the store path.
//! - [`report::SimReport`]: what a simulation measures.
//!
//! This crate has no internal dependencies and no rust-hdl.

pub mod arch;
pub mod bridge;
pub mod encoding;
pub mod error;
pub mod input;
pub mod isa;
pub mod layer;
pub mod mapping;
pub mod network;
pub mod npy;
pub mod program;
pub mod region;
pub mod report;
pub mod requant;
pub mod segment;
pub mod tensor;
pub mod timing;
pub mod workload;

pub use arch::{ArchConfig, Dataflow, Sparsity};
pub use error::{ConfigError, LoadError};
pub use isa::{Instr, Op, Sync, Unit};
pub use layer::{Activation, ConvShape, Layer, LayerOp, QuantParams};
pub use program::{Program, TensorPlacement};
pub use report::{LayerReport, SimReport};
pub use tensor::Tensor;
