//! The controller (docs/ARCHITECTURE.md sections 4 and 9): per-unit instruction memories,
//! fetch, decode, the `Sync` waits and the cycle counter.
//!
//! The host writes each unit's instructions, in program order, into that unit's memory as
//! the 512-bit words of `Instr::encode` (the host splits the program by unit), then pulses
//! `run` with the three instruction counts. Program cycle 0 is the cycle after `run`.
//!
//! A unit's memory is `512 / F` bits wide (`F = ArchConfig::fetch_cycles`): the host writes
//! instruction `i` as its `F` parts, part `k` (bits `k*512/F ..`) at index `i*F + k`. Each
//! unit fetches its next instruction one part per cycle, starting in the cycle its previous
//! instruction issues (or in the `run` cycle): parts `0..F-1` are kept in registers, the
//! last part is the memory's registered read itself, so an instruction is whole `F` cycles
//! after its predecessor issued, and `F - 1` cycles into the program for the first. It then
//! issues in the first cycle in which it is whole, its engine is `ready` and every other
//! unit has completed at least the instruction's `Sync` count: exactly the start rule of
//! `core::timing::schedule`. Completions count at the engines' `complete` pulses (the
//! cycle before `done`). When every instruction has completed, `finished` rises and
//! `cycles` holds the program's total `T` from then on.
//!
//! The decoder is generated from `Instr::layout`, so the field positions exist once, in
//! `systole-core`. It decodes only the ops the configuration has (`ArchConfig::supports`):
//! the start ports of the others are constant 0, so synthesis removes their engines. The
//! instruction counters are as wide as the memory depth needs (the host never sends a
//! `Sync` count beyond a unit's instruction count: `core::timing::schedule` refuses such a
//! program), and the address fields keep only the bits the memories decode: scratchpad
//! addresses as many as the largest scratchpad needs, DRAM addresses `dram_addr_bits`
//! (the board memory wraps at its size), which is exact for every address inside them.

use crate::dram::DRAM_ADDR_BITS;
use crate::sram::ADDR_BITS;
use rust_hdl::prelude::*;
use std::fmt::Write;
use systole_core::isa::{Buffer, DramPattern, FieldSlot, Instr, Op, OutputStage, Sync, WordGen, INSTR_BITS};
use systole_core::ArchConfig;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// 64-bit words per instruction.
pub const INSTR_WORDS: usize = INSTR_BITS / 64;

/// Width of the cycle counter.
pub const CYCLE_BITS: usize = 48;

