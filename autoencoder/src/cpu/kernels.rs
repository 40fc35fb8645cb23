//! The arithmetic of the CPU decoder: matrices repacked into panels of [`NR`] columns,
//! and the register-tiled kernels over them (see [`crate::wavenet::cpu`] for the design).

use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use crate::Result;
use crate::nn::Conv1d;

/// Output columns per panel (two AVX registers).
pub const NR: usize = 16;
pub(crate) const HALF: usize = NR / 2;

pub(crate) fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// Output columns per group of panels: the unit a one-voice tile covers.
pub(crate) const GROUP: usize = 4 * NR;

/// `n` rounded up to whole groups: the stride of every matrix product's output.
pub(crate) fn pad(n: usize) -> usize {
    n.div_ceil(GROUP) * GROUP
}

/// `n` rounded up to whole panels.
pub(crate) fn pad16(n: usize) -> usize {
    n.div_ceil(NR) * NR
}

/// A matrix `[k][n]` repacked as `[panel][k][NR]`, with its bias in the same column order.
#[derive(Debug, Clone)]
pub(crate) struct Packed {
    pub(crate) data: Vec<f32>,
    pub(crate) bias: Vec<f32>,
    pub(crate) k: usize,
    pub(crate) panels: usize,
}

impl Packed {
    /// `columns[c]` is the source column of packed column `c` (`None`: zero padding);
    /// the columns are padded to whole groups.
    pub(crate) fn new(
        kernel: &[f32],
        bias: &[f32],
        k: usize,
        n: usize,
        columns: &[Option<usize>],
    ) -> Self {
        let mut columns = columns.to_vec();
        columns.resize(pad(columns.len()), None);
        let panels = columns.len() / NR;
        let mut data = vec![0f32; panels * k * NR];
        for (c, src) in columns.iter().enumerate() {
            if let Some(src) = *src {
                let (p, j) = (c / NR, c % NR);
                for kk in 0..k {
                    data[(p * k + kk) * NR + j] = kernel[kk * n + src];
                }
            }
        }
        let bias = columns
            .iter()
            .map(|c| c.map_or(0.0, |src| bias.get(src).copied().unwrap_or(0.0)))
            .collect();
        Self {
            data,
            bias,
            k,
            panels,
        }
    }

    /// Plain column order, padded to whole panels.
    pub(crate) fn dense(conv: &Conv1d) -> Result<Self> {
        let (k, n) = (conv.in_channels(), conv.out_channels());
        let columns: Vec<_> = (0..pad(n)).map(|c| (c < n).then_some(c)).collect();
        Ok(Self::new(
            &host_vec(conv.kernel())?,
            &host_vec(conv.bias())?,
            k * conv.config().filter_length,
            n,
            &columns,
        ))
    }
}

/// Columns of the gate matrix: panel `p` holds sigmoid channels `8p..8p+8` then the
/// matching tanh channels (`width + 8p..`).
pub(crate) fn gate_columns(width: usize) -> Vec<Option<usize>> {
    let panels = width.div_ceil(HALF);
    (0..panels * NR)
        .map(|c| {
            let (p, j) = (c / NR, c % NR);
            let ch = p * HALF + j % HALF;
            (ch < width).then_some(if j < HALF { ch } else { width + ch })
        })
        .collect()
}

/// One panel's gate: `g = σ(a) · tanh(b)` with `a`, `b` the panel's two halves
/// (sums + conditioning). Fixed sizes, so it compiles to straight SIMD.
#[inline(always)]
pub(crate) fn gate(sums: &[f32; NR], cond: &[f32; NR], g: &mut [f32; HALF]) {
    let mut a = [0f32; HALF];
    let mut b = [0f32; HALF];
    for j in 0..HALF {
        a[j] = -(sums[j] + cond[j]);
        b[j] = -2.0 * (sums[HALF + j] + cond[HALF + j]);
    }
    // Plain loops rather than `array::map`, which is not always inlined (and then
    // loses the caller's AVX2 and calls libm's floor).
    let (mut ea, mut eb) = ([0f32; HALF], [0f32; HALF]);
    for j in 0..HALF {
        ea[j] = exp_fast(a[j]);
        eb[j] = exp_fast(b[j]);
    }
    for j in 0..HALF {
        // σ(a) · tanh(b) = σ(a) · (2σ(2b) − 1)
        g[j] = (2.0 / (1.0 + eb[j]) - 1.0) / (1.0 + ea[j]);
    }
}

/// `out = bias + z · kernel` for a plain `[in][out]` kernel (the per-frame projections).
pub(crate) fn project(kernel: &[f32], bias: &[f32], z: &[f32], out: &mut [f32]) {
    out.copy_from_slice(bias);
    for (&zv, row) in z.iter().zip(kernel.chunks_exact(out.len())) {
        for (o, &w) in out.iter_mut().zip(row) {
            *o += zv * w;
        }
    }
}

