//! `self-check`: each of our own domains (`[domains] own`) as a peer sees it, plus what
//! internet.nl asks of a mail domain (reference/nta7516.md §4.1).
//!
//! The peer's view is the `check` report itself ([`crate::report::build`] over the same
//! facts and decision); on top of it, for our own domains:
//! * the NTA record must not expire within [`EXPIRY_WARNING_DAYS`] (a warning);
//! * every delivery host, not just one, needs DANE: none usable fails, some usable warns
//!   (peers need one, but each delivery tries the broken one first), and when the record
//!   names `ntamx` hosts, an MX host without DANE warns (internet.nl requires all MX hosts);
//! * the DKIM key published at `<selector>._domainkey.<domain>` must be the public half of
//!   the configured `[[dkim]]` key file (the milter defers mail from an own domain without
//!   a usable key, so a missing entry is a failure);
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
//!     "checks": [ {"id": "dnssec|nta_record|nta_validity|targets|dane|dkim|spf|dmarc",
//!                  "title": "…", "result": "pass|warn|fail|temporary|skipped",
//!                  "detail": "…",
//!                  "hint": "…" | null} ],    // "dkim" once per [[dkim]] entry of the domain
//!     "dane": [ {"host": "mx.zkh.nl", "role": "ntamx|mx", "result": "pass|fail|temporary",
//!                "detail": "…", "dnssec": "secure|…|null", "usable_tlsa": 1} ],
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
use crate::dns::{Answer, DnsError, DnsResult, Dnssec, Resolver, Tlsa};
use crate::domain::DomainName;
use crate::engine::Engine;
use crate::message::dkim::{KeyError, SigningKey};
use crate::nta::facts::{Facts, target_hosts, txt_records};
use crate::nta::fmt_date;
use crate::nta::record::{self, Selection, Syntax, Validity};
use crate::policy::{SpfAll, dmarc_policy, spf_all};
use crate::report::{self, DomainReport};

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
pub async fn run<R: Resolver>(engine: &Engine<R>, config: &Config) -> Document {
    let mut own: Vec<&DomainName> = Vec::new();
    for d in &config.domains.own {
        if !own.contains(&d) {
            own.push(d);
        }
    }
    let domains =
        futures::future::join_all(own.iter().map(|d| check_domain(engine, config, d))).await;
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
) -> DomainResult {
    let (facts, verdict) = engine.check(domain).await;
    let peer_view = report::build(&facts, &verdict, &config.policy);
    let timeout = engine.timeout();
    let resolver = engine.resolver().as_ref();

    let entries = dkim_entries(config, domain);
    let (dane, dkim) = tokio::join!(
        dane_hosts(resolver, &facts, timeout),
        futures::future::join_all(entries.iter().map(|e| dkim_entry(resolver, e, timeout)))
    );

    let mut checks = vec![dnssec_check(&facts, &peer_view)];
    checks.extend(nta_checks(&facts, &peer_view));
    checks.push(targets_check(&facts, &peer_view));
    checks.push(dane_check(&facts, &dane));
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

fn criterion<'a>(r: &'a DomainReport, id: &str) -> Option<&'a report::Criterion> {
    r.criteria.iter().find(|c| c.id == id)
}

