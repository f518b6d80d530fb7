//! Functional execution in start order, with per-word race checks, and the report.

use crate::SimError;
use systole_core::arch::{NM_GROUP, VECTOR_TABLE_ENTRIES};
use systole_core::isa::{access_totals, csc_mask_words, ws_tile_words, Buffer, DramPattern, Op, OutputStage, Unit, WordGen};
use systole_core::program::DRAM_LINE;
use systole_core::report::{utilization, LayerReport};
use systole_core::requant::{requantize, ChannelParam};
use systole_core::segment::{segment_bounds, segment_program};
use systole_core::timing::{schedule, InstrTiming};
use systole_core::{ArchConfig, Instr, Program, Sparsity};

/// Who last wrote and read each word of one memory, and until when.
struct Tracker {
    name: &'static str,
    writer: Vec<(u32, u8, u64)>,
    readers: Vec<[(u32, u64); 3]>,
}

impl Tracker {
    fn new(name: &'static str, words: usize) -> Self {
        Self { name, writer: vec![(u32::MAX, 0, 0); words], readers: vec![[(u32::MAX, 0); 3]; words] }
    }

    /// Forgets every access: a new run starts with nothing in flight.
    fn clear(&mut self) {
        self.writer.fill((u32::MAX, 0, 0));
        self.readers.fill([(u32::MAX, 0); 3]);
    }

    fn check(&self, word: usize, len: usize, instr: usize) -> Result<(), SimError> {
        if word + len > self.writer.len() {
            return Err(SimError::OutOfBounds {
                instr,
                detail: format!("{} words {}..{} beyond its {} words", self.name, word, word + len, self.writer.len()),
            });
        }
        Ok(())
    }

    fn read(&mut self, word: usize, t: &InstrTiming, end: u64, instr: usize) -> Result<(), SimError> {
        let (w, wu, wend) = self.writer[word];
        let u = t.unit.index();
        if w != u32::MAX && wu as usize != u && wend > t.start {
            return Err(self.race(instr, t.unit, "reads", word, w, wu));
        }
        let r = &mut self.readers[word][u];
        *r = (instr as u32, r.1.max(end));
        Ok(())
    }

    fn write(&mut self, word: usize, t: &InstrTiming, end: u64, instr: usize) -> Result<(), SimError> {
        let (w, wu, wend) = self.writer[word];
        let u = t.unit.index();
        if w != u32::MAX && wu as usize != u && wend > t.start {
            return Err(self.race(instr, t.unit, "writes", word, w, wu));
        }
        for (v, &(ri, rend)) in self.readers[word].iter().enumerate() {
            if v != u && ri != u32::MAX && rend > t.start {
                return Err(self.race(instr, t.unit, "writes", word, ri, v as u8));
            }
        }
        self.writer[word] = (instr as u32, u as u8, end);
        Ok(())
    }

    fn race(&self, instr: usize, unit: Unit, kind: &'static str, word: usize, other: u32, other_unit: u8) -> SimError {
        SimError::Race { instr, unit, kind, buffer: self.name, word, other: other as usize, other_unit: Unit::ALL[other_unit as usize] }
    }
}

struct Machine {
    rows: usize,
    cols: usize,
    transposer_depth: usize,
    act: Vec<i8>,
    wgt: Vec<i8>,
    acc: Vec<i32>,
    params: Vec<ChannelParam>,
    /// The vector unit's table memory ([`VECTOR_TABLE_ENTRIES`] entries, every lane's copy alike).
    table: Vec<i32>,
    vector_width: usize,
    active: Vec<i32>,
    shadow: Vec<i32>,
    /// Per PE of a sparse tile: the lane within its group of four that its weight multiplies.
    active_index: Vec<u8>,
    shadow_index: Vec<u8>,
    active_format: (Sparsity, bool, bool),
    shadow_format: (Sparsity, bool, bool),
    bank_words: usize,
    act_t: Tracker,
    wgt_t: Tracker,
    acc_t: Tracker,
    param_t: Tracker,
    table_t: Tracker,
    dram_t: Tracker,
}

/// Nibble `b` of `v` as a signed int4 (nibble 0 is bits 0..4): the operand a 4-bit
/// multiplier sees.
fn nibble(v: i32, b: usize) -> i32 {
    (((v >> (4 * b)) as i8) << 4 >> 4) as i32
}

