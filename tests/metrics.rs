//! `[server] metrics`: the whole daemon (milter, map server, metrics listener) against
//! the signed test DNS. A map lookup and a milter message move the counters that
//! `/metrics` shows; `/healthz` turns 503 while the audit log cannot be written and 200
//! again once it can. The scrapes use `curl` exactly as the README shows them.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use indymilter_test::{Actions, MacroStage, Status, TestConnection};
use nta7516_milter::map::netstring;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `curl -s -w '%{http_code}\n' URL`, exactly as the README shows it: (status, body).
async fn curl(addr: SocketAddr, path: &str) -> (u16, String) {
    let out = tokio::time::timeout(
        TIMEOUT,
        tokio::process::Command::new("curl")
            .args(["-s", "-w", "%{http_code}\n"])
            .arg(format!("http://{addr}{path}"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("curl finishes")
    .expect("curl runs (the README's examples use it; tests/e2e/lib.sh installs it)");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text
        .strip_suffix('\n')
        .and_then(|t| t.rsplit_once('\n').or(Some(("", t))))
        .unwrap();
    let body = if body.is_empty() {
        String::new()
    } else {
        format!("{body}\n")
    };
    (code.parse().unwrap(), body)
}

/// One raw HTTP/1.1 request: the status line and the body.
async fn raw(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(TIMEOUT, s.read_to_end(&mut all))
        .await
        .expect("the server closes")
        .unwrap();
    let text = String::from_utf8(all).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one series (`name{labels}` as scraped), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn route(addr: SocketAddr, key: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&netstring::encode(format!("route {key}").as_bytes()))
        .await
        .unwrap();
    let mut buf = bytes::BytesMut::new();
    tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(p) = netstring::decode(&mut buf, 100_000).unwrap() {
                return String::from_utf8(p.to_vec()).unwrap();
            }
            assert!(s.read_buf(&mut buf).await.unwrap() > 0, "map server closed");
        }
    })
    .await
    .expect("a map reply")
}

