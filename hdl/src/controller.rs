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
//! The decoder is generated from the opcodes' field tables (`systole_core::encoding`), so
//! the field positions exist once, in `systole-core`; `PORTS` names each decoded port's
//! unit and ISA field once. It decodes only the opcodes the configuration has
//! (`ArchConfig::has_opcode`):
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
use systole_core::encoding::OPCODE_BITS;
use systole_core::isa::{FieldSlot, Opcode, Unit, INSTR_BITS, INSTR_WORDS};
use systole_core::ArchConfig;

type Addr = Bits<ADDR_BITS>;
type DAddr = Bits<DRAM_ADDR_BITS>;

/// Width of the cycle counter.
pub const CYCLE_BITS: usize = 48;

/// The controller.
#[derive(LogicBlock, Default)]
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
    /// `target` of `Load` (the load unit's fields follow).
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
        _ => width,
    }
}

/// An output port the decoder drives from a field's bits.
trait FieldOutput {
    /// Drives the port with the field's bits (sign-extended for a signed port).
    fn set(&mut self, raw: u64);
    /// The port's width.
    fn width(&self) -> usize;
    /// Declares the port driven.
    fn drive(&mut self);
}

impl<const N: usize> FieldOutput for Signal<Out, Bits<N>> {
    fn set(&mut self, raw: u64) {
        self.next = raw.into();
    }
    fn width(&self) -> usize {
        N
    }
    fn drive(&mut self) {
        self.connect();
    }
}

impl FieldOutput for Signal<Out, Bit> {
    fn set(&mut self, raw: u64) {
        self.next = raw != 0;
    }
    fn width(&self) -> usize {
        1
    }
    fn drive(&mut self) {
        self.connect();
    }
}

impl<const N: usize> FieldOutput for Signal<Out, Signed<N>> {
    fn set(&mut self, raw: u64) {
        self.next = (((raw << (64 - N)) as i64) >> (64 - N)).into();
    }
    fn width(&self) -> usize {
        N
    }
    fn drive(&mut self) {
        self.connect();
    }
}

/// One decoded output port: it takes ISA field `field` from every op of `unit` whose
/// table ([`OpSpec`]) has it, and 0 for the unit's other ops.
struct DecodedPort {
    /// The port's name in the emitted Verilog.
    name: &'static str,
    unit: Unit,
    field: &'static str,
    kind: FieldKind,
    port: PortOf<dyn FieldOutput>,
}

const fn decoded(name: &'static str, unit: Unit, field: &'static str, kind: FieldKind, port: PortOf<dyn FieldOutput>) -> DecodedPort {
    DecodedPort { name, unit, field, kind, port }
}

use FieldKind::{Band as BandK, Count, Dram, Len, Sram, Whole};
use Unit::{Exec as Ex, Load as Ld, Store as St};

