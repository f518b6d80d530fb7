//! The instruction fetcher of an instance with an instruction queue
//! (`ArchConfig::instr_queue`, docs/ARCHITECTURE.md sections 5 and 9).
//!
//! The host preloads each unit's first `Q` instructions into its queue and places the
//! others, the *entries*, in program order in DRAM from `stream_addr`, 64 bytes each (the
//! packed image of [`crate::controller::InstrFormat`]). From the `run` cycle on, the
//! fetcher reads them through its own DRAM read port, one part (`64 / F` bytes) per cycle,
//! and writes each into the queue of the unit its opcode names, at that unit's next slot.
//!
//! Cycle by cycle, with `L` the DRAM latency: the first entry's first part arrives in
//! cycle `L` (the address is held from cycle 0). When an entry's first part arrives, the
//! fetcher writes it if its unit's queue has room (fewer than `Q` instructions fetched and
//! not yet issued), then the entry's other parts in the following cycles, and the next
//! entry's first part arrives right after. Without room it stops; from the first cycle
//! with room, `c`, it waits again and the part arrives in cycle `c + L`. This is
//! `core::timing::Timeline`'s fetch rule.

use crate::sram::ADDR_BITS;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::encoding::OPCODE_BITS;
use systole_core::isa::{Opcode, Unit, INSTR_WORDS};

type DAddr = Bits<DRAM_ADDR_BITS>;

/// Bits of the fetcher's latency counter: DRAM latencies up to 2^20 cycles.
const WAIT_BITS: usize = 20;

/// The fetcher.
#[derive(LogicBlock)]
pub struct Fetcher {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Start a program in the next cycle: sample `stream_addr` and `stream_count`.
    pub run: Signal<In, Bit>,
    /// DRAM address of the first entry.
    pub stream_addr: Signal<In, DAddr>,
    /// Entries to fetch.
    pub stream_count: Signal<In, Bits<ADDR_BITS>>,
    /// DRAM read address; its bytes arrive in the next cycle.
    pub ir_addr: Signal<Out, DAddr>,
    /// The opcode bits of the part read in the previous cycle (bits 0 to 3, where every
    /// unit's format has the opcode; the controller routes the part's words to the queues).
    pub ir_opcode: Signal<In, Bits<4>>,
    /// The load unit's queue has a free slot...
    pub room_load: Signal<In, Bit>,
    /// ... the exec unit's...
    pub room_exec: Signal<In, Bit>,
    /// ... and the store unit's.
    pub room_store: Signal<In, Bit>,
    /// Write the part read in the previous cycle as part `part` of the next instruction of
    /// unit `unit`'s queue.
    pub write: Signal<Out, Bit>,
    /// The unit.
    pub unit: Signal<Out, Bits<2>>,
    /// The part.
    pub part: Signal<Out, Bits<ADDR_BITS>>,
    /// This write is the entry's last part: the unit's queue holds one more instruction.
    pub last: Signal<Out, Bit>,
    /// Address of the part whose bytes arrive in the next cycle.
    cur: DFF<DAddr>,
    /// Entries not yet written in full.
    left: DFF<Bits<ADDR_BITS>>,
    /// Cycles of wait left (phase 1).
    count: DFF<Bits<WAIT_BITS>>,
    /// 0 idle, 1 waiting for the DRAM, 2 streaming (a part arrives in this cycle), 3
    /// stopped for room in `held`'s queue.
    phase: DFF<Bits<2>>,
    /// Part arriving in this cycle while streaming.
    at_part: DFF<Bits<4>>,
    /// Unit of the entry being written (or waited for).
    held: DFF<Bits<2>>,
    /// The arriving entry's unit: from its opcode on its first part, else `held`.
    target: Signal<Local, Bits<2>>,
    /// Room in `target`'s queue, and in `held`'s.
    target_room: Signal<Local, Bit>,
    held_room: Signal<Local, Bit>,
    /// The last opcode of the load unit and of the exec unit (the codes of
    /// [`crate::controller::GROUPED_OPCODES`] are grouped by unit)...
    last_load_code: Constant<Bits<4>>,
    last_exec_code: Constant<Bits<4>>,
    /// ... and, with a vector unit (one each, else none), the codes of `LoadTable` and
    /// `Vector`, which follow them.
    table_code: Vec<Constant<Bits<4>>>,
    vector_code: Vec<Constant<Bits<4>>>,
    /// Bytes per part, `F - 1`, the DRAM latency less one and less two.
    part_bytes: Constant<DAddr>,
    last_part: Constant<Bits<4>>,
    latency1: Constant<Bits<WAIT_BITS>>,
    latency2: Constant<Bits<WAIT_BITS>>,
}

