//! A board in simulation behind a byte stream: [`SimulatedBoard`] runs a board's RTL (a
//! [`BoardCore`] with its block RAM, or a [`DramBoard`]: a [`DramBoardCore`] on a
//! behavioural native port, its core's clock gated) in rust-hdl's simulator and speaks
//! 8N1 on its serial pins, so that the host client of `systole-fpga` can be tested
//! against the real bridge without a board.

use crate::native_port_model::NativePortModel;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use systole_hdl::board::{BoardCore, DramBoardCore};
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, settle};

/// A board's serial pins and clock, as [`SimulatedBoard`] drives them.
pub trait BoardPins {
    /// Connects and settles the logic, the line idle.
    fn prepare(&mut self);
    /// Drives the line to the board for the next cycle.
    fn set_rx(&mut self, level: bool);
    /// The line from the board.
    fn tx(&self) -> bool;
    /// One cycle of the board's clock.
    fn cycle(&mut self);
}

impl BoardPins for BoardCore {
    fn prepare(&mut self) {
        self.connect_all();
        self.uart_rx.next = true;
        assert!(settle(self), "board logic does not settle");
    }

    fn set_rx(&mut self, level: bool) {
        self.uart_rx.next = level;
    }

    fn tx(&self) -> bool {
        self.uart_tx.val()
    }

    fn cycle(&mut self) {
        clock_cycle(self, |c| &mut c.clock);
    }
}

/// A [`DramBoardCore`] on a [`NativePortModel`]: each cycle the port offers, the core
/// answers, and the core's clock rises with the free clock only when the core's
/// `advance` is high (the board's clock gate).
pub struct DramBoard {
    /// The RTL.
    pub core: DramBoardCore,
    /// The native port and its memory.
    pub port: NativePortModel,
    /// Cycles of the free clock, of them those in which the core's clock ticked, and
    /// those in which a program ran.
    pub cycles: u64,
    pub ticks: u64,
    pub running_cycles: u64,
    /// Cycles in which a program ran and the core's clock ticked.
    pub running_ticks: u64,
}

impl DramBoard {
    /// `core` on `port`.
    pub fn new(core: DramBoardCore, port: NativePortModel) -> Self {
        Self { core, port, cycles: 0, ticks: 0, running_cycles: 0, running_ticks: 0 }
    }
}

impl BoardPins for DramBoard {
    fn prepare(&mut self) {
        self.core.connect_all();
        self.core.uart_rx.next = true;
        assert!(settle(&mut self.core), "board logic does not settle");
    }

    fn set_rx(&mut self, level: bool) {
        self.core.uart_rx.next = level;
    }

    fn tx(&self) -> bool {
        self.core.uart_tx.val()
    }

    fn cycle(&mut self) {
        let c = &mut self.core;
        let offer = self.port.offer();
        c.cmd_ready.next = offer.cmd_ready;
        c.wdata_ready.next = offer.wdata_ready;
        c.rdata_valid.next = offer.rdata.is_some();
        c.rdata_data.next = offer.rdata.unwrap_or_default();
        assert!(settle(c), "board logic does not settle");
        let cmd = c.cmd_valid.val().then(|| (c.cmd_we.val(), c.cmd_addr.val().to_u64()));
        let wdata = c.wdata_valid.val().then(|| (c.wdata_data.val(), c.wdata_we.val().to_u64()));
        self.port.take(&offer, cmd, wdata, c.rdata_ready.val());
        let advance = c.advance.val();
        self.running_cycles += u64::from(c.running.val());
        self.running_ticks += u64::from(c.running.val() && advance);
        c.clock.next = Clock { clk: true };
        c.core_clock.next = Clock { clk: advance };
        assert!(settle(c), "logic does not settle after the rising edge");
        c.clock.next = Clock { clk: false };
        c.core_clock.next = Clock { clk: false };
        assert!(settle(c), "logic does not settle after the falling edge");
        self.cycles += 1;
        self.ticks += u64::from(advance);
    }
}

