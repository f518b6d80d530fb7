//! Property-based fuzzing of the readers a user's files reach: architecture and workload
//! TOML, `.npy` tensors, ONNX models (decoding and import) and space files. Each input is
//! either arbitrary bytes or a bundled valid file with structure-aware mutations (a
//! field's value replaced by a hostile one, lines dropped or repeated, an `.npy` header's
//! shape or dtype rewritten, an ONNX attribute, dimension or shape changed). Every case
//! must end in a value or an error, never a panic; no single allocation may exceed
//! [`MAX_ALLOCATION`]; and no case may take more than [`MAX_CASE_TIME`] (a hang detector,
//! not a speed measure).
//!
//! `SYSTOLE_FUZZ_CASES` sets the cases per reader (default 48); the README gives a long
//! run's count and command.

mod common;

use onnx_protobuf::{tensor_shape_proto::dimension, Message, ModelProto};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The largest single allocation any reader may make on these inputs (none is larger than
/// a few hundred KiB): far below the documented bounds' products, which the readers must
/// check before they allocate.
const MAX_ALLOCATION: usize = 256 << 20;

/// The longest any one case may run.
const MAX_CASE_TIME: Duration = Duration::from_secs(20);

/// Records the largest single allocation request.
struct PeakAllocation;

static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for PeakAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        PEAK.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        PEAK.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PeakAllocation = PeakAllocation;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn cases() -> u32 {
    std::env::var("SYSTOLE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

/// Runs `read` on `bytes` written to `dir/name`, checking the time and allocation bounds;
/// a panic inside `read` fails the case (proptest catches it).
fn check(dir: &Path, name: &str, bytes: &[u8], read: impl Fn(&Path)) -> Result<(), TestCaseError> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    PEAK.store(0, Ordering::Relaxed);
    let start = Instant::now();
    read(&path);
    let (took, peak) = (start.elapsed(), PEAK.load(Ordering::Relaxed));
    prop_assert!(took <= MAX_CASE_TIME, "{name}: {took:?}");
    prop_assert!(peak <= MAX_ALLOCATION, "{name}: an allocation of {peak} bytes");
    Ok(())
}

/// Values that break fields: out of range, of the wrong type, not numbers, huge.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("18014398509481985".to_string()),
        Just("4294967296".to_string()),
        Just("1e300".to_string()),
        Just("nan".to_string()),
        Just("-inf".to_string()),
        Just("\"\\n\"".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("\"/dev/zero\"".to_string()),
        Just("true".to_string()),
        (1u64..=1 << 40).prop_map(|v| v.to_string()),
        "[a-z0-9 ]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ]
}

/// A TOML file's lines with some values replaced by hostile ones, some lines dropped and
/// some repeated.
fn mutated_toml(text: String) -> impl Strategy<Value = String> {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len();
    prop::collection::vec((0..n, 0u8..4, hostile_value()), 1..6).prop_map(move |edits| {
        let mut lines = lines.clone();
        for (i, kind, value) in edits {
            let i = i % lines.len().max(1);
            if lines.is_empty() {
                break;
            }
            match kind {
                0 => lines.remove(i),
                1 => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                    continue;
                }
                _ => match lines[i].split_once('=') {
                    Some((key, _)) => {
                        let key = key.to_string();
                        lines[i] = format!("{key}= {value}");
                        continue;
                    }
                    None => continue,
                },
            };
        }
        lines.join("\n") + "\n"
    })
}

/// Arbitrary bytes, or a file's bytes with bytes flipped, cut or inserted.
fn mutated_bytes(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = valid.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec((0..n.max(1), any::<u8>(), 0u8..3), 1..12).prop_map(move |edits| {
            let mut b = valid.clone();
            for (i, v, kind) in edits {
                if b.is_empty() {
                    break;
                }
                let i = i % b.len();
                match kind {
                    0 => b[i] = v,
                    1 => b.truncate(i),
                    _ => b.insert(i, v),
                }
            }
            b
        }),
    ]
}

