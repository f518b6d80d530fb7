//! The `rows x cols` weight-stationary systolic array with its edge registers.
//!
//! ```text
//!          w_in[j] (+ valid, row, clear) -- skew j --> column j, down
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
//! cycle `t` appears as the column sums on `out` in cycle `t + rows + cols - 1 + s`, all
//! columns together, with `s` pipeline stages per PE ([`WsArray::set_pe_stages`]). A
//! weight row presented on `w_in` in cycle `t` reaches PE `(k, j)`'s capture in cycle
//! `t + j + k`; the flip presented with an activation in cycle `t`
//! switches PE `(k, j)` in cycle `t + k + j`. With `e` edge registers
//! ([`WsArray::set_edge_stages`]) every input enters `e` cycles later, so all of these
//! times grow by `e`.
//!
//! In a dense array, two PEs share one multiplier leaf, [`DspPair`] (one SB_MAC16 in dual
//! 8x8 mode on iCE40), with the PEs' own register stages: neighbours on an anti-diagonal,
//! which flip in the same cycles, so that with operand registers the pair holds their
//! weights in its own ([`DspPair::with_held_weights`]); the PEs left over pair among
//! themselves, and with an odd count of PEs the last keeps its own multiplier.
//!
//! The nets are listed once with [`crate::net!`] (see [`crate::wiring`]).

use crate::delay::Delay;
use crate::dsp::DspPair;
use crate::net;
use crate::pe::{WsPe, MAX_SIDE};
use crate::wiring::{assign_literal, assign_zero, Mode};
use rust_hdl::prelude::*;

/// Two PEs `(k, j)` that share one [`DspPair`], and whether they flip in the same cycles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PairedPes {
    pes: [(usize, usize); 2],
    same_flips: bool,
}

/// The PEs of a dense `rows x cols` array that share [`DspPair`]s: along each
/// anti-diagonal (whose PEs flip in the same cycle, `k + j` cycles after the flip enters)
/// neighbours in pairs, then the PEs left over (one per diagonal of odd length) in pairs
/// of their own; with an odd count of PEs the last left over keeps its own multiplier.
fn dsp_pairs(rows: usize, cols: usize) -> Vec<PairedPes> {
    let mut pairs = vec![];
    let mut left_over = vec![];
    for d in 0..rows + cols - 1 {
        let diagonal: Vec<(usize, usize)> = (d.saturating_sub(cols - 1)..rows.min(d + 1)).map(|k| (k, d - k)).collect();
        for two in diagonal.chunks(2) {
            match two {
                [first, second] => pairs.push(PairedPes { pes: [*first, *second], same_flips: true }),
                [one] => left_over.push(*one),
                _ => unreachable!("chunks of two"),
            }
        }
    }
    pairs.extend(left_over.chunks_exact(2).map(|two| PairedPes { pes: [two[0], two[1]], same_flips: false }));
    pairs
}

/// `n` delay lines, line `i` `depth(i) + extra` deep.
fn lines<T: Synth>(n: usize, extra: usize, depth: impl Fn(usize) -> usize) -> Vec<Delay<T>> {
    (0..n).map(|i| Delay::new(depth(i) + extra)).collect()
}

