//! The milter over the real protocol (indymilter-test as the MTA), running inside the
//! whole daemon (`nta7516_milter::run`) against the signed test DNS.

mod common;

use std::ffi::CString;
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

/// A connection that passes header values exactly as given (indymilter-test otherwise adds
/// the leading space itself); the values then include the space after the colon, as
/// Postfix sends them with LEADING_SPACE.
async fn open_exact(addr: std::net::SocketAddr) -> TestConnection {
    TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .available_actions(all_actions())
        .exact_leading_space(true)
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
/// protocol's 65,535). Header names and values are bytes (raw 8-bit allowed).
async fn send_body<N: AsRef<[u8]>, V: AsRef<[u8]>>(
    conn: &mut TestConnection,
    client: [u8; 4],
    rcpts: &[(&str, &str)],
    headers: &[(N, V)],
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
        let (n, v) = (n.as_ref().to_vec(), v.as_ref().to_vec());
        no_reply(
            conn.header(CString::new(n).unwrap(), CString::new(v).unwrap())
                .await
                .unwrap(),
        );
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

/// The header block is capped in bytes, not only in fields: exactly MAX_HEADER_BYTES is
/// accepted, one byte more (or one field past MAX_HEADERS) is refused with 552 5.3.4 at end
/// of data, a permanent property of the message.
#[tokio::test(flavor = "multi_thread")]
async fn header_blocks_past_the_byte_or_field_limit_are_refused_with_552() {
    use nta7516_milter::milter::{MAX_HEADER_BYTES, MAX_HEADERS};
    assert_eq!(MAX_HEADER_BYTES, 1024 * 1024);
    assert_eq!(MAX_HEADERS, 10_000);
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    // Each field counts its name, its value and 3 bytes (colon, CRLF).
    let cost = |h: &[(String, String)]| h.iter().map(|(n, v)| n.len() + v.len() + 3).sum::<usize>();
    let block = |total: usize| {
        let mut h: Vec<(String, String)> = HEADERS
            .iter()
            .map(|(n, v)| (n.to_string(), format!(" {v}")))
            .collect();
        // Fillers of at most Postfix's header_size_limit (100 KiB) each.
        while cost(&h) < total {
            let room = total - cost(&h) - "X-Fill".len() - 3;
            h.push(("X-Fill".into(), "x".repeat(room.min(100 * 1024))));
        }
        assert_eq!(cost(&h), total);
        h
    };
    let mut conn = open(d.milter, all_actions()).await;
    let (_, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &[],
    )
    .await;
    assert_eq!(status, Status::Continue, "an empty header block passes");
    conn.close().await.unwrap();
    let at_limit = block(MAX_HEADER_BYTES);
    let mut conn = open_exact(d.milter).await;
    let (_, status) = send_body(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &at_limit,
        BODY,
    )
    .await;
    assert_eq!(status, Status::Continue, "exactly at the limit");
    conn.close().await.unwrap();

    let too_many_fields: Vec<(String, String)> = (0..=MAX_HEADERS)
        .map(|i| ("X-N".to_string(), i.to_string()))
        .collect();
    for (what, headers) in [
        ("one byte past the limit", block(MAX_HEADER_BYTES + 1)),
        ("ten times the limit", block(10 * MAX_HEADER_BYTES)),
        ("one field past the limit", too_many_fields),
    ] {
        let mut conn = open_exact(d.milter).await;
        let (actions, status) = send_body(
            &mut conn,
            [127, 0, 0, 1],
            &[("a@compliant.test", "nta-dane")],
            &headers,
            BODY,
        )
        .await;
        let Status::Reject { message: Some(m) } = status else {
            panic!("{what}: {status:?}")
        };
        let m = m.to_str().unwrap();
        assert!(m.starts_with("552 5.3.4 NTA 7516: "), "{what}: {m}");
        assert!(m.contains("1048576 bytes"), "{what}: {m}");
        assert!(actions.actions.is_empty(), "{what}: nothing changed");
        conn.close().await.unwrap();
    }
    d.shutdown().await;
}

/// A config that signs mail from zkh.test with the test Ed25519 key; returns it with the
/// key's DNS name and record.
fn signing_config(bed: &DnsBed, dir: &std::path::Path) -> (String, String, String) {
    let path = dir.join("ed.pem");
    std::fs::write(&path, common::keys::ED25519_PEM).unwrap();
    let key =
        nta7516_milter::message::dkim::SigningKey::load(&"zkh.test".parse().unwrap(), "ed", &path)
            .unwrap();
    let extra = format!(
        "[[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed\"\nkey = \"{}\"\n",
        path.display()
    );
    (
        config(bed, &extra),
        key.dns_name(),
        key.public_key_dns_record(),
    )
}

/// What leaves is what was signed: raw 8-bit header bytes (legacy Latin-1 clients) are
/// signed as they are, and the bytes mail-auth canonicalises unlike RFC 6376 (a form feed in
/// the Subject, a bare CR and white space on the trailing blank lines of the body) leave
/// normalised. Each message is rebuilt as Postfix writes it after the milter's actions and
/// checked with python3-dkim.
#[tokio::test(flavor = "multi_thread")]
async fn what_leaves_verifies_with_an_independent_verifier() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (toml, dns_name, record) = signing_config(&bed, dir.path());
    let d = daemon::start(&toml).await;
    // As Postfix sends them with LEADING_SPACE: the value includes the space after the colon.
    let latin1: &[(&[u8], &[u8])] = &[
        (b"From", b" Jan <jan@zkh.test>"),
        (b"To", b" J\xf6rg M\xfcller <a@compliant.test>"),
        (b"Subject", b" Gr\xfc\xdfe uit \xe9\xe9n\n\tregel"),
        (b"MIME-Version", b" 1.0"),
        (b"Content-Type", b" text/plain; charset=iso-8859-1"),
        (b"Content-Transfer-Encoding", b" 8bit"),
    ];
    let body_latin1: &[u8] = b"Beste J\xf6rg,\r\n\r\nDe uitslag volgt.\r\n";
    let controls: &[(&[u8], &[u8])] = &[
        (b"From", b" Jan <jan@zkh.test>"),
        (b"To", b" a@compliant.test"),
        (b"Subject", b" Uitslag\x0conderzoek\x0c"),
        (b"X-Unsigned", b" keeps\x0cits form feed"),
        (b"X-NTA7516-Bypass", b" true"),
    ];
    let body_controls: &[u8] = b"Beste collega,\r\nUitslag\rvolgt.\r\n \r\n\t\r\n";
    // Large enough to be planned off the event loop, with a base64 attachment the footer
    // code never decodes, and sent back as a replacement body in many chunks.
    let scan: &[(&[u8], &[u8])] = &[
        (b"From", b" Jan <jan@zkh.test>"),
        (b"To", b" a@compliant.test"),
        (b"Subject", b" Scan"),
        (b"MIME-Version", b" 1.0"),
        (b"Content-Type", b" multipart/mixed; boundary=\"b1\""),
    ];
    let mut body_scan = b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nQmVzdGUgY29sbGVnYSwKCkluIGRlIGJpamxhZ2UgZGUgc2Nhbi4K\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    while body_scan.len() < 2 * nta7516_milter::milter::OFF_LOOP_BODY_BYTES {
        body_scan.extend_from_slice(line);
    }
    body_scan.extend_from_slice(b"--b1--\r\n");
    for (what, headers, body) in [
        ("raw Latin-1 headers, secure (footer)", latin1, body_latin1),
        (
            "form feed, bare CR, blank lines with spaces",
            controls,
            body_controls,
        ),
        (
            "large multipart with a base64 attachment, secure (footer)",
            scan,
            body_scan.as_slice(),
        ),
    ] {
        let mut conn = open_exact(d.milter).await;
        let (actions, status) = send_body(
            &mut conn,
            [127, 0, 0, 1],
            &[("a@compliant.test", "nta-dane")],
            headers,
            body,
        )
        .await;
        assert_eq!(status, Status::Continue, "{what}");
        assert_eq!(inserted(&actions, "DKIM-Signature").len(), 1, "{what}");
        let message = common::postfix_view::emitted(headers, body, &actions);
        if let Err(log) = common::dkimpy::verify(&message, &dns_name, &record) {
            panic!(
                "{what}: python3-dkim rejects what leaves:\n{log}\n{}",
                String::from_utf8_lossy(&message)
            );
        }
        conn.close().await.unwrap();
        if what.starts_with("form feed") {
            assert!(
                actions.has_change_header("Subject", 1, " Uitslag onderzoek "),
                "{actions:?}"
            );
            assert!(
                !actions.actions.iter().any(|a| matches!(a,
                    EomAction::ChangeHeader { name, .. } if name.to_bytes() == b"X-Unsigned")),
                "an unsigned header is left alone"
            );
            assert!(
                message.ends_with(b"Beste collega,\r\nUitslagvolgt.\r\n\r\n\r\n"),
                "{}",
                String::from_utf8_lossy(&message)
            );
        } else if what.starts_with("large") {
            // The footer went into the (base64) text part; the attachment is unchanged.
            let replaced = actions
                .actions
                .iter()
                .filter(|a| matches!(a, EomAction::ReplaceBody { .. }))
                .count();
            assert!(
                replaced > 30,
                "the new body goes back in chunks: {replaced}"
            );
            let old_end = b"c2Nhbi4K\r\n--b1\r\n";
            let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
            assert!(
                has(body, old_end) && !has(&message, old_end),
                "text part re-encoded"
            );
            let attachment = &body[body
                .windows(13)
                .position(|w| w == b"filename=\"sca")
                .unwrap()..];
            assert!(
                message.ends_with(attachment),
                "the attachment leaves as it came"
            );
        } else {
            // The raw bytes leave (and are signed) as they came.
            assert!(
                message
                    .windows(b"Subject: Gr\xfc\xdfe".len())
                    .any(|w| w == b"Subject: Gr\xfc\xdfe"),
                "{}",
                String::from_utf8_lossy(&message)
            );
        }
    }
    d.shutdown().await;
}

/// Inbound verification sees the header bytes as they arrived: a valid DKIM signature over
/// a raw Latin-1 Subject passes (a lossy copy of the values made it fail).
#[tokio::test(flavor = "multi_thread")]
async fn inbound_dkim_over_raw_8bit_headers_passes() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "[inbound]\nauthserv_id = \"mx.zkh.test\"\n")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ed.pem");
    std::fs::write(&path, common::keys::ED25519_PEM).unwrap();
    let key =
        nta7516_milter::message::dkim::SigningKey::load(&"auth.test".parse().unwrap(), "ed", &path)
            .unwrap();
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"From".to_vec(), b" Huisarts <arts@auth.test>".to_vec()),
        (b"To".to_vec(), b" J\xf6rg <jan@zkh.test>".to_vec()),
        (
            b"Subject".to_vec(),
            b" Gr\xfc\xdfe uit \xe9\xe9n praktijk".to_vec(),
        ),
    ];
    let sig = nta7516_milter::message::dkim::sign(
        &key,
        &headers
            .iter()
            .map(|(n, v)| (String::from_utf8(n.clone()).unwrap(), v.clone()))
            .collect::<Vec<_>>(),
        BODY,
    )
    .unwrap();
    headers.insert(
        0,
        (b"DKIM-Signature".to_vec(), format!(" {sig}").into_bytes()),
    );
    let mut conn = open_exact(d.milter).await;
    let (actions, status) = send_body(
        &mut conn,
        [192, 0, 2, 7],
        &[("jan@zkh.test", "local")],
        &headers,
        BODY,
    )
    .await;
    assert_eq!(status, Status::Continue);
    let ar = inserted(&actions, "Authentication-Results");
    assert_eq!(ar.len(), 1, "{actions:?}");
    assert!(ar[0].contains("dkim=pass"), "{}", ar[0]);
    conn.close().await.unwrap();
    d.shutdown().await;
}
/// `[server] dry_run` never refuses: what would have been refused (an own sender domain
/// without a key, an honoured DMARC reject, an unwritable audit log) goes on unchanged,
/// and the journal and audit file say what the answer would have been. The map server
/// answers NOTFOUND and audits the route it decided.
#[tokio::test(flavor = "multi_thread")]
async fn dry_run_never_refuses_and_audits_what_it_would_have_done() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let d = daemon::start(&config(
        &bed,
        &format!(
            "[server]\ndry_run = true\n[inbound]\ndmarc = \"honour\"\n[audit]\nfile = \"{}\"\n",
            log.display()
        ),
    ))
    .await;
    // Our own sender domain, which has no [[dkim]] key here: normally a 451.
    let mut own = HEADERS.to_vec();
    own[0] = ("From", "jan@zkh.test");
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &own,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert!(actions.actions.is_empty(), "{actions:?}");
    conn.close().await.unwrap();
    // From a DMARC p=reject domain, unauthenticated, from outside: normally a 550.
    let mut forged = HEADERS.to_vec();
    forged[0] = ("From", "arts@auth.test");
    let mut conn = open(d.milter, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [192, 0, 2, 99],
        &[("jan@zkh.test", "local")],
        &forged,
    )
    .await;
    assert_eq!(status, Status::Continue);
    assert!(actions.actions.is_empty(), "{actions:?}");
    conn.close().await.unwrap();
    let g = d.shared.current();
    let route = nta7516_milter::map::server::answer(b"route a@compliant.test", &g).await;
    assert_eq!(route, nta7516_milter::map::reply::Reply::NotFound);

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let would: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["event_type"] == "would_refuse")
        .map(|l| {
            let d = &l["detail"];
            (
                d["reply"].as_str().unwrap().to_string(),
                d["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(would.len(), 2, "{text}");
    assert_eq!(would[0].0, "451 4.7.0", "{would:?}");
    assert!(would[0].1.contains("no DKIM key"), "{would:?}");
    assert_eq!(would[1].0, "550 5.7.1", "{would:?}");
    assert!(would[1].1.contains("DMARC"), "{would:?}");
    assert!(!text.contains("\"deferred\"") && !text.contains("\"rejected\""));
    let routed = lines
        .iter()
        .find(|l| l["event_type"] == "recipient_routed")
        .expect("the decided route is audited");
    assert_eq!(
        routed["detail"]["route"],
        "NOTFOUND (dry run; decided: OK nta-dane:compliant.test)"
    );

    // The audit file on a full disk: still no refusal, from the milter or the map.
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
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
    assert!(!g.auditor.healthy());
    let route = nta7516_milter::map::server::answer(b"route a@compliant.test", &g).await;
    assert_eq!(route, nta7516_milter::map::reply::Reply::NotFound);
    d.shutdown().await;
}

/// A reload that would break signing (the key file gone, an own domain without a key) is
/// refused by the check `serve` reloads with (`Generation::build_checked`, the one
/// `check-config` makes), and the running generation keeps signing with its keys.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_would_break_signing_is_refused_and_the_old_keys_stay() {
    use nta7516_milter::config::{Config, SocketSpec};
    use nta7516_milter::daemon::{Listeners, Loader, ReloadObserver};
    use nta7516_milter::server::listen::bind;
    use nta7516_milter::state::{Generation, Shared};
    use tokio::sync::{mpsc, watch};

    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("zkh.pem");
    std::fs::write(&key, common::keys::ED25519_PEM).unwrap();
    let with_key = |path: &std::path::Path, extra: &str| {
        config(
            &bed,
            &format!(
                "[[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed\"\nkey = \"{}\"\n{extra}",
                path.display()
            ),
        )
    };
    let file = dir.path().join("config.toml");
    std::fs::write(&file, with_key(&key, "")).unwrap();
    let first = Generation::build_checked(Config::load(Some(&file)).unwrap(), None).unwrap();
    let any = SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 0,
    };
    let milter = bind(&any, &first.config.server).unwrap();
    let map = bind(&any, &first.config.server).unwrap();
    let addr = milter.local_addr().unwrap();
    let shared = Shared::new(first);
    let (stop, stop_rx) = watch::channel(false);
    let (reload, reload_rx) = mpsc::channel(1);
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let path = file.clone();
    let loader: Loader = Box::new(move |current| {
        let c = Config::load(Some(&path))?;
        Ok(Generation::build_checked(c, Some(current))?)
    });
    let observer: ReloadObserver = Box::new(move |r| {
        let _ = seen_tx.send(r.as_ref().map(|n| *n).map_err(|e| e.to_string()));
    });
    let task = tokio::spawn(nta7516_milter::run(
        Listeners { milter, map },
        shared.clone(),
        stop_rx,
        reload_rx,
        loader,
        observer,
    ));

    // The key file named in the new configuration does not exist.
    std::fs::write(&file, with_key(&dir.path().join("gone.pem"), "")).unwrap();
    reload.send(()).await.unwrap();
    let err = seen.recv().await.unwrap().unwrap_err();
    assert!(err.contains("dkim (zkh.test)"), "{err}");
    // A second own domain without any [[dkim]] entry.
    std::fs::write(
        &file,
        with_key(&key, "").replace(
            "own = [\"zkh.test\"]",
            "own = [\"zkh.test\", \"ander.test\"]",
        ),
    )
    .unwrap();
    reload.send(()).await.unwrap();
    let err = seen.recv().await.unwrap().unwrap_err();
    assert!(err.contains("ander.test has no [[dkim]] entry"), "{err}");
    assert_eq!(shared.current().number, 0, "the old generation stays");

    // And it still signs mail from zkh.test with the key it loaded.
    let mut own = HEADERS.to_vec();
    own[0] = ("From", "jan@zkh.test");
    let mut conn = open(addr, all_actions()).await;
    let (actions, status) = send(
        &mut conn,
        [127, 0, 0, 1],
        &[("a@compliant.test", "nta-dane")],
        &own,
    )
    .await;
    assert_eq!(status, Status::Continue);
    let sig = inserted(&actions, "DKIM-Signature");
    assert!(
        sig.len() == 1 && sig[0].contains("d=zkh.test") && sig[0].contains("s=ed"),
        "{sig:?}"
    );
    conn.close().await.unwrap();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

/// More large messages at once than may be planned at once (`MAX_LARGE_PLANS`): the others
/// wait their turn, and every one gets its footer; a turn that was never given back would
/// leave the later ones hanging until the read timeout.
#[tokio::test(flavor = "multi_thread")]
async fn large_messages_beyond_the_planning_turns_wait_and_all_get_their_footer() {
    let bed = DnsBed::start().await;
    let d = daemon::start(&config(&bed, "")).await;
    let line = b"Regel met uitslagen van het laboratorium, 0123456789.\r\n";
    let body: Vec<u8> = line.repeat(nta7516_milter::milter::OFF_LOOP_BODY_BYTES / line.len() + 1);
    let sessions = 2 * nta7516_milter::milter::MAX_LARGE_PLANS + 1;
    let tasks: Vec<_> = (0..sessions)
        .map(|_| {
            let (addr, body) = (d.milter, body.clone());
            tokio::spawn(async move {
                let mut conn = open(addr, all_actions()).await;
                let rcpt = [("a@compliant.test", "nta-dane")];
                let (actions, status) =
                    send_body(&mut conn, [127, 0, 0, 1], &rcpt, HEADERS, &body).await;
                conn.close().await.unwrap();
                let replaced: usize = actions
                    .actions
                    .iter()
                    .map(|a| match a {
                        EomAction::ReplaceBody { chunk } => chunk.len(),
                        _ => 0,
                    })
                    .sum();
                (status, replaced)
            })
        })
        .collect();
    for t in tasks {
        let (status, replaced) = t.await.unwrap();
        assert_eq!(status, Status::Continue);
        assert!(replaced > body.len(), "footer added: {replaced} bytes");
    }
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
    let budget = nta7516_milter::milter::BodyBudget::new(100_000);
    let server = tokio::spawn(nta7516_milter::milter::serve_with_budget(
        listener,
        shared,
        stop_rx,
        budget.clone(),
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
    // Body chunks get no reply: wait (bounded) until the milter has taken A's bytes, or
    // B could win the race and fit.
    for _ in 0..500 {
        if budget.available() <= 10_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(budget.available(), 10_000, "A holds 90,000 bytes");

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
