//! The portal's mark on its own mail: how the milter knows a message really comes from the
//! eDelivery portal (a content-free notification, later receipts), so that it may take the
//! standard route instead of looping back into the portal.
//!
//! Why not the existing bypass rule: the portal submits with `sendmail` (pickup), and
//! Postfix gives a milter no `{rcpt_mailer}` for such submissions, so "every recipient's
//! transport is remote SMTP" can never hold; and an envelope sender alone can be used by
//! anyone on the host or any trusted client.
//!
//! The mark is `X-NTA7516-Portal-Mark: v1 <HMAC-SHA256, base64url>` keyed with the secret in
//! `[portal] mail_key`, a file only the portal and the milter can read. It covers the
//! envelope recipients, the Message-ID, the Subject and a SHA-256 of the body, so a copy of a
//! mark cannot be put on other content or other recipients. Like every `X-NTA7516-*` field
//! it is removed from every message before it leaves, and from an untrusted client it is
//! ignored.

use std::fmt;
use std::path::Path;

use aws_lc_rs::{digest, hmac};

/// The header field the portal adds to its own submissions.
pub const HEADER_PORTAL_MARK: &str = "X-NTA7516-Portal-Mark";
/// Version tag at the start of the value, so the format can change without ambiguity.
const VERSION: &str = "v1";
/// Domain separation: this key signs nothing else.
const CONTEXT: &[u8] = b"nta7516-milter portal mark v1";
/// Domain separation for the SMTP login password derived from the same key
/// ([`MarkKey::login_password`]): a password is never a valid mark and the reverse.
const LOGIN_CONTEXT: &[u8] = b"nta7516-milter portal smtp login v1";
/// The user name the portal logs in with (SMTP AUTH PLAIN, RFC 4616) where the MTA
/// recognises its mail by login rather than by a trusted client (Exim, exim/README.md).
pub const LOGIN_USER: &str = "nta7516-portal";
/// A shorter secret is guessable in principle; 32 bytes is the HMAC-SHA256 block strength.
pub const MIN_KEY_BYTES: usize = 32;
/// A larger file is not a key file.
pub const MAX_KEY_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkKeyError {
    #[error("mail_key {path}: {error}")]
    Unreadable { path: String, error: String },
    #[error(
        "mail_key {path}: {len} bytes; it must hold at least {MIN_KEY_BYTES} random bytes (e.g. `head -c 32 /dev/urandom > FILE`) and at most {MAX_KEY_BYTES}"
    )]
    Size { path: String, len: usize },
}

/// The shared secret. `Debug` never shows it.
#[derive(Clone)]
pub struct MarkKey(hmac::Key);

impl fmt::Debug for MarkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MarkKey(<redacted>)")
    }
}

/// What a mark covers, as both sides see it.
#[derive(Debug, Clone, Copy)]
pub struct Marked<'a> {
    /// Envelope recipients (angle brackets and letter case do not matter).
    pub recipients: &'a [String],
    /// The Message-ID field's value as written (folding does not matter).
    pub message_id: &'a str,
    /// The Subject field's value as written, encoded words and all.
    pub subject: &'a str,
    /// The body as submitted or as the milter received it (CRLF or LF line ends, trailing
    /// line ends do not matter).
    pub body: &'a [u8],
}

