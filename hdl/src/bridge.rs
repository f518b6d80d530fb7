//! The host bridge: the RTL side of `systole_core::bridge`'s UART protocol. It takes the
//! bytes a [`crate::uart::UartRx`] receives, drives the accelerator's instruction port
//! and `run`, reads and writes the board memory one byte per cycle through lane 0, and
//! hands its answers to a [`crate::uart::UartTx`] byte by byte.
//!
//! The host waits for each command's answer before it sends the next command; bytes that
//! arrive while the bridge answers or while a program runs are dropped. A `Write`'s data
//! bytes are taken as they arrive, one memory write per byte. Every received byte waits one
//! cycle in a register, with its command decoded beside it, before the bridge acts on it
//! (bytes arrive many cycles apart, so this costs nothing but a cycle per command).

use crate::controller::CYCLE_BITS;
use crate::sram::ADDR_BITS;
use crate::DRAM_ADDR_BITS;
use rust_hdl::prelude::*;
use systole_core::bridge::{Identity, ACK, CMD_IDENTIFY, CMD_INSTR, CMD_READ, CMD_RUN, CMD_STALLS, CMD_WRITE, IDENTITY_BYTES, NAK};
use systole_core::isa::INSTR_WORDS;

/// Where the bridge is in a command.
#[derive(Copy, Clone, PartialEq, Debug, LogicState)]
pub enum BridgeState {
    /// Waiting for a command byte.
    Idle,
    /// Collecting the command's argument bytes.
    Args,
    /// Acting on a complete command.
    Dispatch,
    /// Writing each received byte to memory.
    WriteData,
    /// Reading the next byte of a `Read`.
    ReadIssue,
    /// `run` is high (from a register) for the program's first cycle.
    RunStart,
    /// The byte arrives from memory and is registered (`rbyte`).
    ReadWait,
    /// Taking the registered byte.
    ReadCapture,
    /// Collecting the 64 bytes of an instruction.
    InstrData,
    /// Writing the instruction into its unit's memory.
    InstrWrite,
    /// Waiting for the program to finish.
    RunWait,
    /// Sending the answer.
    Send,
}

