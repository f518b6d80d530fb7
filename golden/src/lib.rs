//! Reference semantics for every operator, written for obviousness, not speed.
//!
//! Integer semantics follow ONNX Runtime's quantized operators (QLinearConv, QLinearMatMul,
//! QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool), which compute the output stage
//! in IEEE single precision:
//!
//! ```text
//! acc = bias + sum (x - x_zp) * (w - w_zp)            (int32, wrapping)
//! y   = clamp(round_half_even(f32(acc) * scale) + y_zp, lo, hi)
//! scale = x_scale * w_scale[k] / y_scale              (f32, left to right)
//! ```
//!
//! Weights are symmetric (`w_zp = 0`). `lo, hi` are -128, 127 (-8, 7 for a layer with int4
//! outputs, ONNX `QuantizeLinear` to INT4) narrowed by a fused ReLU
//! (`lo = y_zp`) or ReLU6 (`hi = y_zp + round_half_even(6 / y_scale)`). This crate computes
//! the output stage with native floats; the hardware's integer emulation lives in
//! `systole_core::requant`, so the two check each other.

pub mod network;

use systole_core::layer::{Activation, Layer};
pub use systole_core::network::{BinaryFn, Pool, Quant};
use systole_core::workload::LayerData;
use systole_core::Tensor;

/// Rounds half to even and saturates to int8 after adding the zero point.
pub fn quantize(v: f32, zp: i8) -> i8 {
    quantize_bits(v, zp, 8)
}

/// Applies a fused activation to an int8 value quantized with `(y_scale, y_zp)`.
pub fn activate(y: i8, act: Activation, y_scale: f32, y_zp: i8) -> i8 {
    match act {
        Activation::None => y,
        Activation::Relu => y.max(y_zp),
        Activation::Relu6 => {
            let six = quantize(6.0 / y_scale, y_zp);
            y.max(y_zp).min(six)
        }
    }
}

/// Requantizes one accumulator value (bias already added) with scale `scale`.
pub fn requantize(acc: i32, scale: f32, y_zp: i8) -> i8 {
    quantize(acc as f32 * scale, y_zp)
}

/// Rounds half to even and saturates to a signed `bits`-bit integer (8, or 4 as ONNX
/// `QuantizeLinear` to INT4: -8..=7) after adding the zero point.
pub fn quantize_bits(v: f32, zp: i8, bits: u8) -> i8 {
    let max = (1i64 << (bits - 1)) - 1;
    let y = (v.round_ties_even() as i64).saturating_add(zp as i64);
    y.clamp(-max - 1, max) as i8
}

/// Accumulators (bias included) of a (grouped) convolution, NHWK order.
pub fn conv2d_acc(layer: &Layer, data: &LayerData) -> Vec<i32> {
    let s = &layer.shape;
    let (p, q) = (s.p(), s.q());
    let (cg, kg) = (s.cg(), s.kg());
    let zp = layer.quant.x_zp as i32;
    let mut out = Vec::with_capacity(s.n * p * q * s.k);
    for n in 0..s.n {
        for op in 0..p {
            for oq in 0..q {
                for k in 0..s.k {
                    let g = k / kg;
                    let mut acc = data.bias[k];
                    for r in 0..s.r {
                        for ss in 0..s.s {
                            let y = (op * s.stride[0] + r * s.dilation[0]) as isize - s.pad[0] as isize;
                            let x = (oq * s.stride[1] + ss * s.dilation[1]) as isize - s.pad[1] as isize;
                            let inside = y >= 0 && x >= 0 && (y as usize) < s.h && (x as usize) < s.w;
                            for c in 0..cg {
                                // Padding holds the zero point, i.e. contributes zero.
                                let xv = if inside { data.input.at([n, y as usize, x as usize, g * cg + c]) as i32 - zp } else { 0 };
                                let wv = data.weights.at([k, r, ss, c]) as i32;
                                acc = acc.wrapping_add(xv.wrapping_mul(wv));
                            }
                        }
                    }
                    out.push(acc);
                }
            }
        }
    }
    out
}

