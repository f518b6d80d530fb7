//! Residual Add, max and average pooling, Concat along the channels and a flatten's copy on
//! the vector unit, exactly as ONNX Runtime computes them.
//!
//! ```text
//!  act words (a pixel's channels) ──T0 / T1 (256 entries)──► sum or max over the window ──► acc row
//!  acc row ──store: y = clamp(round_half_even(f32(acc) * scale) + zp)──► DRAM
//! ```
//!
//! Each operator becomes a [`Kernel`]: two tables, a reduction and the store's output stage,
//! chosen so that the result equals the reference on *every* input, which is checked
//! exhaustively when the kernel is made (never assumed):
//!
//! - **Add** `y = f(a, b)`: `acc = T0[a] + T1[b]` and `y = round(acc / 2^12)`, so each pair
//!   bounds `T0[a] + T1[b]` to the open interval of its output; the 512 unknowns under the
//!   65,536 pairs' bounds are a system of difference constraints, solved by Bellman-Ford
//!   relaxation. Any `f` that is a monotone function of `A[a] + B[b]` (as ONNX Runtime's
//!   float QLinearAdd is, up to its roundings) has solutions.
//! - **Average pooling** `y = h(sum)`: `T[x] = x - x_zp`, the sum over the window, and a
//!   store scale near `x_scale / (y_scale * count)` found among the nearest floats so that
//!   the store's exact f32 rounding equals `h` on every reachable sum.
//! - **Max pooling** (and a copy, a window of one): `T[x] = x`, the maximum, a store scale
//!   of 1.
//! - **Concat**: per input, `T[x]` its requantization, each part stored into its slice of
//!   the output's pixels.

use crate::emit::{Emitter, Region};
use crate::layout::{align, View};
use crate::CompileError;
use systole_core::isa::{Buffer, Dim, DramPattern, Op, OutputStage, WordGen};
use systole_core::network::{Network, Op as NodeOp, Quant};
use systole_core::program::{DramSegment, TensorPlacement};
use systole_core::requant::{requantize, ChannelParam};
use systole_core::{ArchConfig, Program};

/// Fractional bits of an Add kernel's accumulator: `y = round_half_even(acc / 2^12)`.
pub const ADD_FRACTION_BITS: u32 = 12;

/// The largest accumulator magnitude an Add kernel produces, so that `f32(acc)` is exact.
const ADD_LIMIT: i64 = 1 << 24;

/// No clamp beyond int8's range.
const FULL: (i8, i8) = (i8::MIN, i8::MAX);

/// The references a kernel is made to equal (the golden model's operators).
pub trait Reference: Sync {
    /// QLinearAdd of one pair of elements, with the fused activation.
    fn add(&self, a: i8, aq: Quant, b: i8, bq: Quant, yq: Quant, act: systole_core::layer::Activation) -> i8;
    /// QLinearAveragePool's output for a window whose values less `x_zp` sum to `sum`.
    fn average(&self, sum: i32, count: usize, xq: Quant, yq: Quant) -> i8;
    /// One element of a QLinearConcat input, requantized to the output's quantization.
    fn requantize(&self, x: i8, from: Quant, to: Quant) -> i8;
}

/// What the vector unit computes for one operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    /// Table 0 (the window's first word) and table 1 (its other words), indexed by the
    /// byte as unsigned.
    pub tables: [[i32; 256]; 2],
    /// Reduce by maximum instead of sum.
    pub max: bool,
    /// The store's requantization entry (the same for every column).
    pub param: ChannelParam,
    /// The store's output zero point.
    pub zp: i8,
    /// The store's clamp: the least and greatest output.
    pub clamp: (i8, i8),
}

/// The byte of table index `i`.
fn byte(i: usize) -> i8 {
    i as u8 as i8
}

impl Kernel {
    /// Max pooling (and a copy, a window of one): the identity tables, the maximum, a
    /// scale of 1.
    pub fn max_pool() -> Self {
        Self::lookup(|x| x)
    }

    /// A table lookup `y = target(x)` (a concatenation's requantization): table 0 holds
    /// the outputs, a window of one word, a scale of 1.
    pub fn lookup(target: impl Fn(i8) -> i8) -> Self {
        let t = std::array::from_fn(|i| target(byte(i)) as i32);
        Self { tables: [t, t], max: true, param: ChannelParam { bias: 0, scale_bits: 1f32.to_bits() }, zp: 0, clamp: FULL }
    }

