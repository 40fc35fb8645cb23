//! The forward and backward passes of a stack of gated residual layers, shared by the autoencoder's
//! decoder ([`crate::wavenet::fused`]) and the student's flows ([`crate::student::fused`]): each
//! layer a dilated causal convolution of the residual stream, plus the embedding's
//! conditioning held per frame and (optionally) a projection of the excitation, through
//! the gate `σ ⊙ tanh`, into a residual and a skip 1×1 projection (the last layer's
//! residual unused: nothing reads it).

use super::index::{Conv, GatedLayer};
use super::linalg::{
    Taps, View, add_held, col_sums, conv, conv_dw, conv_dx, dense_grads, fill_rows, frame_sums,
    gemm, project_frames, sized,
};
use super::pointwise::{gate_backward, gate_forward, gate_output};
use crate::cpu::Isa;

/// The stack's sizes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackDims {
    /// Residual channels.
    pub w: usize,
    /// Skip channels.
    pub sw: usize,
    /// Embedding channels and samples per frame.
    pub bn: usize,
    pub hop: usize,
    /// Taps of the dilated convolutions.
    pub taps: usize,
    /// Excitation channels (0: none).
    pub e: usize,
}

/// What the forward pass kept, for `time` samples: the residual streams `l_i` `[layers,
/// time, w]`, the gates' pre-activations `[σ | tanh]` `[layers, time, 2w]`, the embedding
/// `[frames, bn]`, the excitation `[time, e]` where the layers read one.
pub(crate) struct StackInputs<'a> {
    pub l: &'a [f32],
    pub act: &'a [f32],
    pub enc: &'a [f32],
    pub excitation: Option<&'a [f32]>,
}

/// The stack's scratch, kept from crop to crop: `g`, `dg`, `dl` `[time, w]`, `dz`
/// `[time, 2w]`, and `frames` per-frame values (at least `frames · 2w`; a caller that
/// reuses it for its own per-frame sums asks for more). After [`stack_backward`], `dl`
/// holds the gradient of the stack's input stream.
#[derive(Default)]
pub(crate) struct StackScratch {
    pub g: Vec<f32>,
    pub dg: Vec<f32>,
    pub dz: Vec<f32>,
    pub dl: Vec<f32>,
    pub frames: Vec<f32>,
}

impl StackScratch {
    /// Sized for `time` samples of `w` channels and `frames` per-frame values.
    pub(crate) fn prepare(&mut self, time: usize, w: usize, frames: usize) {
        sized(&mut self.g, time * w);
        sized(&mut self.dg, time * w);
        sized(&mut self.dz, time * 2 * w);
        sized(&mut self.dl, time * w);
        sized(&mut self.frames, frames);
    }
}

