//! Helpers for the end-to-end tests in `tests/tests/`: they run the real `timbrel` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `timbrel` binary of the profile these tests were built with
/// (`target/<profile>/timbrel`). `cargo test --workspace` builds it before running any
/// test, because the `app` crate has integration tests of its own.
pub fn timbrel_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary> → target/<profile>/timbrel
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let path = profile_dir.join(format!("timbrel{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "no timbrel binary at {}: run the tests with `cargo test --workspace` (it builds it)",
        path.display()
    );
    path
}

/// Runs `timbrel ARGS` and returns what it did.
pub fn timbrel(args: &[&str]) -> Output {
    Command::new(timbrel_path())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run timbrel: {e}"))
}

/// `timbrel ARGS`, not yet run, with its embedding cache in `cache` (never the user's).
pub fn timbrel_in(cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(timbrel_path());
    cmd.args(args).env("TIMBREL_CACHE_DIR", cache);
    cmd
}

/// Runs `cmd`; what it printed on stdout once it has succeeded (else a panic naming the
/// command, with both its outputs).
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A run that failed with a one-line error: that line (stderr).
pub fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "it succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

/// `blend A B --mix 0.5 --pitch E4 --pitch-end G4 -o OUT`: half and half, gliding.
pub fn glide<'a>(a: &'a str, b: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "blend",
        a,
        b,
        "--mix",
        "0.5",
        "--pitch",
        "E4",
        "--pitch-end",
        "G4",
        "-o",
        out,
    ]
}

/// What a `timbrel` run printed on stdout, once it has succeeded (else a panic with
/// both its outputs).
pub fn ok(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Magenta's tiny fixture, copied into `tests/fixtures/`.
pub fn magenta_tiny() -> PathBuf {
    repo_root().join("tests/fixtures/magenta-tiny")
}