#[inline(always)]
pub(crate) fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `out[v] = x[v] · m` for every voice: `x` is `[voice][stride]` (its first `m.k` values
/// used), `out` is `[voice][panels · NR]` in packed column order, bias not added. `xt` is
/// scratch for the inputs transposed per tile of voices (`[tile][k][voices]`).
///
/// Voices go in tiles of 6 or 4 while they last, one panel at a time: the panel (a
/// contiguous `k × NR` block, 12 KB for `small`) is streamed once and stays in L1 for
/// every tile, and each weight load serves 6 or 4 voices. The last 1–3 voices go in
/// tiles of 2 voices × 2 panels or 1 voice × 4 panels. Every tile keeps 8–12
/// independent accumulator registers, enough to hide the FMA latency.
#[inline(always)]
pub(crate) fn matmul<const FMA: bool>(
    m: &Packed,
    panels: Range<usize>,
    x: &[f32],
    stride: usize,
    voices: usize,
    xt: &mut [f32],
    out: &mut [f32],
) {
    let k = m.k;
    let n = m.panels * NR;
    let mut v0 = 0;
    while v0 < voices {
        let mr = tile_size(voices - v0);
        let xt = &mut xt[v0 * k..(v0 + mr) * k];
        for i in 0..mr {
            let x = &x[(v0 + i) * stride..][..k];
            for (kk, &xv) in x.iter().enumerate() {
                xt[kk * mr + i] = xv;
            }
        }
        v0 += mr;
    }
    let panel = |p: usize| &m.data[p * k * NR..][..k * NR].as_chunks::<NR>().0[..k];
    for p in panels.clone() {
        let mut v0 = 0;
        while v0 < voices {
            let mr = tile_size(voices - v0);
            let xt = &xt[v0 * k..(v0 + mr) * k];
            match mr {
                6 => store(
                    &[tile::<6, FMA>(panel(p), xt.as_chunks().0)],
                    out,
                    n,
                    v0,
                    p * NR,
                ),
                4 => store(
                    &[tile::<4, FMA>(panel(p), xt.as_chunks().0)],
                    out,
                    n,
                    v0,
                    p * NR,
                ),
                _ => {}
            }
            v0 += mr;
        }
    }
    let mut v0 = 0;
    while v0 < voices {
        let mr = tile_size(voices - v0);
        let xt = &xt[v0 * k..(v0 + mr) * k];
        let mut p = panels.start;
        while p < panels.end {
            let left = panels.end - p;
            match mr {
                2 if left >= 2 => {
                    let acc = tile2::<FMA>(panel(p), panel(p + 1), xt.as_chunks::<2>().0);
                    store(&acc, out, n, v0, p * NR);
                    p += 2;
                }
                1 if left >= 4 => {
                    let acc =
                        tile4::<FMA>([panel(p), panel(p + 1), panel(p + 2), panel(p + 3)], xt);
                    store(&acc, out, n, v0, p * NR);
                    p += 4;
                }
                1 if left >= 2 => {
                    let acc = tile2x1::<FMA>(panel(p), panel(p + 1), xt);
                    store(&acc, out, n, v0, p * NR);
                    p += 2;
                }
                // A ragged end of a thread's share: one panel at a time.
                2 => {
                    store(
                        &[tile::<2, FMA>(panel(p), xt.as_chunks().0)],
                        out,
                        n,
                        v0,
                        p * NR,
                    );
                    p += 1;
                }
                1 => {
                    store(
                        &[tile::<1, FMA>(panel(p), xt.as_chunks().0)],
                        out,
                        n,
                        v0,
                        p * NR,
                    );
                    p += 1;
                }
                _ => break,
            }
        }
        v0 += mr;
    }
}

/// Voices in the next tile when `left` remain: 6 while they last (8 as 6 + 2: the
/// 6-voice tile does 12 FMAs per 8 loads against the 4-voice tile's 8 per 6, which beats
/// the smaller tail; measured on batch 16 split 8 + 8 over two threads, +2 %), then 4, 2, 1.
#[inline(always)]
pub(crate) fn tile_size(left: usize) -> usize {
    match left {
        4 | 5 => 4,
        l if l >= 6 => 6,
        2 | 3 => 2,
        _ => 1,
    }
}

/// Writes a tile's sums: voice `v0 + i`, columns `col + b·NR ..`.
#[inline(always)]
pub(crate) fn store<const MR: usize, const PB: usize>(
    acc: &[[[f32; NR]; MR]; PB],
    out: &mut [f32],
    n: usize,
    v0: usize,
    col: usize,
) {
    for (b, acc) in acc.iter().enumerate() {
        for (i, acc) in acc.iter().enumerate() {
            out[(v0 + i) * n + col + b * NR..][..NR].copy_from_slice(acc);
        }
    }
}

/// One panel `[k][NR]` for `MR` voices (`xt` is their inputs `[k][MR]`).
#[inline(always)]
pub(crate) fn tile<const MR: usize, const FMA: bool>(
    rows: &[[f32; NR]],
    xt: &[[f32; MR]],
) -> [[f32; NR]; MR] {
    let mut acc = [[0f32; NR]; MR];
    for (w, x) in rows.iter().zip(xt) {
        for (acc, &xv) in acc.iter_mut().zip(x) {
            for (a, &wv) in acc.iter_mut().zip(w) {
                *a = fmadd::<FMA>(xv, wv, *a);
            }
        }
    }
    acc
}

/// Two panels for two voices.
#[inline(always)]
pub(crate) fn tile2<const FMA: bool>(
    r0: &[[f32; NR]],
    r1: &[[f32; NR]],
    xt: &[[f32; 2]],
) -> [[[f32; NR]; 2]; 2] {
    let mut acc = [[[0f32; NR]; 2]; 2];
    for ((w0, w1), x) in r0.iter().zip(r1).zip(xt) {
        for (b, w) in [w0, w1].into_iter().enumerate() {
            for (acc, &xv) in acc[b].iter_mut().zip(x) {
                for (a, &wv) in acc.iter_mut().zip(w) {
                    *a = fmadd::<FMA>(xv, wv, *a);
                }
            }
        }
    }
    acc
}

/// Two panels for one voice (the ragged end of a thread's share).
#[inline(always)]
pub(crate) fn tile2x1<const FMA: bool>(
    r0: &[[f32; NR]],
    r1: &[[f32; NR]],
    xt: &[f32],
) -> [[[f32; NR]; 1]; 2] {
    let mut acc = [[[0f32; NR]; 1]; 2];
    for ((w0, w1), &xv) in r0.iter().zip(r1).zip(xt) {
        for (b, w) in [w0, w1].into_iter().enumerate() {
            for (a, &wv) in acc[b][0].iter_mut().zip(w) {
                *a = fmadd::<FMA>(xv, wv, *a);
            }
        }
    }
    acc
}

/// Four panels for one voice.
#[inline(always)]
pub(crate) fn tile4<const FMA: bool>(r: [&[[f32; NR]]; 4], xt: &[f32]) -> [[[f32; NR]; 1]; 4] {
    let mut acc = [[[0f32; NR]; 1]; 4];
    for ((((w0, w1), w2), w3), &xv) in r[0].iter().zip(r[1]).zip(r[2]).zip(r[3]).zip(xt) {
        for (b, w) in [w0, w1, w2, w3].into_iter().enumerate() {
            for (a, &wv) in acc[b][0].iter_mut().zip(w) {
                *a = fmadd::<FMA>(xv, wv, *a);
            }
        }
    }
    acc
}

/// `e^x` for `f32`, vectorisable (Cephes `expf`): `x = n·ln 2 + r` with |r| ≤ ln 2 / 2, a
/// degree-7 polynomial for `e^r`, and `2^n` built in the exponent bits. Relative error
/// ≤ 2.5e-7 over the clamped range [-87.3, 88.3] (tested against `f64::exp`); beyond it
/// the result saturates at ~1.2e-38 / ~2.2e38 instead of 0 / ∞, which is harmless here.
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from its biased exponent n + 127 ∈ [1, 254], read out of the mantissa of
    // (n + 127) + 2^23 (exact in f32): integer bit operations only, so this vectorises
    // (a float-to-int `as` saturates and does not).
    let biased = (n + 127.0 + 8_388_608.0).to_bits() - 0x4B00_0000;
    y * f32::from_bits(biased << 23)
}

