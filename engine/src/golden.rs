//! Parity with the reference implementation: runs our model on a fixture made with
//! Magenta's own code and measures how far each output is from the reference's.
//!
//! Fixture layout (see `shared/golden/README.md`): `config.json` (the model's keys plus
//! `batch` and `length`), `weights.safetensors` (Magenta names and layouts) and
//! `io.safetensors` with `wav`, `quantized`, `encoding`, `logits`, `loss`, `fastgen_probs`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use autoencoder::mulaw::{self, CLASSES};
use autoencoder::sampling::softmax;
use autoencoder::{Config, FastGenerator, WaveNetAutoencoder};
use candle_core::{Device, Tensor};

use crate::error::{Error, Result, check_safetensors, read_bounded};
use crate::fsutil::{Overwrite, write_atomic, write_tensors};

/// Largest fixture file we read (the shared one is 2 MB).
const MAX_FIXTURE_BYTES: u64 = 1 << 30;

/// The error budget: 1e-4, absolute for probabilities (already in [0, 1]) and the
/// quantised classes (exact), scaled by `max(1, max |reference|)` for the encoding, the
/// logits and the loss, whose f32 rounding error grows with their magnitude.
pub const TOLERANCE: f32 = 1e-4;

/// How far one of our outputs is from the reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    pub name: &'static str,
    /// `max |ours − reference|`.
    pub max_abs_error: f32,
    /// What the tolerance is multiplied by: `max(1, max |reference|)` or 1.
    pub scale: f32,
}

impl Deviation {
    pub fn passes(&self) -> bool {
        self.max_abs_error <= TOLERANCE * self.scale
    }
}

/// The outcome of a parity check.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Config,
    pub batch: usize,
    pub length: usize,
    /// In order: `quantized`, `encoding`, `logits`, `loss`, `fastgen_probs`.
    pub deviations: Vec<Deviation>,
}

impl Report {
    pub fn passes(&self) -> bool {
        self.deviations.iter().all(Deviation::passes)
    }
}

fn tensors(path: &Path) -> Result<HashMap<String, Tensor>> {
    let bytes = read_bounded(path, MAX_FIXTURE_BYTES)?;
    check_safetensors(path, &bytes)?;
    let host = Device::Cpu; // host: parity with Magenta is checked on the CPU
    candle_core::safetensors::load_buffer(&bytes, &host)
        .map_err(|e| Error::invalid(path, format!("not a readable safetensors file ({e})")))
}

fn take(
    map: &HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
    path: &Path,
) -> Result<Vec<f32>> {
    let t = map
        .get(name)
        .ok_or_else(|| Error::invalid(path, format!("fixture has no tensor {name:?}")))?;
    if t.dims() != shape {
        return Err(Error::invalid(
            path,
            format!(
                "tensor {name:?} has shape {:?}, expected {shape:?}",
                t.dims()
            ),
        ));
    }
    let flat = t
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| Error::invalid(path, format!("tensor {name:?}: {e}")))?;
    Ok(flat)
}

fn deviation(name: &'static str, ours: &[f32], reference: &[f32], scaled: bool) -> Deviation {
    let max_abs_error = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        // A NaN anywhere must fail the check, not vanish in a max.
        .fold(0f32, |m, e| {
            if e.is_nan() || m.is_nan() {
                f32::NAN
            } else {
                m.max(e)
            }
        });
    let scale = if scaled {
        reference.iter().fold(1f32, |m, r| m.max(r.abs()))
    } else {
        1.0
    };
    Deviation {
        name,
        max_abs_error,
        scale,
    }
}

pub fn fixture_config(dir: &Path) -> Result<(Config, usize, usize)> {
    let path = dir.join("config.json");
    let bytes = read_bounded(&path, 1 << 20)?;
    let mut value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&path, format!("not valid JSON ({e})")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| Error::invalid(&path, "config is not a JSON object"))?;
    let mut size = |key: &str| -> Result<usize> {
        obj.remove(key)
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v > 0)
            .ok_or_else(|| {
                Error::invalid(
                    &path,
                    format!("fixture config needs a positive integer {key:?}"),
                )
            })
    };
    let batch = size("batch")?;
    let length = size("length")?;
    let config = serde_json::from_value::<Config>(value)
        .map_err(autoencoder::Error::from)
        .and_then(|c| c.validate().map(|()| c))
        .map_err(|error| Error::Model {
            path: path.clone(),
            error,
        })?;
    if length % config.ae_hop_length != 0 {
        return Err(Error::invalid(
            &path,
            format!(
                "length {length} is not a multiple of ae_hop_length {}",
                config.ae_hop_length
            ),
        ));
    }
    Ok((config, batch, length))
}

