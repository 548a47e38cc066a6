//! DKIM signing of the final outbound message (RFC 6376; Ed25519 per RFC 8463).
//!
//! The milter signs at end of message, over the headers and body *as they will leave*:
//! after the Subject change, the classification header and the footer. Any later change by
//! another milter or a relay breaks the signature, so signing must be the last edit.
//!
//! Choices, and why:
//! * `c=relaxed/relaxed`, `a=rsa-sha256` or `a=ed25519-sha256`: relaxed survives the header
//!   refolding and whitespace changes that relays commonly make; SHA-1 is obsolete (RFC 8301).
//! * `t=` (signing time) is always present (mail-auth writes it); no `x=`, so a message that
//!   sits in a queue for days still verifies on arrival.
//! * RSA keys shorter than [`MIN_RSA_BITS`] are refused at load time: RFC 8301 §3.2 says
//!   signers SHOULD use at least 2048 bits, NTA 7516 asks for strong crypto, and the crypto
//!   backend (aws-lc-rs) cannot sign with smaller RSA keys anyway. Saying so when the key is
//!   loaded is friendlier than failing on the first message.
//! * [`SIGNED_HEADERS`] lists `From` twice and also names headers the message may lack:
//!   every listed name that is absent (or present fewer times than listed) still goes into
//!   `h=`, so nobody can add a second `From`, a `Reply-To` or a forged classification header
//!   after signing without breaking the signature (RFC 6376 §8.15, "over-signing").
//!
//! Key loading is [`key`] (with the DER reading behind its error messages in `der`); this
//! file is the signing.

use mail_auth::common::headers::HeaderWriter as _;

use crate::domain::DomainName;

mod der;
pub mod exact;
mod key;

pub use key::{Algorithm, DkimSlot, KeyError, MAX_RSA_BITS, MIN_RSA_BITS, SigningKey, load_keys};

/// Header fields covered by the signature, in `h=` order (see the module notes on
/// over-signing). `From` twice: the first covers the real From, the second an empty slot, so
/// a second From cannot be added. `X-NTA7516-Classification` carries our policy decision and
/// must not be forged downstream.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "X-NTA7516-Classification",
];

/// Why a message could not be signed. Each of these means the message as given cannot be
/// signed correctly; the caller decides (the milter defers: never send unsigned by
/// accident).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A header name with characters RFC 5322 does not allow (empty, space, colon, control).
    #[error("cannot DKIM-sign: {name:?} is not a valid header field name")]
    HeaderName { name: String },
    /// A line break in a header value that is not followed by a space or tab: written out it
    /// would end the header or start a new one, so the signed text would not be what is sent.
    #[error("cannot DKIM-sign: header {name} has a line break not followed by a space or tab")]
    HeaderFolding { name: String },
    /// A signed header holds a byte that mail-auth's relaxed canonicalisation hashes
    /// differently from RFC 6376 (see [`exact`]): the signature would not verify anywhere.
    #[error(
        "cannot DKIM-sign: header {name} contains {what}, which signers and verifiers \
         canonicalise differently"
    )]
    NotExact { name: String, what: &'static str },
    /// The body has bytes that mail-auth's relaxed canonicalisation hashes differently from
    /// RFC 6376 (see [`exact`]).
    #[error(
        "cannot DKIM-sign: the body contains {what}, which signers and verifiers canonicalise \
         differently"
    )]
    BodyNotExact { what: &'static str },
    /// None of [`SIGNED_HEADERS`] is in the message (not even From).
    #[error("cannot DKIM-sign: the message has none of the headers to sign (no From)")]
    NoSignedHeaders,
    /// The signing library failed (should not happen with a key that loaded).
    #[error("DKIM signing for {domain} (selector {selector}) failed: {message}")]
    Signer {
        domain: DomainName,
        selector: String,
        message: String,
    },
}

impl SignError {
    /// The message itself cannot be signed as it is (a malformed or unsignable header or
    /// body): sending it again cannot help, so the caller refuses it permanently. The other
    /// errors come from the signer and may pass.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, SignError::Signer { .. })
    }
}