/// The bytes `addr..addr + len` of DRAM, which instruction `instr` reads (or writes), checked
/// against the bounds and, line by line, against other units' accesses in flight.
fn dram_range(
    tracker: &mut Tracker,
    dram_len: usize,
    (addr, len): (i64, usize),
    (instr, t): (usize, &InstrTiming),
    write: bool,
) -> Result<std::ops::Range<usize>, SimError> {
    if addr < 0 || addr as usize + len > dram_len {
        return Err(SimError::OutOfBounds { instr, detail: format!("DRAM bytes {addr}..{} outside 0..{dram_len}", addr + len as i64) });
    }
    let range = addr as usize..addr as usize + len;
    if len > 0 {
        for line in range.start / DRAM_LINE..=(range.end - 1) / DRAM_LINE {
            if write {
                tracker.write(line, t, t.done, instr)?;
            } else {
                tracker.read(line, t, t.done, instr)?;
            }
        }
    }
    Ok(range)
}

impl Machine {
    fn new(arch: &ArchConfig, dram_len: usize) -> Self {
        let (rows, cols) = (arch.rows, arch.cols);
        Self {
            rows,
            cols,
            transposer_depth: arch.transposer_depth(),
            act: vec![0; arch.act_words() * rows],
            wgt: vec![0; arch.wgt_words() * cols],
            acc: vec![0; arch.acc_rows() * cols],
            params: vec![ChannelParam::default(); arch.param_entries],
            table: vec![0; if arch.vector_lanes > 0 { VECTOR_TABLE_ENTRIES } else { 0 }],
            vector_width: arch.vector_width(),
            active: vec![0; rows * cols],
            shadow: vec![0; rows * cols],
            active_index: vec![0; rows * cols],
            shadow_index: vec![0; rows * cols],
            active_format: (Sparsity::Dense, false, false),
            shadow_format: (Sparsity::Dense, false, false),
            bank_words: arch.act_bank_words(),
            act_t: Tracker::new("act", arch.act_words()),
            wgt_t: Tracker::new("wgt", arch.wgt_words()),
            acc_t: Tracker::new("acc", arch.acc_rows()),
            param_t: Tracker::new("param", arch.param_entries),
            table_t: Tracker::new("table", if arch.vector_lanes > 0 { VECTOR_TABLE_ENTRIES } else { 0 }),
            dram_t: Tracker::new("dram line", dram_len.div_ceil(DRAM_LINE)),
        }
    }

    /// Starts another run on the same state (a program segment): the memories, tables and
    /// array registers keep their contents; nothing is in flight.
    fn restart(&mut self) {
        for t in [&mut self.act_t, &mut self.wgt_t, &mut self.acc_t, &mut self.param_t, &mut self.table_t, &mut self.dram_t] {
            t.clear();
        }
    }

