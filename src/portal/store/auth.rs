//! The web side's tables and queries (one-time codes, sessions, failure counters). Its
//! `SCHEMA` statements run in `Store::open` after the intake's own, in the same dialect
//! (`BLOB` is translated to `BYTEA` for PostgreSQL; integer unix-second times).

pub(crate) const SCHEMA: &[&str] = &[];
