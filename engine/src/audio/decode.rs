//! Decoding with symphonia, bounded in time and memory.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::{Note, SAMPLE_RATE_HZ, SILENT_PEAK, header, peak, resample};
use crate::error::{Error, Result};

/// A note needs at most this much audio by default (NSynth notes are 4 s).
pub const DEFAULT_MAX_SECS: f64 = 4.0;

/// Packets that fail to decode before we call a file corrupt rather than skip them.
const MAX_BAD_PACKETS: usize = 16;

/// The most channels we mix (symphonia itself knows at most 26 positions).
const MAX_CHANNELS: usize = 64;

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadOptions {
    /// Read at most this many seconds from the start.
    pub max_secs: f64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_secs: DEFAULT_MAX_SECS,
        }
    }
}

/// What the file was before we made it 16 kHz mono.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFormat {
    /// Container or stream format: `wav`, `flac`, `ogg`, `mp3`, `aiff`.
    pub container: String,
    /// Codec as symphonia names it: `pcm_s16le`, `flac`, `vorbis`, `mp3`...
    pub codec: String,
    pub sample_rate_hz: u32,
    pub channels: usize,
    /// Bits per sample of PCM-like codecs.
    pub bits_per_sample: Option<u32>,
    /// The whole file's duration, where the header says it.
    pub duration_secs: Option<f64>,
}

impl std::fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.container, self.codec)?;
        if let Some(bits) = self.bits_per_sample {
            write!(f, " {bits}-bit")?;
        }
        let channels = match self.channels {
            1 => "mono".to_string(),
            2 => "stereo".to_string(),
            n => format!("{n} ch"),
        };
        write!(f, " {} Hz {channels}", self.sample_rate_hz)
    }
}

fn container_name(path: &Path) -> String {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "wave" => "wav".into(),
        "aif" | "aifc" => "aiff".into(),
        "oga" => "ogg".into(),
        "" => "unknown".into(),
        other => other.into(),
    }
}

/// Reads a sound file as a 16 kHz mono note of at most `options.max_secs`.
///
/// Work and memory are bounded by `max_secs` at the file's own rate, whatever its header
/// claims: packets are decoded one at a time and decoding stops once enough frames are in.
///
/// Never panics: symphonia is guarded by a header check for the values known to make it
/// panic, and by `catch_unwind` for any others.
pub fn read_note(path: &Path, options: ReadOptions) -> Result<Note> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_note_inner(path, options)
    }))
    .unwrap_or_else(|_| {
        Err(Error::invalid(
            path,
            "the decoder failed on this file (an internal error; the file is probably corrupt)",
        ))
    })
}

fn read_note_inner(path: &Path, options: ReadOptions) -> Result<Note> {
    let bad = |what: String| Error::invalid(path, what);
    let (file, head) = open_checked(path, options)?;
    let Opened {
        mut reader,
        mut decoder,
        track_id,
        params,
        format,
    } = open_track(path, file, &head)?;
    let sample_rate_hz = format.sample_rate_hz;
    let wanted = (options.max_secs * f64::from(sample_rate_hz)).ceil() as usize;
    let Decoded {
        mono,
        bad_packets,
        reached_end,
    } = decode_mono(
        path,
        reader.as_mut(),
        decoder.as_mut(),
        track_id,
        &params,
        wanted,
    )?;
    if mono.is_empty() {
        return Err(bad(if bad_packets > 0 {
            "corrupt audio data (no packet could be decoded)".into()
        } else {
            "no audio in the file (0 frames)".into()
        }));
    }
    if reached_end && let Some(promised) = params.n_frames {
        // Codecs with priming and padding (MP3, Vorbis) may come up a few packets short of
        // their header; a real truncation loses much more.
        let due = promised.min(wanted as u64);
        let slack = (due / 100).max(4096);
        if (mono.len() as u64) + slack < due {
            return Err(bad(format!(
                "truncated: the header promises {:.2} s, the data ends after {:.2} s",
                promised as f64 / f64::from(sample_rate_hz),
                mono.len() as f64 / f64::from(sample_rate_hz)
            )));
        }
    }
    if mono.iter().any(|s| !s.is_finite()) {
        return Err(bad("the audio contains NaN or infinite samples".into()));
    }
    let samples = resample(&mono, sample_rate_hz, SAMPLE_RATE_HZ)
        .map_err(|e| bad(format!("cannot resample from {sample_rate_hz} Hz ({e})")))?;
    let peak = peak(&samples);
    if peak < SILENT_PEAK {
        return Err(bad(format!(
            "silent: peak {:.0} dBFS over the first {:.2} s",
            20.0 * peak.max(1e-10).log10(),
            samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)
        )));
    }
    Ok(Note {
        samples,
        format,
        peak,
    })
}

