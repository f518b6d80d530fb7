//! The controller (docs/ARCHITECTURE.md sections 4 and 9): per-unit instruction memories,
//! fetch, decode, the `Sync` waits and the cycle counter.
//!
//! The host writes each unit's instructions, in program order, into that unit's memory as
//! the 512-bit words of `Instr::encode` packed by [`InstrFormat::pack`] (the host splits the
//! program by unit), then pulses `run` with the three instruction counts. Program cycle 0
//! is the cycle after `run`. With an instruction queue (`ArchConfig::instr_queue`) the
//! memories hold `Q` instructions per unit: the host writes each unit's first `Q`, and the
//! [`Fetcher`] streams the others from DRAM into the slots their predecessors free
//! (docs/ARCHITECTURE.md sections 5 and 9).
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
//! The controller and each unit's [`UnitSequencer`] (memory, fetch, decoder, counters) are
//! written once, as `hdl_gen` kernels. The packed format comes from the opcodes' field
//! tables (`systole_core::encoding`), so the field positions exist once, in `systole-core`;
//! `PORTS` names each decoded port's unit and ISA field once. In the packed image every
//! field has one place, so the decoder cuts it from the instruction's 32-bit lanes with
//! its lanes, shifts and kept bits as constants: wires. It decodes only the opcodes the
//! configuration has
//! (`ArchConfig::has_opcode`):
//! the start ports of the others are constant 0, so synthesis removes their engines. The
//! instruction counters are as wide as the memory depth needs (the host never sends a
//! `Sync` count beyond a unit's instruction count: `core::timing::schedule` refuses such a
//! program), and the address fields keep only the bits the memories decode: scratchpad
//! addresses as many as the largest scratchpad needs, DRAM addresses `dram_addr_bits`
//! (the board memory wraps at its size), which is exact for every address inside them.

use crate::delay::Delay;
use crate::dma::DmaPattern;
use crate::fetch::Fetcher;
use crate::fields::{ExecStarts, LoadFields, LoadStarts, MatmulFields, StoreFields, StoreStarts, UnitStatus};
use crate::requant::OutputStage;
use crate::sram::{SyncRam, ADDR_BITS};
use crate::verilog::low_mask;
use crate::wiring::{constants, signals, Router};
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::encoding::OPCODE_BITS;
use systole_core::isa::{FieldSlot, Opcode, Unit, INSTR_BITS, INSTR_WORDS};
use systole_core::{ArchConfig, Dataflow};

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

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
    /// With an instruction queue (one each, else none): the DRAM address of the streamed
    /// instructions ([`Fetcher`]), sampled with `run`...
    pub stream_addr: Vec<Signal<In, DAddr>>,
    /// ... their number...
    pub stream_count: Vec<Signal<In, Addr>>,
    /// ... the fetcher's DRAM read address...
    pub ir_addr: Vec<Signal<Out, DAddr>>,
    /// ... and the part read in the previous cycle (`8 / F` words).
    pub ir_data: Vec<Signal<In, Bits<64>>>,
    /// A program is running.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    /// Cycles since program cycle 0 (the total once finished).
    pub cycles: Signal<Out, Bits<CYCLE_BITS>>,
    /// The load unit's readiness and completions.
    pub ld_status: Signal<In, UnitStatus>,
    /// The exec unit's.
    pub ex_status: Signal<In, UnitStatus>,
    /// The store unit's.
    pub st_status: Signal<In, UnitStatus>,
    /// The load unit's starts.
    pub ld_start: Signal<Out, LoadStarts>,
    /// The exec unit's starts.
    pub ex_start: Signal<Out, ExecStarts>,
    /// The store unit's starts.
    pub st_start: Signal<Out, StoreStarts>,
    /// The load unit's fields.
    pub ld: Signal<Out, LoadFields>,
    /// The exec unit's fields (`MatmulWs` and `MatmulOs`).
    pub ex: Signal<Out, MatmulFields>,
    /// The store unit's fields.
    pub st: Signal<Out, StoreFields>,
    /// With a vector unit (else none, so that an instance without one is the Verilog of
    /// before the vector unit): the exec unit's decoded fields as they are, of which the
    /// exec unit takes a `Vector`'s own ([`vector_field_index`])...
    pub ex_raw: Vec<Signal<Out, Bits<LANE_BITS>>>,
    /// ... the start of a `LoadTable`...
    pub ld_start_table: Vec<Signal<Out, Bit>>,
    /// ... and of a `Vector`, which issues only when every exec instruction before it has
    /// completed (the exec sequencer's `drained`, docs/ARCHITECTURE.md section 5).
    pub ex_start_vector: Vec<Signal<Out, Bit>>,
    /// 1 with a vector unit and a decode stage.
    _vector_decoded: usize,
    // The access patterns and output stage, built field by field before they join their
    // unit's bundle (a bundle's field is assigned one level deep).
    ld_pattern: Signal<Local, DmaPattern>,
    st_pattern: Signal<Local, DmaPattern>,
    st_stage: Signal<Local, OutputStage>,
    load: UnitSequencer,
    exec: UnitSequencer,
    store: UnitSequencer,
    /// The instruction fetcher, with a queue.
    fetcher: Vec<Fetcher>,
    run_r: DFF<Bit>,
    fin_r: DFF<Bit>,
    /// Each unit's `Sync` counts are met: this cycle's comparisons, or (with a decode stage
    /// or `_counts_early`) the registers that made them a cycle early from the next done
    /// counts and the fields.
    load_met: Signal<Local, Bit>,
    exec_met: Signal<Local, Bit>,
    store_met: Signal<Local, Bit>,
    load_met_r: DFF<Bit>,
    exec_met_r: DFF<Bit>,
    store_met_r: DFF<Bit>,
    /// With a decode stage, the next cycle's tests of the six `Sync` counts against the
    /// other units' done counts, in the order load's exec and store counts, exec's load
    /// and store counts, store's load and exec counts.
    next_met: Vec<NextReaches>,
    /// With a decode stage, per unit: in this cycle its instruction may issue but for its
    /// engine's readiness (the program runs, the instruction is whole and remains, its
    /// counts are met), registered from the next-cycle values of those registers...
    issuable_r: Vec<DFF<Bit>>,
    /// ... and per start port of [`STARTS`]: the same, and the decoded opcode is the port's.
    /// So a start is one gate after the engine's `ready`, and its register, feeding only
    /// that gate, may sit beside the engine rather than in the controller.
    op_match_r: Vec<DFF<Bit>>,
    /// What `issuable_r` loads.
    issuable_next: Vec<Signal<Local, Bit>>,
    /// What `run_r` loads.
    run_next: Signal<Local, Bit>,
    /// 1 with a decode stage.
    _decoded: usize,
    // 1 when the `Sync` counts sit in parts fetched at least two cycles before their
    // instruction is whole (and there is no decode stage): then they are the same in any
    // cycle the instruction may issue in as in the cycle before, and the tests are
    // registered a cycle early against the other units' next done counts.
    _counts_early: usize,
    cyc: DFF<Bits<CYCLE_BITS>>,
    /// Per start port of [`STARTS`]: its opcode's code...
    op_code: Vec<Constant<Bits<OPCODE_BITS_USIZE>>>,
    /// ... and whether the configuration has the opcode.
    op_on: Vec<Constant<Bit>>,
    /// Each unit's `ready` and `complete` (load, exec, store), from its status.
    unit_ready: Vec<Signal<Local, Bit>>,
    unit_complete: Vec<Signal<Local, Bit>>,
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
    /// A WS tile's sparse format or its packed int4 weights: none without activation banks
    /// to run them (the engine masks them, `ArchConfig::act_banks`).
    Packing,
    /// A WS quad tile: none without `int4_activations` (the engine masks it).
    Quad,
    /// A CSC preload and its value words: none without `csc_weights` (the engine masks
    /// them).
    Csc,
    /// A matmul's inner or outer word count: on a WS-only instance at most the
    /// accumulator's rows when the other is not 0 (a WS matmul writes a row per word,
    /// and the simulator refuses rows beyond the accumulator), and without effect when the
    /// other is 0. An OS matmul may run any number of words into its `rows` rows.
    MatmulCount,
    /// Anything else (matmul counts, flags, output stage): every bit.
    Whole,
}

/// The most words (or rows, or entries) of `arch`'s scratchpads, accumulator and table.
fn most_words(arch: &ArchConfig) -> usize {
    arch.act_words().max(arch.wgt_words()).max(arch.acc_rows()).max(arch.param_entries)
}

/// Address bits the scratchpads, the accumulator and the parameter table of `arch` decode.
pub fn sram_addr_bits(arch: &ArchConfig) -> usize {
    crate::sram::index_bits(most_words(arch))
}

/// Bits the controller keeps of the pattern and entry count fields (24 in the ISA): the
/// width the DMA engines' loop counters need.
pub fn count_bits(arch: &ArchConfig) -> usize {
    kept_bits(arch, FieldKind::Count, 24, DRAM_ADDR_BITS)
}

/// Bits the controller keeps of a matmul's word counts (24 in the ISA): the width the
/// engines' word sequencers need.
pub fn matmul_count_bits(arch: &ArchConfig) -> usize {
    kept_bits(arch, FieldKind::MatmulCount, ADDR_BITS, DRAM_ADDR_BITS)
}

/// Bits the controller keeps of the run length fields (16 in the ISA): the width the DMA
/// engines' beat counters need.
pub fn len_bits(arch: &ArchConfig) -> usize {
    kept_bits(arch, FieldKind::Len, 16, DRAM_ADDR_BITS)
}

/// Bits the controller keeps of a field of `kind` that its port gives `width` bits.
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
        FieldKind::Packing if arch.act_banks() == 1 => 0,
        FieldKind::Quad if !arch.int4_activations => 0,
        FieldKind::Csc if !arch.csc_weights => 0,
        FieldKind::MatmulCount if arch.dataflow == Dataflow::WeightStationary => bits_for(arch.acc_rows()).min(width),
        _ => width,
    }
}

/// A decoded port's value: its width (how many of a field's bits it can take) and its
/// bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldValue {
    width: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    raw: u64,
}

/// A decoded port's value type, as a [`FieldValue`].
trait AsField {
    fn field(self) -> FieldValue;
}

impl<const N: usize> AsField for Bits<N> {
    fn field(self) -> FieldValue {
        FieldValue { width: N, raw: self.to_u64() }
    }
}

impl AsField for bool {
    fn field(self) -> FieldValue {
        FieldValue { width: 1, raw: self as u64 }
    }
}

