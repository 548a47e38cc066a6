//! nta7516-milter: an NTA 7516 gateway for Postfix and Exim.
//!
//! Library first: the binary (`src/main.rs`) only parses the command line and calls in here.
//! Dependencies point downward (ARCHITECTURE.md lists the layers): front-ends (CLI, milter,
//! map server) → state → message, audit → engine → policy
//! (pure) → nta (record parsing, facts) → dns.

// Every system call goes through a safe wrapper crate (socket2, nix, gethostname).
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod domain;
pub mod engine;
mod logging;
pub mod map;
pub mod message;
pub mod metrics;
pub mod milter;
mod mta;
mod notify;
pub mod nta;
pub mod policy;
pub mod portal;
pub mod server;
mod shutdown;
pub mod state;
mod tools;

pub use daemon::run;