    fn step(&mut self, i: usize, op: &Op, t: &InstrTiming, dram: &mut [u8]) -> Result<(), SimError> {
        match *op {
            Op::Load { target, dst, offset, src } => self.load(i, (target, dst as usize, offset as usize), &src, t, dram),
            Op::LoadTransposed { dst, pitch, src } => self.load_transposed(i, dst as usize, pitch as usize, &src, t, dram),
            Op::LoadParams { dst, addr, count } => {
                let (dst, count) = (dst as usize, count as usize);
                self.param_t.check(dst, count, i)?;
                let range = dram_range(&mut self.dram_t, dram.len(), (addr as i64, 8 * count), (i, t), false)?;
                for (e, chunk) in dram[range].chunks_exact(8).enumerate() {
                    self.param_t.write(dst + e, t, t.done, i)?;
                    self.params[dst + e] = ChannelParam::from_bytes(chunk);
                }
                Ok(())
            }
            Op::LoadTable { dst, addr, count } => {
                let (dst, count) = (dst as usize, count as usize);
                self.table_t.check(dst, count, i)?;
                let range = dram_range(&mut self.dram_t, dram.len(), (addr as i64, 4 * count), (i, t), false)?;
                for (e, chunk) in dram[range].chunks_exact(4).enumerate() {
                    self.table_t.write(dst + e, t, t.done, i)?;
                    self.table[dst + e] = i32::from_le_bytes(chunk.try_into().expect("4 bytes"));
                }
                Ok(())
            }
            Op::Vector { window, count, stride, acc, max } => {
                self.vector(i, window, (count as usize, stride as usize), acc as usize, max, t)
            }
            Op::MatmulWs { a, acc, accumulate, preload, band, sparse, int4, act4, csc } => {
                let (rows, cols) = (self.rows, self.cols);
                self.check_band(&band, i)?;
                if !a.is_empty() && (sparse, int4, act4) != self.active_format {
                    let name = |(s, int4, act4): (Sparsity, bool, bool)| {
                        format!("{s}{}{}", if int4 { " int4" } else { "" }, if act4 { " act4" } else { "" })
                    };
                    return Err(SimError::FormatMismatch {
                        instr: i,
                        stream: name((sparse, int4, act4)),
                        active: name(self.active_format),
                    });
                }
                if preload.is_some() {
                    self.shadow_format = (sparse, int4, act4);
                }
                match (preload, band, csc) {
                    (Some(p), None, Some(values)) => self.preload_csc(i, p as usize, values as usize, t)?,
                    (Some(p), None, None) if act4 => {
                        // Two words per PE row, high byte first: a 16-bit register of four
                        // int4 weights.
                        let p = p as usize;
                        self.wgt_t.check(p, 2 * rows, i)?;
                        for k in 0..rows {
                            self.wgt_t.read(p + 2 * k, t, t.free, i)?;
                            self.wgt_t.read(p + 2 * k + 1, t, t.free, i)?;
                            for j in 0..cols {
                                let (hi, lo) = (self.wgt[(p + 2 * k) * cols + j] as u8, self.wgt[(p + 2 * k + 1) * cols + j] as u8);
                                self.shadow[k * cols + j] = i32::from(u16::from_be_bytes([hi, lo]));
                            }
                        }
                    }
                    (Some(p), None, None) if sparse != Sparsity::Dense => {
                        // Groups of four PE rows: a metadata word, then their value words.
                        let p = p as usize;
                        self.wgt_t.check(p, ws_tile_words(rows, sparse), i)?;
                        for q in 0..rows / NM_GROUP {
                            let meta = p + 5 * q;
                            self.wgt_t.read(meta, t, t.free, i)?;
                            for r in NM_GROUP * q..NM_GROUP * (q + 1) {
                                let word = meta + 1 + r % NM_GROUP;
                                self.wgt_t.read(word, t, t.free, i)?;
                                for j in 0..cols {
                                    self.shadow[r * cols + j] = self.wgt[word * cols + j] as i32;
                                    self.shadow_index[r * cols + j] = (self.wgt[meta * cols + j] as u8 >> (2 * (r % NM_GROUP))) & 3;
                                }
                            }
                        }
                    }
                    (Some(p), Some(band), _) => {
                        let p = p as usize;
                        self.wgt_t.check(p, 1, i)?;
                        self.wgt_t.read(p, t, t.free, i)?;
                        let word = &self.wgt[p * cols..(p + 1) * cols];
                        for k in 0..rows {
                            for j in 0..cols {
                                self.shadow[k * cols + j] = band.at(word, k, j) as i32;
                            }
                        }
                    }
                    (Some(p), None, None) => {
                        let p = p as usize;
                        self.wgt_t.check(p, rows, i)?;
                        for k in 0..rows {
                            self.wgt_t.read(p + k, t, t.free, i)?;
                            for j in 0..cols {
                                self.shadow[k * cols + j] = self.wgt[(p + k) * cols + j] as i32;
                            }
                        }
                    }
                    (None, _, _) => {}
                }
                let acc = acc as usize;
                self.acc_t.check(acc, a.len() as usize, i)?;
                if act4 {
                    self.stream_int4x4(i, a, acc, accumulate, t)?;
                } else if int4 {
                    self.stream_int4(i, a, acc, accumulate, t)?;
                } else if sparse != Sparsity::Dense {
                    self.stream_sparse(i, a, acc, accumulate, sparse, t)?;
                } else {
                    self.stream_dense(i, a, acc, accumulate, t)?;
                }
                if preload.is_some() {
                    std::mem::swap(&mut self.active, &mut self.shadow);
                    std::mem::swap(&mut self.active_index, &mut self.shadow_index);
                    self.active_format = self.shadow_format;
                }
                Ok(())
            }
            Op::MatmulOs { a, b, acc, accumulate, band } => {
                let (rows, cols) = (self.rows, self.cols);
                let (b, acc) = (b as usize, acc as usize);
                let steps = a.len() as usize;
                self.check_band(&band, i)?;
                self.wgt_t.check(b, if band.is_some() { 1 } else { steps }, i)?;
                self.acc_t.check(acc, rows, i)?;
                let mut tile = vec![0i32; rows * cols];
                let mut wrow = vec![0i8; cols];
                for (step, word) in a.addrs().enumerate() {
                    let word = word as usize;
                    self.act_t.check(word, 1, i)?;
                    self.act_t.read(word, t, t.free, i)?;
                    match band {
                        Some(band) => {
                            self.wgt_t.read(b, t, t.free, i)?;
                            let taps = &self.wgt[b * cols..(b + 1) * cols];
                            for (j, w) in wrow.iter_mut().enumerate() {
                                *w = band.at(taps, step, j);
                            }
                        }
                        None => {
                            self.wgt_t.read(b + step, t, t.free, i)?;
                            wrow.copy_from_slice(&self.wgt[(b + step) * cols..(b + step + 1) * cols]);
                        }
                    }
                    for (r, &x) in self.act[word * rows..(word + 1) * rows].iter().enumerate() {
                        let x = x as i32;
                        for (o, &w) in tile[r * cols..(r + 1) * cols].iter_mut().zip(&wrow) {
                            *o = o.wrapping_add(x.wrapping_mul(w as i32));
                        }
                    }
                }
                for r in 0..rows {
                    self.acc_t.write(acc + r, t, t.done, i)?;
                    let out = &mut self.acc[(acc + r) * cols..(acc + r + 1) * cols];
                    for (o, &v) in out.iter_mut().zip(&tile[r * cols..(r + 1) * cols]) {
                        *o = if accumulate { o.wrapping_add(v) } else { v };
                    }
                }
                Ok(())
            }
            Op::Store { acc, dst, out } => {
                let len = dst.len as usize;
                if len > self.cols {
                    return Err(SimError::OutOfBounds {
                        instr: i,
                        detail: format!("store run of {len} bytes exceeds the {} accumulator columns", self.cols),
                    });
                }
                if !(out.param as usize).is_multiple_of(self.cols) {
                    return Err(SimError::MisalignedParam { instr: i, param: out.param, cols: self.cols });
                }
                let acc = acc as usize;
                self.acc_t.check(acc, dst.num_runs() as usize, i)?;
                self.param_t.check(out.param as usize, len, i)?;
                for (e, addr) in dst.run_addrs().enumerate() {
                    let range = dram_range(&mut self.dram_t, dram.len(), (addr, len), (i, t), true)?;
                    self.acc_t.read(acc + e, t, t.done, i)?;
                    for (j, d) in dram[range].iter_mut().enumerate() {
                        *d = self.requant(acc + e, j, out.param as usize + j, &out, t, i)? as u8;
                    }
                }
                Ok(())
            }
            Op::StoreTransposed { acc, row_stride, line_pitch, width, dst, out } => {
                let (len, width, rs, acc) = (dst.len as usize, width as usize, row_stride as usize, acc as usize);
                let (lines, per_line) = (dst.lines() as usize, dst.dims[2].count as usize);
                if width == 0 || width > self.cols {
                    return Err(SimError::OutOfBounds {
                        instr: i,
                        detail: format!("transposed store width {width} outside 1..={}", self.cols),
                    });
                }
                if len > self.transposer_depth {
                    return Err(SimError::OutOfBounds {
                        instr: i,
                        detail: format!("transposed store runs of {len} bytes exceed the transposer depth {}", self.transposer_depth),
                    });
                }
                let blocks = per_line.div_ceil(width);
                let line = |l: usize| acc + l * line_pitch as usize;
                if len > 0 && lines > 0 {
                    self.acc_t.check(line(lines - 1) + (len - 1) * rs, blocks, i)?;
                }
                self.param_t.check(out.param as usize, len, i)?;
                for (e, addr) in dst.run_addrs().enumerate() {
                    let range = dram_range(&mut self.dram_t, dram.len(), (addr, len), (i, t), true)?;
                    let (l, i0) = (e / per_line, e % per_line);
                    let (block, lane) = (i0 / width, i0 % width);
                    for (j, d) in dram[range].iter_mut().enumerate() {
                        let row = line(l) + j * rs + block;
                        self.acc_t.read(row, t, t.done, i)?;
                        *d = self.requant(row, lane, out.param as usize + j, &out, t, i)? as u8;
                    }
                }
                Ok(())
            }
        }
    }

