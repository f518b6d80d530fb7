//! Helpers shared by the CLI's integration tests.

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
