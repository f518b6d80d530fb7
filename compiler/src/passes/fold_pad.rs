//! `fold-pad`: a convolution reading a zero-point Pad of the spatial axes reads the Pad's
//! input instead, with the pad added to its own padding.

use super::Pass;
use systole_core::layer::{ConvShape, LayerOp};
use systole_core::network::{Network, Op};

/// See the module documentation.
pub struct FoldPad;

impl Pass for FoldPad {
    fn name(&self) -> &'static str {
        "fold-pad"
    }

    fn description(&self) -> &'static str {
        "a spatial zero-point Pad before a convolution becomes the convolution's padding (TensorFlow's SAME)"
    }

    fn run(&self, net: &mut Network) -> usize {
        let mut producer = vec![None; net.values.len()];
        for (i, n) in net.nodes.iter().enumerate() {
            producer[n.output] = Some(i);
        }
        let mut rewrites = 0;
        for i in 0..net.nodes.len() {
            let Some(p) = producer[net.nodes[i].inputs[0]] else { continue };
            let (Op::Pad { pads }, Op::Layer { layer, .. }) = (&net.nodes[p].op, &net.nodes[i].op) else { continue };
            let input = net.nodes[p].inputs[0];
            let [n, c, h, w] = net.values[input].shape[..] else { continue };
            let s = &layer.shape;
            if layer.op == LayerOp::Gemm
                || pads.len() != 8
                || pads[0] + pads[1] + pads[4] + pads[5] != 0
                || net.values[input].quant.zp != layer.quant.x_zp
                || (n, c) != (s.n, s.c)
            {
                continue;
            }
            let folded = ConvShape { h, w, pad: [s.pad[0] + pads[2], s.pad[1] + pads[3], s.pad[2] + pads[6], s.pad[3] + pads[7]], ..*s };
            if folded.validate().is_err() {
                continue;
            }
            if let Op::Layer { layer, .. } = &mut net.nodes[i].op {
                layer.shape = folded;
            }
            net.nodes[i].inputs[0] = input;
            rewrites += 1;
        }
        rewrites
    }
}