/// One decoded output port: it takes ISA field `field` from every op of `unit` whose
/// table ([`OpSpec`](systole_core::isa::OpSpec)) has it, and 0 for the unit's other ops.
/// Its place in [`PORTS`] among its unit's ports, after the three `Sync` counts, is its
/// index in the unit's [`UnitSequencer::field`], which the kernel wires by number.
struct DecodedPort {
    unit: Unit,
    field: &'static str,
    kind: FieldKind,
    port: fn(&Controller) -> FieldValue,
}

const fn decoded(unit: Unit, field: &'static str, kind: FieldKind, port: fn(&Controller) -> FieldValue) -> DecodedPort {
    DecodedPort { unit, field, kind, port }
}

use FieldKind::{Band as BandK, Count, Csc, Dram, Len, MatmulCount, Packing, Quad, Sram, Whole};
use Unit::{Exec as Ex, Load as Ld, Store as St};

/// The decoded output ports.
const PORTS: &[DecodedPort] = &[
    decoded(Ld, "target", Whole, |c| c.ld.val().target.field()),
    decoded(Ld, "dst", Sram, |c| c.ld.val().dst.field()),
    decoded(Ld, "offset", Len, |c| c.ld.val().offset.field()),
    decoded(Ld, "pitch", Sram, |c| c.ld.val().pitch.field()),
    decoded(Ld, "addr", Dram, |c| c.ld.val().pattern.addr.field()),
    decoded(Ld, "len", Len, |c| c.ld.val().pattern.len.field()),
    decoded(Ld, "dims[0].count", Count, |c| c.ld.val().pattern.count0.field()),
    decoded(Ld, "dims[1].count", Count, |c| c.ld.val().pattern.count1.field()),
    decoded(Ld, "dims[2].count", Count, |c| c.ld.val().pattern.count2.field()),
    decoded(Ld, "dims[0].stride", Dram, |c| c.ld.val().pattern.stride0.field()),
    decoded(Ld, "dims[1].stride", Dram, |c| c.ld.val().pattern.stride1.field()),
    decoded(Ld, "dims[2].stride", Dram, |c| c.ld.val().pattern.stride2.field()),
    decoded(Ld, "count", Count, |c| c.ld.val().entries.field()),
    decoded(Ex, "a.start", Sram, |c| c.ex.val().a_start.field()),
    decoded(Ex, "a.inner_count", MatmulCount, |c| c.ex.val().a_inner_count.field()),
    decoded(Ex, "a.inner_stride", Sram, |c| c.ex.val().a_inner_stride.field()),
    decoded(Ex, "a.outer_count", MatmulCount, |c| c.ex.val().a_outer_count.field()),
    decoded(Ex, "a.outer_stride", Sram, |c| c.ex.val().a_outer_stride.field()),
    decoded(Ex, "acc", Sram, |c| c.ex.val().acc.field()),
    decoded(Ex, "accumulate", Whole, |c| c.ex.val().accumulate.field()),
    decoded(Ex, "preload.valid", Whole, |c| c.ex.val().preload_valid.field()),
    decoded(Ex, "preload", Sram, |c| c.ex.val().preload.field()),
    decoded(Ex, "b", Sram, |c| c.ex.val().b.field()),
    decoded(Ex, "band.valid", Whole, |c| c.ex.val().band_valid.field()),
    decoded(Ex, "band.stride", Whole, |c| c.ex.val().band_stride.field()),
    decoded(Ex, "sparse", Packing, |c| c.ex.val().sparse.field()),
    decoded(Ex, "int4", Packing, |c| c.ex.val().int4.field()),
    decoded(Ex, "act4", Quad, |c| c.ex.val().act4.field()),
    decoded(Ex, "csc.valid", Csc, |c| c.ex.val().csc_valid.field()),
    decoded(Ex, "csc", Csc, |c| c.ex.val().csc_values.field()),
    decoded(Ex, "band.taps", BandK, |c| c.ex.val().band_taps.field()),
    decoded(Ex, "band.width", BandK, |c| c.ex.val().band_width.field()),
    decoded(St, "acc", Sram, |c| c.st.val().acc.field()),
    decoded(St, "row_stride", Sram, |c| c.st.val().row_stride.field()),
    decoded(St, "line_pitch", Sram, |c| c.st.val().line_pitch.field()),
    decoded(St, "width", Whole, |c| c.st.val().width.field()),
    decoded(St, "addr", Dram, |c| c.st.val().pattern.addr.field()),
    decoded(St, "len", Len, |c| c.st.val().pattern.len.field()),
    decoded(St, "dims[0].count", Count, |c| c.st.val().pattern.count0.field()),
    decoded(St, "dims[1].count", Count, |c| c.st.val().pattern.count1.field()),
    decoded(St, "dims[2].count", Count, |c| c.st.val().pattern.count2.field()),
    decoded(St, "dims[0].stride", Dram, |c| c.st.val().pattern.stride0.field()),
    decoded(St, "dims[1].stride", Dram, |c| c.st.val().pattern.stride1.field()),
    decoded(St, "dims[2].stride", Dram, |c| c.st.val().pattern.stride2.field()),
    decoded(St, "out.param", Sram, |c| c.st.val().param.field()),
    decoded(St, "out.zp", Whole, |c| c.st.val().stage.zp.field()),
    decoded(St, "out.lo", Whole, |c| c.st.val().stage.lo.field()),
    decoded(St, "out.hi", Whole, |c| c.st.val().stage.hi.field()),
];

/// The decoded ports of an instance with a vector unit, after the others (so the others'
/// places are those of an instance without one): the `Vector`'s own fields.
const VECTOR_PORTS: &[DecodedPort] = &[
    decoded(Ex, "count", Count, |c| FieldValue { width: 24, raw: vector_field(c, 0) }),
    decoded(Ex, "stride", Sram, |c| FieldValue { width: ADDR_BITS, raw: vector_field(c, 1) }),
    decoded(Ex, "max", Whole, |c| FieldValue { width: 1, raw: vector_field(c, 2) }),
];

/// Where the `k`-th of [`VECTOR_PORTS`] (`count`, `stride`, `max`) is among the exec unit's
/// decoded fields (after the three `Sync` counts and the exec unit's [`PORTS`]).
pub fn vector_field_index(k: usize) -> usize {
    SYNC_FIELDS.len() + PORTS.iter().filter(|p| p.unit == Unit::Exec).count() + k
}

/// The exec unit's decoded fields with a vector unit: `Sync` counts, [`PORTS`] and
/// [`VECTOR_PORTS`] (the length of [`Controller::ex_raw`]).
pub fn vector_exec_fields() -> usize {
    vector_field_index(VECTOR_PORTS.len())
}

/// The `k`-th `Vector` field `ctl` presents (zero without a vector unit).
fn vector_field(ctl: &Controller, k: usize) -> u64 {
    ctl.ex_raw.get(vector_field_index(k)).map_or(0, |s| s.val().to_u64())
}

/// The decoded ports of an instance with a vector unit or without.
fn ports(vector: bool) -> impl Iterator<Item = &'static DecodedPort> {
    PORTS.iter().chain(if vector { VECTOR_PORTS } else { &[] })
}

/// The `Sync` counts every instruction's header carries, which come first among each unit's
/// decoded fields.
const SYNC_FIELDS: [&str; 3] = ["sync.load", "sync.exec", "sync.store"];

/// An opcode's start: its bit of its unit's start bundle, read from the controller.
type StartPort = fn(&Controller) -> bool;

/// The opcodes the RTL implements, in code order: all of them.
pub const RTL_OPCODES: [Opcode; 9] = Opcode::ALL;

/// The opcodes before the vector unit's, whose codes are grouped by unit (load, exec,
/// store); `LoadTable` and `Vector` follow them.
pub const GROUPED_OPCODES: [Opcode; 7] =
    [Opcode::Load, Opcode::LoadTransposed, Opcode::LoadParams, Opcode::MatmulWs, Opcode::MatmulOs, Opcode::Store, Opcode::StoreTransposed];

/// The start of each opcode, in opcode order (a test checks the order); its place is its
/// index in the kernel's opcode constants.
const STARTS: [(Opcode, &str, StartPort); 9] = [
    (Opcode::Load, "ld_start.load", |c| c.ld_start.val().load),
    (Opcode::LoadTransposed, "ld_start.load_t", |c| c.ld_start.val().load_t),
    (Opcode::LoadParams, "ld_start.params", |c| c.ld_start.val().params),
    (Opcode::MatmulWs, "ex_start.ws", |c| c.ex_start.val().ws),
    (Opcode::MatmulOs, "ex_start.os", |c| c.ex_start.val().os),
    (Opcode::Store, "st_start.store", |c| c.st_start.val().store),
    (Opcode::StoreTransposed, "st_start.store_t", |c| c.st_start.val().store_t),
    (Opcode::LoadTable, "ld_start_table", |c| c.ld_start_table.first().is_some_and(|s| s.val())),
    (Opcode::Vector, "ex_start_vector", |c| c.ex_start_vector.first().is_some_and(|s| s.val())),
];

/// Bits that hold the numbers `0..=n`.
fn bits_for(n: usize) -> usize {
    (usize::BITS - n.leading_zeros()).max(1) as usize
}

/// Bits of a lane of the decoder: 32, so that every field spans at most two lanes and
/// rust-hdl simulates each lane as a machine word.
const LANE_BITS: usize = 32;

/// Lanes of an encoded instruction (the kernel's literal 15 is `LANES - 1`).
const LANES: usize = INSTR_BITS / LANE_BITS;
const _: () = assert!(LANES == 16);

/// Where a decoded field sits in `Instr::encode`'s words among the opcodes of one unit:
/// the places it has and, per place, the opcodes that put it there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct FieldPlaces {
    places: Vec<Place>,
}

/// A place of a field: the opcodes that put it there (bit `c` for code `c`) and its slot.
type Place = (u64, FieldSlot);

/// Every opcode, as a set of codes.
const ALL_CODES: u64 = (1 << (1 << OPCODE_BITS)) - 1;

impl FieldPlaces {
    /// The places of field `field` among `opcodes` (of one unit), narrowed to `kept` bits.
    fn of(field: &str, opcodes: &[Opcode], kept: u32) -> Self {
        let mut places: Vec<Place> = vec![];
        for &o in opcodes {
            if let Some(s) = o.spec().slot(field) {
                let slot = FieldSlot { bits: s.bits.min(kept), ..s };
                match places.iter_mut().find(|(_, p)| p.offset == slot.offset) {
                    Some((set, _)) => *set |= 1 << o.code(),
                    None => places.push((1 << o.code(), slot)),
                }
            }
        }
        Self { places }
    }

    /// A header field, at the same place in every instruction, whatever its opcode.
    fn header(field: &str, kept: u32) -> Self {
        let s = Opcode::Load.spec().slot(field).expect("the header has the field");
        Self { places: vec![(ALL_CODES, FieldSlot { bits: s.bits.min(kept), ..s })] }
    }

