//! Write side of the store: a message streams in chunk by chunk (`Incoming`, invisible
//! while `incoming`), and one transaction makes it `live` together with its recipients;
//! then the notifications' bookkeeping and retention.
//!
//! Durability: the 250 of LMTP is given only after [`Incoming::commit`] returned, and that
//! is one transaction (SQLite `synchronous=FULL`, PostgreSQL's default `fsync`); for a
//! message of one chunk it is the only write. A crash before it leaves nothing, or (after a
//! first full chunk) an `incoming` row that [`Store::sweep_incoming`] removes; nothing of
//! it was ever visible.

use std::time::Duration;

use aws_lc_rs::digest;
use sqlx::Row;

use super::read::phone_context;
use super::{Store, StoreError, hex_id, now};
use crate::portal::crypto::{self, CHUNK_SIZE, Dek};
use crate::portal::phone::Phone;

/// Label of the dedup keyed hash (content digest ‖ recipient).
const DEDUP_LABEL: &[u8] = b"dedup";
/// A notification sent: no longer pending, its sealed token erased.
const MARK_NOTIFIED: &str =
    "UPDATE portal_recipients SET notify_pending = 0, token_sealed = NULL WHERE id = $1";
/// Retry of a failed notification: doubling from one minute, at most hourly.
const NOTIFY_RETRY_FIRST: i64 = 60;
const NOTIFY_RETRY_MAX: i64 = 3600;

fn token_context(recipient_id: &str) -> Vec<u8> {
    [b"token|".as_slice(), recipient_id.as_bytes()].concat()
}

/// The wait before notification attempt `attempts + 1`.
pub fn notify_backoff(attempts: i64) -> i64 {
    let shift = attempts.clamp(0, 16) as u32;
    (NOTIFY_RETRY_FIRST << shift).min(NOTIFY_RETRY_MAX)
}

/// A recipient to store with the message.
#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub address: String,
    pub phone: Phone,
}

/// The outcome for one recipient of a commit.
#[derive(Debug, Clone)]
pub struct StoredRecipient {
    pub address: String,
    pub recipient_id: String,
    pub message_id: String,
    /// The link token (base64url) of a newly stored recipient; `None` for a redelivery
    /// (`duplicate`), whose first copy has its own token and notification.
    pub token: Option<String>,
    pub duplicate: bool,
    /// `None`: waiting for the number (no notification until the sender gives it).
    pub phone: Option<Phone>,
    /// Until when the storing node holds the claim on the notification (it is stored
    /// claimed, so no other node's retry sends it meanwhile); what
    /// [`Store::claim_notice`] compares against. 0 for a duplicate.
    pub notify_next: i64,
    /// The one-time token of the sender's link to give the number (waiting recipients).
    pub ask_token: Option<String>,
}

/// A notification still to be sent (its token kept sealed until then).
#[derive(Debug, Clone)]
pub struct PendingNotice {
    pub recipient_id: String,
    pub message_id: String,
    pub address: String,
    pub token: String,
    pub phone: Phone,
    pub attempts: i64,
    /// `notify_next` as read: what [`Store::claim_notice`] compares against.
    pub notify_next: i64,
}

/// A message being received.
pub struct Incoming {
    store: Store,
    id: [u8; 16],
    id_hex: String,
    dek: Dek,
    next: u64,
    buf: Vec<u8>,
    sha: digest::Context,
    size: u64,
    /// The envelope sender: the receipt goes there (`portal_receipts`).
    sender: String,
    /// The `incoming` row, written with the first full chunk (a message of one chunk,
    /// most of them, is written whole in the commit's one transaction: one fsync, not
    /// three). `None` once written.
    row: Option<IncomingRow>,
}

/// What `portal_messages` gets for a message being received.
struct IncomingRow {
    header_message_id: Option<String>,
    created: i64,
    expires: i64,
    kek_id: String,
    wrapped: Vec<u8>,
}

impl IncomingRow {
    async fn insert<'c, E>(&self, ex: E, id: &str, sender: &str) -> Result<(), StoreError>
    where
        E: sqlx::Executor<'c, Database = sqlx::Any>,
    {
        sqlx::query(
            "INSERT INTO portal_messages (id, state, sender, header_message_id, created_at, \
             expires_at, kek_id, dek_wrapped) VALUES ($1, 'incoming', $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(sender.to_string())
        .bind(self.header_message_id.clone())
        .bind(self.created)
        .bind(self.expires)
        .bind(self.kek_id.clone())
        .bind(self.wrapped.clone())
        .execute(ex)
        .await?;
        Ok(())
    }
}

async fn insert_chunk<'c, E>(
    ex: E,
    id: &str,
    idx: u64,
    last: bool,
    sealed: Vec<u8>,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    sqlx::query("INSERT INTO portal_chunks (message_id, idx, last, data) VALUES ($1, $2, $3, $4)")
        .bind(id.to_string())
        .bind(i64::try_from(idx).unwrap_or(i64::MAX))
        .bind(i64::from(last))
        .bind(sealed)
        .execute(ex)
        .await?;
    Ok(())
}

