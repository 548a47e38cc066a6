//! Header hygiene: the header fields the daemon removes from every message before it adds
//! its own, one rule set for both front-ends (the milter's end-of-message plan and the
//! Exim filter's whole-message rewrite).
//!
//! Removed, in both directions:
//! * every field the daemon owns (`X-NTA7516-*`): a client must not be able to set the
//!   classification or the route;
//! * the configured bypass header: a trusted client's value is read first (the caller
//!   asks [`Hygiene::is_bypass`]), an untrusted client's is ignored;
//! * an Authentication-Results field that claims our authserv-id: from outside it is a
//!   forgery (RFC 8601 §5).

use crate::config::Config;
use crate::message::inbound::{HEADER_AUTH_RESULTS, claims_authserv_id};

/// The classification the daemon gives outbound mail (`secure` or `standard`).
pub const HEADER_CLASSIFICATION: &str = "X-NTA7516-Classification";
/// `standard` when non-sensitive mail may leave by the normal route (milter only).
pub const HEADER_ROUTE: &str = "X-NTA7516-Route";

/// The recipient's mobile number for the eDelivery portal (E.164). Kept from a trusted
/// (outbound) client only; it never leaves by SMTP (the shipped Postfix config drops it in
/// `smtp_header_checks`, the Exim filter removes it), and DKIM never signs it.
pub const HEADER_PHONE: &str = "X-NTA7516-Phone";

/// The prefix of every header field the daemon writes (`X-NTA7516-Classification`, …).
const OWN_PREFIX: &[u8] = b"x-nta7516";

/// Is this a header the daemon owns (and therefore strips from clients)?
///
/// Compared as bytes: a client may send any bytes in a field name, and slicing the
/// `&str` at the prefix length would panic inside a multi-byte character.
pub fn is_own_header(name: &str, bypass_header: &str) -> bool {
    let n = name.trim();
    n.as_bytes()
        .get(..OWN_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(OWN_PREFIX))
        || n.eq_ignore_ascii_case(bypass_header)
}

/// The rules of one configuration: the bypass header's name and our authserv-id.
#[derive(Debug, Clone, Copy)]
pub struct Hygiene<'a> {
    pub bypass_header: &'a str,
    /// RFC 8601 authserv-id of the Authentication-Results we write ([`authserv_id`]).
    pub authserv_id: &'a str,
}

impl<'a> Hygiene<'a> {
    pub fn new(config: &'a Config, authserv_id: &'a str) -> Self {
        Self {
            bypass_header: &config.policy.bypass_header,
            authserv_id,
        }
    }

    /// Must this field go? `value` is everything after the colon; it is read as lossy
    /// UTF-8 (only the authserv-id at its start matters).
    pub fn removes(&self, name: &str, value: &[u8]) -> bool {
        is_own_header(name, self.bypass_header)
            || (name.trim().eq_ignore_ascii_case(HEADER_AUTH_RESULTS)
                && claims_authserv_id(&String::from_utf8_lossy(value), self.authserv_id))
    }

    /// Is this `X-NTA7516-Phone` (which the milter keeps from a trusted client)?
    pub fn is_phone(&self, name: &str) -> bool {
        name.trim().eq_ignore_ascii_case(HEADER_PHONE)
    }

    /// Is this the portal's mark on its own mail (`message::portal_mark`)?
    pub fn is_portal_mark(&self, name: &str) -> bool {
        name.trim()
            .eq_ignore_ascii_case(crate::message::portal_mark::HEADER_PORTAL_MARK)
    }

    /// Is this the bypass header (whose value a trusted client's mail is classified by)?
    pub fn is_bypass(&self, name: &str) -> bool {
        name.trim().eq_ignore_ascii_case(self.bypass_header)
    }
}

/// The authserv-id of this configuration: `[inbound] authserv_id`, else this host's name.
pub fn authserv_id(config: &Config) -> String {
    config
        .inbound
        .authserv_id
        .clone()
        .unwrap_or_else(crate::message::inbound::host_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_headers() {
        for h in [
            "X-NTA7516-Route",
            "x-nta7516-classification",
            "X-NTA7516-Inbound",
            "X-Bypass",
        ] {
            assert!(is_own_header(h, "x-bypass"), "{h}");
        }
        assert!(!is_own_header("Subject", "x-bypass"));
        assert!(!is_own_header("X-NTA", "x-bypass"));
    }

    #[test]
    fn forged_authentication_results_only() {
        let h = Hygiene {
            bypass_header: "x-bypass",
            authserv_id: "mx.zkh.nl",
        };
        assert!(h.removes("Authentication-Results", b" mx.zkh.nl; dkim=pass"));
        assert!(h.removes("authentication-results ", b" MX.ZKH.NL;dkim=pass"));
        assert!(!h.removes("Authentication-Results", b" mx.other.nl; dkim=pass"));
        assert!(!h.removes("Authentication-Results", b" mx.zkh.nl.evil; dkim=pass"));
        assert!(!h.removes("X-Authentication-Results", b" mx.zkh.nl; dkim=pass"));
        assert!(h.removes("X-Bypass", b" true") && h.is_bypass(" x-bypass"));
        assert!(!h.is_bypass("X-NTA7516-Route"));
    }
}
