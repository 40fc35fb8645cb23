//! One crop of the student's fused pass: its encoder, its flows and the sub-partial bank
//! forward (keeping in a [`Work`] what the backward pass reads), and backward from the
//! audio's gradient to every variable's.

use crate::cpu::Isa;
use crate::fused::encoder::{EncoderDims, EncoderPass, EncoderWork, encode, encode_backward};
use crate::fused::index::{Conv, EncoderIndex, GatedLayer};
use crate::fused::layers::{StackDims, StackInputs, StackScratch, stack_backward, stack_forward};
use crate::fused::linalg::{
    Taps, View, col_sums, conv1, conv1_dw, conv1_dx, dense_grads, fill_rows, gemm, project_frames,
    sized,
};
use crate::fused::pointwise::{relu_into, relu_mask};
use crate::student::model::{BANK_RATE, bank_gain, bank_match, bank_sample, scale_by_measured};

#[derive(Clone, Debug)]
pub(super) struct Flow {
    pub(super) start: Conv,
    pub(super) layers: Vec<GatedLayer>,
    pub(super) out: Conv,
}

#[derive(Clone, Debug)]
pub(super) struct Dims {
    pub(super) enc: EncoderDims,
    pub(super) w: usize,
    pub(super) bn: usize,
    pub(super) hop: usize,
    pub(super) taps: usize,
    /// Each flow's layers' dilations.
    pub(super) dilations: Vec<Vec<usize>>,
    pub(super) e: usize,
    /// Each flow's fixed share of the initial log-scale.
    pub(super) share: f32,
    /// The sub-partial bank's sub-partials (0: no bank) and its first excitation channel.
    pub(super) bank: usize,
    pub(super) first_sub: usize,
    /// Measured channels at the end of each frame (0: none).
    pub(super) measured: usize,
}

impl Dims {
    /// The flows' gated layers' sizes (the skip width is the residual width).
    fn stack(&self) -> StackDims {
        StackDims {
            w: self.w,
            sw: self.w,
            bn: self.bn,
            hop: self.hop,
            taps: self.taps,
            e: self.e,
        }
    }

    fn causal(&self, dilation: usize) -> Taps {
        Taps {
            taps: self.taps,
            dilation,
            left: (self.taps - 1) * dilation,
        }
    }
}

/// One flow's kept activations for one crop.
#[derive(Default)]
struct FlowWork {
    /// The flow's input `x_{f−1}` shifted right by one `[time]`.
    shifted: Vec<f32>,
    /// Residual streams `l_i` `[layers, time, w]`.
    l: Vec<f32>,
    /// Gate activations `[σ | tanh]` `[layers, time, 2w]`.
    act: Vec<f32>,
    /// Skip sum `[time, w]`.
    s: Vec<f32>,
    /// `exp(log s)` per sample.
    scale: Vec<f32>,
}

/// A crop's buffers: what the backward pass reads, kept from the forward pass.
#[derive(Default)]
pub(super) struct Work {
    time: usize,
    enc: EncoderWork,
    flows: Vec<FlowWork>,
    /// Each flow's input: `x_0 = z`, …, and the output last `[flows + 1, time]`.
    pub(super) xs: Vec<f32>,
    // Scratch.
    stack: StackScratch,
    a: Vec<f32>,
    head: Vec<f32>,
    ds: Vec<f32>,
    dx: Vec<f32>,
    dshift: Vec<f32>,
    /// The skip sum's gradient's column sums `[w]`.
    ds_sums: Vec<f32>,
    /// The sub-partial bank's gains `[frames, N]`, and their gradient.
    pub(super) gain: Vec<f32>,
    dgain: Vec<f32>,
    /// The frames the flows and the bank read `[frames, bn]` (the encoder's channels, then
    /// any measured ones), and their gradient.
    cond: Vec<f32>,
    dcond: Vec<f32>,
    pub(super) grad: Vec<f32>,
}

impl Work {
    pub(super) fn prepare(&mut self, d: &Dims, time: usize, params: usize) {
        self.time = time;
        self.enc.prepare(&d.enc, time);
        let (w, frames) = (d.w, time / d.hop);
        self.flows.resize_with(d.dilations.len(), FlowWork::default);
        for (fw, dil) in self.flows.iter_mut().zip(&d.dilations) {
            sized(&mut fw.shifted, time);
            sized(&mut fw.l, dil.len() * time * w);
            sized(&mut fw.act, dil.len() * time * 2 * w);
            sized(&mut fw.s, time * w);
            sized(&mut fw.scale, time);
        }
        sized(&mut self.xs, (d.dilations.len() + 1) * time);
        sized(&mut self.a, time * w);
        self.stack.prepare(time, w, frames * 2 * w);
        sized(&mut self.head, time * 2);
        sized(&mut self.ds, time * w);
        sized(&mut self.dx, time);
        sized(&mut self.dshift, time);
        sized(&mut self.ds_sums, d.w);
        sized(&mut self.gain, frames * d.bank);
        sized(&mut self.dgain, frames * d.bank);
        sized(&mut self.cond, frames * d.bn);
        sized(&mut self.dcond, frames * d.bn);
        self.grad.clear();
        self.grad.resize(params, 0.0);
    }
}

