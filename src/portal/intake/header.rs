//! The header block of an arriving message: where the recipient's mobile number comes from
//! (first hit wins: the `X-NTA7516-Phone` header, which only trusted clients can set — the
//! milter removes it from everyone else — then a `[sms:+316…]` tag in the Subject), and the
//! removal of that tag. Everything else stays byte-identical, so that the stored original
//! is what the MTA delivered.
//!
//! The tag is looked for in the Subject as written (RFC 5322 §2.2 raw field); a tag inside
//! an RFC 2047 encoded-word is not seen (the sender then learns that no number was found).

use crate::portal::phone::Phone;

/// Longest header block read before the body (larger: the message is refused, 552).
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// The header that supplies the number (a fixed name).
pub const PHONE_HEADER: &str = "X-NTA7516-Phone";
const TAG_OPEN: &[u8] = b"[sms:";
/// A Message-ID longer than an RFC 5322 line is not one; not recorded.
const MAX_MESSAGE_ID: usize = 998;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneSource {
    Header,
    SubjectTag,
}

#[derive(Debug, Default)]
pub struct Facts {
    pub phone: Option<(Phone, PhoneSource)>,
    /// A number was given but is not a usable mobile number: why.
    pub bad_phone: Option<String>,
    pub message_id: Option<String>,
    /// The message ids of `In-Reply-To` and `References` (without angle brackets, at most
    /// [`MAX_REFERENCES`]): an answer to a reply the portal sent finds its thread by them.
    pub references: Vec<String>,
    /// The Subject as written (unfolded), for a sender's reply that gives a number.
    pub subject: Option<String>,
}

/// Message ids kept from `In-Reply-To` and `References` (a long thread's oldest are
/// dropped; the reply being answered is in `In-Reply-To`).
pub const MAX_REFERENCES: usize = 32;

/// The `<id>` message ids in a field value (RFC 5322 `msg-id`), bounded.
fn msg_ids(v: &str, out: &mut Vec<String>) {
    for part in v.split('<').skip(1) {
        if out.len() >= MAX_REFERENCES {
            return;
        }
        if let Some((id, _)) = part.split_once('>')
            && !id.is_empty()
            && id.len() <= MAX_MESSAGE_ID
            && !id.contains(char::is_whitespace)
            && !out.iter().any(|o| o == id)
        {
            out.push(id.to_string());
        }
    }
}

/// One header field: byte range in the block, with its continuation lines.
struct Field {
    start: usize,
    end: usize,
    colon: usize,
}

fn fields(block: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let end = block[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(block.len(), |i| pos + i + 1);
        let line = &block[pos..end];
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(last) = out.last_mut() {
                last.end = end;
            }
        } else if let Some(c) = line.iter().position(|&b| b == b':') {
            out.push(Field {
                start: pos,
                end,
                colon: pos + c,
            });
        }
        pos = end;
    }
    out
}

fn name_is(block: &[u8], f: &Field, name: &str) -> bool {
    block[f.start..f.colon]
        .trim_ascii()
        .eq_ignore_ascii_case(name.as_bytes())
}

