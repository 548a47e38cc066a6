//! The intake's tables. One SQL dialect for SQLite and PostgreSQL: `$N` placeholders,
//! BIGINT unix-second times and 0/1 flags, TEXT ids, `ON CONFLICT DO NOTHING`; the only
//! difference, `BLOB` (SQLite) versus `BYTEA` (PostgreSQL), is translated by [`ddl`].
//!
//! - `messages`: one row per stored message; `dek_wrapped` is the message key wrapped by
//!   the master key (`kek_id` names it); NULL once expired (crypto-shredded). `state` is
//!   `incoming` while chunks are written (invisible, swept if the intake dies; a message of
//!   one chunk skips it: its row is written `live` in the commit), `live`, or `expired`.
//! - `chunks`: the encrypted message in 64 KiB chunks, in the database so that one
//!   transaction is the durable commit.
//! - `recipients`: one row per recipient; `token_hash` = SHA-256 of the link token;
//!   `phone_enc` and `token_sealed` are encrypted with the message key; `dedup` is a keyed
//!   digest of content + recipient, unique, so a redelivery stores nothing twice.
//!   `notify_next` is also the claim of a node on the notification: a node sends only
//!   after moving it forward by a conditional `UPDATE`, or on the claim it stored with
//!   the message while half of it is left (see `claim.rs`).
//! - `portal_leases`: one row per job that only one node may run at a time (the expiry
//!   pass): who holds it and until when (see `claim.rs`).
//! - `portal_receipts`: one row per stored message with a sender to tell: whether the
//!   receipt (with the revoke link) is still to be sent (`pending`, `next_at` doubling as
//!   the claim, like `notify_next`), and whether the first-opened notice went out.
//! - `portal_replies`: the `Message-ID` of every reply a recipient sent through the page,
//!   with its message and recipient: an answer to that reply (its `In-Reply-To`) is taken
//!   in for the same recipient with the same number, and `portal_threads` records that it
//!   answers that message.
//! - `portal_contacts`: the address book, a mobile number per recipient address (sealed
//!   with a key derived from the master key).
//! - `portal_revocations`: who withdrew a message and when; `audited` turns 1 once one
//!   node wrote the `portal_revoked` event (`portal revoke` runs outside the portal
//!   process and cannot append to its hash-chained log itself).
//!
//! Changes stay additive (new tables, new indexes): every statement here runs at every
//! start against a database an older version created.

pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS portal_messages (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        sender TEXT NOT NULL,
        header_message_id TEXT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        kek_id TEXT NOT NULL,
        dek_wrapped BLOB,
        sha256 TEXT NOT NULL DEFAULT '',
        size BIGINT NOT NULL DEFAULT 0,
        chunks BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS portal_messages_expiry ON portal_messages (state, expires_at)",
    "CREATE TABLE IF NOT EXISTS portal_chunks (
        message_id TEXT NOT NULL,
        idx BIGINT NOT NULL,
        last BIGINT NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (message_id, idx)
    )",
    "CREATE TABLE IF NOT EXISTS portal_recipients (
        id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        address TEXT NOT NULL,
        phone_enc BLOB,
        token_hash BLOB NOT NULL UNIQUE,
        token_sealed BLOB,
        notify_pending BIGINT NOT NULL,
        notify_attempts BIGINT NOT NULL DEFAULT 0,
        notify_next BIGINT NOT NULL DEFAULT 0,
        dedup BLOB NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS portal_recipients_message ON portal_recipients (message_id)",
    "CREATE INDEX IF NOT EXISTS portal_recipients_pending ON portal_recipients (notify_pending, notify_next)",
    "CREATE TABLE IF NOT EXISTS portal_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        held_until BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS portal_receipts (
        message_id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        pending BIGINT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_at BIGINT NOT NULL DEFAULT 0,
        opened BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE INDEX IF NOT EXISTS portal_receipts_pending ON portal_receipts (pending, next_at)",
    "CREATE TABLE IF NOT EXISTS portal_replies (
        reply_message_id TEXT PRIMARY KEY,
        message_id TEXT NOT NULL,
        recipient_id TEXT NOT NULL,
        size BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS portal_replies_recipient ON portal_replies (recipient_id)",
    "CREATE TABLE IF NOT EXISTS portal_threads (
        message_id TEXT PRIMARY KEY,
        parent TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS portal_contacts (
        address TEXT PRIMARY KEY,
        phone_enc BLOB NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS portal_revocations (
        message_id TEXT PRIMARY KEY,
        revoked_by TEXT NOT NULL,
        client_address TEXT,
        revoked_at BIGINT NOT NULL,
        audited BIGINT NOT NULL DEFAULT 0
    )",
];

/// The statement for the backend: `BLOB` → `BYTEA` on PostgreSQL.
pub(crate) fn ddl(kind: Backend, sql: &str) -> String {
    match kind {
        Backend::Sqlite => sql.to_string(),
        Backend::Postgres => sql.replace(" BLOB", " BYTEA"),
    }
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}
