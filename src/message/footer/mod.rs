//! The footer added to secure outbound mail: MIME-aware, charset- and
//! Content-Transfer-Encoding-preserving, and never touching signed or encrypted content.
//!
//! # How
//!
//! mail-parser is used only to *locate* parts: it reports each part's byte offsets in the
//! message. The parts that receive the footer are decoded, extended, re-encoded with their
//! own Content-Transfer-Encoding and spliced back into the original bytes; everything else
//! (other parts, part headers, boundaries, preamble, epilogue) is copied byte for byte.
//! The top-level header is never changed (a milter's replace_body only replaces the body).
//!
//! # Which parts
//!
//! The *body* gets the footer, attachments never do:
//! * a single-part text/plain or text/html message (unless it is itself an attachment);
//! * in multipart/alternative every text/plain and text/html alternative (and the body of
//!   every nested multipart alternative, e.g. multipart/related → text/html);
//! * in multipart/mixed, related, report and unknown multipart subtypes (RFC 2046 §5.1.7:
//!   treat as mixed) the first part that is not an attachment — we do not chase later
//!   inline text parts, which are more often inline-shown text files than body text;
//! * an attachment is a part with `Content-Disposition: attachment` or with a file name.
//!
//! Nested messages (message/rfc822) are never entered: a forwarded message is not ours.
//!
//! # Skipped, with a reason for the log ([`SkipReason`])
//! * the body is multipart/signed, multipart/encrypted, S/MIME (application/pkcs7-mime;
//!   `smime-type=signed-data` counts as signed) or application/pgp-encrypted, or a text
//!   body carries inline PGP armor: changing it would break or confuse the protection;
//! * messages over [`MAX_MESSAGE_SIZE`] (never truncated);
//! * MIME we cannot be sure we understand the way a mail reader would: a multipart without
//!   its boundary, a text part with invalid base64 or no closing boundary, a delimiter
//!   not at the start of a line or inside a part header, duplicate Content-Type or
//!   Content-Transfer-Encoding fields,
//!   an unknown Content-Transfer-Encoding, a charset in which ASCII bytes do not mean ASCII
//!   (UTF-16, UTF-7, EBCDIC), or structures beyond the resource limits below.
//!   A part-level problem only skips that part (and is listed in `Outcome::Added`'s
//!   `skipped`, for the log); the outcome is `Skipped` when no part is left.
//!
//! Not skipped: an empty text part (it gets the footer as its whole text), invalid
//! quoted-printable (decoded leniently, a stray `=` stays an `=`, as mail readers show it),
//! and a Content-Type without subtype (text/plain, RFC 2045 §5.2).
//!
//! # Text decisions
//! * Plain text: a blank line, then the footer. Not the "-- " signature separator: the
//!   footer is the gateway's notice, not the sender's signature; with "-- " mail readers
//!   would treat it as (or merge it with) the sender's own signature and strip it from
//!   replies, and a second separator after the sender's own one is malformed.
//! * HTML: inserted immediately before the last `</body>` (case-insensitive), on its own
//!   line; without `</body>` it is appended at the end.
//! * An empty text footer is derived from the HTML one and vice versa; both empty gives
//!   `Skipped(NoTextBody)` (there is nothing to add).
//! * Charset: see the `charset` module. In short, UTF-8/ASCII/Latin-1/Latin-9/windows-1252 exactly;
//!   unrepresentable characters become numeric character references in HTML (lossless) and
//!   ASCII transliterations in plain text ("ë" → "e", '?' as last resort).
//! * A 7bit part can only receive ASCII — this matters for single-part messages, whose
//!   Content-Transfer-Encoding (in the top-level header) cannot be changed. For the same
//!   behaviour everywhere, and so that part headers are never rewritten, every 7bit part gets
//!   an ASCII-only footer (character references in HTML, transliteration in plain text)
//!   rather than being switched to quoted-printable.
//! * Footer lines are kept at most 998 octets (RFC 5322 §2.1.1), broken at a space if possible.
//! * format=flowed (RFC 3676): footer lines lose trailing spaces (which would make them
//!   flow into the next line) and are space-stuffed where needed.
//! * Line endings: the message's own style for everything written on the wire, as the
//!   caller knows it ([`LineBreak`]: LF from Exim's transport filter) or else the body's
//!   majority style (CRLF from Postfix); inside a base64 text part the decoded text's style.
//!
//! # Resource limits (adversarial input)
//! Never panics; work is linear in the message size: deep nesting is not followed beyond
//! `MAX_DEPTH` levels, nested messages are kept from the parser (it builds them
//! recursively), and inputs that would make the parser rescan the message over and over
//! (huge or missing boundaries) are refused before parsing, see the `limits` module.

