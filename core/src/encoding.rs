//! The instruction encoding, declared once: one field table per opcode ([`OPS`]).
//!
//! [`Instr::encode`], [`Instr::decode`], [`OpSpec::layout`] and the RTL controller's decoder
//! are all generated from these tables; the only per-op code is the conversion between an
//! [`Op`] and its field values in table order ([`Op::field_values`], `Op::from_field_values`),
//! whose agreement with the tables a test checks for every opcode.
//!
//! An encoded instruction is [`INSTR_BITS`] bits, little-endian u64 words: the header
//! ([`HEADER`]: opcode, then the three sync counts), then the op's fields in table order,
//! each at its width, LSB first (docs/ARCHITECTURE.md, "Encoding").

use crate::arch::Sparsity;
use crate::isa::{Band, Buffer, Dim, DramPattern, Instr, Op, OutputStage, Sync, Unit, WordGen};

/// Width of an encoded instruction.
pub const INSTR_BITS: usize = 512;

/// 64-bit words of an encoded instruction.
pub const INSTR_WORDS: usize = INSTR_BITS / 64;

/// An op's variant as encoded in the instruction's first [`OPCODE_BITS`] bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Opcode {
    /// [`Op::Load`].
    Load = 1,
    /// [`Op::LoadTransposed`].
    LoadTransposed = 2,
    /// [`Op::LoadParams`].
    LoadParams = 3,
    /// [`Op::MatmulWs`].
    MatmulWs = 4,
    /// [`Op::MatmulOs`].
    MatmulOs = 5,
    /// [`Op::Store`].
    Store = 6,
    /// [`Op::StoreTransposed`].
    StoreTransposed = 7,
    /// [`Op::LoadTable`].
    LoadTable = 8,
    /// [`Op::Vector`].
    Vector = 9,
}

/// Bits of the opcode field.
pub const OPCODE_BITS: u32 = 4;

impl Opcode {
    /// Every opcode, in code order.
    pub const ALL: [Opcode; 9] = [
        Opcode::Load,
        Opcode::LoadTransposed,
        Opcode::LoadParams,
        Opcode::MatmulWs,
        Opcode::MatmulOs,
        Opcode::Store,
        Opcode::StoreTransposed,
        Opcode::LoadTable,
        Opcode::Vector,
    ];

    /// The encoded value.
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The opcode encoded as `code`, if any.
    pub fn from_code(code: u64) -> Option<Opcode> {
        Self::ALL.into_iter().find(|o| o.code() == code)
    }

    /// The op's field table.
    pub fn spec(self) -> &'static OpSpec {
        &OPS[self as usize - 1]
    }

    /// The unit that executes the op.
    pub fn unit(self) -> Unit {
        self.spec().unit
    }
}

/// One field of the encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Name, e.g. `src.dims[2].stride` is `dims[2].stride`.
    pub name: &'static str,
    /// Width in bits (at most 64).
    pub bits: u32,
    /// Two's complement.
    pub signed: bool,
}

const fn unsigned(name: &'static str, bits: u32) -> Field {
    Field { name, bits, signed: false }
}

const fn signed(name: &'static str, bits: u32) -> Field {
    Field { name, bits, signed: true }
}

/// Bits of an instruction's scratchpad, accumulator and parameter-table addresses: an
/// instance's memories hold at most `2^WORD_ADDRESS_BITS` words, rows or entries each.
pub const WORD_ADDRESS_BITS: u32 = width::WORD;

/// Field widths shared by several fields.
mod width {
    pub const SYNC: u32 = 32;
    pub const WORD: u32 = 24;
    pub const ADDR: u32 = 40;
    pub const LEN: u32 = 16;
    pub const COUNT: u32 = 24;
    pub const STRIDE: u32 = 40;
}
use width::*;

/// The fields every instruction starts with.
pub const HEADER: &[Field] =
    &[unsigned("opcode", OPCODE_BITS), unsigned("sync.load", SYNC), unsigned("sync.exec", SYNC), unsigned("sync.store", SYNC)];

