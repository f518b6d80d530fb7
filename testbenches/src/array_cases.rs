//! The systolic arrays as the exec unit drives them, run on rust-hdl's simulator and as
//! emitted Verilog under Icarus, against reference matrix products.
//!
//! A case is a per-cycle table of input-port values plus the output values expected in
//! given cycles; the same table drives both backends.

use crate::tools::{icarus_vectors, ToolError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use systole_hdl::array::WsArray;
use systole_hdl::os_array::OsArray;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};

/// Which array a case drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// [`WsArray`]: ports `a_in$k`, `flip_in`, `w_in$j`, `w_valid_in$j`, `w_row_in$j`, `w_clear_in`.
    WeightStationary,
    /// [`OsArray`]: ports `a_in$i`, `first_in`, `last_in`, `b_in$j`.
    OutputStationary,
}

/// A stimulus with the expected outputs.
#[derive(Clone, Debug)]
pub struct ArrayCase {
    /// The array.
    pub kind: Kind,
    /// PE rows.
    pub rows: usize,
    /// PE columns.
    pub cols: usize,
    /// Input ports in table order, with their widths.
    pub ports: Vec<(String, usize)>,
    /// Input values per cycle, in port order.
    pub cycles: Vec<Vec<i64>>,
    /// `(cycle, out[0..cols])` the array must show.
    pub expect: Vec<(usize, Vec<i32>)>,
}

fn random_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<Vec<i8>> {
    (0..rows).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect()
}

impl ArrayCase {
    fn new(kind: Kind, rows: usize, cols: usize) -> Self {
        let lanes = |name: &'static str, n: usize| (0..n).map(move |i| (format!("{name}${i}"), 8));
        let ports = match kind {
            Kind::WeightStationary => lanes("a_in", rows)
                .chain([("flip_in".to_string(), 1)])
                .chain(lanes("w_in", cols))
                .chain((0..cols).map(|j| (format!("w_valid_in${j}"), 1)))
                .chain(lanes("w_row_in", cols))
                .chain([("w_clear_in".to_string(), 1)])
                .collect(),
            Kind::OutputStationary => {
                lanes("a_in", rows).chain([("first_in".to_string(), 1), ("last_in".to_string(), 1)]).chain(lanes("b_in", cols)).collect()
            }
        };
        ArrayCase { kind, rows, cols, ports, cycles: vec![], expect: vec![] }
    }

    fn at(&mut self, t: usize) -> &mut Vec<i64> {
        if self.cycles.len() <= t {
            self.cycles.resize(t + 1, vec![0; self.ports.len()]);
        }
        &mut self.cycles[t]
    }

    /// WS matmuls as the exec unit issues them (docs/ARCHITECTURE.md section 9): matmul 0
    /// only preloads; matmul `i` streams `lengths[i-1]` words with tile `i-1` and preloads
    /// tile `i`; each holds the unit for `max(M, rows)` cycles and presents word `m` and
    /// preload row `r` in cycles `start + 1 + m` and `start + 1 + r`.
    pub fn weight_stationary(rows: usize, cols: usize, lengths: &[usize], seed: u64) -> Self {
        Self::weight_stationary_of(rows, cols, lengths, seed, |rng, _| rng.gen())
    }

    /// [`ArrayCase::weight_stationary`] with every weight and activation -128 or 127, and
    /// the first tile and the first word all -128: its column sums are `rows * 2^14`, the
    /// largest a column can make, and the others are as far from 0 as int8 data go.
    pub fn weight_stationary_extremes(rows: usize, cols: usize, lengths: &[usize], seed: u64) -> Self {
        Self::weight_stationary_of(rows, cols, lengths, seed, |rng, first| if first || rng.gen() { -128 } else { 127 })
    }

