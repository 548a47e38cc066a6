//! The DNS layer: a resolver trait whose every answer carries its DNSSEC status.
//!
//! Nothing above this module sees hickory types. An answer is either records or a denial
//! (NXDOMAIN/NODATA), each with the [`Dnssec`] status of the whole chain that produced it;
//! anything else (timeout, SERVFAIL, bogus signatures) is a [`DnsError`], which the policy
//! always treats as temporary.

mod anchor_keys;
mod hickory;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

use crate::domain::DomainName;

pub use anchor_keys::{ZoneKeys, check_anchored_zones};
pub use hickory::{HickoryResolver, ResolverSetup, SetupError, check_trust_anchor_file};

/// DNSSEC status of an answer, as validated by this process (never by trusting an AD bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dnssec {
    /// Signed and validated up to a trust anchor.
    Secure,
    /// Provably unsigned: the parent proves there is no DS.
    Insecure,
    /// Validation failed (bad signature, broken chain).
    Bogus,
    /// No validation was possible or done.
    Indeterminate,
}

impl Dnssec {
    /// The weakest of two statuses: a chain is only as secure as its least secure link.
    pub fn weakest(self, other: Dnssec) -> Dnssec {
        fn rank(d: Dnssec) -> u8 {
            match d {
                Dnssec::Secure => 3,
                Dnssec::Insecure => 2,
                Dnssec::Indeterminate => 1,
                Dnssec::Bogus => 0,
            }
        }
        if rank(self) <= rank(other) {
            self
        } else {
            other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dnssec::Secure => "secure",
            Dnssec::Insecure => "insecure",
            Dnssec::Bogus => "bogus",
            Dnssec::Indeterminate => "indeterminate",
        }
    }
}

impl fmt::Display for Dnssec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of "nothing there".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Denial {
    /// The name does not exist.
    #[serde(rename = "NXDOMAIN")]
    NxDomain,
    /// The name exists but has no records of the asked type.
    #[serde(rename = "NODATA")]
    NoData,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Denial::NxDomain => "NXDOMAIN",
            Denial::NoData => "NODATA",
        })
    }
}

/// A definite answer: records, or a denial of existence. Both carry the DNSSEC status and
/// how long they may be cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Answer<T> {
    Records {
        records: Vec<T>,
        dnssec: Dnssec,
        #[serde(serialize_with = "ser_secs")]
        ttl: Duration,
    },
    Denied {
        denial: Denial,
        dnssec: Dnssec,
        #[serde(serialize_with = "ser_secs")]
        ttl: Duration,
    },
}

fn ser_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl<T> Answer<T> {
    /// The same answer with status `Insecure`: for names no trust anchor covers.
    pub fn into_insecure(self) -> Self {
        match self {
            Answer::Records { records, ttl, .. } => Answer::Records {
                records,
                dnssec: Dnssec::Insecure,
                ttl,
            },
            Answer::Denied { denial, ttl, .. } => Answer::Denied {
                denial,
                dnssec: Dnssec::Insecure,
                ttl,
            },
        }
    }

    pub fn dnssec(&self) -> Dnssec {
        match self {
            Answer::Records { dnssec, .. } | Answer::Denied { dnssec, .. } => *dnssec,
        }
    }

    pub fn ttl(&self) -> Duration {
        match self {
            Answer::Records { ttl, .. } | Answer::Denied { ttl, .. } => *ttl,
        }
    }

    /// The records, or an empty slice for a denial.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Records { records, .. } => records,
            Answer::Denied { .. } => &[],
        }
    }

    pub fn is_secure(&self) -> bool {
        self.dnssec() == Dnssec::Secure
    }
}

/// A lookup that produced no definite answer. Always temporary for routing purposes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "error", content = "detail", rename_all = "lowercase")]
pub enum DnsError {
    #[error("DNS timeout")]
    Timeout,
    #[error("DNSSEC validation failed (bogus)")]
    Bogus,
    #[error("server failure (SERVFAIL)")]
    ServFail,
    #[error("query refused (REFUSED)")]
    Refused,
    #[error("DNS error: {0}")]
    Other(String),
}

