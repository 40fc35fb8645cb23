//! `timbrel dataset ...`: NSynth-layout note datasets.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use engine::fsutil::Overwrite;
use engine::nsynth::{Dataset, FAMILIES, SOURCES};
use engine::pack_dataset::{PackDatasetOptions, pack_dataset};
use engine::soundfont::{DEFAULT_PROGRAMS, GAIN, RenderOptions, render_dataset};

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Render NSynth-style notes from a SoundFont: note on for 3 s, off, 1 s of release,
    /// 4 s at 16 kHz mono, written in NSynth's layout (examples.json + audio/*.wav).
    /// Notes outside an instrument's range (silent renders) are skipped and counted.
    Render(RenderArgs),
    /// Make a sample pack a dataset in NSynth's layout (real recordings to train or
    /// evaluate on): each folder under the pack is one instrument (a drum kit, a
    /// multisampled instrument), each sound file one note, its first 4 s at 16 kHz mono.
    /// Pitch from the file name or YIN (none: unpitched); the pack is only read.
    Pack(PackArgs),
    /// Summarise a dataset in NSynth's layout (a render, or the real NSynth download).
    Info(InfoArgs),
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// The SoundFont (.sf2), e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2.
    #[arg(long, value_name = "FILE.sf2")]
    pub soundfont: PathBuf,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// General MIDI programs, 0-based: a list and/or ranges (0,24,40-47).
    /// Default: 0-119 (120-127 are sound effects, not instruments).
    #[arg(long, value_name = "LIST")]
    pub programs: Option<String>,
    /// Render --programs as the drum kits of bank 128 on the percussion channel (FluidR3:
    /// 0 Standard, 8 Room, 16 Power, 24 Electronic, 25 TR-808, 32 Jazz, 40 Brush,
    /// 48 Orchestra); --pitches are then the drums' keys (GM: 35-81), and the notes are
    /// marked unpitched.
    #[arg(long)]
    pub drum_kits: bool,
    /// MIDI pitches: a list and/or ranges.
    #[arg(long, default_value = "21-108", value_name = "LIST")]
    pub pitches: String,
    /// MIDI velocities: a list and/or ranges.
    #[arg(long, default_value = "25,50,75,100,127", value_name = "LIST")]
    pub velocities: String,
    /// Render only N notes of the grid, drawn at random with --seed.
    #[arg(long, value_name = "N")]
    pub sample: Option<usize>,
    /// Seed of --sample's draw. The output depends only on the SoundFont and these flags.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a dataset already in --out.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The sample pack's folder, e.g. /usr/share/hydrogen/data/drumkits.
    #[arg(long, value_name = "DIR")]
    pub pack: PathBuf,
    /// Output folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Every note unpitched (drums), whatever its name or YIN says.
    #[arg(long)]
    pub unpitched: bool,
    /// NSynth instrument family of every note (bass, brass, flute, guitar, keyboard,
    /// mallet, organ, reed, string, synth_lead, vocal). Default: mallet with --unpitched
    /// (as the rendered drum kits), else keyboard.
    #[arg(long, value_name = "NAME")]
    pub family: Option<String>,
    /// NSynth instrument source: acoustic, electronic or synthetic.
    #[arg(long, default_value = "acoustic", value_name = "NAME")]
    pub source: String,
    /// Replace a dataset already in --out.
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The dataset's folder (holding examples.json and audio/).
    pub dir: PathBuf,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Render(args) => render(args),
        Command::Pack(args) => pack(args),
        Command::Info(args) => info(args),
    }
}

/// `"21-24,60"` → `[21, 22, 23, 24, 60]`, each at most `max`.
pub fn parse_list(text: &str, max: u8, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let value = |s: &str| -> anyhow::Result<u8> {
            let v: u8 = s
                .trim()
                .parse()
                .with_context(|| format!("{what}: {s:?} is not a number from 0 to {max}"))?;
            if v > max {
                bail!("{what}: {v} is more than {max}");
            }
            Ok(v)
        };
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (value(lo)?, value(hi)?);
                if lo > hi {
                    bail!("{what}: the range {part} runs backwards");
                }
                out.extend(lo..=hi);
            }
            None => out.push(value(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        bail!("{what}: the list {text:?} is empty");
    }
    Ok(out)
}

