//! The `rows x cols` output-stationary systolic array with its edge registers.
//!
//! ```text
//!                 b_in[j] -- skew j --> column j, down
//!  a_in[i], first, last -- skew i --> PE(i,0) -> ... -> PE(i,cols-1)
//!                                       |   read-out chain (c), down
//!                            PE(rows-1,j).c_out -- de-skew cols-1-j --> out[j]
//! ```
//!
//! Timing (docs/ARCHITECTURE.md section 9): step `t`'s activation and weight words
//! presented in cycle `u` meet in PE `(i, j)` in cycle `u + i + j`. If the last step of a
//! tile is presented in cycle `u`, row `i` of the finished tile appears on `out` in cycle
//! `u + cols + i`. The nets are listed once with [`crate::net!`] (see [`crate::wiring`]).

use crate::delay::Delay;
use crate::net;
use crate::pe::{OsPe, MAX_SIDE};
use crate::wiring::{assign_zero, Mode};
use rust_hdl::prelude::*;

/// The output-stationary array.
#[derive(LogicBlock)]
pub struct OsArray {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Activation word, lane `i` for row `i`.
    pub a_in: Vec<Signal<In, Signed<8>>>,
    /// First step of a tile.
    pub first_in: Signal<In, Bit>,
    /// Last step of a tile.
    pub last_in: Signal<In, Bit>,
    /// Weight word, lane `j` for column `j`.
    pub b_in: Vec<Signal<In, Signed<8>>>,
    /// One row of a finished tile, lane `j` for column `j`.
    pub out: Vec<Signal<Out, Signed<32>>>,
    pes: Vec<Vec<OsPe>>,
    a_skew: Vec<Delay<Signed<8>>>,
    first_skew: Vec<Delay<Bit>>,
    last_skew: Vec<Delay<Bit>>,
    b_skew: Vec<Delay<Signed<8>>>,
    deskew: Vec<Delay<Signed<32>>>,
}

impl OsArray {
    /// An array of `rows x cols` PEs.
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!((1..=MAX_SIDE).contains(&rows) && (1..=MAX_SIDE).contains(&cols), "array {rows}x{cols}");
        Self {
            clock: Default::default(),
            a_in: (0..rows).map(|_| Default::default()).collect(),
            first_in: Default::default(),
            last_in: Default::default(),
            b_in: (0..cols).map(|_| Default::default()).collect(),
            out: (0..cols).map(|_| Default::default()).collect(),
            pes: (0..rows).map(|_| (0..cols).map(|_| OsPe::default()).collect()).collect(),
            a_skew: (0..rows).map(Delay::new).collect(),
            first_skew: (0..rows).map(Delay::new).collect(),
            last_skew: (0..rows).map(Delay::new).collect(),
            b_skew: (0..cols).map(Delay::new).collect(),
            deskew: (0..cols).map(|j| Delay::new(cols - 1 - j)).collect(),
        }
    }

    /// Rows of PEs.
    pub fn rows(&self) -> usize {
        self.a_in.len()
    }

    /// Columns of PEs.
    pub fn cols(&self) -> usize {
        self.b_in.len()
    }

    /// Every net of the array, applied according to `mode`.
    fn wire(&mut self, mode: &mut Mode) {
        let (rows, cols) = (self.rows(), self.cols());
        let pe = |i: usize, j: usize, p: &str| format!("pes${i}${j}${p}");
        for i in 0..rows {
            net!(mode, self.a_skew[i].clock, format!("a_skew${i}$clock"), self.clock, "clock".into());
            net!(mode, self.first_skew[i].clock, format!("first_skew${i}$clock"), self.clock, "clock".into());
            net!(mode, self.last_skew[i].clock, format!("last_skew${i}$clock"), self.clock, "clock".into());
            net!(mode, self.a_skew[i].data_in, format!("a_skew${i}$data_in"), self.a_in[i], format!("a_in${i}"));
            net!(mode, self.first_skew[i].data_in, format!("first_skew${i}$data_in"), self.first_in, "first_in".into());
            net!(mode, self.last_skew[i].data_in, format!("last_skew${i}$data_in"), self.last_in, "last_in".into());
            net!(mode, self.pes[i][0].a_in, pe(i, 0, "a_in"), self.a_skew[i].data_out, format!("a_skew${i}$data_out"));
            net!(mode, self.pes[i][0].first_in, pe(i, 0, "first_in"), self.first_skew[i].data_out, format!("first_skew${i}$data_out"));
            net!(mode, self.pes[i][0].last_in, pe(i, 0, "last_in"), self.last_skew[i].data_out, format!("last_skew${i}$data_out"));
            for j in 0..cols {
                net!(mode, self.pes[i][j].clock, pe(i, j, "clock"), self.clock, "clock".into());
            }
            for j in 1..cols {
                net!(mode, self.pes[i][j].a_in, pe(i, j, "a_in"), self.pes[i][j - 1].a_out, pe(i, j - 1, "a_out"));
                net!(mode, self.pes[i][j].first_in, pe(i, j, "first_in"), self.pes[i][j - 1].first_out, pe(i, j - 1, "first_out"));
                net!(mode, self.pes[i][j].last_in, pe(i, j, "last_in"), self.pes[i][j - 1].last_out, pe(i, j - 1, "last_out"));
            }
        }
        for j in 0..cols {
            net!(mode, self.b_skew[j].clock, format!("b_skew${j}$clock"), self.clock, "clock".into());
            net!(mode, self.deskew[j].clock, format!("deskew${j}$clock"), self.clock, "clock".into());
            net!(mode, self.b_skew[j].data_in, format!("b_skew${j}$data_in"), self.b_in[j], format!("b_in${j}"));
            net!(mode, self.pes[0][j].b_in, pe(0, j, "b_in"), self.b_skew[j].data_out, format!("b_skew${j}$data_out"));
            for i in 1..rows {
                net!(mode, self.pes[i][j].b_in, pe(i, j, "b_in"), self.pes[i - 1][j].b_out, pe(i - 1, j, "b_out"));
                net!(mode, self.pes[i][j].c_in, pe(i, j, "c_in"), self.pes[i - 1][j].c_out, pe(i - 1, j, "c_out"));
            }
            net!(mode, self.deskew[j].data_in, format!("deskew${j}$data_in"), self.pes[rows - 1][j].c_out, pe(rows - 1, j, "c_out"));
            net!(mode, self.out[j], format!("out${j}"), self.deskew[j].data_out, format!("deskew${j}$data_out"));
        }
    }
}

impl Logic for OsArray {
    fn update(&mut self) {
        self.wire(&mut Mode::Update);
        for j in 0..self.cols() {
            self.pes[0][j].c_in.next = 0.into();
        }
    }

    fn connect(&mut self) {
        self.wire(&mut Mode::Connect);
        for j in 0..self.cols() {
            self.pes[0][j].c_in.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let mut block = vec![];
        // Emission reads no signal values; `wire` takes `&mut self` for the other modes.
        OsArray::new(self.rows(), self.cols()).wire(&mut Mode::Emit(&mut block));
        for j in 0..self.cols() {
            block.push(assign_zero(format!("pes$0${j}$c_in")));
        }
        Verilog::Combinatorial(block)
    }
}
