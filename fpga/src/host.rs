//! The host side of the board protocol (`systole_core::bridge`): a client over any byte
//! stream, a serial port on a real board or a simulated UART in the tests.

pub use serialport::SerialPort;
use std::io::{Read, Write};
use systole_core::bridge::{
    fingerprint, Identity, ACK, CMD_IDENTIFY, CMD_INSTR, CMD_READ, CMD_RUN, CMD_STALLS, CMD_WRITE, CYCLE_BYTES, IDENTITY_BYTES, NAK,
};
use systole_core::isa::Unit;
use systole_core::{ArchConfig, Program};
use systole_hdl::controller::InstrFormat;

/// Why talking to a board failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The byte stream failed or timed out.
    #[error("{what}: {source} (is the board programmed with a Systole bitstream and connected at this baud rate?)")]
    Io {
        /// What the host was doing.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The board answered something the protocol does not allow.
    #[error("{what}: the board answered {got:#04x}, expected {expected:#04x}")]
    Protocol {
        /// What the host was doing.
        what: String,
        /// The byte received.
        got: u8,
        /// The byte the protocol asks for.
        expected: u8,
    },
    /// The board does not identify as a Systole accelerator.
    #[error("the board's identity {0:02x?} lacks the magic `SYS1`; it does not run a Systole bitstream")]
    NotSystole([u8; IDENTITY_BYTES]),
    /// The board runs a different accelerator.
    #[error("the board's accelerator has fingerprint {board:#010x}, but the program is for `{arch}` ({want:#010x}); rebuild the bitstream with `systole fpga build --arch` of that config, or compile for the board's")]
    WrongArch {
        /// Fingerprint on the board.
        board: u32,
        /// Fingerprint of the program's ArchConfig.
        want: u32,
        /// The program's ArchConfig name.
        arch: String,
    },
    /// The serial port could not be opened.
    #[error("cannot open serial port {path} at {baud} baud: {source}")]
    Port {
        /// The port.
        path: String,
        /// The baud rate.
        baud: u32,
        /// Why.
        source: serialport::Error,
    },
    /// The program does not fit the board.
    #[error("{0}")]
    TooLarge(String),
}

/// A board running a Systole bitstream, behind a byte stream.
pub struct Host<P> {
    port: P,
    /// The board memory's size, once [`Host::identify`] has asked: reads and writes must
    /// stay within it (the board keeps only the address and length bits it decodes).
    memory_bytes: Option<u32>,
}

/// What a program run on a board produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRun {
    /// The memory image with the program's outputs read back from the board.
    pub dram: Vec<u8>,
    /// The program's cycles as the board counted them.
    pub cycles: u64,
}

impl<P: Read + Write> Host<P> {
    /// A client on `port`.
    pub fn new(port: P) -> Self {
        Self { port, memory_bytes: None }
    }

    /// The byte stream, e.g. to change its time-out.
    pub fn port_mut(&mut self) -> &mut P {
        &mut self.port
    }

    /// The byte stream back.
    pub fn into_inner(self) -> P {
        self.port
    }

    fn send(&mut self, what: &str, bytes: &[u8]) -> Result<(), HostError> {
        self.port.write_all(bytes).and_then(|()| self.port.flush()).map_err(|source| HostError::Io { what: what.into(), source })
    }

    fn receive(&mut self, what: &str, n: usize) -> Result<Vec<u8>, HostError> {
        let mut buf = vec![0; n];
        self.port.read_exact(&mut buf).map_err(|source| HostError::Io { what: what.into(), source })?;
        Ok(buf)
    }

    fn expect_ack(&mut self, what: &str) -> Result<(), HostError> {
        match self.receive(what, 1)?[0] {
            ACK => Ok(()),
            got => Err(HostError::Protocol { what: what.into(), got, expected: ACK }),
        }
    }

    /// Asks the board what it holds.
    pub fn identify(&mut self) -> Result<Identity, HostError> {
        let what = "identify";
        self.send(what, &[CMD_IDENTIFY])?;
        let got: [u8; IDENTITY_BYTES] = self.receive(what, IDENTITY_BYTES)?.try_into().expect("receive returns n bytes");
        let id = Identity::decode(&got).ok_or(HostError::NotSystole(got))?;
        self.memory_bytes = Some(id.memory_bytes);
        Ok(id)
    }

