//! The web side's tables: one-time codes with their counters, and sessions.
//!
//! One SQL dialect for SQLite and PostgreSQL: `$n` placeholders, integer unix-second times,
//! hex `TEXT` for hashes (no BLOB/bytea difference), `ON CONFLICT ... DO NOTHING` and
//! `RETURNING`. Every limit is enforced by a single conditional `UPDATE`, so two requests
//! racing on two nodes cannot both pass a check the other has just used up.

use sqlx::{AnyPool, Row};

/// Wrong codes accepted per code before it is void.
pub const TRIES_PER_CODE: i64 = 5;
/// Seconds between two codes.
pub const RESEND_AFTER: i64 = 60;
/// At most this many codes per [`CODE_WINDOW`] seconds.
pub const CODES_PER_WINDOW: i64 = 3;
pub const CODE_WINDOW: i64 = 15 * 60;
/// How long a code is valid.
pub const CODE_LIFETIME: i64 = 10 * 60;
/// Consecutive failures (over all codes; only a correct code resets them) that lock the
/// recipient, and for how long.
pub const FAILS_TO_LOCK: i64 = 10;
pub const LOCK_FOR: i64 = 60 * 60;
/// Session lifetimes: idle and absolute.
pub const SESSION_IDLE: i64 = 15 * 60;
pub const SESSION_ABSOLUTE: i64 = 60 * 60;

/// Created by the store at open (`CREATE TABLE IF NOT EXISTS`: safe to run every start).
pub(crate) const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS web_otp (
        recipient_id TEXT PRIMARY KEY,
        code_mac TEXT NOT NULL,
        code_expires BIGINT NOT NULL,
        code_tries BIGINT NOT NULL,
        last_sent BIGINT NOT NULL,
        window_start BIGINT NOT NULL,
        window_count BIGINT NOT NULL,
        fails BIGINT NOT NULL,
        locked_until BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS web_sessions (
        id_hash TEXT PRIMARY KEY,
        recipient_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
    )",
];

/// Runs [`SCHEMA`] (for stores and tests that open a pool themselves).
pub async fn create_tables(pool: &AnyPool) -> Result<(), sqlx::Error> {
    for sql in SCHEMA {
        sqlx::query(*sql).execute(pool).await?;
    }
    Ok(())
}

/// Why no new code may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked after too many failures; seconds left.
    Locked(i64),
    /// The last code went out less than [`RESEND_AFTER`] ago; seconds to wait.
    TooSoon(i64),
    /// [`CODES_PER_WINDOW`] codes in this window; seconds to wait.
    TooMany(i64),
}

/// The result of checking a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Correct; the code is used up and the failure count reset.
    Accepted,
    /// Wrong; `left` tries remain for this code (0: it is void, ask for a new one).
    Wrong { left: i64 },
    /// Wrong, and this failure locked the recipient for [`LOCK_FOR`] seconds.
    NowLocked,
    /// Locked before this attempt; nothing was compared.
    Locked(i64),
    /// No valid code (never sent, used, expired or void).
    NoCode,
}

/// The code and session tables over the store's pool.
#[derive(Debug, Clone)]
pub struct AuthStore {
    pool: AnyPool,
}

struct OtpRow {
    code_mac: String,
    code_expires: i64,
    last_sent: i64,
    window_start: i64,
    locked_until: i64,
}

impl AuthStore {
    pub fn new(pool: AnyPool) -> Self {
        AuthStore { pool }
    }

