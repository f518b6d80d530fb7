//! A whole [`Network`] as one [`NetworkProgram`]: every accelerator layer in schedule order
//! on one DRAM image, consecutive layers linked into one instruction stream.
//!
//! ```text
//!  layers compiled alone (mapping, reach)        BufferPlan (schedule order, reuse)
//!          │                                             │
//!          └──► buffers: NHWC, border = the widest of its consumers' padding ◄┘
//!                 │
//!                 ▼  each layer again, framed: same mapping, input/output in the buffers,
//!                    table and weights after the arena, each placed once
//!  link: each layer's Sync counts offset by the instructions before it, plus its waits on
//!        the layers before it (below); a host node or an engine change ends the run
//! ```
//!
//! A layer's own waits cover its own hazards; the linker ([`Linker`]) adds its waits on the
//! layers before it in the run, exactly per accumulator row, table entry and DRAM line from
//! a scoreboard of every instruction's footprint, and for loads into the scratchpads on
//! every exec before the layer. Everything else of the next layer (its table and weight
//! loads, its first activation loads once their rows are stored) overlaps the previous
//! layer's tail. The simulator checks every wait: scratchpad words and DRAM lines are
//! race-checked per unit.

use crate::layout::{align, consts_after, Frame, View};
use crate::schedule::plan_sized;
use crate::vector::{consts_size, padding, Kernel, Window};
use crate::CompileError;
use rayon::prelude::*;
use systole_core::arch::VECTOR_TABLE_ENTRIES;
use systole_core::isa::{DramPattern, Instr, Op, Unit};
use systole_core::network::{Network, ValueId};
use systole_core::program::{DramSegment, NetStep, NetworkProgram, RunLayer, TensorPlacement, DRAM_LINE};
use systole_core::{ArchConfig, ConfigError, Program};

/// NHWC extents of a value of logical `shape` (NCHW, or `[M, K]` as `[1, 1, M, K]`).
pub fn nhwc_dims(shape: &[usize]) -> Option<[usize; 4]> {
    match *shape {
        [n, c, h, w] => Some([n, h, w, c]),
        [m, k] => Some([1, 1, m, k]),
        _ => None,
    }
}

pub(crate) fn invalid(layer: &str, field: &str, detail: String) -> CompileError {
    CompileError::Invalid { layer: layer.into(), help: None, error: Box::new(ConfigError::new(field, detail)) }
}

