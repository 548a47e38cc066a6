//! `[inbound]`: verification of mail that arrives from outside (SPF, DKIM, DMARC) and the
//! "arrived securely" verdict shown to the recipient (NTA 7516 6.1.5, 6.1.7, 6.1.14).

use std::fmt;
use std::str::FromStr;

use super::policy::choose;

/// What a DMARC failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DmarcEnforcement {
    /// Annotate only (Authentication-Results, X-NTA7516-Inbound). The default: a
    /// receiving hospital should not lose mail to a sender's DMARC mistakes unannounced.
    None,
    /// p=reject failures are rejected (550 5.7.1), p=quarantine failures are quarantined
    /// (held by Postfix).
    Honour,
}

impl DmarcEnforcement {
    const CHOICES: &[(&str, Self)] = &[("none", Self::None), ("honour", Self::Honour)];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Honour => "honour",
        }
    }
}

impl FromStr for DmarcEnforcement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        choose(s, Self::CHOICES)
    }
}

impl fmt::Display for DmarcEnforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a temporary DNS error during verification does. Never a rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempErrorAction {
    /// Deliver with the temperror results annotated (the default).
    Annotate,
    /// 451: the sender's MTA retries later, when DNS may answer.
    Tempfail,
}

impl TempErrorAction {
    const CHOICES: &[(&str, Self)] = &[("annotate", Self::Annotate), ("tempfail", Self::Tempfail)];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Annotate => "annotate",
            Self::Tempfail => "tempfail",
        }
    }
}

impl FromStr for TempErrorAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        choose(s, Self::CHOICES)
    }
}

impl fmt::Display for TempErrorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundConfig {
    /// RFC 8601 authserv-id of our Authentication-Results; `None` = this host's name.
    pub authserv_id: Option<String>,
    pub dmarc: DmarcEnforcement,
    pub temp_error: TempErrorAction,
    /// Prefixed to the Subject of mail that did not arrive securely (empty = off).
    pub subject_tag_insecure: String,
    /// Prefixed to the Subject of mail that arrived securely (empty = off).
    pub subject_tag_secure: String,
}

/// The authserv-id as RFC 8601 allows it: a dot-atom-ish token without spaces or `;`.
pub(crate) fn check_authserv_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a valid authserv-id; use the receiving host's name, e.g. \"mx.ziekenhuis.nl\""
        ))
    }
}

/// Subject tags go into a header: one line of printable text.
pub(crate) fn check_tag(s: &str) -> Result<String, String> {
    if s.len() > 64 || s.chars().any(|c| c.is_control()) {
        Err("must be one line of at most 64 characters".into())
    } else {
        Ok(s.to_string())
    }
}
