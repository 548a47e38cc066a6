//! Raw TOML values → validated model. Every check runs and reports before anything is
//! assembled, so that one bad value never hides another; a section builder returns `None`
//! only after reporting why.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::Config;
use super::duration::parse_duration;
use super::error::Report;
use super::inbound::InboundConfig;
use super::policy::{
    Classification, NonCompliantAction, PolicyConfig, SenderPattern, SenderRule, check_header_name,
    check_portal_route,
};
use super::raw::{
    RawAudit, RawConfig, RawDkim, RawDns, RawDomains, RawFooter, RawInbound, RawOutbound,
    RawPolicy, RawSenderRule, RawServer,
};
use super::relay::check_next_hop;
use super::sections::{
    AuditConfig, DkimConfig, DnsConfig, DomainsConfig, FooterConfig, OutboundConfig, ServerConfig,
};
use super::socket::SocketSpec;
use crate::domain::DomainName;

/// Lower bound: anything shorter fails on ordinary network jitter.
const MIN_DNS_TIMEOUT: Duration = Duration::from_millis(100);
/// Upper bound: Postfix waits at most `milter_command_timeout` (default 30s) for a milter
/// reply; a DNS timeout beyond that would let Postfix give up first and apply
/// `milter_default_action` instead of our decision.
const MAX_DNS_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn config(raw: RawConfig, r: &mut Report<'_>) -> Option<Config> {
    let server = server(raw.server, r);
    let dns = dns(raw.dns, r);
    let require_own_from_span = raw.outbound.require_own_from.span();
    let domains = domains(raw.domains, r);
    let outbound = outbound(raw.outbound, r);
    if let (Some(o), Some(d)) = (&outbound, &domains)
        && o.require_own_from
        && d.own.is_empty()
    {
        // Every outbound message would be refused.
        r.error(
            "outbound.require_own_from",
            &require_own_from_span,
            "needs [domains] own: without own domains every outbound message would be refused",
        );
    }
    let non_compliant_span = raw.policy.non_compliant.span();
    let policy = policy(raw.policy, r);
    let dkim = dkim(raw.dkim, r);
    let footer = footer(raw.footer);
    let audit = audit(raw.audit, r);
    let inbound = inbound(raw.inbound, r);
    let portal =
        super::portal_validate::portal(raw.portal.as_ref(), domains.as_ref(), audit.as_ref(), r);
    let config = Config {
        source: None,
        server: server?,
        dns: dns?,
        domains: domains?,
        outbound: outbound?,
        policy: policy?,
        dkim: dkim?,
        footer,
        audit: audit?,
        inbound: inbound?,
        portal: portal?,
    };
    if let Err(why) = check_portal_route(config.policy.non_compliant, config.portal.as_ref()) {
        r.error("policy.non_compliant", &non_compliant_span, why);
    }
    Some(config)
}

/// Parses one value, reporting a failure under `key` at the value's line.
pub(super) fn parse<T>(
    r: &mut Report<'_>,
    key: &str,
    value: &Spanned<String>,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    f(value.get_ref())
        .map_err(|message| r.error(key, &value.span(), message))
        .ok()
}

pub(super) fn parse_opt<T>(
    r: &mut Report<'_>,
    key: &str,
    value: &Option<Spanned<String>>,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(v) => parse(r, key, v, f).map(Some),
    }
}

/// Parses every element (`key[i]`); `None` if any failed.
fn parse_list<T>(
    r: &mut Report<'_>,
    key: &str,
    values: &Spanned<Vec<Spanned<String>>>,
    f: impl Fn(&str) -> Result<T, String>,
) -> Option<Vec<T>> {
    let parsed: Vec<Option<T>> = values
        .get_ref()
        .iter()
        .enumerate()
        .map(|(i, v)| parse(r, &format!("{key}[{i}]"), v, &f))
        .collect();
    parsed.into_iter().collect()
}

