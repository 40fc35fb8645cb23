//! The binary's front door. (Having an integration test here also makes
//! `cargo test --workspace` build `target/<profile>/timbrel`, which the end-to-end tests in
//! `tests/` run.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included

use std::process::Command;

fn timbrel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_timbrel"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_commands() {
    for args in [&["--help"][..], &[]] {
        let out = timbrel(args);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("check-golden"), "{text}");
    }
    let out = timbrel(&["check-golden", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1e-4"));
}

#[test]
fn unknown_commands_fail() {
    let out = timbrel(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
