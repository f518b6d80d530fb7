//! The FPGA side of Systole: the boards it targets and their pin constraints, generated
//! from one description per board so that no PCF/LPF file is kept by hand.

pub mod board;
pub mod host;
pub mod report;
pub mod tools;

pub use board::{Board, Family};