/// A group of fields: one of the shared structures, or (unnamed) an op's own fields.
#[derive(Debug)]
struct Group {
    name: Option<&'static str>,
    fields: &'static [Field],
}

const fn own(fields: &'static [Field]) -> Group {
    Group { name: None, fields }
}

/// A [`DramPattern`].
const PATTERN: Group = Group {
    name: Some("DramPattern"),
    fields: &[
        unsigned("addr", ADDR),
        unsigned("len", LEN),
        unsigned("dims[0].count", COUNT),
        signed("dims[0].stride", STRIDE),
        unsigned("dims[1].count", COUNT),
        signed("dims[1].stride", STRIDE),
        unsigned("dims[2].count", COUNT),
        signed("dims[2].stride", STRIDE),
    ],
};

/// A [`WordGen`].
const WORD_GEN: Group = Group {
    name: Some("WordGen"),
    fields: &[
        unsigned("a.start", WORD),
        unsigned("a.inner_count", WORD),
        unsigned("a.inner_stride", WORD),
        unsigned("a.outer_count", WORD),
        unsigned("a.outer_stride", WORD),
    ],
};

/// An optional [`Band`].
const BAND: Group = Group {
    name: Some("Band"),
    fields: &[unsigned("band.valid", 1), unsigned("band.stride", 8), unsigned("band.taps", 16), unsigned("band.width", 16)],
};

/// An [`OutputStage`].
const STAGE: Group = Group {
    name: Some("OutputStage"),
    fields: &[unsigned("out.param", WORD), signed("out.zp", 8), signed("out.lo", 8), signed("out.hi", 8)],
};

/// One opcode's encoding: its unit and its fields, in encoding order, as groups.
#[derive(Debug)]
pub struct OpSpec {
    /// The opcode.
    pub opcode: Opcode,
    /// The unit that executes it.
    pub unit: Unit,
    groups: &'static [Group],
}

/// The field table of every opcode, in code order. A field that several ops of a unit have
/// sits at the same position in each (the tables put shared fields first), so the
/// controller's decoder takes each field from one place, without a multiplexer.
pub const OPS: [OpSpec; 9] = [
    OpSpec {
        opcode: Opcode::Load,
        unit: Unit::Load,
        groups: &[own(&[unsigned("dst", WORD)]), PATTERN, own(&[unsigned("offset", LEN), unsigned("target", 1)])],
    },
    OpSpec {
        opcode: Opcode::LoadTransposed,
        unit: Unit::Load,
        groups: &[own(&[unsigned("dst", WORD)]), PATTERN, own(&[unsigned("pitch", WORD)])],
    },
    OpSpec {
        opcode: Opcode::LoadParams,
        unit: Unit::Load,
        groups: &[own(&[unsigned("dst", WORD), unsigned("addr", ADDR), unsigned("count", COUNT)])],
    },
    OpSpec {
        opcode: Opcode::MatmulWs,
        unit: Unit::Exec,
        groups: &[
            WORD_GEN,
            own(&[unsigned("acc", WORD), unsigned("accumulate", 1)]),
            BAND,
            own(&[
                unsigned("preload.valid", 1),
                unsigned("preload", WORD),
                unsigned("sparse", 2),
                unsigned("int4", 1),
                unsigned("act4", 1),
                unsigned("csc.valid", 1),
                unsigned("csc", 16),
            ]),
        ],
    },
    OpSpec {
        opcode: Opcode::MatmulOs,
        unit: Unit::Exec,
        groups: &[WORD_GEN, own(&[unsigned("acc", WORD), unsigned("accumulate", 1)]), BAND, own(&[unsigned("b", WORD)])],
    },
    OpSpec { opcode: Opcode::Store, unit: Unit::Store, groups: &[own(&[unsigned("acc", WORD)]), PATTERN, STAGE] },
    OpSpec {
        opcode: Opcode::StoreTransposed,
        unit: Unit::Store,
        groups: &[
            own(&[unsigned("acc", WORD)]),
            PATTERN,
            STAGE,
            own(&[unsigned("row_stride", WORD), unsigned("line_pitch", WORD), unsigned("width", LEN)]),
        ],
    },
    OpSpec {
        opcode: Opcode::LoadTable,
        unit: Unit::Load,
        groups: &[own(&[unsigned("dst", WORD), unsigned("addr", ADDR), unsigned("count", COUNT)])],
    },
    OpSpec {
        opcode: Opcode::Vector,
        unit: Unit::Exec,
        groups: &[WORD_GEN, own(&[unsigned("acc", WORD)]), own(&[unsigned("count", COUNT), unsigned("stride", WORD), unsigned("max", 1)])],
    },
];