fn title_of(r: &DomainReport, id: &str, fallback: &'static str) -> &'static str {
    criterion(r, id).map_or(fallback, |c| c.title)
}

fn detail_of(r: &DomainReport, id: &str) -> String {
    criterion(r, id).map_or_else(String::new, |c| c.detail.clone())
}

fn dnssec_check(facts: &Facts, r: &DomainReport) -> Check {
    let (result, detail) = match &facts.txt {
        Err(e) => (Status::of_error(e), format!("TXT lookup failed: {e}")),
        Ok(a) if a.is_secure() => (Status::Pass, "secure".to_string()),
        Ok(a) => (
            Status::Fail,
            format!(
                "{}: the zone is not signed or its DS is missing at the parent; peers ignore an unsigned NTA record",
                a.dnssec()
            ),
        ),
    };
    Check {
        id: "dnssec",
        title: title_of(r, "dnssec_txt", "DNSSEC on the domain's TXT records"),
        result,
        detail,
        hint: None,
    }
}

fn nta_checks(facts: &Facts, r: &DomainReport) -> [Check; 2] {
    let record_title = title_of(r, "nta_record", "NTA 7516 record present and well-formed");
    let validity_title = "NTA 7516 record valid, not expiring within 30 days";
    if let Err(e) = &facts.txt {
        let detail = format!("TXT lookup failed: {e}");
        return [
            Check {
                id: "nta_record",
                title: record_title,
                result: Status::of_error(e),
                detail: detail.clone(),
                hint: None,
            },
            Check {
                id: "nta_validity",
                title: validity_title,
                result: Status::Skipped,
                detail: "-".into(),
                hint: None,
            },
        ];
    }
    let hint = "generate one with `nta7516-milter nta-record`";
    let (record_result, record_detail, validity) = match record::select(txt_records(&facts.txt)) {
        Selection::Found(rec) => {
            let (res, det) = if rec.syntax == Syntax::Legacy2019 {
                (
                    Status::Warn,
                    format!(
                        "{} — the 2019 syntax; publish the current v=NTA7516-1 form ({hint})",
                        detail_of(r, "nta_record")
                    ),
                )
            } else {
                (Status::Pass, detail_of(r, "nta_record"))
            };
            (res, det, Some(validity_check(&rec, facts.today)))
        }
        Selection::Absent => (
            Status::Fail,
            format!(
                "no v=NTA7516 record at the apex: peers do not treat the domain as an NTA 7516 party; {hint}"
            ),
            None,
        ),
        Selection::Malformed { error, .. } => {
            (Status::Fail, format!("malformed: {error}; {hint}"), None)
        }
        Selection::Conflicting { records } => (
            Status::Fail,
            format!(
                "{} different NTA 7516 records: peers ignore them all; keep exactly one",
                records.len()
            ),
            None,
        ),
    };
    let (validity_result, validity_detail) = validity.unwrap_or((Status::Skipped, "-".into()));
    [
        Check {
            id: "nta_record",
            title: record_title,
            result: record_result,
            detail: record_detail,
            hint: None,
        },
        Check {
            id: "nta_validity",
            title: validity_title,
            result: validity_result,
            detail: validity_detail,
            hint: None,
        },
    ]
}

fn validity_check(rec: &record::NtaRecord, today: time::Date) -> (Status, String) {
    let window = format!(
        "{} to {}",
        fmt_date(rec.first_valid_day()),
        fmt_date(rec.last_valid_day())
    );
    match rec.validity(today) {
        Validity::Valid { days_left } if days_left <= EXPIRY_WARNING_DAYS => (
            Status::Warn,
            format!(
                "{window}: expires in {days_left} days; renew the certification and publish a later enddate before then"
            ),
        ),
        Validity::Valid { days_left } => {
            (Status::Pass, format!("{window} ({days_left} days left)"))
        }
        Validity::NotYetValid { starts } => (
            Status::Fail,
            format!(
                "{window}: not valid before {}; peers do not deliver directly until then",
                fmt_date(starts)
            ),
        ),
        Validity::Expired { ended } => (
            Status::Fail,
            format!(
                "{window}: expired on {}; peers no longer deliver directly",
                fmt_date(ended)
            ),
        ),
    }
}

fn via_ntamx(facts: &Facts) -> bool {
    matches!(record::select(txt_records(&facts.txt)), Selection::Found(r) if !r.targets().is_empty())
}

fn targets_check(facts: &Facts, r: &DomainReport) -> Check {
    let title = title_of(r, "targets", "Delivery targets (ntamx or MX) DNSSEC-secure");
    let (result, detail) = match (&facts.mx, via_ntamx(facts)) {
        (Err(e), false) => (Status::of_error(e), format!("MX lookup failed: {e}")),
        _ => {
            let ok = criterion(r, "targets").is_some_and(|c| c.result == "pass");
            (
                if ok { Status::Pass } else { Status::Fail },
                detail_of(r, "targets"),
            )
        }
    };
    Check {
        id: "targets",
        title,
        result,
        detail,
        hint: None,
    }
}

/// One host's TLSA as peers (and internet.nl) judge it.
fn host_result(host: DomainName, role: &'static str, tlsa: &DnsResult<Tlsa>) -> HostResult {
    let (result, detail, dnssec, usable) = match tlsa {
        Err(e) => (
            Status::of_error(e),
            format!("TLSA lookup failed: {e}"),
            None,
            0,
        ),
        Ok(a) => {
            let usable = a.records().iter().filter(|t| t.usable_for_smtp()).count();
            let (result, detail) = if !a.is_secure() {
                (Status::Fail, format!("TLSA is {}", a.dnssec()))
            } else if let Answer::Denied { denial, .. } = a {
                (Status::Fail, format!("no TLSA record ({denial})"))
            } else if usable == 0 {
                (
                    Status::Fail,
                    format!(
                        "{} TLSA record(s), none usable (SMTP needs usage 2 or 3, e.g. 3 1 1)",
                        a.records().len()
                    ),
                )
            } else {
                (
                    Status::Pass,
                    format!("{usable} usable TLSA record(s), secure"),
                )
            };
            (result, detail, Some(a.dnssec()), usable)
        }
    };
    HostResult {
        host,
        role,
        result,
        detail,
        dnssec,
        usable_tlsa: usable,
    }
}

async fn within<T>(timeout: Duration, f: impl Future<Output = DnsResult<T>>) -> DnsResult<T> {
    tokio::time::timeout(timeout, f)
        .await
        .unwrap_or(Err(DnsError::Timeout))
}

/// The delivery targets from the facts, and, when the record names `ntamx` hosts, the MX
/// hosts as well (ordinary mail and internet.nl use those).
async fn dane_hosts<R: Resolver>(
    resolver: &R,
    facts: &Facts,
    timeout: Duration,
) -> Vec<HostResult> {
    let ntamx = via_ntamx(facts);
    let role = if ntamx { "ntamx" } else { "mx" };
    let mut out: Vec<HostResult> = facts
        .targets
        .iter()
        .flatten()
        .map(|t| host_result(t.host.clone(), role, &t.tlsa))
        .collect();
    if ntamx {
        let extra: Vec<DomainName> = target_hosts(&Selection::Absent, &facts.mx)
            .into_iter()
            .filter(|h| !out.iter().any(|o| &o.host == h))
            .collect();
        let looked = futures::future::join_all(extra.into_iter().map(|host| async move {
            let tlsa = match host.prefixed("_25._tcp") {
                Ok(name) => within(timeout, resolver.tlsa(&name)).await,
                Err(e) => Err(DnsError::Other(format!("TLSA name: {e}"))),
            };
            host_result(host, "mx", &tlsa)
        }))
        .await;
        out.extend(looked);
    }
    out
}

fn dane_check(facts: &Facts, hosts: &[HostResult]) -> Check {
    let title = "DANE: secure TLSA (2 or 3) on every MX/ntamx host";
    let detail: Vec<String> = hosts
        .iter()
        .map(|h| format!("{} ({}): {}", h.host, h.role, h.detail))
        .collect();
    let targets: Vec<&HostResult> = hosts.iter().filter(|h| h.role == role_of(facts)).collect();
    let result = if hosts.iter().any(|h| h.result == Status::Temporary) {
        Status::Temporary
    } else if targets.is_empty() {
        match (&facts.mx, via_ntamx(facts)) {
            (Err(e), false) => Status::of_error(e),
            _ => Status::Fail,
        }
    } else if targets.iter().all(|h| h.result == Status::Pass) {
        if hosts.iter().all(|h| h.result == Status::Pass) {
            Status::Pass
        } else {
            // NTA mail goes to the ntamx hosts; an MX without DANE only affects ordinary
            // mail and the internet.nl score.
            Status::Warn
        }
    } else if targets.iter().any(|h| h.result == Status::Pass) {
        // Peers deliver to a usable host, but every delivery first tries the broken one.
        Status::Warn
    } else {
        Status::Fail
    };
    Check {
        id: "dane",
        title,
        result,
        detail: if detail.is_empty() {
            "no MX or ntamx hosts".into()
        } else {
            detail.join("; ")
        },
        hint: None,
    }
}

fn role_of(facts: &Facts) -> &'static str {
    if via_ntamx(facts) { "ntamx" } else { "mx" }
}

