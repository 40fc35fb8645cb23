//! `timbrel pack ...`: sample packs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use engine::audio::ReadOptions;
use engine::pack::{self, Outcome};
use engine::pitch::{Pitch, midi_name};

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the notes of a sample pack (a folder, searched recursively): format,
    /// duration, pitch and velocity, and a one-line error for each file that cannot be
    /// used. Exits 0 when at least one note was read. Writes nothing.
    Scan(ScanArgs),
}

#[derive(Debug, clap::Args)]
pub struct ScanArgs {
    /// The pack's folder.
    pub dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds of each file to read (pitch detection looks at these).
    #[arg(long, default_value_t = engine::audio::DEFAULT_MAX_SECS, value_name = "SECS")]
    pub max_secs: f64,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Scan(args) => scan(args),
    }
}

fn pitch_text(pitch: &Pitch) -> String {
    match pitch {
        Pitch::Name { midi } => format!("{} ({midi}, name)", midi_name(*midi)),
        Pitch::Detected { midi, hz } => format!("{} ({midi}, {hz:.1} Hz)", midi_name(*midi)),
        Pitch::Unpitched => "unpitched".into(),
    }
}

fn scan(args: &ScanArgs) -> anyhow::Result<ExitCode> {
    let options = ReadOptions {
        max_secs: args.max_secs,
    };
    let scan = pack::scan(&args.dir, options).context("pack scan")?;
    let notes = scan.notes().count();
    let errors = scan.errors().count();
    let mut out = Output::default();
    if args.json {
        out.line(serde_json::to_string_pretty(&scan)?);
    } else {
        let width = scan
            .entries
            .iter()
            .map(|e| e.file.display().to_string().chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 60);
        out.line(format!(
            "{:<width$}  {:<34}  {:>8}  {:<22}  {:>3}  {:>6}",
            "FILE", "FORMAT", "DURATION", "PITCH", "VEL", "PEAK"
        ));
        for entry in &scan.entries {
            if let Outcome::Note(n) = &entry.outcome {
                let velocity = n.velocity.map_or("-".to_string(), |v| v.to_string());
                let quiet = if n.near_silent { "  near-silent" } else { "" };
                out.line(format!(
                    "{:<width$}  {:<34}  {:>6.2} s  {:<22}  {:>3}  {:>6.1}{quiet}",
                    entry.file.display(),
                    n.format.to_string(),
                    n.duration_secs,
                    pitch_text(&n.pitch),
                    velocity,
                    n.peak_dbfs,
                ));
            }
        }
        if errors > 0 {
            out.line("\nfiles that cannot be used:");
            for (_, message) in scan.errors() {
                out.line(format!("  {message}"));
            }
        }
        let mut summary = format!(
            "\n{notes} notes, {errors} unusable, {} other files passed over",
            scan.other_files
        );
        if scan.not_scanned > 0 {
            summary += &format!(", {} audio files beyond the scan limit", scan.not_scanned);
        }
        out.line(format!("{summary} in {}", args.dir.display()));
    }
    out.flush()?;
    Ok(if notes > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
