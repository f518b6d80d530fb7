//! The scratchpads and the accumulator as the engines see them: lanes of [`SyncRam`] with a
//! host port, and the accumulator's read-modify-write with forwarding.

use crate::delay::Delay;
use crate::net;
use crate::sram::{index_bits, ByteRam, SyncRam, ADDR_BITS};
use crate::verilog::low_mask;
use crate::wiring::{assign_zero_byte, signals, Mode};
use rust_hdl::prelude::*;

type Addr = Bits<ADDR_BITS>;

/// A scratchpad of `lanes`-byte words: the writer (host or load engine) writes any subset
/// of a word's bytes, the engine reads whole words (data one cycle after the address).
#[derive(LogicBlock)]
pub struct Scratchpad {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: write lane `k` of `host_data` to word `host_addr` (per lane).
    pub host_we: Vec<Signal<In, Bit>>,
    /// Host: word address.
    pub host_addr: Signal<In, Addr>,
    /// Host: the word, one byte per lane.
    pub host_data: Vec<Signal<In, Signed<8>>>,
    /// Engine: word to read.
    pub read_address: Signal<In, Addr>,
    /// Engine: the word addressed in the previous cycle.
    pub read_data: Vec<Signal<Out, Signed<8>>>,
    /// The words, one byte-enabled RAM: the load unit writes and the exec unit reads,
    /// never one word in one cycle.
    ram: ByteRam,
}

impl Scratchpad {
    /// `depth` words of `lanes` bytes.
    pub fn new(lanes: usize, depth: usize) -> Self {
        Self {
            clock: Default::default(),
            host_we: (0..lanes).map(|_| Default::default()).collect(),
            host_addr: Default::default(),
            host_data: (0..lanes).map(|_| Default::default()).collect(),
            read_address: Default::default(),
            read_data: (0..lanes).map(|_| Default::default()).collect(),
            ram: ByteRam::new(lanes, depth),
        }
    }
}

impl Scratchpad {
    /// Words.
    pub fn depth(&self) -> usize {
        self.ram.depth()
    }

    /// The scratchpad read with a stagger of one cycle per lane, in groups of `group`
    /// lanes ([`ByteRam::staggered`]).
    pub fn with_staggered_reads(mut self, group: usize) -> Self {
        self.ram = ByteRam::new(self.read_data.len(), self.depth()).staggered(group);
        self
    }
}

impl Logic for Scratchpad {
    #[hdl_gen]
    fn update(&mut self) {
        self.ram.clock.next = self.clock.val();
        self.ram.write_address.next = self.host_addr.val();
        self.ram.read_address.next = self.read_address.val();
        for k in 0..self.read_data.len() {
            self.ram.write_enable[k].next = self.host_we[k].val();
            self.ram.write_data[k].next = self.host_data[k].val();
            self.read_data[k].next = self.ram.read_data[k].val();
        }
    }
}

/// One bank of the activation scratchpad: words `base..end` of the scratchpad's address
/// space. The writer's word lands here when its address is in range; a read addresses
/// `read_address - base`, or `read_address` itself when `wide` (every bank at one offset).
/// `chain_out` passes the bank's word when the previous cycle's read address was in
/// range, else `chain_in`: chaining the banks selects the addressed word.
#[derive(LogicBlock)]
pub struct Bank {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: lane enables.
    pub host_we: Vec<Signal<In, Bit>>,
    /// Writer: word address in the whole scratchpad.
    pub host_addr: Signal<In, Addr>,
    /// Writer: the word.
    pub host_data: Vec<Signal<In, Signed<8>>>,
    /// Engine: word to read.
    pub read_address: Signal<In, Addr>,
    /// Engine: read at offset `read_address` in every bank.
    pub wide: Signal<In, Bit>,
    /// The word of the banks before this one.
    pub chain_in: Vec<Signal<In, Signed<8>>>,
    /// This bank's word read in the previous cycle.
    pub read_data: Vec<Signal<Out, Signed<8>>>,
    /// The addressed word so far.
    pub chain_out: Vec<Signal<Out, Signed<8>>>,
    spad: Scratchpad,
    base: Constant<Addr>,
    // Words in the bank: an address is the bank's when `address - base` (wrapping) is below.
    size: Constant<Addr>,
    write_offset: Signal<Local, Addr>,
    read_offset: Signal<Local, Addr>,
    // False for the only bank: every address is its own, and synthesis drops the decode.
    decode: Constant<Bit>,
    write_hit: Signal<Local, Bit>,
    read_hit: DFF<Bit>,
}

