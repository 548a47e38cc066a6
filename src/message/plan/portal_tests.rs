//! The plan for the portal's concerns: `X-NTA7516-Phone` kept only from trusted clients and
//! never signed; the portal's own mail recognised by its mark, and nobody else's.

use super::tests::noted;
use super::*;
use crate::message::portal_mark::HEADER_PORTAL_MARK;

const REMOTE: &[&str] = &["smtp", "relay", "nta-dane", "nta-portal"];
const PORTAL_FROM: &str = "portaal@zkh.test";

struct Setup {
    config: Config,
    dkim: HashMap<DomainName, DkimSlot>,
    key: MarkKey,
    _dir: tempfile::TempDir,
}

impl Setup {
    /// zkh.test is ours, signs with a fresh Ed25519 key, and runs a portal whose mark key
    /// is 32 bytes of 7.
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = super::tests::ed25519_key(dir.path());
        let toml = format!(
            "[dns]\nnameservers = [\"127.0.0.1:9\"]\n[domains]\nown = [\"zkh.test\"]\n\
             [[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed1\"\nkey = \"{}\"\n",
            key.display()
        );
        let mut config = Config::from_toml_str(&toml, "t").unwrap();
        let mut portal = crate::map::reply::tests::portal("unix:/run/portal.lmtp");
        portal.from = PORTAL_FROM.into();
        config.portal = Some(portal);
        Setup {
            dkim: dkim::load_keys(&config),
            config,
            key: MarkKey::from_bytes(&[7; 32]).unwrap(),
            _dir: dir,
        }
    }

    fn ctx(&self) -> Context<'_> {
        Context {
            config: &self.config,
            authserv_id: "mx.zkh.test",
            dkim: &self.dkim,
            remote_transports: REMOTE,
            portal_mark: Some(&self.key),
        }
    }
}

fn outbound() -> Direction {
    Direction::TrustedNetwork("127.0.0.1".parse().unwrap())
}

const NOTICE_BODY: &[u8] = b"U heeft een beveiligd bericht.\r\nhttps://portaal.zkh.test/m/abc\r\n";

/// A notification as the milter receives it from pickup: no {rcpt_mailer}.
fn notice(sender: &str, rcpt: &str, extra: &[(&str, &str)]) -> Received {
    let mut headers: Vec<(String, Vec<u8>)> = [
        ("From", "Zkh <portaal@zkh.test>"),
        ("To", rcpt),
        ("Subject", "Beveiligd bericht / Secure message"),
        ("Message-ID", "<n1@zkh.test>"),
    ]
    .iter()
    .chain(extra)
    .map(|(n, v)| (n.to_string(), format!(" {v}").into_bytes()))
    .collect();
    headers.push(("MIME-Version".into(), b" 1.0".to_vec()));
    Received {
        sender: sender.into(),
        headers,
        body: NOTICE_BODY.to_vec(),
        rcpt_mailers: vec![None],
        rcpts: vec![format!("<{rcpt}>")],
        ..Received::default()
    }
}

fn mark_for(key: &MarkKey, rcpt: &str, body: &[u8]) -> String {
    key.mark(&Marked {
        recipients: &[rcpt.to_string()],
        message_id: "<n1@zkh.test>",
        subject: "Beveiligd bericht / Secure message",
        body,
    })
}

fn added<'a>(p: &'a Plan, name: &str) -> Option<&'a str> {
    p.add
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn deleted(p: &Plan, name: &str) -> bool {
    p.delete.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
}

/// The plan of the portal's own notice to `rcpt`, correctly marked: standard by its mark.
fn portal_notice_plan(s: &Setup, rcpt: &str) -> Plan {
    let mark = mark_for(&s.key, rcpt, NOTICE_BODY);
    let m = notice(PORTAL_FROM, rcpt, &[(HEADER_PORTAL_MARK, &mark)]);
    let p = plan(&s.ctx(), &outbound(), &m).unwrap();
    assert_eq!(
        p.classification,
        Some((Classification::Standard, Source::PortalMark))
    );
    p
}

#[tokio::test]
async fn the_portals_marked_mail_takes_the_standard_route_signed() {
    let s = Setup::new();
    let rcpt = "patient@gmail.test";
    let p = portal_notice_plan(&s, rcpt);
    assert_eq!(added(&p, HEADER_CLASSIFICATION), Some("standard"));
    assert_eq!(added(&p, HEADER_ROUTE), Some("standard"));
    assert!(deleted(&p, HEADER_PORTAL_MARK), "the mark never leaves");
    assert_eq!(p.footer, None, "content-free mail gets no footer");
    assert_eq!(p.signed, Some(("zkh.test".into(), "ed1".into())));
}

