//! The accelerator's instruction set.
//!
//! Three units run concurrently, each executing its own instructions in program order:
//! the load DMA ([`Unit::Load`]), the systolic array ([`Unit::Exec`]) and the store DMA with
//! the requantization unit ([`Unit::Store`]). Every instruction carries a [`Sync`]: it may
//! start only once each other unit has *completed* at least the given number of
//! instructions. The exact cycle cost of every op is given in `docs/ARCHITECTURE.md`.
//!
//! Every instruction encodes to [`INSTR_BITS`] bits (see [`Instr::encode`]), as the field
//! tables of [`crate::encoding`] lay it out.

use crate::arch::Sparsity;
pub use crate::encoding::{EncodeError, Field, FieldSlot, OpSpec, Opcode, INSTR_BITS, INSTR_WORDS, OPS};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The unit that executes an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Unit {
    /// DRAM -> scratchpads.
    Load,
    /// The systolic array.
    Exec,
    /// Accumulator -> requantize -> DRAM.
    Store,
}

impl Unit {
    /// All units in index order.
    pub const ALL: [Unit; 3] = [Unit::Load, Unit::Exec, Unit::Store];

    /// Index 0..3.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Wait until each unit has completed at least this many instructions (own unit ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sync {
    /// Completed load instructions required.
    pub load: u32,
    /// Completed exec instructions required.
    pub exec: u32,
    /// Completed store instructions required.
    pub store: u32,
}

impl Sync {
    /// The requirement on `unit`.
    pub fn on(&self, unit: Unit) -> u32 {
        match unit {
            Unit::Load => self.load,
            Unit::Exec => self.exec,
            Unit::Store => self.store,
        }
    }

    /// Mutable access to the requirement on `unit`.
    pub fn on_mut(&mut self, unit: Unit) -> &mut u32 {
        match unit {
            Unit::Load => &mut self.load,
            Unit::Exec => &mut self.exec,
            Unit::Store => &mut self.store,
        }
    }
}

/// One loop level of a DRAM access pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dim {
    /// Iterations (at least 1).
    pub count: u32,
    /// Byte offset per iteration.
    pub stride: i64,
}

/// A three-level loop of contiguous byte runs in DRAM: run `(i2, i1, i0)` starts at
/// `addr + i2*dims[0].stride + i1*dims[1].stride + i0*dims[2].stride` and is `len` bytes long.
/// Runs are numbered `e = (i2 * dims[1].count + i1) * dims[2].count + i0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DramPattern {
    /// Byte address of run 0.
    pub addr: u64,
    /// Bytes per run.
    pub len: u32,
    /// Loop levels, outermost first.
    pub dims: [Dim; 3],
}

impl DramPattern {
    /// Lines (`dims[0].count * dims[1].count`) of the pattern.
    pub fn lines(&self) -> u64 {
        self.dims[0].count as u64 * self.dims[1].count as u64
    }

    /// A pattern of `count` runs of `len` bytes, `stride` apart.
    pub fn runs(addr: u64, len: u32, count: u32, stride: i64) -> Self {
        Self { addr, len, dims: [Dim { count: 1, stride: 0 }, Dim { count: 1, stride: 0 }, Dim { count, stride }] }
    }

    /// Number of runs.
    pub fn num_runs(&self) -> u64 {
        self.dims.iter().map(|d| d.count as u64).product()
    }

    /// Start address of every run, in run order.
    pub fn run_addrs(&self) -> impl Iterator<Item = i64> + '_ {
        let [d2, d1, d0] = self.dims;
        (0..d2.count as i64).flat_map(move |i2| {
            (0..d1.count as i64)
                .flat_map(move |i1| (0..d0.count as i64).map(move |i0| self.addr as i64 + i2 * d2.stride + i1 * d1.stride + i0 * d0.stride))
        })
    }

    /// DRAM bus beats: `ceil(len / bytes_per_cycle)` per run.
    pub fn beats(&self, bytes_per_cycle: usize) -> u64 {
        self.num_runs() * (self.len as u64).div_ceil(bytes_per_cycle as u64)
    }
}

