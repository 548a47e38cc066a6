//! Verification of mail arriving from outside: SPF, DKIM and DMARC with mail-auth over
//! our own validating resolver, and the "arrived securely" verdict for the recipient
//! (NTA 7516 6.1.5 herkomstbevestiging, 6.1.7, 6.1.14).

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DkimResult, DmarcResult, MessageAuthenticator,
    SpfResult, dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};

use crate::config::{Config, DmarcEnforcement, TempErrorAction};
use crate::dns::Resolver;
use crate::domain::DomainName;
use crate::engine::Engine;
use crate::policy::Verdict;

pub const HEADER_INBOUND: &str = "X-NTA7516-Inbound";
pub const HEADER_AUTH_RESULTS: &str = "Authentication-Results";
/// The weakest TLS version that counts as "arrived securely" (internet.nl: TLS 1.2 is
/// sufficient, older is insufficient).
pub const MIN_TLS: (u8, u8) = (1, 2);

/// What the connection told us (Postfix macros `{tls_version}`, `{cipher}`).
#[derive(Debug, Clone, Default)]
pub struct Transport {
    pub client_ip: Option<IpAddr>,
    pub helo: String,
    pub tls_version: Option<String>,
    pub cipher: Option<String>,
}

/// What the milter should do with the message after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Deliver,
    /// 550 5.7.1 with this text (`[inbound] dmarc = "honour"`, p=reject failure).
    Reject(String),
    /// Postfix hold queue with this reason (p=quarantine failure under "honour").
    Quarantine(String),
    /// 451 with this text (`[inbound] temp_error = "tempfail"`).
    Tempfail(String),
}

#[derive(Debug, Clone)]
pub struct Verification {
    /// Value of our Authentication-Results header (LF folding, as Postfix wants it).
    pub auth_results: String,
    pub spf: String,
    pub dkim: String,
    pub dmarc: String,
    pub secure: bool,
    /// Why it is (not) secure, in order: TLS, sender authentication, sender NTA status.
    pub reasons: Vec<String>,
    pub action: Action,
    /// Subject prefix to add, if configured for this verdict.
    pub subject_tag: Option<String>,
}

impl Verification {
    /// `X-NTA7516-Inbound` value: `secure (...)` or `insecure (...)`.
    pub fn header_value(&self) -> String {
        format!(
            "{} ({})",
            if self.secure { "secure" } else { "insecure" },
            self.reasons.join("; ")
        )
    }
}

/// The TLS version is acceptable: TLSv1.2, TLSv1.3 or later.
pub fn tls_ok(version: &str) -> bool {
    let Some(v) = version.trim().strip_prefix("TLSv") else {
        return false;
    };
    let mut it = v.split('.');
    let major: u8 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u8 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= MIN_TLS
}

fn spf_str(r: &SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn dkim_str(r: &DkimResult) -> &'static str {
    match r {
        DkimResult::Pass => "pass",
        // mail-auth reports a body-hash mismatch as Neutral: for us anything but Pass
        // does not authenticate.
        DkimResult::Neutral(_) => "neutral",
        DkimResult::Fail(_) => "fail",
        DkimResult::PermError(_) => "permerror",
        DkimResult::TempError(_) => "temperror",
        DkimResult::None => "none",
    }
}

fn dmarc_str(r: &DmarcResult) -> &'static str {
    match r {
        DmarcResult::Pass => "pass",
        DmarcResult::Fail(_) => "fail",
        DmarcResult::TempError(_) => "temperror",
        DmarcResult::PermError(_) => "permerror",
        DmarcResult::None => "none",
    }
}

/// One message to verify.
pub struct Request<'a> {
    /// Names us in the Authentication-Results header.
    pub authserv_id: &'a str,
    pub transport: &'a Transport,
    /// Envelope sender (empty for the null sender).
    pub mail_from: &'a str,
    /// Headers + CRLF + body, as received.
    pub raw: &'a [u8],
    /// Bound on the whole verification; what did not finish counts as a temporary error.
    pub deadline: Duration,
}

