//! The accelerator's board memory on an external DRAM controller: a bridge from the
//! fixed-latency byte ports the accelerator and the host bridge were built for (address in
//! one cycle, data in the next, as [`crate::board_ram::BankedRam`] answers) to a LiteDRAM
//! native user port (a command, write-data and read-data channel of `port_bytes`-byte
//! words, answered whenever the controller is ready).
//!
//! The core behind it runs on a clock that ticks only in the cycles in which `advance` is
//! high (a gated clock: `DCCA` on the ECP5, a clock-gate cell in simulation). In every
//! other cycle the bridge works on the core's current request, which its registers hold
//! still: it reads the words of the read beat that its two-word cache lacks, then takes the
//! write beat (into the posted write, which collects one word's bytes until a write to
//! another word or a read miss sends it, or no program runs; a beat across two words is
//! written at once), and
//! only then lets the core's clock tick, latching the read beat's bytes for the core's next
//! cycle. The cache is write-through, and emptied when a program starts.
//! So the core sees memory of one cycle's latency and runs exactly the simulator's cycles;
//! each cycle the bridge holds its clock is a stall, counted in `stalls` while `count` is
//! high (the program runs). A beat may straddle two words (the cache keeps an even and an
//! odd word, so both fit). A read sees memory as it was before its cycle's write, as
//! block RAM's does.

use crate::dma::Widen;
use crate::wiring::{constants, signals};
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;

type DAddr = Bits<DRAM_ADDR_BITS>;

/// Bits of a native port word (the widest port, the OrangeCrab's DDR3: 128).
pub const PORT_BITS: usize = 128;

/// Bits of the stall counter.
pub const STALL_BITS: usize = 48;

/// What the bridge is doing for the core's current request.
#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum PortState {
    /// Deciding: a missing word to read, a word to write, or the core's clock to tick.
    Check,
    /// Offering a read command.
    ReadCmd,
    /// Waiting for the read word.
    ReadWait,
    /// Offering a write command.
    WriteCmd,
    /// Offering the write's data.
    WriteData,
}