/// A two-level sequence of scratchpad word addresses:
/// `start + o * outer_stride + i * inner_stride` for `o < outer_count`, `i < inner_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WordGen {
    /// First word.
    pub start: u32,
    /// Words per outer iteration.
    pub inner_count: u32,
    /// Word step within an outer iteration.
    pub inner_stride: u32,
    /// Outer iterations.
    pub outer_count: u32,
    /// Word step per outer iteration.
    pub outer_stride: u32,
}

impl WordGen {
    /// `count` consecutive words from `start`.
    pub fn linear(start: u32, count: u32) -> Self {
        Self { start, inner_count: count, inner_stride: 1, outer_count: 1, outer_stride: 0 }
    }

    /// Number of words.
    pub fn len(&self) -> u32 {
        self.inner_count * self.outer_count
    }

    /// True when the sequence is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The addresses, in order.
    pub fn addrs(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.outer_count)
            .flat_map(move |o| (0..self.inner_count).map(move |i| self.start + o * self.outer_stride + i * self.inner_stride))
    }
}

/// A banded weight matrix expanded from one weight word of taps: row `k`, column `n`
/// holds tap `k - n * stride` of the word if that is in `0..taps` and `n < width`, else 0.
/// A depthwise kernel row is such a band (dilation appears as zero taps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    /// Row offset between adjacent columns.
    pub stride: u32,
    /// Taps used from the word (at most `cols`).
    pub taps: u32,
    /// Columns generated (at most `cols`).
    pub width: u32,
}

impl Band {
    /// The band's value at row `k`, column `n`, given the tap word.
    #[inline]
    pub fn at(&self, word: &[i8], k: usize, n: usize) -> i8 {
        let base = n * self.stride as usize;
        if n < self.width as usize && k >= base && k - base < self.taps as usize {
            word[k - base]
        } else {
            0
        }
    }
}

/// The scratchpad a plain load writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Buffer {
    /// Activation scratchpad (`rows`-byte words).
    Act,
    /// Weight scratchpad (`cols`-byte words).
    Wgt,
}

/// Output stage settings shared by both store ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutputStage {
    /// First entry of the requantization table used.
    pub param: u32,
    /// Output zero point.
    pub zp: i8,
    /// Lower clamp (ReLU: the zero point).
    pub lo: i8,
    /// Upper clamp.
    pub hi: i8,
}

