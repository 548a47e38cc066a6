//! `self-check`: each of our own domains (`[domains] own`) as a peer sees it, plus what
//! internet.nl's e-mail test asks of a mail domain (DNSSEC, DANE on every MX, SPF `~all`
//! or `-all`, DMARC `p=quarantine` or `p=reject`).
//!
//! The peer's view is the `check` report itself ([`crate::tools::check::build`] over the same
//! facts and decision); on top of it, for our own domains:
//! * the NTA record must not expire within [`EXPIRY_WARNING_DAYS`] (a warning);
//! * every delivery host, not just one, needs DANE: none usable fails, some usable warns
//!   (peers need one, but each delivery tries the broken one first), and when the record
//!   names `ntamx` hosts, an MX host without DANE warns (internet.nl requires all MX hosts);
//! * the DKIM key published at `<selector>._domainkey.<domain>` must be the public half of
//!   the configured `[[dkim]]` key file (the milter defers mail from an own domain without
//!   a usable key, so a missing entry is a failure);
//! * with the STARTTLS probe (`starttls.rs`, on unless `--no-starttls`): every address of
//!   every host answers on port 25, offers STARTTLS, negotiates TLS ≥ 1.2, and shows a
//!   certificate that matches one of its TLSA records; expiry within 14 days warns;
//! * SPF must end in `~all`/`-all` and DMARC must be `p=quarantine`/`p=reject` and
//!   DNSSEC-secure: internet.nl's thresholds, and what NTA 7516 peers may require
//!   (`[policy] require_spf`/`require_dmarc`).
//!
//! # JSON (`self-check --json`), schema version [`SELF_CHECK_VERSION`]
//!
//! ```text
//! { "version": 1,
//!   "checked_on": "2026-05-01",              // UTC day the record's validity was judged on
//!   "result": "pass|warn|fail|temporary",    // worst over all domains
//!   "domains": [ {
//!     "domain": "zkh.nl",
//!     "result": "pass|warn|fail|temporary",  // worst of its checks
//!     "checks": [ {"id": "dnssec|nta_record|nta_validity|targets|dane|starttls|dkim|spf|dmarc",
//!                  "title": "…", "result": "pass|warn|fail|temporary|skipped",
//!                  "detail": "…",
//!                  "hint": "…" | null} ],    // "dkim" once per [[dkim]] entry of the domain
//!     "dane": [ {"host": "mx.zkh.nl", "role": "ntamx|mx", "result": "pass|fail|temporary",
//!                "detail": "…", "dnssec": "secure|…|null", "usable_tlsa": 1,
//!                "starttls": [ {"address": "192.0.2.25:25", "tls_version": "TLSv1.3"|null,
//!                               "cipher": "…"|null, "tlsa_match": "3 1 1 …"|null,
//!                               "cert_days_left": 80|null,
//!                               "outcome": "pass|warn|fail|unreachable", "detail": "…"} ]} ],
//!                // "starttls" check and probes only when probed (not with --no-starttls)
//!     "dkim": [ {"selector": "nta2025", "name": "nta2025._domainkey.zkh.nl",
//!                "key_file": "/etc/…pem", "result": "pass|fail|temporary", "detail": "…",
//!                "hint": "publish: <zone-file entry>" | null,
//!                "expected": "v=DKIM1; k=rsa; p=…" | null,   // null: key file unusable
//!                "published": ["…"], "dnssec": "secure|…|null"} ],
//!     "peer_view": { …one element of `check --json`'s "results"… }
//!   } ] }
//! ```
//!
//! `temporary` means a lookup failed (timeout, SERVFAIL): run again later. A DNSSEC
//! validation failure (bogus) on our own domain is a `fail`: peers cannot use the data
//! until the zone is fixed (expired signatures, a wrong DS).

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, DkimConfig};
use crate::dns::{DnsError, DnsResult, Dnssec, Resolver};
use crate::domain::DomainName;
use crate::engine::Engine;
use crate::nta::fmt_date;
use crate::tools::check::{self as report, DomainReport};

mod cert;
mod dane;
mod dkim;
mod nta;
mod probe;
mod spf_dmarc;
pub mod starttls;