fn server(raw: RawServer, r: &mut Report<'_>) -> Option<ServerConfig> {
    let milter = parse(r, "server.milter", &raw.milter, str::parse::<SocketSpec>);
    let map = parse(r, "server.map", &raw.map, str::parse::<SocketSpec>);
    if let (Some(a), Some(b)) = (&milter, &map)
        && a == b
    {
        r.error(
            "server.map",
            &raw.map.span(),
            format!("{b} is also the milter socket; the two front-ends need different sockets"),
        );
    }
    let metrics = parse_opt(r, "server.metrics", &raw.metrics, str::parse::<SocketSpec>);
    if let (Some(Some(m)), Some(span)) = (&metrics, raw.metrics.as_ref().map(|m| m.span()))
        && (milter.as_ref() == Some(m) || map.as_ref() == Some(m))
    {
        r.error(
            "server.metrics",
            &span,
            format!("{m} is also a front-end socket; the metrics listener needs its own"),
        );
    }
    let socket_owner = parse_opt(r, "server.socket_owner", &raw.socket_owner, account);
    let socket_group = parse_opt(r, "server.socket_group", &raw.socket_group, account);
    let socket_mode = parse(r, "server.socket_mode", &raw.socket_mode, file_mode);
    Some(ServerConfig {
        milter: milter?,
        map: map?,
        socket_owner: socket_owner?,
        socket_group: socket_group?,
        socket_mode: socket_mode?,
        dry_run: raw.dry_run.into_inner(),
        metrics: metrics?,
    })
}

/// A user or group name or numeric id; resolved when the socket is created, not here.
fn account(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ':' || c == '\0') {
        return Err(format!("{s:?} is not a user or group name or number"));
    }
    Ok(s.to_string())
}

/// Octal permission bits as written for chmod: `"0660"`, `"660"`.
fn file_mode(s: &str) -> Result<u32, String> {
    let valid = !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(s, 8) {
        Ok(mode) if valid && mode <= 0o777 => Ok(mode),
        _ => Err(format!(
            "{s:?} is not a permission mode; expected octal like \"0660\" (at most \"0777\")"
        )),
    }
}

fn dns(raw: RawDns, r: &mut Report<'_>) -> Option<DnsConfig> {
    let nameservers = parse_list(r, "dns.nameservers", &raw.nameservers, nameserver);
    let trust_anchor_file = parse_opt(r, "dns.trust_anchor_file", &raw.trust_anchor_file, path);
    let timeout = parse(r, "dns.timeout", &raw.timeout, |s| {
        let d = parse_duration(s)?;
        if (MIN_DNS_TIMEOUT..=MAX_DNS_TIMEOUT).contains(&d) {
            Ok(d)
        } else {
            Err(format!(
                "{s:?} is out of range; expected from 100ms to 30s (Postfix's \
                 milter_command_timeout is 30s)"
            ))
        }
    });
    Some(DnsConfig {
        nameservers: nameservers?,
        trust_anchor_file: trust_anchor_file?,
        timeout: timeout?,
    })
}

/// `"IP"` (port 53), `"IP:PORT"`, `"[IPv6]"` or `"[IPv6]:PORT"`.
fn nameserver(s: &str) -> Result<SocketAddr, String> {
    let bare = s
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err(format!(
            "{s:?} is not a name server address; expected \"IP\", \"IP:PORT\" or \
             \"[IPv6]:PORT\" (names are not allowed: they would need DNS to find DNS)"
        )),
    }
}

/// An absolute path. Relative paths are refused: the daemon's working directory is `/`
/// under systemd, so a relative path would silently mean something else than intended.
pub(super) fn path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        return Err("empty path; leave the key out instead".into());
    }
    if s.contains('\0') {
        return Err("path contains a NUL byte".into());
    }
    let p = PathBuf::from(s);
    if !p.is_absolute() {
        return Err(format!("{s:?} is not an absolute path"));
    }
    Ok(p)
}

fn domains(raw: RawDomains, r: &mut Report<'_>) -> Option<DomainsConfig> {
    let own = parse_list(r, "domains.own", &raw.own, domain)?;
    Some(DomainsConfig { own })
}

fn domain(s: &str) -> Result<DomainName, String> {
    if s.starts_with("*.") {
        return Err(format!(
            "{s:?}: no wildcards needed; a domain always includes its subdomains"
        ));
    }
    DomainName::parse(s).map_err(|e| format!("{s:?}: {e}"))
}

fn outbound(raw: RawOutbound, r: &mut Report<'_>) -> Option<OutboundConfig> {
    let networks = parse_list(r, "outbound.networks", &raw.networks, network)?;
    Some(OutboundConfig {
        networks,
        require_own_from: *raw.require_own_from.get_ref(),
    })
}

/// CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address. Host bits are refused rather
/// than masked away: `192.168.1.0/16` is most likely a typo for `/24`, and this list decides
/// who may send outgoing mail.
fn network(s: &str) -> Result<ipnet::IpNet, String> {
    let net = if s.contains('/') {
        s.parse::<ipnet::IpNet>()
            .map_err(|_| format!("{s:?} is not a network; expected CIDR like \"10.0.0.0/8\""))?
    } else {
        let ip = s.parse::<IpAddr>().map_err(|_| {
            format!("{s:?} is not a network; expected CIDR like \"10.0.0.0/8\" or an address")
        })?;
        ipnet::IpNet::from(ip)
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has host bits set; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    if let ipnet::IpNet::V6(v6) = net
        && v6.addr().to_ipv4_mapped().is_some()
        && v6.prefix_len() >= 96
    {
        return Err(format!(
            "{s:?} is IPv4-mapped; write the IPv4 network (mapped client addresses are \
             compared as IPv4)"
        ));
    }
    Ok(net)
}

fn policy(raw: RawPolicy, r: &mut Report<'_>) -> Option<PolicyConfig> {
    let default = parse(
        r,
        "policy.default",
        &raw.default,
        str::parse::<Classification>,
    );
    let bypass_header = parse(r, "policy.bypass_header", &raw.bypass_header, |s| {
        check_header_name(s).map(|()| s.to_string())
    });
    let non_compliant = parse(
        r,
        "policy.non_compliant",
        &raw.non_compliant,
        str::parse::<NonCompliantAction>,
    );
    let fallback_relay = parse_opt(r, "policy.fallback_relay", &raw.fallback_relay, |s| {
        check_next_hop(s).map(|()| s.to_string())
    });
    if non_compliant == Some(NonCompliantAction::Fallback)
        && raw.fallback_relay.is_none()
        && !r.reported("policy.fallback_relay")
    {
        r.error(
            "policy.fallback_relay",
            &raw.non_compliant.span(),
            "required when policy.non_compliant = \"fallback\" (this line); set it to the \
             relay's Postfix next-hop, e.g. \"[relay.example.nl]:25\"",
        );
    }
    let senders: Vec<Option<SenderRule>> = raw
        .senders
        .iter()
        .enumerate()
        .map(|(i, rule)| sender_rule(rule, &format!("policy.senders[{i}]"), r))
        .collect();
    Some(PolicyConfig {
        default: default?,
        bypass_header: bypass_header?,
        non_compliant: non_compliant?,
        fallback_relay: fallback_relay?,
        require_dmarc: raw.require_dmarc.into_inner(),
        require_spf: raw.require_spf.into_inner(),
        senders: senders.into_iter().collect::<Option<_>>()?,
    })
}

fn sender_rule(
    rule: &Spanned<RawSenderRule>,
    path: &str,
    r: &mut Report<'_>,
) -> Option<SenderRule> {
    let header = rule.span();
    let rule = rule.get_ref();
    let key = format!("{path}.match");
    let patterns = match &rule.patterns {
        None if r.reported(&key) => None,
        None => {
            r.error(
                &key,
                &header,
                "missing; list addresses or domains, e.g. [\"zkh.nl\"]",
            );
            None
        }
        Some(list) if list.get_ref().is_empty() => {
            r.error(
                &key,
                &list.span(),
                "empty list; this rule would match nothing",
            );
            None
        }
        Some(list) => parse_list(r, &key, list, SenderPattern::parse),
    };
    let key = format!("{path}.classification");
    let classification = match &rule.classification {
        None if r.reported(&key) => None,
        None => {
            r.error(&key, &header, "missing; \"secure\" or \"standard\"");
            None
        }
        Some(c) => parse(r, &key, c, str::parse::<Classification>),
    };
    Some(SenderRule {
        patterns: patterns?,
        classification: classification?,
    })
}

fn dkim(raw: Vec<Spanned<RawDkim>>, r: &mut Report<'_>) -> Option<Vec<DkimConfig>> {
    // domain → line of its first entry, for the duplicate message.
    let mut seen: HashMap<DomainName, Option<usize>> = HashMap::new();
    let mut out = Vec::new();
    let mut ok = true;
    for (i, entry) in raw.iter().enumerate() {
        let path = format!("dkim[{i}]");
        let header = entry.span();
        let entry = entry.get_ref();
        let mut required = |name: &str, v: &Option<Spanned<String>>| {
            let key = format!("{path}.{name}");
            if v.is_none() && !r.reported(&key) {
                r.error(key, &header, "missing (required in [[dkim]])");
            }
        };
        required("domain", &entry.domain);
        required("selector", &entry.selector);
        required("key", &entry.key);
        let domain = parse_opt(r, &format!("{path}.domain"), &entry.domain, domain).flatten();
        if let (Some(d), Some(v)) = (&domain, &entry.domain) {
            let line = r.line_of_span(&v.span());
            if let Some(first) = seen.get(d) {
                let at = first.map(|l| format!(" (line {l})")).unwrap_or_default();
                r.error(
                    format!("{path}.domain"),
                    &v.span(),
                    format!("{d} already has a [[dkim]] entry{at}; one key per domain"),
                );
            } else {
                seen.insert(d.clone(), line);
            }
        }
        let selector =
            parse_opt(r, &format!("{path}.selector"), &entry.selector, selector).flatten();
        let key = parse_opt(r, &format!("{path}.key"), &entry.key, self::path).flatten();
        match (domain, selector, key) {
            (Some(domain), Some(selector), Some(key)) => out.push(DkimConfig {
                domain,
                selector,
                key,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// RFC 6376 §3.1: a selector is one or more DNS labels separated by dots.
fn selector(s: &str) -> Result<String, String> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if s.len() <= 253 && s.split('.').all(label_ok) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a selector; expected DNS labels (letters, digits, '-', '_') \
             separated by dots, e.g. \"sel2024\""
        ))
    }
}

fn footer(raw: RawFooter) -> FooterConfig {
    FooterConfig {
        text: raw.text.into_inner(),
        html: raw.html.into_inner(),
    }
}

fn audit(raw: RawAudit, r: &mut Report<'_>) -> Option<AuditConfig> {
    let file = parse_opt(r, "audit.file", &raw.file, path)?;
    Some(AuditConfig { file })
}

fn inbound(raw: RawInbound, r: &mut Report<'_>) -> Option<InboundConfig> {
    use super::inbound::{DmarcEnforcement, TempErrorAction, check_authserv_id, check_tag};
    let authserv_id = parse_opt(
        r,
        "inbound.authserv_id",
        &raw.authserv_id,
        check_authserv_id,
    );
    let dmarc = parse(
        r,
        "inbound.dmarc",
        &raw.dmarc,
        str::parse::<DmarcEnforcement>,
    );
    let temp_error = parse(
        r,
        "inbound.temp_error",
        &raw.temp_error,
        str::parse::<TempErrorAction>,
    );
    let insecure = parse(
        r,
        "inbound.subject_tag_insecure",
        &raw.subject_tag_insecure,
        check_tag,
    );
    let secure = parse(
        r,
        "inbound.subject_tag_secure",
        &raw.subject_tag_secure,
        check_tag,
    );
    Some(InboundConfig {
        authserv_id: authserv_id?,
        dmarc: dmarc?,
        temp_error: temp_error?,
        subject_tag_insecure: insecure?,
        subject_tag_secure: secure?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(file_mode("0660"), Ok(0o660));
        assert_eq!(file_mode("660"), Ok(0o660));
        assert_eq!(file_mode("0777"), Ok(0o777));
        assert_eq!(file_mode("0"), Ok(0));
        for bad in [
            "",
            "0868",
            "1777",
            "07777",
            "-660",
            "+660",
            "0x1a",
            "rw-rw----",
        ] {
            assert!(file_mode(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn nameservers() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(nameserver("192.0.2.53"), Ok(a("192.0.2.53:53")));
        assert_eq!(nameserver("192.0.2.53:5353"), Ok(a("192.0.2.53:5353")));
        assert_eq!(nameserver("::1"), Ok(a("[::1]:53")));
        assert_eq!(nameserver("[::1]"), Ok(a("[::1]:53")));
        assert_eq!(
            nameserver("[2001:db8::53]:853"),
            Ok(a("[2001:db8::53]:853"))
        );
        for bad in [
            "",
            "ns.example.nl",
            "192.0.2.53:0",
            "192.0.2.53:",
            "::1:53x",
            "1.2.3",
        ] {
            assert!(nameserver(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn networks() {
        assert_eq!(network("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(network("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(
            network("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(network("::1").unwrap().to_string(), "::1/128");
        let e = network("192.168.1.0/16").unwrap_err();
        assert!(e.contains("192.168.0.0/16"), "{e}");
        for bad in [
            "",
            "10.0.0.0/33",
            "10/8",
            "10.0.0.0/",
            "bogus",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(network(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn selectors_and_paths() {
        assert!(selector("sel1").is_ok());
        assert!(selector("2024.mail_x").is_ok());
        for bad in ["", ".", "a..b", "a b", "a/b", &"a".repeat(64)] {
            assert!(selector(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(path("/etc/x.pem"), Ok(PathBuf::from("/etc/x.pem")));
        assert!(path("x.pem").is_err());
        assert!(path("").is_err());
        assert!(account("postfix").is_ok());
        assert!(account("0").is_ok());
        assert!(account("").is_err());
        assert!(account("a b").is_err());
    }
}
