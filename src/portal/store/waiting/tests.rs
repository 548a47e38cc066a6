use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::portal::StoreLocation;
use crate::portal::crypto::MasterKey;
use crate::portal::store::NewRecipient;

async fn store(dir: &std::path::Path) -> Store {
    Store::open(
        &StoreLocation::Sqlite(dir.join("p.db")),
        Arc::new(MasterKey::from_bytes(&[4; 32])),
    )
    .await
    .unwrap()
}

/// One message for a known recipient (a) and one without a number (b).
async fn stored(s: &Store) -> (String, String, String) {
    let mut i = s
        .begin(
            "arts@zkh.nl",
            Some("<w1@zkh.nl>"),
            Duration::from_secs(86_400),
        )
        .await
        .unwrap();
    i.write(b"Subject: x\r\n\r\nbody\r\n").await.unwrap();
    let out = i
        .commit_waiting(
            &[NewRecipient {
                address: "a@example.org".into(),
                phone: Phone::parse("0612345678").unwrap(),
            }],
            &["b@example.org".to_string()],
        )
        .await
        .unwrap();
    assert!(out[0].phone.is_some() && out[0].ask_token.is_none());
    assert!(out[1].phone.is_none());
    (
        out[1].message_id.clone(),
        out[1].recipient_id.clone(),
        out[1].ask_token.clone().unwrap(),
    )
}

#[tokio::test]
async fn a_number_is_given_once_then_the_notification_and_receipt_are_due() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let (id, rid, token) = stored(&s).await;
    assert_eq!(s.waiting_count(&id).await.unwrap(), 1);
    assert_eq!(s.find(&id).await.unwrap()[0].state, "waiting");
    // The receipt waits too; the known recipient's notification does not.
    assert!(s.receipt(&id).await.unwrap().is_none());
    // The ask: claimed once, its token unsealed until sent.
    let ask = s.ask(&rid).await.unwrap().unwrap();
    assert_eq!(ask.token.as_deref(), Some(token.as_str()));
    assert!(s.claim_ask(&rid, ask.ask_next, now()).await.unwrap());
    assert!(!s.claim_ask(&rid, ask.ask_next, now()).await.unwrap());
    s.ask_sent(&rid, "ask1@zkh.nl").await.unwrap();
    assert!(s.ask(&rid).await.unwrap().is_none());
    let by_reply = s
        .waiting_by_ask(&["other@x".into(), "ask1@zkh.nl".into()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_reply.recipient_id, rid);
    // The link finds it; the number goes in once.
    let w = s
        .waiting_by_token_hash(&crate::portal::store::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((w.address.as_str(), w.state), ("b@example.org", 0));
    let p = Phone::parse("+31687654321").unwrap();
    assert_eq!(s.give_number(&rid, &p).await.unwrap(), Given::Stored);
    assert_eq!(s.give_number(&rid, &p).await.unwrap(), Given::Spent);
    let r = s.recipient(&rid).await.unwrap().unwrap();
    assert_eq!(r.phone, Some(p));
    assert_eq!(s.find(&id).await.unwrap()[0].state, "live");
    let due: Vec<String> = s
        .pending_notices(now(), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.recipient_id)
        .collect();
    assert!(due.contains(&rid), "{due:?}");
    assert!(s.receipt(&id).await.unwrap().is_some());
    // Spent: overdue finds nothing.
    assert!(s.overdue_waiting(now() + 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_wait_given_up_shreds_a_message_nobody_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path()).await;
    let mut i = s
        .begin("arts@zkh.nl", None, Duration::from_secs(86_400))
        .await
        .unwrap();
    i.write(b"Subject: x\r\n\r\nbody\r\n").await.unwrap();
    let out = i
        .commit_waiting(&[], &["c@example.org".to_string()])
        .await
        .unwrap();
    let (id, rid) = (out[0].message_id.clone(), out[0].recipient_id.clone());
    assert!(s.overdue_waiting(now() - 10).await.unwrap().is_empty());
    let due = s.overdue_waiting(now() + 1).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(s.give_up(&rid).await.unwrap(), Some(true));
    assert_eq!(s.give_up(&rid).await.unwrap(), None);
    assert!(s.shred(&id).await.unwrap());
    // The link is spent for good.
    assert_eq!(
        s.give_number(&rid, &Phone::parse("0612345678").unwrap())
            .await
            .unwrap(),
        Given::Spent
    );
}
