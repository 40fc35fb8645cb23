//! The envelope stage as a function of the flows' audio, for training through it: its
//! gains for a whole note ([`note_gains`]), the stage with them held ([`apply_gains`]) and
//! the loss's gradient back through it and through the gains themselves
//! ([`gains_backward`]).

use super::{BINS, Bands, HOP, OLA_GAIN, WINDOW, band_gains, frame_of, window_of};

/// The per-bin gains the stage gives every analysis window of a whole note (see
/// [`note_gains`]): with them fixed the stage is a linear map, [`apply_gains`].
#[derive(Debug, Clone)]
pub struct NoteGains {
    /// `[window][bin]`, windows ending every [`HOP`] samples from [`HOP`] to the note's
    /// length plus [`WINDOW`].
    gains: Vec<f32>,
    /// `[window][band]`: each band gain's derivative with respect to the band's power in
    /// the window (0 where the gain is at a limit or held by the silence rule).
    slopes: Vec<f32>,
    len: usize,
}

/// The gains [`shape_note`] would apply to `audio` towards `envelope` (frames of `hop`),
/// window by window (each window's target the frame its centre falls in, the last held).
/// The slopes are the first estimate's ([`band_gains`]): with [`Bands::refine`] passes
/// the gradient through the gains is that rule's, the passes' corrections held fixed
/// (training uses bands without them: see `StudentConfig::envelope_refinements`).
pub fn note_gains(bands: &Bands, audio: &[f32], envelope: &[f32], hop: usize) -> NoteGains {
    let b = bands.len();
    let frames = envelope.len() / b;
    let windows = (audio.len() + WINDOW) / HOP;
    let mut gains = vec![0f32; windows * BINS];
    let mut frame = vec![0f32; WINDOW];
    let mut spectrum = bands.forward.make_output_vec();
    let mut scratch = bands.scratch();
    let (mut power, mut band) = (vec![0f32; b], vec![0f32; b]);
    let mut slopes = vec![0f32; windows * b];
    for (i, (out, slope)) in gains
        .chunks_exact_mut(BINS)
        .zip(slopes.chunks_exact_mut(b))
        .enumerate()
    {
        let end = (i + 1) * HOP;
        window_of(audio, end, &mut frame);
        bands.analyse(&mut frame, &mut spectrum, &mut scratch, &mut power);
        let f = frame_of(end as u64, hop).min(frames.saturating_sub(1));
        let target = envelope.get(f * b..(f + 1) * b).unwrap_or(&[]);
        if target.len() == b {
            band_gains(&power, target, &mut band, Some(slope));
            bands.refine(&spectrum, &power, target, &mut band);
        } else {
            band.fill(1.0);
        }
        for (k, o) in out.iter_mut().enumerate() {
            *o = bands.bin_gain(&band, k);
        }
    }
    NoteGains {
        gains,
        slopes,
        len: audio.len(),
    }
}

/// Adds a resynthesised window `frame` that ended after sample `end` to a whole note's
/// `out` (what falls outside the note is dropped).
fn add_at(out: &mut [f32], frame: &[f32], end: usize) {
    for (j, &y) in frame.iter().enumerate() {
        if let Some(o) = (end + j).checked_sub(WINDOW).and_then(|t| out.get_mut(t)) {
            *o += y;
        }
    }
}

/// The stage with its gains fixed, applied to `x` (as long as the note the gains are
/// for): each window windowed, filtered by its gains, windowed again and overlap-added,
/// with no delay. For each window the filter is a circular convolution with a real,
/// even kernel and both windows are the same, so the map is symmetric: it is its own
/// adjoint, and what carries a loss's gradient back through the stage (tested).
pub fn apply_gains(bands: &Bands, gains: &NoteGains, x: &[f32]) -> Vec<f32> {
    let len = gains.len.min(x.len());
    let mut out = vec![0f32; len];
    let mut frame = vec![0f32; WINDOW];
    let mut spectrum = bands.forward.make_output_vec();
    let mut scratch = bands.scratch();
    for (i, g) in gains.gains.chunks_exact(BINS).enumerate() {
        let end = (i + 1) * HOP;
        window_of(&x[..len], end, &mut frame);
        bands.spectrum(&mut frame, &mut spectrum, &mut scratch);
        for (c, &gain) in spectrum.iter_mut().zip(g) {
            *c *= gain / (WINDOW as f32 * OLA_GAIN);
        }
        bands.resynthesise(&mut spectrum, &mut scratch, &mut frame);
        add_at(&mut out, &frame, end);
    }
    out
}

/// The gradient of a loss with respect to the flows' audio `x`, given its gradient `dy`
/// with respect to the stage's output (the stage with `gains` = [`note_gains`] of `x`):
/// through the gains held fixed ([`apply_gains`], the map being its own adjoint) and
/// through the gains themselves, each a function of its band's power in the window
/// (`g = a / √P`), so that the flows are not pushed along a band's level the stage undoes.
pub fn gains_backward(bands: &Bands, gains: &NoteGains, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let len = gains.len.min(x.len()).min(dy.len());
    let mut dx = apply_gains(bands, gains, &dy[..len]);
    let b = bands.len();
    let n = WINDOW as f32;
    let (mut u, mut v) = (vec![0f32; WINDOW], vec![0f32; WINDOW]);
    let mut xs = bands.forward.make_output_vec();
    let mut vs = bands.forward.make_output_vec();
    let mut scratch = bands.scratch();
    let mut q = vec![0f32; b];
    for (i, slope) in gains.slopes.chunks_exact(b).enumerate() {
        if slope.iter().all(|&d| d == 0.0) {
            continue;
        }
        let end = (i + 1) * HOP;
        window_of(&x[..len], end, &mut u);
        window_of(&dy[..len], end, &mut v);
        bands.spectrum(&mut u, &mut xs, &mut scratch);
        bands.spectrum(&mut v, &mut vs, &mut scratch);
        // dL/dg_b = <dy, band b's part of the output>; then dL/dP_b.
        for (((qb, apply), &d), &sc) in q.iter_mut().zip(&bands.apply).zip(slope).zip(&bands.scale)
        {
            if d == 0.0 {
                *qb = 0.0;
                continue;
            }
            let mut dot = 0f32;
            for (k, (&a, (xk, vk))) in apply.iter().zip(xs.iter().zip(vs.iter())).enumerate() {
                if a > 0.0 {
                    let m = if k == 0 || k == BINS - 1 { 1.0 } else { 2.0 };
                    dot += m * a * (xk.re * vk.re + xk.im * vk.im);
                }
            }
            *qb = dot / (n * OLA_GAIN) * d * sc * sc;
        }
        // dP_b/du = 2 Σ_k f_b[k] Re(X_k e^{iθ}): one inverse FFT for all bands.
        for (k, c) in xs.iter_mut().enumerate() {
            let sum: f32 = bands.filters.iter().zip(&q).map(|(f, &qb)| f[k] * qb).sum();
            let m = if k == 0 || k == BINS - 1 { 2.0 } else { 1.0 };
            *c *= m * sum;
        }
        bands.resynthesise(&mut xs, &mut scratch, &mut u);
        add_at(&mut dx, &u, end);
    }
    dx
}