impl MarkKey {
    /// Reads the key file: its bytes, as they are, are the key.
    pub fn load(path: &Path) -> Result<MarkKey, MarkKeyError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_KEY_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| MarkKeyError::Unreadable {
                path: shown.clone(),
                error: e.to_string(),
            })?;
        Self::from_bytes(&bytes).map_err(|len| MarkKeyError::Size { path: shown, len })
    }

    /// `Err(len)` when the secret is too short or too long.
    pub fn from_bytes(bytes: &[u8]) -> Result<MarkKey, usize> {
        if bytes.len() < MIN_KEY_BYTES || bytes.len() as u64 > MAX_KEY_BYTES {
            return Err(bytes.len());
        }
        Ok(MarkKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// The header value to add: `v1 <base64url HMAC>`.
    pub fn mark(&self, m: &Marked<'_>) -> String {
        let tag = hmac::sign(&self.0, &input(m));
        format!(
            "{VERSION} {}",
            data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
        )
    }

    /// Does `value` (a mark header's value) carry a valid mark for `m`? Compared in
    /// constant time (`hmac::verify`).
    pub fn verify(&self, value: &str, m: &Marked<'_>) -> bool {
        let mut parts = value.split_ascii_whitespace();
        let (Some(VERSION), Some(tag), None) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(tag) = data_encoding::BASE64URL_NOPAD.decode(tag.as_bytes()) else {
            return false;
        };
        hmac::verify(&self.0, &input(m), &tag).is_ok()
    }

    /// The password the portal gives with [`LOGIN_USER`] (`[portal] submit_auth`): an HMAC
    /// of a fixed text under the key, base64url, 43 characters. Derived, so the portal and
    /// the daemon that checks it (map request `portal-login`) need no second secret, and
    /// the MTA never holds one.
    pub fn login_password(&self) -> String {
        let tag = hmac::sign(&self.0, LOGIN_CONTEXT);
        data_encoding::BASE64URL_NOPAD.encode(tag.as_ref())
    }

    /// Is `password` [`MarkKey::login_password`]? In constant time (`hmac::verify`).
    pub fn verify_login(&self, password: &str) -> bool {
        let Ok(tag) = data_encoding::BASE64URL_NOPAD.decode(password.trim().as_bytes()) else {
            return false;
        };
        hmac::verify(&self.0, LOGIN_CONTEXT, &tag).is_ok()
    }
}

/// The signed input: each part length-prefixed (`len:bytes,`), so no choice of recipients
/// or subject can make two different messages read the same.
fn input(m: &Marked<'_>) -> Vec<u8> {
    let mut rcpts: Vec<String> = m.recipients.iter().map(|r| canonical_rcpt(r)).collect();
    rcpts.sort();
    rcpts.dedup();
    let body = digest::digest(&digest::SHA256, &canonical_body(m.body));
    let mut out = Vec::with_capacity(256);
    let mut part = |b: &[u8]| {
        out.extend_from_slice(b.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(b);
        out.push(b',');
    };
    part(CONTEXT);
    part(rcpts.len().to_string().as_bytes());
    for r in &rcpts {
        part(r.as_bytes());
    }
    part(unfold(m.message_id).as_bytes());
    part(unfold(m.subject).as_bytes());
    part(body.as_ref());
    out
}

fn canonical_rcpt(r: &str) -> String {
    let r = r.trim();
    let r = r
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(r);
    r.trim().to_lowercase()
}

/// RFC 5322 unfolding plus white-space runs as one space, trimmed: what survives any
/// re-folding between the portal and the milter.
fn unfold(v: &str) -> String {
    v.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Line ends as LF, trailing line ends dropped: Postfix hands the milter CRLF lines and may
/// add a final line end, the portal writes LF.
fn canonical_body(body: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    while out.last() == Some(&b'\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> MarkKey {
        MarkKey::from_bytes(&[b; 32]).unwrap()
    }

    fn marked<'a>(rcpts: &'a [String], body: &'a [u8]) -> Marked<'a> {
        Marked {
            recipients: rcpts,
            message_id: "<abc@zkh.nl>",
            subject: "=?UTF-8?Q?Beveiligd_bericht?=",
            body,
        }
    }

    #[test]
    fn a_mark_verifies_across_line_ends_folding_and_case() {
        let k = key(7);
        let rcpts = vec!["patient@gmail.test".to_string()];
        let value = k.mark(&marked(&rcpts, b"Hallo\nwereld\n"));
        assert!(value.starts_with("v1 "), "{value}");
        // What the milter sees: CRLF, a final CRLF, brackets, other case, folded fields.
        let seen_rcpts = vec!["<Patient@Gmail.TEST>".to_string()];
        let seen = Marked {
            recipients: &seen_rcpts,
            message_id: " <abc@zkh.nl>",
            subject: " =?UTF-8?Q?Beveiligd_bericht?=\r\n",
            body: b"Hallo\r\nwereld\r\n\r\n",
        };
        assert!(k.verify(&value, &seen));
        assert!(k.verify(&format!("  {value} "), &seen));
    }

    #[test]
    fn a_mark_binds_key_recipients_and_content() {
        let k = key(7);
        let rcpts = vec!["patient@gmail.test".to_string()];
        let value = k.mark(&marked(&rcpts, b"body"));
        assert!(
            !key(8).verify(&value, &marked(&rcpts, b"body")),
            "other key"
        );
        let other = vec!["someone@else.test".to_string()];
        assert!(
            !k.verify(&value, &marked(&other, b"body")),
            "other recipient"
        );
        let more = vec!["patient@gmail.test".to_string(), "x@y.test".to_string()];
        assert!(
            !k.verify(&value, &marked(&more, b"body")),
            "added recipient"
        );
        assert!(!k.verify(&value, &marked(&rcpts, b"b0dy")), "other body");
        let mut m = marked(&rcpts, b"body");
        m.subject = "Uitslag";
        assert!(!k.verify(&value, &m), "other subject");
        let mut m = marked(&rcpts, b"body");
        m.message_id = "<other@zkh.nl>";
        assert!(!k.verify(&value, &m), "other Message-ID");
        for bad in [
            "",
            "v1",
            "v2 AAAA",
            "v1 !!!",
            "v1 AAAA",
            &format!("{value} x"),
        ] {
            assert!(!k.verify(bad, &marked(&rcpts, b"body")), "{bad:?}");
        }
    }

    #[test]
    fn the_login_password_is_derived_from_the_key_and_is_no_mark() {
        let k = key(7);
        let pw = k.login_password();
        assert_eq!(pw.len(), 43, "{pw}");
        assert_eq!(pw, key(7).login_password(), "stable for one key");
        assert!(k.verify_login(&pw));
        assert!(!key(8).verify_login(&pw), "another key's password");
        assert_ne!(pw, key(8).login_password());
        for bad in ["", "x", "AAAA", &pw[..42], &format!("{pw}A"), "!!!"] {
            assert!(!k.verify_login(bad), "{bad:?}");
        }
        // the password is no mark for anything, not even an empty message
        let none: Vec<String> = Vec::new();
        let empty = Marked {
            recipients: &none,
            message_id: "",
            subject: "",
            body: b"",
        };
        assert!(!k.verify(&format!("v1 {pw}"), &empty));
        assert_eq!(LOGIN_USER, "nta7516-portal");
    }

    #[test]
    fn key_file_size_and_secrecy() {
        assert_eq!(MIN_KEY_BYTES, 32);
        assert!(MarkKey::from_bytes(&[1; 31]).is_err());
        assert!(MarkKey::from_bytes(&[1; 4097]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mail.key");
        std::fs::write(&p, [9u8; 48]).unwrap();
        let k = MarkKey::load(&p).unwrap();
        assert_eq!(format!("{k:?}"), "MarkKey(<redacted>)");
        std::fs::write(&p, b"short\n").unwrap();
        let e = MarkKey::load(&p).unwrap_err().to_string();
        assert!(e.contains("6 bytes") && e.contains("/dev/urandom"), "{e}");
        let e = MarkKey::load(&dir.path().join("none")).unwrap_err();
        assert!(matches!(e, MarkKeyError::Unreadable { .. }));
    }
}