/// What a fixture holds besides the weights, all flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// `[batch, length]` μ-law classes −128..=127.
    pub quantized: Vec<f32>,
    /// `[batch, frames, bottleneck]`.
    pub encoding: Vec<f32>,
    /// `[batch · length, 256]` teacher-forced logits of the parallel decoder.
    pub logits: Vec<f32>,
    /// Mean NLL in nats.
    pub loss: f32,
    /// `[length, batch, 256]` probabilities of the fast generator fed the decoded μ-law
    /// value of sample `t − 1` and encoding frame `t / hop`.
    pub fastgen_probs: Vec<f32>,
}

/// Runs our encoder, parallel decoder and fast generator on `wav` `[batch, length]`. The
/// generator is fed `teacher` = (quantized, encoding) when given (the reference's, so that
/// its check does not inherit the encoder's error), else our own.
pub fn outputs(
    model: &WaveNetAutoencoder,
    wav: &[f32],
    (batch, length): (usize, usize),
    teacher: Option<(&[f32], &[f32])>,
) -> Result<Outputs> {
    let quantized: Vec<f32> = wav.iter().map(|&x| mulaw::mu_law(x) as f32).collect();
    let scaled: Vec<f32> = quantized.iter().map(|q| q / 128.0).collect();
    let flat = |t: &Tensor| -> Result<Vec<f32>> {
        Ok(t.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(autoencoder::Error::from)?)
    };
    let scaled = Tensor::from_vec(scaled, (batch, length), model.device())
        .map_err(autoencoder::Error::from)?;
    let (encoding, logits) = model.forward(&scaled)?;
    let loss = flat(&autoencoder::nll(&logits, &scaled)?)?;
    let encoding = flat(&encoding)?;
    let (teacher_q, teacher_enc) = teacher.unwrap_or((&quantized, &encoding));
    let fastgen_probs = teacher_forced_probs(model, teacher_q, teacher_enc, batch, length)?;
    Ok(Outputs {
        logits: flat(&logits)?,
        quantized,
        encoding,
        loss: loss[0],
        fastgen_probs,
    })
}

/// Runs encoder, parallel decoder and fast generator on the fixture in `dir`.
pub fn check(dir: &Path) -> Result<Report> {
    let (config, batch, length) = fixture_config(dir)?;
    let frames = length / config.ae_hop_length;
    let bottleneck = config.ae_bottleneck_width;
    let device = Device::Cpu; // host: parity with Magenta is checked on the CPU

    let weights_path = dir.join("weights.safetensors");
    let weights = read_bounded(&weights_path, MAX_FIXTURE_BYTES)?;
    check_safetensors(&weights_path, &weights)?;
    let model =
        WaveNetAutoencoder::from_safetensors(&config, &weights, &device).map_err(|error| {
            Error::Model {
                path: weights_path.clone(),
                error,
            }
        })?;

    let io_path = dir.join("io.safetensors");
    let io = tensors(&io_path)?;
    let wav = take(&io, "wav", &[batch, length], &io_path)?;
    let ref_quantized = take(&io, "quantized", &[batch, length], &io_path)?;
    let ref_encoding = take(&io, "encoding", &[batch, frames, bottleneck], &io_path)?;
    let ref_logits = take(&io, "logits", &[batch * length, CLASSES], &io_path)?;
    let ref_loss = take(&io, "loss", &[], &io_path)?;
    let ref_probs = take(&io, "fastgen_probs", &[length, batch, CLASSES], &io_path)?;

    let ours = outputs(
        &model,
        &wav,
        (batch, length),
        Some((&ref_quantized, &ref_encoding)),
    )?;
    let deviations = vec![
        deviation("quantized", &ours.quantized, &ref_quantized, false),
        deviation("encoding", &ours.encoding, &ref_encoding, true),
        deviation("logits", &ours.logits, &ref_logits, true),
        deviation("loss", &[ours.loss], &ref_loss, true),
        deviation("fastgen_probs", &ours.fastgen_probs, &ref_probs, false),
    ];
    Ok(Report {
        config,
        batch,
        length,
        deviations,
    })
}

