//! Reference execution of a whole [`Network`]: every host operator here, and accelerator
//! layers through a caller-given function (the golden [`crate::layer`] for the oracle, the
//! compiler and simulator for a simulation), so both paths share the glue and differ only
//! where they should.

use crate::{activate, add, avg_pool, global_avg_pool, max_pool, quantize};
use systole_core::layer::Layer;
use systole_core::network::{from_nhwc, to_nhwc, HostTensor, Network, Op, Quant};
use systole_core::npy::squeeze;
use systole_core::region::{FloatOp, FloatTensor};
use systole_core::tensor::{row_major_strides, transpose_order};
use systole_core::workload::LayerData;
use systole_core::Tensor;
use thiserror::Error;

/// A network input that does not match the network.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum InputError {
    /// Wrong number of inputs.
    #[error("the network has {expected} input(s), {given} given")]
    Count {
        /// Inputs of the network.
        expected: usize,
        /// Inputs given.
        given: usize,
    },
    /// Wrong shape.
    #[error("input `{name}`: shape {given:?}, the network expects {expected:?}")]
    Shape {
        /// Input name.
        name: String,
        /// The network's shape.
        expected: Vec<usize>,
        /// The given shape.
        given: Vec<usize>,
    },
    /// Wrong element type.
    #[error("input `{name}`: the network expects {expected} data")]
    Type {
        /// Input name.
        name: String,
        /// `float32` or `int8`.
        expected: &'static str,
    },
}

/// Quantizes (or takes) each input, checking count, type and shape (axes of extent 1 may
/// differ).
pub fn input_values(net: &Network, inputs: &[HostTensor]) -> Result<Vec<Vec<i8>>, InputError> {
    if inputs.len() != net.inputs.len() {
        return Err(InputError::Count { expected: net.inputs.len(), given: inputs.len() });
    }
    net.inputs
        .iter()
        .zip(inputs)
        .map(|(i, t)| {
            let v = &net.values[i.value];
            if squeeze(t.shape()) != squeeze(&v.shape) {
                return Err(InputError::Shape { name: i.name.clone(), expected: v.shape.clone(), given: t.shape().to_vec() });
            }
            match (t, i.float) {
                (HostTensor::F32 { data, .. }, true) => Ok(data.iter().map(|&x| v.quant.quantize(x)).collect()),
                (HostTensor::I8 { data, .. }, false) => Ok(data.clone()),
                (_, float) => Err(InputError::Type { name: i.name.clone(), expected: if float { "float32" } else { "int8" } }),
            }
        })
        .collect()
}

/// The network's outputs from the values of a run (dequantized where the graph says so).
pub fn outputs(net: &Network, values: &[Vec<i8>]) -> Vec<HostTensor> {
    net.outputs
        .iter()
        .map(|o| {
            let shape = net.values[o.value].shape.clone();
            let q = &values[o.value];
            match o.dequantize {
                Some(dq) => HostTensor::F32 { shape, data: q.iter().map(|&v| dq.dequantize(v)).collect() },
                None => HostTensor::I8 { shape, data: q.clone() },
            }
        })
        .collect()
}

/// Runs the network on int8 input values (from [`input_values`]); `layer(node, layer, data)`
/// computes each accelerator layer's NHWC output. Returns every value's data.
pub fn run_with<E>(
    net: &Network,
    inputs: Vec<Vec<i8>>,
    mut layer: impl FnMut(usize, &Layer, &LayerData) -> Result<Tensor, E>,
) -> Result<Vec<Vec<i8>>, E> {
    let mut values: Vec<Vec<i8>> = vec![Vec::new(); net.values.len()];
    for (i, data) in net.inputs.iter().zip(inputs) {
        values[i.value] = data;
    }
    for idx in 0..net.nodes.len() {
        let result = eval_node(net, idx, &values, &mut layer)?;
        values[net.nodes[idx].output] = result;
    }
    Ok(values)
}

