//! `timbrel`: the desktop synthesizer's binary. With no arguments it opens the window;
//! with a subcommand it works on the command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod allocator;

mod bench;
mod bench_live;
mod cache;
mod check_golden;
mod dataset;
mod eval;
mod gui;
mod instrument;
mod model;
mod output;
mod pack;
mod synth;
mod train;
mod words;

/// Timbrel: blend instruments with NSynth's WaveNet autoencoder.
#[derive(Debug, Parser)]
#[command(name = "timbrel", version, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check parity with Magenta's reference implementation on a fixture directory
    /// (config.json, weights.safetensors, io.safetensors); exits non-zero if any output
    /// is off by more than 1e-4.
    CheckGolden(check_golden::Args),
    /// Note datasets in NSynth's layout: render from a SoundFont, summarise.
    #[command(subcommand)]
    Dataset(dataset::Command),
    /// Models: the embedded default or a model directory.
    #[command(subcommand)]
    Model(model::Command),
    /// Evaluate a model: teacher-forced NLL, and reconstructions scored by pitch accuracy
    /// and log-mel distance.
    Eval(eval::Args),
    /// Benchmarks: training and decoding speed.
    #[command(subcommand)]
    Bench(bench::Command),
    /// Train a model on datasets in NSynth's layout, with checkpoints and --resume.
    Train(train::Args),
    /// Train a Parallel WaveNet student on the notes' spectra (multi-resolution spectral
    /// and power losses) and/or distilled from a WaveNet teacher, with checkpoints and
    /// --resume.
    TrainStudent(train::StudentArgs),
    /// Sample packs: folders of notes.
    #[command(subcommand)]
    Pack(pack::Command),
    /// The embedding cache: `info` (where, how much, its bound) and `clear`.
    #[command(subcommand)]
    Cache(cache::Command),
    /// Encode and decode sound files as they are (what the model makes of them).
    Reconstruct(synth::ReconstructArgs),
    /// Blend two instruments (--mix) or four on the XY pad (--xy) into a new note.
    Blend(synth::BlendArgs),
    /// Pre-render every cell of an XY grid over four corners at several pitches.
    Grid(synth::GridArgs),
    /// Export a blend as a playable instrument: a SoundFont 2 (.sf2) or an SFZ (.sfz and
    /// a folder of WAVs), notes rendered at sampled keys and velocities, looped where
    /// they sustain.
    Instrument(instrument::Args),
    /// Encode a note into its embedding (.npy, [frames, channels] float32: 16 channels for
    /// NSynth's models; a student adds its measured channels).
    Encode(synth::EncodeArgs),
    /// Decode an embedding (.npy) into a note.
    Decode(synth::DecodeArgs),
    /// Open the window (what `timbrel` with no arguments does), with options.
    Gui(GuiArgs),
}

#[derive(Debug, clap::Args)]
struct GuiArgs {
    /// Model directory (default: the embedded model).
    #[arg(long, value_name = "DIR")]
    model: Option<std::path::PathBuf>,
    /// Do not open an audio output.
    #[arg(long)]
    no_audio: bool,
    /// Do not connect a MIDI keyboard (by default the first MIDI input port is used).
    #[arg(long)]
    no_midi: bool,
    /// Start with a fresh session (the demo notes) instead of the last one.
    #[arg(long)]
    fresh: bool,
    /// Render the current blend as soon as the model is loaded (screenshots, demos).
    #[arg(long)]
    render_on_start: bool,
    /// Where the model runs: cpu, or cuda (a build with the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> ExitCode {
    allocator::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::CheckGolden(args)) => check_golden::run(&args),
        Some(Command::Pack(command)) => pack::run(&command),
        Some(Command::Cache(command)) => cache::run(&command),
        Some(Command::Dataset(command)) => dataset::run(&command),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::TrainStudent(args)) => train::run_student(&args),
        Some(Command::Bench(command)) => bench::run(&command),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Model(command)) => model::run(&command),
        Some(Command::Reconstruct(args)) => synth::reconstruct(&args),
        Some(Command::Blend(args)) => synth::blend(&args),
        Some(Command::Grid(args)) => synth::grid(&args),
        Some(Command::Instrument(args)) => instrument::run(&args),
        Some(Command::Encode(args)) => synth::encode(&args),
        Some(Command::Decode(args)) => synth::decode_npy(&args),
        Some(Command::Gui(args)) => engine::device::by_name(&args.device)
            .map_err(anyhow::Error::from)
            .and_then(|device| {
                gui::run(gui::Options {
                    model: args.model.map_or(
                        engine::synth::ModelSource::Default,
                        engine::synth::ModelSource::Dir,
                    ),
                    audio: !args.no_audio,
                    midi: !args.no_midi,
                    restore: !args.fresh,
                    render_on_start: args.render_on_start,
                    device,
                    ..gui::Options::default()
                })
            }),
        None => gui::run(gui::Options::default()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("timbrel: {}", words::explain(&err));
            ExitCode::FAILURE
        }
    }
}
