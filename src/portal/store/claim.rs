//! Work that several portal nodes on one database must do once, not once per node.
//!
//! Two mechanisms, both plain conditional SQL in the store's one dialect (so SQLite, with
//! a single node, runs the same code):
//!
//! - A **lease** (`portal_leases`) for a whole job: the expiry pass runs on the node that
//!   holds it; the holder renews it at every pass, and another node takes over only after
//!   it lapsed (the holder died) or was released (the holder stopped).
//! - A **claim** on one notification: `notify_next` moved forward by a compare-and-set,
//!   so exactly one node sends it; a node that dies while holding it leaves a claim that
//!   lapses after [`NOTIFY_CLAIM`] and another node sends it then.
//!
//! Times are the nodes' own clocks (unix seconds): nodes must keep them in step (NTP);
//! a skew far below the lease lengths is harmless.

use super::{Store, StoreError};

/// How long a node owns a notification it is about to send: several times the longest
/// submission (`crate::portal::submit::SUBMIT_TIMEOUT`), so a live node's attempt is
/// never taken over.
pub const NOTIFY_CLAIM: i64 = 600;

/// Whether a claim this node wrote, lasting until `claimed_until`, is still its own at
/// `at` with at least half its time left. No node takes a claim before it lapses (every
/// claim is a compare-and-set on a due row), so the node that stored a message sends
/// its notification and receipt on the claim it stored, without claiming again (one
/// commit and fsync less each).
pub fn still_own_claim(claimed_until: i64, at: i64) -> bool {
    at.saturating_add(NOTIFY_CLAIM / 2) <= claimed_until
}

