#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `Conv1d` against a direct, loop-by-loop reading of Magenta's `masked.conv1d`.

mod common;

use std::collections::HashMap;

use autoencoder::nn::{Conv1d, Conv1dConfig, Padding};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use common::{max_abs_diff, tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    (0..n).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect()
}

/// Magenta's time_to_batch → pad → conv2d → batch_to_time, written as loops: every
/// sub-sequence `t ≡ j (mod d)` is convolved on its own, with TensorFlow's padding.
#[allow(clippy::too_many_arguments)]
fn reference(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (batch, time, cin, cout): (usize, usize, usize, usize),
    k: usize,
    d: usize,
    padding: Padding,
) -> Vec<f32> {
    assert_eq!(time % d, 0, "Magenta asserts length % dilation == 0");
    let sub_len = time / d;
    let left = match padding {
        Padding::Causal => k - 1,
        Padding::Same => (k - 1) / 2,
    };
    let mut y = vec![0f32; batch * time * cout];
    for bi in 0..batch {
        for j in 0..d {
            for s in 0..sub_len {
                for o in 0..cout {
                    let mut acc = b[o];
                    for tap in 0..k {
                        let src = s as isize + tap as isize - left as isize;
                        if src < 0 || src >= sub_len as isize {
                            continue;
                        }
                        let t_in = src as usize * d + j;
                        for c in 0..cin {
                            acc += x[(bi * time + t_in) * cin + c] * w[(tap * cin + c) * cout + o];
                        }
                    }
                    y[(bi * time + s * d + j) * cout + o] = acc;
                }
            }
        }
    }
    y
}

fn check(batch: usize, time: usize, cin: usize, cout: usize, k: usize, d: usize, padding: Padding) {
    let mut rng = ChaCha8Rng::seed_from_u64((batch * 7 + time * 13 + k * 17 + d) as u64);
    let x = random(batch * time * cin, &mut rng);
    let w = random(k * cin * cout, &mut rng);
    let b = random(cout, &mut rng);
    let mut map = HashMap::new();
    map.insert("c/W".to_string(), tensor(&w, &[1, k, cin, cout]));
    map.insert("c/biases".to_string(), tensor(&b, &[cout]));
    let vb = VarBuilder::from_tensors(map, DType::F32, &Device::Cpu);
    let conv = Conv1d::new(
        &vb,
        "c",
        cin,
        cout,
        Conv1dConfig {
            filter_length: k,
            dilation: d,
            padding,
        },
    )
    .unwrap();
    let ours: Vec<f32> = conv
        .forward(&tensor(&x, &[batch, time, cin]))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let expected = reference(&x, &w, &b, (batch, time, cin, cout), k, d, padding);
    // Sums of at most k·cin = 20 products of values in [-1, 1]: f32 rounding is ~1e-6.
    let err = max_abs_diff(&ours, &expected);
    assert!(
        err < 1e-5,
        "k={k} d={d} {padding:?} time={time}: error {err}"
    );
}

#[test]
fn matches_magentas_time_to_batch_convolution() {
    for padding in [Padding::Causal, Padding::Same] {
        for (k, d) in [
            (1, 1),
            (2, 1),
            (2, 4),
            (3, 1),
            (3, 2),
            (3, 8),
            (4, 2),
            (5, 4),
        ] {
            check(2, 32, 4, 3, k, d, padding);
        }
        // The sub-sequences are shorter than the filter: all padding.
        check(1, 8, 2, 2, 3, 8, padding);
        check(3, 16, 1, 5, 3, 16, padding);
    }
}

#[test]
fn wrong_channel_count_is_an_error() {
    let mut map = HashMap::new();
    map.insert(
        "c/W".to_string(),
        Tensor::zeros((1, 3, 2, 2), DType::F32, &Device::Cpu).unwrap(),
    );
    map.insert(
        "c/biases".to_string(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    );
    let vb = VarBuilder::from_tensors(map, DType::F32, &Device::Cpu);
    let cfg = Conv1dConfig {
        filter_length: 3,
        ..Default::default()
    };
    let conv = Conv1d::new(&vb, "c", 2, 2, cfg).unwrap();
    let x = Tensor::zeros((1, 4, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(
        conv.forward(&x)
            .unwrap_err()
            .to_string()
            .contains("expects 2 input channels")
    );
    // A kernel of the wrong shape names the variable.
    let err = Conv1d::new(&vb, "c", 3, 2, cfg).unwrap_err().to_string();
    assert!(err.contains("c/W"), "{err}");
    let err = Conv1d::new(&vb, "missing", 2, 2, cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing/W"), "{err}");
}
