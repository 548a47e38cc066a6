use super::*;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::Classification;
use crate::policy::Reason;
use crate::policy::{Code, Verdict};

fn generation() -> Arc<crate::state::Generation> {
    let c = crate::config::Config::from_toml_str("[dns]\nnameservers = [\"127.0.0.1:9\"]\n", "t")
        .unwrap();
    Arc::new(crate::state::Generation::build(c, None).unwrap())
}

/// The names operators' dashboards and alert rules use are the README's metric table:
/// each pinned name has its own row there, and the table names no metric that is not
/// pinned. A rename must change both (and the CHANGELOG: it breaks dashboards).
#[test]
fn metric_names_are_the_readmes_table() {
    let readme = include_str!("../../README.md");
    let documented: std::collections::BTreeSet<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `nta7516_"))
        .flat_map(|l| l.split('|').nth(1).unwrap_or("").split(','))
        .map(|n| n.trim().trim_matches('`'))
        .collect();
    let pinned: std::collections::BTreeSet<&str> = METRIC_NAMES.into_iter().collect();
    assert_eq!(documented, pinned);
}

/// Every family in the scrape is in [`METRIC_NAMES`] and every name is scraped, each
/// with HELP and TYPE.
#[tokio::test]
async fn the_scrape_has_exactly_the_pinned_names() {
    let text = render(generation());
    let mut typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    typed.sort_unstable();
    let mut pinned = METRIC_NAMES.to_vec();
    pinned.sort_unstable();
    assert_eq!(typed, pinned, "{text}");
    for name in METRIC_NAMES {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    assert!(
        text.contains(&format!(
            "nta7516_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
}

#[test]
fn limits_are_pinned() {
    assert_eq!(http::MAX_CONNECTIONS, 16);
    assert_eq!(http::HEADER_TIMEOUT, Duration::from_secs(5));
    assert_eq!(http::CONNECTION_DEADLINE, Duration::from_secs(30));
    assert_eq!(http::MAX_HEADER_BYTES, 8192);
    assert_eq!(LATENCY_BUCKETS.len(), 12);
    assert_eq!(LATENCY_BUCKETS.last(), Some(&30.0));
}

#[test]
fn every_reason_has_its_own_cell() {
    for (i, c) in REASONS.iter().enumerate() {
        assert_eq!(reason_index(*c), i, "{c:?}");
    }
    let mut cells = std::collections::HashSet::new();
    for d in DIRECTIONS {
        for c in CLASSIFICATIONS {
            for o in Outcome::ALL {
                assert!(cells.insert(message_cell(d, c, o)));
            }
        }
    }
    assert_eq!(cells.len(), MESSAGE_CELLS);
    assert!(cells.iter().all(|c| *c < MESSAGE_CELLS));
}

fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
}

#[tokio::test]
async fn counts_show_in_the_scrape() {
    let g = generation();
    let m = &g.metrics;
    m.message(
        Direction::Outbound,
        Some(Classification::Secure),
        Outcome::Accepted,
    );
    m.message(Direction::Inbound, None, Outcome::Deferred);
    m.message(Direction::Inbound, None, Outcome::Deferred);
    let absent = Verdict::NotCompliant {
        reasons: vec![Reason {
            code: Code::NtaRecordAbsent,
            message: "no record".into(),
        }],
    };
    m.route(&absent);
    m.evaluated(&absent, Duration::from_millis(30));
    m.evaluated(&absent, Duration::from_secs(60));
    m.cache_lookup(true);
    m.cache_lookup(true);
    m.cache_lookup(true);
    m.cache_lookup(false);
    let text = render(g.clone());
    assert_eq!(
        line(
            &text,
            "nta7516_messages_total{direction=\"outbound\",classification=\"secure\",outcome=\"accepted\"}"
        ),
        "nta7516_messages_total{direction=\"outbound\",classification=\"secure\",outcome=\"accepted\"} 1"
    );
    assert!(text.contains("nta7516_messages_total{direction=\"inbound\",classification=\"none\",outcome=\"deferred\"} 2\n"));
    assert!(text.contains(
        "nta7516_route_answers_total{verdict=\"not_compliant\",reason=\"nta_record_absent\"} 1\n"
    ));
    // Impossible pairs are left out.
    assert!(!text.contains("verdict=\"compliant\",reason=\"nta_record_absent\""));
    assert!(
        text.contains("nta7516_route_answers_total{verdict=\"compliant\",reason=\"none\"} 0\n")
    );
    assert!(text.contains("nta7516_dns_evaluations_total{verdict=\"not_compliant\"} 2\n"));
    assert!(text.contains("nta7516_dns_evaluation_duration_seconds_bucket{le=\"0.05\"} 1\n"));
    assert!(
        text.contains("nta7516_dns_evaluation_duration_seconds_bucket{le=\"30\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("nta7516_dns_evaluation_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert!(text.contains("nta7516_dns_evaluation_duration_seconds_count 2\n"));
    assert!(
        text.contains("nta7516_dns_evaluation_duration_seconds_sum 60.03\n"),
        "{text}"
    );
    assert!(text.contains("nta7516_verdict_cache_lookups_total{result=\"hit\"} 3\n"));
    assert!(text.contains("nta7516_verdict_cache_hit_ratio 0.75\n"));
    // No front-end serves in this test.
    assert!(text.contains("nta7516_front_end_up{front_end=\"milter\"} 0\n"));
    assert!(text.contains("nta7516_healthy 0\n"));
}

#[tokio::test]
async fn health_needs_both_front_ends_running_and_accepting() {
    let g = generation();
    let m = &g.metrics;
    assert_eq!(
        problems(&g),
        ["milter front-end is down", "map front-end is down"]
    );
    m.set_running(FrontEnd::Milter, true);
    m.set_running(FrontEnd::Map, true);
    assert!(problems(&g).is_empty());
    m.accepting_flag(FrontEnd::Map)
        .store(false, Ordering::Relaxed);
    assert_eq!(problems(&g), ["map front-end is down"]);
    assert!(render(g.clone()).contains("nta7516_front_end_up{front_end=\"map\"} 0\n"));
}

/// The listener on a `unix:` socket, as `[server] metrics = "unix:…"` binds it, with
/// its mode; `/healthz` is 503 while no front-end serves.
#[tokio::test]
async fn serves_over_a_unix_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.sock");
    let spec = crate::config::SocketSpec::Unix(path.clone());
    let server = crate::config::Config::embedded_defaults().server;
    let listener = crate::server::listen::bind(&spec, &server).unwrap();
    let shared =
        crate::state::Shared::new(Arc::into_inner(generation()).expect("only this reference"));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(http::serve(listener, shared, stop_rx));
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 503 "), "{text}");
    assert!(
        text.ends_with("\r\n\r\nmilter front-end is down\nmap front-end is down\n"),
        "{text}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
