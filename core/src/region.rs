//! Float regions: computations ONNX Runtime leaves unquantized between DequantizeLinear and
//! QuantizeLinear. Its quantizer quantizes only the operators it has integer kernels for, so
//! `Sub -> Div -> Sum`, or a Sum feeding a GlobalAveragePool in a QOperator model, run in
//! f32 on dequantized inputs with one QuantizeLinear at the end. An
//! [`Op::FloatRegion`](crate::network::Op::FloatRegion) runs such a region on the host the
//! same way: its inputs dequantized, each step in f32, the last step's result quantized.

use crate::network::{softmax, BinaryFn, Lrn, Pool, UnaryFn};
use crate::tensor::{broadcast_indices, select_indices, transpose_order};
use serde::{Deserialize, Serialize};

/// A float tensor: shape and row-major data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

/// What one step reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FloatArg {
    /// Input `k` of the network node, dequantized.
    Input(usize),
    /// The result of an earlier step.
    Step(usize),
    /// A float constant (an initializer ONNX Runtime reads in float).
    Const(Box<FloatTensor>),
}

/// One step's operator, with ONNX's float semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FloatOp {
    /// Add, Sub, Mul or Div (numpy broadcasting); `None` is Add.
    Binary(Option<BinaryFn>),
    /// Sum of every argument, in order (numpy broadcasting).
    Sum,
    /// A nonlinearity.
    Unary(UnaryFn),
    /// Clip to `lo..=hi` (ReLU is `0..=inf`).
    Clip {
        /// Lower bound.
        lo: f32,
        /// Upper bound.
        hi: f32,
    },
    /// Softmax (see [`softmax`]).
    Softmax {
        /// The (first) axis reduced.
        axis: usize,
        /// Reduce the axes from `axis` on together.
        flat: bool,
    },
    /// LRN.
    Lrn(Lrn),
    /// Max (`max`) or average pooling of an NCHW tensor.
    Pool {
        /// The window.
        pool: Pool,
        /// Maximum instead of average.
        max: bool,
    },
    /// The same values under the step's shape (Reshape, Flatten, Squeeze, Unsqueeze).
    Reshape,
    /// Transpose with ONNX's `perm`.
    Transpose {
        /// Output axis `i` is input axis `perm[i]`.
        perm: Vec<usize>,
    },
    /// Elements picked along each axis (Slice, Split, nearest Resize).
    Select {
        /// For each axis, the input index of each output index.
        indices: Vec<Vec<usize>>,
    },
    /// Concatenation along `axis`.
    Concat {
        /// The axis.
        axis: usize,
    },
}

/// One step: an operator on arguments, giving a tensor of `shape`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatStep {
    /// The operator.
    pub op: FloatOp,
    /// Its arguments.
    pub args: Vec<FloatArg>,
    /// The result's shape.
    pub shape: Vec<usize>,
}

/// A float region: steps in order, the last one the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatRegion {
    /// The steps.
    pub steps: Vec<FloatStep>,
}

impl FloatRegion {
    /// The region on `inputs` (the node's inputs, dequantized): the last step's result.
    pub fn eval(&self, inputs: &[FloatTensor]) -> FloatTensor {
        let mut results: Vec<FloatTensor> = Vec::with_capacity(self.steps.len());
        for step in &self.steps {
            let args: Vec<&FloatTensor> = step
                .args
                .iter()
                .map(|a| match a {
                    FloatArg::Input(k) => &inputs[*k],
                    FloatArg::Step(j) => &results[*j],
                    FloatArg::Const(c) => &**c,
                })
                .collect();
            let data = step.op.apply(&args, &step.shape);
            results.push(FloatTensor { shape: step.shape.clone(), data });
        }
        results.pop().unwrap_or(FloatTensor { shape: vec![], data: vec![] })
    }
}

