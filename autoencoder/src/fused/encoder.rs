//! The NSynth encoder's forward and backward pass for one crop, by hand: shared by the
//! WaveNet autoencoder's fused step and the Parallel WaveNet student's (whose encoder is
//! the same network, smaller).

use super::index::{Conv, EncoderIndex};
use super::linalg::{
    Taps, View, add_held, col_sums, conv, conv_dw, conv_dx, conv1, conv1_dw, dense_grads,
    fill_rows, frame_sums, gemm, sized,
};
use super::pointwise::{add_masked, relu, relu_into, relu_mask};
use crate::nn::encoder::EncoderConfig;

/// The encoder's sizes.
#[derive(Clone, Debug)]
pub(crate) struct EncoderDims {
    pub aw: usize,
    pub bn: usize,
    pub hop: usize,
    pub ae_taps: usize,
    pub ae_dilations: Vec<usize>,
}

impl EncoderDims {
    pub(crate) fn of(cfg: &EncoderConfig) -> Self {
        Self {
            aw: cfg.ae_width,
            bn: cfg.ae_bottleneck_width,
            hop: cfg.ae_hop_length,
            ae_taps: cfg.ae_filter_length,
            ae_dilations: (0..cfg.ae_num_layers).map(|i| cfg.ae_dilation(i)).collect(),
        }
    }

    fn taps(&self, dilation: usize) -> Taps {
        Taps {
            taps: self.ae_taps,
            dilation,
            left: (self.ae_taps - 1) / 2 * dilation,
        }
    }
}

/// The encoder's buffers for one crop: its residual streams `en_i` and ReLU outputs `d_i`
/// (kept for the backward pass), the embedding `enc` and its gradient `denc` (which the
/// decoder's backward pass fills), and scratch.
#[derive(Default)]
pub(crate) struct EncoderWork {
    time: usize,
    en: Vec<f32>,
    d: Vec<f32>,
    /// The embedding `[frames, bn]`.
    pub enc: Vec<f32>,
    /// Its gradient `[frames, bn]`, written by the decoder's backward pass.
    pub denc: Vec<f32>,
    a: Vec<f32>,
    y: Vec<f32>,
    den: Vec<f32>,
    dp: Vec<f32>,
}

impl EncoderWork {
    pub(crate) fn prepare(&mut self, d: &EncoderDims, time: usize) {
        self.time = time;
        let la = d.ae_dilations.len();
        let frames = time / d.hop;
        sized(&mut self.en, (la + 1) * time * d.aw);
        sized(&mut self.d, la * time * d.aw);
        sized(&mut self.enc, frames * d.bn);
        sized(&mut self.denc, frames * d.bn);
        sized(&mut self.a, time * d.aw);
        sized(&mut self.y, time * d.bn);
        sized(&mut self.den, time * d.aw);
        sized(&mut self.dp, time * d.aw);
    }
}

fn w<'a>(params: &'a [f32], c: &Conv) -> &'a [f32] {
    &params[c.w.clone()]
}

fn b<'a>(params: &'a [f32], c: &Conv) -> &'a [f32] {
    &params[c.b.clone()]
}

/// The encoder at a set of parameters: what both of its passes read.
pub(crate) type EncoderPass<'a> = super::Pass<'a, EncoderDims, EncoderIndex>;

/// `target` (μ-law-scaled audio, `time` samples, [`EncoderWork::prepare`]d) → `wk.enc`.
pub(crate) fn encode(pass: EncoderPass, target: &[f32], wk: &mut EncoderWork) {
    let (isa, d, ix, params) = (pass.isa, pass.dims, pass.index, pass.params);
    let (time, aw) = (wk.time, d.aw);
    let n = time * aw;
    let en0 = &mut wk.en[..n];
    fill_rows(en0, b(params, &ix.ae_start));
    conv1(en0, target, w(params, &ix.ae_start), d.taps(1), aw);
    for (i, layer) in ix.encoder.iter().enumerate() {
        let (done, rest) = wk.en.split_at_mut((i + 1) * n);
        let prev = &done[i * n..];
        let next = &mut rest[..n];
        let a = &mut wk.a[..n];
        relu_into(isa, prev, a);
        let di = &mut wk.d[i * n..(i + 1) * n];
        fill_rows(di, b(params, &layer.dilated));
        conv(
            di,
            a,
            w(params, &layer.dilated),
            d.taps(d.ae_dilations[i]),
            aw,
            aw,
        );
        relu(isa, di);
        fill_rows(next, b(params, &layer.res));
        for (o, &v) in next.iter_mut().zip(prev) {
            *o += v;
        }
        gemm(
            next,
            aw,
            View::new(di, time, aw),
            View::new(w(params, &layer.res), aw, aw),
            true,
        );
    }
    let last = &wk.en[ix.encoder.len() * n..];
    let y = &mut wk.y[..time * d.bn];
    fill_rows(y, b(params, &ix.bottleneck));
    gemm(
        y,
        d.bn,
        View::new(last, time, aw),
        View::new(w(params, &ix.bottleneck), aw, d.bn),
        true,
    );
    frame_sums(&mut wk.enc, y, d.hop, d.bn, 1.0 / d.hop as f32);
}

/// Adds the encoder's gradients to `grad`, from the embedding's gradient in `wk.denc`.
pub(crate) fn encode_backward(
    pass: EncoderPass,
    target: &[f32],
    wk: &mut EncoderWork,
    grad: &mut [f32],
) {
    let (isa, d, ix, params) = (pass.isa, pass.dims, pass.index, pass.params);
    let (time, aw, bn) = (wk.time, d.aw, d.bn);
    let n = time * aw;
    // The embedding is the mean of each frame's bottleneck outputs.
    let dy = &mut wk.y[..time * bn];
    dy.fill(0.0);
    add_held(dy, &wk.denc, d.hop, bn);
    let inv = 1.0 / d.hop as f32;
    for v in dy.iter_mut() {
        *v *= inv;
    }
    let last = View::new(&wk.en[ix.encoder.len() * n..], time, aw);
    dense_grads(grad, &ix.bottleneck, last, dy, bn);
    gemm(
        &mut wk.den,
        aw,
        View::new(dy, time, bn),
        View::new(w(params, &ix.bottleneck), aw, bn).t(),
        false,
    );
    for (i, layer) in ix.encoder.iter().enumerate().rev() {
        let di = &wk.d[i * n..(i + 1) * n];
        let eni = &wk.en[i * n..(i + 1) * n];
        dense_grads(grad, &layer.res, View::new(di, time, aw), &wk.den, aw);
        gemm(
            &mut wk.dp,
            aw,
            View::new(&wk.den, time, aw),
            View::new(w(params, &layer.res), aw, aw).t(),
            false,
        );
        relu_mask(isa, &mut wk.dp, di);
        let taps = d.taps(d.ae_dilations[i]);
        col_sums(&mut grad[layer.dilated.b.clone()], &wk.dp);
        let a = &mut wk.a[..n];
        relu_into(isa, eni, a);
        conv_dw(&mut grad[layer.dilated.w.clone()], a, &wk.dp, taps, aw, aw);
        // The input's gradient through the ReLU, added to the residual path's.
        let scratch = &mut wk.a[..n];
        scratch.fill(0.0);
        conv_dx(scratch, &wk.dp, w(params, &layer.dilated), taps, aw, aw);
        add_masked(isa, &mut wk.den, scratch, eni);
    }
    conv1_dw(
        &mut grad[ix.ae_start.w.clone()],
        target,
        &wk.den,
        d.taps(1),
        aw,
    );
    col_sums(&mut grad[ix.ae_start.b.clone()], &wk.den);
}
