use systole_core::network::HostTensor;
use systole_core::Unit;
fn main() {
    let arch = systole_core::ArchConfig::from_file(std::path::Path::new("configs/archs/16x16.toml")).unwrap();
    let path = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let model = systole_compiler::onnx::read(&path).unwrap();
    let samples = systole_compiler::onnx::ptq::random_samples(&model, 1, 3);
    let net = systole_compiler::onnx::import(&systole_compiler::onnx::ptq::quantize(&model, &path, &samples).unwrap(), &path).unwrap();
    let x = vec![samples[0][0].1.clone()].into_iter().map(|t| HostTensor::F32 { shape: t.shape, data: t.data }).collect::<Vec<_>>();
    let c = systole_runtime::compile(&arch, &net).unwrap();
    let (mut gap_exec, mut tail_store) = (0u64, 0u64);
    systole_runtime::simulate_observed(&arch, &net, &c.network, &x, |r| {
        let t = &r.execution.timing;
        let mut prev_end = 0u64;
        for l in r.layers {
            let lt = &t[l.first..l.end];
            let first_exec = lt.iter().filter(|t| t.unit == Unit::Exec).map(|t| t.start).min().unwrap();
            let last_exec = lt.iter().filter(|t| t.unit == Unit::Exec).map(|t| t.done).max().unwrap();
            let end = lt.iter().map(|t| t.done).max().unwrap();
            gap_exec += first_exec.saturating_sub(prev_end);
            tail_store += end - last_exec;
            prev_end = end;
        }
    })
    .unwrap();
    println!("exec start after previous end: {gap_exec}; store tail after last exec: {tail_store}");
}
