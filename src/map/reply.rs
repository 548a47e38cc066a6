//! Socketmap requests and replies, and the pure mapping from a verdict to a reply.
//!
//! Requests are `route <address>` (transport_maps), `tls <next hop>`
//! (smtp_tls_policy_maps), `class <envelope sender>` (Exim's data ACL: the sender
//! rules, [`class_reply`]) and `portal-login <password>` (Exim's authenticator for the
//! portal's SMTP login, [`portal_login_reply`]). Replies are the fixed socketmap forms:
//! `OK <transport>:<nexthop>`, `OK dane-only`, `NOTFOUND `, `TEMP <reason>`, `PERM <reason>`.

use std::fmt;
use std::net::IpAddr;

use crate::config::{Config, NonCompliantAction, SocketSpec};
use crate::domain::{AddressDomain, DomainName, address_parts};
use crate::message::portal_mark::MarkKey;
use crate::policy::{self, Verdict};

pub use crate::mta::{
    TRANSPORT_BOUNCE, TRANSPORT_DANE, TRANSPORT_DEFER, TRANSPORT_FALLBACK, TRANSPORT_PORTAL,
    sanitize,
};

/// Longest reason text put into a reply or a DSN: a DSN line stays readable and far
/// below Postfix's reply limit (netstring::MAX_REPLY_SIZE).
pub const MAX_REASON_LEN: usize = 400;
/// Longest destination name quoted in a reply: a DNS name is at most 253 characters
/// (RFC 1035); an invalid one from a client may be anything.
pub const MAX_SHOWN_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Route(String),
    Tls(String),
    /// The classification `[[policy.senders]]` and `[policy] default` give an envelope
    /// sender; for MTAs that classify without the milter (Exim, exim/README.md).
    Class(String),
    /// The password the portal gave Exim with AUTH PLAIN (exim/README.md).
    PortalLogin(Password),
}

/// A password from a request: never shown, not even in debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request is not UTF-8")]
    NotUtf8,
    #[error("request has no key (expected \"<map> <key>\")")]
    NoKey,
    #[error("unknown map {0:?} (expected route, tls, class or portal-login)")]
    UnknownMap(String),
}

pub fn parse(payload: &[u8]) -> Result<Query, RequestError> {
    let text = std::str::from_utf8(payload).map_err(|_| RequestError::NotUtf8)?;
    let (map, key) = text.split_once(' ').ok_or(RequestError::NoKey)?;
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(RequestError::NoKey);
    }
    match map {
        "route" => Ok(Query::Route(key)),
        "tls" => Ok(Query::Tls(key)),
        "class" => Ok(Query::Class(key)),
        "portal-login" => Ok(Query::PortalLogin(Password(key))),
        other => Err(RequestError::UnknownMap(sanitize(other, 40))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(String),
    NotFound,
    Temp(String),
    Perm(String),
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Ok(d) => write!(f, "OK {d}"),
            // The trailing space is part of the protocol's NOTFOUND reply.
            Reply::NotFound => f.write_str("NOTFOUND "),
            Reply::Temp(r) => write!(f, "TEMP {r}"),
            Reply::Perm(r) => write!(f, "PERM {r}"),
        }
    }
}

/// The answer to `class <envelope sender>`: `OK standard` or `OK secure`, from the first
/// matching `[[policy.senders]]` rule, else `[policy] default` (README Logic, rule 11;
/// the same rules the milter applies). `<>` (a bounce) and unparsable senders get the
/// default. No DNS and no audit event: the decision is the MTA's to act on, and the
/// message it belongs to is not known yet. The bypass header, which overrides this, is
/// read by the MTA itself (exim/nta7516-milter.acl).
pub fn class_reply(config: &Config, sender: &str) -> Reply {
    let class = config
        .policy
        .classify_sender(sender)
        .unwrap_or(config.policy.default);
    Reply::Ok(class.as_str().to_string())
}