/// The `k=` and `p=` of the DKIM key records among `txts` (records that carry a `p=` tag).
fn dkim_records(txts: &[String]) -> Vec<(&str, String, String)> {
    use super::keygen::record_tag;
    txts.iter()
        .filter_map(|t| {
            let p = record_tag(t, "p")?;
            let k = record_tag(t, "k").unwrap_or("rsa").to_ascii_lowercase();
            let p: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Some((t.as_str(), k, p))
        })
        .collect()
}

async fn dkim_entry<R: Resolver>(
    resolver: &R,
    entry: &DkimConfig,
    timeout: Duration,
) -> DkimResult {
    let name = format!("{}._domainkey.{}", entry.selector, entry.domain);
    let mut out = DkimResult {
        selector: entry.selector.clone(),
        name: name.clone(),
        key_file: entry.key.clone(),
        result: Status::Fail,
        detail: String::new(),
        hint: None,
        expected: None,
        published: Vec::new(),
        dnssec: None,
    };
    let key = match SigningKey::load(&entry.domain, &entry.selector, &entry.key) {
        Ok(k) => k,
        Err(e) => {
            out.detail = e.to_string();
            if matches!(e, KeyError::Read { .. }) {
                out.hint = Some(
                    "run self-check as a user that can read the key file (e.g. root), or fix the [[dkim]] key path".into(),
                );
            }
            return out;
        }
    };
    let expected = key.public_key_dns_record();
    out.expected = Some(expected.clone());
    let lookup = match DomainName::parse(&name) {
        Ok(n) => within(timeout, resolver.txt(&n)).await,
        Err(e) => Err(DnsError::Other(format!("{name}: {e}"))),
    };
    match lookup {
        Err(e) => {
            out.result = Status::of_error(&e);
            out.detail = format!("TXT lookup failed: {e}");
        }
        Ok(answer) => {
            out.dnssec = Some(answer.dnssec());
            out.published = answer.records().to_vec();
            let (result, detail) = judge_dkim(&answer, &key);
            out.result = result;
            out.detail = detail;
            if result != Status::Pass {
                out.hint = Some(format!(
                    "publish: {}",
                    super::zone_file_txt(&name, &expected)
                ));
            }
        }
    }
    out
}

