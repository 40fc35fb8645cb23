//! The element-wise passes of the fused step, each one sweep over its rows, vectorised
//! for AVX2 + FMA where the CPU has them (the same code compiled twice).

use crate::cpu::{Isa, exp_fast, sigmoid, tanh};

/// Runs `$body` (an expression using the function's arguments) compiled for AVX2 + FMA when
/// `isa` says the CPU has them, portably otherwise.
macro_rules! dispatch {
    ($isa:expr, fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {{
        #[inline(always)]
        fn imp($($arg: $ty),*) $(-> $ret)? $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn avx2($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
        match $isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Isa::Avx2Fma` is only chosen where `Isa::detect` found AVX2 and FMA.
            Isa::Avx2Fma => unsafe { avx2($($arg),*) },
            _ => imp($($arg),*),
        }
    }};
}

/// The gate, forward: each row of `z` `[σ-half | tanh-half]` (pre-activations, `2w` wide)
/// becomes `[σ(a) | tanh(b)]` in place (what the backward pass needs), and `g = σ(a)·tanh(b)`.
#[allow(unsafe_code)]
pub(crate) fn gate_forward(isa: Isa, z: &mut [f32], g: &mut [f32], w: usize) {
    dispatch!(
        isa,
        fn gate_forward(z: &mut [f32], g: &mut [f32], w: usize) {
            for (zr, gr) in z.chunks_exact_mut(2 * w).zip(g.chunks_exact_mut(w)) {
                let (a, b) = zr.split_at_mut(w);
                // Eight lanes at a time in fixed-size blocks (what the vectoriser needs to
                // see), the ragged end one by one.
                let mut ac = a.chunks_exact_mut(8);
                let mut bc = b.chunks_exact_mut(8);
                let mut gc = gr.chunks_exact_mut(8);
                for ((a, b), g) in (&mut ac).zip(&mut bc).zip(&mut gc) {
                    // Always eight (chunks_exact); the `else` is never taken.
                    let (Ok(a), Ok(b), Ok(g)) = (
                        <&mut [f32; 8]>::try_from(a),
                        <&mut [f32; 8]>::try_from(b),
                        <&mut [f32; 8]>::try_from(g),
                    ) else {
                        continue;
                    };
                    // As the decoder's gate: the exponentials in a loop of their own.
                    let (mut ea, mut eb) = ([0f32; 8], [0f32; 8]);
                    for i in 0..8 {
                        ea[i] = exp_fast(-a[i]);
                        eb[i] = exp_fast(-2.0 * b[i]);
                    }
                    for i in 0..8 {
                        let s = 1.0 / (1.0 + ea[i]);
                        let t = 2.0 / (1.0 + eb[i]) - 1.0;
                        a[i] = s;
                        b[i] = t;
                        g[i] = s * t;
                    }
                }
                let (a, b, g) = (
                    ac.into_remainder(),
                    bc.into_remainder(),
                    gc.into_remainder(),
                );
                for ((a, b), g) in a.iter_mut().zip(b.iter_mut()).zip(g.iter_mut()) {
                    let (s, t) = (sigmoid(*a), tanh(*b));
                    *a = s;
                    *b = t;
                    *g = s * t;
                }
            }
        }
    )
}

/// `g = σ·tanh` again from the stored activations `[σ | tanh]`.
#[allow(unsafe_code)]
pub(crate) fn gate_output(isa: Isa, act: &[f32], g: &mut [f32], w: usize) {
    dispatch!(
        isa,
        fn gate_output(act: &[f32], g: &mut [f32], w: usize) {
            for (ar, gr) in act.chunks_exact(2 * w).zip(g.chunks_exact_mut(w)) {
                let (a, b) = ar.split_at(w);
                for ((a, b), g) in a.iter().zip(b).zip(gr.iter_mut()) {
                    *g = a * b;
                }
            }
        }
    )
}

/// The gate, backward: `dz = [dg·t·σ(1−σ) | dg·σ·(1−t²)]` from the stored `[σ | t]`.
#[allow(unsafe_code)]
pub(crate) fn gate_backward(isa: Isa, act: &[f32], dg: &[f32], dz: &mut [f32], w: usize) {
    dispatch!(
        isa,
        fn gate_backward(act: &[f32], dg: &[f32], dz: &mut [f32], w: usize) {
            for ((ar, dgr), dzr) in act
                .chunks_exact(2 * w)
                .zip(dg.chunks_exact(w))
                .zip(dz.chunks_exact_mut(2 * w))
            {
                let (s, t) = ar.split_at(w);
                let (da, db) = dzr.split_at_mut(w);
                for i in 0..w {
                    da[i] = dgr[i] * t[i] * s[i] * (1.0 - s[i]);
                    db[i] = dgr[i] * s[i] * (1.0 - t[i] * t[i]);
                }
            }
        }
    )
}

/// `x = max(x, 0)` in place.
#[allow(unsafe_code)]
pub(crate) fn relu(isa: Isa, x: &mut [f32]) {
    dispatch!(
        isa,
        fn relu(x: &mut [f32]) {
            for v in x.iter_mut() {
                *v = v.max(0.0);
            }
        }
    )
}

/// `out = max(x, 0)`.
#[allow(unsafe_code)]
pub(crate) fn relu_into(isa: Isa, x: &[f32], out: &mut [f32]) {
    dispatch!(
        isa,
        fn relu_into(x: &[f32], out: &mut [f32]) {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v.max(0.0);
            }
        }
    )
}

/// `d = 0` where `y ≤ 0` (the gradient through a ReLU whose output or input is `y`).
#[allow(unsafe_code)]
pub(crate) fn relu_mask(isa: Isa, d: &mut [f32], y: &[f32]) {
    dispatch!(
        isa,
        fn relu_mask(d: &mut [f32], y: &[f32]) {
            for (d, &y) in d.iter_mut().zip(y) {
                if y <= 0.0 {
                    *d = 0.0;
                }
            }
        }
    )
}

/// `acc += d` where `y > 0`.
#[allow(unsafe_code)]
pub(crate) fn add_masked(isa: Isa, acc: &mut [f32], d: &[f32], y: &[f32]) {
    dispatch!(
        isa,
        fn add_masked(acc: &mut [f32], d: &[f32], y: &[f32]) {
            for ((a, &d), &y) in acc.iter_mut().zip(d).zip(y) {
                if y > 0.0 {
                    *a += d;
                }
            }
        }
    )
}

/// Softmax cross-entropy of each row of `logits` (`classes` wide) against `targets`
/// (class indices): returns the summed negative log-likelihood (nats) and leaves
/// `scale · (softmax − one-hot)` in `logits`, the gradient of `scale ×` that sum.
#[allow(unsafe_code)]
pub(crate) fn cross_entropy(
    isa: Isa,
    logits: &mut [f32],
    targets: &[u8],
    classes: usize,
    scale: f32,
) -> f64 {
    dispatch!(
        isa,
        fn cross_entropy(logits: &mut [f32], targets: &[u8], classes: usize, scale: f32) -> f64 {
            let mut total = 0f64;
            for (row, &k) in logits.chunks_exact_mut(classes).zip(targets) {
                let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let k = k as usize;
                let own = row[k] - max;
                let mut sum = 0f32;
                for v in row.iter_mut() {
                    *v = exp_fast(*v - max);
                    sum += *v;
                }
                total += f64::from(sum.ln()) - f64::from(own);
                let inv = scale / sum;
                for v in row.iter_mut() {
                    *v *= inv;
                }
                row[k] -= scale;
            }
            total
        }
    )
}
