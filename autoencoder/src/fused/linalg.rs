//! The few products and passes the fused training step is made of, on row-major `f32`
//! slices: matrix products through the `gemm` crate (transposes are strides, never
//! copies), the taps of a dilated convolution and their two gradients, column sums, and
//! the per-frame sums and broadcasts of the conditioning.

use std::ops::Range;

use super::index::Conv;
pub(crate) use crate::gemm::{View, gemm};

/// A convolution's geometry along time: `taps` taps `dilation` apart, the first reading
/// `left` samples back (`(taps − 1)·dilation` causal, half that centred).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taps {
    pub taps: usize,
    pub dilation: usize,
    pub left: usize,
}

impl Taps {
    /// Output rows that tap `k` reaches and the input row offset it reads at:
    /// `out[t] += in[t + offset] · W_k` for `t` in the range.
    fn rows(&self, k: usize, time: usize) -> (Range<usize>, isize) {
        let offset = (k * self.dilation) as isize - self.left as isize;
        let start = (-offset).max(0) as usize;
        let end = (time as isize - offset).clamp(0, time as isize) as usize;
        (start.min(end)..end, offset)
    }
}

fn shifted(range: &Range<usize>, offset: isize) -> Range<usize> {
    let s = (range.start as isize + offset) as usize;
    s..s + range.len()
}

/// `out[t] += Σ_k x[t + offset_k] · W_k` (zero outside the crop); `w` is `[taps·cin, cout]`.
pub(crate) fn conv(out: &mut [f32], x: &[f32], w: &[f32], taps: Taps, cin: usize, cout: usize) {
    let time = x.len() / cin;
    for k in 0..taps.taps {
        let (rows, offset) = taps.rows(k, time);
        if rows.is_empty() {
            continue;
        }
        let xs = View::new(x, time, cin).rows(shifted(&rows, offset));
        let wk = View::new(&w[k * cin * cout..(k + 1) * cin * cout], cin, cout);
        gemm(&mut out[rows.start * cout..], cout, xs, wk, true);
    }
}

/// The kernel's gradient: `dw_k += Σ_t x[t + offset_k]ᵀ · dy[t]`.
pub(crate) fn conv_dw(dw: &mut [f32], x: &[f32], dy: &[f32], taps: Taps, cin: usize, cout: usize) {
    let time = x.len() / cin;
    for k in 0..taps.taps {
        let (rows, offset) = taps.rows(k, time);
        if rows.is_empty() {
            continue;
        }
        let xs = View::new(x, time, cin).rows(shifted(&rows, offset)).t();
        let dys = View::new(dy, time, cout).rows(rows);
        gemm(
            &mut dw[k * cin * cout..(k + 1) * cin * cout],
            cout,
            xs,
            dys,
            true,
        );
    }
}

/// The input's gradient: `dx[t + offset_k] += dy[t] · W_kᵀ`.
pub(crate) fn conv_dx(dx: &mut [f32], dy: &[f32], w: &[f32], taps: Taps, cin: usize, cout: usize) {
    let time = dy.len() / cout;
    for k in 0..taps.taps {
        let (rows, offset) = taps.rows(k, time);
        if rows.is_empty() {
            continue;
        }
        let target = shifted(&rows, offset);
        let dys = View::new(dy, time, cout).rows(rows);
        let wt = View::new(&w[k * cin * cout..(k + 1) * cin * cout], cin, cout).t();
        gemm(&mut dx[target.start * cin..], cin, dys, wt, true);
    }
}

/// A one-channel input's convolution (the start layers): `out[t, c] += Σ_k x[t+o_k]·w[k, c]`.
pub(crate) fn conv1(out: &mut [f32], x: &[f32], w: &[f32], taps: Taps, cout: usize) {
    let time = x.len();
    for k in 0..taps.taps {
        let (rows, offset) = taps.rows(k, time);
        let wk = &w[k * cout..(k + 1) * cout];
        for t in rows {
            let xv = x[(t as isize + offset) as usize];
            for (o, &wv) in out[t * cout..(t + 1) * cout].iter_mut().zip(wk) {
                *o += xv * wv;
            }
        }
    }
}

