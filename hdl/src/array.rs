//! The `rows x cols` weight-stationary systolic array with its edge registers.
//!
//! ```text
//!          w_in[j] (+ valid, row) -- skew j --> column j, down
//!  a_in[k], flip -- skew k --> PE(k,0) -> PE(k,1) -> ... -> PE(k,cols-1)
//!                               |          |                 |
//!                              ...        ...               ...
//!                          PE(rows-1,0) ...            PE(rows-1,cols-1)
//!                               |                            |
//!                     de-skew cols-1          ...       de-skew 0
//!                               v                            v
//!                            out[0]          ...        out[cols-1]
//! ```
//!
//! Timing (docs/ARCHITECTURE.md section 9): the activation word presented on `a_in` in
//! cycle `t` appears as the column sums on `out` in cycle `t + rows + cols - 1`, all
//! columns together. A weight row presented on `w_in` in cycle `t` reaches PE `(k, j)`'s
//! capture in cycle `t + j + k`; the flip presented with an activation in cycle `t`
//! switches PE `(k, j)` in cycle `t + k + j`.
//!
//! The wiring is a list of nets ([`WsArray::nets`]) used three ways: to propagate values
//! in rust-hdl's simulator, to claim the driven signals, and to emit the Verilog
//! assignments. (rust-hdl's `hdl_gen` cannot index two levels of sub-blocks, which a
//! two-dimensional mesh needs.)

use crate::delay::Delay;
use crate::pe::{WsPe, MAX_SIDE};
use rust_hdl::core::ast::{VerilogExpression, VerilogStatement};
use rust_hdl::prelude::*;

/// The weight-stationary array.
#[derive(LogicBlock)]
pub struct WsArray {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Activation word, lane `k` for row `k`.
    pub a_in: Vec<Signal<In, Signed<8>>>,
    /// Set with the first activation of a tile: the PEs switch to the shadow weights.
    pub flip_in: Signal<In, Bit>,
    /// Weight row, lane `j` for column `j`.
    pub w_in: Vec<Signal<In, Signed<8>>>,
    /// The weight row is valid.
    pub w_valid_in: Signal<In, Bit>,
    /// The PE row the weight row is destined for.
    pub w_row_in: Signal<In, Bits<8>>,
    /// Column sums, lane `j` for column `j`.
    pub out: Vec<Signal<Out, Signed<32>>>,
    pes: Vec<Vec<WsPe>>,
    a_skew: Vec<Delay<Signed<8>>>,
    flip_skew: Vec<Delay<Bit>>,
    w_skew: Vec<Delay<Signed<8>>>,
    w_valid_skew: Vec<Delay<Bit>>,
    w_row_skew: Vec<Delay<Bits<8>>>,
    deskew: Vec<Delay<Signed<32>>>,
}

/// A signal of the array or of one of its sub-blocks, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The array's clock.
    Clock,
    /// `a_in[k]`.
    AIn(usize),
    /// `flip_in`.
    FlipIn,
    /// `w_in[j]`.
    WIn(usize),
    /// `w_valid_in`.
    WValidIn,
    /// `w_row_in`.
    WRowIn,
    /// `out[j]`.
    Out(usize),
    /// A port of PE `(k, j)`.
    Pe(usize, usize, PePort),
    /// A port of an edge register chain.
    Lane(Lane, usize, LanePort),
}

/// The ports of a PE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum PePort {
    Clock,
    AIn,
    FlipIn,
    PIn,
    WIn,
    WValidIn,
    WRowIn,
    AOut,
    FlipOut,
    POut,
    WOut,
    WValidOut,
    WRowOut,
}

/// The edge register chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Lane {
    ASkew,
    FlipSkew,
    WSkew,
    WValidSkew,
    WRowSkew,
    Deskew,
}

/// The ports of an edge register chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LanePort {
    Clock,
    DataIn,
    DataOut,
}

/// A value on a net.
#[derive(Debug, Clone, Copy)]
enum Value {
    Clock(Clock),
    Bit(bool),
    S8(Signed<8>),
    S32(Signed<32>),
    B8(Bits<8>),
}

impl Port {
    /// The flattened Verilog name rust-hdl gives the signal inside the array's module.
    pub fn name(self) -> String {
        let pe = |p: PePort| match p {
            PePort::Clock => "clock",
            PePort::AIn => "a_in",
            PePort::FlipIn => "flip_in",
            PePort::PIn => "p_in",
            PePort::WIn => "w_in",
            PePort::WValidIn => "w_valid_in",
            PePort::WRowIn => "w_row_in",
            PePort::AOut => "a_out",
            PePort::FlipOut => "flip_out",
            PePort::POut => "p_out",
            PePort::WOut => "w_out",
            PePort::WValidOut => "w_valid_out",
            PePort::WRowOut => "w_row_out",
        };
        match self {
            Port::Clock => "clock".into(),
            Port::AIn(k) => format!("a_in${k}"),
            Port::FlipIn => "flip_in".into(),
            Port::WIn(j) => format!("w_in${j}"),
            Port::WValidIn => "w_valid_in".into(),
            Port::WRowIn => "w_row_in".into(),
            Port::Out(j) => format!("out${j}"),
            Port::Pe(k, j, p) => format!("pes${k}${j}${}", pe(p)),
            Port::Lane(lane, i, p) => {
                let l = match lane {
                    Lane::ASkew => "a_skew",
                    Lane::FlipSkew => "flip_skew",
                    Lane::WSkew => "w_skew",
                    Lane::WValidSkew => "w_valid_skew",
                    Lane::WRowSkew => "w_row_skew",
                    Lane::Deskew => "deskew",
                };
                let p = match p {
                    LanePort::Clock => "clock",
                    LanePort::DataIn => "data_in",
                    LanePort::DataOut => "data_out",
                };
                format!("{l}${i}${p}")
            }
        }
    }
}

