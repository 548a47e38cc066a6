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
mod text;

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::{
    ContentType, Encoding, HeaderName, MessageParser, MessagePart, MimeHeaders, PartType,
};

use text::{append_plain, footer_sources, insert_html, render_footer};

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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Html,
}

/// The Content-Transfer-Encodings we can decode and re-encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cte {
    SevenBit,
    EightBit,
    Binary,
    QuotedPrintable,
    Base64,
}

/// One re-encoded part body: replaces `body[start..end]`.
struct Replacement {
    start: usize,
    end: usize,
    bytes: Vec<u8>,
}

/// What the rewriting of parts needs to know.
struct Ctx<'a> {
    /// The original body: bytes are always taken from here, never from the parser's copy.
    body: &'a [u8],
    /// Where the body starts in the parser's input (header fields + blank line + body).
    base: usize,
    eol: &'static [u8],
    text: &'a str,
    html: &'a str,
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
    limits::prepare(&mut raw)?;
    let message = MessageParser::new()
        .with_mime_headers()
        .parse(&raw)
        .ok_or_else(|| unparsable("no MIME structure found"))?;
    if message.parts.first().map(|p| p.offset_body as usize) != Some(base) {
        return Err(unparsable("header fields not understood"));
    }

    let mut walker = Walker {
        parsed: &raw,
        parts: &message.parts,
        found: Vec::new(),
        boundaries: Vec::new(),
    };
    walker.visit(0, None, 0)?;
    let targets = walker.found;
    if targets.is_empty() {
        return Err(SkipReason::NoTextBody);
    }

    let ctx = Ctx {
        body,
        base,
        eol,
        text: &text,
        html: &html,
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

/// How a part looks for the purpose of finding the body.
enum Node<'p> {
    Text(Kind),
    Multipart {
        subtype: &'p str,
        children: &'p [u32],
    },
    Opaque(SkipReason),
    Other,
}

fn classify<'p>(part: &'p MessagePart<'_>, in_digest: bool) -> Result<Node<'p>, SkipReason> {
    let Some(ct) = part.content_type() else {
        // RFC 2046 §5.1.5: the default in a digest is message/rfc822, elsewhere text/plain.
        return Ok(if in_digest {
            Node::Other
        } else {
            Node::Text(Kind::Plain)
        });
    };
    let subtype = ct.subtype().unwrap_or("");
    if subtype.is_empty() && ct.ctype() != "multipart" {
        // RFC 2045 §5.2: an invalid Content-Type (`text`, no subtype) means text/plain.
        return Ok(Node::Text(Kind::Plain));
    }
    Ok(match ct.ctype() {
        "multipart" => match subtype {
            "signed" => Node::Opaque(SkipReason::Signed),
            "encrypted" => Node::Opaque(SkipReason::Encrypted),
            _ => match &part.body {
                PartType::Multipart(children) => Node::Multipart { subtype, children },
                _ => {
                    return Err(unparsable(format!(
                        "multipart/{subtype} without a usable boundary"
                    )));
                }
            },
        },
        "application" => match subtype {
            "pkcs7-mime" | "x-pkcs7-mime" => {
                let signed = ct
                    .attribute("smime-type")
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("signed-data"));
                Node::Opaque(if signed {
                    SkipReason::Signed
                } else {
                    SkipReason::Encrypted
                })
            }
            "pgp-encrypted" => Node::Opaque(SkipReason::Encrypted),
            _ => Node::Other,
        },
        "text" => match subtype {
            "plain" => Node::Text(Kind::Plain),
            "html" => Node::Text(Kind::Html),
            _ => Node::Other,
        },
        _ => Node::Other,
    })
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.is_attachment() || d.has_attribute("filename"))
        || part.content_type().is_some_and(|c| c.has_attribute("name"))
}

/// The multipart a part is in.
#[derive(Clone, Copy)]
struct Parent<'m> {
    boundary: &'m [u8],
    is_digest: bool,
}

/// Finds the parts that are the message body (see the module documentation).
struct Walker<'m, 'x> {
    /// The bytes the parser read (offsets index into these).
    parsed: &'m [u8],
    parts: &'m [MessagePart<'x>],
    found: Vec<(usize, Kind)>,
    /// The boundaries of the multiparts we are in (at most `MAX_DEPTH`).
    boundaries: Vec<&'m [u8]>,
}

