//! The counters themselves: fixed arrays of atomics, one cell per label combination.
//! Below the engine in the layers (ARCHITECTURE.md): it knows verdicts, reason codes and
//! classifications, nothing of the state or the front-ends that bump it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::config::Classification;
pub use crate::policy::RouteVerdict;
use crate::policy::{Code, Verdict};

/// Every metric name as scraped (counters with their `_total`), pinned by a test: a
/// renamed metric silently breaks the operator's dashboards and alert rules.
pub const METRIC_NAMES: [&str; 14] = [
    "nta7516_build_info",
    "nta7516_front_end_up",
    "nta7516_config_generation",
    "nta7516_messages_total",
    "nta7516_route_answers_total",
    "nta7516_dns_evaluations_total",
    "nta7516_dns_evaluation_duration_seconds",
    "nta7516_verdict_cache_entries",
    "nta7516_verdict_cache_lookups_total",
    "nta7516_verdict_cache_hit_ratio",
    "nta7516_audit_writes_total",
    "nta7516_audit_failures_total",
    "nta7516_audit_healthy",
    "nta7516_healthy",
];

/// Upper bounds (seconds) of the DNS evaluation latency buckets: a cached-resolver
/// answer takes milliseconds, a cold DNSSEC chain tens to hundreds, and `[dns] timeout`
/// is at most 30 s.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The two front-ends whose state `/healthz` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEnd {
    Milter,
    Map,
}

impl FrontEnd {
    pub const ALL: [FrontEnd; 2] = [FrontEnd::Milter, FrontEnd::Map];

    pub fn as_str(self) -> &'static str {
        match self {
            FrontEnd::Milter => "milter",
            FrontEnd::Map => "map",
        }
    }
}

/// What the MTA was told about a message at end of data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// Accepted and put on hold (honoured DMARC p=quarantine).
    Quarantined,
    /// 4xx: the client keeps the message and retries.
    Deferred,
    /// 5xx.
    Rejected,
}

impl Outcome {
    pub(super) const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::Quarantined,
        Outcome::Deferred,
        Outcome::Rejected,
    ];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Quarantined => "quarantined",
            Outcome::Deferred => "deferred",
            Outcome::Rejected => "rejected",
        }
    }
}

/// Which way the message travels through the gateway, as the audit trail and the
/// metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

pub(super) const DIRECTIONS: [Direction; 2] = [Direction::Inbound, Direction::Outbound];
/// `None`: no classification was made (inbound mail, or refused before the plan).
pub(super) const CLASSIFICATIONS: [Option<Classification>; 3] = [
    Some(Classification::Secure),
    Some(Classification::Standard),
    None,
];
pub(super) const VERDICTS: [RouteVerdict; 3] = [
    RouteVerdict::Compliant,
    RouteVerdict::NotCompliant,
    RouteVerdict::Temporary,
];
/// Every reason code, in [`reason_index`] order; the last cell counts "no reason"
/// (a compliant verdict).
pub(super) const REASONS: [Code; 18] = [
    Code::NtaRecordInsecure,
    Code::NtaRecordAbsent,
    Code::NtaRecordMalformed,
    Code::NtaRecordsConflicting,
    Code::NtaRecordExpired,
    Code::NtaRecordNotYetValid,
    Code::MxInsecure,
    Code::NullMx,
    Code::NoTargets,
    Code::NoUsableTlsa,
    Code::DmarcPolicyWeak,
    Code::SpfPolicyWeak,
    Code::DnsTimeout,
    Code::DnsServfail,
    Code::DnssecBogus,
    Code::DnsError,
    Code::AddressLiteral,
    Code::InvalidDomain,
];

/// Exhaustive on purpose: a new reason code does not compile until it has a cell.
pub(super) fn reason_index(code: Code) -> usize {
    match code {
        Code::NtaRecordInsecure => 0,
        Code::NtaRecordAbsent => 1,
        Code::NtaRecordMalformed => 2,
        Code::NtaRecordsConflicting => 3,
        Code::NtaRecordExpired => 4,
        Code::NtaRecordNotYetValid => 5,
        Code::MxInsecure => 6,
        Code::NullMx => 7,
        Code::NoTargets => 8,
        Code::NoUsableTlsa => 9,
        Code::DmarcPolicyWeak => 10,
        Code::SpfPolicyWeak => 11,
        Code::DnsTimeout => 12,
        Code::DnsServfail => 13,
        Code::DnssecBogus => 14,
        Code::DnsError => 15,
        Code::AddressLiteral => 16,
        Code::InvalidDomain => 17,
    }
}

fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Inbound => 0,
        Direction::Outbound => 1,
    }
}

fn classification_index(c: Option<Classification>) -> usize {
    match c {
        Some(Classification::Secure) => 0,
        Some(Classification::Standard) => 1,
        None => 2,
    }
}

pub(super) fn verdict_index(v: RouteVerdict) -> usize {
    match v {
        RouteVerdict::Compliant => 0,
        RouteVerdict::NotCompliant => 1,
        RouteVerdict::Temporary => 2,
    }
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Accepted => 0,
        Outcome::Quarantined => 1,
        Outcome::Deferred => 2,
        Outcome::Rejected => 3,
    }
}

