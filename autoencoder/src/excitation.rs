//! The harmonic excitation: a periodic signal at the sample rate that tells the decoder
//! the pitch to play, sample by sample.
//!
//! Neural source-filter models (Wang, Takaki and Yamagishi 2019) feed a sine at f0 to a
//! convolutional filter and found it essential; DDSP feeds an oscillator bank at f0.
//! Here, per sample `t` and voice, an f0 curve `f0_t` (Hz, 0 = unpitched) drives a phase
//! `φ_t` accumulated from it (glides and vibrato stay phase-continuous; a note's phase
//! starts at 0 on its first sample, in training as in rendering), and the excitation is
//! the `2K` channels `[sin φ, cos φ, sin 2φ, cos 2φ, …, sin Kφ, cos Kφ]`. Harmonic `k`
//! is zeroed while `k·f0_t ≥` [`CUTOFF_HZ`] (no aliased partials), and all of them while
//! `f0_t ≤ 0`, so an unpitched note (a drum) gets an all-zero excitation and the model
//! is exactly the model without the excitation (its projections have no bias).
//!
//! A model may also ask for `N` **sub-partials** ([`excitation_partials`]): partials at
//! `m·f0/4` for the `m` that are not multiples of 4 (f0/4, f0/2, 3f0/4, 5f0/4, …), as
//! `2N` more channels after the harmonics. Many instruments' waveforms repeat an octave
//! or two below the note they are named by (a drawbar organ's 16′ stop, a synth lead's
//! fifths or sub-oscillator): from harmonics of f0 alone a decoder cannot make that
//! period (every sum of them repeats at 1/f0), from these it can. Their phase is the
//! phase of f0/4, accumulated beside f0's.
//!
//! Per sample, one `sin_cos` of the phase; the harmonics follow by rotation
//! (`e^{ikφ} = e^{i(k−1)φ} · e^{iφ}`, in f64), not a libm call per harmonic. Every path
//! (training crops, the reference generator, the CPU and tensor decoders) computes the
//! excitation with [`Oscillator`], so they see bit-identical values.

/// The sample rate the models run at (NSynth's).
pub const SAMPLE_RATE_HZ: f64 = 16_000.0;

/// Harmonics at or above this frequency are zeroed: 95 % of the Nyquist frequency, so a
/// partial never folds back, with a margin for the phase's rounding.
pub const CUTOFF_HZ: f32 = 7_600.0;

/// The most harmonics a config may ask for (at 16 kHz, only notes below 119 Hz have more
/// than 64 partials under the cutoff).
pub const MAX_HARMONICS: usize = 64;

/// Frequency in Hz of a MIDI pitch (A4 = 69 = 440 Hz; fractional pitches are cents).
pub fn midi_to_hz(pitch: f32) -> f32 {
    440.0 * 2f32.powf((pitch - 69.0) / 12.0)
}

/// Sub-partials are at multiples of `f0 / SUB_DIVISOR`.
pub const SUB_DIVISOR: usize = 4;

/// The most sub-partials a config may ask for (48: every `m/4` below 16·f0).
pub const MAX_SUBPARTIALS: usize = 48;

/// Sub-partial `i` (from 0) is at `m · f0 / 4` with `m` the `i`-th positive integer that
/// is not a multiple of 4: 1, 2, 3, 5, 6, 7, 9, …
pub fn subpartial_multiple(i: usize) -> usize {
    i + i / (SUB_DIVISOR - 1) + 1
}

/// One voice's oscillator: the phase of its f0 curve, in cycles, and of f0/4.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Oscillator {
    /// In `[0, 1)`.
    phase: f64,
    /// The phase of f0 / [`SUB_DIVISOR`], in `[0, 1)`.
    sub_phase: f64,
}

impl Oscillator {
    /// An oscillator at phase 0: the first sample of a note.
    pub fn new() -> Self {
        Self::default()
    }

    /// An oscillator whose next sample is sample `offset` of a note held at `f0_hz` from
    /// its start (a training crop that starts inside a note).
    pub fn at_offset(f0_hz: f32, offset: usize) -> Self {
        let cycles = f0_hz.max(0.0) as f64 * offset as f64 / SAMPLE_RATE_HZ;
        let sub = cycles / SUB_DIVISOR as f64;
        Self {
            phase: cycles - cycles.floor(),
            sub_phase: sub - sub.floor(),
        }
    }

    /// Back to phase 0.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Writes the excitation of the current sample at `f0_hz` into `out` (`2K` values,
    /// see the module doc), then advances the phase by one sample.
    #[inline]
    pub fn next(&mut self, f0_hz: f32, out: &mut [f32]) {
        self.next_partials(f0_hz, out, &mut []);
    }

