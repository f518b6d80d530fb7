//! DRAM placement of a layer's tensors and tables.

use std::ops::Range;
use systole_core::isa::{Dim, DramPattern};
use systole_core::layer::Layer;
use systole_core::program::{DramSegment, TensorPlacement};
use systole_core::requant::ChannelParam;
use systole_core::workload::LayerData;

const ALIGN: u64 = 64;

fn align(v: u64) -> u64 {
    v.div_ceil(ALIGN) * ALIGN
}

/// The DRAM map of one layer: padded input, output, requantization table, then weights.
pub struct Layout {
    /// Input, padded with the zero point, with `tail` spare bytes for window over-reads.
    pub input: TensorPlacement,
    /// Output, unpadded NHWC.
    pub output: TensorPlacement,
    /// Requantization table address (one 8-byte entry per output channel).
    pub params: u64,
    /// Address of the first weight byte.
    pub weights: u64,
    /// Constant segments so far (none when compiled without the layer's data).
    pub segments: Vec<DramSegment>,
    /// End of the last placed table or tile.
    end: u64,
}

impl Layout {
    /// Places a layer whose windows may read up to `tail` bytes past the padded input; with
    /// `data`, the requantization table's bytes too.
    pub fn new(layer: &Layer, data: Option<&LayerData>, tail: usize) -> Self {
        let s = &layer.shape;
        let input = TensorPlacement { name: "input".into(), dims: s.input_dims(), addr: 0, pad: s.pad, pad_value: layer.quant.x_zp, tail };
        let output = TensorPlacement {
            name: "output".into(),
            dims: s.output_dims(),
            addr: align(input.size() as u64),
            pad: [0; 4],
            pad_value: 0,
            tail: 0,
        };
        let params = align(output.addr + output.size() as u64);
        let end = params + (ChannelParam::BYTES * s.k) as u64;
        let segments = data
            .map(|data| {
                let bytes = channel_params(layer, data).into_iter().flat_map(ChannelParam::to_bytes).collect();
                DramSegment { name: "requantization table".into(), addr: params, bytes }
            })
            .into_iter()
            .collect();
        Self { input, output, params, weights: align(end), segments, end }
    }

    /// Address of padded input element `(n, y, x, c)`.
    pub fn in_addr(&self, n: usize, y: usize, x: usize, c: usize) -> u64 {
        self.input.padded_addr(n, y, x, c)
    }

    /// A store pattern covering output rows `rows`, columns `cols` and channels `channels`
    /// of image `n`.
    pub fn out_pattern(&self, n: usize, rows: Range<usize>, cols: Range<usize>, channels: Range<usize>) -> DramPattern {
        let [_, p, q, k] = self.output.dims;
        let addr = self.output.addr + (((n * p + rows.start) * q + cols.start) * k + channels.start) as u64;
        DramPattern {
            addr,
            len: channels.len() as u32,
            dims: [
                Dim { count: 1, stride: 0 },
                Dim { count: rows.len() as u32, stride: (q * k) as i64 },
                Dim { count: cols.len() as u32, stride: k as i64 },
            ],
        }
    }

    /// Appends weight tiles of `words` words of `cols` bytes each, laid out in id order, with
    /// their concatenated `bytes` if the program carries its DRAM image; returns each tile's
    /// address.
    pub fn place_weights(&mut self, cols: usize, words: &[u32], bytes: Option<Vec<u8>>) -> Vec<u64> {
        let mut addr = self.weights;
        let addrs = words
            .iter()
            .map(|&w| {
                let at = addr;
                addr += w as u64 * cols as u64;
                at
            })
            .collect();
        if let Some(bytes) = bytes {
            self.segments.push(DramSegment { name: "weights".into(), addr: self.weights, bytes });
        }
        self.end = self.end.max(addr);
        addrs
    }

    /// DRAM bytes used.
    pub fn size(&self) -> u64 {
        align(self.end.max(self.weights))
    }
}

/// Per-channel bias with the input zero point folded in, and the f32 scale bits.
pub fn channel_params(layer: &Layer, data: &LayerData) -> Vec<ChannelParam> {
    let s = &layer.shape;
    let per_k = s.r * s.s * s.cg();
    (0..s.k)
        .map(|k| {
            let wsum: i32 = data.weights.data[k * per_k..(k + 1) * per_k].iter().map(|&w| w as i32).sum();
            ChannelParam {
                bias: data.bias[k].wrapping_sub((layer.quant.x_zp as i32).wrapping_mul(wsum)),
                scale_bits: layer.quant.channel_scale(k).to_bits(),
            }
        })
        .collect()
}
