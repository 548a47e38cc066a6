//! The hash chain: line layout, hashing, and the `<file>.chain` state record.
//!
//! A line is `{"seq":N,"prev":"<hex>","event_id":…,"time":…,<body fields>,"hash":"<hex>"}`:
//! `prev` is the SHA-256 of the previous line's bytes (without its newline) and `hash`
//! the SHA-256 of this line's bytes up to, not including, `,"hash":"`. `prev` links the
//! lines (a deleted, inserted or reordered line breaks the next link); `hash` seals each
//! line's own bytes, so a change to the newest line, which no later line covers yet,
//! is caught as well.

use aws_lc_rs::digest::{SHA256, digest};

/// `prev` of the very first line of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const HASH_KEY: &[u8] = b",\"hash\":\"";
const HEX_LEN: usize = 64;
/// `,"hash":"` + 64 hex digits + `"}`.
const SEAL_LEN: usize = HASH_KEY.len() + HEX_LEN + 2;

pub fn sha256_hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(digest(&SHA256, bytes).as_ref())
}

/// Builds one line (without newline). `body` is a JSON object from `envelope::body`.
pub(super) fn compose(seq: u64, prev: &str, event_id: &str, time: &str, body: &[u8]) -> Vec<u8> {
    let inner = body
        .strip_prefix(b"{")
        .and_then(|b| b.strip_suffix(b"}"))
        .unwrap_or_default();
    let mut line = Vec::with_capacity(128 + body.len() + SEAL_LEN);
    line.extend_from_slice(
        format!(
            "{{\"seq\":{seq},\"prev\":\"{prev}\",\"event_id\":\"{event_id}\",\"time\":\"{time}\""
        )
        .as_bytes(),
    );
    if !inner.is_empty() {
        line.push(b',');
        line.extend_from_slice(inner);
    }
    let seal = sha256_hex(&line);
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(seal.as_bytes());
    line.extend_from_slice(b"\"}");
    line
}

/// Whether the line ends in a `hash` field that matches the bytes before it.
pub(super) fn seal_ok(line: &[u8]) -> bool {
    let Some(start) = line.len().checked_sub(SEAL_LEN) else {
        return false;
    };
    let (sealed, tail) = line.split_at(start);
    let Some(hex) = tail
        .strip_prefix(HASH_KEY)
        .and_then(|t| t.strip_suffix(b"\"}"))
    else {
        return false;
    };
    hex == sha256_hex(sealed).as_bytes()
}

/// The chain position stored in `<file>.chain` after every line, so that a new file
/// (after a rotation while the daemon was down) continues where the old one ended.
/// Fixed width, rewritten in place with one `pwrite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub seq: u64,
    pub hash: String,
}

const STATE_MAGIC: &str = "nta7516-audit-chain 1";

impl ChainState {
    pub fn genesis() -> Self {
        ChainState {
            seq: 0,
            hash: GENESIS.to_string(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{STATE_MAGIC} seq={:020} hash={}\n", self.seq, self.hash)
    }

    pub fn decode(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(STATE_MAGIC)?;
        let mut seq = None;
        let mut hash = None;
        for field in rest.split_whitespace() {
            if let Some(v) = field.strip_prefix("seq=") {
                seq = v.parse().ok();
            } else if let Some(v) = field.strip_prefix("hash=") {
                hash = is_hex64(v).then(|| v.to_string());
            }
        }
        Some(ChainState {
            seq: seq?,
            hash: hash?,
        })
    }
}

pub fn is_hex64(s: &str) -> bool {
    s.len() == HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `seq` and `prev` of a line, for reading a chain back.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Link {
    pub seq: u64,
    pub prev: String,
}

impl Link {
    pub fn parse(line: &[u8]) -> Result<Link, String> {
        if line.is_empty() {
            return Err("empty line".to_string());
        }
        let link: Link = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if !is_hex64(&link.prev) {
            return Err("`prev` is not 64 lower-case hex digits".to_string());
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn composed_line_is_json_and_sealed() {
        let line = compose(7, GENESIS, "ab-1", "2026-11-22T21:04:05.123Z", b"{\"x\":1}");
        assert!(seal_ok(&line));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["seq"], 7);
        assert_eq!(v["x"], 1);
        assert_eq!(v["hash"].as_str().unwrap().len(), 64);
        let mut bad = line.clone();
        bad[3] ^= 1;
        assert!(!seal_ok(&bad));
        assert!(!seal_ok(b"{}"));
    }

    #[test]
    fn state_round_trip() {
        let s = ChainState {
            seq: 42,
            hash: sha256_hex(b"x"),
        };
        let text = s.encode();
        assert_eq!(text.len(), ChainState::genesis().encode().len());
        assert_eq!(ChainState::decode(&text), Some(s));
        assert_eq!(ChainState::decode("garbage"), None);
    }
}
