//! Read side of the store: recipients by link token or id, and the decrypted message, whole
//! or chunk by chunk (a download streams; memory stays at one 64 KiB chunk).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{MessageState, RecipientRecord, Store, StoreError, parse_id};
use crate::portal::crypto::Dek;
use crate::portal::phone::Phone;

const RECIPIENT_COLUMNS: &str = "r.id, r.message_id, r.address, r.phone_enc, m.state, m.sender, \
     m.header_message_id, m.created_at, m.expires_at, m.sha256, m.size, m.kek_id, m.dek_wrapped";

type RecipientQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// The recipient (with its message's metadata) whose `column` equals the one parameter to
/// bind; messages still being received are invisible.
fn recipient_query(column: &str) -> RecipientQuery {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECIPIENT_COLUMNS} FROM portal_recipients r JOIN portal_messages m \
         ON m.id = r.message_id WHERE {column} = $1 AND m.state <> 'incoming'"
    )))
}

/// Context of a recipient's encrypted phone number (binds it to its row).
pub(crate) fn phone_context(recipient_id: &str) -> Vec<u8> {
    [b"phone|".as_slice(), recipient_id.as_bytes()].concat()
}

impl Store {
    /// The recipient whose link token hashes to `hash` ([`super::token_hash`]), with its
    /// message's metadata; `None` for an unknown token. Messages still being received are
    /// invisible.
    pub async fn recipient_by_token_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<RecipientRecord>, StoreError> {
        self.one_recipient(recipient_query("r.token_hash").bind(hash.to_vec()))
            .await
    }

    /// A recipient by its id (sessions and codes refer to it).
    pub async fn recipient(&self, id: &str) -> Result<Option<RecipientRecord>, StoreError> {
        self.one_recipient(recipient_query("r.id").bind(id.to_string()))
            .await
    }

    async fn one_recipient(
        &self,
        query: RecipientQuery,
    ) -> Result<Option<RecipientRecord>, StoreError> {
        let row = query.fetch_optional(&self.pool).await?;
        row.map(|r| self.recipient_row(&r)).transpose()
    }

    fn recipient_row(&self, row: &AnyRow) -> Result<RecipientRecord, StoreError> {
        let id: String = row.try_get("id")?;
        let state: String = row.try_get("state")?;
        let state = match state.as_str() {
            "live" => MessageState::Live,
            "revoked" => MessageState::Withdrawn,
            _ => MessageState::Expired,
        };
        let wrapped: Option<Vec<u8>> = row.try_get("dek_wrapped")?;
        let phone_enc: Option<Vec<u8>> = row.try_get("phone_enc")?;
        let phone = match (state, wrapped, phone_enc) {
            (MessageState::Live, Some(w), Some(p)) => {
                let kek_id: String = row.try_get("kek_id")?;
                let dek = self.key.unwrap(&kek_id, &w)?;
                let plain = dek.open_item(&phone_context(&id), &p)?;
                let text = String::from_utf8(plain)
                    .map_err(|_| StoreError::Corrupt("phone not UTF-8".into()))?;
                Some(Phone::parse(&text).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            }
            _ => None,
        };
        let size: i64 = row.try_get("size")?;
        Ok(RecipientRecord {
            id,
            message_id: row.try_get("message_id")?,
            address: row.try_get("address")?,
            phone,
            state,
            sender: row.try_get("sender")?,
            header_message_id: row.try_get("header_message_id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            sha256: row.try_get("sha256")?,
            size: u64::try_from(size).unwrap_or(0),
        })
    }

    /// The message key of a live message.
    pub(crate) async fn message_key(&self, message_id: &str) -> Result<Dek, StoreError> {
        let row = sqlx::query(
            "SELECT kek_id, dek_wrapped FROM portal_messages WHERE id = $1 AND state = 'live'",
        )
        .bind(message_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::Gone(message_id.to_string()));
        };
        let kek_id: String = row.try_get("kek_id")?;
        let wrapped: Option<Vec<u8>> = row.try_get("dek_wrapped")?;
        let wrapped = wrapped.ok_or_else(|| StoreError::Gone(message_id.to_string()))?;
        Ok(self.key.unwrap(&kek_id, &wrapped)?)
    }

    /// A reader over the decrypted chunks of a live message, in order; it fails on a
    /// missing, reordered, tampered or cut-off chunk.
    pub async fn chunks(&self, message_id: &str) -> Result<ChunkReader, StoreError> {
        let id = parse_id(message_id)?;
        let dek = self.message_key(message_id).await?;
        Ok(ChunkReader {
            store: self.clone(),
            message_id: message_id.to_string(),
            id,
            dek,
            next: 0,
            done: false,
        })
    }

    /// The whole decrypted message (the original as delivered, minus a `[sms:…]` subject
    /// tag). Holds it in memory: for pages that parse it; downloads use [`Store::chunks`].
    pub async fn read_message(&self, message_id: &str) -> Result<Vec<u8>, StoreError> {
        let mut reader = self.chunks(message_id).await?;
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// Chunk-by-chunk decryption of one message (see [`Store::chunks`]).
pub struct ChunkReader {
    store: Store,
    message_id: String,
    id: [u8; 16],
    dek: Dek,
    next: i64,
    done: bool,
}

impl ChunkReader {
    /// The next plaintext chunk; `Ok(None)` after the chunk marked last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT c.last, c.data FROM portal_chunks c JOIN portal_messages m \
             ON m.id = c.message_id WHERE c.message_id = $1 AND c.idx = $2 AND m.state = 'live'",
        )
        .bind(self.message_id.clone())
        .bind(self.next)
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else {
            // Missing before the last chunk: truncated, or expired meanwhile.
            return Err(StoreError::Corrupt(format!(
                "chunk {} of {} missing",
                self.next, self.message_id
            )));
        };
        let last: i64 = row.try_get("last")?;
        let data: Vec<u8> = row.try_get("data")?;
        let index = u64::try_from(self.next).unwrap_or(u64::MAX);
        let plain = self.dek.open_chunk(&self.id, index, last != 0, &data)?;
        self.next += 1;
        self.done = last != 0;
        Ok(Some(plain))
    }
}
