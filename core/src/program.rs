//! A compiled program: instructions plus the DRAM image and tensor placements the host needs.

use crate::isa::{Instr, Unit};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fmt::Write as _;

/// DRAM is checked for races in lines of this many bytes (the simulator) and the compiler
/// aligns every buffer to it, so that no two buffers share a line.
pub const DRAM_LINE: usize = 64;

/// Where an NHWC tensor lives in DRAM. The buffer may carry a border of `pad` pixels filled
/// with `pad_value` (the compiler reads padded inputs without bounds checks) and `tail`
/// spare bytes after it that windows may over-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorPlacement {
    /// Tensor name.
    pub name: String,
    /// Logical NHWC extents.
    pub dims: [usize; 4],
    /// Byte address of pixel (0, 0, 0) of the padded buffer.
    pub addr: u64,
    /// Border: top, left, bottom, right.
    pub pad: [usize; 4],
    /// Value of border bytes.
    pub pad_value: i8,
    /// Spare bytes after the buffer.
    pub tail: usize,
}

impl TensorPlacement {
    /// Padded height.
    pub fn hp(&self) -> usize {
        self.dims[1] + self.pad[0] + self.pad[2]
    }
    /// Padded width.
    pub fn wp(&self) -> usize {
        self.dims[2] + self.pad[1] + self.pad[3]
    }
    /// Bytes between consecutive padded rows.
    pub fn row_pitch(&self) -> usize {
        self.wp() * self.dims[3]
    }
    /// Bytes between images.
    pub fn image_pitch(&self) -> usize {
        self.hp() * self.row_pitch()
    }
    /// Total bytes including border and tail.
    pub fn size(&self) -> usize {
        self.dims[0] * self.image_pitch() + self.tail
    }
    /// Byte address of element `(n, y, x, c)` of the padded buffer (border coordinates).
    pub fn padded_addr(&self, n: usize, y: usize, x: usize, c: usize) -> u64 {
        self.addr + (n * self.image_pitch() + y * self.row_pitch() + x * self.dims[3] + c) as u64
    }

    /// Writes `t` (and the border) into `dram`.
    pub fn write(&self, dram: &mut [u8], t: &Tensor) {
        assert_eq!(t.dims, self.dims, "tensor {} dims", self.name);
        let base = self.addr as usize;
        dram[base..base + self.size()].fill(self.pad_value as u8);
        let c = self.dims[3];
        for n in 0..self.dims[0] {
            for y in 0..self.dims[1] {
                let src = t.index([n, y, 0, 0]);
                let dst = self.padded_addr(n, y + self.pad[0], self.pad[1], 0) as usize;
                let w = self.dims[2] * c;
                for (d, s) in dram[dst..dst + w].iter_mut().zip(&t.data[src..src + w]) {
                    *d = *s as u8;
                }
            }
        }
    }

    /// Reads the logical tensor back from `dram`.
    pub fn read(&self, dram: &[u8]) -> Tensor {
        let mut t = Tensor::filled(self.dims, 0);
        let c = self.dims[3];
        for n in 0..self.dims[0] {
            for y in 0..self.dims[1] {
                let dst = t.index([n, y, 0, 0]);
                let src = self.padded_addr(n, y + self.pad[0], self.pad[1], 0) as usize;
                let w = self.dims[2] * c;
                for (d, s) in t.data[dst..dst + w].iter_mut().zip(&dram[src..src + w]) {
                    *d = *s as i8;
                }
            }
        }
        t
    }
}

/// Bytes the host writes into DRAM before starting (weights, requantization tables).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DramSegment {
    /// What it holds.
    pub name: String,
    /// Byte address.
    pub addr: u64,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// A program for one [`crate::ArchConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Name of the architecture it was compiled for.
    pub arch: String,
    /// Instructions in program order (each unit executes its own subsequence in order).
    pub instrs: Vec<Instr>,
    /// Bytes of DRAM the program addresses.
    pub dram_size: u64,
    /// Constant DRAM contents.
    pub dram_init: Vec<DramSegment>,
    /// Input tensors the host must place.
    pub inputs: Vec<TensorPlacement>,
    /// Output tensors the host reads back.
    pub outputs: Vec<TensorPlacement>,
    /// Useful multiply-accumulates of the work compiled.
    pub macs: u64,
    /// The mapping the compiler chose (None for hand-built programs).
    #[serde(default)]
    pub mapping: Option<crate::mapping::Mapping>,
}

impl Program {
    /// Instruction count per unit.
    pub fn count(&self, unit: Unit) -> usize {
        self.instrs.iter().filter(|i| i.op.unit() == unit).count()
    }

    /// A zeroed DRAM image with the constant segments written.
    pub fn initial_dram(&self) -> Vec<u8> {
        let mut dram = vec![0u8; self.dram_size as usize];
        for s in &self.dram_init {
            dram[s.addr as usize..s.addr as usize + s.bytes.len()].copy_from_slice(&s.bytes);
        }
        dram
    }