/// Builds the network program from each layer's program compiled alone (`alone[node]`,
/// `None` for other nodes, as `systole_runtime::compile` gives them): the same mappings,
/// framed into one DRAM image. Nodes with a vector kernel (`kernels[node]`, see
/// [`crate::vector::kernels`]) run on the vector unit; the others are host steps.
pub fn compile_network(
    arch: &ArchConfig,
    net: &Network,
    alone: &[Option<Program>],
    kernels: &[Option<Vec<Kernel>>],
) -> Result<NetworkProgram, CompileError> {
    let buffers = buffer_shapes(net, alone, kernels)?;
    let sizes: Vec<usize> = buffers.iter().map(|b| b.as_ref().map_or(0, |b| b.size())).collect();
    // A border is written once, before the network runs: a bordered buffer shares space
    // only with buffers of the same shape, border and zero point, whose borders coincide.
    let mut shapes: Vec<([usize; 4], [usize; 4], i8, usize)> = vec![];
    let kinds: Vec<usize> = buffers
        .iter()
        .map(|b| match b {
            Some(b) if b.pad != [0; 4] => {
                let shape = (b.dims, b.pad, b.pad_value, b.tail);
                1 + shapes.iter().position(|s| *s == shape).unwrap_or_else(|| {
                    shapes.push(shape);
                    shapes.len() - 1
                })
            }
            _ => 0,
        })
        .collect();
    let plan = plan_sized(net, &sizes, Some(&kinds));
    let mut buffers = buffers;
    for (v, b) in buffers.iter_mut().enumerate() {
        if let Some(b) = b {
            b.addr = plan.offsets[v] as u64;
        }
    }
    // Constants after the arena, in schedule order.
    let mut consts = align(plan.peak as u64);
    let mut frames = vec![None; net.nodes.len()];
    let mut operands = vec![None; net.nodes.len()];
    for &n in &plan.order {
        if kernels.get(n).is_some_and(Option::is_some) {
            let node = &net.nodes[n];
            let buffer = |v: ValueId| buffers[v].as_ref().expect("vector operands have buffers");
            let parts = crate::vector::operands(
                arch,
                &node.op,
                &node.inputs.iter().map(|&v| buffer(v)).collect::<Vec<_>>(),
                buffer(node.output),
                consts,
            );
            consts += parts.len() as u64 * consts_size(arch);
            operands[n] = Some(parts);
            continue;
        }
        let (Some((layer, _)), Some(program)) = (net.nodes[n].op.layer_data(), &alone[n]) else { continue };
        let node = &net.nodes[n];
        let (input, output) = (buffers[node.inputs[0]].as_ref(), buffers[node.output].as_ref());
        let (input, output) = (input.expect("layer inputs have buffers"), output.expect("layer outputs have buffers"));
        frames[n] = Some(Frame { input: View::inset(input, layer.shape.pad), output: View::interior(output), consts });
        consts += program.dram_size - consts_after(&program.outputs[0]);
    }
    let framed: Vec<Option<Program>> = (0..net.nodes.len())
        .into_par_iter()
        .map(|n| match (&frames[n], net.nodes[n].op.layer_data(), &alone[n]) {
            (Some(frame), Some((layer, data)), Some(p)) => {
                let mapping = p.mapping.expect("compiled layers record their mapping");
                crate::compile_layer_framed(arch, layer, &data, mapping, frame).map(Some)
            }
            _ => match (&operands[n], kernels.get(n).and_then(Option::as_ref)) {
                (Some(parts), Some(kernels)) => {
                    let node = &net.nodes[n];
                    let input = buffers[node.inputs[0]].as_ref().expect("vector operands have buffers").dims;
                    let parts: Vec<_> = kernels.iter().zip(parts.iter().copied()).collect();
                    crate::vector::lower(arch, &node.name, Window::of(&node.op, input), &parts).map(Some)
                }
                _ => Ok(None),
            },
        })
        .collect::<Result<_, _>>()?;
    let mut linker = Linker::new(arch, align(consts));
    let mut dram_init = Vec::new();
    let mut steps = Vec::new();
    for &n in &plan.order {
        match framed[n].as_ref() {
            Some(p) => {
                let layer = &net.nodes[n].name;
                dram_init.extend(p.dram_init.iter().map(|s| DramSegment { name: format!("{layer}: {}", s.name), ..s.clone() }));
                if let Some(run) = linker.add(n, p) {
                    steps.push(run);
                }
            }
            None => {
                steps.extend(linker.finish());
                steps.push(NetStep::Host { node: n });
            }
        }
    }
    steps.extend(linker.finish());
    let dram_size = align(consts);
    for step in &mut steps {
        if let NetStep::Run { program, .. } = step {
            program.dram_size = dram_size;
            // The linker's waits between layers leave their loads and stores free to overlap.
            systole_core::timing::serialize_dram_port(arch, &mut program.instrs);
        }
    }
    Ok(NetworkProgram { arch: arch.name.clone(), dram_size, dram_init, buffers, steps })
}

/// The DRAM buffer of every value a layer reads or writes (addresses still 0): NHWC, with
/// the widest border any consuming layer pads with and the longest reach past its end.
fn buffer_shapes(
    net: &Network,
    alone: &[Option<Program>],
    kernels: &[Option<Vec<Kernel>>],
) -> Result<Vec<Option<TensorPlacement>>, CompileError> {
    fn touch<'b>(
        buffers: &'b mut [Option<TensorPlacement>],
        net: &Network,
        v: ValueId,
        dims: [usize; 4],
        node: &str,
    ) -> Result<&'b mut TensorPlacement, CompileError> {
        let value = &net.values[v];
        if nhwc_dims(&value.shape) != Some(dims) {
            return Err(invalid(
                node,
                "shape",
                format!("value `{}` of shape {:?} is not the layer's NHWC tensor {dims:?}", value.name, value.shape),
            ));
        }
        Ok(buffers[v].get_or_insert_with(|| TensorPlacement {
            name: value.name.clone(),
            dims,
            addr: 0,
            pad: [0; 4],
            pad_value: value.quant.zp,
            tail: 0,
        }))
    }
    let mut buffers: Vec<Option<TensorPlacement>> = vec![None; net.values.len()];
    for (n, node) in net.nodes.iter().enumerate() {
        let (Some((layer, _)), Some(program)) = (node.op.layer_data(), &alone[n]) else { continue };
        let input = touch(&mut buffers, net, node.inputs[0], layer.shape.input_dims(), &node.name)?;
        if input.pad_value != layer.quant.x_zp {
            return Err(invalid(
                &node.name,
                "x_zp",
                format!("the layer pads with {}, its input's zero point is {}", layer.quant.x_zp, input.pad_value),
            ));
        }
        for (b, p) in input.pad.iter_mut().zip(layer.shape.pad) {
            *b = (*b).max(p);
        }
        input.tail = input.tail.max(program.inputs[0].tail);
        touch(&mut buffers, net, node.output, layer.shape.output_dims(), &node.name)?;
    }
    for (n, node) in net.nodes.iter().enumerate() {
        if kernels.get(n).is_none_or(Option::is_none) {
            continue;
        }
        let dims = |v: ValueId| nhwc_dims(&net.values[v].shape).ok_or_else(|| invalid(&node.name, "shape", "not an image".into()));
        let pad = padding(&node.op);
        for (k, &v) in node.inputs.iter().enumerate() {
            let input = touch(&mut buffers, net, v, dims(v)?, &node.name)?;
            if k == 0 {
                for (b, p) in input.pad.iter_mut().zip(pad) {
                    *b = (*b).max(p);
                }
            }
        }
        touch(&mut buffers, net, node.output, dims(node.output)?, &node.name)?;
    }
    Ok(buffers)
}