/// Where one field of an encoded instruction sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldSlot {
    /// Field name, e.g. `dims[2].stride`.
    pub name: &'static str,
    /// First bit.
    pub offset: u32,
    /// Width in bits.
    pub bits: u32,
    /// Two's complement.
    pub signed: bool,
}

impl FieldSlot {
    /// The field's bits (at most 64) in the encoded instruction `words`, unsigned.
    pub fn raw(&self, words: &[u64; INSTR_WORDS]) -> u64 {
        (0..self.bits.min(64)).fold(0u64, |raw, b| {
            let p = self.offset + b;
            raw | (words[(p / 64) as usize] >> (p % 64) & 1) << b
        })
    }

    /// The field's value in `words`, sign-extended when signed.
    pub fn value(&self, words: &[u64; INSTR_WORDS]) -> i128 {
        let raw = self.raw(words) as i128;
        if self.signed && raw >> (self.bits - 1) & 1 == 1 {
            raw - (1i128 << self.bits)
        } else {
            raw
        }
    }

    fn fits(&self, value: i128) -> bool {
        if self.signed {
            value >= -(1i128 << (self.bits - 1)) && value < (1i128 << (self.bits - 1))
        } else {
            value >= 0 && value < (1i128 << self.bits)
        }
    }

    fn put(&self, words: &mut [u64; INSTR_WORDS], value: i128) {
        let raw = (value as u128) & ((1u128 << self.bits) - 1);
        // A field spans at most two words: fields are at most 64 bits wide.
        let (word, shift) = ((self.offset / 64) as usize, self.offset % 64);
        let shifted = raw << shift;
        words[word] |= shifted as u64;
        if let Some(next) = words.get_mut(word + 1) {
            *next |= (shifted >> 64) as u64;
        }
    }
}

impl OpSpec {
    /// The op's fields after the header, in encoding order.
    pub fn fields(&self) -> impl Iterator<Item = &'static Field> {
        self.groups.iter().flat_map(|g| g.fields.iter())
    }

    /// Where every field sits, header first, in encoding order.
    pub fn layout(&self) -> Vec<FieldSlot> {
        let mut offset = 0;
        HEADER
            .iter()
            .chain(self.fields())
            .map(|f| {
                let slot = FieldSlot { name: f.name, offset, bits: f.bits, signed: f.signed };
                offset += f.bits;
                slot
            })
            .collect()
    }

    /// The slot of field `name` (header fields included).
    pub fn slot(&self, name: &str) -> Option<FieldSlot> {
        self.layout().into_iter().find(|s| s.name == name)
    }

    /// True when the op has a field called `name` after the header.
    pub fn has(&self, name: &str) -> bool {
        self.fields().any(|f| f.name == name)
    }
}