    /// Expands the CSC tile of `values` value words at weight word `p` into the shadow tile
    /// (docs/ARCHITECTURE.md section 3): bit `i` of byte `j` of mask word `q` says whether
    /// PE `(8q + i, j)` holds a nonzero; column `j`'s nonzeros, in row order, are lane `j`
    /// of the value words. Rows whose bit is clear, and set bits beyond the value words,
    /// get 0.
    fn preload_csc(&mut self, i: usize, p: usize, values: usize, t: &InstrTiming) -> Result<(), SimError> {
        let (rows, cols) = (self.rows, self.cols);
        let masks = csc_mask_words(rows);
        self.wgt_t.check(p, masks + values, i)?;
        for w in p..p + masks + values {
            self.wgt_t.read(w, t, t.free, i)?;
        }
        self.shadow.fill(0);
        for j in 0..cols {
            let present = (0..rows).filter(|&k| (self.wgt[(p + k / 8) * cols + j] as u8 >> (k % 8)) & 1 == 1);
            for (v, k) in present.take(values).enumerate() {
                self.shadow[k * cols + j] = self.wgt[(p + masks + v) * cols + j] as i32;
            }
        }
        Ok(())
    }

    /// Streams the activation words `a` through the active dense tile.
    fn stream_dense(&mut self, i: usize, a: WordGen, acc: usize, accumulate: bool, t: &InstrTiming) -> Result<(), SimError> {
        let (rows, cols) = (self.rows, self.cols);
        for (m, word) in a.addrs().enumerate() {
            let word = word as usize;
            self.act_t.check(word, 1, i)?;
            self.act_t.read(word, t, t.free, i)?;
            self.acc_t.write(acc + m, t, t.done, i)?;
            let out = &mut self.acc[(acc + m) * cols..(acc + m + 1) * cols];
            if !accumulate {
                out.fill(0);
            }
            for (k, &x) in self.act[word * rows..(word + 1) * rows].iter().enumerate() {
                let x = x as i32;
                for (o, &w) in out.iter_mut().zip(&self.active[k * cols..(k + 1) * cols]) {
                    *o = o.wrapping_add(x.wrapping_mul(w));
                }
            }
        }
        Ok(())
    }

