#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `timbrel pack scan` and `timbrel dataset render/pack/info` as a user runs them.

#[path = "../../engine/tests/support/tiny_sf2.rs"]
mod tiny_sf2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use engine::audio::wav::{WavFormat, write};
use engine::fsutil::Overwrite;
use tests::timbrel;

fn tone(hz: f32, secs: f32) -> Vec<f32> {
    (0..(secs * 16_000.0) as usize)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            0.5 * (-t * 1.5).exp()
                * ((2.0 * std::f32::consts::PI * hz * t).sin()
                    + 0.3 * (4.0 * std::f32::consts::PI * hz * t).sin())
        })
        .collect()
}

fn noise(secs: f32) -> Vec<f32> {
    let mut state = 99u32;
    (0..(secs * 16_000.0) as usize)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (-(i as f32) / 2000.0).exp() * ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
        })
        .collect()
}

fn wav(path: &Path, samples: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    write(path, samples, 16_000, WavFormat::S16, Overwrite::Never).unwrap();
}

/// Every file below `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

fn make_pack(dir: &Path) {
    wav(&dir.join("keys/Piano C4.wav"), &tone(261.63, 2.0));
    wav(&dir.join("keys/Piano_F#3_mf.wav"), &tone(185.0, 2.0));
    wav(&dir.join("keys/deep/mystery.wav"), &tone(440.0, 2.0)); // pitch from the audio
    wav(&dir.join("drums/Snare 01.wav"), &noise(0.5));
    wav(&dir.join(".hidden/ignored.wav"), &tone(440.0, 1.0));
    std::fs::write(dir.join("drums/broken.wav"), b"RIFF....WAVEjunk").unwrap();
    std::fs::write(dir.join("README.txt"), "a pack").unwrap();
}

#[test]
fn pack_scan_lists_notes_and_errors_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    make_pack(tmp.path());
    let before = snapshot(tmp.path());
    let dir = tmp.path().to_str().unwrap();

    let out = timbrel(&["pack", "scan", dir]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("C4 (60, name)"), "{text}");
    assert!(text.contains("F#3 (54, name)"), "{text}");
    assert!(text.contains("A4 (69, 44"), "{text}");
    assert!(text.contains("unpitched"), "{text}");
    assert!(
        text.contains("4 notes, 1 unusable, 1 other files passed over"),
        "{text}"
    );
    assert!(!text.contains("ignored.wav"));

    let out = timbrel(&["pack", "scan", dir, "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    let by_file = |name: &str| {
        entries
            .iter()
            .find(|e| e["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no entry for {name}"))
    };
    assert_eq!(by_file("Piano_F#3_mf.wav")["note"]["velocity"], 80);
    assert_eq!(
        by_file("mystery.wav")["note"]["pitch"]["source"],
        "detected"
    );
    assert_eq!(
        by_file("Snare 01.wav")["note"]["pitch"]["source"],
        "unpitched"
    );
    let error = by_file("broken.wav")["error"].as_str().unwrap();
    assert!(
        error.ends_with("broken.wav") && !error.contains('\n'),
        "{error}"
    );

    assert_eq!(
        snapshot(tmp.path()),
        before,
        "the scan changed the pack folder"
    );
}

#[test]
fn pack_scan_fails_without_a_usable_note() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("empty.wav"), b"").unwrap();
    let out = timbrel(&["pack", "scan", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("empty file"));

    let out = timbrel(&["pack", "scan", "/no/such/pack"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/no/such/pack"), "{err}");
}

#[test]
fn dataset_render_and_info() {
    let tmp = tempfile::tempdir().unwrap();
    let font = tmp.path().join("tiny.sf2");
    std::fs::write(&font, tiny_sf2::tiny_sf2(&[0, 40])).unwrap();
    let out_dir = tmp.path().join("notes");
    let render = |pitches: &str, extra: &[&str]| {
        let mut args = vec![
            "dataset",
            "render",
            "--soundfont",
            font.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--programs",
            "0,40",
            "--pitches",
            pitches,
            "--velocities",
            "100",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let out = render("30,48-50,90", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("6 notes written, 4 silent renders skipped"),
        "{text}"
    );

    let out = timbrel(&["dataset", "info", out_dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("6 notes, 2 instruments, pitches 48-50"),
        "{text}"
    );
    assert!(
        text.contains("keyboard    3") && text.contains("string      3"),
        "{text}"
    );

    let out = render("30,48-50,90", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(render("30,48-50,90", &["--force"]).status.success());

    let out = render("60-200", &["--force"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than 127"));
}

#[test]
fn dataset_pack_makes_real_recordings_notes() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = tmp.path().join("kits");
    std::fs::create_dir_all(pack.join("rock")).unwrap();
    std::fs::create_dir_all(pack.join("jazz")).unwrap();
    wav(&pack.join("rock/kick.wav"), &noise(0.3));
    wav(&pack.join("rock/snare.wav"), &noise(0.2));
    wav(&pack.join("jazz/ride.wav"), &noise(5.0));
    let before = std::fs::read(pack.join("jazz/ride.wav")).unwrap();
    let out_dir = tmp.path().join("notes");
    let pack_cmd = |extra: &[&str]| {
        let mut args = vec![
            "dataset",
            "pack",
            "--pack",
            pack.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--unpitched",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let out = pack_cmd(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("3 notes of 2 instruments written (3 unpitched, 1 longer than 4 s cut)"),
        "{text}"
    );
    assert!(
        text.contains("instrument 0: jazz") && text.contains("instrument 1: rock"),
        "{text}"
    );
    assert_eq!(std::fs::read(pack.join("jazz/ride.wav")).unwrap(), before);
    let out = timbrel(&["dataset", "info", out_dir.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3 notes, 2 instruments") && text.contains("mallet      3"),
        "{text}"
    );

    // Never over an existing dataset without --force; bad input, one line.
    let out = pack_cmd(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(pack_cmd(&["--force"]).status.success());
    let out = pack_cmd(&["--force", "--family", "drums"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"drums\" is not one of bass"));
    let missing = tmp.path().join("nowhere");
    let out = timbrel(&[
        "dataset",
        "pack",
        "--pack",
        missing.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere") && err.lines().count() == 1, "{err}");
}
