//! Sender ownership over the real milter protocol (`[outbound] require_own_from`, NTA 7516
//! 6.1.5): outbound mail with a foreign From is refused with 550 5.7.1 and audited as
//! `from_not_own`; inbound mail is not affected; a dry run only logs and audits.

mod common;

use std::ffi::CString;
use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use indymilter_test::{Actions, MacroStage, Status, TestConnection};

async fn open(addr: std::net::SocketAddr) -> TestConnection {
    TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY)
        .open_tcp(addr)
        .await
        .unwrap()
}

/// One message from `client` (with SASL user `auth` if given) whose From is `from`.
async fn send(
    addr: std::net::SocketAddr,
    client: [u8; 4],
    auth: Option<&str>,
    from: &str,
) -> Status {
    let mut conn = open(addr).await;
    conn.connect("client.test", client).await.unwrap();
    let mut mail_macros = vec![("i", "4SENDER01")];
    if let Some(user) = auth {
        mail_macros.push(("{auth_authen}", user));
    }
    conn.macros(MacroStage::Mail, mail_macros).await.unwrap();
    conn.mail(["<jan@zkh.test>"]).await.unwrap();
    conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", "nta-dane")])
        .await
        .unwrap();
    conn.rcpt(["<a@compliant.test>"]).await.unwrap();
    let mut headers = vec![("To", "a@compliant.test"), ("Subject", "Uitslag")];
    if !from.is_empty() {
        headers.insert(0, ("From", from));
    }
    for (n, v) in headers {
        conn.header(CString::new(n).unwrap(), CString::new(v).unwrap())
            .await
            .unwrap();
    }
    conn.body(b"Beste collega,\r\n".to_vec()).await.unwrap();
    let (_, status) = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    status
}

/// zkh.test is ours and signs with the test Ed25519 key (own mail without a key is a 451).
fn config(bed: &DnsBed, dir: &std::path::Path, extra: &str) -> String {
    let key = dir.join("ed.pem");
    std::fs::write(&key, common::keys::ED25519_PEM).unwrap();
    format!(
        "{}\n[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed\"\nkey = \"{}\"\n[audit]\nfile = \"{}\"\n{extra}",
        bed.config_toml(),
        key.display(),
        dir.join("audit.log").display()
    )
}

fn audit_lines(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[track_caller]
fn rejected(status: &Status) -> String {
    let Status::Reject { message: Some(m) } = status else {
        panic!("not a rejection with a text: {status:?}")
    };
    m.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_mail_from_a_foreign_domain_is_refused_and_audited() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon::start(&config(
        &bed,
        dir.path(),
        "[outbound]\nrequire_own_from = true\n",
    ))
    .await;
    let loopback = [127, 0, 0, 1];
    // Own domain: delivered (and signed, as always).
    assert_eq!(
        send(d.milter, loopback, None, "Jan <jan@zkh.test>").await,
        Status::Continue
    );
    assert_eq!(
        send(d.milter, [192, 0, 2, 7], Some("jan"), "jan@zkh.test").await,
        Status::Continue,
        "authenticated, own domain"
    );
    // Trusted network and authenticated submission with a foreign From: 550 5.7.1.
    let m = rejected(&send(d.milter, loopback, None, "Boef <ceo@bank.test>").await);
    assert!(m.starts_with("550 5.7.1 NTA 7516: "), "{m}");
    assert!(m.contains("bank.test is not one of our own domains"), "{m}");
    assert!(m.contains("6.1.5"), "{m}");
    let m = rejected(
        &send(
            d.milter,
            [192, 0, 2, 7],
            Some("jan"),
            "\"jan@zkh.test\" <x@bank.test>",
        )
        .await,
    );
    assert!(m.contains("bank.test"), "{m}");
    // No From address at all: refused as well.
    let m = rejected(&send(d.milter, loopback, None, "").await);
    assert!(m.contains("no sender address"), "{m}");
    // Inbound mail (an outside client, not authenticated) is never held to this.
    assert_eq!(
        send(d.milter, [192, 0, 2, 99], None, "Arts <arts@extern.test>").await,
        Status::Continue
    );
    d.shutdown().await;

    let lines = audit_lines(dir.path());
    let not_own: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event_type"] == "from_not_own")
        .collect();
    assert_eq!(not_own.len(), 3, "{lines:#?}");
    assert_eq!(
        not_own[0]["detail"]["from_domains"],
        serde_json::json!(["bank.test"])
    );
    assert_eq!(not_own[0]["detail"]["sasl_user"], serde_json::Value::Null);
    assert_eq!(not_own[1]["detail"]["sasl_user"], "jan");
    assert_eq!(not_own[2]["detail"]["from_domains"], serde_json::json!([]));
    let rejections = lines
        .iter()
        .filter(|l| l["event_type"] == "rejected")
        .count();
    assert_eq!(rejections, 3, "each refusal is audited as rejected too");
    assert!(nta7516_milter::audit::verify_files(&[dir.path().join("audit.log")]).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn off_by_default_and_only_logged_in_a_dry_run() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = daemon::start(&config(&bed, dir.path(), "")).await;
    assert_eq!(
        send(d.milter, [127, 0, 0, 1], None, "ceo@bank.test").await,
        Status::Continue,
        "off by default"
    );
    d.shutdown().await;
    assert!(
        !audit_lines(dir.path())
            .iter()
            .any(|l| l["event_type"] == "from_not_own")
    );

    let dir = tempfile::tempdir().unwrap();
    let d = daemon::start(&config(
        &bed,
        dir.path(),
        "[outbound]\nrequire_own_from = true\n[server]\ndry_run = true\n",
    ))
    .await;
    assert_eq!(
        send(d.milter, [127, 0, 0, 1], None, "ceo@bank.test").await,
        Status::Continue,
        "a dry run refuses nothing"
    );
    d.shutdown().await;
    let lines = audit_lines(dir.path());
    assert!(
        lines.iter().any(|l| l["event_type"] == "from_not_own"),
        "{lines:#?}"
    );
    let would = lines
        .iter()
        .find(|l| l["event_type"] == "would_refuse")
        .expect("the refusal it would have given");
    assert_eq!(would["detail"]["reply"], "550 5.7.1");
    assert!(!lines.iter().any(|l| l["event_type"] == "rejected"));
}