    /// [`Oscillator::next`] with sub-partials: `harmonics` gets the `2K` harmonic
    /// channels, `sub` the `2N` sub-partial channels (see the module doc), then the phase
    /// advances by one sample.
    #[inline]
    pub fn next_partials(&mut self, f0_hz: f32, out: &mut [f32], sub: &mut [f32]) {
        out.fill(0.0);
        sub.fill(0.0);
        if f0_hz > 0.0 && f0_hz.is_finite() {
            if !sub.is_empty() {
                let (s1, c1) = (std::f64::consts::TAU * self.sub_phase).sin_cos();
                let (mut s, mut c) = (s1, c1);
                let mut pairs = sub.chunks_exact_mut(2);
                for m in 1.. {
                    if m as f32 * f0_hz / SUB_DIVISOR as f32 >= CUTOFF_HZ {
                        break;
                    }
                    if m % SUB_DIVISOR != 0 {
                        let Some(pair) = pairs.next() else { break };
                        pair[0] = s as f32;
                        pair[1] = c as f32;
                    }
                    (s, c) = (s * c1 + c * s1, c * c1 - s * s1);
                }
                let next = self.sub_phase + f0_hz as f64 / (SUB_DIVISOR as f64 * SAMPLE_RATE_HZ);
                self.sub_phase = next - next.floor();
            }
            let (s1, c1) = (std::f64::consts::TAU * self.phase).sin_cos();
            let (mut s, mut c) = (s1, c1);
            for (k, pair) in out.chunks_exact_mut(2).enumerate() {
                if (k + 1) as f32 * f0_hz >= CUTOFF_HZ {
                    break;
                }
                pair[0] = s as f32;
                pair[1] = c as f32;
                (s, c) = (s * c1 + c * s1, c * c1 - s * s1);
            }
            let next = self.phase + f0_hz as f64 / SAMPLE_RATE_HZ;
            self.phase = next - next.floor();
        }
    }
}

/// Checks that `f0`, if given, holds `samples` values for each of `voices` voices
/// (`[voice][sample]`), as every generator takes it.
pub fn check_curves(f0: Option<&[f32]>, voices: usize, samples: usize) -> crate::Result<()> {
    match f0 {
        Some(f0) if f0.len() != voices * samples => Err(crate::Error::Shape(format!(
            "expected f0 curves of {voices} voices × {samples} samples, got {} values",
            f0.len()
        ))),
        _ => Ok(()),
    }
}

/// Copies sample `t` of every voice's curve (`[voice][sample]`, `samples` each) into
/// `now` (`[voice]`): a generator's f0 for its next step.
#[inline]
pub fn curves_at(f0: &[f32], samples: usize, t: usize, now: &mut [f32]) {
    for (v, hz) in now.iter_mut().enumerate() {
        *hz = f0[v * samples + t];
    }
}

/// Checks that a per-voice f0 (`[voice]`) has one value per voice.
pub fn check_voices(f0_hz: &[f32], voices: usize) -> crate::Result<()> {
    if f0_hz.len() != voices {
        return Err(crate::Error::Shape(format!(
            "an f0 for {voices} voices has {voices} values, got {}",
            f0_hz.len()
        )));
    }
    Ok(())
}

/// The excitation `[time][2K]` of one crop: `f0` holds one value per sample, and the
/// oscillator starts at `start` (see [`Oscillator::at_offset`]).
pub fn excitation(f0: &[f32], harmonics: usize, start: Oscillator) -> Vec<f32> {
    excitation_partials(f0, harmonics, 0, start)
}

