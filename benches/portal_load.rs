//! The portal under load (issue "portal, complete", item 8), the real `nta7516-milter
//! portal` binary on loopback with SQLite:
//!
//! - **memory**: 5 × 25 MB messages taken in over LMTP at the same time; the portal's peak
//!   RSS (VmHWM) above idle against the 125 MB in flight (target: ≤ 2×; the message is
//!   streamed in 64 KiB chunks, never held whole);
//! - **otp**: one-time code checks per second (N recipients, each asks for a code by the
//!   fake SMS webhook and enters it; the checks run 8 at a time);
//! - **page**: latency of the message page (decrypt, parse, render) with 50 sessions
//!   requesting it at the same time, 20 times each: p50 and p99 (target p99 ≤ 50 ms).
//!   Each request is a new TCP connection with `X-Forwarded-For` of its own session (as
//!   from a reverse proxy; the per-address rate limit is per browser).
//!
//! `cargo bench --bench portal_load [-- SESSIONS REQUESTS]`

// The two test support modules (process harness, HTTP and SMS helpers) both load
// tests/portal_support/pg.rs.
#![allow(clippy::duplicate_mod)]

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/portal_browser_support/mod.rs"]
mod portal_browser_support;
#[path = "../tests/portal_support/mod.rs"]
mod portal_support;

use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::Store;
use portal_browser_support::{code_in, http_as_sent as http, sms_stub, store_one};
use portal_support::Portal;

const MB: usize = 1024 * 1024;

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A message of about `size` bytes: text lines, the number in the trusted header.
fn big_message(n: usize, size: usize) -> Vec<u8> {
    let mut m = format!(
        "From: arts@zkh.example\r\nTo: p{n}@patient.example\r\nSubject: groot {n}\r\n\
         Message-ID: <big{n}@zkh.example>\r\nX-NTA7516-Phone: +31612345678\r\n\r\n"
    )
    .into_bytes();
    let line = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmn\r\n";
    while m.len() < size {
        m.extend_from_slice(line);
    }
    m
}

/// Delivers `raw` over LMTP (dot-stuffing is not needed: no line starts with a dot).
fn lmtp_deliver(port: u16, rcpt: &str, raw: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
    let mut buf = [0u8; 4096];
    let mut read_reply = |s: &mut std::net::TcpStream| {
        let mut out = String::new();
        loop {
            let n = s.read(&mut buf).unwrap();
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
            // The last line of a reply has a space after the code.
            if out
                .lines()
                .last()
                .is_some_and(|l| l.len() >= 4 && &l[3..4] == " ")
                && out.ends_with("\r\n")
            {
                return out;
            }
        }
    };
    read_reply(&mut s);
    for cmd in [
        "LHLO bench\r\n".to_string(),
        "MAIL FROM:<arts@zkh.example>\r\n".into(),
        format!("RCPT TO:<{rcpt}>\r\n"),
        "DATA\r\n".into(),
    ] {
        s.write_all(cmd.as_bytes()).unwrap();
        read_reply(&mut s);
    }
    s.write_all(raw).unwrap();
    s.write_all(b".\r\n").unwrap();
    let r = read_reply(&mut s);
    let _ = s.write_all(b"QUIT\r\n");
    r
}

fn memory(dir: &Path) {
    let mut p = Portal::configure(dir, None, "max_message_size = 52428800");
    p.start();
    std::thread::sleep(Duration::from_millis(500));
    let pid = p.pid();
    let idle = status_kb(pid, "VmRSS:");
    let (n, size) = (5, 25 * MB);
    let t0 = Instant::now();
    let port = p.lmtp_port;
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let raw = big_message(i, size);
            std::thread::spawn(move || lmtp_deliver(port, &format!("p{i}@patient.example"), &raw))
        })
        .collect();
    let replies: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let took = t0.elapsed();
    let peak = status_kb(pid, "VmHWM:");
    let stored = replies.iter().filter(|r| r.contains("250 2.0.0")).count();
    let growth = peak.saturating_sub(idle) as f64 / 1024.0;
    let flight = (n * size) as f64 / MB as f64;
    println!(
        "portal_load [memory]: {n} × {} MB at once in {:.2} s: portal peak RSS {:.0} MiB (idle {:.0} MiB), growth {:.0} MiB = {:.2}× the {flight:.0} MiB in flight; {stored} stored",
        size / MB,
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        idle as f64 / 1024.0,
        growth,
        growth / flight,
    );
    assert_eq!(stored, n, "{replies:?}");
    p.stop();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn csrf_in(body: &str) -> String {
    body.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default()
        .to_string()
}

fn cookie_in(head: &str) -> String {
    head.lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
                .map(|(_, v)| v.trim())
        })
        .find(|c| c.contains("session"))
        .and_then(|c| c.split(';').next())
        .unwrap_or_default()
        .to_string()
}