    /// Reads the K-step of `banks` words at `word` (lane `l` is lane `l % rows` of bank
    /// `l / rows`) into `lanes`.
    fn read_kstep(&mut self, i: usize, word: usize, lanes: &mut [i32], t: &InstrTiming) -> Result<(), SimError> {
        let rows = self.rows;
        for e in 0..lanes.len() / rows {
            let word = word + e * self.bank_words;
            self.act_t.check(word, 1, i)?;
            self.act_t.read(word, t, t.free, i)?;
            for (l, &x) in lanes[e * rows..(e + 1) * rows].iter_mut().zip(&self.act[word * rows..(word + 1) * rows]) {
                *l = x as i32;
            }
        }
        Ok(())
    }

    /// Streams `a` through the active tile, each word standing for a K-step of `banks`
    /// words (see [`Machine::read_kstep`]): `dot(lanes, weights, indices, row)` adds one
    /// K-step's products to an accumulator row.
    #[allow(clippy::too_many_arguments)]
    fn stream_wide(
        &mut self,
        i: usize,
        a: WordGen,
        acc: usize,
        accumulate: bool,
        banks: usize,
        t: &InstrTiming,
        dot: impl Fn(&[i32], &[i32], &[u8], &mut [i32]),
    ) -> Result<(), SimError> {
        let cols = self.cols;
        let mut lanes = vec![0i32; banks * self.rows];
        for (m, word) in a.addrs().enumerate() {
            self.read_kstep(i, word as usize, &mut lanes, t)?;
            self.acc_t.write(acc + m, t, t.done, i)?;
            let out = &mut self.acc[(acc + m) * cols..(acc + m + 1) * cols];
            if !accumulate {
                out.fill(0);
            }
            dot(&lanes, &self.active, &self.active_index, out);
        }
        Ok(())
    }

    /// Streams `a` through the active packed int4 tile: K-steps of two words, PE `(k, j)`
    /// multiplying lane `2k` by its low nibble and lane `2k + 1` by its high nibble.
    fn stream_int4(&mut self, i: usize, a: WordGen, acc: usize, accumulate: bool, t: &InstrTiming) -> Result<(), SimError> {
        let cols = self.cols;
        self.stream_wide(i, a, acc, accumulate, 2, t, |lanes, active, _, out| {
            for (k, pair) in lanes.chunks(2).enumerate() {
                for (j, o) in out.iter_mut().enumerate() {
                    let w = active[k * cols + j];
                    *o = o.wrapping_add(pair[0] * nibble(w, 0) + pair[1] * nibble(w, 1));
                }
            }
        })
    }

    /// Streams `a` through the active quad tile: K-steps of four words, PE `(k, j)`
    /// multiplying lane `4k + b` by nibble `b` of its 16-bit weight, each activation taken
    /// as its low nibble (the 4x4 multipliers see four bits).
    fn stream_int4x4(&mut self, i: usize, a: WordGen, acc: usize, accumulate: bool, t: &InstrTiming) -> Result<(), SimError> {
        let cols = self.cols;
        self.stream_wide(i, a, acc, accumulate, 4, t, |lanes, active, _, out| {
            for (k, quad) in lanes.chunks(4).enumerate() {
                for (j, o) in out.iter_mut().enumerate() {
                    let w = active[k * cols + j];
                    let dot: i32 = quad.iter().enumerate().map(|(b, &x)| nibble(x, 0) * nibble(w, b)).sum();
                    *o = o.wrapping_add(dot);
                }
            }
        })
    }

