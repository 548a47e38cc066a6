//! The portal's store: SQLite (embedded default, WAL + `synchronous=FULL`) or PostgreSQL
//! (several nodes), through one code path (sqlx `Any`, one SQL dialect; see `schema`).
//!
//! Everything secret is encrypted before it reaches the database (see `crate::portal::crypto`);
//! the database holds ciphertext, wrapped keys, hashes and envelope metadata.
//!
//! Read side (used by the web front-end): [`Store::recipient_by_token_hash`],
//! [`Store::recipient`], [`Store::read_message`], [`Store::chunks`], [`Store::pool`].
//! Write side (the LMTP intake, retention): `write.rs`; withdrawal, receipts and the
//! administrator's listing: `revoke.rs`.

pub mod auth;
mod claim;
mod contacts;
mod read;
mod revoke;
pub(crate) mod schema;
mod thread;
pub mod waiting;
mod write;

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::portal::StoreLocation;
use crate::portal::crypto::{CryptoError, MasterKey};

pub use claim::{NOTIFY_CLAIM, still_own_claim};
pub use contacts::Contact;
pub use read::ChunkReader;
pub use revoke::{MessageSummary, PendingReceipt, Revocation, Revoke, receipt_address};
pub use schema::Backend;
pub use thread::{MAX_REPLIES_PER_RECIPIENT, ThreadMatch};
pub use write::{Incoming, NewRecipient, PendingNotice, StoredRecipient};

/// Connections per process: the intake holds one per message in flight, the web side a
/// few; SQLite serialises writers anyway.
pub const MAX_CONNECTIONS: u32 = 8;
/// How long a statement waits for a connection or for SQLite's write lock before the
/// intake gives up with 451.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;
/// The PostgreSQL advisory lock key of the schema creation (a constant no other
/// application on the database is likely to use).
pub const MIGRATION_LOCK: i64 = 0x4e54_4100_7516;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Rows that cannot be what the intake wrote (missing chunk, bad id, ...).
    #[error("stored data inconsistent: {0}")]
    Corrupt(String),
    #[error("message {0} not found or expired")]
    Gone(String),
}

/// Whether a message can still be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Live,
    /// Retention passed: the key is destroyed, nothing can be read.
    Expired,
    /// Withdrawn by the sender or the administrator: the key is destroyed.
    Withdrawn,
}

/// One recipient of one stored message, as the web side needs it.
#[derive(Debug, Clone)]
pub struct RecipientRecord {
    /// Recipient id (32 hex digits), stable for sessions and codes.
    pub id: String,
    /// Message id (32 hex digits).
    pub message_id: String,
    /// The recipient's address (envelope recipient, as Postfix delivered it).
    pub address: String,
    /// Decrypted mobile number; `None` once the message expired (its key is gone).
    pub phone: Option<crate::portal::phone::Phone>,
    pub state: MessageState,
    /// Envelope sender (MAIL FROM), empty for the null sender.
    pub sender: String,
    /// The `Message-ID` header, if any (for audit lines; not secret).
    pub header_message_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    /// SHA-256 (hex) and size of the stored original (what the `.eml` download returns).
    pub sha256: String,
    pub size: u64,
}

/// The store: cheap to clone (a pool and the master key behind `Arc`s).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    key: Arc<MasterKey>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a link token as it appears in the URL (its base64url text): the only form
/// in which tokens are stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Store {
    /// Connects and creates the tables (the intake's, then the web side's `auth::SCHEMA`).
    pub async fn open(location: &StoreLocation, key: Arc<MasterKey>) -> Result<Store, StoreError> {
        install_default_drivers();
        let (url, backend) = match location {
            StoreLocation::Sqlite(path) => (
                format!("sqlite://{}?mode=rwc", path.display()),
                Backend::Sqlite,
            ),
            StoreLocation::Postgres(url) => (url.clone(), Backend::Postgres),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT);
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL: readers never block the writer; FULL: a commit is on disk
                    // before it returns, so the 250 after it is true after a power cut.
                    conn.execute("PRAGMA journal_mode=WAL").await?;
                    conn.execute("PRAGMA synchronous=FULL").await?;
                    conn.execute(sqlx::AssertSqlSafe(format!(
                        "PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}"
                    )))
                    .await?;
                    // Freed pages are zeroed: expired ciphertext does not linger.
                    conn.execute("PRAGMA secure_delete=ON").await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&url).await?;
        let store = Store { pool, backend, key };
        store.migrate().await?;
        Ok(store)
    }

    /// Creates what is missing. On PostgreSQL under an advisory lock: two nodes starting
    /// at once would otherwise run `CREATE … IF NOT EXISTS` concurrently, which PostgreSQL
    /// does not make safe (one of them fails on a unique index of its catalogue, and that
    /// node does not start). SQLite serialises the statements by its write lock.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let pg = self.backend == Backend::Postgres;
        if pg {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
        }
        let mut result = Ok(());
        for sql in schema::SCHEMA
            .iter()
            .chain(auth::SCHEMA)
            .chain(waiting::SCHEMA)
        {
            let stmt = schema::ddl(self.backend, sql);
            if let Err(e) = conn.execute(sqlx::AssertSqlSafe(stmt)).await {
                result = Err(e.into());
                break;
            }
        }
        if pg {
            // Also released when the connection closes.
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *conn)
                .await;
        }
        result
    }

    /// The pool, for the web side's own queries (`store/auth.rs`). Write `$N` placeholders
    /// and BIGINT/TEXT/BLOB columns only, so one statement runs on both databases.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The master key, for keyed hashes of the web side (`key().subkey(b"otp")`).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn hex_id(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn parse_id(id: &str) -> Result<[u8; 16], StoreError> {
    data_encoding::HEXLOWER
        .decode(id.as_bytes())
        .ok()
        .and_then(|v| <[u8; 16]>::try_from(v).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("bad id {id:?}")))
}

#[cfg(test)]
mod tests;
