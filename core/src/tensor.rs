//! A dense int8 tensor in NHWC (activations) or KRSC (weights) order.

use serde::{Deserialize, Serialize};

/// The 64-bit FNV-1a hash of `bytes`: short, stable digests for reports and files.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Row-major strides (in elements) of a tensor of `shape`.
pub fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// A gather over a tensor of `out` shape: for each position, in row-major order, the input
/// index it reads, `offset(axis, i)` summed over the axes of its multi-index.
pub fn gather_indices(out: &[usize], offset: impl Fn(usize, usize) -> usize) -> Vec<usize> {
    let total: usize = out.iter().product();
    let mut idx = vec![0; out.len()];
    let mut indices = Vec::with_capacity(total);
    for _ in 0..total {
        indices.push(idx.iter().enumerate().map(|(d, &i)| offset(d, i)).sum());
        for d in (0..idx.len()).rev() {
            idx[d] += 1;
            if idx[d] < out[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    indices
}

/// ONNX Transpose as a gather: for each output position, in row-major order, the input
/// index it reads (output axis `i` is input axis `perm[i]`).
pub fn transpose_order(shape: &[usize], perm: &[usize]) -> Vec<usize> {
    let in_strides = row_major_strides(shape);
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    gather_indices(&out_shape, |d, i| i * in_strides[perm[d]])
}

/// For each element of a row-major tensor picked along each axis of a row-major `input`
/// tensor (output index `i` of axis `d` reads input index `picks[d][i]`), the input index
/// it reads.
pub fn select_indices(input: &[usize], picks: &[Vec<usize>]) -> Vec<usize> {
    let strides = row_major_strides(input);
    let out: Vec<usize> = picks.iter().map(Vec::len).collect();
    gather_indices(&out, |d, i| picks[d][i] * strides[d])
}

/// A dense 4-D int8 tensor, row-major over `dims`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tensor {
    /// Extents, outermost first: NHWC for activations, KRSC for weights.
    pub dims: [usize; 4],
    /// `dims.iter().product()` values.
    pub data: Vec<i8>,
}

impl Tensor {
    /// A tensor filled with `value`.
    pub fn filled(dims: [usize; 4], value: i8) -> Self {
        Self { dims, data: vec![value; dims.iter().product()] }
    }

    /// Wraps `data`, which must have `dims.iter().product()` values.
    pub fn from_vec(dims: [usize; 4], data: Vec<i8>) -> Self {
        assert_eq!(data.len(), dims.iter().product::<usize>(), "tensor size");
        Self { dims, data }
    }

    /// Flat index of `[a, b, c, d]`.
    #[inline]
    pub fn index(&self, i: [usize; 4]) -> usize {
        ((i[0] * self.dims[1] + i[1]) * self.dims[2] + i[2]) * self.dims[3] + i[3]
    }

    /// The value at `[a, b, c, d]`.
    #[inline]
    pub fn at(&self, i: [usize; 4]) -> i8 {
        self.data[self.index(i)]
    }

    /// A 64-bit FNV-1a digest of dims and data, for reports.
    pub fn digest(&self) -> u64 {
        fnv1a(self.dims.iter().flat_map(|&d| (d as u64).to_le_bytes()).chain(self.data.iter().map(|&v| v as u8)))
    }

    /// The first index where `self` and `other` differ, with both values.
    pub fn first_mismatch(&self, other: &Tensor) -> Option<([usize; 4], i8, i8)> {
        if self.dims != other.dims {
            return Some(([usize::MAX; 4], 0, 0));
        }
        let pos = self.data.iter().zip(&other.data).position(|(a, b)| a != b)?;
        let mut rest = pos;
        let mut idx = [0; 4];
        for d in (0..4).rev() {
            idx[d] = rest % self.dims[d];
            rest /= self.dims[d];
        }
        Some((idx, self.data[pos], other.data[pos]))
    }
}

/// For each element of a row-major tensor of `out` shape, the index of the element of a
/// tensor of `input` shape that numpy broadcasting pairs with it (`input` aligned to the
/// right, its size-1 axes repeated).
pub fn broadcast_indices(out: &[usize], input: &[usize]) -> Vec<usize> {
    let rank = out.len();
    let padded: Vec<usize> = std::iter::repeat_n(1, rank - input.len().min(rank)).chain(input.iter().copied()).collect();
    let strides = row_major_strides(&padded);
    gather_indices(out, |d, i| if padded[d] == 1 { 0 } else { i * strides[d] })
}