/// Who last wrote and read each element of a memory, as completed-instruction counts.
#[derive(Clone, Copy, Default)]
struct Use {
    write: Option<(Unit, u32)>,
    read: [u32; 3],
}

/// The memories whose elements the linker tracks exactly.
#[derive(Clone, Copy)]
enum Mem {
    Acc,
    Param,
    Table,
    DramLine,
}

/// The DRAM lines (see [`DRAM_LINE`]) the runs of `pattern` touch.
fn lines(pattern: &DramPattern, mut f: impl FnMut(usize)) {
    if pattern.len == 0 {
        return;
    }
    for addr in pattern.run_addrs() {
        let (first, last) = (addr as usize / DRAM_LINE, (addr as usize + pattern.len as usize - 1) / DRAM_LINE);
        (first..=last).for_each(&mut f);
    }
}

/// Calls `f(memory, element, is_write)` for every accumulator row, table entry and DRAM line
/// `op` touches (a superset where the op's exact set depends on its format).
fn footprint(op: &Op, rows: usize, mut f: impl FnMut(Mem, usize, bool)) {
    match *op {
        Op::Load { src, .. } | Op::LoadTransposed { src, .. } => lines(&src, |l| f(Mem::DramLine, l, false)),
        Op::LoadParams { dst, addr, count } => {
            (dst..dst + count).for_each(|e| f(Mem::Param, e as usize, true));
            let pattern = DramPattern::runs(addr, 8 * count, 1, 0);
            lines(&pattern, |l| f(Mem::DramLine, l, false));
        }
        Op::LoadTable { dst, addr, count } => {
            (dst..dst + count).for_each(|e| f(Mem::Table, e as usize, true));
            lines(&DramPattern::runs(addr, 4 * count, 1, 0), |l| f(Mem::DramLine, l, false));
        }
        Op::Vector { acc, count, .. } => {
            (0..VECTOR_TABLE_ENTRIES).for_each(|e| f(Mem::Table, e, false));
            (acc..acc + count).for_each(|r| f(Mem::Acc, r as usize, true));
        }
        Op::MatmulWs { a, acc, .. } => (acc..acc + a.len()).for_each(|r| f(Mem::Acc, r as usize, true)),
        Op::MatmulOs { acc, .. } => (acc as usize..acc as usize + rows).for_each(|r| f(Mem::Acc, r, true)),
        Op::Store { acc, dst, out } => {
            (acc as usize..acc as usize + dst.num_runs() as usize).for_each(|r| f(Mem::Acc, r, false));
            (out.param..out.param + dst.len).for_each(|e| f(Mem::Param, e as usize, false));
            lines(&dst, |l| f(Mem::DramLine, l, true));
        }
        Op::StoreTransposed { acc, row_stride, line_pitch, width, dst, out } => {
            let blocks = (dst.dims[2].count as usize).div_ceil(width.max(1) as usize);
            for l in 0..dst.lines() as usize {
                for j in 0..dst.len as usize {
                    let row = acc as usize + l * line_pitch as usize + j * row_stride as usize;
                    (row..row + blocks).for_each(|r| f(Mem::Acc, r, false));
                }
            }
            (out.param..out.param + dst.len).for_each(|e| f(Mem::Param, e as usize, false));
            lines(&dst, |l| f(Mem::DramLine, l, true));
        }
    }
}

