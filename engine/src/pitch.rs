//! What pitch a note is: from its file name where the name says so, else from the audio
//! (YIN), else unpitched.

use serde::Serialize;

use crate::audio::SAMPLE_RATE_HZ;

/// Pitch and velocity read from a file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameInfo {
    pub pitch: Option<u8>,
    pub velocity: Option<u8>,
}

/// Where a note's pitch came from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum Pitch {
    /// The file name says it (NSynth name, note name or MIDI number).
    Name { midi: u8 },
    /// Detected in the audio; `hz` is the median fundamental.
    Detected { midi: u8, hz: f32 },
    /// No stable fundamental (drums, noise).
    Unpitched,
}

impl Pitch {
    pub fn midi(&self) -> Option<u8> {
        match *self {
            Self::Name { midi } | Self::Detected { midi, .. } => Some(midi),
            Self::Unpitched => None,
        }
    }
}

/// `C4` = MIDI 60 (scientific pitch notation; some vendors call that note C3).
pub fn note_name(token: &str) -> Option<u8> {
    let mut chars = token.chars().peekable();
    let letter = chars.next()?.to_ascii_uppercase();
    let base: i32 = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let accidental = match chars.peek() {
        Some('#') | Some('s') | Some('♯') => 1,
        Some('b') | Some('♭') => -1,
        _ => 0,
    };
    if accidental != 0 {
        chars.next();
    }
    let rest: String = chars.collect();
    let octave: i32 = match rest.as_str() {
        "-1" => -1,
        r if r.len() == 1 && r.as_bytes()[0].is_ascii_digit() => i32::from(r.as_bytes()[0] - b'0'),
        _ => return None,
    };
    let midi = (octave + 1) * 12 + base + accidental;
    u8::try_from(midi).ok().filter(|&m| m <= 127)
}

fn number(token: &str) -> Option<u8> {
    if token.is_empty() || token.len() > 3 || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<u8>().ok().filter(|&n| n <= 127)
}

fn dynamic(token: &str) -> Option<u8> {
    // Common MIDI velocities of the dynamics marks.
    Some(match token {
        "ppp" => 16,
        "pp" => 33,
        "p" => 49,
        "mp" => 64,
        "mf" => 80,
        "f" => 96,
        "ff" => 112,
        "fff" => 127,
        _ => return None,
    })
}

/// Pitch and velocity from a file stem. Recognised, in order:
/// - NSynth's `family_source_NNN-PPP-VVV` (pitch PPP, velocity VVV);
/// - a trailing pair of 3-digit numbers `..._PPP_VVV` / `-PPP-VVV`;
/// - note names `C4`, `F#3`, `Bb2`, `Cs5`, `A-1` as separate tokens;
/// - prefixed MIDI numbers `midi60`, `note60`, `key60`;
/// - velocities `v100`, `vel100`, `velocity100`, or dynamics `pp`..`ff` as tokens.
///
/// A bare number (`Kick 01`) is not taken for a pitch: packs number their files.
pub fn from_name(stem: &str) -> NameInfo {
    let mut info = NameInfo::default();
    // NSynth and PPP-VVV: the last two '-'/'_'-separated all-digit groups of 3.
    let groups: Vec<&str> = stem.split(['-', '_']).collect();
    if groups.len() >= 3 {
        let (p, v) = (groups[groups.len() - 2], groups[groups.len() - 1]);
        if p.len() == 3
            && v.len() == 3
            && let (Some(p), Some(v)) = (number(p), number(v))
        {
            info.pitch = Some(p);
            info.velocity = Some(v);
            return info;
        }
    }
    // '-' separates words too, except in a note of octave −1 ("C-1").
    let mut parts = Vec::new();
    for token in stem.split(|c: char| "_ .()[],".contains(c)) {
        if note_name(token).is_some() {
            parts.push(token);
        } else {
            parts.extend(token.split('-'));
        }
    }
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase();
        if info.pitch.is_none() {
            info.pitch = note_name(part).or_else(|| {
                ["midi", "note", "key"]
                    .iter()
                    .find_map(|prefix| lower.strip_prefix(prefix).and_then(number))
            });
        }
        if info.velocity.is_none() {
            info.velocity = ["velocity", "vel", "v"]
                .iter()
                .find_map(|prefix| lower.strip_prefix(prefix).and_then(number))
                .or_else(|| dynamic(&lower));
        }
    }
    info
}

