//! The milter over the real protocol (indymilter-test as the MTA), running inside the
//! whole daemon (`nta7516_milter::run`) against the signed test DNS.

mod common;

use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use indymilter_test::{Actions, EomAction, MacroStage, Status, TestConnection};

const BODY: &[u8] = b"Beste collega,\r\n\r\nDe uitslag volgt.\r\n";

async fn open(addr: std::net::SocketAddr, actions: Actions) -> TestConnection {
    TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .available_actions(actions)
        .open_tcp(addr)
        .await
        .unwrap()
}

fn all_actions() -> Actions {
    Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY | Actions::ADD_RCPT
}

/// The MTA offers NOREPLY for every stage and the milter takes it where it never
/// refuses, so those commands get no reply at all.
#[track_caller]
fn no_reply(status: Status) {
    assert_eq!(status, Status::Noreply);
}

/// One message with [`BODY`] through the milter; returns the eom actions and status.
async fn send(
    conn: &mut TestConnection,
    client: [u8; 4],
    rcpts: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> (indymilter_test::EomActions, Status) {
    send_body(conn, client, rcpts, headers, BODY).await
}

/// One message through the milter, the body in chunks of at most 60,000 bytes (under the
/// protocol's 65,535).
async fn send_body(
    conn: &mut TestConnection,
    client: [u8; 4],
    rcpts: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> (indymilter_test::EomActions, Status) {
    no_reply(conn.connect("client.test", client).await.unwrap());
    conn.macros(MacroStage::Mail, [("i", "4ABC123DEF")])
        .await
        .unwrap();
    no_reply(conn.mail(["<jan@zkh.test>"]).await.unwrap());
    for (rcpt, mailer) in rcpts {
        conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", *mailer)])
            .await
            .unwrap();
        no_reply(conn.rcpt([format!("<{rcpt}>")]).await.unwrap());
    }
    for (n, v) in headers {
        no_reply(conn.header(*n, *v).await.unwrap());
    }
    for chunk in body.chunks(60_000) {
        no_reply(conn.body(chunk.to_vec()).await.unwrap());
    }
    conn.eom().await.unwrap()
}

fn config(bed: &DnsBed, extra: &str) -> String {
    format!(
        "{}\n[domains]\nown = [\"zkh.test\"]\n{extra}",
        bed.config_toml()
    )
}

fn added<'a>(actions: &'a indymilter_test::EomActions, name: &str) -> Vec<&'a str> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            // LEADING_SPACE is negotiated: values carry the space after the colon.
            EomAction::AddHeader { name: n, value } if n.to_str().unwrap() == name => {
                Some(value.to_str().unwrap().trim_start())
            }
            _ => None,
        })
        .collect()
}

const HEADERS: &[(&str, &str)] = &[
    ("From", "Jan <jan@extern.test>"),
    ("To", "a@compliant.test"),
    ("Subject", "Uitslag"),
    ("X-NTA7516-Route", "standard"),
];

#[tokio::test(flavor = "multi_thread")]
async fn outbound_secure_mail_is_classified_footered_and_cleaned() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        HEADERS,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-NTA7516-Classification"), ["secure"]);
    assert!(added(&actions, "X-NTA7516-Route").is_empty());
    assert!(actions.has_delete_header("X-NTA7516-Route", 1));
    let body = actions
        .actions
        .iter()
        .find_map(|a| match a {
            EomAction::ReplaceBody { chunk } => Some(String::from_utf8_lossy(chunk).into_owned()),
            _ => None,
        })
        .expect("footer replaces the body");
    assert!(
        body.starts_with("Beste collega,") && body.contains("NTA 7516"),
        "{body}"
    );
    conn.close().await.unwrap();
    // The recipient domain was prefetched at RCPT.
    let cached = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        d.shared
            .current()
            .engine
            .cached(&"compliant.test".parse().unwrap())
            .is_some()
    });
    assert!(cached, "RCPT prefetch filled the verdict cache");
    d.shutdown().await;
}

