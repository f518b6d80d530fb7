//! The host bridge protocol: how a host drives an accelerator on a board over a UART
//! (8N1, least significant byte first in every multi-byte field). The RTL bridge
//! (`systole-hdl`'s `bridge`) and the host client (`systole-fpga`'s `host`) both follow
//! this module, and docs/ARCHITECTURE.md section 10 describes it.
//!
//! | command | host sends | board answers |
//! |---|---|---|
//! | [`CMD_IDENTIFY`] | nothing more | the [`IDENTITY_BYTES`]-byte [`Identity`] |
//! | [`CMD_WRITE`] | address u32, length u32, the bytes | [`ACK`] once written |
//! | [`CMD_READ`] | address u32, length u32 | the bytes |
//! | [`CMD_INSTR`] | unit u8 (0 load, 1 exec, 2 store), index u16, the 64 bytes of `Instr::encode` packed for the board's controller (`systole_hdl::controller::InstrFormat`) | [`ACK`] |
//! | [`CMD_RUN`] | load, exec and store instruction counts, u16 each | the program's cycles, u48, once it has finished |
//! | [`CMD_STALLS`] | nothing more | a board whose memory holds the core's clock (LiteDRAM): [`ACK`], then the cycles it held it while the last program ran, u48; any other board: [`NAK`] (its memory never stalls) |
//!
//! Any other command byte is answered with [`NAK`] and ignored. Memory addresses wrap
//! at the board memory's size.

use crate::ArchConfig;

/// Ask the board what it holds.
pub const CMD_IDENTIFY: u8 = b'?';
/// Write bytes to board memory.
pub const CMD_WRITE: u8 = b'W';
/// Read bytes from board memory.
pub const CMD_READ: u8 = b'R';
/// Write one instruction into a unit's instruction memory.
pub const CMD_INSTR: u8 = b'I';
/// Run the program and answer its cycle count when it has finished.
pub const CMD_RUN: u8 = b'G';
/// Ask how many cycles the memory held the core's clock during the last program.
pub const CMD_STALLS: u8 = b'S';
/// A command was carried out.
pub const ACK: u8 = 0x06;
/// The command byte is unknown.
pub const NAK: u8 = 0x15;
/// The first four bytes of [`Identity`].
pub const MAGIC: [u8; 4] = *b"SYS1";
/// Bytes of an encoded [`Identity`].
pub const IDENTITY_BYTES: usize = 16;
/// Bytes of the cycle count that answers [`CMD_RUN`].
pub const CYCLE_BYTES: usize = 6;

/// What a board's bitstream holds, as [`CMD_IDENTIFY`] answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// [`fingerprint`] of the ArchConfig the accelerator was built from.
    pub arch: u32,
    /// Instructions per unit.
    pub instr_depth: u16,
    /// The UART's core clocks per bit: times the baud rate, the core clock, from which a
    /// host knows how long a program runs.
    pub clocks_per_bit: u16,
    /// Board memory in bytes.
    pub memory_bytes: u32,
}

impl Identity {
    /// The 16 bytes: [`MAGIC`], `arch` u32, `instr_depth` u16, `clocks_per_bit` u16,
    /// `memory_bytes` u32.
    pub fn encode(&self) -> [u8; IDENTITY_BYTES] {
        let mut b = [0; IDENTITY_BYTES];
        b[..4].copy_from_slice(&MAGIC);
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..10].copy_from_slice(&self.instr_depth.to_le_bytes());
        b[10..12].copy_from_slice(&self.clocks_per_bit.to_le_bytes());
        b[12..16].copy_from_slice(&self.memory_bytes.to_le_bytes());
        b
    }

    /// Decodes [`Identity::encode`]'s bytes; `None` without the magic.
    pub fn decode(b: &[u8; IDENTITY_BYTES]) -> Option<Self> {
        (b[..4] == MAGIC).then(|| Self {
            arch: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            instr_depth: u16::from_le_bytes([b[8], b[9]]),
            clocks_per_bit: u16::from_le_bytes([b[10], b[11]]),
            memory_bytes: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        })
    }
}

/// A 32-bit FNV-1a hash of every parameter of `arch` that shapes the hardware or its
/// timing (everything but `name` and `clock_mhz`), so that a host can tell whether a
/// board runs the accelerator a program was compiled for.
pub fn fingerprint(arch: &ArchConfig) -> u32 {
    let fields = [
        arch.rows,
        arch.cols,
        arch.dataflow as usize,
        arch.act_sram_kib,
        arch.wgt_sram_kib,
        arch.acc_sram_kib,
        arch.param_entries,
        arch.dram_bytes_per_cycle,
        arch.dram_latency,
        arch.transposer as usize,
        arch.fetch_cycles,
        arch.requant_stages,
        arch.pe_stages,
        arch.acc_stages,
        arch.decode_stages,
        arch.dram_read_stages,
    ];
    // Newer parameters enter only when set, so that older instances keep their fingerprint.
    // After `edge_stages`, each enters with a tag above 16 bits, so that two of them cannot
    // stand for each other (`edge_stages` predates the tags and enters untagged).
    let newer = [arch.edge_stages].into_iter().filter(|&v| v != 0);
    let tagged = [
        (arch.requant_interval != 1).then_some((1 << 16) | arch.requant_interval),
        arch.weight_broadcast.then_some(2 << 16),
        arch.staggered_act_reads.then_some(3 << 16),
        arch.dram_single_port.then_some(4 << 16),
    ];
    let fields = fields.into_iter().chain(newer).chain(tagged.into_iter().flatten());
    let mut h: u32 = 0x811c_9dc5;
    for v in fields {
        for byte in (v as u64).to_le_bytes() {
            h = (h ^ byte as u32).wrapping_mul(0x0100_0193);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_starts_with_the_magic() {
        let id = Identity { arch: 0xdead_beef, instr_depth: 300, clocks_per_bit: 109, memory_bytes: 65536 };
        let b = id.encode();
        assert_eq!(&b[..4], b"SYS1");
        assert_eq!(b[8..12], [44, 1, 109, 0]);
        assert_eq!(Identity::decode(&b), Some(id));
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(Identity::decode(&bad), None);
    }

    #[test]
    fn fingerprint_follows_hardware_parameters_only() {
        let a = ArchConfig::preset_4x4();
        let renamed = ArchConfig { name: "other".into(), clock_mhz: 12.0, ..a.clone() };
        assert_eq!(fingerprint(&a), fingerprint(&renamed));
        let deeper = ArchConfig { dram_latency: a.dram_latency + 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&deeper));
        let pipelined = ArchConfig { requant_stages: a.requant_stages + 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&pipelined));
        let serial = ArchConfig { requant_interval: 6, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&serial));
        let staged = ArchConfig { pe_stages: 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&staged));
        let acc_staged = ArchConfig { acc_stages: 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&acc_staged));
        let decoded = ArchConfig { decode_stages: 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&decoded));
        let edged = ArchConfig { edge_stages: 1, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&edged));
        let read_staged = ArchConfig { dram_read_stages: 1, transposer: false, ..a.clone() };
        assert_ne!(fingerprint(&ArchConfig { transposer: false, ..a.clone() }), fingerprint(&read_staged));
        let broadcast = ArchConfig { weight_broadcast: true, ..a.clone() };
        assert_ne!(fingerprint(&a), fingerprint(&broadcast));
        assert_ne!(fingerprint(&serial), fingerprint(&ArchConfig { weight_broadcast: true, ..serial.clone() }));
        let staggered = ArchConfig { staggered_act_reads: true, ..a.clone() };
        assert_ne!(fingerprint(&broadcast), fingerprint(&staggered));
    }
}
