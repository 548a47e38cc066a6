//! The end-of-message plan, message by message, without an MTA.

use std::process::Command;

use super::*;
use crate::config::Config;

/// The parts of a configuration generation the plan reads.
struct Generation {
    config: Config,
    authserv_id: String,
    dkim: HashMap<DomainName, DkimSlot>,
}

impl Generation {
    fn ctx(&self) -> Context<'_> {
        Context {
            config: &self.config,
            authserv_id: &self.authserv_id,
            dkim: &self.dkim,
            remote_transports: REMOTE,
            portal_mark: None,
        }
    }
}

/// The milter's remote SMTP transports (`milter::transport`).
const REMOTE: &[&str] = &[
    "smtp",
    "relay",
    "nta-dane",
    "nta-fallback",
    "nta-bounce",
    "nta-defer",
];

fn generation(extra: &str) -> Generation {
    let toml =
        format!("[dns]\nnameservers = [\"127.0.0.1:9\"]\n[domains]\nown = [\"zkh.test\"]\n{extra}");
    let config = Config::from_toml_str(&toml, "t").unwrap();
    Generation {
        authserv_id: crate::message::hygiene::authserv_id(&config),
        dkim: dkim::load_keys(&config),
        config,
    }
}

fn msg(headers: &[(&str, &str)], mailers: &[&str]) -> Received {
    Received {
        sender: "jan@zkh.test".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), format!(" {v}").into_bytes()))
            .collect(),
        body: b"Beste collega,\r\n\r\nZie bijlage.\r\n".to_vec(),
        body_overflow: false,
        body_over_budget: false,
        rcpt_mailers: mailers.iter().map(|m| Some(m.to_string())).collect(),
        rcpts: mailers
            .iter()
            .map(|_| "collega@ggd.test".to_string())
            .collect(),
    }
}

const BASIC: &[(&str, &str)] = &[
    ("From", "Jan <jan@extern.test>"),
    ("To", "ggd@ggd.test"),
    ("Subject", "Uitslag"),
];

fn outbound() -> Direction {
    Direction::Authenticated("jan".into())
}

#[tokio::test]
async fn inbound_mail_loses_forged_headers_and_is_not_classified() {
    let g = generation("");
    let mut headers = BASIC.to_vec();
    headers.extend([
        ("X-NTA7516-Route", "standard"),
        ("X-NTA7516-Bypass", "true"),
        ("x-nta7516-route", "standard"),
        ("X-NTA7516-Inbound", "secure"),
    ]);
    let p = plan(&g.ctx(), &Direction::Inbound, &msg(&headers, &["local"])).unwrap();
    assert_eq!(
        p.delete,
        vec![
            ("X-NTA7516-Bypass".to_string(), 1),
            ("X-NTA7516-Inbound".to_string(), 1),
            ("x-nta7516-route".to_string(), 2),
            ("X-NTA7516-Route".to_string(), 1),
        ]
    );
    assert!(p.add.is_empty() && p.body.is_none() && p.dkim.is_none());
    assert!(p.classification.is_none());
    assert!(noted(&p, "untrusted client ignored"));
}

#[tokio::test]
async fn outbound_default_is_secure_with_footer() {
    let g = generation("");
    let p = plan(&g.ctx(), &outbound(), &msg(BASIC, &["nta-dane"])).unwrap();
    assert_eq!(
        p.add,
        vec![(HEADER_CLASSIFICATION.to_string(), "secure".to_string())]
    );
    assert_eq!(
        p.classification,
        Some((Classification::Secure, Source::Default))
    );
    let body = String::from_utf8(p.body.clone().unwrap()).unwrap();
    assert!(body.starts_with("Beste collega,"));
    assert!(body.contains("NTA 7516"), "{body}");
    // From a domain that is not ours and has no key: unsigned, and said so.
    assert!(p.dkim.is_none());
    assert!(noted(&p, "not DKIM-signed"));
}

#[tokio::test]
async fn trusted_bypass_marks_standard_and_routes_ordinarily() {
    let g = generation("");
    let mut headers = BASIC.to_vec();
    headers.push(("X-NTA7516-Bypass", "TRUE"));
    let p = plan(
        &g.ctx(),
        &outbound(),
        &msg(&headers, &["nta-fallback", "smtp"]),
    )
    .unwrap();
    assert_eq!(
        p.add,
        vec![
            (HEADER_CLASSIFICATION.to_string(), "standard".to_string()),
            (HEADER_ROUTE.to_string(), "standard".to_string())
        ]
    );
    assert_eq!(p.delete, vec![("X-NTA7516-Bypass".to_string(), 1)]);
    assert!(p.body.is_none(), "no footer on mail marked not sensitive");
}

