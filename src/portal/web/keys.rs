//! Secrets of the web side: one-time codes, session ids, CSRF tokens.
//!
//! All keys come from one 32-byte secret (derived from the master key, so nothing new has
//! to be backed up) by HKDF-SHA256 (RFC 5869) with a label per use: a leaked session hash
//! says nothing about codes, and no key is ever used for two things.

use aws_lc_rs::{constant_time, digest, hkdf, hmac, rand};
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};

/// Digits in a one-time code (NIST SP 800-63B: at least six).
pub const CODE_DIGITS: usize = 6;
const CODE_SPACE: u32 = 1_000_000;
/// The largest multiple of [`CODE_SPACE`] that fits in a `u32`: values at or above it are
/// drawn again, so every code is equally likely (no modulo bias).
const CODE_ACCEPT_BELOW: u32 = u32::MAX - (u32::MAX % CODE_SPACE);
/// Random bytes in a session id (256 bits).
const SESSION_ID_BYTES: usize = 32;

/// The derived keys.
pub struct Keys {
    code: hmac::Key,
    session: hmac::Key,
    csrf: hmac::Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

/// The web side's secret from the portal's master key bytes.
pub fn derive_secret(master: &[u8]) -> [u8; 32] {
    expand(master, b"nta7516-milter portal web secret v1")
}

fn expand(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"nta7516-milter portal");
    let prk = salt.extract(ikm);
    let mut out = [0u8; 32];
    let info = [info];
    // Expanding 32 bytes with SHA-256 is always within HKDF's limit of 255 blocks.
    if let Ok(okm) = prk.expand(&info, hkdf::HKDF_SHA256) {
        let _ = okm.fill(&mut out);
    }
    out
}

impl Keys {
    pub fn new(secret: &[u8; 32]) -> Keys {
        let key = |label: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, &expand(secret, label));
        Keys {
            code: key(b"one-time code"),
            session: key(b"session id"),
            csrf: key(b"csrf"),
        }
    }

    /// The stored form of a code: HMAC over the recipient and the code, hex. Binding the
    /// recipient means a hash is worthless for any other recipient.
    pub fn code_mac(&self, recipient: &str, code: &str) -> String {
        mac(&self.code, &[recipient.as_bytes(), b"\0", code.as_bytes()])
    }

    /// The stored form of a session id.
    pub fn session_hash(&self, id: &str) -> String {
        mac(&self.session, &[id.as_bytes()])
    }

    /// The CSRF token of a session (or, before there is one, of a link): derived, so it
    /// needs no storage and dies with what it is bound to.
    pub fn csrf_token(&self, bound_to: &str) -> String {
        let tag = hmac::sign(&self.csrf, bound_to.as_bytes());
        BASE64URL_NOPAD.encode(tag.as_ref())
    }

    /// Constant-time check of a submitted CSRF token.
    pub fn csrf_ok(&self, bound_to: &str, submitted: &str) -> bool {
        let want = self.csrf_token(bound_to);
        constant_time::verify_slices_are_equal(want.as_bytes(), submitted.as_bytes()).is_ok()
    }
}

fn mac(key: &hmac::Key, parts: &[&[u8]]) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for p in parts {
        ctx.update(p);
    }
    HEXLOWER.encode(ctx.sign().as_ref())
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RngError;

/// A fresh six-digit code from the system CSPRNG, by rejection sampling.
pub fn new_code() -> Result<String, RngError> {
    let rng = rand::SystemRandom::new();
    // Rejection happens with probability < 0.03 %; 64 draws failing is not a real outcome.
    for _ in 0..64 {
        let mut b = [0u8; 4];
        rand::SecureRandom::fill(&rng, &mut b).map_err(|_| RngError)?;
        if let Some(code) = code_from(u32::from_be_bytes(b)) {
            return Ok(code);
        }
    }
    Err(RngError)
}

fn code_from(n: u32) -> Option<String> {
    (n < CODE_ACCEPT_BELOW).then(|| format!("{:0width$}", n % CODE_SPACE, width = CODE_DIGITS))
}

/// A fresh session id: 256 random bits, base64url.
pub fn new_session_id() -> Result<String, RngError> {
    let mut b = [0u8; SESSION_ID_BYTES];
    rand::fill(&mut b).map_err(|_| RngError)?;
    Ok(BASE64URL_NOPAD.encode(&b))
}

/// Length of a link token: 32 bytes in base64url without padding.
pub const TOKEN_CHARS: usize = 43;

/// The store's hash of a link token (SHA-256 of its text), or `None` when it is not a
/// well-formed token: a truncated or altered link never reaches the database.
pub fn token_hash(token: &str) -> Option<[u8; 32]> {
    if token.len() != TOKEN_CHARS {
        return None;
    }
    let bytes = BASE64URL_NOPAD.decode(token.as_bytes()).ok()?;
    if bytes.len() != 32 {
        return None;
    }
    Some(crate::portal::store::token_hash(token))
}

/// Hex SHA-256, for audit lines of downloads.
pub fn sha256_hex(data: &[u8]) -> String {
    HEXLOWER.encode(digest::digest(&digest::SHA256, data).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_bound() {
        assert_eq!(CODE_ACCEPT_BELOW, 4_294_000_000);
        assert_eq!(CODE_ACCEPT_BELOW % CODE_SPACE, 0);
        assert_eq!(code_from(0).as_deref(), Some("000000"));
        assert_eq!(code_from(4_293_999_999).as_deref(), Some("999999"));
        assert_eq!(code_from(4_294_000_000), None);
        assert_eq!(code_from(u32::MAX), None);
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..200).map(|_| new_code().unwrap()).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        // 200 draws from a million: a repeat is possible but more than a few is not.
        assert!(codes.len() > 190);
    }

    #[test]
    fn macs_are_keyed_and_bound() {
        let k = Keys::new(&[7; 32]);
        let other = Keys::new(&[8; 32]);
        assert_eq!(k.code_mac("r1", "123456"), k.code_mac("r1", "123456"));
        assert_ne!(k.code_mac("r1", "123456"), k.code_mac("r2", "123456"));
        assert_ne!(k.code_mac("r1", "123456"), other.code_mac("r1", "123456"));
        assert_ne!(k.code_mac("r1", "123456"), k.session_hash("r1\x00123456"));
        assert!(!k.code_mac("r1", "123456").contains("123456"));
    }

    #[test]
    fn csrf_tokens() {
        let k = Keys::new(&[1; 32]);
        let t = k.csrf_token("session-a");
        assert!(k.csrf_ok("session-a", &t));
        assert!(!k.csrf_ok("session-b", &t));
        assert!(!k.csrf_ok("session-a", ""));
        assert!(!k.csrf_ok("session-a", &t[..t.len() - 1]));
    }

    #[test]
    fn tokens() {
        let raw = [9u8; 32];
        let token = BASE64URL_NOPAD.encode(&raw);
        assert_eq!(token.len(), TOKEN_CHARS);
        assert!(token_hash(&token).is_some());
        assert_eq!(token_hash(&token[..42]), None);
        assert_eq!(token_hash(&format!("{token}A")), None);
        assert_eq!(token_hash(&token.replace('J', "*")), None);
        let ids: std::collections::HashSet<String> =
            (0..50).map(|_| new_session_id().unwrap()).collect();
        assert_eq!(ids.len(), 50);
        assert_ne!(derive_secret(b"a"), derive_secret(b"b"));
    }
}