impl Bank {
    /// Words `base..base + depth` of `lanes` bytes, one of `banks`.
    pub fn new(lanes: usize, base: usize, depth: usize, banks: usize) -> Self {
        Self {
            clock: Default::default(),
            host_we: (0..lanes).map(|_| Default::default()).collect(),
            host_addr: Default::default(),
            host_data: (0..lanes).map(|_| Default::default()).collect(),
            read_address: Default::default(),
            wide: Default::default(),
            chain_in: (0..lanes).map(|_| Default::default()).collect(),
            read_data: (0..lanes).map(|_| Default::default()).collect(),
            chain_out: (0..lanes).map(|_| Default::default()).collect(),
            spad: Scratchpad::new(lanes, depth),
            base: Constant::new((base as u64).into()),
            size: Constant::new((depth as u64).into()),
            write_offset: Default::default(),
            read_offset: Default::default(),
            decode: Constant::new(banks > 1),
            write_hit: Default::default(),
            read_hit: Default::default(),
        }
    }
}

impl Logic for Bank {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, read_hit);
        self.spad.clock.next = self.clock.val();
        self.write_offset.next = self.host_addr.val() - self.base.val();
        self.read_offset.next = self.read_address.val() - self.base.val();
        self.write_hit.next = !self.decode.val() | (self.write_offset.val() < self.size.val());
        self.spad.host_addr.next = self.write_offset.val();
        if self.wide.val() {
            self.spad.read_address.next = self.read_address.val();
        } else {
            self.spad.read_address.next = self.read_offset.val();
        }
        self.read_hit.d.next = self.read_offset.val() < self.size.val();
        for k in 0..self.host_data.len() {
            self.spad.host_we[k].next = self.host_we[k].val() & self.write_hit.val();
            self.spad.host_data[k].next = self.host_data[k].val();
            self.read_data[k].next = self.spad.read_data[k].val();
            if !self.decode.val() | self.read_hit.q.val() {
                self.chain_out[k].next = self.spad.read_data[k].val();
            } else {
                self.chain_out[k].next = self.chain_in[k].val();
            }
        }
    }
}

/// The activation scratchpad as `banks` equal banks (docs/ARCHITECTURE.md section 3): a
/// write or an ordinary read goes to the bank holding the word; a `wide` read returns word
/// `read_address` of every bank, bank `e`'s on lanes `e * lanes..` of `wide_data`. One
/// bank (a dense instance) is a plain scratchpad.
#[derive(LogicBlock)]
pub struct ActBanks {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: lane enables.
    pub host_we: Vec<Signal<In, Bit>>,
    /// Writer: word address.
    pub host_addr: Signal<In, Addr>,
    /// Writer: the word.
    pub host_data: Vec<Signal<In, Signed<8>>>,
    /// Engine: word to read.
    pub read_address: Signal<In, Addr>,
    /// Engine: read every bank at offset `read_address`.
    pub wide: Signal<In, Bit>,
    /// The word addressed in the previous cycle.
    pub read_data: Vec<Signal<Out, Signed<8>>>,
    /// Every bank's word of the previous cycle's (wide) read.
    pub wide_data: Vec<Signal<Out, Signed<8>>>,
    banks: Vec<Bank>,
}

impl ActBanks {
    /// The scratchpad of one bank read with a stagger of one cycle per lane, in groups of
    /// `group` lanes ([`ByteRam::staggered`]): lane `k` of `read_data` is byte `k` of the
    /// word addressed `k + 1` cycles before. Not for a scratchpad in banks, whose wide
    /// reads take every lane at once.
    pub fn with_staggered_reads(mut self, group: usize) -> Self {
        assert!(self.banks.len() == 1, "a staggered read of a scratchpad in {} banks", self.banks.len());
        let bank = &mut self.banks[0];
        bank.spad = std::mem::replace(&mut bank.spad, Scratchpad::new(1, 1)).with_staggered_reads(group);
        self
    }

    /// `banks` banks of `depth / banks` words of `lanes` bytes.
    pub fn new(lanes: usize, depth: usize, banks: usize) -> Self {
        assert!(banks >= 1 && depth.is_multiple_of(banks), "{depth} words in {banks} banks");
        let per = depth / banks;
        Self {
            clock: Default::default(),
            host_we: (0..lanes).map(|_| Default::default()).collect(),
            host_addr: Default::default(),
            host_data: (0..lanes).map(|_| Default::default()).collect(),
            read_address: Default::default(),
            wide: Default::default(),
            read_data: (0..lanes).map(|_| Default::default()).collect(),
            wide_data: (0..lanes * banks).map(|_| Default::default()).collect(),
            banks: (0..banks).map(|e| Bank::new(lanes, e * per, per, banks)).collect(),
        }
    }