/// The weight-stationary array.
#[derive(LogicBlock)]
pub struct WsArray {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Activations, lane `k * lanes + b` for lane `b` of row `k` (one lane per row in a
    /// dense array, a group of four in one that skips sparse weights).
    pub a_in: Vec<Signal<In, Signed<8>>>,
    /// Set with the first activation of a tile: the PEs switch to the shadow weights.
    pub flip_in: Signal<In, Bit>,
    /// The packing of the active tile, with every activation (skewed like the flip): bit 0
    /// packed int4 weights, bit 1 int4 x int4 (see [`WsPe::packed_in`]).
    pub packed_in: Signal<In, Bits<2>>,
    /// Weight row, lane `j` for column `j`.
    pub w_in: Vec<Signal<In, Signed<8>>>,
    /// The lane index of each column's weight, lane `j` for column `j`.
    pub w_index_in: Vec<Signal<In, Bits<2>>>,
    /// Column `j`'s weight is valid (dense and band rows: every column together).
    pub w_valid_in: Vec<Signal<In, Bit>>,
    /// The PE row column `j`'s weight is destined for.
    pub w_row_in: Vec<Signal<In, Bits<8>>>,
    /// Zero the shadow tile, ahead of a CSC preload's writes (skewed like the weights).
    pub w_clear_in: Signal<In, Bit>,
    /// Column sums, lane `j` for column `j`.
    pub out: Vec<Signal<Out, Signed<32>>>,
    pes: Vec<Vec<WsPe>>,
    a_skew: Vec<Delay<Signed<8>>>,
    flip_skew: Vec<Delay<Bit>>,
    packed_skew: Vec<Delay<Bits<2>>>,
    w_skew: Vec<Delay<Signed<8>>>,
    w_index_skew: Vec<Delay<Bits<2>>>,
    w_valid_skew: Vec<Delay<Bit>>,
    w_row_skew: Vec<Delay<Bits<8>>>,
    w_clear_skew: Vec<Delay<Bit>>,
    deskew: Vec<Delay<Signed<32>>>,
    /// The shared multipliers, pair `i` for the PEs of `paired[i]`.
    pairs: Vec<DspPair>,
    _paired: Vec<PairedPes>,
    /// The PEs that keep their own multipliers.
    _own_multiplier: Vec<(usize, usize)>,
    /// Product registers per PE (`ArchConfig::pe_stages`).
    _pe_stages: usize,
    /// The weight bus reaches every row of a column at once (`ArchConfig::weight_broadcast`).
    _broadcast: bool,
    /// Row `k`'s activations arrive `k` cycles late already (a staggered scratchpad read,
    /// `ArchConfig::staggered_act_reads`): its skew line keeps only the edge registers.
    _act_skewed_before: bool,
    /// Registers at the edge, in front of the skew (`ArchConfig::edge_stages`), and those
    /// of the weight words.
    _edge_stages: (usize, usize),
}

impl WsArray {
    /// An array of `rows x cols` PEs with `lanes` activation lanes per row (1, or
    /// [`crate::pe::GROUP_LANES`] to skip sparse weights), whose PEs also multiply int4 x
    /// int4 when `int4x4`.
    pub fn new(rows: usize, cols: usize, lanes: usize, int4x4: bool) -> Self {
        assert!((1..=MAX_SIDE).contains(&rows) && (1..=MAX_SIDE).contains(&cols), "array {rows}x{cols}");
        let paired = if lanes == 1 { dsp_pairs(rows, cols) } else { vec![] };
        let mut pes: Vec<Vec<WsPe>> = (0..rows).map(|k| (0..cols).map(|_| WsPe::new(k, lanes, int4x4)).collect()).collect();
        for &(k, j) in paired.iter().flat_map(|pair| &pair.pes) {
            pes[k][j].use_external_multiplier();
        }
        let in_pair = |pe: &(usize, usize)| paired.iter().any(|pair| pair.pes.contains(pe));
        let own_multiplier = (0..rows).flat_map(|k| (0..cols).map(move |j| (k, j))).filter(|pe| !in_pair(pe)).collect();
        let mut array = Self {
            clock: Default::default(),
            a_in: (0..rows * lanes).map(|_| Default::default()).collect(),
            flip_in: Default::default(),
            packed_in: Default::default(),
            w_in: (0..cols).map(|_| Default::default()).collect(),
            w_index_in: (0..cols).map(|_| Default::default()).collect(),
            w_valid_in: (0..cols).map(|_| Default::default()).collect(),
            w_row_in: (0..cols).map(|_| Default::default()).collect(),
            w_clear_in: Default::default(),
            out: (0..cols).map(|_| Default::default()).collect(),
            pes,
            // The skew lines, set below.
            a_skew: vec![],
            flip_skew: vec![],
            packed_skew: vec![],
            w_skew: vec![],
            w_index_skew: vec![],
            w_valid_skew: vec![],
            w_row_skew: vec![],
            w_clear_skew: vec![],
            deskew: lines(cols, 0, |j| cols - 1 - j),
            pairs: paired.iter().map(|_| DspPair::new(false, false)).collect(),
            _paired: paired,
            _own_multiplier: own_multiplier,
            _pe_stages: 0,
            _broadcast: false,
            _act_skewed_before: false,
            _edge_stages: (0, 0),
        };
        array.set_edge_stages(0, 0);
        array
    }

