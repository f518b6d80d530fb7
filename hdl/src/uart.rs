//! 8N1 UART transmitter and receiver for the boards' host bridge (rust-hdl 0.46 has no
//! UART). `clocks_per_bit` is the clock frequency over the baud rate, at least 4.

use rust_hdl::prelude::*;

/// Sends one byte per `send` pulse: a start bit (0), the 8 data bits LSB first, a stop
/// bit (1), each `clocks_per_bit` cycles long. `ready` is high while idle.
#[derive(LogicBlock)]
pub struct UartTx {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// The byte to send.
    pub data: Signal<In, Bits<8>>,
    /// Send `data` (taken only when `ready`).
    pub send: Signal<In, Bit>,
    /// Idle: a byte may be sent.
    pub ready: Signal<Out, Bit>,
    /// The serial line (1 when idle).
    pub tx: Signal<Out, Bit>,
    /// `clocks_per_bit - 1`: the bit's clock counter counts down from it to 0, so that
    /// the end of a bit is a test for zero, not a sum and a comparison.
    last: Constant<Bits<16>>,
    /// The bits `clocks_per_bit` needs: the counter never holds more (it counts down to 0
    /// from `last`), and the mask lets synthesis see it.
    count_mask: Constant<Bits<16>>,
    stop: Constant<Bits<10>>,
    busy: DFF<Bit>,
    shift: DFF<Bits<10>>,
    count: DFF<Bits<16>>,
    // `bit` is a SystemVerilog keyword.
    index: DFF<Bits<4>>,
}

impl UartTx {
    /// A transmitter with `clocks_per_bit >= 4`.
    pub fn new(clocks_per_bit: usize) -> Self {
        assert!((4..1 << 16).contains(&clocks_per_bit), "clocks per bit {clocks_per_bit} outside 4..65536");
        Self {
            clock: Default::default(),
            data: Default::default(),
            send: Default::default(),
            ready: Default::default(),
            tx: Default::default(),
            last: Constant::new(((clocks_per_bit - 1) as u64).into()),
            count_mask: Constant::new(crate::verilog::low_mask(crate::sram::index_bits(clocks_per_bit))),
            stop: Constant::new(512u64.into()),
            busy: Default::default(),
            shift: Default::default(),
            count: Default::default(),
            index: Default::default(),
        }
    }
}

impl Logic for UartTx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, busy, shift, count, index);
        self.ready.next = !self.busy.q.val();
        self.tx.next = !self.busy.q.val() | self.shift.q.val().get_bit(0);
        if !self.busy.q.val() & self.send.val() {
            // Frame, LSB first: start 0, data, stop 1.
            self.shift.d.next = (bit_cast::<10, 8>(self.data.val()) << 1) | self.stop.val();
            self.busy.d.next = true;
            self.count.d.next = self.last.val();
            self.index.d.next = 0.into();
        } else if self.busy.q.val() {
            if self.count.q.val() == 0 {
                self.count.d.next = self.last.val();
                self.shift.d.next = self.shift.q.val() >> 1;
                if self.index.q.val() == 9 {
                    self.busy.d.next = false;
                } else {
                    self.index.d.next = self.index.q.val() + 1;
                }
            } else {
                self.count.d.next = (self.count.q.val() - 1) & self.count_mask.val();
            }
        }
    }
}

/// Receives 8N1 bytes: `valid` pulses for one cycle with `data` after each stop bit. Bits
/// are sampled in their middle; a start bit that is gone at its middle is ignored, and a
/// byte whose stop bit is 0 is dropped.
#[derive(LogicBlock)]
pub struct UartRx {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// The serial line.
    pub rx: Signal<In, Bit>,
    /// The byte received.
    pub data: Signal<Out, Bits<8>>,
    /// `data` is new in this cycle.
    pub valid: Signal<Out, Bit>,
    cpb: Constant<Bits<16>>,
    /// The bits `clocks_per_bit` needs (see [`UartTx`]'s).
    count_mask: Constant<Bits<16>>,
    half: Constant<Bits<16>>,
    msb: Constant<Bits<8>>,
    sync0: DFF<Bit>,
    sync1: DFF<Bit>,
    busy: DFF<Bit>,
    count: DFF<Bits<16>>,
    phase: DFF<Bits<4>>,
    shift: DFF<Bits<8>>,
    got: DFF<Bit>,
}

impl UartRx {
    /// A receiver with `clocks_per_bit >= 4`.
    pub fn new(clocks_per_bit: usize) -> Self {
        assert!((4..1 << 16).contains(&clocks_per_bit), "clocks per bit {clocks_per_bit} outside 4..65536");
        Self {
            clock: Default::default(),
            rx: Default::default(),
            data: Default::default(),
            valid: Default::default(),
            cpb: Constant::new((clocks_per_bit as u64 - 1).into()),
            count_mask: Constant::new(crate::verilog::low_mask(crate::sram::index_bits(clocks_per_bit))),
            half: Constant::new(((clocks_per_bit as u64 - 1) / 2).into()),
            msb: Constant::new(128u64.into()),
            sync0: Default::default(),
            sync1: Default::default(),
            busy: Default::default(),
            count: Default::default(),
            phase: Default::default(),
            shift: Default::default(),
            got: Default::default(),
        }
    }
}

impl Logic for UartRx {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, sync0, sync1, busy, count, phase, shift, got);
        // Two flip-flops bring the asynchronous line into the clock domain.
        self.sync0.d.next = self.rx.val();
        self.sync1.d.next = self.sync0.q.val();
        self.data.next = self.shift.q.val();
        self.valid.next = self.got.q.val();
        self.got.d.next = false;
        if !self.busy.q.val() {
            if !self.sync1.q.val() {
                self.busy.d.next = true;
                self.count.d.next = self.half.val();
                self.phase.d.next = 0.into();
            }
        } else if self.count.q.val() == 0 {
            self.count.d.next = self.cpb.val();
            self.phase.d.next = self.phase.q.val() + 1;
            if self.phase.q.val() == 0 {
                if self.sync1.q.val() {
                    self.busy.d.next = false;
                }
            } else if self.phase.q.val() == 9 {
                self.busy.d.next = false;
                self.got.d.next = self.sync1.q.val();
            } else {
                if self.sync1.q.val() {
                    self.shift.d.next = (self.shift.q.val() >> 1) | self.msb.val();
                } else {
                    self.shift.d.next = self.shift.q.val() >> 1;
                }
            }
        } else {
            self.count.d.next = (self.count.q.val() - 1) & self.count_mask.val();
        }
    }
}