#[tokio::test]
async fn bypass_with_a_local_recipient_keeps_secure_routing() {
    let g = generation("");
    let mut headers = BASIC.to_vec();
    headers.push(("X-NTA7516-Bypass", "true"));
    let p = plan(&g.ctx(), &outbound(), &msg(&headers, &["smtp", "local"])).unwrap();
    assert_eq!(p.add.len(), 1);
    assert!(noted(&p, "transport local"));
}

#[tokio::test]
async fn sender_rule_classifies() {
    let g = generation(
        "[[policy.senders]]\nmatch = [\"jan@zkh.test\"]\nclassification = \"standard\"\n",
    );
    let p = plan(&g.ctx(), &outbound(), &msg(BASIC, &["smtp"])).unwrap();
    assert_eq!(
        p.classification,
        Some((Classification::Standard, Source::SenderRule))
    );
}

#[tokio::test]
async fn own_domain_without_key_is_deferred() {
    let g = generation("");
    let mut headers = BASIC.to_vec();
    headers[0] = ("From", "\"Jan, afd. Cardiologie\" <jan@ZKH.test>");
    let err = plan(&g.ctx(), &outbound(), &msg(&headers, &["smtp"])).unwrap_err();
    assert_eq!(
        err,
        PlanError::DkimKeyMissing(DomainName::parse("zkh.test").unwrap())
    );
    assert_eq!(err.status_code(), "4.7.0");
}

#[tokio::test]
async fn unreadable_key_is_deferred() {
    let g = generation(
        "[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s1\"\nkey = \"/nonexistent/key.pem\"\n",
    );
    let mut headers = BASIC.to_vec();
    headers[0] = ("From", "jan@zkh.test");
    let err = plan(&g.ctx(), &outbound(), &msg(&headers, &["smtp"])).unwrap_err();
    assert!(matches!(err, PlanError::DkimKeyUnusable { .. }), "{err}");
}

#[tokio::test]
async fn signs_with_the_from_domain_key() {
    let dir = tempfile::tempdir().unwrap();
    let g = signing_generation(dir.path());
    let mut headers = BASIC.to_vec();
    headers[0] = ("From", "Jan <jan@zkh.test>");
    let p = plan(&g.ctx(), &outbound(), &msg(&headers, &["nta-dane"])).unwrap();
    let sig = p.dkim.unwrap();
    assert!(sig.contains("d=zkh.test") && sig.contains("s=ed1"), "{sig}");
    assert!(
        sig.to_ascii_lowercase()
            .contains("x-nta7516-classification")
    );
}

#[tokio::test]
async fn oversized_outbound_body_is_deferred() {
    let g = generation("");
    let mut m = msg(BASIC, &["smtp"]);
    m.body_overflow = true;
    assert_eq!(plan(&g.ctx(), &outbound(), &m), Err(PlanError::TooLarge));
    // Inbound mail is not rewritten, so its size does not matter here.
    assert!(plan(&g.ctx(), &Direction::Inbound, &m).is_ok());
}

#[tokio::test]
async fn a_body_over_the_budget_is_deferred_in_both_directions() {
    let g = generation("");
    let mut m = msg(BASIC, &["smtp"]);
    m.body_over_budget = true;
    m.body.clear();
    assert_eq!(plan(&g.ctx(), &outbound(), &m), Err(PlanError::Busy));
    assert_eq!(
        plan(&g.ctx(), &Direction::Inbound, &m),
        Err(PlanError::Busy)
    );
    assert_eq!(PlanError::Busy.status_code(), "4.3.1");
}

#[test]
fn from_domains() {
    fn h(v: &str) -> [(&'static str, &[u8]); 1] {
        [("From", v.as_bytes())]
    }
    let d = |s: &str| DomainName::parse(s).ok();
    assert_eq!(from_domain(h("jan@zkh.test")), d("zkh.test"));
    assert_eq!(
        from_domain(h("\"A <b@c.test>\" <jan@zkh.test>")),
        d("zkh.test")
    );
    assert_eq!(
        from_domain(h("=?utf-8?q?J=C3=A1n?= <jan@zkh.test>")),
        d("zkh.test")
    );
    assert_eq!(from_domain(h("Jan\n\t<jan@zkh.test>")), d("zkh.test"));
    assert_eq!(from_domain(h("undisclosed-recipients:;")), None);
    assert_eq!(from_domain([]), None);
    // Raw 8-bit bytes in the display name do not hide the address.
    assert_eq!(
        from_domain([("From", &b" J\xf6rg <jan@zkh.test>"[..])]),
        d("zkh.test")
    );
}

/// A fresh Ed25519 private key in `dir`, made with openssl (an independent tool, so the
/// tests do not read keys only our own code wrote).
pub(super) fn ed25519_key(dir: &std::path::Path) -> std::path::PathBuf {
    let key = dir.join("ed.pem");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&key)
        .status()
        .expect("openssl is needed for this test (apt-get install openssl)");
    assert!(ok.success());
    key
}

