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
//!   its boundary, a text part with a damaged encoding or no closing boundary, a delimiter
//!   not at the start of a line, duplicate Content-Type or Content-Transfer-Encoding fields,
//!   an unknown Content-Transfer-Encoding, a charset in which ASCII bytes do not mean ASCII
//!   (UTF-16, UTF-7, EBCDIC), or structures beyond the resource limits below.
//!   A part-level problem only skips that part; the outcome is `Skipped` when no part is left.
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
//! * Line endings: the message's own style (CRLF from Postfix; LF if the body is LF-only)
//!   for everything written on the wire; inside a base64 text part the decoded text's style.
//!
//! # Resource limits (adversarial input)
//! Never panics; work is linear in the message size: deep nesting is not followed beyond
//! `MAX_DEPTH` levels, nested messages are kept from the parser (it builds them
//! recursively), and inputs that would make the parser rescan the message over and over
//! (huge or missing boundaries) are refused before parsing, see the `limits` module.

mod charset;
mod codec;
mod limits;

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::html::html_to_text;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    ContentType, Encoding, HeaderName, MessageParser, MessagePart, MimeHeaders, PartType,
};

use charset::Charset;

/// Larger messages are left unchanged ([`SkipReason::TooLarge`]), never truncated.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// Multipart nesting we follow looking for the body; real mail stays well below 10.
const MAX_DEPTH: usize = 32;
/// RFC 5322 §2.1.1 line length limit (without CRLF) for the footer lines we write.
const MAX_LINE: usize = 998;

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

fn unparsable(what: impl Into<String>) -> SkipReason {
    SkipReason::Unparsable(what.into())
}

/// Adds `footer` to the body text parts of a message.
///
/// `headers` are the message's header fields in order, as the milter received them
/// (values may contain LF-only folding); `body` is the raw body. The result's `body` is the
/// complete new body; the header is not changed (and need not be).
pub fn add_footer(headers: &[(String, String)], body: &[u8], footer: &Footer) -> Outcome {
    match add_footer_inner(headers, body, footer) {
        Ok((body, parts)) => Outcome::Added { body, parts },
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
) -> Result<(Vec<u8>, usize), SkipReason> {
    let header_size = headers
        .iter()
        .fold(0usize, |n, (k, v)| n.saturating_add(k.len() + v.len() + 4));
    if body.len().saturating_add(header_size) > MAX_MESSAGE_SIZE {
        return Err(SkipReason::TooLarge);
    }

    let (text, html) = footer_sources(footer).ok_or(SkipReason::NoTextBody)?;
    let eol = line_ending(body);

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
    let mut first_problem = None;
    for (id, kind) in targets {
        let Some(part) = message.parts.get(id) else {
            continue;
        };
        match rewrite_part(&ctx, part, kind) {
            Ok(r) => replacements.push(r),
            // Protected content anywhere in the body: leave the whole message alone.
            Err(reason @ (SkipReason::Signed | SkipReason::Encrypted)) => return Err(reason),
            Err(reason) => {
                first_problem.get_or_insert(reason);
            }
        }
    }
    if replacements.is_empty() {
        return Err(first_problem.unwrap_or(SkipReason::NoTextBody));
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
    Ok((out, replacements.len()))
}

/// The plain and HTML footer texts, each derived from the other when empty.
fn footer_sources<'a>(footer: &Footer<'a>) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    let has_text = !footer.text.trim().is_empty();
    let has_html = !footer.html.trim().is_empty();
    match (has_text, has_html) {
        (true, true) => Some((footer.text.into(), footer.html.into())),
        (true, false) => Some((footer.text.into(), text_to_html(footer.text).into())),
        (false, true) => Some((html_to_text(footer.html).into(), footer.html.into())),
        (false, false) => None,
    }
}

fn text_to_html(text: &str) -> String {
    let mut html = String::from("<p>");
    let text = text.replace("\r\n", "\n");
    for (i, line) in text.trim_matches('\n').split('\n').enumerate() {
        if i > 0 {
            html.push_str("<br>\n");
        }
        for c in line.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                _ => html.push(c),
            }
        }
    }
    html.push_str("</p>");
    html
}