/// Rewrites one part of a decoded model: an integer attribute, an initializer's dimension
/// or an input's dimension, to `value`.
fn mutate_model(model: &mut ModelProto, target: usize, value: i64) {
    let graph = model.graph.as_mut().unwrap();
    match target % 3 {
        0 => {
            let attrs: Vec<_> = graph.node.iter_mut().flat_map(|n| n.attribute.iter_mut()).collect();
            if let Some(a) = attrs.into_iter().nth(target / 3 % 16) {
                if a.ints.is_empty() {
                    a.i = value;
                } else {
                    a.ints[0] = value;
                }
            }
        }
        1 => {
            if let Some(t) = graph.initializer.get_mut(target / 3 % 32) {
                if let Some(d) = t.dims.first_mut() {
                    *d = value;
                }
            }
        }
        _ => {
            if let Some(dim) = graph
                .input
                .iter_mut()
                .filter_map(|i| i.type_.as_mut())
                .filter_map(|t| match &mut t.value {
                    Some(onnx_protobuf::type_proto::Value::TensorType(tt)) => tt.shape.as_mut(),
                    _ => None,
                })
                .flat_map(|s| s.dim.iter_mut())
                .nth(target / 3 % 4)
            {
                dim.value = Some(dimension::Value::DimValue(value));
            }
        }
    }
}

fn run(name: &str, strategy: impl Strategy<Value = Vec<u8>>, test: impl Fn(Vec<u8>) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
}

/// One test, so that the allocation peak is this reader's alone (tests run in parallel).
#[test]
fn readers_survive_arbitrary_and_mutated_files() {
    let dir = std::env::temp_dir().join(format!("systole-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let read = |p: &str| std::fs::read_to_string(repo().join(p)).unwrap();

    // Architecture files.
    let arch = read("configs/archs/icebreaker-spram.toml");
    let arch_strategy = prop_oneof![mutated_toml(arch).prop_map(String::into_bytes), prop::collection::vec(any::<u8>(), 0..256)];
    run("arch", arch_strategy, |b| {
        check(&dir, "a.toml", &b, |p| {
            let _ = systole_core::ArchConfig::read(p);
        })
    });

    // Workloads (their layer shapes and quantization), validated and given random data.
    let wl = read("configs/workloads/board.toml");
    run("workload", mutated_toml(wl).prop_map(String::into_bytes), |b| {
        check(&dir, "w.toml", &b, |p| {
            if let Ok(w) = systole_core::workload::Workload::from_file(p) {
                for i in 0..w.layers.len() {
                    let _ = w.layer_data(i);
                }
            }
        })
    });

    // Space files, each point's architecture made.
    std::fs::copy(repo().join("configs/archs/4x4.toml"), dir.join("base.toml")).unwrap();
    let space = read("configs/spaces/edge.toml").replace("../archs/16x16.toml", "base.toml");
    run("space", mutated_toml(space).prop_map(String::into_bytes), |b| {
        check(&dir, "s.toml", &b, |p| {
            if let Ok(s) = systole_sweep::Space::from_file(p) {
                for id in s.order().into_iter().take(64) {
                    let _ = s.arch(id).map(|a| a.validate());
                }
            }
        })
    });

    // .npy files: arbitrary bytes, mutated valid files, and headers with hostile shapes.
    let npy = std::fs::read(repo().join("configs/models/tiny_input.npy")).unwrap();
    let headers = (
        prop_oneof![Just("<f4"), Just("|i1"), Just("<i4"), Just("<f8"), Just(">f4")],
        prop::collection::vec(0u64..=u64::MAX, 0..5),
        0usize..2048,
    )
        .prop_map(|(descr, dims, body)| common::npy_bytes(descr, &dims, &vec![0x7f; body]));
    run("npy", prop_oneof![mutated_bytes(npy), headers], |b| {
        check(&dir, "x.npy", &b, |p| {
            let _ = systole_core::npy::read_any::<f32>(p, "x");
            let _ = systole_core::npy::read::<i8>(p, &[1, 16, 16, 3], "x");
        })
    });

    // ONNX models: bytes mutated, and decoded models with attributes, initializer dimensions
    // and input dimensions rewritten; decoded, checked and imported.
    let qop = std::fs::read(repo().join("configs/models/tiny_qop.onnx")).unwrap();
    let decoded = ModelProto::parse_from_bytes(&qop).unwrap();
    let structured =
        (0usize..1000, prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(1 << 40), 1i64..100_000]).prop_map(move |(t, v)| {
            let mut m = decoded.clone();
            mutate_model(&mut m, t, v);
            m.write_to_bytes().unwrap()
        });
    run("onnx", prop_oneof![mutated_bytes(qop), structured], |b| {
        check(&dir, "m.onnx", &b, |p| {
            if let Ok(model) = systole_onnx::read(p) {
                let _ = systole_onnx::import(&model, p);
            }
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}
