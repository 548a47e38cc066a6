//! The portal's periodic job, at start and every [`INTERVAL`]: expire messages past their
//! retention (key destroyed first, then the data; both audited), retry notifications that
//! failed, and remove intakes a crash left `incoming`. Each pass is bounded in work; the
//! loop ends on shutdown.
//!
//! Several nodes on one database (portal/README.md, "Several nodes"): expiry and the
//! sweep run only on the node holding the [`EXPIRY_LEASE`] (renewed every pass, given up
//! at a clean stop), and a message is audited as expired only by the node whose
//! conditional `UPDATE` shredded it; every node retries notifications, each one claimed
//! by exactly one node before it is sent (`store/claim.rs`). The sweep touches only rows
//! older than [`STALE_INCOMING`], far beyond any intake still writing on another node.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::audit::Event;
use crate::portal::intake::Intake;
use crate::portal::store::{StoreError, now};

pub const INTERVAL: Duration = Duration::from_secs(60);
/// Messages expired per pass (the rest follow in the next one).
pub const EXPIRE_BATCH: i64 = 200;
/// Notifications retried per pass.
pub const NOTIFY_BATCH: i64 = 50;
/// An `incoming` row older than this belongs to an intake that died (a live one finishes
/// within the LMTP idle timeout per read, far sooner for real messages).
pub const STALE_INCOMING: i64 = 6 * 3600;
/// The lease of expiry and sweep, and its length: a few intervals, so that the holder's
/// renewal is never late while it lives, and another node takes over within minutes
/// after it died without releasing it.
pub const EXPIRY_LEASE: &str = "expiry";
pub const LEASE_FOR: i64 = 5 * 60;

/// What one pass did (for tests and the log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// This node held the expiry lease (ran expiry and the sweep).
    pub leader: bool,
    pub expired: usize,
    pub notified: usize,
    pub swept: u64,
    /// Receipts sent (retries) and withdrawals audited by this node.
    pub receipts: usize,
    pub revocations: usize,
    /// Waits for a number given up (the sender told).
    pub not_delivered: usize,
}

/// One pass of node `node` at time `at` (unix seconds).
pub async fn pass(intake: &Intake, node: &str, at: i64) -> Pass {
    let store = &intake.store;
    let leader = match store
        .try_lease(EXPIRY_LEASE, node, at, at.saturating_add(LEASE_FOR))
        .await
    {
        Ok(held) => held,
        Err(e) => {
            tracing::error!(error = %e, "portal expiry lease: store unavailable");
            false
        }
    };
    let mut done = Pass {
        leader,
        ..Pass::default()
    };
    if leader {
        done.expired = expire(intake, at).await;
    }
    done.notified = retry_notices(intake, at).await;
    // Every node: each receipt and each withdrawal is claimed before it is handled.
    done.receipts = intake.senders.retry_receipts(at).await;
    done.revocations = intake.senders.audit_revocations().await;
    done.receipts += intake.senders.retry_asks(at).await;
    done.not_delivered = intake.senders.give_up_overdue(at).await;
    if leader {
        match store.sweep_incoming(at - STALE_INCOMING).await {
            Ok(n) => done.swept = n,
            Err(e) => tracing::error!(error = %e, "portal sweep: store unavailable"),
        }
    }
    done
}

/// Expires what is due; returns how many this node shredded.
async fn expire(intake: &Intake, at: i64) -> usize {
    let store = &intake.store;
    let due = listed(
        store.expired_messages(at, EXPIRE_BATCH).await,
        "portal expiry",
    );
    let mut expired = 0;
    for (id, sha256, recipient_count) in due {
        match store.shred(&id).await {
            // Not live any more: shredded (and audited) by another node.
            Ok(false) => {}
            Ok(true) => {
                intake.auditor.record_all(vec![
                    Event::PortalExpired {
                        message: id.clone(),
                        sha256,
                        recipient_count,
                    },
                    Event::PortalShredded { message: id },
                ]);
                expired += 1;
            }
            Err(e) => tracing::error!(error = %e, "cannot expire a portal message"),
        }
    }
    expired
}

/// Retries due notifications, each only after this node claimed it; returns how many.
async fn retry_notices(intake: &Intake, at: i64) -> usize {
    let store = &intake.store;
    let due = listed(
        store.pending_notices(at, NOTIFY_BATCH).await,
        "portal notification retry",
    );
    let mut notified = 0;
    for p in due {
        match store.claim_notice(&p.recipient_id, p.notify_next, at).await {
            Ok(true) => {}
            // Another node has it (or it was sent meanwhile).
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "portal notification claim: store unavailable");
                break;
            }
        }
        intake
            .notify_one(
                &p.message_id,
                &p.recipient_id,
                &p.address,
                &p.token,
                &p.phone,
                p.attempts,
            )
            .await;
        notified += 1;
    }
    notified
}

