//! The compliance decision: a pure function of gathered facts and the policy config.
//!
//! No I/O, no clock, no runtime: `decide` sees only [`Facts`] (which carry the day to judge
//! against) and [`PolicyConfig`]. Each clause below carries the number of its rule in the
//! README's Logic section and cites where the rule comes from (NTA 7516, the TXT record
//! definitions of Cryptshare and internet.nl, RFC 7672). Reasons are collected rather than
//! returned at the first failure, so an operator sees every problem at once; a temporary
//! failure only decides the outcome when nothing deterministic already rules compliance out.

use std::fmt;
use std::net::IpAddr;

use crate::config::PolicyConfig;
use crate::dns::{Answer, Dnssec, Tlsa};
use crate::domain::DomainError;
use crate::nta::facts::{Facts, TargetFacts, target_hosts, txt_records};
use crate::nta::record::{self, Selection, Validity};

mod verdict;
pub use verdict::*;

/// Collects the outcome of the clauses.
#[derive(Default)]
struct Findings {
    reasons: Vec<Reason>,
    temporary: Option<Reason>,
}

impl Findings {
    fn fail(&mut self, code: Code, msg: impl Into<String>) {
        self.reasons.push(Reason::new(code, msg));
    }
    fn temp(&mut self, r: Reason) {
        self.temporary.get_or_insert(r);
    }
}

/// README Logic, rule 9 (address literals): an address literal names no domain, so it has no NTA record and no DNSSEC
/// chain for a TLSA lookup: never an NTA 7516 party. Decided without DNS.
pub fn address_literal(ip: IpAddr) -> Verdict {
    Verdict::NotCompliant {
        reasons: vec![Reason::new(
            Code::AddressLiteral,
            format!("[{ip}] is an address literal, not a domain with an NTA 7516 record"),
        )],
    }
}

/// README Logic, rule 9 (undeliverable domains): a recipient domain that is no host name (a label with `_` or an outer
/// hyphen, invalid punycode, a name UTS #46 refuses) can never be delivered to. Decided
/// without DNS; the route bounces it (5.1.2) instead of deferring it forever.
pub fn invalid_domain(domain: &str, error: &DomainError) -> Verdict {
    Verdict::NotCompliant {
        reasons: vec![Reason::new(
            Code::InvalidDomain,
            format!("{domain:?} is not a valid mail domain: {error}"),
        )],
    }
}

