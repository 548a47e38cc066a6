//! Withdrawal (revoke) of a stored message, the sender's receipt and first-opened notice
//! bookkeeping, and the administrator's view of the messages (`portal list`).
//!
//! A withdrawal is one transaction: the message key is destroyed (`dek_wrapped` NULL,
//! state `revoked`) together with the `portal_revocations` row that says who and when;
//! the ciphertext goes right after, as at expiry. The audit event is written from that
//! row by whichever process holds the portal's audit log: the web side at once, the
//! periodic pass for `portal revoke` (a separate process cannot append to the portal's
//! hash chain without breaking it). `audited` moves 0 → 1 by a conditional `UPDATE`, so
//! of several nodes exactly one records it.

use sqlx::Row;

use super::{Store, StoreError, now};

/// Retry of a failed receipt: as for notifications.
use super::write::notify_backoff as receipt_backoff;

/// What a withdrawal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Live until now: key destroyed, data deleted.
    Withdrawn,
    AlreadyWithdrawn,
    /// Retention had passed: nothing left to withdraw.
    Expired,
    /// No such message (or still being received).
    Unknown,
}

/// A stored message as the administrator and the receipt see it: metadata only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    pub id: String,
    /// `live`, `waiting` (a recipient still has no number), `revoked` or `expired`.
    pub state: String,
    pub sender: String,
    pub header_message_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub recipients: Vec<String>,
}

/// A receipt still to be sent.
#[derive(Debug, Clone)]
pub struct PendingReceipt {
    pub message: MessageSummary,
    /// Where the receipt goes (the envelope sender, checked to be an address).
    pub sender: String,
    pub attempts: i64,
    /// `next_at` as read: what [`Store::claim_receipt`] compares against.
    pub next_at: i64,
}

/// A withdrawal not yet in the audit log.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub message: MessageSummary,
    pub by: String,
    pub client_address: Option<String>,
    pub revoked_at: i64,
}

/// Receipts retried per pass, revocations audited per pass, rows of `portal list`.
pub const RECEIPT_BATCH: i64 = 50;
pub const REVOCATION_BATCH: i64 = 200;
pub const LIST_LIMIT: i64 = 1000;

/// The envelope sender as a receipt address: `None` for the null sender and for anything
/// that is not one plain address (a receipt is never sent to a list or a header value).
pub fn receipt_address(sender: &str) -> Option<String> {
    let s = sender.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = s.len() <= 254
        && s.matches('@').count() == 1
        && !s.starts_with('@')
        && !s.ends_with('@')
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>,;\"\\()[]".contains(&b));
    ok.then(|| s.to_string())
}

/// `state` is `waiting` for a live message with a recipient still waiting for a number.
const SUMMARY_COLUMNS: &str = "m.id, CASE WHEN m.state = 'live' AND EXISTS (SELECT 1 FROM \
     portal_waiting w WHERE w.message_id = m.id AND w.state = 0) THEN 'waiting' ELSE m.state \
     END AS state, m.sender, m.header_message_id, m.created_at, m.expires_at";

/// A receipt sent: no longer pending.
pub(super) const RECEIPT_SENT: &str =
    "UPDATE portal_receipts SET pending = 0 WHERE message_id = $1";