    /// The opcode, the first bits of every instruction.
    fn opcode() -> Self {
        Self { places: vec![(ALL_CODES, FieldSlot { name: "opcode", offset: 0, bits: OPCODE_BITS, signed: false })] }
    }

    /// Bits the field needs: its widest place.
    fn bits(&self) -> u32 {
        self.places.iter().map(|(_, s)| s.bits).max().unwrap_or(0)
    }

    /// The field's kept bits in the encoded instruction `words`, whose opcode has code
    /// `code`; 0 when that opcode does not have the field.
    fn raw(&self, code: u64, words: &[u64; INSTR_WORDS]) -> u64 {
        self.places.iter().find(|(ops, _)| ops >> code & 1 == 1).map_or(0, |(_, s)| s.raw(words))
    }
}

/// The instruction image a controller's memories hold: the same `512 / F`-bit parts as
/// `Instr::encode`'s words, but with each unit's decoded fields (its opcode, its three `Sync`
/// counts and its ports of [`PORTS`]) packed into the low `part_bits` bits of the parts,
/// each kept only as wide as the hardware keeps it (see [`FieldKind`]), in at most two
/// pieces of at most `part_bits` bits, each inside one part. So every field has one place
/// whatever the opcode (the decoder is wires), the
/// parts' registers hold only the fields, and the memories' bits above `part_bits`, never
/// read, are left out by synthesis: a small instance's instructions take a block RAM or
/// two instead of 512 bits each. The host packs each instruction with [`InstrFormat::pack`]
/// before it writes it; a field an opcode does not have is 0, as the unpacked decoder made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrFormat {
    /// Per unit: each decoded field and where its pieces start in the packed image.
    units: [Vec<(FieldPlaces, Pieces)>; 3],
    /// Bits of each part that the fields use.
    part_bits: u32,
}

/// Where a field sits in the packed image: its low `low_bits` bits from bit `low`, the
/// rest (if any) from bit `high`, each piece inside one part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pieces {
    low: u32,
    low_bits: u32,
    high: u32,
    high_bits: u32,
}

impl Pieces {
    /// The two pieces as slots (the high one of 0 bits when the field is whole).
    fn slots(&self) -> [FieldSlot; 2] {
        [
            FieldSlot { name: "", offset: self.low, bits: self.low_bits, signed: false },
            FieldSlot { name: "", offset: self.high, bits: self.high_bits, signed: false },
        ]
    }
}

impl InstrFormat {
    /// The format of the controller of `arch` with `depth` instructions per unit and a DRAM
    /// of `dram_addr_bits` address bits (the arguments of [`Controller::new`]).
    pub fn new(arch: &ArchConfig, depth: usize, dram_addr_bits: usize) -> Self {
        Self::of(arch, depth, dram_addr_bits, &Controller::shell(arch, 1))
    }

    /// The format, with the port widths read off `ctl`.
    fn of(arch: &ArchConfig, depth: usize, dram_addr_bits: usize, ctl: &Controller) -> Self {
        let fetch = arch.fetch_cycles.max(1);
        let count_bits = bits_for(depth) as u32;
        let opcodes: Vec<Opcode> = Opcode::ALL.into_iter().filter(|&o| arch.has_opcode(o)).collect();
        let mut fields = Unit::ALL.map(|_| {
            let mut f = vec![FieldPlaces::opcode()];
            f.extend(SYNC_FIELDS.iter().map(|name| FieldPlaces::header(name, count_bits)));
            f
        });
        for p in ports(arch.vector_lanes > 0) {
            let unit_ops: Vec<Opcode> = opcodes.iter().copied().filter(|o| o.unit() == p.unit).collect();
            let kept = kept_bits(arch, p.kind, (p.port)(ctl).width, dram_addr_bits) as u32;
            fields[p.unit.index()].push(FieldPlaces::of(p.field, &unit_ops, kept));
        }
        let span = (INSTR_BITS / fetch) as u32;
        // The fetcher of a queue learns an instruction's unit from its opcode: bit 0 on.
        let queued = arch.instr_queue.is_some();
        let widest = fields.iter().flatten().map(FieldPlaces::bits).max().unwrap_or(1);
        // The narrowest parts that hold every unit's fields, each field in at most two
        // pieces, placed by decreasing width: the `Sync` counts first if they then still
        // fit (so that they are fetched early, see `Controller::new`).
        let (part_bits, pieces) = [true, false]
            .into_iter()
            .find_map(|counts_first| {
                (widest.div_ceil(2)..=span).find_map(|w| {
                    let pieces: Option<Vec<Vec<Pieces>>> =
                        fields.iter().map(|f| place_pieces(f, fetch, w, span, counts_first, queued)).collect();
                    pieces.map(|p| (w, p))
                })
            })
            .expect("a unit's kept fields fit its 512 instruction bits (a test packs the widest configurations)");
        let mut pieces = pieces.into_iter();
        let units = fields.map(|f| f.into_iter().zip(pieces.next().expect("a unit's pieces")).collect());
        Self { units, part_bits }
    }

    /// Bits of each `512 / F`-bit part that hold fields; the rest of the part is zero.
    pub fn part_bits(&self) -> usize {
        self.part_bits as usize
    }

    /// The packed image of the encoded instruction `words` (`Instr::encode`) of `unit`:
    /// what the host writes into that unit's memory, part `k` from word `k * 8 / F` on.
    pub fn pack(&self, unit: Unit, words: &[u64; INSTR_WORDS]) -> [u64; INSTR_WORDS] {
        let code = words[0] & ((1 << OPCODE_BITS) - 1);
        let mut packed = [0u64; INSTR_WORDS];
        for (field, pieces) in &self.units[unit.index()] {
            let raw = field.raw(code, words);
            let mut b = 0;
            for slot in pieces.slots() {
                for i in 0..slot.bits {
                    let p = slot.offset + i;
                    packed[(p / 64) as usize] |= (raw >> b & 1) << (p % 64);
                    b += 1;
                }
            }
        }
        packed
    }

    /// The packed slots of `unit`'s decoded fields, the opcode first: two per field, its
    /// low piece and its high one.
    fn slots(&self, unit: Unit) -> Vec<FieldSlot> {
        self.units[unit.index()].iter().flat_map(|(_, p)| p.slots()).collect()
    }
}

/// Where the pieces of `fields` go in `parts` parts of `width` used bits each (part `k`
/// starting at bit `k * span`): a field wider than `width` is cut into a low piece of
/// `width` bits and the rest, and the pieces are placed widest first, each in the last
/// part with room, so that none crosses a part and the last part, which the sequencer
/// reads straight from its memory rather than keeping in registers, fills first. With
/// `counts_first`, fields 1 to 3 (the `Sync` counts) are placed before all others, each
/// in the first part with room (see `Controller::new`). With `opcode_first`, field 0 (the
/// opcode) goes first, at bit 0, in every unit's format alike ([`crate::fetch::Fetcher`]).
/// `None` if they do not fit.
fn place_pieces(
    fields: &[FieldPlaces],
    parts: usize,
    width: u32,
    span: u32,
    counts_first: bool,
    opcode_first: bool,
) -> Option<Vec<Pieces>> {
    let mut pieces: Vec<(usize, bool, u32)> = vec![];
    for (i, f) in fields.iter().enumerate() {
        let bits = f.bits();
        if bits > 2 * width {
            return None;
        }
        pieces.push((i, false, bits.min(width)));
        if bits > width {
            pieces.push((i, true, bits - width));
        }
    }
    let early = |i: usize| (counts_first && (1..=3).contains(&i)) || (opcode_first && i == 0);
    pieces.sort_by_key(|&(i, high, bits)| (!(opcode_first && i == 0), !early(i), std::cmp::Reverse(bits), i, high));
    let mut used = vec![0u32; parts];
    let mut placed = vec![Pieces { low: 0, low_bits: 0, high: 0, high_bits: 0 }; fields.len()];
    for (i, high, bits) in pieces {
        let room = |k: &usize| used[*k] + bits <= width;
        let k = if early(i) { (0..parts).find(room) } else { (0..parts).rev().find(room) }?;
        let at = k as u32 * span + used[k];
        used[k] += bits;
        if high {
            (placed[i].high, placed[i].high_bits) = (at, bits);
        } else {
            (placed[i].low, placed[i].low_bits) = (at, bits);
        }
    }
    Some(placed)
}

