//! The DANE check of `self-check`: every delivery host's TLSA (RFC 7672 §3.1), and the MX
//! hosts too when the record names `ntamx` hosts.

use std::time::Duration;

use super::nta::via_ntamx;
use super::{Check, HostResult, Status, within};
use crate::dns::{Answer, DnsError, DnsResult, Resolver, Tlsa};
use crate::domain::DomainName;
use crate::nta::facts::{Facts, target_hosts};
use crate::nta::record::Selection;
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
        starttls: Vec::new(),
        tlsa: match tlsa {
            Ok(a) => a
                .records()
                .iter()
                .filter(|t| t.usable_for_smtp())
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        },
    }
}

/// The delivery targets from the facts, and, when the record names `ntamx` hosts, the MX
/// hosts as well (ordinary mail and internet.nl use those).
pub(super) async fn dane_hosts<R: Resolver>(
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

pub(super) fn dane_check(facts: &Facts, hosts: &[HostResult]) -> Check {
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