#[tokio::test]
async fn a_mark_that_does_not_verify_is_removed_and_not_honoured() {
    let s = Setup::new();
    let rcpt = "patient@gmail.test";
    let other_key = MarkKey::from_bytes(&[8; 32]).unwrap();
    let cases = [
        // Forged with another key, by a trusted client under its own name.
        mark_for(&other_key, rcpt, NOTICE_BODY),
        // A real mark copied onto other content.
        mark_for(&s.key, rcpt, b"Uitslag: zie bijlage.\r\n"),
        // For another recipient.
        mark_for(&s.key, "someone@else.test", NOTICE_BODY),
        "v1 garbage".into(),
    ];
    for mark in &cases {
        let m = notice("jan@zkh.test", rcpt, &[(HEADER_PORTAL_MARK, mark)]);
        let p = plan(&s.ctx(), &outbound(), &m).unwrap();
        assert_eq!(
            p.classification,
            Some((Classification::Secure, Source::Default)),
            "{mark}"
        );
        assert_eq!(added(&p, HEADER_ROUTE), None, "{mark}");
        assert!(deleted(&p, HEADER_PORTAL_MARK), "{mark}");
    }
    // Two marks (one valid) are not a valid mark.
    let good = mark_for(&s.key, rcpt, NOTICE_BODY);
    let m = notice(
        "jan@zkh.test",
        rcpt,
        &[(HEADER_PORTAL_MARK, &good), (HEADER_PORTAL_MARK, "v1 x")],
    );
    let p = plan(&s.ctx(), &outbound(), &m).unwrap();
    assert_eq!(added(&p, HEADER_ROUTE), None);
    // Without the key loaded nothing verifies.
    let mut ctx = s.ctx();
    ctx.portal_mark = None;
    let m = notice("jan@zkh.test", rcpt, &[(HEADER_PORTAL_MARK, &good)]);
    assert_eq!(
        added(&plan(&ctx, &outbound(), &m).unwrap(), HEADER_ROUTE),
        None
    );
}

#[tokio::test]
async fn a_valid_mark_from_an_untrusted_client_is_ignored() {
    let s = Setup::new();
    let rcpt = "patient@gmail.test";
    let mark = mark_for(&s.key, rcpt, NOTICE_BODY);
    let m = notice("x@gmail.test", rcpt, &[(HEADER_PORTAL_MARK, &mark)]);
    let p = plan(&s.ctx(), &Direction::Inbound, &m).unwrap();
    assert_eq!(p.classification, None);
    assert!(deleted(&p, HEADER_PORTAL_MARK));
    assert!(noted(&p, "portal mark from an untrusted"));
}

#[tokio::test]
async fn the_portals_address_without_a_valid_mark_is_refused() {
    let s = Setup::new();
    for extra in [vec![], vec![(HEADER_PORTAL_MARK, "v1 AAAA")]] {
        let m = notice("Portaal@ZKH.test", "patient@gmail.test", &extra);
        let e = plan(&s.ctx(), &outbound(), &m).unwrap_err();
        assert_eq!(e, PlanError::PortalSender(PORTAL_FROM.into()));
        assert!(e.is_permanent());
        assert_eq!(e.status_code(), "5.7.1");
    }
}

#[tokio::test]
async fn portal_mail_to_an_own_domain_keeps_postfix_routing() {
    let s = Setup::new();
    let rcpt = "arts@zkh.test";
    let p = portal_notice_plan(&s, rcpt);
    assert_eq!(added(&p, HEADER_ROUTE), None);
    assert!(noted(&p, "not in another domain"));
}

#[tokio::test]
async fn the_phone_header_is_kept_from_trusted_clients_only_and_never_signed() {
    let s = Setup::new();
    let phone = [("X-NTA7516-Phone", "+31612345678")];
    let mut m = notice("jan@zkh.test", "patient@gmail.test", &phone);
    m.rcpt_mailers = vec![Some("nta-portal".into())];
    let p = plan(&s.ctx(), &outbound(), &m).unwrap();
    assert!(!deleted(&p, "X-NTA7516-Phone"));
    let sig = p.dkim.as_deref().unwrap().to_ascii_lowercase();
    let h = sig
        .split(';')
        .find_map(|t| t.trim().strip_prefix("h="))
        .unwrap();
    assert!(h.contains("from") && h.contains("subject"), "{h}");
    assert!(
        !h.contains("phone"),
        "X-NTA7516-Phone must not be signed: {h}"
    );

    let p = plan(&s.ctx(), &Direction::Inbound, &m).unwrap();
    assert!(deleted(&p, "X-NTA7516-Phone"), "an outsider's copy goes");
}
