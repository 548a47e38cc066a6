//! `explain ADDRESS`: what the map server answers Postfix for one recipient, and why.
//!
//! The answers are not recomputed here: they come from the map server's own request
//! handler ([`crate::map::server::answer`]) over a configuration generation built like the
//! daemon's, so the text shown is the text Postfix gets. The `tls` lookups shown are the
//! ones Postfix makes for the next hops of that route (plus the domain itself).

use std::fmt::Write as _;

use crate::config::{Config, NonCompliantAction};
use crate::domain::{DomainName, address_domain};
use crate::map::reply::{self, Reply, RouteKey, TRANSPORT_DANE, TRANSPORT_FALLBACK};
use crate::map::server::answer;
use crate::nta::fmt_date;
use crate::policy::{Code, Verdict};
use crate::state::Generation;
use crate::tools::check::{self as report, DomainReport};

/// What kind of key the address is for the `route` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Not `local@domain`: NOTFOUND.
    NotAnAddress,
    /// One of `[domains] own` (the entry that matched): NOTFOUND.
    OwnDomain {
        domain: DomainName,
        entry: DomainName,
    },
    /// A recipient domain: routed by its verdict.
    Recipient(DomainName),
    /// An address literal or an invalid domain: decided without DNS.
    Decided { shown: String, verdict: Verdict },
    /// `[portal] from`: to the portal over LMTP (a reply to its request for a number).
    PortalAddress,
}

/// One socketmap request and the reply text the server gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapAnswer {
    pub query: String,
    pub reply: Reply,
}

#[derive(Debug)]
pub struct Explanation {
    pub address: String,
    pub subject: Subject,
    pub route: MapAnswer,
    pub tls: Vec<MapAnswer>,
    /// The routing verdict (recipient domains only).
    pub verdict: Option<Verdict>,
    /// The full `check` report of the domain (recipient domains only).
    pub evidence: Option<DomainReport>,
    /// Which settings decided the answer, one sentence each.
    pub decided_by: Vec<String>,
    /// `[server] dry_run`: the daemon answers NOTFOUND to everything instead.
    pub dry_run: bool,
}

impl Explanation {
    /// A reply Postfix treats as a temporary failure (the mail stays queued).
    pub fn is_temporary(&self) -> bool {
        std::iter::once(&self.route)
            .chain(&self.tls)
            .any(|a| matches!(a.reply, Reply::Temp(_)))
    }
}

/// Works out the answers for `address` under `config` (one DNS evaluation, then the map
/// server's handler on the cached decision).
pub async fn explain(config: &Config, address: &str) -> Result<Explanation, String> {
    // The answers as if enforcing; dry run is reported separately, since its NOTFOUND says
    // nothing about the route.
    let mut live = config.clone();
    live.server.dry_run = false;
    // A dry look-up, not processing: it must not write to the daemon's audit trail.
    live.audit.file = None;
    let g = Generation::build(live, None).map_err(|e| e.to_string())?;
    let address = address.trim().to_string();
    let route_query = format!("route {address}");

    let subject = match reply::route_key(config, &address) {
        RouteKey::Domain(d) => Subject::Recipient(d),
        RouteKey::Decided { shown, verdict } => Subject::Decided { shown, verdict },
        RouteKey::PortalAddress(_) => Subject::PortalAddress,
        RouteKey::Pass => match address_domain(&address) {
            Some(d) => {
                let entry = config
                    .domains
                    .own
                    .iter()
                    .filter(|o| d.is_within(o))
                    .max_by_key(|o| o.as_str().len())
                    .cloned()
                    .unwrap_or_else(|| d.clone());
                Subject::OwnDomain { domain: d, entry }
            }
            None => Subject::NotAnAddress,
        },
    };

    let (verdict, evidence) = match &subject {
        Subject::Recipient(d) => {
            // The routing decision (cached, as the map server makes it) and the full facts
            // for the evidence, concurrently.
            let (decision, (facts, full)) = tokio::join!(g.engine.decide(d), g.engine.check(d));
            let report = report::build(&facts, &full, &config.policy);
            (Some(decision.verdict.clone()), Some(report))
        }
        Subject::Decided { verdict, .. } => (Some(verdict.clone()), None),
        _ => (None, None),
    };

    let route = MapAnswer {
        reply: answer(route_query.as_bytes(), &g).await,
        query: route_query,
    };
    let mut tls_keys: Vec<String> = next_hops(&route.reply);
    match &subject {
        Subject::Recipient(d) | Subject::OwnDomain { domain: d, .. } => {
            if !tls_keys.iter().any(|k| k == d.as_str()) {
                tls_keys.push(d.to_string());
            }
        }
        Subject::NotAnAddress | Subject::Decided { .. } | Subject::PortalAddress => {}
    }
    let mut tls = Vec::new();
    for key in tls_keys {
        let query = format!("tls {key}");
        tls.push(MapAnswer {
            reply: answer(query.as_bytes(), &g).await,
            query,
        });
    }

    let decided_by = decided_by(config, &subject, verdict.as_ref());
    Ok(Explanation {
        address,
        subject,
        route,
        tls,
        verdict,
        evidence,
        decided_by,
        dry_run: config.server.dry_run,
    })
}

