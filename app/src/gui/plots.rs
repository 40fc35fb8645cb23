//! What the plots show, computed once when a result arrives (not every frame).

use engine::audio::SAMPLE_RATE_HZ;
use engine::eval::MelSpectrogram;
use engine::synth::Embedding;

/// At most this many points per waveform line (min/max pairs per bucket beyond it).
const MAX_POINTS: usize = 4_000;

/// `[time_s, value]` points of a 16 kHz waveform, reduced to min/max per bucket so a long
/// note stays cheap to draw while its envelope stays exact.
pub fn waveform(samples: &[f32], offset: f64) -> Vec<[f64; 2]> {
    let bucket = samples.len().div_ceil(MAX_POINTS / 2).max(1);
    let mut out = Vec::with_capacity(samples.len().min(MAX_POINTS) + 2);
    for (i, chunk) in samples.chunks(bucket).enumerate() {
        let t = (i * bucket) as f64 / f64::from(SAMPLE_RATE_HZ);
        if bucket == 1 {
            out.push([t, f64::from(chunk[0]) + offset]);
            continue;
        }
        let (lo, hi) = chunk
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &s| (lo.min(s), hi.max(s)));
        out.push([t, f64::from(lo) + offset]);
        out.push([t, f64::from(hi) + offset]);
    }
    out
}

/// One line per embedding channel, `[time_s, value]` (a frame every 512 samples).
pub fn embedding(e: &Embedding, hop: usize) -> Vec<Vec<[f64; 2]>> {
    (0..e.channels)
        .map(|c| {
            (0..e.frames)
                .map(|f| {
                    let t = (f * hop) as f64 / f64::from(SAMPLE_RATE_HZ);
                    [t, f64::from(e.frame(f)[c])]
                })
                .collect()
        })
        .collect()
}

/// A log-mel spectrogram as heatmap values (rows = mel bands, low at the bottom), dB
/// clipped 80 dB below the peak: `(values, columns)`.
pub fn spectrogram(samples: &[f32]) -> (Vec<f64>, usize) {
    let frames = MelSpectrogram::new().db(samples);
    let cols = frames.len();
    if cols == 0 {
        return (Vec::new(), 0);
    }
    let peak = frames
        .iter()
        .flat_map(|f| f.iter())
        .fold(f32::MIN, |m, &v| m.max(v));
    let bands = frames[0].len();
    let mut values = Vec::with_capacity(cols * bands);
    // The heatmap's first row is drawn at the top.
    for band in (0..bands).rev() {
        for frame in &frames {
            values.push(f64::from(frame[band].max(peak - 80.0)));
        }
    }
    (values, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_waveforms_are_bounded_and_keep_their_peaks() {
        let samples: Vec<f32> = (0..64_000).map(|i| ((i as f32) * 0.01).sin()).collect();
        let points = waveform(&samples, 0.0);
        assert!(points.len() <= MAX_POINTS + 2);
        let max = points.iter().map(|p| p[1]).fold(f64::MIN, f64::max);
        assert!(max > 0.999);
        assert_eq!(
            waveform(&[0.5, -0.5], 1.0),
            vec![[0.0, 1.5], [1.0 / 16_000.0, 0.5]]
        );
    }

    #[test]
    fn spectrogram_has_a_value_per_band_and_frame() {
        let samples: Vec<f32> = (0..16_000).map(|i| ((i as f32) * 0.2).sin()).collect();
        let (values, cols) = spectrogram(&samples);
        assert!(cols > 10);
        assert_eq!(values.len() % cols, 0);
        assert!(values.iter().all(|v| v.is_finite()));
    }
}