pub(super) const MESSAGE_CELLS: usize =
    DIRECTIONS.len() * CLASSIFICATIONS.len() * Outcome::ALL.len();
const ROUTE_CELLS: usize = VERDICTS.len() * (REASONS.len() + 1);

pub(super) fn message_cell(d: Direction, c: Option<Classification>, o: Outcome) -> usize {
    (direction_index(d) * CLASSIFICATIONS.len() + classification_index(c)) * Outcome::ALL.len()
        + outcome_index(o)
}

pub(super) fn route_cell(v: RouteVerdict, reason: Option<Code>) -> usize {
    verdict_index(v) * (REASONS.len() + 1) + reason.map_or(REASONS.len(), reason_index)
}

/// The first reason of a verdict (what its log line and the MTA's text lead with).
fn first_reason(v: &Verdict) -> Option<Code> {
    match v {
        Verdict::Compliant(_) => None,
        Verdict::NotCompliant { reasons } => reasons.first().map(|r| r.code),
        Verdict::Temporary { reason } => Some(reason.code),
    }
}

/// Counts whose bucket bounds are [`LATENCY_BUCKETS`]; `sum` in microseconds.
#[derive(Debug)]
pub(super) struct Histogram {
    /// Per bucket (not cumulative); the last cell is above every bound.
    pub(super) buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    pub(super) sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len() + 1],
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The state of one front-end: `running` while its task is serving (set by
/// `daemon::run`), `accepting` while its listener's accepts succeed (set by the
/// listener, `server::listen::Bound`, which turns it false while accepts fail for lack
/// of descriptors or memory).
#[derive(Debug)]
struct FrontEndState {
    running: AtomicBool,
    accepting: Arc<AtomicBool>,
}

impl FrontEndState {
    fn new() -> Self {
        Self {
            running: AtomicBool::new(false),
            accepting: Arc::new(AtomicBool::new(true)),
        }
    }
}

/// The process's counters. `Send + Sync`; shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    pub(super) messages: [AtomicU64; MESSAGE_CELLS],
    pub(super) routes: [AtomicU64; ROUTE_CELLS],
    pub(super) evaluations: [AtomicU64; VERDICTS.len()],
    pub(super) latency: Histogram,
    pub(super) cache_hits: AtomicU64,
    pub(super) cache_misses: AtomicU64,
    front_ends: [FrontEndState; 2],
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            messages: [const { AtomicU64::new(0) }; MESSAGE_CELLS],
            routes: [const { AtomicU64::new(0) }; ROUTE_CELLS],
            evaluations: [const { AtomicU64::new(0) }; VERDICTS.len()],
            latency: Histogram::new(),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            front_ends: [FrontEndState::new(), FrontEndState::new()],
        }
    }

    /// One message answered at end of data.
    pub fn message(&self, d: Direction, c: Option<Classification>, o: Outcome) {
        self.messages[message_cell(d, c, o)].fetch_add(1, Ordering::Relaxed);
    }

    /// One `route` answer decided from `verdict`.
    pub fn route(&self, verdict: &Verdict) {
        let cell = route_cell(verdict.into(), first_reason(verdict));
        self.routes[cell].fetch_add(1, Ordering::Relaxed);
    }

    /// One DNS evaluation of a domain (a verdict-cache miss), and how long it took.
    pub fn evaluated(&self, verdict: &Verdict, took: Duration) {
        self.evaluations[verdict_index(verdict.into())].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(took);
    }

    /// A verdict-cache lookup: `hit` when a fresh verdict was there.
    pub fn cache_lookup(&self, hit: bool) {
        let c = if hit {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn state(&self, f: FrontEnd) -> &FrontEndState {
        &self.front_ends[match f {
            FrontEnd::Milter => 0,
            FrontEnd::Map => 1,
        }]
    }

    /// Marks a front-end's task as serving (`true`) or ended (`false`).
    pub fn set_running(&self, f: FrontEnd, running: bool) {
        self.state(f).running.store(running, Ordering::Relaxed);
    }

    /// The flag a front-end's listener keeps current (see `Bound::report_accepting`).
    pub fn accepting_flag(&self, f: FrontEnd) -> Arc<AtomicBool> {
        self.state(f).accepting.clone()
    }

    /// Serving and accepting connections.
    pub fn front_end_up(&self, f: FrontEnd) -> bool {
        let s = self.state(f);
        s.running.load(Ordering::Relaxed) && s.accepting.load(Ordering::Relaxed)
    }

    pub(super) fn message_count(&self, d: Direction, c: Option<Classification>, o: Outcome) -> u64 {
        self.messages[message_cell(d, c, o)].load(Ordering::Relaxed)
    }

    pub(super) fn route_count(&self, v: RouteVerdict, reason: Option<Code>) -> u64 {
        self.routes[route_cell(v, reason)].load(Ordering::Relaxed)
    }
}
