//! The socketmap server over real sockets: a golden request/reply table against the
//! signed test DNS, sent over TCP and a unix socket in fragments of 4096, 128, 16 and 1
//! bytes; persistent connections; Exim's one-request-then-half-close; bad input.

mod common;

use std::time::Duration;

use common::dnsbed::DnsBed;
use nta7516_milter::config::{Config, SocketSpec};
use nta7516_milter::map::netstring::{self, MAX_QUERY_SIZE};
use nta7516_milter::map::server;
use nta7516_milter::server::listen::bind;
use nta7516_milter::state::{Generation, Shared};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// (request, expected reply: exact, or a prefix when it ends in '*').
const GOLDEN: &[(&str, &str)] = &[
    ("route jan@compliant.test", "OK nta-dane:compliant.test"),
    ("route Jan@NTAMX.test", "OK nta-dane:[nta.ntamx.test]:25"),
    ("tls compliant.test", "OK dane-only"),
    ("tls [nta.ntamx.test]:25", "OK dane-only"),
    (
        "route a@expired.test",
        "OK nta-fallback:[relay.lab.test]:25",
    ),
    ("tls expired.test", "NOTFOUND "),
    (
        "route a@bogus.test",
        "TEMP NTA 7516: cannot decide the route for bogus.test*",
    ),
    ("route a@servfail.test", "TEMP *"),
    ("tls bogus.test", "TEMP *"),
    ("route a@own.test", "NOTFOUND "),
    ("route a@sub.own.test", "NOTFOUND "),
    ("route *", "NOTFOUND "),
    ("route .compliant.test", "NOTFOUND "),
    ("route postmaster", "NOTFOUND "),
    // UTS #46 full stops, as Postfix reads SMTPUTF8 addresses: the same domain.
    (
        "route a@compliant\u{ff0e}test",
        "OK nta-dane:compliant.test",
    ),
    (
        "route a@EXPIRED\u{3002}TEST",
        "OK nta-fallback:[relay.lab.test]:25",
    ),
    // Never NOTFOUND for an address nobody can route securely.
    ("route a@[192.0.2.1]", "OK nta-fallback:[relay.lab.test]:25"),
    ("route a@-x.test", "OK nta-bounce:5.1.2 NTA 7516: *"),
    ("route a@a_b.test", "OK nta-bounce:5.1.2 NTA 7516: *"),
    ("tls [192.0.2.1]:25", "NOTFOUND "),
    ("virtual a@b.test", "PERM unknown map*"),
    ("route", "PERM request has no key*"),
];

async fn shared_for(bed: &DnsBed) -> std::sync::Arc<Shared> {
    let toml = format!(
        "{}\n[domains]\nown = [\"own.test\"]\n[policy]\nnon_compliant = \"fallback\"\nfallback_relay = \"[relay.lab.test]:25\"\n",
        bed.config_toml()
    );
    let config = Config::from_toml_str(&toml, "t").unwrap();
    Shared::new(Generation::build(config, None).unwrap())
}

async fn read_reply<S: AsyncRead + Unpin>(s: &mut S) -> String {
    read_reply_buffered(s, &mut bytes::BytesMut::new()).await
}

/// Keeps what was read past the first reply in `buf` for the next call.
async fn read_reply_buffered<S: AsyncRead + Unpin>(s: &mut S, buf: &mut bytes::BytesMut) -> String {
    loop {
        if let Some(p) = netstring::decode(buf, 200_000).unwrap() {
            return String::from_utf8(p).unwrap();
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf))
            .await
            .expect("reply within 10 s")
            .unwrap();
        assert!(n > 0, "server closed before replying");
    }
}

async fn send_fragmented<S: AsyncWrite + Unpin>(s: &mut S, req: &[u8], chunk: usize) {
    for c in req.chunks(chunk) {
        s.write_all(c).await.unwrap();
        s.flush().await.unwrap();
        if chunk < 16 {
            tokio::task::yield_now().await;
        }
    }
}