    /// Streams `a` through the active sparse tile: word `a[m]` stands for the words
    /// `a[m] + e * bank_words` of the `expansion` banks; PE `(r, j)` multiplies lane
    /// `4 * (r / N) + index` of the K-step.
    fn stream_sparse(
        &mut self,
        i: usize,
        a: WordGen,
        acc: usize,
        accumulate: bool,
        format: Sparsity,
        t: &InstrTiming,
    ) -> Result<(), SimError> {
        let (rows, cols, keep) = (self.rows, self.cols, format.kept());
        self.stream_wide(i, a, acc, accumulate, format.expansion(), t, |lanes, active, index, out| {
            for r in 0..rows {
                let group = &lanes[NM_GROUP * (r / keep)..NM_GROUP * (r / keep + 1)];
                for (j, o) in out.iter_mut().enumerate() {
                    let pe = r * cols + j;
                    *o = o.wrapping_add(group[index[pe] as usize].wrapping_mul(active[pe]));
                }
            }
        })
    }

    fn check_band(&self, band: &Option<systole_core::isa::Band>, i: usize) -> Result<(), SimError> {
        match band {
            Some(b) if b.taps as usize > self.cols || b.width as usize > self.cols || b.stride == 0 => Err(SimError::OutOfBounds {
                instr: i,
                detail: format!("{b}: taps and width must be at most {} and stride at least 1", self.cols),
            }),
            _ => Ok(()),
        }
    }

    /// The vector unit: each output row reduces its window's words through the tables.
    fn vector(
        &mut self,
        i: usize,
        window: WordGen,
        (count, stride): (usize, usize),
        acc: usize,
        max: bool,
        t: &InstrTiming,
    ) -> Result<(), SimError> {
        let (rows, cols, width) = (self.rows, self.cols, self.vector_width);
        if window.is_empty() {
            return Err(SimError::OutOfBounds { instr: i, detail: "a Vector op with an empty window".into() });
        }
        self.acc_t.check(acc, count, i)?;
        for e in 0..VECTOR_TABLE_ENTRIES {
            self.table_t.read(e, t, t.free, i)?;
        }
        let mut row = vec![0i32; cols];
        for o in 0..count {
            for (w, word) in window.addrs().enumerate() {
                let word = word as usize + o * stride;
                self.act_t.check(word, 1, i)?;
                self.act_t.read(word, t, t.free, i)?;
                let table = &self.table[if w == 0 { 0 } else { 256 }..][..256];
                for (r, &x) in row[..width].iter_mut().zip(&self.act[word * rows..(word + 1) * rows]) {
                    let v = table[x as u8 as usize];
                    *r = match (w, max) {
                        (0, _) => v,
                        (_, true) => (*r).max(v),
                        (_, false) => r.wrapping_add(v),
                    };
                }
            }
            self.acc_t.write(acc + o, t, t.done, i)?;
            self.acc[(acc + o) * cols..(acc + o + 1) * cols].copy_from_slice(&row);
        }
        Ok(())
    }

    fn requant(&mut self, row: usize, col: usize, param: usize, out: &OutputStage, t: &InstrTiming, i: usize) -> Result<i8, SimError> {
        self.param_t.read(param, t, t.done, i)?;
        Ok(requantize(self.acc[row * self.cols + col], self.params[param], out.zp, out.lo, out.hi))
    }

    fn load(
        &mut self,
        i: usize,
        (target, dst, offset): (Buffer, usize, usize),
        src: &DramPattern,
        t: &InstrTiming,
        dram: &[u8],
    ) -> Result<(), SimError> {
        let len = src.len as usize;
        let (width, mem, tracker) = match target {
            Buffer::Act => (self.rows, &mut self.act, &mut self.act_t),
            Buffer::Wgt => (self.cols, &mut self.wgt, &mut self.wgt_t),
        };
        if offset + len > width {
            return Err(SimError::OutOfBounds {
                instr: i,
                detail: format!("load of {len} bytes at byte {offset} exceeds the {width}-byte word"),
            });
        }
        let runs = src.num_runs() as usize;
        tracker.check(dst, runs, i)?;
        for (e, addr) in src.run_addrs().enumerate() {
            let range = dram_range(&mut self.dram_t, dram.len(), (addr, len), (i, t), false)?;
            tracker.write(dst + e, t, t.done, i)?;
            let word = &mut mem[(dst + e) * width..(dst + e + 1) * width];
            for (w, &b) in word[offset..].iter_mut().zip(&dram[range]) {
                *w = b as i8;
            }
            word[offset + len..].fill(0);
        }
        Ok(())
    }