/// The host bridge.
#[derive(LogicBlock)]
pub struct HostBridge {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Byte received from the host.
    pub rx_data: Signal<In, Bits<8>>,
    /// `rx_data` is new in this cycle.
    pub rx_valid: Signal<In, Bit>,
    /// Byte to send to the host.
    pub tx_data: Signal<Out, Bits<8>>,
    /// Send `tx_data`.
    pub tx_send: Signal<Out, Bit>,
    /// The transmitter is idle.
    pub tx_ready: Signal<In, Bit>,
    /// Accelerator: write an instruction.
    pub host_we: Signal<Out, Bit>,
    /// Accelerator: the instruction's unit.
    pub host_unit: Signal<Out, Bits<2>>,
    /// Accelerator: the instruction part's index in its unit (instruction index times the
    /// parts per instruction, plus the part).
    pub host_index: Signal<Out, Bits<ADDR_BITS>>,
    /// Accelerator: one part of the encoded instruction, least significant word first.
    pub host_word: Vec<Signal<Out, Bits<64>>>,
    /// Accelerator: start the program.
    pub run: Signal<Out, Bit>,
    /// Accelerator: instructions per unit.
    pub count: Vec<Signal<Out, Bits<ADDR_BITS>>>,
    /// Accelerator: the program has finished.
    pub finished: Signal<In, Bit>,
    /// Accelerator: the program's cycles.
    pub cycles: Signal<In, Bits<CYCLE_BITS>>,
    /// Memory: the bridge owns the memory ports (always but while a program runs).
    pub mem_host: Signal<Out, Bit>,
    /// Memory: byte address of lane 0 (write now, or read with data in the next cycle).
    pub mem_addr: Signal<Out, Bits<DRAM_ADDR_BITS>>,
    /// Memory: write `mem_wdata` to lane 0.
    pub mem_we: Signal<Out, Bit>,
    /// Memory: the byte to write.
    pub mem_wdata: Signal<Out, Signed<8>>,
    /// Memory: lane 0's byte read in the previous cycle.
    pub mem_rdata: Signal<In, Signed<8>>,
    /// With memory that holds the core's clock ([`HostBridge::counting_stalls`]; one
    /// element, else none, so that other boards' Verilog is unchanged): the cycles held
    /// while the last program ran (at most 48 bits), the answer to `CMD_STALLS`.
    pub stalls: Vec<Signal<In, Bits<64>>>,
    state: DFF<BridgeState>,
    /// The received byte and its valid flag, registered, with the byte's command decoded
    /// beside it: the state machine starts from flip-flops, not from the receiver's
    /// register through the command comparisons.
    rx_byte: DFF<Bits<8>>,
    rx_new: DFF<Bit>,
    rx_identify: DFF<Bit>,
    rx_write: DFF<Bit>,
    rx_read: DFF<Bit>,
    rx_instr: DFF<Bit>,
    rx_run: DFF<Bit>,
    /// The command being served, as flags set with its byte (a `Run` has none), so that
    /// no comparison of the command byte lies on a path into the state machine.
    is_write: DFF<Bit>,
    is_read: DFF<Bit>,
    is_instr: DFF<Bit>,
    left: DFF<Bits<8>>,
    arg: DFF<Bits<64>>,
    addr: DFF<Bits<DRAM_ADDR_BITS>>,
    /// Bytes left of a `Read` or `Write`, kept to the bits that count the board memory's
    /// size (`len_mask`): like the address, which the memory decodes only as far as its
    /// size, a length is to stay within the memory, and the host checks that it does
    /// (`systole_fpga::host::Host`).
    len: DFF<Bits<32>>,
    len_mask: Constant<Bits<32>>,
    /// `len == 1` and `len != 0`, registered: a cycle late, but `len` changes only with a
    /// received byte or in `ReadIssue`, and is next tested at the next byte (a UART frame,
    /// at least 40 cycles, later) or in `Send` (three cycles later), so the flags are
    /// current whenever they are read, and the 32-bit comparisons stay off the paths into
    /// the state machine.
    len_one: DFF<Bit>,
    len_left: DFF<Bit>,
    /// The length argument (`arg` bits 32..64) is 0, decided as its last byte shifts in.
    len_zero: DFF<Bit>,
    words: Vec<DFF<Bits<64>>>,
    // The part just received is in `words`: write it in this cycle, at `slot`.
    part_done: DFF<Bit>,
    slot: DFF<Bits<ADDR_BITS>>,
    // Bytes per instruction part, less one; log2 of the parts per instruction.
    part_mask: Constant<Bits<8>>,
    /// `w`, for word `w` of a part.
    word_of: Vec<Constant<Bits<8>>>,
    part_shift: Constant<Bits<ADDR_BITS>>,
    /// The answer: its kind (0 the byte `one`, 1 the identity, 2 the cycle count), its
    /// bytes sent so far and left to send. Each byte is chosen from the identity constant or
    /// the accelerator's cycle counter (which holds until the next `run`), not shifted out
    /// of a copy.
    reply: DFF<Bits<2>>,
    one: DFF<Bits<8>>,
    sent: DFF<Bits<5>>,
    /// The identity and the cycle count from the byte being sent on.
    id_rest: Signal<Local, Bits<128>>,
    cycles_rest: Signal<Local, Bits<CYCLE_BITS>>,
    /// The received instruction byte's position in its part, its bit offset in its word,
    /// the byte placed there and the mask of the word's other bytes.
    part_byte: Signal<Local, Bits<8>>,
    byte_shift: Signal<Local, Bits<8>>,
    placed: Signal<Local, Bits<64>>,
    kept: Signal<Local, Bits<64>>,
    low_byte: Constant<Bits<64>>,
    /// The byte memory returned in the previous cycle: a block RAM's output goes through
    /// this register before the reply's wide multiplexer.
    rbyte: DFF<Bits<8>>,
    /// `run`, registered: the controller's start of a program comes from this flip-flop,
    /// not from the command decode.
    run_r: DFF<Bit>,
    nout: DFF<Bits<5>>,
    identity: Constant<Bits<128>>,
    cmd_identify: Constant<Bits<8>>,
    cmd_write: Constant<Bits<8>>,
    cmd_read: Constant<Bits<8>>,
    cmd_instr: Constant<Bits<8>>,
    cmd_run: Constant<Bits<8>>,
    /// With `stalls`: the received byte is `CMD_STALLS`, the command byte, and the stall
    /// count from the byte being sent on.
    rx_stalls: Vec<DFF<Bit>>,
    cmd_stalls: Vec<Constant<Bits<8>>>,
    stalls_rest: Vec<Signal<Local, Bits<64>>>,
    /// The answer: `ACK`, then the count.
    stalls_answer: Vec<Signal<Local, Bits<64>>>,
    ack_wide: Vec<Constant<Bits<64>>>,
    /// With `stalls`: the bit offset of the byte being sent.
    sent_bits: Vec<Signal<Local, Bits<8>>>,
    ack: Constant<Bits<8>>,
    nak: Constant<Bits<8>>,
}

