#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The synthesizer's commands end to end on a tiny random model (so seconds, not hours):
//! reconstruct, blend (mix, XY, weights), grid (and resuming it), encode/decode through
//! .npy, the cache, cancellation and never overwriting without --force.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use autoencoder::Sampling;
use candle_core::Device;
use engine::audio::wav::{self, WavFormat};
use engine::fsutil::Overwrite;

#[path = "support/synth_setup.rs"]
mod setup;
use setup::{Setup, read_wav};

#[test]
fn reconstruct_writes_notes_of_the_inputs_length() {
    let s = Setup::new();
    s.ok(&["reconstruct", &s.note("flute", 60), "-o", &s.p("r.wav")]);
    let (spec, samples) = read_wav(&s.p("r.wav"));
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16)
    );
    assert_eq!(samples.len(), 8000);
    assert!(samples.iter().any(|&x| x != 0), "not silent");

    // Several inputs: one batch, each output named after its input, in a folder.
    let summary = s.json(&[
        "reconstruct",
        &s.note("flute", 48),
        &s.note("organ", 72),
        "-o",
        &s.p("outs/"),
        "--rate",
        "48000",
        "--format",
        "s24",
    ]);
    assert_eq!(summary["written"].as_array().unwrap().len(), 2);
    let r = hound::WavReader::open(s.p("outs/organ_acoustic_000-072-100.wav")).unwrap();
    assert_eq!(
        (r.spec().sample_rate, r.spec().bits_per_sample),
        (48_000, 24)
    );
    assert_eq!(r.len(), 24_000);
}

#[test]
fn a_blend_of_one_source_is_its_reconstruction() {
    let s = Setup::new();
    let (a, b) = (s.note("flute", 60), s.note("organ", 60));
    s.ok(&["reconstruct", &a, "-o", &s.p("a.wav"), "--seed", "5"]);
    // `blend A B HOW -o OUT --seed SEED`: what it wrote.
    let blend = |how: [&str; 2], out: &str, seed: &str| {
        s.ok(&[
            "blend",
            &a,
            &b,
            how[0],
            how[1],
            "-o",
            &s.p(out),
            "--seed",
            seed,
        ]);
        read_wav(&s.p(out)).1
    };
    let reference = read_wav(&s.p("a.wav")).1;
    assert_eq!(blend(["--mix", "0"], "mix0.wav", "5"), reference);
    assert_eq!(blend(["--weights", "1,0"], "w10.wav", "5"), reference);
    // Another seed, other audio; a real mix, other audio again.
    assert_ne!(blend(["--mix", "0"], "seed6.wav", "6"), reference);
    assert_ne!(blend(["--mix", "0.5"], "half.wav", "5"), reference);
    // A morph from A to B.
    s.ok(&[
        "blend",
        &a,
        &b,
        "--mix",
        "0",
        "--mix-end",
        "1",
        "-o",
        &s.p("morph.wav"),
    ]);
    assert_eq!(read_wav(&s.p("morph.wav")).1.len(), 8000);
}

#[test]
fn xy_corners_are_the_corner_sources() {
    let s = Setup::new();
    let packs = ["flute", "organ", "bass", "reed"].map(|p| s.p(p));
    for (corner, xy) in [(1, "1,0"), (2, "0,1")] {
        let out = s.p(&format!("xy{corner}.wav"));
        let mut args = vec!["blend"];
        args.extend(packs.iter().map(String::as_str));
        args.extend(["--xy", xy, "--pitch", "C4", "-o", &out]);
        let summary = s.json(&args);
        assert_eq!(summary["sources"].as_array().unwrap().len(), 4);
        let alone = s.p(&format!("alone{corner}.wav"));
        let note = s.note(["flute", "organ", "bass", "reed"][corner], 60);
        s.ok(&["reconstruct", &note, "-o", &alone]);
        assert_eq!(read_wav(&out).1, read_wav(&alone).1, "corner {corner}");
    }
}

#[test]
fn a_pack_note_off_pitch_is_shifted() {
    let s = Setup::new();
    // D4 (62): the packs have C4, shifted up two semitones.
    let summary = s.json(&[
        "blend",
        &s.p("flute"),
        &s.p("organ"),
        "--mix",
        "0.3",
        "--pitch",
        "62",
        "-o",
        &s.p("d4.wav"),
    ]);
    let sources = summary["sources"].as_array().unwrap();
    assert_eq!(sources[0]["pitch"], 60);
    assert_eq!(sources[0]["shift_semitones"], 2);
    // Shifted up, the note is shorter: 8000 / 2^(2/12).
    assert!((sources[0]["length"].as_u64().unwrap() as i64 - 7127).abs() <= 2);
}