/// What an instruction does. One line of semantics per variant; costs in ARCHITECTURE.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Load unit: run `e` of `src` -> bytes `offset..offset+len` of word `dst + e` of
    /// `target`; bytes below `offset` are kept, bytes from `offset + len` on become 0.
    Load {
        /// Destination scratchpad.
        target: Buffer,
        /// First destination word.
        dst: u32,
        /// First byte written within each word.
        offset: u32,
        /// Source runs (`len` at most the word width).
        src: DramPattern,
    },
    /// Load unit, through the transposer: within outer iteration `i2`, inner run
    /// `e = i1*dims[2].count + i0` -> group `g = e / rows`, lane `l = e % rows`; its byte `j`
    /// -> lane `l` of activation word `dst + g*pitch + i2*len + j` (missing lanes are 0).
    LoadTransposed {
        /// Word of group 0, byte 0.
        dst: u32,
        /// Words between groups.
        pitch: u32,
        /// Source runs.
        src: DramPattern,
    },
    /// Load unit: `count` 8-byte requantization entries from `addr` -> table entries `dst..`.
    LoadParams {
        /// First table entry.
        dst: u32,
        /// DRAM byte address.
        addr: u64,
        /// Entries.
        count: u32,
    },
    /// Load unit: `count` 4-byte entries (little-endian i32) from `addr` -> entries
    /// `dst..` of the vector unit's table memory, every lane's copy. Entry `256 * t + x` is
    /// table `t`'s value for the byte `x` (as unsigned).
    LoadTable {
        /// First table entry.
        dst: u32,
        /// DRAM byte address.
        addr: u64,
        /// Entries.
        count: u32,
    },
    /// Exec unit, vector unit: for each output `o < count`, column `j < vector_width` of acc
    /// row `acc + o` <- the sum (wrapping) or, with `max`, the maximum over the words of
    /// `window` shifted by `o * stride` of `T[lane j of the word]`, with table `T` 0 for
    /// the window's first word and 1 for the others; columns from `vector_width` on become 0.
    Vector {
        /// The words of output 0's window, in order.
        window: WordGen,
        /// Outputs (accumulator rows written).
        count: u32,
        /// Words between the windows of consecutive outputs.
        stride: u32,
        /// First accumulator row.
        acc: u32,
        /// Reduce by maximum instead of sum.
        max: bool,
    },
    /// Exec unit, WS: acc row `acc + i` (=, or += if `accumulate`) the product of activation
    /// word `a[i]` with the active weight tile; meanwhile weight words `preload..+rows` fill
    /// the shadow tile (or, with `band`, word `preload` expands into it), which becomes active
    /// at the end. With a `sparse` format, `a[i]` stands for the words `a[i] + e * bank`
    /// (`e < expansion`, `bank = act_bank_words`) read together and the preload is
    /// `rows + rows / 4` words of compressed tile (docs/ARCHITECTURE.md section 3).
    MatmulWs {
        /// Activation words streamed, one per cycle.
        a: WordGen,
        /// First accumulator row.
        acc: u32,
        /// Add to the accumulator instead of overwriting.
        accumulate: bool,
        /// First weight word of the next tile.
        preload: Option<u32>,
        /// Expand the preload word as a band instead of reading a full tile.
        band: Option<Band>,
        /// Format of the active tile the stream multiplies and of the tile preloaded.
        sparse: Sparsity,
        /// The tiles hold packed int4 weights: PE row `k` multiplies lanes `2k` and `2k + 1`
        /// of a K-step of two words (low nibble, high nibble); dense format only.
        int4: bool,
        /// With `int4`, the activations are int4 too: the tiles are *quad* tiles of
        /// `2 * rows` words (four int4 weights per PE, high byte first) and PE row `k`
        /// multiplies lanes `4k..4k + 4` of a K-step of four words, each activation taken as
        /// its low nibble (docs/ARCHITECTURE.md section 3).
        act4: bool,
        /// The preload is a CSC tile with this many value words after its
        /// `csc_mask_words(rows)` mask words; it expands to a dense int8 tile
        /// (docs/ARCHITECTURE.md section 3).
        csc: Option<u32>,
    },
    /// Exec unit, OS: for step `t`, PE `(i, j)` += lane `i` of activation word `a[t]` times
    /// lane `j` of weight word `b + t` (with `band`: row `t` of the band expanded from word
    /// `b`); then acc rows `acc..acc+rows` (=, or +=) the tile.
    MatmulOs {
        /// Activation words, one per step.
        a: WordGen,
        /// First weight word.
        b: u32,
        /// First accumulator row.
        acc: u32,
        /// Add to the accumulator instead of overwriting.
        accumulate: bool,
        /// Generate weight rows from one tap word instead of reading them.
        band: Option<Band>,
    },
    /// Store unit: run `e` of `dst` <- requantized columns `0..len` of acc row `acc + e`,
    /// column `j` using table entry `out.param + j` (`out.param` a multiple of `cols`: the
    /// table is read a row at a time).
    Store {
        /// First accumulator row.
        acc: u32,
        /// Destination runs (`len` at most `cols`).
        dst: DramPattern,
        /// Requantization settings.
        out: OutputStage,
    },
    /// Store unit, through the transposer: byte `j` of run `(i2, i1, i0)`, on line
    /// `l = i2 * dims[1].count + i1`, <- requantized column `i0 % width` of acc row
    /// `acc + j*row_stride + l*line_pitch + i0 / width`, using entry `out.param + j`.
    StoreTransposed {
        /// Accumulator row of byte 0 of run 0.
        acc: u32,
        /// Accumulator rows between bytes of a run.
        row_stride: u32,
        /// Accumulator rows between lines.
        line_pitch: u32,
        /// Runs taken from one accumulator row (at most `cols`).
        width: u32,
        /// Destination runs.
        dst: DramPattern,
        /// Requantization settings.
        out: OutputStage,
    },
}

impl Op {
    /// A WS matmul of dense int8 tiles (no N:4, int4 or CSC format).
    pub fn dense_ws(a: WordGen, acc: u32, accumulate: bool, preload: Option<u32>, band: Option<Band>) -> Self {
        Op::MatmulWs { a, acc, accumulate, preload, band, sparse: Sparsity::Dense, int4: false, act4: false, csc: None }
    }