/// The excitation `[time][2K + 2N]` of one crop with `N = subpartials` sub-partials
/// after the `K = harmonics` harmonics (see [`Oscillator::next_partials`]).
pub fn excitation_partials(
    f0: &[f32],
    harmonics: usize,
    subpartials: usize,
    start: Oscillator,
) -> Vec<f32> {
    let mut osc = start;
    let row = 2 * (harmonics + subpartials);
    let mut out = vec![0f32; f0.len() * row];
    if row > 0 {
        for (&hz, row) in f0.iter().zip(out.chunks_exact_mut(row)) {
            let (h, s) = row.split_at_mut(2 * harmonics);
            osc.next_partials(hz, h, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_sin_and_cos_of_the_accumulated_phase() {
        let f0 = [220.0f32; 2000];
        let e = excitation(&f0, 4, Oscillator::new());
        for t in [0usize, 1, 17, 999, 1999] {
            let phi = std::f64::consts::TAU * 220.0 * t as f64 / SAMPLE_RATE_HZ;
            for k in 1..=4 {
                let s = e[t * 8 + 2 * (k - 1)];
                let c = e[t * 8 + 2 * (k - 1) + 1];
                assert!(
                    (s as f64 - (k as f64 * phi).sin()).abs() < 1e-5,
                    "t {t} k {k}"
                );
                assert!(
                    (c as f64 - (k as f64 * phi).cos()).abs() < 1e-5,
                    "t {t} k {k}"
                );
            }
        }
    }

    #[test]
    fn sub_partials_are_the_quarter_multiples_between_the_harmonics() {
        assert_eq!(
            (0..7).map(subpartial_multiple).collect::<Vec<_>>(),
            [1, 2, 3, 5, 6, 7, 9]
        );
        let f0 = [110.0f32; 3000];
        let (k, n) = (3, 5);
        let e = excitation_partials(&f0, k, n, Oscillator::new());
        let plain = excitation(&f0, k, Oscillator::new());
        let row = 2 * (k + n);
        for t in [0usize, 1, 333, 2999] {
            // The harmonics are those of the plain excitation, bit for bit.
            assert_eq!(
                &e[t * row..t * row + 2 * k],
                &plain[t * 2 * k..(t + 1) * 2 * k]
            );
            let phi = std::f64::consts::TAU * 110.0 * t as f64 / SAMPLE_RATE_HZ;
            for i in 0..n {
                let m = subpartial_multiple(i) as f64 / 4.0;
                let (s, c) = (e[t * row + 2 * (k + i)], e[t * row + 2 * (k + i) + 1]);
                assert!((f64::from(s) - (m * phi).sin()).abs() < 1e-5, "t {t} i {i}");
                assert!((f64::from(c) - (m * phi).cos()).abs() < 1e-5, "t {t} i {i}");
            }
        }
        // A crop continues its note's sub-partials too; 7.6 kHz and unpitched zero them.
        let crop = excitation_partials(&f0[..500], k, n, Oscillator::at_offset(110.0, 2500));
        for (a, b) in e[2500 * row..].iter().zip(&crop) {
            assert!((a - b).abs() < 1e-4);
        }
        let high = excitation_partials(&[6400.0, 0.0], 1, 2, Oscillator::new());
        // 6400 Hz: the harmonic passes; 1600 and 3200 Hz pass, nothing at f0 ≤ 0.
        assert!(high[0..6].iter().any(|&v| v != 0.0));
        assert!(high[6..].iter().all(|&v| v == 0.0));
        // At 7 kHz, m = 1, 2, 3 (1750, 3500, 5250 Hz) pass (cos 0 = 1), m = 5 (8750) not.
        let five = excitation_partials(&[7000.0], 0, 4, Oscillator::new());
        assert_eq!(five, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn harmonics_above_the_cutoff_and_unpitched_samples_are_zero() {
        let e = excitation(&[3000.0, 0.0, -5.0, f32::NAN], 4, Oscillator::new());
        // 3000 Hz: harmonics 1 and 2 (3, 6 kHz) pass, 3 and 4 (9, 12 kHz) do not.
        assert!(e[0..4].iter().any(|&v| v != 0.0));
        assert!(e[4..8].iter().all(|&v| v == 0.0));
        assert!(e[8..].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn a_crop_continues_the_phase_of_its_note() {
        let whole = excitation(&[330.0; 700], 3, Oscillator::new());
        let crop = excitation(&[330.0; 200], 3, Oscillator::at_offset(330.0, 500));
        for (a, b) in whole[500 * 6..].iter().zip(&crop) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn a_glide_is_phase_continuous() {
        let f0: Vec<f32> = (0..4000).map(|t| 200.0 + t as f32 * 0.1).collect();
        let e = excitation(&f0, 1, Oscillator::new());
        for t in 1..4000 {
            let jump = (e[t * 2] - e[(t - 1) * 2]).abs();
            assert!(jump < 0.4, "sample {t} jumps by {jump}");
        }
    }

    #[test]
    fn curves_of_the_wrong_length_are_errors() {
        assert!(check_curves(None, 2, 3).is_ok());
        assert!(check_curves(Some(&[0.0; 6]), 2, 3).is_ok());
        assert!(check_curves(Some(&[0.0; 5]), 2, 3).is_err());
        assert!(check_voices(&[0.0; 3], 2).is_err());
        let mut now = [0.0; 2];
        curves_at(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, 1, &mut now);
        assert_eq!(now, [2.0, 5.0]);
    }

    #[test]
    fn midi_pitches() {
        assert!((midi_to_hz(69.0) - 440.0).abs() < 1e-3);
        assert!((midi_to_hz(60.0) - 261.6256).abs() < 1e-3);
    }
}