/// The answer to `portal-login <password>`: `OK yes` when it is the portal's login
/// password (`MarkKey::login_password`, derived from `[portal] mail_key`), else
/// `NOTFOUND `; also `NOTFOUND ` when this daemon has no portal key. Exim's
/// authenticator accepts the login only on `OK yes`, so every other outcome (daemon down,
/// a TEMP, a PERM) refuses it and the portal retries later.
pub fn portal_login_reply(key: Option<&MarkKey>, password: &Password) -> Reply {
    match key {
        Some(k) if k.verify_login(&password.0) => Reply::Ok("yes".into()),
        _ => Reply::NotFound,
    }
}

/// What a `route` key asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteKey {
    /// None of our business (`NOTFOUND `): not an address (`*`, `.domain` patterns, bare
    /// local parts), or an address in one of our own domains.
    Pass,
    /// A recipient domain, routed by its DNS verdict.
    Domain(DomainName),
    /// The portal's own address (`[portal] from`): a sender's reply to the portal's
    /// request for a number goes to the portal over LMTP (`OK nta-portal:<lmtp>`).
    PortalAddress(String),
    /// An address literal or a domain nobody can deliver to: decided without DNS
    /// (`policy::address_literal`, `policy::invalid_domain`). Never `NOTFOUND`: Postfix
    /// would deliver such an address the ordinary way (for a literal, in clear to that
    /// IP; for a name it reads differently, to whatever its own UTS #46 mapping finds).
    Decided { shown: String, verdict: Verdict },
}

/// Classifies a `route` key.
pub fn route_key(config: &Config, key: &str) -> RouteKey {
    match address_parts(key) {
        AddressDomain::NotAnAddress => RouteKey::Pass,
        AddressDomain::Domain(_)
            if config
                .portal
                .as_ref()
                .is_some_and(|p| key.trim().eq_ignore_ascii_case(&p.from)) =>
        {
            let lmtp = config.portal.as_ref().map(|p| &p.lmtp);
            RouteKey::PortalAddress(lmtp.map(lmtp_next_hop).unwrap_or_default())
        }
        AddressDomain::Domain(d) if config.is_own_domain(&d) => RouteKey::Pass,
        AddressDomain::Domain(d) => RouteKey::Domain(d),
        AddressDomain::Literal(ip) => RouteKey::Decided {
            shown: format!("[{ip}]"),
            verdict: policy::address_literal(ip),
        },
        AddressDomain::Invalid { domain, error } => RouteKey::Decided {
            verdict: policy::invalid_domain(&domain, &error),
            shown: domain,
        },
    }
}

/// The domain or host a `tls` key names: `domain`, `host:port`, `[host]` or `[host]:port`.
/// `None` for an IP literal (`[192.0.2.1]:25`, `[ipv6:2001:db8::1]`, as in
/// `relayhost = [10.0.0.5]`): an IP is never an NTA 7516 party, so there is nothing to
/// look up in DNS and the ordinary TLS policy applies, also while DNS is down.
pub fn tls_name(key: &str) -> Option<DomainName> {
    let k = key.trim();
    let host = if let Some(rest) = k.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        k.split_once(':').map_or(k, |(h, _)| h)
    };
    let is_literal = host.parse::<std::net::IpAddr>().is_ok()
        || host
            .get(..5)
            .is_some_and(|t| t.eq_ignore_ascii_case("ipv6:"));
    if is_literal {
        return None;
    }
    DomainName::parse_host(host).ok()
}