#[derive(Clone, Copy)]
pub(super) struct Net<'a> {
    pub(super) isa: Isa,
    pub(super) dims: &'a Dims,
    pub(super) enc_index: &'a EncoderIndex,
    pub(super) flows: &'a [Flow],
    pub(super) bank: Option<&'a Conv>,
    pub(super) params: &'a [f32],
}

impl Net<'_> {
    fn encoder(&self) -> EncoderPass<'_> {
        EncoderPass {
            isa: self.isa,
            dims: &self.dims.enc,
            index: self.enc_index,
            params: self.params,
        }
    }
    fn w(&self, c: &Conv) -> &[f32] {
        &self.params[c.w.clone()]
    }
    fn b(&self, c: &Conv) -> &[f32] {
        &self.params[c.b.clone()]
    }
}

pub(super) struct Crop<'a> {
    pub(super) scaled: &'a [f32],
    pub(super) noise: &'a [f32],
    pub(super) excitation: Option<&'a [f32]>,
    /// The crop's sub-partial amplitudes and each gain's weight in the match term.
    pub(super) bank_target: Option<(&'a [f32], f32)>,
    /// The crop's measured channels `[frames, N]`.
    pub(super) measured: Option<&'a [f32]>,
}

/// The frames the flows and the bank read: each the encoder's channels `enc` `[frames,
/// bn − N]`, then the measured ones `[frames, N]` (none: `N = 0`).
fn fill_cond(cond: &mut [f32], enc: &[f32], measured: Option<&[f32]>, bn: usize, n: usize) {
    for (f, row) in cond.chunks_exact_mut(bn).enumerate() {
        let (learned, tail) = row.split_at_mut(bn - n);
        learned.copy_from_slice(&enc[f * (bn - n)..(f + 1) * (bn - n)]);
        if let Some(m) = measured {
            tail.copy_from_slice(&m[f * n..(f + 1) * n]);
        }
    }
}

pub(super) fn crop_forward(net: Net, crop: &Crop, wk: &mut Work) {
    let d = net.dims;
    encode(net.encoder(), crop.scaled, &mut wk.enc);
    fill_cond(&mut wk.cond, &wk.enc.enc, crop.measured, d.bn, d.measured);
    let time = wk.time;
    wk.xs[..time].copy_from_slice(crop.noise);
    for (f, flow) in net.flows.iter().enumerate() {
        let (before, after) = wk.xs.split_at_mut((f + 1) * time);
        let x = &before[f * time..];
        let next = &mut after[..time];
        flow_forward(
            net,
            f,
            flow,
            crop,
            x,
            &mut wk.flows[f],
            Scratch {
                enc: &wk.cond,
                frames: &mut wk.stack.frames,
                g: &mut wk.stack.g,
                a: &mut wk.a,
                head: &mut wk.head,
            },
        );
        let scale = &mut wk.flows[f].scale;
        for (((o, sc), &xt), h) in next
            .iter_mut()
            .zip(scale.iter_mut())
            .zip(x)
            .zip(wk.head.chunks_exact(2))
        {
            let s = (h[1] + d.share).exp();
            *sc = s;
            *o = xt * s + h[0];
        }
    }
    if let (Some(bank), Some(e)) = (net.bank, crop.excitation) {
        // The sub-partial bank: gains per frame, their sines summed onto the output.
        let n = d.bank;
        project_frames(&mut wk.gain, &wk.cond, net.params, bank, d.bn, n);
        for g in wk.gain.iter_mut() {
            *g = bank_gain(*g);
        }
        if d.measured > 0 {
            for (g, frame) in wk.gain.chunks_exact_mut(n).zip(wk.cond.chunks_exact(d.bn)) {
                scale_by_measured(g, frame);
            }
        }
        let flows = net.flows.len();
        let out = &mut wk.xs[flows * time..(flows + 1) * time];
        for (t, o) in out.iter_mut().enumerate() {
            let gain = &wk.gain[t / d.hop * n..(t / d.hop + 1) * n];
            *o += bank_sample(gain, &e[t * d.e + d.first_sub..(t + 1) * d.e]);
        }
    }
}

struct Scratch<'a> {
    enc: &'a [f32],
    frames: &'a mut [f32],
    g: &'a mut [f32],
    a: &'a mut [f32],
    head: &'a mut [f32],
}

/// One flow over its input `x`: leaves `[μ, log s − share]` per sample in `sc.head`.
fn flow_forward(
    net: Net,
    f: usize,
    flow: &Flow,
    crop: &Crop,
    x: &[f32],
    fw: &mut FlowWork,
    sc: Scratch,
) {
    let (isa, d) = (net.isa, net.dims);
    let time = x.len();
    let w = d.w;
    let n = time * w;
    fw.shifted[0] = 0.0;
    fw.shifted[1..].copy_from_slice(&x[..time - 1]);
    let l0 = &mut fw.l[..n];
    fill_rows(l0, net.b(&flow.start));
    conv1(l0, &fw.shifted, net.w(&flow.start), d.causal(1), w);
    fw.s.fill(0.0);
    stack_forward(
        isa,
        d.stack(),
        &flow.layers,
        &d.dilations[f],
        net.params,
        sc.enc,
        crop.excitation,
        &mut fw.l,
        &mut fw.act,
        &mut fw.s,
        sc.g,
        sc.frames,
    );
    relu_into(isa, &fw.s, sc.a);
    fill_rows(sc.head, net.b(&flow.out));
    gemm(
        sc.head,
        2,
        View::new(sc.a, time, w),
        View::new(net.w(&flow.out), w, 2),
        true,
    );
}

