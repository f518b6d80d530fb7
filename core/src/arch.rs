//! The accelerator's parameters.
//!
//! One struct drives the compiler's constants, the simulator and the RTL generator.
//! Presets are built by struct update from [`ArchConfig::default`], in the manner of
//! Gemmini's `GemminiArrayConfig`; derived quantities are methods.

use crate::error::{parse_toml, ConfigError, LoadError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Which operand stays in the processing elements while the other streams through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Dataflow {
    /// A `rows x cols` weight tile is held in the PEs; input rows stream through.
    #[serde(rename = "ws")]
    WeightStationary,
    /// Each PE holds one output's accumulator; inputs and weights stream past it.
    #[serde(rename = "os")]
    OutputStationary,
    /// Both engines around one set of scratchpads and accumulators: the compiler picks the
    /// dataflow per layer. A program uses one of them (docs/ARCHITECTURE.md section 5).
    #[serde(rename = "both")]
    Both,
}

impl Dataflow {
    /// Whether the instance has the weight-stationary engine.
    pub fn has_ws(self) -> bool {
        matches!(self, Dataflow::WeightStationary | Dataflow::Both)
    }

    /// Whether the instance has the output-stationary engine.
    pub fn has_os(self) -> bool {
        matches!(self, Dataflow::OutputStationary | Dataflow::Both)
    }
}

impl std::fmt::Display for Dataflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dataflow::WeightStationary => "ws",
            Dataflow::OutputStationary => "os",
            Dataflow::Both => "both",
        })
    }
}

/// Structured weight sparsity: how many weights of every group of [`NM_GROUP`] consecutive
/// reduction indices (input channels of one tap) a weight-stationary tile keeps. As an
/// [`ArchConfig`] field it is the sparsest format the WS engine can skip (`"1:4"` also runs
/// `"2:4"`); on a `MatmulWs` it is the format of the instruction's tile (docs/ARCHITECTURE.md
/// section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, Default)]
pub enum Sparsity {
    /// Every weight stored: `rows` words per tile.
    #[default]
    #[serde(rename = "dense")]
    Dense,
    /// At most 2 of every 4 weights nonzero: twice the reduction per pass.
    #[serde(rename = "2:4")]
    TwoOfFour,
    /// At most 1 of every 4 weights nonzero: four times the reduction per pass.
    #[serde(rename = "1:4")]
    OneOfFour,
}

/// Reduction indices per sparsity group (the `M` of N:M).
pub const NM_GROUP: usize = 4;

impl Sparsity {
    /// Every format, densest first.
    pub const ALL: [Sparsity; 3] = [Sparsity::Dense, Sparsity::TwoOfFour, Sparsity::OneOfFour];

    /// Weights kept per group of [`NM_GROUP`] (the `N` of N:M).
    pub fn kept(self) -> usize {
        match self {
            Sparsity::Dense => 4,
            Sparsity::TwoOfFour => 2,
            Sparsity::OneOfFour => 1,
        }
    }

    /// Reduction indices one PE row covers: activation words read per cycle (`4 / N`).
    pub fn expansion(self) -> usize {
        NM_GROUP / self.kept()
    }

    /// The densest format that holds groups with at most `nonzeros` nonzero weights.
    pub fn for_nonzeros(nonzeros: usize) -> Sparsity {
        match nonzeros {
            0 | 1 => Sparsity::OneOfFour,
            2 => Sparsity::TwoOfFour,
            _ => Sparsity::Dense,
        }
    }
}

impl std::fmt::Display for Sparsity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sparsity::Dense => "dense",
            Sparsity::TwoOfFour => "2:4",
            Sparsity::OneOfFour => "1:4",
        })
    }
}