    /// Refuses an access of `len` bytes at `addr` beyond the board memory (when known).
    fn check_range(&self, what: &str, addr: u32, len: u64) -> Result<(), HostError> {
        match self.memory_bytes {
            Some(size) if u64::from(addr) + len > u64::from(size) => Err(HostError::TooLarge(format!(
                "{what}: the board memory holds {size} bytes (0x0 to {:#x}); build the bitstream with a larger --mem-kib, or keep the access within it",
                size.saturating_sub(1)
            ))),
            _ => Ok(()),
        }
    }

    /// Writes `bytes` to board memory at `addr`: within the memory, once [`Host::identify`]
    /// has told its size.
    pub fn write_memory(&mut self, addr: u32, bytes: &[u8]) -> Result<(), HostError> {
        let what = format!("write {} bytes at {addr:#x}", bytes.len());
        let len = u32::try_from(bytes.len()).map_err(|_| HostError::TooLarge(format!("{what}: more than 4 GiB")))?;
        self.check_range(&what, addr, u64::from(len))?;
        let mut msg = vec![CMD_WRITE];
        msg.extend(addr.to_le_bytes());
        msg.extend(len.to_le_bytes());
        msg.extend(bytes);
        self.send(&what, &msg)?;
        self.expect_ack(&what)
    }

    /// Reads `len` bytes of board memory at `addr`: within the memory, once
    /// [`Host::identify`] has told its size.
    pub fn read_memory(&mut self, addr: u32, len: u32) -> Result<Vec<u8>, HostError> {
        if len == 0 {
            return Ok(vec![]);
        }
        let what = format!("read {len} bytes at {addr:#x}");
        self.check_range(&what, addr, u64::from(len))?;
        let mut msg = vec![CMD_READ];
        msg.extend(addr.to_le_bytes());
        msg.extend(len.to_le_bytes());
        self.send(&what, &msg)?;
        self.receive(&what, len as usize)
    }

    /// Writes one instruction, packed as the board's controller holds it (its 64-byte image
    /// from [`packed_instructions`]), as `index` of `unit`'s instruction memory.
    pub fn write_instr(&mut self, unit: Unit, index: u16, image: &[u8; 64]) -> Result<(), HostError> {
        let what = format!("write {unit:?} instruction {index}");
        let mut msg = vec![CMD_INSTR, unit.index() as u8];
        msg.extend(index.to_le_bytes());
        msg.extend(image);
        self.send(&what, &msg)?;
        self.expect_ack(&what)
    }

    /// Runs the loaded program with `counts` instructions per unit (load, exec, store) and
    /// answers its cycles.
    pub fn start(&mut self, counts: [u16; 3]) -> Result<u64, HostError> {
        let what = "run the program";
        let mut msg = vec![CMD_RUN];
        msg.extend(counts.iter().flat_map(|c| c.to_le_bytes()));
        self.send(what, &msg)?;
        let got = self.receive(what, CYCLE_BYTES)?;
        Ok(little_endian(&got))
    }

    /// The cycles the board's memory held the core's clock while the last program ran:
    /// `None` from a board whose memory never holds it (it answers `CMD_STALLS` with
    /// `NAK`), so that its cycle counter alone tells the run's length.
    pub fn stalls(&mut self) -> Result<Option<u64>, HostError> {
        let what = "ask for the stall cycles";
        self.send(what, &[CMD_STALLS])?;
        match self.receive(what, 1)?[0] {
            NAK => Ok(None),
            ACK => {
                let got = self.receive(what, CYCLE_BYTES)?;
                Ok(Some(little_endian(&got)))
            }
            got => Err(HostError::Protocol { what: what.into(), got, expected: ACK }),
        }
    }