/// Outbound mail from a trusted network: the client's copy of our own X-NTA7516-Route
/// header is removed, and the default classification (secure) applies.
async fn send(addr: SocketAddr) -> Status {
    let mut conn = TestConnection::configure()
        .read_timeout(TIMEOUT)
        .write_timeout(TIMEOUT)
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY)
        .open_tcp(addr)
        .await
        .unwrap();
    conn.connect("client.test", [127, 0, 0, 1]).await.unwrap();
    conn.macros(MacroStage::Mail, [("i", "4ABC123DEF")])
        .await
        .unwrap();
    conn.mail(["<jan@extern.test>"]).await.unwrap();
    conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", "nta-dane")])
        .await
        .unwrap();
    conn.rcpt(["<a@compliant.test>"]).await.unwrap();
    for (n, v) in [
        ("From", "Jan <jan@extern.test>"),
        ("To", "a@compliant.test"),
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

const OUTBOUND_SECURE_ACCEPTED: &str =
    "nta7516_messages_total{direction=\"outbound\",classification=\"secure\",outcome=\"accepted\"}";
const COMPLIANT_ROUTES: &str = "nta7516_route_answers_total{verdict=\"compliant\",reason=\"none\"}";
const ABSENT_ROUTES: &str =
    "nta7516_route_answers_total{verdict=\"not_compliant\",reason=\"nta_record_absent\"}";

#[tokio::test(flavor = "multi_thread")]
async fn lookups_and_messages_move_the_counters_and_healthz_follows_the_audit_log() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let (d, metrics) = daemon::start_with_metrics(&format!(
        "{}\n[audit]\nfile = \"{}\"\n",
        bed.config_toml(),
        log.display()
    ))
    .await;

    let (code, before) = curl(metrics, "/metrics").await;
    assert_eq!(code, 200);
    assert_eq!(value(&before, OUTBOUND_SECURE_ACCEPTED), 0.0, "{before}");
    assert_eq!(
        value(&before, "nta7516_dns_evaluation_duration_seconds_count"),
        0.0
    );
    assert_eq!(
        value(&before, "nta7516_front_end_up{front_end=\"milter\"}"),
        1.0
    );
    assert_eq!(
        value(&before, "nta7516_front_end_up{front_end=\"map\"}"),
        1.0
    );
    assert_eq!(curl(metrics, "/healthz").await, (200, "ok\n".into()));

    assert_eq!(
        route(d.map, "a@compliant.test").await,
        "OK nta-dane:compliant.test"
    );
    let refused = route(d.map, "a@nonta.test").await;
    assert!(refused.starts_with("OK nta-bounce:5.7.1 "), "{refused}");
    assert_eq!(send(d.milter).await, Status::Continue);
    // From the verdict cache this time.
    assert_eq!(
        route(d.map, "b@compliant.test").await,
        "OK nta-dane:compliant.test"
    );

    let (_, after) = curl(metrics, "/metrics").await;
    if std::env::var_os("NTA_SHOW_SCRAPE").is_some() {
        println!("{after}");
    }
    assert_eq!(value(&after, OUTBOUND_SECURE_ACCEPTED), 1.0, "{after}");
    assert_eq!(value(&after, COMPLIANT_ROUTES), 2.0, "{after}");
    assert_eq!(value(&after, ABSENT_ROUTES), 1.0, "{after}");
    // Two domains evaluated (the message's recipient was cached by the lookup).
    assert_eq!(
        value(
            &after,
            "nta7516_dns_evaluations_total{verdict=\"compliant\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "nta7516_dns_evaluations_total{verdict=\"not_compliant\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&after, "nta7516_dns_evaluation_duration_seconds_count"),
        2.0
    );
    assert!(value(&after, "nta7516_dns_evaluation_duration_seconds_sum") > 0.0);
    assert_eq!(value(&after, "nta7516_verdict_cache_entries"), 2.0);
    let lookups = |result: &str| {
        value(
            &after,
            &format!("nta7516_verdict_cache_lookups_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!((lookups("miss"), lookups("hit")), (2.0, 1.0));
    let ratio = value(&after, "nta7516_verdict_cache_hit_ratio");
    assert!((ratio - 1.0 / 3.0).abs() < 1e-9, "{ratio}");
    // Startup and config lines, three routes, and the message's decision.
    assert!(
        value(&after, "nta7516_audit_writes_total") >= 7.0,
        "{after}"
    );
    assert_eq!(value(&after, "nta7516_audit_failures_total"), 0.0);
    assert_eq!(value(&after, "nta7516_audit_healthy"), 1.0);
    assert_eq!(value(&after, "nta7516_healthy"), 1.0);

    // What is not a scrape.
    let (status, _) = raw(
        metrics,
        "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = raw(
        metrics,
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, body) = raw(
        metrics,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        ),
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status} {body}");

    // The audit log's path becomes a directory (as if the disk were gone): the next
    // write fails, the route lookup is deferred, and /healthz says why.
    std::fs::rename(&log, dir.path().join("audit.log.1")).unwrap();
    std::fs::create_dir(&log).unwrap();
    assert!(route(d.map, "b@compliant.test").await.starts_with("TEMP "));
    let (code, body) = curl(metrics, "/healthz").await;
    assert_eq!(
        (code, body.as_str()),
        (503, "the audit log cannot be written\n")
    );
    let (_, down) = curl(metrics, "/metrics").await;
    assert_eq!(value(&down, "nta7516_audit_healthy"), 0.0);
    assert_eq!(value(&down, "nta7516_healthy"), 0.0);
    assert!(
        value(&down, "nta7516_audit_failures_total") >= 1.0,
        "{down}"
    );

    // Writable again: the next decision is written and health comes back by itself.
    std::fs::remove_dir(&log).unwrap();
    assert_eq!(send(d.milter).await, Status::Continue);
    assert_eq!(curl(metrics, "/healthz").await, (200, "ok\n".into()));
    let (_, again) = curl(metrics, "/metrics").await;
    assert_eq!(value(&again, OUTBOUND_SECURE_ACCEPTED), 2.0, "{again}");

    d.shutdown().await;
}

/// `promtool ARGS...` in `packaging/prometheus/`: its exit status and output.
fn promtool(args: &[&str]) -> (bool, String) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/prometheus");
    let out = std::process::Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs (Debian package prometheus; tests/e2e/lib.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The README's alert rules are the shipped file, valid for Prometheus, and they fire
/// (and stay quiet) as `nta7516-milter.rules.test.yml` expects.
#[test]
fn the_alert_rules_are_the_readme_ones_and_fire_as_documented() {
    let readme = include_str!("../README.md");
    let rules = include_str!("../packaging/prometheus/nta7516-milter.rules.yml");
    assert!(
        readme.contains(&format!("```yaml\n{rules}```\n")),
        "README.md does not show packaging/prometheus/nta7516-milter.rules.yml as it is"
    );
    for name in [
        "nta7516_front_end_up",
        "nta7516_audit_healthy",
        "nta7516_audit_failures_total",
    ] {
        assert!(
            nta7516_milter::metrics::METRIC_NAMES.contains(&name),
            "{name}"
        );
        assert!(rules.contains(name), "{name}");
    }
    let (ok, out) = promtool(&["check", "rules", "nta7516-milter.rules.yml"]);
    assert!(ok && out.contains("SUCCESS: 2 rules found"), "{out}");
    let (ok, out) = promtool(&["test", "rules", "nta7516-milter.rules.test.yml"]);
    assert!(ok && out.contains("SUCCESS"), "{out}");
}