/// The decoded output ports.
const PORTS: &[DecodedPort] = &[
    decoded("ld_target", Ld, "target", Whole, |c| &mut c.ld_target),
    decoded("ld_dst", Ld, "dst", Sram, |c| &mut c.ld_dst),
    decoded("ld_offset", Ld, "offset", Len, |c| &mut c.ld_offset),
    decoded("ld_pitch", Ld, "pitch", Sram, |c| &mut c.ld_pitch),
    decoded("ld_addr", Ld, "addr", Dram, |c| &mut c.ld_addr),
    decoded("ld_len", Ld, "len", Len, |c| &mut c.ld_len),
    decoded("ld_count$0", Ld, "dims[0].count", Count, |c| &mut c.ld_count[0]),
    decoded("ld_count$1", Ld, "dims[1].count", Count, |c| &mut c.ld_count[1]),
    decoded("ld_count$2", Ld, "dims[2].count", Count, |c| &mut c.ld_count[2]),
    decoded("ld_stride$0", Ld, "dims[0].stride", Dram, |c| &mut c.ld_stride[0]),
    decoded("ld_stride$1", Ld, "dims[1].stride", Dram, |c| &mut c.ld_stride[1]),
    decoded("ld_stride$2", Ld, "dims[2].stride", Dram, |c| &mut c.ld_stride[2]),
    decoded("ld_entries", Ld, "count", Count, |c| &mut c.ld_entries),
    decoded("ex_a_start", Ex, "a.start", Sram, |c| &mut c.ex_a_start),
    decoded("ex_a_inner_count", Ex, "a.inner_count", Whole, |c| &mut c.ex_a_inner_count),
    decoded("ex_a_inner_stride", Ex, "a.inner_stride", Sram, |c| &mut c.ex_a_inner_stride),
    decoded("ex_a_outer_count", Ex, "a.outer_count", Whole, |c| &mut c.ex_a_outer_count),
    decoded("ex_a_outer_stride", Ex, "a.outer_stride", Sram, |c| &mut c.ex_a_outer_stride),
    decoded("ex_acc", Ex, "acc", Sram, |c| &mut c.ex_acc),
    decoded("ex_accumulate", Ex, "accumulate", Whole, |c| &mut c.ex_accumulate),
    decoded("ex_preload_valid", Ex, "preload.valid", Whole, |c| &mut c.ex_preload_valid),
    decoded("ex_preload", Ex, "preload", Sram, |c| &mut c.ex_preload),
    decoded("ex_b", Ex, "b", Sram, |c| &mut c.ex_b),
    decoded("ex_band_valid", Ex, "band.valid", Whole, |c| &mut c.ex_band_valid),
    decoded("ex_band_stride", Ex, "band.stride", Whole, |c| &mut c.ex_band_stride),
    decoded("ex_sparse", Ex, "sparse", Whole, |c| &mut c.ex_sparse),
    decoded("ex_int4", Ex, "int4", Whole, |c| &mut c.ex_int4),
    decoded("ex_act4", Ex, "act4", Whole, |c| &mut c.ex_act4),
    decoded("ex_csc_valid", Ex, "csc.valid", Whole, |c| &mut c.ex_csc_valid),
    decoded("ex_csc", Ex, "csc", Whole, |c| &mut c.ex_csc),
    decoded("ex_band_taps", Ex, "band.taps", BandK, |c| &mut c.ex_band_taps),
    decoded("ex_band_width", Ex, "band.width", BandK, |c| &mut c.ex_band_width),
    decoded("st_acc", St, "acc", Sram, |c| &mut c.st_acc),
    decoded("st_row_stride", St, "row_stride", Sram, |c| &mut c.st_row_stride),
    decoded("st_line_pitch", St, "line_pitch", Sram, |c| &mut c.st_line_pitch),
    decoded("st_width", St, "width", Whole, |c| &mut c.st_width),
    decoded("st_addr", St, "addr", Dram, |c| &mut c.st_addr),
    decoded("st_len", St, "len", Len, |c| &mut c.st_len),
    decoded("st_count$0", St, "dims[0].count", Count, |c| &mut c.st_count[0]),
    decoded("st_count$1", St, "dims[1].count", Count, |c| &mut c.st_count[1]),
    decoded("st_count$2", St, "dims[2].count", Count, |c| &mut c.st_count[2]),
    decoded("st_stride$0", St, "dims[0].stride", Dram, |c| &mut c.st_stride[0]),
    decoded("st_stride$1", St, "dims[1].stride", Dram, |c| &mut c.st_stride[1]),
    decoded("st_stride$2", St, "dims[2].stride", Dram, |c| &mut c.st_stride[2]),
    decoded("st_param", St, "out.param", Sram, |c| &mut c.st_param),
    decoded("st_zp", St, "out.zp", Whole, |c| &mut c.st_zp),
    decoded("st_lo", St, "out.lo", Whole, |c| &mut c.st_lo),
    decoded("st_hi", St, "out.hi", Whole, |c| &mut c.st_hi),
];

/// A port of the controller, reached from the controller.
type PortOf<T> = fn(&mut Controller) -> &mut T;

/// An opcode's start port.
type StartPort = PortOf<Signal<Out, Bit>>;

