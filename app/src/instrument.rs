//! `timbrel instrument`: a blend exported as a playable SoundFont 2 or SFZ instrument.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{anyhow, bail};
use autoencoder::Control;
use engine::instrument::{self, InstrumentSpec};
use engine::synth::XyMode;

use crate::output::Output;
use crate::synth::{BlendHow, Common, blend_weights, parse_pitch, parse_xy, with_progress};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").args(["mix", "xy", "weights"])))]
pub struct Args {
    /// The blend's sources: two (A B: half and half, or --mix) or four (A B C D, the XY
    /// pad's corners: its centre, or --xy); sound files or sample-pack folders (a pack
    /// gives, at each key and velocity, its nearest note).
    #[arg(long, num_args = 2..=4, required = true, value_name = "SOURCE")]
    pub corners: Vec<PathBuf>,
    /// Two-way mix: 0 is A, 1 is B.
    #[arg(long, value_name = "T")]
    pub mix: Option<f32>,
    /// XY pad position (A at 0,0; B at 1,0; C at 0,1; D at 1,1).
    #[arg(long, value_name = "X,Y", value_parser = parse_xy)]
    pub xy: Option<(f32, f32)>,
    /// Explicit weights, one per source (normalised).
    #[arg(long, value_name = "W,W,...", value_delimiter = ',')]
    pub weights: Option<Vec<f32>>,
    /// Bilinear XY weights instead of NSynth Super's distance cones.
    #[arg(long)]
    pub bilinear: bool,
    /// The keys the instrument plays, LOW-HIGH (MIDI numbers or names: 36-84, C2-C6).
    #[arg(long, default_value = "36-84", value_parser = parse_keys)]
    pub keys: (u8, u8),
    /// Render a note every this many semitones (and at the top key); the sampler shifts
    /// the nearest one for the keys between.
    #[arg(long, default_value_t = 3)]
    pub every: u8,
    /// Velocity layers, rising (each covers the velocities above the previous one up to
    /// itself; a pack's notes nearest each velocity are used).
    #[arg(long, value_delimiter = ',', default_value = "64,100,127")]
    pub velocities: Vec<u8>,
    /// Length of each note in seconds (default: the sources'): the sustain of the
    /// embeddings is stretched or shrunk, the attack and release kept.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f32>,
    /// Release after a key is let go, in seconds.
    #[arg(long, default_value_t = 0.3, value_name = "S")]
    pub release: f32,
    /// Notes decoded together (default: 16 on the CPU, 256 on a GPU).
    #[arg(long)]
    pub batch: Option<usize>,
    /// The instrument: NAME.sf2 (one file), or NAME.sfz (beside it NAME_samples/ holds
    /// the WAVs). Notes render into NAME.sf2.parts/ first: an interrupted export run
    /// again resumes there.
    #[arg(short, long, value_name = "NAME.sf2|NAME.sfz")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// `LOW-HIGH`, each a MIDI number or a note name.
fn parse_keys(s: &str) -> Result<(u8, u8), String> {
    // Note names may hold a '-' only at their octave (C-1), so split at the first '-'
    // that follows a digit or a name.
    let split = s
        .char_indices()
        .skip(1)
        .find(|&(i, c)| c == '-' && s[..i].chars().last().is_some_and(|p| p.is_ascii_digit()))
        .map(|(i, _)| i)
        .ok_or_else(|| format!("expected LOW-HIGH (e.g. 36-84 or C2-C6), got {s:?}"))?;
    let (lo, hi) = (parse_pitch(&s[..split])?, parse_pitch(&s[split + 1..])?);
    if lo > hi {
        return Err(format!("the range {s:?} runs downwards"));
    }
    Ok((lo, hi))
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    if instrument::Format::of(&args.out).is_none() {
        bail!(
            "{}: an instrument is written as .sf2 or .sfz; name it so",
            args.out.display()
        );
    }
    let weights = blend_weights(&BlendHow {
        sources: args.corners.len(),
        mix: args.mix,
        mix_end: None,
        xy: args.xy,
        xy_end: None,
        weights: args.weights.clone(),
        mode: XyMode::from_bilinear(args.bilinear),
    })?;
    let mut velocities = args.velocities.clone();
    velocities.sort_unstable();
    velocities.dedup();
    if velocities.iter().any(|v| !(1..=127).contains(v)) {
        bail!("--velocities are 1 to 127, got {:?}", args.velocities);
    }
    if args.every == 0 {
        bail!("--every must be 1 or more");
    }
    let engine = c.engine()?;
    let spec = InstrumentSpec {
        sources: args.corners.clone(),
        weights,
        keys: args.keys,
        every: args.every,
        velocities,
        seconds: args.seconds,
        release_secs: args.release,
        out: args.out.clone(),
        render: c.render()?,
        sampling: c.sampling()?,
        read: c.read(),
        batch: args.batch.unwrap_or(if engine.uses_tensor_decoder() {
            256
        } else {
            16
        }),
        overwrite: c.force,
    };
    let started = Instant::now();
    let result = with_progress(c.quiet, |progress, log| {
        instrument::run(&engine, &spec, &Control::default(), progress, log)
    })?;
    let report = result.map_err(|e| match e {
        engine::Error::Cancelled => anyhow!(
            "cancelled; the notes rendered so far are kept in {}, run again to resume",
            instrument::parts_dir(&args.out).display()
        ),
        other => other.into(),
    })?;
    let mut out = Output::default();
    if c.json {
        out.line(serde_json::to_string_pretty(&report)?);
    } else {
        out.line(format!(
            "wrote {}{}: {} keys, {} notes ({} with a sustain loop), {} zones, gain {:+.1} dB",
            report.file.display(),
            report
                .samples_dir
                .as_ref()
                .map_or_else(String::new, |d| format!(" and {}", d.display())),
            report.keys,
            report.notes,
            report.looped,
            report.zones,
            report.gain_db
        ));
        out.line(format!(
            "rendered {} notes in {:.1} s ({:.1} s decoding)",
            report.rendered,
            started.elapsed().as_secs_f64(),
            report.decode_secs
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ranges_parse_numbers_and_names() {
        assert_eq!(parse_keys("36-84"), Ok((36, 84)));
        assert_eq!(parse_keys("C2-C6"), Ok((36, 84)));
        assert_eq!(parse_keys("F#3-A4"), Ok((54, 69)));
        assert!(parse_keys("84-36").is_err());
        assert!(parse_keys("36").is_err());
    }
}