/// The `route` reply for a recipient (`shown`: its domain as logged) and its verdict under
/// the configured policy.
pub fn route_reply(config: &Config, shown: &str, verdict: &Verdict) -> Reply {
    match verdict {
        Verdict::Compliant(c) if c.via_ntamx => {
            // Bracketed hosts: no MX lookup on an ntamx host, so DNS cannot redirect
            // the delivery away from the hosts the signed record names.
            let hops: Vec<String> = c.targets.iter().map(|h| format!("[{h}]:25")).collect();
            Reply::Ok(format!("{TRANSPORT_DANE}:{}", hops.join(", ")))
        }
        Verdict::Compliant(_) => Reply::Ok(format!("{TRANSPORT_DANE}:{shown}")),
        Verdict::NotCompliant { reasons } => {
            let why: Vec<&str> = reasons.iter().map(|r| r.message.as_str()).collect();
            let why = sanitize(&why.join("; "), MAX_REASON_LEN);
            let shown = sanitize(shown, MAX_SHOWN_LEN);
            if verdict.is_undeliverable() {
                // RFC 3463 5.1.2: bad destination system address. Permanent under every
                // policy: deferring could never succeed, and a fallback could not deliver.
                return Reply::Ok(format!("{TRANSPORT_BOUNCE}:5.1.2 NTA 7516: {why}"));
            }
            match config.policy.non_compliant {
                NonCompliantAction::Portal => match &config.portal {
                    Some(portal) => Reply::Ok(format!(
                        "{TRANSPORT_PORTAL}:{}",
                        lmtp_next_hop(&portal.lmtp)
                    )),
                    // Config validation requires [portal] for this policy; deferring is
                    // the only safe answer if it is still missing.
                    None => Reply::Temp("NTA 7516: no [portal] section configured".into()),
                },
                NonCompliantAction::Fallback => match &config.policy.fallback_relay {
                    Some(relay) => Reply::Ok(format!("{TRANSPORT_FALLBACK}:{relay}")),
                    // Config validation requires a relay for fallback; if one is still
                    // missing, deferring is the only safe answer.
                    None => Reply::Temp("NTA 7516: no fallback_relay configured".into()),
                },
                NonCompliantAction::Bounce => Reply::Ok(format!(
                    "{TRANSPORT_BOUNCE}:5.7.1 NTA 7516: {shown} cannot receive secure mail directly and no secure alternative is configured: {why}"
                )),
                NonCompliantAction::Defer => Reply::Ok(format!(
                    "{TRANSPORT_DEFER}:4.7.1 NTA 7516: {shown} cannot receive secure mail directly; held until it can: {why}"
                )),
            }
        }
        Verdict::Temporary { reason } => Reply::Temp(sanitize(
            &format!(
                "NTA 7516: cannot decide the route for {shown}: {}",
                reason.message
            ),
            MAX_REASON_LEN,
        )),
    }
}

