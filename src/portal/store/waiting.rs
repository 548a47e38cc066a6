//! Recipients waiting for a number: mail that reached the portal without a mobile number
//! for a recipient (none in the message, the thread or the address book) is stored and
//! waits, instead of bouncing. The sender gets a one-time link to give the number
//! (`ask_*`: sent, claimed and retried like a notification); the link's token is stored
//! as a hash, and sealed with the message key only until that mail went out. `state`: 0
//! waiting, 1 number given (the link is spent), 2 given up after `[portal] number_wait`
//! (the sender is told it was not delivered).

use sqlx::Row;

use super::read::phone_context;
use super::{Store, StoreError, now};
use crate::portal::crypto::{self, Dek};
use crate::portal::phone::Phone;

/// Asks retried per pass, waits given up per pass.
pub const ASK_BATCH: i64 = 50;
pub const GIVE_UP_BATCH: i64 = 200;

pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS portal_waiting (
        recipient_id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        sender TEXT NOT NULL,
        since BIGINT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        token_sealed BLOB,
        ask_pending BIGINT NOT NULL,
        ask_attempts BIGINT NOT NULL DEFAULT 0,
        ask_next BIGINT NOT NULL DEFAULT 0,
        ask_message_id TEXT,
        state BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS portal_waiting_ask ON portal_waiting (ask_message_id)",
    "CREATE INDEX IF NOT EXISTS portal_waiting_state ON portal_waiting (state, since)",
];

fn ask_context(recipient_id: &str) -> Vec<u8> {
    [b"ask|".as_slice(), recipient_id.as_bytes()].concat()
}

/// A waiting recipient, as the sender's link and the periodic pass see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub recipient_id: String,
    pub message_id: String,
    pub address: String,
    pub sender: String,
    pub since: i64,
    /// 0 waiting, 1 number given, 2 given up.
    pub state: i64,
    /// The one-time token (only for an ask still to be sent).
    pub token: Option<String>,
    pub attempts: i64,
    /// `ask_next` as read (the claim compares against it).
    pub ask_next: i64,
}

/// What giving a number found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// Stored; the notification goes out at the next pass.
    Stored,
    /// The link was used before (or the wait was given up): nothing changed.
    Spent,
}