/// The bridge from the core's byte ports to a native port.
#[derive(LogicBlock)]
pub struct NativePortBridge {
    /// The free-running clock (LiteDRAM's `user_clk`).
    pub clock: Signal<In, Clock>,
    /// Core: the read beat's first byte address (its data in the core's next cycle).
    pub rd_addr: Signal<In, DAddr>,
    /// Core: the bytes read, from a register that changes only when the core's clock ticks.
    pub rd_data: Vec<Signal<Out, Signed<8>>>,
    /// Core: the write beat's first byte address.
    pub wr_addr: Signal<In, DAddr>,
    /// Core: lane write enables.
    pub wr_en: Vec<Signal<In, Bit>>,
    /// Core: lane bytes.
    pub wr_data: Vec<Signal<In, Signed<8>>>,
    /// The core's clock ticks at the end of this cycle.
    pub advance: Signal<Out, Bit>,
    /// A program runs: held cycles are counted, and the posted write waits for a reason to go.
    pub count: Signal<In, Bit>,
    /// A program starts: count from 0, and empty the cache as the core's clock ticks.
    pub clear: Signal<In, Bit>,
    /// Cycles held while `count` was high since `clear`.
    pub stalls: Signal<Out, Bits<STALL_BITS>>,
    /// Native port: command (word address, write flag), offered and taken.
    pub cmd_valid: Signal<Out, Bit>,
    pub cmd_ready: Signal<In, Bit>,
    pub cmd_we: Signal<Out, Bit>,
    pub cmd_addr: Signal<Out, Bits<32>>,
    /// Native port: write data and byte enables, offered and taken.
    pub wdata_valid: Signal<Out, Bit>,
    pub wdata_ready: Signal<In, Bit>,
    pub wdata_data: Signal<Out, Bits<PORT_BITS>>,
    pub wdata_we: Signal<Out, Bits<16>>,
    /// Native port: read data, offered and taken.
    pub rdata_valid: Signal<In, Bit>,
    pub rdata_ready: Signal<Out, Bit>,
    pub rdata_data: Signal<In, Bits<PORT_BITS>>,
    state: DFF<PortState>,
    /// The cache: an even and an odd word, each with its word address and a valid flag.
    tag: Vec<DFF<Bits<32>>>,
    valid: Vec<DFF<Bit>>,
    line: Vec<DFF<Bits<PORT_BITS>>>,
    /// The word being read or written, and (a write) its data and byte enables.
    word: DFF<Bits<32>>,
    wdata: DFF<Bits<PORT_BITS>>,
    wmask: DFF<Bits<16>>,
    /// The write's byte enables as bit masks.
    wbits: DFF<Bits<PORT_BITS>>,
    /// The request's writes done so far: to its first word, to its second; and all of
    /// them (a write across two words goes to memory directly).
    written: Vec<DFF<Bit>>,
    wdone: DFF<Bit>,
    /// The posted write: one word's bytes, written to memory when a write to another word,
    /// a write across two words or a read miss comes (write combining).
    pw_valid: DFF<Bit>,
    pw_word: DFF<Bits<32>>,
    pw_data: DFF<Bits<PORT_BITS>>,
    pw_mask: DFF<Bits<16>>,
    pw_bits: DFF<Bits<PORT_BITS>>,
    /// The read beat's bytes, captured once its words are cached and before the request's
    /// write touches the cache, so that a read sees memory as it was before the cycle's
    /// write (as block RAM does).
    captured: DFF<Bit>,
    held: Vec<DFF<Signed<8>>>,
    write_waits: Signal<Local, Bit>,
    out: Vec<DFF<Signed<8>>>,
    stall_count: DFF<Bits<STALL_BITS>>,
    /// Per read lane: its byte address, word, byte within the word, and whether the
    /// cache holds the word.
    rd_byte: Vec<Signal<Local, DAddr>>,
    rd_word: Vec<Signal<Local, Bits<32>>>,
    rd_off: Vec<Signal<Local, DAddr>>,
    rd_hit: Vec<Signal<Local, Bit>>,
    /// Per write lane: its byte address, word and byte within the word.
    wr_byte: Vec<Signal<Local, DAddr>>,
    wr_word: Vec<Signal<Local, Bits<32>>>,
    wr_off: Vec<Signal<Local, DAddr>>,
    /// The write beat's first and last words, their data and byte enables, and whether
    /// either has an enabled byte.
    wr_first: Signal<Local, Bits<32>>,
    wr_last: Signal<Local, Bits<32>>,
    w_data: Vec<Signal<Local, Bits<PORT_BITS>>>,
    w_mask: Vec<Signal<Local, Bits<16>>>,
    w_bits: Vec<Signal<Local, Bits<PORT_BITS>>>,
    /// Each write lane's byte, widened, and its bit position in the word.
    widen: Vec<Widen>,
    wr_pos: Vec<Signal<Local, DAddr>>,
    rd_pos: Vec<Signal<Local, DAddr>>,
    /// Each read lane's word, shifted to put its byte lowest.
    rd_shifted: Vec<Signal<Local, Bits<PORT_BITS>>>,
    one: Constant<Bits<16>>,
    ones: Constant<Bits<PORT_BITS>>,
    w_any: Vec<Signal<Local, Bit>>,
    /// The first lane whose word the cache lacks, if any.
    miss: Signal<Local, Bit>,
    miss_word: Signal<Local, Bits<32>>,
    /// log2 of the word's bytes, and `port_bytes - 1`.
    word_shift: Constant<Bits<8>>,
    off_mask: Constant<DAddr>,
    lane_of: Vec<Constant<DAddr>>,
}