    /// The unit that executes this op.
    pub fn unit(&self) -> Unit {
        self.opcode().unit()
    }
}

/// One instruction: an op and the synchronization it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instr {
    /// Completion counts to wait for.
    pub sync: Sync,
    /// What to do.
    pub op: Op,
}

impl fmt::Display for DramPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dram[{:#x}; {}B", self.addr, self.len)?;
        for d in self.dims.iter().filter(|d| d.count != 1) {
            write!(f, " x{}@{}", d.count, d.stride)?;
        }
        write!(f, "]")
    }
}

impl fmt::Display for WordGen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}", self.start)?;
        if self.outer_count != 1 {
            write!(f, " x{}@{}", self.outer_count, self.outer_stride)?;
        }
        write!(f, " x{}@{}]", self.inner_count, self.inner_stride)
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "band(taps {}, stride {}, width {})", self.taps, self.stride, self.width)
    }
}

impl fmt::Display for OutputStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "param[{}] zp={} clamp=[{},{}]", self.param, self.zp, self.lo, self.hi)
    }
}

impl fmt::Display for Instr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Load { target, dst, offset, src } => {
                let t = if *target == Buffer::Act { "act" } else { "wgt" };
                write!(f, "load.{t:<6} {t}[{dst}]")?;
                if *offset != 0 {
                    write!(f, ".byte{offset}")?;
                }
                write!(f, " <- {src}")?
            }
            Op::LoadTransposed { dst, pitch, src } => write!(f, "load.act.t  act[{dst}] pitch {pitch} <- {src}")?,
            Op::LoadParams { dst, addr, count } => write!(f, "load.param  param[{dst}..+{count}] <- dram[{addr:#x}]")?,
            Op::LoadTable { dst, addr, count } => write!(f, "load.table  table[{dst}..+{count}] <- dram[{addr:#x}]")?,
            Op::Vector { window, count, stride, acc, max } => {
                let reduce = if *max { "max" } else { "sum" };
                write!(f, "vec.{reduce}     acc[{acc}..+{count}] <- T(act{window}) step {stride}")?
            }
            Op::MatmulWs { a, acc, accumulate, preload, band, sparse, int4, act4, csc } => {
                let op = if *accumulate { "+=" } else { "=" };
                write!(f, "mm.ws       acc[{acc}] {op} act{a} x W")?;
                if *sparse != Sparsity::Dense {
                    write!(f, " {sparse}")?;
                }
                match (*int4, *act4) {
                    (true, true) => write!(f, " int4x4")?,
                    (true, false) => write!(f, " int4")?,
                    (false, true) => write!(f, " act4")?,
                    (false, false) => {}
                }
                if let Some(p) = preload {
                    write!(f, "; preload wgt[{p}]")?;
                }
                if let Some(v) = csc {
                    write!(f, " csc {v}")?;
                }
                if let Some(b) = band {
                    write!(f, " {b}")?;
                }
            }
            Op::MatmulOs { a, b, acc, accumulate, band } => {
                let op = if *accumulate { "+=" } else { "=" };
                write!(f, "mm.os       acc[{acc}] {op} act{a} x wgt[{b}]")?;
                if let Some(b) = band {
                    write!(f, " {b}")?;
                }
            }
            Op::Store { acc, dst, out } => write!(f, "store       {dst} <- acc[{acc}] {out}")?,
            Op::StoreTransposed { acc, row_stride, line_pitch, width, dst, out } => {
                write!(f, "store.t     {dst} <- acc[{acc}] rows@{row_stride} lines@{line_pitch} width {width} {out}")?
            }
        }
        let s = self.sync;
        let waits: Vec<String> = Unit::ALL
            .iter()
            .filter(|u| **u != self.op.unit() && s.on(**u) > 0)
            .map(|u| format!("{}>={}", ["L", "E", "S"][u.index()], s.on(*u)))
            .collect();
        if !waits.is_empty() {
            write!(f, "  wait {}", waits.join(","))?;
        }
        Ok(())
    }
}

/// The kinds of SRAM access the simulator counts, as report keys: the index of each is its
/// slot in [`Accesses::sram`].
pub const SRAM_ACCESS_KINDS: [&str; 10] =
    ["act.read", "act.write", "wgt.read", "wgt.write", "acc.read", "acc.write", "param.read", "param.write", "table.read", "table.write"];

