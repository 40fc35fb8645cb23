//! The synthesizer commands' flags (the shared ones are [`super::Common`]).

use std::path::PathBuf;

use super::{Common, parse_pitch, parse_xy};

#[derive(Debug, clap::Args)]
pub struct ReconstructArgs {
    /// Sound files to encode and decode as they are (several are decoded as one batch).
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// Output WAV, or a folder (ending in '/' or existing) where each output keeps its
    /// input's name.
    #[arg(short, long, value_name = "OUT")]
    pub out: PathBuf,
    /// Play the notes at this pitch instead of their own (MIDI number or name): with a
    /// model that takes a pitch, the timbre is kept and the decoder is given the pitch;
    /// with one that does not, the input is resampled to it.
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide: the pitch moves from --pitch (or the note's own) to this across the note
    /// (models that take a pitch).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch_end: Option<u8>,
    /// Length of each note in seconds (default: its input's): the sustain of the
    /// embedding is stretched or shrunk, the attack and release kept.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f32>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").args(["mix", "xy", "weights"])))]
pub struct BlendArgs {
    /// Two sources (A B: half and half, or --mix) or four (A B C D, the XY pad's corners:
    /// the pad's centre, or --xy): sound files, or sample-pack folders (the note nearest
    /// --pitch is used).
    #[arg(required = true, num_args = 2..=4, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Two-way mix: 0 is A, 1 is B.
    #[arg(long, value_name = "T")]
    pub mix: Option<f32>,
    /// Morph: the mix moves from --mix at the start to this at the end of the note.
    #[arg(long, value_name = "T", requires = "mix")]
    pub mix_end: Option<f32>,
    /// XY pad position (A at 0,0; B at 1,0; C at 0,1; D at 1,1).
    #[arg(long, value_name = "X,Y", value_parser = parse_xy)]
    pub xy: Option<(f32, f32)>,
    /// Morph: the puck moves from --xy at the start to this at the end of the note.
    #[arg(long, value_name = "X,Y", value_parser = parse_xy, requires = "xy")]
    pub xy_end: Option<(f32, f32)>,
    /// Bilinear XY weights instead of NSynth Super's distance cones.
    #[arg(long)]
    pub bilinear: bool,
    /// Explicit weights, one per source (normalised).
    #[arg(long, value_name = "W,W,...", value_delimiter = ',')]
    pub weights: Option<Vec<f32>>,
    /// Pitch of the blend (MIDI number or name such as C4 or F#3). A model that takes a
    /// pitch (the default model) is given it and the sources are encoded at their own;
    /// for one that does not, sources at another pitch are shifted to it by resampling.
    /// Default: the first source's pitch.
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide: the pitch moves from --pitch to this across the note (models that take a
    /// pitch).
    #[arg(long, value_parser = parse_pitch, requires = "pitch")]
    pub pitch_end: Option<u8>,
    /// Length of the note in seconds (default: the longest source's): the sustain of each
    /// source's embedding is stretched or shrunk, its attack and release kept.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f32>,
    #[arg(short, long, value_name = "OUT.wav")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct GridArgs {
    /// The four corners A B C D: sound files or sample-pack folders.
    #[arg(long, num_args = 4, required = true, value_name = "SOURCE")]
    pub corners: Vec<PathBuf>,
    /// Cells per side.
    #[arg(long, default_value_t = 5)]
    pub res: usize,
    /// Pitches (MIDI numbers or names), comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_pitch, default_value = "60")]
    pub pitches: Vec<u8>,
    /// Bilinear XY weights instead of NSynth Super's distance cones.
    #[arg(long)]
    pub bilinear: bool,
    /// Voices decoded together; each batch is written before the next starts (default:
    /// 32 on the CPU, 1024 on a GPU, which needs wide batches to pay for its launches).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Output folder (cells already there are skipped, unless --force).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    /// A sound file, or a sample-pack folder (the note nearest --pitch).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Pitch to take from a folder or shift a file to (MIDI number or name).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// The embedding, as a numpy .npy [frames, channels] float32 (the model's channels).
    #[arg(short, long, value_name = "EMB.npy")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// An embedding .npy [frames, 16] (float32 or float64).
    #[arg(value_name = "EMB.npy")]
    pub input: PathBuf,
    /// The pitch to play it at, for a model that takes a pitch (an embedding carries
    /// none; without it the note is decoded unpitched).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide from --pitch to this across the note.
    #[arg(long, value_parser = parse_pitch, requires = "pitch")]
    pub pitch_end: Option<u8>,
    #[arg(short, long, value_name = "OUT.wav")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}
