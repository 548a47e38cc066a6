//! The memory an outbound plan (footer + DKIM signature) takes for a large message, counted
//! by the allocator: bytes, not time, so the figure does not depend on the machine.
//!
//! The received body is held by the milter anyway; what the plan may add on top of it is one
//! more copy (the parser's copy while parts are located, then the new body), never two at
//! once, and never a decoded copy of the attachment. Before the copy cuts a 25 MB scan cost
//! three body-sized buffers more in flight (README "Benchmarks", `body_memory`).
//!
//! One test in this binary: the counters are process-wide.

mod common;

use nta7516_milter::config::Config;
use nta7516_milter::message::dkim;
use nta7516_milter::message::plan::{self, Context, Direction, Received};
use peak_alloc::PeakAlloc;

/// The system allocator, counting the bytes live and the most live since a reset (a
/// realloc counts as the new block allocated before the old one is freed).
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// A multipart body of about `len` bytes: a short base64 text part and a base64 scan.
fn scan_body(len: usize) -> Vec<u8> {
    let mut b = b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nQmVzdGUgY29sbGVnYSwKCkluIGRlIGJpamxhZ2UgZGUgc2Nhbi4K\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n\r\n".to_vec();
    let line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n";
    b.reserve(len + line.len() + 16);
    while b.len() < len {
        b.extend_from_slice(line);
    }
    b.extend_from_slice(b"--b1--\r\n");
    b
}

#[test]
fn an_outbound_plan_holds_at_most_one_more_copy_of_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ed.pem");
    std::fs::write(&key, common::keys::ED25519_PEM).unwrap();
    let toml = format!(
        "[dns]\nnameservers = [\"127.0.0.1:9\"]\n[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"ed\"\nkey = \"{}\"\n",
        key.display()
    );
    let config = Config::from_toml_str(&toml, "t").unwrap();
    let keys = dkim::load_keys(&config);
    let authserv_id = nta7516_milter::message::hygiene::authserv_id(&config);
    let remote: &[&str] = &["smtp"];
    let ctx = Context {
        config: &config,
        authserv_id: &authserv_id,
        dkim: &keys,
        remote_transports: remote,
        portal_mark: None,
    };
    let header = |n: &str, v: &str| (n.to_string(), format!(" {v}").into_bytes());
    let msg = Received {
        sender: "jan@zkh.test".into(),
        headers: vec![
            header("From", "Jan <jan@zkh.test>"),
            header("To", "collega@ggd.test"),
            header("Subject", "Scan"),
            header("MIME-Version", "1.0"),
            header("Content-Type", "multipart/mixed; boundary=\"b1\""),
        ],
        body: scan_body(8 << 20),
        rcpt_mailers: vec![Some("smtp".into())],
        rcpts: vec!["collega@ggd.test".into()],
        ..Received::default()
    };
    let len = msg.body.len();
    let direction = Direction::Authenticated("jan".into());

    ALLOC.reset_peak_usage();
    let before = ALLOC.current_usage();
    let p = plan::plan(&ctx, &direction, &msg).unwrap();
    let extra = ALLOC.peak_usage() - before;

    // It did the work whose memory is bounded: footer, signature, a new body.
    assert_eq!(p.footer, Some(Ok(1)), "{:?}", p.notes);
    assert!(p.dkim.is_some(), "{:?}", p.notes);
    let new_body = p.body.as_deref().unwrap();
    assert!(new_body.len() > len && new_body.ends_with(b"--b1--\r\n"));
    // One more body-sized buffer and some slack for the parser's part list and the text
    // part; a second copy or the decoded attachment (3/4 of it) would be far above.
    println!(
        "plan of a {len}-byte body: at most {extra} bytes more ({:.2}× the body)",
        extra as f64 / len as f64
    );
    assert!(
        extra < len + len / 8,
        "the plan held {extra} bytes more than the {len}-byte body ({:.2}×)",
        extra as f64 / len as f64
    );
}
