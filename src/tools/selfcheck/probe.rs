//! Runs the STARTTLS probe (`starttls.rs`) on every MX/ntamx host of an own domain, each
//! of its addresses (internet.nl tests every address too), and sums it up as one check.

use std::net::SocketAddr;
use std::time::Duration;

use super::starttls::{self, Outcome};
use super::{Check, HostResult, Status};

/// At most this many addresses per host are probed.
pub const MAX_ADDRESSES: usize = 4;

/// How to probe.
#[derive(Debug, Clone)]
pub struct Starttls {
    /// 25 (tests use another port).
    pub port: u16,
    /// Our name in EHLO.
    pub ehlo: String,
    /// Bound on the address lookup and on every socket operation.
    pub timeout: Duration,
}

/// Fills each host's `starttls` with the probes of its addresses.
pub(super) async fn probe_hosts(s: &Starttls, hosts: &mut [HostResult]) {
    let probes = futures::future::join_all(hosts.iter().map(|h| probe_host(s, h))).await;
    for (h, p) in hosts.iter_mut().zip(probes) {
        h.starttls = p;
    }
}

async fn probe_host(s: &Starttls, h: &HostResult) -> Vec<starttls::TlsProbe> {
    let name = h.host.as_str().trim_end_matches('.').to_string();
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(s.timeout, tokio::net::lookup_host((name.as_str(), s.port)))
            .await
        {
            Ok(Ok(a)) => a.take(MAX_ADDRESSES).collect(),
            Ok(Err(e)) => return vec![unreachable(&name, format!("address lookup: {e}"))],
            Err(_) => return vec![unreachable(&name, "address lookup timed out".into())],
        };
    if addrs.is_empty() {
        return vec![unreachable(&name, "no address".into())];
    }
    let runs = addrs.into_iter().map(|addr| {
        let (name, ehlo, tlsa, timeout) = (name.clone(), s.ehlo.clone(), h.tlsa.clone(), s.timeout);
        async move {
            tokio::task::spawn_blocking(move || starttls::probe(addr, &name, &ehlo, &tlsa, timeout))
                .await
                .unwrap_or_else(|e| unreachable(&addr.to_string(), format!("probe failed: {e}")))
        }
    });
    futures::future::join_all(runs).await
}

fn unreachable(address: &str, detail: String) -> starttls::TlsProbe {
    starttls::TlsProbe {
        address: address.to_string(),
        tls_version: None,
        cipher: None,
        tlsa_match: None,
        cert_days_left: None,
        outcome: Outcome::Unreachable,
        detail,
    }
}

pub(super) fn starttls_check(hosts: &[HostResult]) -> Check {
    let mut result = Status::Pass;
    let mut detail = Vec::new();
    for h in hosts {
        for p in &h.starttls {
            result = result.worst(match p.outcome {
                Outcome::Pass => Status::Pass,
                Outcome::Warn => Status::Warn,
                Outcome::Fail => Status::Fail,
                Outcome::Unreachable => Status::Temporary,
            });
            detail.push(format!("{} [{}]: {}", h.host, p.address, p.detail));
        }
    }
    if detail.is_empty() {
        result = Status::Skipped;
        detail.push("no MX or ntamx hosts to probe".into());
    }
    Check {
        id: "starttls",
        title: "STARTTLS on port 25: TLS >= 1.2, certificate matches TLSA",
        result,
        detail: detail.join("; "),
        hint: (result == Status::Temporary).then(|| {
            "a host could not be reached on port 25 from here; run again, or use --no-starttls where outgoing port 25 is blocked".to_string()
        }),
    }
}