pub fn decide(facts: &Facts, config: &PolicyConfig) -> Verdict {
    let d = &facts.domain;
    // Rule 2: the apex TXT must be answered at all; without it nothing can be
    // decided, so a lookup failure is temporary whatever else is known.
    let txt = match &facts.txt {
        Ok(a) => a,
        Err(e) => {
            return Verdict::Temporary {
                reason: Reason::dns(&format!("TXT lookup for {d}"), e),
            };
        }
    };
    let mut f = Findings::default();

    // Rule 2: the record must be DNSSEC-secure, otherwise an attacker could forge, strip or
    // redirect it (an unsigned record counts as absent, as internet.nl judges it).
    if !txt.is_secure() {
        f.fail(
            Code::NtaRecordInsecure,
            format!(
                "the TXT records of {d} are not DNSSEC-secure ({}), so an NTA 7516 record there cannot be trusted",
                txt.dnssec()
            ),
        );
    }

    // Rule 3: exactly one NTA record (the current `v=NTA7516-1` and the 2019 `v=NTA7516` syntax).
    let selection = record::select(txt_records(&facts.txt));
    let nta = match &selection {
        Selection::Found(rec) => Some(rec),
        Selection::Absent => {
            f.fail(
                Code::NtaRecordAbsent,
                format!("{d} publishes no NTA 7516 TXT record (v=NTA7516...)"),
            );
            None
        }
        Selection::Malformed { raw, error } => {
            f.fail(
                Code::NtaRecordMalformed,
                format!("the NTA 7516 record of {d} is malformed: {error} (record: {raw:?})"),
            );
            None
        }
        Selection::Conflicting { records } => {
            f.fail(
                Code::NtaRecordsConflicting,
                format!(
                    "{d} publishes {} different NTA 7516 records; which one applies is undefined",
                    records.len()
                ),
            );
            None
        }
    };

    // Rule 4: today between the first day of startdate and the last day of enddate
    // (Cryptshare's definition of the record).
    if let Some(rec) = nta {
        match rec.validity(facts.today) {
            Validity::Valid { .. } => {}
            Validity::NotYetValid { starts } => f.fail(
                Code::NtaRecordNotYetValid,
                format!(
                    "the NTA 7516 record of {d} is valid only from {}",
                    crate::nta::fmt_date(starts)
                ),
            ),
            Validity::Expired { ended } => f.fail(
                Code::NtaRecordExpired,
                format!(
                    "the NTA 7516 record of {d} expired on {}",
                    crate::nta::fmt_date(ended)
                ),
            ),
        }
    }

    // Rule 5: targets are the ntamx hosts, else the MX hosts; the MX set must be secure,
    // a Null MX (RFC 7505) means the domain accepts no mail.
    let via_ntamx = nta.is_some_and(|r| !r.targets().is_empty());
    let mx_status = if via_ntamx {
        None
    } else {
        mx_clause(facts, &mut f)
    };
    let hosts = target_hosts(&selection, &facts.mx);

    // Rule 6: at least one target with a DNSSEC-secure TLSA RRset that has a usage 2 or 3
    // record (RFC 7672 §3.1.3; internet.nl ignores usages 0/1 for port 25).
    let mut usable_targets = Vec::new();
    let mut tlsa_evidence = Vec::new();
    if let Some(targets) = &facts.targets {
        let mut problems = Vec::new();
        for t in targets {
            let (ev, problem) = tlsa_clause(t);
            match problem {
                None => usable_targets.push(t.host.clone()),
                Some(TlsaProblem::Definite(msg)) => problems.push(msg),
                Some(TlsaProblem::Temporary(r)) => {
                    problems.push(r.message.clone());
                    f.temp(r);
                }
            }
            tlsa_evidence.push(ev);
        }
        if usable_targets.is_empty() {
            if hosts.is_empty() {
                // Reported by the MX clause already when it found no hosts.
            } else if f.temporary.is_none() {
                f.fail(
                    Code::NoUsableTlsa,
                    format!(
                        "no target of {d} has a DNSSEC-secure TLSA record with usage 2 or 3: {}",
                        problems.join("; ")
                    ),
                );
            }
        } else {
            // One usable target is enough: Postfix's dane-only skips the others, so a
            // failed TLSA lookup on another target does not hold the verdict back.
            f.temporary = None;
        }
    }

    // Rule 7 (optional): the recipient's own DMARC and SPF policies.
    if config.require_dmarc {
        dmarc_clause(facts, &mut f);
    }
    if config.require_spf {
        spf_clause(facts, txt, &mut f);
    }

    // Rule 8: deterministic reasons win; then a temporary failure; else compliant.
    if !f.reasons.is_empty() {
        return Verdict::NotCompliant { reasons: f.reasons };
    }
    if let Some(reason) = f.temporary {
        return Verdict::Temporary { reason };
    }
    match nta {
        Some(rec) if !usable_targets.is_empty() => Verdict::Compliant(Compliance {
            targets: usable_targets,
            via_ntamx,
            provider: rec.provider.clone(),
            valid_until: rec.last_valid_day(),
            evidence: Evidence {
                txt: txt.dnssec(),
                mx: mx_status,
                tlsa: tlsa_evidence,
            },
        }),
        // Unreachable with consistent facts (no record or no usable target always leaves a
        // reason); kept total so inconsistent facts can never yield "compliant".
        _ => Verdict::Temporary {
            reason: Reason::new(
                Code::DnsError,
                format!("incomplete facts for {d}: TLSA was not looked up"),
            ),
        },
    }
}

fn mx_clause(facts: &Facts, f: &mut Findings) -> Option<Dnssec> {
    let d = &facts.domain;
    match &facts.mx {
        Err(e) => {
            f.temp(Reason::dns(&format!("MX lookup for {d}"), e));
            None
        }
        Ok(a) => {
            if !a.is_secure() {
                f.fail(
                    Code::MxInsecure,
                    format!(
                        "the MX records of {d} are not DNSSEC-secure ({}) and the NTA record names no ntamx host",
                        a.dnssec()
                    ),
                );
            } else if a.records().iter().any(|m| m.exchange.is_none()) {
                f.fail(
                    Code::NullMx,
                    format!("{d} publishes a Null MX (RFC 7505): it accepts no e-mail"),
                );
            } else if a.records().is_empty() {
                f.fail(
                    Code::NoTargets,
                    format!("{d} has no MX records and its NTA record names no ntamx host"),
                );
            }
            Some(a.dnssec())
        }
    }
}

enum TlsaProblem {
    Definite(String),
    Temporary(Reason),
}