impl NativePortBridge {
    /// A bridge for `lanes` byte lanes to a native port of `port_bytes`-byte words (a power
    /// of two from 1 to 16, at least `lanes`).
    pub fn new(lanes: usize, port_bytes: usize) -> Self {
        assert!(
            port_bytes.is_power_of_two() && port_bytes <= PORT_BITS / 8 && lanes >= 1 && lanes <= port_bytes,
            "{lanes} lanes on {port_bytes}-byte words"
        );
        Self {
            clock: Default::default(),
            rd_addr: Default::default(),
            rd_data: signals(lanes),
            wr_addr: Default::default(),
            wr_en: signals(lanes),
            wr_data: signals(lanes),
            advance: Default::default(),
            count: Default::default(),
            clear: Default::default(),
            stalls: Default::default(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            cmd_we: Default::default(),
            cmd_addr: Default::default(),
            wdata_valid: Default::default(),
            wdata_ready: Default::default(),
            wdata_data: Default::default(),
            wdata_we: Default::default(),
            rdata_valid: Default::default(),
            rdata_ready: Default::default(),
            rdata_data: Default::default(),
            state: Default::default(),
            tag: signals(2),
            valid: signals(2),
            line: signals(2),
            word: Default::default(),
            wdata: Default::default(),
            wmask: Default::default(),
            wbits: Default::default(),
            written: signals(2),
            wdone: Default::default(),
            pw_valid: Default::default(),
            pw_word: Default::default(),
            pw_data: Default::default(),
            pw_mask: Default::default(),
            pw_bits: Default::default(),
            captured: Default::default(),
            held: signals(lanes),
            write_waits: Default::default(),
            out: signals(lanes),
            stall_count: Default::default(),
            rd_byte: signals(lanes),
            rd_word: signals(lanes),
            rd_off: signals(lanes),
            rd_hit: signals(lanes),
            wr_byte: signals(lanes),
            wr_word: signals(lanes),
            wr_off: signals(lanes),
            wr_first: Default::default(),
            wr_last: Default::default(),
            w_data: signals(2),
            w_mask: signals(2),
            w_bits: signals(2),
            widen: signals(lanes),
            wr_pos: signals(lanes),
            rd_pos: signals(lanes),
            rd_shifted: signals(lanes),
            one: Constant::new(1u64.into()),
            ones: Constant::new(0xffu64.into()),
            w_any: signals(2),
            miss: Default::default(),
            miss_word: Default::default(),
            word_shift: Constant::new((port_bytes.trailing_zeros() as u64).into()),
            off_mask: Constant::new(((port_bytes - 1) as u64).into()),
            lane_of: constants(0..lanes as u64),
        }
    }
}

impl Logic for NativePortBridge {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            word,
            wdata,
            wmask,
            wbits,
            stall_count,
            wdone,
            pw_valid,
            pw_word,
            pw_data,
            pw_mask,
            pw_bits,
            captured
        );
        for s in 0..2 {
            self.tag[s].clock.next = self.clock.val();
            self.valid[s].clock.next = self.clock.val();
            self.line[s].clock.next = self.clock.val();
            self.written[s].clock.next = self.clock.val();
            self.tag[s].d.next = self.tag[s].q.val();
            self.valid[s].d.next = self.valid[s].q.val();
            self.line[s].d.next = self.line[s].q.val();
            self.written[s].d.next = self.written[s].q.val();
        }
        for k in 0..self.out.len() {
            self.held[k].clock.next = self.clock.val();
            self.held[k].d.next = self.held[k].q.val();
            self.out[k].clock.next = self.clock.val();
            self.out[k].d.next = self.out[k].q.val();
            self.rd_data[k].next = self.out[k].q.val();
        }
        self.stalls.next = self.stall_count.q.val();

        // The read beat: each lane's word, and whether the cache holds it (the word's
        // parity picks the slot).
        self.miss.next = false;
        self.miss_word.next = 0.into();
        for k in 0..self.rd_byte.len() {
            self.rd_byte[k].next = self.rd_addr.val() + self.lane_of[k].val();
            self.rd_word[k].next = self.rd_byte[k].val() >> self.word_shift.val();
            self.rd_off[k].next = self.rd_byte[k].val() & self.off_mask.val();
            self.rd_pos[k].next = self.rd_off[k].val() << 3;
            if self.rd_word[k].val().get_bit(0) {
                self.rd_shifted[k].next = self.line[1].q.val() >> self.rd_pos[k].val();
            } else {
                self.rd_shifted[k].next = self.line[0].q.val() >> self.rd_pos[k].val();
            }
            if self.rd_word[k].val().get_bit(0) {
                self.rd_hit[k].next = self.valid[1].q.val() & (self.tag[1].q.val() == self.rd_word[k].val());
            } else {
                self.rd_hit[k].next = self.valid[0].q.val() & (self.tag[0].q.val() == self.rd_word[k].val());
            }
        }
        for k in 0..self.rd_byte.len() {
            if !self.rd_hit[k].val() & !self.miss.val() {
                self.miss.next = true;
                self.miss_word.next = self.rd_word[k].val();
            }
        }