/// One unit's instruction memory, fetch, field decoder and counters, written once as an
/// `hdl_gen` kernel (see [`Controller`] for the fetch and issue rules).
#[derive(LogicBlock)]
pub struct UnitSequencer {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Host: write `data` as memory word `index`.
    pub write: Signal<In, Bit>,
    /// Host: memory word (`instruction * F + part`).
    pub index: Signal<In, Addr>,
    /// Host: the part, 64-bit words, least significant first.
    pub data: Vec<Signal<In, Bits<64>>>,
    /// Start the program: fetch from instruction 0, `count` instructions.
    pub run: Signal<In, Bit>,
    /// Instructions, sampled with `run`.
    pub count: Signal<In, Addr>,
    /// The program runs, the unit's engine is ready and the instruction's `Sync` counts are
    /// met: issue it if it is whole and one remains.
    pub go: Signal<In, Bit>,
    /// The unit's engine completes an instruction in this cycle.
    pub complete: Signal<In, Bit>,
    /// The fetcher (with an instruction queue): write `data` as part `fetch_part` of the
    /// instruction after the last one fetched...
    pub fetch_write: Vec<Signal<In, Bit>>,
    /// ... the part...
    pub fetch_part: Vec<Signal<In, Addr>>,
    /// ... and it is the instruction's last: the queue holds one more from the next cycle.
    pub fetch_last: Vec<Signal<In, Bit>>,
    /// The queue has a free slot: fewer than `Q` instructions fetched and not issued.
    pub room: Vec<Signal<Out, Bit>>,
    /// The current instruction issues in this cycle.
    pub issue: Signal<Out, Bit>,
    /// The current instruction's opcode.
    pub opcode: Signal<Out, Bits<OPCODE_BITS_USIZE>>,
    /// Its decoded fields: the three `Sync` counts, then the unit's ports of [`PORTS`].
    pub field: Vec<Signal<Out, Bits<LANE_BITS>>>,
    /// Instructions completed since `run`.
    pub done: Signal<Out, Addr>,
    /// `done + 1` (wrapped to the count's width): the next cycle's `done` when an instruction
    /// completes without a `run`, from a register.
    pub done_inc: Signal<Out, Addr>,
    /// The three `Sync` counts the decoder reads from the instruction now: with a decode
    /// stage, the `field`s 0 to 2 of the next cycle.
    pub sync_next: Vec<Signal<Out, Bits<LANE_BITS>>>,
    /// The opcode the decoder reads from the instruction now: with a decode stage,
    /// `opcode` of the next cycle.
    pub opcode_next: Signal<Out, Bits<OPCODE_BITS_USIZE>>,
    /// With a decode stage: in the next cycle an instruction is whole, decoded and remains
    /// (so it issues when its engine is ready, the program runs and its counts are met).
    pub can_issue_next: Signal<Out, Bit>,
    /// Every instruction has completed (so every one has issued), after a `run`: from a
    /// register, loaded with the next cycle's `done == n`.
    pub idle: Signal<Out, Bit>,
    /// Of the exec unit of an instance with a vector unit (one, else none): every
    /// instruction issued so far has completed.
    pub drained: Vec<Signal<Out, Bit>>,
    /// Instruction memory: one RAM per 32-bit lane of a part, in reverse lane order.
    imem: Vec<SyncRam<Bits<LANE_BITS>>>,
    /// Parts `0..F-1` of the instruction being fetched, by instruction lane.
    parts: Vec<DFF<Bits<LANE_BITS>>>,
    /// The host's data lanes to the RAMs that hold them.
    to_imem: Router<Bits<LANE_BITS>>,
    /// The RAMs' reads to the part registers that keep them...
    to_parts: Router<Bits<LANE_BITS>>,
    /// ... in the cycle with this `fk`.
    part_fk: Vec<Constant<Bits<4>>>,
    /// Parts of the instruction at `pc` whose reads have been issued (`F`: whole).
    fk: DFF<Bits<4>>,
    pc: DFF<Addr>,
    n: DFF<Addr>,
    /// `done` of the next cycle.
    done_next: Signal<Local, Addr>,
    done_count: DFF<Addr>,
    /// `done_count + 1`, kept beside it so that the next count's tests need no adder.
    done1: DFF<Addr>,
    /// The instruction's lanes: the kept parts, then the memory's read.
    word: Vec<Signal<Local, Bits<LANE_BITS>>>,
    /// Memory word read in this cycle.
    read: Signal<Local, Addr>,
    /// Memory word written in this cycle.
    write_index: Vec<Signal<Local, Addr>>,
    /// With a queue: instructions in the queue or issued (the host's preloaded ones and
    /// the fetcher's); the instruction at `pc` and the one after it are among them.
    written: Vec<DFF<Addr>>,
    present: Vec<Signal<Local, Bit>>,
    present_after: Vec<Signal<Local, Bit>>,
    /// `Q - 1` (with a queue, else the count's mask: a slot per instruction) and, with a
    /// queue, `Q`.
    slot_mask: Vec<Constant<Addr>>,
    queue_depth: Vec<Constant<Addr>>,
    /// 1 with an instruction queue.
    _queued: usize,
    /// `F`, `F - 1` and `log2 F`.
    fetch: Constant<Bits<4>>,
    last_part: Constant<Bits<4>>,
    fetch_shift: Constant<Bits<8>>,
    count_mask: Constant<Addr>,
    /// The decoder, a block of its own so that an event-driven simulator evaluates it only
    /// when the instruction changes.
    decoder: FieldDecoder,
    /// The decoded opcode and fields, through `decode_stages` registers.
    dec_opcode: Delay<Bits<OPCODE_BITS_USIZE>>,
    dec_field: Vec<Delay<Bits<LANE_BITS>>>,
    /// The instruction was whole in the previous cycle and did not issue (so the decode
    /// registers hold it).
    whole_r: DFF<Bit>,
    whole: Signal<Local, Bit>,
    /// The instruction may issue: whole, and decoded when there is a decode stage.
    ready: Signal<Local, Bit>,
    /// Instructions remain (`pc < n`): compared now, or with a decode stage registered
    /// from the next cycle's `pc` and `n`.
    remain: Signal<Local, Bit>,
    remain_r: DFF<Bit>,
    /// What `whole_r` and `remain_r` load.
    whole_next: Signal<Local, Bit>,
    remain_next: Signal<Local, Bit>,
    idle_r: DFF<Bit>,
    /// 1 with a decode stage.
    _decoded: usize,
}

/// [`OPCODE_BITS`] as a `usize`.
const OPCODE_BITS_USIZE: usize = OPCODE_BITS as usize;

impl UnitSequencer {
    /// A unit with memory for `depth` instructions of `fetch` parts, counting up to
    /// `capacity` instructions (a queue of `depth` when `queued`), whose decoder cuts the
    /// fields at `slots` of the packed image (the opcode first, see [`InstrFormat`]),
    /// through `decode_stages` registers (`ArchConfig::decode_stages`).
    fn new(depth: usize, capacity: usize, queued: bool, fetch: usize, slots: &[FieldSlot], decode_stages: usize) -> Self {
        assert!(slots.len() >= 2, "the opcode's pieces come first");
        assert!(!queued || depth.is_power_of_two(), "a queue of {depth}");
        let fields = slots.len() / 2 - 1;
        let lanes = LANES / fetch;
        let count_bits = bits_for(capacity.max(depth));
        // The queue's signals exist only with a queue, so that an instance without one is
        // the same Verilog as before queues existed.
        let queues = usize::from(queued);
        let read_base = (fetch - 1) * lanes;
        Self {
            clock: Default::default(),
            write: Default::default(),
            index: Default::default(),
            data: signals(INSTR_WORDS / fetch),
            run: Default::default(),
            count: Default::default(),
            go: Default::default(),
            complete: Default::default(),
            fetch_write: signals(queues),
            fetch_part: signals(queues),
            fetch_last: signals(queues),
            room: signals(queues),
            issue: Default::default(),
            opcode: Default::default(),
            field: signals(fields),
            done: Default::default(),
            done_next: Default::default(),
            done_inc: Default::default(),
            sync_next: signals(fields.min(3)),
            opcode_next: Default::default(),
            can_issue_next: Default::default(),
            idle: Default::default(),
            drained: vec![],
            // Read only from `run` on, and no instruction issues before its parts are read.
            imem: (0..lanes).map(|_| SyncRam::new(depth * fetch).without_collisions().without_read_init()).collect(),
            parts: signals(read_base),
            to_imem: Router::new(lanes, (0..lanes).map(|k| Some(lanes - 1 - k)).collect()),
            to_parts: Router::new(lanes, (0..read_base).map(|i| Some(lanes - 1 - i % lanes)).collect()),
            part_fk: constants((0..read_base).map(|i| (i / lanes + 1) as u64)),
            fk: Default::default(),
            pc: Default::default(),
            n: Default::default(),
            done_count: Default::default(),
            done1: Default::default(),
            word: signals(LANES),
            read: Default::default(),
            write_index: signals(queues),
            written: signals(queues),
            present: signals(queues),
            present_after: signals(queues),
            slot_mask: constants((0..queues).map(|_| (depth - 1) as u64)),
            queue_depth: constants((0..usize::from(queued)).map(|_| depth as u64)),
            _queued: usize::from(queued),
            fetch: Constant::new((fetch as u64).into()),
            last_part: Constant::new(((fetch - 1) as u64).into()),
            fetch_shift: Constant::new((fetch.trailing_zeros() as u64).into()),
            count_mask: Constant::new(low_mask(count_bits)),
            decoder: FieldDecoder::new(slots),
            dec_opcode: Delay::new(decode_stages),
            dec_field: (0..fields).map(|_| Delay::new(decode_stages)).collect(),
            whole_r: Default::default(),
            remain: Default::default(),
            remain_r: Default::default(),
            whole_next: Default::default(),
            remain_next: Default::default(),
            idle_r: Default::default(),
            whole: Default::default(),
            ready: Default::default(),
            _decoded: decode_stages,
        }
    }
}