    /// Average pooling over windows of `count` elements, or `None` if no scale among the
    /// 512 floats nearest `x_scale / (y_scale * count)` reproduces `target` on every sum.
    pub fn average(count: usize, xq: Quant, yq: Quant, target: impl Fn(i32) -> i8) -> Option<Self> {
        let t: [i32; 256] = std::array::from_fn(|i| byte(i) as i32 - xq.zp as i32);
        let (lo, hi) = (count as i64 * (-128 - xq.zp as i64), count as i64 * (127 - xq.zp as i64));
        if hi - lo > 1 << 24 {
            return None;
        }
        let sums: Vec<(i32, i8)> = (lo..=hi).map(|s| (s as i32, target(s as i32))).collect();
        let guess = xq.scale / (yq.scale * count as f32);
        if !(guess.is_finite() && guess > 0.0) {
            return None;
        }
        let candidates = (0..256u32).flat_map(|k| [guess.to_bits() + k, guess.to_bits().wrapping_sub(k + 1)]);
        for bits in candidates {
            let param = ChannelParam { bias: 0, scale_bits: bits };
            if !f32::from_bits(bits).is_finite() || f32::from_bits(bits) <= 0.0 {
                continue;
            }
            if sums.iter().all(|&(s, y)| requantize(s, param, yq.zp, i8::MIN, i8::MAX) == y) {
                return Some(Self { tables: [t, t], max: false, param, zp: yq.zp, clamp: FULL });
            }
        }
        None
    }

    /// Residual Add `y = target(a, b)`, or `None` if no tables reproduce it (a target that is
    /// not a monotone function of a sum of per-operand terms). `hint` gives each operand's
    /// real contribution in output steps, `(a_scale (a - a_zp) + ..) / y_scale`, a start
    /// the relaxation corrects.
    pub fn add(hint: (impl Fn(i8) -> f64, impl Fn(i8) -> f64), target: impl Fn(i8, i8) -> i8) -> Option<Self> {
        let unit = (1i64 << ADD_FRACTION_BITS) as f64;
        let y: Vec<i8> = (0..1 << 16).map(|k| target(byte(k >> 8), byte(k & 255))).collect();
        let clamp = (*y.iter().min().expect("pairs"), *y.iter().max().expect("pairs"));
        // round_half_even(acc / 2^12) = y exactly when acc is strictly inside y's interval;
        // the clamp makes the least and greatest outputs' intervals unbounded (a fused ReLU
        // floors at the zero point).
        let bounds = |y: i8| {
            let (mid, half) = (y as i64 * (1 << ADD_FRACTION_BITS), 1i64 << (ADD_FRACTION_BITS - 1));
            let lo = if y == clamp.0 { -ADD_LIMIT } else { mid - half + 1 };
            let hi = if y == clamp.1 { ADD_LIMIT - 1 } else { mid + half - 1 };
            (lo, hi)
        };
        // Unknowns: x[a] = T0[a] and w[b] = -T1[b]; a pair's bounds lo <= x[a] - w[b] <= hi
        // are the edges w[b] -> x[a] (hi) and x[a] -> w[b] (-lo).
        let mut x: Vec<i64> = (0..256).map(|a| (hint.0(byte(a)) * unit).round() as i64).collect();
        let mut w: Vec<i64> = (0..256).map(|b| -(hint.1(byte(b)) * unit).round() as i64).collect();
        let mut settled = false;
        for _ in 0..4096 {
            let mut changed = false;
            for a in 0..256 {
                for b in 0..256 {
                    let (lo, hi) = bounds(y[a << 8 | b]);
                    if x[a] > w[b] + hi {
                        x[a] = w[b] + hi;
                        changed = true;
                    }
                    if w[b] > x[a] - lo {
                        w[b] = x[a] - lo;
                        changed = true;
                    }
                }
            }
            if !changed {
                settled = true;
                break;
            }
        }
        if !settled {
            return None;
        }
        let t0: [i32; 256] = std::array::from_fn(|a| x[a] as i32);
        let t1: [i32; 256] = std::array::from_fn(|b| (-w[b]) as i32);
        let ok = (0..256).all(|a| {
            (0..256).all(|b| {
                let (lo, hi) = bounds(y[a << 8 | b]);
                let s = x[a] - w[b];
                lo <= s && s <= hi && x[a].abs() < 1 << 31 && w[b].abs() < 1 << 31
            })
        });
        let scale = 1.0 / (1u32 << ADD_FRACTION_BITS) as f32;
        ok.then_some(Self { tables: [t0, t1], max: false, param: ChannelParam { bias: 0, scale_bits: scale.to_bits() }, zp: 0, clamp })
    }

