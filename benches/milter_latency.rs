//! Milter throughput and added latency, through the whole daemon (`nta7516_milter::run`
//! on its own current-thread runtime, as `serve` runs it) over loopback TCP, with
//! indymilter-test playing Postfix.
//!
//! Each message is outbound from a trusted client, classified secure, gets the footer and
//! a DKIM signature (the full outbound path). Latency is measured per message from MAIL
//! to the end-of-message reply. Keys are generated with `openssl` into a temp dir.
//!
//! Run: `cargo bench --bench milter_latency` (optional args: CONNECTIONS MESSAGES_EACH).

use std::process::Command;
use std::time::{Duration, Instant};

use indymilter_test::{Actions, MacroStage, Status, TestConnection};
use nta7516_milter::config::{Config, SocketSpec};
use nta7516_milter::daemon::{Listeners, Loader, ReloadObserver};
use nta7516_milter::server::listen::bind;
use nta7516_milter::state::{BuildError, Generation, Shared};

/// The daemon's allocator (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &[u8] = b"Beste collega,\r\n\r\nIn de bijlage de uitslag van het onderzoek van 12 november.\r\nMet vriendelijke groet,\r\nJan\r\n";

fn key(dir: &std::path::Path, algorithm: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{algorithm}.pem"));
    let mut cmd = Command::new("openssl");
    cmd.arg("genpkey").arg("-out").arg(&path);
    match algorithm {
        "rsa" => cmd.args(["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
        _ => cmd.args(["-algorithm", "ed25519"]),
    };
    assert!(cmd.status().expect("openssl").success());
    path
}

async fn one_message(conn: &mut TestConnection) -> Duration {
    let started = Instant::now();
    conn.macros(MacroStage::Mail, [("i", "BENCH1")])
        .await
        .unwrap();
    conn.mail(["<jan@zkh.test>"]).await.unwrap();
    conn.macros(MacroStage::Rcpt, [("{rcpt_mailer}", "nta-dane")])
        .await
        .unwrap();
    conn.rcpt(["<collega@ggd.test>"]).await.unwrap();
    for (n, v) in [
        ("From", "Jan <jan@zkh.test>"),
        ("To", "collega@ggd.test"),
        ("Subject", "Uitslag onderzoek"),
        ("Date", "Sun, 22 Nov 2026 21:00:00 +0100"),
        ("Message-ID", "<bench@zkh.test>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ] {
        conn.header(n, v).await.unwrap();
    }
    conn.body(BODY).await.unwrap();
    let (_, status) = conn.eom().await.unwrap();
    assert_eq!(status, Status::Continue);
    started.elapsed()
}

async fn run(algorithm: &str, connections: usize, each: usize) {
    let dir = tempfile::tempdir().unwrap();
    let key = key(dir.path(), algorithm);
    let toml = format!(
        "[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"100ms\"\n[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s1\"\nkey = \"{}\"\n",
        key.display()
    );
    // The daemon on its own thread and current-thread runtime, as `serve` runs it
    // (cli::run_serve); the simulated MTA connections on the benchmark's runtime.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let daemon = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = Config::from_toml_str(&toml, "bench").unwrap();
            let any = SocketSpec::Inet {
                host: "127.0.0.1".into(),
                port: 0,
            };
            let milter = bind(&any, &config.server).unwrap();
            let map = bind(&any, &config.server).unwrap();
            addr_tx.send(milter.local_addr().unwrap()).unwrap();
            let shared = Shared::new(Generation::build(config, None).unwrap());
            let (_reload, reload_rx) = tokio::sync::mpsc::channel(1);
            let loader: Loader =
                Box::new(
                    |_| Err(BuildError::Refused(vec!["no reload in the bench".into()]).into()),
                );
            let observer: ReloadObserver = Box::new(|_| {});
            nta7516_milter::run(
                Listeners { milter, map },
                shared,
                stop_rx,
                reload_rx,
                loader,
                observer,
            )
            .await
        })
    });
    let addr = addr_rx.recv().unwrap();

    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut conn = TestConnection::configure()
                    .available_actions(
                        Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY,
                    )
                    .open_tcp(addr)
                    .await
                    .unwrap();
                conn.connect("client.test", [127, 0, 0, 1]).await.unwrap();
                let mut lat = Vec::with_capacity(each);
                for _ in 0..each {
                    lat.push(one_message(&mut conn).await);
                }
                conn.close().await.unwrap();
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "milter_latency [{algorithm}]: {} messages over {connections} connections in {:.2} s: {:.0} messages/s, added latency p50 {:.2} ms, p99 {:.2} ms",
        all.len(),
        elapsed.as_secs_f64(),
        all.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    );
    stop.send(true).unwrap();
    daemon.join().unwrap().unwrap();
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let connections = args.first().copied().unwrap_or(20);
    let each = args.get(1).copied().unwrap_or(250);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm-up, then the measured runs.
        run("ed25519", 2, 20).await;
        run("ed25519", connections, each).await;
        run("rsa", connections, each).await;
    });
}