/// Parameters of one accelerator instance. See `docs/ARCHITECTURE.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchConfig {
    /// A short name for reports.
    pub name: String,
    /// PE rows: the reduction (K) dimension in WS, the output-pixel dimension in OS.
    pub rows: usize,
    /// PE columns: the output-channel (N) dimension in both dataflows.
    pub cols: usize,
    /// The dataflow this instance is built for.
    pub dataflow: Dataflow,
    /// Activation scratchpad size in KiB; its words are `rows` bytes wide.
    pub act_sram_kib: usize,
    /// Weight scratchpad size in KiB; its words are `cols` bytes wide.
    pub wgt_sram_kib: usize,
    /// Accumulator size in KiB; its rows are `cols` int32 values wide.
    pub acc_sram_kib: usize,
    /// Entries of the per-channel requantization table (bias and scale per channel).
    pub param_entries: usize,
    /// DRAM bandwidth in bytes per cycle, for reads and for writes separately.
    pub dram_bytes_per_cycle: usize,
    /// Fixed DRAM latency in cycles, paid once per DMA instruction (at least 2).
    pub dram_latency: usize,
    /// Clock frequency in MHz, for reporting time and throughput.
    pub clock_mhz: f64,
    /// The transposer and the two ops that use it, `LoadTransposed` and `StoreTransposed`
    /// (docs/ARCHITECTURE.md section 5). Without it the compiler maps depthwise layers as
    /// grouped GEMMs, and only the WS dataflow is available (OS builds its activation words
    /// with the transposer).
    #[serde(default = "default_true")]
    pub transposer: bool,
    /// Cycles the controller takes to fetch one instruction: its instruction memories are
    /// `512 / fetch_cycles` bits wide. 1 (the default) holds whole instructions; 2, 4 or 8
    /// narrow the memories for small FPGAs, at a cost in the timing model (section 5).
    #[serde(default = "default_one")]
    pub fetch_cycles: usize,
    /// The sparsest N:4 weight format the WS engine skips (`"dense"`, the default, `"2:4"`
    /// or `"1:4"`): the activation scratchpad is built of `expansion()` banks read together
    /// and every PE selects its activation from a group of four (docs/ARCHITECTURE.md
    /// section 3).
    #[serde(default)]
    pub sparsity: Sparsity,
    /// Packed int4 weights in the WS engine: a PE's 8-bit weight register holds two int4
    /// weights and its 8x8 multiplier works as two 8x4 ones, so a layer with int4 weights
    /// takes half the passes (docs/ARCHITECTURE.md section 3). Needs two activation banks.
    #[serde(default)]
    pub int4_weights: bool,
    /// CSC weight tiles in the WS engine: a tile of unstructured-sparse weights is stored
    /// as a presence bitmap and, per column, its nonzeros; the preload expands it, taking
    /// one cycle per mask word and per value word instead of one per row
    /// (docs/ARCHITECTURE.md section 3).
    #[serde(default)]
    pub csc_weights: bool,
    /// int4 x int4 layers at four MACs per PE and cycle (bit fusion): with `int4_weights`,
    /// each PE's weight register grows to 16 bits (four int4 weights) and its 8x8
    /// multiplier works as four 4x4 ones, taking four activation lanes of a K-step of four
    /// banks (docs/ARCHITECTURE.md section 3). Needs `int4_weights`; builds four activation
    /// banks.
    #[serde(default)]
    pub int4_activations: bool,
    /// Pipeline registers in each requantization unit of the store path, 0 to
    /// [`MAX_REQUANT_STAGES`] (default 2). Each one shortens the unit's longest path and
    /// costs its width in flip-flops; the store engines read that many cycles ahead inside
    /// their DRAM wait, which grows to [`ArchConfig::store_latency`] when the stages do not
    /// fit in it (docs/ARCHITECTURE.md sections 5 and 9).
    #[serde(default = "default_requant_stages")]
    pub requant_stages: usize,
    /// Cycles each requantization unit takes per value, one of [`REQUANT_INTERVALS`]
    /// (default 1). With 1 the product of the two 24-bit significands is four DSP blocks'
    /// partial products; with `I > 1` it is computed in logic, `24 / I` bits of the scale's
    /// significand per cycle, so the unit uses no DSP block (for parts like the iCE40 UP5K,
    /// whose eight go to the PEs), takes a value every `I` cycles and answers `I` cycles
    /// later ([`ArchConfig::requant_latency`]). A `Store` then issues one beat every `I`
    /// cycles ([`ArchConfig::store_busy`]). Needs no transposer (whose store requantizes a
    /// row per cycle) and at most [`MAX_SERIAL_REQUANT_STAGES`] requant stages
    /// (docs/ARCHITECTURE.md sections 5 and 9).
    #[serde(default = "default_one")]
    pub requant_interval: usize,
    /// Pipeline stages in each weight-stationary PE, 0 to [`MAX_PE_STAGES`] (default 0):
    /// with one, the product of the activation and weight of cycle `t` is registered and
    /// added to the partial sum in cycle `t + 1`, so the slowest PE path is a multiplier or
    /// an adder, not both; with two, the multiplier also takes its operands from the PE's
    /// registers, one cycle later. Every column sum, and so a WS matmul's latency, is that
    /// many cycles later (docs/ARCHITECTURE.md sections 5 and 9). The OS PEs have none.
    #[serde(default)]
    pub pe_stages: usize,
    /// Pipeline stages in the accumulator's read-modify-write, 0 to [`MAX_ACC_STAGES`]
    /// (default 0): with one, the old row read from block RAM and the new values are
    /// registered before the addition, so the slowest accumulator path is an adder, not a
    /// block RAM read and an adder; with two, the sum is also registered before the block
    /// RAM's write port, so the adder ends at a register; with three, the block RAM's word
    /// is also registered before the old row is chosen. Every accumulator write, and so
    /// the latency of a matmul of either dataflow, is that many cycles later
    /// (docs/ARCHITECTURE.md sections 5 and 9).
    #[serde(default)]
    pub acc_stages: usize,
    /// Pipeline stages between the controller's instruction fetch and its issue, 0 or
    /// [`MAX_DECODE_STAGES`] (default 0): with one, each unit's decoded opcode and fields
    /// are registered, so that an instruction's issue and its engine's start logic begin
    /// at registers instead of behind the decoder. An instruction then issues at the
    /// earliest one cycle after it is whole (docs/ARCHITECTURE.md sections 4 and 5).
    #[serde(default)]
    pub decode_stages: usize,
    /// Registers on the DRAM read path of the loading engines, 0 to [`MAX_DRAM_READ_STAGES`]
    /// (default 0): with one, a board's block RAM memory is read into a register with no
    /// logic after it; with two, the read address also leaves the accelerator from a
    /// register, so the board memory's bank rows begin at one. The engines issue their reads that many
    /// cycles earlier, inside their wait, which grows to [`ArchConfig::load_latency`] when
    /// the registers do not fit in it. Needs no transposer (whose load shares its issue
    /// phase with its drain; docs/ARCHITECTURE.md section 9).
    #[serde(default)]
    pub dram_read_stages: usize,
    /// Registers on the WS array's edge, 0 or [`MAX_EDGE_STAGES`] (default 0): with one,
    /// the activations, weights and their controls are registered between the scratchpads'
    /// reads (and the lane routing after them) and the array, in its skew lines, so no path
    /// runs from a block RAM read into a PE. Every column sum, and so a WS matmul's
    /// latency, is that many cycles later (docs/ARCHITECTURE.md sections 5 and 9).
    #[serde(default)]
    pub edge_stages: usize,
    /// The WS array's weight bus reaches every PE of a column in one cycle instead of moving
    /// down a row per cycle (default false). No cycle changes: a preload presents row `r`'s
    /// weights `r` cycles after its start, so each row captures them `r` cycles earlier
    /// than on the registered bus, and the flips it must follow also reach row `r` `r`
    /// cycles after row 0 (docs/ARCHITECTURE.md section 9). It saves every PE's bus
    /// registers (a small part's logic cells) at the price of a bus driving `rows` PEs, and
    /// needs dense int8 tiles (no `sparsity`, `int4_weights` or `csc_weights`), whose
    /// preloads present the rows in order.
    #[serde(default)]
    pub weight_broadcast: bool,
    /// The WS engine's activation scratchpad is read with a stagger of one cycle per row
    /// (default false): row `k`'s byte of a word is read `k` cycles after row 0's (pairs of
    /// rows sharing a block RAM read at one address, the odd row through one register), so
    /// the array's activation skew lines, `k` registers per row, shrink to a line of
    /// address registers. No cycle changes: every row still gets its byte in the same
    /// cycle. A load never writes a word between two of its rows' reads (`Sync` orders a
    /// load after the matmuls that read what it overwrites, and those complete after
    /// their last read). Needs the WS dataflow alone with dense int8 activations (no
    /// `sparsity` or `int4_weights`, whose banks are read all at once).
    #[serde(default)]
    pub staggered_act_reads: bool,
    /// Instructions per unit that the controller's instruction queue holds, a power of two
    /// from 2 to [`MAX_INSTR_QUEUE`] (default none). With a queue the host preloads each
    /// unit's first `instr_queue` instructions and the controller's fetcher streams the rest
    /// from DRAM, in program order, into the queues as slots free, so a program of any
    /// length runs; its fetches enter the timing model (docs/ARCHITECTURE.md section 5).
    /// Without one, the instruction memories hold the whole program (their depth is chosen
    /// when the RTL is built), which costs nothing in the timing model and suits small
    /// FPGAs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instr_queue: Option<usize>,
    /// Lanes of the vector unit beside the array, 0 (default: none) or a divisor of
    /// `min(rows, cols)`: the exec unit's `Vector` op maps every byte of the activation
    /// words it reads through one of two 256-entry tables, sums or takes the maximum over a
    /// window of words and writes accumulator rows, `vector_lanes` lanes a cycle. It runs
    /// residual Add, max and average pooling on the accelerator, exactly as ONNX Runtime
    /// computes them (docs/ARCHITECTURE.md sections 3 and 5); without it these operators
    /// run on the host.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vector_lanes: usize,
    /// The DRAM has one port that reads and writes share (default false: a read port and a
    /// write port), as the iCEBreaker's single-port SPRAM board memory has. The compiler
    /// then makes every load-unit and store-unit instruction wait for the other unit's
    /// earlier instructions ([`crate::timing::serialize_dram_port`]), so a load's reads and
    /// a store's writes never share a cycle, and the timing model refuses a program in
    /// which they could (docs/ARCHITECTURE.md section 5). Needs no instruction queue (its
    /// fetcher would be a third user of the port).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dram_single_port: bool,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

fn default_true() -> bool {
    true
}

fn default_one() -> usize {
    1
}

fn default_requant_stages() -> usize {
    2
}

/// The fields an architecture file may leave out, each with its documented default
/// (docs/ARCHITECTURE.md section 2); every other field is required.
pub const OPTIONAL_FIELDS: [&str; 18] = [
    "transposer",
    "fetch_cycles",
    "sparsity",
    "int4_weights",
    "csc_weights",
    "int4_activations",
    "requant_stages",
    "requant_interval",
    "pe_stages",
    "acc_stages",
    "decode_stages",
    "dram_read_stages",
    "edge_stages",
    "weight_broadcast",
    "staggered_act_reads",
    "instr_queue",
    "vector_lanes",
    "dram_single_port",
];

impl Default for ArchConfig {
    fn default() -> Self {
        Self {
            name: "16x16-ws".into(),
            rows: 16,
            cols: 16,
            dataflow: Dataflow::WeightStationary,
            act_sram_kib: 256,
            wgt_sram_kib: 64,
            acc_sram_kib: 64,
            param_entries: 2048,
            dram_bytes_per_cycle: 16,
            dram_latency: 40,
            clock_mhz: 500.0,
            transposer: true,
            fetch_cycles: 1,
            sparsity: Sparsity::Dense,
            int4_weights: false,
            csc_weights: false,
            int4_activations: false,
            requant_stages: 2,
            requant_interval: 1,
            pe_stages: 0,
            acc_stages: 0,
            decode_stages: 0,
            dram_read_stages: 0,
            edge_stages: 0,
            weight_broadcast: false,
            staggered_act_reads: false,
            instr_queue: None,
            vector_lanes: 0,
            dram_single_port: false,
        }
    }
}

