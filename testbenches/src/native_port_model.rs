//! A LiteDRAM native user port in behaviour (not LiteDRAM itself: its own simulation model
//! runs under Verilator in `systole-fpga`'s board simulation): a memory of `port_bytes`-byte
//! words that takes a command or write data when a seeded coin says so and answers reads in
//! order, each after 1 to 8 cycles; writes land when their data is taken.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use systole_hdl::rust_hdl::prelude::*;

/// What the port offers in a cycle.
#[derive(Debug, Clone, Default)]
pub struct PortOffer {
    /// It takes a command.
    pub cmd_ready: bool,
    /// It takes write data.
    pub wdata_ready: bool,
    /// A read word is offered.
    pub rdata: Option<Bits<128>>,
}

/// The port and its memory.
pub struct NativePortModel {
    /// The memory, byte `b` of word `w` at `w * port_bytes + b`.
    pub mem: Vec<u8>,
    port_bytes: usize,
    writes: VecDeque<u64>,
    reads: VecDeque<(u64, u64)>,
    rng: ChaCha8Rng,
    now: u64,
}

impl NativePortModel {
    /// A port of `port_bytes`-byte words over `mem`, its delays drawn from `seed`.
    pub fn new(mem: Vec<u8>, port_bytes: usize, seed: u64) -> Self {
        Self { mem, port_bytes, writes: VecDeque::new(), reads: VecDeque::new(), rng: ChaCha8Rng::seed_from_u64(seed), now: 0 }
    }

    fn word(&self, w: u64) -> Bits<128> {
        let base = (w as usize * self.port_bytes) % self.mem.len();
        let mut word = Bits::<128>::default();
        for (i, &b) in self.mem[base..base + self.port_bytes].iter().enumerate() {
            for j in 0..8 {
                word = word.replace_bit(8 * i + j, b >> j & 1 == 1);
            }
        }
        word
    }

    /// This cycle's offer.
    pub fn offer(&mut self) -> PortOffer {
        let cmd_ready = self.rng.gen_bool(0.6);
        let wdata_ready = !self.writes.is_empty() && self.rng.gen_bool(0.6);
        let rdata = self.reads.front().filter(|r| r.1 <= self.now).map(|r| self.word(r.0));
        PortOffer { cmd_ready, wdata_ready, rdata }
    }

    /// The cycle's handshakes against `offer`: a command offered (write flag, word
    /// address), write data offered (data, byte enables), and whether the read word was
    /// taken; then the next cycle.
    pub fn take(&mut self, offer: &PortOffer, cmd: Option<(bool, u64)>, wdata: Option<(Bits<128>, u64)>, rdata_taken: bool) {
        if let (true, Some((we, addr))) = (offer.cmd_ready, cmd) {
            if we {
                self.writes.push_back(addr);
            } else {
                let after = self.reads.back().map_or(0, |r| r.1);
                let at = (self.now + self.rng.gen_range(1..=8)).max(after);
                self.reads.push_back((addr, at));
            }
        }
        if let (true, Some((data, mask))) = (offer.wdata_ready, wdata) {
            let w = self.writes.pop_front().expect("write data comes after its command") as usize;
            let base = (w * self.port_bytes) % self.mem.len();
            for b in 0..self.port_bytes {
                if mask >> b & 1 == 1 {
                    self.mem[base + b] = data.get_bits::<8>(8 * b).to_u8();
                }
            }
        }
        if offer.rdata.is_some() && rdata_taken {
            self.reads.pop_front();
        }
        self.now += 1;
    }
}