/// CRLF (what Postfix hands a milter) unless the body is LF-only.
fn line_ending(body: &[u8]) -> &'static [u8] {
    let has_lf = body.contains(&b'\n');
    if has_lf && !body.windows(2).any(|w| w == b"\r\n") {
        b"\n"
    } else {
        b"\r\n"
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
                    self.found.push((id, kind));
                }
                Ok(())
            }
            Node::Multipart { subtype, children } => {
                let boundary = part
                    .content_type()
                    .and_then(|c| c.attribute("boundary"))
                    .ok_or_else(|| unparsable("multipart without a boundary"))?;
                let me = Some(Parent {
                    boundary: boundary.as_bytes(),
                    is_digest: subtype == limits::DEFUSED_DIGEST,
                });
                for &child in children {
                    let before = self.found.len();
                    self.visit(child as usize, me, depth + 1)?;
                    // In an alternative every text alternative is body; elsewhere the first.
                    if subtype != "alternative" && self.found.len() > before {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
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

    let after = &parsed[end..];
    let after = after
        .strip_prefix(b"\r\n")
        .or_else(|| after.strip_prefix(b"\n"))
        .ok_or_else(misplaced)?;
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
    // Cross-check with how the parser read the part.
    let expected = match cte {
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
    if part.is_encoding_problem {
        return Err(unparsable(
            "a text part has a damaged encoding or no closing boundary",
        ));
    }
    // Into the body; where the part starts and ends was checked by `check_position`.
    let start = (part.offset_body as usize).wrapping_sub(ctx.base);
    let end = (part.offset_end as usize).wrapping_sub(ctx.base);
    if start > end || end > ctx.body.len() {
        return Err(unparsable("part offsets out of range"));
    }
    let region = &ctx.body[start..end];

    let cte = transfer_encoding(part)?;
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
        Cte::QuotedPrintable => quoted_printable_decode(region)
            .ok_or_else(|| unparsable("invalid quoted-printable in a text part"))?
            .into(),
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

    let bytes = match cte {
        Cte::SevenBit | Cte::EightBit | Cte::Binary => new_content,
        Cte::QuotedPrintable => codec::qp_encode(&new_content, ctx.eol),
        Cte::Base64 => codec::base64_encode(&new_content, ctx.eol, region.ends_with(b"\n")),
    };
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

fn ends_with_line_break(s: &[u8]) -> bool {
    s.ends_with(b"\n")
}

fn append_plain(content: &[u8], footer: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + footer.len() + 2 * eol.len());
    out.extend_from_slice(content);
    if !out.is_empty() {
        if !ends_with_line_break(&out) {
            out.extend_from_slice(eol);
        }
        // One blank line between the text and the footer, unless there already is one.
        let before_last = &out[..out.len() - 1];
        let before_last = before_last.strip_suffix(b"\r").unwrap_or(before_last);
        if !(before_last.ends_with(b"\n") || before_last.is_empty()) {
            out.extend_from_slice(eol);
        }
    }
    out.extend_from_slice(footer);
    out
}

fn insert_html(content: &[u8], footer: &[u8], eol: &[u8]) -> Vec<u8> {
    let at = last_body_close(content).unwrap_or(content.len());
    let mut out = Vec::with_capacity(content.len() + footer.len() + eol.len());
    out.extend_from_slice(&content[..at]);
    if !out.is_empty() && !ends_with_line_break(&out) {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(footer);
    out.extend_from_slice(&content[at..]);
    out
}

/// Position of the last `</body>` tag (any case, `</body >` too).
fn last_body_close(html: &[u8]) -> Option<usize> {
    let mut end = html.len();
    while let Some(i) = html[..end]
        .windows(6)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body"))
    {
        match html.get(i + 6) {
            Some(b'>' | b' ' | b'\t' | b'\r' | b'\n') => return Some(i),
            _ => end = i + 5, // keep looking before this "</body…"
        }
    }
    None
}

/// The footer in the part's charset, one `eol` after each line (see module docs for the
/// charset, 7bit, line length and format=flowed rules).
fn render_footer(
    source: &str,
    kind: Kind,
    charset: Charset,
    ascii_only: bool,
    eol: &[u8],
    flowed: bool,
) -> Vec<u8> {
    let source = source.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::with_capacity(source.len() + 16);
    for line in source.trim_matches('\n').split('\n') {
        let mut line_start = out.len();
        let mut last_space = None;
        let line = if flowed {
            line.trim_end_matches(' ')
        } else {
            line
        };
        if flowed && (line.starts_with([' ', '>']) || line.starts_with("From ")) {
            out.push(b' '); // RFC 3676 §4.4 space-stuffing
        }
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                continue;
            }
            let unit = out.len();
            if !charset::push_char(&mut out, c, charset, ascii_only) {
                match kind {
                    Kind::Html => {
                        out.extend_from_slice(format!("&#x{:X};", u32::from(c)).as_bytes())
                    }
                    Kind::Plain => {
                        out.extend_from_slice(charset::transliterate(c).unwrap_or("?").as_bytes())
                    }
                }
            }
            if out.len() - line_start > MAX_LINE {
                // Break at the last space (same meaning in HTML, a word wrap in text),
                // else before this character.
                let at = last_space.take().unwrap_or(unit);
                let replaced = usize::from(at != unit);
                out.splice(at..at + replaced, eol.iter().copied());
                line_start = at + eol.len();
            }
            if c == ' ' && out.len() == unit + 1 {
                last_space = Some(unit);
            }
        }
        out.extend_from_slice(eol);
    }
    out
}

#[cfg(test)]
mod tests;