/// Entries of the vector unit's table memory: two tables of 256 (one per byte value).
pub const VECTOR_TABLE_ENTRIES: usize = 512;

/// Cycles from a `Vector` op's last busy cycle to the cycle after its last accumulator
/// write without accumulator stages: the scratchpad read, the table read, the reduction's
/// register and the write (docs/ARCHITECTURE.md section 5). See
/// [`ArchConfig::vector_latency`].
pub const VECTOR_LATENCY: u64 = 4;

/// The deepest instruction queue per unit (`ArchConfig::instr_queue`).
pub const MAX_INSTR_QUEUE: usize = 1 << 16;

/// The instruction-fetch widths the controller can be built with: 512, 256, 128 or 64 bits
/// per memory word.
pub const FETCH_CYCLES: [usize; 4] = [1, 2, 4, 8];

/// Smallest DRAM latency accepted: the DMA engines wait `L - 1 >= 1` cycles before their
/// first beat (docs/ARCHITECTURE.md section 9).
pub const MIN_DRAM_LATENCY: usize = 2;

/// Most pipeline stages of the accumulator's read-modify-write: the old row's register
/// before the addition, the sum's before the block RAM's write and the block RAM word's
/// after its read (docs/ARCHITECTURE.md section 9).
pub const MAX_ACC_STAGES: usize = 3;

/// Most pipeline stages between instruction fetch and issue: the decoded fields' registers.
pub const MAX_DECODE_STAGES: usize = 1;

/// Most registers on the DRAM read path: one on the data, then one on the address
/// ([`ArchConfig::dram_read_address_stages`], [`ArchConfig::dram_read_data_stages`]).
pub const MAX_DRAM_READ_STAGES: usize = 2;

/// Most registers on the WS array's edge inputs.
pub const MAX_EDGE_STAGES: usize = 1;

/// Most pipeline registers a requantization unit has: one at its inputs, one after each of
/// its seven steps, one between its product's multipliers and their sum, one halfway
/// through its normalization and one on the block RAM reads that feed it, in front of the
/// store unit's lane select (docs/ARCHITECTURE.md section 9).
pub const MAX_REQUANT_STAGES: usize = 11;

/// The cycles per value a requantization unit can take: 1 (its product in DSP blocks) or
/// the iterations of its product in logic, `24 / I` bits of the scale's significand each.
pub const REQUANT_INTERVALS: [usize; 6] = [1, 2, 3, 4, 6, 8];

/// Most pipeline registers a requantization unit with its product in logic has: those
/// before its product's inside (the order of docs/ARCHITECTURE.md section 9 places the
/// product's inside ninth), so `requant_latency` stays within the store engine's reach.
pub const MAX_SERIAL_REQUANT_STAGES: usize = 8;

/// Most pipeline stages a WS PE has: registered operands and a registered product.
pub const MAX_PE_STAGES: usize = 2;

/// Largest array dimension accepted.
pub const MAX_DIM: usize = 256;

/// Largest scratchpad, accumulator or table accepted, in KiB: 128 MiB, the size of the
/// largest on-chip memory of any accelerator (a TPU v4's common memory). The simulator
/// allocates each memory whole.
pub const MAX_SRAM_KIB: usize = 128 * 1024;

/// Most words, rows or entries a memory can have: an instruction addresses them with
/// [`crate::encoding::WORD_ADDRESS_BITS`] bits.
pub const MAX_MEMORY_WORDS: usize = 1 << crate::encoding::WORD_ADDRESS_BITS;

/// Widest DRAM bus accepted, in bytes per cycle for reads (and as many for writes): eight
/// HBM3 stacks at a 1 GHz core clock move about 6.6 KB a cycle in all.
pub const MAX_DRAM_BYTES_PER_CYCLE: usize = 4096;

/// Longest DRAM latency accepted, in cycles: 100 us at 1 GHz, beyond any memory system.
pub const MAX_DRAM_LATENCY: usize = 100_000;

/// Fastest clock accepted, MHz: beyond any synchronous digital accelerator.
pub const MAX_CLOCK_MHZ: f64 = 10_000.0;

/// Longest `name` accepted (it names files, reports and the Verilog's header).
pub const MAX_NAME_CHARS: usize = 64;

/// Checks a name that becomes part of file names, report headers and Verilog comments:
/// 1 to [`MAX_NAME_CHARS`] printable ASCII characters other than `/`, `\`, `"` and `` ` ``
/// (no line break can end a comment early, no path separator can leave a folder).
pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| (' '..='~').contains(&c) && !"/\\\"`".contains(c);
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || !name.chars().all(allowed) {
        return Err(ConfigError::new(
            field,
            format!("{name:?} is not 1 to {MAX_NAME_CHARS} printable ASCII characters without `/`, `\\`, `\"` or `` ` ``"),
        )
        .help("it becomes part of file names and the Verilog's header; use e.g. \"16x16-ws\""));
    }
    Ok(())
}

impl ArchConfig {
    /// A 4x4 array, the smallest preset (the whole accelerator does not fit an iCE40 UP5K;
    /// see the README's FPGA section).
    pub fn preset_4x4() -> Self {
        Self {
            name: "4x4-ws".into(),
            rows: 4,
            cols: 4,
            act_sram_kib: 16,
            wgt_sram_kib: 4,
            acc_sram_kib: 4,
            param_entries: 256,
            dram_bytes_per_cycle: 4,
            dram_latency: 20,
            clock_mhz: 24.0,
            ..Self::default()
        }
    }

    /// An 8x8 array for mid-size FPGAs.
    pub fn preset_8x8() -> Self {
        Self {
            name: "8x8-ws".into(),
            rows: 8,
            cols: 8,
            act_sram_kib: 64,
            wgt_sram_kib: 16,
            acc_sram_kib: 16,
            param_entries: 1024,
            dram_bytes_per_cycle: 8,
            dram_latency: 30,
            clock_mhz: 100.0,
            ..Self::default()
        }
    }

    /// The 16x16 reference design.
    pub fn preset_16x16() -> Self {
        Self::default()
    }

    /// A 32x32 array.
    pub fn preset_32x32() -> Self {
        Self {
            name: "32x32-ws".into(),
            rows: 32,
            cols: 32,
            act_sram_kib: 512,
            wgt_sram_kib: 256,
            acc_sram_kib: 256,
            param_entries: 4096,
            dram_bytes_per_cycle: 32,
            dram_latency: 50,
            clock_mhz: 500.0,
            ..Self::default()
        }
    }

    /// Reads and validates an architecture TOML file.
    pub fn from_file(path: &Path) -> Result<Self, LoadError> {
        Self::read(path).map(|(arch, _)| arch)
    }