/// A body of `OFF_LOOP_BODY_BYTES` or more is planned on the blocking pool: the
/// result must be the same as on the event loop (the footer at the very end).
#[tokio::test(flavor = "multi_thread")]
async fn a_large_message_gets_its_footer_off_the_event_loop() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let mut conn = open(d.milter, all_actions()).await;
    let line = b"Regel met uitslagen van het laboratorium, 0123456789.\r\n";
    let lines = nta7516_milter::milter::OFF_LOOP_BODY_BYTES / line.len() + 1;
    let body: Vec<u8> = line.repeat(lines);
    assert!(body.len() >= nta7516_milter::milter::OFF_LOOP_BODY_BYTES);
    let (actions, status) = send_body(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        HEADERS,
        &body,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert_eq!(added(&actions, "X-NTA7516-Classification"), ["secure"]);
    let replaced: Vec<u8> = actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::ReplaceBody { chunk } => Some(chunk.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(replaced.starts_with(&body), "original body kept in front");
    let tail = String::from_utf8_lossy(&replaced[body.len()..]);
    assert!(tail.contains("NTA 7516"), "footer at the end: {tail}");
    conn.close().await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bypass_is_honoured_from_inside_and_stripped_from_outside() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let mut headers = HEADERS.to_vec();
    headers.push(("X-NTA7516-Bypass", "true"));

    let mut conn = open(d.milter, all_actions()).await;
    let (actions, _) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@expired.test", "nta-bounce")],
        &headers,
    )
    .await;
    assert_eq!(added(&actions, "X-NTA7516-Classification"), ["standard"]);
    assert_eq!(added(&actions, "X-NTA7516-Route"), ["standard"]);
    assert!(actions.has_delete_header("X-NTA7516-Bypass", 1));
    conn.close().await.unwrap();

    // The same header from an outside client: removed, and nothing classified.
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [192, 0, 2, 7],
        &[("jan@zkh.test", "local")],
        &headers,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert!(actions.has_delete_header("X-NTA7516-Bypass", 1));
    assert!(actions.has_delete_header("X-NTA7516-Route", 1));
    assert!(added(&actions, "X-NTA7516-Classification").is_empty());
    assert!(added(&actions, "X-NTA7516-Route").is_empty());
    conn.close().await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn own_domain_without_key_is_tempfailed_with_a_reason() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let mut headers = HEADERS.to_vec();
    headers[0] = ("From", "jan@zkh.test");
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &headers,
    )
    .await;
    let Status::Tempfail { message: Some(m) } = status else {
        panic!("{status:?}")
    };
    let m = m.to_str().unwrap();
    assert!(m.starts_with("451 4.7.0 NTA 7516: no DKIM key"), "{m}");
    assert!(
        actions.actions.is_empty(),
        "nothing changed on a deferred message"
    );
    conn.close().await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_changes_nothing() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "[server]\ndry_run = true\n")).await;
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        HEADERS,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert!(actions.actions.is_empty(), "{actions:?}");
    conn.close().await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mta_without_the_needed_actions_is_refused() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let refused = TestConnection::configure()
        .read_timeout(Duration::from_secs(5))
        .available_actions(Actions::ADD_HEADER)
        .open_tcp(d.milter)
        .await;
    assert!(
        refused.is_err(),
        "negotiation must fail without REPLACE_BODY/CHANGE_HEADER"
    );
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_applies_to_new_connections_and_a_bad_reload_keeps_the_old_config() {
    let bed = DnsBed::start().await;
    let mut d = daemon::start(&config(&bed, "")).await;
    std::fs::write(&d.config_file, config(&bed, "[server]\ndry_run = true\n")).unwrap();
    d.reload.send(()).await.unwrap();
    assert_eq!(d.reloads.recv().await.unwrap(), Ok(1));
    assert!(d.shared.current().config.server.dry_run);
    // Policy and DNS unchanged: the verdict cache (engine) is carried over.
    std::fs::write(&d.config_file, "[dns]\ntimeout = \"forever\"\n").unwrap();
    d.reload.send(()).await.unwrap();
    let err = d.reloads.recv().await.unwrap().unwrap_err();
    assert!(err.contains("dns.timeout"), "{err}");
    assert_eq!(
        d.shared.current().number,
        1,
        "old generation still in force"
    );
    d.shutdown().await;
}