/// The file opened, checked for what symphonia would panic on, and its first bytes.
fn open_checked(path: &Path, options: ReadOptions) -> Result<(File, Vec<u8>)> {
    let bad = |what: String| Error::invalid(path, what);
    let mut file = File::open(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let len = file
        .metadata()
        .map_err(|error| Error::Read {
            path: path.to_path_buf(),
            error,
        })?
        .len();
    if len == 0 {
        return Err(bad("empty file (0 bytes)".into()));
    }
    if !(options.max_secs > 0.0 && options.max_secs.is_finite()) {
        return Err(bad(format!(
            "cannot read {} seconds of audio",
            options.max_secs
        )));
    }
    let head = header::read_head(&mut file, 4096).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    if let Some(problem) = header::check(&head) {
        return Err(bad(problem.into()));
    }
    file.seek(SeekFrom::Start(0)).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    Ok((file, head))
}

/// A file's audio track, ready to decode.
struct Opened {
    reader: Box<dyn symphonia::core::formats::FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::Decoder>,
    track_id: u32,
    params: symphonia::core::codecs::CodecParameters,
    format: SourceFormat,
}

/// Probes the container and makes the decoder of its first audio track.
fn open_track(path: &Path, file: File, head: &[u8]) -> Result<Opened> {
    let bad = |what: String| Error::invalid(path, what);
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            stream,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => match header::codec_of(head) {
                Some(codec) => bad(format!("unsupported codec ({codec})")),
                None => bad(
                    "not a sound file we can read (no WAV, FLAC, Ogg, MP3 or AIFF header)".into(),
                ),
            },
            SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                bad("truncated: the file ends inside its header".into())
            }
            other => bad(format!("not a readable sound file ({other})")),
        })?;
    let reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| bad("no audio track in the file".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let sample_rate_hz = match params.sample_rate {
        Some(0) | None => return Err(bad("the header gives a sample rate of zero".into())),
        Some(rate) => rate,
    };
    let channels = params.channels.map(|c| c.count()).unwrap_or(0);
    if channels == 0 {
        return Err(bad("the header gives zero channels".into()));
    }
    if channels > MAX_CHANNELS {
        return Err(bad(format!(
            "{channels} channels is more than we mix ({MAX_CHANNELS})"
        )));
    }
    let registry = symphonia::default::get_codecs();
    let codec = registry
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| format!("codec {}", params.codec));
    let decoder = registry
        .make(&params, &DecoderOptions::default())
        .map_err(|e| match e {
            SymphoniaError::Unsupported(_) => bad(format!("unsupported codec ({codec})")),
            other => bad(format!("cannot decode {codec} ({other})")),
        })?;
    let format = SourceFormat {
        container: container_name(path),
        codec,
        sample_rate_hz,
        channels,
        bits_per_sample: params.bits_per_sample,
        duration_secs: params
            .n_frames
            .map(|n| n as f64 / f64::from(sample_rate_hz)),
    };

    Ok(Opened {
        reader,
        decoder,
        track_id,
        params,
        format,
    })
}

/// What the decode loop read.
struct Decoded {
    mono: Vec<f32>,
    bad_packets: usize,
    reached_end: bool,
}

/// Decodes up to `wanted` frames of the track, mixed to mono; a few bad packets are
/// skipped, more are an error.
fn decode_mono(
    path: &Path,
    reader: &mut dyn symphonia::core::formats::FormatReader,
    decoder: &mut dyn symphonia::core::codecs::Decoder,
    track_id: u32,
    params: &symphonia::core::codecs::CodecParameters,
    wanted: usize,
) -> Result<Decoded> {
    let bad = |what: String| Error::invalid(path, what);
    let mut mono: Vec<f32> = Vec::new();
    let mut buffer: Option<SampleBuffer<f32>> = None;
    let mut bad_packets = 0;
    let mut reached_end = false;
    while mono.len() < wanted {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                reached_end = true;
                break;
            }
            Err(SymphoniaError::ResetRequired) => {
                reached_end = true;
                break;
            }
            Err(e) => return Err(bad(format!("cannot read the audio data ({e})"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(_)) | Err(SymphoniaError::IoError(_)) => {
                bad_packets += 1;
                if bad_packets > MAX_BAD_PACKETS {
                    return Err(bad(format!(
                        "corrupt audio data (more than {MAX_BAD_PACKETS} packets failed to decode)"
                    )));
                }
                continue;
            }
            Err(e) => return Err(bad(format!("cannot decode the audio ({e})"))),
        };
        let spec = *decoded.spec();
        let frames = decoded.frames();
        if frames == 0 {
            continue;
        }
        let ch = spec.channels.count().max(1);
        let buf = match &mut buffer {
            Some(buf) if buf.capacity() >= frames * ch => buf,
            _ => buffer.insert(SampleBuffer::new(decoded.capacity() as u64, spec)),
        };
        buf.copy_interleaved_ref(decoded);
        let take = frames.min(wanted - mono.len());
        if mono.capacity() == 0 {
            // Reserve what the note needs, capped by what the header says the file has.
            let expected = params.n_frames.map_or(wanted, |n| (n as usize).min(wanted));
            mono.reserve(expected.max(take));
        }
        let scale = 1.0 / ch as f32;
        mono.extend(
            buf.samples()
                .chunks_exact(ch)
                .take(take)
                .map(|frame| frame.iter().sum::<f32>() * scale),
        );
    }
    Ok(Decoded {
        mono,
        bad_packets,
        reached_end,
    })
}