use dane::{dane_check, dane_hosts};
use dkim::dkim_entry;
use nta::{dnssec_check, nta_checks, targets_check};
pub use probe::Starttls;
use spf_dmarc::{dmarc_check, spf_check};

/// Bumped on any incompatible change of the JSON document.
pub const SELF_CHECK_VERSION: u32 = 1;
/// A record whose last valid day is this many days away or fewer is a warning: renewal
/// (certification, then a new `enddate`) takes time, and after the last day every peer
/// stops delivering directly.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    /// Not applicable (e.g. validity when there is no record).
    Skipped,
    Warn,
    Fail,
    /// A lookup failed; nothing definite is known.
    Temporary,
}

impl Status {
    fn rank(self) -> u8 {
        match self {
            Status::Pass | Status::Skipped => 0,
            Status::Warn => 1,
            Status::Fail => 2,
            Status::Temporary => 3,
        }
    }

    /// The worse of two.
    pub fn worst(self, other: Status) -> Status {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Status::Pass => "[PASS]",
            Status::Skipped => "[ -- ]",
            Status::Warn => "[WARN]",
            Status::Fail => "[FAIL]",
            Status::Temporary => "[TEMP]",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Pass | Status::Skipped => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Temporary => "TEMPORARY FAILURE",
        }
    }

    /// Exit status: 0 pass (warnings allowed), 1 fail, 2 temporary.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Pass | Status::Skipped | Status::Warn => 0,
            Status::Fail => 1,
            Status::Temporary => 2,
        }
    }

    /// A failed lookup: bogus DNSSEC on our own zone is a definite fault; the rest may pass.
    fn of_error(e: &DnsError) -> Status {
        match e {
            DnsError::Bogus => Status::Fail,
            _ => Status::Temporary,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub result: Status,
    pub detail: String,
    /// What to do about it, when there is something specific to do (e.g. the record to
    /// publish); `null` otherwise.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: DomainName,
    /// `ntamx` or `mx`.
    pub role: &'static str,
    pub result: Status,
    pub detail: String,
    pub dnssec: Option<Dnssec>,
    pub usable_tlsa: usize,
    /// The STARTTLS probe of each of the host's addresses (empty when not probed).
    pub starttls: Vec<starttls::TlsProbe>,
    /// The usable TLSA records, for the probe.
    #[serde(skip)]
    pub tlsa: Vec<crate::dns::Tlsa>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DkimResult {
    pub selector: String,
    pub name: String,
    pub key_file: PathBuf,
    pub result: Status,
    pub detail: String,
    /// The record to publish when the check failed, as a zone-file entry.
    pub hint: Option<String>,
    /// The record the key file calls for; `None` when the file is unusable.
    pub expected: Option<String>,
    pub published: Vec<String>,
    pub dnssec: Option<Dnssec>,
}

#[derive(Debug, Serialize)]
pub struct DomainResult {
    pub domain: DomainName,
    pub result: Status,
    pub checks: Vec<Check>,
    pub dane: Vec<HostResult>,
    pub dkim: Vec<DkimResult>,
    /// What `check <domain>` says: the peer's view.
    pub peer_view: DomainReport,
}

#[derive(Debug, Serialize)]
pub struct Document {
    pub version: u32,
    #[serde(serialize_with = "crate::nta::ser_date")]
    pub checked_on: time::Date,
    pub result: Status,
    pub domains: Vec<DomainResult>,
}

/// Checks every own domain concurrently. `config.domains.own` must not be empty (the CLI
/// refuses that as a usage error before calling this).
/// `starttls`: probe every MX/ntamx host on port 25 as well (`None`: DNS only).
pub async fn run<R: Resolver>(
    engine: &Engine<R>,
    config: &Config,
    starttls: Option<&Starttls>,
) -> Document {
    let mut own: Vec<&DomainName> = Vec::new();
    for d in &config.domains.own {
        if !own.contains(&d) {
            own.push(d);
        }
    }
    let domains = futures::future::join_all(
        own.iter()
            .map(|d| check_domain(engine, config, d, starttls)),
    )
    .await;
    let result = domains
        .iter()
        .fold(Status::Pass, |acc, d| acc.worst(d.result));
    let checked_on = domains
        .first()
        .map_or_else(crate::nta::today_utc, |d| d.peer_view.checked_on);
    Document {
        version: SELF_CHECK_VERSION,
        checked_on,
        result,
        domains,
    }
}

/// The `[[dkim]]` entries shown under `own`: those whose domain is `own` or below it and
/// not below a more specific own domain.
fn dkim_entries<'a>(config: &'a Config, own: &DomainName) -> Vec<&'a DkimConfig> {
    config
        .dkim
        .iter()
        .filter(|e| {
            let best = config
                .domains
                .own
                .iter()
                .filter(|o| e.domain.is_within(o))
                .max_by_key(|o| o.as_str().len());
            best == Some(own)
        })
        .collect()
}