    /// Sets `stages` registers on every edge input (`ArchConfig::edge_stages`): row `k`'s
    /// activations and flip and column `j`'s weight bus enter through skew lines `stages`
    /// deeper, so nothing runs from the inputs into a PE in one cycle, and the column sums
    /// come `stages` cycles later. The weight words' lines are `word_stages` deeper
    /// instead: an engine that registers its weight words before its band unit
    /// ([`crate::band::BandUnit::with_word_stages`]) presents them that much later itself.
    pub fn set_edge_stages(&mut self, stages: usize, word_stages: usize) {
        let (rows, cols, lanes) = (self.rows(), self.cols(), self.lanes());
        let skewed_before = self._act_skewed_before;
        self.a_skew = lines(rows * lanes, stages, |l| if skewed_before { 0 } else { l / lanes });
        self.flip_skew = lines(rows, stages, |k| k);
        self.packed_skew = lines(rows, stages, |k| k);
        self.w_skew = lines(cols, word_stages, |j| j);
        self.w_index_skew = lines(cols, stages, |j| j);
        self.w_valid_skew = lines(cols, stages, |j| j);
        self.w_row_skew = lines(cols, stages, |j| j);
        self.w_clear_skew = lines(cols, stages, |j| j);
        self._edge_stages = (stages, word_stages);
    }

    /// Edge registers: of every input, and of the weight words.
    pub fn edge_stages(&self) -> (usize, usize) {
        self._edge_stages
    }

    /// Sets `stages` pipeline stages in every PE (`ArchConfig::pe_stages`, see
    /// [`WsPe::set_pe_stages`]): the column sums come `stages` cycles later.
    pub fn set_pe_stages(&mut self, stages: usize) {
        for row in &mut self.pes {
            for pe in row.iter_mut() {
                pe.set_pe_stages(stages);
            }
        }
        for (pair, pes) in self.pairs.iter_mut().zip(&self._paired) {
            *pair = DspPair::new(stages >= 2, stages >= 1);
            if stages >= 2 && pes.same_flips {
                *pair = DspPair::new(true, true).with_held_weights();
            }
        }
        self._pe_stages = stages;
    }

    /// Sets the weight bus (`ArchConfig::weight_broadcast`): with `on`, every PE of column
    /// `j` takes the bus where it enters the column, so PE `(k, j)` captures a weight row
    /// presented in cycle `t` in cycle `t + j` rather than `t + j + k`, and the PEs' own bus
    /// registers are left unread (synthesis removes them). Only for preloads that present
    /// row `r` no earlier than `r` cycles after their start (dense int8 and band tiles).
    pub fn set_weight_broadcast(&mut self, on: bool) {
        self._broadcast = on;
    }

    /// The weight bus is broadcast down each column.
    pub fn weight_broadcast(&self) -> bool {
        self._broadcast
    }

    /// With `on`, row `k`'s activations on `a_in` come `k` cycles late already (from a
    /// scratchpad read with a stagger, `ArchConfig::staggered_act_reads`), so the row's
    /// skew line keeps only its edge registers; the array's timing is unchanged.
    pub fn set_act_skewed_before(&mut self, on: bool) {
        self._act_skewed_before = on;
        let edge = self._edge_stages;
        self.set_edge_stages(edge.0, edge.1);
    }

    /// Row `k`'s activations arrive `k` cycles late already.
    pub fn act_skewed_before(&self) -> bool {
        self._act_skewed_before
    }

    /// Product registers per PE.
    pub fn pe_stages(&self) -> usize {
        self._pe_stages
    }

    /// Rows of PEs.
    pub fn rows(&self) -> usize {
        self.pes.len()
    }

    /// Activation lanes per row.
    pub fn lanes(&self) -> usize {
        self.a_in.len() / self.rows()
    }

