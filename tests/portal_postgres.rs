//! The same intake on a real PostgreSQL that this test starts (initdb + pg_ctl on a temp
//! directory and a loopback port): stored and read back byte-identical, redelivery without
//! a second copy, 451 while the database is down and the message stored after it is back,
//! expiry (key first, then data). Skipped, loudly, only when the PostgreSQL binaries are
//! missing and NTA_REQUIRE_PG is not set.

mod portal_support;

use std::sync::Arc;

use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::{MessageState, Store, token_hash};
use portal_support::pg::Pg;
use portal_support::*;

fn message_id(reply: &str) -> String {
    let open = reply.rfind('(').unwrap();
    reply[open + 1..reply.len() - 1].to_string()
}

#[test]
fn lmtp_intake_on_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = Pg::start(dir.path()) else {
        return;
    };
    let mut p = Portal::configure(dir.path(), Some(&pg.url()), "");
    p.start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(MasterKey::load(&dir.path().join("portal.key")).unwrap());
    let store = rt
        .block_on(Store::open(&StoreLocation::Postgres(pg.url()), key))
        .unwrap();
    let count = |sql: &'static str| {
        rt.block_on(sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()))
            .unwrap()
    };

    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let m1 = message(
        "From: arts@zkh.example\nSubject: [sms:+31612345678] Uitslag\nMessage-ID: <pg1@zkh.example>\n",
        300_000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    let id = message_id(&r[0]);
    let want = String::from_utf8(m1.clone())
        .unwrap()
        .replace("[sms:+31612345678] ", "");
    assert_eq!(
        rt.block_on(store.read_message(&id)).unwrap(),
        want.as_bytes()
    );
    let r = c.send("arts@zkh.example", &["p@x.example", "q@x.example"], &m1);
    assert!(r.iter().all(|l| l.starts_with("250 2.0.0")), "{r:?}");
    assert_eq!(count("SELECT COUNT(*) FROM portal_messages"), 1);
    c.cmd("QUIT");

    // The database down: 451 (the MTA keeps the mail); back up: stored.
    pg.down();
    let mut c = p.lmtp();
    c.cmd("LHLO postfix");
    let m2 = message(
        "Subject: tijdens storing\nX-NTA7516-Phone: 0612345678\n",
        5000,
    );
    let r = c.send("arts@zkh.example", &["p@x.example"], &m2);
    assert!(r[0].starts_with("451 4.3.0"), "{r:?}");
    pg.up();
    let r = c.send("arts@zkh.example", &["p@x.example"], &m2);
    assert!(r[0].starts_with("250 2.0.0"), "{r:?}\n{}", p.log());
    c.cmd("QUIT");
    assert_eq!(count("SELECT COUNT(*) FROM portal_messages"), 2);
    assert_eq!(
        count("SELECT COUNT(*) FROM portal_messages WHERE state = 'incoming'"),
        0
    );

    // Expiry on PostgreSQL: key gone first, then the chunks; the token still resolves to
    // an "expired" recipient without phone.
    let pending = rt.block_on(store.pending_notices(i64::MAX, 10)).unwrap();
    let token = pending
        .iter()
        .find(|n| n.message_id == id)
        .unwrap()
        .token
        .clone();
    assert!(rt.block_on(store.shred(&id)).unwrap());
    let rec = rt
        .block_on(store.recipient_by_token_hash(&token_hash(&token)))
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, MessageState::Expired);
    assert!(rec.phone.is_none());
    assert!(rt.block_on(store.read_message(&id)).is_err());
    rt.block_on(store.close());

    assert!(p.stop(), "portal did not stop cleanly: {}", p.log());
    let (ok, out) = audit_verify(dir.path());
    assert!(ok, "{out}");
    assert_eq!(audit_events(dir.path(), "portal_stored").len(), 3);
}

/// Several nodes starting at the same moment on an empty database all start: the schema
/// is created under an advisory lock (PostgreSQL's `CREATE … IF NOT EXISTS` fails in one
/// of two concurrent sessions otherwise).
#[test]
fn nodes_starting_at_once_on_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pg) = Pg::start(dir.path()) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = Arc::new(MasterKey::from_bytes(&[1; 32]));
    let opened: Vec<_> = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (url, key) = (pg.url(), key.clone());
                tokio::spawn(async move { Store::open(&StoreLocation::Postgres(url), key).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (i, o) in opened.iter().enumerate() {
        assert!(o.is_ok(), "node {i}: {:?}", o.as_ref().err());
    }
    pg.down();
}