    /// The output the store writes for one accumulator value (the unit's exact arithmetic).
    pub fn output(&self, acc: i32) -> i8 {
        requantize(acc, self.param, self.zp, self.clamp.0, self.clamp.1)
    }

    /// The tables' DRAM image: 512 little-endian i32 entries.
    fn table_bytes(&self) -> Vec<u8> {
        self.tables.iter().flatten().flat_map(|v| v.to_le_bytes()).collect()
    }
}

/// What the vector unit computes for a node, before its tables are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    /// Residual Add with its fused activation.
    Add(systole_core::layer::Activation),
    /// Max pooling.
    Max,
    /// Average pooling (and a global one) over windows of `count` elements.
    Average {
        /// Elements per window.
        count: usize,
    },
    /// A flatten that keeps the NHWC bytes.
    Copy,
    /// A concatenation along the channels: each input requantized into its slice of the
    /// output's pixels.
    Concat,
}

/// The operator node `node` would be on a vector unit, or `None` when the unit cannot run
/// it: another operator, operands of other shapes, a padded max pool whose border could
/// win a window, average pooling over windows of varying size, or a dilated window.
pub fn vector_op(net: &Network, node: usize) -> Option<VectorOp> {
    let n = &net.nodes[node];
    let (x, y) = (&net.values[n.inputs[0]], &net.values[n.output]);
    if let NodeOp::Reshape = n.op {
        // A flatten of `N x C x 1 x 1` keeps the NHWC bytes: a copy.
        let dims = crate::network::nhwc_dims(&x.shape);
        return (dims.is_some() && dims == crate::network::nhwc_dims(&y.shape)).then_some(VectorOp::Copy);
    }
    if x.shape.len() != 4 || y.shape.len() != 4 {
        return None;
    }
    if let NodeOp::MaxPool(pool) | NodeOp::AvgPool(pool) = &n.op {
        if pool.dilation != [1, 1] {
            return None;
        }
    }
    match &n.op {
        NodeOp::Add(act) => {
            let b = &net.values[*n.inputs.get(1)?];
            (n.inputs.len() == 2 && b.shape == x.shape && y.shape == x.shape).then_some(VectorOp::Add(*act))
        }
        NodeOp::MaxPool(pool) => {
            // A border wins no window when it is at most every value: the producer clamps its
            // outputs at the zero point the border holds (a fused ReLU).
            let clamped = net.nodes.iter().any(|p| {
                p.output == n.inputs[0]
                    && matches!(p.op.layer_data(), Some((l, _)) if l.activation != systole_core::layer::Activation::None)
            });
            (pool.pad == [0; 4] || clamped).then_some(VectorOp::Max)
        }
        NodeOp::AvgPool(pool) if pool.pad == [0; 4] || (pool.count_include_pad && pool.ceil_pad == [0; 2]) => {
            Some(VectorOp::Average { count: pool.kernel[0] * pool.kernel[1] })
        }
        NodeOp::GlobalAvgPool => Some(VectorOp::Average { count: x.shape[2] * x.shape[3] }),
        NodeOp::Concat { axis: 1 } => {
            let same = |v: usize| {
                let s = &net.values[v].shape;
                s.len() == 4 && s[0] == y.shape[0] && s[2..] == y.shape[2..]
            };
            n.inputs.iter().all(|&v| same(v)).then_some(VectorOp::Concat)
        }
        _ => None,
    }
}

