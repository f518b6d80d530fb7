//! Whole networks from ONNX files: ONNX Runtime's outputs (saved by
//! `scripts/dev/onnx_fixtures.py`) are the oracle; the golden network and the simulated one
//! must both equal them bit for bit.

use std::path::{Path, PathBuf};
use systole_core::network::{HostTensor, Network};
use systole_core::ArchConfig;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/models")
}

fn load(name: &str) -> Network {
    let path = models().join(name);
    let model = systole_compiler::onnx::read(&path).unwrap();
    systole_compiler::onnx::import(&model, &path).unwrap()
}

fn input(net: &Network) -> HostTensor {
    let shape = net.values[net.inputs[0].value].shape.clone();
    let data = systole_core::npy::read::<f32>(&models().join("tiny_input.npy"), &shape, "input").unwrap();
    HostTensor::F32 { shape, data }
}

fn expected(name: &str, shape: &[usize]) -> Vec<f32> {
    systole_core::npy::read::<f32>(&models().join(name), shape, "expected").unwrap()
}

fn check(model: &str, out: &str) {
    let net = load(model);
    let x = input(&net);
    let golden = systole_golden::network::run(&net, std::slice::from_ref(&x)).unwrap();
    let HostTensor::F32 { shape, data } = &golden[0] else { panic!("float output expected") };
    let ort = expected(out, shape);
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(data), bits(&ort), "{model}: golden network vs ONNX Runtime\n golden {data:?}\n ort    {ort:?}");
    let arch = ArchConfig::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/archs/4x4.toml")).unwrap();
    let programs = systole_runtime::compile(&arch, &net).unwrap();
    let run = systole_runtime::simulate(&arch, &net, &programs, &[x]).unwrap();
    assert_eq!(run.outputs, golden, "{model}: simulated network vs golden");
}

#[test]
fn qoperator_model_matches_onnx_runtime_bit_for_bit() {
    check("tiny_qop.onnx", "tiny_qop_out.npy");
}

#[test]
fn qdq_model_matches_onnx_runtime_bit_for_bit() {
    check("tiny_qdq.onnx", "tiny_qdq_out.npy");
}