    /// A WS case whose weights and activations are `value(rng, first)`, `first` for those
    /// of the first tile and the first word.
    fn weight_stationary_of(rows: usize, cols: usize, lengths: &[usize], seed: u64, value: impl Fn(&mut ChaCha8Rng, bool) -> i8) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tiles: Vec<Vec<Vec<i8>>> =
            (0..=lengths.len()).map(|i| (0..rows).map(|_| (0..cols).map(|_| value(&mut rng, i == 0)).collect()).collect()).collect();
        let mut case = Self::new(Kind::WeightStationary, rows, cols);
        let (flip, w, valid, tag) = (rows, rows + 1, rows + 1 + cols, rows + 1 + 2 * cols);
        let mut start = 0usize;
        for (i, &m) in std::iter::once(&0).chain(lengths).enumerate() {
            for (r, row) in tiles[i].iter().enumerate() {
                let v = case.at(start + 1 + r);
                for (j, &x) in row.iter().enumerate() {
                    v[w + j] = x as i64;
                    v[valid + j] = 1;
                    v[tag + j] = r as i64;
                }
            }
            for word in 0..m {
                let a: Vec<i8> = (0..rows).map(|_| value(&mut rng, i == 1 && word == 0)).collect();
                let t = start + 1 + word;
                let sums = (0..cols).map(|j| a.iter().zip(&tiles[i - 1]).map(|(&x, wr)| x as i32 * wr[j] as i32).sum()).collect();
                case.expect.push((t + rows + cols - 1, sums));
                let v = case.at(t);
                for (k, &x) in a.iter().enumerate() {
                    v[k] = x as i64;
                }
                v[flip] = (word == 0) as i64;
            }
            start += m.max(rows);
        }
        let end = case.cycles.len() + rows + cols;
        case.at(end);
        case
    }

    /// OS tiles back to back: tile `n` has `K = steps[n]` steps and holds the unit for
    /// `busy = max(K, rows)` cycles; its steps are right-aligned in that window, step `t` in
    /// cycle `start + busy - K + 1 + t`, so that consecutive tiles' last steps are at least
    /// `rows` cycles apart and their read-outs never overlap. Row `i` of `A x B` must appear
    /// in cycle `start + busy + cols + i`.
    pub fn output_stationary(rows: usize, cols: usize, steps: &[usize], seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut case = Self::new(Kind::OutputStationary, rows, cols);
        let (first, last, b) = (rows, rows + 1, rows + 2);
        let mut start = 0usize;
        for &k in steps {
            let a = random_matrix(&mut rng, rows, k);
            let bm = random_matrix(&mut rng, k, cols);
            let busy = k.max(rows);
            for t in 0..k {
                let v = case.at(start + busy - k + 1 + t);
                for i in 0..rows {
                    v[i] = a[i][t] as i64;
                }
                for j in 0..cols {
                    v[b + j] = bm[t][j] as i64;
                }
                v[first] = (t == 0) as i64;
                v[last] = (t == k - 1) as i64;
            }
            for (i, arow) in a.iter().enumerate() {
                let sums = (0..cols).map(|j| (0..k).map(|t| arow[t] as i32 * bm[t][j] as i32).sum()).collect();
                case.expect.push((start + busy + cols + i, sums));
            }
            start += busy;
        }
        let end = case.cycles.len() + rows + cols;
        case.at(end);
        case
    }

    /// The first expected output the run does not show (`None` in `outs` is an unknown
    /// value, `x` or `z` in Verilog).
    pub fn first_mismatch(&self, outs: &[Vec<Option<i32>>]) -> Option<String> {
        self.expect.iter().enumerate().find_map(|(n, (t, e))| {
            let got = outs.get(*t);
            let want: Vec<Option<i32>> = e.iter().copied().map(Some).collect();
            (got != Some(&want))
                .then(|| format!("{:?} {}x{} output {n}: cycle {t}: expected {e:?}, got {got:?}", self.kind, self.rows, self.cols))
        })
    }

    /// Outputs in every cycle, from rust-hdl's simulator.
    pub fn run_rust_hdl(&self) -> Vec<Vec<Option<i32>>> {
        let read = |out: &[Signal<Out, Signed<32>>]| -> Vec<Option<i32>> { out.iter().map(|o| o.val().bigint().try_into().ok()).collect() };
        let (rows, cols) = (self.rows, self.cols);
        let mut outs = vec![];
        match self.kind {
            Kind::WeightStationary => {
                let mut uut = WsArray::new(rows, cols, 1, false);
                uut.connect_all();
                for v in &self.cycles {
                    for (lane, &x) in uut.a_in.iter_mut().zip(v) {
                        lane.next = x.into();
                    }
                    uut.flip_in.next = v[rows] != 0;
                    for (lane, &x) in uut.w_in.iter_mut().zip(&v[rows + 1..]) {
                        lane.next = x.into();
                    }
                    for j in 0..cols {
                        uut.w_valid_in[j].next = v[rows + 1 + cols + j] != 0;
                        uut.w_row_in[j].next = (v[rows + 1 + 2 * cols + j] as u64).into();
                    }
                    uut.w_clear_in.next = v[rows + 1 + 3 * cols] != 0;
                    assert!(settle(&mut uut), "array logic does not settle");
                    outs.push(read(&uut.out));
                    clock_cycle(&mut uut, |u| &mut u.clock);
                }
            }
            Kind::OutputStationary => {
                let mut uut = OsArray::new(rows, cols);
                uut.connect_all();
                for v in &self.cycles {
                    for (lane, &x) in uut.a_in.iter_mut().zip(v) {
                        lane.next = x.into();
                    }
                    uut.first_in.next = v[rows] != 0;
                    uut.last_in.next = v[rows + 1] != 0;
                    for (lane, &x) in uut.b_in.iter_mut().zip(&v[rows + 2..]) {
                        lane.next = x.into();
                    }
                    assert!(settle(&mut uut), "array logic does not settle");
                    outs.push(read(&uut.out));
                    clock_cycle(&mut uut, |u| &mut u.clock);
                }
            }
        }
        outs
    }

    /// The emitted Verilog of the array this case drives.
    pub fn verilog(&self) -> String {
        match self.kind {
            Kind::WeightStationary => emit(&mut WsArray::new(self.rows, self.cols, 1, false)),
            Kind::OutputStationary => emit(&mut OsArray::new(self.rows, self.cols)),
        }
    }

    /// Outputs in every cycle, from the emitted Verilog under Icarus.
    pub fn run_verilog(&self, dir: &Path) -> Result<Vec<Vec<Option<i32>>>, ToolError> {
        let outputs: Vec<(String, usize)> = (0..self.cols).map(|j| (format!("out${j}"), 32)).collect();
        let table = icarus_vectors(dir, &self.verilog(), true, &self.ports, &outputs, &self.cycles)?;
        Ok(table.into_iter().map(|row| row.into_iter().map(|v| v.map(|x| x as i32)).collect()).collect())
    }
}
