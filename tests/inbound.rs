//! Inbound verification through the real milter protocol against the signed test DNS:
//! DKIM signed and unsigned, aligned and unaligned; SPF pass, fail, softfail and none;
//! TLS or not; DMARC enforcement; temporary DNS errors.

mod common;

use std::time::Duration;

use common::daemon;
use common::dnsbed::{AUTH_CLIENT_IP, DnsBed};
use common::keys::ED25519_PEM;
use indymilter_test::{Actions, EomAction, MacroStage, Status, TestConnection};
use nta7516_milter::domain::DomainName;
use nta7516_milter::message::dkim::{SigningKey, sign};

const BODY: &[u8] = b"Geachte collega,\r\n\r\nHierbij de verwijzing.\r\n";
const OTHER_IP: [u8; 4] = [198, 51, 100, 9];

struct Mail<'a> {
    client: [u8; 4],
    tls: bool,
    mail_from: &'a str,
    from: &'a str,
    /// DKIM-sign with the auth.test key (d=auth.test, s=ed).
    signed: bool,
    /// Change the body after signing.
    tamper: bool,
}

fn auth_ip() -> [u8; 4] {
    let ip: std::net::Ipv4Addr = AUTH_CLIENT_IP.parse().unwrap();
    ip.octets()
}

fn dkim_header(headers: &[(String, String)], body: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed.pem");
    std::fs::write(&path, ED25519_PEM).unwrap();
    let key = SigningKey::load(&DomainName::parse("auth.test").unwrap(), "ed", &path).unwrap();
    sign(&key, headers, body).unwrap()
}

/// Sends one message as an outside server would; returns the eom actions and status.
async fn deliver(
    addr: std::net::SocketAddr,
    m: &Mail<'_>,
) -> (indymilter_test::EomActions, Status) {
    let mut conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(15))
        .available_actions(
            Actions::ADD_HEADER
                | Actions::CHANGE_HEADER
                | Actions::REPLACE_BODY
                | Actions::QUARANTINE,
        )
        .open_tcp(addr)
        .await
        .unwrap();
    conn.connect("mail.sender.test", m.client).await.unwrap();
    if m.tls {
        conn.macros(
            MacroStage::Helo,
            [
                ("{tls_version}", "TLSv1.3"),
                ("{cipher}", "TLS_AES_256_GCM_SHA384"),
            ],
        )
        .await
        .unwrap();
    }
    conn.helo("mail.sender.test").await.unwrap();
    conn.macros(MacroStage::Mail, [("i", "INBOUND1")])
        .await
        .unwrap();
    conn.mail([format!("<{}>", m.mail_from)]).await.unwrap();
    conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", "local")])
        .await
        .unwrap();
    conn.rcpt(["<jan@zkh.test>"]).await.unwrap();
    let mut headers: Vec<(String, String)> = vec![
        ("From".into(), m.from.into()),
        ("To".into(), "jan@zkh.test".into()),
        ("Subject".into(), "Verwijzing".into()),
        ("Message-ID".into(), "<inbound-1@sender.test>".into()),
    ];
    if m.signed {
        let sig = dkim_header(&headers, BODY);
        headers.insert(0, ("DKIM-Signature".into(), sig));
    }
    let body: &[u8] = if m.tamper { b"Gewijzigd.\r\n" } else { BODY };
    for (n, v) in &headers {
        // As Postfix sends them with LEADING_SPACE: the space after the colon included.
        conn.header(n.as_str(), format!(" {v}")).await.unwrap();
    }
    conn.body(body).await.unwrap();
    let out = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    out
}