/// The `[portal] lmtp` socket in Postfix lmtp(8) destination syntax: `unix:PATH`, or
/// `inet:[ADDR]:PORT` for an address (brackets: a numeric host, no name lookup) and
/// `inet:HOST:PORT` for a name. A unix path is used as written: the shipped `nta-portal`
/// service runs unchrooted, so an absolute path means the same to Postfix and the portal.
pub fn lmtp_next_hop(socket: &SocketSpec) -> String {
    match socket {
        SocketSpec::Unix(path) => format!("unix:{}", path.display()),
        SocketSpec::Inet { host, port } if host.parse::<IpAddr>().is_ok() => {
            format!("inet:[{host}]:{port}")
        }
        SocketSpec::Inet { host, port } => format!("inet:{host}:{port}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::map::netstring;
    use crate::policy::{Code, Reason};

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_str(&format!("[domains]\nown = [\"zkh.nl\"]\n{extra}"), "t").unwrap()
    }

    use crate::policy::test_compliant as compliant;

    fn not_compliant() -> Verdict {
        Verdict::NotCompliant {
            reasons: vec![Reason {
                code: Code::NtaRecordAbsent,
                message: "gmail.test publishes no NTA 7516 TXT record".into(),
            }],
        }
    }

    #[test]
    fn requests() {
        assert_eq!(parse(b"route a@b.nl"), Ok(Query::Route("a@b.nl".into())));
        assert_eq!(parse(b"tls [h]:25"), Ok(Query::Tls("[h]:25".into())));
        assert_eq!(parse(b"route"), Err(RequestError::NoKey));
        assert_eq!(parse(b"route "), Err(RequestError::NoKey));
        assert!(matches!(
            parse(b"virtual x"),
            Err(RequestError::UnknownMap(_))
        ));
        assert_eq!(parse(&[0xff, b' ', b'x']), Err(RequestError::NotUtf8));
        assert_eq!(
            parse(b"class <a@b.nl>"),
            Ok(Query::Class("<a@b.nl>".into()))
        );
        assert_eq!(
            parse(b"portal-login abc"),
            Ok(Query::PortalLogin(Password("abc".into())))
        );
        assert_eq!(parse(b"portal-login "), Err(RequestError::NoKey));
        assert_eq!(
            format!("{:?}", parse(b"portal-login s3cret").unwrap()),
            "PortalLogin(Password(<redacted>))"
        );
    }

    #[test]
    fn portal_login_only_with_the_derived_password() {
        let key = MarkKey::from_bytes(&[5; 32]).unwrap();
        let pw = Password(key.login_password());
        assert_eq!(portal_login_reply(Some(&key), &pw), Reply::Ok("yes".into()));
        assert_eq!(
            portal_login_reply(None, &pw),
            Reply::NotFound,
            "no portal key"
        );
        let other = MarkKey::from_bytes(&[6; 32]).unwrap();
        assert_eq!(portal_login_reply(Some(&other), &pw), Reply::NotFound);
        let wrong = Password("x".repeat(43));
        assert_eq!(portal_login_reply(Some(&key), &wrong), Reply::NotFound);
        // what Exim compares against, netstring and all
        let yes = crate::map::netstring::encode(Reply::Ok("yes".into()).to_string().as_bytes());
        assert_eq!(yes, b"6:OK yes,");
    }

    #[test]
    fn sender_classes() {
        let ok = |s: &str| Reply::Ok(s.into());
        let c = config(
            "[[policy.senders]]\nmatch = [\"nieuwsbrief@zkh.nl\", \"@marketing.zkh.nl\"]\nclassification = \"standard\"\n",
        );
        assert_eq!(class_reply(&c, "<nieuwsbrief@zkh.nl>"), ok("standard"));
        assert_eq!(class_reply(&c, "Nieuwsbrief@ZKH.nl"), ok("standard"));
        assert_eq!(class_reply(&c, "<x@team.marketing.zkh.nl>"), ok("standard"));
        // No rule, a bounce, nonsense: the default.
        assert_eq!(class_reply(&c, "<jan@zkh.nl>"), ok("secure"));
        assert_eq!(class_reply(&c, "<>"), ok("secure"));
        assert_eq!(class_reply(&c, "not an address"), ok("secure"));
        let c = config(
            "[policy]\ndefault = \"standard\"\n[[policy.senders]]\nmatch = [\"@poli.zkh.nl\"]\nclassification = \"secure\"\n",
        );
        assert_eq!(class_reply(&c, "<arts@poli.zkh.nl>"), ok("secure"));
        assert_eq!(class_reply(&c, "<jan@zkh.nl>"), ok("standard"));
        assert_eq!(class_reply(&c, "<>").to_string(), "OK standard");
    }

    #[test]
    fn route_keys() {
        let c = config("");
        assert_eq!(
            route_key(&c, "Jan@Huisarts.NL"),
            RouteKey::Domain(dn("huisarts.nl"))
        );
        // Postfix reads x@huisarts．nl as x@huisarts.nl (UTS #46) and delivers it there.
        assert_eq!(
            route_key(&c, "Jan@huisarts\u{ff0e}nl"),
            RouteKey::Domain(dn("huisarts.nl"))
        );
        for key in [
            "*",
            ".huisarts.nl",
            "postmaster",
            "a@zkh.nl",
            "a@afd.zkh.nl",
            "a@ZKH\u{3002}nl",
        ] {
            assert_eq!(route_key(&c, key), RouteKey::Pass, "{key}");
        }
    }

    #[test]
    fn literals_and_invalid_domains_are_decided_without_dns() {
        let c = config("[policy]\nnon_compliant = \"defer\"\n");
        let RouteKey::Decided { shown, verdict } = route_key(&c, "a@[192.0.2.1]") else {
            panic!("an address literal must be decided");
        };
        assert_eq!(shown, "[192.0.2.1]");
        let r = route_reply(&c, &shown, &verdict).to_string();
        assert!(
            r.starts_with("OK nta-defer:4.7.1 NTA 7516: [192.0.2.1] "),
            "{r}"
        );
        for key in [
            "a@-foo.nl",
            "a@a_b.nl",
            "a@xn--.nl",
            "a@not\u{200d}lsa.nl",
            "a@[host]",
            "a@",
        ] {
            let RouteKey::Decided { shown, verdict } = route_key(&c, key) else {
                panic!("{key} must be decided");
            };
            let r = route_reply(&c, &shown, &verdict).to_string();
            // Permanent under every policy, also `defer`.
            assert!(
                r.starts_with("OK nta-bounce:5.1.2 NTA 7516: "),
                "{key}: {r}"
            );
            assert!(r.is_ascii() && r.len() < netstring::MAX_REPLY_SIZE, "{r}");
        }
    }

    #[test]
    fn tls_keys() {
        for key in [
            "zkh.test",
            "[mx.zkh.test]:25",
            "[mx.zkh.test]",
            "mx.zkh.test:25",
        ] {
            assert!(tls_name(key).is_some(), "{key}");
        }
        assert_eq!(tls_name("[mx.zkh.test]:25"), Some(dn("mx.zkh.test")));
        assert_eq!(tls_name("[unclosed"), None);
        // IP literals are never NTA 7516 parties: no DNS lookup for them.
        for key in [
            "[192.0.2.1]:25",
            "[192.0.2.1]",
            "192.0.2.1",
            "192.0.2.1:25",
            "[ipv6:2001:db8::1]:25",
            "[IPv6:2001:db8::1]",
        ] {
            assert_eq!(tls_name(key), None, "{key}");
        }
    }

    #[test]
    fn replies_per_verdict_and_policy() {
        let d = "ggd.test";
        let c = config("");
        assert_eq!(
            route_reply(&c, d, &compliant(false, &["mx.ggd.test"])).to_string(),
            "OK nta-dane:ggd.test"
        );
        assert_eq!(
            route_reply(&c, d, &compliant(true, &["a.prov.test", "b.prov.test"])).to_string(),
            "OK nta-dane:[a.prov.test]:25, [b.prov.test]:25"
        );
        let bounce = route_reply(&c, d, &not_compliant()).to_string();
        assert!(
            bounce.starts_with("OK nta-bounce:5.7.1 NTA 7516: ggd.test "),
            "{bounce}"
        );
        assert!(bounce.contains("publishes no NTA 7516 TXT record"));

        let c = config("[policy]\nnon_compliant = \"defer\"\n");
        let defer = route_reply(&c, d, &not_compliant()).to_string();
        assert!(
            defer.starts_with("OK nta-defer:4.7.1 NTA 7516: ggd.test "),
            "{defer}"
        );

        let c = config(
            "[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"[relay.test]:25\"\n",
        );
        assert_eq!(
            route_reply(&c, d, &not_compliant()).to_string(),
            "OK nta-fallback:[relay.test]:25"
        );

        let temp = Verdict::Temporary {
            reason: Reason {
                code: Code::DnsTimeout,
                message: "TXT lookup for ggd.test: DNS timeout".into(),
            },
        };
        assert_eq!(
            route_reply(&c, d, &temp).to_string(),
            "TEMP NTA 7516: cannot decide the route for ggd.test: TXT lookup for ggd.test: DNS timeout"
        );
        assert_eq!(Reply::NotFound.to_string(), "NOTFOUND ");
    }

    /// A `[portal]` section as the portal's config parsing produces it.
    pub(crate) fn portal(lmtp: &str) -> crate::config::portal::PortalConfig {
        use crate::config::portal::*;
        PortalConfig {
            listen: "inet:127.0.0.1:7525".parse().unwrap(),
            public_url: "https://portaal.zkh.nl".into(),
            lmtp: lmtp.parse().unwrap(),
            store: StoreLocation::Sqlite("/var/lib/nta7516-milter/portal.db".into()),
            key_file: "/etc/nta7516-milter/portal.key".into(),
            retention: std::time::Duration::from_secs(30 * 86_400),
            from: "portaal@zkh.nl".into(),
            submit: crate::config::portal::Submission::Sendmail(DEFAULT_SENDMAIL.into()),
            organisation: "Ziekenhuis".into(),
            max_message_size: 25 * 1024 * 1024,
            audit_file: None,
            mail_key: "/etc/nta7516-milter/portal-mail.key".into(),
            branding: Branding::plain("portaal@zkh.nl"),
            notify_opened: false,
            number_wait: Some(std::time::Duration::from_secs(3 * 86_400)),
            sms: SmsConfig {
                provider: SmsProvider::Webhook,
                url: "https://sms.zkh.nl/send".into(),
                token_file: "/etc/nta7516-milter/sms.token".into(),
                sender: "Zkh".into(),
            },
        }
    }

    #[test]
    fn portal_next_hops_in_lmtp_syntax() {
        let hop = |s: &str| lmtp_next_hop(&s.parse().unwrap());
        assert_eq!(
            hop("unix:/run/nta7516-milter/portal.lmtp"),
            "unix:/run/nta7516-milter/portal.lmtp"
        );
        assert_eq!(hop("inet:127.0.0.1:7524"), "inet:[127.0.0.1]:7524");
        assert_eq!(hop("inet:[::1]:7524"), "inet:[::1]:7524");
        assert_eq!(hop("inet:portal.zkh.nl:7524"), "inet:portal.zkh.nl:7524");
    }

    #[test]
    fn the_portals_own_address_routes_to_the_portal() {
        let mut c = config("");
        // No portal: an own-domain address like any other.
        assert_eq!(route_key(&c, "portaal@zkh.nl"), RouteKey::Pass);
        c.portal = Some(portal("inet:127.0.0.1:7524"));
        assert_eq!(c.portal.as_ref().unwrap().from, "portaal@zkh.nl");
        for key in ["portaal@zkh.nl", "Portaal@ZKH.nl"] {
            assert_eq!(
                route_key(&c, key),
                RouteKey::PortalAddress("inet:[127.0.0.1]:7524".into()),
                "{key}"
            );
        }
        // Only that address: the rest of the own domain is the MTA's.
        assert_eq!(route_key(&c, "arts@zkh.nl"), RouteKey::Pass);
        assert_eq!(
            route_key(&c, "portaal@zkh.nl.evil"),
            RouteKey::Domain(dn("zkh.nl.evil"))
        );
    }

    #[test]
    fn portal_policy_routes_non_compliant_secure_mail_to_the_portal() {
        let mut c = config("");
        c.policy.non_compliant = NonCompliantAction::Portal;
        // Without [portal] (config validation refuses this; the map still must not route
        // anywhere unsafe): deferred.
        assert_eq!(
            route_reply(&c, "gmail.test", &not_compliant()),
            Reply::Temp("NTA 7516: no [portal] section configured".into())
        );
        c.portal = Some(portal("inet:127.0.0.1:7524"));
        assert_eq!(
            route_reply(&c, "gmail.test", &not_compliant()).to_string(),
            "OK nta-portal:inet:[127.0.0.1]:7524"
        );
        c.portal = Some(portal("unix:/run/nta7516-milter/portal.lmtp"));
        assert_eq!(
            route_reply(&c, "gmail.test", &not_compliant()).to_string(),
            "OK nta-portal:unix:/run/nta7516-milter/portal.lmtp"
        );
        // Compliant recipients keep the DANE route; undeliverable ones still bounce: the
        // portal is only for people who can read mail but not over NTA 7516.
        assert_eq!(
            route_reply(&c, "ggd.test", &compliant(false, &["mx.ggd.test"])).to_string(),
            "OK nta-dane:ggd.test"
        );
        let RouteKey::Decided { shown, verdict } = route_key(&c, "a@-foo.nl") else {
            panic!("an invalid domain must be decided");
        };
        assert!(
            route_reply(&c, &shown, &verdict)
                .to_string()
                .starts_with("OK nta-bounce:5.1.2 ")
        );
    }

    #[test]
    fn reasons_are_one_line_of_ascii_and_bounded() {
        assert_eq!(sanitize("a\r\nb\tç", 100), "a??b??");
        let long = "x".repeat(10_000);
        assert_eq!(sanitize(&long, MAX_REASON_LEN).len(), MAX_REASON_LEN + 3);
    }
}