impl<'m> Walker<'m, '_> {
    /// Recursion is bounded by [`MAX_DEPTH`]; every part is visited at most once.
    fn visit(
        &mut self,
        id: usize,
        parent: Option<Parent<'m>>,
        depth: usize,
    ) -> Result<(), SkipReason> {
        if depth > MAX_DEPTH {
            return Err(unparsable(format!(
                "MIME parts nested more than {MAX_DEPTH} deep"
            )));
        }
        let parts = self.parts;
        let part = parts
            .get(id)
            .ok_or_else(|| unparsable("MIME part missing"))?;
        check_unambiguous(part)?;
        check_position(self.parsed, part, parent.map(|p| p.boundary))?;
        let is_root = parent.is_none();
        match classify(part, parent.is_some_and(|p| p.is_digest))? {
            // An attached .p7m or signed message is just an attachment; as the body it stops us.
            Node::Opaque(reason) if is_root || !is_attachment(part) => Err(reason),
            Node::Opaque(_) | Node::Other => Ok(()),
            Node::Text(kind) => {
                if !is_attachment(part) {
                    self.check_no_outer_delimiter(part)?;
                    self.found.push((id, kind));
                }
                Ok(())
            }
            Node::Multipart { subtype, children } => {
                let boundary = part
                    .content_type()
                    .and_then(|c| c.attribute("boundary"))
                    .ok_or_else(|| unparsable("multipart without a boundary"))?;
                if children.is_empty() {
                    return Err(unparsable(format!("multipart/{subtype} without any part")));
                }
                let boundary = boundary.as_bytes();
                // RFC 2046 §5.1.1: a boundary ends in a character other than a space; readers
                // differ on whether the spaces belong to it or are padding.
                if boundary.ends_with(b" ") || boundary.ends_with(b"\t") {
                    return Err(unparsable("MIME boundary ends with white space"));
                }
                // ... and must not occur in the parts it encloses. When an inner boundary
                // is the outer one, or it with "--" added or removed ("a--" in "a----"),
                // one line is a delimiter of both, and readers split the message differently.
                if self.boundaries.iter().any(|outer| clash(outer, boundary)) {
                    return Err(unparsable(
                        "nested MIME boundaries whose delimiter lines coincide",
                    ));
                }
                let me = Some(Parent {
                    boundary,
                    is_digest: subtype == limits::DEFUSED_DIGEST,
                });
                self.boundaries.push(boundary);
                for &child in children {
                    let before = self.found.len();
                    self.visit(child as usize, me, depth + 1)?;
                    // In an alternative every text alternative is body; elsewhere the first.
                    if subtype != "alternative" && self.found.len() > before {
                        break;
                    }
                }
                self.boundaries.pop();
                Ok(())
            }
        }
    }
}

impl Walker<'_, '_> {
    /// A delimiter line of an enclosing multipart inside a text part (its own boundary
    /// would have ended it): RFC 2046 §5.1.1 forbids it, and readers then disagree on
    /// where that multipart ends. Each text part is scanned once, against at most
    /// `MAX_DEPTH` boundaries.
    fn check_no_outer_delimiter(&self, part: &MessagePart<'_>) -> Result<(), SkipReason> {
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        let Some(content) = self.parsed.get(start..end) else {
            return Err(unparsable("part offsets out of range"));
        };
        let outer = content
            .split(|&b| b == b'\n')
            .filter(|line| line.starts_with(b"--"))
            .any(|line| self.boundaries.iter().any(|b| is_delimiter_line(line, b)));
        if outer {
            return Err(unparsable(
                "a text part contains a delimiter of an enclosing multipart",
            ));
        }
        Ok(())
    }
}

/// Delimiter lines are "--" boundary and "--" boundary "--": do two boundaries share one?
fn clash(a: &[u8], b: &[u8]) -> bool {
    a == b || a.strip_suffix(b"--") == Some(b) || b.strip_suffix(b"--") == Some(a)
}

