//! `check`: each domain's verdict and the report an operator reads, like internet.nl's mail
//! test, and the same as a stable JSON document (`--json`, schema version
//! [`REPORT_VERSION`]; documented in the README's "check --json" section). `self-check` and
//! `explain` show the same per-domain report ([`build`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::PolicyConfig;
use crate::dns::{Answer, DnsResult, Dnssec, Resolver};
use crate::domain::DomainName;
use crate::engine::Engine;
use crate::nta::facts::{Facts, txt_records};
use crate::nta::record::{self, Selection, Validity};
use crate::nta::{fmt_date, ser_date};
use crate::policy::{Reason, SpfAll, Verdict, dmarc_policy, spf_all};
use crate::tools::exit;

/// Bumped on any incompatible change of the JSON document.
pub const REPORT_VERSION: u32 = 1;

/// What `check` found over all its domains.
#[derive(Debug)]
pub struct Checked {
    /// The `--json` document, one result per domain in the order given.
    pub document: Document,
    /// The exit status: the worst over all domains (0 compliant, 1 not compliant,
    /// 2 temporary: a lookup failed, run again later).
    pub exit: u8,
}

/// Checks every domain concurrently with `engine` (and its policy).
pub async fn run<R: Resolver>(engine: &Engine<R>, names: &[DomainName]) -> Checked {
    let results = futures::future::join_all(names.iter().map(|n| engine.check(n))).await;
    let mut code = exit::COMPLIANT;
    let mut reports = Vec::with_capacity(results.len());
    for (facts, verdict) in &results {
        code = code.max(exit_status(verdict));
        reports.push(build(facts, verdict, engine.policy()));
    }
    Checked {
        document: Document {
            version: REPORT_VERSION,
            results: reports,
        },
        exit: code,
    }
}

/// One verdict's exit status; higher is worse.
fn exit_status(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Compliant(_) => exit::COMPLIANT,
        Verdict::NotCompliant { .. } => exit::NOT_COMPLIANT,
        Verdict::Temporary { .. } => exit::TEMPORARY_OR_USAGE,
    }
}

/// The text report: each domain's [`render_text`], separated by a blank line.
pub fn render_all(doc: &Document) -> String {
    let texts: Vec<String> = doc.results.iter().map(render_text).collect();
    texts.join("\n")
}

#[derive(Debug, Serialize)]
pub struct Document {
    pub version: u32,
    pub results: Vec<DomainReport>,
}

#[derive(Debug, Serialize)]
pub struct DomainReport {
    pub domain: DomainName,
    #[serde(serialize_with = "ser_date")]
    pub checked_on: time::Date,
    /// `compliant`, `not_compliant` or `temporary`.
    pub verdict: &'static str,
    pub reasons: Vec<Reason>,
    pub criteria: Vec<Criterion>,
    pub nta_record: RecordReport,
    pub txt: LookupReport<String>,
    pub mx: LookupReport<crate::dns::Mx>,
    /// Delivery targets in order, each with its TLSA lookup.
    pub targets: Vec<TargetReport>,
    pub dmarc: Option<LookupReport<String>>,
    pub dmarc_policy: Option<String>,
    pub spf: String,
    /// Present for a compliant verdict.
    pub compliance: Option<crate::policy::Compliance>,
}