/// The published key record(s) at the selector's name against the configured key.
fn judge_dkim(answer: &Answer<String>, key: &SigningKey) -> (Status, String) {
    let expected = key.public_key_dns_record();
    let want_k = key.algorithm().key_type();
    let want_p = super::keygen::record_tag(&expected, "p").unwrap_or_default();
    let file = key.path().display();
    let found = dkim_records(answer.records());
    match (answer, found.as_slice()) {
        (Answer::Denied { denial, .. }, _) => {
            (Status::Fail, format!("no key published ({denial})"))
        }
        (_, []) => (
            Status::Fail,
            "the TXT record there is not a DKIM key record (no p= tag)".into(),
        ),
        (_, [_, _, ..]) => (
            Status::Fail,
            format!(
                "{} key records at one name; verifiers may use any of them: keep exactly one",
                found.len()
            ),
        ),
        (_, [(_, _, p)]) if p.is_empty() => (
            Status::Fail,
            "the published key is revoked (empty p=)".into(),
        ),
        (_, [(_, k, _)]) if k != want_k => (
            Status::Fail,
            format!("published k={k} but {file} is an {} key", key.algorithm()),
        ),
        (_, [(_, _, p)]) if !same_base64(p, want_p) => (
            Status::Fail,
            format!(
                "the published key is not the public half of {file} (published p={}, expected p={}): mail signed with this key fails DKIM",
                abbreviate(p),
                abbreviate(want_p)
            ),
        ),
        (a, [_]) => {
            let size = key
                .rsa_bits()
                .map_or_else(String::new, |b| format!(", {b} bits"));
            (
                Status::Pass,
                format!("k={want_k}{size}, matches {file} ({})", a.dnssec()),
            )
        }
    }
}