async fn pages(dir: &Path, sessions: usize, requests: usize) {
    let (sms_port, sms) = sms_stub().await;
    let mut p = Portal::configure(dir, None, "");
    let text = std::fs::read_to_string(&p.config).unwrap().replace(
        "url = \"http://127.0.0.1:9/sms\"",
        &format!("url = \"http://127.0.0.1:{sms_port}/sms\""),
    );
    std::fs::write(&p.config, text).unwrap();
    p.start();
    let web = p.web_port;
    let key = Arc::new(MasterKey::load(&dir.join("portal.key")).unwrap());
    let store = Store::open(&StoreLocation::Sqlite(dir.join("portal.db")), key)
        .await
        .unwrap();
    let raw = b"From: Dr. A <arts@zkh.example>\r\nSubject: Uitslag\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\nBeste patient, uw uitslag staat klaar.\r\n";
    let mut tokens = Vec::new();
    for i in 0..sessions {
        let t = store_one(
            &store,
            raw,
            &format!("p{i}@patient.example"),
            "+31612345678",
            Duration::from_secs(3600),
        )
        .await;
        tokens.push(t);
    }
    let origin = format!("http://127.0.0.1:{web}");
    let xff = |i: usize| format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256 + 1);
    // Codes: ask for one per session (sequentially: each goes to the fake gateway).
    let mut csrfs = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let (_, body) = http(
            web,
            &format!(
                "GET /m/{t} HTTP/1.1\r\nHost: HOST\r\nX-Forwarded-For: {}\r\nConnection: close\r\n\r\n",
                xff(i)
            ),
        )
        .await;
        let csrf = csrf_in(&body);
        let form = format!("csrf={csrf}");
        let (head, _) = http(
            web,
            &format!(
                "POST /m/{t}/send HTTP/1.1\r\nHost: HOST\r\nOrigin: {origin}\r\nX-Forwarded-For: {}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{form}",
                xff(i),
                form.len()
            ),
        )
        .await;
        assert!(
            head.starts_with("HTTP/1.1 30") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        csrfs.push(csrf);
    }
    let codes: Vec<String> = {
        let all = sms.lock().unwrap();
        assert_eq!(all.len(), sessions, "one SMS per session");
        all.iter()
            .map(|s| code_in(s["text"].as_str().unwrap()))
            .collect()
    };
    // OTP checks, 8 at a time.
    let t0 = Instant::now();
    let mut cookies = vec![String::new(); sessions];
    for chunk in (0..sessions).collect::<Vec<_>>().chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for &i in chunk {
            let (t, csrf, code, ip) = (
                tokens[i].clone(),
                csrfs[i].clone(),
                codes[i].clone(),
                xff(i),
            );
            let origin = origin.clone();
            set.spawn(async move {
                let form = format!("csrf={csrf}&code={code}");
                let (head, _) = http(
                    web,
                    &format!(
                        "POST /m/{t}/code HTTP/1.1\r\nHost: HOST\r\nOrigin: {origin}\r\nX-Forwarded-For: {ip}\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{form}",
                        form.len()
                    ),
                )
                .await;
                (i, cookie_in(&head))
            });
        }
        while let Some(r) = set.join_next().await {
            let (i, c) = r.unwrap();
            cookies[i] = c;
        }
    }
    let otp = t0.elapsed();
    assert!(
        cookies.iter().all(|c| !c.is_empty()),
        "a code was not accepted"
    );
    println!(
        "portal_load [otp]: {sessions} code checks (8 at a time) in {:.2} s: {:.0} checks/s",
        otp.as_secs_f64(),
        sessions as f64 / otp.as_secs_f64()
    );
    // The message page: every session at once, `requests` times each.
    let mut set = tokio::task::JoinSet::new();
    let t0 = Instant::now();
    for i in 0..sessions {
        let (t, cookie, ip) = (tokens[i].clone(), cookies[i].clone(), xff(i));
        set.spawn(async move {
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                let start = Instant::now();
                let (head, body) = http(
                    web,
                    &format!(
                        "GET /m/{t} HTTP/1.1\r\nHost: HOST\r\nCookie: {cookie}\r\nX-Forwarded-For: {ip}\r\n\
                         Connection: close\r\n\r\n"
                    ),
                )
                .await;
                lat.push(start.elapsed());
                assert!(head.starts_with("HTTP/1.1 200") && body.contains("Uitslag"), "{head}");
            }
            lat
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.unwrap());
    }
    let wall = t0.elapsed();
    all.sort();
    println!(
        "portal_load [page]: {sessions} sessions × {requests} message pages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({:.0} pages/s)",
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
        all.len() as f64 / wall.as_secs_f64()
    );
    store.close().await;
    p.stop();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sessions: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(50);
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("mem")).unwrap();
    std::fs::create_dir_all(dir.path().join("web")).unwrap();
    memory(&dir.path().join("mem"));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(pages(&dir.path().join("web"), sessions, requests));
}
