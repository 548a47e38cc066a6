//! The real `nta7516-milter portal` binary with its SQLite store, spoken to over LMTP
//! (RFC 2033): per-recipient replies, the number from the header or the subject tag (tag
//! removed, everything else byte-identical), 550 without a number, 552 over the size
//! limit, redelivery without a second copy, 451 while the store is locked and success
//! after, the hash-chained portal audit log, and SIGTERM.

mod portal_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::Store;
use portal_support::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn open_store(p: &Portal, rt: &tokio::runtime::Runtime) -> Store {
    let key = Arc::new(MasterKey::load(&p.dir.join("portal.key")).unwrap());
    rt.block_on(Store::open(
        &StoreLocation::Sqlite(p.dir.join("portal.db")),
        key,
    ))
    .unwrap()
}

/// The portal's message id from a 250 reply ("... (<32 hex>)").
fn message_id(reply: &str) -> String {
    let open = reply.rfind('(').unwrap();
    reply[open + 1..reply.len() - 1].to_string()
}

fn count(store: &Store, rt: &tokio::runtime::Runtime, sql: &'static str) -> i64 {
    rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()))
        .unwrap()
}

#[test]
fn lmtp_intake_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Portal::configure(dir.path(), None, "max_message_size = 200000");
    // keygen never overwrites.
    let again = std::process::Command::new(BIN)
        .args(["portal", "keygen", "--out"])
        .arg(dir.path().join("portal.key"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    p.start();
    let rt = rt();
    // At most MAX_CONNECTIONS at once; one more gets 421 (the MTA retries).
    {
        use std::io::{BufRead, BufReader};
        let held: Vec<Lmtp> = (0..nta7516_milter::portal::lmtp::MAX_CONNECTIONS)
            .map(|_| p.lmtp())
            .collect();
        let extra = std::net::TcpStream::connect(("127.0.0.1", p.lmtp_port)).unwrap();
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut line = String::new();
        BufReader::new(extra).read_line(&mut line).unwrap();
        assert!(line.starts_with("421 4.3.2"), "{line}");
        drop(held);
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut c = p.lmtp();
    assert_eq!(c.cmd("HELO x"), "500 5.5.1 This is LMTP: use LHLO");
    assert!(c.cmd("MAIL FROM:<a@zkh.example>").starts_with("503"));
    let lhlo = c.cmd("LHLO postfix.zkh.example");
    assert!(
        lhlo.contains("250-PIPELINING") && lhlo.contains("SIZE 200000"),
        "{lhlo}"
    );
    assert!(c.cmd("RCPT TO:<p@x.example>").starts_with("503"));
    assert!(
        c.cmd(&format!("NOOP {}", "x".repeat(3000)))
            .starts_with("500 5.5.2")
    );

    // 1. The number from the header: stored, 250 per recipient.
    let m1 = message(
        "From: arts@zkh.example\nTo: p@x.example, q@x.example\nSubject: Uitslag\nMessage-ID: <m1@zkh.example>\nX-NTA7516-Phone: +31612345678\n",
        150_000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    let id1 = message_id(&r[0]);
    let store = open_store(&p, &rt);
    assert_eq!(
        rt.block_on(store.read_message(&id1)).unwrap(),
        m1,
        "stored bytes differ"
    );

    // 2. Redelivery (a crash between commit and reply): 250, no second copy.
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    assert_eq!(message_id(&r[0]), id1);
    assert_eq!(
        count(&store, &rt, "SELECT COUNT(*) FROM portal_messages"),
        1
    );
    assert_eq!(
        count(&store, &rt, "SELECT COUNT(*) FROM portal_recipients"),
        2
    );

    // 2b. The MTA never sees the replies (connection lost right after the final dot, as
    // after a crash between commit and reply): its retry is stored once.
    let m1b = message(
        "Subject: verloren antwoord\nX-NTA7516-Phone: +31612345678\n",
        3000,
    );
    {
        use std::io::Write;
        let mut lost = p.lmtp();
        lost.cmd("LHLO postfix");
        assert!(lost.cmd("MAIL FROM:<arts@zkh.example>").starts_with("250"));
        assert!(lost.cmd("RCPT TO:<p@x.example>").starts_with("250"));
        assert!(lost.cmd("DATA").starts_with("354"));
        lost.raw().write_all(&stuff(&m1b)).unwrap();
        lost.raw().write_all(b".\r\n").unwrap();
        lost.raw().shutdown(std::net::Shutdown::Both).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &store,
        &rt,
        "SELECT COUNT(*) FROM portal_messages WHERE state = 'live'",
    ) < 2
    {
        assert!(
            Instant::now() < deadline,
            "the lost-reply message was not committed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = c.send("arts@zkh.example", &["p@x.example"], &m1b);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}");
    assert_eq!(
        count(&store, &rt, "SELECT COUNT(*) FROM portal_messages"),
        2
    );
    assert_eq!(
        rt.block_on(store.read_message(&message_id(&r[0]))).unwrap(),
        m1b
    );

    // 3. The subject tag: removed, the rest byte-identical.
    let m2 = message(
        "From: arts@zkh.example\nSubject: [sms:06-12345678] Uw uitslag\nMessage-ID: <m2@zkh.example>\n",
        2000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example"], &m2);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}");
    let stored = rt.block_on(store.read_message(&message_id(&r[0]))).unwrap();
    let want = String::from_utf8(m2.clone())
        .unwrap()
        .replace("[sms:06-12345678] ", "");
    assert_eq!(stored, want.as_bytes());

    // 4. No number and nobody to ask (the null sender): 550 5.7.0 per recipient, with the
    // text telling how; nothing stored.
    let m3 = message("From: arts@zkh.example\nSubject: geen nummer\n", 500);
    let r = c.send("", &["p@x.example", "q@x.example"], &m3);
    assert_eq!(r.len(), 2);
    for l in &r {
        assert!(
            l.starts_with("550 5.7.0 ") && l.contains("[sms:+31612345678]"),
            "{l}"
        );
    }
    // 4b. No number from a sender who can be asked: stored, waiting, the sender asked
    // (here sendmail does not exist: the request is on record as not sent, retried).
    let r = c.send("arts@zkh.example", &["w@x.example"], &m3);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}");
    // 5. Over max_message_size: 552 per recipient; nothing stored.
    let big = message("Subject: groot\nX-NTA7516-Phone: 0612345678\n", 250_000);
    let r = c.send("arts@zkh.example", &["p@x.example"], &big);
    assert!(r[0].starts_with("552 5.3.4"), "{r:?}");
    let declared = c.cmd("MAIL FROM:<arts@zkh.example> SIZE=999999999");
    assert!(declared.starts_with("552 5.3.4"), "{declared}");
    // 6. The portal's own mail coming back: refused (loop guard).
    assert!(
        c.cmd("MAIL FROM:<portaal@zkh.example>")
            .starts_with("550 5.7.1")
    );
    assert_eq!(
        count(&store, &rt, "SELECT COUNT(*) FROM portal_messages"),
        4
    );
    assert_eq!(
        count(
            &store,
            &rt,
            "SELECT COUNT(*) FROM portal_messages WHERE state <> 'live'"
        ),
        0
    );
    assert_eq!(c.cmd("QUIT"), "221 2.0.0 Bye");

    // 7. Store locked by another writer longer than the busy timeout: 451, nothing
    // half-stored; after the lock is gone the same message is stored.
    let lock = rt.block_on(async {
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", p.dir.join("portal.db").display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        conn.execute("BEGIN EXCLUSIVE").await.unwrap();
        conn
    });
    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let m4 = message("Subject: later\nX-NTA7516-Phone: +31612345678\n", 1000);
    let t0 = Instant::now();
    let r = c.send("arts@zkh.example", &["p@x.example"], &m4);
    assert!(r[0].starts_with("451 4.3.0"), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(60));
    rt.block_on(async {
        use sqlx::Connection;
        let mut lock = lock;
        sqlx::Executor::execute(&mut lock, "ROLLBACK")
            .await
            .unwrap();
        lock.close().await.unwrap();
    });
    let r = c.send("arts@zkh.example", &["p@x.example"], &m4);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}");
    assert_eq!(
        count(&store, &rt, "SELECT COUNT(*) FROM portal_messages"),
        5
    );
    assert_eq!(
        count(
            &store,
            &rt,
            "SELECT COUNT(*) FROM portal_messages WHERE state = 'incoming'"
        ),
        0
    );
    c.cmd("QUIT");

    // The notification cannot be submitted (no sendmail here): the link is kept sealed
    // and pending for the retry.
    let pending = rt.block_on(store.pending_notices(i64::MAX, 100)).unwrap();
    assert_eq!(pending.len(), 5, "{pending:?}");
    rt.block_on(store.close());

    // SIGTERM: a clean stop.
    assert!(p.stop(), "portal did not stop cleanly: {}", p.log());
    let (ok, out) = audit_verify(dir.path());
    assert!(ok, "{out}");
    let stored = audit_events(dir.path(), "portal_stored");
    assert_eq!(stored.len(), 7, "{stored:?}");
    assert!(stored[1].contains("\"redelivery\":true"));
    assert!(stored[0].contains(&id1) && stored[0].contains("\"recipient_count\":2"));
    assert!(
        !stored.iter().any(|l| l.contains("Uitslag")),
        "subject in the audit log"
    );
    let refused = audit_events(dir.path(), "portal_intake_refused");
    assert!(refused.iter().any(|l| l.contains("550 5.7.0")));
    assert!(refused.iter().any(|l| l.contains("552 5.3.4")));
    assert!(refused.iter().any(|l| l.contains("451 4.3.0")));
    assert!(!audit_events(dir.path(), "portal_notify_failed").is_empty());
    let asked = audit_events(dir.path(), "portal_number_asked");
    assert!(
        asked.len() == 1 && asked[0].contains("w@x.example") && asked[0].contains("\"sent\":false"),
        "{asked:?}"
    );
}

/// `[portal] listen` in use: the portal does not start (exit 1, the reason on stderr),
/// and its LMTP socket is not left open either.
#[test]
fn portal_refuses_to_start_when_the_web_listener_cannot_bind() {
    let dir = tempfile::tempdir().unwrap();
    let p = Portal::configure(dir.path(), None, "");
    let _taken = std::net::TcpListener::bind(("127.0.0.1", p.web_port)).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["portal", "--config"])
        .arg(&p.config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the portal kept running without its web listener");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "web listener inet:127.0.0.1:{}: cannot listen",
            p.web_port
        )),
        "{err}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", p.lmtp_port)).is_err());
}