impl Logic for UnitSequencer {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, fk, pc, n, done_count, done1, whole_r, remain_r, idle_r);
        for i in 0..self.parts.len() {
            self.parts[i].clock.next = self.clock.val();
            self.parts[i].d.next = self.parts[i].q.val();
        }
        // With a decode stage the decoded registers hold the instruction one cycle after it
        // is whole, and it issues from them.
        // (`whole_r` alone implies `whole`: an instruction that was whole and did not issue
        // still is. Both registers make the issue a function of registers and `go`.)
        self.whole.next = self.fk.q.val() == self.fetch.val();
        self.ready.next = self.whole.val();
        self.remain.next = self.pc.q.val() < self.n.q.val();
        for _u in 0..self._decoded {
            self.ready.next = self.whole_r.q.val();
            self.remain.next = self.remain_r.q.val();
        }
        self.issue.next = self.go.val() & self.remain.val() & self.ready.val();
        if self.issue.val() {
            self.remain_next.next = ((self.pc.q.val() + 1) & self.count_mask.val()) < self.n.q.val();
        } else {
            self.remain_next.next = self.pc.q.val() < self.n.q.val();
        }
        self.whole_next.next = self.whole.val() & !self.issue.val();
        if self.run.val() {
            self.read.next = 0.into();
        } else if self.issue.val() {
            self.read.next = (self.pc.q.val() + 1) << self.fetch_shift.val();
        } else if self.fk.q.val() < self.fetch.val() {
            self.read.next = (self.pc.q.val() << self.fetch_shift.val()) + bit_cast::<ADDR_BITS, 4>(self.fk.q.val());
        } else {
            self.read.next = (self.pc.q.val() << self.fetch_shift.val()) + bit_cast::<ADDR_BITS, 4>(self.last_part.val());
        }
        for j in 0..self.imem.len() {
            self.imem[j].clock.next = self.clock.val();
            self.imem[j].write_enable.next = self.write.val();
            self.imem[j].write_address.next = self.index.val();
            self.imem[j].read_address.next = self.read.val();
        }
        // With a queue: slot `i mod Q` for instruction `i`, which is read only once fetched,
        // the fetcher writing the slot after the last fetched one. (Each signal assigned once
        // per path: a passing value of `room` in an event-driven simulator would reach the
        // fetcher, whose write comes back here.)
        for q in 0..self._queued {
            self.written[q].clock.next = self.clock.val();
            self.written[q].d.next = self.written[q].q.val();
            self.present[q].next = self.pc.q.val() < self.written[q].q.val();
            self.present_after[q].next = ((self.pc.q.val() + 1) & self.count_mask.val()) < self.written[q].q.val();
            self.room[q].next = ((self.written[q].q.val() - self.pc.q.val()) & self.count_mask.val()) < self.queue_depth[q].val();
            if self.fetch_write[q].val() {
                self.write_index[q].next =
                    ((self.written[q].q.val() & self.slot_mask[q].val()) << self.fetch_shift.val()) + self.fetch_part[q].val();
            } else {
                self.write_index[q].next = self.index.val();
            }
            if self.run.val() {
                if self.count.val() < self.queue_depth[q].val() {
                    self.written[q].d.next = self.count.val();
                } else {
                    self.written[q].d.next = self.queue_depth[q].val();
                }
            } else if self.fetch_last[q].val() {
                self.written[q].d.next = self.written[q].q.val() + 1;
            }
            if self.run.val() {
                self.read.next = 0.into();
            } else if self.issue.val() {
                self.read.next = ((self.pc.q.val() + 1) & self.slot_mask[q].val()) << self.fetch_shift.val();
            } else if self.fk.q.val() < self.fetch.val() {
                self.read.next =
                    ((self.pc.q.val() & self.slot_mask[q].val()) << self.fetch_shift.val()) + bit_cast::<ADDR_BITS, 4>(self.fk.q.val());
            } else {
                self.read.next = ((self.pc.q.val() & self.slot_mask[q].val()) << self.fetch_shift.val())
                    + bit_cast::<ADDR_BITS, 4>(self.last_part.val());
            }
            for j in 0..self.imem.len() {
                self.imem[j].write_enable.next = self.write.val() | self.fetch_write[q].val();
                self.imem[j].write_address.next = self.write_index[q].val();
                self.imem[j].read_address.next = self.read.val();
            }
        }
        // Data lane m (32 bits) goes to the RAM of part lane m.
        for j in 0..self.data.len() {
            self.to_imem.inputs[2 * j].next = self.data[j].val().get_bits::<LANE_BITS>(0);
            self.to_imem.inputs[2 * j + 1].next = self.data[j].val().get_bits::<LANE_BITS>(32);
        }
        for k in 0..self.imem.len() {
            self.imem[k].write_data.next = self.to_imem.outputs[k].val();
            self.to_parts.inputs[k].next = self.imem[k].read_data.val();
        }
        // The instruction: the kept parts, then the read, whose RAMs are in reverse lane
        // order so that RAM k holds instruction lane 15 - k (LANES - 1 - k).
        for i in 0..self.parts.len() {
            self.word[i].next = self.parts[i].q.val();
        }
        for k in 0..self.imem.len() {
            self.word[15 - k].next = self.imem[k].read_data.val();
        }
        for i in 0..self.parts.len() {
            if self.fk.q.val() == self.part_fk[i].val() {
                self.parts[i].d.next = self.to_parts.outputs[i].val();
            }
        }
        for i in 0..self.word.len() {
            self.decoder.word[i].next = self.word[i].val();
        }
        self.dec_opcode.clock.next = self.clock.val();
        self.dec_opcode.data_in.next = self.decoder.opcode.val();
        self.opcode.next = self.dec_opcode.data_out.val();
        self.opcode_next.next = self.decoder.opcode.val();
        for f in 0..self.sync_next.len() {
            self.sync_next[f].next = self.decoder.field[f].val();
        }
        for f in 0..self.field.len() {
            self.dec_field[f].clock.next = self.clock.val();
            self.dec_field[f].data_in.next = self.decoder.field[f].val();
            self.field[f].next = self.dec_field[f].data_out.val();
        }
        self.done_next.next = self.done_count.q.val();
        if self.run.val() {
            self.fk.d.next = 1.into();
            self.whole_next.next = false;
            self.remain_next.next = (self.count.val() & self.count_mask.val()) != 0;
            self.pc.d.next = 0.into();
            self.done_next.next = 0.into();
            self.done1.d.next = 1.into();
            self.n.d.next = self.count.val() & self.count_mask.val();
        } else {
            if self.issue.val() {
                self.fk.d.next = 1.into();
                self.pc.d.next = (self.pc.q.val() + 1) & self.count_mask.val();
            } else if self.fk.q.val() < self.fetch.val() {
                self.fk.d.next = self.fk.q.val() + 1;
            }
            // With a queue, an instruction not yet fetched is not read.
            for q in 0..self._queued {
                if self.issue.val() {
                    if !self.present_after[q].val() {
                        self.fk.d.next = 0.into();
                    }
                } else if !self.present[q].val() {
                    self.fk.d.next = self.fk.q.val();
                }
            }
            if self.complete.val() {
                self.done_next.next = self.done1.q.val();
                self.done1.d.next = (self.done1.q.val() + 1) & self.count_mask.val();
            }
        }
        self.whole_r.d.next = self.whole_next.val();
        self.remain_r.d.next = self.remain_next.val();
        self.can_issue_next.next = self.whole_next.val() & self.remain_next.val();
        self.done_count.d.next = self.done_next.val();
        self.done.next = self.done_count.q.val();
        self.done_inc.next = self.done1.q.val();
        // `done <= pc <= n`, so `done == n` alone says every instruction issued and completed.
        // Both candidates of the next count are compared before `complete` chooses one.
        if self.run.val() {
            self.idle_r.d.next = (self.count.val() & self.count_mask.val()) == 0;
        } else if self.complete.val() {
            self.idle_r.d.next = self.done1.q.val() == self.n.q.val();
        } else {
            self.idle_r.d.next = self.done_count.q.val() == self.n.q.val();
        }
        self.idle.next = self.idle_r.q.val();
        for d in 0..self.drained.len() {
            self.drained[d].next = self.done_count.q.val() == self.pc.q.val();
        }
    }
}

/// Whether a unit's done count of the next cycle reaches a `Sync` count: with a `run` it
/// is 0, with a completion `done + 1`, else `done`. Both counts are compared before the
/// late `complete` chooses, so no adder or comparator follows it.
#[derive(LogicBlock, Default)]
pub struct NextReaches {
    /// The unit's `done`.
    pub done: Signal<In, Addr>,
    /// Its `done_inc`.
    pub done_inc: Signal<In, Addr>,
    /// It completes an instruction in this cycle.
    pub complete: Signal<In, Bit>,
    /// A program starts in this cycle (the counts restart at 0).
    pub run: Signal<In, Bit>,
    /// The `Sync` count.
    pub count: Signal<In, Bits<LANE_BITS>>,
    /// The next cycle's done count is at least `count`.
    pub met: Signal<Out, Bit>,
    wanted: Signal<Local, Addr>,
}

impl Logic for NextReaches {
    #[hdl_gen]
    fn update(&mut self) {
        self.wanted.next = bit_cast::<ADDR_BITS, LANE_BITS>(self.count.val());
        if self.run.val() {
            self.met.next = self.wanted.val() == 0;
        } else if self.complete.val() {
            self.met.next = self.done_inc.val() >= self.wanted.val();
        } else {
            self.met.next = self.done.val() >= self.wanted.val();
        }
    }
}

/// The field decoder of a unit: each field (the opcode first) cut from the instruction's
/// 32-bit lanes at its one place in the packed image ([`InstrFormat`]), with the place's
/// lanes, shift and bits as constants, so that synthesis folds it to wires.
#[derive(LogicBlock)]
pub struct FieldDecoder {
    /// The instruction, 32-bit lanes, least significant first.
    pub word: Vec<Signal<In, Bits<LANE_BITS>>>,
    /// Its opcode.
    pub opcode: Signal<Out, Bits<OPCODE_BITS_USIZE>>,
    /// The decoded fields.
    pub field: Vec<Signal<Out, Bits<LANE_BITS>>>,
    /// Per field, the opcode first: the lane of its first bit (`lo`) and the lane after
    /// (`hi`, zero beyond the last)...
    lo: Router<Bits<LANE_BITS>>,
    hi: Router<Bits<LANE_BITS>>,
    /// ... its first bit within the lane...
    shift: Vec<Constant<Bits<8>>>,
    /// ... and its bits.
    mask: Vec<Constant<Bits<LANE_BITS>>>,
    /// Per field, the bits of its low piece (where its high piece goes).
    low_bits: Vec<Constant<Bits<8>>>,
    /// The two lanes a piece spans, as one window, each piece and each field.
    lo_lane: Signal<Local, Bits<LANE_BITS>>,
    hi_lane: Signal<Local, Bits<LANE_BITS>>,
    window: Signal<Local, Bits<64>>,
    piece: Vec<Signal<Local, Bits<LANE_BITS>>>,
    value: Vec<Signal<Local, Bits<LANE_BITS>>>,
}

impl FieldDecoder {
    /// The decoder of the fields whose low and high pieces are at `slots` (two per field,
    /// the opcode first).
    fn new(slots: &[FieldSlot]) -> Self {
        let lane = |s: &FieldSlot| s.offset as usize / LANE_BITS;
        assert!(slots.len().is_multiple_of(2) && !slots.is_empty(), "two pieces per field, the opcode first");
        Self {
            word: signals(LANES),
            opcode: Default::default(),
            field: signals(slots.len() / 2 - 1),
            lo: Router::new(LANES, slots.iter().map(|s| Some(lane(s))).collect()),
            hi: Router::new(LANES, slots.iter().map(|s| Some(lane(s) + 1).filter(|&l| l < LANES)).collect()),
            shift: constants(slots.iter().map(|s| u64::from(s.offset) % LANE_BITS as u64)),
            mask: slots.iter().map(|s| Constant::new(((1u64 << s.bits) - 1).into())).collect(),
            low_bits: constants(slots.chunks(2).map(|p| u64::from(p[0].bits))),
            lo_lane: Default::default(),
            hi_lane: Default::default(),
            window: Default::default(),
            piece: signals(slots.len()),
            value: signals(slots.len() / 2),
        }
    }
}

impl Logic for FieldDecoder {
    #[hdl_gen]
    fn update(&mut self) {
        for i in 0..self.word.len() {
            self.lo.inputs[i].next = self.word[i].val();
            self.hi.inputs[i].next = self.word[i].val();
        }
        self.lo_lane.next = 0.into();
        self.hi_lane.next = 0.into();
        self.window.next = 0.into();
        for p in 0..self.piece.len() {
            self.lo_lane.next = self.lo.outputs[p].val();
            self.hi_lane.next = self.hi.outputs[p].val();
            self.window.next = (bit_cast::<64, LANE_BITS>(self.hi_lane.val()) << 32) | bit_cast::<64, LANE_BITS>(self.lo_lane.val());
            self.window.next = self.window.val() >> self.shift[p].val();
            self.piece[p].next = bit_cast::<LANE_BITS, 64>(self.window.val()) & self.mask[p].val();
        }
        for f in 0..self.value.len() {
            self.value[f].next = self.piece[f * 2].val() | (self.piece[f * 2 + 1].val() << self.low_bits[f].val());
        }
        self.opcode.next = bit_cast::<OPCODE_BITS_USIZE, LANE_BITS>(self.value[0].val());
        for f in 0..self.field.len() {
            self.field[f].next = self.value[f + 1].val();
        }
    }
}

/// One default value per unit.
fn per_unit<T: Default>() -> Vec<T> {
    Unit::ALL.iter().map(|_| T::default()).collect()
}