/// The host's end of a serial line to a simulated board.
pub struct SimulatedBoard<B: BoardPins = BoardCore> {
    /// The board.
    pub core: B,
    clocks_per_bit: usize,
    /// Bytes written by the host and not yet on the line.
    to_board: VecDeque<u8>,
    /// The frame on the line: its 10 bits (start, data LSB first, stop) and the cycles
    /// it has been driven.
    sending: Option<(u16, usize)>,
    /// Bytes the board sent and the host has not read.
    from_board: VecDeque<u8>,
    /// The frame the host is receiving: cycles since its start edge and the bits so far.
    receiving: Option<(usize, u16)>,
    /// Every cycle's levels of the line to the board and of the line from it.
    pub trace: Vec<(bool, bool)>,
    /// Simulated cycles so far.
    pub cycles: u64,
    /// Cycles a read waits for a byte before it times out.
    pub timeout: u64,
}

impl<B: BoardPins> SimulatedBoard<B> {
    /// `core`, whose UART runs at `clocks_per_bit` clocks per bit.
    pub fn new(mut core: B, clocks_per_bit: usize) -> Self {
        core.prepare();
        Self {
            core,
            clocks_per_bit,
            to_board: VecDeque::new(),
            sending: None,
            from_board: VecDeque::new(),
            receiving: None,
            trace: vec![],
            cycles: 0,
            timeout: 2_000_000,
        }
    }

    /// Runs the board and the line for `cycles` clock cycles.
    pub fn run(&mut self, cycles: u64) {
        for _ in 0..cycles {
            self.step();
        }
    }

    /// The bytes the board has sent and no one has read yet.
    pub fn take_sent(&mut self) -> Vec<u8> {
        self.from_board.drain(..).collect()
    }

    /// One clock cycle of the board and both ends of the line.
    fn step(&mut self) {
        let cpb = self.clocks_per_bit;
        if self.sending.is_none() {
            self.sending = self.to_board.pop_front().map(|b| ((b as u16) << 1 | 1 << 9, 0));
        }
        let line = match self.sending {
            Some((frame, t)) => frame >> (t / cpb) & 1 == 1,
            None => true,
        };
        // The line reaches only a synchronizer flip-flop, so `uart_tx` as settled after
        // the previous cycle is this cycle's.
        self.core.set_rx(line);
        let tx = self.core.tx();
        self.trace.push((line, tx));
        // Sample each bit in its middle.
        self.receiving = match self.receiving {
            None if !tx => Some((0, 0)),
            None => None,
            Some((t, bits)) => {
                let t = t + 1;
                let bits = if t % cpb == cpb / 2 { bits | (tx as u16) << (t / cpb) } else { bits };
                if t == 9 * cpb + cpb / 2 {
                    self.from_board.push_back((bits >> 1) as u8);
                    None
                } else {
                    Some((t, bits))
                }
            }
        };
        self.core.cycle();
        self.sending = self.sending.map(|(f, t)| (f, t + 1)).filter(|&(_, t)| t < 10 * cpb);
        self.cycles += 1;
    }
}

impl<B: BoardPins> Write for SimulatedBoard<B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.to_board.extend(buf);
        Ok(buf.len())
    }

    /// Puts every written byte on the line.
    fn flush(&mut self) -> io::Result<()> {
        while !self.to_board.is_empty() || self.sending.is_some() {
            self.step();
        }
        Ok(())
    }
}

impl<B: BoardPins> Read for SimulatedBoard<B> {
    /// Runs the board until it has sent at least one byte.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.cycles;
        while self.from_board.is_empty() {
            if self.cycles - start > self.timeout {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("the board sent nothing in {} cycles", self.timeout)));
            }
            self.step();
        }
        let n = buf.len().min(self.from_board.len());
        for b in buf.iter_mut().take(n) {
            *b = self.from_board.pop_front().expect("n bytes are queued");
        }
        Ok(n)
    }
}
