//! The synthesizer's commands: `reconstruct`, `blend`, `grid`, `encode`, `decode`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use autoencoder::Control;
use engine::audio::SAMPLE_RATE_HZ;
use engine::synth::grid::{self, GridSpec};
use engine::synth::render::{self, Finished, RenderOptions};
use engine::synth::{
    Embedding, Engine, Glide, NoteSpec, PITCH_RANGE, Prepared, Voice, Weights, XyMode, npy,
};
use serde::Serialize;

use crate::output::Output;

mod args;
mod common;
pub use args::*;
pub use common::*;

/// The glide a pitched model decodes a voice at: from `start` (else the note's own
/// pitch) to `end` (else held); `None` for a model without an excitation (after checking
/// that no glide was asked of it) or when no pitch is known.
fn glide(
    engine: &Engine,
    start: Option<u8>,
    end: Option<u8>,
    own: Option<u8>,
) -> anyhow::Result<Option<Glide>> {
    glide_for(engine.pitched(), engine.name(), start, end, own)
}

/// [`glide`] for a model that does (`pitched`) or does not take a pitch.
fn glide_for(
    pitched: bool,
    name: &str,
    start: Option<u8>,
    end: Option<u8>,
    own: Option<u8>,
) -> anyhow::Result<Option<Glide>> {
    if !pitched {
        if end.is_some() {
            bail!("--pitch-end needs a model that takes a pitch; {name} has no excitation");
        }
        return Ok(None);
    }
    let Some(start) = start.or(own) else {
        if end.is_some() {
            bail!("--pitch-end needs a starting pitch: give --pitch");
        }
        return Ok(None);
    };
    let glide = Glide {
        start: f32::from(start),
        end: f32::from(end.unwrap_or(start)),
    };
    if !glide.in_range() {
        bail!(
            "the model plays MIDI {} to {} (A0 to C8); got {}",
            PITCH_RANGE.start(),
            PITCH_RANGE.end(),
            if PITCH_RANGE.contains(&glide.start) {
                glide.end
            } else {
                glide.start
            }
        );
    }
    Ok(Some(glide))
}