/// Whether the plan's notes say `text`.
pub(super) fn noted(p: &Plan, text: &str) -> bool {
    p.notes.iter().any(|n| n.contains(text))
}

/// A generation that signs for zkh.test with a fresh Ed25519 key (made with openssl).
fn signing_generation(dir: &std::path::Path) -> Generation {
    let key = ed25519_key(dir);
    generation(&format!(
        "[[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed1\"\nkey = \"{}\"\n",
        key.display()
    ))
}

#[tokio::test]
async fn signed_headers_and_the_body_leave_normalised_when_mail_auth_would_hash_them_wrongly() {
    let dir = tempfile::tempdir().unwrap();
    let g = signing_generation(dir.path());
    let mut headers = BASIC.to_vec();
    headers[0] = ("From", "Jan <jan@zkh.test>");
    headers[2] = ("Subject", "Uit\x0cslag\r");
    headers.push(("X-Unsigned", "form\x0cfeed"));
    headers.push(("Subject", "tweede\x0b"));
    headers.push(("X-NTA7516-Bypass", "true"));
    let mut m = msg(&headers, &["smtp"]);
    m.body = b"Beste collega,\r\nzie\rbijlage.\r\n \r\n".to_vec();
    let p = plan(&g.ctx(), &outbound(), &m).unwrap();
    // Only signed headers, each by its own index; a space for each control byte.
    assert_eq!(
        p.change,
        vec![
            ("Subject".to_string(), 1, b" Uit slag ".to_vec()),
            ("Subject".to_string(), 2, b" tweede ".to_vec()),
        ]
    );
    assert_eq!(
        p.body.as_deref(),
        Some(&b"Beste collega,\r\nziebijlage.\r\n\r\n"[..]),
        "no footer on standard mail, but the body is normalised"
    );
    assert!(p.dkim.is_some());
    // Without a key nothing is signed, so nothing is changed.
    let p = plan(
        &generation("").ctx(),
        &outbound(),
        &msg(&headers, &["smtp"]),
    )
    .unwrap_err();
    assert!(matches!(p, PlanError::DkimKeyMissing(_)));
    let mut unsigned = msg(&headers, &["smtp"]);
    unsigned.headers[0].1 = b" jan@extern.test".to_vec();
    let p = plan(&generation("").ctx(), &outbound(), &unsigned).unwrap();
    assert!(p.change.is_empty() && p.body.is_none() && p.dkim.is_none());
}

#[tokio::test]
async fn raw_8bit_values_are_signed_and_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let g = signing_generation(dir.path());
    let mut m = msg(BASIC, &["nta-dane"]);
    m.headers[0].1 = b" J\xf6rg <jan@zkh.test>".to_vec();
    m.headers[2].1 = b" Gr\xfc\xdfe".to_vec();
    let p = plan(&g.ctx(), &outbound(), &m).unwrap();
    assert!(p.dkim.is_some(), "{:?}", p.notes);
    assert!(p.change.is_empty(), "8-bit bytes need no change");
}

#[tokio::test]
async fn a_message_that_cannot_be_signed_as_it_is_is_refused_permanently() {
    let dir = tempfile::tempdir().unwrap();
    let g = signing_generation(dir.path());
    let mut headers = BASIC.to_vec();
    headers[0] = ("From", "jan@zkh.test");
    headers.push(("Bad Name", "x"));
    let err = plan(&g.ctx(), &outbound(), &msg(&headers, &["smtp"])).unwrap_err();
    assert!(matches!(err, PlanError::Unsignable(_)), "{err:?}");
    assert!(err.is_permanent());
    assert_eq!(err.status_code(), "5.6.0");
    // The milter answers a permanent error with 554 and this text.
    let text = err.to_string();
    assert!(text.starts_with("cannot DKIM-sign"), "{text}");
    // The signer's own failures and missing keys stay temporary.
    assert!(!PlanError::Sign("x".into()).is_permanent());
    assert!(!PlanError::TooLarge.is_permanent());
}

#[test]
fn remote_transports_only() {
    let m = |v: &[Option<&str>]| v.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
    assert!(all_remote(&m(&[Some("smtp"), Some("nta-dane")]), REMOTE).is_ok());
    assert_eq!(
        all_remote(&m(&[Some("smtp"), Some("local")]), REMOTE),
        Err("local".into())
    );
    assert!(all_remote(&m(&[None]), REMOTE).is_err());
    assert!(all_remote(&[], REMOTE).is_err());
}