/// Adds every layer's gradients to `grad` and the embedding's to `denc` `[frames, bn]`,
/// from `ds` `[time, sw]`, the gradient of the skip sum (`ds_sums` its column sums, the
/// skip biases' gradient), and leaves the gradient of the stack's input stream `l_0` in
/// `scratch.dl` (overwritten).
#[allow(clippy::too_many_arguments)]
pub(crate) fn stack_backward(
    isa: Isa,
    d: StackDims,
    layers: &[GatedLayer],
    dilations: &[usize],
    params: &[f32],
    kept: &StackInputs,
    ds: &[f32],
    ds_sums: &[f32],
    scratch: &mut StackScratch,
    denc: &mut [f32],
    grad: &mut [f32],
) {
    let (w, sw, w2, bn) = (d.w, d.sw, 2 * d.w, d.bn);
    let time = ds.len() / sw;
    let frames = time / d.hop;
    let pw = |c: &Conv| &params[c.w.clone()];
    let StackScratch {
        g,
        dg,
        dz,
        dl,
        frames: dc,
    } = scratch;
    let (g, dg, dz, dl) = (
        &mut g[..time * w],
        &mut dg[..time * w],
        &mut dz[..time * w2],
        &mut dl[..time * w],
    );
    let dc = &mut dc[..frames * w2];
    let ds = View::new(ds, time, sw);
    dl.fill(0.0);
    for (i, layer) in layers.iter().enumerate().rev() {
        let act = &kept.act[i * time * w2..(i + 1) * time * w2];
        gate_output(isa, act, g, w);
        let gv = View::new(g, time, w);
        gemm(&mut grad[layer.skip.w.clone()], sw, gv.t(), ds, true);
        for (s, &v) in grad[layer.skip.b.clone()].iter_mut().zip(ds_sums) {
            *s += v;
        }
        gemm(dg, w, ds, View::new(pw(&layer.skip), w, sw).t(), false);
        if i + 1 < layers.len() {
            dense_grads(grad, &layer.res, gv, dl, w);
            gemm(
                dg,
                w,
                View::new(dl, time, w),
                View::new(pw(&layer.res), w, w).t(),
                true,
            );
        }
        gate_backward(isa, act, dg, dz, w);
        let li = &kept.l[i * time * w..(i + 1) * time * w];
        let taps = Taps {
            taps: d.taps,
            dilation: dilations[i],
            left: (d.taps - 1) * dilations[i],
        };
        col_sums(&mut grad[layer.dilated.b.clone()], dz);
        conv_dw(&mut grad[layer.dilated.w.clone()], li, dz, taps, w, w2);
        frame_sums(dc, dz, d.hop, w2, 1.0);
        dense_grads(grad, &layer.cond, View::new(kept.enc, frames, bn), dc, w2);
        gemm(
            denc,
            bn,
            View::new(dc, frames, w2),
            View::new(pw(&layer.cond), bn, w2).t(),
            true,
        );
        if let (Some(r), Some(e)) = (&layer.exc, kept.excitation) {
            gemm(
                &mut grad[r.clone()],
                w2,
                View::new(e, time, d.e).t(),
                View::new(dz, time, w2),
                true,
            );
        }
        conv_dx(dl, dz, pw(&layer.dilated), taps, w, w2);
    }
}

/// The forward pass of the stack: from the input stream `l_0` (the first `time · w` of
/// `l`, filled by the caller) every later `l_i` and every layer's gate pre-activations
/// into `act` (what [`stack_backward`] reads), each layer's skip projection added to `s`
/// `[time, sw]`; `g` (`time · w`) and `frames` (`frames · 2w`) are scratch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stack_forward(
    isa: Isa,
    d: StackDims,
    layers: &[GatedLayer],
    dilations: &[usize],
    params: &[f32],
    enc: &[f32],
    excitation: Option<&[f32]>,
    l: &mut [f32],
    act: &mut [f32],
    s: &mut [f32],
    g: &mut [f32],
    frames: &mut [f32],
) {
    let (w, sw, w2) = (d.w, d.sw, 2 * d.w);
    let time = s.len() / sw;
    let n = time * w;
    let g = &mut g[..n];
    let pw = |c: &Conv| &params[c.w.clone()];
    let pb = |c: &Conv| &params[c.b.clone()];
    for (i, layer) in layers.iter().enumerate() {
        let z = &mut act[i * time * w2..(i + 1) * time * w2];
        let (done, rest) = l.split_at_mut((i + 1) * n);
        let li = &done[i * n..];
        fill_rows(z, pb(&layer.dilated));
        let taps = Taps {
            taps: d.taps,
            dilation: dilations[i],
            left: (d.taps - 1) * dilations[i],
        };
        conv(z, li, pw(&layer.dilated), taps, w, w2);
        if let (Some(r), Some(e)) = (&layer.exc, excitation) {
            gemm(
                z,
                w2,
                View::new(e, time, d.e),
                View::new(&params[r.clone()], d.e, w2),
                true,
            );
        }
        project_frames(frames, enc, params, &layer.cond, d.bn, w2);
        add_held(z, frames, d.hop, w2);
        gate_forward(isa, z, g, w);
        let gv = View::new(g, time, w);
        if i + 1 < layers.len() {
            let next = &mut rest[..n];
            fill_rows(next, pb(&layer.res));
            for (o, &v) in next.iter_mut().zip(li) {
                *o += v;
            }
            gemm(next, w, gv, View::new(pw(&layer.res), w, w), true);
        }
        for (o, &v) in s
            .chunks_exact_mut(sw)
            .flat_map(|r| r.iter_mut().zip(pb(&layer.skip)))
        {
            *o += v;
        }
        gemm(s, sw, gv, View::new(pw(&layer.skip), w, sw), true);
    }
}
