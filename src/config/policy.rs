//! `[policy]`: classification defaults, what to do with non-compliant recipients, and
//! per-sender rules.

use std::fmt;
use std::str::FromStr;

use crate::domain::DomainName;

/// How sensitive a message is. `Secure` mail may only leave over an NTA 7516 compliant
/// route; `Standard` mail goes out by ordinary (opportunistic TLS) delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    Secure,
    Standard,
}

impl Classification {
    const CHOICES: &[(&str, Self)] = &[("secure", Self::Secure), ("standard", Self::Standard)];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secure => "secure",
            Self::Standard => "standard",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Classification {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        choose(s, Self::CHOICES)
    }
}

/// What happens to secure mail for a recipient whose domain is not NTA 7516 compliant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonCompliantAction {
    /// Deliver over LMTP to our own eDelivery portal (`[portal]`, transport `nta-portal`):
    /// the message stays in the organisation and the recipient reads it after an SMS code.
    Portal,
    /// Relay through `fallback_relay` (e.g. a secure-mail portal provider).
    Fallback,
    /// Return to the sender at once (the default: needs no relay, never insecure).
    Bounce,
    /// Keep in the queue and retry (for domains expected to become compliant soon).
    Defer,
}

impl NonCompliantAction {
    const CHOICES: &[(&str, Self)] = &[
        ("portal", Self::Portal),
        ("fallback", Self::Fallback),
        ("bounce", Self::Bounce),
        ("defer", Self::Defer),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::Fallback => "fallback",
            Self::Bounce => "bounce",
            Self::Defer => "defer",
        }
    }
}

impl fmt::Display for NonCompliantAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NonCompliantAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        choose(s, Self::CHOICES)
    }
}

/// Exact, case-sensitive match (the sample config and docs spell them in lower case), with
/// an error that lists what is allowed.
pub(crate) fn choose<T: Copy>(s: &str, choices: &[(&str, T)]) -> Result<T, String> {
    if let Some((_, v)) = choices.iter().find(|(name, _)| *name == s) {
        return Ok(*v);
    }
    let allowed: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
    Err(format!(
        "unknown value {s:?}; expected one of {}",
        allowed.join(", ")
    ))
}

/// One entry of a `[[policy.senders]]` `match` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SenderPattern {
    /// A full address, local part lower-cased and domain in canonical form. Local parts are
    /// case-sensitive in theory, but no mail system in this field treats `Jan@` and `jan@` as
    /// different people, and a rule that silently fails to match would be worse.
    Address(String),
    /// `"@d"` or `"d"`: the domain and all its subdomains.
    Domain(DomainName),
}

impl SenderPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(domain) = s.strip_prefix('@') {
            return Ok(Self::Domain(parse_domain(domain)?));
        }
        match s.rsplit_once('@') {
            Some((local, domain)) => Ok(Self::Address(normalize_address(local, domain)?)),
            None if s.is_empty() => Err("empty pattern".into()),
            None => Ok(Self::Domain(parse_domain(s)?)),
        }
    }

    fn matches(&self, address: Option<&str>, domain: &DomainName) -> bool {
        match self {
            Self::Address(a) => address == Some(a.as_str()),
            Self::Domain(d) => domain.is_within(d),
        }
    }
}

impl fmt::Display for SenderPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(a) => f.write_str(a),
            Self::Domain(d) => write!(f, "@{d}"),
        }
    }
}

fn parse_domain(s: &str) -> Result<DomainName, String> {
    if s.starts_with("*.") {
        return Err(format!(
            "{s:?}: no wildcards needed; a domain pattern already includes its subdomains"
        ));
    }
    DomainName::parse(s).map_err(|e| format!("{s:?}: {e}"))
}

fn normalize_address(local: &str, domain: &str) -> Result<String, String> {
    if local.is_empty() || local.contains(|c: char| c.is_whitespace() || "<>\"".contains(c)) {
        return Err(format!(
            "{:?} is not a plain address like \"jan@zkh.nl\"",
            format!("{local}@{domain}")
        ));
    }
    Ok(format!(
        "{}@{}",
        local.to_lowercase(),
        parse_domain(domain)?
    ))
}

/// `match = [...]` with its classification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderRule {
    pub patterns: Vec<SenderPattern>,
    pub classification: Classification,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Classification of mail that no sender rule and no bypass header marks otherwise.
    pub default: Classification,
    /// Name of the header a trusted sender sets to `true` (not sensitive) or `false`.
    pub bypass_header: String,
    pub non_compliant: NonCompliantAction,
    /// Postfix next-hop (`[host]:port`, `[host]`, `host`, `host:port`), validated; always
    /// present when `non_compliant` is `Fallback`.
    pub fallback_relay: Option<String>,
    pub require_dmarc: bool,
    pub require_spf: bool,
    pub senders: Vec<SenderRule>,
}

impl PolicyConfig {
    /// Classification that the sender rules give to an envelope sender (`jan@zkh.nl`, angle
    /// brackets allowed). The first rule with a matching pattern wins, in file order; `None`
    /// when no rule matches or the sender is empty (bounces) or has no valid domain.
    pub fn classify_sender(&self, sender: &str) -> Option<Classification> {
        let sender = sender.trim();
        let sender = sender
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(sender)
            .trim();
        let (local, domain) = sender.rsplit_once('@')?;
        let domain = DomainName::parse(domain).ok()?;
        let address = (!local.is_empty()).then(|| format!("{}@{}", local.to_lowercase(), domain));
        self.senders
            .iter()
            .find(|rule| {
                rule.patterns
                    .iter()
                    .any(|p| p.matches(address.as_deref(), &domain))
            })
            .map(|rule| rule.classification)
    }
}