fn value(block: &[u8], f: &Field) -> String {
    String::from_utf8_lossy(&block[f.colon + 1..f.end])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds the tag in `subject` (a field's bytes): range to remove and the text inside.
fn find_tag(subject: &[u8]) -> Option<(usize, usize, String)> {
    let lower = subject.to_ascii_lowercase();
    let open = lower.windows(TAG_OPEN.len()).position(|w| w == TAG_OPEN)?;
    let inner_start = open + TAG_OPEN.len();
    let close = inner_start + subject[inner_start..].iter().position(|&b| b == b']')?;
    let inner = String::from_utf8_lossy(&subject[inner_start..close]).into_owned();
    let mut start = open;
    let mut end = close + 1;
    // One space goes with the tag, so "[sms:+31…] Uitslag" becomes "Uitslag".
    if subject.get(end) == Some(&b' ') {
        end += 1;
    } else if start > 0 && subject[start - 1] == b' ' {
        // Tag at the end of the line: drop the space before it.
        start -= 1;
    }
    Some((start, end, inner))
}

/// Analyses the header block and returns it with a valid subject tag removed.
pub fn analyse(block: &[u8]) -> (Vec<u8>, Facts) {
    let mut facts = Facts::default();
    let fields = fields(block);
    for f in &fields {
        if name_is(block, f, "Message-ID") && facts.message_id.is_none() {
            let v = value(block, f);
            if !v.is_empty() && v.len() <= MAX_MESSAGE_ID {
                facts.message_id = Some(v);
            }
        }
    }
    if let Some(f) = fields.iter().find(|f| name_is(block, f, "Subject")) {
        facts.subject = Some(value(block, f));
    }
    for name in ["In-Reply-To", "References"] {
        if let Some(f) = fields.iter().find(|f| name_is(block, f, name)) {
            msg_ids(&value(block, f), &mut facts.references);
        }
    }
    if let Some(f) = fields.iter().find(|f| name_is(block, f, PHONE_HEADER)) {
        match Phone::parse(&value(block, f)) {
            Ok(p) => facts.phone = Some((p, PhoneSource::Header)),
            Err(e) => facts.bad_phone = Some(format!("{PHONE_HEADER}: {e}")),
        }
    }
    let mut out = block.to_vec();
    if let Some(f) = fields.iter().find(|f| name_is(block, f, "Subject"))
        && let Some((start, end, inner)) = find_tag(&block[f.colon + 1..f.end])
    {
        match Phone::parse(&inner) {
            Ok(p) => {
                let base = f.colon + 1;
                out = [&block[..base + start], &block[base + end..]].concat();
                if facts.phone.is_none() {
                    facts.phone = Some((p, PhoneSource::SubjectTag));
                    facts.bad_phone = None;
                }
            }
            Err(e) => {
                if facts.phone.is_none() {
                    facts.bad_phone = Some(format!("subject tag: {e}"));
                }
            }
        }
    }
    (out, facts)
}

/// The end of the header block in `buf`: the offset just after the empty line, if any.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    while pos < buf.len() {
        let end = buf[pos..].iter().position(|&b| b == b'\n')? + pos + 1;
        let line = &buf[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return Some(end);
        }
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_wins_and_the_tag_is_removed_byte_exactly() {
        let block = b"From: a@zkh.example\r\nSubject: [sms:+31612345678] Uitslag\r\n\
X-NTA7516-Phone: +31 6 87654321\r\nMessage-ID: <m1@zkh>\r\n\r\n";
        let (out, f) = analyse(block);
        assert_eq!(
            out,
            b"From: a@zkh.example\r\nSubject: Uitslag\r\n\
X-NTA7516-Phone: +31 6 87654321\r\nMessage-ID: <m1@zkh>\r\n\r\n"
        );
        let (p, src) = f.phone.unwrap();
        assert_eq!((p.e164(), src), ("+31687654321", PhoneSource::Header));
        assert_eq!(f.message_id.as_deref(), Some("<m1@zkh>"));
        let (_, f) = analyse(
            b"In-Reply-To: <r1@portal>\r\nReferences: <a@x> <b@y>\r\n <r1@portal> <bad id>\r\n\r\n",
        );
        assert_eq!(f.references, ["r1@portal", "a@x", "b@y"]);
        let many: String = (0..100).map(|i| format!("<{i}@x> ")).collect();
        let (_, f) = analyse(format!("References: {many}\r\n\r\n").as_bytes());
        assert_eq!(f.references.len(), MAX_REFERENCES);
    }

    #[test]
    fn subject_tag_alone_anywhere_in_the_subject() {
        let (out, f) = analyse(b"subject: Uitslag [SMS:0612345678]\r\n\r\n");
        assert_eq!(out, b"subject: Uitslag\r\n\r\n");
        assert_eq!(f.phone.unwrap().1, PhoneSource::SubjectTag);
        let (out, f) = analyse(b"Subject: Re: [sms:+31612345678] x\r\n y\r\n\r\n");
        assert_eq!(out, b"Subject: Re: x\r\n y\r\n\r\n");
        assert!(f.phone.is_some());
    }

    #[test]
    fn no_or_bad_numbers() {
        let (out, f) = analyse(b"Subject: hallo\r\n\r\n");
        assert_eq!(out, b"Subject: hallo\r\n\r\n");
        assert!(f.phone.is_none() && f.bad_phone.is_none());
        // A landline in the tag: kept, reported.
        let block = b"Subject: [sms:0201234567] x\r\n\r\n";
        let (out, f) = analyse(block);
        assert_eq!(out, block);
        assert!(f.phone.is_none());
        assert!(f.bad_phone.unwrap().contains("subject tag"));
        let (_, f) = analyse(b"X-NTA7516-Phone: bogus\r\n\r\n");
        assert!(f.bad_phone.unwrap().contains(PHONE_HEADER));
        // A tag in the body is not looked at.
        let (_, f) = analyse(b"Subject: x\r\n\r\n[sms:+31612345678]\r\n");
        assert!(f.phone.is_none());
    }

    #[test]
    fn header_end_finds_the_empty_line() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some(8));
        assert_eq!(header_end(b"A: b\n\nbody"), Some(6));
        assert_eq!(header_end(b"A: b\r\nB: c\r\n"), None);
        assert_eq!(MAX_HEADER_BYTES, 262_144);
    }
}