    /// Reads and validates an architecture TOML file, and lists `field = value` for each of
    /// the [`OPTIONAL_FIELDS`] it leaves out (their defaults), for reports to state. A
    /// missing required field is an error naming it.
    pub fn read(path: &Path) -> Result<(Self, Vec<String>), LoadError> {
        let text = crate::input::read_text(path, crate::input::MAX_TOML_BYTES, "an architecture file")?;
        let table: toml::Table = parse_toml(path, &text)?;
        let defaults = toml::Table::try_from(ArchConfig::default()).expect("the default arch serializes");
        let required: Vec<&str> = defaults.keys().map(|k| k.as_str()).filter(|k| !OPTIONAL_FIELDS.contains(k)).collect();
        if let Some(missing) = required.iter().find(|k| !table.contains_key(**k)) {
            let all = &required;
            return Err(LoadError::invalid(
                path,
                ConfigError::new(*missing, "is missing; it has no default")
                    .help(format!("an architecture file sets {} (docs/ARCHITECTURE.md section 2)", all.join(", "))),
            ));
        }
        let arch: ArchConfig = parse_toml(path, &text)?;
        arch.validate().map_err(|source| LoadError::invalid(path, source))?;
        let taken = OPTIONAL_FIELDS
            .iter()
            .filter(|f| !table.contains_key(**f))
            .map(|f| {
                // Fields left out of serialized files at their defaults.
                let unwritten = match *f {
                    "vector_lanes" => "0",
                    "dram_single_port" => "false",
                    _ => "none",
                };
                format!("{f} = {}", defaults.get(*f).map_or(unwritten.to_string(), |v| v.to_string()))
            })
            .collect();
        Ok((arch, taken))
    }

    /// Number of PEs.
    pub fn pes(&self) -> usize {
        self.rows * self.cols
    }

    /// Words in the activation scratchpad (each `rows` bytes).
    pub fn act_words(&self) -> usize {
        self.act_sram_kib * 1024 / self.rows
    }

    /// Banks of the activation scratchpad: [`Sparsity::expansion`] of `sparsity`. Bank `e`
    /// holds words `e * act_bank_words()..`; a sparse matmul reads one word of each bank at
    /// the same offset in one cycle.
    pub fn act_banks(&self) -> usize {
        let packed = match (self.int4_weights, self.int4_activations) {
            (_, true) => 4,
            (true, false) => 2,
            (false, false) => 1,
        };
        self.sparsity.expansion().max(packed)
    }

    /// Words per activation bank.
    pub fn act_bank_words(&self) -> usize {
        self.act_words() / self.act_banks()
    }

    /// The format the WS engine runs a layer whose weights are in `claimed` with: the
    /// sparsest both allow (dense without a WS engine).
    pub fn format_for(&self, claimed: Sparsity) -> Sparsity {
        if self.dataflow.has_ws() {
            claimed.min(self.sparsity)
        } else {
            Sparsity::Dense
        }
    }

    /// Whether the WS engine can run tiles of format `format`.
    pub fn runs_format(&self, format: Sparsity) -> bool {
        format == Sparsity::Dense || (self.dataflow.has_ws() && format <= self.sparsity)
    }

    /// Words in the weight scratchpad (each `cols` bytes).
    pub fn wgt_words(&self) -> usize {
        self.wgt_sram_kib * 1024 / self.cols
    }

    /// Rows in the accumulator (each `cols` int32 values).
    pub fn acc_rows(&self) -> usize {
        self.acc_sram_kib * 1024 / (4 * self.cols)
    }

    /// Bytes per lane of one transposer bank: the longest run a `LoadTransposed` or
    /// `StoreTransposed` may have, `max(rows, cols, 8)`.
    pub fn transposer_depth(&self) -> usize {
        self.rows.max(self.cols).max(8)
    }

    /// Cycles from a WS matmul's last issue cycle to its last accumulator write, plus one:
    /// one scratchpad read, the array's `edge_stages` edge registers, `rows` cycles down a
    /// column, `cols - 1` cycles of column skew, the PEs' `pe_stages` pipeline stages, the
    /// accumulator's `acc_stages` and one accumulator write.
    pub fn ws_latency(&self) -> u64 {
        (self.rows + self.cols + 1 + self.edge_stages + self.pe_stages + self.acc_stages) as u64
    }

    /// The wait a `Store` or `StoreTransposed` pays before its first DRAM beat: the DRAM
    /// latency, or more when the requantizer's pipeline does not fit in it. The store
    /// engines issue their reads `requant_stages` cycles before the beats they feed, and
    /// their start logic needs two cycles of the wait (docs/ARCHITECTURE.md section 9), so
    /// the wait is at least `requant_stages + 2`.
    pub fn store_latency(&self) -> usize {
        self.dram_latency.max(self.requant_latency() + MIN_DRAM_LATENCY)
    }

    /// Cycles from a requantization unit's inputs to its result: its `requant_stages`
    /// registers, and with a product in logic (`requant_interval = I > 1`) the product's
    /// `I` iterations as well (docs/ARCHITECTURE.md section 9).
    pub fn requant_latency(&self) -> usize {
        self.requant_stages + if self.requant_interval > 1 { self.requant_interval } else { 0 }
    }

    /// Cycles a `Store` of `beats` DRAM beats (`max(runs, beats)` of section 5) issues for,
    /// after its wait: one beat every `requant_interval` cycles, the instruction ending
    /// the cycle after its last beat's, so `1 + I * (beats - 1)`, which is `beats` when
    /// `I = 1`, and 0 without beats.
    pub fn store_busy(&self, beats: u64) -> u64 {
        if beats == 0 {
            0
        } else {
            1 + self.requant_interval.max(1) as u64 * (beats - 1)
        }
    }

    /// The wait a `Load`, `LoadTransposed` or `LoadParams` pays before its first DRAM beat:
    /// the DRAM latency, or more when the read registers do not fit in it. The loading
    /// engines issue their reads `dram_read_stages` cycles before the writes they feed, and
    /// their start logic needs two cycles of the wait (docs/ARCHITECTURE.md section 9), so
    /// the wait is at least `dram_read_stages + 2`.
    pub fn load_latency(&self) -> usize {
        self.dram_latency.max(self.dram_read_stages + MIN_DRAM_LATENCY)
    }

    /// Of the `dram_read_stages` registers, those on the read address the load unit
    /// presents to the DRAM port (the second, when there are two): the memory sees each read
    /// that many cycles after the engine issues it.
    pub fn dram_read_address_stages(&self) -> usize {
        self.dram_read_stages.saturating_sub(1)
    }

    /// Of the `dram_read_stages` registers, those on the read data before the engines'
    /// logic (the first).
    pub fn dram_read_data_stages(&self) -> usize {
        self.dram_read_stages.min(1)
    }

    /// Cycles from an OS matmul's last issue cycle until its tile is in the accumulator:
    /// one scratchpad read, `rows - 1 + cols - 1` cycles of skew, `rows` cycles of drain,
    /// the accumulator's `acc_stages` and one accumulator write.
    pub fn os_latency(&self) -> u64 {
        (2 * self.rows + self.cols + self.acc_stages) as u64
    }

    /// Whether this instance has `op`: the matmul of its dataflow (a sparse WS matmul only
    /// in a format the engine skips, never with a band), and the transposed ops only with
    /// the transposer.
    pub fn supports(&self, op: &crate::isa::Op) -> bool {
        use crate::isa::Op;
        if !self.has_opcode(op.opcode()) {
            return false;
        }
        match op {
            Op::MatmulWs { sparse, band, int4, act4, csc, .. } => {
                let packed = !*int4 || (self.int4_weights && *sparse == Sparsity::Dense);
                let fused = !*act4 || (*int4 && self.int4_activations);
                let expands = match csc {
                    Some(values) => {
                        self.csc_weights && band.is_none() && *sparse == Sparsity::Dense && !*int4 && *values as usize <= self.rows
                    }
                    None => true,
                };
                self.runs_format(*sparse) && packed && fused && expands && (band.is_none() || (*sparse == Sparsity::Dense && !*int4))
            }
            _ => true,
        }
    }

    /// True when the hardware has the engine of `opcode` (some op of it runs; which ones,
    /// [`ArchConfig::supports`] says). The RTL decodes only these opcodes.
    pub fn has_opcode(&self, opcode: crate::isa::Opcode) -> bool {
        use crate::isa::Opcode;
        match opcode {
            Opcode::Load | Opcode::LoadParams | Opcode::Store => true,
            Opcode::LoadTransposed | Opcode::StoreTransposed => self.transposer,
            Opcode::MatmulWs => self.dataflow.has_ws(),
            Opcode::MatmulOs => self.dataflow.has_os(),
            Opcode::LoadTable | Opcode::Vector => self.vector_lanes > 0,
        }
    }