/// `C4` for 60, `F#3` for 54 (sharps; C4 = 60).
pub fn midi_name(midi: u8) -> String {
    const NAMES: [&str; 12] = [
        "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
    ];
    format!(
        "{}{}",
        NAMES[usize::from(midi % 12)],
        i32::from(midi / 12) - 1
    )
}

/// MIDI note of a frequency (A4 = 440 Hz = 69), if within 0..=127.
pub fn hz_to_midi(hz: f32) -> Option<u8> {
    let m = (69.0 + 12.0 * (hz / 440.0).log2()).round();
    (0.0..=127.0).contains(&m).then_some(m as u8)
}

pub fn midi_to_hz(midi: f32) -> f32 {
    440.0 * 2f32.powf((midi - 69.0) / 12.0)
}

/// YIN settings for 16 kHz audio: fundamentals from A0 (27.5 Hz) to 4 kHz.
const WINDOW: usize = 1024;
const MAX_LAG: usize = 600; // 16000 / 600 = 26.7 Hz
const MIN_LAG: usize = 3; // 5.3 kHz, above C8 (MIDI 108)
const THRESHOLD: f32 = 0.15;
const FRAMES: usize = 9;

/// One YIN estimate (de Cheveigné & Kawahara 2002) on `x[..WINDOW + MAX_LAG]`:
/// `(frequency in Hz, aperiodicity)`, or `None` when no dip is below the threshold.
fn yin_frame(x: &[f32]) -> Option<(f32, f32)> {
    let mut diff = [0f32; MAX_LAG + 1];
    for (lag, d) in diff.iter_mut().enumerate().skip(1) {
        *d = x[..WINDOW]
            .iter()
            .zip(&x[lag..lag + WINDOW])
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
    }
    // Cumulative mean normalised difference.
    let mut cmnd = [1f32; MAX_LAG + 1];
    let mut running = 0f32;
    for lag in 1..=MAX_LAG {
        running += diff[lag];
        cmnd[lag] = if running > 0.0 {
            diff[lag] * lag as f32 / running
        } else {
            1.0
        };
    }
    let mut lag = MIN_LAG;
    while lag < MAX_LAG {
        if cmnd[lag] < THRESHOLD {
            while lag + 1 < MAX_LAG && cmnd[lag + 1] < cmnd[lag] {
                lag += 1;
            }
            // Parabolic interpolation around the dip.
            let (a, b, c) = (cmnd[lag - 1], cmnd[lag], cmnd[lag + 1]);
            let denom = a - 2.0 * b + c;
            let shift = if denom.abs() > 1e-12 {
                (0.5 * (a - c) / denom).clamp(-0.5, 0.5)
            } else {
                0.0
            };
            return Some((SAMPLE_RATE_HZ as f32 / (lag as f32 + shift), b));
        }
        lag += 1;
    }
    None
}

