//! The RTL rungs of the co-simulation ladder: a compiled [`Program`] run on the whole
//! accelerator ([`crate::system::System`]) in rust-hdl's simulator and as Verilog under
//! Icarus, driven through the host ports exactly as a board's host bridge would: DRAM image
//! in, instructions in, `run`, wait for `finished`, output regions out.
//!
//! Both rungs consume the same per-cycle [`HostScript`] and produce an [`RtlRun`], which
//! [`compare`] checks against the simulator: every output byte, the program's total cycle
//! count, and every instruction's completion cycle (the first divergence is reported).

use crate::system::System;
use crate::tools::{Simulator, ToolError, VectorRun};
use crate::LadderError;
use std::path::Path;
use std::time::Duration;
use systole_core::isa::Unit;
use systole_core::isa::INSTR_WORDS;
use systole_core::timing::InstrTiming;
use systole_core::{ArchConfig, Program, Tensor};
use systole_hdl::controller::{InstrFormat, CYCLE_BITS};
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, emit, settle};
use systole_hdl::DRAM_ADDR_BITS;

/// The host's side of one program run, one row of input values per cycle.
pub struct HostScript {
    /// Input ports of [`System`] (name, bits), in row order.
    pub ports: Vec<(String, usize)>,
    /// The rows.
    pub rows: Vec<Vec<i64>>,
    /// Row of the `run` pulse; program cycle 0 is the next row.
    run_row: usize,
    /// `(row, first byte)` of every DRAM read-back beat; its data shows in the next row.
    reads: Vec<(usize, u64)>,
    lanes: usize,
    /// Bytes of DRAM the system needs: the image and, with an instruction queue, the
    /// streamed instructions after it.
    pub dram_bytes: usize,
}

/// Output ports of [`System`] the script observes, in column order.
fn observed(lanes: usize) -> Vec<(String, usize)> {
    let mut o = vec![("running".to_string(), 1), ("finished".to_string(), 1), ("cycles".to_string(), CYCLE_BITS)];
    o.extend((0..3).map(|u| (format!("unit_done${u}"), 1)));
    o.extend((0..lanes).map(|i| (format!("host_dram_rdata${i}"), 8)));
    o
}

/// Instructions per unit, in program order within each unit, packed as the controller of
/// `arch`'s [`System`] holds them.
fn by_unit(arch: &ArchConfig, program: &Program) -> [Vec<[u64; INSTR_WORDS]>; 3] {
    let format = InstrFormat::new(arch, instr_depth(program), DRAM_ADDR_BITS);
    let mut units: [Vec<[u64; INSTR_WORDS]>; 3] = Default::default();
    for ins in &program.instrs {
        let unit = ins.op.unit();
        units[unit.index()].push(format.pack(unit, &ins.encode().expect("compiled programs encode")));
    }
    units
}

