//! Keeping mail-parser linear and stack-safe on adversarial input.
//!
//! Measured/read in mail-parser 0.11.9:
//! * nested messages (message/rfc822, message/global, and the entries of a
//!   multipart/digest) are built as a recursive structure whose `into_owned` and `Drop`
//!   recurse once per level: a chain of 100,000 of them overflows a 2 MiB stack, which
//!   aborts the whole process. We never enter nested messages anyway, so the copy given to
//!   the parser has every "message" and "digest" (any case) defused: the last letter becomes
//!   '_'. Type and subtype tokens cannot be split, so no spelling escapes this, and the
//!   same-length change keeps every offset valid. (Boundaries containing those words are
//!   changed identically in their declaration and their delimiters.) This also covers
//!   base64-encoded nested messages, which the parser would decode and parse.
//! * the parser decodes every base64 part it reads, attachments included: a 25 MB scan
//!   cost 19 MB more per message in flight, only to be thrown away (we locate parts; we
//!   never read an attachment's content). So "base64" (any case) becomes "base6_" in the
//!   same way, and the parser leaves every part's bytes as they are; the text parts that
//!   get the footer are decoded by `part`, which also asks the parser's own base64 decoder
//!   whether it would have read the part ([`DEFUSED_BASE64`]). A message that already
//!   contains "base6_" keeps its "base64" (the parser's copy could not tell them apart).
//! * the boundary is compared at every "--", so its length multiplies the parsing cost:
//!   boundaries longer than [`MAX_BOUNDARY_LEN`] are refused, as are RFC 2231 continued ones
//!   ("boundary*0=…", which the parser joins).
//! * for a multipart whose boundary never occurs the parser scans the rest of the message
//!   and backtracks: refused when more than [`MAX_UNUSED_BOUNDARIES`] boundaries are
//!   declared but never used as a delimiter line after the declaration (a stray
//!   "boundary=" in text is tolerated), or more than [`MAX_BOUNDARIES`] are declared.
//!
//! Everything here is a single pass (two for the boundary check) over the message.

use std::collections::HashMap;

use super::{SkipReason, unparsable};

/// RFC 2046 §5.1.1 allows 70; a little slack for sloppy generators.
pub(super) const MAX_BOUNDARY_LEN: usize = 200;
/// Declared boundaries (real messages have a handful; forwarded messages add theirs).
pub(super) const MAX_BOUNDARIES: usize = 1000;
/// Declared boundaries with no delimiter line after them (each costs the parser a rescan).
pub(super) const MAX_UNUSED_BOUNDARIES: usize = 4;
/// Comments and folding we skip between "boundary", "=" and the value.
const MAX_CFWS: usize = 1024;

/// The subtype a defused multipart/digest has in the parser's output.
pub(super) const DEFUSED_DIGEST: &str = "diges_";

/// The Content-Transfer-Encoding a defused "base64" has in the parser's output.
pub(super) const DEFUSED_BASE64: &str = "base6_";

/// What [`prepare`] changed beyond nested messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Defused {
    /// "base64" reads "base6_" in the parser's copy (see the module documentation).
    pub(super) base64: bool,
}

/// Makes `raw` safe for the parser (in place, same length), or says why it should not be
/// parsed at all.
pub(super) fn prepare(raw: &mut [u8]) -> Result<Defused, SkipReason> {
    let base64 = !contains_ci(raw, DEFUSED_BASE64.as_bytes());
    defuse(raw, base64);
    check_boundaries(raw)?;
    Ok(Defused { base64 })
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.get(..needle.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(needle))
}

/// "message" → "messag_", "digest" → "diges_", and with `base64` "base64" → "base6_" (see
/// the module documentation).
fn defuse(copy: &mut [u8], base64: bool) {
    let mut i = 0;
    while i < copy.len() {
        let n = match copy[i] | 0x20 {
            b'm' if starts_with_ci(&copy[i..], b"message") => 7,
            b'd' if starts_with_ci(&copy[i..], b"digest") => 6,
            b'b' if base64 && starts_with_ci(&copy[i..], b"base64") => 6,
            _ => {
                i += 1;
                continue;
            }
        };
        copy[i + n - 1] = b'_';
        i += n;
    }
}

/// A `boundary=` parameter: where, and its value when we can compare it byte for byte
/// with delimiter lines the way the parser will (no escapes, comments, encoded words).
struct Declared<'a> {
    pos: usize,
    value: Option<&'a [u8]>,
}

