//! A board in simulation behind a byte stream: [`SimulatedBoard`] runs the
//! [`BoardCore`] RTL in rust-hdl's simulator and speaks 8N1 on its serial pins, so that
//! the host client of `systole-fpga` can be tested against the real bridge without a
//! board.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use systole_hdl::board::BoardCore;
use systole_hdl::rust_hdl::prelude::*;
use systole_hdl::verilog::{clock_cycle, settle};

/// The host's end of a serial line to a simulated board.
pub struct SimulatedBoard {
    core: BoardCore,
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

impl SimulatedBoard {
    /// `core`, whose UART runs at `clocks_per_bit` clocks per bit.
    pub fn new(mut core: BoardCore, clocks_per_bit: usize) -> Self {
        core.connect_all();
        core.uart_rx.next = true;
        assert!(settle(&mut core), "board logic does not settle");
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
        self.core.uart_rx.next = line;
        let tx = self.core.uart_tx.val();
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
        clock_cycle(&mut self.core, |c| &mut c.clock);
        self.sending = self.sending.map(|(f, t)| (f, t + 1)).filter(|&(_, t)| t < 10 * cpb);
        self.cycles += 1;
    }
}

impl Write for SimulatedBoard {
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

impl Read for SimulatedBoard {
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
