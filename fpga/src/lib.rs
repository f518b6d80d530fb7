//! The FPGA side of Systole: the boards it targets and their pin constraints, generated
//! from one description per board so that no PCF/LPF file is kept by hand.

pub mod bitstream;
pub mod blocks;
pub mod board;
pub mod clock;
pub mod host;
pub mod litedram;
pub mod report;
pub mod sim;
pub mod tools;
pub mod top;

pub use board::{Board, Family, PeProducts};
