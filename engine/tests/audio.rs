#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Reading sound files: every format we promise, every failure we name.

use std::alloc::System;
use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use engine::audio::{ReadOptions, read_note};
use engine::pitch::{self, Pitch};
use testkit::alloc::{Counting, largest_allocation};

/// Remembers the largest single allocation made in this test binary.
#[global_allocator]
static GLOBAL: Counting<System> = Counting(System);

fn audio_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/audio")
        .join(name)
}

fn tone(rate: u32, secs: f32, channels: usize) -> Vec<f32> {
    let n = (rate as f32 * secs) as usize;
    let mut out = Vec::with_capacity(n * channels);
    for i in 0..n {
        let t = i as f32 / rate as f32;
        let v = 0.5 * (2.0 * PI * 440.0 * t).sin() * (-t).exp();
        out.extend(std::iter::repeat_n(v, channels));
    }
    out
}

fn write_wav(path: &Path, rate: u32, channels: u16, bits: u16, float: bool, secs: f32) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in tone(rate, secs, channels as usize) {
        if float {
            w.write_sample(s).unwrap();
        } else {
            let max = (1i64 << (bits - 1)) as f32 - 1.0;
            w.write_sample((s * max).round() as i32).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// A RIFF/WAVE file with a hand-written `fmt ` chunk, for headers hound would refuse.
fn raw_wav(format_tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block_align = channels.max(1) * bits.div_ceil(8);
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&format_tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    fmt.extend_from_slice(&block_align.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((4 + 8 + fmt.len() + 8 + data.len()) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s * 32767.0) as i16).to_le_bytes())
        .collect()
}

/// 80-bit IEEE extended, as AIFF stores its sample rate.
fn extended(rate: u32) -> [u8; 10] {
    let mut out = [0u8; 10];
    let shift = 31 - rate.leading_zeros();
    let exponent = 16383 + shift as u16;
    out[..2].copy_from_slice(&exponent.to_be_bytes());
    let mantissa = u64::from(rate) << (63 - shift);
    out[2..].copy_from_slice(&mantissa.to_be_bytes());
    out
}

fn aiff(rate: u32, channels: u16, samples: &[f32]) -> Vec<u8> {
    let frames = (samples.len() / channels as usize) as u32;
    let mut comm = Vec::new();
    comm.extend_from_slice(&channels.to_be_bytes());
    comm.extend_from_slice(&frames.to_be_bytes());
    comm.extend_from_slice(&16u16.to_be_bytes());
    comm.extend_from_slice(&extended(rate));
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s * 32767.0) as i16).to_be_bytes())
        .collect();
    let mut body = b"AIFF".to_vec();
    body.extend_from_slice(b"COMM");
    body.extend_from_slice(&(comm.len() as u32).to_be_bytes());
    body.extend_from_slice(&comm);
    body.extend_from_slice(b"SSND");
    body.extend_from_slice(&((data.len() + 8) as u32).to_be_bytes());
    body.extend_from_slice(&[0; 8]);
    body.extend_from_slice(&data);
    let mut out = b"FORM".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Reads `path` and checks it is our 440 Hz tone: length, level and pitch.
fn check_tone(path: &Path, secs: f64, codec: &str, channels: usize, rate: u32) {
    let note = read_note(path, ReadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(note.format.sample_rate_hz, rate, "{}", path.display());
    assert_eq!(note.format.channels, channels, "{}", path.display());
    assert!(
        note.format.codec.contains(codec),
        "{}: codec {}",
        path.display(),
        note.format.codec
    );
    // Lossy codecs add priming/padding of up to a few packets.
    let expected = secs * 16_000.0;
    let got = note.samples.len() as f64;
    assert!(
        (got - expected).abs() <= 0.06 * 16_000.0,
        "{}: {got} samples for {secs} s",
        path.display()
    );
    assert!(
        note.peak > 0.25 && note.peak < 0.7,
        "{}: peak {}",
        path.display(),
        note.peak
    );
    assert!(matches!(
        pitch::detect(&note.samples),
        Pitch::Detected { midi: 69, .. }
    ));
}

#[test]
fn reads_every_wav_sample_format_at_any_rate() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (8, false, 44_100, 2),
        (16, false, 44_100, 2),
        (24, false, 48_000, 1),
        (32, false, 22_050, 2),
        (32, true, 96_000, 1),
        (16, false, 16_000, 1),
        (16, false, 8_000, 6),
    ];
    for (bits, float, rate, channels) in cases {
        let path = dir
            .path()
            .join(format!("tone_{bits}_{float}_{rate}_{channels}.wav"));
        write_wav(&path, rate, channels, bits, float, 1.0);
        check_tone(&path, 1.0, "pcm", channels as usize, rate);
        let note = read_note(&path, ReadOptions::default()).unwrap();
        assert_eq!(note.format.bits_per_sample, Some(u32::from(bits)));
        assert_eq!(note.format.container, "wav");
        assert!((note.format.duration_secs.unwrap() - 1.0).abs() < 1e-3);
    }
}