fn matches(got: &str, want: &str) -> bool {
    match want.strip_suffix('*') {
        Some(prefix) => got.starts_with(prefix),
        None => got == want,
    }
}

async fn golden_over<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, chunk: usize, how: &str) {
    // All requests on one persistent connection, as Postfix does.
    for (req, want) in GOLDEN {
        send_fragmented(&mut s, &netstring::encode(req.as_bytes()), chunk).await;
        let got = read_reply(&mut s).await;
        assert!(
            matches(&got, want),
            "{how} chunk {chunk}: {req:?} -> {got:?}, want {want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn golden_table_over_tcp_and_unix_at_every_read_size() {
    let bed = DnsBed::start().await;
    let shared = shared_for(&bed).await;
    let config = shared.current().config.clone();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("map.sock");
    let tcp = bind(
        &SocketSpec::Inet {
            host: "127.0.0.1".into(),
            port: 0,
        },
        &config.server,
    )
    .unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let unix = bind(&SocketSpec::Unix(sock.clone()), &config.server).unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let t1 = tokio::spawn(server::serve(tcp, shared.clone(), rx.clone()));
    let t2 = tokio::spawn(server::serve(unix, shared.clone(), rx));

    for chunk in [4096, 128, 16, 1] {
        golden_over(TcpStream::connect(tcp_addr).await.unwrap(), chunk, "tcp").await;
        golden_over(UnixStream::connect(&sock).await.unwrap(), chunk, "unix").await;
    }

    // Several requests in one write: answered in order.
    let mut s = TcpStream::connect(tcp_addr).await.unwrap();
    let mut batch = netstring::encode(b"route *");
    batch.extend(netstring::encode(b"tls compliant.test"));
    s.write_all(&batch).await.unwrap();
    let mut buf = bytes::BytesMut::new();
    assert_eq!(read_reply_buffered(&mut s, &mut buf).await, "NOTFOUND ");
    assert_eq!(read_reply_buffered(&mut s, &mut buf).await, "OK dane-only");

    // Exim's ${readsocket}: one request, half-close, read to EOF.
    let mut s = UnixStream::connect(&sock).await.unwrap();
    s.write_all(&netstring::encode(b"route a@compliant.test"))
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(all, netstring::encode(b"OK nta-dane:compliant.test"));

    stop.send(true).unwrap();
    t1.await.unwrap().unwrap();
    t2.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_and_oversized_requests_get_an_error_and_a_close() {
    let bed = DnsBed::start().await;
    let shared = shared_for(&bed).await;
    let config = shared.current().config.clone();
    let tcp = bind(
        &SocketSpec::Inet {
            host: "127.0.0.1".into(),
            port: 0,
        },
        &config.server,
    )
    .unwrap();
    let addr = tcp.local_addr().unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(server::serve(tcp, shared, rx));

    let oversized = format!("{}:", MAX_QUERY_SIZE + 1);
    for bad in [&b"hello"[..], b"12:short,", oversized.as_bytes(), b"3:abcX"] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(bad).await.unwrap();
        if bad == b"12:short," {
            // Incomplete: the server waits for more; end it with EOF.
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "no reply to a truncated request");
            continue;
        }
        let reply = read_reply(&mut s).await;
        assert!(reply.starts_with("PERM "), "{bad:?}: {reply}");
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 0, "connection closed after a protocol error");
    }
    // A request exactly at the limit is answered: an address whose domain is far too long
    // to exist bounces (5.1.2) with a bounded reply.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("route a@{}", "x".repeat(MAX_QUERY_SIZE - 8));
    assert_eq!(req.len(), MAX_QUERY_SIZE);
    s.write_all(&netstring::encode(req.as_bytes()))
        .await
        .unwrap();
    let reply = read_reply(&mut s).await;
    assert!(
        reply.starts_with("OK nta-bounce:5.1.2 NTA 7516: "),
        "{reply}"
    );
    assert!(reply.len() < 1024, "{}", reply.len());

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}