    fn load_transposed(
        &mut self,
        i: usize,
        dst: usize,
        pitch: usize,
        src: &DramPattern,
        t: &InstrTiming,
        dram: &[u8],
    ) -> Result<(), SimError> {
        let (rows, len) = (self.rows, src.len as usize);
        if len > self.transposer_depth {
            return Err(SimError::OutOfBounds {
                instr: i,
                detail: format!("transposed load runs of {len} bytes exceed the transposer depth {}", self.transposer_depth),
            });
        }
        let outer = src.dims[0].count as usize;
        let inner = src.dims[1].count as usize * src.dims[2].count as usize;
        let groups = inner.div_ceil(rows);
        if len == 0 || groups == 0 || outer == 0 {
            return Ok(());
        }
        let word = |i2: usize, g: usize, j: usize| dst + g * pitch + i2 * len + j;
        self.act_t.check(word(outer - 1, groups - 1, 0), len, i)?;
        for i2 in 0..outer {
            for g in 0..groups {
                for j in 0..len {
                    let w = word(i2, g, j);
                    self.act_t.write(w, t, t.done, i)?;
                    self.act[w * rows..(w + 1) * rows].fill(0);
                }
            }
        }
        for (e, addr) in src.run_addrs().enumerate() {
            let range = dram_range(&mut self.dram_t, dram.len(), (addr, len), (i, t), false)?;
            let (i2, e) = (e / inner, e % inner);
            let (g, lane) = (e / rows, e % rows);
            for (j, &b) in dram[range].iter().enumerate() {
                self.act[word(i2, g, j) * rows + lane] = b as i8;
            }
        }
        Ok(())
    }
}

/// Every op is one of `arch`'s, and a program uses one engine.
fn check_ops(arch: &ArchConfig, program: &Program) -> Result<(), SimError> {
    if let Some((instr, ins)) = program.instrs.iter().enumerate().find(|(_, ins)| !arch.supports(&ins.op)) {
        return Err(SimError::Unsupported { instr, op: ins.to_string(), arch: arch.name.clone() });
    }
    let first = |os: bool| {
        program.instrs.iter().position(|ins| matches!((&ins.op, os), (Op::MatmulWs { .. }, false) | (Op::MatmulOs { .. }, true)))
    };
    if let (Some(ws), Some(os)) = (first(false), first(true)) {
        return Err(SimError::MixedDataflows { ws, os, arch: arch.name.clone() });
    }
    Ok(())
}

/// The outcome of running a program.
#[derive(Debug, Clone)]
pub struct Execution {
    /// Timing of every instruction, in program order.
    pub timing: Vec<InstrTiming>,
    /// Measurements (name and output digest left for the caller).
    pub report: LayerReport,
}

/// Runs `program` on `arch` against the DRAM image `dram` (inputs already placed), leaving
/// the outputs in it.
pub fn execute(arch: &ArchConfig, program: &Program, dram: &mut [u8]) -> Result<Execution, SimError> {
    execute_observed(arch, program, dram, |_, _| {})
}

/// [`execute`], calling `after(i, dram)` once instruction `i`'s effect is applied. Effects
/// are applied in start order and no other unit touches the same DRAM line while an
/// instruction is in flight, so after a layer's last store the DRAM holds its output.
pub fn execute_observed(
    arch: &ArchConfig,
    program: &Program,
    dram: &mut [u8],
    mut after: impl FnMut(usize, &[u8]),
) -> Result<Execution, SimError> {
    let mut m = Machine::new(arch, dram.len());
    run_on(&mut m, arch, program, dram, &mut after)
}

/// A program run in segments (`systole_core::segment`): the whole program's execution
/// with every segment's times moved by the cycles of the segments before it (so a
/// segment's first cycle follows the last one's end), and each segment's instructions and
/// cycles.
#[derive(Debug, Clone)]
pub struct Segmented {
    /// Timing of every instruction (cycles counted across segments) and the report.
    pub execution: Execution,
    /// Program indices and cycles of each segment, in order.
    pub segments: Vec<(std::ops::Range<usize>, u64)>,
}

