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