fn render(args: &RenderArgs) -> anyhow::Result<ExitCode> {
    let programs = match &args.programs {
        Some(list) => parse_list(list, 127, "--programs")?,
        None => DEFAULT_PROGRAMS.collect(),
    };
    let options = RenderOptions {
        programs,
        drum_kits: args.drum_kits,
        pitches: parse_list(&args.pitches, 127, "--pitches")?,
        velocities: parse_list(&args.velocities, 127, "--velocities")?,
        sample: args.sample,
        seed: args.seed,
        overwrite: if args.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        },
    };
    let bar = progress_bar(args.quiet);
    let started = Instant::now();
    let summary = render_dataset(&args.soundfont, &args.out, &options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .context("dataset render")?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let mut out = Output::default();
    out.line(format!(
        "{} notes written, {} silent renders skipped (outside an instrument's range), {} clipped, in {secs:.1} s",
        summary.written, summary.skipped_silent, summary.clipped
    ));
    out.line(format!(
        "gain {GAIN} on every note; dataset: {}",
        summary.examples_path.display()
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} notes  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    }
}

fn named(list: &[&str], name: &str, what: &str) -> anyhow::Result<u8> {
    match list.iter().position(|n| *n == name) {
        Some(i) => Ok(i as u8),
        None => bail!("{what}: {name:?} is not one of {}", list.join(", ")),
    }
}

fn pack(args: &PackArgs) -> anyhow::Result<ExitCode> {
    let family = match &args.family {
        Some(name) => named(&FAMILIES, name, "--family")?,
        None => named(
            &FAMILIES,
            if args.unpitched { "mallet" } else { "keyboard" },
            "--family",
        )?,
    };
    let options = PackDatasetOptions {
        family,
        source: named(&SOURCES, &args.source, "--source")?,
        unpitched: args.unpitched,
        overwrite: if args.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        },
    };
    let bar = progress_bar(args.quiet);
    let started = Instant::now();
    let summary = pack_dataset(&args.pack, &args.out, &options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .context("dataset pack")?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let mut out = Output::default();
    out.line(format!(
        "{} notes of {} instruments written ({} unpitched, {} longer than 4 s cut), {} near-silent files left out, in {secs:.1} s",
        summary.written,
        summary.instruments.len(),
        summary.unpitched,
        summary.cut,
        summary.near_silent
    ));
    for (i, name) in summary.instruments.iter().enumerate() {
        out.line(format!("  instrument {i}: {name}"));
    }
    for (_, why) in &summary.unreadable {
        out.line(format!("  left out: {why}"));
    }
    out.line(format!("dataset: {}", summary.examples_path.display()));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open(&args.dir).context("dataset info")?;
    let mut families = [0usize; FAMILIES.len()];
    let mut instruments = std::collections::BTreeSet::new();
    let (mut lo, mut hi) = (u8::MAX, 0u8);
    for e in ds.examples.values() {
        if let Some(count) = families.get_mut(usize::from(e.instrument_family)) {
            *count += 1;
        }
        instruments.insert(e.instrument);
        lo = lo.min(e.pitch);
        hi = hi.max(e.pitch);
    }
    let mut out = Output::default();
    out.line(format!(
        "{}: {} notes, {} instruments, pitches {lo}-{hi}",
        args.dir.display(),
        ds.examples.len(),
        instruments.len()
    ));
    for (family, count) in FAMILIES.iter().zip(families) {
        if count > 0 {
            out.line(format!("  {family:<11} {count}"));
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_list;

    #[test]
    fn lists() {
        assert_eq!(
            parse_list("21-24,60", 127, "x").unwrap(),
            [21, 22, 23, 24, 60]
        );
        assert_eq!(parse_list("5, 3,3", 127, "x").unwrap(), [3, 5]);
        assert!(
            parse_list("200", 127, "x")
                .unwrap_err()
                .to_string()
                .contains("more than 127")
        );
        assert!(
            parse_list("9-3", 127, "x")
                .unwrap_err()
                .to_string()
                .contains("backwards")
        );
        assert!(parse_list("a", 127, "x").is_err());
        assert!(
            parse_list("", 127, "x")
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
    }
}