    /// Every net, applied according to `mode`.
    fn wire(&mut self, mode: &mut Mode) {
        let lanes = self.host_data.len();
        let last = self.banks.len() - 1;
        for e in 0..self.banks.len() {
            let port = |p: &str| format!("banks${e}${p}");
            net!(mode, self.banks[e].clock, port("clock"), self.clock, "clock".into());
            net!(mode, self.banks[e].host_addr, port("host_addr"), self.host_addr, "host_addr".into());
            net!(mode, self.banks[e].read_address, port("read_address"), self.read_address, "read_address".into());
            net!(mode, self.banks[e].wide, port("wide"), self.wide, "wide".into());
            for k in 0..lanes {
                let lane = |p: &str| format!("banks${e}${p}${k}");
                net!(mode, self.banks[e].host_we[k], lane("host_we"), self.host_we[k], format!("host_we${k}"));
                net!(mode, self.banks[e].host_data[k], lane("host_data"), self.host_data[k], format!("host_data${k}"));
                net!(
                    mode,
                    self.wide_data[e * lanes + k],
                    format!("wide_data${}", e * lanes + k),
                    self.banks[e].read_data[k],
                    lane("read_data")
                );
                if e > 0 {
                    let prev = format!("banks${}$chain_out${k}", e - 1);
                    net!(mode, self.banks[e].chain_in[k], lane("chain_in"), self.banks[e - 1].chain_out[k], prev);
                }
            }
        }
        for k in 0..lanes {
            net!(mode, self.read_data[k], format!("read_data${k}"), self.banks[last].chain_out[k], format!("banks${last}$chain_out${k}"));
        }
    }
}

impl Logic for ActBanks {
    fn update(&mut self) {
        self.wire(&mut Mode::Update);
        for k in 0..self.host_data.len() {
            self.banks[0].chain_in[k].next = 0.into();
        }
    }