fn same_base64(a: &str, b: &str) -> bool {
    let dec = |s: &str| data_encoding::BASE64.decode(s.as_bytes()).ok();
    match (dec(a), dec(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The start and end of a long base64 value: enough to tell two keys apart.
fn abbreviate(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 24 {
        return s.to_string();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}

fn spf_check(facts: &Facts) -> Check {
    let title = "SPF ends in ~all or -all";
    let (result, detail) = match &facts.txt {
        Err(e) => (Status::of_error(e), format!("TXT lookup failed: {e}")),
        Ok(a) => {
            let spf = a
                .records()
                .iter()
                .find(|t| {
                    let t = t.trim_start().to_ascii_lowercase();
                    t == "v=spf1" || t.starts_with("v=spf1 ")
                })
                .cloned()
                .unwrap_or_default();
            match spf_all(a.records()) {
                SpfAll::Strict => (Status::Pass, spf),
                SpfAll::Redirect(to) => (
                    Status::Warn,
                    format!(
                        "{spf}: redirect={to} is not followed here; make sure {to} ends in ~all or -all"
                    ),
                ),
                SpfAll::None => (
                    Status::Fail,
                    "no SPF record; publish e.g. \"v=spf1 mx -all\"".to_string(),
                ),
                SpfAll::Several => (
                    Status::Fail,
                    "several SPF records (RFC 7208 §4.5: permerror); merge them into one"
                        .to_string(),
                ),
                SpfAll::Weak(how) => (
                    Status::Fail,
                    format!(
                        "{spf}: ends in {how}; internet.nl and NTA 7516 peers want ~all or -all"
                    ),
                ),
            }
        }
    };
    Check {
        id: "spf",
        title,
        result,
        detail,
        hint: None,
    }
}

fn dmarc_check(facts: &Facts) -> Check {
    let title = "DMARC p=quarantine or p=reject, DNSSEC-secure";
    let (result, detail) = match &facts.dmarc {
        None => (Status::Temporary, "_dmarc was not looked up".to_string()),
        Some(Err(e)) => (
            Status::of_error(e),
            format!("_dmarc TXT lookup failed: {e}"),
        ),
        Some(Ok(a)) => match dmarc_policy(a.records()) {
            Some(p) if matches!(p.as_str(), "quarantine" | "reject") && a.is_secure() => {
                (Status::Pass, format!("p={p} ({})", a.dnssec()))
            }
            Some(p) if matches!(p.as_str(), "quarantine" | "reject") => (
                Status::Fail,
                format!(
                    "p={p}, but the record is {}; peers requiring DMARC want it DNSSEC-secure",
                    a.dnssec()
                ),
            ),
            Some(p) => (
                Status::Fail,
                format!(
                    "p={p} ({}); internet.nl and NTA 7516 peers want p=quarantine or p=reject",
                    a.dnssec()
                ),
            ),
            None => (
                Status::Fail,
                format!(
                    "no single DMARC record at _dmarc.{} ({}); publish e.g. \"v=DMARC1; p=reject\"",
                    facts.domain,
                    a.dnssec()
                ),
            ),
        },
    };
    Check {
        id: "dmarc",
        title,
        result,
        detail,
        hint: None,
    }
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
                let hosts: Vec<String> = c.targets.iter().map(|h| h.to_string()).collect();
                let _ = writeln!(
                    s,
                    "  Peers see: compliant — they deliver directly with DANE to {} (valid until {})",
                    hosts.join(", "),
                    fmt_date(c.valid_until)
                );
            }
            None => {
                let _ = writeln!(s, "  Peers see: {}", pv.verdict.replace('_', " "));
                for reason in &pv.reasons {
                    let _ = writeln!(s, "    - {} [{}]", reason.message, reason.code);
                }
            }
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
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::dns::{Denial, Mx};
    use crate::tools::keygen::{KeyKind, generate_pkcs8, pem};

    /// Answers from a table; names not in it time out.
    #[derive(Default)]
    struct Table {
        txt: HashMap<String, DnsResult<String>>,
        mx: HashMap<String, DnsResult<Mx>>,
        tlsa: HashMap<String, DnsResult<Tlsa>>,
    }

    fn get<T: Clone>(m: &HashMap<String, DnsResult<T>>, n: &DomainName) -> DnsResult<T> {
        m.get(n.as_str()).cloned().unwrap_or(Err(DnsError::Timeout))
    }

    impl Resolver for Table {
        async fn txt(&self, name: &DomainName) -> DnsResult<String> {
            get(&self.txt, name)
        }
        async fn mx(&self, name: &DomainName) -> DnsResult<Mx> {
            get(&self.mx, name)
        }
        async fn tlsa(&self, name: &DomainName) -> DnsResult<Tlsa> {
            get(&self.tlsa, name)
        }
    }

    fn secure<T>(records: Vec<T>) -> DnsResult<T> {
        Ok(Answer::Records {
            records,
            dnssec: Dnssec::Secure,
            ttl: Duration::from_secs(300),
        })
    }

    fn denied<T>() -> DnsResult<T> {
        Ok(Answer::Denied {
            denial: Denial::NxDomain,
            dnssec: Dnssec::Secure,
            ttl: Duration::from_secs(300),
        })
    }

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn tlsa311() -> Tlsa {
        Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![7; 32],
        }
    }

    fn key_file(dir: &std::path::Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let der = generate_pkcs8(KeyKind::Ed25519).unwrap();
        std::fs::write(&path, pem("PRIVATE KEY", &der)).unwrap();
        path
    }

    /// `zkh.test` with everything in order, publishing `dkim` at `s._domainkey`.
    fn zone(today: time::Date, dkim: DnsResult<String>, end_months: i32) -> Table {
        let m = |delta: i32| {
            let n = today.year() * 12 + i32::from(u8::from(today.month())) - 1 + delta;
            format!("{:04}-{:02}", n.div_euclid(12), n.rem_euclid(12) + 1)
        };
        let mut t = Table::default();
        t.txt.insert(
            "zkh.test".into(),
            secure(vec![
                format!(
                    "v=NTA7516-1;startdate={};enddate={};provider=P",
                    m(-12),
                    m(end_months)
                ),
                "v=spf1 mx -all".into(),
            ]),
        );
        t.txt.insert(
            "_dmarc.zkh.test".into(),
            secure(vec!["v=DMARC1; p=quarantine".into()]),
        );
        t.txt.insert("s._domainkey.zkh.test".into(), dkim);
        t.mx.insert(
            "zkh.test".into(),
            secure(vec![Mx {
                preference: 10,
                exchange: Some(dn("mx.zkh.test")),
            }]),
        );
        t.tlsa
            .insert("_25._tcp.mx.zkh.test".into(), secure(vec![tlsa311()]));
        t
    }

    async fn run_on(table: Table, key: &std::path::Path) -> Document {
        let config = Config::from_toml_str(
            &format!(
                "[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s\"\nkey = \"{}\"\n",
                key.display()
            ),
            "t",
        )
        .unwrap();
        let engine = Engine::new(
            Arc::new(table),
            config.policy.clone(),
            Duration::from_millis(300),
        );
        run(&engine, &config).await
    }

    fn results(doc: &Document) -> Vec<(&'static str, Status)> {
        doc.domains[0]
            .checks
            .iter()
            .map(|c| (c.id, c.result))
            .collect()
    }

    #[tokio::test]
    async fn all_pass_then_each_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path(), "k.pem");
        let key = SigningKey::load(&dn("zkh.test"), "s", &path).unwrap();
        let record = key.public_key_dns_record();
        let today = crate::nta::today_utc();

        let doc = run_on(zone(today, secure(vec![record.clone()]), 12), &path).await;
        assert_eq!(doc.result, Status::Pass, "{:#?}", results(&doc));
        assert_eq!(doc.version, SELF_CHECK_VERSION);
        assert!(render_text(&doc).contains("zkh.test — self-check: PASS"));

        // Expiring this month: a warning, exit 0.
        let doc = run_on(zone(today, secure(vec![record.clone()]), 0), &path).await;
        assert_eq!(doc.result, Status::Warn);
        assert!(results(&doc).contains(&("nta_validity", Status::Warn)));
        assert_eq!(doc.result.exit_code(), 0);

        // Another key published: fail, with the record to publish as the hint.
        let other = key_file(dir.path(), "other.pem");
        let other = SigningKey::load(&dn("zkh.test"), "s", &other).unwrap();
        let doc = run_on(
            zone(today, secure(vec![other.public_key_dns_record()]), 12),
            &path,
        )
        .await;
        assert_eq!(doc.result, Status::Fail);
        let dkim = &doc.domains[0].dkim[0];
        assert!(
            dkim.detail.contains("not the public half"),
            "{}",
            dkim.detail
        );
        assert!(
            dkim.hint.as_deref().unwrap().contains(&record),
            "{:?}",
            dkim.hint
        );
        assert_eq!(doc.result.exit_code(), 1);

        // No key published; a revoked key; two keys; a timeout on the DKIM lookup only.
        for (answer, want, status) in [
            (denied(), "no key published (NXDOMAIN)", Status::Fail),
            (
                secure(vec!["v=DKIM1; k=ed25519; p=".into()]),
                "revoked",
                Status::Fail,
            ),
            (
                secure(vec![record.clone(), record.replace("v=DKIM1; ", "")]),
                "2 key records",
                Status::Fail,
            ),
            (
                secure(vec!["v=spf1 -all".into()]),
                "not a DKIM key record",
                Status::Fail,
            ),
            (
                Err(DnsError::Timeout),
                "TXT lookup failed",
                Status::Temporary,
            ),
        ] {
            let doc = run_on(zone(today, answer, 12), &path).await;
            let dkim = &doc.domains[0].dkim[0];
            assert!(dkim.detail.contains(want), "{want}: {}", dkim.detail);
            assert_eq!(dkim.result, status, "{want}");
            assert_eq!(doc.result, status, "{want}");
        }

        // Whitespace inside p= (as some DNS consoles insert) still matches.
        let spaced = record.replacen("p=", "p= ", 1);
        let doc = run_on(zone(today, secure(vec![spaced]), 12), &path).await;
        assert_eq!(doc.result, Status::Pass);
    }

    #[tokio::test]
    async fn spf_dmarc_dane_and_dnssec() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_file(dir.path(), "k.pem");
        let key = SigningKey::load(&dn("zkh.test"), "s", &path).unwrap();
        let rec = secure(vec![key.public_key_dns_record()]);
        let today = crate::nta::today_utc();

        let mut t = zone(today, rec.clone(), 12);
        t.txt.insert(
            "_dmarc.zkh.test".into(),
            secure(vec!["v=DMARC1; p=none".into()]),
        );
        let Some(Ok(Answer::Records { records, .. })) = t.txt.get_mut("zkh.test") else {
            panic!()
        };
        records[1] = "v=spf1 mx ?all".into();
        let doc = run_on(t, &path).await;
        let r = results(&doc);
        assert!(r.contains(&("spf", Status::Fail)), "{r:?}");
        assert!(r.contains(&("dmarc", Status::Fail)), "{r:?}");

        // A second MX without TLSA: a warning; only that MX: a failure.
        let mut t = zone(today, rec.clone(), 12);
        t.mx.insert(
            "zkh.test".into(),
            secure(vec![
                Mx {
                    preference: 10,
                    exchange: Some(dn("mx.zkh.test")),
                },
                Mx {
                    preference: 20,
                    exchange: Some(dn("mx2.zkh.test")),
                },
            ]),
        );
        t.tlsa.insert("_25._tcp.mx2.zkh.test".into(), denied());
        let doc = run_on(t, &path).await;
        assert!(results(&doc).contains(&("dane", Status::Warn)));
        let mut t = zone(today, rec.clone(), 12);
        t.tlsa.insert("_25._tcp.mx.zkh.test".into(), denied());
        let doc = run_on(t, &path).await;
        assert!(results(&doc).contains(&("dane", Status::Fail)));

        // Bogus apex: a definite failure of our zone, not "try again later".
        let mut t = zone(today, rec, 12);
        t.txt.insert("zkh.test".into(), Err(DnsError::Bogus));
        let doc = run_on(t, &path).await;
        let r = results(&doc);
        assert_eq!(r[0], ("dnssec", Status::Fail), "{r:?}");
        assert_eq!(r[2], ("nta_validity", Status::Skipped));
    }

    #[test]
    fn expiry_boundary() {
        let rec =
            record::parse("v=NTA7516-1;startdate=2025-01;enddate=2026-06;provider=P").unwrap();
        let day = |d| time::Date::from_calendar_date(2026, time::Month::May, d).unwrap();
        // The last valid day is 2026-06-30: 30 days before is 2026-05-31.
        assert_eq!(validity_check(&rec, day(30)).0, Status::Pass);
        assert_eq!(validity_check(&rec, day(31)).0, Status::Warn);
    }

    #[test]
    fn worst_and_exit_codes() {
        use Status::*;
        assert_eq!(Pass.worst(Skipped), Pass);
        assert_eq!(Warn.worst(Pass), Warn);
        assert_eq!(Fail.worst(Temporary), Temporary);
        assert_eq!(Temporary.worst(Fail), Temporary);
        assert_eq!(
            [Pass, Skipped, Warn, Fail, Temporary].map(Status::exit_code),
            [0, 0, 0, 1, 2]
        );
        assert_eq!(abbreviate("é".repeat(40).as_str()).chars().count(), 21);
    }
}
