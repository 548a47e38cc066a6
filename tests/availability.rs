//! Availability under exhaustion and slow peers: a front-end that stops takes the daemon
//! down with an error (so systemd restarts it), map requests have a deadline from their
//! first byte, the map answers TEMP when every evaluation slot is busy, and an idle
//! milter connection is closed. Timeouts run in tokio's paused (virtual) time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::dnsbed::DnsBed;
use nta7516_milter::config::{Config, SocketSpec};
use nta7516_milter::daemon::{Listeners, Loader, ReloadObserver};
use nta7516_milter::engine::{MAX_CONCURRENT_EVALUATIONS, Prefetch};
use nta7516_milter::map::netstring;
use nta7516_milter::map::server::{self, IDLE_TIMEOUT, REQUEST_DEADLINE};
use nta7516_milter::milter::CONNECTION_TIMEOUT;
use nta7516_milter::server::listen::{Bound, bind, broken_listener};
use nta7516_milter::state::BuildError;
use nta7516_milter::state::{Generation, Shared};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A configuration whose upstream never answers, with the largest DNS timeout.
fn config() -> Config {
    let toml = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"30s\"\n[domains]\nown = [\"own.test\"]\n",
        DnsBed::dead_addr()
    );
    Config::from_toml_str(&toml, "t").unwrap()
}

fn loopback(config: &Config) -> Bound {
    let any = SocketSpec::Inet {
        host: "127.0.0.1".into(),
        port: 0,
    };
    bind(&any, &config.server).unwrap()
}

fn no_reload() -> (Loader, ReloadObserver) {
    (
        Box::new(|_| Err(BuildError::Refused(vec!["no reloads here".into()]).into())),
        Box::new(|_| {}),
    )
}

/// Before, `run` only returned on shutdown: the dead front-end was logged at the very
/// end, if ever, and the process lived on (exit status 0 at most).
#[tokio::test]
async fn run_fails_when_a_front_end_stops_by_itself() {
    let config = config();
    let milter = loopback(&config);
    let milter_addr = milter.local_addr().unwrap();
    let shared = Shared::new(Generation::build(config, None).unwrap());
    let (_stop, stop_rx) = watch::channel(false);
    let (_reload, reload_rx) = mpsc::channel(1);
    let (load, observe) = no_reload();
    let listeners = Listeners {
        milter,
        map: broken_listener(),
    };
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        nta7516_milter::run(listeners, shared, stop_rx, reload_rx, load, observe),
    )
    .await
    .expect("run returns once the map listener breaks");
    let e = r.unwrap_err();
    assert!(e.to_string().contains("map server"), "{e}");
    // The milter was stopped as well: its port is closed.
    assert!(TcpStream::connect(milter_addr).await.is_err());
}

async fn map_server(shared: Arc<Shared>) -> (std::net::SocketAddr, watch::Sender<bool>) {
    let listener = loopback(&shared.current().config);
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(server::serve(listener, shared, stop_rx));
    (addr, stop)
}

async fn reply(s: &mut TcpStream) -> Option<String> {
    let mut buf = bytes::BytesMut::new();
    loop {
        if let Some(p) = netstring::decode(&mut buf, 200_000).unwrap() {
            return Some(String::from_utf8(p).unwrap());
        }
        if s.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

/// Before, the 120 s idle timeout restarted with every byte: a client sending one byte a
/// second kept its connection slot for as long as it liked.
#[tokio::test(start_paused = true)]
async fn a_map_client_trickling_a_request_is_cut_off_at_the_deadline() {
    let shared = Shared::new(Generation::build(config(), None).unwrap());
    let (addr, _stop) = map_server(shared).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    // A netstring that never ends, one byte a virtual second (bounded: 300 bytes).
    let request = format!("9999:route a@own.test{}", "x".repeat(300));
    for b in request.as_bytes().iter().take(300) {
        if s.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    let took = started.elapsed();
    assert!(
        took >= REQUEST_DEADLINE && took < REQUEST_DEADLINE + Duration::from_secs(5),
        "closed after {took:?}"
    );
    assert!(took < IDLE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_is_per_request_not_per_connection() {
    let shared = Shared::new(Generation::build(config(), None).unwrap());
    let (addr, _stop) = map_server(shared).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let q = netstring::encode(b"route a@own.test");
    for _ in 0..3 {
        s.write_all(&q).await.unwrap();
        assert_eq!(reply(&mut s).await.as_deref(), Some("NOTFOUND "));
        // Idle longer than the request deadline, shorter than the idle timeout.
        tokio::time::sleep(REQUEST_DEADLINE + Duration::from_secs(5)).await;
    }
}

/// Every evaluation slot is busy: a map lookup of
/// a new domain waits for a slot, then answers TEMP at its deadline instead of hanging
/// (Postfix gives up after 100 s by itself and defers with a vaguer error).
#[tokio::test(start_paused = true)]
async fn a_map_lookup_answers_temp_when_every_slot_is_busy() {
    let shared = Shared::new(Generation::build(config(), None).unwrap());
    let g = shared.current();
    // Every slot taken, as by evaluations that do not end before the deadline.
    let _held = g
        .engine
        .slots()
        .acquire_many_owned(MAX_CONCURRENT_EVALUATIONS as u32)
        .await
        .unwrap();
    let d = nta7516_milter::domain::DomainName::parse("busy.example").unwrap();
    assert_eq!(g.engine.prefetch(&d), Prefetch::Skipped);
    let (addr, _stop) = map_server(shared.clone()).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    s.write_all(&netstring::encode(b"route a@new.example"))
        .await
        .unwrap();
    let r = reply(&mut s).await.expect("a reply");
    assert!(r.starts_with("TEMP NTA 7516: lookup not finished"), "{r}");
    let took = started.elapsed();
    assert!(
        took >= REQUEST_DEADLINE && took < REQUEST_DEADLINE + Duration::from_secs(5),
        "{took:?}"
    );
}

/// Before, indymilter's default of 7,210 s applied.
#[tokio::test(start_paused = true)]
async fn an_idle_milter_connection_is_closed() {
    let config = config();
    let (milter, map) = (loopback(&config), loopback(&config));
    let addr = milter.local_addr().unwrap();
    let shared = Shared::new(Generation::build(config, None).unwrap());
    let (stop, stop_rx) = watch::channel(false);
    let (_reload, reload_rx) = mpsc::channel(1);
    let (load, observe) = no_reload();
    let task = tokio::spawn(nta7516_milter::run(
        Listeners { milter, map },
        shared,
        stop_rx,
        reload_rx,
        load,
        observe,
    ));
    let mut s = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    let took = started.elapsed();
    assert!(
        took >= CONNECTION_TIMEOUT && took < CONNECTION_TIMEOUT + Duration::from_secs(5),
        "closed after {took:?}"
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[test]
fn timeouts_are_pinned() {
    assert_eq!(REQUEST_DEADLINE, Duration::from_secs(45));
    assert_eq!(CONNECTION_TIMEOUT, Duration::from_secs(600));
}