/// Runs `program` against `dram` as a board whose instruction memories hold `depth`
/// instructions per unit runs it: in the segments of `systole_core::segment::segment_bounds`,
/// each from cycle 0 once the one before has finished, the scratchpads, accumulators,
/// tables and array registers keeping their contents between them. `after(i, dram)` follows
/// program instruction `i`.
pub fn execute_segmented(
    arch: &ArchConfig,
    program: &Program,
    depth: usize,
    dram: &mut [u8],
    mut after: impl FnMut(usize, &[u8]),
) -> Result<Segmented, SimError> {
    let bounds = segment_bounds(&program.instrs, depth)?;
    let mut m = Machine::new(arch, dram.len());
    let mut timing = Vec::with_capacity(program.instrs.len());
    let mut segments = Vec::with_capacity(bounds.len());
    let mut offset = 0;
    for range in bounds {
        let part = segment_program(program, range.clone());
        m.restart();
        let start = range.start;
        let exe = run_on(&mut m, arch, &part, dram, &mut |i, d: &[u8]| after(start + i, d))?;
        timing.extend(exe.timing.iter().map(|t| InstrTiming {
            start: t.start + offset,
            free: t.free + offset,
            done: t.done + offset,
            ..*t
        }));
        segments.push((range, exe.report.cycles));
        offset += exe.report.cycles;
    }
    let report = window_report(arch, (&program.instrs, program.macs), &timing, 0..offset);
    Ok(Segmented { execution: Execution { timing, report }, segments })
}

/// Runs `program` on the state `m`.
fn run_on(
    m: &mut Machine,
    arch: &ArchConfig,
    program: &Program,
    dram: &mut [u8],
    after: &mut impl FnMut(usize, &[u8]),
) -> Result<Execution, SimError> {
    check_ops(arch, program)?;
    let timing = schedule(arch, &program.instrs)?;
    let mut order: Vec<usize> = (0..program.instrs.len()).collect();
    order.sort_by_key(|&i| (timing[i].start, timing[i].unit.index(), i));
    for &i in &order {
        m.step(i, &program.instrs[i].op, &timing[i], dram)?;
        after(i, dram);
    }
    let report = build_report(arch, program, &timing);
    Ok(Execution { timing, report })
}

/// The fast path: the report of `program` on `arch` from the exact schedule and each
/// instruction's fields, without moving data. It equals [`execute`]'s report (output digest
/// aside) for every program `execute` accepts; it does not check bounds or races.
pub fn estimate(arch: &ArchConfig, program: &Program) -> Result<Execution, SimError> {
    check_ops(arch, program)?;
    let timing = schedule(arch, &program.instrs)?;
    let report = build_report(arch, program, &timing);
    Ok(Execution { timing, report })
}

fn build_report(arch: &ArchConfig, program: &Program, timing: &[InstrTiming]) -> LayerReport {
    let total = timing.iter().map(|t| t.done).max().unwrap_or(0);
    window_report(arch, (&program.instrs, program.macs), timing, 0..total)
}

/// The report of the instructions `instrs` (with `macs` useful MACs) of a longer program,
/// timed by `timing`, over the cycles `window`: what a layer of a network program adds to
/// it, when `window` runs from the end of the layers before it to its own end. Every cycle
/// of the window is attributed to one cause, from the array's point of view (exec time of
/// these instructions outside the window is clipped).
pub fn window_report(
    arch: &ArchConfig,
    (instrs, macs): (&[Instr], u64),
    timing: &[InstrTiming],
    window: std::ops::Range<u64>,
) -> LayerReport {
    let counts = access_totals(arch, instrs);
    let (from, total) = (window.start, window.end);
    let clip = |c: u64| c.clamp(from, total);
    let mut busy = [0u64; 3];
    let mut count = [0u64; 3];
    for t in timing {
        busy[t.unit.index()] += t.free - t.start;
        count[t.unit.index()] += 1;
    }
    // Attribute every cycle to one cause from the array's point of view.
    let (mut compute, mut fill_drain) = (0u64, 0u64);
    let mut cursor = from;
    let mut last_done = from;
    for t in timing.iter().filter(|t| t.unit == Unit::Exec) {
        let (start, free) = (clip(t.start).max(cursor), clip(t.free).max(cursor));
        let useful = t.useful.min(free - start);
        compute += useful;
        fill_drain += free - start - useful;
        cursor = free;
        last_done = clip(t.done);
    }
    fill_drain += last_done.saturating_sub(cursor);
    let stall = (total - from) - compute - fill_drain;
    let exec = busy[Unit::Exec.index()];
    let dma = busy[Unit::Load.index()].max(busy[Unit::Store.index()]);
    let names = ["load", "exec", "store"];
    LayerReport {
        cycles: total - from,
        cycles_by_cause: [("compute", compute), ("fill_drain", fill_drain), ("dram_stall", stall)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        utilization: utilization(macs, arch.pes() as u64, total - from),
        unit_busy: names.iter().zip(busy).map(|(k, v)| (k.to_string(), v)).collect(),
        instructions: names.iter().zip(count).map(|(k, v)| (k.to_string(), v)).collect(),
        bound: if exec >= dma { "compute" } else { "memory" }.into(),
        ..counts.report(macs)
    }
}
