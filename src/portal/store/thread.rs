//! Replies and threads: a recipient's reply through the page is recorded by its
//! `Message-ID`; when the clinician answers it, the answer (its `In-Reply-To` or
//! `References`) is taken in for the same recipient, with the number of the message the
//! reply was about, and recorded as part of that thread.

use sqlx::Row;

use super::{Store, StoreError, now};
use crate::portal::phone::Phone;

/// Replies one recipient may send for one message: every reply is a mail the portal
/// submits, so an authenticated visitor must not be able to make it send without end.
pub const MAX_REPLIES_PER_RECIPIENT: i64 = 20;

/// What an answer's references found: the number to send the code to and the message
/// it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMatch {
    pub phone: Phone,
    pub parent: String,
}

impl Store {
    /// Replies `recipient_id` has sent.
    pub async fn replies_sent(&self, recipient_id: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM portal_replies WHERE recipient_id = $1")
                .bind(recipient_id.to_string())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Records a reply (its `Message-ID` without angle brackets) once it was submitted.
    pub async fn record_reply(
        &self,
        reply_message_id: &str,
        message_id: &str,
        recipient_id: &str,
        size: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO portal_replies (reply_message_id, message_id, recipient_id, size, \
             created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (reply_message_id) DO NOTHING",
        )
        .bind(reply_message_id.to_string())
        .bind(message_id.to_string())
        .bind(recipient_id.to_string())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The thread an answer for `address` belongs to: the first of `references` that is a
    /// reply this portal sent for a recipient with this address whose message still
    /// lives (its number is sealed with that message's key).
    pub async fn thread_for(
        &self,
        references: &[String],
        address: &str,
    ) -> Result<Option<ThreadMatch>, StoreError> {
        for id in references {
            let row =
                sqlx::query("SELECT recipient_id FROM portal_replies WHERE reply_message_id = $1")
                    .bind(id.clone())
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(row) = row else { continue };
            let rid: String = row.try_get("recipient_id")?;
            let Some(r) = self.recipient(&rid).await? else {
                continue;
            };
            if !r.address.eq_ignore_ascii_case(address) {
                continue;
            }
            if let Some(phone) = r.phone {
                return Ok(Some(ThreadMatch {
                    phone,
                    parent: r.message_id,
                }));
            }
        }
        Ok(None)
    }

    /// Records that message `id` answers `parent`.
    pub async fn set_parent(&self, id: &str, parent: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO portal_threads (message_id, parent) VALUES ($1, $2) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(parent.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The message `id` answers, with when it arrived, if it is part of a thread.
    pub async fn parent_of(&self, id: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.parent, m.created_at FROM portal_threads t \
             JOIN portal_messages m ON m.id = t.parent WHERE t.message_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("parent")?, r.try_get("created_at")?)))
            .transpose()
    }
}
