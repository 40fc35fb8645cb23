//! One crop's forward and backward pass, by hand: the activations the backward pass reads
//! are kept in a worker's [`Work`] (reused from step to step), everything else is a
//! scratch buffer overwritten layer after layer.
//!
//! Kept: the encoder's residual streams `en_i` and ReLU outputs `d_i`, the decoder's
//! residual streams `l_i` and gate activations `[σ | tanh]` (not the pre-activations: the
//! backward pass needs the activations, and keeping them saves evaluating σ and tanh
//! twice), the skip sum, the head's hidden layer and the embedding. The gate outputs
//! `σ·tanh` and the encoder's `relu(en_i)` are recomputed (one multiply, one max).

use super::index::Index;
use crate::fused::encoder::{EncoderDims, EncoderPass, EncoderWork, encode, encode_backward};
use crate::fused::index::Conv;
use crate::fused::layers::{StackDims, StackInputs, StackScratch, stack_backward, stack_forward};
use crate::fused::linalg::{
    Taps, View, add_held, col_sums, conv1, conv1_dw, dense_grads, fill_rows, frame_sums, gemm,
    project_frames, sized,
};
use crate::fused::pointwise::{cross_entropy, relu, relu_into, relu_mask};

/// The model's sizes, as the fused step needs them.
#[derive(Clone, Debug)]
pub(super) struct Dims {
    pub enc: EncoderDims,
    pub bn: usize,
    pub hop: usize,
    pub w: usize,
    pub sw: usize,
    pub taps: usize,
    pub dilations: Vec<usize>,
    /// Excitation channels per sample (0: none).
    pub e: usize,
}

/// One crop: targets (μ-law-scaled), the decoder's input and the excitation `[time, e]`.
pub(super) struct Crop<'a> {
    pub target: &'a [f32],
    pub input: &'a [f32],
    pub excitation: Option<&'a [f32]>,
}

/// A worker's buffers, sized for one crop of `time` samples.
#[derive(Default)]
pub(super) struct Work {
    time: usize,
    enc: EncoderWork,
    l: Vec<f32>,
    act: Vec<f32>,
    s: Vec<f32>,
    h: Vec<f32>,
    logits: Vec<f32>,
    classes: Vec<u8>,
    shifted: Vec<f32>,
    // Scratch.
    stack: StackScratch,
    a: Vec<f32>,
    ds: Vec<f32>,
    dh: Vec<f32>,
    ds_sums: Vec<f32>,
}

impl Work {
    fn prepare(&mut self, d: &Dims, time: usize) {
        self.time = time;
        self.enc.prepare(&d.enc, time);
        let l = d.dilations.len();
        let frames = time / d.hop;
        sized(&mut self.l, l * time * d.w);
        sized(&mut self.act, l * time * 2 * d.w);
        sized(&mut self.s, time * d.sw);
        sized(&mut self.h, time * d.sw);
        sized(&mut self.logits, time * crate::mulaw::CLASSES);
        self.classes.resize(time, 0);
        sized(&mut self.shifted, time);
        sized(&mut self.a, time * d.sw);
        self.stack.prepare(time, d.w, frames * (2 * d.w).max(d.sw));
        sized(&mut self.ds, time * d.sw);
        sized(&mut self.dh, time * d.sw);
        sized(&mut self.ds_sums, d.sw);
    }
}

/// Reads variables out of the flat parameter vector.
struct P<'a>(&'a [f32]);

impl P<'_> {
    fn w(&self, c: &Conv) -> &[f32] {
        &self.0[c.w.clone()]
    }
    fn b(&self, c: &Conv) -> &[f32] {
        &self.0[c.b.clone()]
    }
}

/// What a crop's pass reads: the kernels to use, the sizes and the parameters.
pub(super) type Net<'a> = crate::fused::Pass<'a, Dims, Index>;

/// Forward and backward of one crop: returns its summed NLL (nats) and adds `scale ×` its
/// gradient to `grad` (laid out as the parameters).
pub(super) fn run(net: Net, crop: &Crop, work: &mut Work, grad: &mut [f32], scale: f32) -> f64 {
    let time = crop.target.len();
    work.prepare(net.dims, time);
    let (d, ix) = (&net.dims.enc, &net.index.enc);
    let pass = EncoderPass {
        isa: net.isa,
        dims: d,
        index: ix,
        params: net.params,
    };
    encode(pass, crop.target, &mut work.enc);
    let nll = decode(net, crop, work, scale);
    decode_backward(net, crop, work, grad);
    encode_backward(pass, crop.target, &mut work.enc, grad);
    nll
}

fn causal(d: &Dims, dilation: usize) -> Taps {
    Taps {
        taps: d.taps,
        dilation,
        left: (d.taps - 1) * dilation,
    }
}

fn stack_dims(d: &Dims) -> StackDims {
    StackDims {
        w: d.w,
        sw: d.sw,
        bn: d.bn,
        hop: d.hop,
        taps: d.taps,
        e: d.e,
    }
}