/// The part must start right after a delimiter line of its parent's boundary and end right
/// before the next one (RFC 2046 §5.1.1: a delimiter is a line of its own, exactly "--"
/// boundary, optionally "--", then only whitespace). mail-parser also accepts delimiters in
/// mid-line and boundaries that merely start with the boundary; a mail reader may then see
/// different parts than the parser did, so we would not know what we are changing.
fn check_position(
    parsed: &[u8],
    part: &MessagePart<'_>,
    boundary: Option<&[u8]>,
) -> Result<(), SkipReason> {
    let (start, end) = (part.offset_header as usize, part.offset_end as usize);
    if start > end || end > parsed.len() {
        return Err(unparsable("part offsets out of range"));
    }
    let Some(boundary) = boundary else {
        // The top-level part is the whole message.
        return if end == parsed.len() {
            Ok(())
        } else {
            Err(unparsable("content after the end of the message"))
        };
    };
    // A delimiter line is short; do not scan far through anything else.
    let max_line = boundary.len() + 2 + 2 + 256;
    let misplaced = || unparsable("MIME boundary delimiter not on a line of its own");

    let before = parsed[..start].strip_suffix(b"\n").ok_or_else(misplaced)?;
    let window = &before[before.len().saturating_sub(max_line)..];
    let line = match window.iter().rposition(|&b| b == b'\n') {
        Some(i) => &window[i + 1..],
        None if window.len() == before.len() => window,
        None => return Err(misplaced()),
    };
    if !is_delimiter_line(line, boundary) {
        return Err(misplaced());
    }

    // A header without a blank line ends at the delimiter (RFC 2046 §5.1.1: the
    // body is optional); mail-parser would read the lines after it as the same header.
    let header = &parsed[start..(part.offset_body as usize).clamp(start, end)];
    if header
        .split(|&b| b == b'\n')
        .any(|line| is_delimiter_line(line, boundary))
    {
        return Err(misplaced());
    }

    let after = &parsed[end..];
    let after = match after
        .strip_prefix(b"\r\n")
        .or_else(|| after.strip_prefix(b"\n"))
    {
        Some(after) => after,
        // An empty body right after the header's blank line: that line break is also
        // the one the delimiter starts with (see `shares_delimiter_break`).
        None if shares_delimiter_break(parsed, part) => after,
        None => return Err(misplaced()),
    };
    let window = &after[..after.len().min(max_line)];
    let line = match window.iter().position(|&b| b == b'\n') {
        Some(i) => &window[..i],
        None if window.len() == after.len() => window,
        None => return Err(misplaced()),
    };
    if !is_delimiter_line(line, boundary) {
        return Err(misplaced());
    }
    Ok(())
}

/// The part's body is empty and its delimiter follows the blank line that ends its header
/// directly, without a line break of its own: "--b", header, blank line, "--b".
fn shares_delimiter_break(parsed: &[u8], part: &MessagePart<'_>) -> bool {
    let end = part.offset_end as usize;
    end == part.offset_body as usize
        && end > part.offset_header as usize
        && parsed[..end].ends_with(b"\n")
        && parsed
            .get(end..)
            .is_some_and(|rest| rest.starts_with(b"--"))
}