mod charset;
mod codec;
mod limits;
mod part;
mod structure;
mod text;

use mail_parser::MessageParser;

use part::{Ctx, Kind, rewrite_part};
use text::footer_sources;

/// Larger messages are left unchanged ([`SkipReason::TooLarge`]), never truncated.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Multipart nesting we follow looking for the body; real mail stays well below 10.
const MAX_DEPTH: usize = 32;

/// The footer to add; both texts are UTF-8, with any line endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer<'a> {
    /// For text/plain parts (empty: derived from `html`).
    pub text: &'a str,
    /// For text/html parts, an HTML fragment (empty: derived from `text`).
    pub html: &'a str,
}

/// What [`add_footer`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `body` is the complete new body, for the milter's replace_body.
    Added {
        body: Vec<u8>,
        /// How many text parts got the footer.
        parts: usize,
        /// Why other body text parts did not get it (left unchanged), for the log.
        skipped: Vec<SkipReason>,
    },
    /// The message must be left as it is.
    Skipped(SkipReason),
}

/// Why a message was left unchanged; the Display text is meant for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// multipart/signed, S/MIME signed-data, or inline PGP signed text.
    #[error(
        "signed message (multipart/signed, S/MIME or inline PGP): changing it would break the signature"
    )]
    Signed,
    /// multipart/encrypted, application/pkcs7-mime, application/pgp-encrypted, or inline PGP.
    #[error("encrypted message (multipart/encrypted, S/MIME or PGP): its body is opaque")]
    Encrypted,
    /// No text/plain or text/html body part (or an empty footer).
    #[error("no text/plain or text/html body part to put the footer in")]
    NoTextBody,
    /// MIME structure or encoding we will not rewrite; the text says what.
    #[error("MIME structure not rewritten: {0}")]
    Unparsable(String),
    /// Larger than [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {MAX_MESSAGE_SIZE} bytes: footer not added")]
    TooLarge,
}

/// The log line for an outcome.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Added { parts, skipped, .. } => {
                write!(f, "footer added to {parts} part(s)")?;
                if !skipped.is_empty() {
                    write!(f, "; {} part(s) left without it", skipped.len())?;
                    for (i, why) in skipped.iter().enumerate() {
                        write!(f, "{}{why}", if i == 0 { ": " } else { "; " })?;
                    }
                }
                Ok(())
            }
            Outcome::Skipped(why) => write!(f, "footer skipped: {why}"),
        }
    }
}

/// The line breaks of the message the body belongs to, for the lines the footer adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineBreak {
    /// From the body: its majority style, CRLF on a tie (what Postfix hands a milter).
    Detect,
    /// CRLF, whatever the body has.
    Crlf,
    /// LF only (what Exim hands a transport filter), whatever the body has: an empty body,
    /// one without a final line break or with a stray CR does not tell.
    Lf,
}

fn unparsable(what: impl Into<String>) -> SkipReason {
    SkipReason::Unparsable(what.into())
}

/// Adds `footer` to the body text parts of a message.
///
/// `headers` are the message's header fields in order, as the milter received them
/// (values may contain LF-only folding); `body` is the raw body. The result's `body` is the
/// complete new body; the header is not changed (and need not be).
/// Line breaks are detected from the body ([`LineBreak::Detect`]).
pub fn add_footer(headers: &[(String, String)], body: &[u8], footer: &Footer) -> Outcome {
    add_footer_with(headers, body, footer, LineBreak::Detect)
}

/// [`add_footer`] with the line breaks of the message as the caller knows them.
pub fn add_footer_with(
    headers: &[(String, String)],
    body: &[u8],
    footer: &Footer,
    line_break: LineBreak,
) -> Outcome {
    match add_footer_inner(headers, body, footer, line_break) {
        Ok((body, parts, skipped)) => Outcome::Added {
            body,
            parts,
            skipped,
        },
        Err(reason) => Outcome::Skipped(reason),
    }
}

