//! Programs the simulator must refuse: insufficient synchronization (races), circular
//! waits, waits beyond the program, and addresses outside the machine.

use systole_core::isa::{Buffer, DramPattern, Instr, Op, OutputStage, Sync, WordGen};
use systole_core::timing::TimingError;
use systole_core::{ArchConfig, Program, Unit};
use systole_sim::{execute, SimError};

fn program(instrs: Vec<Instr>) -> Program {
    Program { arch: "test".into(), instrs, dram_size: 4096, dram_init: vec![], inputs: vec![], outputs: vec![], macs: 0, mapping: None }
}

fn run(instrs: Vec<Instr>) -> Result<(), SimError> {
    let arch = ArchConfig::preset_4x4();
    let mut dram = vec![0u8; 4096];
    execute(&arch, &program(instrs), &mut dram).map(|_| ())
}

fn load_act(dst: u32, n: u32) -> Op {
    Op::Load { target: Buffer::Act, dst, offset: 0, src: DramPattern::runs(0, 4, n, 4) }
}

fn matmul(n: u32) -> Op {
    matmul_ws(n, None, systole_core::Sparsity::Dense, false)
}

/// A WS matmul over `n` words with an optional preload, in a tile format.
fn matmul_ws(n: u32, preload: Option<u32>, sparse: systole_core::Sparsity, int4: bool) -> Op {
    Op::MatmulWs { a: WordGen::linear(0, n), acc: 0, accumulate: false, preload, band: None, sparse, int4, act4: false, csc: None }
}

/// An int4 x int4 WS matmul over `n` words with an optional preload.
fn matmul_int4x4(n: u32, preload: Option<u32>) -> Op {
    let sparse = systole_core::Sparsity::Dense;
    Op::MatmulWs { a: WordGen::linear(0, n), acc: 0, accumulate: false, preload, band: None, sparse, int4: true, act4: true, csc: None }
}

fn store(n: u32) -> Op {
    Op::Store { acc: 0, dst: DramPattern::runs(1024, 4, n, 4), out: OutputStage { param: 0, zp: 0, lo: -128, hi: 127 } }
}

fn at(sync: Sync, op: Op) -> Instr {
    Instr { sync, op }
}

#[test]
fn matmul_without_waiting_for_its_load_is_a_race() {
    let e = run(vec![at(Sync::default(), load_act(0, 8)), at(Sync::default(), matmul(8))]).unwrap_err();
    assert!(
        matches!(e, SimError::Race { instr: 1, unit: Unit::Exec, buffer: "act", word: 0, other: 0, other_unit: Unit::Load, .. }),
        "{e:?}"
    );
}

#[test]
fn store_before_the_matmul_completes_is_a_race() {
    let s = Sync { load: 1, ..Sync::default() };
    let e = run(vec![at(Sync::default(), load_act(0, 8)), at(s, matmul(8)), at(s, store(8))]).unwrap_err();
    assert!(matches!(e, SimError::Race { unit: Unit::Store, buffer: "acc", other_unit: Unit::Exec, .. }), "{e:?}");
}

#[test]
fn overwriting_words_still_being_read_is_a_race() {
    let e = run(vec![
        at(Sync::default(), load_act(0, 8)),
        at(Sync { load: 1, ..Sync::default() }, matmul(8)),
        at(Sync::default(), load_act(0, 8)),
    ])
    .unwrap_err();
    // Both start in the same cycle; whichever is applied first, the pair is reported.
    assert!(matches!(e, SimError::Race { instr: 1 | 2, buffer: "act", word: 0, other: 1 | 2, .. }), "{e:?}");
}

/// A store's output read back by a load (the next layer of a network program) that does
/// not wait for it: the DRAM line is written while it is read.
#[test]
fn reading_dram_a_store_is_still_writing_is_a_race() {
    let back = Op::Load { target: Buffer::Act, dst: 16, offset: 0, src: DramPattern::runs(1024, 4, 8, 4) };
    let program = |wait: u32| {
        vec![
            at(Sync::default(), load_act(0, 8)),
            at(Sync { load: 1, ..Sync::default() }, matmul(8)),
            at(Sync { exec: 1, ..Sync::default() }, store(8)),
            // Starts once the matmul is done, in the same cycles as the store.
            at(Sync { exec: 1, store: wait, ..Sync::default() }, back),
        ]
    };
    let e = run(program(0)).unwrap_err();
    assert!(matches!(e, SimError::Race { buffer: "dram line", word: 16, unit: Unit::Load | Unit::Store, other: 2 | 3, .. }), "{e:?}");
    run(program(1)).unwrap();
}

