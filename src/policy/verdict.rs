//! What the compliance decision answers: the verdict, its reasons with their stable codes,
//! and the DNS evidence behind it (shown by `check`, carried in audit events and metrics).

use std::fmt;

use serde::Serialize;

use crate::dns::{DnsError, Dnssec};
use crate::domain::DomainName;
/// Stable, documented reason codes (JSON `reasons[].code`, audit events, map replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    NtaRecordInsecure,
    NtaRecordAbsent,
    NtaRecordMalformed,
    NtaRecordsConflicting,
    NtaRecordExpired,
    NtaRecordNotYetValid,
    MxInsecure,
    NullMx,
    NoTargets,
    NoUsableTlsa,
    DmarcPolicyWeak,
    SpfPolicyWeak,
    DnsTimeout,
    DnsServfail,
    DnssecBogus,
    DnsError,
    /// The recipient is an address literal (`local@[192.0.2.1]`, RFC 5321 §4.1.3).
    AddressLiteral,
    /// The recipient domain is no host name anyone can deliver to (RFC 5321 §4.1.2,
    /// UTS #46): permanent, whatever `non_compliant` says.
    InvalidDomain,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NtaRecordInsecure => "nta_record_insecure",
            Code::NtaRecordAbsent => "nta_record_absent",
            Code::NtaRecordMalformed => "nta_record_malformed",
            Code::NtaRecordsConflicting => "nta_records_conflicting",
            Code::NtaRecordExpired => "nta_record_expired",
            Code::NtaRecordNotYetValid => "nta_record_not_yet_valid",
            Code::MxInsecure => "mx_insecure",
            Code::NullMx => "null_mx",
            Code::NoTargets => "no_targets",
            Code::NoUsableTlsa => "no_usable_tlsa",
            Code::DmarcPolicyWeak => "dmarc_policy_weak",
            Code::SpfPolicyWeak => "spf_policy_weak",
            Code::DnsTimeout => "dns_timeout",
            Code::DnsServfail => "dns_servfail",
            Code::DnssecBogus => "dnssec_bogus",
            Code::DnsError => "dns_error",
            Code::AddressLiteral => "address_literal",
            Code::InvalidDomain => "invalid_domain",
        }
    }

    pub(super) fn for_error(e: &DnsError) -> Code {
        match e {
            DnsError::Timeout => Code::DnsTimeout,
            DnsError::ServFail => Code::DnsServfail,
            DnsError::Bogus => Code::DnssecBogus,
            DnsError::Refused | DnsError::Other(_) => Code::DnsError,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub code: Code,
    pub message: String,
}

impl Reason {
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(super) fn dns(what: &str, e: &DnsError) -> Self {
        Self::new(Code::for_error(e), format!("{what}: {e}"))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// Why the verdict is trusted: the DNSSEC status of each piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub txt: Dnssec,
    /// `None` when the targets came from `ntamx` (the MX set played no part).
    pub mx: Option<Dnssec>,
    pub tlsa: Vec<TlsaEvidence>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsaEvidence {
    pub host: DomainName,
    pub dnssec: Option<Dnssec>,
    /// Records with usage 2/3 and sane selector/matching data.
    pub usable: usize,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "txt={}", self.txt)?;
        if let Some(mx) = self.mx {
            write!(f, " mx={mx}")?;
        }
        for t in &self.tlsa {
            match t.dnssec {
                Some(d) => write!(f, " tlsa[{}]={d}/{}usable", t.host, t.usable)?,
                None => write!(f, " tlsa[{}]=error", t.host)?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// Hosts with a secure, usable TLSA RRset, in delivery order.
    pub targets: Vec<DomainName>,
    /// True when `targets` come from the record's `ntamx` entries (then they must be the
    /// next hop), false when they are the domain's MX hosts (then the domain is).
    pub via_ntamx: bool,
    pub provider: String,
    #[serde(serialize_with = "crate::nta::ser_date")]
    pub valid_until: time::Date,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Compliant(Compliance),
    NotCompliant { reasons: Vec<Reason> },
    Temporary { reason: Reason },
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Compliant(_) => "compliant",
            Verdict::NotCompliant { .. } => "not_compliant",
            Verdict::Temporary { .. } => "temporary",
        }
    }

    /// True when no delivery to this destination can ever work (an invalid domain).
    pub fn is_undeliverable(&self) -> bool {
        matches!(self, Verdict::NotCompliant { reasons } if reasons.iter().any(|r| r.code == Code::InvalidDomain))
    }

    /// All reasons (none for a compliant verdict).
    pub fn reasons(&self) -> Vec<&Reason> {
        match self {
            Verdict::Compliant(_) => vec![],
            Verdict::NotCompliant { reasons } => reasons.iter().collect(),
            Verdict::Temporary { reason } => vec![reason],
        }
    }
}

/// The compliance verdict behind a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteVerdict {
    Compliant,
    NotCompliant,
    Temporary,
}

impl RouteVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteVerdict::Compliant => "compliant",
            RouteVerdict::NotCompliant => "not_compliant",
            RouteVerdict::Temporary => "temporary",
        }
    }
}

impl From<&Verdict> for RouteVerdict {
    fn from(v: &Verdict) -> Self {
        match v {
            Verdict::Compliant(_) => RouteVerdict::Compliant,
            Verdict::NotCompliant { .. } => RouteVerdict::NotCompliant,
            Verdict::Temporary { .. } => RouteVerdict::Temporary,
        }
    }
}

/// A compliant verdict on DNSSEC-secure evidence (valid until 2027-01-31), for the
/// tests of the code that turns verdicts into answers.
#[cfg(test)]
pub(crate) fn test_compliant(via_ntamx: bool, targets: &[&str]) -> Verdict {
    Verdict::Compliant(Compliance {
        targets: targets
            .iter()
            .map(|t| DomainName::parse(t).unwrap())
            .collect(),
        via_ntamx,
        provider: "P".into(),
        valid_until: time::macros::date!(2027 - 01 - 31),
        evidence: Evidence {
            txt: Dnssec::Secure,
            mx: None,
            tlsa: vec![],
        },
    })
}