    async fn ensure_row(&self, recipient: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO web_otp (recipient_id, code_mac, code_expires, code_tries, last_sent,
                window_start, window_count, fails, locked_until)
             VALUES ($1, '', 0, 0, 0, 0, 0, 0, 0) ON CONFLICT (recipient_id) DO NOTHING",
        )
        .bind(recipient)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn row(&self, recipient: &str) -> Result<Option<OtpRow>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT code_mac, code_expires, last_sent, window_start, locked_until
             FROM web_otp WHERE recipient_id = $1",
        )
        .bind(recipient)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(OtpRow {
                code_mac: r.try_get(0)?,
                code_expires: r.try_get(1)?,
                last_sent: r.try_get(2)?,
                window_start: r.try_get(3)?,
                locked_until: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Seconds the recipient stays locked (0: not locked).
    pub async fn locked_for(&self, recipient: &str, now: i64) -> Result<i64, sqlx::Error> {
        Ok(self
            .row(recipient)
            .await?
            .map_or(0, |r| (r.locked_until - now).max(0)))
    }

    /// Stores `code_mac` as the recipient's one valid code if every sending limit allows
    /// it, in one statement; the caller sends the SMS only after `Ok`.
    pub async fn claim_send(
        &self,
        recipient: &str,
        code_mac: &str,
        now: i64,
    ) -> Result<Result<(), Refusal>, sqlx::Error> {
        self.ensure_row(recipient).await?;
        let done = sqlx::query(
            "UPDATE web_otp SET code_mac = $2, code_expires = $3, code_tries = 0, last_sent = $4,
                window_count = CASE WHEN window_start + $5 <= $4 THEN 1 ELSE window_count + 1 END,
                window_start = CASE WHEN window_start + $5 <= $4 THEN $4 ELSE window_start END
             WHERE recipient_id = $1 AND locked_until <= $4 AND last_sent + $6 <= $4
                AND (window_start + $5 <= $4 OR window_count < $7)",
        )
        .bind(recipient)
        .bind(code_mac)
        .bind(now + CODE_LIFETIME)
        .bind(now)
        .bind(CODE_WINDOW)
        .bind(RESEND_AFTER)
        .bind(CODES_PER_WINDOW)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if done == 1 {
            return Ok(Ok(()));
        }
        let Some(r) = self.row(recipient).await? else {
            return Ok(Err(Refusal::TooSoon(RESEND_AFTER)));
        };
        Ok(Err(if r.locked_until > now {
            Refusal::Locked(r.locked_until - now)
        } else if r.last_sent + RESEND_AFTER > now {
            Refusal::TooSoon(r.last_sent + RESEND_AFTER - now)
        } else {
            Refusal::TooMany((r.window_start + CODE_WINDOW - now).max(1))
        }))
    }

    /// The provider did not take the code: void it (the sending limits stay used, so a
    /// failing provider is not hammered).
    pub async fn void_code(&self, recipient: &str, code_mac: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE web_otp SET code_mac = '' WHERE recipient_id = $1 AND code_mac = $2")
            .bind(recipient)
            .bind(code_mac)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Checks a code whose keyed hash is `candidate_mac` (compared in constant time).
    pub async fn check(
        &self,
        recipient: &str,
        candidate_mac: &str,
        now: i64,
    ) -> Result<Check, sqlx::Error> {
        let Some(r) = self.row(recipient).await? else {
            return Ok(Check::NoCode);
        };
        if r.locked_until > now {
            return Ok(Check::Locked(r.locked_until - now));
        }
        if r.code_mac.is_empty() || r.code_expires <= now {
            return Ok(Check::NoCode);
        }
        let equal = aws_lc_rs::constant_time::verify_slices_are_equal(
            r.code_mac.as_bytes(),
            candidate_mac.as_bytes(),
        )
        .is_ok();
        if equal {
            // Consuming it in the same statement that checks it makes it single use even
            // when two requests race.
            let used = sqlx::query(
                "UPDATE web_otp SET code_mac = '', code_tries = 0, fails = 0
                 WHERE recipient_id = $1 AND code_mac = $2 AND code_expires > $3",
            )
            .bind(recipient)
            .bind(candidate_mac)
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
            return Ok(if used == 1 {
                Check::Accepted
            } else {
                Check::NoCode
            });
        }
        let row = sqlx::query(
            "UPDATE web_otp SET
                code_tries = code_tries + 1,
                code_mac = CASE WHEN code_tries + 1 >= $2 OR fails + 1 >= $3 THEN '' ELSE code_mac END,
                locked_until = CASE WHEN fails + 1 >= $3 THEN $4 ELSE locked_until END,
                fails = CASE WHEN fails + 1 >= $3 THEN 0 ELSE fails + 1 END
             WHERE recipient_id = $1 AND locked_until <= $5
             RETURNING code_tries, locked_until",
        )
        .bind(recipient)
        .bind(TRIES_PER_CODE)
        .bind(FAILS_TO_LOCK)
        .bind(now + LOCK_FOR)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        // Locked by a request that raced this one (on this node or another): this
        // failure neither counts towards a second lock nor reports one.
        let Some(row) = row else {
            return Ok(Check::Locked(self.locked_for(recipient, now).await?.max(1)));
        };
        let tries: i64 = row.try_get(0)?;
        let locked_until: i64 = row.try_get(1)?;
        Ok(if locked_until > now {
            Check::NowLocked
        } else {
            Check::Wrong {
                left: (TRIES_PER_CODE - tries).max(0),
            }
        })
    }

    /// A new session (only the hash of its id is stored).
    pub async fn create_session(
        &self,
        id_hash: &str,
        recipient: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, recipient_id, created_at, last_seen)
             VALUES ($1, $2, $3, $3)",
        )
        .bind(id_hash)
        .bind(recipient)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session's recipient if it is still within both lifetimes; refreshes its idle
    /// time.
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query(
            "UPDATE web_sessions SET last_seen = $2
             WHERE id_hash = $1 AND last_seen + $3 > $2 AND created_at + $4 > $2
             RETURNING recipient_id",
        )
        .bind(id_hash)
        .bind(now)
        .bind(SESSION_IDLE)
        .bind(SESSION_ABSOLUTE)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get(0)).transpose()
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes sessions past either lifetime; returns how many.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM web_sessions WHERE last_seen + $2 <= $1 OR created_at + $3 <= $1",
        )
        .bind(now)
        .bind(SESSION_IDLE)
        .bind(SESSION_ABSOLUTE)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh in-memory SQLite pool with the tables (one connection: each in-memory
    /// connection would be its own database). With `NTA_AUTH_TEST_POSTGRES=<url>` the
    /// same tests run against that PostgreSQL database instead (tables dropped first, so
    /// run them with `--test-threads=1`).
    pub(crate) async fn pool() -> AnyPool {
        sqlx::any::install_default_drivers();
        let url = std::env::var("NTA_AUTH_TEST_POSTGRES").unwrap_or("sqlite::memory:".into());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        if url.starts_with("postgres") {
            for t in ["web_otp", "web_sessions"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {t}")))
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        create_tables(&pool).await.unwrap();
        pool
    }

    #[test]
    fn limits_are_the_documented_ones() {
        assert_eq!(
            (TRIES_PER_CODE, RESEND_AFTER, CODES_PER_WINDOW, CODE_WINDOW),
            (5, 60, 3, 900)
        );
        assert_eq!((CODE_LIFETIME, FAILS_TO_LOCK, LOCK_FOR), (600, 10, 3600));
        assert_eq!((SESSION_IDLE, SESSION_ABSOLUTE), (900, 3600));
    }

    #[tokio::test]
    async fn resend_and_window_limits() {
        let a = AuthStore::new(pool().await);
        let t = 1_000_000;
        assert_eq!(a.claim_send("r", "m1", t).await.unwrap(), Ok(()));
        assert_eq!(
            a.claim_send("r", "m2", t + 10).await.unwrap(),
            Err(Refusal::TooSoon(50))
        );
        assert_eq!(a.claim_send("r", "m2", t + 60).await.unwrap(), Ok(()));
        assert_eq!(a.claim_send("r", "m3", t + 120).await.unwrap(), Ok(()));
        // Fourth code inside 15 minutes.
        assert_eq!(
            a.claim_send("r", "m4", t + 180).await.unwrap(),
            Err(Refusal::TooMany(720))
        );
        assert_eq!(a.claim_send("r", "m4", t + 900).await.unwrap(), Ok(()));
        // Another recipient is independent.
        assert_eq!(a.claim_send("q", "x", t + 180).await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn single_use_expiry_and_latest_code_only() {
        let a = AuthStore::new(pool().await);
        let t = 2_000_000;
        assert_eq!(a.check("r", "m1", t).await.unwrap(), Check::NoCode);
        a.claim_send("r", "m1", t).await.unwrap().unwrap();
        assert_eq!(a.check("r", "m1", t + 5).await.unwrap(), Check::Accepted);
        // Used up.
        assert_eq!(a.check("r", "m1", t + 6).await.unwrap(), Check::NoCode);
        a.claim_send("r", "m2", t + 60).await.unwrap().unwrap();
        // Expired after 10 minutes.
        assert_eq!(
            a.check("r", "m2", t + 60 + CODE_LIFETIME).await.unwrap(),
            Check::NoCode
        );
        a.claim_send("r", "m3", t + 900).await.unwrap().unwrap();
        a.claim_send("r", "m4", t + 960).await.unwrap().unwrap();
        // Only the newest code counts.
        assert_eq!(
            a.check("r", "m3", t + 970).await.unwrap(),
            Check::Wrong { left: 4 }
        );
        assert_eq!(a.check("r", "m4", t + 971).await.unwrap(), Check::Accepted);
        // A code the provider never took is void.
        a.claim_send("r", "m5", t + 1700).await.unwrap().unwrap();
        a.void_code("r", "m5").await.unwrap();
        assert_eq!(a.check("r", "m5", t + 1701).await.unwrap(), Check::NoCode);
    }

    #[tokio::test]
    async fn five_tries_per_code_then_lock_after_ten() {
        let a = AuthStore::new(pool().await);
        let t = 3_000_000;
        a.claim_send("r", "good", t).await.unwrap().unwrap();
        for left in (0..5).rev() {
            assert_eq!(
                a.check("r", "bad", t + 1).await.unwrap(),
                Check::Wrong { left }
            );
        }
        // Void after five: even the right code no longer works.
        assert_eq!(a.check("r", "good", t + 2).await.unwrap(), Check::NoCode);
        // A new code does not reset the failure count: five more lock.
        a.claim_send("r", "good2", t + 60).await.unwrap().unwrap();
        for left in (1..5).rev() {
            assert_eq!(
                a.check("r", "bad", t + 61).await.unwrap(),
                Check::Wrong { left }
            );
        }
        assert_eq!(a.check("r", "bad", t + 62).await.unwrap(), Check::NowLocked);
        assert_eq!(
            a.check("r", "good2", t + 63).await.unwrap(),
            Check::Locked(LOCK_FOR - 1)
        );
        assert_eq!(
            a.claim_send("r", "x", t + 1000).await.unwrap(),
            Err(Refusal::Locked(LOCK_FOR + 62 - 1000))
        );
        assert!(a.locked_for("r", t + 1000).await.unwrap() > 0);
        // After the hour: a fresh start.
        let later = t + 62 + LOCK_FOR;
        assert_eq!(a.locked_for("r", later).await.unwrap(), 0);
        a.claim_send("r", "good3", later).await.unwrap().unwrap();
        assert_eq!(
            a.check("r", "bad", later + 1).await.unwrap(),
            Check::Wrong { left: 4 }
        );
        assert_eq!(
            a.check("r", "good3", later + 2).await.unwrap(),
            Check::Accepted
        );
    }

    #[tokio::test]
    async fn success_resets_consecutive_failures() {
        let a = AuthStore::new(pool().await);
        let t = 4_000_000;
        a.claim_send("r", "g", t).await.unwrap().unwrap();
        for _ in 0..4 {
            a.check("r", "bad", t).await.unwrap();
        }
        assert_eq!(a.check("r", "g", t).await.unwrap(), Check::Accepted);
        a.claim_send("r", "g2", t + 60).await.unwrap().unwrap();
        for left in (1..5).rev() {
            assert_eq!(
                a.check("r", "bad", t + 61).await.unwrap(),
                Check::Wrong { left }
            );
        }
        // 4 + 4 failures but not consecutive: no lock.
        assert_eq!(a.locked_for("r", t + 61).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn sessions_idle_and_absolute() {
        let a = AuthStore::new(pool().await);
        let t = 5_000_000;
        a.create_session("h", "r", t).await.unwrap();
        assert_eq!(
            a.touch_session("h", t + 800).await.unwrap().as_deref(),
            Some("r")
        );
        assert_eq!(
            a.touch_session("h", t + 1600).await.unwrap().as_deref(),
            Some("r")
        );
        // Idle 15 minutes.
        assert_eq!(a.touch_session("h", t + 2500).await.unwrap(), None);
        a.create_session("k", "r", t).await.unwrap();
        for step in 1..=4 {
            let at = t + step * 800;
            assert_eq!(
                a.touch_session("k", at).await.unwrap().as_deref(),
                Some("r")
            );
        }
        // Never idle, but past 60 minutes.
        assert_eq!(a.touch_session("k", t + 3600).await.unwrap(), None);
        assert_eq!(a.touch_session("unknown", t).await.unwrap(), None);
        a.create_session("e", "r", t).await.unwrap();
        a.end_session("e").await.unwrap();
        assert_eq!(a.touch_session("e", t + 1).await.unwrap(), None);
        assert_eq!(a.purge_sessions(t + 4000).await.unwrap(), 2);
    }
}
