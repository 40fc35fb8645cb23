//! Sustain loops: where a rendered note holds steady, a stretch that can repeat for as
//! long as a key is held without a click or a jump in level.
//!
//! The criterion, all of it must hold:
//! - the loop lies in the note's **sustain**: after its loudest 50 ms window, inside the
//!   run of 50 ms windows that stay within [`LEVEL_SPAN_DB`] of that peak;
//! - it is at least [`MIN_LOOP_SECS`] long and a whole number of the key's periods (±2
//!   samples, the exact end picked by the match below);
//! - the **waveforms match**: over [`MATCH_PERIODS`] periods around the loop's start and
//!   around its end, the normalised correlation is at least [`MIN_CORRELATION`], so the
//!   jump from end back to start continues the wave;
//! - the **levels match**: the RMS of the 50 ms after the start and of the 50 ms before
//!   the end differ by at most [`MAX_LEVEL_STEP_DB`].
//!
//! Among the candidates that pass, the best-matching one is kept (ties: the longer).
//! A note with no such stretch (a struck sound, noise, an unsteady render) plays once.

/// How far below the peak the sustain may sit (dB).
pub const LEVEL_SPAN_DB: f32 = 6.0;
/// The shortest loop, in seconds.
pub const MIN_LOOP_SECS: f32 = 0.1;
/// Periods compared around each end.
pub const MATCH_PERIODS: f32 = 2.0;
/// The least normalised correlation between the waveforms at the loop's two ends.
pub const MIN_CORRELATION: f32 = 0.97;
/// The largest level step between the loop's start and end (dB).
pub const MAX_LEVEL_STEP_DB: f32 = 1.0;

/// A sustain loop: `[start, end)` in samples, and how well its ends match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loop {
    pub start: usize,
    pub end: usize,
    pub correlation: f32,
}

/// The sustain loop of `audio` (at `rate_hz`, sounding at `f0_hz`), if one meets the
/// module's criterion.
pub fn find(audio: &[f32], rate_hz: u32, f0_hz: f32) -> Option<Loop> {
    if f0_hz.is_nan() || f0_hz <= 0.0 {
        return None;
    }
    let rate = rate_hz as f32;
    let period = rate / f0_hz;
    let window = (rate / 20.0) as usize;
    if window == 0 || audio.len() < 4 * window {
        return None;
    }
    let level = |s: &[f32]| {
        let power = s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32;
        10.0 * power.max(1e-12).log10()
    };
    let levels: Vec<f32> = audio.chunks_exact(window).map(level).collect();
    let (peak_at, peak) =
        levels.iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |b, (i, &l)| if l > b.1 { (i, l) } else { b },
        );
    // The sustain: the windows after the peak that stay within the span.
    let first = peak_at + 1;
    let run = levels[first.min(levels.len())..]
        .iter()
        .take_while(|&&l| l >= peak - LEVEL_SPAN_DB)
        .count();
    let (a, b) = (first * window, (first + run) * window);
    let half = ((MATCH_PERIODS * period / 2.0).ceil() as usize).max(8);
    let min_len = ((MIN_LOOP_SECS * rate) as usize).max(period.ceil() as usize);
    if b < a + min_len + 4 * half + 2 * window {
        return None;
    }
    let correlation = |s: usize, e: usize| {
        let (x, y) = (&audio[s - half..s + half], &audio[e - half..e + half]);
        let (mut xy, mut xx, mut yy) = (0f32, 0f32, 0f32);
        for (p, q) in x.iter().zip(y) {
            xy += p * q;
            xx += p * p;
            yy += q * q;
        }
        xy / (xx * yy).sqrt().max(1e-20)
    };
    let mut best: Option<Loop> = None;
    // Starts a fifth and a third of the way into the sustain; ends anywhere after.
    for start in [a + (b - a) / 5, a + (b - a) / 3] {
        let start = start.max(a + half);
        let last_end = b - half.max(window);
        if start + min_len > last_end {
            continue;
        }
        let k_min = (min_len as f32 / period).ceil() as usize;
        let k_max = ((last_end - start) as f32 / period).floor() as usize;
        for k in k_min..=k_max {
            let centre = start as f32 + k as f32 * period;
            let lo = (centre.round() as usize)
                .saturating_sub(2)
                .max(start + min_len);
            let hi = (centre.round() as usize + 2).min(last_end);
            for end in lo..=hi {
                let c = correlation(start, end);
                let better = best.is_none_or(|b| {
                    c > b.correlation + 1e-6
                        || ((c - b.correlation).abs() <= 1e-6 && end - start > b.end - b.start)
                });
                if c >= MIN_CORRELATION && better {
                    let step =
                        level(&audio[start..start + window]) - level(&audio[end - window..end]);
                    if step.abs() <= MAX_LEVEL_STEP_DB {
                        best = Some(Loop {
                            start,
                            end,
                            correlation: c,
                        });
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(f0: f32, rate: u32, secs: f32, noise: f32) -> Vec<f32> {
        let n = (secs * rate as f32) as usize;
        let mut seed = 1u32;
        (0..n)
            .map(|i| {
                let t = i as f32 / rate as f32;
                // 50 ms attack, held, let go for the last 0.5 s.
                let env = (t / 0.05).min(1.0) * ((secs - t) / 0.5).clamp(0.0, 1.0);
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let r = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                env * (0.5 * (std::f32::consts::TAU * f0 * t).sin()
                    + 0.2 * (std::f32::consts::TAU * 2.0 * f0 * t).sin()
                    + noise * r)
            })
            .collect()
    }

    #[test]
    fn a_steady_tone_gets_a_clean_loop() {
        for (f0, rate) in [(261.63, 16_000), (440.0, 44_100), (98.0, 48_000)] {
            let audio = note(f0, rate, 2.0, 0.0);
            let l = find(&audio, rate, f0).unwrap_or_else(|| panic!("no loop at {f0} Hz"));
            assert!(l.correlation >= 0.999, "{l:?}");
            assert!(l.end - l.start >= (MIN_LOOP_SECS * rate as f32) as usize);
            // A whole number of periods, within a sample.
            let periods = (l.end - l.start) as f32 * f0 / rate as f32;
            assert!(
                (periods - periods.round()).abs() * rate as f32 / f0 <= 1.0,
                "{periods}"
            );
            // Inside the held part, before the release.
            assert!(l.start as f32 > 0.05 * rate as f32);
            assert!((l.end as f32) < 1.5 * rate as f32);
        }
    }

    #[test]
    fn noise_and_struck_notes_play_once() {
        let noisy = note(220.0, 16_000, 2.0, 4.0);
        assert_eq!(find(&noisy, 16_000, 220.0), None);
        let struck: Vec<f32> = (0..32_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                (-6.0 * t).exp() * (std::f32::consts::TAU * 220.0 * t).sin()
            })
            .collect();
        assert_eq!(find(&struck, 16_000, 220.0), None);
        assert_eq!(find(&[0.0; 100], 16_000, 220.0), None);
        assert_eq!(find(&noisy, 16_000, 0.0), None);
    }
}
