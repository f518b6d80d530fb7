//! Reading the files a user names: only regular files, at most a size that suits their kind,
//! text only as UTF-8. Every refusal names the path and says what to give instead.
//!
//! The checks come before any byte is read, so a device (`/dev/zero`, `/dev/full`), a
//! directory, a FIFO or a file far larger than its kind can be fails at once instead of
//! hanging or exhausting memory.

use crate::error::LoadError;
use std::io::Read;
use std::path::Path;

/// Largest text file read: an architecture, workload, space or policy TOML. The largest
/// bundled one is under 4 KiB; a generated workload of a thousand layers is under 1 MiB.
pub const MAX_TOML_BYTES: u64 = 16 << 20;

/// Largest `results.jsonl` read: a million points of about a kilobyte each.
pub const MAX_RESULTS_BYTES: u64 = 4 << 30;

/// Largest `.npy` file read: a tensor of 2^30 float32 values (see [`MAX_TENSOR_ELEMENTS`]).
pub const MAX_NPY_BYTES: u64 = (4 << 30) + (1 << 16);

/// Largest tensor read or made: 2^30 elements (a 224x224x3 batch of 7,000 images), far
/// beyond any activation or weight tensor of the networks Systole targets and small enough
/// that a few of them fit a workstation's memory.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 30;

/// The element count of a tensor of `dims` if it is at most [`MAX_TENSOR_ELEMENTS`]
/// (computed with checked products, so absurd extents cannot wrap).
pub fn tensor_elements(dims: impl IntoIterator<Item = u64>) -> Option<u64> {
    dims.into_iter().try_fold(1u64, |a, d| a.checked_mul(d)).filter(|&n| n <= MAX_TENSOR_ELEMENTS)
}

/// Largest ONNX file read: protobuf's own limit for one message (2 GiB).
pub const MAX_ONNX_BYTES: u64 = 2 << 30;

/// An error about the file at `path` itself (its kind, size or encoding).
fn refused(path: &Path, message: String, help: &str) -> LoadError {
    LoadError::Data { path: path.to_owned(), message, help: help.into() }
}

/// Opens `path` for reading after checking that it is a regular file of at most `cap`
/// bytes; `what` names the kind of file in messages (e.g. "an architecture file").
pub fn open(path: &Path, cap: u64, what: &str) -> Result<(std::fs::File, u64), LoadError> {
    let io = |source| LoadError::Io { path: path.to_owned(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return Err(refused(path, format!("is a directory, not {what}"), "name the file inside it"));
    }
    if !meta.is_file() {
        return Err(refused(
            path,
            format!("is not a regular file (a device, FIFO or socket), so it cannot be {what}"),
            "save the data to a file and name that file",
        ));
    }
    if meta.len() > cap {
        return Err(refused(
            path,
            format!("is {} bytes, more than the {cap} that {what} may be", meta.len()),
            "check that this is the intended file",
        ));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    Ok((file, meta.len()))
}

/// The bytes of `path`, a regular file of at most `cap` bytes (see [`open`]).
pub fn read_bytes(path: &Path, cap: u64, what: &str) -> Result<Vec<u8>, LoadError> {
    let (file, len) = open(path, cap, what)?;
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` guards a file that grows while it is read.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    if bytes.len() as u64 > cap {
        return Err(refused(path, format!("grew beyond {cap} bytes while it was read"), "read it when nothing writes it"));
    }
    Ok(bytes)
}

/// The text of `path`, a regular UTF-8 file of at most `cap` bytes (see [`open`]).
pub fn read_text(path: &Path, cap: u64, what: &str) -> Result<String, LoadError> {
    let bytes = read_bytes(path, cap, what)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        refused(path, format!("is not UTF-8 text (byte {at}, line {line}), so it cannot be {what}"), "save it as UTF-8 text")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: LoadError) -> String {
        match e {
            LoadError::Data { path, message, .. } => format!("{}: {message}", path.display()),
            other => other.to_string(),
        }
    }

    #[test]
    fn devices_directories_and_oversized_files_are_refused_before_reading() {
        let dir = std::env::temp_dir().join(format!("systole-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = message(read_text(Path::new("/dev/zero"), MAX_TOML_BYTES, "an architecture file").unwrap_err());
        assert_eq!(e, "/dev/zero: is not a regular file (a device, FIFO or socket), so it cannot be an architecture file");
        let e = message(read_text(&dir, MAX_TOML_BYTES, "a workload file").unwrap_err());
        assert!(e.ends_with("is a directory, not a workload file"), "{e}");
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        let e = message(read_text(&big, 100, "a space file").unwrap_err());
        assert!(e.ends_with("is 101 bytes, more than the 100 that a space file may be"), "{e}");
        let latin1 = dir.join("latin1.toml");
        std::fs::write(&latin1, b"name = \"a\"\nrows = \xe9\n").unwrap();
        let e = message(read_text(&latin1, 100, "an architecture file").unwrap_err());
        assert!(e.ends_with("is not UTF-8 text (byte 18, line 2), so it cannot be an architecture file"), "{e}");
        std::fs::write(&latin1, "rows = 4\n").unwrap();
        assert_eq!(read_text(&latin1, 100, "an architecture file").unwrap(), "rows = 4\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
