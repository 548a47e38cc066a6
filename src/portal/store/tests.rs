//! Store round trips on SQLite (the PostgreSQL path runs in tests/portal_*.rs).

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::portal::crypto::{CHUNK_SIZE, MasterKey};
use crate::portal::phone::Phone;

async fn open(dir: &std::path::Path, key: u8) -> Store {
    let loc = StoreLocation::Sqlite(dir.join("portal.db"));
    Store::open(&loc, Arc::new(MasterKey::from_bytes(&[key; 32])))
        .await
        .unwrap()
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn rcpt(a: &str) -> NewRecipient {
    NewRecipient {
        address: a.into(),
        phone: Phone::parse("+31612345678").unwrap(),
    }
}

/// How many rows `table` has.
async fn count(s: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(s.pool())
        .await
        .unwrap()
}

/// Runs one statement about message `id` (bound as `$1`).
async fn exec(s: &Store, sql: &'static str, id: &str) {
    sqlx::query(sql)
        .bind(id.to_string())
        .execute(s.pool())
        .await
        .unwrap();
}

/// Swaps the indices of chunks 0 and 1 of message `id`.
async fn swap_first_chunks(s: &Store, id: &str) {
    exec(
        s,
        "UPDATE portal_chunks SET idx = 99 WHERE message_id = $1 AND idx = 0",
        id,
    )
    .await;
    exec(
        s,
        "UPDATE portal_chunks SET idx = 0 WHERE message_id = $1 AND idx = 1",
        id,
    )
    .await;
    exec(
        s,
        "UPDATE portal_chunks SET idx = 1 WHERE message_id = $1 AND idx = 99",
        id,
    )
    .await;
}

async fn store_one(s: &Store, data: &[u8], rcpts: &[&str]) -> Vec<StoredRecipient> {
    let mut inc = s
        .begin(
            "arts@zkh.example",
            Some("<m1@zkh>"),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    for part in data.chunks(7000) {
        inc.write(part).await.unwrap();
    }
    let list: Vec<NewRecipient> = rcpts.iter().map(|a| rcpt(a)).collect();
    inc.commit(&list).await.unwrap()
}

#[tokio::test]
async fn round_trip_dedup_and_shred() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 1).await;
    let data = body(3 * CHUNK_SIZE + 17);
    let stored = store_one(&s, &data, &["p@x.example", "q@x.example"]).await;
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|r| !r.duplicate && r.token.is_some()));
    let token = stored[0].token.clone().unwrap();
    assert_eq!(token.len(), 43, "32 bytes base64url without padding");
    let rec = s
        .recipient_by_token_hash(&token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.address, "p@x.example");
    assert_eq!(rec.state, MessageState::Live);
    assert_eq!(rec.phone.as_ref().unwrap().e164(), "+31612345678");
    assert_eq!(rec.size, data.len() as u64);
    assert_eq!(rec.sha256, crate::audit::sha256_hex(&data));
    assert_eq!(s.read_message(&rec.message_id).await.unwrap(), data);
    let mut reader = s.chunks(&rec.message_id).await.unwrap();
    let mut n = 0;
    while let Some(c) = reader.next_chunk().await.unwrap() {
        assert!(c.len() <= CHUNK_SIZE);
        n += 1;
    }
    assert_eq!(n, 4);
    assert!(
        s.recipient_by_token_hash(&[0u8; 32])
            .await
            .unwrap()
            .is_none()
    );

    // Redelivery of the same content to the same recipients: no second copy.
    let again = store_one(&s, &data, &["P@x.example", "q@x.example"]).await;
    assert!(again.iter().all(|r| r.duplicate && r.token.is_none()));
    assert_eq!(again[0].message_id, rec.message_id);
    assert_eq!(count(&s, "portal_messages").await, 1);

    // Pending notifications carry the sealed token until marked sent; they are stored
    // claimed by the intake that sends them at once, and due for others after that.
    assert!(s.pending_notices(now(), 10).await.unwrap().is_empty());
    let pending = s
        .pending_notices(now() + super::NOTIFY_CLAIM, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().any(|p| p.token == token));
    s.mark_notified(&stored[0].recipient_id).await.unwrap();
    s.notify_failed(&stored[1].recipient_id).await.unwrap();
    assert!(s.pending_notices(now(), 10).await.unwrap().is_empty());
    assert_eq!(s.pending_notices(now() + 61, 10).await.unwrap().len(), 1);

    // Expiry: key first, then data; nothing readable afterwards.
    assert!(s.expired_messages(now(), 10).await.unwrap().is_empty());
    let due = s.expired_messages(now() + 3601, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].2, 2);
    assert!(s.shred(&rec.message_id).await.unwrap());
    assert!(!s.shred(&rec.message_id).await.unwrap());
    let gone = s
        .recipient_by_token_hash(&token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.state, MessageState::Expired);
    assert!(gone.phone.is_none());
    assert!(matches!(
        s.read_message(&rec.message_id).await,
        Err(StoreError::Gone(_))
    ));
    assert_eq!(count(&s, "portal_chunks").await, 0);
    assert!(
        s.pending_notices(now() + 9999, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn tamper_truncate_reorder_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 2).await;
    let data = body(2 * CHUNK_SIZE + 5);
    let stored = store_one(&s, &data, &["p@x.example"]).await;
    let id = stored[0].message_id.clone();
    // Reorder: swap chunks 0 and 1 (and back).
    swap_first_chunks(&s, &id).await;
    assert!(s.read_message(&id).await.is_err());
    swap_first_chunks(&s, &id).await;
    assert_eq!(s.read_message(&id).await.unwrap(), data);
    // Truncate: drop the last chunk and claim the one before it is last.
    exec(
        &s,
        "DELETE FROM portal_chunks WHERE message_id = $1 AND idx = 2",
        &id,
    )
    .await;
    assert!(s.read_message(&id).await.is_err());
    exec(
        &s,
        "UPDATE portal_chunks SET last = 1 WHERE message_id = $1 AND idx = 1",
        &id,
    )
    .await;
    assert!(s.read_message(&id).await.is_err());
    // Wrong master key: named, not "corrupt".
    let other = Store::open(
        &StoreLocation::Sqlite(dir.path().join("portal.db")),
        Arc::new(MasterKey::from_bytes(&[3; 32])),
    )
    .await
    .unwrap();
    let e = other.read_message(&id).await.unwrap_err();
    assert!(e.to_string().contains("master key"), "{e}");
}