pub type DnsResult<T> = Result<Answer<T>, DnsError>;

/// An MX record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mx {
    pub preference: u16,
    /// The exchange host. `None` for the Null MX target "." (RFC 7505).
    pub exchange: Option<DomainName>,
}

/// A TLSA record (RFC 6698).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tlsa {
    pub usage: u8,
    pub selector: u8,
    pub matching: u8,
    #[serde(serialize_with = "ser_hex")]
    pub data: Vec<u8>,
}

fn ser_hex<S: serde::Serializer>(d: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(d))
}

/// Lower-case hex, as TLSA data is written in zone files (RFC 6698 §2.2).
pub fn hex(d: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(d)
}

/// DANE for SMTP (RFC 7672 §3.1.3) uses only DANE-TA(2) and DANE-EE(3); PKIX-TA(0) and
/// PKIX-EE(1) are ignored by Postfix and internet.nl alike.
pub const DANE_SMTP_USAGES: [u8; 2] = [2, 3];

impl Tlsa {
    /// Usable for SMTP DANE: usage 2 or 3, a known selector (0 full cert, 1 SPKI) and
    /// matching type (0 exact, 1 SHA-256, 2 SHA-512) with data of the right length.
    pub fn usable_for_smtp(&self) -> bool {
        DANE_SMTP_USAGES.contains(&self.usage)
            && self.selector <= 1
            && match self.matching {
                0 => !self.data.is_empty(),
                1 => self.data.len() == 32,
                2 => self.data.len() == 64,
                _ => false,
            }
    }
}

impl fmt::Display for Tlsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            hex(&self.data)
        )
    }
}

/// The lookups the compliance engine needs. Implementations must validate DNSSEC
/// themselves and report the status per answer; a CNAME chain is as secure as its weakest
/// link. TXT records come back with their character-strings joined (RFC 7208 §3.3).
pub trait Resolver: Send + Sync + 'static {
    fn txt(&self, name: &DomainName) -> impl Future<Output = DnsResult<String>> + Send;
    fn mx(&self, name: &DomainName) -> impl Future<Output = DnsResult<Mx>> + Send;
    fn tlsa(&self, name: &DomainName) -> impl Future<Output = DnsResult<Tlsa>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weakest_link() {
        use Dnssec::*;
        assert_eq!(Secure.weakest(Secure), Secure);
        assert_eq!(Secure.weakest(Insecure), Insecure);
        assert_eq!(Insecure.weakest(Bogus), Bogus);
        assert_eq!(Indeterminate.weakest(Insecure), Indeterminate);
    }

    #[test]
    fn tlsa_usability() {
        let t = |usage, selector, matching, len| Tlsa {
            usage,
            selector,
            matching,
            data: vec![0; len],
        };
        assert!(t(3, 1, 1, 32).usable_for_smtp());
        assert!(t(2, 0, 2, 64).usable_for_smtp());
        assert!(!t(1, 1, 1, 32).usable_for_smtp());
        assert!(!t(0, 1, 1, 32).usable_for_smtp());
        assert!(!t(3, 1, 1, 31).usable_for_smtp());
        assert!(!t(3, 2, 1, 32).usable_for_smtp());
        assert!(!t(3, 1, 3, 32).usable_for_smtp());
        assert_eq!(DANE_SMTP_USAGES, [2, 3]);
    }

    #[test]
    fn tlsa_data_is_lower_case_hex() {
        assert_eq!(hex(&[]), "");
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        let t = Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: vec![0xde, 0xad, 0x01],
        };
        assert_eq!(t.to_string(), "3 1 1 dead01");
        assert_eq!(
            serde_json::to_value(&t).unwrap()["data"],
            serde_json::json!("dead01")
        );
    }
}