/// A quantized convolution, depthwise convolution or GEMM layer (QLinearConv semantics),
/// with its fused activation.
pub fn layer(layer: &Layer, data: &LayerData) -> Tensor {
    let s = &layer.shape;
    let acc = conv2d_acc(layer, data);
    let qp = &layer.quant;
    let scales: Vec<f32> = (0..s.k).map(|k| qp.x_scale * qp.w_scale[if qp.w_scale.len() == 1 { 0 } else { k }] / qp.y_scale).collect();
    let data = acc
        .iter()
        .enumerate()
        .map(|(i, &a)| {
            let y = quantize_bits(a as f32 * scales[i % s.k], qp.y_zp, layer.output_bits);
            activate(y, layer.activation, qp.y_scale, qp.y_zp)
        })
        .collect();
    Tensor::from_vec(s.output_dims(), data)
}

/// Quantized GEMM (QLinearMatMul): `a` is `M x K`, `b` is `K x N`, both row-major int8.
/// Returns `M x N` int8.
#[allow(clippy::too_many_arguments)]
pub fn matmul(a: &[i8], b: &[i8], m: usize, k: usize, n: usize, a_zp: i8, bias: &[i32], scale: &[f32], y_zp: i8) -> Vec<i8> {
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = bias[j];
            for t in 0..k {
                acc = acc.wrapping_add((a[i * k + t] as i32 - a_zp as i32) * b[t * n + j] as i32);
            }
            y.push(requantize(acc, scale[j], y_zp));
        }
    }
    y
}

/// Output dims of pooling `x` (NHWC).
fn pool_out_dims(pool: &Pool, x: &Tensor) -> [usize; 4] {
    let [n, h, w, c] = x.dims;
    let [p, q] = pool.out_hw(h, w);
    [n, p, q, c]
}

/// Applies `f` to the in-bounds values of every window (padding is skipped).
fn pool_windows(pool: &Pool, x: &Tensor, mut f: impl FnMut(&[i8], [usize; 2]) -> i8) -> Tensor {
    let od = pool_out_dims(pool, x);
    let mut out = Vec::with_capacity(od.iter().product());
    let mut buf = Vec::new();
    for n in 0..od[0] {
        for p in 0..od[1] {
            for q in 0..od[2] {
                for c in 0..od[3] {
                    buf.clear();
                    buf.extend(pool.taps([p, q], [x.dims[1], x.dims[2]]).map(|[y, xx]| x.at([n, y, xx, c])));
                    out.push(f(&buf, [p, q]));
                }
            }
        }
    }
    Tensor::from_vec(od, out)
}

/// Max pooling; input and output share quantization, padding never wins.
pub fn max_pool(x: &Tensor, pool: &Pool) -> Tensor {
    pool_windows(pool, x, |w, _| w.iter().copied().max().unwrap_or(i8::MIN))
}

/// QLinearAveragePool: `y = round_half_even(f32(sum(x - x_zp)) * (x_scale / y_scale) / f32(count)) + y_zp`.
pub fn avg_pool(x: &Tensor, pool: &Pool, x_scale: f32, x_zp: i8, y_scale: f32, y_zp: i8) -> Tensor {
    pool_windows(pool, x, |w, at| {
        let sum: i32 = w.iter().map(|&v| v as i32 - x_zp as i32).sum();
        average(sum, pool.divisor(at, [x.dims[1], x.dims[2]], w.len()) as f32, x_scale, y_scale, y_zp)
    })
}

/// QLinearAveragePool's output for a window whose values less the input zero point sum to
/// `sum` over `count` elements.
pub fn average(sum: i32, count: f32, x_scale: f32, y_scale: f32, y_zp: i8) -> i8 {
    quantize(sum as f32 * (x_scale / y_scale) / count, y_zp)
}

/// QLinearGlobalAveragePool: average over the whole H x W plane, output `N x 1 x 1 x C`.
pub fn global_avg_pool(x: &Tensor, x_scale: f32, x_zp: i8, y_scale: f32, y_zp: i8) -> Tensor {
    let pool = Pool::global([x.dims[1], x.dims[2]]);
    avg_pool(x, &pool, x_scale, x_zp, y_scale, y_zp)
}

/// QLinearAdd (residual add): `y = round_half_even((a_s*(a - a_zp) + b_s*(b - b_zp)) / y_s) + y_zp`
/// in f32, with an optional fused activation.
pub fn add(a: &Tensor, aq: Quant, b: &Tensor, bq: Quant, yq: Quant, act: Activation) -> Tensor {
    assert_eq!(a.dims, b.dims, "residual add operands must have equal shapes");
    let data = a.data.iter().zip(&b.data).map(|(&x, &y)| add_one(x, aq, y, bq, yq, act)).collect();
    Tensor::from_vec(a.dims, data)
}

