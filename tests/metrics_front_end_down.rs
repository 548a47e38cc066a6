//! `/healthz` answers 503 while a front-end cannot accept connections, and 200 again
//! once it can. The milter is made unable to accept by a full descriptor table, as in
//! `accept_exhaustion.rs`: this binary lowers its own RLIMIT_NOFILE, so it holds this
//! one test only (the limit is process-wide). The scrape uses a keep-alive connection
//! opened before the table fills, since no new connection can be accepted then.

mod common;

use std::fs::File;
use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(r: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit from the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) }, 0);
}

/// `GET path` on a kept-alive connection: (status code, body).
async fn get(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .expect("content-length")
                    .trim()
                    .parse()
                    .unwrap();
                if body.len() >= len {
                    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (code, body[..len].to_string());
                }
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the metrics listener closed the kept-alive connection"
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("a response")
}

#[tokio::test]
async fn healthz_is_503_while_the_milter_cannot_accept() {
    let toml = format!(
        "[dns]\nnameservers = [\"{}\"]\n[domains]\nown = [\"own.test\"]\n",
        DnsBed::dead_addr()
    );
    let (d, metrics) = daemon::start_with_metrics(&toml).await;
    let mut held = TcpStream::connect(metrics).await.unwrap();
    assert_eq!(get(&mut held, "/healthz").await, (200, "ok\n".into()));

    let original = nofile();
    let limit = (open_fds() + 32) as libc::rlim_t;
    set_nofile(libc::rlimit {
        rlim_cur: limit.min(original.rlim_max),
        rlim_max: original.rlim_max,
    });
    let mut hog = Vec::new();
    for _ in 0..limit {
        match File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                break;
            }
        }
    }
    assert!(File::open("/dev/null").is_err(), "the fd table is full");
    // One descriptor for the client's socket; the daemon's accept then has none.
    hog.pop();
    let stuck = std::net::TcpStream::connect(d.milter).expect("the kernel completes the handshake");
    // The milter retries its accept every 100 ms and fails each time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let down = get(&mut held, "/healthz").await;
    let scrape = get(&mut held, "/metrics").await.1;
    drop(hog);
    drop(stuck);
    set_nofile(original);

    assert_eq!(down, (503, "milter front-end is down\n".into()));
    assert!(
        scrape.contains("nta7516_front_end_up{front_end=\"milter\"} 0\n"),
        "{scrape}"
    );
    assert!(scrape.contains("nta7516_front_end_up{front_end=\"map\"} 1\n"));
    // Descriptors are free again: the milter accepts and health comes back (bounded wait).
    let mut healthy = false;
    for _ in 0..50 {
        if get(&mut held, "/healthz").await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz stays 503 after the milter accepts again");
    d.shutdown().await;
}