#[test]
fn correctly_synchronized_program_runs() {
    run(vec![
        at(Sync::default(), load_act(0, 8)),
        at(Sync { load: 1, ..Sync::default() }, matmul(8)),
        at(Sync { exec: 1, ..Sync::default() }, load_act(0, 8)),
        at(Sync { exec: 1, ..Sync::default() }, store(8)),
    ])
    .unwrap();
}

#[test]
fn circular_waits_deadlock() {
    let e =
        run(vec![at(Sync { exec: 1, ..Sync::default() }, load_act(0, 8)), at(Sync { load: 1, ..Sync::default() }, matmul(8))]).unwrap_err();
    match e {
        SimError::Timing(TimingError::Deadlock { pending }) => {
            assert!(pending.contains("Load #0") && pending.contains("Exec #0"), "{pending}")
        }
        e => panic!("{e:?}"),
    }
}

#[test]
fn waiting_for_instructions_that_do_not_exist() {
    let e = run(vec![at(Sync { store: 2, ..Sync::default() }, load_act(0, 1))]).unwrap_err();
    assert_eq!(e, SimError::Timing(TimingError::SyncBeyondProgram { instr: 0, unit: Unit::Store, need: 2, have: 0 }));
}

#[test]
fn addresses_outside_the_machine() {
    let words = ArchConfig::preset_4x4().act_words() as u32;
    let e = run(vec![at(Sync::default(), load_act(words - 2, 4))]).unwrap_err();
    assert!(matches!(&e, SimError::OutOfBounds { instr: 0, detail } if detail.contains("act words")), "{e:?}");
    let far = Op::Load { target: Buffer::Wgt, dst: 0, offset: 0, src: DramPattern::runs(4094, 4, 1, 4) };
    let e = run(vec![at(Sync::default(), far)]).unwrap_err();
    assert!(matches!(&e, SimError::OutOfBounds { detail, .. } if detail.contains("DRAM bytes 4094..4098")), "{e:?}");
    let wide = Op::Load { target: Buffer::Act, dst: 0, offset: 2, src: DramPattern::runs(0, 4, 1, 4) };
    let e = run(vec![at(Sync::default(), wide)]).unwrap_err();
    assert!(matches!(&e, SimError::OutOfBounds { detail, .. } if detail.contains("exceeds the 4-byte word")), "{e:?}");
}

#[test]
fn ops_the_instance_was_not_built_with_are_refused() {
    let os = Op::MatmulOs { a: WordGen::linear(0, 4), b: 0, acc: 0, accumulate: false, band: None };
    let e = run(vec![at(Sync::default(), load_act(0, 4)), at(Sync::default(), os)]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { instr: 1, ref op, .. } if op.starts_with("mm.os")), "{e:?}");
    let arch = ArchConfig { transposer: false, ..ArchConfig::preset_4x4() };
    let t = Op::LoadTransposed { dst: 0, pitch: 4, src: DramPattern::runs(0, 4, 4, 4) };
    let e = execute(&arch, &program(vec![at(Sync::default(), t)]), &mut vec![0u8; 4096]).unwrap_err();
    assert!(e.to_string().contains("is not an op of arch `4x4-ws`"), "{e}");
    // A `both` instance has both matmuls, but one engine per program.
    let both = ArchConfig { name: "4x4-both".into(), dataflow: systole_core::Dataflow::Both, ..ArchConfig::preset_4x4() };
    let ws = matmul(4);
    for p in [vec![at(Sync::default(), ws)], vec![at(Sync::default(), os)]] {
        execute(&both, &program(p), &mut vec![0u8; 4096]).unwrap();
    }
    let mixed = program(vec![at(Sync::default(), ws), at(Sync::default(), load_act(0, 4)), at(Sync::default(), os)]);
    let e = execute(&both, &mixed, &mut vec![0u8; 4096]).unwrap_err();
    assert!(matches!(e, SimError::MixedDataflows { ws: 0, os: 2, .. }), "{e:?}");
    assert!(systole_sim::estimate(&both, &mixed).is_err());
}