fn tlsa_clause(t: &TargetFacts) -> (TlsaEvidence, Option<TlsaProblem>) {
    let host = &t.host;
    let (dnssec, usable, problem) = match &t.tlsa {
        Err(e) => (
            None,
            0,
            Some(TlsaProblem::Temporary(Reason::dns(
                &format!("TLSA lookup for {}", t.tlsa_name),
                e,
            ))),
        ),
        Ok(a) => {
            let usable = a.records().iter().filter(|r| r.usable_for_smtp()).count();
            let problem = if !a.is_secure() {
                Some(format!("{host}: TLSA is {}", a.dnssec()))
            } else if let Answer::Denied { denial, .. } = a {
                Some(format!("{host}: no TLSA record ({denial})"))
            } else if usable == 0 {
                Some(format!(
                    "{host}: no usable TLSA record (only {})",
                    describe_unusable(a.records())
                ))
            } else {
                None
            };
            (Some(a.dnssec()), usable, problem.map(TlsaProblem::Definite))
        }
    };
    (
        TlsaEvidence {
            host: host.clone(),
            dnssec,
            usable,
        },
        problem,
    )
}

fn describe_unusable(records: &[Tlsa]) -> String {
    let mut usages: Vec<String> = records.iter().map(|r| r.usage.to_string()).collect();
    usages.dedup();
    format!("usage {}", usages.join("/"))
}

fn dmarc_clause(facts: &Facts, f: &mut Findings) {
    let d = &facts.domain;
    let Some(dmarc) = &facts.dmarc else {
        f.temp(Reason::new(
            Code::DnsError,
            format!("DMARC is required but _dmarc.{d} was not looked up"),
        ));
        return;
    };
    match dmarc {
        Err(e) => f.temp(Reason::dns(&format!("TXT lookup for _dmarc.{d}"), e)),
        Ok(a) => {
            let policy = dmarc_policy(a.records());
            let ok = a.is_secure() && matches!(policy.as_deref(), Some("quarantine" | "reject"));
            if !ok {
                f.fail(
                    Code::DmarcPolicyWeak,
                    format!(
                        "DMARC of {d} must be DNSSEC-secure with p=quarantine or p=reject; found {} ({})",
                        policy.map_or("no DMARC record".to_string(), |p| format!("p={p}")),
                        a.dnssec()
                    ),
                );
            }
        }
    }
}

fn spf_clause(facts: &Facts, txt: &Answer<String>, f: &mut Findings) {
    let d = &facts.domain;
    let all = spf_all(txt.records());
    if !matches!(all, SpfAll::Strict) {
        f.fail(
            Code::SpfPolicyWeak,
            format!("SPF of {d} must end in ~all or -all; found {all}"),
        );
    }
}

/// The `p=` tag of the single DMARC record among `txts`, lower-cased. Several DMARC
/// records count as none (RFC 7489 §6.6.3).
pub fn dmarc_policy(txts: &[String]) -> Option<String> {
    let mut recs = txts
        .iter()
        .filter(|t| t.trim_start().to_ascii_lowercase().starts_with("v=dmarc1"));
    let rec = recs.next()?;
    if recs.next().is_some() {
        return None;
    }
    rec.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("p")).then(|| v.trim().to_ascii_lowercase())
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfAll {
    /// `-all` or `~all` (what internet.nl accepts).
    Strict,
    /// `?all`, `+all`, `all`, or no `all` (which means `?all`).
    Weak(String),
    /// Delegated with `redirect=`; not followed here.
    Redirect(String),
    None,
    Several,
}

impl fmt::Display for SpfAll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpfAll::Strict => f.write_str("a strict all"),
            SpfAll::Weak(m) => write!(f, "{m}"),
            SpfAll::Redirect(r) => write!(f, "redirect={r} (not followed)"),
            SpfAll::None => f.write_str("no SPF record"),
            SpfAll::Several => f.write_str("several SPF records (RFC 7208 §4.5: permerror)"),
        }
    }
}

/// Classifies the terminal `all` of the single SPF record among `txts`.
pub fn spf_all(txts: &[String]) -> SpfAll {
    let mut recs = txts.iter().filter(|t| {
        let t = t.trim_start().to_ascii_lowercase();
        t == "v=spf1" || t.starts_with("v=spf1 ")
    });
    let Some(rec) = recs.next() else {
        return SpfAll::None;
    };
    if recs.next().is_some() {
        return SpfAll::Several;
    }
    for term in rec.split_ascii_whitespace().skip(1) {
        let t = term.to_ascii_lowercase();
        match t.as_str() {
            "-all" | "~all" => return SpfAll::Strict,
            "all" | "+all" | "?all" => return SpfAll::Weak(t),
            _ => {}
        }
        if let Some(r) = t.strip_prefix("redirect=") {
            return SpfAll::Redirect(r.to_string());
        }
    }
    SpfAll::Weak("no all mechanism (same as ?all)".into())
}

#[cfg(test)]
mod tests;