/// Renders `voices` ([`Engine::render`]: voice `v` from random stream `v`) with a
/// progress bar; Ctrl-C cancels. Also the seconds it took and the samples decoded.
fn render_voices(
    engine: &Engine,
    voices: &[Voice<'_>],
    common: &Common,
) -> anyhow::Result<(Vec<Vec<f32>>, f64, usize)> {
    let sampling = common.sampling()?;
    let stop = cancel_on_ctrl_c()?;
    let mut bar = Bar::new(common.quiet);
    let started = Instant::now();
    let streams: Vec<u64> = (0..voices.len() as u64).collect();
    let result = engine.render(
        voices,
        &streams,
        sampling,
        &Control::default(),
        &mut watch(&mut bar, &stop),
    );
    bar.finish();
    let audio = result.map_err(|e| match e {
        engine::Error::Cancelled => anyhow!("cancelled; nothing was written"),
        other => other.into(),
    })?;
    // Whole frames, as decoded, before any was cut to its note's length.
    let decoded = voices
        .iter()
        .map(|v| v.embedding.frames * engine.hop())
        .sum();
    Ok((audio, started.elapsed().as_secs_f64(), decoded))
}

#[derive(Debug, Serialize)]
struct Written {
    file: PathBuf,
    #[serde(flatten)]
    finished: Finished,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    command: &'a str,
    model: &'a str,
    sources: Vec<&'a Prepared>,
    written: Vec<Written>,
    cached_encodings: usize,
    decode_secs: f64,
    samples_per_s: f64,
    realtime_factor: f64,
}

fn print_summary(common: &Common, summary: &Summary<'_>) -> anyhow::Result<ExitCode> {
    let mut out = Output::default();
    if common.json {
        out.line(serde_json::to_string_pretty(summary)?);
    } else {
        for w in &summary.written {
            out.line(format!(
                "wrote {} ({:.2} s, peak {:.1} dBFS{})",
                w.file.display(),
                w.finished.duration_secs,
                w.finished.peak_dbfs,
                if w.finished.gain < 1.0 {
                    format!(", gain {:.2} to avoid clipping", w.finished.gain)
                } else {
                    String::new()
                }
            ));
        }
        out.line(format!(
            "decoded in {:.1} s ({:.0} samples/s, {:.2}× real time per voice)",
            summary.decode_secs, summary.samples_per_s, summary.realtime_factor
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Aggregate samples per second and the real-time factor per voice.
fn rates(voices: usize, total_samples: usize, secs: f64) -> (f64, f64) {
    let per_s = total_samples as f64 / secs.max(1e-9);
    (
        per_s,
        per_s / voices.max(1) as f64 / f64::from(SAMPLE_RATE_HZ),
    )
}

pub fn reconstruct(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    let to_dir = args.inputs.len() > 1
        || args.out.is_dir()
        || args.out.as_os_str().to_string_lossy().ends_with('/');
    let outputs: Vec<PathBuf> = if to_dir {
        let mut seen = std::collections::HashSet::new();
        args.inputs
            .iter()
            .map(|input| {
                let stem = input
                    .file_stem()
                    .ok_or_else(|| anyhow!("{} has no file name", input.display()))?;
                let out = args.out.join(Path::new(stem).with_extension("wav"));
                if !seen.insert(out.clone()) {
                    bail!("two inputs would both be written as {}", out.display());
                }
                Ok(out)
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        vec![args.out.clone()]
    };
    for out in &outputs {
        c.check_output(out, &args.inputs)?;
    }
    let engine = c.engine()?;
    let prepared = args
        .inputs
        .iter()
        .map(|input| {
            if input.is_dir() {
                bail!(
                    "{} is a folder; reconstruct takes sound files",
                    input.display()
                );
            }
            // A model without an excitation transposes by resampling the input.
            let resample_to = args.pitch.filter(|_| !engine.pitched());
            Ok(engine.prepare(input, resample_to, c.read())?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pitches = prepared
        .iter()
        .map(|p| glide(&engine, args.pitch, args.pitch_end, p.pitch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let notes: Vec<&[f32]> = prepared.iter().map(|p| p.samples.as_slice()).collect();
    let own: Vec<Option<u8>> = prepared.iter().map(engine::synth::sounding_pitch).collect();
    let encoded = engine.encode(&notes, &own)?;
    let cached = encoded.iter().filter(|e| e.cached).count();
    let mut embeddings: Vec<Embedding> = encoded.into_iter().map(|e| e.embedding).collect();
    let lengths = engine.fit(&prepared, &mut embeddings, args.seconds)?;
    c.note(format!(
        "decoding {} note(s) with {} on {}",
        embeddings.len(),
        engine.name(),
        engine.decoder_description()
    ));
    // Each as long as its input or as asked (the model works in whole frames).
    let voices: Vec<Voice> = embeddings
        .into_iter()
        .zip(pitches)
        .zip(lengths)
        .map(|((embedding, pitch), length)| Voice {
            length: Some(length),
            ..Voice::of(embedding, pitch)
        })
        .collect();
    let (audio, secs, total) = render_voices(&engine, &voices, c)?;
    if to_dir {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    let mut written = Vec::new();
    for (audio, out) in audio.into_iter().zip(&outputs) {
        let finished = render::write(out, audio, &render, c.overwrite())?;
        written.push(Written {
            file: out.clone(),
            finished,
        });
    }
    let (per_s, rt) = rates(prepared.len(), total, secs);
    print_summary(
        c,
        &Summary {
            command: "reconstruct",
            model: engine.name(),
            sources: prepared.iter().collect(),
            written,
            cached_encodings: cached,
            decode_secs: secs,
            samples_per_s: per_s,
            realtime_factor: rt,
        },
    )
}

pub fn blend(args: &BlendArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    let n = args.sources.len();
    let mode = XyMode::from_bilinear(args.bilinear);
    let weights = blend_weights(&BlendHow {
        sources: n,
        mix: args.mix,
        mix_end: args.mix_end,
        xy: args.xy,
        xy_end: args.xy_end,
        weights: args.weights.clone(),
        mode,
    })?;
    c.check_output(&args.out, &args.sources)?;
    let engine = c.engine()?;
    let spec = NoteSpec {
        pitch: args.pitch,
        velocity: None,
        seconds: args.seconds,
        read: c.read(),
    };
    let sources = engine.sources(&args.sources, &spec)?;
    let prepared = &sources.prepared;
    for (name, p) in ["A", "B", "C", "D"].iter().zip(prepared) {
        c.note(format!("{name}: {}", p.describe()));
    }
    let cached = sources.cached;
    let own = prepared.iter().find_map(engine::synth::sounding_pitch);
    let pitch = glide(&engine, args.pitch, args.pitch_end, own)?;
    if let Some(g) = pitch {
        c.note(format!(
            "the decoder plays {}",
            if g.start == g.end {
                engine::pitch::midi_name(g.start as u8)
            } else {
                format!(
                    "{} gliding to {}",
                    engine::pitch::midi_name(g.start as u8),
                    engine::pitch::midi_name(g.end as u8)
                )
            }
        ));
    }
    // As loud as its sources (a blend of two or more; see engine::synth::level), as long
    // as the longest source or as asked (the model works in whole frames).
    let voice = Voice::blend(&sources, &weights, pitch)?;
    let made = Made {
        command: "blend",
        sources: prepared.iter().collect(),
        cached_encodings: cached,
    };
    render_one(&engine, &voice, &args.out, &render, c, made)
}

/// How a blend's weights were asked for on the command line.
pub(crate) struct BlendHow {
    pub sources: usize,
    pub mix: Option<f32>,
    pub mix_end: Option<f32>,
    pub xy: Option<(f32, f32)>,
    pub xy_end: Option<(f32, f32)>,
    pub weights: Option<Vec<f32>>,
    pub mode: XyMode,
}

/// The weights of a blend: `--mix` (two sources), `--xy` (four) or `--weights`; without
/// any, half and half for two sources and the pad's centre for four.
pub(crate) fn blend_weights(how: &BlendHow) -> anyhow::Result<Weights> {
    let n = how.sources;
    if n == 3 || !(1..=4).contains(&n) {
        bail!("a blend takes two sources (with --mix) or four (with --xy), got {n}");
    }
    let (mix, xy) = match (how.mix, how.xy, &how.weights) {
        (None, None, None) if n == 2 => (Some(0.5), None),
        (None, None, None) if n == 4 => (None, Some((0.5, 0.5))),
        other => (other.0, other.1),
    };
    let weights = if let Some(t) = mix {
        if n != 2 {
            bail!("--mix blends two sources; got {n} (use --xy with four)");
        }
        let check = |t: f32| {
            if (0.0..=1.0).contains(&t) {
                Ok(vec![1.0 - t, t])
            } else {
                Err(anyhow!("--mix must be from 0 to 1, got {t}"))
            }
        };
        match how.mix_end {
            Some(end) => Weights::Morph {
                start: check(t)?,
                end: check(end)?,
            },
            None => Weights::Fixed(check(t)?),
        }
    } else if let Some((x, y)) = xy {
        if n != 4 {
            bail!("--xy blends four sources (A B C D); got {n}");
        }
        let at = |x, y| engine::synth::xy_weights(x, y, how.mode).to_vec();
        match how.xy_end {
            Some((x2, y2)) => Weights::Morph {
                start: at(x, y),
                end: at(x2, y2),
            },
            None => Weights::Fixed(at(x, y)),
        }
    } else if let Some(w) = &how.weights {
        if w.len() != n {
            bail!("--weights has {} values for {n} sources", w.len());
        }
        Weights::Fixed(w.clone())
    } else {
        bail!("say how to blend: --mix, --xy or --weights");
    };
    Ok(weights)
}

pub fn grid(args: &GridArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let [a, b, cc, d] = <[PathBuf; 4]>::try_from(args.corners.clone())
        .map_err(|_| anyhow!("--corners takes four sources: A B C D"))?;
    let spec = GridSpec {
        corners: [a, b, cc, d],
        res: args.res,
        pitches: args.pitches.clone(),
        mode: XyMode::from_bilinear(args.bilinear),
        out_dir: args.out.clone(),
        render: c.render()?,
        sampling: c.sampling()?,
        read: c.read(),
        batch: 0,
        overwrite: c.force,
    };
    let engine = c.engine()?;
    let spec = GridSpec {
        batch: args.batch.unwrap_or(if engine.uses_tensor_decoder() {
            1024
        } else {
            32
        }),
        ..spec
    };
    let started = Instant::now();
    let result = with_progress(c.quiet, |progress, log| {
        grid::run(&engine, &spec, &Control::default(), progress, log)
    })?;
    let report = result.map_err(|e| match e {
        engine::Error::Cancelled => {
            anyhow!("cancelled; the cells written so far are kept, run again to resume")
        }
        other => other.into(),
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = Output::default();
    if c.json {
        out.line(serde_json::to_string_pretty(&report)?);
    } else {
        out.line(format!(
            "{} cells: {} rendered, {} already there; index {}",
            report.cells,
            report.rendered,
            report.skipped,
            report.index.display()
        ));
        out.line(format!(
            "took {secs:.1} s ({:.1} s decoding)",
            report.decode_secs
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn encode(args: &EncodeArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    c.check_output(&args.out, std::slice::from_ref(&args.input))?;
    let engine = c.engine()?;
    let prepared = engine.prepare(&args.input, args.pitch, c.read())?;
    c.note(prepared.describe());
    let encoded = engine.encode(
        &[prepared.samples.as_slice()],
        &[engine::synth::sounding_pitch(&prepared)],
    )?;
    let e = &encoded
        .first()
        .ok_or_else(|| anyhow!("nothing was encoded"))?
        .embedding;
    npy::write(&args.out, &e.data, e.frames, e.channels, c.overwrite())?;
    let mut out = Output::default();
    if c.json {
        out.line(serde_json::to_string_pretty(&serde_json::json!({
            "command": "encode",
            "model": engine.name(),
            "source": prepared,
            "file": args.out,
            "frames": e.frames,
            "channels": e.channels,
            "cached": encoded[0].cached,
        }))?);
    } else {
        out.line(format!(
            "wrote {} ({} frames × {} channels{})",
            args.out.display(),
            e.frames,
            e.channels,
            if encoded[0].cached {
                ", from the cache"
            } else {
                ""
            }
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn decode_npy(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    c.check_output(&args.out, std::slice::from_ref(&args.input))?;
    let engine = c.engine()?;
    let (data, frames, channels) = npy::read(&args.input)?;
    let want = engine.bottleneck();
    if channels != want || frames == 0 {
        bail!(
            "{}: this model decodes [frames, {want}] embeddings, the file holds [{frames}, {channels}]",
            args.input.display()
        );
    }
    let embedding = Embedding {
        frames,
        channels,
        data,
    };
    let pitch = glide(&engine, args.pitch, args.pitch_end, None)?;
    let voice = Voice::of(embedding, pitch);
    let made = Made {
        command: "decode",
        sources: Vec::new(),
        cached_encodings: 0,
    };
    render_one(&engine, &voice, &args.out, &render, c, made)
}

/// What a one-note command made its note from, for its summary.
struct Made<'a> {
    command: &'a str,
    sources: Vec<&'a Prepared>,
    cached_encodings: usize,
}

/// Renders `voice`, writes it to `out` and prints the summary.
fn render_one(
    engine: &Engine,
    voice: &Voice<'_>,
    out: &Path,
    render: &RenderOptions,
    c: &Common,
    made: Made<'_>,
) -> anyhow::Result<ExitCode> {
    let (audio, secs, total) = render_voices(engine, std::slice::from_ref(voice), c)?;
    let audio = audio.into_iter().next().unwrap_or_default();
    let finished = render::write(out, audio, render, c.overwrite())?;
    let (per_s, rt) = rates(1, total, secs);
    print_summary(
        c,
        &Summary {
            command: made.command,
            model: engine.name(),
            sources: made.sources,
            written: vec![Written {
                file: out.to_path_buf(),
                finished,
            }],
            cached_encodings: made.cached_encodings,
            decode_secs: secs,
            samples_per_s: per_s,
            realtime_factor: rt,
        },
    )
}