impl Controller {
    /// The controller of `arch` for programs of up to `capacity` instructions per unit, for
    /// a DRAM that decodes `dram_addr_bits` address bits. Its memories hold instructions in
    /// the format `InstrFormat::new(arch, capacity, dram_addr_bits)`: the whole program, or
    /// with an instruction queue (`arch.instr_queue`) its first `Q` instructions per unit,
    /// the [`Fetcher`] streaming the others.
    pub fn new(arch: &ArchConfig, capacity: usize, dram_addr_bits: usize) -> Self {
        let mut ctl = Self::shell(arch, capacity);
        let format = InstrFormat::of(arch, capacity, dram_addr_bits, &ctl);
        let fetch = arch.fetch_cycles.max(1);
        let depth = arch.instr_queue.unwrap_or(capacity);
        let queued = arch.instr_queue.is_some();
        let [load, exec, store] =
            Unit::ALL.map(|u| UnitSequencer::new(depth, capacity, queued, fetch, &format.slots(u), arch.decode_stages));
        (ctl.load, ctl.exec, ctl.store) = (load, exec, store);
        if arch.vector_lanes > 0 {
            ctl.exec.drained = signals(1);
            ctl.ex_raw = signals(vector_exec_fields());
            assert_eq!(ctl.ex_raw.len(), ctl.exec.field.len(), "the exec unit's fields with a vector unit");
        }
        if queued {
            ctl.fetcher = vec![Fetcher::new(fetch, arch.dram_latency, arch.vector_lanes > 0)];
            ctl.stream_addr = signals(1);
            ctl.stream_count = signals(1);
            ctl.ir_addr = signals(1);
            ctl.ir_data = signals(INSTR_WORDS / fetch);
        }
        // Part `p` of an instruction fetched from the cycle of its predecessor's issue (or
        // of `run`), `t`, is in its register from `t + p + 2`; the instruction is whole,
        // and may issue, from `t + fetch`.
        let lanes_per_part = LANES / fetch;
        let settled =
            |slot: &FieldSlot| slot.bits == 0 || ((slot.offset + slot.bits - 1) as usize / LANE_BITS) / lanes_per_part + 3 <= fetch;
        // Slots 2 to 7: the low and high pieces of fields 1 to 3, the `Sync` counts.
        if arch.decode_stages == 0 && Unit::ALL.iter().all(|&u| format.slots(u).iter().skip(2).take(6).all(settled)) {
            ctl._counts_early = 1;
        }
        ctl
    }

    /// The controller's ports and registers, with sequencers that decode only an opcode:
    /// what [`Controller::new`] and [`InstrFormat::new`] read the port widths from.
    fn shell(arch: &ArchConfig, depth: usize) -> Self {
        let fetch = arch.fetch_cycles.max(1);
        assert!(fetch.is_power_of_two() && fetch <= INSTR_WORDS, "fetch_cycles {fetch}");
        let opcodes: Vec<Opcode> = Opcode::ALL.into_iter().filter(|&o| arch.has_opcode(o)).collect();
        let opcode_only = [FieldSlot { name: "opcode", offset: 0, bits: OPCODE_BITS, signed: false }, FieldSlot::default()];
        // The vector unit's signals, and its two opcodes' starts, exist only with one.
        let vectors = usize::from(arch.vector_lanes > 0);
        let starts = GROUPED_OPCODES.len() + 2 * vectors;
        Self {
            clock: Default::default(),
            host_we: Default::default(),
            host_unit: Default::default(),
            host_index: Default::default(),
            host_word: signals(INSTR_WORDS / fetch),
            run: Default::default(),
            count: per_unit(),
            stream_addr: vec![],
            stream_count: vec![],
            ir_addr: vec![],
            ir_data: vec![],
            running: Default::default(),
            finished: Default::default(),
            cycles: Default::default(),
            ld_status: Default::default(),
            ex_status: Default::default(),
            st_status: Default::default(),
            ld_start: Default::default(),
            ex_start: Default::default(),
            st_start: Default::default(),
            unit_ready: per_unit(),
            unit_complete: per_unit(),
            ld: Default::default(),
            ld_pattern: Default::default(),
            ex: Default::default(),
            st: Default::default(),
            st_pattern: Default::default(),
            st_stage: Default::default(),
            ex_raw: vec![],
            ld_start_table: signals(vectors),
            ex_start_vector: signals(vectors),
            _vector_decoded: vectors * arch.decode_stages,
            load: UnitSequencer::new(depth, depth, false, fetch, &opcode_only, arch.decode_stages),
            exec: UnitSequencer::new(depth, depth, false, fetch, &opcode_only, arch.decode_stages),
            store: UnitSequencer::new(depth, depth, false, fetch, &opcode_only, arch.decode_stages),
            fetcher: vec![],
            run_r: Default::default(),
            load_met: Default::default(),
            exec_met: Default::default(),
            store_met: Default::default(),
            load_met_r: Default::default(),
            exec_met_r: Default::default(),
            store_met_r: Default::default(),
            next_met: (0..6).map(|_| NextReaches::default()).collect(),
            issuable_r: (0..3).map(|_| Default::default()).collect(),
            op_match_r: STARTS[..starts].iter().map(|_| Default::default()).collect(),
            issuable_next: signals(3),
            run_next: Default::default(),
            _decoded: arch.decode_stages,
            _counts_early: 0,
            fin_r: Default::default(),
            cyc: Default::default(),
            op_code: constants(STARTS[..starts].iter().map(|(o, _, _)| o.code())),
            op_on: STARTS[..starts].iter().map(|(o, _, _)| Constant::new(opcodes.contains(o))).collect(),
        }
    }
}

