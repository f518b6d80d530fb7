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

/// A sweep results file's lines ordered by point id: a sweep appends points as they finish,
/// a merge writes them by id, so an unsharded run equals a merge once ordered.
pub fn sweep_lines_by_id(path: &std::path::Path) -> String {
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<(u64, &str)> =
        body.lines().map(|l| (serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_u64().unwrap(), l)).collect();
    lines.sort_by_key(|(id, _)| *id);
    lines.iter().map(|(_, l)| format!("{l}\n")).collect()
}