/// A sparse or int4 matmul on an instance without that support is refused, and a stream
/// whose format differs from the active tile's (set by the preloading matmul) is an error
/// naming both formats.
#[test]
fn tile_formats_are_checked() {
    use systole_core::Sparsity;
    let e = run(vec![at(Sync::default(), matmul_ws(0, Some(0), Sparsity::TwoOfFour, false))]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { instr: 0, ref op, .. } if op.contains("2:4")), "{e:?}");
    let e = run(vec![at(Sync::default(), matmul_ws(0, Some(0), Sparsity::Dense, true))]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { ref op, .. } if op.contains("int4")), "{e:?}");
    let arch = ArchConfig { sparsity: Sparsity::OneOfFour, int4_weights: true, ..ArchConfig::preset_4x4() };
    // A dense tile preloaded, then streamed as 1:4.
    let p = program(vec![
        at(Sync::default(), matmul_ws(0, Some(0), Sparsity::Dense, false)),
        at(Sync::default(), matmul_ws(2, None, Sparsity::OneOfFour, false)),
    ]);
    let e = execute(&arch, &p, &mut vec![0u8; 4096]).unwrap_err();
    assert!(matches!(e, SimError::FormatMismatch { instr: 1, ref stream, ref active } if stream == "1:4" && active == "dense"), "{e:?}");
    let p = program(vec![
        at(Sync::default(), matmul_ws(0, Some(0), Sparsity::TwoOfFour, false)),
        at(Sync::default(), matmul_ws(2, None, Sparsity::Dense, true)),
    ]);
    let e = execute(&arch, &p, &mut vec![0u8; 4096]).unwrap_err();
    assert!(matches!(e, SimError::FormatMismatch { ref stream, ref active, .. } if stream == "dense int4" && active == "2:4"), "{e:?}");
    // Matching formats run.
    let p = program(vec![
        at(Sync::default(), matmul_ws(0, Some(0), Sparsity::TwoOfFour, false)),
        at(Sync::default(), matmul_ws(2, None, Sparsity::TwoOfFour, false)),
    ]);
    execute(&arch, &p, &mut vec![0u8; 4096]).unwrap();
    // A CSC preload needs `csc_weights`, and at most `rows` value words.
    let csc = |values: u32| Op::MatmulWs {
        a: WordGen::linear(0, 0),
        acc: 0,
        accumulate: false,
        preload: Some(0),
        band: None,
        sparse: Sparsity::Dense,
        int4: false,
        act4: false,
        csc: Some(values),
    };
    let e = run(vec![at(Sync::default(), csc(2))]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { ref op, .. } if op.contains("csc")), "{e:?}");
    let arch = ArchConfig { csc_weights: true, ..ArchConfig::preset_4x4() };
    let e = execute(&arch, &program(vec![at(Sync::default(), csc(5))]), &mut vec![0u8; 4096]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { .. }), "{e:?}");
    execute(&arch, &program(vec![at(Sync::default(), csc(2))]), &mut vec![0u8; 4096]).unwrap();
    // int4 x int4 needs `int4_activations`; a quad tile streamed as int4 is a mismatch.
    let int4 = ArchConfig { int4_weights: true, ..ArchConfig::preset_4x4() };
    let e = execute(&int4, &program(vec![at(Sync::default(), matmul_int4x4(0, Some(0)))]), &mut vec![0u8; 4096]).unwrap_err();
    assert!(matches!(e, SimError::Unsupported { ref op, .. } if op.contains("int4x4")), "{e:?}");
    let quad = ArchConfig { int4_activations: true, ..int4 };
    let p = program(vec![at(Sync::default(), matmul_int4x4(0, Some(0))), at(Sync::default(), matmul_ws(2, None, Sparsity::Dense, true))]);
    let e = execute(&quad, &p, &mut vec![0u8; 4096]).unwrap_err();
    assert!(
        matches!(e, SimError::FormatMismatch { ref stream, ref active, .. } if stream == "dense int4" && active == "dense int4 act4"),
        "{e:?}"
    );
    let p = program(vec![at(Sync::default(), matmul_int4x4(0, Some(0))), at(Sync::default(), matmul_int4x4(2, None))]);
    execute(&quad, &p, &mut vec![0u8; 4096]).unwrap();
}

#[test]
fn a_store_reading_entries_from_inside_a_table_row_is_refused() {
    let op = Op::Store { acc: 0, dst: DramPattern::runs(1024, 4, 1, 4), out: OutputStage { param: 6, zp: 0, lo: -128, hi: 127 } };
    let e = run(vec![at(Sync::default(), op)]).unwrap_err();
    assert!(matches!(e, SimError::MisalignedParam { instr: 0, param: 6, cols: 4 }), "{e:?}");
    assert!(e.to_string().contains("not a multiple of the 4 columns"), "{e}");
}
