//! Shared helpers for the integration tests. Each test binary uses only part of them.
#![allow(dead_code)]

pub mod daemon;
pub mod dkimpy;
pub mod dnsbed;
pub mod keys;
pub mod postfix_view;
