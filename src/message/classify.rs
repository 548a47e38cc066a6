//! Direction (is this our own outbound mail?) and classification (sensitive or not).
//!
//! Pure functions of the connection facts and the configuration. Only outbound mail is
//! classified, and only a trusted (outbound) client's bypass header counts: the same
//! header from outside is stripped and ignored (as E-Zorg's `x-ezorg-secbypass`
//! documentation, Table 2, prescribes).

use std::fmt;
use std::net::IpAddr;

use crate::config::{Classification, Config};

/// Why mail counts as ours (outbound), or that it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Direction {
    /// SASL-authenticated submission.
    Authenticated(String),
    /// From a network in `[outbound] networks` (includes local `sendmail` submissions,
    /// which non_smtpd_milters see as 127.0.0.1).
    TrustedNetwork(IpAddr),
    Inbound,
}

impl Direction {
    pub fn is_outbound(&self) -> bool {
        !matches!(self, Direction::Inbound)
    }
}

/// The label the audit trail and the metrics use.
impl From<&Direction> for crate::metrics::Direction {
    fn from(d: &Direction) -> Self {
        if d.is_outbound() {
            crate::metrics::Direction::Outbound
        } else {
            crate::metrics::Direction::Inbound
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Direction::Authenticated(u) => write!(f, "outbound (SASL user {u})"),
            Direction::TrustedNetwork(ip) => write!(f, "outbound (trusted network {ip})"),
            Direction::Inbound => f.write_str("inbound"),
        }
    }
}

/// `client`: the connecting address when the MTA told us one (a unix-socket or unknown
/// client is never trusted by address). `auth_user`: Postfix's `{auth_authen}` macro.
pub fn direction(config: &Config, client: Option<IpAddr>, auth_user: Option<&str>) -> Direction {
    if let Some(u) = auth_user.filter(|u| !u.is_empty()) {
        return Direction::Authenticated(u.to_string());
    }
    match client {
        Some(ip) if config.is_outbound_network(ip) => Direction::TrustedNetwork(ip),
        _ => Direction::Inbound,
    }
}

/// How the classification was reached, for logs and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The bypass header from a trusted client, with its value.
    BypassHeader(String),
    SenderRule,
    Default,
    /// The eDelivery portal's own, content-free mail, recognised by its mark
    /// (`message::portal_mark`).
    PortalMark,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::BypassHeader(v) => write!(f, "bypass header ({v})"),
            Source::SenderRule => f.write_str("sender rule"),
            Source::Default => f.write_str("default"),
            Source::PortalMark => f.write_str("portal mark"),
        }
    }
}

/// The bypass header's meaning: `true` = not sensitive, `false` = sensitive, compared
/// case-insensitively like `x-ezorg-secbypass`; anything else has no meaning.
fn bypass_value(v: &str) -> Option<Classification> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(Classification::Standard)
    } else if v.eq_ignore_ascii_case("false") {
        Some(Classification::Secure)
    } else {
        None
    }
}

/// Precedence (README Logic, rule 11): trusted bypass header > sender rule > `[policy] default`.
/// `bypass_values` are all values of the bypass header in the message. Several that
/// disagree, or one without a meaning, resolve to `secure`: sensitivity is the safe
/// reading of an unclear mark.
pub fn classify(
    config: &Config,
    sender: &str,
    bypass_values: &[String],
) -> (Classification, Source) {
    if !bypass_values.is_empty() {
        let meanings: Vec<Option<Classification>> =
            bypass_values.iter().map(|v| bypass_value(v)).collect();
        let all_standard = meanings
            .iter()
            .all(|m| *m == Some(Classification::Standard));
        let class = if all_standard {
            Classification::Standard
        } else {
            Classification::Secure
        };
        return (class, Source::BypassHeader(bypass_values.join(",")));
    }
    if let Some(class) = config.policy.classify_sender(sender) {
        return (class, Source::SenderRule);
    }
    (config.policy.default, Source::Default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_and_metrics_label() {
        use crate::metrics::Direction as Label;
        assert_eq!(Label::from(&Direction::Inbound), Label::Inbound);
        assert_eq!(
            Label::from(&Direction::Authenticated("u".into())),
            Label::Outbound
        );
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_str(extra, "t").unwrap()
    }

    #[test]
    fn direction_by_auth_then_network() {
        let c = config("");
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let out: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            direction(&c, Some(out), Some("jan")),
            Direction::Authenticated("jan".into())
        );
        assert_eq!(direction(&c, Some(lo), None), Direction::TrustedNetwork(lo));
        assert_eq!(direction(&c, Some(out), None), Direction::Inbound);
        assert_eq!(direction(&c, Some(out), Some("")), Direction::Inbound);
        assert_eq!(direction(&c, None, None), Direction::Inbound);
    }

    #[test]
    fn precedence_header_then_sender_rule_then_default() {
        let c = config(
            "[[policy.senders]]\nmatch = [\"@nieuws.zkh.nl\"]\nclassification = \"standard\"\n",
        );
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            classify(&c, "a@zkh.nl", &v(&["TRUE"])).0,
            Classification::Standard
        );
        assert_eq!(
            classify(&c, "a@nieuws.zkh.nl", &v(&["false"])),
            (Classification::Secure, Source::BypassHeader("false".into()))
        );
        assert_eq!(
            classify(&c, "a@nieuws.zkh.nl", &[]),
            (Classification::Standard, Source::SenderRule)
        );
        assert_eq!(
            classify(&c, "a@zkh.nl", &[]),
            (Classification::Secure, Source::Default)
        );
        // Unclear marks are read as sensitive.
        assert_eq!(
            classify(&c, "a@zkh.nl", &v(&["yes"])).0,
            Classification::Secure
        );
        assert_eq!(
            classify(&c, "a@zkh.nl", &v(&["true", "false"])).0,
            Classification::Secure
        );
    }
}