/// `name bits` for each field, `signed` marked.
fn describe(fields: &[Field]) -> String {
    let one = |f: &Field| format!("{} {}{}", f.name, f.bits, if f.signed { " signed" } else { "" });
    fields.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// The encoding as the Markdown tables of docs/ARCHITECTURE.md section 8: the shared
/// field groups, then each opcode's fields after the header.
pub fn markdown_tables() -> String {
    let mut groups: Vec<&Group> = Vec::new();
    for g in OPS.iter().flat_map(|s| s.groups.iter()).filter(|g| g.name.is_some()) {
        if groups.iter().all(|h| h.name != g.name) {
            groups.push(g);
        }
    }
    let mut t = String::from("| field group | widths |\n|---|---|\n");
    t += &format!("| header | {} |\n", describe(HEADER));
    for g in groups {
        t += &format!("| `{}` | {} |\n", g.name.unwrap_or_default(), describe(g.fields));
    }
    t += "\n| opcode | op | fields after the header |\n|---|---|---|\n";
    for s in &OPS {
        let fields: Vec<String> = s.groups.iter().map(|g| g.name.map_or_else(|| describe(g.fields), str::to_string)).collect();
        t += &format!("| {} | {:?} | {} |\n", s.opcode.code(), s.opcode, fields.join(", "));
    }
    t
}

/// A field that does not fit its encoding width.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` = {value} does not fit in {bits} bits")]
pub struct EncodeError {
    /// Field name.
    pub field: &'static str,
    /// Its value.
    pub value: i128,
    /// Width available.
    pub bits: u32,
}

fn pattern_values(p: &DramPattern) -> impl Iterator<Item = i128> + '_ {
    [p.addr as i128, p.len as i128].into_iter().chain(p.dims.iter().flat_map(|d| [d.count as i128, d.stride as i128]))
}

fn word_gen_values(g: &WordGen) -> [i128; 5] {
    [g.start, g.inner_count, g.inner_stride, g.outer_count, g.outer_stride].map(|v| v as i128)
}

fn band_values(band: &Option<Band>) -> [i128; 4] {
    let b = band.unwrap_or(Band { stride: 0, taps: 0, width: 0 });
    [band.is_some() as i128, b.stride as i128, b.taps as i128, b.width as i128]
}

fn stage_values(o: &OutputStage) -> [i128; 4] {
    [o.param as i128, o.zp as i128, o.lo as i128, o.hi as i128]
}

/// Field values in table order, read one at a time while decoding.
struct Values<I: Iterator<Item = i128>>(I);

impl<I: Iterator<Item = i128>> Values<I> {
    fn next(&mut self) -> i128 {
        self.0.next().expect("the field table and Op::from_field_values agree (tested)")
    }
    fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    fn flag(&mut self) -> bool {
        self.next() != 0
    }
    fn pattern(&mut self) -> DramPattern {
        let (addr, len) = (self.next() as u64, self.u32());
        let dims = [(); 3].map(|_| Dim { count: self.u32(), stride: self.next() as i64 });
        DramPattern { addr, len, dims }
    }
    fn word_gen(&mut self) -> WordGen {
        WordGen { start: self.u32(), inner_count: self.u32(), inner_stride: self.u32(), outer_count: self.u32(), outer_stride: self.u32() }
    }
    fn band(&mut self) -> Option<Band> {
        let valid = self.flag();
        let b = Band { stride: self.u32(), taps: self.u32(), width: self.u32() };
        valid.then_some(b)
    }
    fn stage(&mut self) -> OutputStage {
        OutputStage { param: self.u32(), zp: self.next() as i8, lo: self.next() as i8, hi: self.next() as i8 }
    }
}

impl Op {
    /// The op's opcode.
    pub fn opcode(&self) -> Opcode {
        match self {
            Op::Load { .. } => Opcode::Load,
            Op::LoadTransposed { .. } => Opcode::LoadTransposed,
            Op::LoadParams { .. } => Opcode::LoadParams,
            Op::MatmulWs { .. } => Opcode::MatmulWs,
            Op::MatmulOs { .. } => Opcode::MatmulOs,
            Op::Store { .. } => Opcode::Store,
            Op::StoreTransposed { .. } => Opcode::StoreTransposed,
            Op::LoadTable { .. } => Opcode::LoadTable,
            Op::Vector { .. } => Opcode::Vector,
        }
    }