/// Writes the waiting row of a new recipient (in the commit's transaction); returns the
/// one-time token of the sender's link.
#[allow(clippy::too_many_arguments)]
pub(super) async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dek: &Dek,
    recipient_id: &str,
    message_id: &str,
    address: &str,
    sender: &str,
    since: i64,
    claimed_until: i64,
) -> Result<String, StoreError> {
    let token = data_encoding::BASE64URL_NOPAD.encode(&crypto::random_bytes::<32>()?);
    let sealed = dek.seal_item(&ask_context(recipient_id), token.as_bytes())?;
    sqlx::query(
        "INSERT INTO portal_waiting (recipient_id, message_id, address, sender, since, \
         token_hash, token_sealed, ask_pending, ask_next) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8)",
    )
    .bind(recipient_id.to_string())
    .bind(message_id.to_string())
    .bind(address.to_string())
    .bind(sender.to_string())
    .bind(since)
    .bind(super::token_hash(&token).to_vec())
    .bind(sealed)
    .bind(claimed_until)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

const COLUMNS: &str = "w.recipient_id, w.message_id, w.address, w.sender, w.since, w.state, \
     w.token_sealed, w.ask_attempts, w.ask_next, m.kek_id, m.dek_wrapped";

impl Store {
    fn waiting_row(&self, row: &sqlx::any::AnyRow, unseal: bool) -> Result<Waiting, StoreError> {
        let rid: String = row.try_get("recipient_id")?;
        let token = match (
            unseal,
            row.try_get::<Option<Vec<u8>>, _>("token_sealed")?,
            row.try_get::<Option<Vec<u8>>, _>("dek_wrapped")?,
        ) {
            (true, Some(sealed), Some(wrapped)) => {
                let kek: String = row.try_get("kek_id")?;
                let dek = self.key.unwrap(&kek, &wrapped)?;
                Some(
                    String::from_utf8(dek.open_item(&ask_context(&rid), &sealed)?)
                        .map_err(|_| StoreError::Corrupt("ask token".into()))?,
                )
            }
            _ => None,
        };
        Ok(Waiting {
            recipient_id: rid,
            message_id: row.try_get("message_id")?,
            address: row.try_get("address")?,
            sender: row.try_get("sender")?,
            since: row.try_get("since")?,
            state: row.try_get("state")?,
            token,
            attempts: row.try_get("ask_attempts")?,
            ask_next: row.try_get("ask_next")?,
        })
    }

    /// The waiting recipient whose link token hashes to `hash` (any state; its message
    /// live).
    pub async fn waiting_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<Waiting>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portal_waiting w JOIN portal_messages m \
             ON m.id = w.message_id WHERE w.token_hash = $1 AND m.state = 'live'"
        )))
        .bind(hash.to_vec())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.waiting_row(&r, false)).transpose()
    }

    /// The waiting recipient whose ask went out as one of `references`.
    pub async fn waiting_by_ask(
        &self,
        references: &[String],
    ) -> Result<Option<Waiting>, StoreError> {
        for id in references {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM portal_waiting w JOIN portal_messages m \
                 ON m.id = w.message_id WHERE w.ask_message_id = $1 AND m.state = 'live'"
            )))
            .bind(id.clone())
            .fetch_optional(&self.pool)
            .await?;
            if let Some(r) = row {
                return Ok(Some(self.waiting_row(&r, false)?));
            }
        }
        Ok(None)
    }

    /// Asks due at `at`, tokens unsealed.
    pub async fn pending_asks(&self, at: i64) -> Result<Vec<Waiting>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portal_waiting w JOIN portal_messages m \
             ON m.id = w.message_id WHERE w.ask_pending = 1 AND w.state = 0 \
             AND w.ask_next <= $1 AND m.state = 'live' ORDER BY w.ask_next LIMIT $2"
        )))
        .bind(at)
        .bind(ASK_BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.waiting_row(r, true)).collect()
    }

    /// The ask of a recipient this node just stored (claimed until `ask_next`).
    pub async fn ask(&self, recipient_id: &str) -> Result<Option<Waiting>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portal_waiting w JOIN portal_messages m \
             ON m.id = w.message_id WHERE w.recipient_id = $1 AND w.ask_pending = 1 \
             AND w.state = 0 AND m.state = 'live'"
        )))
        .bind(recipient_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.waiting_row(&r, true)).transpose()
    }

    /// Claims an ask read with `ask_next == seen` (as [`Store::claim_notice`]).
    pub async fn claim_ask(&self, rid: &str, seen: i64, at: i64) -> Result<bool, StoreError> {
        self.claim_row(
            "UPDATE portal_waiting SET ask_next = $3 \
             WHERE recipient_id = $1 AND ask_pending = 1 AND ask_next = $2",
            rid,
            seen,
            at,
        )
        .await
    }

    /// The ask went out as `message_id` (without angle brackets; a reply to it can give
    /// the number): its sealed token is erased (only the hash stays).
    pub async fn ask_sent(&self, rid: &str, message_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE portal_waiting SET ask_pending = 0, token_sealed = NULL, \
             ask_message_id = $2 WHERE recipient_id = $1",
        )
        .bind(rid.to_string())
        .bind(message_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn ask_failed(&self, rid: &str, attempts: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE portal_waiting SET ask_attempts = $1, ask_next = $2 WHERE recipient_id = $3",
        )
        .bind(attempts + 1)
        .bind(now() + super::write::notify_backoff(attempts))
        .bind(rid.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The sender gives the number: one time only (state 0 → 1 in the transaction that
    /// seals the number into the recipient and makes its notification due now); when no
    /// recipient of the message waits any more, its receipt becomes due too.
    pub async fn give_number(&self, rid: &str, phone: &Phone) -> Result<Given, StoreError> {
        let Some(r) = self.recipient(rid).await? else {
            return Ok(Given::Spent);
        };
        let dek = match self.message_key(&r.message_id).await {
            Ok(d) => d,
            Err(StoreError::Gone(_)) => return Ok(Given::Spent),
            Err(e) => return Err(e),
        };
        let sealed = dek.seal_item(&phone_context(rid), phone.e164().as_bytes())?;
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE portal_waiting SET state = 1, token_sealed = NULL, ask_pending = 0 \
             WHERE recipient_id = $1 AND state = 0",
        )
        .bind(rid.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done != 1 {
            tx.rollback().await?;
            return Ok(Given::Spent);
        }
        sqlx::query(
            "UPDATE portal_recipients SET phone_enc = $1, notify_pending = 1, notify_next = 0 \
             WHERE id = $2",
        )
        .bind(sealed)
        .bind(rid.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE portal_receipts SET pending = 1, next_at = 0 WHERE message_id = $1 \
             AND NOT EXISTS (SELECT 1 FROM portal_waiting w WHERE w.message_id = $1 \
             AND w.state = 0)",
        )
        .bind(r.message_id.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Given::Stored)
    }

    /// Recipients still waiting since before `before` (the wait is over).
    pub async fn overdue_waiting(&self, before: i64) -> Result<Vec<Waiting>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM portal_waiting w JOIN portal_messages m \
             ON m.id = w.message_id WHERE w.state = 0 AND w.since <= $1 AND m.state = 'live' \
             ORDER BY w.since LIMIT $2"
        )))
        .bind(before)
        .bind(GIVE_UP_BATCH)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.waiting_row(r, false)).collect()
    }

    /// Gives up one wait (state 0 → 2; true for exactly one caller). Returns whether the
    /// message has no recipient left that can ever read it (then the caller shreds it).
    pub async fn give_up(&self, rid: &str) -> Result<Option<bool>, StoreError> {
        let done = sqlx::query(
            "UPDATE portal_waiting SET state = 2, token_sealed = NULL, ask_pending = 0 \
             WHERE recipient_id = $1 AND state = 0",
        )
        .bind(rid.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done != 1 {
            return Ok(None);
        }
        let readable: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM portal_recipients r WHERE r.message_id = \
             (SELECT message_id FROM portal_waiting WHERE recipient_id = $1) \
             AND r.phone_enc IS NOT NULL",
        )
        .bind(rid.to_string())
        .fetch_one(&self.pool)
        .await?;
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM portal_waiting WHERE state = 0 AND message_id = \
             (SELECT message_id FROM portal_waiting WHERE recipient_id = $1)",
        )
        .bind(rid.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(readable == 0 && waiting == 0))
    }

    /// Recipients of message `id` still waiting for a number.
    pub async fn waiting_count(&self, id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM portal_waiting WHERE message_id = $1 AND state = 0",
        )
        .bind(id.to_string())
        .fetch_one(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests;