/// QLinearAdd of one pair of elements.
pub fn add_one(x: i8, aq: Quant, y: i8, bq: Quant, yq: Quant, act: Activation) -> i8 {
    let real = aq.scale * (x as i32 - aq.zp as i32) as f32 + bq.scale * (y as i32 - bq.zp as i32) as f32;
    activate(quantize(real / yq.scale, yq.zp), act, yq.scale, yq.zp)
}

/// Mul (QLinearMul), Sub or Div of one pair of elements, in f32 as ONNX Runtime computes
/// it: `f(a_s (a - a_zp), b_s (b - b_zp)) / y_s`, rounded half to even, plus `y_zp`,
/// saturated.
pub fn binary_one(f: BinaryFn, x: i8, aq: Quant, y: i8, bq: Quant, yq: Quant) -> i8 {
    let real = f.apply(aq.scale * (x as i32 - aq.zp as i32) as f32, bq.scale * (y as i32 - bq.zp as i32) as f32);
    quantize(real / yq.scale, yq.zp)
}

/// A standalone ReLU or ReLU6 on an int8 tensor quantized with `(scale, zp)`.
pub fn activation(x: &Tensor, act: Activation, scale: f32, zp: i8) -> Tensor {
    Tensor::from_vec(x.dims, x.data.iter().map(|&v| activate(v, act, scale, zp)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use systole_core::layer::{ConvShape, LayerOp, QuantParams};

    fn layer_1x1(c: usize, k: usize) -> Layer {
        Layer {
            name: "t".into(),
            op: LayerOp::Conv,
            shape: ConvShape::gemm(1, 1, c, k),
            quant: QuantParams { x_scale: 1.0, x_zp: 0, w_scale: vec![1.0], y_scale: 1.0, y_zp: 0 },
            activation: Activation::None,
            sparsity: Default::default(),
            weight_bits: 8,
            density: 1.0,
            act_bits: 8,
            output_bits: 8,
        }
    }

    #[test]
    fn dot_product_by_hand() {
        let mut l = layer_1x1(3, 1);
        l.quant.x_zp = 1;
        let d = LayerData {
            input: Tensor::from_vec([1, 1, 1, 3], vec![2, 3, 4]),
            weights: Tensor::from_vec([1, 1, 1, 3], vec![1, -1, 2]),
            bias: vec![10],
        };
        // (2-1)*1 + (3-1)*-1 + (4-1)*2 + 10 = 1 - 2 + 6 + 10 = 15
        assert_eq!(conv2d_acc(&l, &d), vec![15]);
        l.quant.y_scale = 2.0; // 15 * 0.5 = 7.5 -> 8 (half to even)
        assert_eq!(layer(&l, &d).data, vec![8]);
        l.quant.y_scale = 6.0; // 2.5 -> 2
        assert_eq!(layer(&l, &d).data, vec![2]);
    }

    #[test]
    fn padded_3x3_conv_by_hand() {
        // 2x2 input of ones, 3x3 kernel of ones, pad 1: every output sees all 4 inputs.
        let l = Layer {
            shape: ConvShape { n: 1, h: 2, w: 2, c: 1, k: 1, r: 3, s: 3, stride: [1, 1], dilation: [1, 1], pad: [1; 4], groups: 1 },
            ..layer_1x1(1, 1)
        };
        let d = LayerData { input: Tensor::filled([1, 2, 2, 1], 1), weights: Tensor::filled([1, 3, 3, 1], 1), bias: vec![0] };
        assert_eq!(conv2d_acc(&l, &d), vec![4, 4, 4, 4]);
    }

    #[test]
    fn depthwise_keeps_channels_apart() {
        let l = Layer {
            op: LayerOp::Depthwise,
            shape: ConvShape { n: 1, h: 1, w: 2, c: 2, k: 2, r: 1, s: 2, stride: [1, 1], dilation: [1, 1], pad: [0; 4], groups: 2 },
            ..layer_1x1(2, 2)
        };
        // pixels (1, 10), (2, 20); weights ch0 = [1, 1], ch1 = [1, -1]
        let d = LayerData {
            input: Tensor::from_vec([1, 1, 2, 2], vec![1, 10, 2, 20]),
            weights: Tensor::from_vec([2, 1, 2, 1], vec![1, 1, 1, -1]),
            bias: vec![0, 0],
        };
        assert_eq!(conv2d_acc(&l, &d), vec![3, -10]);
    }

    #[test]
    fn relu6_bounds() {
        // scale 0.1: 6.0 is 60 codes above the zero point.
        assert_eq!(activate(100, Activation::Relu6, 0.1, -10), 50);
        assert_eq!(activate(-20, Activation::Relu6, 0.1, -10), -10);
        assert_eq!(activate(-20, Activation::Relu, 0.1, -10), -10);
        assert_eq!(activate(-20, Activation::None, 0.1, -10), -20);
    }

    #[test]
    fn int4_outputs_saturate_to_minus_8_7() {
        assert_eq!(quantize_bits(6.4, 2, 4), 7);
        assert_eq!(quantize_bits(-12.5, 0, 4), -8);
        assert_eq!(quantize_bits(2.5, -1, 4), 1);
        assert_eq!(quantize_bits(300.0, 0, 8), 127);
        // A 1x1 layer: acc = 3 * 2 + 4 * 5 = 26, scale 0.5 gives 13, saturated to 7 (int4)
        // where int8 keeps 13; ReLU with zero point -3 keeps -8 at -3.
        let mut l = layer_1x1(2, 1);
        l.quant = QuantParams { x_scale: 1.0, x_zp: 0, w_scale: vec![0.5], y_scale: 1.0, y_zp: 0 };
        let data = LayerData {
            input: Tensor::from_vec([1, 1, 1, 2], vec![3, 4]),
            weights: Tensor::from_vec([1, 1, 1, 2], vec![2, 5]),
            bias: vec![0],
        };
        assert_eq!(layer(&l, &data).data, vec![13]);
        l.output_bits = 4;
        assert_eq!(layer(&l, &data).data, vec![7]);
        let negative = LayerData { bias: vec![-60], ..data };
        assert_eq!(layer(&l, &negative).data, vec![-8]);
        l.activation = Activation::Relu;
        l.quant.y_zp = -3;
        assert_eq!(layer(&l, &negative).data, vec![-3]);
    }

    #[test]
    fn pooling_by_hand() {
        let x = Tensor::from_vec([1, 2, 2, 1], vec![1, 5, -3, 2]);
        let p = Pool::new([2, 2], [2, 2], [0; 4], true);
        assert_eq!(max_pool(&x, &p).data, vec![5]);
        // mean 5/4 = 1.25 -> 1
        assert_eq!(avg_pool(&x, &p, 1.0, 0, 1.0, 0).data, vec![1]);
        assert_eq!(global_avg_pool(&x, 2.0, 0, 1.0, 3).data, vec![5]); // 2*5/4 = 2.5 -> 2, +3
        let padded = Pool::new([2, 2], [1, 1], [1, 1, 0, 0], false);
        assert_eq!(avg_pool(&x, &padded, 1.0, 0, 1.0, 0).data, vec![1, 3, -1, 1]);
    }

    #[test]
    fn residual_add_by_hand() {
        let a = Tensor::from_vec([1, 1, 1, 2], vec![10, -10]);
        let b = Tensor::from_vec([1, 1, 1, 2], vec![4, 4]);
        let q = |scale, zp| Quant { scale, zp };
        // 0.5*10 + 0.25*(4-2) = 5.5 -> /1 = 5.5 -> 6 ; 0.5*-10 + 0.5 = -4.5 -> -4
        let y = add(&a, q(0.5, 0), &b, q(0.25, 2), q(1.0, 0), Activation::None);
        assert_eq!(y.data, vec![6, -4]);
        let y = add(&a, q(0.5, 0), &b, q(0.25, 2), q(1.0, 0), Activation::Relu);
        assert_eq!(y.data, vec![6, 0]);
    }

    #[test]
    fn matmul_by_hand() {
        // [1 2; 3 4] x [1 0; 0 -1]
        let y = matmul(&[1, 2, 3, 4], &[1, 0, 0, -1], 2, 2, 2, 0, &[0, 0], &[1.0, 1.0], 0);
        assert_eq!(y, vec![1, -2, 3, -4]);
    }
}
