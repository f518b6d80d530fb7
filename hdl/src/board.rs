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
use crate::native_port::{NativePortBridge, PORT_BITS, STALL_BITS};
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

/// The accelerator on a board whose memory is a DRAM controller's native port (LiteDRAM's
/// on the ULX3S and the OrangeCrab): the UART and the [`NativePortBridge`] run on the
/// free-running `clock`; the host bridge and the accelerator run on `core_clock`, which
/// ticks only in the cycles in which `advance` is high (the board's clock gate takes it
/// as its enable). So the core sees one-cycle memory and runs the simulator's cycles
/// exactly, and the cycles the bridge holds its clock while a program runs are counted
/// apart and answered to `CMD_STALLS`.
///
/// ```text
///  uart_rx --> UartRx --> hold --\                /--> UartTx --> uart_tx
///  (clock)                        v  core_clock  /  (send when the core's clock ticks)
///                            HostBridge ---- Accelerator
///                                   \\        //
///                          NativePortBridge (clock) <--> native port (cmd, wdata, rdata)
/// ```
///
/// A received byte waits in a register on the free clock until the core's clock next
/// ticks, so that the bridge sees it in exactly one of its cycles; a byte the bridge sends
/// goes to the transmitter in the cycle in which the core's clock ticks.
#[derive(LogicBlock)]
pub struct DramBoardCore {
    /// The free-running clock.
    pub clock: Signal<In, Clock>,
    /// The core's clock: `clock` gated by `advance`.
    pub core_clock: Signal<In, Clock>,
    /// The core's clock ticks at the end of this cycle.
    pub advance: Signal<Out, Bit>,
    /// Serial line from the host.
    pub uart_rx: Signal<In, Bit>,
    /// Serial line to the host.
    pub uart_tx: Signal<Out, Bit>,
    /// A program runs.
    pub running: Signal<Out, Bit>,
    /// The last program has finished.
    pub finished: Signal<Out, Bit>,
    /// Native port: command, offered and taken.
    pub cmd_valid: Signal<Out, Bit>,
    pub cmd_ready: Signal<In, Bit>,
    pub cmd_we: Signal<Out, Bit>,
    pub cmd_addr: Signal<Out, Bits<32>>,
    /// Native port: write data and byte enables.
    pub wdata_valid: Signal<Out, Bit>,
    pub wdata_ready: Signal<In, Bit>,
    pub wdata_data: Signal<Out, Bits<PORT_BITS>>,
    pub wdata_we: Signal<Out, Bits<16>>,
    /// Native port: read data.
    pub rdata_valid: Signal<In, Bit>,
    pub rdata_ready: Signal<Out, Bit>,
    pub rdata_data: Signal<In, Bits<PORT_BITS>>,
    receiver: UartRx,
    transmitter: UartTx,
    hold_valid: DFF<Bit>,
    hold_data: DFF<Bits<8>>,
    bridge: HostBridge,
    acc: Accelerator,
    port: NativePortBridge,
}

impl DramBoardCore {
    /// `arch`'s accelerator with `instr_depth` instructions per unit on `memory_bytes`
    /// bytes (a power of two) of DRAM behind a native port of `port_bytes`-byte words, and
    /// a UART of `clocks_per_bit` clocks per bit.
    pub fn new(arch: &ArchConfig, instr_depth: usize, memory_bytes: usize, port_bytes: usize, clocks_per_bit: usize) -> Self {
        let identity = Identity {
            arch: fingerprint(arch),
            instr_depth: instr_depth.try_into().expect("instruction depth fits the protocol's u16"),
            clocks_per_bit: clocks_per_bit.try_into().expect("clocks per bit fit the protocol's u16"),
            memory_bytes: memory_bytes.try_into().expect("board memory fits the protocol's u32"),
        };
        Self {
            clock: Default::default(),
            core_clock: Default::default(),
            advance: Default::default(),
            uart_rx: Default::default(),
            uart_tx: Default::default(),
            running: Default::default(),
            finished: Default::default(),
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
            receiver: UartRx::new(clocks_per_bit),
            transmitter: UartTx::new(clocks_per_bit),
            hold_valid: Default::default(),
            hold_data: Default::default(),
            bridge: HostBridge::new(identity, arch.fetch_cycles).counting_stalls(),
            acc: Accelerator::for_memory(arch, instr_depth, memory_bytes.trailing_zeros() as usize),
            port: NativePortBridge::new(arch.dram_bytes_per_cycle, port_bytes),
        }
    }
}

impl Logic for DramBoardCore {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, hold_valid, hold_data);
        self.receiver.clock.next = self.clock.val();
        self.transmitter.clock.next = self.clock.val();
        self.port.clock.next = self.clock.val();
        self.bridge.clock.next = self.core_clock.val();
        self.acc.clock.next = self.core_clock.val();
        self.advance.next = self.port.advance.val();

        self.receiver.rx.next = self.uart_rx.val();
        self.uart_tx.next = self.transmitter.tx.val();
        if self.receiver.valid.val() {
            self.hold_valid.d.next = true;
            self.hold_data.d.next = self.receiver.data.val();
        } else if self.port.advance.val() {
            self.hold_valid.d.next = false;
        }
        self.bridge.rx_data.next = self.hold_data.q.val();
        self.bridge.rx_valid.next = self.hold_valid.q.val();
        self.transmitter.data.next = self.bridge.tx_data.val();
        self.transmitter.send.next = self.bridge.tx_send.val() & self.port.advance.val();
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

        self.port.count.next = self.acc.running.val();
        self.port.clear.next = self.bridge.run.val();
        for i in 0..self.bridge.stalls.len() {
            self.bridge.stalls[i].next = bit_cast::<64, STALL_BITS>(self.port.stalls.val());
        }
        self.bridge.mem_rdata.next = self.port.rd_data[0].val();
        for i in 0..self.acc.dram_rd_data.len() {
            self.acc.dram_rd_data[i].next = self.port.rd_data[i].val();
        }
        if self.bridge.mem_host.val() {
            self.port.rd_addr.next = self.bridge.mem_addr.val();
            self.port.wr_addr.next = self.bridge.mem_addr.val();
            for i in 0..self.port.wr_en.len() {
                self.port.wr_en[i].next = false;
                self.port.wr_data[i].next = self.bridge.mem_wdata.val();
            }
            self.port.wr_en[0].next = self.bridge.mem_we.val();
        } else {
            self.port.rd_addr.next = self.acc.dram_rd_addr.val();
            self.port.wr_addr.next = self.acc.dram_wr_addr.val();
            for i in 0..self.port.wr_en.len() {
                self.port.wr_en[i].next = self.acc.dram_wr_en[i].val();
                self.port.wr_data[i].next = self.acc.dram_wr_data[i].val();
            }
        }

        self.cmd_valid.next = self.port.cmd_valid.val();
        self.port.cmd_ready.next = self.cmd_ready.val();
        self.cmd_we.next = self.port.cmd_we.val();
        self.cmd_addr.next = self.port.cmd_addr.val();
        self.wdata_valid.next = self.port.wdata_valid.val();
        self.port.wdata_ready.next = self.wdata_ready.val();
        self.wdata_data.next = self.port.wdata_data.val();
        self.wdata_we.next = self.port.wdata_we.val();
        self.port.rdata_valid.next = self.rdata_valid.val();
        self.rdata_ready.next = self.port.rdata_ready.val();
        self.port.rdata_data.next = self.rdata_data.val();
    }
}
