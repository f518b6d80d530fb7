//! The weight-stationary array as the exec unit drives it, run on rust-hdl's simulator and
//! as emitted Verilog under Icarus, against a reference matrix product.

use crate::tools::{icarus, ToolError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write;
use std::path::Path;
use systole_hdl::array::WsArray;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};

/// What the array's edges see in one cycle.
#[derive(Clone, Default, Debug)]
pub struct EdgeInputs {
    /// Activation word and the flip bit.
    pub a: Option<(Vec<i8>, bool)>,
    /// Weight row and its destination row.
    pub w: Option<(Vec<i8>, usize)>,
}

/// A stimulus with the expected column sums.
#[derive(Clone, Debug)]
pub struct ArrayCase {
    /// PE rows.
    pub rows: usize,
    /// PE columns.
    pub cols: usize,
    /// Inputs per cycle.
    pub cycles: Vec<EdgeInputs>,
    /// `(cycle, column sums)` the array must show.
    pub expect: Vec<(usize, Vec<i32>)>,
}

impl ArrayCase {
    /// Matmuls as the exec unit issues them (docs/ARCHITECTURE.md section 9): matmul 0 only
    /// preloads; matmul `i` streams `lengths[i-1]` words with tile `i-1` and preloads tile
    /// `i`; each occupies the unit for `max(M, rows)` cycles and presents word `m` and
    /// preload row `r` in cycles `start + 1 + m` and `start + 1 + r`.
    pub fn back_to_back(rows: usize, cols: usize, lengths: &[usize], seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let tiles: Vec<Vec<Vec<i8>>> =
            (0..=lengths.len()).map(|_| (0..rows).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect()).collect();
        let mut cycles: Vec<EdgeInputs> = vec![];
        let mut expect = vec![];
        let mut start = 0usize;
        for (i, &m) in std::iter::once(&0).chain(lengths).enumerate() {
            let busy = m.max(rows);
            if cycles.len() < start + 1 + busy {
                cycles.resize(start + 1 + busy, EdgeInputs::default());
            }
            for (r, row) in tiles[i].iter().enumerate() {
                cycles[start + 1 + r].w = Some((row.clone(), r));
            }
            for word in 0..m {
                let a: Vec<i8> = (0..rows).map(|_| rng.gen()).collect();
                let t = start + 1 + word;
                let sums = (0..cols).map(|j| a.iter().zip(&tiles[i - 1]).map(|(&x, w)| x as i32 * w[j] as i32).sum()).collect();
                expect.push((t + rows + cols - 1, sums));
                cycles[t].a = Some((a, word == 0));
            }
            start += busy;
        }
        let tail = rows + cols;
        cycles.resize(cycles.len() + tail, EdgeInputs::default());
        ArrayCase { rows, cols, cycles, expect }
    }

    fn lanes(&self, t: usize) -> (Vec<i8>, bool, Vec<i8>, bool, usize) {
        let i = &self.cycles[t];
        let (a, flip) = i.a.clone().unwrap_or((vec![0; self.rows], false));
        let (w, valid, row) = match &i.w {
            Some((w, row)) => (w.clone(), true, *row),
            None => (vec![0; self.cols], false, 0),
        };
        (a, flip, w, valid, row)
    }

    /// The first expected output the run does not show.
    pub fn first_mismatch(&self, outs: &[Vec<i32>]) -> Option<String> {
        self.expect.iter().enumerate().find_map(|(n, (t, e))| {
            let got = outs.get(*t);
            (got != Some(e)).then(|| format!("{}x{} word {n}: cycle {t}: expected {e:?}, got {got:?}", self.rows, self.cols))
        })
    }

