//! The automatable parameters: one table ([`PARAMS`]) says each one's id, name, range and
//! default; [`Values`] holds the current plain values as atomics, written by the audio
//! thread (parameter events), the main thread (flush while inactive, state load) and read
//! by both, without locks.

use std::sync::atomic::{AtomicU32, Ordering};

use engine::synth::{XyMode, xy_weights};

/// What a parameter is, in the order the host lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Puck X on the pad, 0 = A/C side, 1 = B/D side.
    X,
    /// Puck Y on the pad, 0 = A/B side, 1 = C/D side.
    Y,
    /// How the pad becomes corner weights: [`Pad`].
    Pad,
    /// The A↔B slider in [`Pad::Mix`]: 0 = A, 1 = B.
    Mix,
    /// Attack time in seconds.
    AttackSecs,
    /// Release time in seconds.
    ReleaseSecs,
    /// Output gain in dB.
    GainDb,
    /// What corner `n` (0 = A) plays: 0 = the sound file or pack folder the saved state
    /// names, 1–4 = a demo instrument (`engine::demo::PACKS`).
    Corner(u8),
}

/// The value of a corner parameter that means "the file or pack in the saved state".
pub const CORNER_FROM_FILE: f32 = 0.0;

/// How the pad's position becomes the four corners' weights (the GUI's pad modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    /// NSynth Super's cones around each corner.
    Cones,
    /// Bilinear interpolation between the corners.
    Bilinear,
    /// The A↔B slider: the [`Param::Mix`] parameter, C and D silent.
    Mix,
}

impl Pad {
    fn from_value(value: f32) -> Self {
        match value.round() as i32 {
            i32::MIN..=0 => Self::Cones,
            1 => Self::Bilinear,
            _ => Self::Mix,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Cones => "XY cones",
            Self::Bilinear => "XY bilinear",
            Self::Mix => "A-B mix",
        }
    }
}

/// One row of [`PARAMS`].
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub param: Param,
    /// The CLAP id (stable: saved in hosts' automation lanes).
    pub id: u32,
    /// The key in the saved state.
    pub key: &'static str,
    pub name: &'static str,
    pub min: f32,
    pub max: f32,
    pub default: f32,
    /// Whole values only (an enum).
    pub stepped: bool,
}

/// Every parameter, in host order.
pub const PARAMS: [Spec; 11] = [
    spec(Param::X, 1, "x", "X", 0.0, 1.0, 0.5, false),
    spec(Param::Y, 2, "y", "Y", 0.0, 1.0, 0.5, false),
    spec(Param::Pad, 3, "pad", "Pad mode", 0.0, 2.0, 0.0, true),
    spec(Param::Mix, 4, "mix", "Mix A-B", 0.0, 1.0, 0.5, false),
    spec(
        Param::AttackSecs,
        5,
        "attack_secs",
        "Attack",
        0.001,
        5.0,
        0.01,
        false,
    ),
    spec(
        Param::ReleaseSecs,
        6,
        "release_secs",
        "Release",
        0.01,
        10.0,
        0.3,
        false,
    ),
    spec(Param::GainDb, 7, "gain_db", "Gain", -60.0, 12.0, 0.0, false),
    spec(
        Param::Corner(0),
        8,
        "corner_a",
        "Corner A",
        0.0,
        4.0,
        1.0,
        true,
    ),
    spec(
        Param::Corner(1),
        9,
        "corner_b",
        "Corner B",
        0.0,
        4.0,
        2.0,
        true,
    ),
    spec(
        Param::Corner(2),
        10,
        "corner_c",
        "Corner C",
        0.0,
        4.0,
        3.0,
        true,
    ),
    spec(
        Param::Corner(3),
        11,
        "corner_d",
        "Corner D",
        0.0,
        4.0,
        4.0,
        true,
    ),
];

