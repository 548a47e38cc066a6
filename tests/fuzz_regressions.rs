//! Regression tests for panics, hangs and unbounded growth on hostile or unusual input:
//! the hardening items found by review and by the fuzz targets in `fuzz/` (each crash a
//! fuzzer finds gets a test here). Deterministic and quick; the fuzzers run separately.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use nta7516_milter::audit::{Problem, VerifyError, verify_files};
use nta7516_milter::cli::exit;
use nta7516_milter::message::hygiene::is_own_header;

/// A client may send any bytes in a header field name; none of them may panic the
/// milter or the Exim filter (both strip our own fields with `is_own_header`).
#[test]
fn own_header_check_never_panics_on_non_ascii_names() {
    // The 9th byte inside a multi-byte character used to panic (`&str` slicing).
    assert!(!is_own_header("X-NTA751é", "x-bypass"));
    assert!(!is_own_header("€€€", "x-bypass"));
    assert!(!is_own_header("X-NTA75é16-Route", "x-bypass"));
    // A non-ASCII tail after the prefix is still ours (and stripped).
    assert!(is_own_header("X-NTA7516é", "x-bypass"));
    assert!(is_own_header(" x-nta7516-Route ", "x-bypass"));
    assert!(is_own_header("X-Bypass", "x-bypass"));
    // Every split of a multi-byte character around the prefix length.
    let alphabet = ["X", "-", "N", "é", "€", "𝄞", "7"];
    for a in alphabet {
        for b in alphabet {
            for pad in 0..10 {
                let name = format!("{}{a}{b}", "x".repeat(pad));
                assert!(!is_own_header(&name, "x-bypass"), "{name}");
            }
        }
    }
}

/// A writer whose reader is already gone: every write fails with EPIPE, as when the
/// output is piped into `head -1` and `head` has exited.
fn closed_stdout() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

fn run_with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(closed_stdout())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `nta7516-milter … | head -1`: a closed stdout ends the command quietly (as for
/// coreutils: killed by SIGPIPE) instead of a Rust panic with exit 101.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, "").unwrap();
    let (config, log) = (config.to_str().unwrap(), log.to_str().unwrap());
    let commands: [&[&str]; 5] = [
        &[
            "nta-record",
            "--provider",
            "Example",
            "--start",
            "2026-01",
            "--end",
            "2027-12",
        ],
        &["check-config", config],
        &["audit", "verify", log],
        &["--help"],
        &["--version"],
    ];
    for args in commands {
        let (status, stderr) = run_with_closed_stdout(args);
        assert_ne!(status.code(), Some(101), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.lines().count() <= 1, "{args:?}: {stderr}");
        // Output was lost: that is never reported as success.
        assert_eq!(status.code(), Some(exit::OUTPUT_CLOSED.into()), "{args:?}");
    }
    // The status a shell shows for a command ended by SIGPIPE.
    assert_eq!(i32::from(exit::OUTPUT_CLOSED), 128 + libc::SIGPIPE);
}

/// The largest resident set of any waited-for child of this test process, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    usage.ru_maxrss
}

fn write_without_newline(path: &Path, len: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let block = vec![b'{'; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        f.write_all(&block[..n]).unwrap();
        left -= n;
    }
    f.flush().unwrap();
}

/// A file with no newline (not an audit log, or a corrupted one) is refused at its first
/// line once that line passes the limit, instead of being read into memory whole.
#[test]
fn audit_verify_bounds_a_line_without_newline() {
    const FILE_LEN: usize = 64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    write_without_newline(&path, FILE_LEN);

    let e = verify_files(std::slice::from_ref(&path)).unwrap_err();
    let VerifyError::Broken {
        line: 1,
        problem: Problem::LineTooLong { max },
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert!(*max < FILE_LEN / 2, "{max}");
    let text = e.to_string();
    assert!(text.contains("audit.log:1: "), "{text}");
    assert!(text.contains(&format!("longer than {max} bytes")), "{text}");

    // The command keeps its memory bounded too (it used to grow to the file's size).
    let out = Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
        .args(["audit", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(":1: chain broken: line longer than"),
        "{stdout}"
    );
    let rss_kib = children_max_rss_kib();
    assert!(
        rss_kib < (*max as i64 / 1024) * 2 + 16 * 1024,
        "audit verify used {rss_kib} KiB for a {FILE_LEN}-byte file"
    );
}

/// A milter command out of protocol order (here end-of-message right after connect,
/// before MAIL) must get an answer (a tempfail) or a closed connection, not silence:
/// silence leaves the MTA waiting for its own timeout (Postfix: milter_content_timeout,
/// 300 s) before it applies milter_default_action.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "open: indymilter 0.3 drops a command its session state cannot reach \
            (session.rs, 'ignoring unexpected command') before any callback runs, so \
            the callbacks cannot answer it; the fix belongs in the connection stream or \
            indymilter"]
async fn an_out_of_order_end_of_message_is_answered() {
    let d = common::daemon::start(
        "[dns]\nnameservers = [\"127.0.0.1:9\"]\ntimeout = \"2s\"\n[domains]\nown = [\"zkh.test\"]\n",
    )
    .await;
    let mut conn = indymilter_test::TestConnection::configure()
        .read_timeout(Duration::from_secs(3))
        .write_timeout(Duration::from_secs(3))
        .available_actions(
            indymilter_test::Actions::ADD_HEADER
                | indymilter_test::Actions::CHANGE_HEADER
                | indymilter_test::Actions::REPLACE_BODY,
        )
        .open_tcp(d.milter)
        .await
        .unwrap();
    let _ = conn.connect("client.test", [127, 0, 0, 1]).await.unwrap();
    let answer = conn.eom().await;
    // Today: Err(read timeout) after 3 s, nothing was sent back.
    assert!(
        matches!(&answer, Ok((_, indymilter_test::Status::Tempfail { .. }))),
        "{answer:?}"
    );
    d.shutdown().await;
}