fn check_boundaries(raw: &[u8]) -> Result<(), SkipReason> {
    let mut declared = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] | 0x20 == b'b'
            && starts_with_ci(&raw[i..], b"boundary")
            && let Some(value) = boundary_value(&raw[i + 8..])?
        {
            if declared.len() == MAX_BOUNDARIES {
                return Err(unparsable(format!(
                    "more than {MAX_BOUNDARIES} MIME boundaries"
                )));
            }
            declared.push(Declared { pos: i, value });
        }
        i += 1;
    }
    if declared.len() <= MAX_UNUSED_BOUNDARIES {
        return Ok(());
    }

    // Last delimiter line ("--" boundary ["--"] at a line start) for each declared value.
    let mut last_use: HashMap<&[u8], Option<usize>> = declared
        .iter()
        .filter_map(|d| d.value.map(|v| (v, None)))
        .collect();
    let mut line_start = 0;
    while line_start < raw.len() {
        let line_end = raw[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |n| line_start + n);
        if let Some(rest) = raw[line_start..line_end].strip_prefix(b"--")
            && rest.len() <= MAX_BOUNDARY_LEN + 4
        {
            let rest = trim_end_wsp(rest);
            for candidate in [Some(rest), rest.strip_suffix(b"--")].into_iter().flatten() {
                if let Some(last) = last_use.get_mut(candidate) {
                    *last = Some(line_start);
                }
            }
        }
        line_start = line_end + 1;
    }
    let unused = declared
        .iter()
        .filter(|d| {
            d.value
                .and_then(|v| last_use.get(v).copied().flatten())
                .is_none_or(|last| last < d.pos)
        })
        .count();
    if unused > MAX_UNUSED_BOUNDARIES {
        return Err(unparsable(format!(
            "{unused} MIME boundaries that are never used"
        )));
    }
    Ok(())
}

fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    &s[..s.len() - n]
}

/// Skips whitespace, line breaks and (nested) comments, as the Content-Type parser does.
fn skip_cfws(s: &[u8]) -> Result<&[u8], SkipReason> {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        if i > MAX_CFWS {
            return Err(unparsable("over-long comment in a MIME boundary parameter"));
        }
        if depth > 0 {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'(' => depth += 1,
                b')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'(' => depth = 1,
            _ => return Ok(&s[i..]),
        }
    }
    Ok(&s[s.len()..])
}