/// Computes node `idx` from `values` (which must hold its inputs).
pub fn eval_node<E>(
    net: &Network,
    idx: usize,
    values: &[Vec<i8>],
    mut layer: impl FnMut(usize, &Layer, &LayerData) -> Result<Tensor, E>,
) -> Result<Vec<i8>, E> {
    let node = &net.nodes[idx];
    let out = &net.values[node.output];
    let arg = |k: usize| (&net.values[node.inputs[k]], &values[node.inputs[k]]);
    let (x, xd) = arg(0);
    let nhwc_op = |f: &dyn Fn(&Tensor) -> Tensor| from_nhwc(&f(&to_nhwc(&x.shape, xd)), 4);
    Ok(match &node.op {
        Op::Layer { layer: l, weights, bias } => {
            let data = LayerData { input: to_nhwc(&x.shape, xd), weights: weights.clone(), bias: bias.clone() };
            from_nhwc(&layer(idx, l, &data)?, out.shape.len())
        }
        Op::MaxPool(p) => nhwc_op(&|t| max_pool(t, p)),
        Op::AvgPool(p) => nhwc_op(&|t| avg_pool(t, p, x.quant.scale, x.quant.zp, out.quant.scale, out.quant.zp)),
        Op::GlobalAvgPool => nhwc_op(&|t| global_avg_pool(t, x.quant.scale, x.quant.zp, out.quant.scale, out.quant.zp)),
        Op::Add(act) if net.values[node.inputs[1]].shape == x.shape => {
            let (b, bd) = arg(1);
            let flat = |d: &[i8]| Tensor::from_vec([1, 1, 1, d.len()], d.to_vec());
            add(&flat(xd), x.quant, &flat(bd), b.quant, out.quant, *act).data
        }
        Op::Add(_) | Op::Binary(_) | Op::AddConst(..) | Op::BinaryConst(..) => {
            let (shape, bd, bq) = match &node.op {
                Op::AddConst(c, _) | Op::BinaryConst(_, c) => (&c.shape, &c.data, c.quant),
                _ => (&net.values[node.inputs[1]].shape, &values[node.inputs[1]], net.values[node.inputs[1]].quant),
            };
            let (ia, ib) =
                (systole_core::tensor::broadcast_indices(&out.shape, &x.shape), systole_core::tensor::broadcast_indices(&out.shape, shape));
            ia.iter()
                .zip(&ib)
                .map(|(&i, &j)| match &node.op {
                    Op::Add(act) | Op::AddConst(_, act) => crate::add_one(xd[i], x.quant, bd[j], bq, out.quant, *act),
                    Op::BinaryConst(f, c) if c.first => crate::binary_one(*f, bd[j], bq, xd[i], x.quant, out.quant),
                    Op::Binary(f) | Op::BinaryConst(f, _) => crate::binary_one(*f, xd[i], x.quant, bd[j], bq, out.quant),
                    _ => unreachable!("the arm's operators"),
                })
                .collect()
        }
        Op::Sum | Op::Softmax { .. } | Op::Lrn(_) | Op::FloatRegion(_) => {
            let inputs: Vec<FloatTensor> = node
                .inputs
                .iter()
                .map(|&v| FloatTensor {
                    shape: net.values[v].shape.clone(),
                    data: values[v].iter().map(|&q| net.values[v].quant.dequantize(q)).collect(),
                })
                .collect();
            let step = |op: FloatOp| op.apply(&inputs.iter().collect::<Vec<_>>(), &out.shape);
            let real = match &node.op {
                Op::Sum => step(FloatOp::Sum),
                Op::Softmax { axis, flat } => step(FloatOp::Softmax { axis: *axis, flat: *flat }),
                Op::Lrn(lrn) => step(FloatOp::Lrn(*lrn)),
                Op::FloatRegion(region) => region.eval(&inputs).data,
                _ => unreachable!("the arm's operators"),
            };
            real.iter().map(|&r| out.quant.quantize(r)).collect()
        }
        Op::Select { indices, .. } => systole_core::tensor::select_indices(&x.shape, indices).into_iter().map(|i| xd[i]).collect(),
        Op::Concat { axis } => {
            let outer: usize = out.shape[..*axis].iter().product();
            let parts: Vec<Vec<i8>> = node.inputs.iter().map(|&v| requantize(&values[v], net.values[v].quant, out.quant)).collect();
            let mut data = Vec::with_capacity(out.len());
            for o in 0..outer {
                for (&v, part) in node.inputs.iter().zip(&parts) {
                    let chunk: usize = net.values[v].shape[*axis..].iter().product();
                    data.extend_from_slice(&part[o * chunk..(o + 1) * chunk]);
                }
            }
            data
        }
        Op::Reshape => xd.clone(),
        Op::Transpose { perm } => transpose(&x.shape, xd, perm),
        Op::Pad { pads } => pad(&x.shape, xd, pads, x.quant.zp),
        Op::Requantize(act) => {
            requantize(xd, x.quant, out.quant).iter().map(|&v| activate(v, *act, out.quant.scale, out.quant.zp)).collect()
        }
        Op::Unary(f) => xd.iter().map(|&v| quantize(f.apply(x.quant.dequantize(v)) / out.quant.scale, out.quant.zp)).collect(),
    })
}

