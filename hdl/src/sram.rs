//! Synchronous single-clock RAM of run-time depth, written so that Yosys infers block RAM
//! (iCE40 `SB_RAM40_4K`, ECP5 `DP16KD`): one write port, one registered read port,
//! read-before-write on the same address. A memory decodes the low `index_bits(depth)`
//! bits of its addresses (a write whose low bits name no word is dropped), so that the
//! address registers upstream keep no more bits than that.

use rust_hdl::prelude::*;

/// Width of every SRAM address port; the ISA's word addresses are 24 bits.
pub const ADDR_BITS: usize = 24;

/// A RAM of `depth` words of `D`.
#[derive(LogicBlock)]
pub struct SyncRam<D: Synth> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Word read in this cycle; its data appears on `read_data` in the next.
    pub read_address: Signal<In, Bits<ADDR_BITS>>,
    /// The word addressed in the previous cycle (before that cycle's write).
    pub read_data: Signal<Out, D>,
    /// Word written at the end of this cycle when `write_enable`.
    pub write_address: Signal<In, Bits<ADDR_BITS>>,
    /// Data to write.
    pub write_data: Signal<In, D>,
    /// Write this cycle.
    pub write_enable: Signal<In, Bit>,
    _mem: Vec<D>,
    _no_collisions: bool,
}

impl<D: Synth> SyncRam<D> {
    /// A RAM of `depth` words, all zero.
    pub fn new(depth: usize) -> Self {
        assert!((1..=1 << ADDR_BITS).contains(&depth), "depth {depth}");
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            write_enable: Default::default(),
            _mem: vec![D::default(); depth],
            _no_collisions: false,
        }
    }

    /// The RAM of a design that never reads and writes one word in the same cycle (its
    /// units access the same word only in instructions that `Sync` orders): synthesis
    /// need not build the logic that makes such a read return the old word on FPGAs
    /// whose block RAM leaves it undefined (Yosys `no_rw_check`).
    pub fn without_collisions(mut self) -> Self {
        self._no_collisions = true;
        self
    }

    /// Words.
    pub fn depth(&self) -> usize {
        self._mem.len()
    }
}

/// Address bits of a memory of `words` words (at least 1).
pub fn index_bits(words: usize) -> usize {
    (usize::BITS - (words.max(2) - 1).leading_zeros()) as usize
}

impl<D: Synth> Logic for SyncRam<D> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let mask = (1 << index_bits(self.depth())) - 1;
            let read = self.read_address.val().index() & mask;
            self.read_data.next = self._mem.get(read).copied().unwrap_or_default();
            let write = self.write_address.val().index() & mask;
            if self.write_enable.val() && write < self.depth() {
                self._mem[write] = self.write_data.val();
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        let (bits, top) = (D::BITS, index_bits(self.depth()) - 1);
        Verilog::Custom(format!(
            "{attr}reg [{w}:0] mem [0:{last}];\n\
             integer i;\n\
             initial begin\n    for (i = 0; i < {depth}; i = i + 1) mem[i] = 0;\n    read_data = 0;\nend\n\
             always @(posedge clock) begin\n    \
                 if (write_enable && write_address[{top}:0] < {depth}) mem[write_address[{top}:0]] <= write_data;\n    \
                 read_data <= mem[read_address[{top}:0]];\n\
             end",
            attr = if self._no_collisions { "(* no_rw_check *) " } else { "" },
            w = bits - 1,
            last = self.depth() - 1,
            depth = self.depth(),
        ))
    }
}

/// A RAM of `depth` words of `lanes` bytes with a write enable per byte: one block RAM
/// (or a row of them) where a [`SyncRam`] per byte would take one each, since iCE40 and
/// ECP5 block RAMs mask writes per bit. Read and write ports as [`SyncRam`]'s.
#[derive(LogicBlock)]
pub struct ByteRam {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Word read in this cycle; its bytes appear on `read_data` in the next.
    pub read_address: Signal<In, Bits<ADDR_BITS>>,
    /// The word addressed in the previous cycle (before that cycle's writes), byte `k` on
    /// lane `k`.
    pub read_data: Vec<Signal<Out, Signed<8>>>,
    /// Word written at the end of this cycle.
    pub write_address: Signal<In, Bits<ADDR_BITS>>,
    /// Bytes to write.
    pub write_data: Vec<Signal<In, Signed<8>>>,
    /// Write byte `k` of the word this cycle.
    pub write_enable: Vec<Signal<In, Bit>>,
    /// Word `w`'s byte `k` at `w * lanes + k`.
    _mem: Vec<Signed<8>>,
}

impl ByteRam {
    /// A RAM of `depth` words of `lanes` bytes, all zero, whose users never read and write
    /// one word in the same cycle (see [`SyncRam::without_collisions`]).
    pub fn new(lanes: usize, depth: usize) -> Self {
        assert!(lanes >= 1 && (1..=1 << ADDR_BITS).contains(&depth), "{lanes} lanes, depth {depth}");
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: (0..lanes).map(|_| Default::default()).collect(),
            write_address: Default::default(),
            write_data: (0..lanes).map(|_| Default::default()).collect(),
            write_enable: (0..lanes).map(|_| Default::default()).collect(),
            _mem: vec![Signed::default(); lanes * depth],
        }
    }

    /// Words.
    pub fn depth(&self) -> usize {
        self._mem.len() / self.read_data.len()
    }
}

impl Logic for ByteRam {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let lanes = self.read_data.len();
            let mask = (1 << index_bits(self.depth())) - 1;
            let (read, write) = (self.read_address.val().index() & mask, self.write_address.val().index() & mask);
            for k in 0..lanes {
                self.read_data[k].next = self._mem.get(read * lanes + k).copied().unwrap_or_default();
            }
            if write < self.depth() {
                for k in 0..lanes {
                    if self.write_enable[k].val() {
                        self._mem[write * lanes + k] = self.write_data[k].val();
                    }
                }
            }
        }
    }

    fn connect(&mut self) {
        for d in &mut self.read_data {
            d.connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let (lanes, depth) = (self.read_data.len(), self.depth());
        let top = index_bits(depth) - 1;
        let mut v = format!(
            "(* no_rw_check *) reg [{w}:0] mem [0:{last}];\n\
             integer i;\n\
             initial begin\n    for (i = 0; i < {depth}; i = i + 1) mem[i] = 0;\n",
            w = 8 * lanes - 1,
            last = depth - 1,
        );
        for k in 0..lanes {
            v += &format!("    read_data${k} = 0;\n");
        }
        v += "end\nalways @(posedge clock) begin\n";
        for k in 0..lanes {
            v += &format!(
                "    if (write_enable${k} && write_address[{top}:0] < {depth}) mem[write_address[{top}:0]][{hi}:{lo}] <= write_data${k};\n",
                hi = 8 * k + 7,
                lo = 8 * k
            );
        }
        let bytes: Vec<String> = (0..lanes).rev().map(|k| format!("read_data${k}")).collect();
        v += &format!("    {{{}}} <= mem[read_address[{top}:0]];\nend", bytes.join(", "));
        Verilog::Custom(v)
    }
}