impl Logic for Controller {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, run_r, fin_r, cyc, load_met_r, exec_met_r, store_met_r);
        self.load.clock.next = self.clock.val();
        self.exec.clock.next = self.clock.val();
        self.store.clock.next = self.clock.val();
        self.load.write.next = self.host_we.val() & (self.host_unit.val() == 0);
        self.exec.write.next = self.host_we.val() & (self.host_unit.val() == 1);
        self.store.write.next = self.host_we.val() & (self.host_unit.val() == 2);
        self.load.index.next = self.host_index.val();
        self.exec.index.next = self.host_index.val();
        self.store.index.next = self.host_index.val();
        for j in 0..self.host_word.len() {
            self.load.data[j].next = self.host_word[j].val();
            self.exec.data[j].next = self.host_word[j].val();
            self.store.data[j].next = self.host_word[j].val();
        }
        for f in 0..self.fetcher.len() {
            self.fetcher[f].clock.next = self.clock.val();
            self.fetcher[f].run.next = self.run.val();
            self.fetcher[f].stream_addr.next = self.stream_addr[f].val();
            self.fetcher[f].stream_count.next = self.stream_count[f].val();
            self.ir_addr[f].next = self.fetcher[f].ir_addr.val();
            self.fetcher[f].ir_opcode.next = self.ir_data[0].val().get_bits::<4>(0);
            self.fetcher[f].room_load.next = self.load.room[f].val();
            self.fetcher[f].room_exec.next = self.exec.room[f].val();
            self.fetcher[f].room_store.next = self.store.room[f].val();
            self.load.fetch_write[f].next = self.fetcher[f].write.val() & (self.fetcher[f].unit.val() == 0);
            self.exec.fetch_write[f].next = self.fetcher[f].write.val() & (self.fetcher[f].unit.val() == 1);
            self.store.fetch_write[f].next = self.fetcher[f].write.val() & (self.fetcher[f].unit.val() == 2);
            self.load.fetch_last[f].next = self.fetcher[f].last.val() & (self.fetcher[f].unit.val() == 0);
            self.exec.fetch_last[f].next = self.fetcher[f].last.val() & (self.fetcher[f].unit.val() == 1);
            self.store.fetch_last[f].next = self.fetcher[f].last.val() & (self.fetcher[f].unit.val() == 2);
            self.load.fetch_part[f].next = self.fetcher[f].part.val();
            self.exec.fetch_part[f].next = self.fetcher[f].part.val();
            self.store.fetch_part[f].next = self.fetcher[f].part.val();
        }
        // The fetcher's words replace the host's while it writes (the host writes only
        // before `run`).
        for j in 0..self.ir_data.len() {
            if self.fetcher[0].write.val() {
                self.load.data[j].next = self.ir_data[j].val();
                self.exec.data[j].next = self.ir_data[j].val();
                self.store.data[j].next = self.ir_data[j].val();
            }
        }
        self.load.run.next = self.run.val();
        self.exec.run.next = self.run.val();
        self.store.run.next = self.run.val();
        self.load.count.next = self.count[0].val();
        self.exec.count.next = self.count[1].val();
        self.store.count.next = self.count[2].val();
        // The units' statuses, by unit (load, exec, store).
        self.unit_ready[0].next = self.ld_status.val().ready;
        self.unit_ready[1].next = self.ex_status.val().ready;
        self.unit_ready[2].next = self.st_status.val().ready;
        self.unit_complete[0].next = self.ld_status.val().complete;
        self.unit_complete[1].next = self.ex_status.val().complete;
        self.unit_complete[2].next = self.st_status.val().complete;
        self.load.complete.next = self.unit_complete[0].val();
        self.exec.complete.next = self.unit_complete[1].val();
        self.store.complete.next = self.unit_complete[2].val();
        // Fields 0, 1, 2 of a unit are its instruction's Sync counts of load, exec, store.
        self.load_met.next = (self.exec.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.load.field[1].val()))
            & (self.store.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.load.field[2].val()));
        self.exec_met.next = (self.load.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[0].val()))
            & (self.store.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[2].val()));
        self.store_met.next = (self.load.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[0].val()))
            & (self.exec.done.val() >= bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[1].val()));
        // With a decode stage the fields of the next cycle are the decoder's output now, so
        // the comparisons of the next cycle can be made now and registered: the same
        // values, with no comparator between the registers and the issue.
        for k in 0..6 {
            self.next_met[k].run.next = self.run.val();
        }
        self.next_met[0].count.next = self.load.sync_next[1].val();
        self.next_met[1].count.next = self.load.sync_next[2].val();
        self.next_met[2].count.next = self.exec.sync_next[0].val();
        self.next_met[3].count.next = self.exec.sync_next[2].val();
        self.next_met[4].count.next = self.store.sync_next[0].val();
        self.next_met[5].count.next = self.store.sync_next[1].val();
        self.next_met[0].done.next = self.exec.done.val();
        self.next_met[0].done_inc.next = self.exec.done_inc.val();
        self.next_met[0].complete.next = self.unit_complete[1].val();
        self.next_met[1].done.next = self.store.done.val();
        self.next_met[1].done_inc.next = self.store.done_inc.val();
        self.next_met[1].complete.next = self.unit_complete[2].val();
        self.next_met[2].done.next = self.load.done.val();
        self.next_met[2].done_inc.next = self.load.done_inc.val();
        self.next_met[2].complete.next = self.unit_complete[0].val();
        self.next_met[3].done.next = self.store.done.val();
        self.next_met[3].done_inc.next = self.store.done_inc.val();
        self.next_met[3].complete.next = self.unit_complete[2].val();
        self.next_met[4].done.next = self.load.done.val();
        self.next_met[4].done_inc.next = self.load.done_inc.val();
        self.next_met[4].complete.next = self.unit_complete[0].val();
        self.next_met[5].done.next = self.exec.done.val();
        self.next_met[5].done_inc.next = self.exec.done_inc.val();
        self.next_met[5].complete.next = self.unit_complete[1].val();
        for _u in 0..(self._decoded + self._counts_early) {
            self.load_met_r.d.next = self.next_met[0].met.val() & self.next_met[1].met.val();
            self.exec_met_r.d.next = self.next_met[2].met.val() & self.next_met[3].met.val();
            self.store_met_r.d.next = self.next_met[4].met.val() & self.next_met[5].met.val();
            self.load_met.next = self.load_met_r.q.val();
            self.exec_met.next = self.exec_met_r.q.val();
            self.store_met.next = self.store_met_r.q.val();
        }
        self.load.go.next = self.run_r.q.val() & self.unit_ready[0].val() & self.load_met.val();
        self.exec.go.next = self.run_r.q.val() & self.unit_ready[1].val() & self.exec_met.val();
        self.store.go.next = self.run_r.q.val() & self.unit_ready[2].val() & self.store_met.val();
        // The starts in the order of STARTS.
        self.ld_start.next.load = self.op_on[0].val() & self.load.issue.val() & (self.load.opcode.val() == self.op_code[0].val());
        self.ld_start.next.load_t = self.op_on[1].val() & self.load.issue.val() & (self.load.opcode.val() == self.op_code[1].val());
        self.ld_start.next.params = self.op_on[2].val() & self.load.issue.val() & (self.load.opcode.val() == self.op_code[2].val());
        self.ex_start.next.ws = self.op_on[3].val() & self.exec.issue.val() & (self.exec.opcode.val() == self.op_code[3].val());
        self.ex_start.next.os = self.op_on[4].val() & self.exec.issue.val() & (self.exec.opcode.val() == self.op_code[4].val());
        self.st_start.next.store = self.op_on[5].val() & self.store.issue.val() & (self.store.opcode.val() == self.op_code[5].val());
        self.st_start.next.store_t = self.op_on[6].val() & self.store.issue.val() & (self.store.opcode.val() == self.op_code[6].val());
        for v in 0..self.ld_start_table.len() {
            self.ld_start_table[v].next = self.op_on[7].val() & self.load.issue.val() & (self.load.opcode.val() == self.op_code[7].val());
            self.ex_start_vector[v].next = self.op_on[8].val() & self.exec.issue.val() & (self.exec.opcode.val() == self.op_code[8].val());
        }
        // With a decode stage the same starts, one gate after the engines' `ready`: the
        // registered `issuable_r` and `op_match_r` hold the rest of each product.
        for _u in 0..self._decoded {
            self.load.go.next = self.issuable_r[0].q.val() & self.unit_ready[0].val();
            self.exec.go.next = self.issuable_r[1].q.val() & self.unit_ready[1].val();
            self.store.go.next = self.issuable_r[2].q.val() & self.unit_ready[2].val();
            self.ld_start.next.load = self.op_match_r[0].q.val() & self.unit_ready[0].val();
            self.ld_start.next.load_t = self.op_match_r[1].q.val() & self.unit_ready[0].val();
            self.ld_start.next.params = self.op_match_r[2].q.val() & self.unit_ready[0].val();
            self.ex_start.next.ws = self.op_match_r[3].q.val() & self.unit_ready[1].val();
            self.ex_start.next.os = self.op_match_r[4].q.val() & self.unit_ready[1].val();
            self.st_start.next.store = self.op_match_r[5].q.val() & self.unit_ready[2].val();
            self.st_start.next.store_t = self.op_match_r[6].q.val() & self.unit_ready[2].val();
        }
        for v in 0..self._vector_decoded {
            self.ld_start_table[v].next = self.op_match_r[7].q.val() & self.unit_ready[0].val();
            self.ex_start_vector[v].next = self.op_match_r[8].q.val() & self.unit_ready[1].val();
        }
        // A `Vector` waits until the exec unit's earlier instructions have completed.
        for v in 0..self.ex_start_vector.len() {
            if (self.exec.opcode.val() == self.op_code[8].val()) & !self.exec.drained[v].val() {
                self.exec.go.next = false;
                self.ex_start_vector[v].next = false;
            }
        }
        // The decoded ports in the order of PORTS, from field 3 of their unit on.
        self.ld.next.target = self.load.field[3].val().get_bit(0);
        self.ld.next.dst = bit_cast::<ADDR_BITS, LANE_BITS>(self.load.field[4].val());
        self.ld.next.offset = bit_cast::<16, LANE_BITS>(self.load.field[5].val());
        self.ld.next.pitch = bit_cast::<ADDR_BITS, LANE_BITS>(self.load.field[6].val());
        self.ld_pattern.next.addr = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.load.field[7].val());
        self.ld_pattern.next.len = bit_cast::<16, LANE_BITS>(self.load.field[8].val());
        self.ld_pattern.next.count0 = bit_cast::<24, LANE_BITS>(self.load.field[9].val());
        self.ld_pattern.next.count1 = bit_cast::<24, LANE_BITS>(self.load.field[10].val());
        self.ld_pattern.next.count2 = bit_cast::<24, LANE_BITS>(self.load.field[11].val());
        self.ld_pattern.next.stride0 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.load.field[12].val());
        self.ld_pattern.next.stride1 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.load.field[13].val());
        self.ld_pattern.next.stride2 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.load.field[14].val());
        self.ld.next.pattern = self.ld_pattern.val();
        self.ld.next.entries = bit_cast::<24, LANE_BITS>(self.load.field[15].val());
        self.ex.next.a_start = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[3].val());
        self.ex.next.a_inner_count = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[4].val());
        self.ex.next.a_inner_stride = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[5].val());
        self.ex.next.a_outer_count = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[6].val());
        self.ex.next.a_outer_stride = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[7].val());
        self.ex.next.acc = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[8].val());
        self.ex.next.accumulate = self.exec.field[9].val().get_bit(0);
        self.ex.next.preload_valid = self.exec.field[10].val().get_bit(0);
        self.ex.next.preload = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[11].val());
        self.ex.next.b = bit_cast::<ADDR_BITS, LANE_BITS>(self.exec.field[12].val());
        self.ex.next.band_valid = self.exec.field[13].val().get_bit(0);
        self.ex.next.band_stride = bit_cast::<8, LANE_BITS>(self.exec.field[14].val());
        self.ex.next.sparse = bit_cast::<2, LANE_BITS>(self.exec.field[15].val());
        self.ex.next.int4 = self.exec.field[16].val().get_bit(0);
        self.ex.next.act4 = self.exec.field[17].val().get_bit(0);
        self.ex.next.csc_valid = self.exec.field[18].val().get_bit(0);
        self.ex.next.csc_values = bit_cast::<16, LANE_BITS>(self.exec.field[19].val());
        self.ex.next.band_taps = bit_cast::<16, LANE_BITS>(self.exec.field[20].val());
        self.ex.next.band_width = bit_cast::<16, LANE_BITS>(self.exec.field[21].val());
        for f in 0..self.ex_raw.len() {
            self.ex_raw[f].next = self.exec.field[f].val();
        }
        self.st.next.acc = bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[3].val());
        self.st.next.row_stride = bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[4].val());
        self.st.next.line_pitch = bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[5].val());
        self.st.next.width = bit_cast::<16, LANE_BITS>(self.store.field[6].val());
        self.st_pattern.next.addr = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.store.field[7].val());
        self.st_pattern.next.len = bit_cast::<16, LANE_BITS>(self.store.field[8].val());
        self.st_pattern.next.count0 = bit_cast::<24, LANE_BITS>(self.store.field[9].val());
        self.st_pattern.next.count1 = bit_cast::<24, LANE_BITS>(self.store.field[10].val());
        self.st_pattern.next.count2 = bit_cast::<24, LANE_BITS>(self.store.field[11].val());
        self.st_pattern.next.stride0 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.store.field[12].val());
        self.st_pattern.next.stride1 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.store.field[13].val());
        self.st_pattern.next.stride2 = bit_cast::<DRAM_ADDR_BITS, LANE_BITS>(self.store.field[14].val());
        self.st.next.param = bit_cast::<ADDR_BITS, LANE_BITS>(self.store.field[15].val());
        self.st_stage.next.zp = bit_cast::<8, LANE_BITS>(self.store.field[16].val());
        self.st_stage.next.lo = bit_cast::<8, LANE_BITS>(self.store.field[17].val());
        self.st_stage.next.hi = bit_cast::<8, LANE_BITS>(self.store.field[18].val());
        self.st.next.pattern = self.st_pattern.val();
        self.st.next.stage = self.st_stage.val();
        self.running.next = self.run_r.q.val();
        self.finished.next = self.fin_r.q.val();
        self.cycles.next = self.cyc.q.val();
        self.run_next.next = self.run_r.q.val();
        if self.run.val() {
            self.run_next.next = true;
            self.fin_r.d.next = false;
            self.cyc.d.next = 0.into();
        } else if self.run_r.q.val() {
            if self.load.idle.val() & self.exec.idle.val() & self.store.idle.val() {
                self.run_next.next = false;
                self.fin_r.d.next = true;
            } else {
                self.cyc.d.next = self.cyc.q.val() + 1;
            }
        }
        self.run_r.d.next = self.run_next.val();
        // With a decode stage, whether each unit may issue in the next cycle, and which
        // opcode it then holds, from the values its registers load now.
        for k in 0..3 {
            self.issuable_r[k].clock.next = self.clock.val();
            self.issuable_r[k].d.next = false;
            self.issuable_next[k].next = false;
        }
        for k in 0..self.op_match_r.len() {
            self.op_match_r[k].clock.next = self.clock.val();
            self.op_match_r[k].d.next = false;
        }
        for _u in 0..self._decoded {
            self.issuable_next[0].next =
                self.run_next.val() & self.next_met[0].met.val() & self.next_met[1].met.val() & self.load.can_issue_next.val();
            self.issuable_r[0].d.next = self.issuable_next[0].val();
            self.issuable_next[1].next =
                self.run_next.val() & self.next_met[2].met.val() & self.next_met[3].met.val() & self.exec.can_issue_next.val();
            self.issuable_r[1].d.next = self.issuable_next[1].val();
            self.issuable_next[2].next =
                self.run_next.val() & self.next_met[4].met.val() & self.next_met[5].met.val() & self.store.can_issue_next.val();
            self.issuable_r[2].d.next = self.issuable_next[2].val();
            self.op_match_r[0].d.next =
                self.issuable_next[0].val() & self.op_on[0].val() & (self.load.opcode_next.val() == self.op_code[0].val());
            self.op_match_r[1].d.next =
                self.issuable_next[0].val() & self.op_on[1].val() & (self.load.opcode_next.val() == self.op_code[1].val());
            self.op_match_r[2].d.next =
                self.issuable_next[0].val() & self.op_on[2].val() & (self.load.opcode_next.val() == self.op_code[2].val());
            self.op_match_r[3].d.next =
                self.issuable_next[1].val() & self.op_on[3].val() & (self.exec.opcode_next.val() == self.op_code[3].val());
            self.op_match_r[4].d.next =
                self.issuable_next[1].val() & self.op_on[4].val() & (self.exec.opcode_next.val() == self.op_code[4].val());
            self.op_match_r[5].d.next =
                self.issuable_next[2].val() & self.op_on[5].val() & (self.store.opcode_next.val() == self.op_code[5].val());
            self.op_match_r[6].d.next =
                self.issuable_next[2].val() & self.op_on[6].val() & (self.store.opcode_next.val() == self.op_code[6].val());
        }
        for _v in 0..self._vector_decoded {
            self.op_match_r[7].d.next =
                self.issuable_next[0].val() & self.op_on[7].val() & (self.load.opcode_next.val() == self.op_code[7].val());
            self.op_match_r[8].d.next =
                self.issuable_next[1].val() & self.op_on[8].val() & (self.exec.opcode_next.val() == self.op_code[8].val());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::{clock_cycle, settle};
    use systole_core::isa::OPS;

    #[test]
    fn every_opcode_has_its_start_port_in_order() {
        let opcodes: Vec<Opcode> = STARTS.iter().map(|(o, _, _)| *o).collect();
        assert_eq!(opcodes, RTL_OPCODES.to_vec());
    }

    #[test]
    fn every_field_of_every_op_has_a_port_and_every_port_a_field() {
        for spec in OPS.iter().filter(|s| RTL_OPCODES.contains(&s.opcode)) {
            for f in spec.fields() {
                assert!(
                    ports(true).any(|p| p.unit == spec.unit && p.field == f.name),
                    "{:?}'s field `{}` reaches no port of the {:?} unit",
                    spec.opcode,
                    f.name,
                    spec.unit
                );
            }
        }
        for p in PORTS {
            assert!(
                OPS.iter().any(|s| RTL_OPCODES.contains(&s.opcode) && s.unit == p.unit && s.has(p.field)),
                "the {:?} port of `{}` decodes no field",
                p.unit,
                p.field
            );
        }
    }

    #[test]
    fn the_widest_configurations_pack_and_small_ones_pack_narrow() {
        for fetch in systole_core::arch::FETCH_CYCLES {
            for dataflow in [Dataflow::WeightStationary, Dataflow::OutputStationary, Dataflow::Both] {
                let arch = ArchConfig { fetch_cycles: fetch, transposer: true, dataflow, ..ArchConfig::default() };
                let f = InstrFormat::new(&arch, 1 << 16, DRAM_ADDR_BITS);
                assert!(f.part_bits() <= INSTR_BITS / fetch, "{fetch} parts of {} bits", f.part_bits());
                // No two fields overlap, and none crosses a part.
                for unit in &f.units {
                    let mut bits = vec![false; INSTR_BITS];
                    for (field, pieces) in unit {
                        let slots = pieces.slots();
                        assert_eq!(slots[0].bits + slots[1].bits, field.bits());
                        for piece in slots.iter().filter(|p| p.bits > 0) {
                            let (first, last) = (piece.offset as usize, (piece.offset + piece.bits - 1) as usize);
                            assert_eq!(first / (INSTR_BITS / fetch), last / (INSTR_BITS / fetch), "a piece crosses a part");
                            assert!(first % (INSTR_BITS / fetch) + piece.bits as usize <= f.part_bits());
                            for b in &mut bits[first..=last] {
                                assert!(!*b, "pieces overlap");
                                *b = true;
                            }
                        }
                    }
                }
            }
        }
        // The iCEBreaker's 4x4: first fit wastes at most two bits per part over the bound
        // that the widest unit's fields set.
        let small = ArchConfig {
            rows: 4,
            cols: 4,
            act_sram_kib: 1,
            wgt_sram_kib: 1,
            acc_sram_kib: 1,
            param_entries: 4,
            dram_bytes_per_cycle: 1,
            transposer: false,
            fetch_cycles: 8,
            ..ArchConfig::default()
        };
        let format = InstrFormat::new(&small, 32, 11);
        let widest_unit = format.units.iter().map(|u| u.iter().map(|(f, _)| f.bits()).sum::<u32>()).max().unwrap();
        assert!(format.part_bits() as u32 <= widest_unit.div_ceil(8) + 2, "{} bits per part for {widest_unit}", format.part_bits());
        // The iCEBreaker preset (8x2, its 256-entry table): every unit's `Sync` counts in
        // part 0, so the controller tests them a cycle early, and the last part, read
        // straight from the memory, full.
        let preset = ArchConfig { rows: 8, cols: 2, param_entries: 256, requant_interval: 6, pe_stages: 2, ..small };
        let format = InstrFormat::new(&preset, 32, 11);
        let part = |bit: u32| bit as usize / (INSTR_BITS / 8);
        for unit in Unit::ALL {
            let slots = format.slots(unit);
            assert!(slots[2..8].iter().all(|s| s.bits == 0 || part(s.offset + s.bits - 1) == 0), "{unit:?}: {slots:?}");
            let last: u32 = slots.iter().filter(|s| s.bits > 0 && part(s.offset) == 7).map(|s| s.bits).sum();
            assert_eq!(last, format.part_bits, "{unit:?}: {slots:?}");
        }
        assert_eq!(Controller::new(&preset, 32, 11)._counts_early, 1);
        assert_eq!(Controller::new(&ArchConfig { fetch_cycles: 2, ..preset }, 32, 11)._counts_early, 0);
    }

    /// Deterministic pseudo-random words (xorshift).
    fn noise(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Writes one instruction of random bits with opcode `op` and no `Sync` waits, packed
    /// ([`InstrFormat::pack`]), into its
    /// unit, runs it with every engine ready, and checks in its issue cycle that its start
    /// port alone is high and that every decoded port holds the field's bits as
    /// `systole-core`'s layout places them, narrowed to the bits the hardware keeps.
    fn issue_and_decode(arch: &ArchConfig, op: Opcode, seed: &mut u64) {
        let depth = 4;
        let mut ctl = Controller::new(arch, depth, DRAM_ADDR_BITS);
        let mut words = [0u64; INSTR_WORDS];
        for w in &mut words {
            *w = noise(seed);
        }
        for name in SYNC_FIELDS {
            let s = op.spec().slot(name).expect("header");
            for b in s.offset..s.offset + s.bits {
                words[(b / 64) as usize] &= !(1 << (b % 64));
            }
        }
        words[0] = (words[0] & !((1 << OPCODE_BITS) - 1)) | op.code();
        let unit = op.unit().index();
        let fetch = arch.fetch_cycles;
        let lanes = INSTR_WORDS / fetch;
        let packed = InstrFormat::new(arch, depth, DRAM_ADDR_BITS).pack(op.unit(), &words);
        // The first instruction is whole `fetch - 1` cycles into the program and issues
        // `decode_stages` cycles later.
        let first = fetch - 1 + arch.decode_stages;
        settle(&mut ctl);
        for (k, part) in packed.chunks(lanes).enumerate() {
            ctl.host_we.next = true;
            ctl.host_unit.next = (unit as u64).into();
            ctl.host_index.next = (k as u64).into();
            for (w, &v) in part.iter().enumerate() {
                ctl.host_word[w].next = v.into();
            }
            // Inputs settle before the edge, as a synchronous host drives them.
            settle(&mut ctl);
            clock_cycle(&mut ctl, |c| &mut c.clock);
        }
        ctl.host_we.next = false;
        for u in 0..3 {
            ctl.count[u].next = ((u == unit) as u64).into();
        }
        let ready = UnitStatus { ready: true, complete: false };
        (ctl.ld_status.next, ctl.ex_status.next, ctl.st_status.next) = (ready, ready, ready);
        ctl.run.next = true;
        settle(&mut ctl);
        clock_cycle(&mut ctl, |c| &mut c.clock);
        ctl.run.next = false;
        settle(&mut ctl);
        let mut cycle = 0;
        while !STARTS.iter().any(|(_, _, p)| p(&ctl)) {
            clock_cycle(&mut ctl, |c| &mut c.clock);
            cycle += 1;
            assert!(cycle <= first, "{op:?} does not issue within {first} cycles");
        }
        assert_eq!(cycle, first, "{op:?} issues {} cycles into the program", cycle);
        for (o, name, port) in STARTS {
            assert_eq!(port(&ctl), o == op, "{name} while {op:?} issues");
        }
        for p in ports(arch.vector_lanes > 0).filter(|p| p.unit == op.unit()) {
            let width = (p.port)(&ctl).width;
            let expected = op.spec().slot(p.field).map_or(0, |s| {
                let kept = kept_bits(arch, p.kind, width, DRAM_ADDR_BITS).min(s.bits as usize);
                s.raw(&words) & ((1u64 << kept) - 1)
            });
            assert_eq!((p.port)(&ctl).raw, expected, "{op:?}: the port of field `{}` on {}", p.field, arch.name);
        }
    }

    #[test]
    fn the_kernel_decodes_every_field_of_every_opcode_into_its_port() {
        let mut seed = 0x5eed_1234_abcd_9876;
        for (fetch, decode_stages) in [(1, 0), (2, 0), (8, 0), (1, 1), (8, 1)] {
            for dataflow in [Dataflow::WeightStationary, Dataflow::OutputStationary, Dataflow::Both] {
                // A vector unit (its two opcodes and their fields) with whole-instruction
                // fetches, with a decode stage and without.
                let vector_lanes = usize::from(fetch == 1);
                let arch =
                    ArchConfig { fetch_cycles: fetch, decode_stages, transposer: true, dataflow, vector_lanes, ..ArchConfig::default() };
                for op in Opcode::ALL.into_iter().filter(|&o| arch.has_opcode(o)) {
                    issue_and_decode(&arch, op, &mut seed);
                }
            }
        }
    }
}