/// The requantization table entries `instrs` use: one past the highest.
fn param_span(instrs: &[Instr]) -> u32 {
    instrs
        .iter()
        .filter_map(|i| match i.op {
            Op::LoadParams { dst, count, .. } => Some(dst + count),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Joins framed layer programs into runs.
///
/// Each layer's instructions keep their own waits (offset by the instructions before it)
/// and gain waits on the layers before it: exactly, per accumulator row, table entry and
/// DRAM line, from a scoreboard of every instruction's footprint; and, for loads into the
/// scratchpads, on every exec instruction before the layer (their scratchpad reads are not
/// tracked per word). Each layer's table entries move to the part of the table after the
/// previous layer's when they fit there, so its table load need not wait for the previous
/// layer's stores.
struct Linker {
    rows: usize,
    param_entries: u32,
    cols: u32,
    dataflow: Option<systole_core::Dataflow>,
    instrs: Vec<Instr>,
    layers: Vec<RunLayer>,
    macs: u64,
    counts: [u32; 3],
    acc: Vec<Use>,
    params: Vec<Use>,
    tables: Vec<Use>,
    dram: Vec<Use>,
    /// The previous layer's table entries.
    param_end: u32,
    arch: String,
}

impl Linker {
    fn new(arch: &ArchConfig, dram_size: u64) -> Self {
        Self {
            rows: arch.rows,
            param_entries: arch.param_entries as u32,
            cols: arch.cols as u32,
            dataflow: None,
            instrs: vec![],
            layers: vec![],
            macs: 0,
            counts: [0; 3],
            acc: vec![Use::default(); arch.acc_rows()],
            params: vec![Use::default(); arch.param_entries],
            tables: vec![Use::default(); VECTOR_TABLE_ENTRIES],
            dram: vec![Use::default(); (dram_size as usize).div_ceil(DRAM_LINE)],
            param_end: 0,
            arch: arch.name.clone(),
        }
    }

    /// Appends layer `node`'s program; a finished run first if the layer needs another
    /// engine than the run's.
    fn add(&mut self, node: usize, p: &Program) -> Option<NetStep> {
        // A vector op (no mapping) runs beside either engine.
        let dataflow = p.mapping.map(|m| m.dataflow()).or(self.dataflow);
        let done = if self.dataflow.is_some() && dataflow != self.dataflow { self.finish() } else { None };
        self.dataflow = dataflow;
        let base = self.counts;
        let execs_before = base[Unit::Exec.index()];
        let span = param_span(&p.instrs);
        let after = self.param_end.div_ceil(self.cols) * self.cols;
        let shift = if after + span <= self.param_entries { after } else { 0 };
        self.param_end = shift + span;
        let first = self.instrs.len();
        for ins in &p.instrs {
            let mut op = ins.op;
            match &mut op {
                Op::LoadParams { dst, .. } => *dst += shift,
                Op::Store { out, .. } | Op::StoreTransposed { out, .. } => out.param += shift,
                _ => {}
            }
            let mut sync = ins.sync;
            for u in Unit::ALL {
                let s = sync.on_mut(u);
                if *s > 0 {
                    *s += base[u.index()];
                }
            }
            let unit = op.unit();
            if let Op::Load { .. } | Op::LoadTransposed { .. } = op {
                sync.exec = sync.exec.max(execs_before);
            }
            let n = self.counts[unit.index()] + 1;
            let (acc, params, tables, dram) = (&mut self.acc, &mut self.params, &mut self.tables, &mut self.dram);
            footprint(&op, self.rows, |mem, e, write| {
                let slot = match mem {
                    Mem::Acc => &mut acc[e],
                    Mem::Param => &mut params[e],
                    Mem::Table => &mut tables[e],
                    Mem::DramLine => &mut dram[e],
                };
                if let Some((w, count)) = slot.write {
                    if w != unit {
                        let s = sync.on_mut(w);
                        *s = (*s).max(count);
                    }
                }
                if write {
                    for v in Unit::ALL.into_iter().filter(|&v| v != unit) {
                        let s = sync.on_mut(v);
                        *s = (*s).max(slot.read[v.index()]);
                    }
                    slot.write = Some((unit, n));
                } else {
                    slot.read[unit.index()] = n;
                }
            });
            self.counts[unit.index()] = n;
            self.instrs.push(Instr { sync, op });
        }
        self.macs += p.macs;
        self.layers.push(RunLayer { node, first, end: self.instrs.len(), macs: p.macs });
        done
    }

    /// The run so far, if any; the linker starts a new one (a host step or another engine
    /// may have touched everything since).
    fn finish(&mut self) -> Option<NetStep> {
        self.dataflow = None;
        self.counts = [0; 3];
        self.param_end = 0;
        for table in [&mut self.acc, &mut self.params, &mut self.tables, &mut self.dram] {
            table.fill(Use::default());
        }
        if self.layers.is_empty() {
            return None;
        }
        let program = Program {
            arch: self.arch.clone(),
            instrs: std::mem::take(&mut self.instrs),
            dram_size: 0,
            dram_init: vec![],
            inputs: vec![],
            outputs: vec![],
            macs: std::mem::take(&mut self.macs),
            mapping: None,
        };
        Some(NetStep::Run { program, layers: std::mem::take(&mut self.layers) })
    }
}