fn inserted<'a>(actions: &'a indymilter_test::EomActions, name: &str) -> Vec<&'a str> {
    actions
        .actions
        .iter()
        .filter_map(|a| match a {
            EomAction::InsertHeader { name: n, value, .. } if n.to_str().unwrap() == name => {
                Some(value.to_str().unwrap().trim_start())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_mail_is_verified_and_forged_results_removed() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(
        &bed,
        "[inbound]\nauthserv_id = \"mx.zkh.test\"\nsubject_tag_insecure = \"[ONVEILIG] \"\n",
    ))
    .await;
    let mut conn = open(d.milter, all_actions()).await;
    let headers = [
        (
            "Authentication-Results",
            "mx.zkh.test; dkim=pass; spf=pass; dmarc=pass",
        ),
        ("Authentication-Results", "other.example; spf=fail"),
        ("From", "Huisarts <arts@compliant.test>"),
        ("To", "jan@zkh.test"),
        ("Subject", "Verwijzing"),
        ("X-NTA7516-Inbound", "secure (forged)"),
    ];
    let (actions, status) = send(
        &mut conn,
        [192, 0, 2, 7],
        &[("jan@zkh.test", "local")],
        &headers,
    )
    .await;
    assert_eq!(status, Status::Continue);
    // Our authserv-id from outside is a forgery; someone else's stays.
    assert!(actions.has_delete_header("Authentication-Results", 1));
    assert!(!actions.has_delete_header("Authentication-Results", 2));
    assert!(actions.has_delete_header("X-NTA7516-Inbound", 1));
    let ar = inserted(&actions, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{actions:?}");
    assert!(ar[0].starts_with("mx.zkh.test;"), "{}", ar[0]);
    // The envelope sender jan@zkh.test has no SPF record; nothing is DKIM-signed, so
    // DMARC for the From domain (p=reject) fails.
    assert!(ar[0].contains("spf=none"), "{}", ar[0]);
    assert!(ar[0].contains("dmarc=fail"), "{}", ar[0]);
    let verdict = added(&actions, "X-NTA7516-Inbound");
    assert_eq!(verdict.len(), 1);
    assert!(verdict[0].starts_with("insecure ("), "{}", verdict[0]);
    assert!(
        verdict[0].contains("not received over TLS"),
        "{}",
        verdict[0]
    );
    assert!(
        verdict[0].contains("compliant.test is an NTA 7516 party"),
        "{}",
        verdict[0]
    );
    assert!(actions.has_change_header("Subject", 1, " [ONVEILIG] Verwijzing"));
    conn.close().await.unwrap();
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_decision_lands_in_a_verifiable_audit_trail() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let mut d = daemon::start(&config(
        &bed,
        &format!("[audit]\nfile = \"{}\"\n", log.display()),
    ))
    .await;
    // Outbound (trusted client) with a forged header, then inbound, then a refusal.
    let mut conn = open(d.milter, all_actions()).await;
    send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        HEADERS,
    )
    .await;
    conn.close().await.unwrap();
    let mut conn = open(d.milter, all_actions()).await;
    send(
        &mut conn,
        [192, 0, 2, 7],
        &[("jan@zkh.test", "local")],
        HEADERS,
    )
    .await;
    conn.close().await.unwrap();
    let mut own = HEADERS.to_vec();
    own[0] = ("From", "jan@zkh.test");
    let mut conn = open(d.milter, all_actions()).await;
    send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &own,
    )
    .await;
    conn.close().await.unwrap();
    // A refused reload is on the record too.
    std::fs::write(&d.config_file, "[dns]\ntimeout = \"never\"\n").unwrap();
    d.reload.send(()).await.unwrap();
    assert!(d.reloads.recv().await.unwrap().is_err());
    d.shutdown().await;

    let text = std::fs::read_to_string(&log).unwrap();
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_type"].as_str().unwrap().to_string()
        })
        .collect();
    let expect = [
        "config_loaded",
        "startup",
        "message_received",
        "headers_removed",
        "classified",
        "footer_added",
        "message_received",
        "headers_removed",
        "inbound_verified",
        "message_received",
        "deferred",
        "config_refused",
        "shutdown",
    ];
    assert_eq!(types, expect, "{text}");
    assert!(
        !text.contains("De uitslag volgt"),
        "never a message body in the audit log"
    );
    let report = nta7516_milter::audit::verify_files(std::slice::from_ref(&log)).unwrap();
    let _ = report;
    // One altered byte breaks the chain.
    let tampered = dir.path().join("tampered.log");
    std::fs::write(
        &tampered,
        text.replacen("a@compliant.test", "b@compliant.test", 1),
    )
    .unwrap();
    assert!(nta7516_milter::audit::verify_files(&[tampered]).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn negotiation_takes_noreply_and_leading_space_when_offered() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let conn = open(d.milter, all_actions()).await;
    let opts = conn.negotiated_opts();
    for o in [
        indymilter_test::ProtoOpts::NOREPLY_CONNECT,
        indymilter_test::ProtoOpts::NOREPLY_HELO,
        indymilter_test::ProtoOpts::NOREPLY_MAIL,
        indymilter_test::ProtoOpts::NOREPLY_RCPT,
        indymilter_test::ProtoOpts::NOREPLY_HEADER,
        indymilter_test::ProtoOpts::NOREPLY_BODY,
        indymilter_test::ProtoOpts::LEADING_SPACE,
    ] {
        assert!(opts.contains(o), "{o:?} not negotiated: {opts:?}");
    }
    // End of data always answers: that is where every refusal happens.
    assert!(!opts.contains(indymilter_test::ProtoOpts::NOREPLY_EOH));
    conn.close().await.unwrap();
    d.shutdown().await;
}