impl HostBridge {
    /// A bridge that answers `CMD_IDENTIFY` with `identity` and writes each instruction as
    /// `parts` parts (the accelerator's `fetch_cycles`: 1, 2, 4 or 8), each as soon as its
    /// bytes have arrived.
    pub fn new(identity: Identity, parts: usize) -> Self {
        assert!(matches!(parts, 1 | 2 | 4 | 8), "instructions come in 1, 2, 4 or 8 parts");
        let byte = |b: u8| Constant::new((b as u64).into());
        let id: [u8; IDENTITY_BYTES] = identity.encode();
        Self {
            clock: Default::default(),
            rx_data: Default::default(),
            rx_valid: Default::default(),
            tx_data: Default::default(),
            tx_send: Default::default(),
            tx_ready: Default::default(),
            host_we: Default::default(),
            host_unit: Default::default(),
            host_index: Default::default(),
            host_word: (0..INSTR_WORDS / parts).map(|_| Default::default()).collect(),
            run: Default::default(),
            count: (0..3).map(|_| Default::default()).collect(),
            finished: Default::default(),
            cycles: Default::default(),
            mem_host: Default::default(),
            mem_addr: Default::default(),
            mem_we: Default::default(),
            mem_wdata: Default::default(),
            mem_rdata: Default::default(),
            stalls: vec![],
            state: Default::default(),
            rx_byte: Default::default(),
            rx_new: Default::default(),
            rx_identify: Default::default(),
            rx_write: Default::default(),
            rx_read: Default::default(),
            rx_instr: Default::default(),
            rx_run: Default::default(),
            is_write: Default::default(),
            is_read: Default::default(),
            is_instr: Default::default(),
            left: Default::default(),
            arg: Default::default(),
            addr: Default::default(),
            len: Default::default(),
            len_mask: Constant::new(crate::verilog::low_mask(crate::sram::index_bits(identity.memory_bytes as usize) + 1)),
            len_one: Default::default(),
            len_left: Default::default(),
            len_zero: Default::default(),
            words: (0..INSTR_WORDS / parts).map(|_| Default::default()).collect(),
            part_done: Default::default(),
            slot: Default::default(),
            part_mask: Constant::new((64 / parts as u64 - 1).into()),
            word_of: crate::wiring::constants(0..(INSTR_WORDS / parts) as u64),
            part_shift: Constant::new((parts.trailing_zeros() as u64).into()),
            reply: Default::default(),
            one: Default::default(),
            sent: Default::default(),
            id_rest: Default::default(),
            cycles_rest: Default::default(),
            part_byte: Default::default(),
            byte_shift: Default::default(),
            placed: Default::default(),
            kept: Default::default(),
            low_byte: Constant::new(0xffu64.into()),
            rbyte: Default::default(),
            run_r: Default::default(),
            nout: Default::default(),
            identity: Constant::new(u128::from_le_bytes(id).to_bits()),
            cmd_identify: byte(CMD_IDENTIFY),
            cmd_write: byte(CMD_WRITE),
            cmd_read: byte(CMD_READ),
            cmd_instr: byte(CMD_INSTR),
            cmd_run: byte(CMD_RUN),
            rx_stalls: vec![],
            cmd_stalls: vec![],
            stalls_rest: vec![],
            stalls_answer: vec![],
            ack_wide: vec![],
            sent_bits: vec![],
            ack: byte(ACK),
            nak: byte(NAK),
        }
    }
}