/// After the word "boundary": `None` when no parameter value follows, else the value if it
/// is comparable byte for byte. Errors for values the parser would make too long.
fn boundary_value(s: &[u8]) -> Result<Option<Option<&[u8]>>, SkipReason> {
    let s = skip_cfws(s)?;
    if let Some(rest) = s.strip_prefix(b"*") {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = &rest[digits..];
        let rest = rest.strip_prefix(b"*").unwrap_or(rest);
        if skip_cfws(rest)?.starts_with(b"=") {
            return Err(unparsable("RFC 2231 encoded MIME boundary"));
        }
        return Ok(None);
    }
    let Some(s) = s.strip_prefix(b"=") else {
        return Ok(None);
    };
    let s = skip_cfws(s)?;
    let too_long = || {
        unparsable(format!(
            "MIME boundary longer than {MAX_BOUNDARY_LEN} characters"
        ))
    };
    // Enough to see that a value is too long, without reading further.
    const SCAN: usize = MAX_BOUNDARY_LEN + 3;
    let (value, comparable) = if let Some(quoted) = s.strip_prefix(b"\"") {
        // Up to the closing quote or the end of the field; folding inside a quoted value is
        // joined by the parser, so it counts towards the length.
        let mut end = None;
        let mut escaped = false;
        for (i, &b) in quoted.iter().enumerate().take(SCAN) {
            let field_ends = b == b'\n' && !matches!(quoted.get(i + 1), Some(b' ' | b'\t'));
            if (b == b'"' && !escaped) || field_ends {
                end = Some(i);
                break;
            }
            escaped = b == b'\\' && !escaped;
        }
        let end = match end {
            Some(end) => end,
            None if quoted.len() <= SCAN => quoted.len(),
            None => return Err(too_long()),
        };
        let value = &quoted[..end];
        let plain = !value.iter().any(|&b| matches!(b, b'\\' | b'\r' | b'\n'));
        (value, plain)
    } else {
        // Up to the end of the parameter; the parser may keep inner spaces.
        let end = s
            .iter()
            .take(SCAN)
            .position(|&b| matches!(b, b';' | b'\r' | b'\n'))
            .unwrap_or(s.len().min(SCAN));
        let value = trim_end_wsp(&s[..end]);
        let plain = !value
            .iter()
            .any(|&b| matches!(b, b' ' | b'\t' | b'(' | b'"' | b'\\'));
        (value, plain)
    };
    if value.len() > MAX_BOUNDARY_LEN {
        return Err(too_long());
    }
    let comparable = comparable && !value.is_empty() && !value.windows(2).any(|w| w == b"=?");
    Ok(Some(comparable.then_some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_message_words_are_defused_in_place() {
        let mut m = b"Content-Type: MESSAGE/rfc822\nx: multipart/Digest; message".to_vec();
        let len = m.len();
        defuse(&mut m, false);
        assert_eq!(m.len(), len);
        assert_eq!(
            m,
            b"Content-Type: MESSAG_/rfc822\nx: multipart/Diges_; messag_"
        );
    }

    #[test]
    fn base64_is_defused_unless_the_defused_spelling_is_already_there() {
        let mut m = b"Content-Transfer-Encoding: BASE64\n\nbase64 base6".to_vec();
        assert_eq!(prepare(&mut m), Ok(Defused { base64: true }));
        assert_eq!(m, b"Content-Transfer-Encoding: BASE6_\n\nbase6_ base6");
        let mut m = b"Content-Transfer-Encoding: base64\n\nBase6_".to_vec();
        assert_eq!(prepare(&mut m), Ok(Defused { base64: false }));
        assert_eq!(m, b"Content-Transfer-Encoding: base64\n\nBase6_");
    }

    #[test]
    fn boundary_values() {
        fn v(s: &str) -> Result<Option<Option<&[u8]>>, SkipReason> {
            boundary_value(s.as_bytes())
        }
        assert_eq!(v("=\"abc\"; x").unwrap(), Some(Some(&b"abc"[..])));
        assert_eq!(v(" = abc ;").unwrap(), Some(Some(&b"abc"[..])));
        assert_eq!(
            v("=\"simple boundary\"").unwrap(),
            Some(Some(&b"simple boundary"[..]))
        );
        assert_eq!(v("(c)=(d)abc\r\n").unwrap(), Some(Some(&b"abc"[..])));
        assert_eq!(v("=abc def").unwrap(), Some(None));
        assert_eq!(v("==?utf-8?q?abc?=").unwrap(), Some(None));
        assert_eq!(v(" of the field").unwrap(), None);
        assert_eq!(v("*").unwrap(), None);
        assert!(v("*0=abc").is_err());
        assert!(v("*=utf-8''abc").is_err());
        assert!(v(&format!("=\"{}\"", "x".repeat(201))).is_err());
        assert!(v(&format!("={}", "x".repeat(201))).is_err());
        assert_eq!(
            v("=\"unterminated").unwrap(),
            Some(Some(&b"unterminated"[..]))
        );
        assert!(v(&format!("=\"{}", "x".repeat(300))).is_err());
        assert!(v(&format!("({}", "x".repeat(2000))).is_err());
        // Folded quoted value: the parser joins the pieces.
        assert!(v(&format!("=\"{}\r\n {}\"", "x".repeat(150), "y".repeat(150))).is_err());
    }

    #[test]
    fn unused_boundaries() {
        let used = |n: usize| {
            let mut m = String::new();
            for i in 0..n {
                m.push_str(&format!(
                    "Content-Type: multipart/mixed; boundary=\"b{i}\"\n\n--b{i}\n"
                ));
            }
            for i in (0..n).rev() {
                m.push_str(&format!("--b{i}--\n"));
            }
            m
        };
        assert!(check_boundaries(used(500).as_bytes()).is_ok());
        assert!(check_boundaries(used(1001).as_bytes()).is_err());
        let unused = |n: usize| "Content-Type: multipart/mixed; boundary=x\n".repeat(n) + "--y\n";
        assert!(check_boundaries(unused(4).as_bytes()).is_ok());
        assert!(check_boundaries(unused(5).as_bytes()).is_err());
        // A delimiter only *before* the declaration does not count.
        let mut before: String = (0..5).map(|i| format!("--b{i}\n")).collect();
        for i in 0..5 {
            before.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\n\n"));
        }
        assert!(check_boundaries(before.as_bytes()).is_err());
        let after: String = (0..5).map(|i| format!("--b{i}--\n")).collect();
        assert!(check_boundaries((before + &after).as_bytes()).is_ok());
    }
}