/// What a pass's query listed; nothing (and an error logged under `job`) when the store
/// is unavailable: the next pass tries again.
fn listed<T>(list: Result<Vec<T>, StoreError>, job: &str) -> Vec<T> {
    list.unwrap_or_else(|e| {
        tracing::error!(error = %e, "{job}: store unavailable");
        Vec::new()
    })
}

/// Runs a pass now and then every [`INTERVAL`] until `shutdown`, as node `node` (unique
/// per process); gives the expiry lease up on the way out.
pub async fn run(intake: Arc<Intake>, node: String, mut shutdown: watch::Receiver<bool>) {
    let mut was_leader = false;
    loop {
        let done = pass(&intake, &node, now()).await;
        if done.leader != was_leader {
            tracing::info!(%node, leader = done.leader, "portal expiry lease");
            was_leader = done.leader;
        }
        if (
            done.expired,
            done.notified,
            done.swept,
            done.receipts,
            done.revocations,
        ) != (0, 0, 0, 0, 0)
        {
            tracing::info!(
                expired = done.expired,
                notified = done.notified,
                swept = done.swept,
                receipts = done.receipts,
                revocations = done.revocations,
                "portal periodic job"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = crate::shutdown::requested(&mut shutdown) => break,
        }
    }
    if let Err(e) = intake.store.release_lease(EXPIRY_LEASE, &node).await {
        tracing::warn!(error = %e, "portal expiry lease not released; it lapses by itself");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::Auditor;
    use crate::config::portal::StoreLocation;
    use crate::portal::crypto::MasterKey;
    use crate::portal::notice::Notifier;
    use crate::portal::phone::Phone;
    use crate::portal::store::{NewRecipient, Store};

    pub(crate) async fn intake(dir: &std::path::Path) -> Arc<Intake> {
        node_intake(dir, "audit.log").await
    }

    /// A node on the database in `dir` with its own audit file `audit`.
    async fn node_intake(dir: &std::path::Path, audit: &str) -> Arc<Intake> {
        let store = Store::open(
            &StoreLocation::Sqlite(dir.join("p.db")),
            Arc::new(MasterKey::from_bytes(&[9; 32])),
        )
        .await
        .unwrap();
        let auditor = Arc::new(Auditor::open(Some(&dir.join(audit))).unwrap());
        let notifier = Notifier {
            submit: crate::portal::submit::Submit::Sendmail("/nonexistent/sendmail".into()),
            from: "portaal@zkh.example".into(),
            organisation: "zkh.example".into(),
            mark: crate::message::portal_mark::MarkKey::from_bytes(&[7; 32]).unwrap(),
            timeout: Duration::from_secs(5),
            text: Default::default(),
        };
        let senders = Arc::new(crate::portal::receipt::SenderMail {
            store: store.clone(),
            notifier: notifier.clone(),
            auditor: auditor.clone(),
            public_url: "https://p.example".into(),
            own_domains: vec!["zkh.example".into()],
            number_wait: Some(Duration::from_secs(3600)),
        });
        Arc::new(Intake {
            store,
            auditor,
            notifier,
            senders,
            public_url: "https://p.example".into(),
            retention: Duration::from_secs(3600),
            max_message_size: 1 << 20,
            own_sender: "portaal@zkh.example".into(),
            number_wait: Some(Duration::from_secs(3600)),
        })
    }

    #[test]
    fn limits_are_pinned() {
        assert_eq!(INTERVAL, Duration::from_secs(60));
        assert_eq!(
            (EXPIRE_BATCH, NOTIFY_BATCH, STALE_INCOMING),
            (200, 50, 21_600)
        );
        assert_eq!((EXPIRY_LEASE, LEASE_FOR), ("expiry", 300));
        // The holder renews every pass: the lease outlasts several intervals.
        assert!(LEASE_FOR >= 3 * INTERVAL.as_secs() as i64);
    }

    async fn store_one(i: &Intake, subject: &str) -> String {
        let mut inc = i
            .store
            .begin("a@zkh.example", None, i.retention)
            .await
            .unwrap();
        inc.write(format!("Subject: {subject}\r\n\r\nbody\r\n").as_bytes())
            .await
            .unwrap();
        let stored = inc
            .commit(&[NewRecipient {
                address: "p@x.example".into(),
                phone: Phone::parse("0612345678").unwrap(),
            }])
            .await
            .unwrap();
        assert!(!stored[0].duplicate);
        stored[0].message_id.clone()
    }

    fn events(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split("\"event_type\":\"").nth(1))
            .filter_map(|r| r.split('"').next())
            .map(str::to_string)
            .collect()
    }

    /// Two nodes on one database: one leader; the other takes over only when the
    /// lease lapsed or was released; a message expires (and is audited) once.
    #[tokio::test]
    async fn two_nodes_expire_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = node_intake(dir.path(), "a.log").await;
        let b = node_intake(dir.path(), "b.log").await;
        let first = store_one(&a, "one").await;
        let t = now() + 3600;
        let (pa, pb) = tokio::join!(pass(&a, "A", t), pass(&b, "B", t));
        assert!(pa.leader != pb.leader, "{pa:?} {pb:?}");
        assert_eq!(pa.expired + pb.expired, 1);
        assert!(a.store.read_message(&first).await.is_err());
        let (leader, other, lname, oname) = if pa.leader {
            (&a, &b, "A", "B")
        } else {
            (&b, &a, "B", "A")
        };
        // Renewed by the leader, refused to the other within the lease.
        assert!(pass(leader, lname, t + 60).await.leader);
        assert!(!pass(other, oname, t + 60 + LEASE_FOR - 1).await.leader);
        // The leader died: the other takes over once it lapsed.
        let second = store_one(&a, "two").await;
        let later = t + 60 + LEASE_FOR;
        let p = pass(other, oname, later).await;
        assert!(p.leader && p.expired == 1, "{p:?}");
        assert!(a.store.read_message(&second).await.is_err());
        // Released at a clean stop: the next node need not wait.
        other
            .store
            .release_lease(EXPIRY_LEASE, oname)
            .await
            .unwrap();
        assert!(pass(leader, lname, later + 1).await.leader);
        let all: Vec<String> = [
            events(&dir.path().join("a.log")),
            events(&dir.path().join("b.log")),
        ]
        .concat()
        .into_iter()
        .filter(|e| e != "portal_notify_failed")
        .collect();
        assert_eq!(
            all.iter().filter(|e| *e == "portal_expired").count(),
            2,
            "{all:?}"
        );
        assert_eq!(all.iter().filter(|e| *e == "portal_shredded").count(), 2);
    }

    #[tokio::test]
    async fn expires_retries_and_sweeps_with_audit() {
        let dir = tempfile::tempdir().unwrap();
        let i = intake(dir.path()).await;
        let id = store_one(&i, "x").await;
        // A stale intake left by a crash, after its first chunk (before that, nothing
        // of it is in the store).
        let mut stale = i.store.begin("", None, i.retention).await.unwrap();
        stale
            .write(&vec![b'h'; crate::portal::crypto::CHUNK_SIZE + 1])
            .await
            .unwrap();
        drop(stale);

        // Now: nothing expires; the notification is still the storing intake's claim.
        let t = now();
        assert_eq!(
            pass(&i, "A", t).await,
            Pass {
                leader: true,
                expired: 0,
                notified: 0,
                swept: 0,
                receipts: 0,
                revocations: 0,
                not_delivered: 0,
            }
        );
        // The claim lapsed (the intake died before sending): retried (and fails: no
        // sendmail); the fresh incoming row is not stale yet.
        sqlx::query("UPDATE portal_recipients SET notify_next = 0")
            .execute(i.store.pool())
            .await
            .unwrap();
        let done = pass(&i, "A", t).await;
        assert_eq!((done.notified, done.expired, done.swept), (1, 0, 0));
        // Backed off: not retried again at once.
        assert_eq!(pass(&i, "A", t).await.notified, 0);
        // After retention: expired and shredded, the stale row swept.
        let done = pass(&i, "A", t + 3600 + STALE_INCOMING).await;
        assert_eq!((done.expired, done.swept), (1, 1));
        assert!(i.store.read_message(&id).await.is_err());
        drop(i);
        let kinds = events(&dir.path().join("audit.log"));
        assert_eq!(
            kinds,
            ["portal_notify_failed", "portal_expired", "portal_shredded"]
        );
        let report = crate::audit::verify_files(&[dir.path().join("audit.log")]).unwrap();
        assert_eq!(report.lines, 3);
    }
}