/// The next hops Postfix delivers to for a `route` reply, as it will look them up in the
/// `tls` map: the nexthop of `nta-dane:` / `nta-fallback:` (a list for several ntamx
/// hosts). The error transports (`nta-bounce`, `nta-defer`) make no SMTP connection.
pub fn next_hops(route: &Reply) -> Vec<String> {
    let Reply::Ok(value) = route else {
        return Vec::new();
    };
    match value.split_once(':') {
        Some((t, hops)) if t == TRANSPORT_DANE || t == TRANSPORT_FALLBACK => hops
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn config_name(config: &Config) -> String {
    match &config.source {
        Some(p) => p.display().to_string(),
        None => "embedded defaults".into(),
    }
}

/// What `[policy] non_compliant` does with secure mail to `d`.
fn non_compliant_sentence(config: &Config, file: &str, d: &str) -> String {
    match (config.policy.non_compliant, &config.policy.fallback_relay) {
        (NonCompliantAction::Portal, _) => match &config.portal {
            Some(portal) => format!(
                "[policy] non_compliant = \"portal\" ({file}): secure mail to {d} is delivered over LMTP to the organisation's own eDelivery portal ([portal] lmtp = {}, transport nta-portal); the recipient reads it there after an SMS code",
                crate::map::reply::lmtp_next_hop(&portal.lmtp)
            ),
            None => format!(
                "[policy] non_compliant = \"portal\" without a [portal] section ({file}): deferred, since there is no portal to deliver to"
            ),
        },
        (NonCompliantAction::Bounce, _) => format!(
            "[policy] non_compliant = \"bounce\" ({file}): secure mail to {d} is returned to the sender at once (5.7.1) through the nta-bounce transport"
        ),
        (NonCompliantAction::Defer, _) => format!(
            "[policy] non_compliant = \"defer\" ({file}): secure mail to {d} stays queued (4.7.1, nta-defer) and is retried until the domain is compliant or the queue lifetime ends"
        ),
        (NonCompliantAction::Fallback, Some(relay)) => format!(
            "[policy] non_compliant = \"fallback\" and fallback_relay = \"{relay}\" ({file}): secure mail to {d} goes to the secure alternative route through the nta-fallback transport"
        ),
        (NonCompliantAction::Fallback, None) => format!(
            "[policy] non_compliant = \"fallback\" without fallback_relay ({file}): deferred, since there is nowhere safe to send it"
        ),
    }
}

/// One sentence per setting (or rule) that decided the route.
pub fn decided_by(config: &Config, subject: &Subject, verdict: Option<&Verdict>) -> Vec<String> {
    let file = config_name(config);
    let mut out = Vec::new();
    match (subject, verdict) {
        (Subject::NotAnAddress, _) => out.push(
            "the key is not an address with a domain: the map server answers NOTFOUND and Postfix uses its next transport_maps table or default_transport".into(),
        ),
        (Subject::PortalAddress, _) => out.push(format!(
            "[portal] from ({file}): the portal's own address; the sender's reply to its request for a number goes to the portal over LMTP (nta-portal)"
        )),
        (Subject::OwnDomain { entry, .. }, _) => out.push(format!(
            "[domains] own contains \"{entry}\" ({file}): mail to own domains is never routed by NTA 7516 status; NOTFOUND leaves it to Postfix's normal routing"
        )),
        (Subject::Recipient(_), Some(Verdict::Compliant(c))) => {
            out.push(
                "the verdict alone: a compliant domain always gets the nta-dane transport with DANE enforced (tls map: dane-only); [policy] non_compliant does not apply".into(),
            );
            if c.via_ntamx {
                out.push("next hop: the ntamx hosts of the DNSSEC-signed NTA record, in brackets so that no MX lookup can redirect the delivery".into());
            } else {
                out.push("next hop: the domain's own (DNSSEC-secure) MX hosts".into());
            }
        }
        (Subject::Decided { verdict: v, .. }, _) if v.is_undeliverable() => out.push(
            "the domain is no valid mail domain (RFC 5321 section 4.1.2, UTS #46): nothing can ever be delivered to it, so it is bounced at once (5.1.2, nta-bounce) whatever [policy] non_compliant says".into(),
        ),
        (Subject::Decided { shown, .. }, _) => {
            out.push("an address literal names no domain, so it has no NTA record and no DNSSEC-signed TLSA: never an NTA 7516 party, decided without DNS".into());
            out.push(non_compliant_sentence(config, &file, shown));
        }
        (Subject::Recipient(d), Some(Verdict::NotCompliant { reasons })) => {
            let p = &config.policy;
            out.push(non_compliant_sentence(config, &file, d.as_str()));
            if p.require_dmarc && reasons.iter().any(|r| r.code == Code::DmarcPolicyWeak) {
                out.push(format!("[policy] require_dmarc = true ({file}) makes a weak or missing DMARC policy a reason"));
            }
            if p.require_spf && reasons.iter().any(|r| r.code == Code::SpfPolicyWeak) {
                out.push(format!("[policy] require_spf = true ({file}) makes a weak or missing SPF policy a reason"));
            }
        }
        (Subject::Recipient(_), Some(Verdict::Temporary { .. })) => out.push(
            "a temporary DNS failure always answers TEMP, whatever [policy] non_compliant says: Postfix defers (4.3.0) and the message stays queued until DNS answers".into(),
        ),
        (Subject::Recipient(_), None) => {}
    }
    if config.server.dry_run {
        out.push(format!(
            "[server] dry_run = true ({file}): the running daemon answers NOTFOUND to every query and only logs the answers shown"
        ));
    }
    out.push("this route applies to mail classified secure; mail marked standard (X-NTA7516-Route: standard) is delivered with FILTER smtp: and ignores it".into());
    out
}

/// The human-readable explanation.
pub fn render_text(e: &Explanation) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} — route: {}", e.address, e.route.reply);
    let domain_line = match &e.subject {
        Subject::NotAnAddress => "none: not an address with a domain".to_string(),
        Subject::OwnDomain { domain, .. } => format!("{domain} (own domain)"),
        Subject::PortalAddress => "the portal's own address ([portal] from)".to_string(),
        Subject::Recipient(d) => format!("{d} (recipient domain, routed by its NTA 7516 status)"),
        Subject::Decided { shown, .. } => format!(
            "{} (decided without DNS)",
            reply::sanitize(shown, reply::MAX_SHOWN_LEN)
        ),
    };
    let _ = writeln!(s, "  Domain: {domain_line}");

    let _ = writeln!(s, "  Map server answers (what Postfix receives):");
    let width = std::iter::once(&e.route)
        .chain(&e.tls)
        .map(|a| a.query.len())
        .max()
        .unwrap_or(0);
    for a in std::iter::once(&e.route).chain(&e.tls) {
        let _ = writeln!(s, "    {:<width$}  ->  {}", a.query, a.reply);
    }
    if matches!(&e.route.reply, Reply::Ok(v) if next_hops(&e.route.reply).is_empty() && v.contains(':'))
    {
        let _ = writeln!(
            s,
            "    (an error transport: no SMTP connection, so Postfix asks no tls lookup for it)"
        );
    }
    if e.dry_run {
        let _ = writeln!(
            s,
            "    (dry run: the daemon actually answers NOTFOUND to all of these)"
        );
    }

    if let Some(v) = &e.verdict {
        match v {
            Verdict::Compliant(c) => {
                let hosts: Vec<String> = c.targets.iter().map(|h| h.to_string()).collect();
                let _ = writeln!(s, "  Verdict: compliant");
                let _ = writeln!(
                    s,
                    "    targets {} ({}), provider {}, record valid until {}",
                    hosts.join(", "),
                    if c.via_ntamx { "ntamx" } else { "MX" },
                    c.provider,
                    fmt_date(c.valid_until)
                );
                let _ = writeln!(s, "    evidence {}", c.evidence);
            }
            Verdict::NotCompliant { reasons } => {
                let _ = writeln!(s, "  Verdict: not compliant");
                for r in reasons {
                    let _ = writeln!(s, "    - {} [{}]", r.message, r.code);
                }
            }
            Verdict::Temporary { reason } => {
                let _ = writeln!(s, "  Verdict: temporary failure");
                let _ = writeln!(s, "    - {} [{}]", reason.message, reason.code);
            }
        }
    }

    let _ = writeln!(s, "  Decided by:");
    for d in &e.decided_by {
        let _ = writeln!(s, "    - {d}");
    }

    if let Some(r) = &e.evidence {
        let _ = writeln!(s, "  Evidence (as `check {}` reports it):", r.domain);
        report::render_criteria(&mut s, r, "    ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Reason;

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn config(extra: &str) -> Config {
        Config::from_toml_str(&format!("[domains]\nown = [\"zkh.nl\"]\n{extra}"), "t").unwrap()
    }

    #[test]
    fn hops_of_each_route() {
        let ok = |s: &str| Reply::Ok(s.into());
        assert_eq!(
            next_hops(&ok("nta-dane:[a.p.test]:25, [b.p.test]:25")),
            ["[a.p.test]:25", "[b.p.test]:25"]
        );
        assert_eq!(next_hops(&ok("nta-dane:ggd.test")), ["ggd.test"]);
        assert_eq!(
            next_hops(&ok("nta-fallback:[relay.test]:25")),
            ["[relay.test]:25"]
        );
        assert!(next_hops(&ok("nta-bounce:5.7.1 NTA 7516: x")).is_empty());
        assert!(next_hops(&ok("nta-defer:4.7.1 NTA 7516: x")).is_empty());
        assert!(next_hops(&Reply::NotFound).is_empty());
        assert!(next_hops(&Reply::Temp("x".into())).is_empty());
    }

    #[test]
    fn settings_named_per_verdict() {
        let d = Subject::Recipient(dn("ggd.test"));
        let nc = Verdict::NotCompliant {
            reasons: vec![Reason {
                code: Code::DmarcPolicyWeak,
                message: "weak".into(),
            }],
        };
        let by = decided_by(&config(""), &d, Some(&nc));
        assert!(by[0].contains("non_compliant = \"bounce\""), "{by:?}");
        let c = config(
            "[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"[r.test]:25\"\nrequire_dmarc = true\n",
        );
        let by = decided_by(&c, &d, Some(&nc));
        assert!(by[0].contains("fallback_relay = \"[r.test]:25\""), "{by:?}");
        assert!(by[1].contains("require_dmarc"), "{by:?}");
        let c = config("[policy]\nnon_compliant = \"defer\"\n[server]\ndry_run = true\n");
        let by = decided_by(&c, &d, Some(&nc));
        assert!(by[0].contains("\"defer\""));
        assert!(by.iter().any(|l| l.contains("dry_run")));

        let comp = crate::policy::test_compliant(true, &["nta.ggd.test"]);
        let by = decided_by(&config(""), &d, Some(&comp));
        assert!(by[1].contains("ntamx"), "{by:?}");
        let temp = Verdict::Temporary {
            reason: Reason {
                code: Code::DnsTimeout,
                message: "t".into(),
            },
        };
        assert!(decided_by(&config(""), &d, Some(&temp))[0].contains("TEMP"));
        let own = Subject::OwnDomain {
            domain: dn("afd.zkh.nl"),
            entry: dn("zkh.nl"),
        };
        assert!(decided_by(&config(""), &own, None)[0].contains("own contains \"zkh.nl\""));
        assert!(
            decided_by(&config(""), &Subject::NotAnAddress, None)[0].contains("not an address")
        );
    }
}