/// Bodies held at once are bounded process-wide: while one session holds most of the
/// budget, another whose body does not fit is deferred (451 4.3.1) at end of data, and
/// the budget comes back when the first message is done. Before, every session buffered
/// its body whatever the others held.
#[tokio::test(flavor = "multi_thread")]
async fn bodies_beyond_the_memory_budget_are_deferred_until_it_frees_up() {
    use nta7516_milter::config::{Config, SocketSpec};
    use nta7516_milter::state::{Generation, Shared};
    let bed = DnsBed::start().await;
    let config = Config::from_toml_str(&config(&bed, ""), "t").unwrap();
    let any = SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 0,
    };
    let listener = nta7516_milter::server::listen::bind(&any, &config.server).unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Shared::new(Generation::build(config, None).unwrap());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let budget = 100_000;
    let server = tokio::spawn(nta7516_milter::milter::serve_with_budget(
        listener, shared, stop_rx, budget,
    ));
    let big = b"x".repeat(30_000);

    // A: 90,000 body bytes held, end of data not yet sent.
    let mut a = open(addr, all_actions()).await;
    no_reply(a.connect("client.test", [127, 0, 0, 1]).await.unwrap());
    no_reply(a.mail(["<jan@zkh.test>"]).await.unwrap());
    no_reply(a.rcpt(["<a@compliant.test>"]).await.unwrap());
    for (n, v) in HEADERS {
        no_reply(a.header(*n, *v).await.unwrap());
    }
    for _ in 0..3 {
        no_reply(a.body(big.clone()).await.unwrap());
    }

    // B: 30,000 more do not fit.
    let mut b = open(addr, all_actions()).await;
    let rcpt = [("a@compliant.test", "nta-dane")];
    let (actions, status) = send_body(&mut b, [127, 0, 0, 1], &rcpt, HEADERS, &big).await;
    let Status::Tempfail { message: Some(m) } = status else {
        panic!("{status:?}")
    };
    let m = m.to_str().unwrap();
    assert!(m.starts_with("451 4.3.1 NTA 7516: too many large"), "{m}");
    assert!(actions.actions.is_empty());

    // A completes normally and gives its bytes back; B's retry then fits.
    let (_, status) = a.eom().await.unwrap();
    assert_eq!(status, Status::Continue);
    let (_, status) = send_body(&mut b, [127, 0, 0, 1], &rcpt, HEADERS, &big).await;
    assert_eq!(status, Status::Continue);
    a.close().await.unwrap();
    b.close().await.unwrap();
    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
}

/// An inbound body of `OFF_LOOP_BODY_BYTES` or more is verified on the blocking pool
/// while its DNS lookups are still driven by the event loop; on a current-thread runtime
/// (as `serve` runs) that must give the same verdict as on the loop.
#[tokio::test]
async fn a_large_inbound_message_is_verified_off_the_event_loop() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "[inbound]\nauthserv_id = \"mx.zkh.test\"\n")).await;
    let mut conn = open(d.milter, all_actions()).await;
    let headers = [
        ("From", "Huisarts <arts@compliant.test>"),
        ("To", "jan@zkh.test"),
        ("Subject", "Verwijzing"),
    ];
    let line = b"Regel met uitslagen van het laboratorium, 0123456789.\r\n";
    let body = line.repeat(nta7516_milter::milter::OFF_LOOP_BODY_BYTES / line.len() + 1);
    let (actions, status) = send_body(
        &mut conn,
        [192, 0, 2, 7],
        &[("jan@zkh.test", "local")],
        &headers,
        &body,
    )
    .await;
    assert_eq!(status, Status::Continue);
    let ar = inserted(&actions, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{actions:?}");
    assert!(
        ar[0].contains("spf=none") && ar[0].contains("dmarc=fail"),
        "{}",
        ar[0]
    );
    let verdict = added(&actions, "X-NTA7516-Inbound");
    assert!(
        verdict[0].contains("compliant.test is an NTA 7516 party"),
        "{}",
        verdict[0]
    );
    conn.close().await.unwrap();
    d.shutdown().await;
}