/// What a corner parameter's value shows: a demo instrument's name, or where the state's
/// file or pack is.
fn corner_name(value: f32) -> &'static str {
    match value.round() as usize {
        0 => "file or pack",
        n => engine::demo::PACKS
            .get(n - 1)
            .copied()
            .unwrap_or("file or pack"),
    }
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    param: Param,
    id: u32,
    key: &'static str,
    name: &'static str,
    min: f32,
    max: f32,
    default: f32,
    stepped: bool,
) -> Spec {
    Spec {
        param,
        id,
        key,
        name,
        min,
        max,
        default,
        stepped,
    }
}

impl Spec {
    /// The row of a CLAP id.
    pub fn of_id(id: u32) -> Option<(usize, &'static Spec)> {
        PARAMS.iter().enumerate().find(|(_, s)| s.id == id)
    }

    /// The row of a saved state's key.
    pub fn of_key(key: &str) -> Option<(usize, &'static Spec)> {
        PARAMS.iter().enumerate().find(|(_, s)| s.key == key)
    }

    /// `value` brought into range (a NaN becomes the default).
    pub fn clamp(&self, value: f32) -> f32 {
        if value.is_nan() {
            return self.default;
        }
        let v = value.clamp(self.min, self.max);
        if self.stepped { v.round() } else { v }
    }

    /// What the host shows for `value`.
    pub fn display(&self, value: f32, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match self.param {
            Param::X | Param::Y | Param::Mix => write!(out, "{value:.3}"),
            Param::Pad => out.write_str(Pad::from_value(value).name()),
            Param::AttackSecs | Param::ReleaseSecs => {
                if value < 1.0 {
                    write!(out, "{:.0} ms", value * 1000.0)
                } else {
                    write!(out, "{value:.2} s")
                }
            }
            Param::GainDb => write!(out, "{value:+.1} dB"),
            Param::Corner(_) => out.write_str(corner_name(value)),
        }
    }

    /// The value of what [`Spec::display`] shows (units optional), or of a pad mode's name.
    pub fn parse(&self, text: &str) -> Option<f32> {
        let text = text.trim();
        if let Param::Corner(_) = self.param {
            return (0..=engine::demo::PACKS.len())
                .find(|&i| corner_name(i as f32).eq_ignore_ascii_case(text))
                .map(|i| i as f32);
        }
        if self.param == Param::Pad {
            let mode = [Pad::Cones, Pad::Bilinear, Pad::Mix]
                .into_iter()
                .position(|p| p.name().eq_ignore_ascii_case(text));
            if let Some(i) = mode {
                return Some(i as f32);
            }
        }
        let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
            (ms, 0.001)
        } else if let Some(s) = text.strip_suffix('s') {
            (s, 1.0)
        } else if let Some(db) = text.strip_suffix("dB") {
            (db, 1.0)
        } else {
            (text, 1.0)
        };
        let value: f32 = number.trim().parse().ok()?;
        value.is_finite().then(|| self.clamp(value * scale))
    }
}

/// An `f32` in an `AtomicU32` (relaxed: each value stands alone).
#[derive(Debug)]
struct AtomicF32(AtomicU32);

impl AtomicF32 {
    fn new(value: f32) -> Self {
        Self(AtomicU32::new(value.to_bits()))
    }
    fn load(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn store(&self, value: f32) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// The current plain value of every parameter, shared by every thread.
#[derive(Debug)]
pub struct Values {
    values: [AtomicF32; PARAMS.len()],
    /// Bumped on every change, so the audio thread applies values only when one moved.
    generation: AtomicU32,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            values: PARAMS.map(|s| AtomicF32::new(s.default)),
            generation: AtomicU32::new(0),
        }
    }
}

impl Values {
    /// The value of row `index` of [`PARAMS`].
    pub fn get(&self, index: usize) -> f32 {
        self.values.get(index).map_or(0.0, AtomicF32::load)
    }

