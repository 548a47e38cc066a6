//! Validated DNS domain names.
//!
//! Everything that names a domain (recipient domains, own domains, `ntamx` and MX targets)
//! goes through [`DomainName`] so that comparisons, cache keys and DNS queries all see one
//! canonical form: ASCII (IDNA/punycode), lower case, no trailing dot.

use std::fmt;
use std::str::FromStr;

use hickory_resolver::proto::rr::Name;

/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire, which is 253 characters in
/// text form without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("empty domain name")]
    Empty,
    #[error("domain name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("label {0:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong(String),
    #[error("empty label in {0:?}")]
    EmptyLabel(String),
    #[error("invalid character in domain name {0:?}")]
    InvalidChar(String),
    #[error("not a valid internationalised domain name: {0}")]
    Idna(String),
}

impl DomainName {
    /// Parses a domain as written by a person or found in DNS data: accepts upper case, a
    /// trailing dot and Unicode (converted to punycode). Rejects empty labels, over-long
    /// names and labels, and characters outside letters, digits, `-` and `_` (the
    /// underscore is needed for `_25._tcp` and `_dmarc` owner names).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        // Bound the work before IDNA conversion sees arbitrarily long input.
        if trimmed.len() > MAX_NAME_LEN * 4 {
            return Err(DomainError::TooLong);
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            let name = Name::from_utf8(trimmed).map_err(|e| DomainError::Idna(e.to_string()))?;
            let mut s = name.to_ascii();
            if s.ends_with('.') {
                s.pop();
            }
            s.to_ascii_lowercase()
        };
        if ascii.len() > MAX_NAME_LEN {
            return Err(DomainError::TooLong);
        }
        for label in ascii.split('.') {
            if label.is_empty() {
                return Err(DomainError::EmptyLabel(input.to_string()));
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(DomainError::LabelTooLong(label.to_string()));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DomainError::InvalidChar(input.to_string()));
            }
        }
        Ok(Self(ascii))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The fully qualified form (trailing dot) used for DNS queries, so that no search list
    /// is ever applied.
    pub fn fqdn(&self) -> String {
        format!("{}.", self.0)
    }

    /// `<prefix>.<self>`, e.g. `_25._tcp.mx.example.nl` or `_dmarc.example.nl`.
    pub fn prefixed(&self, prefix: &str) -> Result<Self, DomainError> {
        Self::parse(&format!("{prefix}.{}", self.0))
    }

    /// Is `self` equal to `other` or a subdomain of it?
    pub fn is_within(&self, other: &DomainName) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.ends_with(&other.0)
                && self.0.as_bytes()[self.0.len() - other.0.len() - 1] == b'.')
    }
}

impl FromStr for DomainName {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

impl serde::Serialize for DomainName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// The domain part of an e-mail address (after the last `@`), or `None` when the input is
/// not an address with a valid domain. Angle brackets are stripped.
pub fn address_domain(address: &str) -> Option<DomainName> {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = a.rsplit_once('@')?;
    if local.is_empty() || domain.starts_with('[') {
        return None;
    }
    DomainName::parse(domain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        assert_eq!(
            DomainName::parse("Example.NL.").unwrap().as_str(),
            "example.nl"
        );
        assert_eq!(
            DomainName::parse(" example.nl ").unwrap().fqdn(),
            "example.nl."
        );
    }

    #[test]
    fn idn_becomes_punycode() {
        assert_eq!(
            DomainName::parse("zorg-bücher.nl").unwrap().as_str(),
            "xn--zorg-bcher-feb.nl"
        );
    }

    #[test]
    fn length_limits() {
        let label = "a".repeat(63);
        let ok = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(ok.len(), MAX_NAME_LEN);
        assert!(DomainName::parse(&ok).is_ok());
        assert_eq!(
            DomainName::parse(&format!("{ok}c")),
            Err(DomainError::TooLong)
        );
        assert!(matches!(
            DomainName::parse(&format!("{}.nl", "a".repeat(64))),
            Err(DomainError::LabelTooLong(_))
        ));
        assert!(DomainName::parse(&"a.".repeat(10_000)).is_err());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", ".", "a..b", "exa mple.nl", "a/b.nl", "a@b.nl"] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn address_domains() {
        assert_eq!(
            address_domain("<Jan@Ziekenhuis.NL>").unwrap().as_str(),
            "ziekenhuis.nl"
        );
        assert_eq!(address_domain("a@b@c.nl").unwrap().as_str(), "c.nl");
        assert_eq!(address_domain("postmaster"), None);
        assert_eq!(address_domain("@c.nl"), None);
        assert_eq!(address_domain("a@[192.0.2.1]"), None);
    }

    #[test]
    fn within() {
        let a = DomainName::parse("mx.example.nl").unwrap();
        let b = DomainName::parse("example.nl").unwrap();
        let c = DomainName::parse("ample.nl").unwrap();
        assert!(a.is_within(&b));
        assert!(b.is_within(&b));
        assert!(!b.is_within(&a));
        assert!(!b.is_within(&c));
    }
}