impl WsArray {
    /// An array of `rows x cols` PEs.
    pub fn new(rows: usize, cols: usize) -> Self {
        assert!((1..=MAX_SIDE).contains(&rows) && (1..=MAX_SIDE).contains(&cols), "array {rows}x{cols}");
        Self {
            clock: Default::default(),
            a_in: (0..rows).map(|_| Default::default()).collect(),
            flip_in: Default::default(),
            w_in: (0..cols).map(|_| Default::default()).collect(),
            w_valid_in: Default::default(),
            w_row_in: Default::default(),
            out: (0..cols).map(|_| Default::default()).collect(),
            pes: (0..rows).map(|k| (0..cols).map(|_| WsPe::new(k)).collect()).collect(),
            a_skew: (0..rows).map(Delay::new).collect(),
            flip_skew: (0..rows).map(Delay::new).collect(),
            w_skew: (0..cols).map(Delay::new).collect(),
            w_valid_skew: (0..cols).map(Delay::new).collect(),
            w_row_skew: (0..cols).map(Delay::new).collect(),
            deskew: (0..cols).map(|j| Delay::new(cols - 1 - j)).collect(),
        }
    }

    /// Rows of PEs.
    pub fn rows(&self) -> usize {
        self.a_in.len()
    }

    /// Columns of PEs.
    pub fn cols(&self) -> usize {
        self.w_in.len()
    }

    /// Cycles from an activation word on `a_in` to its column sums on `out`.
    pub fn latency(&self) -> usize {
        self.rows() + self.cols() - 1
    }

    /// Every connection, as `(destination, source)`.
    pub fn nets(&self) -> Vec<(Port, Port)> {
        use LanePort::{Clock as LClock, DataIn, DataOut};
        use PePort as P;
        let (rows, cols) = (self.rows(), self.cols());
        let mut n = vec![];
        for k in 0..rows {
            for lane in [Lane::ASkew, Lane::FlipSkew] {
                n.push((Port::Lane(lane, k, LClock), Port::Clock));
            }
            n.push((Port::Lane(Lane::ASkew, k, DataIn), Port::AIn(k)));
            n.push((Port::Lane(Lane::FlipSkew, k, DataIn), Port::FlipIn));
            n.push((Port::Pe(k, 0, P::AIn), Port::Lane(Lane::ASkew, k, DataOut)));
            n.push((Port::Pe(k, 0, P::FlipIn), Port::Lane(Lane::FlipSkew, k, DataOut)));
            for j in 0..cols {
                n.push((Port::Pe(k, j, P::Clock), Port::Clock));
            }
            for j in 1..cols {
                n.push((Port::Pe(k, j, P::AIn), Port::Pe(k, j - 1, P::AOut)));
                n.push((Port::Pe(k, j, P::FlipIn), Port::Pe(k, j - 1, P::FlipOut)));
            }
        }
        for j in 0..cols {
            for lane in [Lane::WSkew, Lane::WValidSkew, Lane::WRowSkew, Lane::Deskew] {
                n.push((Port::Lane(lane, j, LClock), Port::Clock));
            }
            n.push((Port::Lane(Lane::WSkew, j, DataIn), Port::WIn(j)));
            n.push((Port::Lane(Lane::WValidSkew, j, DataIn), Port::WValidIn));
            n.push((Port::Lane(Lane::WRowSkew, j, DataIn), Port::WRowIn));
            n.push((Port::Pe(0, j, P::WIn), Port::Lane(Lane::WSkew, j, DataOut)));
            n.push((Port::Pe(0, j, P::WValidIn), Port::Lane(Lane::WValidSkew, j, DataOut)));
            n.push((Port::Pe(0, j, P::WRowIn), Port::Lane(Lane::WRowSkew, j, DataOut)));
            for k in 1..rows {
                for (d, s) in [(P::PIn, P::POut), (P::WIn, P::WOut), (P::WValidIn, P::WValidOut), (P::WRowIn, P::WRowOut)] {
                    n.push((Port::Pe(k, j, d), Port::Pe(k - 1, j, s)));
                }
            }
            n.push((Port::Lane(Lane::Deskew, j, DataIn), Port::Pe(rows - 1, j, P::POut)));
            n.push((Port::Out(j), Port::Lane(Lane::Deskew, j, DataOut)));
        }
        n
    }