        // The write beat: its first and last words, and each one's bytes.
        self.wr_first.next = self.wr_addr.val() >> self.word_shift.val();
        self.wr_last.next = self.wr_first.val();
        for s in 0..2 {
            self.w_data[s].next = 0.into();
            self.w_mask[s].next = 0.into();
            self.w_bits[s].next = 0.into();
            self.w_any[s].next = false;
        }
        for k in 0..self.wr_byte.len() {
            self.wr_byte[k].next = self.wr_addr.val() + self.lane_of[k].val();
            self.wr_word[k].next = self.wr_byte[k].val() >> self.word_shift.val();
            self.wr_off[k].next = self.wr_byte[k].val() & self.off_mask.val();
            self.wr_pos[k].next = self.wr_off[k].val() << 3;
            self.widen[k].lane.next = self.wr_data[k].val();
            if self.wr_en[k].val() {
                if self.wr_word[k].val() == self.wr_first.val() {
                    self.w_any[0].next = true;
                    self.w_mask[0].next = self.w_mask[0].val() | (self.one.val() << self.wr_off[k].val());
                    self.w_bits[0].next = self.w_bits[0].val() | (self.ones.val() << self.wr_pos[k].val());
                    self.w_data[0].next = self.w_data[0].val() | (self.widen[k].wide.val() << self.wr_pos[k].val());
                } else {
                    self.wr_last.next = self.wr_word[k].val();
                    self.w_any[1].next = true;
                    self.w_mask[1].next = self.w_mask[1].val() | (self.one.val() << self.wr_off[k].val());
                    self.w_bits[1].next = self.w_bits[1].val() | (self.ones.val() << self.wr_pos[k].val());
                    self.w_data[1].next = self.w_data[1].val() | (self.widen[k].wide.val() << self.wr_pos[k].val());
                }
            }
        }

