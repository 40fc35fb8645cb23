#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Train → checkpoint → resume on tiny configs and a handful of generated notes, for each
//! family's step on the generic run.

#[path = "../support/tiny_sf2.rs"]
mod tiny_sf2;

mod grow;
mod run_dir;
mod samplernn;
mod setup;
mod student;
mod wavenet;