impl HostBridge {
    /// The bridge of a board whose memory holds the core's clock: it answers `CMD_STALLS`
    /// with the `stalls` input (other boards answer it with `NAK`).
    pub fn counting_stalls(mut self) -> Self {
        self.stalls = vec![Default::default()];
        self.rx_stalls = vec![Default::default()];
        self.cmd_stalls = vec![Constant::new((CMD_STALLS as u64).into())];
        self.stalls_rest = vec![Default::default()];
        self.stalls_answer = vec![Default::default()];
        self.ack_wide = vec![Constant::new((ACK as u64).into())];
        self.sent_bits = vec![Default::default()];
        self
    }
}

impl Logic for HostBridge {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            rx_byte,
            rx_new,
            rx_identify,
            rx_write,
            rx_read,
            rx_instr,
            rx_run,
            is_write,
            is_read,
            is_instr,
            left,
            arg,
            addr,
            len,
            len_one,
            len_left,
            len_zero,
            part_done,
            slot,
            reply,
            one,
            sent,
            rbyte,
            run_r,
            nout
        );
        self.len_one.d.next = self.len.q.val() == 1;
        self.len_left.d.next = self.len.q.val() != 0;
        self.rx_byte.d.next = self.rx_data.val();
        self.rx_new.d.next = self.rx_valid.val();
        self.rx_identify.d.next = self.rx_data.val() == self.cmd_identify.val();
        self.rx_write.d.next = self.rx_data.val() == self.cmd_write.val();
        self.rx_read.d.next = self.rx_data.val() == self.cmd_read.val();
        self.rx_instr.d.next = self.rx_data.val() == self.cmd_instr.val();
        self.rx_run.d.next = self.rx_data.val() == self.cmd_run.val();
        self.rbyte.d.next = unsigned_cast(self.mem_rdata.val());
        for i in 0..self.stalls.len() {
            self.sent_bits[i].next = bit_cast::<8, 5>(self.sent.q.val()) << 3;
            self.rx_stalls[i].clock.next = self.clock.val();
            self.rx_stalls[i].d.next = self.rx_data.val() == self.cmd_stalls[i].val();
            self.stalls_answer[i].next = (self.stalls[i].val() << 8) | self.ack_wide[i].val();
            self.stalls_rest[i].next = self.stalls_answer[i].val() >> self.sent_bits[i].val();
        }
        for w in 0..self.words.len() {
            self.words[w].clock.next = self.clock.val();
            self.words[w].d.next = self.words[w].q.val();
            self.host_word[w].next = self.words[w].q.val();
        }
        // Argument fields arrive least significant byte first and are shifted in from the
        // top, so after n bytes they sit in the top 8n bits of `arg`.
        self.host_unit.next = self.arg.q.val().get_bits::<2>(40);
        self.host_index.next = self.slot.q.val();
        self.count[0].next = bit_cast::<ADDR_BITS, 16>(self.arg.q.val().get_bits::<16>(16));
        self.count[1].next = bit_cast::<ADDR_BITS, 16>(self.arg.q.val().get_bits::<16>(32));
        self.count[2].next = bit_cast::<ADDR_BITS, 16>(self.arg.q.val().get_bits::<16>(48));
        self.host_we.next = self.part_done.q.val();
        self.part_done.d.next = false;
        if self.part_done.q.val() {
            self.slot.d.next = self.slot.q.val() + 1;
        }
        self.run.next = self.run_r.q.val();
        self.run_r.d.next = false;
        self.mem_host.next = self.state.q.val() != BridgeState::RunWait;
        self.mem_addr.next = self.addr.q.val();
        self.mem_we.next = false;
        self.mem_wdata.next = signed_cast(self.rx_byte.q.val());
        self.id_rest.next = self.identity.val() >> (bit_cast::<8, 5>(self.sent.q.val()) << 3);
        self.cycles_rest.next = self.cycles.val() >> (bit_cast::<8, 5>(self.sent.q.val()) << 3);
        if self.reply.q.val() == 1 {
            self.tx_data.next = self.id_rest.val().get_bits::<8>(0);
        } else if self.reply.q.val() == 2 {
            self.tx_data.next = self.cycles_rest.val().get_bits::<8>(0);
        } else {
            self.tx_data.next = self.one.q.val();
        }
        for i in 0..self.stalls.len() {
            if self.reply.q.val() == 3 {
                self.tx_data.next = self.stalls_rest[i].val().get_bits::<8>(0);
            }
        }
        // Byte `64 - left` of the instruction, within its part (a part's size divides 64).
        self.part_byte.next = (!self.left.q.val() + 1) & self.part_mask.val();
        self.byte_shift.next = bit_cast::<8, 8>(self.part_byte.val() & 7) << 3;
        self.placed.next = bit_cast::<64, 8>(self.rx_byte.q.val()) << self.byte_shift.val();
        self.kept.next = !(self.low_byte.val() << self.byte_shift.val());
        self.tx_send.next = false;
        match self.state.q.val() {
            BridgeState::Idle => {
                if self.rx_new.q.val() {
                    self.is_write.d.next = self.rx_write.q.val();
                    self.is_read.d.next = self.rx_read.q.val();
                    self.is_instr.d.next = self.rx_instr.q.val();
                    if self.rx_identify.q.val() {
                        self.reply.d.next = 1.into();
                        self.sent.d.next = 0.into();
                        self.nout.d.next = 16.into();
                        self.state.d.next = BridgeState::Send;
                    } else if self.rx_write.q.val() | self.rx_read.q.val() {
                        self.left.d.next = 8.into();
                        self.state.d.next = BridgeState::Args;
                    } else if self.rx_instr.q.val() {
                        self.left.d.next = 3.into();
                        self.state.d.next = BridgeState::Args;
                    } else if self.rx_run.q.val() {
                        self.left.d.next = 6.into();
                        self.state.d.next = BridgeState::Args;
                    } else {
                        self.one.d.next = self.nak.val();
                        self.reply.d.next = 0.into();
                        self.sent.d.next = 0.into();
                        self.nout.d.next = 1.into();
                        self.state.d.next = BridgeState::Send;
                    }
                    for i in 0..self.stalls.len() {
                        if self.rx_stalls[i].q.val() {
                            self.reply.d.next = 3.into();
                            self.sent.d.next = 0.into();
                            self.nout.d.next = 7.into();
                            self.state.d.next = BridgeState::Send;
                        }
                    }
                }
            }
            BridgeState::Args => {
                if self.rx_new.q.val() {
                    self.arg.d.next = (self.arg.q.val() >> 8) | (bit_cast::<64, 8>(self.rx_byte.q.val()) << 56);
                    self.len_zero.d.next = (self.arg.q.val().get_bits::<24>(40) == 0) & (self.rx_byte.q.val() == 0);
                    self.left.d.next = self.left.q.val() - 1;
                    if self.left.q.val() == 1 {
                        self.state.d.next = BridgeState::Dispatch;
                    }
                }
            }
            BridgeState::Dispatch => {
                self.addr.d.next = self.arg.q.val().get_bits::<DRAM_ADDR_BITS>(0);
                self.len.d.next = self.arg.q.val().get_bits::<32>(32) & self.len_mask.val();
                if self.is_write.q.val() {
                    if self.len_zero.q.val() {
                        self.one.d.next = self.ack.val();
                        self.reply.d.next = 0.into();
                        self.sent.d.next = 0.into();
                        self.nout.d.next = 1.into();
                        self.state.d.next = BridgeState::Send;
                    } else {
                        self.state.d.next = BridgeState::WriteData;
                    }
                } else if self.is_read.q.val() {
                    if self.len_zero.q.val() {
                        self.state.d.next = BridgeState::Idle;
                    } else {
                        self.state.d.next = BridgeState::ReadIssue;
                    }
                } else if self.is_instr.q.val() {
                    self.left.d.next = 64.into();
                    self.slot.d.next = bit_cast::<ADDR_BITS, 16>(self.arg.q.val().get_bits::<16>(48)) << self.part_shift.val();
                    self.state.d.next = BridgeState::InstrData;
                } else {
                    self.run_r.d.next = true;
                    self.state.d.next = BridgeState::RunStart;
                }
            }
            BridgeState::WriteData => {
                if self.rx_new.q.val() {
                    self.mem_we.next = true;
                    self.addr.d.next = self.addr.q.val() + 1;
                    self.len.d.next = (self.len.q.val() - 1) & self.len_mask.val();
                    if self.len_one.q.val() {
                        self.one.d.next = self.ack.val();
                        self.reply.d.next = 0.into();
                        self.sent.d.next = 0.into();
                        self.nout.d.next = 1.into();
                        self.state.d.next = BridgeState::Send;
                    }
                }
            }
            BridgeState::ReadIssue => {
                self.addr.d.next = self.addr.q.val() + 1;
                self.len.d.next = (self.len.q.val() - 1) & self.len_mask.val();
                self.state.d.next = BridgeState::ReadWait;
            }
            BridgeState::ReadWait => {
                self.state.d.next = BridgeState::ReadCapture;
            }
            BridgeState::ReadCapture => {
                self.one.d.next = self.rbyte.q.val();
                self.reply.d.next = 0.into();
                self.sent.d.next = 0.into();
                self.nout.d.next = 1.into();
                self.state.d.next = BridgeState::Send;
            }
            BridgeState::InstrData => {
                if self.rx_new.q.val() {
                    // Byte `b` of a part (bytes arrive least significant first) goes to its
                    // place, byte `b % 8` of word `b / 8`: a part's bytes that hold no field
                    // are never read, and synthesis drops their registers.
                    for w in 0..self.words.len() {
                        if (self.part_byte.val() >> 3) == self.word_of[w].val() {
                            self.words[w].d.next = (self.words[w].q.val() & self.kept.val()) | self.placed.val();
                        }
                    }
                    self.left.d.next = self.left.q.val() - 1;
                    if ((self.left.q.val() - 1) & self.part_mask.val()) == 0 {
                        self.part_done.d.next = true;
                    }
                    if self.left.q.val() == 1 {
                        self.state.d.next = BridgeState::InstrWrite;
                    }
                }
            }
            BridgeState::InstrWrite => {
                // The last part is written in this cycle (`part_done`).
                self.one.d.next = self.ack.val();
                self.reply.d.next = 0.into();
                self.sent.d.next = 0.into();
                self.nout.d.next = 1.into();
                self.state.d.next = BridgeState::Send;
            }
            BridgeState::RunStart => {
                // `finished` still tells of the previous program in this cycle.
                self.state.d.next = BridgeState::RunWait;
            }
            BridgeState::RunWait => {
                if self.finished.val() {
                    self.reply.d.next = 2.into();
                    self.sent.d.next = 0.into();
                    self.nout.d.next = 6.into();
                    self.state.d.next = BridgeState::Send;
                }
            }
            BridgeState::Send => {
                if self.tx_ready.val() {
                    self.tx_send.next = true;
                    self.sent.d.next = self.sent.q.val() + 1;
                    self.nout.d.next = self.nout.q.val() - 1;
                    if self.nout.q.val() == 1 {
                        if self.is_read.q.val() & self.len_left.q.val() {
                            self.state.d.next = BridgeState::ReadIssue;
                        } else {
                            self.state.d.next = BridgeState::Idle;
                        }
                    }
                }
            }
        }
    }
}
