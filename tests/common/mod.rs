//! Shared helpers for the integration tests. Each test binary uses only part of them.
#![allow(dead_code)]

pub mod daemon;
pub mod dnsbed;
pub mod keys;