const ACT_READ: usize = 0;
const ACT_WRITE: usize = 1;
const WGT_READ: usize = 2;
const WGT_WRITE: usize = 3;
const ACC_READ: usize = 4;
const ACC_WRITE: usize = 5;
const PARAM_READ: usize = 6;
const PARAM_WRITE: usize = 7;
const TABLE_READ: usize = 8;
const TABLE_WRITE: usize = 9;

/// SRAM words and DRAM bytes one instruction touches, from its fields alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accesses {
    /// Words per SRAM access kind, in [`SRAM_ACCESS_KINDS`] order.
    pub sram: [u64; SRAM_ACCESS_KINDS.len()],
    /// DRAM bytes read.
    pub dram_read: u64,
    /// DRAM bytes written.
    pub dram_written: u64,
}

impl Accesses {
    fn sram(kinds: &[(usize, u64)]) -> Self {
        let mut a = Self::default();
        for &(k, n) in kinds {
            a.sram[k] += n;
        }
        a
    }
}

/// The SRAM words and DRAM bytes `op` touches on `arch`: what the simulator counts, known
/// from the fields alone.
pub fn accesses(arch: &crate::ArchConfig, op: &Op) -> Accesses {
    let rows = arch.rows as u64;
    match *op {
        Op::Load { target, src, .. } => {
            let runs = src.num_runs();
            let key = if target == Buffer::Act { ACT_WRITE } else { WGT_WRITE };
            Accesses { dram_read: runs * src.len as u64, ..Accesses::sram(&[(key, runs)]) }
        }
        Op::LoadTransposed { src, .. } => {
            let (len, outer) = (src.len as u64, src.dims[0].count as u64);
            let groups = (src.dims[1].count as u64 * src.dims[2].count as u64).div_ceil(rows);
            if len == 0 || groups == 0 || outer == 0 {
                return Accesses::default();
            }
            Accesses { dram_read: src.num_runs() * len, ..Accesses::sram(&[(ACT_WRITE, outer * groups * len)]) }
        }
        Op::LoadParams { count, .. } => Accesses { dram_read: 8 * count as u64, ..Accesses::sram(&[(PARAM_WRITE, count as u64)]) },
        Op::LoadTable { count, .. } => Accesses { dram_read: 4 * count as u64, ..Accesses::sram(&[(TABLE_WRITE, count as u64)]) },
        Op::Vector { window, count, .. } => {
            let words = window.len() as u64 * count as u64;
            Accesses::sram(&[(ACT_READ, words), (TABLE_READ, words), (ACC_WRITE, count as u64)])
        }
        Op::MatmulWs { a, accumulate, preload, band, sparse, int4, act4, csc, .. } => {
            let m = a.len() as u64;
            let preload = match (preload, band) {
                (Some(_), Some(_)) => 1,
                (Some(_), None) => preload_words(arch.rows, sparse, act4, csc) as u64,
                (None, _) => 0,
            };
            let act = m * match (int4, act4) {
                (_, true) => 4,
                (true, false) => 2,
                (false, false) => sparse.expansion() as u64,
            };
            Accesses::sram(&[(WGT_READ, preload), (ACT_READ, act), (ACC_WRITE, m), (ACC_READ, if accumulate { m } else { 0 })])
        }
        Op::MatmulOs { a, accumulate, .. } => {
            let steps = a.len() as u64;
            Accesses::sram(&[(ACT_READ, steps), (WGT_READ, steps), (ACC_WRITE, rows), (ACC_READ, if accumulate { rows } else { 0 })])
        }
        Op::Store { dst, .. } => {
            let runs = dst.num_runs();
            Accesses { dram_written: runs * dst.len as u64, ..Accesses::sram(&[(ACC_READ, runs), (PARAM_READ, runs)]) }
        }
        Op::StoreTransposed { width, dst, .. } => {
            let (len, lines, per_line) = (dst.len as u64, dst.lines(), dst.dims[2].count as u64);
            let reads = lines * per_line.div_ceil((width as u64).max(1)) * len;
            Accesses { dram_written: dst.num_runs() * len, ..Accesses::sram(&[(ACC_READ, reads), (PARAM_READ, reads)]) }
        }
    }
}