/// [`conv1`]'s kernel gradient.
pub(crate) fn conv1_dw(dw: &mut [f32], x: &[f32], dy: &[f32], taps: Taps, cout: usize) {
    let time = x.len();
    for k in 0..taps.taps {
        let (rows, offset) = taps.rows(k, time);
        let dwk = &mut dw[k * cout..(k + 1) * cout];
        for t in rows {
            let xv = x[(t as isize + offset) as usize];
            for (g, &d) in dwk.iter_mut().zip(&dy[t * cout..(t + 1) * cout]) {
                *g += xv * d;
            }
        }
    }
}

/// `sums[c] += Σ_rows m[r, c]` (a bias's gradient).
pub(crate) fn col_sums(sums: &mut [f32], m: &[f32]) {
    let n = sums.len();
    // Per-block partial sums in f32 lanes, then added in: long columns keep their precision.
    let mut part = vec![0f32; n];
    for block in m.chunks(256 * n) {
        part.fill(0.0);
        for row in block.chunks_exact(n) {
            for (p, &v) in part.iter_mut().zip(row) {
                *p += v;
            }
        }
        for (s, &p) in sums.iter_mut().zip(&part) {
            *s += p;
        }
    }
}

/// `out[t] += rows[t / hop]` (a per-frame projection held for `hop` samples).
pub(crate) fn add_held(out: &mut [f32], frames: &[f32], hop: usize, n: usize) {
    for (t, row) in out.chunks_exact_mut(n).enumerate() {
        let f = &frames[(t / hop) * n..(t / hop + 1) * n];
        for (o, &v) in row.iter_mut().zip(f) {
            *o += v;
        }
    }
}

/// `frames[f] = Σ_{t in frame f} m[t] · scale` (the gradient of [`add_held`], or a mean).
pub(crate) fn frame_sums(frames: &mut [f32], m: &[f32], hop: usize, n: usize, scale: f32) {
    frames.fill(0.0);
    for (t, row) in m.chunks_exact(n).enumerate() {
        let f = &mut frames[(t / hop) * n..(t / hop + 1) * n];
        for (o, &v) in f.iter_mut().zip(row) {
            *o += v;
        }
    }
    for v in frames.iter_mut() {
        *v *= scale;
    }
}

/// `out[t] = bias` for every row.
pub(crate) fn fill_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        row.copy_from_slice(bias);
    }
}

/// `v` resized to `n` values (a reused buffer: what it held stays where it fits).
pub(crate) fn sized(v: &mut Vec<f32>, n: usize) {
    v.resize(n, 0.0);
}

/// `out[f] = bias + enc[f] · W` for every frame (a conditioning projection `c`, its
/// kernel and bias in `params`, `bn` → `n` channels).
pub(crate) fn project_frames(
    out: &mut [f32],
    enc: &[f32],
    params: &[f32],
    c: &Conv,
    bn: usize,
    n: usize,
) {
    let frames = enc.len() / bn;
    let out = &mut out[..frames * n];
    fill_rows(out, &params[c.b.clone()]);
    gemm(
        out,
        n,
        View::new(enc, frames, bn),
        View::new(&params[c.w.clone()], bn, n),
        true,
    );
}

/// `grad[c.w] += xᵀ·dy`, `grad[c.b] += Σ dy` for a 1×1 layer `x [time, cin] → [time, cout]`.
pub(crate) fn dense_grads(grad: &mut [f32], c: &Conv, x: View, dy: &[f32], cout: usize) {
    let time = x.rows;
    gemm(
        &mut grad[c.w.clone()],
        cout,
        x.t(),
        View::new(dy, time, cout),
        true,
    );
    col_sums(&mut grad[c.b.clone()], dy);
}

/// [`conv1`]'s input gradient: `dx[t + o_k] = Σ_k Σ_c dy[t, c]·w[k, c]` (overwrites `dx`).
pub(crate) fn conv1_dx(dx: &mut [f32], dy: &[f32], w: &[f32], taps: Taps, cout: usize) {
    dx.fill(0.0);
    let time = dx.len();
    for k in 0..taps.taps {
        let offset = (k * taps.dilation) as isize - taps.left as isize;
        let wk = &w[k * cout..(k + 1) * cout];
        let start = (-offset).max(0) as usize;
        let end = (time as isize - offset).clamp(0, time as isize) as usize;
        for t in start..end.max(start) {
            let row = &dy[t * cout..(t + 1) * cout];
            let v: f32 = row.iter().zip(wk).map(|(a, b)| a * b).sum();
            dx[(t as isize + offset) as usize] += v;
        }
    }
}
