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
    _no_read_init: bool,
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
            _no_read_init: false,
        }
    }

    /// The RAM of a design that never uses its read data before its first read: the
    /// Verilog gives the read register no initial value, which block RAM output registers
    /// do not have (iCE40), so synthesis adds no logic to hold the output at 0 until the
    /// first read (for a memory of instruction parts, a logic cell per part bit). The
    /// model still starts at 0, which no user can tell from any other value.
    pub fn without_read_init(mut self) -> Self {
        self._no_read_init = true;
        self
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
             initial begin\n    for (i = 0; i < {depth}; i = i + 1) mem[i] = 0;\n{read_init}end\n\
             always @(posedge clock) begin\n    \
                 if (write_enable && write_address[{top}:0] < {depth}) mem[write_address[{top}:0]] <= write_data;\n    \
                 read_data <= mem[read_address[{top}:0]];\n\
             end",
            attr = if self._no_collisions { "(* no_rw_check *) " } else { "" },
            read_init = if self._no_read_init { "" } else { "    read_data = 0;\n" },
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
    /// Staggered reads ([`ByteRam::staggered`]): lanes per group (0: not staggered), the
    /// read addresses of the last cycles (latest first), and per lane its data registers
    /// after the group's read (latest first).
    _group: usize,
    _addresses: Vec<usize>,
    _lane_regs: Vec<Vec<Signed<8>>>,
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
            _group: 0,
            _addresses: vec![],
            _lane_regs: vec![vec![]; lanes],
        }
    }

    /// The RAM read with a stagger: lane `k` of `read_data` is byte `k` of the word
    /// addressed `k + 1` cycles before, instead of one. The lanes are kept in groups of
    /// `group` consecutive lanes (one block RAM each: 2 for an iCE40 block RAM's 16 bits),
    /// group `m` reading at the address of `group * m` cycles before, its lane `i` through
    /// `i` registers more: a line of address registers and a few data registers instead of
    /// `k` registers per lane downstream. A word written between two of its lanes' reads
    /// shows its new bytes in the later lanes; its users never do that.
    pub fn staggered(mut self, group: usize) -> Self {
        let lanes = self.read_data.len();
        assert!(group >= 1 && lanes.is_multiple_of(group), "{lanes} lanes in groups of {group}");
        self._group = group;
        self._addresses = vec![0; lanes - group];
        self._lane_regs = (0..lanes).map(|k| vec![Signed::default(); k % group]).collect();
        self
    }

    /// Words.
    pub fn depth(&self) -> usize {
        self._mem.len() / self.read_data.len()
    }

    /// A staggered read at an edge whose read address is `read`: each group reads at its
    /// address, each lane's byte enters its registers, and the address line moves on.
    fn read_staggered(&mut self, read: usize) {
        let lanes = self.read_data.len();
        for k in 0..lanes {
            let at = self.group_address(k / self._group, read);
            let byte = self._mem.get(at * lanes + k).copied().unwrap_or_default();
            let regs = &mut self._lane_regs[k];
            regs.insert(0, byte);
            self.read_data[k].next = regs.pop().expect("the read register");
        }
        if !self._addresses.is_empty() {
            self._addresses.pop();
            self._addresses.insert(0, read);
        }
    }

    /// The address group `m` reads at this edge: the current one, or the one `group * m`
    /// cycles before.
    fn group_address(&self, m: usize, now: usize) -> usize {
        if m == 0 {
            now
        } else {
            self._addresses[self._group * m - 1]
        }
    }
}

impl Logic for ByteRam {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let lanes = self.read_data.len();
            let mask = (1 << index_bits(self.depth())) - 1;
            let (read, write) = (self.read_address.val().index() & mask, self.write_address.val().index() & mask);
            match lanes.checked_div(self._group) {
                None => {
                    for k in 0..lanes {
                        self.read_data[k].next = self._mem.get(read * lanes + k).copied().unwrap_or_default();
                    }
                }
                Some(_) => self.read_staggered(read),
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
        if self._group > 0 {
            return self.staggered_hdl();
        }
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

impl ByteRam {
    /// The Verilog of a staggered RAM: one memory `mem{m}` per group, group `m` reading at
    /// `a{g*m}` (the address `g * m` cycles old, from a line of address registers), and
    /// lane `k` of a group through `k % g` registers `s{k}_{i}` after the group's read.
    fn staggered_hdl(&self) -> Verilog {
        let (lanes, depth, g) = (self.read_data.len(), self.depth(), self._group);
        let top = index_bits(depth) - 1;
        let mut decl = String::new();
        let mut body = String::from("always @(posedge clock) begin\n");
        for j in 1..=lanes - g {
            decl += &format!("reg [{top}:0] a{j} = 0;\n");
            let prev = if j == 1 { format!("read_address[{top}:0]") } else { format!("a{}", j - 1) };
            body += &format!("    a{j} <= {prev};\n");
        }
        for m in 0..lanes / g {
            decl += &format!("(* no_rw_check *) reg [{}:0] mem{m} [0:{}];\n", 8 * g - 1, depth - 1);
            let at = if m == 0 { format!("read_address[{top}:0]") } else { format!("a{}", g * m) };
            for i in 0..g {
                let k = g * m + i;
                let (hi, lo) = (8 * i + 7, 8 * i);
                body += &format!(
                    "    if (write_enable${k} && write_address[{top}:0] < {depth}) mem{m}[write_address[{top}:0]][{hi}:{lo}] <= write_data${k};\n"
                );
                let byte = format!("mem{m}[{at}][{hi}:{lo}]");
                if i == 0 {
                    body += &format!("    read_data${k} <= {byte};\n");
                    continue;
                }
                for r in 1..=i {
                    decl += &format!("reg [7:0] s{k}_{r} = 0;\n");
                    let from = if r == 1 { byte.clone() } else { format!("s{k}_{}", r - 1) };
                    body += &format!("    s{k}_{r} <= {from};\n");
                }
                body += &format!("    read_data${k} <= s{k}_{i};\n");
            }
        }
        let mut init = String::from("integer i;\ninitial begin\n");
        for m in 0..lanes / g {
            init += &format!("    for (i = 0; i < {depth}; i = i + 1) mem{m}[i] = 0;\n");
        }
        for k in 0..lanes {
            init += &format!("    read_data${k} = 0;\n");
        }
        init += "end\n";
        Verilog::Custom(format!("{decl}{init}{body}end"))
    }
}