#[test]
fn reads_aiff_flac_vorbis_and_mp3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tone.aiff");
    std::fs::write(&path, aiff(44_100, 2, &tone(44_100, 0.8, 2))).unwrap();
    check_tone(&path, 0.8, "pcm", 2, 44_100);
    check_tone(&audio_fixture("a4_44k_stereo.flac"), 0.6, "flac", 2, 44_100);
    check_tone(
        &audio_fixture("a4_44k_stereo.ogg"),
        0.6,
        "vorbis",
        2,
        44_100,
    );
    check_tone(&audio_fixture("a4_44k_stereo.mp3"), 0.6, "mp3", 2, 44_100);
}

#[test]
fn reads_only_what_a_note_needs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    write_wav(&path, 48_000, 2, 16, false, 6.0);
    let note = read_note(&path, ReadOptions::default()).unwrap();
    assert_eq!(note.samples.len(), 64_000);
    assert!((note.format.duration_secs.unwrap() - 6.0).abs() < 1e-3);
    let note = read_note(&path, ReadOptions { max_secs: 0.5 }).unwrap();
    assert_eq!(note.samples.len(), 8_000);
}

#[test]
fn a_header_claiming_gigabytes_allocates_nothing_of_the_sort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.wav");
    let data = pcm16(&tone(44_100, 0.5, 2));
    let mut bytes = raw_wav(1, 2, 44_100, 16, &data);
    // RIFF and data chunk sizes → 4 GB: the header promises 6 hours of audio.
    let at = bytes.len() - data.len() - 4;
    bytes[at..at + 4].copy_from_slice(&(u32::MAX - 64).to_le_bytes());
    bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = match read_note(&path, ReadOptions::default()) {
        Ok(note) => panic!("read {} samples from a lying header", note.samples.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("truncated"), "{err}");
    // Nothing in this binary's tests needs more than a few MB at once; a reader that
    // trusted the header would ask for gigabytes.
    let largest = largest_allocation();
    assert!(largest < 64 << 20, "largest allocation {largest} bytes");
}

fn check_error(name: &str, bytes: &[u8], needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = read_note(&path, ReadOptions::default())
        .err()
        .unwrap_or_else(|| panic!("{name}: read without error"))
        .to_string();
    assert!(err.contains(needle), "{name}: {err:?} lacks {needle:?}");
    assert!(
        err.ends_with(&path.display().to_string()),
        "{name}: path not last: {err}"
    );
    assert!(!err.contains('\n'), "{name}: {err:?}");
}

#[test]
fn every_failure_is_one_line_naming_the_file() {
    let good = pcm16(&tone(16_000, 1.0, 1));
    check_error("empty.wav", b"", "empty file");
    check_error(
        "notes.wav",
        b"this is a text file, not audio at all",
        "not a sound file",
    );
    check_error("random.flac", &[0x5a; 4096], "not a sound file");
    let full = raw_wav(1, 1, 16_000, 16, &good);
    check_error("cut.wav", &full[..full.len() / 2], "truncated");
    check_error("header-only.wav", &full[..30], "truncated");
    check_error(
        "zero-channels.wav",
        &raw_wav(1, 0, 16_000, 16, &good),
        "channels",
    );
    check_error("zero-rate.wav", &raw_wav(1, 1, 0, 16, &good), "sample rate");
    check_error(
        "odd-codec.wav",
        &raw_wav(0x1234, 1, 16_000, 16, &good),
        "unsupported codec",
    );
    check_error(
        "silent.wav",
        &raw_wav(1, 1, 16_000, 16, &vec![0u8; 32_000]),
        "silent",
    );
    let nan: Vec<u8> = std::iter::repeat_n(f32::NAN, 1000)
        .flat_map(f32::to_le_bytes)
        .collect();
    check_error("nan.wav", &raw_wav(3, 1, 16_000, 32, &nan), "NaN");
    let flac = std::fs::read(audio_fixture("a4_44k_stereo.flac")).unwrap();
    check_error("cut.flac", &flac[..flac.len() / 2], "truncated");
    let mp3 = std::fs::read(audio_fixture("a4_44k_stereo.mp3")).unwrap();
    check_error("cut.mp3", &mp3[..mp3.len() / 3], "truncated");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.wav");
    let err = read_note(&missing, ReadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read") && err.ends_with("missing.wav"),
        "{err}"
    );
}

#[test]
fn quiet_notes_are_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quiet.wav");
    let quiet: Vec<f32> = tone(16_000, 1.0, 1).iter().map(|s| s * 0.004).collect();
    std::fs::write(&path, raw_wav(1, 1, 16_000, 16, &pcm16(&quiet))).unwrap();
    let note = read_note(&path, ReadOptions::default()).unwrap();
    assert!(note.near_silent(), "peak {}", note.peak_dbfs());
    assert!(note.peak_dbfs() < -50.0);
}
