//! The audit file fills up in the middle of a message: the disk is simulated with the
//! process's file size limit (RLIMIT_FSIZE, SIGXFSZ ignored, so a write past it fails
//! with EFBIG as one past a full disk fails with ENOSPC). The limit is process-wide,
//! which is why this is a test binary of its own, with one test.

mod common;

use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use indymilter_test::{Actions, MacroStage, Status, TestConnection};
use nta7516_milter::map::reply::Reply;
use nta7516_milter::map::server::{AUDIT_UNWRITABLE, answer};

/// Outbound mail with a client copy of our header: four events (received, headers
/// removed, classified, footer added), all of one decision.
async fn send(addr: std::net::SocketAddr) -> Status {
    send_as(
        addr,
        [127, 0, 0, 1],
        "Jan <jan@extern.test>",
        "a@compliant.test",
        "nta-dane",
    )
    .await
}

/// One message from `client` with header `From: from` to `rcpt`.
async fn send_as(
    addr: std::net::SocketAddr,
    client: [u8; 4],
    from: &str,
    rcpt: &str,
    mailer: &str,
) -> Status {
    let mut conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY)
        .open_tcp(addr)
        .await
        .unwrap();
    conn.connect("client.test", client).await.unwrap();
    conn.macros(MacroStage::Mail, [("i", "4ABC123DEF")])
        .await
        .unwrap();
    conn.mail(["<jan@extern.test>"]).await.unwrap();
    conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", mailer)])
        .await
        .unwrap();
    conn.rcpt([format!("<{rcpt}>")]).await.unwrap();
    for (n, v) in [
        ("From", from),
        ("To", rcpt),
        ("Subject", "Uitslag"),
        ("X-NTA7516-Route", "standard"),
    ] {
        conn.header(n, v).await.unwrap();
    }
    conn.body(b"Beste collega,\r\n".to_vec()).await.unwrap();
    let (_, status) = conn.eom().await.unwrap();
    conn.close().await.unwrap();
    status
}

fn set_file_size_limit(bytes: libc::rlim_t) {
    let mut now = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a valid, initialised struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut now), 0);
        now.rlim_cur = bytes.min(now.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &now), 0);
    }
}

fn line_lengths(log: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["event_type"].as_str().unwrap().to_string(),
                l.len() as u64 + 1,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disk_that_fills_during_a_decision_defers_the_message_and_the_route() {
    // SAFETY: ignoring a signal has no memory-safety requirements.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let d = daemon::start(&format!(
        "{}\n[domains]\nown = [\"zkh.test\"]\n[inbound]\ndmarc = \"honour\"\n[audit]\nfile = \"{}\"\n",
        bed.config_toml(),
        log.display()
    ))
    .await;

    // One message with room to spare, to learn the size of its lines.
    assert_eq!(send(d.milter).await, Status::Continue);
    let lines = line_lengths(&log);
    let first = lines
        .iter()
        .position(|(t, _)| t == "message_received")
        .unwrap();
    let received = lines[first].1;
    let rest: u64 = lines[first + 1..].iter().map(|(_, n)| n).sum();
    let names: Vec<&str> = lines[first..].iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_received",
            "headers_removed",
            "classified",
            "footer_added"
        ]
    );
    // Room for the next message_received line, not for the rest of its decision: the
    // disk fills between the first event of the decision and the last.
    let size = std::fs::metadata(&log).unwrap().len();
    set_file_size_limit(size + received + rest / 2);
    let status = send(d.milter).await;
    // Then no room at all: a route lookup's line does not fit.
    set_file_size_limit(std::fs::metadata(&log).unwrap().len());
    let route = answer(b"route a@compliant.test", &d.shared.current()).await;
    set_file_size_limit(libc::RLIM_INFINITY);

    let Status::Tempfail { message: Some(m) } = &status else {
        panic!("accepted while its audit trail could not be written: {status:?}")
    };
    assert_eq!(
        m.to_str().unwrap(),
        "451 4.3.0 NTA 7516: the audit log cannot be written"
    );
    assert_eq!(route, Reply::Temp(AUDIT_UNWRITABLE.into()));
    assert!(!d.shared.current().auditor.healthy());

    // Room again: the next message passes, and the file says what it missed.
    assert_eq!(send(d.milter).await, Status::Continue);
    let after: Vec<String> = line_lengths(&log)
        .into_iter()
        .skip(lines.len())
        .map(|(t, _)| t)
        .collect();
    assert_eq!(after[0], "audit_log_recovered", "{after:?}");
    assert!(after.contains(&"footer_added".to_string()), "{after:?}");

    // An honoured DMARC reject (unauthenticated mail From a p=reject domain, from
    // outside) whose `rejected` line finds the disk full after its decision was written:
    // a 550 would be final and unlogged, so it is a 451.
    let reject = || {
        send_as(
            d.milter,
            [192, 0, 2, 99],
            "arts@auth.test",
            "jan@zkh.test",
            "local",
        )
    };
    let before = line_lengths(&log).len();
    let Status::Reject { .. } = reject().await else {
        panic!("the fixture must be a DMARC reject")
    };
    let lines = line_lengths(&log);
    let names: Vec<&str> = lines[before..].iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_received",
            "headers_removed",
            "inbound_verified",
            "rejected"
        ]
    );
    let last = lines.len() - 1;
    let decision: u64 = lines[before..last].iter().map(|(_, n)| n).sum();
    let rejected = lines[last].1;
    let size = std::fs::metadata(&log).unwrap().len();
    set_file_size_limit(size + decision + rejected / 2);
    let status = reject().await;
    set_file_size_limit(libc::RLIM_INFINITY);
    let Status::Tempfail { message: Some(m) } = &status else {
        panic!("rejected without a rejected line: {status:?}")
    };
    assert_eq!(
        m.to_str().unwrap(),
        "451 4.3.0 NTA 7516: the audit log cannot be written"
    );
    d.shutdown().await;
    nta7516_milter::audit::verify_files(std::slice::from_ref(&log)).unwrap();
}