async fn check_domain<R: Resolver>(
    engine: &Engine<R>,
    config: &Config,
    domain: &DomainName,
    starttls: Option<&Starttls>,
) -> DomainResult {
    let (facts, verdict) = engine.check(domain).await;
    let peer_view = report::build(&facts, &verdict, &config.policy);
    let timeout = engine.timeout();
    let resolver = engine.resolver().as_ref();

    let entries = dkim_entries(config, domain);
    let (mut dane, dkim) = tokio::join!(
        dane_hosts(resolver, &facts, timeout),
        futures::future::join_all(entries.iter().map(|e| dkim_entry(resolver, e, timeout)))
    );

    let mut checks = vec![dnssec_check(&facts, &peer_view)];
    checks.extend(nta_checks(&facts, &peer_view));
    checks.push(targets_check(&facts, &peer_view));
    checks.push(dane_check(&facts, &dane));
    if let Some(s) = starttls {
        probe::probe_hosts(s, &mut dane).await;
        checks.push(probe::starttls_check(&dane));
    }
    if !entries.iter().any(|e| &e.domain == domain) {
        checks.push(Check {
            id: "dkim",
            title: DKIM_TITLE,
            result: Status::Fail,
            detail: format!(
                "no [[dkim]] entry for {domain}: the milter defers outgoing secure mail from {domain} (4.7.0) rather than send it unsigned"
            ),
            hint: Some(format!(
                "create a key: nta7516-milter dkim-keygen --domain {domain} --selector SELECTOR"
            )),
        });
    }
    for d in &dkim {
        checks.push(Check {
            id: "dkim",
            title: DKIM_TITLE,
            result: d.result,
            detail: format!("{}: {}", d.name, d.detail),
            hint: d.hint.clone(),
        });
    }
    checks.push(spf_check(&facts));
    checks.push(dmarc_check(&facts));

    let result = checks
        .iter()
        .fold(Status::Pass, |acc, c| acc.worst(c.result));
    DomainResult {
        domain: domain.clone(),
        result,
        checks,
        dane,
        dkim,
        peer_view,
    }
}

const DKIM_TITLE: &str = "DKIM key in DNS matches the configured key";

pub(super) async fn within<T>(
    timeout: Duration,
    f: impl Future<Output = DnsResult<T>>,
) -> DnsResult<T> {
    tokio::time::timeout(timeout, f)
        .await
        .unwrap_or(Err(DnsError::Timeout))
}

/// The text report, in the style of `check`.
pub fn render_text(doc: &Document) -> String {
    let mut s = String::new();
    for (i, d) in doc.domains.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "{} — self-check: {}", d.domain, d.result.label());
        for c in &d.checks {
            let _ = writeln!(s, "  {} {:<52} {}", c.result.tag(), c.title, c.detail);
            if let Some(hint) = &c.hint {
                for line in hint.lines() {
                    let _ = writeln!(s, "         {line}");
                }
            }
        }
        let pv = &d.peer_view;
        match &pv.compliance {
            Some(c) => {
                let _ = writeln!(
                    s,
                    "  Peers see: compliant — they deliver directly with DANE to {} (valid until {})",
                    report::host_list(c),
                    fmt_date(c.valid_until)
                );
            }
            None => report::render_not_compliant(&mut s, pv, "Peers see"),
        }
    }
    let count = |st: Status| doc.domains.iter().filter(|d| d.result == st).count();
    let _ = writeln!(
        s,
        "\nSelf-check: {} ({} domain(s): {} pass, {} warn, {} fail, {} temporary)",
        doc.result.label(),
        doc.domains.len(),
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail),
        count(Status::Temporary)
    );
    s
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod starttls_tests;