    fn connect(&mut self) {
        self.wire(&mut Mode::Connect);
        for k in 0..self.host_data.len() {
            self.banks[0].chain_in[k].connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let (lanes, banks) = (self.host_data.len(), self.banks.len());
        let mut block = vec![];
        // Emission reads no signal values; `wire` takes `&mut self` for the other modes.
        let per = self.banks[0].spad.depth();
        ActBanks::new(lanes, per * banks, banks).wire(&mut Mode::Emit(&mut block));
        for k in 0..lanes {
            block.push(assign_zero_byte(format!("banks$0$chain_in${k}")));
        }
        Verilog::Combinatorial(block)
    }
}

/// The accumulator: a row issued in cycle `c` (`issue`, `addr`, `accumulate`) is read in
/// `c` and its sum `input + (accumulate ? old : 0)` formed in `s = c + 1 + P`, `input`
/// presented in `c + 1`, and written in `s + W`. The stages (`ArchConfig::acc_stages`, at
/// most [`systole_core::arch::MAX_ACC_STAGES`]) place `P` and `W`:
///
/// | stages | `P` | `W` | registers |
/// |---|---|---|---|
/// | 0 | 0 | 0 | none: the block RAM's word and the input meet at the adder |
/// | 1 | 1 | 0 | the old row, chosen a cycle ahead, and the input, before the adder |
/// | 2 | 1 | 1 | and the sum, before the block RAM's write port |
/// | 3 | 2 | 1 | and the block RAM's word, before the choice of the old row |
///
/// `old` is forwarded from the sums of the `P + W + 1` cycles before `s` when they hit the
/// same row, since the read saw none of their writes. With `P > 0`, what the sum adds
/// unless the previous cycle's sum hits its row (the old row, read or forwarded from
/// further back, or zero) is chosen in the cycle before `s` and registered (`older`), so
/// that one two-way choice lies between the registers and each adder.
///
/// The host port (the store engine's) reads a replica that takes the same writes, so that
/// stores and accumulating matmuls, which run concurrently on different rows, each have a
/// read port of their own.
#[derive(LogicBlock)]
pub struct Accumulator {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// A row is issued this cycle.
    pub issue: Signal<In, Bit>,
    /// Its address.
    pub addr: Signal<In, Addr>,
    /// Add to its old value.
    pub accumulate: Signal<In, Bit>,
    /// The values for the row issued in the previous cycle, one per column.
    pub input: Vec<Signal<In, Signed<32>>>,
    /// Host: row of the replica to read (data in the next cycle).
    pub host_addr: Signal<In, Addr>,
    /// The row read in the previous cycle.
    pub host_data: Vec<Signal<Out, Signed<32>>>,
    rams: Vec<SyncRam<Signed<32>>>,
    replica: Vec<SyncRam<Signed<32>>>,
    /// The address bits the rows need: `addr` and `host_addr` are cut to them on entry,
    /// so that the engines' address registers and delay lines keep no more (an address
    /// beyond the rows, which the simulator refuses, would alias).
    row_mask: Constant<Addr>,
    row: Signal<Local, Addr>,
    host_row: Signal<Local, Addr>,
    // The issue `P` cycles later: the issue of the next cycle's sum.
    ahead_valid: Delay<Bit>,
    ahead_addr: Delay<Addr>,
    ahead_accum: Delay<Bit>,
    // The issue `P - 1` cycles later: the issue of the sum two cycles ahead.
    early_addr: Delay<Addr>,
    /// The sums two, three and four cycles before the next cycle's sum hit its row,
    /// decided a cycle ahead of `older`'s choice and registered, so that no comparator
    /// lies before that choice.
    hit2: DFF<Bit>,
    hit3: DFF<Bit>,
    hit4: DFF<Bit>,
    // The issue and the input in the sum's cycle.
    w_valid: DFF<Bit>,
    w_addr: DFF<Addr>,
    w_accum: DFF<Bit>,
    w_input: Vec<Delay<Signed<32>>>,
    /// The block RAM's word, `P - 1` cycles later: the next sum's read, at `older`'s choice.
    read: Vec<Delay<Signed<32>>>,
    /// The sums of the previous three cycles (the previous one is the block RAM's write
    /// with `W`).
    last_we: DFF<Bit>,
    last_wa: DFF<Addr>,
    last_wd: Vec<DFF<Signed<32>>>,
    prev_we: DFF<Bit>,
    prev_wa: DFF<Addr>,
    prev_wd: Vec<DFF<Signed<32>>>,
    prev2_we: DFF<Bit>,
    prev2_wa: DFF<Addr>,
    prev2_wd: Vec<DFF<Signed<32>>>,
    /// `P > 0`: the old row is chosen a cycle ahead, into `older`.
    pre_stage: Constant<Bit>,
    /// `P + W >= 2`: the sum three cycles back can hit the row.
    reach3: Constant<Bit>,
    /// `P + W >= 3`: the sum four cycles back can hit the row.
    reach4: Constant<Bit>,
    /// `W`: the block RAM writes `last_*`.
    write_stage: Constant<Bit>,
    /// The previous cycle's sum hits the row of this cycle's, decided a cycle ahead from
    /// the next sum's row and registered, so that no comparator lies between the
    /// registers and the addition.
    fwd: DFF<Bit>,
    /// With `P > 0`: this cycle's sum adds this unless `fwd`.
    older: Vec<DFF<Signed<32>>>,
    /// What each column's input is added to: the old row, forwarded or read, or zero.
    addend: Vec<Signal<Local, Signed<32>>>,
    /// Each column's sum.
    sum: Vec<Signal<Local, Signed<32>>>,
}

// `last_*`, `prev_*` and `prev2_*`, read a cycle ahead, reach four cycles back.
const _: () = assert!(systole_core::arch::MAX_ACC_STAGES <= 3, "the accumulator forwards for at most three stages");

impl Accumulator {
    /// `depth` rows of `cols` int32 values, with `stages` (at most
    /// [`systole_core::arch::MAX_ACC_STAGES`]) pipeline stages, placed as the table of
    /// [`Accumulator`] shows.
    pub fn new(cols: usize, depth: usize, stages: usize) -> Self {
        assert!(stages <= systole_core::arch::MAX_ACC_STAGES, "{stages} accumulator stages");
        let (pre, write) = (stages.min(1) + usize::from(stages >= 3), usize::from(stages >= 2));
        Self {
            clock: Default::default(),
            issue: Default::default(),
            addr: Default::default(),
            accumulate: Default::default(),
            input: signals(cols),
            host_addr: Default::default(),
            host_data: signals(cols),
            // A read that meets a write of its row takes the row from a sum register
            // (`fwd`, `older`), never the block RAM's word.
            rams: (0..cols).map(|_| SyncRam::new(depth).without_collisions()).collect(),
            // The exec unit writes and the store unit reads, never one row in one cycle.
            replica: (0..cols).map(|_| SyncRam::new(depth).without_collisions()).collect(),
            row_mask: Constant::new(low_mask(index_bits(depth))),
            row: Default::default(),
            host_row: Default::default(),
            ahead_valid: Delay::new(pre),
            ahead_addr: Delay::new(pre),
            ahead_accum: Delay::new(pre),
            early_addr: Delay::new(pre.saturating_sub(1)),
            hit2: Default::default(),
            hit3: Default::default(),
            hit4: Default::default(),
            w_valid: Default::default(),
            w_addr: Default::default(),
            w_accum: Default::default(),
            w_input: (0..cols).map(|_| Delay::new(pre)).collect(),
            read: (0..cols).map(|_| Delay::new(pre.saturating_sub(1))).collect(),
            last_we: Default::default(),
            last_wa: Default::default(),
            last_wd: signals(cols),
            prev_we: Default::default(),
            prev_wa: Default::default(),
            prev_wd: signals(cols),
            prev2_we: Default::default(),
            prev2_wa: Default::default(),
            prev2_wd: signals(cols),
            pre_stage: Constant::new(pre > 0),
            reach3: Constant::new(pre + write >= 2),
            reach4: Constant::new(pre + write >= 3),
            write_stage: Constant::new(write > 0),
            fwd: Default::default(),
            older: signals(cols),
            addend: signals(cols),
            sum: signals(cols),
        }
    }
}

impl Logic for Accumulator {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, w_valid, w_addr, w_accum, last_we, last_wa, prev_we, prev_wa, prev2_we, prev2_wa, fwd, hit2, hit3, hit4);
        self.ahead_valid.clock.next = self.clock.val();
        self.ahead_addr.clock.next = self.clock.val();
        self.ahead_accum.clock.next = self.clock.val();
        self.row.next = self.addr.val() & self.row_mask.val();
        self.host_row.next = self.host_addr.val() & self.row_mask.val();
        self.ahead_valid.data_in.next = self.issue.val();
        self.ahead_addr.data_in.next = self.row.val();
        self.ahead_accum.data_in.next = self.accumulate.val();
        self.early_addr.clock.next = self.clock.val();
        self.early_addr.data_in.next = self.row.val();
        self.hit2.d.next = self.w_valid.q.val() & (self.w_addr.q.val() == self.early_addr.data_out.val());
        self.hit3.d.next = self.reach3.val() & self.last_we.q.val() & (self.last_wa.q.val() == self.early_addr.data_out.val());
        self.hit4.d.next = self.reach4.val() & self.prev_we.q.val() & (self.prev_wa.q.val() == self.early_addr.data_out.val());
        self.w_valid.d.next = self.ahead_valid.data_out.val();
        self.w_addr.d.next = self.ahead_addr.data_out.val();
        self.w_accum.d.next = self.ahead_accum.data_out.val();
        // Next cycle's `last_w*` are this cycle's sum, its `prev_w*` this `last_w*`, ...
        self.fwd.d.next = self.w_valid.q.val() & (self.w_addr.q.val() == self.ahead_addr.data_out.val());
        self.last_we.d.next = self.w_valid.q.val();
        self.last_wa.d.next = self.w_addr.q.val();
        self.prev_we.d.next = self.last_we.q.val();
        self.prev_wa.d.next = self.last_wa.q.val();
        self.prev2_we.d.next = self.prev_we.q.val();
        self.prev2_wa.d.next = self.prev_wa.q.val();
        for j in 0..self.rams.len() {
            self.rams[j].clock.next = self.clock.val();
            self.replica[j].clock.next = self.clock.val();
            self.w_input[j].clock.next = self.clock.val();
            self.read[j].clock.next = self.clock.val();
            self.last_wd[j].clock.next = self.clock.val();
            self.prev_wd[j].clock.next = self.clock.val();
            self.prev2_wd[j].clock.next = self.clock.val();
            self.older[j].clock.next = self.clock.val();
            self.last_wd[j].d.next = self.last_wd[j].q.val();
            self.prev_wd[j].d.next = self.last_wd[j].q.val();
            self.prev2_wd[j].d.next = self.prev_wd[j].q.val();
            self.w_input[j].data_in.next = self.input[j].val();
            self.read[j].data_in.next = self.rams[j].read_data.val();
            self.rams[j].read_address.next = self.row.val();
            self.replica[j].read_address.next = self.host_row.val();
            self.host_data[j].next = self.replica[j].read_data.val();
            // With `P > 0`, the next sum's old row: its read, or the sums two, three and
            // four cycles before it, which are this cycle's `last_*`, `prev_*`, `prev2_*`
            // (`hit2`, `hit3`, `hit4`).
            self.older[j].d.next = 0.into();
            if self.ahead_accum.data_out.val() {
                if self.hit2.q.val() {
                    self.older[j].d.next = self.last_wd[j].q.val();
                } else if self.hit3.q.val() {
                    self.older[j].d.next = self.prev_wd[j].q.val();
                } else if self.hit4.q.val() {
                    self.older[j].d.next = self.prev2_wd[j].q.val();
                } else {
                    self.older[j].d.next = self.read[j].data_out.val();
                }
            }
            // One adder per column: the old row is chosen (or zeroed) before the addition.
            if self.pre_stage.val() {
                if self.fwd.q.val() & self.w_accum.q.val() {
                    self.addend[j].next = self.last_wd[j].q.val();
                } else {
                    self.addend[j].next = self.older[j].q.val();
                }
            } else {
                self.addend[j].next = 0.into();
                if self.w_accum.q.val() {
                    if self.fwd.q.val() {
                        self.addend[j].next = self.last_wd[j].q.val();
                    } else {
                        self.addend[j].next = self.rams[j].read_data.val();
                    }
                }
            }
            self.sum[j].next = self.w_input[j].data_out.val() + self.addend[j].val();
            if self.w_valid.q.val() {
                self.last_wd[j].d.next = self.sum[j].val();
            }
            if self.write_stage.val() {
                self.rams[j].write_enable.next = self.last_we.q.val();
                self.rams[j].write_address.next = self.last_wa.q.val();
                self.rams[j].write_data.next = self.last_wd[j].q.val();
            } else {
                self.rams[j].write_enable.next = self.w_valid.q.val();
                self.rams[j].write_address.next = self.w_addr.q.val();
                self.rams[j].write_data.next = self.sum[j].val();
            }
            self.replica[j].write_enable.next = self.rams[j].write_enable.val();
            self.replica[j].write_address.next = self.rams[j].write_address.val();
            self.replica[j].write_data.next = self.rams[j].write_data.val();
        }
    }
}

