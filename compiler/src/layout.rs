//! DRAM placement of a layer's tensors and tables.

use std::ops::Range;
use systole_core::isa::{Dim, DramPattern};
use systole_core::layer::Layer;
use systole_core::program::{DramSegment, TensorPlacement};
use systole_core::requant::ChannelParam;
use systole_core::workload::LayerData;

/// `v` rounded up to a DRAM buffer boundary ([`crate::schedule::ALIGN`]).
pub(crate) fn align(v: u64) -> u64 {
    let a = crate::schedule::ALIGN as u64;
    v.div_ceil(a) * a
}

/// Where a layer compiled alone, with its output at `output`, puts its table and weights.
pub(crate) fn consts_after(output: &TensorPlacement) -> u64 {
    align(output.addr + output.size() as u64)
}

/// An NHWC tensor as a layer addresses it inside a larger buffer: the byte address of
/// element `(0, 0, 0, 0)` in the layer's own coordinates and the buffer's pitches (a layer's
/// pixel is always its tensor's channels, contiguous; a concatenation's part is a slice of
/// the buffer's pixels, `pixel_pitch` apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Byte address of element `(0, 0, 0, 0)`.
    pub addr: u64,
    /// Bytes between pixels: the buffer's channels.
    pub pixel_pitch: u64,
    /// Bytes between rows.
    pub row_pitch: u64,
    /// Bytes between images.
    pub image_pitch: u64,
}

impl View {
    /// The whole of `t`, border included (coordinates count from the border's corner).
    pub fn padded(t: &TensorPlacement) -> Self {
        Self { addr: t.addr, pixel_pitch: t.dims[3] as u64, row_pitch: t.row_pitch() as u64, image_pitch: t.image_pitch() as u64 }
    }

    /// The layer's padded input inside `buffer`, whose border is at least `pad` on every
    /// side: the layer's corner is `buffer.pad - pad` rows and columns inside the buffer's.
    pub fn inset(buffer: &TensorPlacement, pad: [usize; 4]) -> Self {
        let (dy, dx) = (buffer.pad[0] - pad[0], buffer.pad[1] - pad[1]);
        Self { addr: buffer.padded_addr(0, dy, dx, 0), ..Self::padded(buffer) }
    }

    /// The interior of `buffer` (its logical tensor, border excluded).
    pub fn interior(buffer: &TensorPlacement) -> Self {
        Self::inset(buffer, [0; 4])
    }

    /// Address of element `(n, y, x, c)` of a tensor of `channels` channels.
    fn at(&self, channels: usize, n: usize, y: usize, x: usize, c: usize) -> u64 {
        self.addr + n as u64 * self.image_pitch + y as u64 * self.row_pitch + (x * channels + c) as u64
    }
}

/// Where a layer compiled into a larger program finds its tensors and puts its constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The layer's padded input (the buffer's border, filled with the input zero point,
    /// at least the layer's padding; its spare bytes at least the program's reach).
    pub input: View,
    /// The layer's output.
    pub output: View,
    /// First byte of the requantization table and the weights, in this order.
    pub consts: u64,
}

/// The DRAM map of one layer: padded input, output, requantization table, then weights.
pub struct Layout {
    /// Input, padded with the zero point, with `tail` spare bytes for window over-reads
    /// (where a layer compiled alone puts it).
    pub input: TensorPlacement,
    /// Output, unpadded NHWC (where a layer compiled alone puts it).
    pub output: TensorPlacement,
    /// Where the instructions address the input and the output.
    frame: Frame,
    framed: bool,
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
    /// `data`, the requantization table's bytes too. Alone (no `frame`) the program owns
    /// its DRAM: input at 0, then output, table and weights; in a `frame`, the tensors and
    /// constants go where the frame says.
    pub fn new(layer: &Layer, data: Option<&LayerData>, tail: usize, frame: Option<&Frame>) -> Self {
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
        let framed = frame.is_some();
        let frame =
            frame.copied().unwrap_or(Frame { input: View::padded(&input), output: View::padded(&output), consts: consts_after(&output) });
        let params = frame.consts;
        let end = params + (ChannelParam::BYTES * s.k) as u64;
        let segments = data
            .map(|data| {
                let bytes = channel_params(layer, data).into_iter().flat_map(ChannelParam::to_bytes).collect();
                DramSegment { name: "requantization table".into(), addr: params, bytes }
            })
            .into_iter()
            .collect();
        Self { input, output, frame, framed, params, weights: align(end), segments, end }
    }

    /// Bytes between rows of the padded input.
    pub fn in_row_pitch(&self) -> i64 {
        self.frame.input.row_pitch as i64
    }

    /// Address of padded input element `(n, y, x, c)`.
    pub fn in_addr(&self, n: usize, y: usize, x: usize, c: usize) -> u64 {
        self.frame.input.at(self.input.dims[3], n, y, x, c)
    }

    /// A store pattern covering output rows `rows`, columns `cols` and channels `channels`
    /// of image `n`.
    pub fn out_pattern(&self, n: usize, rows: Range<usize>, cols: Range<usize>, channels: Range<usize>) -> DramPattern {
        let k = self.output.dims[3];
        let out = &self.frame.output;
        DramPattern {
            addr: out.at(k, n, rows.start, cols.start, channels.start),
            len: channels.len() as u32,
            dims: [
                Dim { count: 1, stride: 0 },
                Dim { count: rows.len() as u32, stride: out.row_pitch as i64 },
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

    /// DRAM bytes used (in a frame: the end of the constants).
    pub fn size(&self) -> u64 {
        align(self.end.max(self.weights))
    }

    /// True when the layer is compiled into a larger program's frame.
    pub fn framed(&self) -> bool {
        self.framed
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
