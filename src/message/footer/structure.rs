//! Which parts are the body, and whether we read the MIME structure the way a mail reader
//! would (see the module documentation of `footer`).

use mail_parser::{HeaderName, MessagePart, MimeHeaders, PartType};

use super::{Kind, MAX_DEPTH, SkipReason, limits, unparsable};

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

/// The parts that are the message body, with their kind, in message order; `parsed` is
/// what the parser read, `parts` what it made of it.
pub(super) fn find_body(
    parsed: &[u8],
    parts: &[MessagePart<'_>],
) -> Result<Vec<(usize, Kind)>, SkipReason> {
    let mut walker = Walker {
        parsed,
        parts,
        found: Vec::new(),
        boundaries: Vec::new(),
    };
    walker.visit(0, None, 0)?;
    Ok(walker.found)
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
