//! The header block as the milter keeps it: byte for byte, bounded in fields and bytes.
//!
//! Values are kept as the bytes Postfix writes after the colon (`plan::Received::headers`),
//! so that DKIM signs exactly what leaves and inbound verification sees what arrived; the
//! text that classification and parsing need is a lossy view (`plan::text`).

use std::ffi::CString;

use crate::message::plan::{self, Received};

/// Header fields kept per message; more is refused at end of data.
pub const MAX_HEADERS: usize = 10_000;
/// Bytes of header (names, values, and three bytes per field for the colon and CRLF) kept
/// per message; more is refused at end of data. Postfix bounds each header at
/// `header_size_limit` (100 KiB by default) but not their total, and the milter keeps a
/// copy of every value until end of data: 1 MiB is ten headers at Postfix's limit, and
/// hundreds of times what a real header block (Received chain, DKIM/ARC sets) needs.
pub const MAX_HEADER_BYTES: usize = 1 << 20;

/// What one message's header block has used so far.
#[derive(Debug, Default)]
pub struct Limit {
    /// Counted also after the stored copy was dropped.
    bytes: usize,
    overflow: Option<&'static str>,
}

impl Limit {
    /// Why the header block is refused (too many fields or bytes), if it is.
    pub fn overflow(&self) -> Option<&'static str> {
        self.overflow
    }
}

/// Keeps one header field, or past a limit drops every stored field (the message is
/// refused at end of data; keeping the copy would only hold memory).
pub fn store(
    headers: &mut Vec<(String, Vec<u8>)>,
    limit: &mut Limit,
    name: CString,
    value: CString,
    leading_space: bool,
) {
    limit.bytes = limit
        .bytes
        .saturating_add(name.as_bytes().len() + value.as_bytes().len() + 3);
    let overflow = if headers.len() >= MAX_HEADERS {
        Some("too many header fields")
    } else if limit.bytes > MAX_HEADER_BYTES {
        Some("header block too large")
    } else {
        None
    };
    if let Some(why) = limit.overflow.or(overflow) {
        limit.overflow = Some(why);
        *headers = Vec::new();
        return;
    }
    // The bytes Postfix writes after the colon: with LEADING_SPACE the value itself,
    // otherwise with the one space Postfix stripped.
    let mut raw = value.into_bytes();
    if !leading_space {
        raw.insert(0, b' ');
    }
    headers.push((name.to_string_lossy().into_owned(), raw));
}

/// The reply text for a header block past [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`]. It goes
/// with a 552 5.3.4: the size is a property of the message, so a retry would fail the same
/// way (RFC 3463 X.3.4, message too big for system, as Postfix answers for
/// `message_size_limit`).
pub fn overflow_text(why: &str) -> String {
    format!("{why} (at most {MAX_HEADERS} fields and {MAX_HEADER_BYTES} bytes of header)")
}

/// The first value of header `name`, as trimmed text.
pub fn value(headers: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| plan::text(v).trim().to_string())
}

/// A stored value as the milter hands it back: verbatim with LEADING_SPACE, otherwise
/// without the space Postfix writes itself.
pub fn stored_to_wire(value: &[u8], leading_space: bool) -> Result<CString, String> {
    let value = match value {
        [b' ', rest @ ..] if !leading_space => rest,
        _ => value,
    };
    CString::new(value).map_err(|e| e.to_string())
}

/// The message as received (header values byte for byte as stored, LF folding turned back
/// into CRLF), for SPF/DKIM/DMARC verification.
pub fn reconstruct(r: &Received) -> Vec<u8> {
    let mut raw = Vec::with_capacity(r.body.len() + 4096);
    header_block(r, &mut raw);
    raw.extend_from_slice(&r.body);
    raw
}

/// [`reconstruct`], built in the body's own buffer (which `r` gives up): the header block
/// is put in front of the body in place, so a large body is not held twice. Only a buffer
/// without room for the header block grows (and moves) once.
pub fn reconstruct_in_place(r: &mut Received) -> Vec<u8> {
    let mut head = Vec::with_capacity(4096);
    header_block(r, &mut head);
    let mut raw = std::mem::take(&mut r.body);
    raw.splice(0..0, head);
    raw
}

fn header_block(r: &Received, out: &mut Vec<u8>) {
    for (name, value) in &r.headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        crlf(value, out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `value` with every bare LF (the milter's folding) written as CRLF.
fn crlf(value: &[u8], out: &mut Vec<u8>) {
    for (i, &b) in value.iter().enumerate() {
        if b == b'\n' && (i == 0 || value[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
}

/// The Subject with `tag` in front: (index of the first Subject, new value), or (0, tag)
/// when there is none. The original's bytes are kept as they are (raw 8-bit included).
pub fn subject_with_tag(headers: &[(String, Vec<u8>)], tag: &str) -> (i32, Vec<u8>) {
    match headers
        .iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("subject"))
    {
        Some((_, v)) => {
            let mut value = tag.as_bytes().to_vec();
            value.extend_from_slice(v.trim_ascii_start());
            (1, value)
        }
        None => (0, tag.trim_end().as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &[u8]) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn values_are_kept_as_bytes_with_the_space_after_the_colon() {
        let (mut h, mut limit) = (Vec::new(), Limit::default());
        store(&mut h, &mut limit, c(b"Subject"), c(b" Gr\xfc\xdfe"), true);
        store(
            &mut h,
            &mut limit,
            c(b"To"),
            c(b"J\xf6rg <a@b.test>"),
            false,
        );
        assert_eq!(
            h,
            vec![
                ("Subject".to_string(), b" Gr\xfc\xdfe".to_vec()),
                ("To".to_string(), b" J\xf6rg <a@b.test>".to_vec()),
            ]
        );
        assert_eq!(
            stored_to_wire(&h[1].1, false).unwrap().as_bytes(),
            b"J\xf6rg <a@b.test>"
        );
        assert_eq!(
            stored_to_wire(&h[0].1, true).unwrap().as_bytes(),
            b" Gr\xfc\xdfe"
        );
        assert_eq!(
            subject_with_tag(&h, "[X] "),
            (1, b"[X] Gr\xfc\xdfe".to_vec())
        );
        let r = Received {
            headers: vec![("Subject".into(), b" a\n\t\xfc".to_vec())],
            body: b"x\r\n".to_vec(),
            ..Received::default()
        };
        assert_eq!(reconstruct(&r), b"Subject: a\r\n\t\xfc\r\n\r\nx\r\n");
        let mut r = r;
        r.body.reserve(1000);
        let buffer = r.body.as_ptr();
        let raw = reconstruct_in_place(&mut r);
        assert_eq!(raw, b"Subject: a\r\n\t\xfc\r\n\r\nx\r\n");
        assert_eq!(raw.as_ptr(), buffer, "built in the body's buffer");
        assert!(r.body.is_empty());
    }

    #[test]
    fn past_the_byte_limit_the_copy_is_dropped_and_stays_dropped() {
        let (mut h, mut limit) = (Vec::new(), Limit::default());
        let big = vec![b'x'; MAX_HEADER_BYTES / 2];
        store(&mut h, &mut limit, c(b"A"), c(&big), true);
        assert_eq!((h.len(), limit.overflow()), (1, None));
        store(&mut h, &mut limit, c(b"B"), c(&big), true);
        assert!(h.is_empty());
        assert_eq!(limit.overflow(), Some("header block too large"));
        store(&mut h, &mut limit, c(b"C"), c(b" small"), true);
        assert!(h.is_empty(), "nothing is kept after the limit");
    }
}