    /// The values of the op's fields, in the order of its [`OpSpec`].
    pub fn field_values(&self) -> Vec<i128> {
        let mut v: Vec<i128> = Vec::with_capacity(32);
        match self {
            Op::Load { target, dst, offset, src } => {
                v.push(*dst as i128);
                v.extend(pattern_values(src));
                v.extend([*offset as i128, (*target == Buffer::Wgt) as i128]);
            }
            Op::LoadTransposed { dst, pitch, src } => {
                v.push(*dst as i128);
                v.extend(pattern_values(src));
                v.push(*pitch as i128);
            }
            Op::LoadParams { dst, addr, count } | Op::LoadTable { dst, addr, count } => {
                v.extend([*dst as i128, *addr as i128, *count as i128])
            }
            Op::Vector { window, count, stride, acc, max } => {
                v.extend(word_gen_values(window));
                v.extend([*acc as i128, *count as i128, *stride as i128, *max as i128]);
            }
            Op::MatmulWs { a, acc, accumulate, preload, band, sparse, int4, act4, csc } => {
                v.extend(word_gen_values(a));
                v.extend([*acc as i128, *accumulate as i128]);
                v.extend(band_values(band));
                v.extend([preload.is_some() as i128, preload.unwrap_or(0) as i128]);
                let format = Sparsity::ALL.iter().position(|f| f == sparse).expect("a format");
                v.extend([format as i128, *int4 as i128, *act4 as i128, csc.is_some() as i128, csc.unwrap_or(0) as i128]);
            }
            Op::MatmulOs { a, b, acc, accumulate, band } => {
                v.extend(word_gen_values(a));
                v.extend([*acc as i128, *accumulate as i128]);
                v.extend(band_values(band));
                v.push(*b as i128);
            }
            Op::Store { acc, dst, out } => {
                v.push(*acc as i128);
                v.extend(pattern_values(dst));
                v.extend(stage_values(out));
            }
            Op::StoreTransposed { acc, row_stride, line_pitch, width, dst, out } => {
                v.push(*acc as i128);
                v.extend(pattern_values(dst));
                v.extend(stage_values(out));
                v.extend([*row_stride as i128, *line_pitch as i128, *width as i128]);
            }
        }
        v
    }

    /// The op of `opcode` whose fields have `values` (in table order); `None` for a value no
    /// op has (an unknown sparsity format).
    fn from_field_values(opcode: Opcode, values: impl Iterator<Item = i128>) -> Option<Op> {
        let mut r = Values(values);
        Some(match opcode {
            Opcode::Load => {
                let (dst, src, offset) = (r.u32(), r.pattern(), r.u32());
                Op::Load { target: if r.flag() { Buffer::Wgt } else { Buffer::Act }, dst, offset, src }
            }
            Opcode::LoadTransposed => Op::LoadTransposed { dst: r.u32(), src: r.pattern(), pitch: r.u32() },
            Opcode::LoadParams => Op::LoadParams { dst: r.u32(), addr: r.next() as u64, count: r.u32() },
            Opcode::LoadTable => Op::LoadTable { dst: r.u32(), addr: r.next() as u64, count: r.u32() },
            Opcode::Vector => {
                let (window, acc, count, stride) = (r.word_gen(), r.u32(), r.u32(), r.u32());
                Op::Vector { window, count, stride, acc, max: r.flag() }
            }
            Opcode::MatmulWs => {
                let (a, acc, accumulate, band) = (r.word_gen(), r.u32(), r.flag(), r.band());
                let (preload_valid, preload) = (r.flag(), r.u32());
                let sparse = *Sparsity::ALL.get(r.next() as usize)?;
                let (int4, act4, csc_valid, csc) = (r.flag(), r.flag(), r.flag(), r.u32());
                Op::MatmulWs {
                    a,
                    acc,
                    accumulate,
                    preload: preload_valid.then_some(preload),
                    band,
                    sparse,
                    int4,
                    act4,
                    csc: csc_valid.then_some(csc),
                }
            }
            Opcode::MatmulOs => Op::MatmulOs { a: r.word_gen(), acc: r.u32(), accumulate: r.flag(), band: r.band(), b: r.u32() },
            Opcode::Store => Op::Store { acc: r.u32(), dst: r.pattern(), out: r.stage() },
            Opcode::StoreTransposed => Op::StoreTransposed {
                acc: r.u32(),
                dst: r.pattern(),
                out: r.stage(),
                row_stride: r.u32(),
                line_pitch: r.u32(),
                width: r.u32(),
            },
        })
    }
}

