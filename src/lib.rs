//! nta7516-milter: an NTA 7516 gateway for Postfix and Exim.
//!
//! Library first: the binary (`src/main.rs`) only parses the command line and calls in here.
//! Dependencies point downward: front-ends (CLI, milter, map server) → engine → policy
//! (pure) → nta (record parsing, facts) → dns.

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
pub mod milter;
mod notify;
pub mod nta;
pub mod policy;
pub mod portal;
pub mod server;
mod shutdown;
pub mod state;
mod tools;

pub use daemon::run;