/// The exec unit's memories: activation and weight scratchpads and the accumulator, with
/// the writer's and reader's host ports on one side and an engine's ports on the other.
/// The engines ([`crate::exec_ws::WsEngine`], [`crate::exec_os::OsEngine`]) hold no
/// memory, so that one set can serve both in a `both` instance.
#[derive(LogicBlock)]
pub struct Memories {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Writer: write lane `k` of `host_act_data` to activation word `host_act_addr`.
    pub host_act_we: Vec<Signal<In, Bit>>,
    /// Writer: activation word address.
    pub host_act_addr: Signal<In, Addr>,
    /// Writer: activation word, lane `k`.
    pub host_act_data: Vec<Signal<In, Signed<8>>>,
    /// Writer: write lane `j` of `host_wgt_data` to weight word `host_wgt_addr`.
    pub host_wgt_we: Vec<Signal<In, Bit>>,
    /// Writer: weight word address.
    pub host_wgt_addr: Signal<In, Addr>,
    /// Writer: weight word, lane `j`.
    pub host_wgt_data: Vec<Signal<In, Signed<8>>>,
    /// Reader: accumulator row to read (data in the next cycle).
    pub host_acc_addr: Signal<In, Addr>,
    /// Reader: the row read in the previous cycle, lane `j`.
    pub host_acc_data: Vec<Signal<Out, Signed<32>>>,
    /// Engine: activation word to read.
    pub act_raddr: Signal<In, Addr>,
    /// Engine: the activation word addressed in the previous cycle.
    pub act_rdata: Vec<Signal<Out, Signed<8>>>,
    /// Engine: read word `act_raddr` of every activation bank (a sparse matmul).
    pub act_wide: Signal<In, Bit>,
    /// Engine: every bank's word of the previous cycle's wide read, bank `e` on lanes
    /// `e * rows..`.
    pub act_wide_data: Vec<Signal<Out, Signed<8>>>,
    /// Engine: weight word to read.
    pub wgt_raddr: Signal<In, Addr>,
    /// Engine: the weight word addressed in the previous cycle.
    pub wgt_rdata: Vec<Signal<Out, Signed<8>>>,
    /// Engine: an accumulator row is issued (see [`Accumulator`]).
    pub acc_issue: Signal<In, Bit>,
    /// Engine: its row.
    pub acc_addr: Signal<In, Addr>,
    /// Engine: add to its old value.
    pub acc_accumulate: Signal<In, Bit>,
    /// Engine: the values, one cycle after the issue.
    pub acc_input: Vec<Signal<In, Signed<32>>>,
    /// With a vector unit (one each, else none; [`Memories::with_vector_ports`]): it reads
    /// the activation scratchpad in this cycle, in place of the engine...
    pub vec_act_on: Vec<Signal<In, Bit>>,
    /// ... at this word...
    pub vec_act_raddr: Vec<Signal<In, Addr>>,
    /// ... and it issues an accumulator row (overwritten) in this cycle, in place of the
    /// engine (the controller never runs both: docs/ARCHITECTURE.md section 5)...
    pub vec_acc_issue: Vec<Signal<In, Bit>>,
    /// ... this row...
    pub vec_acc_addr: Vec<Signal<In, Addr>>,
    /// ... with these values, one cycle after the issue (`cols` with a vector unit).
    pub vec_acc_input: Vec<Signal<In, Signed<32>>>,
    /// The vector unit's row was issued in the previous cycle.
    vec_issued: Vec<DFF<Bit>>,
    act: ActBanks,
    wgt: Scratchpad,
    accs: Accumulator,
}