/// Verifies one inbound message and decides what to do with it.
pub async fn verify<R: Resolver>(
    auth: &MessageAuthenticator,
    engine: &std::sync::Arc<Engine<R>>,
    config: &Config,
    req: &Request<'_>,
) -> Verification {
    let Request {
        authserv_id,
        transport,
        mail_from,
        raw,
        deadline,
    } = *req;
    let fallback_ip = IpAddr::from([0, 0, 0, 0]);
    let ip = transport.client_ip.unwrap_or(fallback_ip);
    let helo = if transport.helo.is_empty() {
        "unknown"
    } else {
        transport.helo.as_str()
    };
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return unparsable(config, authserv_id);
    };
    let checks = async {
        let dkim = auth.verify_dkim(&msg).await;
        let spf = auth
            .verify_spf(SpfParameters::verify_mail_from(
                ip,
                helo,
                authserv_id,
                mail_from,
            ))
            .await;
        let mail_from_domain = mail_from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = auth
            .verify_dmarc(DmarcParameters::new(&msg, &dkim, mail_from_domain, &spf))
            .await;
        (dkim, spf, dmarc)
    };
    let Ok((dkim, spf, dmarc)) = tokio::time::timeout(deadline, checks).await else {
        return timed_out(config, authserv_id);
    };

    let header_from = msg.from();
    let ar = AuthenticationResults::new(authserv_id)
        .with_dkim_results(&dkim, header_from)
        .with_spf_mailfrom_result(&spf, ip, mail_from, helo)
        .with_dmarc_result(&dmarc)
        .to_header();
    let auth_results = header_value(&ar);

    let dkim_summary = if dkim.is_empty() {
        "none".to_string()
    } else {
        dkim.iter()
            .map(|d| dkim_str(d.result()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let dmarc_result = dmarc.result();
    let temp = matches!(spf.result(), SpfResult::TempError)
        || dkim
            .iter()
            .any(|d| matches!(d.result(), DkimResult::TempError(_)))
        || matches!(dmarc_result, DmarcResult::TempError(_));

    // The verdict: all three must hold.
    let mut reasons = Vec::new();
    let mut secure = true;
    match transport.tls_version.as_deref() {
        Some(v) if tls_ok(v) => reasons.push(format!(
            "{v}{}",
            transport
                .cipher
                .as_deref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        )),
        Some(v) => {
            secure = false;
            reasons.push(format!("{v} is older than TLS 1.2"));
        }
        None => {
            secure = false;
            reasons.push("not received over TLS".into());
        }
    }
    if dmarc_result == DmarcResult::Pass {
        reasons.push(format!(
            "sender authenticated (dmarc=pass for {header_from})"
        ));
    } else {
        secure = false;
        reasons.push(format!(
            "sender not authenticated (dmarc={})",
            dmarc_str(&dmarc_result)
        ));
    }
    let from_domain = crate::domain::address_domain(header_from);
    match from_domain {
        Some(d) if config.is_own_domain(&d) => {
            secure = false;
            reasons.push(format!(
                "From domain {d} is our own domain, yet the message came from outside"
            ));
        }
        Some(d) => {
            let decision = engine.decide(&d).await;
            match &decision.verdict {
                Verdict::Compliant(_) => reasons.push(format!("{d} is an NTA 7516 party")),
                other => {
                    secure = false;
                    let codes: Vec<&str> =
                        other.reasons().iter().map(|r| r.code.as_str()).collect();
                    reasons.push(format!(
                        "{d} is not an NTA 7516 party ({})",
                        codes.join(",")
                    ));
                }
            }
        }
        None => {
            secure = false;
            reasons.push("no usable From domain".into());
        }
    }

    let policy = dmarc.policy();
    let action = match (&dmarc_result, config.inbound.dmarc) {
        (DmarcResult::Fail(_), DmarcEnforcement::Honour) if policy == Policy::Reject => {
            Action::Reject(format!(
                "DMARC policy of {} rejects this message (dmarc=fail)",
                dmarc.domain()
            ))
        }
        (DmarcResult::Fail(_), DmarcEnforcement::Honour) if policy == Policy::Quarantine => {
            Action::Quarantine(format!("DMARC p=quarantine failure for {}", dmarc.domain()))
        }
        _ if temp && config.inbound.temp_error == TempErrorAction::Tempfail => {
            Action::Tempfail("temporary DNS error while verifying SPF/DKIM/DMARC".into())
        }
        _ => Action::Deliver,
    };
    let tag = if secure {
        &config.inbound.subject_tag_secure
    } else {
        &config.inbound.subject_tag_insecure
    };
    Verification {
        auth_results,
        spf: spf_str(&spf.result()).to_string(),
        dkim: dkim_summary,
        dmarc: dmarc_str(&dmarc_result).to_string(),
        secure,
        reasons,
        action,
        subject_tag: (!tag.is_empty()).then(|| tag.clone()),
    }
}

/// mail-auth writes `Authentication-Results: <value>\r\n` folded with `\r\n\t`; Postfix
/// wants the bare value folded with `\n\t` (Postfix stores CRLF folding literally).
fn header_value(header: &str) -> String {
    let v = header
        .strip_prefix("Authentication-Results:")
        .unwrap_or(header)
        .trim_start()
        .trim_end_matches(['\r', '\n']);
    v.replace("\r\n", "\n")
}

/// A verification that could not run (`what` says why); `temp` when it may succeed later.
pub fn degraded(config: &Config, authserv_id: &str, what: &str, temp: bool) -> Verification {
    let action = if temp && config.inbound.temp_error == TempErrorAction::Tempfail {
        Action::Tempfail(format!("{what}; try again later"))
    } else {
        Action::Deliver
    };
    let tag = &config.inbound.subject_tag_insecure;
    Verification {
        auth_results: format!("{authserv_id}; none"),
        spf: "temperror".into(),
        dkim: "temperror".into(),
        dmarc: "temperror".into(),
        secure: false,
        reasons: vec![what.to_string()],
        action,
        subject_tag: (!tag.is_empty()).then(|| tag.clone()),
    }
}

fn timed_out(config: &Config, authserv_id: &str) -> Verification {
    degraded(config, authserv_id, "verification timed out", true)
}

fn unparsable(config: &Config, authserv_id: &str) -> Verification {
    degraded(
        config,
        authserv_id,
        "message headers could not be parsed for verification",
        false,
    )
}

/// Does an arriving Authentication-Results header claim to be ours? Such a header from
/// outside is a forgery (RFC 8601 §5) and is removed before anything else.
pub fn claims_authserv_id(value: &str, authserv_id: &str) -> bool {
    let v = value.trim_start();
    let id = v
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()
        .unwrap_or("");
    id.eq_ignore_ascii_case(authserv_id)
}

/// This host's name, for the default authserv-id.
pub fn host_name() -> String {
    let name = gethostname::gethostname();
    DomainName::parse(&name.to_string_lossy())
        .map(|d| d.to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions() {
        assert!(tls_ok("TLSv1.2"));
        assert!(tls_ok("TLSv1.3"));
        assert!(!tls_ok("TLSv1"));
        assert!(!tls_ok("TLSv1.1"));
        assert!(!tls_ok("SSLv3"));
        assert!(!tls_ok(""));
        assert_eq!(MIN_TLS, (1, 2));
    }

    #[test]
    fn authserv_claims() {
        assert!(claims_authserv_id("mx.zkh.nl; spf=pass", "mx.zkh.nl"));
        assert!(claims_authserv_id(" MX.ZKH.NL 1; none", "mx.zkh.nl"));
        assert!(!claims_authserv_id("mx.zkh.nl.evil; spf=pass", "mx.zkh.nl"));
        assert!(!claims_authserv_id("google.com; spf=pass", "mx.zkh.nl"));
    }

    #[test]
    fn ar_header_value_is_lf_folded_without_name() {
        assert_eq!(
            header_value("Authentication-Results: mx; dkim=pass;\r\n\tspf=pass\r\n"),
            "mx; dkim=pass;\n\tspf=pass"
        );
    }

    #[test]
    fn host_name_is_a_domain() {
        assert!(DomainName::parse(&host_name()).is_ok());
    }
}
