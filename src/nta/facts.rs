//! Gathering the DNS facts about one recipient domain, concurrently and under one deadline.
//!
//! Stage 1 asks TXT and MX of the domain (and `_dmarc` when wanted) at the same time;
//! stage 2 asks TLSA for every target (the `ntamx` hosts, else the MX hosts) at the same
//! time. Every lookup runs against the same absolute deadline, so a slow server turns into
//! `DnsError::Timeout` facts instead of a hang, and whatever did arrive is kept for the
//! report. Interpreting the facts is `policy::decide`'s job, not this module's.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::dns::{DnsError, DnsResult, Mx, Resolver, Tlsa};
use crate::domain::DomainName;
use crate::nta::record::{self, Selection};

/// At most this many targets get a TLSA lookup. internet.nl likewise checks at most 10 MX
/// hosts; it bounds the work an attacker-controlled MX or ntamx list can cause.
pub const MAX_TARGETS: usize = 10;

/// What to gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// For routing: skip TLSA when there is no usable NTA record (the verdict cannot be
    /// compliant then), and `_dmarc` unless the policy requires it.
    Routing { dmarc: bool },
    /// For `check` and `self-check`: everything, so the report can show it all.
    Full,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetFacts {
    pub host: DomainName,
    /// The owner name asked: `_25._tcp.<host>`.
    pub tlsa_name: String,
    pub tlsa: DnsResult<Tlsa>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub domain: DomainName,
    /// The day the facts are judged against (UTC).
    #[serde(serialize_with = "crate::nta::ser_date")]
    pub today: time::Date,
    pub txt: DnsResult<String>,
    pub mx: DnsResult<Mx>,
    /// `None` when not asked (see [`Scope`]).
    pub dmarc: Option<DnsResult<String>>,
    /// `None` when TLSA was not asked (routing scope without a usable NTA record).
    pub targets: Option<Vec<TargetFacts>>,
}

/// Runs a lookup against an absolute deadline; running out of time is a `Timeout` fact.
async fn by<T>(deadline: Instant, f: impl Future<Output = DnsResult<T>>) -> DnsResult<T> {
    tokio::time::timeout_at(deadline, f)
        .await
        .unwrap_or(Err(DnsError::Timeout))
}

/// The hosts whose TLSA decides compliance: the NTA record's `ntamx` hosts in preference
/// order when it has any (a record without `ntamx` means "use the MX hosts"), otherwise
/// the MX hosts by preference. Null MX entries are never targets.
pub fn target_hosts(selection: &Selection, mx: &DnsResult<Mx>) -> Vec<DomainName> {
    if let Selection::Found(rec) = selection {
        let ntamx = rec.targets();
        if !ntamx.is_empty() {
            return ntamx.into_iter().take(MAX_TARGETS).collect();
        }
    }
    let mut mxs: Vec<&Mx> = match mx {
        Ok(a) => a.records().iter().collect(),
        Err(_) => Vec::new(),
    };
    mxs.sort_by_key(|m| m.preference);
    let mut hosts: Vec<DomainName> = Vec::new();
    for m in mxs {
        if let Some(h) = &m.exchange
            && !hosts.contains(h)
        {
            hosts.push(h.clone());
        }
    }
    hosts.truncate(MAX_TARGETS);
    hosts
}

/// The TXT records of an answer, or none.
pub fn txt_records(txt: &DnsResult<String>) -> &[String] {
    match txt {
        Ok(a) => a.records(),
        Err(_) => &[],
    }
}

pub async fn gather<R: Resolver>(
    resolver: &R,
    domain: &DomainName,
    today: time::Date,
    scope: Scope,
    timeout: Duration,
) -> Facts {
    let deadline = Instant::now() + timeout;
    let want_dmarc = matches!(scope, Scope::Full | Scope::Routing { dmarc: true });
    let dmarc_name = domain.prefixed("_dmarc");
    let (txt, mx, dmarc) = tokio::join!(
        by(deadline, resolver.txt(domain)),
        by(deadline, resolver.mx(domain)),
        async {
            match (&dmarc_name, want_dmarc) {
                (Ok(name), true) => Some(by(deadline, resolver.txt(name)).await),
                // `_dmarc.<253-char name>` can exceed the name limit: a definite "no".
                (Err(_), true) => Some(Err(DnsError::Other("_dmarc name too long".into()))),
                (_, false) => None,
            }
        }
    );

    let selection = record::select(txt_records(&txt));
    let ask_tlsa = scope == Scope::Full || matches!(selection, Selection::Found(_));
    let targets = if ask_tlsa {
        let hosts = target_hosts(&selection, &mx);
        let lookups = hosts.into_iter().map(|host| async move {
            let tlsa_name = format!("_25._tcp.{host}");
            let tlsa = match host.prefixed("_25._tcp") {
                Ok(name) => by(deadline, resolver.tlsa(&name)).await,
                Err(e) => Err(DnsError::Other(format!("TLSA name: {e}"))),
            };
            TargetFacts {
                host,
                tlsa_name,
                tlsa,
            }
        });
        Some(futures::future::join_all(lookups).await)
    } else {
        None
    };

    Facts {
        domain: domain.clone(),
        today,
        txt,
        mx,
        dmarc,
        targets,
    }
}