    /// Writes `program`'s instructions (no more per unit than the board's instruction
    /// memories hold) into the board's instruction memories and runs it on what the board
    /// memory holds; answers its cycles.
    pub fn load_and_start(&mut self, id: &Identity, arch: &ArchConfig, program: &Program) -> Result<u64, HostError> {
        let images = packed_instructions(id, arch, program)?;
        for unit in Unit::ALL {
            for (index, image) in images[unit.index()].iter().enumerate() {
                self.write_instr(unit, index as u16, image)?;
            }
        }
        self.start(images.map(|i| i.len() as u16))
    }

    /// Runs `program` of `arch` on the board from the memory image `dram` (see
    /// `Program::dram_with_inputs`): checks them against the board's identity `id` (from
    /// [`Host::identify`]), writes the whole image and every instruction, runs, and reads
    /// the outputs back into the image.
    pub fn run_program(&mut self, id: &Identity, arch: &ArchConfig, program: &Program, dram: &[u8]) -> Result<BoardRun, HostError> {
        let want = fingerprint(arch);
        if id.arch != want {
            return Err(HostError::WrongArch { board: id.arch, want, arch: arch.name.clone() });
        }
        if dram.len() > id.memory_bytes as usize {
            return Err(HostError::TooLarge(format!(
                "the program needs {} bytes of memory, the board has {}; build the bitstream with a larger --mem-kib, or run a smaller layer",
                dram.len(),
                id.memory_bytes
            )));
        }
        fits_instruction_memories(id, program)?;
        self.write_memory(0, dram)?;
        let cycles = self.load_and_start(id, arch, program)?;
        let mut image = dram.to_vec();
        for out in &program.outputs {
            let (addr, size) = (out.addr as usize, out.size());
            let bytes = self.read_memory(out.addr as u32, size as u32)?;
            image[addr..addr + size].copy_from_slice(&bytes);
        }
        Ok(BoardRun { dram: image, cycles })
    }
}

/// The value of `bytes`, least significant first (the protocol's counts).
fn little_endian(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

/// `program`'s instructions as the board's instruction memories hold them, per unit (load,
/// exec, store): each the 64 bytes (`InstrFormat::pack`'s words, little-endian) that the
/// protocol's `I` command carries. Refuses a program with more instructions in a unit than
/// the memories hold.
pub fn packed_instructions(id: &Identity, arch: &ArchConfig, program: &Program) -> Result<[Vec<[u8; 64]>; 3], HostError> {
    fits_instruction_memories(id, program)?;
    // The board's controller holds instructions in the format of its instruction depth and
    // memory size (`BoardCore::new`).
    let format = InstrFormat::new(arch, usize::from(id.instr_depth), id.memory_bytes.trailing_zeros() as usize);
    let mut images: [Vec<[u8; 64]>; 3] = Default::default();
    for instr in &program.instrs {
        let unit = instr.op.unit();
        let words = instr.encode().map_err(|e| HostError::TooLarge(format!("instruction `{instr}`: {e}")))?;
        let mut image = [0u8; 64];
        for (bytes, word) in image.chunks_mut(8).zip(format.pack(unit, &words)) {
            bytes.copy_from_slice(&word.to_le_bytes());
        }
        images[unit.index()].push(image);
    }
    Ok(images)
}

/// Refuses a program with more instructions in a unit than the board's memories hold.
fn fits_instruction_memories(id: &Identity, program: &Program) -> Result<(), HostError> {
    let counts = Unit::ALL.map(|u| program.count(u));
    match counts.iter().find(|&&n| n > id.instr_depth as usize) {
        Some(&n) => Err(HostError::TooLarge(format!(
            "a unit of the program has {n} instructions, the board's instruction memories hold {}; build the bitstream with a larger --instr-depth",
            id.instr_depth
        ))),
        None => Ok(()),
    }
}

/// Opens the serial port `path` at `baud` 8N1, with reads that give up after `timeout`.
pub fn open_serial(path: &str, baud: u32, timeout: std::time::Duration) -> Result<Box<dyn serialport::SerialPort>, HostError> {
    serialport::new(path, baud).timeout(timeout).open().map_err(|source| HostError::Port { path: path.into(), baud, source })
}