fn value(actions: &indymilter_test::EomActions, name: &str) -> String {
    actions
        .actions
        .iter()
        .find_map(|a| match a {
            EomAction::AddHeader { name: n, value }
            | EomAction::InsertHeader { name: n, value, .. }
                if n.to_str().unwrap() == name =>
            {
                Some(value.to_str().unwrap().trim().to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {name} in {actions:?}"))
}

async fn start(bed: &DnsBed, inbound: &str) -> daemon::Daemon {
    daemon::start(&format!(
        "{}\n[domains]\nown = [\"zkh.test\"]\n[inbound]\nauthserv_id = \"mx.zkh.test\"\n{inbound}",
        bed.config_toml()
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_aligned_spf_pass_over_tls_arrives_securely() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "").await;
    let m = Mail {
        client: auth_ip(),
        tls: true,
        mail_from: "arts@auth.test",
        from: "Huisarts <arts@auth.test>",
        signed: true,
        tamper: false,
    };
    let (actions, status) = deliver(d.milter, &m).await;
    assert_eq!(status, Status::Continue);
    let ar = value(&actions, "Authentication-Results");
    assert!(ar.starts_with("mx.zkh.test;"), "{ar}");
    for want in ["dkim=pass", "spf=pass", "dmarc=pass"] {
        assert!(ar.contains(want), "{want} missing: {ar}");
    }
    let verdict = value(&actions, "X-NTA7516-Inbound");
    assert!(verdict.starts_with("secure (TLSv1.3"), "{verdict}");
    assert!(
        verdict.contains("auth.test is an NTA 7516 party"),
        "{verdict}"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_mail_without_tls_is_insecure() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "").await;
    let m = Mail {
        client: auth_ip(),
        tls: false,
        mail_from: "arts@auth.test",
        from: "arts@auth.test",
        signed: true,
        tamper: false,
    };
    let (actions, _) = deliver(d.milter, &m).await;
    assert!(value(&actions, "Authentication-Results").contains("dmarc=pass"));
    let verdict = value(&actions, "X-NTA7516-Inbound");
    assert!(
        verdict.starts_with("insecure (not received over TLS"),
        "{verdict}"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_but_unaligned_fails_dmarc() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "").await;
    // d=auth.test signs, but the From domain is compliant.test (SPF -all, DMARC reject).
    let m = Mail {
        client: auth_ip(),
        tls: true,
        mail_from: "arts@auth.test",
        from: "arts@compliant.test",
        signed: true,
        tamper: false,
    };
    let (actions, status) = deliver(d.milter, &m).await;
    assert_eq!(status, Status::Continue, "dmarc = none only annotates");
    let ar = value(&actions, "Authentication-Results");
    assert!(ar.contains("dkim=pass") && ar.contains("spf=pass"), "{ar}");
    assert!(ar.contains("dmarc=fail"), "{ar}");
    assert!(value(&actions, "X-NTA7516-Inbound").contains("sender not authenticated (dmarc=fail)"));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spf_results_fail_softfail_none() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "").await;
    for (mail_from, want) in [
        ("arts@auth.test", "spf=fail"),
        ("arts@softfail.test", "spf=softfail"),
        ("arts@nonta.test", "spf=none"),
    ] {
        let m = Mail {
            client: OTHER_IP,
            tls: true,
            mail_from,
            from: mail_from,
            signed: false,
            tamper: false,
        };
        let (actions, _) = deliver(d.milter, &m).await;
        let ar = value(&actions, "Authentication-Results");
        assert!(ar.contains(want), "{mail_from}: {ar}");
        assert!(
            value(&actions, "X-NTA7516-Inbound").starts_with("insecure"),
            "{mail_from}"
        );
    }
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_changed_after_signing_does_not_pass_dkim() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "").await;
    let m = Mail {
        client: OTHER_IP,
        tls: true,
        mail_from: "arts@auth.test",
        from: "arts@auth.test",
        signed: true,
        tamper: true,
    };
    let (actions, _) = deliver(d.milter, &m).await;
    let ar = value(&actions, "Authentication-Results");
    assert!(!ar.contains("dkim=pass"), "{ar}");
    assert!(ar.contains("dmarc=fail"), "{ar}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn honoured_dmarc_reject_refuses_with_550() {
    let bed = DnsBed::start().await;
    let d = start(&bed, "dmarc = \"honour\"\n").await;
    let m = Mail {
        client: OTHER_IP,
        tls: true,
        mail_from: "arts@auth.test",
        from: "arts@auth.test",
        signed: false,
        tamper: false,
    };
    let (actions, status) = deliver(d.milter, &m).await;
    let Status::Reject { message: Some(msg) } = status else {
        panic!("{status:?}")
    };
    assert!(
        msg.to_str()
            .unwrap()
            .starts_with("550 5.7.1 NTA 7516: DMARC policy of auth.test"),
        "{msg:?}"
    );
    assert!(actions.actions.is_empty());
    // Authenticated mail still passes under "honour".
    let m = Mail {
        client: auth_ip(),
        tls: true,
        mail_from: "arts@auth.test",
        from: "arts@auth.test",
        signed: true,
        tamper: false,
    };
    assert_eq!(deliver(d.milter, &m).await.1, Status::Continue);
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn temporary_dns_errors_annotate_or_tempfail_but_never_reject() {
    let bed = DnsBed::start().await;
    let m = Mail {
        client: OTHER_IP,
        tls: true,
        mail_from: "arts@servfail.test",
        from: "arts@servfail.test",
        signed: false,
        tamper: false,
    };
    let d = start(&bed, "dmarc = \"honour\"\n").await;
    let (actions, status) = deliver(d.milter, &m).await;
    assert_eq!(status, Status::Continue);
    assert!(value(&actions, "Authentication-Results").contains("temperror"));
    d.shutdown().await;

    let d = start(&bed, "dmarc = \"honour\"\ntemp_error = \"tempfail\"\n").await;
    let (_, status) = deliver(d.milter, &m).await;
    let Status::Tempfail { message: Some(msg) } = status else {
        panic!("{status:?}")
    };
    assert!(msg.to_str().unwrap().starts_with("451 4.7.0"), "{msg:?}");
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn honoured_dmarc_quarantine_holds_the_message_and_audits_it() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let d = start(
        &bed,
        &format!(
            "dmarc = \"honour\"\n[audit]\nfile = \"{}\"\n",
            log.display()
        ),
    )
    .await;
    let m = Mail {
        client: OTHER_IP,
        tls: true,
        mail_from: "arts@quarantine.test",
        from: "arts@quarantine.test",
        signed: false,
        tamper: false,
    };
    let (actions, status) = deliver(d.milter, &m).await;
    assert_eq!(status, Status::Continue);
    assert!(
        actions
            .actions
            .iter()
            .any(|a| matches!(a, EomAction::Quarantine { .. })),
        "{actions:?}"
    );
    d.shutdown().await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("\"event_type\":\"quarantined\"") && l.contains("quarantine.test")),
        "{text}"
    );
}
