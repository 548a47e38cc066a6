//! The milter port survives a full descriptor table. This binary lowers its own
//! RLIMIT_NOFILE, so it holds this one test only (the limit is process-wide).

mod common;

use std::fs::File;
use std::time::Duration;

use common::daemon;
use common::dnsbed::DnsBed;
use indymilter_test::{Actions, TestConnection};

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

async fn negotiates(addr: std::net::SocketAddr) -> bool {
    let conn = TestConnection::configure()
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .available_actions(Actions::ADD_HEADER | Actions::CHANGE_HEADER | Actions::REPLACE_BODY)
        .open_tcp(addr)
        .await;
    match conn {
        Ok(c) => {
            let _ = c.close().await;
            true
        }
        Err(_) => false,
    }
}

/// Before, indymilter's accept loop ended on the first EMFILE: the milter port closed for
/// good while the process (and the map server) lived on, deferring every message until a
/// manual restart. Now the listener backs off and accepts again once descriptors free up.
#[tokio::test]
async fn the_milter_accepts_again_after_the_fd_table_was_full() {
    let toml = format!(
        "[dns]\nnameservers = [\"{}\"]\n[domains]\nown = [\"own.test\"]\n",
        DnsBed::dead_addr()
    );
    let d = daemon::start(&toml).await;
    assert!(negotiates(d.milter).await, "milter answers at start");

    let original = nofile();
    let limit = (open_fds() + 32) as libc::rlim_t;
    set_nofile(libc::rlimit {
        rlim_cur: limit.min(original.rlim_max),
        rlim_max: original.rlim_max,
    });
    // Fill the table (bounded by the limit just set).
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
    // Let the daemon run into EMFILE a few times (it retries every 100 ms). This is setup,
    // not the assertion: the assertion is that the port answers afterwards.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(hog);
    drop(stuck);
    set_nofile(original);

    assert!(
        negotiates(d.milter).await,
        "milter port answers again after descriptors were freed"
    );
    assert!(!d.task.is_finished(), "the daemon is still running");
    d.shutdown().await;
}