impl Memories {
    /// Memories for `rows x cols` PEs with the given depths, the activation scratchpad in
    /// `act_banks` banks.
    pub fn new(rows: usize, cols: usize, act_words: usize, act_banks: usize, wgt_words: usize, acc_rows: usize) -> Self {
        Self {
            clock: Default::default(),
            host_act_we: (0..rows).map(|_| Default::default()).collect(),
            host_act_addr: Default::default(),
            host_act_data: (0..rows).map(|_| Default::default()).collect(),
            host_wgt_we: (0..cols).map(|_| Default::default()).collect(),
            host_wgt_addr: Default::default(),
            host_wgt_data: (0..cols).map(|_| Default::default()).collect(),
            host_acc_addr: Default::default(),
            host_acc_data: (0..cols).map(|_| Default::default()).collect(),
            act_raddr: Default::default(),
            act_rdata: (0..rows).map(|_| Default::default()).collect(),
            act_wide: Default::default(),
            act_wide_data: (0..rows * act_banks).map(|_| Default::default()).collect(),
            wgt_raddr: Default::default(),
            wgt_rdata: (0..cols).map(|_| Default::default()).collect(),
            acc_issue: Default::default(),
            acc_addr: Default::default(),
            acc_accumulate: Default::default(),
            acc_input: (0..cols).map(|_| Default::default()).collect(),
            vec_act_on: vec![],
            vec_act_raddr: vec![],
            vec_acc_issue: vec![],
            vec_acc_addr: vec![],
            vec_acc_input: vec![],
            vec_issued: vec![],
            act: ActBanks::new(rows, act_words, act_banks),
            wgt: Scratchpad::new(cols, wgt_words),
            accs: Accumulator::new(cols, acc_rows, 0),
        }
    }

