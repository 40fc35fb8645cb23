//! The student's row-major kernels, allocation-free on any thread: the gate of a block of
//! rows ([`gate`], the CPU renderer's and the stream's), and the stream's matrix products
//! ([`matmul`], `dst[m, n] += lhs[m, k] · rhs[k, n]`), small enough (a block of at most
//! [`crate::student::stream::CHUNK`] rows, `n` = 32 or 64) that a register tile in plain
//! loops does as well as a library's packing (the `gemm` crate keeps a lazily allocated
//! buffer per thread, which an audio thread must not pay for on its first block).

use super::Isa;
use super::kernels::{exp_fast, fmadd};

/// Columns of a register tile: two AVX vectors.
const NC: usize = 16;

/// `dst[m, n] += lhs[m, k] · rhs[k, n]`, all row-major and contiguous.
pub fn matmul(isa: Isa, m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    let (lhs, rhs, dst) = (&lhs[..m * k], &rhs[..k * n], &mut dst[..m * n]);
    match isa {
        Isa::Avx2Fma if n.is_multiple_of(NC) => matmul_avx2(m, k, n, lhs, rhs, dst),
        _ => matmul_impl::<false>(m, k, n, lhs, rhs, dst),
    }
}

#[allow(unsafe_code)]
fn matmul_avx2(m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `Isa::Avx2Fma` is only chosen where `Isa::detect` found AVX2 and FMA (or a
    // test asks for it on such a CPU).
    unsafe {
        matmul_avx2_inner(m, k, n, lhs, rhs, dst)
    }
    #[cfg(not(target_arch = "x86_64"))]
    matmul_impl::<false>(m, k, n, lhs, rhs, dst)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn matmul_avx2_inner(m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    matmul_impl::<true>(m, k, n, lhs, rhs, dst)
}

#[inline(always)]
fn matmul_impl<const FMA: bool>(
    m: usize,
    k: usize,
    n: usize,
    lhs: &[f32],
    rhs: &[f32],
    dst: &mut [f32],
) {
    if !n.is_multiple_of(NC) {
        for (row, a) in dst.chunks_exact_mut(n).zip(lhs.chunks_exact(k)) {
            for (&av, b) in a.iter().zip(rhs.chunks_exact(n)) {
                for (o, &bv) in row.iter_mut().zip(b) {
                    *o = fmadd::<FMA>(av, bv, *o);
                }
            }
        }
        return;
    }
    let mut r0 = 0;
    while r0 + 6 <= m {
        tiles::<6, FMA>(
            k,
            n,
            &lhs[r0 * k..(r0 + 6) * k],
            rhs,
            &mut dst[r0 * n..(r0 + 6) * n],
        );
        r0 += 6;
    }
    while r0 + 4 <= m {
        tiles::<4, FMA>(
            k,
            n,
            &lhs[r0 * k..(r0 + 4) * k],
            rhs,
            &mut dst[r0 * n..(r0 + 4) * n],
        );
        r0 += 4;
    }
    while r0 < m {
        tiles::<1, FMA>(
            k,
            n,
            &lhs[r0 * k..(r0 + 1) * k],
            rhs,
            &mut dst[r0 * n..(r0 + 1) * n],
        );
        r0 += 1;
    }
}

/// `R` rows of the product, [`NC`] columns at a time, kept in registers over `k`.
#[inline(always)]
fn tiles<const R: usize, const FMA: bool>(
    k: usize,
    n: usize,
    lhs: &[f32],
    rhs: &[f32],
    dst: &mut [f32],
) {
    for c0 in (0..n).step_by(NC) {
        let mut acc = [[0f32; NC]; R];
        for (r, a) in acc.iter_mut().enumerate() {
            a.copy_from_slice(&dst[r * n + c0..r * n + c0 + NC]);
        }
        for kk in 0..k {
            let Some(b) = rhs[kk * n + c0..].first_chunk::<NC>() else {
                return;
            };
            for (r, a) in acc.iter_mut().enumerate() {
                let av = lhs[r * k + kk];
                for (o, &bv) in a.iter_mut().zip(b) {
                    *o = fmadd::<FMA>(av, bv, *o);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            dst[r * n + c0..r * n + c0 + NC].copy_from_slice(a);
        }
    }
}

/// `g[r] = σ(d[r, :w]) ⊙ tanh(d[r, w:])` for every row.
pub fn gate(isa: Isa, d: &[f32], w: usize, g: &mut [f32]) {
    match isa {
        Isa::Avx2Fma => gate_avx2(d, w, g),
        Isa::Generic => gate_impl(d, w, g),
    }
}

#[inline(always)]
fn gate_impl(d: &[f32], w: usize, g: &mut [f32]) {
    for (row, out) in d.chunks_exact(2 * w).zip(g.chunks_exact_mut(w)) {
        let (a, b) = row.split_at(w);
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            let ea = exp_fast(-a);
            let eb = exp_fast(-2.0 * b);
            // σ(a) · tanh(b) = σ(a) · (2σ(2b) − 1)
            *o = (2.0 / (1.0 + eb) - 1.0) / (1.0 + ea);
        }
    }
}

#[allow(unsafe_code)]
fn gate_avx2(d: &[f32], w: usize, g: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `Isa::Avx2Fma` is only chosen where `Isa::detect` found AVX2 and FMA (or a
    // test asks for it on such a CPU).
    unsafe {
        gate_avx2_inner(d, w, g)
    }
    #[cfg(not(target_arch = "x86_64"))]
    gate_impl(d, w, g)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gate_avx2_inner(d: &[f32], w: usize, g: &mut [f32]) {
    gate_impl(d, w, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_plain_product() {
        for (m, k, n) in [(1, 3, 16), (5, 32, 64), (7, 56, 32), (3, 8, 8), (9, 5, 2)] {
            let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
            let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
            let start: Vec<f32> = (0..m * n).map(|i| (i % 3) as f32).collect();
            let mut want = start.clone();
            for r in 0..m {
                for c in 0..n {
                    for j in 0..k {
                        want[r * n + c] += lhs[r * k + j] * rhs[j * n + c];
                    }
                }
            }
            for isa in [Isa::Generic, Isa::detect()] {
                let mut got = start.clone();
                matmul(isa, m, k, n, &lhs, &rhs, &mut got);
                // Small integers: every sum is exact in f32, whatever the order.
                assert_eq!(got, want, "{m}×{k}×{n} {isa:?}");
            }
        }
    }
}
