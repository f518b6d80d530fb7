//! Hostile and careless input across the commands, as a table: each case writes its files,
//! runs `systole`, and expects a failure (no panic, within a time limit) whose message
//! names what its row says. The expected texts are written by hand from the bound or rule
//! the input breaks (docs/ARCHITECTURE.md section 2, the README's flags), not copied from
//! the program's output. `SYSTOLE_SHOW_ERRORS=1 cargo test --test bad_inputs -- --nocapture`
//! prints every message for review.

mod common;

use onnx_protobuf::{Message, ModelProto};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// What a case writes before it runs.
enum Content {
    Text(String),
    Bytes(Vec<u8>),
    /// A symbolic link to this target.
    Link(&'static str),
}

/// One bad input: its files, the arguments, and texts the error must contain.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, Content)>,
    args: Vec<String>,
    expect: Vec<&'static str>,
}

fn case(name: &'static str, files: Vec<(&'static str, Content)>, args: &[&str], expect: &[&'static str]) -> Case {
    Case { name, files, args: args.iter().map(|s| s.to_string()).collect(), expect: expect.to_vec() }
}

/// The 4x4 preset with `key`'s line replaced by `line` (removed when `line` is empty).
fn arch_with(key: &str, line: &str) -> Content {
    let text = std::fs::read_to_string(repo().join("configs/archs/4x4.toml")).unwrap();
    let mut out = String::new();
    let mut found = false;
    for l in text.lines() {
        if l.split('=').next().unwrap().trim() == key {
            found = true;
            if !line.is_empty() {
                out.push_str(line);
                out.push('\n');
            }
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !found {
        out.push_str(line);
        out.push('\n');
    }
    Content::Text(out)
}

fn text(t: &str) -> Content {
    Content::Text(t.to_string())
}

/// A workload of one layer given by its TOML lines (after `[[layer]]`).
fn workload(layer: &str) -> Content {
    Content::Text(format!("name = \"w\"\nseed = 1\n\n[[layer]]\n{layer}\n"))
}

/// A GEMM layer named `g`.
fn gemm(m: &str, k: &str, n: &str, extra: &str) -> Content {
    workload(&format!("name = \"g\"\nop = \"gemm\"\nm = {m}\nk = {k}\nn = {n}\n{extra}"))
}

/// A 3x3 convolution over 8x8x8 with `extra` lines.
fn conv(extra: &str) -> Content {
    workload(&format!("name = \"c\"\nop = \"conv\"\ninput = [8, 8, 8]\nout_channels = 8\n{extra}"))
}

/// An .npy file of `dims` (see [`common::npy_bytes`]).
fn npy(descr: &str, dims: &[usize], data: &[u8]) -> Content {
    Content::Bytes(common::npy_bytes(descr, &dims.iter().map(|&d| d as u64).collect::<Vec<_>>(), data))
}

/// A bundled model with `edit` applied to its decoded form.
fn model_with(file: &str, edit: impl Fn(&mut ModelProto)) -> Content {
    let mut m = ModelProto::parse_from_bytes(&std::fs::read(repo().join("configs/models").join(file)).unwrap()).unwrap();
    edit(&mut m);
    Content::Bytes(m.write_to_bytes().unwrap())
}

/// Sets the integer attribute `name` of the first node of type `op` that has it.
fn set_attr(m: &mut ModelProto, op: &str, name: &str, value: i64) {
    let graph = m.graph.as_mut().unwrap();
    let node = graph.node.iter_mut().find(|n| n.op_type == op && n.attribute.iter().any(|a| a.name == name)).unwrap();
    let a = node.attribute.iter_mut().find(|a| a.name == name).unwrap();
    if a.ints.is_empty() {
        a.i = value;
    } else {
        a.ints.iter_mut().for_each(|v| *v = value);
    }
}

/// Sets every value of the float initializer feeding input `input` of the first `op` node.
fn set_initializer(m: &mut ModelProto, op: &str, input: usize, value: f32) {
    let graph = m.graph.as_mut().unwrap();
    let name = graph.node.iter().find(|n| n.op_type == op).unwrap().input[input].clone();
    let t = graph.initializer.iter_mut().find(|t| t.name == name).unwrap();
    if t.raw_data.is_empty() {
        t.float_data.iter_mut().for_each(|v| *v = value);
    } else {
        t.raw_data = t.raw_data.chunks(4).flat_map(|_| value.to_le_bytes()).collect();
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn space(params: &str) -> Content {
    Content::Text(format!("name = \"s\"\nbase = \"a.toml\"\n[params]\n{params}\n"))
}

fn cases() -> Vec<Case> {
    let a = || ("a.toml", arch_with("name", "name = \"4x4-ws\""));
    let w = || ("w.toml", gemm("1", "64", "10", ""));
    let compile_a = ["compile", "--arch", "a.toml", "--workload", "w.toml"];
    let sim_w = ["simulate", "--arch", "a.toml", "--workload", "w.toml"];
    let tiny = repo().join("configs/models/tiny_float.onnx").display().to_string();
    let tiny_q = repo().join("configs/models/tiny_qop.onnx").display().to_string();
    let tiny = Box::leak(tiny.into_boxed_str()) as &str;
    let tiny_q = Box::leak(tiny_q.into_boxed_str()) as &str;
    let arch_case =
        |name, key: &str, line: &str, expect: &[&'static str]| case(name, vec![("a.toml", arch_with(key, line)), w()], &compile_a, expect);
    let wl_case = |name, wl: Content, expect: &[&'static str]| case(name, vec![a(), ("w.toml", wl)], &sim_w, expect);
    let mut c = vec![
        // Architecture files.
        case(
            "an empty arch file",
            vec![("a.toml", text("")), w()],
            &compile_a,
            &["a.toml", "`acc_sram_kib`", "is missing; it has no default"],
        ),
        arch_case("an arch without rows", "rows", "", &["a.toml", "invalid `rows`: is missing"]),
        arch_case("an arch without a name", "name", "", &["invalid `name`: is missing"]),
        arch_case("an arch without clock_mhz", "clock_mhz", "", &["invalid `clock_mhz`: is missing"]),
        arch_case(
            "a 1 PiB activation scratchpad",
            "act_sram_kib",
            "act_sram_kib = 1099511627776",
            &["invalid `act_sram_kib`", "(128 MiB) accepted"],
        ),
        arch_case(
            "a scratchpad of 2^54 + 1 KiB",
            "act_sram_kib",
            "act_sram_kib = 18014398509481985",
            &["invalid `act_sram_kib`", "accepted"],
        ),
        arch_case("a weight scratchpad of 2^40 KiB", "wgt_sram_kib", "wgt_sram_kib = 1099511627776", &["invalid `wgt_sram_kib`"]),
        arch_case("an accumulator of 2^40 KiB", "acc_sram_kib", "acc_sram_kib = 1099511627776", &["invalid `acc_sram_kib`"]),
        arch_case(
            "more scratchpad words than an address reaches",
            "act_sram_kib",
            "act_sram_kib = 131072",
            &["invalid `act_sram_kib`", "24-bit address"],
        ),
        arch_case(
            "2^32 - 1 parameter entries",
            "param_entries",
            "param_entries = 4294967295",
            &["invalid `param_entries`", "24-bit address"],
        ),
        arch_case("a name with a newline", "name", "name = \"a\\nb\"", &["invalid `name`", "printable ASCII characters"]),
        arch_case("a name with a quote", "name", "name = \"a\\\"b\"", &["invalid `name`"]),
        arch_case("an empty name", "name", "name = \"\"", &["invalid `name`"]),
        arch_case("a 65-character name", "name", &format!("name = \"{}\"", "x".repeat(65)), &["invalid `name`", "1 to 64"]),
        arch_case("zero rows", "rows", "rows = 0", &["invalid `rows`", "outside 1..=256"]),
        arch_case("257 columns", "cols", "cols = 257", &["invalid `cols`", "outside 1..=256"]),
        arch_case("negative columns", "cols", "cols = -1", &["a.toml", "cols"]),
        arch_case("rows as a string", "rows", "rows = \"4\"", &["a.toml", "rows"]),
        arch_case("a float row count", "rows", "rows = 4.5", &["a.toml", "rows"]),
        arch_case("zero DRAM bandwidth", "dram_bytes_per_cycle", "dram_bytes_per_cycle = 0", &["invalid `dram_bytes_per_cycle`"]),
        arch_case(
            "100 KB a cycle of DRAM bandwidth",
            "dram_bytes_per_cycle",
            "dram_bytes_per_cycle = 100000",
            &["invalid `dram_bytes_per_cycle`", "4096"],
        ),
        arch_case("a DRAM latency of 1", "dram_latency", "dram_latency = 1", &["invalid `dram_latency`", "at least 2"]),
        arch_case("a DRAM latency of 10^9", "dram_latency", "dram_latency = 1000000000", &["invalid `dram_latency`", "100000"]),
        arch_case("a NaN clock", "clock_mhz", "clock_mhz = nan", &["invalid `clock_mhz`"]),
        arch_case("an infinite clock", "clock_mhz", "clock_mhz = inf", &["invalid `clock_mhz`"]),
        arch_case(
            "a zero clock",
            "clock_mhz",
            "clock_mhz = 0.0",
            &["invalid `clock_mhz`: 0 is not a frequency above 0 and at most 10000 MHz"],
        ),
        arch_case("a 1 THz clock", "clock_mhz", "clock_mhz = 1000000.0", &["invalid `clock_mhz`", "10000"]),
        arch_case("fetch_cycles 3", "fetch_cycles", "fetch_cycles = 3", &["invalid `fetch_cycles`", "[1, 2, 4, 8]"]),
        arch_case("12 requant stages", "requant_stages", "requant_stages = 12", &["invalid `requant_stages`"]),
        arch_case("requant_interval 5", "requant_interval", "requant_interval = 5", &["invalid `requant_interval`"]),
        arch_case("an instruction queue of 3", "instr_queue", "instr_queue = 3", &["invalid `instr_queue`", "power of two"]),
        arch_case("an instruction queue of 2^40", "instr_queue", "instr_queue = 1099511627776", &["invalid `instr_queue`"]),
        arch_case("3 vector lanes on a 4x4", "vector_lanes", "vector_lanes = 3", &["invalid `vector_lanes`", "does not divide"]),
        arch_case("sparsity 3:4", "sparsity", "sparsity = \"3:4\"", &["a.toml", "sparsity"]),
        arch_case("an unknown field", "rowz", "rowz = 4", &["a.toml", "rowz"]),
        arch_case("an unknown dataflow", "dataflow", "dataflow = \"diagonal\"", &["a.toml", "dataflow"]),
        arch_case("an empty activation scratchpad", "act_sram_kib", "act_sram_kib = 0", &["invalid `act_sram_kib`"]),
        arch_case("an empty weight scratchpad", "wgt_sram_kib", "wgt_sram_kib = 0", &["invalid `wgt_sram_kib`"]),
        arch_case("OS without the transposer", "dataflow", "dataflow = \"os\"\ntransposer = false", &["invalid `transposer`"]),
        arch_case("int4 activations without int4 weights", "int4_activations", "int4_activations = true", &["invalid `int4_activations`"]),
        arch_case("five PE stages", "pe_stages", "pe_stages = 5", &["invalid `pe_stages`"]),
        arch_case("a TOML syntax error", "rows", "rows = = 4", &["a.toml", "TOML parse error"]),
        case(
            "an arch that is /dev/zero",
            vec![w()],
            &["compile", "--arch", "/dev/zero", "--workload", "w.toml"],
            &["/dev/zero: is not a regular file"],
        ),
        case(
            "an arch that is a directory",
            vec![w()],
            &["compile", "--arch", ".", "--workload", "w.toml"],
            &["is a directory, not an architecture file"],
        ),
        case(
            "an arch that is not UTF-8",
            vec![("a.toml", Content::Bytes(b"name = \"\xff\"\n".to_vec())), w()],
            &compile_a,
            &["a.toml: is not UTF-8 text"],
        ),
        case(
            "an arch that does not exist",
            vec![w()],
            &["compile", "--arch", "none.toml", "--workload", "w.toml"],
            &["cannot read none.toml"],
        ),
        case(
            "a 20 MB arch file",
            vec![("a.toml", Content::Bytes(vec![b'#'; 20 << 20])), w()],
            &compile_a,
            &["a.toml: is 20971520 bytes, more than the 16777216"],
        ),
        case(
            "an arch linked to /dev/full",
            vec![("a.toml", Content::Link("/dev/full")), w()],
            &compile_a,
            &["a.toml: is not a regular file"],
        ),
        case(
            "rtl of an arch with a newline in its name",
            vec![("a.toml", arch_with("name", "name = \"x\\ny\""))],
            &["rtl", "--arch", "a.toml", "--out", "rtl"],
            &["invalid `name`"],
        ),
        // Workloads.
        wl_case("a batch of 10^12", gemm("1", "64", "10", "batch = 1000000000000"), &["w.toml", "batch", "1073741824"]),
        wl_case("a 10^6 cubed GEMM", gemm("1000000", "1000000", "1000000", ""), &["w.toml", "1073741824 accepted"]),
        wl_case("a 2^32 cubed GEMM", gemm("4294967296", "4294967296", "4294967296", ""), &["w.toml", "1073741824 accepted"]),
        wl_case("a GEMM beyond the cycle bound", gemm("4096", "4096", "4096", ""), &["layer `g`", "67108864 accepted for one layer"]),
        wl_case("a GEMM with m = 0", gemm("0", "64", "10", ""), &["w.toml", "invalid `layer[0] (g).m`: must be at least 1"]),
        wl_case("a GEMM with n = 0", gemm("1", "64", "0", ""), &["w.toml", "invalid `layer[0] (g).n`: must be at least 1"]),
        wl_case("a GEMM with k = 2^31", gemm("1", "2147483648", "1", ""), &["w.toml", "invalid `layer[0] (g).k`: 2147483648 is more than"]),
        wl_case("a zero kernel", conv("kernel = 0"), &["w.toml", "kernel", "must be at least 1"]),
        wl_case("a zero stride", conv("stride = 0"), &["w.toml", "stride", "must be at least 1"]),
        wl_case("zero groups", conv("groups = 0"), &["w.toml", "groups", "must be at least 1"]),
        wl_case("groups that do not divide", conv("groups = 3"), &["w.toml", "groups", "do not divide"]),
        wl_case("padding as large as the kernel", conv("kernel = 3\npadding = 3"), &["w.toml", "padding"]),
        wl_case("a kernel larger than the input", conv("kernel = 11"), &["w.toml", "kernel", "exceeds"]),
        wl_case("a NaN weight scale", conv("quant = { w_scale = nan }"), &["w.toml", "w_scale"]),
        wl_case("a negative weight scale", conv("quant = { w_scale = -0.5 }"), &["w.toml", "w_scale"]),
        wl_case("a zero input scale", conv("quant = { x_scale = 0.0 }"), &["w.toml", "x_scale"]),
        wl_case("an unknown layer field", conv("strides = 2"), &["w.toml", "strides"]),
        wl_case("an unknown operator", workload("name = \"p\"\nop = \"pool\"\ninput = [4, 4, 4]"), &["w.toml", "pool"]),
        case(
            "two layers of one name",
            vec![
                a(),
                (
                    "w.toml",
                    Content::Text(format!(
                        "{}\n[[layer]]\nname = \"g\"\nop = \"gemm\"\nm = 2\nk = 8\nn = 8\n",
                        text_of(gemm("1", "64", "10", ""))
                    )),
                ),
            ],
            &sim_w,
            &["w.toml", "layer[1].name", "`g`", "used twice"],
        ),
        case("a workload without layers", vec![a(), ("w.toml", text("name = \"w\"\n"))], &sim_w, &["w.toml", "layer"]),
        wl_case(
            "an input from /dev/zero",
            gemm("1", "64", "10", "data = { input = \"/dev/zero\" }"),
            &["/dev/zero: is not a regular file"],
        ),
        wl_case("an input that does not exist", gemm("1", "64", "10", "data = { input = \"none.npy\" }"), &["none.npy"]),
        case(
            "an input of the wrong shape",
            vec![a(), ("w.toml", gemm("1", "64", "10", "data = { input = \"x.npy\" }")), ("x.npy", npy("|i1", &[63], &[0; 63]))],
            &sim_w,
            &["x.npy", "shape [63] does not match the expected [1, 1, 1, 64]"],
        ),
        case(
            "float weights for int8",
            vec![
                a(),
                ("w.toml", gemm("1", "64", "10", "data = { weights = \"k.npy\" }")),
                ("k.npy", npy("<f4", &[10, 64], &f32_bytes(&[0.0; 640]))),
            ],
            &sim_w,
            &["k.npy", "dtype <f4, expected |i1"],
        ),
        case(
            "an .npy header claiming 2^40 elements",
            vec![
                a(),
                ("w.toml", gemm("1", "64", "10", "data = { input = \"x.npy\" }")),
                ("x.npy", npy("|i1", &[1 << 20, 1 << 20], &[0; 64])),
            ],
            &sim_w,
            &["x.npy", "needs more data than the file's"],
        ),
        case(
            "an .npy with a truncated body",
            vec![a(), ("w.toml", gemm("1", "64", "10", "data = { input = \"x.npy\" }")), ("x.npy", npy("|i1", &[1, 64], &[0; 10]))],
            &sim_w,
            &["x.npy", "truncated"],
        ),
        case(
            "an .npy of garbage",
            vec![
                a(),
                ("w.toml", gemm("1", "64", "10", "data = { input = \"x.npy\" }")),
                ("x.npy", Content::Bytes(b"PK\x03\x04 not numpy".to_vec())),
            ],
            &sim_w,
            &["x.npy", "not a NumPy .npy file"],
        ),
        // Models.
        case(
            "a model of garbage bytes",
            vec![a(), ("m.onnx", Content::Bytes(b"\xff\xff\xff\xff garbage".to_vec()))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "not a readable ONNX model"],
        ),
        case(
            "a model that is /dev/zero",
            vec![a()],
            &["simulate", "--arch", "a.toml", "--model", "/dev/zero"],
            &["/dev/zero: is not a regular file", "an ONNX model"],
        ),
        case(
            "a model that is a directory",
            vec![a()],
            &["simulate", "--arch", "a.toml", "--model", "."],
            &["is a directory, not an ONNX model"],
        ),
        case(
            "a graph without outputs",
            vec![a(), ("m.onnx", model_with("tiny_qop.onnx", |m| m.graph.as_mut().unwrap().output.clear()))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "the graph has no outputs"],
        ),
        case(
            "a Conv with group 0",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_attr(m, "Conv", "group", 0)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "group = 0; it must be at least 1"],
        ),
        case(
            "a Conv with negative pads",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_attr(m, "Conv", "pads", -1)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "pads has the negative value -1"],
        ),
        case(
            "a Conv with pads of 100000",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_attr(m, "Conv", "pads", 100_000)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx"],
        ),
        case(
            "a Conv with strides of 2^40",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_attr(m, "Conv", "strides", 1 << 40)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "strides has the value 1099511627776, more than the 1048576 accepted"],
        ),
        case(
            "NaN Conv weights",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_initializer(m, "Conv", 1, f32::NAN)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "NaN at element 0; weights and constants must be finite"],
        ),
        case(
            "a negative BatchNormalization variance",
            vec![a(), ("m.onnx", model_with("tiny_float.onnx", |m| set_initializer(m, "BatchNormalization", 4, -1.0)))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx", "variance -1 plus epsilon"],
        ),
        case(
            "an empty model file",
            vec![a(), ("m.onnx", Content::Bytes(vec![]))],
            &["simulate", "--arch", "a.toml", "--model", "m.onnx"],
            &["m.onnx"],
        ),
        case(
            "an all-NaN model input",
            vec![a(), ("x.npy", npy("<f4", &[1, 3, 16, 16], &f32_bytes(&[f32::NAN; 768])))],
            &["simulate", "--arch", "a.toml", "--model", tiny, "--input", "x.npy"],
            &["x.npy", "NaN or infinite"],
        ),
        case(
            "an infinite calibration input",
            vec![a(), ("c.npy", npy("<f4", &[1, 3, 16, 16], &f32_bytes(&[f32::INFINITY; 768])))],
            &["simulate", "--arch", "a.toml", "--model", tiny, "--calibrate", "c.npy"],
            &["c.npy", "NaN or infinite"],
        ),
        case(
            "a calibration batch of other images with as many values",
            vec![a(), ("c.npy", npy("<f4", &[4, 3, 8, 8], &f32_bytes(&[0.5; 768])))],
            &["simulate", "--arch", "a.toml", "--model", tiny, "--calibrate", "c.npy"],
            &["c.npy", "a batch of shape [4, 3, 8, 8] is not a whole number of inputs of shape [1, 3, 16, 16]"],
        ),
        case(
            "a calibration batch of another shape",
            vec![a(), ("c.npy", npy("<f4", &[2, 3, 8, 8], &f32_bytes(&[0.5; 384])))],
            &["simulate", "--arch", "a.toml", "--model", tiny, "--calibrate", "c.npy"],
            &["c.npy", "shape"],
        ),
        case(
            "--calib-samples 0",
            vec![a()],
            &["simulate", "--arch", "a.toml", "--model", tiny, "--calib-samples", "0"],
            &["--calib-samples", "0"],
        ),
        case(
            "--instr-depth 2^64 - 1",
            vec![a()],
            &["simulate", "--arch", "a.toml", "--model", tiny_q, "--instr-depth", "18446744073709551615"],
            &["--instr-depth"],
        ),
        case(
            "--instr-depth 0",
            vec![a()],
            &["simulate", "--arch", "a.toml", "--model", tiny_q, "--instr-depth", "0"],
            &["--instr-depth", "0"],
        ),
        case(
            "--jobs 100000",
            vec![a(), w()],
            &["simulate", "--arch", "a.toml", "--workload", "w.toml", "--jobs", "100000"],
            &["--jobs", "100000"],
        ),
        case("--jobs 0", vec![a(), w()], &["simulate", "--arch", "a.toml", "--workload", "w.toml", "--jobs", "0"], &["--jobs", "0"]),
        case(
            "bench --repeat 0",
            vec![a(), w()],
            &["bench", "--arch", "a.toml", "--workload", "w.toml", "--repeat", "0"],
            &["--repeat", "0"],
        ),
        case("export-model --size 1", vec![], &["export-model", "mobilenetv2", "--out", "m.onnx", "--size", "1"], &["--size", "1"]),
        case("export-model --size 10^6", vec![], &["export-model", "mobilenetv2", "--out", "m.onnx", "--size", "1000000"], &["--size"]),
        case(
            "fpga build --clock-mhz nan",
            vec![a()],
            &["fpga", "build", "--board", "icebreaker", "--arch", "a.toml", "--out", "b", "--clock-mhz", "nan"],
            &["--clock-mhz", "NaN"],
        ),
        case(
            "fpga build --clock-mhz -5",
            vec![a()],
            &["fpga", "build", "--board", "icebreaker", "--arch", "a.toml", "--out", "b", "--clock-mhz=-5"],
            &["--clock-mhz"],
        ),
        case(
            "fpga build --baud 0",
            vec![a()],
            &["fpga", "build", "--board", "icebreaker", "--arch", "a.toml", "--out", "b", "--baud", "0"],
            &["--baud 0", "within 2%"],
        ),
        case(
            "fpga build --baud 2^32 - 1",
            vec![a()],
            &["fpga", "build", "--board", "icebreaker", "--arch", "a.toml", "--out", "b", "--baud", "4294967295"],
            &["--baud 4294967295", "within 2%"],
        ),
        case(
            "fpga build --mem-kib 2^40",
            vec![a()],
            &["fpga", "build", "--board", "icebreaker", "--arch", "a.toml", "--out", "b", "--mem-kib", "1099511627776"],
            &["--mem-kib"],
        ),
        case(
            "fpga run --timeout-s 0",
            vec![a()],
            &["fpga", "run", "--sim", "--board", "icebreaker", "--arch", "a.toml", "--model", tiny_q, "--timeout-s", "0"],
            &["--timeout-s", "above 0"],
        ),
        case(
            "search --budget-db inf",
            vec![a()],
            &["search", "--model", tiny, "--arch", "a.toml", "--budget-db", "inf", "--out", "o"],
            &["--budget-db", "inf"],
        ),
        // Spaces and results.
        case(
            "a space repeating a value",
            vec![a(), w(), ("s.toml", space("rows = [4, 4, 4]"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["s.toml", "params.rows[1]", "repeats 4"],
        ),
        case(
            "a space without a base",
            vec![a(), w(), ("s.toml", text("name = \"s\"\n[params]\nrows = [4]\n"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["s.toml", "base"],
        ),
        case(
            "a space name with a slash",
            vec![a(), w(), ("s.toml", text("name = \"s/t\"\nbase = \"a.toml\"\n[params]\nrows = [4]\n"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["s.toml", "invalid `name`"],
        ),
        case(
            "a space of 2.6e9 points",
            vec![
                a(),
                w(),
                (
                    "s.toml",
                    space(
                        &["rows", "cols", "dram_latency", "act_sram_kib"]
                            .map(|f| format!("{f} = [{}]\n", (1..=226).map(|v| v.to_string()).collect::<Vec<_>>().join(", ")))
                            .concat(),
                    ),
                ),
            ],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["s.toml", "more than the 1048576 a sweep evaluates", "[sample]"],
        ),
        case(
            "a space sampling 0 points",
            vec![a(), w(), ("s.toml", text("name = \"s\"\nbase = \"a.toml\"\n[params]\nrows = [4]\n[sample]\npoints = 0\n"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["sample.points"],
        ),
        case(
            "a space of an unknown field",
            vec![a(), w(), ("s.toml", space("rowz = [4]"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["s.toml", "params.rowz"],
        ),
        case(
            "a space that is /dev/zero",
            vec![a(), w()],
            &["sweep", "--space", "/dev/zero", "--workload", "w.toml", "--out", "o"],
            &["/dev/zero: is not a regular file"],
        ),
        case(
            "a results file linked to /dev/full",
            vec![a(), w(), ("s.toml", space("rows = [4]")), ("o/results.jsonl", Content::Link("/dev/full"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["results.jsonl: is not a regular file"],
        ),
        case(
            "a results file with a garbage line",
            vec![a(), w(), ("s.toml", space("rows = [4]")), ("o/results.jsonl", text("{\"id\": 0}\n"))],
            &["sweep", "--space", "s.toml", "--workload", "w.toml", "--out", "o"],
            &["results.jsonl:1: not a sweep record"],
        ),
        case("a report of no results", vec![], &["report", "."], &["no results"]),
        case(
            "merge of a file that is not a shard",
            vec![("r.jsonl", text(""))],
            &["sweep", "merge", "--out", "m", "r.jsonl"],
            &["r.jsonl: not a shard's results file"],
        ),
        case(
            "merge of a missing shard file",
            vec![],
            &["sweep", "merge", "--out", "m", "results-0-of-1.jsonl"],
            &["results-0-of-1.jsonl: no such file"],
        ),
    ];
    c.retain(|case| !case.name.is_empty());
    c
}

fn text_of(c: Content) -> String {
    match c {
        Content::Text(t) => t,
        _ => unreachable!(),
    }
}

/// Runs every case; collects every failure so that one run shows them all.
#[test]
fn every_bad_input_gets_an_error_naming_it() {
    let cases = cases();
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let root = std::env::temp_dir().join(format!("systole-bad-inputs-{}", std::process::id()));
    let mut failures = vec![];
    for (i, c) in cases.iter().enumerate() {
        let dir = root.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in &c.files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            match content {
                Content::Text(t) => std::fs::write(&p, t).unwrap(),
                Content::Bytes(b) => std::fs::write(&p, b).unwrap(),
                Content::Link(target) => std::os::unix::fs::symlink(target, &p).unwrap(),
            }
        }
        // A hang is a failure too: every case ends within the limit.
        let out = Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_systole"))
            .args(&c.args)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "400")
            .output()
            .unwrap();
        // Squeezed as miette wraps it: its margin's `│` and the line breaks removed.
        let err = String::from_utf8_lossy(&out.stderr).replace('│', " ").split_whitespace().collect::<Vec<_>>().join(" ");
        let code = out.status.code();
        let problem = if code == Some(124) {
            Some("hung (killed after 60 s)".to_string())
        } else if out.status.success() {
            Some("succeeded".to_string())
        } else if err.contains("panicked") || code != Some(1) && code != Some(2) {
            Some(format!("crashed (exit {code:?})"))
        } else {
            c.expect.iter().find(|e| !err.contains(*e)).map(|e| format!("does not say `{e}`"))
        };
        if std::env::var_os("SYSTOLE_SHOW_ERRORS").is_some() {
            println!("{}: {err}", c.name);
        }
        if let Some(p) = problem {
            failures.push(format!("{} ({}): {p}\n    systole {}\n    {err}", c.name, i, c.args.join(" ")));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
