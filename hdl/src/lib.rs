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
//! [`params::ParamLoader`]; exec: [`exec_ws::ExecWs`] or [`exec_os::ExecOs`], an engine
//! ([`exec_ws::WsEngine`] / [`exec_os::OsEngine`] around the arrays [`array::WsArray`] /
//! [`os_array::OsArray`]) with its [`memories::Memories`], or [`dual::ExecDual`], both
//! engines around one set of memories; store:
//! [`store::StoreEngine`], [`store_transposed::StoreTransposedEngine`] and the
//! [`requant::Requant`] units). [`top::System`] adds a behavioural DRAM for co-simulation.

pub mod array;
pub mod band;
pub mod board;
pub mod board_ram;
pub mod bridge;
pub mod controller;
pub mod csc;
pub mod delay;
pub mod dma;
pub mod dram;
pub mod dual;
pub mod exec_os;
pub mod exec_ws;
pub mod fixtures;
pub mod load;
pub mod load_transposed;
pub mod memories;
pub mod os_array;
pub mod params;
pub mod pe;
pub mod requant;
pub mod sram;
pub mod store;
pub mod store_transposed;
pub mod top;
pub mod transposer;
pub mod uart;
pub mod units;
pub mod verilog;
pub mod wiring;
pub mod wordseq;

pub use rust_hdl;