/// Signs the final message and returns the value for a `DKIM-Signature` header.
///
/// `headers` are the final header fields in order, each as `(name, value)` where the value
/// is **everything after the colon, byte for byte, as it leaves**: with the milter option
/// `LEADING_SPACE` negotiated that is exactly the value Postfix handed the milter (the space
/// after the colon included, raw 8-bit bytes untouched), and for a header the milter adds,
/// the value with the leading space it is given. Folding may be `"\n"` (Postfix's milter
/// view) or `"\r\n"`; each field is signed as `Name:value` with CRLF line ends, which is what
/// Postfix writes out. `body` is the final body as sent (CRLF; a bare LF is counted as CRLF,
/// because that is how it goes out on the wire).
///
/// What mail-auth's relaxed canonicalisation would hash differently from RFC 6376 §3.4 (and
/// so from every independent verifier) is refused, never signed: see [`exact`]. Callers
/// normalise the message first with [`exact::header_value`] and [`exact::body`].
///
/// The returned value:
/// * has no `DKIM-Signature:` prefix, no leading space and no trailing line break;
/// * is folded with `"\n\t"` (Postfix stores a `"\r\n"` from a milter literally, so LF is
///   the right line break to hand it);
/// * starts with `v=1; a=...`. Hand it to `add_header("DKIM-Signature", value)` or
///   `insert_header(0, ...)`. Without the `LEADING_SPACE` milter option (the default)
///   Postfix writes `DKIM-Signature: v=1; ...`. If `LEADING_SPACE` was negotiated, Postfix
///   writes the value verbatim; prepend `" "` for the usual look (it verifies either way).
pub fn sign<N: AsRef<str>, V: AsRef<[u8]>>(
    key: &SigningKey,
    headers: &[(N, V)],
    body: &[u8],
) -> Result<String, SignError> {
    let signed = |name: &str| SIGNED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name));
    // mail-auth would report "no headers found"; checking first gives a clearer error and
    // also covers an empty header list (then the blank line below would be taken for the end
    // of a header block that never started).
    if !headers.iter().any(|(name, _)| signed(name.as_ref())) {
        return Err(SignError::NoSignedHeaders);
    }
    for (name, value) in headers {
        let name = name.as_ref();
        if signed(name)
            && let Some(what) = exact::header_problem(value.as_ref())
        {
            return Err(SignError::NotExact {
                name: name.to_string(),
                what,
            });
        }
    }
    if let Some(what) = exact::body_problem(body) {
        return Err(SignError::BodyNotExact { what });
    }

    // sign_streaming() splits headers from body at the first CRLF CRLF, so the message is fed
    // exactly as it is sent: each header line, the blank line, the body. (Not sign_chained()
    // with a headers chunk and a body chunk: that treats every chunk as header text, and the
    // body hash comes out wrong.)
    let mut stream = key.signer.sign_streaming();
    let mut line = Vec::with_capacity(256);
    for (name, value) in headers {
        line.clear();
        header_line(name.as_ref(), value.as_ref(), &mut line)?;
        stream.write(&line);
    }
    stream.write(b"\r\n");
    write_body_crlf(body, |chunk| stream.write(chunk));

    let signature = stream.finish().map_err(|e| match e {
        mail_auth::Error::NoHeadersFound => SignError::NoSignedHeaders,
        other => SignError::Signer {
            domain: key.domain.clone(),
            selector: key.selector.clone(),
            message: other.to_string(),
        },
    })?;

    // to_header() gives "DKIM-Signature: v=1; ...\r\n" folded with "\r\n\t".
    let header = signature.to_header();
    let value = header
        .strip_prefix("DKIM-Signature:")
        .unwrap_or(&header)
        .trim_start_matches(' ');
    let value = value.strip_suffix("\r\n").unwrap_or(value);
    Ok(value.replace("\r\n", "\n"))
}

/// Appends `Name:value\r\n` to `out`, turning the milter's LF folding into CRLF and
/// leaving every other byte of the value as it is.
fn header_line(name: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), SignError> {
    // RFC 5322 §3.6.8: printable US-ASCII except the colon.
    if name.is_empty() || !name.bytes().all(|b| (33..=126).contains(&b) && b != b':') {
        return Err(SignError::HeaderName {
            name: name.to_string(),
        });
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    let bytes = value;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let line_break = match b {
            b'\n' => 1,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
            _ => 0,
        };
        if line_break == 0 {
            out.push(b);
            i += 1;
            continue;
        }
        i += line_break;
        // A folded line must go on with white space; otherwise the "continuation" would be
        // read as a new header (or, if empty, as the end of the header block).
        if !matches!(bytes.get(i), Some(b' ' | b'\t')) {
            return Err(SignError::HeaderFolding {
                name: name.to_string(),
            });
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Passes `body` to `write`, with every bare LF turned into CRLF and nothing else changed.
fn write_body_crlf(body: &[u8], mut write: impl FnMut(&[u8])) {
    let mut start = 0;
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' && (i == 0 || body[i - 1] != b'\r') {
            write(&body[start..i]);
            write(b"\r\n");
            start = i + 1;
        }
    }
    write(&body[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_get_crlf_folding_and_keep_every_other_byte() {
        let mut out = Vec::new();
        header_line("Subject", b" a\n\tb\r\n c", &mut out).unwrap();
        assert_eq!(out, b"Subject: a\r\n\tb\r\n c\r\n");
        out.clear();
        header_line("Subject", b" Gr\xfc\xdfe", &mut out).unwrap();
        assert_eq!(out, b"Subject: Gr\xfc\xdfe\r\n");
    }

    #[test]
    fn header_lines_that_would_break_the_block_are_refused() {
        let mut out = Vec::new();
        for bad in ["a\nb", "a\n", "a\n\nb", "a\r\n"] {
            assert!(
                matches!(
                    header_line("Subject", bad.as_bytes(), &mut out),
                    Err(SignError::HeaderFolding { .. })
                ),
                "{bad:?}"
            );
        }
        for bad in ["", "Sub ject", "Sub:ject", "Sub\tject"] {
            assert!(
                matches!(
                    header_line(bad, b"x", &mut out),
                    Err(SignError::HeaderName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bare_lf_in_body_becomes_crlf() {
        let mut out = Vec::new();
        write_body_crlf(b"a\nb\r\nc\n\nd", |c| out.extend_from_slice(c));
        assert_eq!(out, b"a\r\nb\r\nc\r\n\r\nd");
        out.clear();
        write_body_crlf(b"\n", |c| out.extend_from_slice(c));
        assert_eq!(out, b"\r\n");
    }
}