    /// The DRAM image at program start: [`Program::initial_dram`] with `inputs` written to
    /// their placements.
    pub fn dram_with_inputs(&self, inputs: &[&Tensor]) -> Vec<u8> {
        let mut dram = self.initial_dram();
        for (placement, t) in self.inputs.iter().zip(inputs) {
            placement.write(&mut dram, t);
        }
        dram
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "; program for {}, {} bytes of DRAM, {} MACs", self.arch, self.dram_size, self.macs)?;
        for s in &self.dram_init {
            writeln!(f, "; dram[{:#x}..{:#x}] {}", s.addr, s.addr + s.bytes.len() as u64, s.name)?;
        }
        for t in self.inputs.iter().chain(&self.outputs) {
            writeln!(f, "; dram[{:#x}] tensor {} {:?} pad {:?}", t.addr, t.name, t.dims, t.pad)?;
        }
        write_instrs(f, &self.instrs, &mut [0; 3])
    }
}

/// One line per instruction: the unit's letter, its index within its unit (counted on in
/// `idx`), the instruction.
fn write_instrs(f: &mut impl fmt::Write, instrs: &[Instr], idx: &mut [usize; 3]) -> fmt::Result {
    for i in instrs {
        let u = i.op.unit();
        writeln!(f, "{}{:<5} {}", ["L", "E", "S"][u.index()], idx[u.index()], i)?;
        idx[u.index()] += 1;
    }
    Ok(())
}

/// An accelerator layer inside a [`NetStep::Run`]: its node and its instructions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunLayer {
    /// Index of the node in [`crate::network::Network::nodes`].
    pub node: usize,
    /// Its instructions: `instrs[first..end]` of the run's program.
    pub first: usize,
    /// One past its last instruction.
    pub end: usize,
    /// Its useful multiply-accumulates.
    pub macs: u64,
}

/// One step of a [`NetworkProgram`], in schedule order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NetStep {
    /// Consecutive accelerator layers as one program on the network's DRAM image: each
    /// layer's instructions in turn, its waits on the layers before it in `Sync`.
    Run {
        /// The program (no placements or constants of its own: see [`NetworkProgram`]).
        program: Program,
        /// Its layers, in program order.
        layers: Vec<RunLayer>,
    },
    /// A node the accelerator instance cannot run; the host runs it between programs, reading
    /// and writing the network's DRAM image.
    Host {
        /// Index of the node.
        node: usize,
    },
}

/// A whole network compiled for one architecture: one DRAM image holding every constant and
/// every activation the accelerator touches, and the steps that run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkProgram {
    /// Name of the architecture it was compiled for.
    pub arch: String,
    /// Bytes of DRAM it addresses.
    pub dram_size: u64,
    /// Requantization tables and weights of every layer, each placed once.
    pub dram_init: Vec<DramSegment>,
    /// Per network value, its NHWC buffer in DRAM (border filled with its zero point), or
    /// `None` for values only the host touches.
    pub buffers: Vec<Option<TensorPlacement>>,
    /// Steps in schedule order.
    pub steps: Vec<NetStep>,
}

impl NetworkProgram {
    /// The DRAM image before the network runs: constants written, borders of every buffer
    /// filled with their zero points (producers write only the interiors).
    pub fn initial_dram(&self) -> Vec<u8> {
        let mut dram = vec![0u8; self.dram_size as usize];
        for b in self.buffers.iter().flatten() {
            let base = b.addr as usize;
            dram[base..base + b.size()].fill(b.pad_value as u8);
        }
        for s in &self.dram_init {
            dram[s.addr as usize..s.addr as usize + s.bytes.len()].copy_from_slice(&s.bytes);
        }
        dram
    }

    /// The accelerator programs, in order.
    pub fn runs(&self) -> impl Iterator<Item = (&Program, &[RunLayer])> {
        self.steps.iter().filter_map(|s| match s {
            NetStep::Run { program, layers } => Some((program, layers.as_slice())),
            NetStep::Host { .. } => None,
        })
    }
}

impl NetworkProgram {
    /// The program as text: the DRAM map, then each step, a run's instructions under a line
    /// naming each layer; `node(i)` names node `i` (and says what it is).
    pub fn listing(&self, node: impl Fn(usize) -> String) -> String {
        let mut out = String::new();
        let runs = self.runs().count();
        let hosts = self.steps.len() - runs;
        let _ = writeln!(out, "; network program for {}: {runs} run(s), {hosts} host step(s), {} bytes of DRAM", self.arch, self.dram_size);
        for b in self.buffers.iter().flatten() {
            let _ = writeln!(
                out,
                "; dram[{:#x}..{:#x}] value {} {:?} pad {:?} (= {}) tail {}",
                b.addr,
                b.addr + b.size() as u64,
                b.name,
                b.dims,
                b.pad,
                b.pad_value,
                b.tail
            );
        }
        for s in &self.dram_init {
            let _ = writeln!(out, "; dram[{:#x}..{:#x}] {}", s.addr, s.addr + s.bytes.len() as u64, s.name);
        }
        let mut run = 0;
        for step in &self.steps {
            match step {
                NetStep::Run { program, layers } => {
                    let _ =
                        writeln!(out, "run {run}: {} layer(s), {} instructions, {} MACs", layers.len(), program.instrs.len(), program.macs);
                    let mut idx = [0; 3];
                    for l in layers {
                        let _ = writeln!(out, "; layer {}", node(l.node));
                        let _ = write_instrs(&mut out, &program.instrs[l.first..l.end], &mut idx);
                    }
                    run += 1;
                }
                NetStep::Host { node: n } => {
                    let _ = writeln!(out, "host {}", node(*n));
                }
            }
        }
        out
    }
}
