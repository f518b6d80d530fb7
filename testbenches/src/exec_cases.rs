//! The exec engines driven like the exec unit drives them: the host fills the scratchpads,
//! each instruction starts in the cycle the timing model says, and the accumulator is read
//! back. A case checks the accumulator against the ISA's semantics and every completion
//! pulse against the timing model, on rust-hdl's simulator or the Verilog under Icarus.

use crate::stimulus::{completions, Stimulus};
use crate::tools::{icarus_vectors, ToolError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use systole_core::isa::{Band, Op, WordGen};
use systole_core::{ArchConfig, Dataflow};
use systole_hdl::exec_os::ExecOs;
use systole_hdl::exec_ws::ExecWs;
use systole_hdl::fields::MatmulFields;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_hdl::wiring::field_bits;

/// Activation words in the test engines.
pub const ACT_WORDS: usize = 48;
/// Weight words.
pub const WGT_WORDS: usize = 24;
/// Accumulator rows.
pub const ACC_ROWS: usize = 24;

/// Instruction field ports shared by both engines, in stimulus order.
const COMMON: [(&str, usize); 8] = [
    ("start", 1),
    ("a_start", 24),
    ("a_inner_count", 24),
    ("a_inner_stride", 24),
    ("a_outer_count", 24),
    ("a_outer_stride", 24),
    ("acc", 24),
    ("accumulate", 1),
];

/// A random instruction sequence for one engine.
pub struct ExecCase {
    /// Array size and dataflow (memories are the constants above).
    pub arch: ArchConfig,
    /// Activation scratchpad contents.
    pub act: Vec<Vec<i8>>,
    /// Weight scratchpad contents.
    pub wgt: Vec<Vec<i8>>,
    /// `MatmulWs` or `MatmulOs` instructions, issued back to back.
    pub ops: Vec<Op>,
}

fn random_band(rng: &mut ChaCha8Rng, cols: usize) -> Band {
    Band { stride: rng.gen_range(1..=3), taps: rng.gen_range(0..=cols as u32), width: rng.gen_range(0..=cols as u32) }
}

impl ExecCase {
    /// `n` random instructions on a `rows x cols` engine.
    pub fn random(dataflow: Dataflow, rows: usize, cols: usize, n: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let act = (0..ACT_WORDS).map(|_| (0..rows).map(|_| rng.gen()).collect()).collect();
        let wgt = (0..WGT_WORDS).map(|_| (0..cols).map(|_| rng.gen()).collect()).collect();
        let os = dataflow == Dataflow::OutputStationary;
        let mut ops = vec![];
        for i in 0..n {
            let (ic, oc) =
                if os { (rng.gen_range(0..7u32), rng.gen_range(0..3u32)) } else { (rng.gen_range(0..4u32), rng.gen_range(0..3u32)) };
            let (is, ost) = (rng.gen_range(0..4u32), rng.gen_range(0..6u32));
            let span = ic.saturating_sub(1) * is + oc.saturating_sub(1) * ost;
            let a = WordGen {
                start: rng.gen_range(0..ACT_WORDS as u32 - span),
                inner_count: ic,
                inner_stride: is,
                outer_count: oc,
                outer_stride: ost,
            };
            let (accumulate, m) = (rng.gen_bool(0.5), a.len() as usize);
            ops.push(if os {
                let band = rng.gen_bool(0.3).then(|| random_band(&mut rng, cols));
                let b = rng.gen_range(0..=(WGT_WORDS - if band.is_some() { 1 } else { m }) as u32);
                Op::MatmulOs { a, b, acc: rng.gen_range(0..=(ACC_ROWS - rows) as u32), accumulate, band }
            } else {
                let preload = (i == 0 || rng.gen_bool(0.6)).then(|| rng.gen_range(0..=(WGT_WORDS - rows) as u32));
                let band = (preload.is_some() && rng.gen_bool(0.4)).then(|| random_band(&mut rng, cols));
                Op::dense_ws(a, rng.gen_range(0..=(ACC_ROWS - m) as u32), accumulate, preload, band)
            });
        }
        let arch = ArchConfig { rows, cols, dataflow, ..ArchConfig::preset_4x4() };
        ExecCase { arch, act, wgt, ops }
    }

    fn os(&self) -> bool {
        self.arch.dataflow == Dataflow::OutputStationary
    }

    /// The accumulator after all instructions, from the ISA's semantics.
    pub fn reference(&self) -> Vec<Vec<i32>> {
        let (rows, cols) = (self.arch.rows, self.arch.cols);
        let mut acc = vec![vec![0i32; cols]; ACC_ROWS];
        let mut active = vec![vec![0i32; cols]; rows];
        let weight = |p: usize, band: Option<Band>, k: usize, j: usize| match band {
            Some(b) => b.at(&self.wgt[p], k, j) as i32,
            None => self.wgt[p + k][j] as i32,
        };
        for op in &self.ops {
            match *op {
                Op::MatmulWs { a, acc: base, accumulate, preload, band, .. } => {
                    for (m, w) in a.addrs().enumerate() {
                        for (j, out) in acc[base as usize + m].iter_mut().enumerate() {
                            let dot = (0..rows).fold(0i32, |s, k| s.wrapping_add(self.act[w as usize][k] as i32 * active[k][j]));
                            *out = if accumulate { out.wrapping_add(dot) } else { dot };
                        }
                    }
                    if let Some(p) = preload {
                        active = (0..rows).map(|k| (0..cols).map(|j| weight(p as usize, band, k, j)).collect()).collect();
                    }
                }
                Op::MatmulOs { a, b, acc: base, accumulate, band } => {
                    for i in 0..rows {
                        for (j, out) in acc[base as usize + i].iter_mut().enumerate() {
                            let dot = a.addrs().enumerate().fold(0i32, |s, (t, w)| {
                                let wt = match band {
                                    Some(bd) => bd.at(&self.wgt[b as usize], t, j) as i32,
                                    None => self.wgt[b as usize + t][j] as i32,
                                };
                                s.wrapping_add(self.act[w as usize][i] as i32 * wt)
                            });
                            *out = if accumulate { out.wrapping_add(dot) } else { dot };
                        }
                    }
                }
                _ => unreachable!("exec cases hold only matmuls"),
            }
        }
        acc
    }

    /// The engine's input ports, in stimulus order.
    pub fn ports(&self) -> Vec<(String, usize)> {
        let (rows, cols) = (self.arch.rows, self.arch.cols);
        let mut p: Vec<(String, usize)> = COMMON.iter().map(|&(n, b)| (n.to_string(), b)).collect();
        let specific: &[(&str, usize)] =
            if self.os() { &[("b", 24), ("band_valid", 1)] } else { &[("preload_valid", 1), ("preload", 24), ("band_valid", 1)] };
        p.extend(specific.iter().map(|&(n, b)| (n.to_string(), b)));
        p.extend([("band_stride", 8), ("band_taps", 16), ("band_width", 16)].map(|(n, b)| (n.to_string(), b)));
        for (port, lanes) in [("act", rows), ("wgt", cols)] {
            p.extend((0..lanes).map(|k| (format!("host_{port}_we${k}"), 1)));
            p.push((format!("host_{port}_addr"), 24));
            p.extend((0..lanes).map(|k| (format!("host_{port}_data${k}"), 8)));
        }
        p.push(("host_acc_addr".to_string(), 24));
        p
    }

    fn fields(&self, op: &Op) -> Vec<i64> {
        let (a, acc, accumulate, rest) = match *op {
            Op::MatmulWs { a, acc, accumulate, preload, band, .. } => {
                let b = band.unwrap_or(Band { stride: 0, taps: 0, width: 0 });
                (a, acc, accumulate, vec![preload.is_some() as u32, preload.unwrap_or(0), band.is_some() as u32, b.stride, b.taps, b.width])
            }
            Op::MatmulOs { a, b, acc, accumulate, band } => {
                let bd = band.unwrap_or(Band { stride: 0, taps: 0, width: 0 });
                (a, acc, accumulate, vec![b, band.is_some() as u32, bd.stride, bd.taps, bd.width])
            }
            _ => unreachable!("exec cases hold only matmuls"),
        };
        [1, a.start, a.inner_count, a.inner_stride, a.outer_count, a.outer_stride, acc, accumulate as u32]
            .into_iter()
            .chain(rest)
            .map(|x| x as i64)
            .collect()
    }

    /// The stimulus (one row of port values per cycle), the cycle of the first start, and
    /// the cycles (relative to it) of every completion pulse: `done - 1` of the timing model.
    pub fn stimulus(&self) -> (Vec<Vec<i64>>, usize, Vec<u64>) {
        let ports = self.ports();
        let col = |name: &str| ports.iter().position(|(n, _)| n == name).expect("port");
        let (act_we, wgt_we) = (col("host_act_we$0"), col("host_wgt_we$0"));
        let mut stim = Stimulus::new(ports.len());
        for i in 0..ACT_WORDS.max(WGT_WORDS) {
            let v = stim.push();
            for (we, mem) in [(act_we, &self.act), (wgt_we, &self.wgt)] {
                if let Some(r) = mem.get(i) {
                    let lanes = r.len();
                    v[we..we + lanes].fill(1);
                    v[we + lanes] = i as i64;
                    for (k, &x) in r.iter().enumerate() {
                        v[we + lanes + 1 + k] = x as i64;
                    }
                }
            }
        }
        let (t0, done) = stim.instructions(&self.arch, &self.ops, |op| self.fields(op));
        for r in 0..=ACC_ROWS {
            *stim.push().last_mut().expect("ports") = r.min(ACC_ROWS - 1) as i64;
        }
        (stim.rows, t0, done)
    }

    /// From per-cycle outputs `[complete, host_acc_data...]`: the accumulator read back and
    /// the completion cycles relative to `t0`.
    pub fn observed(outs: &[Vec<i64>], t0: usize) -> (Vec<Vec<i32>>, Vec<u64>) {
        let n = outs.len();
        let acc = outs[n - ACC_ROWS..].iter().map(|o| o[1..].iter().map(|&x| x as i32).collect()).collect();
        (acc, completions(outs[..n - ACC_ROWS - 1].iter().map(|o| o[0] != 0), t0))
    }

    /// Per-cycle outputs from rust-hdl's simulator.
    pub fn run_rust_hdl(&self, stim: &[Vec<i64>]) -> Vec<Vec<i64>> {
        let (rows, cols) = (self.arch.rows, self.arch.cols);
        if self.os() {
            let mut uut = ExecOs::new(rows, cols, ACT_WORDS, WGT_WORDS, ACC_ROWS);
            uut.connect_all();
            stim.iter()
                .map(|v| {
                    apply_os(&mut uut, v);
                    sample(&mut uut, v[0] != 0, |u| (u.ready.val(), u.complete.val(), &u.host_acc_data), |u| &mut u.clock)
                })
                .collect()
        } else {
            let mut uut = ExecWs::new(rows, cols, ACT_WORDS, 1, WGT_WORDS, ACC_ROWS);
            uut.connect_all();
            stim.iter()
                .map(|v| {
                    apply_ws(&mut uut, v);
                    sample(&mut uut, v[0] != 0, |u| (u.ready.val(), u.complete.val(), &u.host_acc_data), |u| &mut u.clock)
                })
                .collect()
        }
    }

    /// The engine's Verilog.
    pub fn verilog(&self) -> String {
        engine_verilog(self.arch.dataflow, self.arch.rows, self.arch.cols, [ACT_WORDS, WGT_WORDS, ACC_ROWS])
    }

    /// Per-cycle outputs from the Verilog under Icarus (unknown values become `i64::MIN`).
    pub fn run_verilog(&self, dir: &Path, stim: &[Vec<i64>]) -> Result<Vec<Vec<i64>>, ToolError> {
        let mut outputs = vec![("complete".to_string(), 1)];
        outputs.extend((0..self.arch.cols).map(|j| (format!("host_acc_data${j}"), 32)));
        let rtl = with_field_ports(&self.verilog(), &self.ports(), &outputs);
        let outs = icarus_vectors(dir, &rtl, true, &self.ports(), &outputs, stim)?;
        Ok(outs.into_iter().map(|o| o.into_iter().map(|v| v.unwrap_or(i64::MIN)).collect()).collect())
    }
}

/// `rtl` (an engine whose `top` takes the instruction as one `fields` bundle) under a new
/// `top` with a port per field among `inputs` (the others 0), placed at the bundle's
/// offsets, and the other `inputs` and `outputs` passed through: the port per field that the
/// vector testbench drives.
fn with_field_ports(rtl: &str, inputs: &[(String, usize)], outputs: &[(String, usize)]) -> String {
    let TypeKind::Composite(fields) = MatmulFields::descriptor().kind else { unreachable!("a bundle is a composite") };
    let mut assembly = String::new();
    for f in &fields {
        if inputs.iter().any(|(n, _)| *n == f.fieldname) {
            let (offset, w) = field_bits::<MatmulFields>(&f.fieldname);
            assembly += &format!("    fields[{offset} +: {w}] = {};\n", f.fieldname);
        }
    }
    let mut ports = vec!["clock".to_string()];
    let mut decls = vec!["  input clock;".to_string()];
    let mut conns = vec![".clock(clock)".to_string(), ".fields(fields)".to_string()];
    let ios = inputs.iter().map(|p| ("input", p)).chain(outputs.iter().map(|p| ("output", p)));
    for (dir, (name, bits)) in ios {
        ports.push(name.clone());
        decls.push(format!("  {dir} [{}:0] {name};", bits - 1));
        if !fields.iter().any(|f| f.fieldname == *name) {
            conns.push(format!(".{name}({name})"));
        }
    }
    format!(
        "{}\nmodule top({});\n{}\n  reg [{}:0] fields;\n  always @(*) begin\n    fields = 0;\n{assembly}  end\n  exec_engine dut({});\nendmodule\n",
        rtl.replacen("module top(", "module exec_engine(", 1),
        ports.join(", "),
        decls.join("\n"),
        MatmulFields::BITS - 1,
        conns.join(", ")
    )
}

/// The Verilog of the exec engine for `dataflow` with `[act words, weight words, acc rows]`.
pub fn engine_verilog(dataflow: Dataflow, rows: usize, cols: usize, [act, wgt, acc]: [usize; 3]) -> String {
    match dataflow {
        Dataflow::OutputStationary => emit(&mut ExecOs::new(rows, cols, act, wgt, acc)),
        Dataflow::WeightStationary => emit(&mut ExecWs::new(rows, cols, act, 1, wgt, acc)),
        Dataflow::Both => emit(&mut systole_hdl::dual::ExecDual::new(rows, cols, act, 1, wgt, acc)),
    }
}

/// Settles, checks that a start comes only when the engine is ready, reads the outputs and
/// clocks once.
fn sample<B: Block>(
    uut: &mut B,
    starting: bool,
    outputs: impl Fn(&B) -> (bool, bool, &Vec<Signal<Out, Signed<32>>>),
    clock: impl Fn(&mut B) -> &mut Signal<In, Clock>,
) -> Vec<i64> {
    assert!(settle(uut), "engine logic does not settle");
    let (ready, complete, acc) = outputs(uut);
    assert!(!starting || ready, "the timing model starts an instruction while the engine is busy");
    let mut o = vec![complete as i64];
    o.extend(acc.iter().map(|d| -> i64 { d.val().bigint().try_into().expect("int32") }));
    clock_cycle(uut, clock);
    o
}

fn bit(x: i64) -> bool {
    x != 0
}

fn addr(x: i64) -> Bits<24> {
    (x as u64).into()
}

macro_rules! apply_common {
    ($uut:expr, $v:expr, $n:expr) => {{
        let (uut, v, n) = ($uut, $v, $n);
        uut.start.next = bit(v[0]);
        uut.fields.next.a_start = addr(v[1]);
        uut.fields.next.a_inner_count = addr(v[2]);
        uut.fields.next.a_inner_stride = addr(v[3]);
        uut.fields.next.a_outer_count = addr(v[4]);
        uut.fields.next.a_outer_stride = addr(v[5]);
        uut.fields.next.acc = addr(v[6]);
        uut.fields.next.accumulate = bit(v[7]);
        uut.fields.next.band_valid = bit(v[n]);
        uut.fields.next.band_stride = (v[n + 1] as u64).into();
        uut.fields.next.band_taps = (v[n + 2] as u64).into();
        uut.fields.next.band_width = (v[n + 3] as u64).into();
        let h = n + 4;
        let rows = uut.host_act_data.len();
        for k in 0..rows {
            uut.host_act_we[k].next = bit(v[h + k]);
            uut.host_act_data[k].next = v[h + rows + 1 + k].into();
        }
        uut.host_act_addr.next = addr(v[h + rows]);
        let w = h + 2 * rows + 1;
        let cols = uut.host_wgt_data.len();
        for j in 0..cols {
            uut.host_wgt_we[j].next = bit(v[w + j]);
            uut.host_wgt_data[j].next = v[w + cols + 1 + j].into();
        }
        uut.host_wgt_addr.next = addr(v[w + cols]);
        uut.host_acc_addr.next = addr(v[w + 2 * cols + 1]);
    }};
}

fn apply_ws(uut: &mut ExecWs, v: &[i64]) {
    uut.fields.next.preload_valid = bit(v[8]);
    uut.fields.next.preload = addr(v[9]);
    apply_common!(uut, v, 10);
}

fn apply_os(uut: &mut ExecOs, v: &[i64]) {
    uut.fields.next.b = addr(v[8]);
    apply_common!(uut, v, 9);
}