fn add_footer_inner(
    headers: &[(String, String)],
    body: &[u8],
    footer: &Footer,
    line_break: LineBreak,
) -> Result<(Vec<u8>, usize, Vec<SkipReason>), SkipReason> {
    let header_size = headers
        .iter()
        .fold(0usize, |n, (k, v)| n.saturating_add(k.len() + v.len() + 4));
    if body.len().saturating_add(header_size) > MAX_MESSAGE_SIZE {
        return Err(SkipReason::TooLarge);
    }

    let (text, html) = footer_sources(footer).ok_or(SkipReason::NoTextBody)?;
    let eol = line_ending(body, line_break);

    // Only the MIME fields matter for locating parts; leaving the rest out keeps odd
    // header fields from influencing where the parser thinks the body starts.
    let mut raw = Vec::with_capacity(body.len() + 1024);
    for (name, value) in headers {
        let lower = name.trim().to_ascii_lowercase();
        if lower.starts_with("content-") || lower == "mime-version" {
            push_header(&mut raw, name.trim(), value, eol);
        }
    }
    raw.extend_from_slice(eol);
    let base = raw.len();
    raw.extend_from_slice(body);

    // The parser reads a defused version (same offsets); output bytes come from `body`.
    let defused = limits::prepare(&mut raw)?;
    let (replacements, problems) = rewrite_parts(&raw, base, body, eol, defused, &text, &html)?;
    // The parser's copy and what it made of it are gone before the new body is built:
    // at no time are more than two copies of a large body held (RSS, `milter::budget`).
    drop(raw);
    let extra: usize = replacements.iter().map(|r| r.bytes.len()).sum();
    let mut out = Vec::with_capacity(body.len() + extra);
    let mut pos = 0;
    for r in &replacements {
        if r.start < pos {
            return Err(unparsable("overlapping text parts"));
        }
        out.extend_from_slice(&body[pos..r.start]);
        out.extend_from_slice(&r.bytes);
        pos = r.end;
    }
    out.extend_from_slice(&body[pos..]);
    Ok((out, replacements.len(), problems))
}

/// Parses `raw` (the MIME header fields and the body from `base` on), finds the body text
/// parts and makes their replacements, in body order; with the reasons other text parts
/// were left alone.
fn rewrite_parts(
    raw: &[u8],
    base: usize,
    body: &[u8],
    eol: &'static [u8],
    defused: limits::Defused,
    text: &str,
    html: &str,
) -> Result<(Vec<part::Replacement>, Vec<SkipReason>), SkipReason> {
    let message = MessageParser::new()
        .with_mime_headers()
        .parse(raw)
        .ok_or_else(|| unparsable("no MIME structure found"))?;
    if message.parts.first().map(|p| p.offset_body as usize) != Some(base) {
        return Err(unparsable("header fields not understood"));
    }

    let targets = structure::find_body(raw, &message.parts)?;
    if targets.is_empty() {
        return Err(SkipReason::NoTextBody);
    }

    let ctx = Ctx {
        body,
        base,
        defused,
        eol,
        text,
        html,
    };
    let mut replacements = Vec::with_capacity(targets.len());
    let mut problems = Vec::new();
    for (id, kind) in targets {
        let Some(part) = message.parts.get(id) else {
            continue;
        };
        match rewrite_part(&ctx, part, kind) {
            Ok(r) => replacements.push(r),
            // Protected content anywhere in the body: leave the whole message alone.
            Err(reason @ (SkipReason::Signed | SkipReason::Encrypted)) => return Err(reason),
            Err(reason) => problems.push(reason),
        }
    }
    if replacements.is_empty() {
        return Err(problems
            .into_iter()
            .next()
            .unwrap_or(SkipReason::NoTextBody));
    }
    replacements.sort_by_key(|r| r.start);
    Ok((replacements, problems))
}

fn line_ending(body: &[u8], line_break: LineBreak) -> &'static [u8] {
    match line_break {
        LineBreak::Crlf => b"\r\n",
        LineBreak::Lf => b"\n",
        LineBreak::Detect => {
            let lf = body.iter().filter(|&&b| b == b'\n').count();
            let crlf = body.windows(2).filter(|w| w == b"\r\n").count();
            if lf - crlf > crlf { b"\n" } else { b"\r\n" }
        }
    }
}

/// Appends one header field, normalising the milter's LF-only folding to `eol` and making
/// sure every continuation line starts with whitespace (a line break followed by anything
/// else would end the field, or the whole header, early).
fn push_header(raw: &mut Vec<u8>, name: &str, value: &str, eol: &[u8]) {
    raw.extend_from_slice(name.as_bytes());
    raw.push(b':');
    if !value.starts_with([' ', '\t']) {
        raw.push(b' ');
    }
    let mut lines = value.split('\n').map(|l| l.trim_end_matches('\r'));
    if let Some(first) = lines.next() {
        raw.extend_from_slice(first.as_bytes());
    }
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        raw.extend_from_slice(eol);
        if !line.starts_with([' ', '\t']) {
            raw.push(b' ');
        }
        raw.extend_from_slice(line.as_bytes());
    }
    raw.extend_from_slice(eol);
}

#[cfg(test)]
mod tests;