#[derive(Debug, Serialize)]
pub struct Criterion {
    pub id: &'static str,
    pub title: &'static str,
    /// `pass`, `fail`, `info` (not required by the configured policy) or `skipped`.
    pub result: &'static str,
    pub detail: String,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordReport {
    Found {
        raw: String,
        syntax: &'static str,
        provider: String,
        ntamx: Vec<String>,
        #[serde(serialize_with = "ser_date")]
        valid_from: time::Date,
        #[serde(serialize_with = "ser_date")]
        valid_until: time::Date,
        /// Days from today to the last valid day (negative once expired).
        days_left: i64,
    },
    Absent,
    Malformed {
        raw: String,
        error: String,
    },
    Conflicting {
        records: Vec<String>,
    },
}

/// A lookup as found: records with their DNSSEC status, a denial, or an error.
#[derive(Debug, Serialize)]
pub struct LookupReport<T: Serialize> {
    pub name: String,
    #[serde(flatten)]
    pub result: LookupResult<T>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum LookupResult<T: Serialize> {
    Records {
        dnssec: Dnssec,
        records: Vec<T>,
    },
    Denied {
        dnssec: Dnssec,
        denial: crate::dns::Denial,
    },
    Error {
        error: String,
    },
}

fn lookup<T: Serialize + Clone>(name: String, r: &DnsResult<T>) -> LookupReport<T> {
    let result = match r {
        Ok(Answer::Records {
            records, dnssec, ..
        }) => LookupResult::Records {
            dnssec: *dnssec,
            records: records.clone(),
        },
        Ok(Answer::Denied { denial, dnssec, .. }) => LookupResult::Denied {
            dnssec: *dnssec,
            denial: *denial,
        },
        Err(e) => LookupResult::Error {
            error: e.to_string(),
        },
    };
    LookupReport { name, result }
}

#[derive(Debug, Serialize)]
pub struct TargetReport {
    pub host: DomainName,
    /// `ntamx` or `mx`.
    pub source: &'static str,
    pub tlsa: LookupReport<crate::dns::Tlsa>,
    pub usable_tlsa: usize,
}

pub fn build(facts: &Facts, verdict: &Verdict, policy: &PolicyConfig) -> DomainReport {
    let d = &facts.domain;
    let selection = record::select(txt_records(&facts.txt));
    let nta_record = match &selection {
        Selection::Found(r) => RecordReport::Found {
            raw: r.raw.clone(),
            syntax: match r.syntax {
                record::Syntax::Current => "NTA7516-1",
                record::Syntax::Legacy2019 => "NTA7516 (2019)",
            },
            provider: r.provider.clone(),
            ntamx: r.targets().iter().map(|h| h.to_string()).collect(),
            valid_from: r.first_valid_day(),
            valid_until: r.last_valid_day(),
            days_left: (r.last_valid_day() - facts.today).whole_days(),
        },
        Selection::Absent => RecordReport::Absent,
        Selection::Malformed { raw, error } => RecordReport::Malformed {
            raw: raw.clone(),
            error: error.to_string(),
        },
        Selection::Conflicting { records } => RecordReport::Conflicting {
            records: records.clone(),
        },
    };
    let via_ntamx = matches!(&selection, Selection::Found(r) if !r.targets().is_empty());
    let targets: Vec<TargetReport> = facts
        .targets
        .iter()
        .flatten()
        .map(|t| TargetReport {
            host: t.host.clone(),
            source: if via_ntamx { "ntamx" } else { "mx" },
            usable_tlsa: t
                .tlsa
                .as_ref()
                .map(|a| a.records().iter().filter(|r| r.usable_for_smtp()).count())
                .unwrap_or(0),
            tlsa: lookup(t.tlsa_name.clone(), &t.tlsa),
        })
        .collect();
    let dmarc_pol = facts
        .dmarc
        .as_ref()
        .and_then(|r| r.as_ref().ok())
        .and_then(|a| dmarc_policy(a.records()));
    let spf = spf_all(txt_records(&facts.txt));

    let criteria = criteria(
        facts, &selection, via_ntamx, &targets, &dmarc_pol, &spf, policy,
    );
    DomainReport {
        domain: d.clone(),
        checked_on: facts.today,
        verdict: verdict.label(),
        reasons: verdict.reasons().into_iter().cloned().collect(),
        criteria,
        nta_record,
        txt: lookup(d.to_string(), &facts.txt),
        mx: lookup(d.to_string(), &facts.mx),
        targets,
        dmarc: facts
            .dmarc
            .as_ref()
            .map(|r| lookup(format!("_dmarc.{d}"), r)),
        dmarc_policy: dmarc_pol,
        spf: match &spf {
            SpfAll::Strict => "strict (~all or -all)".to_string(),
            other => other.to_string(),
        },
        compliance: match verdict {
            Verdict::Compliant(c) => Some(c.clone()),
            _ => None,
        },
    }
}

fn status<T>(r: &DnsResult<T>) -> String {
    match r {
        Ok(a) => a.dnssec().to_string(),
        Err(e) => format!("error: {e}"),
    }
}

fn pass(ok: bool) -> &'static str {
    if ok { "pass" } else { "fail" }
}

fn criteria(
    facts: &Facts,
    selection: &Selection,
    via_ntamx: bool,
    targets: &[TargetReport],
    dmarc_pol: &Option<String>,
    spf: &SpfAll,
    policy: &PolicyConfig,
) -> Vec<Criterion> {
    let mut out = Vec::new();
    let txt_secure = facts.txt.as_ref().is_ok_and(|a| a.is_secure());
    out.push(Criterion {
        id: "dnssec_txt",
        title: "DNSSEC on the domain's TXT records",
        result: pass(txt_secure),
        detail: status(&facts.txt),
    });
    let (rec_ok, rec_detail, valid_ok, valid_detail) = match selection {
        Selection::Found(r) => {
            let (ok, detail) = match r.validity(facts.today) {
                Validity::Valid { days_left } => (
                    true,
                    format!(
                        "{} to {} ({days_left} days left)",
                        fmt_date(r.first_valid_day()),
                        fmt_date(r.last_valid_day())
                    ),
                ),
                Validity::NotYetValid { starts } => {
                    (false, format!("not valid before {}", fmt_date(starts)))
                }
                Validity::Expired { ended } => (false, format!("expired on {}", fmt_date(ended))),
            };
            (
                true,
                format!("{} (provider {})", r.raw, r.provider),
                ok,
                detail,
            )
        }
        Selection::Absent => (false, "no v=NTA7516 record".into(), false, "-".into()),
        Selection::Malformed { error, .. } => {
            (false, format!("malformed: {error}"), false, "-".into())
        }
        Selection::Conflicting { records } => (
            false,
            format!("{} conflicting records", records.len()),
            false,
            "-".into(),
        ),
    };
    out.push(Criterion {
        id: "nta_record",
        title: "NTA 7516 record present and well-formed",
        result: pass(rec_ok),
        detail: rec_detail,
    });
    out.push(Criterion {
        id: "nta_validity",
        title: "NTA 7516 record valid today",
        result: if rec_ok { pass(valid_ok) } else { "skipped" },
        detail: valid_detail,
    });
    let target_names: Vec<String> = targets.iter().map(|t| t.host.to_string()).collect();
    let (targets_ok, targets_detail) = if via_ntamx {
        (true, format!("ntamx: {}", target_names.join(", ")))
    } else {
        let mx_secure = facts.mx.as_ref().is_ok_and(|a| a.is_secure());
        let null = facts
            .mx
            .as_ref()
            .is_ok_and(|a| a.records().iter().any(|m| m.exchange.is_none()));
        let ok = mx_secure && !null && !target_names.is_empty();
        let detail = if null {
            "Null MX (accepts no mail)".to_string()
        } else {
            format!("MX ({}): {}", status(&facts.mx), target_names.join(", "))
        };
        (ok, detail)
    };
    out.push(Criterion {
        id: "targets",
        title: "Delivery targets (ntamx or MX) DNSSEC-secure",
        result: pass(targets_ok),
        detail: targets_detail,
    });
    let dane: Vec<String> = targets
        .iter()
        .map(|t| match &t.tlsa.result {
            LookupResult::Records { dnssec, records } => format!(
                "{}: {} record(s), {} usable, {dnssec}",
                t.host,
                records.len(),
                t.usable_tlsa
            ),
            LookupResult::Denied { dnssec, denial } => {
                format!("{}: no TLSA ({denial}, {dnssec})", t.host)
            }
            LookupResult::Error { error } => format!("{}: {error}", t.host),
        })
        .collect();
    let dane_ok = targets.iter().any(|t| {
        t.usable_tlsa > 0
            && matches!(
                t.tlsa.result,
                LookupResult::Records {
                    dnssec: Dnssec::Secure,
                    ..
                }
            )
    });
    out.push(Criterion {
        id: "dane",
        title: "DANE: secure TLSA (usage 2 or 3) on a target",
        result: pass(dane_ok),
        detail: if dane.is_empty() {
            "no targets".into()
        } else {
            dane.join("; ")
        },
    });
    let dmarc_secure = facts
        .dmarc
        .as_ref()
        .is_some_and(|r| r.as_ref().is_ok_and(|a| a.is_secure()));
    let dmarc_ok = dmarc_secure && matches!(dmarc_pol.as_deref(), Some("quarantine" | "reject"));
    out.push(Criterion {
        id: "dmarc",
        title: "DMARC policy quarantine or reject",
        result: if policy.require_dmarc {
            pass(dmarc_ok)
        } else {
            "info"
        },
        detail: match (dmarc_pol, &facts.dmarc) {
            (Some(p), Some(r)) => format!("p={p} ({})", status(r)),
            (None, Some(r)) => format!("no DMARC record ({})", status(r)),
            (_, None) => "not looked up".into(),
        },
    });
    out.push(Criterion {
        id: "spf",
        title: "SPF ends in ~all or -all",
        result: if policy.require_spf {
            pass(*spf == SpfAll::Strict)
        } else {
            "info"
        },
        detail: match spf {
            SpfAll::Strict => "strict".into(),
            other => other.to_string(),
        },
    });
    out
}

/// The criteria lines (`[PASS] title  detail`) and the TLSA records found, each line
/// prefixed with `indent` (shared by `check` and `explain`).
pub fn render_criteria(s: &mut String, r: &DomainReport, indent: &str) {
    for c in &r.criteria {
        let tag = match c.result {
            "pass" => "[PASS]",
            "fail" => "[FAIL]",
            "info" => "[INFO]",
            _ => "[ -- ]",
        };
        let _ = writeln!(s, "{indent}{tag} {:<52} {}", c.title, c.detail);
    }
    for t in &r.targets {
        if let LookupResult::Records { records, dnssec } = &t.tlsa.result {
            for rec in records {
                let _ = writeln!(s, "{indent}       {} TLSA {rec} ({dnssec})", t.tlsa.name);
            }
        }
    }
}

/// The human-readable form of one domain's report.
pub fn render_text(r: &DomainReport) -> String {
    let mut s = String::new();
    let verdict = match r.verdict {
        "compliant" => "COMPLIANT",
        "not_compliant" => "NOT COMPLIANT",
        _ => "TEMPORARY FAILURE",
    };
    let _ = writeln!(s, "{} — NTA 7516: {verdict}", r.domain);
    render_criteria(&mut s, r, "  ");
    match &r.compliance {
        Some(c) => {
            let _ = writeln!(
                s,
                "  Verdict: compliant — deliver directly with DANE enforced to {} (valid until {}; evidence {})",
                host_list(c),
                fmt_date(c.valid_until),
                c.evidence
            );
        }
        None => render_not_compliant(&mut s, r, "Verdict"),
    }
    s
}

/// A compliant verdict's delivery hosts in order, comma-separated.
pub fn host_list(c: &crate::policy::Compliance) -> String {
    let hosts: Vec<String> = c.targets.iter().map(|h| h.to_string()).collect();
    hosts.join(", ")
}

/// `  <label>: <verdict>` and a line per reason, for a report that is not compliant
/// (`Verdict` in `check`, `Peers see` in `self-check`).
pub fn render_not_compliant(s: &mut String, r: &DomainReport, label: &str) {
    let _ = writeln!(s, "  {label}: {}", r.verdict.replace('_', " "));
    for reason in &r.reasons {
        let _ = writeln!(s, "    - {} [{}]", reason.message, reason.code);
    }
}

#[cfg(test)]
mod tests;