/// Weight words of one WS tile for `rows` PE rows in `format`: `rows` values, plus for a
/// sparse tile one metadata word before every four value words (docs/ARCHITECTURE.md
/// section 3).
pub fn ws_tile_words(rows: usize, format: Sparsity) -> usize {
    match format {
        Sparsity::Dense => rows,
        _ => rows + rows / crate::arch::NM_GROUP,
    }
}

/// Words a WS preload without a band reads: a `format` tile, a quad tile (`act4`: two
/// words per PE row), or a CSC tile of `csc` value words.
pub fn preload_words(rows: usize, format: Sparsity, act4: bool, csc: Option<u32>) -> usize {
    match csc {
        Some(values) => csc_mask_words(rows) + values as usize,
        None if act4 => 2 * rows,
        None => ws_tile_words(rows, format),
    }
}

/// Mask words at the head of a CSC tile for `rows` PE rows: one presence bit per weight,
/// eight PE rows per word (docs/ARCHITECTURE.md section 3).
pub fn csc_mask_words(rows: usize) -> usize {
    rows.div_ceil(8)
}

/// A program's access totals: the sum of [`accesses`] over its instructions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessTotals(pub Accesses);

impl AccessTotals {
    /// A report with these counts (SRAM kinds the program touches) and `macs`, every other
    /// measure empty.
    pub fn report(&self, macs: u64) -> crate::report::LayerReport {
        let a = &self.0;
        crate::report::LayerReport {
            macs,
            sram: SRAM_ACCESS_KINDS.iter().zip(a.sram).filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_string(), n)).collect(),
            dram_bytes: [("read".to_string(), a.dram_read), ("write".to_string(), a.dram_written)].into_iter().collect(),
            ..Default::default()
        }
    }
}

