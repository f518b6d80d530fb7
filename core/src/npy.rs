//! Reading and writing tensors as NumPy `.npy` files (through the `npyz` crate).
//!
//! Shapes are compared after dropping axes of extent 1, so an `[H, W, C]` array serves an
//! `[1, H, W, C]` tensor and an `[M, K]` array a GEMM input.

use crate::error::LoadError;
use npyz::WriterBuilder;
use std::path::Path;

/// `dims` without axes of extent 1: shapes equal up to those axes squeeze equal.
pub fn squeeze(dims: &[usize]) -> Vec<usize> {
    dims.iter().copied().filter(|&d| d != 1).collect()
}

fn data_error(path: &Path, message: String, help: String) -> LoadError {
    LoadError::Data { path: path.to_owned(), message, help }
}

/// An element type `.npy` files can carry for Systole.
pub trait Element: npyz::Deserialize + npyz::Serialize + npyz::AutoSerialize + Copy {
    /// The NumPy dtype string, e.g. `|i1`.
    const DESCR: &'static str;
    /// The NumPy name, for messages.
    const NAME: &'static str;
    /// Bytes per element.
    const SIZE: u64;
    /// Whether the value is a number (not NaN or an infinity).
    fn is_finite(self) -> bool {
        true
    }
}

impl Element for i8 {
    const DESCR: &'static str = "|i1";
    const NAME: &'static str = "int8";
    const SIZE: u64 = 1;
}

impl Element for i32 {
    const DESCR: &'static str = "<i4";
    const NAME: &'static str = "int32";
    const SIZE: u64 = 4;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    const NAME: &'static str = "float32";
    const SIZE: u64 = 4;
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

/// The header of the `.npy` file at `path`, read (with a size cap, before any data) from a
/// regular file, and the file's length.
fn open(path: &Path, what: &str) -> Result<(npyz::NpyFile<std::io::BufReader<std::fs::File>>, u64), LoadError> {
    let (file, len) = crate::input::open(path, crate::input::MAX_NPY_BYTES, "a NumPy .npy file")?;
    let mut file = std::io::BufReader::new(file);
    // npyz multiplies the header's dimensions unchecked (an overflow panics in debug builds
    // and wraps in release), so a shape whose product overflows is refused first.
    let prefix = std::io::BufRead::fill_buf(&mut file).map_err(|source| LoadError::Io { path: path.to_owned(), source })?;
    if let Some(problem) = header_problem(prefix, len) {
        return Err(data_error(path, format!("{what}: {problem}"), "the header is damaged; save the array again".into()));
    }
    let npy = npyz::NpyFile::new(file)
        .map_err(|e| data_error(path, format!("{what}: not a NumPy .npy file ({e})"), "save the array with numpy.save".into()))?;
    Ok((npy, len))
}

/// Largest `.npy` header accepted (NumPy's own `np.load` refuses headers beyond 10,000
/// bytes by default).
const MAX_NPY_HEADER_BYTES: u64 = 1 << 16;

/// What npyz would choke on in the first bytes of an `.npy` file of `len` bytes, checked
/// before it parses them: a header length beyond the file or [`MAX_NPY_HEADER_BYTES`] (npyz
/// allocates it), or a `'shape'` whose product overflows `u64` (npyz multiplies unchecked).
fn header_problem(prefix: &[u8], len: u64) -> Option<String> {
    let header_len = match prefix.get(6) {
        Some(1) => prefix.get(8..10).map(|b| u16::from_le_bytes([b[0], b[1]]) as u64 + 10),
        Some(2 | 3) => prefix.get(8..12).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64 + 12),
        _ => None,
    };
    if let Some(h) = header_len {
        if h > len || h > MAX_NPY_HEADER_BYTES {
            return Some(format!("the header claims {h} bytes, the file has {len} (at most {MAX_NPY_HEADER_BYTES} are accepted)"));
        }
    }
    let text = String::from_utf8_lossy(&prefix[..prefix.len().min(MAX_NPY_HEADER_BYTES as usize)]);
    let rest = &text[text.find("'shape'")?..];
    let (open, close) = (rest.find('(')?, rest.find(')')?);
    if close < open {
        return None;
    }
    let product = rest[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .try_fold(1u64, |a, d| d.trim_end_matches('L').parse::<u64>().ok().map_or(Some(a), |d| a.checked_mul(d)));
    product.is_none().then(|| "the header's shape has more than 2^64 elements".to_string())
}

/// The shape in the header of `npy`, after checking that its elements exist in a file of
/// `len` bytes and number at most [`crate::input::MAX_TENSOR_ELEMENTS`].
fn header_shape<R: std::io::Read>(
    npy: &npyz::NpyFile<R>,
    len: u64,
    elem_size: u64,
    path: &Path,
    what: &str,
) -> Result<Vec<usize>, LoadError> {
    match crate::input::tensor_elements(npy.shape().iter().copied()) {
        Some(n) if n.saturating_mul(elem_size) <= len => Ok(npy.shape().iter().map(|&d| d as usize).collect()),
        _ => Err(data_error(
            path,
            format!("{what}: the header's shape {:?} needs more data than the file's {len} bytes hold", npy.shape()),
            format!(
                "the file is truncated or its header is damaged; save the array again (at most {} elements)",
                crate::input::MAX_TENSOR_ELEMENTS
            ),
        )),
    }
}

/// Reads `path` as an array of `T` whose shape matches `dims` up to axes of extent 1.
/// `what` names the tensor in errors (e.g. `layer[2].data.input`). The header is checked
/// before any data is read; float values must be finite.
pub fn read<T: Element>(path: &Path, dims: &[usize], what: &str) -> Result<Vec<T>, LoadError> {
    let (npy, len) = open(path, what)?;
    read_data(npy, len, path, dims, what)
}

fn read_data<T: Element, R: std::io::Read>(
    npy: npyz::NpyFile<R>,
    len: u64,
    path: &Path,
    dims: &[usize],
    what: &str,
) -> Result<Vec<T>, LoadError> {
    let descr = match npy.dtype() {
        npyz::DType::Plain(t) => t.to_string(),
        other => other.descr(),
    };
    let descr_ok = descr == T::DESCR || (T::DESCR.ends_with("i1") && descr.ends_with("i1"));
    if !descr_ok {
        return Err(data_error(
            path,
            format!("{what}: dtype {descr}, expected {} ({})", T::DESCR, T::NAME),
            format!("convert with array.astype(numpy.{})", T::NAME),
        ));
    }
    let shape = header_shape(&npy, len, T::SIZE, path, what)?;
    if squeeze(&shape) != squeeze(dims) {
        return Err(data_error(
            path,
            format!("{what}: shape {shape:?} does not match the expected {dims:?}"),
            "axes of extent 1 may be dropped or added; the others must match in order".into(),
        ));
    }
    if npy.order() != npyz::Order::C {
        return Err(data_error(path, format!("{what}: Fortran-ordered array"), "save a C-ordered array (numpy.ascontiguousarray)".into()));
    }
    let data = npy
        .into_vec::<T>()
        .map_err(|e| data_error(path, format!("{what}: truncated or unreadable data ({e})"), "save the array again".into()))?;
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(data_error(
            path,
            format!("{what}: element {i} (of {} in C order) is NaN or infinite", data.len()),
            "replace the non-finite values (numpy.nan_to_num) or fix what produced them".into(),
        ));
    }
    Ok(data)
}

