//! Validated DNS domain names.
//!
//! Everything that names a domain (recipient domains, own domains, `ntamx` and MX targets)
//! goes through [`DomainName`] so that comparisons, cache keys and DNS queries all see one
//! canonical form: ASCII (IDNA/punycode), lower case, no trailing dot.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use hickory_resolver::proto::rr::Name;
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

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
    /// RFC 5321 §4.1.2 (`Domain`, `sub-domain`): letters, digits and inner hyphens only.
    #[error("label {0:?} is not a host name label (RFC 5321: letters, digits, inner hyphens)")]
    NotHostName(String),
}

impl DomainName {
    /// Parses a domain as written by a person or found in DNS data: accepts upper case, a
    /// trailing dot and Unicode (converted to punycode). Rejects empty labels, over-long
    /// names and labels, and characters outside letters, digits, `-` and `_` (the
    /// underscore is needed for `_25._tcp` and `_dmarc` owner names).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = bounded(input)?;
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

    /// Parses the domain of a mail address or an SMTP next hop, the way Postfix's SMTPUTF8
    /// support reads it before it looks up MX hosts: UTS #46 ToASCII (nontransitional), so
    /// `．` `。` `｡` are full stops and `ZKH.nl` is `zkh.nl`; then RFC 5321 §4.1.2 syntax
    /// (every label letters, digits and inner hyphens; an `xn--` label valid punycode of a
    /// valid U-label; RFC 1035 lengths). A name rejected here can never be delivered to, so
    /// the route map bounces it instead of treating it as none of its business.
    pub fn parse_host(input: &str) -> Result<Self, DomainError> {
        let trimmed = bounded(input)?;
        let ascii = Uts46::new()
            .to_ascii(
                trimmed.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::CheckFirstLast,
                DnsLength::Verify,
            )
            .map_err(|_| {
                // The crate's error says nothing more; name the first offending label.
                let label = trimmed
                    .split(['.', '\u{3002}', '\u{ff0e}', '\u{ff61}'])
                    .find(|l| !is_host_label(l))
                    .unwrap_or(trimmed);
                if label.is_ascii() {
                    DomainError::NotHostName(label.to_string())
                } else {
                    DomainError::Idna(format!("{trimmed:?} is not valid under UTS #46"))
                }
            })?;
        let name = Self::parse(&ascii)?;
        if let Some(bad) = name.0.split('.').find(|l| !is_host_label(l)) {
            return Err(DomainError::NotHostName(bad.to_string()));
        }
        Ok(name)
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

/// The input without surrounding white space and a trailing dot, refused when empty or
/// so long that no IDNA conversion could bring it under RFC 1035's limit (this bounds the
/// work before the conversion sees arbitrary input).
fn bounded(input: &str) -> Result<&str, DomainError> {
    let trimmed = input.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(DomainError::Empty);
    }
    if trimmed.len() > MAX_NAME_LEN * 4 {
        return Err(DomainError::TooLong);
    }
    Ok(trimmed)
}

/// An ASCII label that RFC 5321 §4.1.2 allows in a domain: `Let-dig [Ldh-str]`.
fn is_host_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// What follows the last `@` of something that may be a mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressDomain {
    /// No `@`, or nothing before it (`*`, `.domain`, a bare local part, `@domain`).
    NotAnAddress,
    Domain(DomainName),
    /// `local@[192.0.2.1]` or `local@[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
    Literal(IpAddr),
    /// `local@<text>` where the text is no domain anyone can deliver to.
    Invalid {
        domain: String,
        error: DomainError,
    },
}

/// Splits `address` (angle brackets stripped) at its last `@`.
pub fn address_parts(address: &str) -> AddressDomain {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    let Some((local, domain)) = a.rsplit_once('@') else {
        return AddressDomain::NotAnAddress;
    };
    if local.is_empty() {
        return AddressDomain::NotAnAddress;
    }
    if let Some(inner) = domain.strip_prefix('[') {
        return match parse_literal(inner) {
            Some(ip) => AddressDomain::Literal(ip),
            None => AddressDomain::Invalid {
                domain: domain.to_string(),
                error: DomainError::InvalidChar(domain.to_string()),
            },
        };
    }
    match DomainName::parse_host(domain) {
        Ok(d) => AddressDomain::Domain(d),
        Err(error) => AddressDomain::Invalid {
            domain: domain.to_string(),
            error,
        },
    }
}

/// The inside of an address literal after `[`: `192.0.2.1]` or `IPv6:2001:db8::1]`.
fn parse_literal(inner: &str) -> Option<IpAddr> {
    let inner = inner.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => inner[5..]
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(IpAddr::V6),
        _ => inner.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4),
    }
}

/// The domain part of an e-mail address (after the last `@`), or `None` when the input is
/// not an address with a valid host-name domain (address literals included).
pub fn address_domain(address: &str) -> Option<DomainName> {
    match address_parts(address) {
        AddressDomain::Domain(d) => Some(d),
        _ => None,
    }
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
    fn hosts_are_read_as_postfix_reads_them() {
        // UTS #46 maps the other full stops, as Postfix's SMTPUTF8 support does before it
        // looks up MX hosts: a lookup that missed them would route x@gmail．com as
        // "not an address".
        for (input, want) in [
            ("gmail\u{ff0e}com", "gmail.com"),
            ("GMAIL\u{3002}COM", "gmail.com"),
            ("gmail\u{ff61}com.", "gmail.com"),
            ("Zorg-Bücher.NL", "xn--zorg-bcher-feb.nl"),
            ("xn--zorg-bcher-feb.nl", "xn--zorg-bcher-feb.nl"),
            ("r3---sn-abc.example", "r3---sn-abc.example"),
        ] {
            assert_eq!(
                DomainName::parse_host(input).unwrap().as_str(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn hosts_that_can_never_resolve() {
        for bad in [
            "-foo.example",
            "foo-.example",
            "a_b.example",
            "xn--.example",
            "xn--zz.example",
            "not\u{200d}lsa.example",
            "\u{663}\u{664}.example",
            "a..b",
            "exa mple.nl",
            "",
            "a/b.nl",
        ] {
            assert!(DomainName::parse_host(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DomainName::parse_host("a_b.example"),
            Err(DomainError::NotHostName("a_b".into()))
        );
    }

    #[test]
    fn address_kinds() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        assert_eq!(
            address_parts("a@[192.0.2.1]"),
            AddressDomain::Literal(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            address_parts("<a@[IPv6:2001:db8::1]>"),
            AddressDomain::Literal(IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()))
        );
        for key in ["*", ".zkh.nl", "postmaster", "@zkh.nl", ""] {
            assert_eq!(address_parts(key), AddressDomain::NotAnAddress, "{key}");
        }
        for key in [
            "a@[999.0.0.1]",
            "a@[host]",
            "a@[192.0.2.1",
            "a@",
            "a@-x.nl",
            "a@x\u{ff0e}\u{ff0e}nl",
        ] {
            assert!(
                matches!(address_parts(key), AddressDomain::Invalid { .. }),
                "{key}"
            );
        }
        assert_eq!(
            address_parts("a@b\u{ff0e}nl"),
            AddressDomain::Domain(DomainName::parse("b.nl").unwrap())
        );
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
