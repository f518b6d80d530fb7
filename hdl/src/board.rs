//! What goes on a board: the accelerator, its memory in block RAM ([`BankedRam`]) and
//! the UART host bridge ([`HostBridge`]), behind three pins and two status lights.
//!
//! ```text
//!  uart_rx --> UartRx --> HostBridge --> UartTx --> uart_tx
//!                          |  instr, run     ^ cycles
//!                          v                 |
//!                        Accelerator ---- memory ports ---- BankedRam
//!                                  (the bridge's while no program runs)
//! ```

use crate::board_ram::{BankedRam, BoardMemory};
use crate::bridge::HostBridge;
use crate::top::Accelerator;
use crate::uart::{UartRx, UartTx};
use rust_hdl::prelude::*;
use systole_core::bridge::{fingerprint, Identity};
use systole_core::ArchConfig;

/// The accelerator with its board memory and host bridge.
#[derive(LogicBlock)]
pub struct BoardCore {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Serial line from the host.
    pub uart_rx: Signal<In, Bit>,
    /// Serial line to the host.
    pub uart_tx: Signal<Out, Bit>,
    /// A program runs.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    receiver: UartRx,
    transmitter: UartTx,
    bridge: HostBridge,
    acc: Accelerator,
    ram: BankedRam,
}

impl BoardCore {
    /// `arch`'s accelerator with `instr_depth` instructions per unit, `memory_bytes` bytes
    /// of board memory (a power of two) of block RAM and a UART of `clocks_per_bit` clocks
    /// per bit.
    pub fn new(arch: &ArchConfig, instr_depth: usize, memory_bytes: usize, clocks_per_bit: usize) -> Self {
        Self::with_memory(arch, instr_depth, (BoardMemory::BlockRam, memory_bytes), clocks_per_bit)
    }

    /// [`BoardCore::new`] with board memory of `kind` (SPRAM needs `arch.dram_single_port`).
    pub fn with_memory(arch: &ArchConfig, instr_depth: usize, (kind, memory_bytes): (BoardMemory, usize), clocks_per_bit: usize) -> Self {
        assert!(kind != BoardMemory::Spram || arch.dram_single_port, "single-port SPRAM under an arch with two DRAM ports");
        let identity = Identity {
            arch: fingerprint(arch),
            instr_depth: instr_depth.try_into().expect("instruction depth fits the protocol's u16"),
            clocks_per_bit: clocks_per_bit.try_into().expect("clocks per bit fit the protocol's u16"),
            memory_bytes: memory_bytes.try_into().expect("board memory fits the protocol's u32"),
        };
        Self {
            clock: Default::default(),
            uart_rx: Default::default(),
            uart_tx: Default::default(),
            running: Default::default(),
            finished: Default::default(),
            receiver: UartRx::new(clocks_per_bit),
            transmitter: UartTx::new(clocks_per_bit),
            bridge: HostBridge::new(identity, arch.fetch_cycles),
            acc: Accelerator::for_memory(arch, instr_depth, memory_bytes.trailing_zeros() as usize),
            ram: BankedRam::of_kind(kind, memory_bytes, arch.dram_bytes_per_cycle),
        }
    }
}

impl Logic for BoardCore {
    #[hdl_gen]
    fn update(&mut self) {
        self.receiver.clock.next = self.clock.val();
        self.transmitter.clock.next = self.clock.val();
        self.bridge.clock.next = self.clock.val();
        self.acc.clock.next = self.clock.val();
        self.ram.clock.next = self.clock.val();
        self.receiver.rx.next = self.uart_rx.val();
        self.uart_tx.next = self.transmitter.tx.val();
        self.bridge.rx_data.next = self.receiver.data.val();
        self.bridge.rx_valid.next = self.receiver.valid.val();
        self.transmitter.data.next = self.bridge.tx_data.val();
        self.transmitter.send.next = self.bridge.tx_send.val();
        self.bridge.tx_ready.next = self.transmitter.ready.val();
        self.acc.host_we.next = self.bridge.host_we.val();
        self.acc.host_unit.next = self.bridge.host_unit.val();
        self.acc.host_index.next = self.bridge.host_index.val();
        for w in 0..self.acc.host_word.len() {
            self.acc.host_word[w].next = self.bridge.host_word[w].val();
        }
        self.acc.run.next = self.bridge.run.val();
        for u in 0..self.acc.count.len() {
            self.acc.count[u].next = self.bridge.count[u].val();
        }
        self.bridge.finished.next = self.acc.finished.val();
        self.bridge.cycles.next = self.acc.cycles.val();
        self.running.next = self.acc.running.val();
        self.finished.next = self.acc.finished.val();
        self.bridge.mem_rdata.next = self.ram.rd_data[0].val();
        for i in 0..self.acc.dram_rd_data.len() {
            self.acc.dram_rd_data[i].next = self.ram.rd_data[i].val();
        }
        if self.bridge.mem_host.val() {
            self.ram.rd_addr.next = self.bridge.mem_addr.val();
            self.ram.wr_addr.next = self.bridge.mem_addr.val();
            for i in 0..self.ram.wr_en.len() {
                self.ram.wr_en[i].next = false;
                self.ram.wr_data[i].next = self.bridge.mem_wdata.val();
            }
            self.ram.wr_en[0].next = self.bridge.mem_we.val();
        } else {
            self.ram.rd_addr.next = self.acc.dram_rd_addr.val();
            self.ram.wr_addr.next = self.acc.dram_wr_addr.val();
            for i in 0..self.ram.wr_en.len() {
                self.ram.wr_en[i].next = self.acc.dram_wr_en[i].val();
                self.ram.wr_data[i].next = self.acc.dram_wr_data[i].val();
            }
        }
    }
}