/// Reads `path` as an array of `T` of any shape (within the limits of [`read`]); returns the
/// shape and the data.
pub fn read_any<T: Element>(path: &Path, what: &str) -> Result<(Vec<usize>, Vec<T>), LoadError> {
    let (npy, len) = open(path, what)?;
    let shape = header_shape(&npy, len, T::SIZE, path, what)?;
    read_data(npy, len, path, &shape, what).map(|data| (shape, data))
}

/// Writes `data` with shape `dims` to `path`.
pub fn write<T: Element>(path: &Path, dims: &[usize], data: &[T]) -> std::io::Result<()> {
    let mut out = Vec::new();
    let shape: Vec<u64> = dims.iter().map(|&d| d as u64).collect();
    let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut out).begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    std::fs::write(path, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_squeezed_shapes() {
        let dir = std::env::temp_dir().join(format!("systole-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.npy");
        let data: Vec<i8> = (0..24).map(|i| i as i8 - 12).collect();
        write(&p, &[2, 3, 4], &data).unwrap();
        assert_eq!(read::<i8>(&p, &[1, 2, 3, 4], "x").unwrap(), data);
        let e = read::<i8>(&p, &[1, 3, 2, 4], "x").unwrap_err().to_string();
        assert!(e.contains("shape [2, 3, 4] does not match the expected [1, 3, 2, 4]"), "{e}");
        let e = read::<i32>(&p, &[2, 3, 4], "bias").unwrap_err().to_string();
        assert!(e.contains("dtype |i1, expected <i4 (int32)"), "{e}");
        std::fs::write(&p, b"\x93NUMPY garbage").unwrap();
        assert!(read::<i8>(&p, &[2, 3, 4], "x").unwrap_err().to_string().contains("not a NumPy .npy file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn truncated_data_is_an_error() {
        let dir = std::env::temp_dir().join(format!("systole-npy-trunc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("b.npy");
        write(&p, &[8], &[1i32; 8]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 5]).unwrap();
        assert!(read::<i32>(&p, &[8], "bias").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
