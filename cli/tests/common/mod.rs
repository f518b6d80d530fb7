//! Helpers shared by the CLI's integration tests; each test file that includes this module
//! uses part of it.

#![allow(dead_code)]

/// An `.npy` file with a header of dtype `descr` and shape `dims` followed by `data`,
/// written by NumPy's format rules (version 1.0, the header padded to 64 bytes) whatever the
/// data's length, so that tests can make headers that lie.
pub fn npy_bytes(descr: &str, dims: &[u64], data: &[u8]) -> Vec<u8> {
    let shape = dims.iter().map(|d| format!("{d}, ")).collect::<String>();
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// `systole sweep` over the whole `space` on `workload`, unsharded, into `out`; returns
/// its results file's lines ordered by point id. A sweep appends points as they finish and
/// a merge writes them by id, so this is what a merge of the same sweep's shards must equal.
pub fn unsharded_sweep_by_id(space: &std::path::Path, workload: &std::path::Path, out: &std::path::Path) -> String {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_systole"))
        .args(["sweep", "--space"])
        .arg(space)
        .arg("--workload")
        .arg(workload)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(run.status.success(), "unsharded sweep: {}", String::from_utf8_lossy(&run.stderr));
    let path = out.join("results.jsonl");
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<(u64, &str)> =
        body.lines().map(|l| (serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap(), l)).collect();
    lines.sort_by_key(|(id, _)| *id);
    lines.iter().map(|(_, l)| format!("{l}\n")).collect()
}