    /// The memories with the activation scratchpad read with a stagger of one cycle per
    /// lane (row), in groups of `group` lanes (see [`ActBanks::with_staggered_reads`]).
    pub fn with_staggered_act_reads(mut self, group: usize) -> Self {
        self.act = std::mem::replace(&mut self.act, ActBanks::new(1, 1, 1)).with_staggered_reads(group);
        self
    }

    /// The memories with the ports of a vector unit ([`crate::vector::VectorEngine`]),
    /// whose activation reads and accumulator rows take the engine's ports while it runs.
    pub fn with_vector_ports(mut self) -> Self {
        let cols = self.acc_input.len();
        self.vec_act_on = signals(1);
        self.vec_act_raddr = signals(1);
        self.vec_acc_issue = signals(1);
        self.vec_acc_addr = signals(1);
        self.vec_acc_input = signals(cols);
        self.vec_issued = signals(1);
        self
    }

    /// The memories with `stages` accumulator pipeline stages (`ArchConfig::acc_stages`).
    pub fn with_acc_stages(mut self, stages: usize) -> Self {
        self.accs = Accumulator::new(self.accs.input.len(), self.accs.rams[0].depth(), stages);
        self
    }
}

impl Logic for Memories {
    #[hdl_gen]
    fn update(&mut self) {
        self.act.clock.next = self.clock.val();
        self.act.host_addr.next = self.host_act_addr.val();
        self.act.read_address.next = self.act_raddr.val();
        self.act.wide.next = self.act_wide.val();
        for l in 0..self.act_wide_data.len() {
            self.act_wide_data[l].next = self.act.wide_data[l].val();
        }
        for k in 0..self.act_rdata.len() {
            self.act.host_we[k].next = self.host_act_we[k].val();
            self.act.host_data[k].next = self.host_act_data[k].val();
            self.act_rdata[k].next = self.act.read_data[k].val();
        }
        self.wgt.clock.next = self.clock.val();
        self.wgt.host_addr.next = self.host_wgt_addr.val();
        self.wgt.read_address.next = self.wgt_raddr.val();
        for j in 0..self.wgt_rdata.len() {
            self.wgt.host_we[j].next = self.host_wgt_we[j].val();
            self.wgt.host_data[j].next = self.host_wgt_data[j].val();
            self.wgt_rdata[j].next = self.wgt.read_data[j].val();
        }
        self.accs.clock.next = self.clock.val();
        self.accs.issue.next = self.acc_issue.val();
        self.accs.addr.next = self.acc_addr.val();
        self.accs.accumulate.next = self.acc_accumulate.val();
        self.accs.host_addr.next = self.host_acc_addr.val();
        for j in 0..self.acc_input.len() {
            self.accs.input[j].next = self.acc_input[j].val();
            self.host_acc_data[j].next = self.accs.host_data[j].val();
        }
        for v in 0..self.vec_issued.len() {
            self.vec_issued[v].clock.next = self.clock.val();
            self.vec_issued[v].d.next = self.vec_acc_issue[v].val();
            if self.vec_act_on[v].val() {
                self.act.read_address.next = self.vec_act_raddr[v].val();
                self.act.wide.next = false;
            }
            if self.vec_acc_issue[v].val() {
                self.accs.issue.next = true;
                self.accs.addr.next = self.vec_acc_addr[v].val();
                self.accs.accumulate.next = false;
            }
        }
        for j in 0..self.vec_acc_input.len() {
            if self.vec_issued[0].q.val() {
                self.accs.input[j].next = self.vec_acc_input[j].val();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verilog::{clock_cycle, settle};

    /// One slot of an issue sequence: `None` is a cycle without an issue.
    type Slot = Option<(u64, bool, i32)>;

    /// Sequences in which an issue to row 0 follows another by 1 to 5 cycles, with the
    /// cycles between idle or issuing row 1, the first accumulating or overwriting a row 0
    /// written long before.
    fn hits() -> Vec<Vec<Slot>> {
        let mut sequences = Vec::new();
        for gap in 1..=5 {
            for idle in [false, true] {
                for overwrite in [false, true] {
                    let mut slots = vec![Some((0, true, 1000))];
                    slots.extend([None; 5]);
                    slots.push(Some((0, !overwrite, 100 * gap)));
                    for k in 1..gap {
                        slots.push(if idle { None } else { Some((1, true, k)) });
                    }
                    slots.push(Some((0, true, 7)));
                    sequences.push(slots);
                }
            }
        }
        sequences
    }

    /// Runs `slots` through an accumulator of `stages` stages and returns rows 0 and 1 as
    /// the host port reads them once the writes are done.
    fn run(stages: usize, slots: &[Slot]) -> Vec<i32> {
        let cols = 2;
        let mut acc = Accumulator::new(cols, 4, stages);
        acc.connect_all();
        settle(&mut acc);
        let mut previous: Slot = None;
        for &slot in slots.iter().chain(std::iter::repeat_n(&None, 4)) {
            acc.issue.next = slot.is_some();
            let (row, accumulate, _) = slot.unwrap_or((0, false, 0));
            acc.addr.next = row.into();
            acc.accumulate.next = accumulate;
            let input = previous.map_or(0, |(_, _, v)| v);
            for j in 0..cols {
                acc.input[j].next = (i64::from(input) * (j as i64 + 1)).into();
            }
            settle(&mut acc);
            clock_cycle(&mut acc, |a| &mut a.clock);
            previous = slot;
        }
        let mut rows = Vec::new();
        for row in 0..2u64 {
            acc.issue.next = false;
            acc.host_addr.next = row.into();
            settle(&mut acc);
            clock_cycle(&mut acc, |a| &mut a.clock);
            for j in 0..cols {
                rows.push(acc.host_data[j].val().bigint().try_into().expect("an int32"));
            }
        }
        rows
    }

    #[test]
    fn every_stage_count_forwards_the_sums_its_reads_miss() {
        for slots in hits() {
            let mut rows = [0i32; 2];
            for &(row, accumulate, value) in slots.iter().flatten() {
                let old = if accumulate { rows[row as usize] } else { 0 };
                rows[row as usize] = old + value;
            }
            let want: Vec<i32> = rows.iter().flat_map(|&r| [r, 2 * r]).collect();
            for stages in 0..=systole_core::arch::MAX_ACC_STAGES {
                assert_eq!(run(stages, &slots), want, "{stages} accumulator stages, {slots:?}");
            }
        }
    }
}
