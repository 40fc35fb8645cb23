//! What the workspace's tests share, so each test file calls one function instead of
//! copying its setup: a global allocator that counts calls ([`alloc`]), tiny model
//! configurations and random model folders ([`tiny`]), notes of a known pitch written as
//! WAVs ([`notes`]), the shipped student with the demo instruments ([`demo`]) and a skip
//! that says why and fails where skipping is not allowed ([`skip`]).
//!
//! A dev-dependency only; like test code it panics on failure (`unwrap`), with the path
//! or value that failed in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod alloc;
pub mod demo;
pub mod notes;
pub mod skip;
pub mod tiny;