impl Store {
    /// Withdraws message `id`: `by` (`link`, `administrator …`) and the browser's address
    /// go into the revocation row the audit event is written from.
    pub async fn revoke(
        &self,
        id: &str,
        by: &str,
        client_address: Option<&str>,
    ) -> Result<Revoke, StoreError> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE portal_messages SET dek_wrapped = NULL, state = 'revoked' \
             WHERE id = $1 AND state = 'live'",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 1 {
            sqlx::query(
                "INSERT INTO portal_revocations (message_id, revoked_by, client_address, \
                 revoked_at, audited) VALUES ($1, $2, $3, $4, 0) \
                 ON CONFLICT (message_id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(by.to_string())
            .bind(client_address.map(str::to_string))
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE portal_receipts SET pending = 0 WHERE message_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            // The key is gone (committed); the ciphertext follows.
            self.delete_data(id).await?;
            return Ok(Revoke::Withdrawn);
        }
        tx.rollback().await?;
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM portal_messages WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(match state.as_deref() {
            Some("revoked") => Revoke::AlreadyWithdrawn,
            Some("expired") => Revoke::Expired,
            _ => Revoke::Unknown,
        })
    }

    /// One message by the portal's id.
    pub async fn summary(&self, id: &str) -> Result<Option<MessageSummary>, StoreError> {
        let rows = self
            .summaries(
                "m.id = $1 AND m.state <> 'incoming' LIMIT 1",
                &[id.to_string()],
            )
            .await?;
        Ok(rows.into_iter().next())
    }

    /// The messages `key` names: the portal's id (32 hex digits), else the `Message-ID`
    /// header with or without its angle brackets.
    pub async fn find(&self, key: &str) -> Result<Vec<MessageSummary>, StoreError> {
        let key = key.trim();
        let bare = key.trim_start_matches('<').trim_end_matches('>');
        let hex = key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit());
        if hex {
            return Ok(self
                .summary(&key.to_ascii_lowercase())
                .await?
                .into_iter()
                .collect());
        }
        self.summaries(
            "(m.header_message_id = $1 OR m.header_message_id = $2) AND m.state <> 'incoming' \
             ORDER BY m.created_at LIMIT 100",
            &[bare.to_string(), format!("<{bare}>")],
        )
        .await
    }

    /// The newest messages first, at most [`LIST_LIMIT`].
    pub async fn list(&self) -> Result<Vec<MessageSummary>, StoreError> {
        self.summaries(
            "m.state <> 'incoming' ORDER BY m.created_at DESC LIMIT $1",
            &[],
        )
        .await
    }

    async fn summaries(
        &self,
        filter: &str,
        binds: &[String],
    ) -> Result<Vec<MessageSummary>, StoreError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM portal_messages m WHERE {filter}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(b.clone());
        }
        if binds.is_empty() {
            q = q.bind(LIST_LIMIT);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get("id")?;
            let recipients: Vec<String> = sqlx::query_scalar(
                "SELECT address FROM portal_recipients WHERE message_id = $1 ORDER BY address",
            )
            .bind(id.clone())
            .fetch_all(&self.pool)
            .await?;
            out.push(MessageSummary {
                id,
                state: row.try_get("state")?,
                sender: row.try_get("sender")?,
                header_message_id: row.try_get("header_message_id")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                recipients,
            });
        }
        Ok(out)
    }

    /// Withdrawals not yet audited (oldest first).
    pub async fn unaudited_revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT message_id, revoked_by, client_address, revoked_at FROM portal_revocations \
             WHERE audited = 0 ORDER BY revoked_at LIMIT $1",
        )
        .bind(REVOCATION_BATCH)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("message_id")?;
            let Some(message) = self.summary(&id).await? else {
                continue;
            };
            out.push(Revocation {
                message,
                by: row.try_get("revoked_by")?,
                client_address: row.try_get("client_address")?,
                revoked_at: row.try_get("revoked_at")?,
            });
        }
        Ok(out)
    }

    /// Takes the audit of a withdrawal (true: this process writes the event; `audited`
    /// back to 0 with [`Store::unclaim_revocation_audit`] if it could not).
    pub async fn claim_revocation_audit(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE portal_revocations SET audited = 1 WHERE message_id = $1 AND audited = 0",
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    pub async fn unclaim_revocation_audit(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_revocations SET audited = 0 WHERE message_id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Receipts due at `at` for live messages.
    pub async fn pending_receipts(&self, at: i64) -> Result<Vec<PendingReceipt>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.message_id, t.sender, t.attempts, t.next_at FROM portal_receipts t \
             JOIN portal_messages m ON m.id = t.message_id \
             WHERE t.pending = 1 AND t.next_at <= $1 AND m.state = 'live' \
             ORDER BY t.next_at LIMIT $2",
        )
        .bind(at)
        .bind(RECEIPT_BATCH)
        .fetch_all(&self.pool)
        .await?;
        self.receipt_rows(rows).await
    }

    /// The receipt of `id` as stored at intake (claimed by the storing node until
    /// `next_at`), if one is to be sent.
    pub async fn receipt(&self, id: &str) -> Result<Option<PendingReceipt>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.message_id, t.sender, t.attempts, t.next_at FROM portal_receipts t \
             WHERE t.message_id = $1 AND t.pending = 1",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(self.receipt_rows(rows).await?.into_iter().next())
    }

    /// Receipt rows with their messages (a row whose message is gone is left out).
    async fn receipt_rows(
        &self,
        rows: Vec<sqlx::any::AnyRow>,
    ) -> Result<Vec<PendingReceipt>, StoreError> {
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("message_id")?;
            let Some(message) = self.summary(&id).await? else {
                continue;
            };
            out.push(PendingReceipt {
                message,
                sender: row.try_get("sender")?,
                attempts: row.try_get("attempts")?,
                next_at: row.try_get("next_at")?,
            });
        }
        Ok(out)
    }

    /// Claims the receipt of `id` read with `next_at == seen` (as
    /// [`Store::claim_notice`]): true, this node sends it now.
    pub async fn claim_receipt(&self, id: &str, seen: i64, at: i64) -> Result<bool, StoreError> {
        self.claim_row(
            "UPDATE portal_receipts SET next_at = $3 \
             WHERE message_id = $1 AND pending = 1 AND next_at = $2",
            id,
            seen,
            at,
        )
        .await
    }

    pub async fn receipt_sent(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(RECEIPT_SENT)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn receipt_failed(&self, id: &str, attempts: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE portal_receipts SET attempts = $1, next_at = $2 WHERE message_id = $3")
            .bind(attempts + 1)
            .bind(now() + receipt_backoff(attempts))
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The first-opened notice of `id`: true once, for the first caller on any node;
    /// false when it was taken before or the message has no sender to tell.
    pub async fn claim_opened_notice(&self, id: &str) -> Result<Option<String>, StoreError> {
        let done = sqlx::query(
            "UPDATE portal_receipts SET opened = 1 WHERE message_id = $1 AND opened = 0",
        )
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok(None);
        }
        Ok(
            sqlx::query_scalar("SELECT sender FROM portal_receipts WHERE message_id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
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
    use crate::portal::store::{MessageState, NewRecipient};

    async fn store(dir: &std::path::Path) -> Store {
        let at = StoreLocation::Sqlite(dir.join("p.db"));
        Store::open(&at, Arc::new(MasterKey::from_bytes(&[7; 32])))
            .await
            .unwrap()
    }

    async fn stored(s: &Store, sender: &str, mid: &str) -> (String, String) {
        let mut i = s
            .begin(sender, Some(mid), Duration::from_secs(3600))
            .await
            .unwrap();
        i.write(format!("Message-ID: {mid}\r\n\r\nbody\r\n").as_bytes())
            .await
            .unwrap();
        let r = i
            .commit(&[NewRecipient {
                address: "patient@example.org".into(),
                phone: Phone::parse("+31612345678").unwrap(),
            }])
            .await
            .unwrap();
        (r[0].message_id.clone(), r[0].token.clone().unwrap())
    }

    #[test]
    fn receipt_addresses_are_plain_single_addresses() {
        assert_eq!(
            receipt_address("<arts@zkh.nl>").as_deref(),
            Some("arts@zkh.nl")
        );
        for bad in [
            "", "<>", "a@b@c", "@zkh.nl", "arts@", "-f@x", "a b@x", "a@x,b@y", "a\n@x",
        ] {
            assert_eq!(receipt_address(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn revoke_destroys_the_key_once_and_is_audited_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let (id, token) = stored(&s, "arts@zkh.nl", "<m1@zkh.nl>").await;
        assert_eq!(
            s.revoke(&id, "link", Some("10.1.2.3")).await.unwrap(),
            Revoke::Withdrawn
        );
        assert_eq!(
            s.revoke(&id, "link", None).await.unwrap(),
            Revoke::AlreadyWithdrawn
        );
        assert_eq!(
            s.revoke(&"0".repeat(32), "link", None).await.unwrap(),
            Revoke::Unknown
        );
        // Key gone, data gone, the link shows it as withdrawn.
        assert!(s.read_message(&id).await.is_err());
        let r = s
            .recipient_by_token_hash(&crate::portal::store::token_hash(&token))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.state, MessageState::Withdrawn);
        assert!(r.phone.is_none());
        let chunks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM portal_chunks")
            .fetch_one(s.pool())
            .await
            .unwrap();
        assert_eq!(chunks, 0);
        // The receipt is no longer pending; the revocation waits for its audit, once.
        assert!(s.receipt(&id).await.unwrap().is_none());
        let todo = s.unaudited_revocations().await.unwrap();
        assert_eq!(todo.len(), 1);
        assert_eq!(todo[0].client_address.as_deref(), Some("10.1.2.3"));
        assert!(s.claim_revocation_audit(&id).await.unwrap());
        assert!(!s.claim_revocation_audit(&id).await.unwrap());
        assert!(s.unaudited_revocations().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn find_by_id_or_message_id_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path()).await;
        let (a, _) = stored(&s, "arts@zkh.nl", "<a@zkh.nl>").await;
        let (b, _) = stored(&s, "", "<b@zkh.nl>").await;
        assert_eq!(s.find(&a).await.unwrap()[0].id, a);
        assert_eq!(s.find(&a.to_ascii_uppercase()).await.unwrap()[0].id, a);
        assert_eq!(s.find("b@zkh.nl").await.unwrap()[0].id, b);
        assert_eq!(s.find("<b@zkh.nl>").await.unwrap()[0].id, b);
        assert!(s.find("nope@zkh.nl").await.unwrap().is_empty());
        let all = s.list().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].recipients, vec!["patient@example.org".to_string()]);
        // The null sender gets no receipt; a real one exactly one, claimed once.
        assert!(s.receipt(&b).await.unwrap().is_none());
        let r = s.receipt(&a).await.unwrap().unwrap();
        assert_eq!(r.sender, "arts@zkh.nl");
        assert!(s.claim_receipt(&a, r.next_at, now()).await.unwrap());
        assert!(!s.claim_receipt(&a, r.next_at, now()).await.unwrap());
        s.receipt_sent(&a).await.unwrap();
        assert!(s.receipt(&a).await.unwrap().is_none());
        // The first-opened notice: once.
        assert_eq!(
            s.claim_opened_notice(&a).await.unwrap().as_deref(),
            Some("arts@zkh.nl")
        );
        assert_eq!(s.claim_opened_notice(&a).await.unwrap(), None);
        assert_eq!(s.claim_opened_notice(&b).await.unwrap(), None);
    }
}