    /// Sets row `index` (clamped into range).
    pub fn set(&self, index: usize, value: f32) {
        if let (Some(slot), Some(spec)) = (self.values.get(index), PARAMS.get(index)) {
            slot.store(spec.clamp(value));
            self.generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Sets the parameter with CLAP id `id`; false if there is none.
    pub fn set_id(&self, id: u32, value: f64) -> bool {
        match Spec::of_id(id) {
            Some((index, _)) => {
                self.set(index, value as f32);
                true
            }
            None => false,
        }
    }

    /// The value of the parameter with CLAP id `id`.
    pub fn get_id(&self, id: u32) -> Option<f32> {
        Spec::of_id(id).map(|(index, _)| self.get(index))
    }

    /// The value of `param`.
    pub fn of(&self, param: Param) -> f32 {
        PARAMS
            .iter()
            .position(|s| s.param == param)
            .map_or(0.0, |i| self.get(i))
    }

    /// Sets `param`.
    pub fn set_param(&self, param: Param, value: f32) {
        if let Some(i) = PARAMS.iter().position(|s| s.param == param) {
            self.set(i, value);
        }
    }

    /// Changes so far (compare two readings to see whether anything moved).
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// A snapshot of everything the voice engine reads.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            weights: self.weights(),
            attack_secs: self.of(Param::AttackSecs),
            release_secs: self.of(Param::ReleaseSecs),
            gain: db_to_gain(self.of(Param::GainDb)),
        }
    }

    /// The corners' weights for the current pad mode and position (summing to 1).
    pub fn weights(&self) -> [f32; 4] {
        let (x, y) = (self.of(Param::X), self.of(Param::Y));
        match Pad::from_value(self.of(Param::Pad)) {
            Pad::Cones => xy_weights(x, y, XyMode::Cone),
            Pad::Bilinear => xy_weights(x, y, XyMode::Bilinear),
            Pad::Mix => {
                let m = self.of(Param::Mix).clamp(0.0, 1.0);
                [1.0 - m, m, 0.0, 0.0]
            }
        }
    }
}

/// What the voice engine is told, read from [`Values`] at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub weights: [f32; 4],
    pub attack_secs: f32,
    pub release_secs: f32,
    /// Linear gain.
    pub gain: f32,
}

/// dB to a linear factor; −60 dB and below is silence (the bottom of the gain range).
pub fn db_to_gain(db: f32) -> f32 {
    if db <= PARAMS[6].min {
        0.0
    } else {
        10f32.powf(db / 20.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        for (i, spec) in PARAMS.iter().enumerate() {
            for value in [spec.min, spec.default, spec.max] {
                let mut text = String::new();
                spec.display(value, &mut text).unwrap();
                let back = spec.parse(&text).unwrap();
                // Displays round to 3 decimals (ms for short times, 0.1 dB for gain).
                let tol = if spec.param == Param::GainDb {
                    0.05
                } else {
                    5e-4
                };
                assert!((back - value).abs() <= tol, "{i} {value} {text} {back}");
            }
        }
    }

    #[test]
    fn values_clamp_and_weights_follow_the_pad() {
        let v = Values::default();
        let g = v.generation();
        assert!(v.set_id(1, 2.0));
        assert_eq!(v.of(Param::X), 1.0);
        assert!(v.generation() != g);
        assert!(!v.set_id(99, 0.0));
        v.set_id(2, 0.0);
        assert_eq!(v.weights(), [0.0, 1.0, 0.0, 0.0]); // cones at B
        v.set_id(3, 2.0);
        v.set_id(4, 0.25);
        assert_eq!(v.weights(), [0.75, 0.25, 0.0, 0.0]);
        v.set_id(3, 1.0);
        v.set_id(1, 0.5);
        v.set_id(2, 0.5);
        assert_eq!(v.weights(), [0.25; 4]);
        v.set_id(9, 3.4);
        assert_eq!(v.of(Param::Corner(1)), 3.0);
        v.set_id(5, f64::NAN);
        assert_eq!(v.of(Param::AttackSecs), PARAMS[4].default);
    }

    #[test]
    fn gain_db() {
        assert_eq!(db_to_gain(0.0), 1.0);
        assert!((db_to_gain(-6.0) - 0.501).abs() < 1e-3);
        assert_eq!(db_to_gain(-60.0), 0.0);
    }
}