/// The kernels of network node `node` on `arch` (one per part: a concatenation's inputs,
/// else one), or `None` when it runs on the host: the instance has no vector unit, the
/// unit cannot run the operator ([`vector_op`]), or (rarely) no exact kernel exists for
/// its quantization.
pub fn kernels(arch: &ArchConfig, net: &Network, node: usize, reference: &dyn Reference) -> Option<Vec<Kernel>> {
    if arch.vector_lanes == 0 {
        return None;
    }
    let n = &net.nodes[node];
    let (x, y) = (net.values[n.inputs[0]].quant, net.values[n.output].quant);
    let one = match vector_op(net, node)? {
        VectorOp::Concat => {
            let part = |v: usize| {
                let from = net.values[v].quant;
                Kernel::lookup(|b| reference.requantize(b, from, y))
            };
            return Some(n.inputs.iter().map(|&v| part(v)).collect());
        }
        VectorOp::Copy | VectorOp::Max => Some(Kernel::max_pool()),
        VectorOp::Add(act) => {
            let bq = net.values[n.inputs[1]].quant;
            let hint_a = |v: i8| (x.scale as f64 * (v as f64 - x.zp as f64)) / y.scale as f64 + y.zp as f64;
            let hint_b = |v: i8| (bq.scale as f64 * (v as f64 - bq.zp as f64)) / y.scale as f64;
            Kernel::add((hint_a, hint_b), |a, b| reference.add(a, x, b, bq, y, act))
        }
        VectorOp::Average { count } => Kernel::average(count, x, y, |s| reference.average(s, count, x, y)),
    };
    one.map(|k| vec![k])
}

impl VectorOp {
    /// A kernel of this operator's reduction with empty tables: its programs have the
    /// exact kernel's instructions and timing (which depend on no table value), for
    /// timing a node without making its tables (the sweep).
    pub fn timing_kernels(self, net: &Network, node: usize) -> Vec<Kernel> {
        let param = ChannelParam { bias: 0, scale_bits: 1f32.to_bits() };
        let max = matches!(self, VectorOp::Max | VectorOp::Copy | VectorOp::Concat);
        let parts = if self == VectorOp::Concat { net.nodes[node].inputs.len() } else { 1 };
        vec![Kernel { tables: [[0; 256]; 2], max, param, zp: 0, clamp: FULL }; parts]
    }
}

/// The window a kernel reduces over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// One pixel of each of two equally shaped inputs (Add).
    Pair,
    /// A pooling window over the one input's padded pixels.
    Pool {
        /// Height and width.
        kernel: [usize; 2],
        /// Stride.
        stride: [usize; 2],
    },
}

impl Window {
    /// The window of a node with a kernel whose (first) input has NHWC extents `input`:
    /// a pair for Add, one pixel for a copy, the whole plane for a global pool.
    pub fn of(op: &NodeOp, input: [usize; 4]) -> Self {
        match op {
            NodeOp::Add(_) => Window::Pair,
            NodeOp::MaxPool(p) | NodeOp::AvgPool(p) => Window::Pool { kernel: p.kernel, stride: p.stride },
            NodeOp::GlobalAvgPool => Window::Pool { kernel: [input[1], input[2]], stride: [1, 1] },
            _ => Window::Pool { kernel: [1, 1], stride: [1, 1] },
        }
    }
}

/// The border a node's (first) input needs: a pool's padding.
pub fn padding(op: &NodeOp) -> [usize; 4] {
    match op {
        NodeOp::MaxPool(p) | NodeOp::AvgPool(p) => p.pad,
        _ => [0; 4],
    }
}

/// Node `node` with its `kernels` compiled alone, owning its DRAM: its inputs (a pool's
/// padded, a max pool's border at -128, which wins no window) from 0, then its output, then
/// the constants. Its timing is that of the node in a network program.
pub fn compile_alone(arch: &ArchConfig, net: &Network, node: usize, kernels: &[Kernel]) -> Result<Program, CompileError> {
    let n = &net.nodes[node];
    let dims = |v: usize| {
        let shape = &net.values[v].shape;
        crate::network::nhwc_dims(shape)
            .ok_or_else(|| crate::network::invalid(&n.name, "shape", format!("{shape:?} is not an image or a matrix")))
    };
    let mut end = 0u64;
    let mut place = |name: &str, dims: [usize; 4], pad: [usize; 4], pad_value: i8| {
        let t = TensorPlacement { name: name.into(), dims, addr: end, pad, pad_value, tail: 0 };
        end = align(end + t.size() as u64);
        t
    };
    let pad = padding(&n.op);
    let border = if matches!(n.op, NodeOp::MaxPool(_)) { i8::MIN } else { net.values[n.inputs[0]].quant.zp };
    let inputs: Vec<TensorPlacement> = n
        .inputs
        .iter()
        .enumerate()
        .map(|(k, &v)| Ok(place(&format!("input{k}"), dims(v)?, if k == 0 { pad } else { [0; 4] }, border)))
        .collect::<Result<_, CompileError>>()?;
    let output = place("output", dims(n.output)?, [0; 4], 0);
    let parts = operands(arch, &n.op, &inputs.iter().collect::<Vec<_>>(), &output, end);
    let mut program = lower(arch, &n.name, Window::of(&n.op, inputs[0].dims), &kernels.iter().zip(parts).collect::<Vec<_>>())?;
    program.inputs = inputs;
    program.outputs = vec![output];
    Ok(program)
}