#[tokio::test]
async fn aborted_and_stale_incoming_are_invisible_and_swept() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 4).await;
    let mut inc = s.begin("", None, Duration::from_secs(60)).await.unwrap();
    inc.write(&body(CHUNK_SIZE * 2)).await.unwrap();
    let id = inc.message_id().to_string();
    drop(inc);
    assert!(s.read_message(&id).await.is_err());
    assert_eq!(s.sweep_incoming(now() + 1).await.unwrap(), 1);
    assert_eq!(count(&s, "portal_chunks").await, 0);
    let mut inc = s.begin("", None, Duration::from_secs(60)).await.unwrap();
    inc.write(b"x").await.unwrap();
    inc.abort().await;
    assert_eq!(count(&s, "portal_messages").await, 0);
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(write::notify_backoff(0), 60);
    assert_eq!(write::notify_backoff(1), 120);
    assert_eq!(write::notify_backoff(10), 3600);
    assert_eq!(write::notify_backoff(1000), 3600);
}

#[tokio::test]
async fn a_message_of_one_chunk_reaches_the_store_only_at_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 9).await;
    // Small: nothing before the commit (one transaction, one fsync), nothing after an
    // abort.
    let mut small = s
        .begin("arts@zkh.example", None, Duration::from_secs(3600))
        .await
        .unwrap();
    small.write(&body(CHUNK_SIZE)).await.unwrap();
    assert_eq!(count(&s, "portal_messages").await, 0);
    assert_eq!(count(&s, "portal_chunks").await, 0);
    small.abort().await;
    let mut small = s
        .begin("arts@zkh.example", None, Duration::from_secs(3600))
        .await
        .unwrap();
    small.write(&body(CHUNK_SIZE)).await.unwrap();
    let id = small.message_id().to_string();
    small.commit(&[rcpt("p@example.org")]).await.unwrap();
    assert_eq!(count(&s, "portal_messages").await, 1);
    let m = s.read_message(&id).await.unwrap();
    assert_eq!(m, body(CHUNK_SIZE));
    // Larger: the `incoming` row comes with the first full chunk (so the sweep finds
    // an abandoned intake), and an abort removes both.
    let mut big = s
        .begin("arts@zkh.example", None, Duration::from_secs(3600))
        .await
        .unwrap();
    big.write(&body(CHUNK_SIZE + 1)).await.unwrap();
    assert_eq!(count(&s, "portal_messages").await, 2);
    assert_eq!(count(&s, "portal_chunks").await, 2);
    big.abort().await;
    assert_eq!(count(&s, "portal_messages").await, 1);
    assert_eq!(count(&s, "portal_chunks").await, 1);
}

#[tokio::test]
async fn notifications_and_the_receipt_are_marked_sent_in_one_go() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path(), 10).await;
    let stored = store_one(&s, &body(100), &["a@x.example", "b@x.example"]).await;
    let id = stored[0].message_id.clone();
    let later = now() + super::NOTIFY_CLAIM;
    assert_eq!(s.pending_notices(later, 10).await.unwrap().len(), 2);
    assert!(s.receipt(&id).await.unwrap().is_some());
    // Nothing to mark: no transaction, no error.
    s.mark_sent(&[], None).await.unwrap();
    s.mark_sent(&[stored[0].recipient_id.clone()], Some(&id))
        .await
        .unwrap();
    let left = s.pending_notices(later, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].recipient_id, stored[1].recipient_id);
    assert!(
        s.receipt(&id).await.unwrap().is_none(),
        "receipt marked sent"
    );
    assert!(s.pending_receipts(later).await.unwrap().is_empty());
}
