//! Notes of any length: an embedding stretched (or shrunk) to a new number of frames by
//! resampling its sustain and keeping its attack and release as they are, as the NSynth
//! paper did when it extrapolated to longer notes.
//!
//! Where the parts lie is read from the source note's loudness, one level per frame of
//! the embedding (the RMS of the frame's `hop` samples, in dB):
//! - the **attack** runs from the first frame to the loudest one (inclusive);
//! - the **release** starts at the first frame after the loudest from which the level
//!   stays more than [`RELEASE_DROP_DB`] below the peak to the end of the note (for a
//!   held note: where the key was let go; for a decaying one: once it has faded);
//! - the **sustain** is what lies between.
//!
//! A longer note resamples the sustain's frames linearly to fill the extra length; a
//! note without a sustain (a struck sound that fades at once) keeps all its frames and
//! goes on with its last one (the silence it ended in). A shorter note shrinks the
//! sustain first, then cuts the release's end.

use super::blend::Embedding;

/// How far below the peak (dB) a note must stay for the rest of it to count as release.
pub const RELEASE_DROP_DB: f32 = 12.0;

/// Where a note's attack ends and its release starts, in frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    /// Frames `0..attack` are the attack (it ends with the loudest frame).
    pub attack: usize,
    /// Frames `release..frames` are the release; `attack..release` the sustain.
    pub release: usize,
    pub frames: usize,
}

impl Segments {
    /// The parts of a note of `frames` frames of `hop` samples whose first `length`
    /// samples are `samples` (the rest is padding).
    pub fn of(samples: &[f32], length: usize, hop: usize, frames: usize) -> Self {
        let hop = hop.max(1);
        let length = length.min(samples.len());
        let level: Vec<f32> = (0..frames)
            .map(|f| {
                let start = (f * hop).min(length);
                let end = ((f + 1) * hop).min(length);
                let chunk = &samples[start..end];
                let power = chunk.iter().map(|s| s * s).sum::<f32>() / hop as f32;
                10.0 * power.max(1e-12).log10()
            })
            .collect();
        let peak = level
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (f, &l)| {
                if l > best.1 { (f, l) } else { best }
            });
        let attack = (peak.0 + 1).min(frames);
        // The last frame within RELEASE_DROP_DB of the peak ends the sustain.
        let last_loud = level
            .iter()
            .rposition(|&l| l >= peak.1 - RELEASE_DROP_DB)
            .unwrap_or(0);
        let release = (last_loud + 1).clamp(attack, frames);
        Self {
            attack,
            release,
            frames,
        }
    }

    pub fn sustain(&self) -> usize {
        self.release - self.attack
    }
}

/// `embedding` with `frames` frames: attack and release kept, the sustain resampled (see
/// the module's notes). `segments` are the embedding's own.
pub fn stretch(embedding: &Embedding, segments: Segments, frames: usize) -> Embedding {
    let c = embedding.channels;
    let have = embedding.frames;
    if have == 0 || frames == 0 {
        return Embedding {
            frames: 0,
            channels: c,
            data: Vec::new(),
        };
    }
    let attack = segments.attack.min(have);
    let release = segments.release.clamp(attack, have);
    let tail = have - release;
    let mut data = Vec::with_capacity(frames * c);
    let push = |data: &mut Vec<f32>, f: usize| data.extend_from_slice(embedding.frame(f));
    if release == attack {
        // No sustain: every frame as it was, then the last one held (or cut short).
        for f in 0..frames {
            push(&mut data, f.min(have - 1));
        }
    } else if frames <= attack + tail {
        // Shorter than attack and release: the sustain goes, then the release's end.
        for f in (0..attack).chain(release..have).take(frames) {
            push(&mut data, f);
        }
    } else {
        let sustain = frames - attack - tail;
        (0..attack).for_each(|f| push(&mut data, f));
        // Sustain frame j of `sustain` samples the old sustain at the same fraction of its
        // length (both ends included), interpolating linearly between frames.
        let span = (release - attack - 1) as f32;
        for j in 0..sustain {
            let t = if sustain > 1 {
                j as f32 / (sustain - 1) as f32
            } else {
                0.5
            };
            let at = attack as f32 + t * span;
            let f0 = (at.floor() as usize).min(release - 1);
            let f1 = (f0 + 1).min(release - 1);
            let w = at - f0 as f32;
            let (a, b) = (embedding.frame(f0), embedding.frame(f1));
            data.extend(a.iter().zip(b).map(|(a, b)| a + (b - a) * w));
        }
        (release..have).for_each(|f| push(&mut data, f));
    }
    Embedding {
        frames,
        channels: c,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A note of `frames` frames of 4 samples: silent attack ramp up to frame 2, level 1
    /// until `off`, then silence.
    fn note(frames: usize, off: usize) -> Vec<f32> {
        (0..frames * 4)
            .map(|i| {
                let f = i / 4;
                if f < 2 {
                    0.3 * (f + 1) as f32
                } else if f < off {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn embedding(frames: usize) -> Embedding {
        Embedding {
            frames,
            channels: 2,
            data: (0..frames).flat_map(|f| [f as f32, -(f as f32)]).collect(),
        }
    }

    /// Ten frames: an attack of three, a sustain of four, a release of three.
    fn ten_frames() -> (Embedding, Segments) {
        let s = Segments {
            attack: 3,
            release: 7,
            frames: 10,
        };
        (embedding(10), s)
    }

    #[test]
    fn finds_attack_sustain_and_release() {
        let s = Segments::of(&note(10, 7), 40, 4, 10);
        assert_eq!((s.attack, s.release, s.frames), (3, 7, 10));
        // A struck note: loudest first, then fading by 6 dB a frame.
        let struck: Vec<f32> = (0..40).map(|i| 0.5f32.powi(i / 4)).collect();
        let s = Segments::of(&struck, 40, 4, 10);
        assert_eq!((s.attack, s.release), (1, 2));
    }

    #[test]
    fn longer_notes_resample_the_sustain_only() {
        let (e, s) = ten_frames();
        let long = stretch(&e, s, 25);
        assert_eq!(long.frames, 25);
        assert_eq!(long.data.len(), 50);
        // Attack and release kept, the release at the end.
        for f in 0..3 {
            assert_eq!(long.frame(f), e.frame(f));
        }
        for f in 0..3 {
            assert_eq!(long.frame(22 + f), e.frame(7 + f));
        }
        // The sustain runs from frame 3 to frame 6 monotonically, both ends included.
        let sustain: Vec<f32> = (3..22).map(|f| long.frame(f)[0]).collect();
        assert_eq!(sustain[0], 3.0);
        assert_eq!(*sustain.last().unwrap(), 6.0);
        assert!(sustain.windows(2).all(|w| w[1] >= w[0]));
        // The same length changes nothing.
        assert_eq!(stretch(&e, s, 10), e);
    }

    #[test]
    fn shorter_notes_lose_sustain_then_release() {
        let (e, s) = ten_frames();
        let firsts = |e: &Embedding| (0..e.frames).map(|f| e.frame(f)[0]).collect::<Vec<_>>();
        assert_eq!(firsts(&stretch(&e, s, 6)), [0.0, 1.0, 2.0, 7.0, 8.0, 9.0]);
        assert_eq!(firsts(&stretch(&e, s, 4)), [0.0, 1.0, 2.0, 7.0]);
        // Without a sustain the last frame is held.
        let none = Segments {
            attack: 1,
            release: 1,
            frames: 10,
        };
        let held = firsts(&stretch(&e, none, 12));
        assert_eq!(&held[9..], [9.0, 9.0, 9.0]);
    }
}