impl FloatOp {
    /// The operator on `args`, giving a tensor of shape `out`.
    pub fn apply(&self, args: &[&FloatTensor], out: &[usize]) -> Vec<f32> {
        let x = args[0];
        match self {
            FloatOp::Binary(f) => {
                let (a, b) = (broadcast_indices(out, &x.shape), broadcast_indices(out, &args[1].shape));
                a.iter()
                    .zip(&b)
                    .map(|(&i, &j)| {
                        let (p, q) = (x.data[i], args[1].data[j]);
                        f.map_or(p + q, |f| f.apply(p, q))
                    })
                    .collect()
            }
            FloatOp::Sum => {
                let mut sum: Vec<f32> = broadcast_indices(out, &x.shape).iter().map(|&i| x.data[i]).collect();
                for t in &args[1..] {
                    for (s, &i) in sum.iter_mut().zip(&broadcast_indices(out, &t.shape)) {
                        *s += t.data[i];
                    }
                }
                sum
            }
            FloatOp::Unary(f) => x.data.iter().map(|&v| f.apply(v)).collect(),
            FloatOp::Clip { lo, hi } => x.data.iter().map(|&v| v.max(*lo).min(*hi)).collect(),
            FloatOp::Softmax { axis, flat } => softmax(&x.shape, &x.data, *axis, *flat),
            FloatOp::Lrn(lrn) => lrn.apply(&x.shape, &x.data),
            FloatOp::Pool { pool, max } => pool_f32(&x.shape, &x.data, pool, *max),
            FloatOp::Reshape => x.data.clone(),
            FloatOp::Transpose { perm } => transpose_order(&x.shape, perm).into_iter().map(|i| x.data[i]).collect(),
            FloatOp::Select { indices } => select_indices(&x.shape, indices).into_iter().map(|i| x.data[i]).collect(),
            FloatOp::Concat { axis } => {
                let outer: usize = out[..*axis].iter().product();
                let mut data = Vec::with_capacity(out.iter().product());
                for o in 0..outer {
                    for t in args {
                        let chunk: usize = t.shape[*axis..].iter().product();
                        data.extend_from_slice(&t.data[o * chunk..(o + 1) * chunk]);
                    }
                }
                data
            }
        }
    }
}

/// Max (`max`) or average pooling of an NCHW tensor in f32: padding is skipped, the average
/// divided by [`Pool::divisor`].
pub fn pool_f32(shape: &[usize], data: &[f32], pool: &Pool, max: bool) -> Vec<f32> {
    let [_, _, h, w] = shape[..] else { return vec![] };
    let [p, q] = pool.out_hw(h, w);
    let mut out = Vec::with_capacity(data.len() / (h * w).max(1) * p * q);
    for plane in data.chunks(h * w) {
        for oy in 0..p {
            for ox in 0..q {
                let (mut acc, mut count) = (if max { f32::MIN } else { 0.0 }, 0);
                for [y, x] in pool.taps([oy, ox], [h, w]) {
                    let v = plane[y * w + x];
                    acc = if max { acc.max(v) } else { acc + v };
                    count += 1;
                }
                out.push(if max { acc } else { acc / pool.divisor([oy, ox], [h, w], count) as f32 });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f32]) -> FloatTensor {
        FloatTensor { shape: shape.to_vec(), data: data.to_vec() }
    }

    #[test]
    fn a_region_chains_steps_by_hand() {
        // (x - [1, 2]) / 2, then + y broadcast, then a clamp at 3: x = [[3, 4], [5, 6]],
        // y = [10, 0] per row ([2, 1]).
        let step = |op, args, shape: &[usize]| FloatStep { op, args, shape: shape.to_vec() };
        let region = FloatRegion {
            steps: vec![
                step(
                    FloatOp::Binary(Some(BinaryFn::Sub)),
                    vec![FloatArg::Input(0), FloatArg::Const(Box::new(t(&[2], &[1.0, 2.0])))],
                    &[2, 2],
                ),
                step(FloatOp::Binary(Some(BinaryFn::Div)), vec![FloatArg::Step(0), FloatArg::Const(Box::new(t(&[], &[2.0])))], &[2, 2]),
                step(FloatOp::Sum, vec![FloatArg::Step(1), FloatArg::Input(1)], &[2, 2]),
                step(FloatOp::Clip { lo: f32::MIN, hi: 3.0 }, vec![FloatArg::Step(2)], &[2, 2]),
            ],
        };
        let y = region.eval(&[t(&[2, 2], &[3.0, 4.0, 5.0, 6.0]), t(&[2, 1], &[10.0, 0.0])]);
        // [[1, 1], [2, 2]] + [[10, 10], [0, 0]] = [[11, 11], [2, 2]], clamped at 3.
        assert_eq!(y, t(&[2, 2], &[3.0, 3.0, 2.0, 2.0]));
    }

    #[test]
    fn float_pools_skip_padding_by_hand() {
        // 3x3 of 1..=9, 2x2 windows, stride 2, one row and column of end padding.
        let pool = Pool { kernel: [2, 2], stride: [2, 2], pad: [0, 0, 1, 1], count_include_pad: false, dilation: [1, 1], ceil_pad: [1, 1] };
        let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        assert_eq!(pool_f32(&[1, 1, 3, 3], &x, &pool, true), [5.0, 6.0, 8.0, 9.0]);
        // Averages: (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9.
        assert_eq!(pool_f32(&[1, 1, 3, 3], &x, &pool, false), [3.0, 4.5, 7.5, 9.0]);
    }
}