/// Where each part of a vector operator (a concatenation's inputs, else the one) finds its
/// tensors in `inputs` and `output`, with its constants from `consts` on.
pub fn operands(arch: &ArchConfig, op: &NodeOp, inputs: &[&TensorPlacement], output: &TensorPlacement, consts: u64) -> Vec<Operands> {
    let pad = padding(op);
    if let NodeOp::Concat { .. } = op {
        let mut channel = 0;
        return inputs
            .iter()
            .enumerate()
            .map(|(k, t)| {
                let mut out = View::interior(output);
                out.addr += channel as u64;
                channel += t.dims[3];
                Operands {
                    inputs: [View::interior(t); 2],
                    input_width: t.dims[2],
                    output: out,
                    out_dims: t.dims,
                    consts: consts + k as u64 * consts_size(arch),
                }
            })
            .collect();
    }
    let first = View::inset(inputs[0], pad);
    vec![Operands {
        inputs: [first, inputs.get(1).map_or(first, |t| View::interior(t))],
        input_width: inputs[0].dims[2] + pad[1] + pad[3],
        output: View::interior(output),
        out_dims: output.dims,
        consts,
    }]
}

/// Where a part of a vector operator finds its tensors.
#[derive(Debug, Clone, Copy)]
pub struct Operands {
    /// The inputs (two for [`Window::Pair`]); a pool's at its padded corner.
    pub inputs: [View; 2],
    /// Padded input width (a pair's: the output's).
    pub input_width: usize,
    /// The output (a concatenation's part: its slice of the output's pixels).
    pub output: View,
    /// Output NHWC extents (a part's channels).
    pub out_dims: [usize; 4],
    /// First byte of the tables and the store's entries.
    pub consts: u64,
}

/// DRAM bytes of a vector kernel's constants: the tables, then `cols` store entries.
pub fn consts_size(arch: &ArchConfig) -> u64 {
    align(TABLE_BYTES + (ChannelParam::BYTES * arch.cols) as u64)
}

/// The program of one vector operator: per part (a concatenation's inputs, else one) its
/// tables, then per image, channel group of `min(rows, cols)` and band of output rows, the
/// inputs' words into one half of the activation scratchpad, a `Vector` op per output row
/// (per band for a pair) into one half of the accumulator, a store; the halves alternate so
/// that the next band loads while this one reduces.
pub fn lower(arch: &ArchConfig, name: &str, window: Window, parts: &[(&Kernel, Operands)]) -> Result<Program, CompileError> {
    let mut em = Emitter::default();
    let mut tile = 0u32;
    let mut dram_init = vec![];
    for (kernel, at) in parts {
        lower_part(arch, name, (kernel, window, at), &mut em, &mut tile)?;
        let entries: Vec<u8> = (0..arch.cols).flat_map(|_| kernel.param.to_bytes()).collect();
        let tables = at.consts;
        dram_init.push(DramSegment { name: "vector tables".into(), addr: tables, bytes: kernel.table_bytes() });
        dram_init.push(DramSegment { name: "requantization table".into(), addr: tables + TABLE_BYTES, bytes: entries });
    }
    systole_core::timing::serialize_dram_port(arch, &mut em.instrs);
    Ok(Program {
        arch: arch.name.clone(),
        instrs: em.instrs,
        dram_size: parts.iter().map(|(_, at)| at.consts + consts_size(arch)).max().unwrap_or(0),
        dram_init,
        inputs: vec![],
        outputs: vec![],
        macs: 0,
        mapping: None,
    })
}

/// Bytes of the two tables in DRAM.
const TABLE_BYTES: u64 = 4 * systole_core::arch::VECTOR_TABLE_ENTRIES as u64;