impl Instr {
    /// Encodes to [`INSTR_BITS`] bits as little-endian u64 words, as [`OpSpec::layout`] places
    /// the fields of the op's table.
    pub fn encode(&self) -> Result<[u64; INSTR_WORDS], EncodeError> {
        let s = self.sync;
        let header = [self.op.opcode().code() as i128, s.load as i128, s.exec as i128, s.store as i128];
        let values = self.op.field_values();
        let layout = self.layout();
        debug_assert_eq!(layout.len(), header.len() + values.len(), "the field table and Op::field_values agree (tested)");
        let mut words = [0u64; INSTR_WORDS];
        for (slot, value) in layout.iter().zip(header.into_iter().chain(values)) {
            if !slot.fits(value) {
                return Err(EncodeError { field: slot.name, value, bits: slot.bits });
            }
            slot.put(&mut words, value);
        }
        Ok(words)
    }

    /// Where each field of this instruction's op sits in its encoding, in encoding order:
    /// its opcode's [`OpSpec::layout`].
    pub fn layout(&self) -> Vec<FieldSlot> {
        self.op.opcode().spec().layout()
    }

    /// Decodes what [`Instr::encode`] wrote; `None` for an unknown opcode or format.
    pub fn decode(words: &[u64; INSTR_WORDS]) -> Option<Instr> {
        let opcode = Opcode::from_code(words[0] & ((1 << OPCODE_BITS) - 1))?;
        let layout = opcode.spec().layout();
        let value = |i: usize| layout[i].value(words) as u32;
        let sync = Sync { load: value(1), exec: value(2), store: value(3) };
        let op = Op::from_field_values(opcode, layout[HEADER.len()..].iter().map(|s| s.value(words)))?;
        Some(Instr { sync, op })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::tests::sample_ops;

    #[test]
    fn every_table_matches_its_ops_values_and_fits_the_instruction() {
        for op in sample_ops() {
            let spec = op.opcode().spec();
            assert_eq!(spec.opcode, op.opcode());
            assert_eq!(spec.unit, op.unit(), "{:?}", spec.opcode);
            assert_eq!(spec.fields().count(), op.field_values().len(), "{:?}", spec.opcode);
            let last = *spec.layout().last().unwrap();
            assert!((last.offset + last.bits) as usize <= INSTR_BITS, "{:?} needs {} bits", spec.opcode, last.offset + last.bits);
        }
    }

    #[test]
    fn the_architecture_document_shows_these_tables() {
        let doc = include_str!("../../docs/ARCHITECTURE.md");
        let tables = markdown_tables();
        assert!(doc.contains(&tables), "docs/ARCHITECTURE.md section 8 should hold:\n{tables}");
    }

    #[test]
    fn a_field_shared_by_ops_of_a_unit_sits_in_one_place() {
        for a in &OPS {
            for b in OPS.iter().filter(|b| b.unit == a.unit) {
                for s in a.layout() {
                    if let Some(t) = b.slot(s.name) {
                        assert_eq!(s, t, "{:?} and {:?} place `{}` differently", a.opcode, b.opcode, s.name);
                    }
                }
            }
        }
    }

    #[test]
    fn opcodes_are_their_table_positions() {
        for (i, spec) in OPS.iter().enumerate() {
            assert_eq!(spec.opcode.code(), i as u64 + 1);
            assert_eq!(Opcode::from_code(spec.opcode.code()), Some(spec.opcode));
        }
        assert_eq!(Opcode::from_code(0), None);
        assert_eq!(Opcode::from_code(10), None);
    }

    #[test]
    fn no_field_names_repeat_within_an_op() {
        for spec in &OPS {
            let layout = spec.layout();
            for (i, s) in layout.iter().enumerate() {
                assert!(layout[..i].iter().all(|t| t.name != s.name), "{:?} repeats `{}`", spec.opcode, s.name);
            }
        }
    }
}