impl Store {
    /// Starts a message: a fresh key, wrapped; its `incoming` row is written with the
    /// first full chunk or at the commit, whichever comes first.
    pub async fn begin(
        &self,
        sender: &str,
        header_message_id: Option<&str>,
        retention: Duration,
    ) -> Result<Incoming, StoreError> {
        let id = crypto::new_message_id()?;
        let id_hex = hex_id(&id);
        let dek = Dek::generate()?;
        let wrapped = self.key.wrap(&dek)?;
        let created = now();
        let expires =
            created.saturating_add(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
        Ok(Incoming {
            store: self.clone(),
            id,
            id_hex,
            dek,
            next: 0,
            buf: Vec::with_capacity(CHUNK_SIZE + 1),
            sha: digest::Context::new(&digest::SHA256),
            size: 0,
            sender: sender.to_string(),
            row: Some(IncomingRow {
                header_message_id: header_message_id.map(str::to_string),
                created,
                expires,
                kek_id: self.key.id().to_string(),
                wrapped,
            }),
        })
    }

    /// Marks a notification sent and erases its sealed token.
    pub async fn mark_notified(&self, recipient_id: &str) -> Result<(), StoreError> {
        sqlx::query(MARK_NOTIFIED)
            .bind(recipient_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the notifications of `recipients` sent (their sealed tokens erased) and, when
    /// given, the receipt of message `receipt`: in one transaction, so the intake's
    /// bookkeeping after a message costs one commit.
    pub async fn mark_sent(
        &self,
        recipients: &[String],
        receipt: Option<&str>,
    ) -> Result<(), StoreError> {
        if recipients.is_empty() && receipt.is_none() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for id in recipients {
            sqlx::query(MARK_NOTIFIED)
                .bind(id.clone())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(id) = receipt {
            sqlx::query(super::revoke::RECEIPT_SENT)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed notification attempt; the retry waits [`notify_backoff`].
    pub async fn notify_failed(&self, recipient_id: &str) -> Result<(), StoreError> {
        let row = sqlx::query("SELECT notify_attempts FROM portal_recipients WHERE id = $1")
            .bind(recipient_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let attempts: i64 = match row {
            Some(r) => r.try_get("notify_attempts")?,
            None => return Ok(()),
        };
        sqlx::query(
            "UPDATE portal_recipients SET notify_attempts = $1, notify_next = $2 WHERE id = $3",
        )
        .bind(attempts + 1)
        .bind(now() + notify_backoff(attempts))
        .bind(recipient_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Notifications due at `at` (at most `limit`), tokens unsealed.
    pub async fn pending_notices(
        &self,
        at: i64,
        limit: i64,
    ) -> Result<Vec<PendingNotice>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.message_id, r.address, r.phone_enc, r.token_sealed, \
             r.notify_attempts, r.notify_next, m.kek_id, m.dek_wrapped FROM portal_recipients r \
             JOIN portal_messages m ON m.id = r.message_id \
             WHERE r.notify_pending = 1 AND r.notify_next <= $1 AND m.state = 'live' \
             ORDER BY r.notify_next LIMIT $2",
        )
        .bind(at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let kek_id: String = row.try_get("kek_id")?;
            let (Some(wrapped), Some(sealed), Some(phone)) = (
                row.try_get::<Option<Vec<u8>>, _>("dek_wrapped")?,
                row.try_get::<Option<Vec<u8>>, _>("token_sealed")?,
                row.try_get::<Option<Vec<u8>>, _>("phone_enc")?,
            ) else {
                continue;
            };
            let dek = self.key.unwrap(&kek_id, &wrapped)?;
            let token = String::from_utf8(dek.open_item(&token_context(&id), &sealed)?)
                .map_err(|_| StoreError::Corrupt("token".into()))?;
            let phone = String::from_utf8(dek.open_item(&phone_context(&id), &phone)?)
                .map_err(|_| StoreError::Corrupt("phone".into()))?;
            out.push(PendingNotice {
                message_id: row.try_get("message_id")?,
                address: row.try_get("address")?,
                phone: Phone::parse(&phone).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                attempts: row.try_get("notify_attempts")?,
                notify_next: row.try_get("notify_next")?,
                recipient_id: id,
                token,
            });
        }
        Ok(out)
    }

    /// Live messages whose retention ended at `at`: (id, sha256, recipient count).
    pub async fn expired_messages(
        &self,
        at: i64,
        limit: i64,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.sha256, (SELECT COUNT(*) FROM portal_recipients r \
             WHERE r.message_id = m.id) AS n FROM portal_messages m \
             WHERE m.state = 'live' AND m.expires_at <= $1 ORDER BY m.expires_at LIMIT $2",
        )
        .bind(at)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("sha256")?, r.try_get("n")?)))
            .collect()
    }

    /// Expires one message: the wrapped key is destroyed and committed FIRST (from then on
    /// nothing can be decrypted, even if the rest fails), then the ciphertext and the
    /// encrypted per-recipient data are deleted. Returns false if it was not live.
    pub async fn shred(&self, message_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE portal_messages SET dek_wrapped = NULL, state = 'expired' \
             WHERE id = $1 AND state = 'live'",
        )
        .bind(message_id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.delete_data(message_id).await?;
        Ok(done > 0)
    }

    pub(super) async fn delete_data(&self, message_id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM portal_chunks WHERE message_id = $1")
            .bind(message_id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE portal_recipients SET phone_enc = NULL, token_sealed = NULL, \
             notify_pending = 0 WHERE message_id = $1",
        )
        .bind(message_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes messages left `incoming` by an intake that died before `before` (unix s).
    pub async fn sweep_incoming(&self, before: i64) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM portal_messages WHERE state = 'incoming' AND created_at < $1",
        )
        .bind(before)
        .fetch_all(&self.pool)
        .await?;
        let mut n = 0;
        for row in rows {
            let id: String = row.try_get("id")?;
            self.drop_incoming(&id).await?;
            n += 1;
        }
        Ok(n)
    }

    async fn drop_incoming(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM portal_chunks WHERE message_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM portal_messages WHERE id = $1 AND state = 'incoming'")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Incoming {
    pub fn message_id(&self) -> &str {
        &self.id_hex
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends message bytes; full chunks are encrypted and written at once.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.sha.update(bytes);
        self.size += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        // Only a chunk followed by more bytes is known not to be the last one.
        while self.buf.len() > CHUNK_SIZE {
            let rest = self.buf.split_off(CHUNK_SIZE);
            let chunk = std::mem::replace(&mut self.buf, rest);
            self.put_chunk(&chunk).await?;
        }
        Ok(())
    }

    /// A full chunk that is not the last: on its own (a message of many chunks is never
    /// held whole), after the `incoming` row that the sweep of abandoned intakes finds.
    async fn put_chunk(&mut self, plain: &[u8]) -> Result<(), StoreError> {
        if let Some(row) = &self.row {
            row.insert(&self.store.pool, &self.id_hex, &self.sender)
                .await?;
            self.row = None;
        }
        let sealed = self.dek.seal_chunk(&self.id, self.next, false, plain)?;
        insert_chunk(&self.store.pool, &self.id_hex, self.next, false, sealed).await?;
        self.next += 1;
        Ok(())
    }

    /// Writes the last chunk and, in one transaction, the recipients and the `live` state.
    /// A recipient whose (content, address) was stored before comes back `duplicate` and
    /// is not stored again; when all are duplicates the new copy is dropped.
    pub async fn commit(
        self,
        recipients: &[NewRecipient],
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        self.commit_waiting(recipients, &[]).await
    }

    /// [`Incoming::commit`], and `waiting` recipients without a number: stored without one
    /// and without a notification, each with a one-time link for the sender to give the
    /// number (`store::waiting`); the receipt waits until every number is there.
    pub async fn commit_waiting(
        mut self,
        recipients: &[NewRecipient],
        waiting: &[String],
    ) -> Result<Vec<StoredRecipient>, StoreError> {
        let tail = std::mem::take(&mut self.buf);
        let sealed = self.dek.seal_chunk(&self.id, self.next, true, &tail)?;
        let sha = std::mem::replace(&mut self.sha, digest::Context::new(&digest::SHA256)).finish();
        let sha_hex = hex_id(sha.as_ref());
        let created = now();
        let claimed_until = created.saturating_add(super::claim::NOTIFY_CLAIM);
        let mut tx = self.store.pool.begin().await?;
        let row_was_written = self.row.is_none();
        if let Some(row) = self.row.take() {
            row.insert(&mut *tx, &self.id_hex, &self.sender).await?;
        }
        insert_chunk(&mut *tx, &self.id_hex, self.next, true, sealed).await?;
        self.next += 1;
        let mut out = Vec::new();
        let all = recipients
            .iter()
            .map(|r| (r.address.clone(), Some(r.phone.clone())))
            .chain(waiting.iter().map(|a| (a.clone(), None)));
        for (rcpt_address, rcpt_phone) in all {
            let address = rcpt_address.to_ascii_lowercase();
            let dedup = self
                .store
                .key
                .keyed_hash(DEDUP_LABEL, &[sha.as_ref(), address.as_bytes()]);
            let rid = hex_id(&crypto::random_bytes::<16>()?);
            let token_bytes = crypto::random_bytes::<32>()?;
            let token = data_encoding::BASE64URL_NOPAD.encode(&token_bytes);
            let phone_enc = match &rcpt_phone {
                Some(p) => Some(
                    self.dek
                        .seal_item(&phone_context(&rid), p.e164().as_bytes())?,
                ),
                None => None,
            };
            let sealed = self.dek.seal_item(&token_context(&rid), token.as_bytes())?;
            let inserted = sqlx::query(
                "INSERT INTO portal_recipients (id, message_id, address, phone_enc, token_hash, \
                 token_sealed, notify_pending, notify_attempts, notify_next, dedup, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $10, 0, $9, $7, $8) ON CONFLICT (dedup) DO NOTHING",
            )
            .bind(rid.clone())
            .bind(self.id_hex.clone())
            .bind(rcpt_address.clone())
            .bind(phone_enc)
            .bind(super::token_hash(&token).to_vec())
            .bind(sealed)
            .bind(dedup.to_vec())
            .bind(created)
            .bind(claimed_until)
            .bind(i64::from(rcpt_phone.is_some()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                let ask_token = if rcpt_phone.is_none() {
                    Some(
                        super::waiting::insert(
                            &mut tx,
                            &self.dek,
                            &rid,
                            &self.id_hex,
                            &rcpt_address,
                            &self.sender,
                            created,
                            claimed_until,
                        )
                        .await?,
                    )
                } else {
                    None
                };
                out.push(StoredRecipient {
                    address: rcpt_address.clone(),
                    recipient_id: rid,
                    message_id: self.id_hex.clone(),
                    token: Some(token),
                    duplicate: false,
                    phone: rcpt_phone.clone(),
                    notify_next: claimed_until,
                    ask_token,
                });
            } else {
                let row =
                    sqlx::query("SELECT id, message_id FROM portal_recipients WHERE dedup = $1")
                        .bind(dedup.to_vec())
                        .fetch_one(&mut *tx)
                        .await?;
                out.push(StoredRecipient {
                    address: rcpt_address.clone(),
                    recipient_id: row.try_get("id")?,
                    message_id: row.try_get("message_id")?,
                    token: None,
                    duplicate: true,
                    phone: rcpt_phone.clone(),
                    notify_next: 0,
                    ask_token: None,
                });
            }
        }
        if out.iter().any(|r| !r.duplicate) {
            sqlx::query(
                "UPDATE portal_messages SET state = 'live', sha256 = $1, size = $2, chunks = $3 \
                 WHERE id = $4 AND state = 'incoming'",
            )
            .bind(sha_hex)
            .bind(i64::try_from(self.size).unwrap_or(i64::MAX))
            .bind(i64::try_from(self.next).unwrap_or(i64::MAX))
            .bind(self.id_hex.clone())
            .execute(&mut *tx)
            .await?;
            // The sender's receipt, claimed by this node like the notifications.
            if let Some(sender) = super::revoke::receipt_address(&self.sender) {
                sqlx::query(
                    "INSERT INTO portal_receipts (message_id, sender, pending, next_at) \
                     VALUES ($1, $2, $4, $3) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(self.id_hex.clone())
                .bind(sender)
                .bind(claimed_until)
                // Waiting for a number: the receipt goes once the last number is given.
                .bind(i64::from(!out.iter().any(|r| r.ask_token.is_some())))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        } else {
            // A redelivery for every recipient: the earlier copy stands.
            tx.rollback().await?;
            if row_was_written {
                self.store.drop_incoming(&self.id_hex).await?;
            }
        }
        Ok(out)
    }

    /// Abandons the message (size limit, client gone, store error): best-effort removal
    /// now; what remains is swept later, and was never visible.
    pub async fn abort(self) {
        if self.row.is_some() {
            return; // nothing of it was written
        }
        let _ = self.store.drop_incoming(&self.id_hex).await;
    }

    /// The SHA-256 (hex) of the bytes written so far, without finishing.
    pub fn sha256_so_far(&self) -> String {
        hex_id(self.sha.clone().finish().as_ref())
    }
}