/// The golden oracle for a whole network: accelerator layers by [`crate::layer`].
pub fn run(net: &Network, inputs: &[HostTensor]) -> Result<Vec<HostTensor>, InputError> {
    let x = input_values(net, inputs)?;
    let values = run_with(net, x, |_, l, d| Ok::<_, InputError>(crate::layer(l, d)))?;
    Ok(outputs(net, &values))
}

/// DequantizeLinear with `from` then QuantizeLinear with `to` (a copy when they are equal).
pub fn requantize(x: &[i8], from: Quant, to: Quant) -> Vec<i8> {
    if from == to {
        return x.to_vec();
    }
    x.iter().map(|&v| quantize(from.dequantize(v) / to.scale, to.zp)).collect()
}

/// ONNX Transpose: output axis `i` is input axis `perm[i]`.
pub fn transpose(shape: &[usize], x: &[i8], perm: &[usize]) -> Vec<i8> {
    transpose_order(shape, perm).into_iter().map(|i| x[i]).collect()
}

/// ONNX Pad (constant mode) with the zero point: `pads` is begin values then end values.
pub fn pad(shape: &[usize], x: &[i8], pads: &[usize], zp: i8) -> Vec<i8> {
    let rank = shape.len();
    let out_shape: Vec<usize> = (0..rank).map(|d| shape[d] + pads[d] + pads[rank + d]).collect();
    let out_strides = row_major_strides(&out_shape);
    let mut out = vec![zp; out_shape.iter().product()];
    let mut idx = vec![0; rank];
    for &v in x {
        out[idx.iter().enumerate().map(|(d, &i)| (i + pads[d]) * out_strides[d]).sum::<usize>()] = v;
        for d in (0..rank).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_and_pad_by_hand() {
        // [[0 1 2] [3 4 5]] transposed is [[0 3] [1 4] [2 5]].
        assert_eq!(transpose(&[2, 3], &[0, 1, 2, 3, 4, 5], &[1, 0]), vec![0, 3, 1, 4, 2, 5]);
        // [1 2] padded by 1 before and 2 after with zp 9.
        assert_eq!(pad(&[2], &[1, 2], &[1, 2], 9), vec![9, 1, 2, 9, 9]);
        assert_eq!(pad(&[1, 1], &[5], &[0, 1, 1, 0], 0), vec![0, 5, 0, 0]);
    }

    #[test]
    fn requantize_by_hand() {
        let from = Quant { scale: 0.5, zp: 0 };
        let to = Quant { scale: 1.0, zp: -1 };
        // 3 * 0.5 = 1.5 -> 2, -1 = 1 ; 5 * 0.5 = 2.5 -> 2, -1 = 1
        assert_eq!(requantize(&[3, 5, -128], from, to), vec![1, 1, -65]);
    }
}
