//! Skipping a test for a missing tool or file, never silently: the reason goes to the
//! terminal (past the test harness's capture of `println!`), and under
//! `TIMBREL_NO_SKIP=1` (what `./dev test` sets, having installed what the tests need) the
//! test fails instead.

use std::io::Write;

/// The variable that turns a skip into a failure.
pub const NO_SKIP_VAR: &str = "TIMBREL_NO_SKIP";

/// Says why the test does not run its check (the caller then returns), or panics with
/// the reason where skipping is not allowed.
pub fn skip(reason: &str) {
    let no_skip = std::env::var(NO_SKIP_VAR).is_ok_and(|v| v == "1");
    skip_or_fail(reason, no_skip);
}

/// [`skip`] with the variable's verdict given.
pub fn skip_or_fail(reason: &str, no_skip: bool) {
    assert!(!no_skip, "{NO_SKIP_VAR}=1, but {reason}");
    // Straight to the terminal: the harness captures `print!`, not `std::io::stderr()`.
    let _ = writeln!(std::io::stderr(), "skipped: {reason}");
}
