//! One body part: decoded with its own Content-Transfer-Encoding, given the footer (the
//! text insertion is in `text`), and re-encoded the same way. The MIME walk that picks the
//! parts is in `mod.rs`.

use std::borrow::Cow;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::{ContentType, Encoding, MessagePart, MimeHeaders};

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
    pub(super) eol: &'static [u8],
    pub(super) text: &'a str,
    pub(super) html: &'a str,
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
pub(super) fn rewrite_part(
    ctx: &Ctx<'_>,
    part: &MessagePart<'_>,
    kind: Kind,
) -> Result<Replacement, SkipReason> {
    let cte = transfer_encoding(part)?;
    // mail-parser gives up on invalid quoted-printable, which we decode leniently (where
    // the part ends does not depend on it, and was checked by `structure`).
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
    // Into the body; where the part starts and ends was checked by `structure`.
    let start = (part.offset_body as usize).wrapping_sub(ctx.base);
    let end = (part.offset_end as usize).wrapping_sub(ctx.base);
    if start > end || end > ctx.body.len() {
        return Err(unparsable("part offsets out of range"));
    }
    let region = &ctx.body[start..end];
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