/// `line` (without its LF) is "--" boundary ["--"] followed by whitespace only.
fn is_delimiter_line(line: &[u8], boundary: &[u8]) -> bool {
    let Some(rest) = line
        .strip_prefix(b"--")
        .and_then(|l| l.strip_prefix(boundary))
    else {
        return false;
    };
    let rest = rest.strip_prefix(b"--").unwrap_or(rest);
    rest.iter().all(|&b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// Two Content-Type or Content-Transfer-Encoding fields: readers disagree on which one
/// counts, so we cannot know how the part will be read.
fn check_unambiguous(part: &MessagePart<'_>) -> Result<(), SkipReason> {
    for name in [HeaderName::ContentType, HeaderName::ContentTransferEncoding] {
        if part.headers.iter().filter(|h| h.name == name).count() > 1 {
            return Err(unparsable(format!(
                "duplicate {} header field",
                name.as_str()
            )));
        }
    }
    Ok(())
}

fn transfer_encoding(part: &MessagePart<'_>) -> Result<Cte, SkipReason> {
    let cte = part
        .content_transfer_encoding()
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let cte = match cte.as_str() {
        "" | "7bit" => Cte::SevenBit,
        "8bit" => Cte::EightBit,
        "binary" => Cte::Binary,
        "quoted-printable" => Cte::QuotedPrintable,
        "base64" => Cte::Base64,
        other => {
            return Err(unparsable(format!(
                "unsupported Content-Transfer-Encoding {other:?}"
            )));
        }
    };
    // Cross-check with how the parser read the part (it reads a part it could not
    // decode as unencoded).
    let expected = match cte {
        _ if part.is_encoding_problem => Encoding::None,
        Cte::QuotedPrintable => Encoding::QuotedPrintable,
        Cte::Base64 => Encoding::Base64,
        _ => Encoding::None,
    };
    if part.encoding != expected {
        return Err(unparsable("Content-Transfer-Encoding not understood"));
    }
    Ok(cte)
}

/// Decodes one body part, adds the footer and re-encodes it the same way.
fn rewrite_part(
    ctx: &Ctx<'_>,
    part: &MessagePart<'_>,
    kind: Kind,
) -> Result<Replacement, SkipReason> {
    let cte = transfer_encoding(part)?;
    // mail-parser gives up on invalid quoted-printable, which we decode leniently; where
    // the part ends was checked by `check_position`.
    if part.is_encoding_problem {
        match cte {
            Cte::QuotedPrintable => {}
            Cte::Base64 => return Err(unparsable("invalid base64 in a text part")),
            _ => {
                return Err(unparsable(
                    "a text part has a damaged encoding or no closing boundary",
                ));
            }
        }
    }
    // Into the body; where the part starts and ends was checked by `check_position`.
    let start = (part.offset_body as usize).wrapping_sub(ctx.base);
    let end = (part.offset_end as usize).wrapping_sub(ctx.base);
    if start > end || end > ctx.body.len() {
        return Err(unparsable("part offsets out of range"));
    }
    let region = &ctx.body[start..end];
    // An empty body directly followed by its delimiter (`shares_delimiter_break`): the
    // new body needs a line break of its own before the delimiter.
    let own_break = region.is_empty() && ctx.body[end..].starts_with(b"--");
    let ct: Option<&ContentType> = part.content_type();
    let charset_label = ct.and_then(|c| c.attribute("charset"));
    let charset = charset::classify(charset_label).ok_or_else(|| {
        unparsable(format!(
            "charset {:?} cannot take an appended footer",
            charset_label.unwrap_or_default()
        ))
    })?;
    let flowed = kind == Kind::Plain
        && ct
            .and_then(|c| c.attribute("format"))
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("flowed"));

    let content: Cow<[u8]> = match cte {
        Cte::SevenBit | Cte::EightBit | Cte::Binary => region.into(),
        Cte::QuotedPrintable => codec::qp_decode_lenient(region).into(),
        Cte::Base64 => base64_decode(region)
            .ok_or_else(|| unparsable("invalid base64 in a text part"))?
            .into(),
    };
    if let Some(reason) = inline_pgp(&content) {
        return Err(reason);
    }

    // Inside base64 the text keeps its own line breaks; elsewhere they are the wire's.
    let ceol: &'static [u8] = match cte {
        Cte::Base64 if content.windows(2).any(|w| w == b"\r\n") => b"\r\n",
        Cte::Base64 if content.contains(&b'\n') => b"\n",
        Cte::Base64 => b"\r\n",
        _ => ctx.eol,
    };
    let ascii_only = cte == Cte::SevenBit;
    let source = match kind {
        Kind::Plain => ctx.text,
        Kind::Html => ctx.html,
    };
    let footer = render_footer(source, kind, charset, ascii_only, ceol, flowed);
    let new_content = match kind {
        Kind::Plain => append_plain(&content, &footer, ceol),
        Kind::Html => insert_html(&content, &footer, ceol),
    };

    let mut bytes = match cte {
        Cte::SevenBit | Cte::EightBit | Cte::Binary => new_content,
        Cte::QuotedPrintable => codec::qp_encode(&new_content, ctx.eol),
        Cte::Base64 => codec::base64_encode(&new_content, ctx.eol, region.ends_with(b"\n")),
    };
    if own_break {
        bytes.extend_from_slice(ctx.eol);
    }
    Ok(Replacement { start, end, bytes })
}

/// Inline PGP: appending text after an armored block makes readers show a "partially
/// signed/encrypted" message, which we would rather not cause.
fn inline_pgp(content: &[u8]) -> Option<SkipReason> {
    const SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
    const ENCRYPTED: &[u8] = b"-----BEGIN PGP MESSAGE-----";
    let mut rest = content;
    // Both markers start with five dashes; jump between dashes instead of testing every byte.
    while let Some(i) = rest.iter().position(|&b| b == b'-') {
        rest = &rest[i..];
        if rest.starts_with(SIGNED) {
            return Some(SkipReason::Signed);
        }
        if rest.starts_with(ENCRYPTED) {
            return Some(SkipReason::Encrypted);
        }
        rest = &rest[1..];
    }
    None
}

#[cfg(test)]
mod tests;