/// The start port of each opcode, in opcode order (a test checks the order).
const STARTS: [(Opcode, &str, StartPort); 7] = [
    (Opcode::Load, "start_load", |c| &mut c.start_load),
    (Opcode::LoadTransposed, "start_load_t", |c| &mut c.start_load_t),
    (Opcode::LoadParams, "start_params", |c| &mut c.start_params),
    (Opcode::MatmulWs, "start_ws", |c| &mut c.start_ws),
    (Opcode::MatmulOs, "start_os", |c| &mut c.start_os),
    (Opcode::Store, "start_store", |c| &mut c.start_store),
    (Opcode::StoreTransposed, "start_store_t", |c| &mut c.start_store_t),
];

/// A decoded port's source: for each opcode of its unit that `arch` has and whose table has
/// the field, the field's slot narrowed to the bits the hardware keeps.
#[derive(Clone, Debug, Default)]
struct PortSource {
    slots: Vec<(Opcode, FieldSlot)>,
    width: usize,
}

/// The sources of [`PORTS`] on `arch` (for a controller of the same shape as `ctl`), and
/// the sync slots, narrowed to `count_bits`.
fn decoder(ctl: &mut Controller, arch: &ArchConfig, dram_addr_bits: usize, count_bits: usize) -> (Vec<PortSource>, [FieldSlot; 3]) {
    let sources = PORTS
        .iter()
        .map(|p| {
            let width = (p.port)(ctl).width();
            let kept = kept_bits(arch, p.kind, width, dram_addr_bits) as u32;
            let slots = Opcode::ALL
                .into_iter()
                .filter(|&o| o.unit() == p.unit && arch.has_opcode(o))
                .filter_map(|o| o.spec().slot(p.field).map(|s| (o, FieldSlot { bits: s.bits.min(kept), ..s })))
                .collect();
            PortSource { slots, width }
        })
        .collect();
    let sync = ["sync.load", "sync.exec", "sync.store"].map(|n| {
        let s = Opcode::Load.spec().slot(n).expect("the header has the sync counts");
        FieldSlot { bits: s.bits.min(count_bits as u32), ..s }
    });
    (sources, sync)
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
    sources: Vec<PortSource>,
    sync: [FieldSlot; 3],
    /// The opcodes `arch` has.
    opcodes: Vec<Opcode>,
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

/// One default value per unit.
fn per_unit<T: Default>() -> Vec<T> {
    Unit::ALL.iter().map(|_| T::default()).collect()
}

/// The opcode in an encoded instruction's first word (0 for none).
fn opcode_of(words: &[u64; INSTR_WORDS]) -> u64 {
    words[0] & ((1 << OPCODE_BITS) - 1)
}

impl Controller {
    /// The controller of `arch` with `depth` instructions per unit, for a DRAM that decodes
    /// `dram_addr_bits` address bits.
    pub fn new(arch: &ArchConfig, depth: usize, dram_addr_bits: usize) -> Self {
        let fetch = arch.fetch_cycles.max(1);
        let count_bits = bits_for(depth);
        let lanes = INSTR_WORDS / fetch;
        let mut ctl = Self {
            host_word: (0..lanes).map(|_| Default::default()).collect(),
            count: per_unit(),
            unit_ready: per_unit(),
            unit_complete: per_unit(),
            ld_count: per_unit(),
            ld_stride: per_unit(),
            st_count: per_unit(),
            st_stride: per_unit(),
            _depth: depth,
            _fetch: fetch,
            ..Default::default()
        };
        let (sources, sync) = decoder(&mut ctl, arch, dram_addr_bits, count_bits);
        ctl._st = State {
            imem: std::array::from_fn(|_| vec![vec![0; lanes]; depth * fetch]),
            rd: std::array::from_fn(|_| vec![0; lanes]),
            parts: std::array::from_fn(|_| vec![vec![0; lanes]; fetch - 1]),
            sources,
            sync,
            opcodes: Opcode::ALL.into_iter().filter(|&o| arch.has_opcode(o)).collect(),
            count_mask: (1 << count_bits) - 1,
            ..Default::default()
        };
        ctl
    }
}

impl Logic for Controller {
    fn update(&mut self) {
        let words: [[u64; INSTR_WORDS]; 3] = std::array::from_fn(|u| self._st.word(u));
        let opcode = |u: usize| opcode_of(&words[u]);
        let values: Vec<u64> = PORTS
            .iter()
            .zip(&self._st.sources)
            .map(|(p, src)| {
                let u = p.unit.index();
                src.slots.iter().find(|(o, _)| o.code() == opcode(u)).map_or(0, |(_, s)| s.raw(&words[u]))
            })
            .collect();
        for (p, v) in PORTS.iter().zip(values) {
            (p.port)(self).set(v);
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
        let started: Vec<bool> = STARTS
            .iter()
            .map(|(o, _, _)| st.opcodes.contains(o) && issue[o.unit().index()] && opcode(o.unit().index()) == o.code())
            .collect();
        for ((_, _, port), on) in STARTS.iter().zip(started) {
            port(self).next = on;
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
        self.running.connect();
        self.finished.connect();
        self.cycles.connect();
        for (_, _, port) in STARTS {
            port(self).connect();
        }
        for p in PORTS {
            (p.port)(self).drive();
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
wire [{obits_top}:0] op{u} = w{u}[{obits_top}:0];
",
                top = part - 1,
                last = slots - 1,
                parts = kept.iter().map(|p| format!("reg [{}:0] {p};\n", part - 1)).collect::<String>(),
                wtop = INSTR_BITS - 1,
                concat = std::iter::once(format!("rd{u}")).chain(kept.iter().cloned()).collect::<Vec<_>>().join(", "),
                ctop = cb - 1,
                ftop = fb - 1,
                obits_top = OPCODE_BITS - 1,
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
        let ob = OPCODE_BITS;
        for (o, name, _) in STARTS {
            let u = o.unit().index();
            let rhs = if st.opcodes.contains(&o) { format!("issue{u} && op{u} == {ob}'d{}", o.code()) } else { "1'b0".to_string() };
            let _ = writeln!(v, "    {name} = {rhs};");
        }
        for (p, src) in PORTS.iter().zip(&st.sources) {
            let (name, width, u) = (p.name, src.width, p.unit.index());
            let _ = writeln!(v, "    {name} = 0;\n    case (op{u})");
            for &(o, s) in &src.slots {
                let _ = writeln!(v, "        {ob}'d{}: {name} = {};", o.code(), slice(u, s));
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

#[cfg(test)]
mod tests {
    use super::*;
    use systole_core::isa::OPS;

    #[test]
    fn every_opcode_has_its_start_port_in_order() {
        let opcodes: Vec<Opcode> = STARTS.iter().map(|(o, _, _)| *o).collect();
        assert_eq!(opcodes, Opcode::ALL.to_vec());
    }

    #[test]
    fn every_field_of_every_op_has_a_port_and_every_port_a_field() {
        for spec in &OPS {
            for f in spec.fields() {
                assert!(
                    PORTS.iter().any(|p| p.unit == spec.unit && p.field == f.name),
                    "{:?}'s field `{}` reaches no port of the {:?} unit",
                    spec.opcode,
                    f.name,
                    spec.unit
                );
            }
        }
        for p in PORTS {
            assert!(OPS.iter().any(|s| s.unit == p.unit && s.has(p.field)), "port `{}` decodes no field", p.name);
        }
    }

    #[test]
    fn ports_are_as_wide_as_their_fields_need() {
        let arch = ArchConfig::default();
        let mut ctl = Controller::new(&arch, 16, DRAM_ADDR_BITS);
        for (p, src) in PORTS.iter().zip(ctl._st.sources.clone()) {
            assert_eq!(src.width, (p.port)(&mut ctl).width());
            for (o, s) in src.slots {
                assert!(s.bits as usize <= src.width, "{:?} `{}`: {} bits into the {}-bit port {}", o, p.field, s.bits, src.width, p.name);
            }
        }
    }
}
