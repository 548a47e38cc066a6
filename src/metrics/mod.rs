//! Operational metrics and health: what `[server] metrics` serves as Prometheus text at
//! `/metrics` and as a verdict at `/healthz` (README, "Metrics and health").
//!
//! The counters are plain atomics in fixed arrays, one cell per label combination, so a
//! hook on the mail path is one relaxed `fetch_add`: no lock, no allocation, no map of
//! label sets (prometheus-client's `Family` takes a lock per increment). Every label
//! value is a closed enum of the code, so the number of series is fixed and small. The
//! text format itself comes from prometheus-client ([`encode`]) at scrape time.
//!
//! One [`Metrics`] lives for the whole process: it is made with the first configuration
//! generation and handed to every later one (`state::Generation`), like the engine's
//! evaluation slots, so a reload neither resets a counter nor splits it in two. Nothing
//! here ever decides a mail answer: counting cannot fail, and the HTTP side ([`http`])
//! runs on its own task, whose failure is logged and leaves the front-ends alone.

mod counters;
mod encode;
mod health;
pub mod http;

pub use counters::*;
pub use encode::render;
pub use health::problems;

#[cfg(test)]
mod tests;