#[test]
fn grid_renders_every_cell_once_and_resumes() {
    let s = Setup::new();
    let packs = ["flute", "organ", "bass", "reed"].map(|p| s.p(p));
    let out = s.p("grid");
    let grid = |extra: &[&str]| {
        let mut args = vec!["grid", "--corners"];
        args.extend(packs.iter().map(String::as_str));
        args.extend([
            "--res",
            "2",
            "--pitches",
            "48,C4",
            "--batch",
            "3",
            "-o",
            &out,
        ]);
        args.extend_from_slice(extra);
        s.json(&args)
    };
    let first = grid(&[]);
    assert_eq!(
        (first["cells"].as_u64(), first["rendered"].as_u64()),
        (Some(8), Some(8))
    );
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.p("grid/index.json")).unwrap()).unwrap();
    let cells = index["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    for cell in cells {
        let file = s.p(&format!("grid/{}", cell["file"].as_str().unwrap()));
        assert!(Path::new(&file).exists(), "{file}");
    }
    assert_eq!(testkit::notes::wav_count(Path::new(&s.p("grid"))), 8);
    // The cell at x = 1, y = 0 of pitch 60 is B.
    let b = cells
        .iter()
        .find(|c| c["pitch"] == 60 && c["ix"] == 1 && c["iy"] == 0)
        .unwrap();
    assert_eq!(b["weights"], serde_json::json!([0.0, 1.0, 0.0, 0.0]));

    // A second run finds everything done; a lost cell is rendered again, alone, and
    // comes out as it did in the whole run (its random stream is its own).
    let stamp = |f: &str| std::fs::metadata(s.p(f)).unwrap().modified().unwrap();
    let kept = stamp("grid/C4_p060_x0_y0.wav");
    let lost = s.p("grid/C3_p048_x1_y1.wav");
    let before = std::fs::read(&lost).unwrap();
    std::fs::remove_file(&lost).unwrap();
    let second = grid(&[]);
    assert_eq!(
        (second["rendered"].as_u64(), second["skipped"].as_u64()),
        (Some(1), Some(7))
    );
    assert_eq!(std::fs::read(&lost).unwrap(), before);
    assert_eq!(stamp("grid/C4_p060_x0_y0.wav"), kept);
}

