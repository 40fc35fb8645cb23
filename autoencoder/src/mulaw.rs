//! 8-bit μ-law companding exactly as Magenta's `nsynth/utils.py`.
//!
//! `mu_law(x) = floor(sign(x) · ln(1 + 255|x|) / ln 256 · 128)`, classes −128..=127;
//! `inv_mu_law(q) = sign(y) / 255 · (256^|y| − 1)` with `y = (q + 0.5) · 2 / 256`, and
//! `inv_mu_law(0) = 0`.
//!
//! Deviation: Magenta maps exactly `x = 1.0` to class 128, one past the 256 classes its
//! softmax has (`int8=True` would wrap it to −128). We clamp it to 127; every other
//! input gives Magenta's class.

/// μ of 8-bit μ-law.
pub const MU: f32 = 255.0;

/// Number of μ-law classes (the decoder's softmax size).
pub const CLASSES: usize = 256;

/// `np.log(1 + mu)` as the f32 constant TensorFlow divides by.
const LN_256: f32 = 5.545_177_5;

/// Quantises one sample in [-1, 1] to a class in −128..=127.
pub fn mu_law(x: f32) -> i32 {
    let companded = sign(x) * (1.0 + MU * x.abs()).ln() / LN_256;
    // The cast saturates (NaN → 0), so no input can escape the class range.
    ((companded * 128.0).floor() as i32).clamp(-128, 127)
}

/// The sample value a class stands for (the centre of its bin).
pub fn inv_mu_law(q: i32) -> f32 {
    if q == 0 {
        return 0.0;
    }
    let y = (q as f32 + 0.5) * 2.0 / (MU + 1.0);
    sign(y) / MU * ((MU + 1.0).powf(y.abs()) - 1.0)
}

/// The network's input for one sample: its class scaled to [-1, 1).
pub fn scaled(x: f32) -> f32 {
    mu_law(x) as f32 / 128.0
}

/// Index of the softmax output for a class (0..=255).
pub fn class_index(q: i32) -> u32 {
    (q + 128) as u32
}

/// The class a softmax index stands for.
pub fn index_class(index: usize) -> i32 {
    index as i32 - 128
}

/// `tf.sign`: zero stays zero (Rust's `signum` gives ±1 there).
fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(x: f32, expected: i32) {
        assert_eq!(mu_law(x), expected, "mu_law({x})");
    }

    #[test]
    fn known_classes() {
        check(0.0, 0);
        check(-0.0, 0);
        check(1.0, 127); // Magenta: 128 (out of range); see the module doc.
        check(-1.0, -128);
        check(0.5, 112);
        check(-0.5, -113);
        check(1e-6, 0);
        check(-1e-6, -1);
        check(f32::NAN, 0);
        check(10.0, 127);
        check(-10.0, -128);
    }

    #[test]
    fn inverse_round_trips_every_class() {
        for q in -128..=127 {
            assert_eq!(mu_law(inv_mu_law(q)), q, "class {q}");
        }
    }

    #[test]
    fn inverse_is_monotonic_and_bounded() {
        let values: Vec<f32> = (-128..=127).map(inv_mu_law).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]));
        assert!(values.iter().all(|v| v.abs() <= 1.0));
    }
}