    /// Column sums in every cycle, from rust-hdl's simulator.
    pub fn run_rust_hdl(&self) -> Vec<Vec<i32>> {
        let mut uut = WsArray::new(self.rows, self.cols);
        uut.connect_all();
        let mut outs = vec![];
        for t in 0..self.cycles.len() {
            let (a, flip, w, valid, row) = self.lanes(t);
            for (k, v) in a.iter().enumerate() {
                uut.a_in[k].next = (*v as i64).into();
            }
            uut.flip_in.next = flip;
            for (j, v) in w.iter().enumerate() {
                uut.w_in[j].next = (*v as i64).into();
            }
            uut.w_valid_in.next = valid;
            uut.w_row_in.next = (row as u64).into();
            assert!(settle(&mut uut), "array logic does not settle");
            outs.push(uut.out.iter().map(|o| o.val().bigint().try_into().expect("int32")).collect());
            clock_cycle(&mut uut, |u| &mut u.clock);
        }
        outs
    }

    /// Column sums in every cycle, from the emitted Verilog under Icarus.
    pub fn run_verilog(&self, dir: &Path) -> Result<Vec<Vec<i32>>, ToolError> {
        let (rows, cols) = (self.rows, self.cols);
        let rtl = emit(&mut WsArray::new(rows, cols));
        let mut vectors = String::new();
        for t in 0..self.cycles.len() {
            let (a, flip, w, valid, row) = self.lanes(t);
            let nums: Vec<String> = a
                .iter()
                .map(|v| v.to_string())
                .chain([(flip as u8).to_string()])
                .chain(w.iter().map(|v| v.to_string()))
                .chain([(valid as u8).to_string(), row.to_string()])
                .collect();
            let _ = writeln!(vectors, "{}", nums.join(" "));
        }
        std::fs::write(dir.join("vectors.txt"), vectors).map_err(|source| ToolError::Io { path: dir.join("vectors.txt"), source })?;
        let tb = testbench(rows, cols, self.cycles.len());
        let printed = icarus(dir, &[("array.v", &rtl), ("tb.v", &tb)], "tb")?;
        Ok(printed
            .lines()
            .filter_map(|l| l.strip_prefix("out "))
            .map(|l| l.split_whitespace().map(|v| v.parse().expect("decimal")).collect())
            .collect())
    }
}

fn testbench(rows: usize, cols: usize, cycles: usize) -> String {
    let mut s =
        String::from("module tb;\n  reg clock = 0;\n  reg flip = 0, w_valid = 0;\n  reg [7:0] w_row = 0;\n  integer fd, r, v, t;\n");
    for k in 0..rows {
        let _ = writeln!(s, "  reg signed [7:0] a{k} = 0;");
    }
    for j in 0..cols {
        let _ = writeln!(s, "  reg signed [7:0] w{j} = 0;\n  wire signed [31:0] o{j};");
    }
    let mut ports = vec![".clock(clock)".to_string(), ".flip_in(flip)".into(), ".w_valid_in(w_valid)".into(), ".w_row_in(w_row)".into()];
    ports.extend((0..rows).map(|k| format!(".a_in${k}(a{k})")));
    ports.extend((0..cols).map(|j| format!(".w_in${j}(w{j})")));
    ports.extend((0..cols).map(|j| format!(".out${j}(o{j})")));
    let _ = writeln!(s, "  top dut({});", ports.join(", "));
    let _ = writeln!(s, "  initial begin\n    fd = $fopen(\"vectors.txt\", \"r\");\n    for (t = 0; t < {cycles}; t = t + 1) begin");
    for k in 0..rows {
        let _ = writeln!(s, "      r = $fscanf(fd, \"%d\", v); a{k} = v;");
    }
    let _ = writeln!(s, "      r = $fscanf(fd, \"%d\", v); flip = v;");
    for j in 0..cols {
        let _ = writeln!(s, "      r = $fscanf(fd, \"%d\", v); w{j} = v;");
    }
    let _ = writeln!(s, "      r = $fscanf(fd, \"%d\", v); w_valid = v;\n      r = $fscanf(fd, \"%d\", v); w_row = v;");
    let fmt = vec!["%0d"; cols].join(" ");
    let outs: Vec<String> = (0..cols).map(|j| format!("o{j}")).collect();
    let _ = writeln!(s, "      #1 $display(\"out {fmt}\", {});", outs.join(", "));
    let _ = writeln!(s, "      clock = 1; #1 clock = 0; #1;\n    end\n    $finish;\n  end\nendmodule");
    s
}
