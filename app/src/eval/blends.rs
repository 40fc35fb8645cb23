//! `timbrel eval --blends`: pairs of notes blended 50/50 through the synthesizer, as
//! `timbrel blend` plays them, and scored against their sources.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Context, bail};
use autoencoder::{Control, Sampling};
use engine::eval::{
    BlendReport, BlendScore, MelSpectrogram, PairNote, pair_notes, score_blend, summarise_blends,
};
use engine::nsynth::Dataset;
use engine::synth::level::frame_levels;
use engine::synth::{DecoderKind, Engine, Glide, ModelSource, Sources, Voice, Weights};

use super::Args;
use crate::output::Output;

/// Blends `args.blends` pairs of `candidates` (of two instruments, at one pitch) with the
/// model in `dir` (played by `kind`): each source encoded at its own pitch, the two
/// embeddings mixed 50/50, the mix decoded at that pitch, the whole note. The report and
/// the blends' audio.
pub(super) fn blend_pairs(
    args: &Args,
    dir: &Path,
    kind: DecoderKind,
    device: &candle_core::Device,
    ds: &Dataset,
    candidates: &[String],
) -> anyhow::Result<(BlendReport, Vec<Vec<f32>>)> {
    let pitched: Vec<&String> = candidates
        .iter()
        .filter(|k| !ds.examples[*k].unpitched)
        .collect();
    let notes: Vec<PairNote> = pitched
        .iter()
        .map(|k| {
            let e = &ds.examples[*k];
            PairNote {
                instrument: e.instrument,
                pitch: e.pitch,
                velocity: e.velocity,
            }
        })
        .collect();
    let pairs = pair_notes(&notes, args.blends, args.seed);
    if pairs.is_empty() {
        bail!(
            "eval --blends: no two instruments have a pitched note at the same pitch among the notes evaluated in {}",
            args.data.display()
        );
    }
    // No cache: an evaluation should not fill the user's with notes they never play.
    let engine = Engine::load(&ModelSource::Dir(dir.to_path_buf()), Some(kind), device)
        .context("eval --blends")?
        .with_cache(None);
    let sources: Vec<Vec<f32>> = pairs
        .iter()
        .flat_map(|&(i, j)| [pitched[i], pitched[j]])
        .map(|k| ds.load(k))
        .collect::<Result<_, _>>()?;
    let pitches: Vec<Option<u8>> = pairs
        .iter()
        .flat_map(|&(i, _)| [Some(notes[i].pitch); 2])
        .collect();
    let refs: Vec<&[f32]> = sources.iter().map(Vec::as_slice).collect();
    let encoded = engine.encode(&refs, &pitches)?;
    let half = Weights::Fixed(vec![0.5, 0.5]);
    // Each pair as `timbrel blend` plays it: brought to its sources' mean level in dB,
    // frame by frame (the sources as encoded, so aligned with the blend; not for a model
    // whose frames carry the level, see `Engine::level_match`: its envelope is brought
    // to its sources' whole-note levels instead, `Engine::loudness_bands`), the whole
    // note, as long as its sources. A model without an excitation is not given a pitch:
    // both sources are at it already.
    let hop = engine.hop();
    let pair_sources: Vec<Sources> = sources
        .chunks_exact(2)
        .zip(encoded.chunks_exact(2))
        .map(|(ab, e)| Sources {
            prepared: Vec::new(),
            embeddings: e.iter().map(|e| e.embedding.clone()).collect(),
            cached: 0,
            length: ab[0].len().max(ab[1].len()),
            levels: if args.no_level_match || !engine.level_match() {
                Vec::new()
            } else {
                ab.iter()
                    .zip(e)
                    .map(|(note, e)| frame_levels(note, hop, e.embedding.frames))
                    .collect()
            },
            hop,
            envelope_bands: if args.no_level_match {
                0
            } else {
                engine.loudness_bands()
            },
            // Both sources are at the blend's pitch: no envelope moves.
            shift_bands: 0,
            pitches: Vec::new(),
        })
        .collect();
    let voices = pairs
        .iter()
        .zip(&pair_sources)
        .map(|(&(i, _), s)| {
            let glide = engine
                .pitched()
                .then(|| Glide::at(f32::from(notes[i].pitch)));
            Voice::blend(s, &half, glide)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let streams: Vec<u64> = (0..pairs.len() as u64).collect();
    let sampling = Sampling {
        temperature: args.temperature,
        seed: args.seed,
    };
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(100).with_style(
            indicatif::ProgressStyle::with_template("blending {bar:30} {percent:>3}%  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    };
    let audio = engine.render(&voices, &streams, sampling, &Control::default(), &mut |p| {
        bar.set_position(p.done * 100 / p.total.max(1));
        ControlFlow::Continue(())
    })?;
    bar.finish_and_clear();
    let mel = MelSpectrogram::new();
    let mut scores = Vec::with_capacity(pairs.len());
    for ((&(i, j), ab), blended) in pairs.iter().zip(sources.chunks_exact(2)).zip(&audio) {
        let (a, b) = (&ds.examples[pitched[i]], &ds.examples[pitched[j]]);
        let hz = autoencoder::excitation::midi_to_hz(f32::from(a.pitch));
        scores.push(BlendScore {
            a: a.note_str.clone(),
            b: b.note_str.clone(),
            instrument_a: a.instrument_str.clone(),
            instrument_b: b.instrument_str.clone(),
            pitch: a.pitch,
            velocity_a: a.velocity,
            velocity_b: b.velocity,
            figures: score_blend(&mel, &ab[0], &ab[1], blended, hz),
        });
    }
    let figures: Vec<_> = scores.iter().map(|s| s.figures).collect();
    let report = BlendReport {
        asked: args.blends,
        summary: summarise_blends(&figures),
        pairs: scores,
    };
    Ok((report, audio))
}

/// The blends' lines of the text report.
pub(super) fn print(out: &mut Output, report: &BlendReport) {
    let Some(s) = &report.summary else {
        return;
    };
    out.line(format!(
        "blends={} (of {} asked: notes of two instruments at one pitch, like velocities preferred, mixed 50/50)",
        s.blends, report.asked
    ));
    out.line(format!("blends_in_tune={:.3}", s.in_tune));
    out.line(format!(
        "blend_loudness_error_db={:.2} (mean |dB| against the sources' mean level; {:.3} within 3 dB)",
        s.mean_abs_loudness_error_db, s.within_3_db
    ));
    out.line(format!(
        "blends_nearer_average={:.3} (nearer the sources' spectral average than either source)",
        s.nearer_average
    ));
    out.line(format!(
        "blend_distance_db: sources {:.2}, their average {:.2}",
        s.mean_distance_sources_db, s.mean_distance_average_db
    ));
}
