//! Band-limited sample-rate conversion (rubato's FFT resampler).

use rubato::{FftFixedIn, Resampler};

use crate::error::{Error, Result};

/// Frames per chunk fed to the resampler.
const CHUNK_FRAMES: usize = 1024;

/// Resamples mono `input` from `from_hz` to `to_hz` with rubato's synchronous FFT
/// resampler (band-limited, anti-aliased), compensating its delay so that sample 0 stays
/// at time 0. The output has `round(len · to / from)` samples.
pub fn resample(input: &[f32], from_hz: u32, to_hz: u32) -> Result<Vec<f32>> {
    if from_hz == to_hz {
        return Ok(input.to_vec());
    }
    let expected = ((input.len() as u128 * u128::from(to_hz) + u128::from(from_hz) / 2)
        / u128::from(from_hz)) as usize;
    let mut resampler =
        FftFixedIn::<f32>::new(from_hz as usize, to_hz as usize, CHUNK_FRAMES, 2, 1).map_err(
            |e| Error::Audio(format!("cannot resample {from_hz} Hz to {to_hz} Hz ({e})")),
        )?;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(expected + delay + CHUNK_FRAMES);
    let mut output_buf = resampler.output_buffer_allocate(true);
    let mut chunk = vec![0f32; resampler.input_frames_max()];
    let mut at = 0;
    // Feed the input, then zeros until the delayed tail is out.
    while out.len() < expected + delay {
        let need = resampler.input_frames_next();
        let take = need.min(input.len().saturating_sub(at));
        chunk[..take].copy_from_slice(&input[at..at + take]);
        chunk[take..need].fill(0.0);
        at += take;
        let (_, written) = resampler
            .process_into_buffer(&[&chunk[..need]], &mut output_buf, None)
            .map_err(|e| Error::Audio(format!("resampling failed ({e})")))?;
        out.extend_from_slice(&output_buf[0][..written]);
    }
    Ok(out[delay..delay + expected].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
    }

    #[test]
    fn keeps_a_tone_in_band_and_in_time() {
        let input = sine(440.0, 44_100, 1.0);
        let out = resample(&input, 44_100, 16_000).unwrap();
        assert_eq!(out.len(), 16_000);
        let expected = sine(440.0, 16_000, 1.0);
        // Away from the edges the resampled tone is the tone: no delay, no gain change.
        let err = out[1000..15_000]
            .iter()
            .zip(&expected[1000..15_000])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-3, "error {err}");
    }

    #[test]
    fn removes_what_the_new_rate_cannot_hold() {
        // 12 kHz is above 16 kHz's Nyquist: it must vanish, not alias to 4 kHz.
        let input = sine(12_000.0, 48_000, 1.0);
        let out = resample(&input, 48_000, 16_000).unwrap();
        assert!(rms(&out[1000..15_000]) < 1e-3, "rms {}", rms(&out));
    }

    #[test]
    fn upsamples_and_handles_odd_lengths() {
        let input = sine(300.0, 8_000, 0.3337);
        let out = resample(&input, 8_000, 16_000).unwrap();
        assert_eq!(out.len(), input.len() * 2);
        assert!(resample(&[], 44_100, 16_000).unwrap().is_empty());
    }
}