/// The controller.
#[derive(LogicBlock)]
pub struct Controller {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Host: write `host_word` as part `host_index % F` of instruction `host_index / F` of
    /// unit `host_unit` (0 load, 1 exec, 2 store).
    pub host_we: Signal<In, Bit>,
    /// Host: unit.
    pub host_unit: Signal<In, Bits<2>>,
    /// Host: instruction index within the unit.
    pub host_index: Signal<In, Addr>,
    /// Host: one part of the encoded instruction (`8 / fetch_cycles` words of 64 bits),
    /// least significant word first.
    pub host_word: Vec<Signal<In, Bits<64>>>,
    /// Host: start the program in the next cycle.
    pub run: Signal<In, Bit>,
    /// Instructions per unit (load, exec, store), sampled with `run`.
    pub count: Vec<Signal<In, Addr>>,
    /// A program is running.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    /// Cycles since program cycle 0 (the total once finished).
    pub cycles: Signal<Out, Bits<CYCLE_BITS>>,
    /// Each unit's engine may start an instruction (load, exec, store).
    pub unit_ready: Vec<Signal<In, Bit>>,
    /// Each unit completes an instruction in this cycle.
    pub unit_complete: Vec<Signal<In, Bit>>,
    /// Start a `Load`.
    pub start_load: Signal<Out, Bit>,
    /// Start a `LoadTransposed`.
    pub start_load_t: Signal<Out, Bit>,
    /// Start a `LoadParams`.
    pub start_params: Signal<Out, Bit>,
    /// Start a `MatmulWs`.
    pub start_ws: Signal<Out, Bit>,
    /// Start a `MatmulOs`.
    pub start_os: Signal<Out, Bit>,
    /// Start a `Store`.
    pub start_store: Signal<Out, Bit>,
    /// Start a `StoreTransposed`.
    pub start_store_t: Signal<Out, Bit>,
    /// Load unit fields (see [`FIELDS`]).
    pub ld_target: Signal<Out, Bit>,
    /// `dst` of the load ops.
    pub ld_dst: Signal<Out, Addr>,
    /// `offset` of `Load`.
    pub ld_offset: Signal<Out, Bits<16>>,
    /// `pitch` of `LoadTransposed`.
    pub ld_pitch: Signal<Out, Addr>,
    /// DRAM address of the load ops.
    pub ld_addr: Signal<Out, DAddr>,
    /// `src.len`.
    pub ld_len: Signal<Out, Bits<16>>,
    /// `src.dims[i].count`.
    pub ld_count: Vec<Signal<Out, Bits<24>>>,
    /// `src.dims[i].stride`.
    pub ld_stride: Vec<Signal<Out, DAddr>>,
    /// `count` of `LoadParams`.
    pub ld_entries: Signal<Out, Bits<24>>,
    /// `a.start`.
    pub ex_a_start: Signal<Out, Addr>,
    /// `a.inner_count`.
    pub ex_a_inner_count: Signal<Out, Addr>,
    /// `a.inner_stride`.
    pub ex_a_inner_stride: Signal<Out, Addr>,
    /// `a.outer_count`.
    pub ex_a_outer_count: Signal<Out, Addr>,
    /// `a.outer_stride`.
    pub ex_a_outer_stride: Signal<Out, Addr>,
    /// `acc` of the matmuls.
    pub ex_acc: Signal<Out, Addr>,
    /// `accumulate`.
    pub ex_accumulate: Signal<Out, Bit>,
    /// `preload.is_some()` of `MatmulWs`.
    pub ex_preload_valid: Signal<Out, Bit>,
    /// `preload` of `MatmulWs`.
    pub ex_preload: Signal<Out, Addr>,
    /// `b` of `MatmulOs`.
    pub ex_b: Signal<Out, Addr>,
    /// `band.is_some()`.
    pub ex_band_valid: Signal<Out, Bit>,
    /// `band.stride`.
    pub ex_band_stride: Signal<Out, Bits<8>>,
    /// Exec: WS tile format (0 dense, 1 2:4, 2 1:4).
    pub ex_sparse: Signal<Out, Bits<2>>,
    /// Exec: WS tiles of packed int4 weights.
    pub ex_int4: Signal<Out, Bit>,
    /// Exec: WS quad tiles, int4 weights and activations.
    pub ex_act4: Signal<Out, Bit>,
    /// Exec: the WS preload is a CSC tile.
    pub ex_csc_valid: Signal<Out, Bit>,
    /// Exec: its value words.
    pub ex_csc: Signal<Out, Bits<16>>,
    /// `band.taps`.
    pub ex_band_taps: Signal<Out, Bits<16>>,
    /// `band.width`.
    pub ex_band_width: Signal<Out, Bits<16>>,
    /// `acc` of the stores.
    pub st_acc: Signal<Out, Addr>,
    /// `row_stride` of `StoreTransposed`.
    pub st_row_stride: Signal<Out, Addr>,
    /// `line_pitch` of `StoreTransposed`.
    pub st_line_pitch: Signal<Out, Addr>,
    /// `width` of `StoreTransposed`.
    pub st_width: Signal<Out, Bits<16>>,
    /// DRAM address of the stores.
    pub st_addr: Signal<Out, DAddr>,
    /// `dst.len`.
    pub st_len: Signal<Out, Bits<16>>,
    /// `dst.dims[i].count`.
    pub st_count: Vec<Signal<Out, Bits<24>>>,
    /// `dst.dims[i].stride`.
    pub st_stride: Vec<Signal<Out, DAddr>>,
    /// `out.param`.
    pub st_param: Signal<Out, Addr>,
    /// `out.zp`.
    pub st_zp: Signal<Out, Signed<8>>,
    /// `out.lo`.
    pub st_lo: Signal<Out, Signed<8>>,
    /// `out.hi`.
    pub st_hi: Signal<Out, Signed<8>>,
    _depth: usize,
    _fetch: usize,
    _st: State,
}

/// What a decoded field is, for how many of its bits the hardware keeps.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldKind {
    /// A scratchpad, accumulator or table address or address step.
    Sram,
    /// A DRAM address or stride.
    Dram,
    /// A pattern's loop count or a table entry count: without the transposer, at most the
    /// largest memory's words (a run writes or reads one word, an entry one entry).
    Count,
    /// A run's length or byte offset: without the transposer, at most `max(rows, cols)`.
    Len,
    /// A band's taps or width: at most `cols` (the simulator refuses more).
    Band,
    /// Anything else (matmul counts, flags, output stage): every bit.
    Whole,
}