/// The sum of [`accesses`] over `instrs`.
pub fn access_totals(arch: &crate::ArchConfig, instrs: &[Instr]) -> AccessTotals {
    let mut t = Accesses::default();
    for ins in instrs {
        let a = accesses(arch, &ins.op);
        for (total, n) in t.sram.iter_mut().zip(a.sram) {
            *total += n;
        }
        t.dram_read += a.dram_read;
        t.dram_written += a.dram_written;
    }
    AccessTotals(t)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One op of each opcode, in opcode order.
    pub(crate) fn sample_ops() -> Vec<Op> {
        let (src, a, out) = (DramPattern::default(), WordGen::default(), OutputStage::default());
        vec![
            Op::Load { target: Buffer::Act, dst: 0, offset: 0, src },
            Op::LoadTransposed { dst: 0, pitch: 0, src },
            Op::LoadParams { dst: 0, addr: 0, count: 0 },
            Op::dense_ws(a, 0, false, None, None),
            Op::MatmulOs { a, b: 0, acc: 0, accumulate: false, band: None },
            Op::Store { acc: 0, dst: src, out },
            Op::StoreTransposed { acc: 0, row_stride: 0, line_pitch: 0, width: 0, dst: src, out },
            Op::LoadTable { dst: 0, addr: 0, count: 0 },
            Op::Vector { window: a, count: 0, stride: 0, acc: 0, max: false },
        ]
    }

    fn word() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..64, 0u32..(1 << 24)]
    }

    fn pattern() -> impl Strategy<Value = DramPattern> {
        let dim = (0u32..(1 << 24), -(1i64 << 39)..(1i64 << 39)).prop_map(|(count, stride)| Dim { count, stride });
        (0u64..(1 << 40), 0u32..(1 << 16), [dim.clone(), dim.clone(), dim]).prop_map(|(addr, len, dims)| DramPattern { addr, len, dims })
    }

    fn wordgen() -> impl Strategy<Value = WordGen> {
        (word(), word(), word(), word(), word()).prop_map(|(start, inner_count, inner_stride, outer_count, outer_stride)| WordGen {
            start,
            inner_count,
            inner_stride,
            outer_count,
            outer_stride,
        })
    }

    fn band() -> impl Strategy<Value = Option<Band>> {
        proptest::option::of((0u32..256, 0u32..(1 << 16), 0u32..(1 << 16)).prop_map(|(stride, taps, width)| Band { stride, taps, width }))
    }

    fn stage() -> impl Strategy<Value = OutputStage> {
        (word(), any::<i8>(), any::<i8>(), any::<i8>()).prop_map(|(param, zp, lo, hi)| OutputStage { param, zp, lo, hi })
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<bool>(), word(), 0u32..(1 << 16), pattern()).prop_map(|(w, dst, offset, src)| Op::Load {
                target: if w { Buffer::Wgt } else { Buffer::Act },
                dst,
                offset,
                src
            }),
            (word(), word(), pattern()).prop_map(|(dst, pitch, src)| Op::LoadTransposed { dst, pitch, src }),
            (word(), 0u64..(1 << 40), 0u32..(1 << 24)).prop_map(|(dst, addr, count)| Op::LoadParams { dst, addr, count }),
            (
                wordgen(),
                word(),
                any::<bool>(),
                proptest::option::of(word()),
                band(),
                proptest::sample::select(Sparsity::ALL.to_vec()),
                (any::<bool>(), any::<bool>()),
                proptest::option::of(0u32..(1 << 16))
            )
                .prop_map(|(a, acc, accumulate, preload, band, sparse, (int4, act4), csc)| Op::MatmulWs {
                    a,
                    acc,
                    accumulate,
                    preload,
                    band,
                    sparse,
                    int4,
                    act4,
                    csc
                }),
            (wordgen(), word(), word(), any::<bool>(), band()).prop_map(|(a, b, acc, accumulate, band)| Op::MatmulOs {
                a,
                b,
                acc,
                accumulate,
                band
            }),
            (word(), pattern(), stage()).prop_map(|(acc, dst, out)| Op::Store { acc, dst, out }),
            (word(), word(), word(), 0u32..(1 << 16), pattern(), stage()).prop_map(|(acc, row_stride, line_pitch, width, dst, out)| {
                Op::StoreTransposed { acc, row_stride, line_pitch, width, dst, out }
            }),
            (0u32..(1 << 10), 0u64..(1 << 40), 0u32..(1 << 10)).prop_map(|(dst, addr, count)| Op::LoadTable { dst, addr, count }),
            (wordgen(), 0u32..(1 << 24), word(), word(), any::<bool>()).prop_map(|(window, count, stride, acc, max)| Op::Vector {
                window,
                count,
                stride,
                acc,
                max
            }),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(op in op(), load in any::<u32>(), exec in any::<u32>(), store in any::<u32>()) {
            let instr = Instr { sync: Sync { load, exec, store }, op };
            let words = instr.encode().unwrap();
            prop_assert_eq!(Instr::decode(&words), Some(instr));
        }
    }

    #[test]
    fn oversized_fields_are_named() {
        let op = Op::LoadParams { dst: 1 << 24, addr: 0, count: 1 };
        let e = Instr { sync: Sync::default(), op }.encode().unwrap_err();
        assert_eq!((e.field, e.bits), ("dst", 24));
        let src = DramPattern::runs(0, 4, 1, 1i64 << 39);
        let op = Op::Load { target: Buffer::Act, dst: 0, offset: 0, src };
        assert_eq!(Instr { sync: Sync::default(), op }.encode().unwrap_err().field, "dims[2].stride");
    }

    #[test]
    fn unknown_opcodes_do_not_decode() {
        for opcode in [0u64, 10, 15] {
            assert_eq!(Instr::decode(&[opcode, 0, 0, 0, 0, 0, 0, 0]), None);
        }
    }

    #[test]
    fn hand_encoded_fields_sit_where_the_spec_says() {
        // LoadParams: opcode 3 in bits 0..4, sync.load in 4..36, dst at 100..124, addr at 124..164.
        let instr = Instr { sync: Sync { load: 0, exec: 5, store: 0 }, op: Op::LoadParams { dst: 7, addr: 0x1234, count: 2 } };
        let w = instr.encode().unwrap();
        assert_eq!(w[0] & 0xf, 3);
        assert_eq!((w[0] >> 36) & 0xffff_ffff, 5);
        assert_eq!((w[1] >> 36) & 0xff_ffff, 7);
        assert_eq!((w[1] >> 60) | ((w[2] & 0xf_ffff_ffff) << 4), 0x1234);
        assert_eq!((w[2] >> 36) & 0xff_ffff, 2);
    }
}
