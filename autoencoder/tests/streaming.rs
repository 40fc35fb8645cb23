#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The fast generator against the parallel decoder: teacher-forced, the queues must
//! reproduce the parallel convolution's probabilities.

mod common;

use autoencoder::mulaw::CLASSES;
use autoencoder::sampling::softmax;
use autoencoder::{Config, FastGenerator};
use common::{max_abs_diff, random_model, scaled_audio, tensor, tiny};

fn check(cfg: &Config, batch: usize, frames: usize, seed: u64) {
    let model = random_model(cfg, seed);
    let hop = cfg.ae_hop_length;
    let length = frames * hop;
    let scaled = scaled_audio(batch, length, seed + 1);
    let x = tensor(&scaled, &[batch, length]);
    let (encoding, logits) = model.forward(&x).unwrap();
    let encoding: Vec<f32> = encoding.flatten_all().unwrap().to_vec1().unwrap();
    let logits: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    let bn = cfg.ae_bottleneck_width;

    let mut generator = FastGenerator::new(&model, batch).unwrap();
    let mut previous = vec![0f32; batch];
    let mut frame = vec![0f32; batch * bn];
    let (mut worst_p, mut worst_l) = (0f32, 0f32);
    let mut p_fast = vec![0f32; CLASSES];
    let mut p_par = vec![0f32; CLASSES];
    for t in 0..length {
        if t % hop == 0 {
            for v in 0..batch {
                let at = (v * frames + t / hop) * bn;
                frame[v * bn..(v + 1) * bn].copy_from_slice(&encoding[at..at + bn]);
            }
            generator.set_frame(&frame).unwrap();
        }
        let fast = generator.step(&previous);
        for v in 0..batch {
            let fast = &fast[v * CLASSES..(v + 1) * CLASSES];
            let par = &logits[(v * length + t) * CLASSES..(v * length + t + 1) * CLASSES];
            worst_l = worst_l.max(max_abs_diff(fast, par));
            softmax(fast, &mut p_fast);
            softmax(par, &mut p_par);
            worst_p = worst_p.max(max_abs_diff(&p_fast, &p_par));
            previous[v] = scaled[v * length + t];
        }
    }
    // Both paths compute the same sums in f32, in a different order (one matmul over
    // all taps vs a sum per tap); through ~10 layers of O(1) activations that is a few
    // ulps of the logits (~1e-6). 1e-5 on probabilities and 1e-4 on logits leave an
    // order of magnitude of headroom while still catching any off-by-one in a queue
    // (which moves probabilities by 1e-2 or more).
    assert!(
        worst_p < 1e-5,
        "{cfg:?} batch {batch}: probability error {worst_p}"
    );
    assert!(
        worst_l < 1e-4,
        "{cfg:?} batch {batch}: logit error {worst_l}"
    );
    assert_eq!(generator.position(), length);
}

#[test]
fn fast_generation_equals_the_parallel_decoder() {
    // Magenta's shape: filter 3, dilations cycling 1..8.
    check(&tiny(3, 4, 6, 32), 1, 4, 1);
    check(&tiny(3, 4, 6, 32), 3, 3, 2);
    // Filter lengths other than Magenta's 3, and dilations that exceed the hop.
    check(&tiny(2, 6, 7, 16), 2, 6, 3);
    check(&tiny(4, 3, 5, 8), 4, 10, 4);
    check(&tiny(1, 2, 3, 8), 2, 4, 5);
    // A single layer, a single frame.
    check(&tiny(3, 1, 1, 64), 1, 1, 6);
}

#[test]
fn reset_starts_a_new_note() {
    let cfg = tiny(3, 3, 4, 16);
    let model = random_model(&cfg, 9);
    let mut generator = FastGenerator::new(&model, 2).unwrap();
    let frame = vec![0.3f32; 2 * cfg.ae_bottleneck_width];
    generator.set_frame(&frame).unwrap();
    let first: Vec<f32> = generator.step(&[0.0, 0.0]).to_vec();
    for i in 0..37 {
        generator.step(&[0.1 * (i % 5) as f32, -0.2]);
    }
    generator.reset();
    assert_eq!(generator.position(), 0);
    assert_eq!(generator.step(&[0.0, 0.0]), first.as_slice());
}

#[test]
fn mismatched_frames_are_errors() {
    let cfg = tiny(3, 3, 4, 16);
    let model = random_model(&cfg, 9);
    let mut generator = FastGenerator::new(&model, 2).unwrap();
    assert!(generator.set_frame(&[0.0; 5]).is_err());
    assert!(FastGenerator::new(&model, 0).is_err());
}
