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
pub mod logging;
pub mod map;
pub mod message;
pub mod milter;
pub mod notify;
pub mod nta;
pub mod policy;
pub mod portal;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod tools;

pub use daemon::run;
/// The `check` report's former path (now [`tools::check`]), for callers not yet moved.
pub use tools::check as report;