/// Writes a fixture of `model` in the layout [`check`] reads, with our own outputs as
/// the expected ones. Such a fixture proves nothing about parity with Magenta; it lets
/// tests exercise the checker on sizes and batches other than the shared fixture's.
pub fn write_fixture(
    dir: &Path,
    model: &WaveNetAutoencoder,
    weights: &HashMap<String, Tensor>,
    wav: &[f32],
    (batch, length): (usize, usize),
) -> Result<()> {
    let cfg = model.config();
    let o = outputs(model, wav, (batch, length), None)?;
    let frames = length / cfg.ae_hop_length;
    let mut io = HashMap::new();
    let host = Device::Cpu; // host: a fixture's tensors, written to a file
    let mut put = |name: &str, values: Vec<f32>, shape: &[usize]| -> Result<()> {
        let t = Tensor::from_vec(values, shape, &host).map_err(autoencoder::Error::from)?;
        io.insert(name.to_string(), t);
        Ok(())
    };
    put("wav", wav.to_vec(), &[batch, length])?;
    put("quantized", o.quantized, &[batch, length])?;
    put(
        "encoding",
        o.encoding,
        &[batch, frames, cfg.ae_bottleneck_width],
    )?;
    put("logits", o.logits, &[batch * length, CLASSES])?;
    put("loss", vec![o.loss], &[])?;
    put("fastgen_probs", o.fastgen_probs, &[length, batch, CLASSES])?;

    let mut config = serde_json::to_value(cfg)
        .map_err(|e| Error::invalid(dir, format!("cannot serialise the config ({e})")))?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("batch".into(), batch.into());
        obj.insert("length".into(), length.into());
    }
    std::fs::create_dir_all(dir).map_err(|error| Error::Write {
        path: dir.to_path_buf(),
        error,
    })?;
    let config_path = dir.join("config.json");
    let text = config.to_string();
    write_atomic(&config_path, Overwrite::Allowed, |out| {
        out.write_all(text.as_bytes())
    })?;
    write_tensors(
        &dir.join("weights.safetensors"),
        weights,
        Overwrite::Allowed,
    )?;
    write_tensors(&dir.join("io.safetensors"), &io, Overwrite::Allowed)
}
/// The fast generator's softmax `[time][voice][256]`, fed at step `t` the decoded μ-law
/// value of reference sample `t − 1` (zero at `t = 0`) and the reference's encoding frame
/// `t / hop`, as the fixture's `fastgen_probs` were made.
fn teacher_forced_probs(
    model: &WaveNetAutoencoder,
    quantized: &[f32],
    encoding: &[f32],
    batch: usize,
    length: usize,
) -> Result<Vec<f32>> {
    let cfg = model.config();
    let (hop, bottleneck) = (cfg.ae_hop_length, cfg.ae_bottleneck_width);
    let frames = length / hop;
    let mut generator = FastGenerator::new(model, batch)?;
    let mut out = vec![0f32; length * batch * CLASSES];
    let mut frame = vec![0f32; batch * bottleneck];
    let mut previous = vec![0f32; batch];
    for t in 0..length {
        if t % hop == 0 {
            let f = t / hop;
            for v in 0..batch {
                let at = (v * frames + f) * bottleneck;
                frame[v * bottleneck..(v + 1) * bottleneck]
                    .copy_from_slice(&encoding[at..at + bottleneck]);
            }
            generator.set_frame(&frame)?;
        }
        let logits = generator.step(&previous);
        for v in 0..batch {
            let at = (t * batch + v) * CLASSES;
            softmax(
                &logits[v * CLASSES..(v + 1) * CLASSES],
                &mut out[at..at + CLASSES],
            );
            // What fastgen.py feeds back: the audio value of the class, re-quantised.
            let class = quantized[v * length + t] as i32;
            previous[v] = mulaw::scaled(mulaw::inv_mu_law(class));
        }
    }
    Ok(out)
}