fn decode(net: Net, crop: &Crop, wk: &mut Work, scale: f32) -> f64 {
    let (isa, d, ix, p) = (net.isa, net.dims, net.index, &P(net.params));
    let (time, w, sw) = (wk.time, d.w, d.sw);
    let n = time * w;
    wk.shifted[0] = 0.0;
    wk.shifted[1..].copy_from_slice(&crop.input[..time - 1]);
    let l0 = &mut wk.l[..n];
    fill_rows(l0, p.b(&ix.start));
    conv1(l0, &wk.shifted, p.w(&ix.start), causal(d, 1), w);
    if let (Some(r), Some(e)) = (&ix.exc_start, crop.excitation) {
        gemm(
            l0,
            w,
            View::new(e, time, d.e),
            View::new(&p.0[r.clone()], d.e, w),
            true,
        );
    }
    fill_rows(&mut wk.s, p.b(&ix.skip_start));
    gemm(
        &mut wk.s,
        sw,
        View::new(l0, time, w),
        View::new(p.w(&ix.skip_start), w, sw),
        true,
    );
    stack_forward(
        isa,
        stack_dims(d),
        &ix.decoder,
        &d.dilations,
        net.params,
        &wk.enc.enc,
        crop.excitation,
        &mut wk.l,
        &mut wk.act,
        &mut wk.s,
        &mut wk.stack.g,
        &mut wk.stack.frames,
    );
    // The head: logits = relu(relu(s)·W₁ + b₁ + cond) · W₂ + b₂.
    let a = &mut wk.a[..time * sw];
    relu_into(isa, &wk.s, a);
    fill_rows(&mut wk.h, p.b(&ix.out1));
    gemm(
        &mut wk.h,
        sw,
        View::new(a, time, sw),
        View::new(p.w(&ix.out1), sw, sw),
        true,
    );
    project_frames(
        &mut wk.stack.frames,
        &wk.enc.enc,
        net.params,
        &ix.cond_out1,
        d.bn,
        sw,
    );
    add_held(&mut wk.h, &wk.stack.frames[..time / d.hop * sw], d.hop, sw);
    relu(isa, &mut wk.h);
    let classes = crate::mulaw::CLASSES;
    fill_rows(&mut wk.logits, p.b(&ix.logits));
    gemm(
        &mut wk.logits,
        classes,
        View::new(&wk.h, time, sw),
        View::new(p.w(&ix.logits), sw, classes),
        true,
    );
    for (c, &x) in wk.classes.iter_mut().zip(crop.target) {
        // x · 128 + 128 is an exact small integer for a μ-law-scaled sample.
        *c = (x * 128.0 + 128.0).round().clamp(0.0, 255.0) as u8;
    }
    cross_entropy(isa, &mut wk.logits, &wk.classes, classes, scale)
}

fn decode_backward(net: Net, crop: &Crop, wk: &mut Work, grad: &mut [f32]) {
    let (isa, d, ix, p) = (net.isa, net.dims, net.index, &P(net.params));
    let (time, w, sw, bn) = (wk.time, d.w, d.sw, d.bn);
    let frames = time / d.hop;
    let classes = crate::mulaw::CLASSES;
    // Head.
    dense_grads(
        grad,
        &ix.logits,
        View::new(&wk.h, time, sw),
        &wk.logits,
        classes,
    );
    gemm(
        &mut wk.dh,
        sw,
        View::new(&wk.logits, time, classes),
        View::new(p.w(&ix.logits), sw, classes).t(),
        false,
    );
    relu_mask(isa, &mut wk.dh, &wk.h);
    let a = &mut wk.a[..time * sw];
    relu_into(isa, &wk.s, a);
    dense_grads(grad, &ix.out1, View::new(a, time, sw), &wk.dh, sw);
    let dc = &mut wk.stack.frames[..frames * sw];
    frame_sums(dc, &wk.dh, d.hop, sw, 1.0);
    dense_grads(
        grad,
        &ix.cond_out1,
        View::new(&wk.enc.enc, frames, bn),
        dc,
        sw,
    );
    gemm(
        &mut wk.enc.denc,
        bn,
        View::new(dc, frames, sw),
        View::new(p.w(&ix.cond_out1), bn, sw).t(),
        false,
    );
    gemm(
        &mut wk.ds,
        sw,
        View::new(&wk.dh, time, sw),
        View::new(p.w(&ix.out1), sw, sw).t(),
        false,
    );
    relu_mask(isa, &mut wk.ds, &wk.s);
    wk.ds_sums.fill(0.0);
    col_sums(&mut wk.ds_sums, &wk.ds);
    // Layers, last first; `dl` carries the residual stream's gradient down.
    stack_backward(
        isa,
        stack_dims(d),
        &ix.decoder,
        &d.dilations,
        net.params,
        &StackInputs {
            l: &wk.l,
            act: &wk.act,
            enc: &wk.enc.enc,
            excitation: crop.excitation,
        },
        &wk.ds,
        &wk.ds_sums,
        &mut wk.stack,
        &mut wk.enc.denc,
        grad,
    );
    let ds = View::new(&wk.ds, time, sw);
    let l0 = View::new(&wk.l[..time * w], time, w);
    gemm(&mut grad[ix.skip_start.w.clone()], sw, l0.t(), ds, true);
    for (s, &v) in grad[ix.skip_start.b.clone()].iter_mut().zip(&wk.ds_sums) {
        *s += v;
    }
    gemm(
        &mut wk.stack.dl,
        w,
        ds,
        View::new(p.w(&ix.skip_start), w, sw).t(),
        true,
    );
    if let (Some(r), Some(e)) = (&ix.exc_start, crop.excitation) {
        gemm(
            &mut grad[r.clone()],
            w,
            View::new(e, time, d.e).t(),
            View::new(&wk.stack.dl, time, w),
            true,
        );
    }
    conv1_dw(
        &mut grad[ix.start.w.clone()],
        &wk.shifted,
        &wk.stack.dl,
        causal(d, 1),
        w,
    );
    col_sums(&mut grad[ix.start.b.clone()], &wk.stack.dl);
}