/// `1 / (1 + e^−x)` with [`exp_fast`]: absolute error ≤ 1e-7.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_fast(-x))
}

/// `tanh x = 2σ(2x) − 1`: absolute error ≤ 3e-7.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    2.0 * sigmoid(2.0 * x) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_fast_is_accurate() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let exact = (x as f64).exp();
            worst = worst.max(((exp_fast(x) as f64) - exact).abs() / exact);
            x += 0.0137;
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
    }

    #[test]
    fn activations_are_accurate() {
        let (mut ws, mut wt) = (0f64, 0f64);
        let mut x = -30.0f32;
        while x < 30.0 {
            let xd = x as f64;
            ws = ws.max((sigmoid(x) as f64 - 1.0 / (1.0 + (-xd).exp())).abs());
            wt = wt.max((tanh(x) as f64 - xd.tanh()).abs());
            x += 0.001;
        }
        assert!(ws < 1e-7, "sigmoid error {ws}");
        assert!(wt < 3e-7, "tanh error {wt}");
    }

    #[test]
    fn gate_panels_pair_sigmoid_and_tanh() {
        let cols = gate_columns(12);
        assert_eq!(cols.len(), 32);
        assert_eq!(cols[0], Some(0));
        assert_eq!(cols[8], Some(12));
        assert_eq!(cols[16], Some(8));
        assert_eq!(cols[19], Some(11));
        assert_eq!(cols[20], None);
        assert_eq!(cols[24], Some(20));
    }
}
