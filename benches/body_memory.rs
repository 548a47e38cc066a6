//! Peak memory of the daemon with many large messages at once: the real binary
//! (`nta7516-milter serve`, as systemd runs it) in its own process, and CONNECTIONS
//! simulated MTA sessions (indymilter-test) each sending one message of BODY_MB
//! megabytes at the same time. Prints the daemon's VmHWM (peak resident set) from
//! /proc/PID/status before and after, and how the messages were answered.
//!
//! Each body is multipart/mixed: a short text part and a base64 attachment (a scan).
//! `outbound`: from a trusted client, classified secure, footer + RSA-2048 signature.
//! `inbound`: from outside, verified (SPF/DKIM/DMARC against a silent upstream).
//!
//! Run: `cargo bench --bench body_memory` (optional args: CONNECTIONS BODY_MB;
//! `NTA_BIN=path` runs another daemon binary).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indymilter_test::{Actions, MacroStage, Status, TestConnection};

/// The milter protocol's largest body chunk is 65,535 bytes; Postfix sends up to 64 KiB.
const CHUNK: usize = 65_535;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A multipart body of about `mb` megabytes, CRLF line ends.
fn body(mb: usize) -> Bytes {
    let mut b = Vec::with_capacity(mb * 1_000_000 + 1024);
    b.extend_from_slice(
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBeste collega,\r\n\r\nIn de bijlage de scan.\r\n\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n",
    );
    let line = [
        b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0".as_slice(),
        b"\r\n",
    ]
    .concat();
    while b.len() < mb * 1_000_000 {
        b.extend_from_slice(&line);
    }
    b.extend_from_slice(b"--b1--\r\n");
    Bytes::from(b)
}

async fn one(addr: SocketAddr, body: Bytes, inbound: bool) -> Status {
    let mut conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(120))
        .write_timeout(Duration::from_secs(120))
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY)
        .open_tcp(addr)
        .await
        .unwrap();
    let client = if inbound {
        [192, 0, 2, 7]
    } else {
        [127, 0, 0, 1]
    };
    conn.connect("client.test", client).await.unwrap();
    conn.macros(MacroStage::Mail, [("i", "BENCHBIG")])
        .await
        .unwrap();
    let from = if inbound {
        "arts@extern.test"
    } else {
        "jan@zkh.test"
    };
    conn.mail([format!("<{from}>")]).await.unwrap();
    conn.rcpt(["<collega@ggd.test>"]).await.unwrap();
    for (n, v) in [
        ("From", format!("<{from}>")),
        ("To", "collega@ggd.test".to_string()),
        ("Subject", "Scan".to_string()),
        ("MIME-Version", "1.0".to_string()),
        (
            "Content-Type",
            "multipart/mixed; boundary=\"b1\"".to_string(),
        ),
    ] {
        conn.header(n, v).await.unwrap();
    }
    let mut at = 0;
    while at < body.len() {
        let end = (at + CHUNK).min(body.len());
        conn.body(body.slice(at..end)).await.unwrap();
        at = end;
    }
    let (_, status) = conn.eom().await.unwrap();
    let _ = conn.close().await;
    status
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run(mode: &str, connections: usize, mb: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("rsa.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("openssl");
    assert!(ok.success());
    let (milter_port, map_port) = (free_port(), free_port());
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nmilter = \"inet:127.0.0.1:{milter_port}\"\nmap = \"inet:127.0.0.1:{map_port}\"\n[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"100ms\"\n[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s1\"\nkey = \"{}\"\n",
            key.display()
        ),
    )
    .unwrap();
    // NTA_BIN=path measures another build (e.g. an older version) with the same clients.
    let bin = std::env::var("NTA_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_nta7516-milter").to_string());
    let child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the daemon");
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let addr: SocketAddr = ([127, 0, 0, 1], milter_port).into();
    // Bounded wait for the listener (100 × 50 ms).
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let idle = status_kib(pid, "VmHWM:");
    let body = body(mb);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(one(addr, body.clone(), mode == "inbound")))
        .collect();
    let mut continued = 0;
    let mut tempfailed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Status::Continue => continued += 1,
            Status::Tempfail { .. } => tempfailed += 1,
            other => println!("  unexpected status {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    let peak = status_kib(pid, "VmHWM:");
    println!(
        "body_memory [{mode}]: {connections} × {:.1} MB at once in {:.2} s: daemon peak RSS {} MiB (idle {} MiB), {:.2}× the bodies; {continued} continued, {tempfailed} deferred",
        body.len() as f64 / 1e6,
        elapsed.as_secs_f64(),
        peak / 1024,
        idle / 1024,
        (peak.saturating_sub(idle) * 1024) as f64 / (body.len() * connections) as f64,
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let connections = args.first().copied().unwrap_or(20);
    let mb = args.get(1).copied().unwrap_or(25);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        run("outbound", connections, mb).await;
        run("inbound", connections, mb).await;
    });
}
