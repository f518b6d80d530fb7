//! The walk over a `DramPattern` that the DMA engines share: runs in loop order, each cut
//! into `max(1, ceil(len / B))` beats of at most `B` bytes. Written once as a Rust model
//! ([`BeatWalk`]) and once as Verilog snippets ([`verilog`]) that the engines splice in.

/// Position in a pattern: loop indices, the start address of each level's current
/// iteration (`base[2]` is the current run), the beat within the run and the run number.
#[derive(Clone, Copy, Debug, Default)]
pub struct BeatWalk {
    count: [u32; 3],
    stride: [u32; 3],
    idx: [u32; 3],
    base: [u32; 3],
    /// Beat within the current run.
    pub beat: usize,
    /// Runs completed.
    pub run: u32,
    beats_per_run: usize,
}

impl BeatWalk {
    /// The start of the pattern at byte `addr` with `count` and two's-complement `stride`
    /// per level (outermost first), `len` bytes per run, `lanes` bytes per beat.
    pub fn new(addr: u32, count: [u32; 3], stride: [u32; 3], len: usize, lanes: usize) -> Self {
        Self { count, stride, idx: [0; 3], base: [addr; 3], beat: 0, run: 0, beats_per_run: len.div_ceil(lanes).max(1) }
    }

    /// True when the pattern has at least one run.
    pub fn nonempty(&self) -> bool {
        self.count.iter().all(|&c| c > 0)
    }

    /// DRAM address of the current beat.
    pub fn beat_addr(&self, lanes: usize) -> u32 {
        self.base[2].wrapping_add((self.beat * lanes) as u32)
    }

    /// Moves to the next beat; false when the current one was the last.
    pub fn advance(&mut self) -> bool {
        if self.beat + 1 < self.beats_per_run {
            self.beat += 1;
            return true;
        }
        self.beat = 0;
        self.run = self.run.wrapping_add(1);
        for level in (0..3).rev() {
            if self.idx[level] + 1 < self.count[level] {
                self.idx[level] += 1;
                self.base[level] = self.base[level].wrapping_add(self.stride[level]);
                for inner in level + 1..3 {
                    self.idx[inner] = 0;
                    self.base[inner] = self.base[level];
                }
                return true;
            }
        }
        false
    }
}

/// The same walk in Verilog, over registers `c0..c2`, `s0..s2`, `i0..i2`, `b0..b2`, `beat`,
/// `bpr` and `run`.
pub mod verilog {
    /// Register declarations and their reset values.
    pub const DECLS: &str = "reg [23:0] c0, c1, c2, i0, i1, i2, run;
reg [31:0] s0, s1, s2, b0, b1, b2;
reg [15:0] beat, bpr;
initial begin c0 = 0; c1 = 0; c2 = 0; i0 = 0; i1 = 0; i2 = 0; run = 0; s0 = 0; s1 = 0; s2 = 0; b0 = 0; b1 = 0; b2 = 0; beat = 0; bpr = 0; end
";

    /// Non-blocking assignments that start a walk from the field ports `addr`, `len`,
    /// `count$i`, `stride$i`.
    pub fn start(lanes: usize) -> String {
        format!(
            "c0 <= count$0; c1 <= count$1; c2 <= count$2; s0 <= stride$0; s1 <= stride$1; s2 <= stride$2;
        i0 <= 0; i1 <= 0; i2 <= 0; b0 <= addr; b1 <= addr; b2 <= addr; beat <= 0; run <= 0;
        bpr <= (len == 0) ? 16'd1 : (len + {lanes} - 1) / {lanes};"
        )
    }

    /// Non-blocking assignments that advance the walk by one beat, running `last` after the
    /// final beat.
    pub fn advance(last: &str) -> String {
        format!(
            "if (beat + 1 < bpr) beat <= beat + 1;
        else begin
            beat <= 0;
            run <= run + 1;
            if (i2 + 1 < c2) begin i2 <= i2 + 1; b2 <= b2 + s2; end
            else if (i1 + 1 < c1) begin i1 <= i1 + 1; i2 <= 0; b1 <= b1 + s1; b2 <= b1 + s1; end
            else if (i0 + 1 < c0) begin i0 <= i0 + 1; i1 <= 0; i2 <= 0; b0 <= b0 + s0; b1 <= b0 + s0; b2 <= b0 + s0; end
            else {last}
        end"
        )
    }

    /// The current beat's DRAM address.
    pub fn beat_addr(lanes: usize) -> String {
        format!("b2 + {{16'd0, beat}} * {lanes}")
    }
}