    fn get(&self, p: Port) -> Value {
        match p {
            Port::Clock => Value::Clock(self.clock.val()),
            Port::AIn(k) => Value::S8(self.a_in[k].val()),
            Port::FlipIn => Value::Bit(self.flip_in.val()),
            Port::WIn(j) => Value::S8(self.w_in[j].val()),
            Port::WValidIn => Value::Bit(self.w_valid_in.val()),
            Port::WRowIn => Value::B8(self.w_row_in.val()),
            Port::Out(j) => Value::S32(self.out[j].val()),
            Port::Pe(k, j, port) => {
                let pe = &self.pes[k][j];
                match port {
                    PePort::AOut => Value::S8(pe.a_out.val()),
                    PePort::FlipOut => Value::Bit(pe.flip_out.val()),
                    PePort::POut => Value::S32(pe.p_out.val()),
                    PePort::WOut => Value::S8(pe.w_out.val()),
                    PePort::WValidOut => Value::Bit(pe.w_valid_out.val()),
                    PePort::WRowOut => Value::B8(pe.w_row_out.val()),
                    other => unreachable!("PE input {other:?} read as a source"),
                }
            }
            Port::Lane(lane, i, LanePort::DataOut) => match lane {
                Lane::ASkew => Value::S8(self.a_skew[i].data_out.val()),
                Lane::FlipSkew => Value::Bit(self.flip_skew[i].data_out.val()),
                Lane::WSkew => Value::S8(self.w_skew[i].data_out.val()),
                Lane::WValidSkew => Value::Bit(self.w_valid_skew[i].data_out.val()),
                Lane::WRowSkew => Value::B8(self.w_row_skew[i].data_out.val()),
                Lane::Deskew => Value::S32(self.deskew[i].data_out.val()),
            },
            Port::Lane(_, _, p) => unreachable!("lane input {p:?} read as a source"),
        }
    }

    /// Drives (`value = Some`) or claims (`None`) the destination `p`.
    fn drive(&mut self, p: Port, value: Option<Value>) {
        macro_rules! put {
            ($sig:expr, $variant:ident) => {
                match value {
                    Some(Value::$variant(v)) => $sig.next = v,
                    Some(other) => unreachable!("{p:?} driven with {other:?}"),
                    None => $sig.connect(),
                }
            };
        }
        match p {
            Port::Out(j) => put!(self.out[j], S32),
            Port::Pe(k, j, port) => {
                let pe = &mut self.pes[k][j];
                match port {
                    PePort::Clock => put!(pe.clock, Clock),
                    PePort::AIn => put!(pe.a_in, S8),
                    PePort::FlipIn => put!(pe.flip_in, Bit),
                    PePort::PIn => put!(pe.p_in, S32),
                    PePort::WIn => put!(pe.w_in, S8),
                    PePort::WValidIn => put!(pe.w_valid_in, Bit),
                    PePort::WRowIn => put!(pe.w_row_in, B8),
                    other => unreachable!("PE output {other:?} driven"),
                }
            }
            Port::Lane(lane, i, LanePort::Clock) => match lane {
                Lane::ASkew => put!(self.a_skew[i].clock, Clock),
                Lane::FlipSkew => put!(self.flip_skew[i].clock, Clock),
                Lane::WSkew => put!(self.w_skew[i].clock, Clock),
                Lane::WValidSkew => put!(self.w_valid_skew[i].clock, Clock),
                Lane::WRowSkew => put!(self.w_row_skew[i].clock, Clock),
                Lane::Deskew => put!(self.deskew[i].clock, Clock),
            },
            Port::Lane(lane, i, LanePort::DataIn) => match lane {
                Lane::ASkew => put!(self.a_skew[i].data_in, S8),
                Lane::FlipSkew => put!(self.flip_skew[i].data_in, Bit),
                Lane::WSkew => put!(self.w_skew[i].data_in, S8),
                Lane::WValidSkew => put!(self.w_valid_skew[i].data_in, Bit),
                Lane::WRowSkew => put!(self.w_row_skew[i].data_in, B8),
                Lane::Deskew => put!(self.deskew[i].data_in, S32),
            },
            other => unreachable!("{other:?} is not a destination"),
        }
    }
}

impl Logic for WsArray {
    fn update(&mut self) {
        for (dst, src) in self.nets() {
            let v = self.get(src);
            self.drive(dst, Some(v));
        }
        // The top PE row has no partial sum from above.
        for j in 0..self.cols() {
            self.pes[0][j].p_in.next = 0.into();
        }
    }

    fn connect(&mut self) {
        for (dst, _) in self.nets() {
            self.drive(dst, None);
        }
        for j in 0..self.cols() {
            self.pes[0][j].p_in.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let sig = |p: Port| VerilogExpression::Signal(p.name());
        let mut block: Vec<VerilogStatement> = self.nets().into_iter().map(|(d, s)| VerilogStatement::Assignment(sig(d), sig(s))).collect();
        for j in 0..self.cols() {
            let zero = VerilogExpression::Literal(Signed::<32>::from(0i64).verilog());
            block.push(VerilogStatement::Assignment(sig(Port::Pe(0, j, PePort::PIn)), zero));
        }
        Verilog::Combinatorial(block)
    }
}