pub(super) fn crop_backward(net: Net, crop: &Crop, d_audio: &[f32], wk: &mut Work) {
    let (isa, d) = (net.isa, net.dims);
    let time = wk.time;
    let (w, bn) = (d.w, d.bn);
    let frames = time / d.hop;
    let grad = &mut wk.grad;
    wk.dcond.fill(0.0);
    if let (Some(bank), Some(e)) = (net.bank, crop.excitation) {
        // a_t = Σ_m g_m(f)·sin_m(t), g = exp(r·v), v = e·W + b:
        // dv_m(f) = r·g_m(f)·Σ_{t ∈ f} da_t·sin_m(t).
        let n = d.bank;
        wk.dgain.fill(0.0);
        for (t, &da) in d_audio.iter().enumerate() {
            let dg = &mut wk.dgain[t / d.hop * n..(t / d.hop + 1) * n];
            let sub = &e[t * d.e + d.first_sub..(t + 1) * d.e];
            for (o, pair) in dg.iter_mut().zip(sub.chunks_exact(2)) {
                *o += da * pair[0];
            }
        }
        if let Some((amplitudes, weight)) = crop.bank_target {
            // The match term's own gradient with respect to each gain.
            for ((o, &g), &a) in wk.dgain.iter_mut().zip(&wk.gain).zip(amplitudes) {
                *o += weight * bank_match(g, a).1;
            }
        }
        for (o, &g) in wk.dgain.iter_mut().zip(&wk.gain) {
            *o *= BANK_RATE as f32 * g;
        }
        dense_grads(grad, bank, View::new(&wk.cond, frames, bn), &wk.dgain, n);
        gemm(
            &mut wk.dcond,
            bn,
            View::new(&wk.dgain, frames, n),
            View::new(net.w(bank), bn, n).t(),
            true,
        );
    }
    wk.dx.copy_from_slice(d_audio);
    for (f, flow) in net.flows.iter().enumerate().rev() {
        let fw = &wk.flows[f];
        let x = &wk.xs[f * time..(f + 1) * time];
        // x_f = x_{f−1}·s + μ: dμ = dx, d log s = dx·x_{f−1}·s, and dx_{f−1} = dx·s.
        for (((dx, h), &xt), &s) in wk
            .dx
            .iter_mut()
            .zip(wk.head.chunks_exact_mut(2))
            .zip(x)
            .zip(&fw.scale)
        {
            let g = *dx;
            h[0] = g;
            h[1] = g * xt * s;
            *dx = g * s;
        }
        let a = &mut wk.a[..time * w];
        relu_into(isa, &fw.s, a);
        dense_grads(grad, &flow.out, View::new(a, time, w), &wk.head, 2);
        gemm(
            &mut wk.ds,
            w,
            View::new(&wk.head, time, 2),
            View::new(net.w(&flow.out), w, 2).t(),
            false,
        );
        relu_mask(isa, &mut wk.ds, &fw.s);
        wk.ds_sums.fill(0.0);
        col_sums(&mut wk.ds_sums, &wk.ds);
        stack_backward(
            isa,
            d.stack(),
            &flow.layers,
            &d.dilations[f],
            net.params,
            &StackInputs {
                l: &fw.l,
                act: &fw.act,
                enc: &wk.cond,
                excitation: crop.excitation,
            },
            &wk.ds,
            &wk.ds_sums,
            &mut wk.stack,
            &mut wk.dcond,
            grad,
        );
        // The start convolution: its kernel, and the gradient of its (shifted) input.
        let taps = d.causal(1);
        conv1_dw(
            &mut grad[flow.start.w.clone()],
            &fw.shifted,
            &wk.stack.dl,
            taps,
            w,
        );
        col_sums(&mut grad[flow.start.b.clone()], &wk.stack.dl);
        conv1_dx(&mut wk.dshift, &wk.stack.dl, net.w(&flow.start), taps, w);
        // shifted[t] = x[t − 1].
        for (dx, &v) in wk.dx.iter_mut().zip(&wk.dshift[1..]) {
            *dx += v;
        }
    }
    // The encoder's share of the frames' gradient (the measured channels are data).
    let learned = bn - d.measured;
    for (o, row) in wk
        .enc
        .denc
        .chunks_exact_mut(learned)
        .zip(wk.dcond.chunks_exact(bn))
    {
        o.copy_from_slice(&row[..learned]);
    }
    encode_backward(net.encoder(), crop.scaled, &mut wk.enc, grad);
}
