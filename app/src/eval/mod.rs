//! `timbrel eval`: reconstructions scored against their notes, per note and per
//! instrument, and (`--blends`) 50/50 blends of pairs of notes scored against their sources.

mod blends;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use autoencoder::Sampling;
use engine::audio::SAMPLE_RATE_HZ;
use engine::audio::wav::{WavFormat, write};
use engine::eval::{Report, by_instrument, score};
use engine::fsutil::{Overwrite, write_atomic};
use engine::models::{ModelFamily, reconstruct};
use engine::nsynth::Dataset;
use engine::synth::{DecoderKind, ModelSource, STUDENT_DIR};

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model directory (config.json + weights.safetensors), or a student's
    /// (student.json + weights.safetensors).
    #[arg(long, value_name = "MODEL_DIR")]
    pub model: PathBuf,
    /// autoregressive: the model's WaveNet decoder; parallel: the Parallel WaveNet
    /// student beside it (its student/ folder), scored on its own held-out notes;
    /// samplernn: a SampleRNN (--model is one, or holds one in samplernn/).
    /// Default: what --model is.
    #[arg(long, value_enum)]
    pub decoder: Option<crate::synth::DecoderArg>,
    /// A dataset in NSynth's layout.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// How many notes to evaluate (spread evenly over the dataset).
    #[arg(long, default_value_t = 8)]
    pub notes: usize,
    /// Only the instruments the model's training run held out (needs its train/ state and
    /// the same --data it trained on).
    #[arg(long)]
    pub held_out: bool,
    /// Also blend N pairs of notes (of two instruments at one pitch, among the notes
    /// --held-out or the whole dataset offers; drawn by --seed, like velocities preferred)
    /// 50/50, as `timbrel blend` does, and score each against its sources: in tune, as
    /// loud as they are, nearer their spectral average than either.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub blends: usize,
    /// Score the blends at the level they decode at, without bringing each to its
    /// sources' mean level in dB (as `timbrel blend --no-level-match`).
    #[arg(long)]
    pub no_level_match: bool,
    /// Print the report as JSON (what --out writes to eval.json) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the reconstructions (WAV) and eval.json here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Replace files already in --out.
    #[arg(long)]
    pub force: bool,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if args.notes == 0 {
        bail!("--notes must be at least 1");
    }
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let (dir, model) = load_model(args, &device)?;
    let ds = Dataset::open(&args.data).context("eval")?;
    let candidates = candidate_notes(args, &dir, &ds)?;
    let names = pick_notes(args.notes, &candidates);
    let n = names.len();
    let originals = names
        .iter()
        .map(|k| ds.load(k))
        .collect::<Result<Vec<_>, _>>()?;

    // A model with an excitation is given each note's own pitch (NSynth's `pitch`).
    let f0: Vec<f32> = names
        .iter()
        .map(|k| {
            let e = &ds.examples[k];
            if e.unpitched {
                0.0
            } else {
                autoencoder::excitation::midi_to_hz(f32::from(e.pitch))
            }
        })
        .collect();
    let unpitched: Vec<bool> = names.iter().map(|k| ds.examples[k].unpitched).collect();
    // Teacher-forced NLL where the family has a likelihood (not the student).
    let nll_nats = engine::eval::family_nll(&*model, &originals, Some(&f0), 4)?;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(originals[0].len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "decoding {bar:30} {pos}/{len} samples  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    };
    let sampling = Sampling {
        temperature: args.temperature,
        seed: args.seed,
    };
    let started = std::time::Instant::now();
    let reconstructions = reconstruct(&*model, &originals, Some(&f0), sampling, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let decode_secs = started.elapsed().as_secs_f64();
    let (pitch_accuracy, pitched_notes, distance, per_note) =
        score(&names, &originals, &reconstructions, &unpitched);
    let instruments: Vec<String> = names
        .iter()
        .map(|k| ds.examples[k].instrument_str.clone())
        .collect();
    let kind = model.kind();
    // The blends load the model again, into the engine `timbrel blend` plays with.
    drop(model);
    let blended = if args.blends > 0 {
        Some(blends::blend_pairs(
            args,
            &dir,
            kind,
            &device,
            &ds,
            &candidates,
        )?)
    } else {
        None
    };
    let report = Report {
        notes: n,
        nll_nats,
        nll_bits: nll_nats.map(|n| n / std::f64::consts::LN_2),
        reconstructed: reconstructions.len(),
        pitch_accuracy,
        pitched_notes,
        log_mel_distance_db: distance,
        instruments: by_instrument(&per_note, &instruments),
        per_note,
        blends: blended.as_ref().map(|(report, _)| report.clone()),
    };
    if let Some(dir) = &args.out {
        let blend_audio = blended
            .as_ref()
            .map_or(&[][..], |(_, audio)| audio.as_slice());
        write_outputs(args, dir, &names, &reconstructions, blend_audio, &report)?;
    }
    if args.json {
        let mut out = Output::default();
        out.line(serde_json::to_string_pretty(&report)?);
        out.flush()?;
    } else {
        print(
            args,
            &report,
            candidates.len(),
            &reconstructions,
            decode_secs,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The model directory evaluated (an autoencoder's, or the student beside it or alone,
/// or a SampleRNN) and its model.
fn load_model(
    args: &Args,
    device: &candle_core::Device,
) -> anyhow::Result<(PathBuf, Arc<dyn ModelFamily>)> {
    // A student's directory holds student.json; an autoencoder's, config.json (and its
    // student, if it has one, student/).
    use crate::synth::DecoderArg;
    use engine::models::samplernn::{SAMPLERNN_DIR, is_samplernn};
    use engine::models::student::is_student;
    let open = |dir: &Path, kind: DecoderKind| {
        engine::models::open(&ModelSource::Dir(dir.to_path_buf()), Some(kind), device)
            .map(|loaded| loaded.family)
            .context("eval")
    };
    if args.decoder == Some(DecoderArg::Samplernn) || is_samplernn(&args.model) {
        let dir = if is_samplernn(&args.model) {
            args.model.clone()
        } else {
            args.model.join(SAMPLERNN_DIR)
        };
        if !is_samplernn(&dir) {
            bail!(
                "eval: {} is not a SampleRNN and has none beside it (in {SAMPLERNN_DIR}/)",
                args.model.display()
            );
        }
        if !matches!(args.decoder, None | Some(DecoderArg::Samplernn)) {
            bail!(
                "eval: {} is a SampleRNN; it plays with --decoder samplernn only",
                dir.display()
            );
        }
        let model = open(&dir, DecoderKind::SampleRnn)?;
        return Ok((dir, model));
    }
    let dir = match (args.decoder, is_student(&args.model)) {
        (Some(DecoderArg::Autoregressive), true) => bail!(
            "eval: {} is a Parallel WaveNet student; it has no autoregressive decoder",
            args.model.display()
        ),
        (Some(DecoderArg::Parallel), false) => {
            let beside = args.model.join(STUDENT_DIR);
            if !is_student(&beside) {
                bail!(
                    "eval: {} has no Parallel WaveNet student beside it (in {STUDENT_DIR}/)",
                    args.model.display(),
                );
            }
            beside
        }
        _ => args.model.clone(),
    };
    let kind = if is_student(&dir) {
        DecoderKind::Parallel
    } else {
        DecoderKind::Autoregressive
    };
    let model = open(&dir, kind)?;
    Ok((dir, model))
}

/// The notes an evaluation draws from: every note of the dataset, or those of the
/// instruments the run held out (`--held-out`), in the dataset's order.
fn candidate_notes(args: &Args, dir: &Path, ds: &Dataset) -> anyhow::Result<Vec<String>> {
    let mut candidates: Vec<&String> = ds.examples.keys().collect();
    if args.held_out {
        let (dirs, held_out) = engine::train::validation_split(dir)
            .context("eval --held-out")?
            .ok_or_else(|| anyhow!("eval --held-out: {} has no training state", dir.display()))?;
        let wanted = std::fs::canonicalize(&args.data)?;
        let index = dirs
            .iter()
            .position(|d| std::fs::canonicalize(d).ok().as_ref() == Some(&wanted))
            .ok_or_else(|| {
                anyhow!(
                    "eval --held-out: the model was not trained on {}",
                    args.data.display()
                )
            })?;
        candidates.retain(|k| held_out.contains(&(index, ds.examples[*k].instrument)));
    }
    if candidates.is_empty() {
        bail!("eval: no notes to evaluate in {}", args.data.display());
    }
    Ok(candidates.into_iter().cloned().collect())
}

/// `notes` of the (non-empty) `candidates`, spread evenly over them.
fn pick_notes(notes: usize, candidates: &[String]) -> Vec<String> {
    let n = notes.min(candidates.len());
    let step = candidates.len() as f64 / n as f64;
    (0..n)
        .map(|i| candidates[(i as f64 * step) as usize].clone())
        .collect()
}

/// The reconstructions and blends (`blend-A+B.wav`) as WAVs and the report as
/// `eval.json` in `dir`.
fn write_outputs(
    args: &Args,
    dir: &Path,
    names: &[String],
    reconstructions: &[Vec<f32>],
    blends: &[Vec<f32>],
    report: &Report,
) -> anyhow::Result<()> {
    let overwrite = if args.force {
        Overwrite::Allowed
    } else {
        Overwrite::Never
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pairs = report
        .blends
        .as_ref()
        .map_or(&[][..], |b| b.pairs.as_slice());
    let blend_names = pairs.iter().map(|p| format!("blend-{}+{}", p.a, p.b));
    for (name, audio) in names
        .iter()
        .cloned()
        .zip(reconstructions)
        .chain(blend_names.zip(blends))
    {
        write(
            &dir.join(format!("{name}.wav")),
            audio,
            SAMPLE_RATE_HZ,
            WavFormat::S16,
            overwrite,
        )?;
    }
    let json = serde_json::to_string_pretty(&report)?;
    write_atomic(&dir.join("eval.json"), overwrite, |out| {
        std::io::Write::write_all(out, json.as_bytes())
    })?;
    Ok(())
}

fn print(
    args: &Args,
    report: &Report,
    candidates: usize,
    reconstructions: &[Vec<f32>],
    decode_secs: f64,
) -> anyhow::Result<()> {
    let n = report.notes;
    let mut out = Output::default();
    out.line(format!(
        "notes={n} (of {}{})",
        candidates,
        if args.held_out {
            ", held-out instruments"
        } else {
            ""
        }
    ));
    let figure =
        |v: Option<f64>| v.map_or("- (no likelihood: a student)".into(), |v| format!("{v:.4}"));
    out.line(format!("nll_nats={}", figure(report.nll_nats)));
    out.line(format!("nll_bits={}", figure(report.nll_bits)));
    out.line(format!(
        "pitch_accuracy={} ({} pitched notes)",
        report
            .pitch_accuracy
            .map_or("-".into(), |a| format!("{a:.3}")),
        report.pitched_notes
    ));
    out.line(format!(
        "log_mel_distance_db={:.2}",
        report.log_mel_distance_db
    ));
    out.line(format!(
        "decoded {} voices x {} samples in {decode_secs:.1} s",
        reconstructions.len(),
        reconstructions.first().map_or(0, Vec::len)
    ));
    let worst = &report.instruments[..report.instruments.len().min(WORST_SHOWN)];
    out.line(format!(
        "instruments={} (worst {} by log-mel distance, pitch):",
        report.instruments.len(),
        worst.len()
    ));
    for i in worst {
        out.line(format!(
            "  {:<28} {:6.2} dB  {} of {} in tune ({} notes)",
            i.instrument, i.log_mel_distance_db, i.in_tune, i.pitched_notes, i.notes
        ));
    }
    if let Some(blends) = &report.blends {
        blends::print(&mut out, blends);
    }
    out.flush()?;
    Ok(())
}

/// How many of the worst instruments the text report lists (eval.json has them all).
const WORST_SHOWN: usize = 5;