/// Emits one part of [`lower`], counting its tiles on from `tile` (the halves alternate
/// across parts).
fn lower_part(
    arch: &ArchConfig,
    name: &str,
    (kernel, window, at): (&Kernel, Window, &Operands),
    em: &mut Emitter,
    tile: &mut u32,
) -> Result<(), CompileError> {
    let [n, p, q, c] = at.out_dims;
    let group = arch.vector_width();
    let (act_half, acc_half) = (arch.act_words() / 2, arch.acc_rows() / 2);
    let wp = at.input_width;
    let (kh, sh) = match window {
        Window::Pair => (1, 1),
        Window::Pool { kernel, stride } => (kernel[0], stride[0]),
    };
    let words_for = |band: usize| match window {
        Window::Pair => 2 * band * q,
        Window::Pool { .. } => ((band - 1) * sh + kh) * wp,
    };
    let band = (1..=p).rev().find(|&b| words_for(b) <= act_half && b * q <= acc_half).ok_or_else(|| CompileError::DoesNotFit {
        layer: name.into(),
        what: format!("one output row's input ({} words) and outputs ({q} rows)", words_for(1)),
        field: if words_for(1) > act_half { "act_sram_kib" } else { "acc_sram_kib" },
        need: 2 * if words_for(1) > act_half { words_for(1) } else { q },
        have: 2 * if words_for(1) > act_half { act_half } else { acc_half },
        help: "enlarge the scratchpad, or run the operator on the host (an instance with vector_lanes = 0)".into(),
    })?;
    let tables = at.consts;
    let params = tables + TABLE_BYTES;
    em.emit(Op::LoadTable { dst: 0, addr: tables, count: systole_core::arch::VECTOR_TABLE_ENTRIES as u32 }, &[], &[Region::Table]);
    em.emit(Op::LoadParams { dst: 0, addr: params, count: arch.cols as u32 }, &[], &[Region::Param]);
    let out_stage = OutputStage { param: 0, zp: kernel.zp, lo: kernel.clamp.0, hi: kernel.clamp.1 };
    let rows_pattern = |view: &View, img: usize, y: usize, x_count: usize, rows: usize, c0: usize, len: usize| DramPattern {
        addr: view.addr + img as u64 * view.image_pitch + y as u64 * view.row_pitch + c0 as u64,
        len: len as u32,
        dims: [
            Dim { count: 1, stride: 0 },
            Dim { count: rows as u32, stride: view.row_pitch as i64 },
            Dim { count: x_count as u32, stride: view.pixel_pitch as i64 },
        ],
    };
    for img in 0..n {
        for c0 in (0..c).step_by(group) {
            let len = group.min(c - c0);
            for y0 in (0..p).step_by(band) {
                let b = band.min(p - y0);
                let h = *tile % 2;
                let (act, acc) = (h * act_half as u32, h * acc_half as u32);
                match window {
                    Window::Pair => {
                        let words = (b * q) as u32;
                        for (k, input) in at.inputs.iter().enumerate() {
                            let src = rows_pattern(input, img, y0, q, b, c0, len);
                            em.emit(Op::Load { target: Buffer::Act, dst: act + k as u32 * words, offset: 0, src }, &[], &[Region::Act(h)]);
                        }
                        let window = WordGen { start: act, inner_count: 2, inner_stride: words, outer_count: 1, outer_stride: 0 };
                        em.emit(
                            Op::Vector { window, count: words, stride: 1, acc, max: kernel.max },
                            &[Region::Act(h), Region::Table],
                            &[Region::Acc(h)],
                        );
                    }
                    Window::Pool { kernel: [kh, kw], stride: [sh, sw] } => {
                        let iy0 = y0 * sh;
                        let rows = (b - 1) * sh + kh;
                        let src = rows_pattern(&at.inputs[0], img, iy0, wp, rows, c0, len);
                        em.emit(Op::Load { target: Buffer::Act, dst: act, offset: 0, src }, &[], &[Region::Act(h)]);
                        for oy in y0..y0 + b {
                            let start = act + ((oy * sh - iy0) * wp) as u32;
                            let window =
                                WordGen { start, inner_count: kw as u32, inner_stride: 1, outer_count: kh as u32, outer_stride: wp as u32 };
                            let op = Op::Vector {
                                window,
                                count: q as u32,
                                stride: sw as u32,
                                acc: acc + ((oy - y0) * q) as u32,
                                max: kernel.max,
                            };
                            em.emit(op, &[Region::Act(h), Region::Table], &[Region::Acc(h)]);
                        }
                    }
                }
                let dst = rows_pattern(&at.output, img, y0, q, b, c0, len);
                em.emit(Op::Store { acc, dst, out: out_stage }, &[Region::Acc(h), Region::Param], &[]);
                *tile += 1;
            }
        }
    }
    Ok(())
}
