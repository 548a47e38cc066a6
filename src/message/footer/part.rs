//! One body part: decoded with its own Content-Transfer-Encoding, given the footer (the
//! text insertion is in `text`), and re-encoded the same way. The MIME walk that picks the
//! parts is in `mod.rs`.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, Encoding, MessagePart, MimeHeaders};

use super::limits::{DEFUSED_BASE64, Defused};
use super::text::{append_plain, insert_html, render_footer};
use super::{SkipReason, charset, codec, unparsable};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Plain,
    Html,
}

/// The Content-Transfer-Encodings we can decode and re-encode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cte {
    SevenBit,
    EightBit,
    Binary,
    QuotedPrintable,
    Base64,
}

/// One re-encoded part body: replaces `body[start..end]`.
pub(super) struct Replacement {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) bytes: Vec<u8>,
}

/// What the rewriting of parts needs to know.
pub(super) struct Ctx<'a> {
    /// The original body: bytes are always taken from here, never from the parser's copy.
    pub(super) body: &'a [u8],
    /// Where the body starts in the parser's input (header fields + blank line + body).
    pub(super) base: usize,
    pub(super) defused: Defused,
    pub(super) eol: &'static [u8],
    pub(super) text: &'a str,
    pub(super) html: &'a str,
}

/// The part's Content-Transfer-Encoding, and whether the parser read it defused (a
/// base64 part it left undecoded, `limits`).
fn transfer_encoding(part: &MessagePart<'_>, defused: Defused) -> Result<(Cte, bool), SkipReason> {
    let cte = part
        .content_transfer_encoding()
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let cte = match cte.as_str() {
        "" | "7bit" => Cte::SevenBit,
        "8bit" => Cte::EightBit,
        "binary" => Cte::Binary,
        "quoted-printable" => Cte::QuotedPrintable,
        "base64" if !defused.base64 => Cte::Base64,
        DEFUSED_BASE64 if defused.base64 => return defused_base64(part),
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
    Ok((cte, false))
}

fn defused_base64(part: &MessagePart<'_>) -> Result<(Cte, bool), SkipReason> {
    // Undecoded, the parser reads the part as it reads any unencoded one.
    if part.encoding != Encoding::None {
        return Err(unparsable("Content-Transfer-Encoding not understood"));
    }
    Ok((Cte::Base64, true))
}

/// Whether the parser, had it decoded this base64 part as it does without `limits`'s
/// defusing, would have read it: its own decoder's verdict on the part's bytes, so damaged
/// base64 is refused as it was before the defusing. (Only the text parts that get the
/// footer are decoded, attachments never are.) The region ends before the delimiter line
/// (`structure`), so no boundary is involved: a "--" in it is damage, as for the parser.
fn parser_reads_base64(region: &[u8]) -> bool {
    let mut stream = MessageStream::new(region);
    stream.decode_base64_mime(b"").0 == region.len()
}

/// Decodes one body part, adds the footer and re-encodes it the same way.
pub(super) fn rewrite_part(
    ctx: &Ctx<'_>,
    part: &MessagePart<'_>,
    kind: Kind,
) -> Result<Replacement, SkipReason> {
    let (cte, defused) = transfer_encoding(part, ctx.defused)?;
    // Into the body; where the part starts and ends was checked by `structure`.
    let start = (part.offset_body as usize).wrapping_sub(ctx.base);
    let end = (part.offset_end as usize).wrapping_sub(ctx.base);
    if start > end || end > ctx.body.len() {
        return Err(unparsable("part offsets out of range"));
    }
    let region = &ctx.body[start..end];
    let encoding_problem = part.is_encoding_problem || defused && !parser_reads_base64(region);
    // mail-parser gives up on invalid quoted-printable, which we decode leniently (where
    // the part ends does not depend on it, and was checked by `structure`).
    if encoding_problem {
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
    // An empty body directly followed by its delimiter (see
    // `structure::shares_delimiter_break`): the new body needs a line break of its own
    // before the delimiter.
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
