//! The portal's periodic job, at start and every [`INTERVAL`]: expire messages past their
//! retention (key destroyed first, then the data; both audited), retry notifications that
//! failed, and remove intakes a crash left `incoming`. Each pass is bounded in work; the
//! loop ends on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::audit::Event;
use crate::portal::intake::Intake;
use crate::portal::store::now;

pub const INTERVAL: Duration = Duration::from_secs(60);
/// Messages expired per pass (the rest follow in the next one).
pub const EXPIRE_BATCH: i64 = 200;
/// Notifications retried per pass.
pub const NOTIFY_BATCH: i64 = 50;
/// An `incoming` row older than this belongs to an intake that died (a live one finishes
/// within the LMTP idle timeout per read, far sooner for real messages).
pub const STALE_INCOMING: i64 = 6 * 3600;

/// What one pass did (for tests and the log).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub expired: usize,
    pub notified: usize,
    pub swept: u64,
}

/// One pass at time `at` (unix seconds).
pub async fn pass(intake: &Intake, at: i64) -> Pass {
    let mut done = Pass::default();
    let store = &intake.store;
    match store.expired_messages(at, EXPIRE_BATCH).await {
        Ok(list) => {
            for (id, sha256, recipient_count) in list {
                match store.shred(&id).await {
                    Ok(_) => {
                        intake.auditor.record_all(vec![
                            Event::PortalExpired {
                                message: id.clone(),
                                sha256,
                                recipient_count,
                            },
                            Event::PortalShredded { message: id },
                        ]);
                        done.expired += 1;
                    }
                    Err(e) => tracing::error!(error = %e, "cannot expire a portal message"),
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "portal expiry: store unavailable"),
    }
    match store.pending_notices(at, NOTIFY_BATCH).await {
        Ok(list) => {
            for p in list {
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
                done.notified += 1;
            }
        }
        Err(e) => tracing::error!(error = %e, "portal notification retry: store unavailable"),
    }
    match store.sweep_incoming(at - STALE_INCOMING).await {
        Ok(n) => done.swept = n,
        Err(e) => tracing::error!(error = %e, "portal sweep: store unavailable"),
    }
    done
}

/// Runs a pass now and then every [`INTERVAL`] until `shutdown`.
pub async fn run(intake: Arc<Intake>, mut shutdown: watch::Receiver<bool>) {
    loop {
        let done = pass(&intake, now()).await;
        if done != Pass::default() {
            tracing::info!(
                expired = done.expired,
                notified = done.notified,
                swept = done.swept,
                "portal periodic job"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = crate::daemon::stopped(&mut shutdown) => return,
        }
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
        let store = Store::open(
            &StoreLocation::Sqlite(dir.join("p.db")),
            Arc::new(MasterKey::from_bytes(&[9; 32])),
        )
        .await
        .unwrap();
        Arc::new(Intake {
            store,
            auditor: Arc::new(Auditor::open(Some(&dir.join("audit.log"))).unwrap()),
            notifier: Notifier {
                sendmail: "/nonexistent/sendmail".into(),
                from: "portaal@zkh.example".into(),
            },
            public_url: "https://p.example".into(),
            retention: Duration::from_secs(3600),
            max_message_size: 1 << 20,
            own_sender: "portaal@zkh.example".into(),
        })
    }

    #[test]
    fn limits_are_pinned() {
        assert_eq!(INTERVAL, Duration::from_secs(60));
        assert_eq!(
            (EXPIRE_BATCH, NOTIFY_BATCH, STALE_INCOMING),
            (200, 50, 21_600)
        );
    }

    #[tokio::test]
    async fn expires_retries_and_sweeps_with_audit() {
        let dir = tempfile::tempdir().unwrap();
        let i = intake(dir.path()).await;
        let mut inc = i
            .store
            .begin("a@zkh.example", None, i.retention)
            .await
            .unwrap();
        inc.write(b"Subject: x\r\n\r\nbody\r\n").await.unwrap();
        let stored = inc
            .commit(&[NewRecipient {
                address: "p@x.example".into(),
                phone: Phone::parse("0612345678").unwrap(),
            }])
            .await
            .unwrap();
        let id = stored[0].message_id.clone();
        // A stale intake left by a crash.
        let mut stale = i.store.begin("", None, i.retention).await.unwrap();
        stale.write(b"half").await.unwrap();
        drop(stale);

        // Now: nothing expires; the notification is retried (and fails: no sendmail);
        // the fresh incoming row is not stale yet.
        let t = now();
        let done = pass(&i, t).await;
        assert_eq!(
            done,
            Pass {
                expired: 0,
                notified: 1,
                swept: 0
            }
        );
        // Backed off: not retried again at once.
        assert_eq!(pass(&i, t).await.notified, 0);
        // After retention: expired and shredded, the stale row swept.
        let done = pass(&i, t + 3600 + STALE_INCOMING).await;
        assert_eq!((done.expired, done.swept), (1, 1));
        assert!(i.store.read_message(&id).await.is_err());
        drop(i);
        let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        let kinds: Vec<&str> = log
            .lines()
            .filter_map(|l| l.split("\"event_type\":\"").nth(1))
            .filter_map(|r| r.split('"').next())
            .collect();
        assert_eq!(
            kinds,
            ["portal_notify_failed", "portal_expired", "portal_shredded"]
        );
        let report = crate::audit::verify_files(&[dir.path().join("audit.log")]).unwrap();
        assert_eq!(report.lines, 3);
    }
}