/// With an instruction queue of `Q` (`arch.instr_queue`), the instructions the fetcher
/// streams: every unit's instructions from its `Q`-th on, in program order, as the 64
/// little-endian bytes of their packed images (`systole_hdl::fetch::Fetcher`).
pub fn instruction_stream(arch: &ArchConfig, program: &Program) -> Vec<u8> {
    let Some(queue) = arch.instr_queue else { return vec![] };
    let format = InstrFormat::new(arch, instr_depth(program), DRAM_ADDR_BITS);
    let mut seen = [0usize; 3];
    let mut bytes = vec![];
    for ins in &program.instrs {
        let unit = ins.op.unit();
        seen[unit.index()] += 1;
        if seen[unit.index()] > queue {
            for w in format.pack(unit, &ins.encode().expect("compiled programs encode")) {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
        }
    }
    bytes
}

/// The host port's writes for `units`: `(unit, index, words)` for each of an instruction's
/// `parts` parts (see `systole_hdl::controller::Controller`), the first `preload` of each.
fn part_writes(units: &[Vec<[u64; INSTR_WORDS]>; 3], parts: usize, preload: usize) -> Vec<(usize, usize, Vec<u64>)> {
    let lanes = INSTR_WORDS / parts;
    let mut writes = vec![];
    for (u, list) in units.iter().enumerate() {
        for (i, w) in list.iter().take(preload).enumerate() {
            for (k, part) in w.chunks(lanes).enumerate() {
                writes.push((u, i * parts + k, part.to_vec()));
            }
        }
    }
    writes
}

impl HostScript {
    /// Loads `dram` (the initial image) and `program`, runs it for at most `budget` cycles,
    /// and reads back every output region. With an instruction queue the host writes each
    /// unit's first `Q` instructions and places the [`instruction_stream`] in DRAM after
    /// the image, 64-byte aligned.
    pub fn new(arch: &ArchConfig, program: &Program, dram: &[u8], budget: u64) -> Self {
        let lanes = arch.dram_bytes_per_cycle;
        let stream = instruction_stream(arch, program);
        let stream_addr = dram.len().next_multiple_of(64);
        let mut image = dram.to_vec();
        if !stream.is_empty() {
            image.resize(stream_addr, 0);
            image.extend_from_slice(&stream);
        }
        let dram = &image[..];
        let mut ports = vec![("host_we".to_string(), 1), ("host_unit".to_string(), 2), ("host_index".to_string(), 24)];
        ports.extend((0..INSTR_WORDS / arch.fetch_cycles).map(|w| (format!("host_word${w}"), 64)));
        ports.push(("run".to_string(), 1));
        ports.extend((0..3).map(|u| (format!("count${u}"), 24)));
        if arch.instr_queue.is_some() {
            ports.extend([("stream_addr$0".to_string(), 32), ("stream_count$0".to_string(), 24)]);
        }
        ports.push(("host_dram".to_string(), 1));
        ports.extend((0..lanes).map(|i| (format!("host_dram_we${i}"), 1)));
        ports.push(("host_dram_addr".to_string(), 32));
        ports.extend((0..lanes).map(|i| (format!("host_dram_data${i}"), 8)));
        let col = |name: &str| ports.iter().position(|(n, _)| n == name).expect("port");
        let (we, unit, index, word, run, count) =
            (col("host_we"), col("host_unit"), col("host_index"), col("host_word$0"), col("run"), col("count$0"));
        let (hd, dwe, daddr, ddata) = (col("host_dram"), col("host_dram_we$0"), col("host_dram_addr"), col("host_dram_data$0"));
        let width = ports.len();
        let units = by_unit(arch, program);
        let instrs = part_writes(&units, arch.fetch_cycles, arch.instr_queue.unwrap_or(usize::MAX));
        // The DRAM model starts zeroed: only non-zero beats need writing.
        let beats: Vec<(usize, &[u8])> = dram.chunks(lanes).enumerate().filter(|(_, c)| c.iter().any(|&b| b != 0)).collect();
        let mut rows = vec![];
        for r in 0..beats.len().max(instrs.len()) {
            let mut v = vec![0i64; width];
            v[hd] = 1;
            if let Some(&(chunk, bytes)) = beats.get(r) {
                v[daddr] = (chunk * lanes) as i64;
                for (i, &b) in bytes.iter().enumerate() {
                    v[dwe + i] = 1;
                    v[ddata + i] = b as i8 as i64;
                }
            }
            if let Some((u, i, w)) = instrs.get(r) {
                (v[we], v[unit], v[index]) = (1, *u as i64, *i as i64);
                for (k, &x) in w.iter().enumerate() {
                    v[word + k] = x as i64;
                }
            }
            rows.push(v);
        }
        let run_row = rows.len();
        let mut v = vec![0i64; width];
        v[run] = 1;
        for (u, list) in units.iter().enumerate() {
            v[count + u] = list.len() as i64;
        }
        if arch.instr_queue.is_some() {
            v[col("stream_addr$0")] = stream_addr as i64;
            v[col("stream_count$0")] = (stream.len() / 64) as i64;
        }
        rows.push(v);
        rows.extend((0..budget + 1).map(|_| vec![0i64; width]));
        let mut reads = vec![];
        for p in &program.outputs {
            for a in (p.addr..p.addr + p.size() as u64).step_by(lanes) {
                let mut v = vec![0i64; width];
                (v[hd], v[daddr]) = (1, a as i64);
                reads.push((rows.len(), a));
                rows.push(v);
            }
        }
        rows.push(vec![0i64; width]);
        Self { ports, rows, run_row, reads, lanes, dram_bytes: dram.len().max(1) }
    }

    /// What the per-cycle outputs (columns of [`observed`]) say about the run, with the
    /// initial DRAM image `dram` completed by the bytes read back.
    fn interpret(&self, outs: &[Vec<Option<i64>>], program: &Program, dram: &[u8]) -> RtlRun {
        let program_rows = &outs[self.run_row + 1..self.reads.first().map_or(outs.len(), |r| r.0)];
        let completions =
            std::array::from_fn(|u| program_rows.iter().enumerate().filter(|(_, o)| o[3 + u] == Some(1)).map(|(t, _)| t as u64).collect());
        let last = program_rows.last();
        let finished = last.is_some_and(|o| o[1] == Some(1));
        let cycles = if finished { last.and_then(|o| o[2]).map(|c| c as u64) } else { None };
        let mut image = dram.to_vec();
        for &(row, addr) in &self.reads {
            for i in 0..self.lanes {
                if let Some(b) = image.get_mut(addr as usize + i) {
                    *b = outs[row + 1][6 + i].unwrap_or(0) as u8;
                }
            }
        }
        RtlRun { outputs: program.outputs.iter().map(|p| p.read(&image)).collect(), cycles, completions }
    }
}

/// What one RTL run produced.
#[derive(Debug)]
pub struct RtlRun {
    /// The output tensors read back from DRAM.
    pub outputs: Vec<Tensor>,
    /// The controller's cycle count, if the program finished within the budget.
    pub cycles: Option<u64>,
    /// Per unit, the program cycles in which an instruction completed (`done - 1`).
    pub completions: [Vec<u64>; 3],
}

/// Runs `script` on `arch`'s [`System`] in rust-hdl's simulator.
pub fn run_rust_hdl(arch: &ArchConfig, program: &Program, dram: &[u8], script: &HostScript) -> RtlRun {
    let mut sys = System::new(arch, instr_depth(program), script.dram_bytes);
    sys.connect_all();
    let outs: Vec<Vec<Option<i64>>> = script
        .rows
        .iter()
        .map(|v| {
            apply(&mut sys, &script.ports, v);
            assert!(settle(&mut sys), "accelerator logic does not settle");
            let mut o = vec![Some(sys.running.val() as i64), Some(sys.finished.val() as i64), Some(sys.cycles.val().to_u64() as i64)];
            o.extend(sys.unit_done.iter().map(|d| Some(d.val() as i64)));
            o.extend(sys.host_dram_rdata.iter().map(|d| d.val().bigint().try_into().ok()));
            clock_cycle(&mut sys, |s| &mut s.clock);
            o
        })
        .collect();
    script.interpret(&outs, program, dram)
}

/// Runs `script` on the Verilog of `arch`'s [`System`] under `sim`, in `dir`; also returns
/// the wall time of the simulation run (without its build).
pub fn run_verilog(
    sim: Simulator,
    arch: &ArchConfig,
    program: &Program,
    dram: &[u8],
    script: &HostScript,
    dir: &Path,
) -> Result<(RtlRun, Duration), ToolError> {
    let rtl = emit(&mut System::new(arch, instr_depth(program), script.dram_bytes));
    let outputs = observed(arch.dram_bytes_per_cycle);
    let run = VectorRun { dir, rtl: &rtl, clocked: true, inputs: &script.ports, outputs: &outputs, volatile: &[2] };
    let (outs, elapsed) = run.run(sim, &script.rows)?;
    Ok((script.interpret(&outs, program, dram), elapsed))
}

/// Instruction memory depth that holds `program`: its largest unit's count.
pub fn instr_depth(program: &Program) -> usize {
    Unit::ALL.iter().map(|&u| program.count(u)).max().unwrap_or(0).max(1)
}

fn apply(sys: &mut System, ports: &[(String, usize)], v: &[i64]) {
    for ((name, _), &x) in ports.iter().zip(v) {
        let (base, lane) = match name.split_once('$') {
            Some((b, l)) => (b, l.parse::<usize>().expect("lane")),
            None => (name.as_str(), 0),
        };
        match base {
            "host_we" => sys.host_we.next = x != 0,
            "host_unit" => sys.host_unit.next = (x as u64).into(),
            "host_index" => sys.host_index.next = (x as u64).into(),
            "host_word" => sys.host_word[lane].next = (x as u64).into(),
            "run" => sys.run.next = x != 0,
            "count" => sys.count[lane].next = (x as u64).into(),
            "stream_addr" => sys.stream_addr[lane].next = (x as u64).into(),
            "stream_count" => sys.stream_count[lane].next = (x as u64).into(),
            "host_dram" => sys.host_dram.next = x != 0,
            "host_dram_we" => sys.host_dram_we[lane].next = x != 0,
            "host_dram_addr" => sys.host_dram_addr.next = (x as u64).into(),
            "host_dram_data" => sys.host_dram_data[lane].next = x.into(),
            _ => unreachable!("HostScript lists only System's inputs"),
        }
    }
}

/// Checks an RTL run against the simulator's outputs and instruction timing; `Err` names
/// the first differing output element or the first diverging completion.
pub fn compare(program: &Program, expected: &[Tensor], timing: &[InstrTiming], total: u64, rtl: &RtlRun) -> Result<(), LadderError> {
    for (u, unit) in Unit::ALL.iter().enumerate() {
        let model: Vec<(usize, u64)> = timing.iter().enumerate().filter(|(_, t)| t.unit == *unit).map(|(i, t)| (i, t.done - 1)).collect();
        for (k, &(i, want)) in model.iter().enumerate() {
            match rtl.completions[u].get(k) {
                Some(&got) if got == want => {}
                got => {
                    return Err(LadderError::Mismatch(format!(
                        "{unit:?} instruction #{k} (program index {i}: {}) completes in cycle {} in the RTL, {want} in the timing model",
                        program.instrs[i],
                        got.map_or("never".to_string(), |g| g.to_string())
                    )))
                }
            }
        }
    }
    if rtl.cycles != Some(total) {
        return Err(LadderError::Mismatch(format!(
            "the RTL's cycle counter reads {}, the simulator's total is {total}",
            rtl.cycles.map_or("nothing (not finished)".to_string(), |c| c.to_string())
        )));
    }
    if expected.len() != rtl.outputs.len() {
        return Err(LadderError::Mismatch(format!("{} expected outputs, {} read from the RTL", expected.len(), rtl.outputs.len())));
    }
    for (t, (want, got)) in expected.iter().zip(&rtl.outputs).enumerate() {
        if let Some((idx, s, r)) = want.first_mismatch(got) {
            return Err(LadderError::Mismatch(format!("output {t}: first mismatch at NHWC {idx:?}: simulator {s}, RTL {r}")));
        }
    }
    Ok(())
}

/// Every rung's view of one layer case.
pub struct Ladder {
    /// Golden output.
    pub golden: Tensor,
    /// Simulator output.
    pub sim: Tensor,
    /// The simulator's total cycles.
    pub cycles: u64,
    /// The compiled program.
    pub program: Program,
    /// The initial DRAM image (program constants and the input).
    pub dram: Vec<u8>,
    /// The timing model's schedule.
    pub timing: Vec<InstrTiming>,
}

impl Ladder {
    /// Rungs 1 and 2: golden, then compiler + simulator, which must agree bit for bit.
    pub fn new(
        arch: &ArchConfig,
        layer: &systole_core::layer::Layer,
        data: &systole_core::workload::LayerData,
    ) -> Result<Self, LadderError> {
        Self::with_choice(arch, layer, data, systole_mappings::search::Choice::Best(Default::default()))
    }

    /// [`Ladder::new`] with the mapping `choice` picks.
    pub fn with_choice(
        arch: &ArchConfig,
        layer: &systole_core::layer::Layer,
        data: &systole_core::workload::LayerData,
        choice: systole_mappings::search::Choice,
    ) -> Result<Self, LadderError> {
        let o = crate::golden_vs_sim_with(arch, layer, data, choice)?;
        if let Some(m) = o.mismatch() {
            return Err(LadderError::Mismatch(format!("golden vs sim: {m}")));
        }
        let dram = o.program.dram_with_inputs(&[&data.input]);
        Ok(Self { golden: o.golden, sim: o.sim, cycles: o.report.cycles, program: o.program, dram, timing: o.timing })
    }

    /// The host script for the RTL rungs, with a cycle budget 1/8 above the simulator's
    /// total (an RTL that runs longer is reported as not finished).
    pub fn script(&self, arch: &ArchConfig) -> HostScript {
        HostScript::new(arch, &self.program, &self.dram, self.cycles + self.cycles / 8 + 64)
    }

    /// Checks an RTL run against rung 2.
    pub fn check(&self, rtl: &RtlRun) -> Result<(), LadderError> {
        compare(&self.program, std::slice::from_ref(&self.sim), &self.timing, self.cycles, rtl)
    }
}