impl Store {
    /// Takes or renews lease `name` for `holder` until `until`, if it is free at `at`
    /// (never taken, lapsed, released) or already `holder`'s. One statement: of two nodes
    /// racing for a free lease exactly one gets it.
    pub async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        at: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO portal_leases (name, holder, held_until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             held_until = excluded.held_until \
             WHERE portal_leases.held_until <= $4 OR portal_leases.holder = excluded.holder",
        )
        .bind(name.to_string())
        .bind(holder.to_string())
        .bind(until)
        .bind(at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Gives lease `name` up if `holder` has it (at a clean stop: the next node need not
    /// wait for it to lapse).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_leases SET held_until = 0 WHERE name = $1 AND holder = $2")
            .bind(name.to_string())
            .bind(holder.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Claims the pending notification of `recipient_id` whose `notify_next` this node
    /// read as `seen`: moves it to `at + NOTIFY_CLAIM` (at least `seen + 1`) only if
    /// nobody moved it since.
    /// True: this node sends it now (and records the outcome); false: another node has
    /// it, or it was sent or expired meanwhile.
    pub async fn claim_notice(
        &self,
        recipient_id: &str,
        seen: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.claim_row(
            "UPDATE portal_recipients SET notify_next = $3 \
             WHERE id = $1 AND notify_pending = 1 AND notify_next = $2",
            recipient_id,
            seen,
            at,
        )
        .await
    }

    /// The compare-and-set of every per-mail claim (notification, receipt, number
    /// request): `sql` moves row `$1`'s "next" time from `$2` (`seen`, as read) to `$3`
    /// while it is pending. True for exactly one caller.
    pub(super) async fn claim_row(
        &self,
        sql: &'static str,
        id: &str,
        seen: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(sql)
            .bind(id.to_string())
            .bind(seen)
            // Strictly after `seen`, so that a second claim on the same reading never
            // matches (two claims within the same second).
            .bind(at.saturating_add(NOTIFY_CLAIM).max(seen.saturating_add(1)))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::portal::StoreLocation;
    use crate::portal::crypto::MasterKey;
    use crate::portal::phone::Phone;
    use crate::portal::store::NewRecipient;

    #[test]
    fn a_stored_claim_is_kept_for_half_its_time() {
        let t = 1_000_000;
        assert!(still_own_claim(t + NOTIFY_CLAIM, t));
        assert!(still_own_claim(t + NOTIFY_CLAIM, t + NOTIFY_CLAIM / 2));
        assert!(!still_own_claim(t + NOTIFY_CLAIM, t + NOTIFY_CLAIM / 2 + 1));
        assert!(!still_own_claim(0, t));
    }

    /// Two "nodes": two stores (two pools) on one database file.
    async fn two_nodes(dir: &std::path::Path) -> (Store, Store) {
        let at = StoreLocation::Sqlite(dir.join("p.db"));
        let key = Arc::new(MasterKey::from_bytes(&[9; 32]));
        (
            Store::open(&at, key.clone()).await.unwrap(),
            Store::open(&at, key).await.unwrap(),
        )
    }

    #[test]
    fn claim_outlasts_a_sendmail_run() {
        assert_eq!(NOTIFY_CLAIM, 600);
        assert!(NOTIFY_CLAIM >= 5 * crate::portal::submit::SUBMIT_TIMEOUT.as_secs() as i64);
    }

    #[tokio::test]
    async fn one_lease_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_nodes(dir.path()).await;
        let t = 1_000;
        assert!(a.try_lease("expiry", "A", t, t + 100).await.unwrap());
        // Held: B is refused, A renews.
        assert!(!b.try_lease("expiry", "B", t + 50, t + 150).await.unwrap());
        assert!(a.try_lease("expiry", "A", t + 60, t + 160).await.unwrap());
        assert!(!b.try_lease("expiry", "B", t + 120, t + 220).await.unwrap());
        // Another job is independent.
        assert!(b.try_lease("other", "B", t, t + 100).await.unwrap());
        // Lapsed (A died): B takes over, and A, back, is refused.
        assert!(b.try_lease("expiry", "B", t + 160, t + 260).await.unwrap());
        assert!(!a.try_lease("expiry", "A", t + 170, t + 270).await.unwrap());
        // Released by someone else: no effect; by the holder: free at once.
        a.release_lease("expiry", "A").await.unwrap();
        assert!(!a.try_lease("expiry", "A", t + 171, t + 271).await.unwrap());
        b.release_lease("expiry", "B").await.unwrap();
        assert!(a.try_lease("expiry", "A", t + 172, t + 272).await.unwrap());
    }

    #[tokio::test]
    async fn a_notification_is_claimed_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_nodes(dir.path()).await;
        let mut m = a
            .begin("s@zkh.example", None, Duration::from_secs(3600))
            .await
            .unwrap();
        m.write(b"Subject: x\r\n\r\nx\r\n").await.unwrap();
        let stored = m
            .commit(&[NewRecipient {
                address: "p@x.example".into(),
                phone: Phone::parse("0612345678").unwrap(),
            }])
            .await
            .unwrap();
        let r = &stored[0];
        let created = r.notify_next - NOTIFY_CLAIM;
        // Stored already claimed by the intake: no other node sees it due yet.
        assert!(b.pending_notices(created, 10).await.unwrap().is_empty());
        // The intake's own claim (compare-and-set on what it inserted) wins once.
        assert!(
            a.claim_notice(&r.recipient_id, r.notify_next, created)
                .await
                .unwrap()
        );
        assert!(
            !a.claim_notice(&r.recipient_id, r.notify_next, created)
                .await
                .unwrap()
        );
        // The intake died: after the claim lapsed both nodes see it due; one claims it.
        let later = created + 2 * NOTIFY_CLAIM;
        let seen_a = a.pending_notices(later, 10).await.unwrap();
        let seen_b = b.pending_notices(later, 10).await.unwrap();
        assert_eq!((seen_a.len(), seen_b.len()), (1, 1));
        let won_b = b
            .claim_notice(&r.recipient_id, seen_b[0].notify_next, later)
            .await
            .unwrap();
        let won_a = a
            .claim_notice(&r.recipient_id, seen_a[0].notify_next, later)
            .await
            .unwrap();
        assert!(won_b && !won_a);
        assert!(a.pending_notices(later, 10).await.unwrap().is_empty());
        // Sent: never claimable again.
        b.mark_notified(&r.recipient_id).await.unwrap();
        let far = later + 10 * NOTIFY_CLAIM;
        assert!(a.pending_notices(far, 10).await.unwrap().is_empty());
        assert!(
            !a.claim_notice(&r.recipient_id, later + NOTIFY_CLAIM, far)
                .await
                .unwrap()
        );
    }
}