        // The request's write needs the port before the core's clock may tick: it spans two
        // words, or another word's write is posted.
        self.write_waits.next = (self.w_any[0].val() | self.w_any[1].val())
            & !self.wdone.q.val()
            & (self.w_any[1].val() | (self.pw_valid.q.val() & (self.pw_word.q.val() != self.wr_first.val())));
        self.advance.next = false;
        self.cmd_valid.next = false;
        self.cmd_we.next = false;
        self.cmd_addr.next = self.word.q.val();
        self.wdata_valid.next = false;
        self.wdata_data.next = self.wdata.q.val();
        self.wdata_we.next = self.wmask.q.val();
        self.rdata_ready.next = false;
        match self.state.q.val() {
            PortState::Check => {
                if self.pw_valid.q.val() & (self.miss.val() | self.write_waits.val() | !self.count.val()) {
                    // The posted write goes first: before any read, before a write to
                    // another word takes its place, and at once when no program runs (so
                    // that memory holds every write once a program has finished).
                    self.word.d.next = self.pw_word.q.val();
                    self.wdata.d.next = self.pw_data.q.val();
                    self.wmask.d.next = self.pw_mask.q.val();
                    self.wbits.d.next = self.pw_bits.q.val();
                    self.pw_valid.d.next = false;
                    self.state.d.next = PortState::WriteCmd;
                } else if self.miss.val() {
                    self.word.d.next = self.miss_word.val();
                    self.state.d.next = PortState::ReadCmd;
                } else {
                    // The read beat, as memory holds it before this cycle's write.
                    if !self.captured.q.val() {
                        self.captured.d.next = true;
                        for k in 0..self.held.len() {
                            self.held[k].d.next = signed_cast(self.rd_shifted[k].val().get_bits::<8>(0));
                        }
                    }
                    if self.write_waits.val() {
                        // A write across two words, straight to memory.
                        if self.w_any[0].val() & !self.written[0].q.val() {
                            self.word.d.next = self.wr_first.val();
                            self.wdata.d.next = self.w_data[0].val();
                            self.wmask.d.next = self.w_mask[0].val();
                            self.wbits.d.next = self.w_bits[0].val();
                            self.written[0].d.next = true;
                            self.state.d.next = PortState::WriteCmd;
                        } else if self.w_any[1].val() & !self.written[1].q.val() {
                            self.word.d.next = self.wr_last.val();
                            self.wdata.d.next = self.w_data[1].val();
                            self.wmask.d.next = self.w_mask[1].val();
                            self.wbits.d.next = self.w_bits[1].val();
                            self.written[1].d.next = true;
                            self.state.d.next = PortState::WriteCmd;
                        } else {
                            self.wdone.d.next = true;
                        }
                    } else {
                        // Every read word cached, the write posted or done: the core's
                        // clock ticks and its next cycle sees the beat's bytes.
                        self.advance.next = true;
                        self.captured.d.next = false;
                        self.wdone.d.next = false;
                        self.written[0].d.next = false;
                        self.written[1].d.next = false;
                        for k in 0..self.out.len() {
                            if self.captured.q.val() {
                                self.out[k].d.next = self.held[k].q.val();
                            } else {
                                self.out[k].d.next = signed_cast(self.rd_shifted[k].val().get_bits::<8>(0));
                            }
                        }
                        if self.w_any[0].val() & !self.wdone.q.val() {
                            // A write within one word joins the posted write (the same
                            // word, or none posted) and the cache, write-through.
                            self.pw_valid.d.next = true;
                            self.pw_word.d.next = self.wr_first.val();
                            if self.pw_valid.q.val() {
                                self.pw_data.d.next = (self.pw_data.q.val() & !self.w_bits[0].val()) | self.w_data[0].val();
                                self.pw_mask.d.next = self.pw_mask.q.val() | self.w_mask[0].val();
                                self.pw_bits.d.next = self.pw_bits.q.val() | self.w_bits[0].val();
                            } else {
                                self.pw_data.d.next = self.w_data[0].val();
                                self.pw_mask.d.next = self.w_mask[0].val();
                                self.pw_bits.d.next = self.w_bits[0].val();
                            }
                            if self.wr_first.val().get_bit(0) {
                                if self.valid[1].q.val() & (self.tag[1].q.val() == self.wr_first.val()) {
                                    self.line[1].d.next = (self.line[1].q.val() & !self.w_bits[0].val()) | self.w_data[0].val();
                                }
                            } else if self.valid[0].q.val() & (self.tag[0].q.val() == self.wr_first.val()) {
                                self.line[0].d.next = (self.line[0].q.val() & !self.w_bits[0].val()) | self.w_data[0].val();
                            }
                        }
                    }
                }
            }
            PortState::ReadCmd => {
                self.cmd_valid.next = true;
                if self.cmd_ready.val() {
                    self.state.d.next = PortState::ReadWait;
                }
            }
            PortState::ReadWait => {
                self.rdata_ready.next = true;
                if self.rdata_valid.val() {
                    if self.word.q.val().get_bit(0) {
                        self.line[1].d.next = self.rdata_data.val();
                        self.tag[1].d.next = self.word.q.val();
                        self.valid[1].d.next = true;
                    } else {
                        self.line[0].d.next = self.rdata_data.val();
                        self.tag[0].d.next = self.word.q.val();
                        self.valid[0].d.next = true;
                    }
                    self.state.d.next = PortState::Check;
                }
            }
            PortState::WriteCmd => {
                self.cmd_valid.next = true;
                self.cmd_we.next = true;
                if self.cmd_ready.val() {
                    self.state.d.next = PortState::WriteData;
                }
            }
            PortState::WriteData => {
                self.wdata_valid.next = true;
                if self.wdata_ready.val() {
                    // Write-through: a cached copy of the word takes the bytes too.
                    if self.word.q.val().get_bit(0) {
                        if self.valid[1].q.val() & (self.tag[1].q.val() == self.word.q.val()) {
                            self.line[1].d.next = (self.line[1].q.val() & !self.wbits.q.val()) | self.wdata.q.val();
                        }
                    } else if self.valid[0].q.val() & (self.tag[0].q.val() == self.word.q.val()) {
                        self.line[0].d.next = (self.line[0].q.val() & !self.wbits.q.val()) | self.wdata.q.val();
                    }
                    self.state.d.next = PortState::Check;
                }
            }
        }
        if self.clear.val() & self.advance.val() {
            // A program starts with an empty cache, so that it sees memory written by any
            // other means since the last (a simulation's back door, another master).
            self.valid[0].d.next = false;
            self.valid[1].d.next = false;
        }
        if self.clear.val() {
            self.stall_count.d.next = 0.into();
        } else if !self.advance.val() & self.count.val() {
            self.stall_count.d.next = self.stall_count.q.val() + 1;
        }
    }
}
