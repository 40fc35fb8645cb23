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

/// Skips a check for a missing tool or file, never silently: the reason goes to the
/// terminal (past the test harness's capture), and under `TIMBREL_NO_SKIP=1` (what
/// `./dev test` sets, having installed the tools) the test fails instead.
pub fn skip(reason: &str) {
    let no_skip = std::env::var("TIMBREL_NO_SKIP").is_ok_and(|v| v == "1");
    assert!(!no_skip, "TIMBREL_NO_SKIP=1, but {reason}");
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("skipped: {reason}\n").as_bytes(),
    );
}