    /// Lanes of an activation word the vector unit maps, `min(rows, cols)`: lane `j` of each
    /// word read becomes column `j` of the accumulator row written.
    pub fn vector_width(&self) -> usize {
        self.rows.min(self.cols)
    }

    /// A `Vector` op's completion latency: [`VECTOR_LATENCY`] plus the accumulator's
    /// pipeline stages (`acc_stages`), which its row writes pass like the array's.
    pub fn vector_latency(&self) -> u64 {
        VECTOR_LATENCY + self.acc_stages as u64
    }

    /// Cycles the vector unit spends on each word it reads, `vector_width / vector_lanes`
    /// (0 without a vector unit).
    pub fn vector_passes(&self) -> usize {
        self.vector_width().checked_div(self.vector_lanes).unwrap_or(0)
    }

    /// Peak multiply-accumulates per cycle.
    pub fn peak_macs_per_cycle(&self) -> u64 {
        self.pes() as u64
    }

    /// Checks every parameter; the error names the field, the reason and a fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_name("name", &self.name)?;
        for (field, v) in [("rows", self.rows), ("cols", self.cols)] {
            if v == 0 || v > MAX_DIM {
                return Err(
                    ConfigError::new(field, format!("{v} is outside 1..={MAX_DIM}")).help("arrays from 1x1 to 256x256 are supported")
                );
            }
        }
        // Before any size is multiplied: the products below then fit in 64 bits.
        for (field, kib) in [("act_sram_kib", self.act_sram_kib), ("wgt_sram_kib", self.wgt_sram_kib), ("acc_sram_kib", self.acc_sram_kib)]
        {
            if kib > MAX_SRAM_KIB {
                return Err(ConfigError::new(field, format!("{kib} KiB is more than the {MAX_SRAM_KIB} KiB (128 MiB) accepted"))
                    .help("the largest on-chip memories of accelerators are tens of MiB; typical values are 16 to 1024"));
            }
        }
        for (field, words, what, width) in [
            ("act_sram_kib", self.act_words(), "words", self.rows),
            ("wgt_sram_kib", self.wgt_words(), "words", self.cols),
            ("acc_sram_kib", self.acc_rows(), "rows", 4 * self.cols),
        ] {
            if words > MAX_MEMORY_WORDS {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "holds {words} {what}, more than the {MAX_MEMORY_WORDS} an instruction's {}-bit address reaches",
                        crate::encoding::WORD_ADDRESS_BITS
                    ),
                )
                .help(format!("use at most {} KiB with {width}-byte {what}", MAX_MEMORY_WORDS * width / 1024)));
            }
        }
        if self.param_entries > MAX_MEMORY_WORDS {
            return Err(ConfigError::new(
                "param_entries",
                format!(
                    "{} is more than the {MAX_MEMORY_WORDS} entries an instruction's {}-bit address reaches",
                    self.param_entries,
                    crate::encoding::WORD_ADDRESS_BITS
                ),
            )
            .help("a layer needs one entry per output channel; typical values are 1024 to 4096"));
        }
        if self.dram_bytes_per_cycle > MAX_DRAM_BYTES_PER_CYCLE {
            return Err(ConfigError::new(
                "dram_bytes_per_cycle",
                format!("{} is more than the {MAX_DRAM_BYTES_PER_CYCLE} accepted (eight HBM3 stacks at 1 GHz)", self.dram_bytes_per_cycle),
            )
            .help("typical values are 4 to 64"));
        }
        let need_act = 4 * self.rows;
        if self.act_sram_kib == 0 || self.act_words() < need_act {
            return Err(ConfigError::new(
                "act_sram_kib",
                format!(
                    "{} KiB holds {} words of {} bytes; at least {need_act} are needed (two buffers of two tiles)",
                    self.act_sram_kib,
                    self.act_words(),
                    self.rows
                ),
            )
            .help(format!("use at least {} KiB", (need_act * self.rows).div_ceil(1024))));
        }
        let need_wgt = 2 * self.rows;
        if self.wgt_sram_kib == 0 || self.wgt_words() < need_wgt {
            return Err(ConfigError::new(
                "wgt_sram_kib",
                format!(
                    "{} KiB holds {} words of {} bytes; two {}-word weight tiles are needed for double buffering",
                    self.wgt_sram_kib,
                    self.wgt_words(),
                    self.cols,
                    self.rows
                ),
            )
            .help(format!("use at least {} KiB", (need_wgt * self.cols).div_ceil(1024))));
        }
        let need_acc = 2 * self.rows;
        if self.acc_sram_kib == 0 || self.acc_rows() < need_acc {
            return Err(ConfigError::new(
                "acc_sram_kib",
                format!(
                    "{} KiB holds {} rows of {} int32; at least {need_acc} rows are needed",
                    self.acc_sram_kib,
                    self.acc_rows(),
                    self.cols
                ),
            )
            .help(format!("use at least {} KiB", (need_acc * self.cols * 4).div_ceil(1024))));
        }
        if self.param_entries < self.cols {
            return Err(ConfigError::new(
                "param_entries",
                format!("{} entries cannot hold one column tile of {} channels", self.param_entries, self.cols),
            )
            .help(format!("use at least {}", self.cols)));
        }
        if self.dram_bytes_per_cycle == 0 {
            return Err(ConfigError::new("dram_bytes_per_cycle", "must be at least 1").help("typical values are 4 to 64"));
        }
        if self.dram_latency < MIN_DRAM_LATENCY {
            return Err(ConfigError::new(
                "dram_latency",
                format!("{} cycles is below the {MIN_DRAM_LATENCY} the DMA engines' start logic needs", self.dram_latency),
            )
            .help(format!("use at least {MIN_DRAM_LATENCY}; typical values are 10 to 200")));
        }
        if self.requant_stages > MAX_REQUANT_STAGES {
            return Err(ConfigError::new(
                "requant_stages",
                format!(
                    "{} pipeline registers, but the requantizer has ten places for one: its inputs, after each of its seven steps, inside its product and inside its normalization",
                    self.requant_stages
                ),
            )
            .help(format!("use 0 to {MAX_REQUANT_STAGES}: 2 by default, {MAX_REQUANT_STAGES} for the fastest clock")));
        }
        if !REQUANT_INTERVALS.contains(&self.requant_interval) {
            return Err(ConfigError::new(
                "requant_interval",
                format!("{} is not one of {REQUANT_INTERVALS:?} (cycles per requantized value)", self.requant_interval),
            )
            .help("use 1 for the product in DSP blocks, or 6 or 8 for a product in logic on parts short of DSP blocks"));
        }
        if self.requant_interval > 1 && self.transposer {
            return Err(ConfigError::new(
                "requant_interval",
                format!("{} cycles per value, but the transposed store requantizes a whole row per cycle", self.requant_interval),
            )
            .help("use transposer = false (the small-FPGA variant) or requant_interval = 1"));
        }
        if self.requant_interval > 1 && self.requant_stages > MAX_SERIAL_REQUANT_STAGES {
            return Err(ConfigError::new(
                "requant_stages",
                format!(
                    "{} pipeline registers, but a requantizer with its product in logic (requant_interval = {}) has {MAX_SERIAL_REQUANT_STAGES} places for one",
                    self.requant_stages, self.requant_interval
                ),
            )
            .help(format!("use 0 to {MAX_SERIAL_REQUANT_STAGES}, or requant_interval = 1")));
        }
        // A stage count beyond the places the hardware has for registers.
        let too_many = |field: &'static str, stages: usize, max: usize, places: &str| {
            if stages > max {
                Err(ConfigError::new(field, format!("{stages} {places}")).help(format!("use 0, or {max} for the fastest clock")))
            } else {
                Ok(())
            }
        };
        // Registers of the WS array, which an OS-only instance does not have.
        let in_ws_array = |field: &'static str, stages: usize, what: &str| {
            if stages > 0 && !self.dataflow.has_ws() {
                Err(ConfigError::new(field, format!("{stages} {what}, and this instance has none"))
                    .help(format!("use {field} = 0 with dataflow = \"os\"")))
            } else {
                Ok(())
            }
        };
        too_many(
            "pe_stages",
            self.pe_stages,
            MAX_PE_STAGES,
            "pipeline registers, but a PE has one multiplier and one adder, so one register between them at most",
        )?;
        in_ws_array("pe_stages", self.pe_stages, "product registers are in the WS PEs")?;
        too_many(
            "edge_stages",
            self.edge_stages,
            MAX_EDGE_STAGES,
            "registers, but the WS array's edge has one place for them (before its skew lines)",
        )?;
        in_ws_array("edge_stages", self.edge_stages, "edge registers are on the WS array")?;
        // A switch that is on where `why` says it cannot be; off is always valid.
        let refused = |field: &'static str, on: bool, why: Option<&str>, off: &str| match why {
            Some(why) if on => Err(ConfigError::new(field, format!("true, but {why}")).help(format!("use {field} = false ({off})"))),
            _ => Ok(()),
        };
        let compressed = self.sparsity != Sparsity::Dense || self.int4_weights;
        refused(
            "weight_broadcast",
            self.weight_broadcast,
            if !self.dataflow.has_ws() {
                Some("the weight bus is the WS array's, and this instance has none")
            } else if compressed || self.csc_weights {
                Some("compressed tiles (sparsity, int4_weights, csc_weights) present their rows out of order, so a broadcast row could overwrite a weight its PE still needs")
            } else {
                None
            },
            "the registered bus",
        )?;
        refused(
            "staggered_act_reads",
            self.staggered_act_reads,
            if self.dataflow != Dataflow::WeightStationary {
                Some("the stagger is the WS engine's, and the OS engine shares this instance's activation scratchpad or replaces it")
            } else if compressed {
                Some("sparse and int4 activations are read from every bank at once")
            } else if self.vector_lanes > 0 {
                Some("the vector unit reads every lane of a word in one cycle")
            } else {
                None
            },
            "skew registers in the array",
        )?;
        refused(
            "dram_single_port",
            self.dram_single_port,
            self.instr_queue.is_some().then_some("the instruction queue's fetcher reads DRAM beside the load and store units"),
            "a read port and a write port",
        )?;
        too_many(
            "acc_stages",
            self.acc_stages,
            MAX_ACC_STAGES,
            "pipeline registers, but the accumulator's read-modify-write has three places for them (the old row's, the sum's and the block RAM word's)",
        )?;
        too_many(
            "decode_stages",
            self.decode_stages,
            MAX_DECODE_STAGES,
            "pipeline registers, but the controller has one place for one (its decoded opcode and fields)",
        )?;
        too_many(
            "dram_read_stages",
            self.dram_read_stages,
            MAX_DRAM_READ_STAGES,
            "registers, but the DRAM read path has two places for them (after the memory's read and on its address)",
        )?;
        if self.dram_read_stages > 0 && self.transposer {
            return Err(ConfigError::new(
                "dram_read_stages",
                format!(
                    "{} read registers, but the transposed load cannot read ahead (its gather and drain share one issue phase)",
                    self.dram_read_stages
                ),
            )
            .help("use transposer = false (the small-FPGA variant) or dram_read_stages = 0"));
        }
        if self.dram_latency > MAX_DRAM_LATENCY {
            return Err(ConfigError::new(
                "dram_latency",
                format!("{} cycles is more than the {MAX_DRAM_LATENCY} accepted (100 us at 1 GHz)", self.dram_latency),
            )
            .help("typical values are 10 to 200"));
        }
        if !(self.clock_mhz.is_finite() && self.clock_mhz > 0.0 && self.clock_mhz <= MAX_CLOCK_MHZ) {
            return Err(ConfigError::new(
                "clock_mhz",
                format!("{} is not a frequency above 0 and at most {MAX_CLOCK_MHZ} MHz", self.clock_mhz),
            )
            .help("typical values are 20 to 100 on an FPGA and 500 to 1500 on an ASIC"));
        }
        if !self.transposer && self.dataflow.has_os() {
            return Err(ConfigError::new("transposer", "false, but the OS dataflow builds its activation words with the transposer")
                .help("use dataflow = \"ws\" or transposer = true"));
        }
        if !FETCH_CYCLES.contains(&self.fetch_cycles) {
            return Err(ConfigError::new(
                "fetch_cycles",
                format!("{} is not one of {FETCH_CYCLES:?} (instruction memories of 512 / fetch_cycles bits)", self.fetch_cycles),
            )
            .help("use 1 for whole-instruction memories, or 8 for the narrowest (small FPGAs)"));
        }
        if let Some(q) = self.instr_queue {
            if !(2..=MAX_INSTR_QUEUE).contains(&q) || !q.is_power_of_two() {
                return Err(ConfigError::new("instr_queue", format!("{q} is not a power of two from 2 to {MAX_INSTR_QUEUE}"))
                    .help("use 256 (a block RAM's depth), or leave it out for instruction memories that hold the whole program"));
            }
        }
        if self.vector_lanes > 0 && !self.vector_width().is_multiple_of(self.vector_lanes) {
            return Err(ConfigError::new(
                "vector_lanes",
                format!(
                    "{} does not divide min(rows, cols) = {} (the lanes of a word the vector unit maps)",
                    self.vector_lanes,
                    self.vector_width()
                ),
            )
            .help(format!(
                "use 0 (no vector unit) or a divisor of {w}: {w} maps a word a cycle, 1 a lane a cycle",
                w = self.vector_width()
            )));
        }
        if self.sparsity != Sparsity::Dense || self.int4_weights {
            let (field, what) = if self.sparsity != Sparsity::Dense {
                ("sparsity", format!("\"{}\"", self.sparsity))
            } else {
                ("int4_weights", "true".into())
            };
            let why = if !self.dataflow.has_ws() {
                Some("needs the WS engine, and this instance has none".to_string())
            } else if !self.rows.is_multiple_of(NM_GROUP) {
                Some(format!("needs rows divisible by {NM_GROUP} (a PE row's group of four activations), not {}", self.rows))
            } else if !self.act_words().is_multiple_of(self.act_banks()) || self.act_bank_words() < 4 * self.rows {
                Some(format!(
                    "splits the activation scratchpad ({} words) into {} banks of at least {} words",
                    self.act_words(),
                    self.act_banks(),
                    4 * self.rows
                ))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ConfigError::new(field, format!("{what} {why}"))
                    .help("use sparsity = \"dense\" and int4_weights = false, or a WS instance with rows a multiple of 4 and a larger act_sram_kib"));
            }
        }
        if self.int4_activations && !self.int4_weights {
            return Err(ConfigError::new("int4_activations", "true needs int4_weights = true (an int4 x int4 PE packs four int4 weights)")
                .help("set int4_weights = true as well, or int4_activations = false"));
        }
        if self.csc_weights && !self.dataflow.has_ws() {
            return Err(ConfigError::new("csc_weights", "true needs the WS engine, and this instance has none")
                .help("use csc_weights = false, or dataflow = \"ws\" or \"both\""));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for a in [ArchConfig::preset_4x4(), ArchConfig::preset_8x8(), ArchConfig::preset_16x16(), ArchConfig::preset_32x32()] {
            a.validate().unwrap();
        }
    }

    #[test]
    fn every_bundled_arch_file_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs");
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(files.len() >= 7, "{files:?}");
        for f in files {
            ArchConfig::from_file(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        }
    }

    #[test]
    fn the_store_waits_for_the_requantizer_pipeline() {
        // Two stages fit in a DRAM latency of 4 (two cycles of start logic); five need 7.
        let a = ArchConfig { dram_latency: 4, ..ArchConfig::default() };
        assert_eq!(a.store_latency(), 4);
        assert_eq!(ArchConfig { requant_stages: 5, ..a.clone() }.store_latency(), 7);
        assert_eq!(ArchConfig { requant_stages: 0, dram_latency: 2, ..a.clone() }.store_latency(), 2);
        assert_eq!(ArchConfig { requant_stages: 5, dram_latency: 40, ..a.clone() }.store_latency(), 40);
        assert_eq!(ArchConfig { requant_stages: 11, ..a.clone() }.store_latency(), 13);
        assert!(ArchConfig { requant_stages: 11, ..a.clone() }.validate().is_ok());
        let e = ArchConfig { requant_stages: 12, ..a }.validate().unwrap_err();
        assert_eq!(e.field, "requant_stages");
    }

    #[test]
    fn a_requantizer_with_its_product_in_logic_paces_the_store() {
        let a = ArchConfig { transposer: false, requant_stages: 6, requant_interval: 6, dram_latency: 4, ..ArchConfig::default() };
        assert!(a.validate().is_ok());
        // Six registers and six iterations of the product; two cycles of start logic.
        assert_eq!(a.requant_latency(), 12);
        assert_eq!(a.store_latency(), 14);
        // Beats 6 cycles apart, the instruction ending the cycle after the last one's.
        assert_eq!((a.store_busy(0), a.store_busy(1), a.store_busy(3)), (0, 1, 13));
        let one = ArchConfig { requant_interval: 1, ..a.clone() };
        assert_eq!((one.requant_latency(), one.store_busy(3)), (6, 3));
        let field = |c: ArchConfig| c.validate().unwrap_err().field;
        assert_eq!(field(ArchConfig { transposer: true, ..a.clone() }), "requant_interval");
        assert_eq!(field(ArchConfig { requant_interval: 5, ..a.clone() }), "requant_interval");
        assert_eq!(field(ArchConfig { requant_interval: 0, ..a.clone() }), "requant_interval");
        assert_eq!(field(ArchConfig { requant_stages: 9, ..a.clone() }), "requant_stages");
        assert!(ArchConfig { requant_stages: 8, ..a }.validate().is_ok());
    }

    #[test]
    fn each_pe_stage_delays_every_ws_column_sum_by_one_cycle() {
        // 4x4: one scratchpad read, 4 rows, 3 cycles of column skew, one write; plus one.
        let a = ArchConfig::preset_4x4();
        assert_eq!(a.ws_latency(), 9);
        assert_eq!(ArchConfig { pe_stages: 1, ..a.clone() }.ws_latency(), 10);
        assert_eq!(ArchConfig { pe_stages: 2, ..a.clone() }.ws_latency(), 11);
        assert_eq!(ArchConfig { pe_stages: 3, ..a.clone() }.validate().unwrap_err().field, "pe_stages");
        let os = ArchConfig { pe_stages: 1, dataflow: Dataflow::OutputStationary, transposer: true, ..a };
        let e = os.validate().unwrap_err();
        assert_eq!(e.field, "pe_stages");
        assert!(e.to_string().contains("WS PEs"), "{e}");
    }

    #[test]
    fn an_edge_stage_delays_every_ws_column_sum_by_one_cycle() {
        let a = ArchConfig::preset_4x4();
        let edged = ArchConfig { edge_stages: 1, ..a.clone() };
        assert!(edged.validate().is_ok());
        assert_eq!((a.ws_latency(), edged.ws_latency()), (9, 10));
        assert_eq!(ArchConfig { pe_stages: 2, acc_stages: 1, ..edged.clone() }.ws_latency(), 13);
        assert_eq!(ArchConfig { edge_stages: 2, ..a.clone() }.validate().unwrap_err().field, "edge_stages");
        let os = ArchConfig { dataflow: Dataflow::OutputStationary, transposer: true, ..edged };
        let e = os.validate().unwrap_err();
        assert_eq!(e.field, "edge_stages");
        assert!(e.to_string().contains("WS array"), "{e}");
    }

    #[test]
    fn a_broadcast_weight_bus_needs_a_dense_ws_array_and_changes_no_latency() {
        let a = ArchConfig { weight_broadcast: true, ..ArchConfig::preset_4x4() };
        assert!(a.validate().is_ok());
        assert_eq!(a.ws_latency(), ArchConfig::preset_4x4().ws_latency());
        for bad in [
            ArchConfig { sparsity: Sparsity::TwoOfFour, ..a.clone() },
            ArchConfig { int4_weights: true, ..a.clone() },
            ArchConfig { csc_weights: true, ..a.clone() },
            ArchConfig { dataflow: Dataflow::OutputStationary, ..a.clone() },
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(e.field, "weight_broadcast", "{bad:?}: {e}");
            assert!(e.help.as_deref().is_some_and(|h| h.contains("weight_broadcast = false")), "{e}");
        }
    }

    #[test]
    fn staggered_act_reads_need_a_dense_ws_only_engine_and_change_no_latency() {
        let a = ArchConfig { staggered_act_reads: true, ..ArchConfig::preset_4x4() };
        assert!(a.validate().is_ok());
        assert_eq!(a.ws_latency(), ArchConfig::preset_4x4().ws_latency());
        for bad in [
            ArchConfig { sparsity: Sparsity::OneOfFour, ..a.clone() },
            ArchConfig { int4_weights: true, ..a.clone() },
            ArchConfig { dataflow: Dataflow::Both, ..a.clone() },
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(e.field, "staggered_act_reads", "{bad:?}: {e}");
        }
    }

    #[test]
    fn dram_read_stages_lengthen_a_short_load_wait_and_need_no_transposer() {
        let a = ArchConfig { transposer: false, dram_latency: 3, dram_read_stages: 1, ..ArchConfig::preset_4x4() };
        assert!(a.validate().is_ok());
        assert_eq!(a.load_latency(), 3);
        // The shortest DRAM latency: a cycle of the start logic, the read, its register.
        let short = ArchConfig { dram_latency: 2, ..a.clone() };
        assert!(short.validate().is_ok());
        assert_eq!((short.load_latency(), ArchConfig { dram_read_stages: 0, ..short.clone() }.load_latency()), (3, 2));
        let transposed = ArchConfig { transposer: true, ..a.clone() }.validate().unwrap_err();
        assert_eq!(transposed.field, "dram_read_stages");
        let two = ArchConfig { dram_read_stages: 2, ..a.clone() };
        assert!(two.validate().is_ok());
        assert_eq!((two.dram_read_address_stages(), two.dram_read_data_stages()), (1, 1));
        assert_eq!((a.dram_read_address_stages(), a.dram_read_data_stages()), (0, 1));
        assert_eq!(ArchConfig { dram_latency: 2, ..two }.load_latency(), 4);
        assert_eq!(ArchConfig { dram_read_stages: 3, ..a }.validate().unwrap_err().field, "dram_read_stages");
    }

    #[test]
    fn the_decode_stage_is_one_register_or_none() {
        let a = ArchConfig::preset_4x4();
        assert!(ArchConfig { decode_stages: 1, ..a.clone() }.validate().is_ok());
        let e = ArchConfig { decode_stages: 2, ..a }.validate().unwrap_err();
        assert_eq!(e.field, "decode_stages");
        assert!(e.to_string().contains("decoded opcode and fields"), "{e}");
    }

    #[test]
    fn each_accumulator_stage_delays_every_write_of_both_dataflows_by_one_cycle() {
        // 4x4 OS: one scratchpad read, 3 + 3 cycles of skew, 4 of drain, one write.
        let a = ArchConfig::preset_4x4();
        let os = ArchConfig { dataflow: Dataflow::OutputStationary, ..a.clone() };
        assert_eq!((a.ws_latency(), os.os_latency()), (9, 12));
        let staged = |c: &ArchConfig, acc_stages| ArchConfig { acc_stages, ..c.clone() };
        assert_eq!((staged(&a, 1).ws_latency(), staged(&os, 1).os_latency()), (10, 13));
        assert_eq!((staged(&a, 2).ws_latency(), staged(&os, 2).os_latency()), (11, 14));
        assert_eq!(ArchConfig { pe_stages: 2, ..staged(&a, 1) }.ws_latency(), 12);
        assert!(staged(&os, 2).validate().is_ok());
        assert_eq!((staged(&a, 3).ws_latency(), staged(&os, 3).os_latency()), (12, 15));
        let e = staged(&a, 4).validate().unwrap_err();
        assert_eq!(e.field, "acc_stages");
        assert!(e.to_string().contains("the block RAM word's"), "{e}");
    }

    #[test]
    fn zero_rows_names_the_field() {
        let a = ArchConfig { rows: 0, ..ArchConfig::default() };
        assert_eq!(a.validate().unwrap_err().field, "rows");
    }

    #[test]
    fn tiny_accumulator_names_the_field() {
        let a = ArchConfig { acc_sram_kib: 1, rows: 32, cols: 32, ..ArchConfig::default() };
        let e = a.validate().unwrap_err();
        assert_eq!(e.field, "acc_sram_kib");
        assert!(e.help.unwrap().contains("at least 8 KiB"));
    }

    #[test]
    fn dma_engines_need_two_cycles_of_latency() {
        let a = ArchConfig { dram_latency: 1, ..ArchConfig::default() };
        assert_eq!(a.validate().unwrap_err().field, "dram_latency");
        ArchConfig { dram_latency: 2, ..ArchConfig::default() }.validate().unwrap();
    }

    #[test]
    fn os_needs_the_transposer_and_fetch_widths_are_listed() {
        let a = ArchConfig { transposer: false, dataflow: Dataflow::OutputStationary, ..ArchConfig::default() };
        assert_eq!(a.validate().unwrap_err().field, "transposer");
        ArchConfig { transposer: false, ..ArchConfig::default() }.validate().unwrap();
        for f in [0, 3, 16] {
            assert_eq!(ArchConfig { fetch_cycles: f, ..ArchConfig::default() }.validate().unwrap_err().field, "fetch_cycles");
        }
    }

    #[test]
    fn sparsity_needs_the_ws_engine_and_rows_in_fours() {
        let a = ArchConfig { sparsity: Sparsity::TwoOfFour, dataflow: Dataflow::OutputStationary, ..ArchConfig::default() };
        assert_eq!(a.validate().unwrap_err().field, "sparsity");
        let a = ArchConfig { sparsity: Sparsity::OneOfFour, rows: 6, ..ArchConfig::default() };
        assert!(a.validate().unwrap_err().message.contains("rows divisible by 4"));
        let a = ArchConfig { sparsity: Sparsity::OneOfFour, dataflow: Dataflow::Both, ..ArchConfig::default() };
        a.validate().unwrap();
        assert_eq!((a.act_banks(), a.act_bank_words()), (4, 4096));
        assert!(a.runs_format(Sparsity::TwoOfFour) && a.runs_format(Sparsity::OneOfFour));
        let b = ArchConfig { sparsity: Sparsity::TwoOfFour, ..ArchConfig::default() };
        assert!(!b.runs_format(Sparsity::OneOfFour));
        let c = ArchConfig { int4_weights: true, ..ArchConfig::default() };
        assert_eq!((c.act_banks(), c.runs_format(Sparsity::TwoOfFour)), (2, false));
        let d = ArchConfig { int4_weights: true, dataflow: Dataflow::OutputStationary, ..ArchConfig::default() };
        assert_eq!(d.validate().unwrap_err().field, "int4_weights");
        let e = ArchConfig { int4_activations: true, ..ArchConfig::default() };
        assert_eq!(e.validate().unwrap_err().field, "int4_activations");
        let f = ArchConfig { int4_weights: true, ..e };
        f.validate().unwrap();
        assert_eq!((f.act_banks(), f.act_bank_words()), (4, 4096));
        assert_eq!(Sparsity::for_nonzeros(2), Sparsity::TwoOfFour);
        let mut table = toml::Table::try_from(ArchConfig::default()).unwrap();
        table.insert("sparsity".into(), "1:4".into());
        assert_eq!(table.try_into::<ArchConfig>().unwrap().sparsity, Sparsity::OneOfFour);
    }

    #[test]
    fn a_file_gives_the_required_fields_and_the_defaults_it_takes_are_listed() {
        let dir = std::env::temp_dir().join(format!("systole-arch-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.toml");
        let required = "name = \"t\"\nrows = 4\ncols = 4\ndataflow = \"ws\"\nact_sram_kib = 16\nwgt_sram_kib = 4\n\
                        acc_sram_kib = 4\nparam_entries = 256\ndram_bytes_per_cycle = 4\ndram_latency = 20\nclock_mhz = 24.0\n";
        std::fs::write(&path, format!("{required}requant_stages = 3\n")).unwrap();
        let (arch, defaults) = ArchConfig::read(&path).unwrap();
        assert_eq!(arch.requant_stages, 3);
        assert_eq!(defaults.len(), OPTIONAL_FIELDS.len() - 1);
        for taken in ["transposer = true", "fetch_cycles = 1", "sparsity = \"dense\"", "instr_queue = none", "vector_lanes = 0"] {
            assert!(defaults.iter().any(|d| d == taken), "{taken} in {defaults:?}");
        }
        assert!(!defaults.iter().any(|d| d.starts_with("requant_stages")));
        for line in required.lines() {
            let field = line.split(' ').next().unwrap();
            std::fs::write(&path, required.replace(&format!("{line}\n"), "")).unwrap();
            match ArchConfig::read(&path).unwrap_err() {
                LoadError::Invalid { error, .. } => {
                    assert_eq!((error.field.as_str(), error.message.as_str()), (field, "is missing; it has no default"))
                }
                other => panic!("{field}: {other}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_are_bounded_before_they_are_multiplied() {
        let huge = ArchConfig { act_sram_kib: usize::MAX, ..ArchConfig::default() };
        assert_eq!(huge.validate().unwrap_err().field, "act_sram_kib");
        // 128 MiB of 1-byte words is 2^27 words, beyond the 24-bit address.
        let one_row = ArchConfig { rows: 1, act_sram_kib: MAX_SRAM_KIB, ..ArchConfig::default() };
        assert!(one_row.validate().unwrap_err().message.contains("24-bit address"));
        let entries = ArchConfig { param_entries: MAX_MEMORY_WORDS + 1, ..ArchConfig::default() };
        assert_eq!(entries.validate().unwrap_err().field, "param_entries");
        let bus = ArchConfig { dram_bytes_per_cycle: MAX_DRAM_BYTES_PER_CYCLE + 1, ..ArchConfig::default() };
        assert_eq!(bus.validate().unwrap_err().field, "dram_bytes_per_cycle");
        let named = ArchConfig { name: "a/b".into(), ..ArchConfig::default() };
        assert_eq!(named.validate().unwrap_err().field, "name");
        ArchConfig { name: "8x8-ws-1:4+int4.v2 (4 lanes)".into(), ..ArchConfig::default() }.validate().unwrap();
    }

    #[test]
    fn derived_sizes() {
        let a = ArchConfig::default();
        assert_eq!(a.act_words(), 256 * 1024 / 16);
        assert_eq!(a.wgt_words(), 4096);
        assert_eq!(a.acc_rows(), 1024);
    }
}