    /// Columns of PEs.
    pub fn cols(&self) -> usize {
        self.w_in.len()
    }

    /// Cycles from an activation word on `a_in` to its column sums on `out`.
    pub fn latency(&self) -> usize {
        self.rows() + self.cols() - 1 + self._edge_stages.0 + self._pe_stages
    }

    /// Every net of the array, applied according to `mode`.
    fn wire(&mut self, mode: &mut Mode) {
        let (rows, cols, lanes) = (self.rows(), self.cols(), self.lanes());
        let pe = |k: usize, j: usize, p: &str| format!("pes${k}${j}${p}");
        for i in 0..self._paired.len() {
            let pair = |p: &str| format!("pairs${i}${p}");
            let [(k0, j0), (k1, j1)] = self._paired[i].pes;
            net!(mode, self.pairs[i].clock, pair("clock"), self.clock, "clock".into());
            net!(mode, self.pairs[i].a0, pair("a0"), self.pes[k0][j0].mul_a, pe(k0, j0, "mul_a"));
            net!(mode, self.pairs[i].b0, pair("b0"), self.pes[k0][j0].mul_b, pe(k0, j0, "mul_b"));
            net!(mode, self.pes[k0][j0].mul_p, pe(k0, j0, "mul_p"), self.pairs[i].p0, pair("p0"));
            net!(mode, self.pairs[i].a1, pair("a1"), self.pes[k1][j1].mul_a, pe(k1, j1, "mul_a"));
            net!(mode, self.pairs[i].b1, pair("b1"), self.pes[k1][j1].mul_b, pe(k1, j1, "mul_b"));
            net!(mode, self.pes[k1][j1].mul_p, pe(k1, j1, "mul_p"), self.pairs[i].p1, pair("p1"));
            net!(mode, self.pairs[i].b0_q, pair("b0_q"), self.pes[k0][j0].mul_b_q, pe(k0, j0, "mul_b_q"));
            net!(mode, self.pairs[i].b1_q, pair("b1_q"), self.pes[k1][j1].mul_b_q, pe(k1, j1, "mul_b_q"));
            // The pair's PEs flip together when it holds their weights.
            net!(mode, self.pairs[i].b_load, pair("b_load"), self.pes[k0][j0].mul_load, pe(k0, j0, "mul_load"));
            net!(mode, self.pairs[i].b0_new, pair("b0_new"), self.pes[k0][j0].mul_b_new, pe(k0, j0, "mul_b_new"));
            net!(mode, self.pairs[i].b1_new, pair("b1_new"), self.pes[k1][j1].mul_b_new, pe(k1, j1, "mul_b_new"));
        }
        let lane = |l: &str, i: usize, p: &str| format!("{l}${i}${p}");
        for k in 0..rows {
            net!(mode, self.flip_skew[k].clock, lane("flip_skew", k, "clock"), self.clock, "clock".into());
            net!(mode, self.flip_skew[k].data_in, lane("flip_skew", k, "data_in"), self.flip_in, "flip_in".into());
            net!(mode, self.pes[k][0].flip_in, pe(k, 0, "flip_in"), self.flip_skew[k].data_out, lane("flip_skew", k, "data_out"));
            net!(mode, self.packed_skew[k].clock, lane("packed_skew", k, "clock"), self.clock, "clock".into());
            net!(mode, self.packed_skew[k].data_in, lane("packed_skew", k, "data_in"), self.packed_in, "packed_in".into());
            net!(mode, self.pes[k][0].packed_in, pe(k, 0, "packed_in"), self.packed_skew[k].data_out, lane("packed_skew", k, "data_out"));
            for b in 0..lanes {
                let l = k * lanes + b;
                let pe_lane = |j: usize, p: &str| pe(k, j, &format!("{p}${b}"));
                net!(mode, self.a_skew[l].clock, lane("a_skew", l, "clock"), self.clock, "clock".into());
                net!(mode, self.a_skew[l].data_in, lane("a_skew", l, "data_in"), self.a_in[l], format!("a_in${l}"));
                net!(mode, self.pes[k][0].a_in[b], pe_lane(0, "a_in"), self.a_skew[l].data_out, lane("a_skew", l, "data_out"));
                for j in 1..cols {
                    net!(mode, self.pes[k][j].a_in[b], pe_lane(j, "a_in"), self.pes[k][j - 1].a_out[b], pe_lane(j - 1, "a_out"));
                }
            }
            for j in 0..cols {
                net!(mode, self.pes[k][j].clock, pe(k, j, "clock"), self.clock, "clock".into());
            }
            for j in 1..cols {
                net!(mode, self.pes[k][j].flip_in, pe(k, j, "flip_in"), self.pes[k][j - 1].flip_out, pe(k, j - 1, "flip_out"));
                net!(mode, self.pes[k][j].packed_in, pe(k, j, "packed_in"), self.pes[k][j - 1].packed_out, pe(k, j - 1, "packed_out"));
            }
        }
        for j in 0..cols {
            for l in ["w_skew", "w_index_skew", "w_valid_skew", "w_row_skew", "w_clear_skew", "deskew"] {
                let clock = match l {
                    "w_skew" => &mut self.w_skew[j].clock,
                    "w_index_skew" => &mut self.w_index_skew[j].clock,
                    "w_valid_skew" => &mut self.w_valid_skew[j].clock,
                    "w_row_skew" => &mut self.w_row_skew[j].clock,
                    "w_clear_skew" => &mut self.w_clear_skew[j].clock,
                    _ => &mut self.deskew[j].clock,
                };
                net!(mode, clock, lane(l, j, "clock"), self.clock, "clock".into());
            }
            net!(mode, self.w_skew[j].data_in, lane("w_skew", j, "data_in"), self.w_in[j], format!("w_in${j}"));
            net!(mode, self.w_valid_skew[j].data_in, lane("w_valid_skew", j, "data_in"), self.w_valid_in[j], format!("w_valid_in${j}"));
            net!(mode, self.w_row_skew[j].data_in, lane("w_row_skew", j, "data_in"), self.w_row_in[j], format!("w_row_in${j}"));
            net!(mode, self.w_clear_skew[j].data_in, lane("w_clear_skew", j, "data_in"), self.w_clear_in, "w_clear_in".into());
            net!(
                mode,
                self.pes[0][j].w_clear_in,
                pe(0, j, "w_clear_in"),
                self.w_clear_skew[j].data_out,
                lane("w_clear_skew", j, "data_out")
            );
            net!(mode, self.pes[0][j].w_in, pe(0, j, "w_in"), self.w_skew[j].data_out, lane("w_skew", j, "data_out"));
            net!(mode, self.w_index_skew[j].data_in, lane("w_index_skew", j, "data_in"), self.w_index_in[j], format!("w_index_in${j}"));
            net!(
                mode,
                self.pes[0][j].w_index_in,
                pe(0, j, "w_index_in"),
                self.w_index_skew[j].data_out,
                lane("w_index_skew", j, "data_out")
            );
            net!(
                mode,
                self.pes[0][j].w_valid_in,
                pe(0, j, "w_valid_in"),
                self.w_valid_skew[j].data_out,
                lane("w_valid_skew", j, "data_out")
            );
            net!(mode, self.pes[0][j].w_row_in, pe(0, j, "w_row_in"), self.w_row_skew[j].data_out, lane("w_row_skew", j, "data_out"));
            for k in 1..rows {
                net!(mode, self.pes[k][j].p_in, pe(k, j, "p_in"), self.pes[k - 1][j].p_out, pe(k - 1, j, "p_out"));
                if self._broadcast {
                    let top = |l: &str| lane(l, j, "data_out");
                    net!(mode, self.pes[k][j].w_in, pe(k, j, "w_in"), self.w_skew[j].data_out, top("w_skew"));
                    net!(mode, self.pes[k][j].w_index_in, pe(k, j, "w_index_in"), self.w_index_skew[j].data_out, top("w_index_skew"));
                    net!(mode, self.pes[k][j].w_valid_in, pe(k, j, "w_valid_in"), self.w_valid_skew[j].data_out, top("w_valid_skew"));
                    net!(mode, self.pes[k][j].w_row_in, pe(k, j, "w_row_in"), self.w_row_skew[j].data_out, top("w_row_skew"));
                    net!(mode, self.pes[k][j].w_clear_in, pe(k, j, "w_clear_in"), self.w_clear_skew[j].data_out, top("w_clear_skew"));
                    continue;
                }
                net!(mode, self.pes[k][j].w_in, pe(k, j, "w_in"), self.pes[k - 1][j].w_out, pe(k - 1, j, "w_out"));
                net!(mode, self.pes[k][j].w_index_in, pe(k, j, "w_index_in"), self.pes[k - 1][j].w_index_out, pe(k - 1, j, "w_index_out"));
                net!(mode, self.pes[k][j].w_valid_in, pe(k, j, "w_valid_in"), self.pes[k - 1][j].w_valid_out, pe(k - 1, j, "w_valid_out"));
                net!(mode, self.pes[k][j].w_row_in, pe(k, j, "w_row_in"), self.pes[k - 1][j].w_row_out, pe(k - 1, j, "w_row_out"));
                net!(mode, self.pes[k][j].w_clear_in, pe(k, j, "w_clear_in"), self.pes[k - 1][j].w_clear_out, pe(k - 1, j, "w_clear_out"));
            }
            net!(mode, self.deskew[j].data_in, lane("deskew", j, "data_in"), self.pes[rows - 1][j].p_out, pe(rows - 1, j, "p_out"));
            net!(mode, self.out[j], format!("out${j}"), self.deskew[j].data_out, lane("deskew", j, "data_out"));
        }
    }
}

impl Logic for WsArray {
    fn update(&mut self) {
        self.wire(&mut Mode::Update);
        for j in 0..self.cols() {
            self.pes[0][j].p_in.next = 0.into();
        }
        for &(k, j) in &self._own_multiplier {
            self.pes[k][j].mul_p.next = 0.into();
        }
    }