/// `non_compliant = "portal"` needs the portal it routes to: the route map answers with the
/// `[portal] lmtp` socket, and without one it could only defer every such message. `Err`
/// holds the text reported at the `non_compliant` line (config check and daemon start).
pub(crate) fn check_portal_route(
    non_compliant: NonCompliantAction,
    portal: Option<&crate::config::portal::PortalConfig>,
) -> Result<(), &'static str> {
    if non_compliant == NonCompliantAction::Portal && portal.is_none() {
        return Err(
            "policy.non_compliant = \"portal\" (this line) needs a [portal] section (at least \
             listen, public_url, lmtp, store, key_file, from and [portal.sms]); add it, or \
             choose \"bounce\", \"defer\" or \"fallback\"",
        );
    }
    Ok(())
}

/// Headers the daemon itself owns (README "How it works": X-NTA7516-*); it strips client copies of
/// them, so using one as the bypass header would make the bypass never work.
const RESERVED_HEADERS: &[&str] = &[
    "X-NTA7516-Route",
    "X-NTA7516-Classification",
    "X-NTA7516-Inbound",
];

/// RFC 5322 §3.6.8: a field name is one or more printable ASCII characters (33..=126)
/// except `:`.
pub(crate) fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = name.chars().find(|&c| !matches!(c, '!'..='~') || c == ':') {
        return Err(format!(
            "{name:?} is not a header field name: {c:?} is not allowed \
             (printable ASCII without spaces or ':')"
        ));
    }
    if let Some(r) = RESERVED_HEADERS
        .iter()
        .find(|r| r.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "{r} is set by nta7516-milter itself; choose another name"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(patterns: &[&str], classification: Classification) -> SenderRule {
        SenderRule {
            patterns: patterns
                .iter()
                .map(|p| SenderPattern::parse(p).unwrap())
                .collect(),
            classification,
        }
    }

    fn policy(senders: Vec<SenderRule>) -> PolicyConfig {
        PolicyConfig {
            default: Classification::Secure,
            bypass_header: "X-NTA7516-Bypass".into(),
            non_compliant: NonCompliantAction::Bounce,
            fallback_relay: None,
            require_dmarc: false,
            require_spf: false,
            senders,
        }
    }

    #[test]
    fn patterns() {
        use SenderPattern::*;
        let d = |s| Domain(DomainName::parse(s).unwrap());
        assert_eq!(SenderPattern::parse("zkh.nl"), Ok(d("zkh.nl")));
        assert_eq!(
            SenderPattern::parse("@Afdeling.ZKH.nl."),
            Ok(d("afdeling.zkh.nl"))
        );
        assert_eq!(
            SenderPattern::parse("Jan.Jansen@ZKH.nl"),
            Ok(Address("jan.jansen@zkh.nl".into()))
        );
        for bad in [
            "",
            "@",
            "jan@",
            "@jan@zkh.nl",
            "*.zkh.nl",
            "<jan@zkh.nl>",
            "a b@x.nl",
        ] {
            assert!(SenderPattern::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let p = policy(vec![
            rule(&["jan@zkh.nl"], Classification::Secure),
            rule(&["@afdeling.zkh.nl"], Classification::Standard),
            rule(&["zkh.nl", "other.nl"], Classification::Secure),
            rule(&["zkh.nl"], Classification::Standard),
        ]);
        use Classification::*;
        assert_eq!(p.classify_sender("jan@zkh.nl"), Some(Secure));
        assert_eq!(p.classify_sender("<JAN@ZKH.NL>"), Some(Secure));
        assert_eq!(p.classify_sender("piet@afdeling.zkh.nl"), Some(Standard));
        assert_eq!(p.classify_sender("x@sub.afdeling.zkh.nl"), Some(Standard));
        assert_eq!(p.classify_sender("piet@zkh.nl"), Some(Secure));
        assert_eq!(p.classify_sender("piet@other.nl"), Some(Secure));
        assert_eq!(p.classify_sender("piet@notzkh.nl"), None);
        assert_eq!(p.classify_sender("<>"), None);
        assert_eq!(p.classify_sender(""), None);
        assert_eq!(p.classify_sender("no-domain"), None);

        // A full address listed after a domain rule never gets a say.
        let p = policy(vec![
            rule(&["zkh.nl"], Classification::Standard),
            rule(&["jan@zkh.nl"], Classification::Secure),
        ]);
        assert_eq!(p.classify_sender("jan@zkh.nl"), Some(Standard));
    }

    #[test]
    fn choices_list_allowed_values() {
        assert_eq!("secure".parse(), Ok(Classification::Secure));
        assert_eq!("defer".parse(), Ok(NonCompliantAction::Defer));
        let e = "Secure".parse::<Classification>().unwrap_err();
        assert_eq!(
            e,
            r#"unknown value "Secure"; expected one of "secure", "standard""#
        );
        let e = "relay".parse::<NonCompliantAction>().unwrap_err();
        assert!(
            e.contains(r#""portal", "fallback", "bounce", "defer""#),
            "{e}"
        );
        assert_eq!("portal".parse(), Ok(NonCompliantAction::Portal));
        assert_eq!(NonCompliantAction::Portal.to_string(), "portal");
        assert_eq!(Classification::Standard.to_string(), "standard");
        assert_eq!(NonCompliantAction::Fallback.to_string(), "fallback");
    }

    #[test]
    fn header_names() {
        assert!(check_header_name("X-NTA7516-Bypass").is_ok());
        assert!(check_header_name("x-ezorg-secbypass").is_ok());
        for bad in [
            "",
            "X Bypass",
            "X:Bypass",
            "X-Bÿpass",
            "X-\tB",
            "x-nta7516-route",
        ] {
            assert!(check_header_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
