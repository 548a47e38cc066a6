//! The validated sections other than `[policy]` (see `policy.rs`). Values here are known to
//! be well-formed; files named here are not opened by the config loader.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::DomainName;

use super::socket::SocketSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Milter front-end (Postfix `smtpd_milters` / `non_smtpd_milters`).
    pub milter: SocketSpec,
    /// Socketmap front-end (Postfix `transport_maps`, `smtp_tls_policy_maps`; Exim).
    pub map: SocketSpec,
    /// Owner / group / mode applied to `unix:` sockets after binding; ignored for `inet:`.
    pub socket_owner: Option<String>,
    pub socket_group: Option<String>,
    /// Permission bits (at most 0o777), written in TOML as an octal string like `"0660"`.
    pub socket_mode: u32,
    /// Decide, log and audit everything, act on nothing: the map server answers
    /// `NOTFOUND`, the milter changes no message and refuses none (a refusal it would
    /// have given is logged and audited as `would_refuse`).
    pub dry_run: bool,
    /// Prometheus `/metrics` and `/healthz` over HTTP; `None` (the default): no listener.
    /// Same notation as the front-ends; owner, group and mode apply to a `unix:` socket
    /// too.
    pub metrics: Option<SocketSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Validating resolvers to query directly; empty means the system resolver
    /// (`/etc/resolv.conf`), with DNSSEC validation done by the daemon either way.
    pub nameservers: Vec<SocketAddr>,
    /// File with trust anchors (DNSKEY records, for the root or other zones); `None`
    /// means the built-in root anchors.
    pub trust_anchor_file: Option<PathBuf>,
    /// Per-query timeout, between 100ms and 30s.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainsConfig {
    /// Our own domains (each with its subdomains): mail from them is outbound, mail to them
    /// inbound.
    pub own: Vec<DomainName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    /// Client networks whose mail is outgoing (submission hosts, local `sendmail`).
    /// Networks have no host bits set (`10.0.0.0/8`, never `10.1.2.3/8`).
    pub networks: Vec<ipnet::IpNet>,
    /// Refuse (550 5.7.1) outbound mail whose From header names an address outside
    /// `[domains] own` (NTA 7516 6.1.5, confirmation of origin). Needs own domains.
    pub require_own_from: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimConfig {
    pub domain: DomainName,
    /// One or more DNS labels (`sel1`, `2024.mail`), as written.
    pub selector: String,
    /// Absolute path to a PEM private key; read at runtime, not by the config loader.
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FooterConfig {
    /// Operator-supplied text, added as is (may be empty).
    pub text: String,
    /// Operator-supplied HTML, added as is without escaping (may be empty).
    pub html: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Append-only audit log; `None` means the journal only.
    pub file: Option<PathBuf>,
}