    fn connect(&mut self) {
        self.wire(&mut Mode::Connect);
        for j in 0..self.cols() {
            self.pes[0][j].p_in.connect();
        }
        for &(k, j) in &self._own_multiplier {
            self.pes[k][j].mul_p.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let mut block = vec![];
        // Emission reads no signal values; `wire` takes `&mut self` for the other modes.
        let mut shell = WsArray::new(self.rows(), self.cols(), self.lanes(), false);
        shell.set_weight_broadcast(self._broadcast);
        shell.wire(&mut Mode::Emit(&mut block));
        for j in 0..self.cols() {
            block.push(assign_zero(format!("pes$0${j}$p_in")));
        }
        for &(k, j) in &self._own_multiplier {
            block.push(assign_literal(format!("pes${k}${j}$mul_p"), Bits::<32>::from(0u64)));
        }
        Verilog::Combinatorial(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pe_but_one_of_an_odd_count_shares_a_pair_and_held_pairs_flip_together() {
        for (rows, cols) in [(1, 1), (2, 1), (1, 2), (8, 2), (4, 4), (3, 5), (5, 2), (12, 12), (16, 16)] {
            let pairs = dsp_pairs(rows, cols);
            let mut seen = vec![vec![0; cols]; rows];
            for pair in &pairs {
                for &(k, j) in &pair.pes {
                    seen[k][j] += 1;
                }
                let [(k0, j0), (k1, j1)] = pair.pes;
                // PE (k, j) flips k + j cycles after the flip enters the array.
                assert_eq!(pair.same_flips, k0 + j0 == k1 + j1, "{rows}x{cols}: {pair:?}");
            }
            assert_eq!(pairs.len(), rows * cols / 2, "{rows}x{cols}");
            assert!(seen.iter().flatten().all(|&n| n <= 1), "{rows}x{cols}: {seen:?}");
        }
        // The 8x2 array: seven pairs on anti-diagonals, the two corners together.
        let pairs = dsp_pairs(8, 2);
        assert_eq!(pairs.iter().filter(|p| p.same_flips).count(), 7);
        assert_eq!(pairs.last().map(|p| p.pes), Some([(0, 0), (7, 1)]));
    }
}