#[test]
fn encode_decode_through_npy_and_the_cache() {
    let s = Setup::new();
    let a = s.note("bass", 72);
    let first = s.json(&["encode", &a, "-o", &s.p("a.npy")]);
    assert_eq!(first["cached"], false);
    assert_eq!(
        (first["frames"].as_u64(), first["channels"].as_u64()),
        (Some(125), Some(4))
    );
    let again = s.json(&["encode", &a, "-o", &s.p("a2.npy")]);
    assert_eq!(again["cached"], true, "the second encode is a cache hit");
    assert_eq!(
        std::fs::read(s.p("a.npy")).unwrap(),
        std::fs::read(s.p("a2.npy")).unwrap()
    );
    // A changed file is encoded again.
    let copy = s.p("changed.wav");
    std::fs::copy(&a, &copy).unwrap();
    let mut samples = read_wav(&copy).1;
    samples[100] = samples[100].wrapping_add(1000);
    let f: Vec<f32> = samples.iter().map(|&x| f32::from(x) / 32768.0).collect();
    wav::write(
        Path::new(&copy),
        &f,
        16_000,
        WavFormat::S16,
        Overwrite::Allowed,
    )
    .unwrap();
    assert_eq!(
        s.json(&["encode", &copy, "-o", &s.p("c.npy")])["cached"],
        false
    );

    // decode(encode(a)) is reconstruct(a).
    s.ok(&[
        "decode",
        &s.p("a.npy"),
        "-o",
        &s.p("dec.wav"),
        "--seed",
        "3",
    ]);
    s.ok(&["reconstruct", &a, "-o", &s.p("rec.wav"), "--seed", "3"]);
    assert_eq!(read_wav(&s.p("dec.wav")).1, read_wav(&s.p("rec.wav")).1);

    // Embeddings of the wrong width are refused, naming the file.
    engine::synth::npy::write(
        Path::new(&s.p("bad.npy")),
        &[0.0; 30],
        10,
        3,
        Overwrite::Never,
    )
    .unwrap();
    let out = s.run(&["decode", &s.p("bad.npy"), "-o", &s.p("bad.wav")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.npy") && err.contains("[10, 3]"), "{err}");
    assert!(!Path::new(&s.p("bad.wav")).exists());
}

#[test]
fn outputs_are_never_overwritten_without_force() {
    let s = Setup::new();
    let a = s.note("flute", 60);
    std::fs::write(s.p("taken.wav"), b"mine").unwrap();
    let out = s.run(&["reconstruct", &a, "-o", &s.p("taken.wav")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("taken.wav") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(s.p("taken.wav")).unwrap(), b"mine");
    s.ok(&["reconstruct", &a, "-o", &s.p("taken.wav"), "--force"]);
    assert_eq!(read_wav(&s.p("taken.wav")).1.len(), 8000);
}

#[test]
fn an_input_is_never_an_output_even_with_force() {
    let s = Setup::new();
    let a = s.note("flute", 60);
    let before = std::fs::read(&a).unwrap();
    for args in [
        vec!["reconstruct", a.as_str(), "-o", a.as_str(), "--force"],
        vec![
            "blend",
            a.as_str(),
            a.as_str(),
            "--mix",
            "0.5",
            "-o",
            a.as_str(),
            "--force",
        ],
        vec!["encode", a.as_str(), "-o", a.as_str(), "--force"],
    ] {
        let out = s.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains("one of the inputs"), "{err}");
    }
    assert_eq!(std::fs::read(&a).unwrap(), before);
}

#[test]
fn ctrl_c_cancels_and_leaves_no_file() {
    let s = Setup::new();
    // A long note: two minutes take the tiny model many seconds to decode.
    let long = s.p("long.wav");
    let samples: Vec<f32> = (0..16_000 * 120)
        .map(|t| 0.3 * (t as f32 * 0.05).sin())
        .collect();
    wav::write(
        Path::new(&long),
        &samples,
        16_000,
        WavFormat::S16,
        Overwrite::Never,
    )
    .unwrap();
    let out = s.p("never.wav");
    let mut child = s
        .command(&["reconstruct", &long, "-o", &out, "--max-secs", "120"])
        .arg("--threads")
        .arg("1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until decoding has started (the model is loaded and the note encoded).
    let started = std::time::Instant::now();
    loop {
        if started.elapsed().as_secs() > 60 {
            panic!("the decode did not start");
        }
        if s.dir.path().join("cache").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .join("\n");
    let exit = child.wait().unwrap();
    assert!(
        !exit.success(),
        "it finished before being cancelled: {stderr}"
    );
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(!Path::new(&out).exists());
    let leftovers: Vec<PathBuf> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".timbrel-"))
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn engine_cancel_stops_a_decode_early() {
    let s = Setup::new();
    let engine = testkit::tiny::load(&s.dir.path().join("model"));
    let emb = engine::synth::Embedding {
        frames: 20_000,
        channels: 4,
        data: vec![0.1; 80_000],
    };
    let control = autoencoder::Control::default();
    let result = std::thread::scope(|scope| {
        let job = scope.spawn(|| {
            engine.decode(
                std::slice::from_ref(&emb),
                &[0],
                Sampling::default(),
                &control,
                &mut |_| std::ops::ControlFlow::Continue(()),
            )
        });
        while control.samples() == 0 {
            std::thread::yield_now();
        }
        control.cancel();
        job.join().unwrap()
    });
    assert!(matches!(result, Err(engine::Error::Cancelled)));
    assert!(control.samples() < 20_000 * 64, "stopped early");
}

#[test]
fn the_engine_decodes_through_the_gpu_decoder_path() {
    // The engine's GPU branch (the tensor decoder), on the CPU device: voices of different
    // lengths, their own random streams, progress and cancellation, as with the CPU decoder.
    let s = Setup::new();
    let load = || testkit::tiny::load(&s.dir.path().join("model"));
    let cpu = load();
    let tensor = load().with_tensor_decoder(&Device::Cpu).unwrap();
    assert!(tensor.uses_tensor_decoder() && !cpu.uses_tensor_decoder());
    assert!(tensor.decoder_description().contains("tensor decoder"));
    let embedding = |frames: usize, offset: f32| engine::synth::Embedding {
        frames,
        channels: 4,
        data: (0..frames * 4)
            .map(|i| (i as f32 * 0.37 + offset).sin())
            .collect(),
    };
    let voices = [embedding(10, 0.0), embedding(6, 1.0)];
    let sampling = Sampling {
        temperature: 1.0,
        seed: 3,
    };
    let decode = |engine: &engine::synth::Engine, control: &autoencoder::Control| {
        let mut last = None;
        let audio = engine.decode(&voices, &[0, 5], sampling, control, &mut |p| {
            last = Some(*p);
            std::ops::ControlFlow::Continue(())
        });
        (audio, last)
    };
    let (audio, last) = decode(&tensor, &autoencoder::Control::default());
    let audio = audio.unwrap();
    assert_eq!(audio[0].len(), 10 * 64);
    assert_eq!(audio[1].len(), 6 * 64, "cut to its own length");
    let last = last.unwrap();
    assert_eq!(last.done, last.total);
    // Same streams as the CPU decoder: the first frame of each voice agrees sample for
    // sample (a draw on a class boundary, ~1e-6 per sample, is what could part them).
    let (reference, _) = decode(&cpu, &autoencoder::Control::default());
    let reference = reference.unwrap();
    for (a, b) in audio.iter().zip(&reference) {
        assert_eq!(a[..64], b[..64]);
    }
    let control = autoencoder::Control::default();
    control.cancel();
    let (cancelled, _) = decode(&tensor, &control);
    assert!(matches!(cancelled, Err(engine::Error::Cancelled)));
}