impl Fetcher {
    /// The fetcher of instructions in `fetch` parts from a DRAM of latency `dram_latency`,
    /// for an instance with a vector unit or without.
    pub fn new(fetch: usize, dram_latency: usize, vector: bool) -> Self {
        assert!((2..1 << WAIT_BITS).contains(&dram_latency), "DRAM latency {dram_latency}");
        assert_eq!(OPCODE_BITS, 4);
        let opcodes = crate::controller::GROUPED_OPCODES;
        let vectors = usize::from(vector);
        let last_code = |unit: Unit| opcodes.iter().filter(|o| o.unit() == unit).map(|o| o.code()).max().unwrap_or(0);
        let (last_load, last_exec) = (last_code(Unit::Load), last_code(Unit::Exec));
        assert!(
            opcodes
                .iter()
                .all(|o| (o.code() <= last_load) == (o.unit() == Unit::Load) && (o.code() <= last_exec) == (o.unit() != Unit::Store)),
            "opcodes are grouped by unit"
        );
        let words = INSTR_WORDS / fetch;
        Self {
            clock: Default::default(),
            run: Default::default(),
            stream_addr: Default::default(),
            stream_count: Default::default(),
            ir_addr: Default::default(),
            ir_opcode: Default::default(),
            room_load: Default::default(),
            room_exec: Default::default(),
            room_store: Default::default(),
            write: Default::default(),
            unit: Default::default(),
            part: Default::default(),
            last: Default::default(),
            cur: Default::default(),
            left: Default::default(),
            count: Default::default(),
            phase: Default::default(),
            at_part: Default::default(),
            held: Default::default(),
            target: Default::default(),
            target_room: Default::default(),
            held_room: Default::default(),
            last_load_code: Constant::new(last_load.into()),
            last_exec_code: Constant::new(last_exec.into()),
            table_code: crate::wiring::constants((0..vectors).map(|_| Opcode::LoadTable.code())),
            vector_code: crate::wiring::constants((0..vectors).map(|_| Opcode::Vector.code())),
            part_bytes: Constant::new(((words * 8) as u64).into()),
            last_part: Constant::new(((fetch - 1) as u64).into()),
            latency1: Constant::new(((dram_latency - 1) as u64).into()),
            latency2: Constant::new(((dram_latency - 2) as u64).into()),
        }
    }
}

impl Logic for Fetcher {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, cur, left, count, phase, at_part, held);
        self.ir_addr.next = self.cur.q.val();
        if self.at_part.q.val() != 0 {
            self.target.next = self.held.q.val();
        } else if self.ir_opcode.val() <= self.last_load_code.val() {
            self.target.next = 0.into();
        } else if self.ir_opcode.val() <= self.last_exec_code.val() {
            self.target.next = 1.into();
        } else {
            self.target.next = 2.into();
        }
        for v in 0..self.table_code.len() {
            if (self.at_part.q.val() == 0) & (self.ir_opcode.val() == self.table_code[v].val()) {
                self.target.next = 0.into();
            }
            if (self.at_part.q.val() == 0) & (self.ir_opcode.val() == self.vector_code[v].val()) {
                self.target.next = 1.into();
            }
        }
        if self.target.val() == 0 {
            self.target_room.next = self.room_load.val();
        } else if self.target.val() == 1 {
            self.target_room.next = self.room_exec.val();
        } else {
            self.target_room.next = self.room_store.val();
        }
        if self.held.q.val() == 0 {
            self.held_room.next = self.room_load.val();
        } else if self.held.q.val() == 1 {
            self.held_room.next = self.room_exec.val();
        } else {
            self.held_room.next = self.room_store.val();
        }
        self.unit.next = self.target.val();
        self.part.next = bit_cast::<ADDR_BITS, 4>(self.at_part.q.val());
        self.write.next = false;
        self.last.next = false;
        if self.run.val() {
            self.cur.d.next = self.stream_addr.val();
            self.left.d.next = self.stream_count.val();
            self.count.d.next = self.latency1.val();
            self.at_part.d.next = 0.into();
            if self.stream_count.val() != 0 {
                self.phase.d.next = 1.into();
            } else {
                self.phase.d.next = 0.into();
            }
        } else if self.phase.q.val() == 1 {
            if self.count.q.val() == 0 {
                self.phase.d.next = 2.into();
                self.cur.d.next = self.cur.q.val() + self.part_bytes.val();
            } else {
                self.count.d.next = self.count.q.val() - 1;
            }
        } else if self.phase.q.val() == 2 {
            if (self.at_part.q.val() == 0) & !self.target_room.val() {
                // No room: stop, and read this entry's first part again after the wait.
                self.phase.d.next = 3.into();
                self.held.d.next = self.target.val();
                self.cur.d.next = self.cur.q.val() - self.part_bytes.val();
            } else {
                self.write.next = true;
                self.held.d.next = self.target.val();
                self.cur.d.next = self.cur.q.val() + self.part_bytes.val();
                if self.at_part.q.val() == self.last_part.val() {
                    self.last.next = true;
                    self.at_part.d.next = 0.into();
                    self.left.d.next = self.left.q.val() - 1;
                    if self.left.q.val() == 1 {
                        self.phase.d.next = 0.into();
                    }
                } else {
                    self.at_part.d.next = self.at_part.q.val() + 1;
                }
            }
        } else if (self.phase.q.val() == 3) & self.held_room.val() {
            self.count.d.next = self.latency2.val();
            self.phase.d.next = 1.into();
        }
    }
}