/// One decoded output port: name, width, unit, and the `(opcode, ISA field)` it takes for
/// each op of the unit that has it (0 for the others).
pub type FieldPort = (&'static str, usize, usize, &'static [(u64, &'static str)]);

/// The kind of the field port `name`.
pub fn field_kind(name: &str) -> FieldKind {
    const SRAM: &[&str] = &[
        "ld_dst",
        "ld_pitch",
        "ex_a_start",
        "ex_a_inner_stride",
        "ex_a_outer_stride",
        "ex_acc",
        "ex_preload",
        "ex_b",
        "st_acc",
        "st_row_stride",
        "st_line_pitch",
        "st_param",
    ];
    if SRAM.contains(&name) {
        FieldKind::Sram
    } else if name.ends_with("_addr") || name.contains("_stride$") {
        FieldKind::Dram
    } else if name.contains("_count$") || name == "ld_entries" {
        FieldKind::Count
    } else if ["ld_len", "st_len", "ld_offset"].contains(&name) {
        FieldKind::Len
    } else if ["ex_band_taps", "ex_band_width"].contains(&name) {
        FieldKind::Band
    } else {
        FieldKind::Whole
    }
}

/// The most words (or rows, or entries) of `arch`'s scratchpads, accumulator and table.
fn most_words(arch: &ArchConfig) -> usize {
    arch.act_words().max(arch.wgt_words()).max(arch.acc_rows()).max(arch.param_entries)
}

/// Address bits the scratchpads, the accumulator and the parameter table of `arch` decode.
pub fn sram_addr_bits(arch: &ArchConfig) -> usize {
    (usize::BITS - (most_words(arch) - 1).leading_zeros()).max(1) as usize
}

/// Bits the controller keeps of the pattern and entry count fields (24 in the ISA): the
/// width the DMA engines' loop counters need.
pub fn count_bits(arch: &ArchConfig) -> usize {
    kept_bits(arch, FieldKind::Count, 24, DRAM_ADDR_BITS)
}

/// Bits the controller keeps of the run length fields (16 in the ISA): the width the DMA
/// engines' beat counters need.
pub fn len_bits(arch: &ArchConfig) -> usize {
    kept_bits(arch, FieldKind::Len, 16, DRAM_ADDR_BITS)
}

/// Bits the controller keeps of a field of `kind` that the ISA gives `width` bits.
///
/// Counts and lengths are narrowed only without the transposer: a plain load or store
/// writes or reads one word per run and the simulator bounds them by the memories, but a
/// transposed load with pitch 0 may have any number of runs. Every narrowing is exact for
/// the programs the simulator accepts.
fn kept_bits(arch: &ArchConfig, kind: FieldKind, width: usize, dram_addr_bits: usize) -> usize {
    match kind {
        FieldKind::Sram => sram_addr_bits(arch).min(width),
        FieldKind::Dram => dram_addr_bits.min(width),
        FieldKind::Count if !arch.transposer => bits_for(most_words(arch)).min(width),
        FieldKind::Len if !arch.transposer => bits_for(arch.rows.max(arch.cols)).min(width),
        FieldKind::Band => bits_for(arch.cols).min(width),
        _ => width,
    }
}

/// The decoded output ports.
pub const FIELDS: &[FieldPort] = &[
    ("ld_target", 1, 0, &[(1, "target")]),
    ("ld_dst", ADDR_BITS, 0, &[(1, "dst"), (2, "dst"), (3, "dst")]),
    ("ld_offset", 16, 0, &[(1, "offset")]),
    ("ld_pitch", ADDR_BITS, 0, &[(2, "pitch")]),
    ("ld_addr", DRAM_ADDR_BITS, 0, &[(1, "addr"), (2, "addr"), (3, "addr")]),
    ("ld_len", 16, 0, &[(1, "len"), (2, "len")]),
    ("ld_count$0", 24, 0, &[(1, "dims[0].count"), (2, "dims[0].count")]),
    ("ld_count$1", 24, 0, &[(1, "dims[1].count"), (2, "dims[1].count")]),
    ("ld_count$2", 24, 0, &[(1, "dims[2].count"), (2, "dims[2].count")]),
    ("ld_stride$0", DRAM_ADDR_BITS, 0, &[(1, "dims[0].stride"), (2, "dims[0].stride")]),
    ("ld_stride$1", DRAM_ADDR_BITS, 0, &[(1, "dims[1].stride"), (2, "dims[1].stride")]),
    ("ld_stride$2", DRAM_ADDR_BITS, 0, &[(1, "dims[2].stride"), (2, "dims[2].stride")]),
    ("ld_entries", 24, 0, &[(3, "count")]),
    ("ex_a_start", ADDR_BITS, 1, &[(4, "a.start"), (5, "a.start")]),
    ("ex_a_inner_count", ADDR_BITS, 1, &[(4, "a.inner_count"), (5, "a.inner_count")]),
    ("ex_a_inner_stride", ADDR_BITS, 1, &[(4, "a.inner_stride"), (5, "a.inner_stride")]),
    ("ex_a_outer_count", ADDR_BITS, 1, &[(4, "a.outer_count"), (5, "a.outer_count")]),
    ("ex_a_outer_stride", ADDR_BITS, 1, &[(4, "a.outer_stride"), (5, "a.outer_stride")]),
    ("ex_acc", ADDR_BITS, 1, &[(4, "acc"), (5, "acc")]),
    ("ex_accumulate", 1, 1, &[(4, "accumulate"), (5, "accumulate")]),
    ("ex_preload_valid", 1, 1, &[(4, "preload.valid")]),
    ("ex_preload", ADDR_BITS, 1, &[(4, "preload")]),
    ("ex_b", ADDR_BITS, 1, &[(5, "b")]),
    ("ex_band_valid", 1, 1, &[(4, "band.valid"), (5, "band.valid")]),
    ("ex_band_stride", 8, 1, &[(4, "band.stride"), (5, "band.stride")]),
    ("ex_sparse", 2, 1, &[(4, "sparse")]),
    ("ex_int4", 1, 1, &[(4, "int4")]),
    ("ex_act4", 1, 1, &[(4, "act4")]),
    ("ex_csc_valid", 1, 1, &[(4, "csc.valid")]),
    ("ex_csc", 16, 1, &[(4, "csc")]),
    ("ex_band_taps", 16, 1, &[(4, "band.taps"), (5, "band.taps")]),
    ("ex_band_width", 16, 1, &[(4, "band.width"), (5, "band.width")]),
    ("st_acc", ADDR_BITS, 2, &[(6, "acc"), (7, "acc")]),
    ("st_row_stride", ADDR_BITS, 2, &[(7, "row_stride")]),
    ("st_line_pitch", ADDR_BITS, 2, &[(7, "line_pitch")]),
    ("st_width", 16, 2, &[(7, "width")]),
    ("st_addr", DRAM_ADDR_BITS, 2, &[(6, "addr"), (7, "addr")]),
    ("st_len", 16, 2, &[(6, "len"), (7, "len")]),
    ("st_count$0", 24, 2, &[(6, "dims[0].count"), (7, "dims[0].count")]),
    ("st_count$1", 24, 2, &[(6, "dims[1].count"), (7, "dims[1].count")]),
    ("st_count$2", 24, 2, &[(6, "dims[2].count"), (7, "dims[2].count")]),
    ("st_stride$0", DRAM_ADDR_BITS, 2, &[(6, "dims[0].stride"), (7, "dims[0].stride")]),
    ("st_stride$1", DRAM_ADDR_BITS, 2, &[(6, "dims[1].stride"), (7, "dims[1].stride")]),
    ("st_stride$2", DRAM_ADDR_BITS, 2, &[(6, "dims[2].stride"), (7, "dims[2].stride")]),
    ("st_param", ADDR_BITS, 2, &[(6, "out.param"), (7, "out.param")]),
    ("st_zp", 8, 2, &[(6, "out.zp"), (7, "out.zp")]),
    ("st_lo", 8, 2, &[(6, "out.lo"), (7, "out.lo")]),
    ("st_hi", 8, 2, &[(6, "out.hi"), (7, "out.hi")]),
];

/// The start port of each opcode.
const STARTS: &[(u64, &str)] = &[
    (1, "start_load"),
    (2, "start_load_t"),
    (3, "start_params"),
    (4, "start_ws"),
    (5, "start_os"),
    (6, "start_store"),
    (7, "start_store_t"),
];

/// One op of each opcode, for their layouts.
fn sample_ops() -> Vec<Op> {
    let (src, a, out) = (DramPattern::default(), WordGen::default(), OutputStage::default());
    vec![
        Op::Load { target: Buffer::Act, dst: 0, offset: 0, src },
        Op::LoadTransposed { dst: 0, pitch: 0, src },
        Op::LoadParams { dst: 0, addr: 0, count: 0 },
        Op::dense_ws(a, 0, false, None, None),
        Op::MatmulOs { a, b: 0, acc: 0, accumulate: false, band: None },
        Op::Store { acc: 0, dst: src, out },
        Op::StoreTransposed { acc: 0, row_stride: 0, line_pitch: 0, width: 0, dst: src, out },
    ]
}

/// The opcodes of the ops `arch` has.
fn supported_opcodes(arch: &ArchConfig) -> Vec<u64> {
    sample_ops()
        .into_iter()
        .filter(|op| arch.supports(op))
        .map(|op| Instr { sync: Sync::default(), op }.encode().expect("sample ops encode")[0] & 0xf)
        .collect()
}

/// For each entry of [`FIELDS`], the slot per listed opcode that `arch` has (narrowed to the
/// bits the hardware keeps); plus the sync slots, narrowed to `count_bits`.
fn decoder(arch: &ArchConfig, dram_addr_bits: usize, count_bits: usize) -> (Vec<Vec<(u64, FieldSlot)>>, [FieldSlot; 3]) {
    let supported = supported_opcodes(arch);
    let layouts: Vec<(u64, Vec<FieldSlot>)> = sample_ops()
        .into_iter()
        .map(|op| {
            let ins = Instr { sync: Sync::default(), op };
            let words = ins.encode().expect("sample ops encode");
            (words[0] & 0xf, ins.layout().expect("sample ops encode"))
        })
        .collect();
    let find = |opcode: u64, name: &str| -> FieldSlot {
        let (_, layout) = layouts.iter().find(|(o, _)| *o == opcode).expect("every opcode has a sample");
        *layout.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("opcode {opcode} has no field `{name}`"))
    };
    let fields = FIELDS
        .iter()
        .map(|&(port, width, _, srcs)| {
            let kept = kept_bits(arch, field_kind(port), width, dram_addr_bits);
            srcs.iter()
                .filter(|(op, _)| supported.contains(op))
                .map(|&(op, name)| {
                    let s = find(op, name);
                    (op, FieldSlot { bits: s.bits.min(kept as u32), ..s })
                })
                .collect()
        })
        .collect();
    let sync = ["sync.load", "sync.exec", "sync.store"].map(|n| {
        let s = find(1, n);
        FieldSlot { bits: s.bits.min(count_bits as u32), ..s }
    });
    (fields, sync)
}

#[derive(Clone, Debug, Default)]
struct State {
    /// Per unit: `depth * F` memory words of `8 / F` lanes.
    imem: [Vec<Vec<u64>>; 3],
    /// Per unit: the memory's registered read.
    rd: [Vec<u64>; 3],
    /// Per unit: parts `0..F-1` of the instruction being fetched.
    parts: [Vec<Vec<u64>>; 3],
    /// Per unit: parts whose reads have been issued for instruction `pc` (`F`: whole).
    fk: [u64; 3],
    pc: [u64; 3],
    n: [u64; 3],
    done: [u64; 3],
    running: bool,
    finished: bool,
    cycles: u64,
    fields: Vec<Vec<(u64, FieldSlot)>>,
    sync: [FieldSlot; 3],
    starts: Vec<(u64, &'static str)>,
    count_mask: u64,
}

impl State {
    /// Unit `u`'s instruction as the decoder sees it: the kept parts, then the read.
    fn word(&self, u: usize) -> [u64; INSTR_WORDS] {
        let lanes = self.parts[u].iter().chain([&self.rd[u]]).flatten().copied().collect::<Vec<_>>();
        std::array::from_fn(|w| lanes[w])
    }
}

/// Bits that hold the numbers `0..=n`.
fn bits_for(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).max(1) as usize
}

impl Controller {
    /// The controller of `arch` with `depth` instructions per unit, for a DRAM that decodes
    /// `dram_addr_bits` address bits.
    pub fn new(arch: &ArchConfig, depth: usize, dram_addr_bits: usize) -> Self {
        let fetch = arch.fetch_cycles.max(1);
        let count_bits = bits_for(depth);
        let (fields, sync) = decoder(arch, dram_addr_bits, count_bits);
        let supported = supported_opcodes(arch);
        let starts = STARTS.iter().filter(|(o, _)| supported.contains(o)).copied().collect();
        let lanes = INSTR_WORDS / fetch;
        Self {
            clock: Default::default(),
            host_we: Default::default(),
            host_unit: Default::default(),
            host_index: Default::default(),
            host_word: (0..lanes).map(|_| Default::default()).collect(),
            run: Default::default(),
            count: (0..3).map(|_| Default::default()).collect(),
            running: Default::default(),
            finished: Default::default(),
            cycles: Default::default(),
            unit_ready: (0..3).map(|_| Default::default()).collect(),
            unit_complete: (0..3).map(|_| Default::default()).collect(),
            start_load: Default::default(),
            start_load_t: Default::default(),
            start_params: Default::default(),
            start_ws: Default::default(),
            start_os: Default::default(),
            start_store: Default::default(),
            start_store_t: Default::default(),
            ld_target: Default::default(),
            ld_dst: Default::default(),
            ld_offset: Default::default(),
            ld_pitch: Default::default(),
            ld_addr: Default::default(),
            ld_len: Default::default(),
            ld_count: (0..3).map(|_| Default::default()).collect(),
            ld_stride: (0..3).map(|_| Default::default()).collect(),
            ld_entries: Default::default(),
            ex_a_start: Default::default(),
            ex_a_inner_count: Default::default(),
            ex_a_inner_stride: Default::default(),
            ex_a_outer_count: Default::default(),
            ex_a_outer_stride: Default::default(),
            ex_acc: Default::default(),
            ex_accumulate: Default::default(),
            ex_preload_valid: Default::default(),
            ex_preload: Default::default(),
            ex_b: Default::default(),
            ex_band_valid: Default::default(),
            ex_band_stride: Default::default(),
            ex_sparse: Default::default(),
            ex_int4: Default::default(),
            ex_act4: Default::default(),
            ex_csc_valid: Default::default(),
            ex_csc: Default::default(),
            ex_band_taps: Default::default(),
            ex_band_width: Default::default(),
            st_acc: Default::default(),
            st_row_stride: Default::default(),
            st_line_pitch: Default::default(),
            st_width: Default::default(),
            st_addr: Default::default(),
            st_len: Default::default(),
            st_count: (0..3).map(|_| Default::default()).collect(),
            st_stride: (0..3).map(|_| Default::default()).collect(),
            st_param: Default::default(),
            st_zp: Default::default(),
            st_lo: Default::default(),
            st_hi: Default::default(),
            _depth: depth,
            _fetch: fetch,
            _st: State {
                imem: std::array::from_fn(|_| vec![vec![0; lanes]; depth * fetch]),
                rd: std::array::from_fn(|_| vec![0; lanes]),
                parts: std::array::from_fn(|_| vec![vec![0; lanes]; fetch - 1]),
                fields,
                sync,
                starts,
                count_mask: (1 << count_bits) - 1,
                ..Default::default()
            },
        }
    }

    fn set_field(&mut self, name: &str, v: u64) {
        let b = |v: u64| -> Bits<24> { v.into() };
        match name {
            "ld_target" => self.ld_target.next = v != 0,
            "ld_dst" => self.ld_dst.next = b(v),
            "ld_offset" => self.ld_offset.next = v.into(),
            "ld_pitch" => self.ld_pitch.next = b(v),
            "ld_addr" => self.ld_addr.next = v.into(),
            "ld_len" => self.ld_len.next = v.into(),
            "ld_count$0" => self.ld_count[0].next = v.into(),
            "ld_count$1" => self.ld_count[1].next = v.into(),
            "ld_count$2" => self.ld_count[2].next = v.into(),
            "ld_stride$0" => self.ld_stride[0].next = v.into(),
            "ld_stride$1" => self.ld_stride[1].next = v.into(),
            "ld_stride$2" => self.ld_stride[2].next = v.into(),
            "ld_entries" => self.ld_entries.next = v.into(),
            "ex_a_start" => self.ex_a_start.next = b(v),
            "ex_a_inner_count" => self.ex_a_inner_count.next = b(v),
            "ex_a_inner_stride" => self.ex_a_inner_stride.next = b(v),
            "ex_a_outer_count" => self.ex_a_outer_count.next = b(v),
            "ex_a_outer_stride" => self.ex_a_outer_stride.next = b(v),
            "ex_acc" => self.ex_acc.next = b(v),
            "ex_accumulate" => self.ex_accumulate.next = v != 0,
            "ex_preload_valid" => self.ex_preload_valid.next = v != 0,
            "ex_preload" => self.ex_preload.next = b(v),
            "ex_b" => self.ex_b.next = b(v),
            "ex_band_valid" => self.ex_band_valid.next = v != 0,
            "ex_band_stride" => self.ex_band_stride.next = v.into(),
            "ex_sparse" => self.ex_sparse.next = v.into(),
            "ex_int4" => self.ex_int4.next = v != 0,
            "ex_act4" => self.ex_act4.next = v != 0,
            "ex_csc_valid" => self.ex_csc_valid.next = v != 0,
            "ex_csc" => self.ex_csc.next = v.into(),
            "ex_band_taps" => self.ex_band_taps.next = v.into(),
            "ex_band_width" => self.ex_band_width.next = v.into(),
            "st_acc" => self.st_acc.next = b(v),
            "st_row_stride" => self.st_row_stride.next = b(v),
            "st_line_pitch" => self.st_line_pitch.next = b(v),
            "st_width" => self.st_width.next = v.into(),
            "st_addr" => self.st_addr.next = v.into(),
            "st_len" => self.st_len.next = v.into(),
            "st_count$0" => self.st_count[0].next = v.into(),
            "st_count$1" => self.st_count[1].next = v.into(),
            "st_count$2" => self.st_count[2].next = v.into(),
            "st_stride$0" => self.st_stride[0].next = v.into(),
            "st_stride$1" => self.st_stride[1].next = v.into(),
            "st_stride$2" => self.st_stride[2].next = v.into(),
            "st_param" => self.st_param.next = b(v),
            "st_zp" => self.st_zp.next = (v as u8 as i8 as i64).into(),
            "st_lo" => self.st_lo.next = (v as u8 as i8 as i64).into(),
            "st_hi" => self.st_hi.next = (v as u8 as i8 as i64).into(),
            _ => unreachable!("FIELDS names only the ports above"),
        }
    }

    fn start_port(&mut self, name: &str) -> &mut Signal<Out, Bit> {
        match name {
            "start_load" => &mut self.start_load,
            "start_load_t" => &mut self.start_load_t,
            "start_params" => &mut self.start_params,
            "start_ws" => &mut self.start_ws,
            "start_os" => &mut self.start_os,
            "start_store" => &mut self.start_store,
            _ => &mut self.start_store_t,
        }
    }
}

impl Logic for Controller {
    fn update(&mut self) {
        let words: [[u64; INSTR_WORDS]; 3] = std::array::from_fn(|u| self._st.word(u));
        let opcode = |u: usize| words[u][0] & 0xf;
        let mut values = Vec::with_capacity(FIELDS.len());
        for (f, &(name, _, unit, _)) in FIELDS.iter().enumerate() {
            let v = self._st.fields[f].iter().find(|(o, _)| *o == opcode(unit)).map_or(0, |&(_, s)| s.raw(&words[unit]));
            values.push((name, v));
        }
        for (name, v) in values {
            self.set_field(name, v);
        }
        let fetch = self._fetch as u64;
        let st = &self._st;
        let issue: [bool; 3] = std::array::from_fn(|u| {
            st.running
                && st.pc[u] < st.n[u]
                && st.fk[u] == fetch
                && self.unit_ready[u].val()
                && (0..3).all(|v| v == u || st.done[v] >= st.sync[v].raw(&words[u]))
        });
        for &(_, port) in STARTS {
            self.start_port(port).next = false;
        }
        let starts = self._st.starts.clone();
        for (u, _) in issue.iter().enumerate().filter(|(_, &i)| i) {
            if let Some(&(_, port)) = starts.iter().find(|(o, _)| *o == opcode(u)) {
                self.start_port(port).next = true;
            }
        }
        let st = &self._st;
        let all_done = (0..3).all(|u| st.pc[u] == st.n[u] && st.done[u] == st.n[u]);
        self.running.next = st.running;
        self.finished.next = st.finished;
        self.cycles.next = st.cycles.into();
        if !self.clock.pos_edge() {
            return;
        }
        let mut n = self._st.clone();
        let slots = self._depth * self._fetch;
        if self.host_we.val() {
            let (u, i) = (self.host_unit.val().index(), self.host_index.val().index());
            if u < 3 && i < slots {
                n.imem[u][i] = self.host_word.iter().map(|w| w.val().to_u64()).collect();
            }
        }
        let run = self.run.val();
        for (u, &issued) in issue.iter().enumerate() {
            let (pc, fk) = (st.pc[u], st.fk[u]);
            let read = if run {
                0
            } else if issued {
                (pc + 1) * fetch
            } else if fk < fetch {
                pc * fetch + fk
            } else {
                pc * fetch + fetch - 1
            };
            n.rd[u] = st.imem[u].get(read as usize).cloned().unwrap_or_else(|| vec![0; st.rd[u].len()]);
            if fk >= 1 && fk < fetch {
                n.parts[u][fk as usize - 1] = st.rd[u].clone();
            }
            n.fk[u] = if run || issued { 1 } else { (fk + 1).min(fetch) };
            n.pc[u] = if run { 0 } else { (pc + issued as u64) & st.count_mask };
            n.done[u] = if run { 0 } else { (st.done[u] + self.unit_complete[u].val() as u64) & st.count_mask };
        }
        if run {
            n.n = std::array::from_fn(|u| self.count[u].val().index() as u64 & st.count_mask);
            (n.running, n.finished, n.cycles) = (true, false, 0);
        } else if st.running {
            if all_done {
                (n.running, n.finished) = (false, true);
            } else {
                n.cycles = st.cycles + 1;
            }
        }
        self._st = n;
    }

    fn connect(&mut self) {
        for s in [
            &mut self.running,
            &mut self.finished,
            &mut self.start_load,
            &mut self.start_load_t,
            &mut self.start_params,
            &mut self.start_ws,
            &mut self.start_os,
            &mut self.start_store,
            &mut self.start_store_t,
            &mut self.ld_target,
            &mut self.ex_accumulate,
            &mut self.ex_preload_valid,
            &mut self.ex_band_valid,
            &mut self.ex_int4,
            &mut self.ex_act4,
            &mut self.ex_csc_valid,
        ] {
            s.connect();
        }
        self.cycles.connect();
        for s in [
            &mut self.ld_dst,
            &mut self.ld_pitch,
            &mut self.ex_a_start,
            &mut self.ex_a_inner_count,
            &mut self.ex_a_inner_stride,
            &mut self.ex_a_outer_count,
            &mut self.ex_a_outer_stride,
            &mut self.ex_acc,
            &mut self.ex_preload,
            &mut self.ex_b,
            &mut self.st_acc,
            &mut self.st_row_stride,
            &mut self.st_line_pitch,
            &mut self.st_param,
        ] {
            s.connect();
        }
        for s in [
            &mut self.ld_offset,
            &mut self.ld_len,
            &mut self.ex_band_taps,
            &mut self.ex_band_width,
            &mut self.ex_csc,
            &mut self.st_width,
            &mut self.st_len,
        ] {
            s.connect();
        }
        self.ex_band_stride.connect();
        self.ex_sparse.connect();
        for s in self.ld_count.iter_mut().chain(self.st_count.iter_mut()).chain([&mut self.ld_entries]) {
            s.connect();
        }
        for s in self.ld_stride.iter_mut().chain(self.st_stride.iter_mut()).chain([&mut self.ld_addr, &mut self.st_addr]) {
            s.connect();
        }
        for s in [&mut self.st_zp, &mut self.st_lo, &mut self.st_hi] {
            s.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let st = &self._st;
        let (fetch, lanes) = (self._fetch, self.host_word.len());
        let slots = self._depth * fetch;
        let part = 64 * lanes;
        let cb = bits_for(self._depth);
        let fb = bits_for(fetch);
        let mut v = String::new();
        let word = (0..lanes).rev().map(|w| format!("host_word${w}")).collect::<Vec<_>>().join(", ");
        let slice = |u: usize, s: FieldSlot| format!("w{u}[{} +: {}]", s.offset, s.bits);
        // `no_rw_check`: the host writes the memories only while no program runs, and the
        // read that matters, in the `run` cycle, follows its last write.
        for u in 0..3 {
            let kept: Vec<String> = (0..fetch - 1).rev().map(|k| format!("part{u}_{k}")).collect();
            let _ = write!(
                v,
                "(* no_rw_check *) reg [{top}:0] imem{u} [0:{last}];
reg [{top}:0] rd{u};
{parts}wire [{wtop}:0] w{u} = {{{concat}}};
reg [{ctop}:0] pc{u}, n{u}, done{u};
reg [{ftop}:0] fk{u};
reg [31:0] ra{u};
reg issue{u};
wire [3:0] op{u} = w{u}[3:0];
",
                top = part - 1,
                last = slots - 1,
                parts = kept.iter().map(|p| format!("reg [{}:0] {p};\n", part - 1)).collect::<String>(),
                wtop = INSTR_BITS - 1,
                concat = std::iter::once(format!("rd{u}")).chain(kept.iter().cloned()).collect::<Vec<_>>().join(", "),
                ctop = cb - 1,
                ftop = fb - 1,
            );
        }
        let inits: String = (0..3)
            .map(|u| {
                let parts: String = (0..fetch - 1).map(|k| format!(" part{u}_{k} = 0;")).collect();
                format!("    rd{u} = 0; fk{u} = 0; pc{u} = 0; n{u} = 0; done{u} = 0;{parts}\n")
            })
            .collect();
        let _ = write!(
            v,
            "reg run_r, fin_r;
reg [{cbits}:0] cyc;
reg all_done;
integer ii;
initial begin
    for (ii = 0; ii < {slots}; ii = ii + 1) begin imem0[ii] = 0; imem1[ii] = 0; imem2[ii] = 0; end
{inits}    run_r = 0; fin_r = 0; cyc = 0;
end
always @(*) begin
    running = run_r;
    finished = fin_r;
    cycles = cyc;
",
            cbits = CYCLE_BITS - 1,
        );
        for u in 0..3 {
            let waits: Vec<String> = (0..3).filter(|&w| w != u).map(|w| format!("done{w} >= {}", slice(u, st.sync[w]))).collect();
            let _ = writeln!(v, "    issue{u} = run_r && pc{u} < n{u} && fk{u} == {fetch} && unit_ready${u} && {};", waits.join(" && "));
            let _ = writeln!(
                v,
                "    ra{u} = run ? 32'd0 : issue{u} ? (pc{u} + 32'd1) * {fetch} : fk{u} < {fetch} ? pc{u} * {fetch} + fk{u} : pc{u} * {fetch} + {};",
                fetch - 1
            );
        }
        let _ = writeln!(v, "    all_done = pc0 == n0 && pc1 == n1 && pc2 == n2 && done0 == n0 && done1 == n1 && done2 == n2;");
        let mut ports: Vec<&str> = STARTS.iter().map(|&(_, p)| p).collect();
        ports.dedup();
        for p in ports {
            let ors: Vec<String> = st
                .starts
                .iter()
                .filter(|&&(_, q)| q == p)
                .map(|&(o, _)| {
                    let u = if o <= 3 {
                        0
                    } else if o <= 5 {
                        1
                    } else {
                        2
                    };
                    format!("(issue{u} && op{u} == 4'd{o})")
                })
                .collect();
            let rhs = if ors.is_empty() { "1'b0".to_string() } else { ors.join(" || ") };
            let _ = writeln!(v, "    {p} = {rhs};");
        }
        for (f, &(name, width, unit, _)) in FIELDS.iter().enumerate() {
            let _ = writeln!(v, "    {name} = 0;\n    case (op{unit})");
            for &(o, s) in &st.fields[f] {
                let _ = writeln!(v, "        4'd{o}: {name} = {};", slice(unit, s));
            }
            let _ = writeln!(v, "        default: {name} = {width}'d0;\n    endcase");
        }
        let _ = write!(v, "end\nalways @(posedge clock) begin\n");
        for u in 0..3 {
            let _ = writeln!(v, "    if (host_we && host_unit == {u} && host_index < {slots}) imem{u}[host_index] <= {{{word}}};");
        }
        for u in 0..3 {
            let _ = writeln!(
                v,
                "    rd{u} <= ra{u} < {slots} ? imem{u}[ra{u}] : {part}'d0;
    fk{u} <= (run || issue{u}) ? {fb}'d1 : fk{u} < {fetch} ? fk{u} + {fb}'d1 : fk{u};
    pc{u} <= run ? {cb}'d0 : pc{u} + issue{u};
    done{u} <= run ? {cb}'d0 : done{u} + unit_complete${u};"
            );
            for k in 0..fetch - 1 {
                let _ = writeln!(v, "    if (fk{u} == {}) part{u}_{k} <= rd{u};", k + 1);
            }
        }
        let _ = write!(
            v,
            "    if (run) begin
        n0 <= count$0[{ctop}:0]; n1 <= count$1[{ctop}:0]; n2 <= count$2[{ctop}:0];
        run_r <= 1; fin_r <= 0; cyc <= 0;
    end else if (run_r) begin
        if (all_done) begin run_r <= 0; fin_r <= 1; end
        else cyc <= cyc + 1;
    end
end
",
            ctop = cb - 1
        );
        Verilog::Custom(v)
    }
}
