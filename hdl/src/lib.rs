//! The Systole accelerator in rust-hdl, emitted as Verilog.
//!
//! This crate implements the microarchitecture of `docs/ARCHITECTURE.md` as hardware,
//! independently of `systole-sim`; only `testbenches` compares the two. Sizes come from
//! an [`systole_core::ArchConfig`] at run time: blocks hold `Vec`s of sub-blocks and
//! their `hdl_gen` kernels loop over them, so one Rust description yields the Verilog of
//! any array size.
//!
//! The top is [`top::Accelerator`]: the [`controller::Controller`] and the three
//! [`units`] (load: [`load::LoadEngine`], [`load_transposed::LoadTransposedEngine`],
//! [`params::ParamLoader`], and with a vector unit the table loader
//! [`params::ParamLoader::for_vector_table`]; exec: [`exec_ws::ExecWs`] or
//! [`exec_os::ExecOs`], an engine ([`exec_ws::WsEngine`] / [`exec_os::OsEngine`] around the
//! arrays [`array::WsArray`] / [`os_array::OsArray`]) with its [`memories::Memories`], or
//! [`dual::ExecDual`], both engines around one set of memories, and the vector unit
//! [`vector::VectorEngine`] on those memories' engine ports; store:
//! [`store::StoreEngine`], [`store_transposed::StoreTransposedEngine`] and the
//! [`requant::Requant`] units). The DRAM is outside: a board's memory, or in co-simulation
//! the behavioural DRAM of `systole-testbenches`.
//!
//! Each block is written once: an `hdl_gen` kernel, which rust-hdl both simulates and
//! emits, or a leaf (block RAM, DSP product, constant-division lookup) whose Verilog is an instantiation or an inference template. Where
//! rust-hdl's Rust execution and its Verilog part ways, a kernel keeps to these rules:
//! - `!x` of a narrow signal goes into a local before it joins a wider expression: Verilog
//!   widens `x` first and inverts every bit of the width;
//! - bits are indexed on a signal, never on a bundle field or a cast, which Verilog cannot
//!   index again; a field or cast is copied into a local first;
//! - a loop variable appears only as an index, never inside `bit_cast`/`bits` (rust-hdl
//!   evaluates those calls outside the loop) or in arithmetic (it is a `usize`): a vector
//!   of [`rust_hdl::prelude::Constant`]s carries per-lane numbers;
//! - run-time widths are fixed-width registers and counters masked by a constant
//!   ([`verilog::low_mask`]), which synthesis trims;
//! - no signal or sub-block is named after a Verilog keyword (`byte`, `wait`, `end`,
//!   `table`).

pub mod array;
pub mod band;
pub mod board;
pub mod board_ram;
pub mod bridge;
pub mod controller;
pub mod csc;
pub mod delay;
pub mod dma;
pub mod dram_init;
pub mod dsp;
pub mod dual;
pub mod exec_os;
pub mod exec_ws;
pub mod fetch;
pub mod fields;
pub mod load;
pub mod load_transposed;
pub mod memories;
pub mod native_port;
pub mod os_array;
pub mod params;
pub mod pe;
pub mod requant;
pub mod significands;
pub mod sram;
pub mod store;
pub mod store_transposed;
pub mod top;
pub mod transposer;
pub mod uart;
pub mod units;
pub mod vector;
pub mod verilog;
pub mod wiring;
pub mod wordseq;

pub use rust_hdl;

/// Width of DRAM byte addresses in the RTL.
pub const DRAM_ADDR_BITS: usize = 32;