/// Detects the pitch of a 16 kHz note on its sustained part: YIN on frames spread from
/// just after the loudest moment to where the note has decayed 30 dB. Pitched when most
/// frames agree within a semitone of their median; otherwise unpitched.
pub fn detect(samples: &[f32]) -> Pitch {
    let span = WINDOW + MAX_LAG;
    if samples.len() < span {
        return Pitch::Unpitched;
    }
    // Envelope in 10 ms hops.
    let hop = 160;
    let env: Vec<f32> = samples
        .chunks(hop)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let (loudest, &peak) =
        env.iter().enumerate().fold(
            (0, &0f32),
            |best, (i, e)| if *e > *best.1 { (i, e) } else { best },
        );
    if peak <= 0.0 {
        return Pitch::Unpitched;
    }
    // Skip 50 ms of attack after the peak.
    let start = ((loudest + 5) * hop).min(samples.len().saturating_sub(span));
    let end = env
        .iter()
        .enumerate()
        .skip(loudest)
        .find(|(_, e)| **e < peak * 0.0316)
        .map_or(samples.len(), |(i, _)| i * hop)
        .max(start + span)
        .min(samples.len());
    let usable = end.saturating_sub(start + span);
    let step = (usable / FRAMES.max(1)).max(1);
    let mut estimates: Vec<f32> = (0..FRAMES)
        .map(|i| start + i * step)
        .filter(|&at| at + span <= samples.len())
        .filter_map(|at| yin_frame(&samples[at..at + span]).map(|(hz, _)| hz))
        .collect();
    let frames_tried = (0..FRAMES)
        .filter(|i| start + i * step + span <= samples.len())
        .count();
    if estimates.len() * 2 <= frames_tried || estimates.is_empty() {
        return Pitch::Unpitched;
    }
    estimates.sort_by(f32::total_cmp);
    let median = estimates[estimates.len() / 2];
    let agreeing = estimates
        .iter()
        .filter(|&&hz| (12.0 * (hz / median).log2()).abs() < 1.0)
        .count();
    if agreeing * 2 <= frames_tried {
        return Pitch::Unpitched;
    }
    match hz_to_midi(median) {
        Some(midi) => Pitch::Detected { midi, hz: median },
        None => Pitch::Unpitched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(stem: &str, pitch: Option<u8>, velocity: Option<u8>) {
        assert_eq!(from_name(stem), NameInfo { pitch, velocity }, "{stem}");
    }

    #[test]
    fn midi_names_round_trip() {
        for midi in 0..=127u8 {
            assert_eq!(from_name(&midi_name(midi)).pitch, Some(midi));
        }
        assert_eq!(midi_name(60), "C4");
        assert_eq!(midi_name(21), "A0");
    }

    #[test]
    fn names() {
        check("guitar_acoustic_010-060-075", Some(60), Some(75));
        check("bass_synthetic_033-021-127", Some(21), Some(127));
        check("Piano_060_100", Some(60), Some(100));
        check("Piano C4", Some(60), None);
        check("Strings_F#3_mf", Some(54), Some(80));
        check("Bb2-soft", Some(46), None);
        check("flute.Cs5.pp", Some(73), Some(33));
        check("sub A0 v100", Some(21), Some(100));
        check("lowest C-1", Some(0), None);
        check("G9", Some(127), None);
        check("harp midi64 vel90", Some(64), Some(90));
        check("note_72", None, None); // "note" and "72" are separate tokens: not a clear pitch
        check("note72", Some(72), None);
        check("Kick 01", None, None);
        check("Snare_Hard", None, None);
        check("Crash-2", None, None);
        check("Abbey Road", None, None); // "Ab" without an octave is not a note
        check("Tom_ff", None, Some(112));
        check("velvet", None, None);
    }

    fn tone(hz: f32, secs: f32, harmonics: usize) -> Vec<f32> {
        let n = (secs * SAMPLE_RATE_HZ as f32) as usize;
        (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE_HZ as f32;
                let env = (-t * 1.5).exp();
                // Band-limited, as a 16 kHz note is: no harmonic at or above Nyquist.
                env * (1..=harmonics)
                    .filter(|&h| hz * (h as f32) < 7500.0)
                    .map(|h| (2.0 * std::f32::consts::PI * hz * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.3
            })
            .collect()
    }

    #[test]
    fn detects_tones_across_the_range() {
        for midi in [24u8, 28, 40, 45, 57, 60, 69, 76, 88, 96, 104, 108] {
            let hz = midi_to_hz(f32::from(midi));
            match detect(&tone(hz, 2.0, 6)) {
                Pitch::Detected { midi: m, hz: found } => {
                    assert_eq!(m, midi, "{hz} Hz detected as {found} Hz");
                }
                other => panic!("{hz} Hz: {other:?}"),
            }
        }
    }

    #[test]
    fn noise_and_clicks_are_unpitched() {
        let mut state = 12345u32;
        let noise: Vec<f32> = (0..32000)
            .map(|i| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let env = (-(i as f32) / 3000.0).exp();
                env * ((state >> 8) as f32 / (1 << 24) as f32 - 0.5)
            })
            .collect();
        assert_eq!(detect(&noise), Pitch::Unpitched);
        assert_eq!(detect(&[0.0; 100]), Pitch::Unpitched);
        assert_eq!(detect(&vec![0.0; 20000]), Pitch::Unpitched);
    }
}
