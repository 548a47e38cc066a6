//! Bytes that the signer (mail-auth 0.13.3) canonicalises differently from RFC 6376, and
//! the normalisation that makes signer and verifiers agree.
//!
//! A signature only helps if the receiver hashes the same text. RFC 6376 §3.4.2 (relaxed
//! header canonicalisation) compresses only WSP (space and tab, RFC 5234) and removes only
//! CRLF when unfolding; §3.4.4 (relaxed body) does the same per line. mail-auth instead
//! treats every ASCII white space byte as WSP:
//! * a **form feed** (0x0C) or a **bare CR** (0x0D not followed by LF) in a header value
//!   is dropped or merged with the space next to it, where RFC 6376 keeps it;
//! * a **bare CR** in the body is dropped, where RFC 6376 keeps it.
//!
//! python3-dkim (dkimpy) follows the RFC inside a value but strips every ASCII white space
//! byte, **vertical tab** (0x0B) included, at its ends; mail-auth and the RFC keep a VT.
//!
//! None of these bytes has a meaning in mail: RFC 5322 §2.3 forbids CR outside CRLF, and
//! FF and VT are obsolete control characters (`obs-NO-WS-CTL`, §4.1). So rather than
//! refusing a message for them, the milter replaces them in what leaves and signs that:
//! in a signed header each becomes a space (which every canonicalisation treats alike); in
//! the body a bare CR is removed (turning it into a line break could create a line that
//! looks like a MIME boundary). `dkim::sign` refuses anything not normalised, so a
//! signature over text that differs from what leaves can never be made.

/// What in `value` (a header value as it leaves) would be hashed differently, if anything.
pub fn header_problem(value: &[u8]) -> Option<&'static str> {
    value.iter().enumerate().find_map(|(i, &b)| match b {
        0x0c => Some("a form feed"),
        0x0b => Some("a vertical tab"),
        b'\r' if value.get(i + 1) != Some(&b'\n') => Some("a bare carriage return"),
        _ => None,
    })
}

/// `value` with every form feed, vertical tab and bare CR replaced by a space, or `None`
/// when it has none (the value then leaves unchanged).
pub fn header_value(value: &[u8]) -> Option<Vec<u8>> {
    header_problem(value)?;
    let out = value
        .iter()
        .enumerate()
        .map(|(i, &b)| match b {
            0x0b | 0x0c => b' ',
            b'\r' if value.get(i + 1) != Some(&b'\n') => b' ',
            _ => b,
        })
        .collect();
    Some(out)
}

/// What in `body` would be hashed differently, if anything.
pub fn body_problem(body: &[u8]) -> Option<&'static str> {
    if bare_cr_positions(body).next().is_some() {
        Some("a bare carriage return (CR not followed by LF)")
    } else if blank_tail(body).1 {
        Some("white space on the empty lines at its end")
    } else {
        None
    }
}

/// `body` without its bare CRs and without the white space on the blank lines at its end
/// (the lines stay), or `None` when it has neither.
pub fn body(body: &[u8]) -> Option<Vec<u8>> {
    body_problem(body)?;
    let mut out = Vec::with_capacity(body.len());
    let mut start = 0;
    for i in bare_cr_positions(body) {
        out.extend_from_slice(&body[start..i]);
        start = i + 1;
    }
    out.extend_from_slice(&body[start..]);
    let (tail, has_wsp) = blank_tail(&out);
    if has_wsp {
        let kept: Vec<u8> = out[tail..]
            .iter()
            .copied()
            .filter(|b| matches!(b, b'\r' | b'\n'))
            .collect();
        out.truncate(tail);
        out.extend_from_slice(&kept);
    }
    Some(out)
}

fn bare_cr_positions(body: &[u8]) -> impl Iterator<Item = usize> + '_ {
    body.iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && body.get(i + 1) != Some(&b'\n'))
        .map(|(i, _)| i)
}

/// Where the lines at the end of `body` that hold nothing but SP/HTAB begin, and whether
/// any of them holds SP/HTAB. RFC 6376 §3.4.4 removes that white space and then ignores the
/// empty lines; mail-auth 0.13.3 hashes one CRLF too many for them. Only the end of the
/// body is read.
fn blank_tail(body: &[u8]) -> (usize, bool) {
    let run = body
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    let region = body.len() - run;
    // The region may begin with the trailing white space of the last line with content;
    // that line is not blank: start after its line break.
    let start = if region == 0 {
        0
    } else {
        match body[region..].iter().position(|&b| b == b'\n') {
            Some(i) => region + i + 1,
            None => body.len(),
        }
    };
    let has_wsp = body[start..].iter().any(|b| matches!(b, b' ' | b'\t'));
    (start, has_wsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        assert_eq!(header_problem(b" Gr\xfc\xdfe\n\tnext\r\n x"), None);
        assert_eq!(header_value(b" plain"), None);
        assert_eq!(header_problem(b" a\x0cb"), Some("a form feed"));
        assert_eq!(header_problem(b" a\x0b"), Some("a vertical tab"));
        assert_eq!(header_problem(b" a\rb"), Some("a bare carriage return"));
        assert_eq!(header_problem(b" a\r"), Some("a bare carriage return"));
        assert_eq!(
            header_value(b" a\x0cb\x0b\rc\r\n\td\r").as_deref(),
            Some(&b" a b  c\r\n\td "[..])
        );
    }

    #[test]
    fn bodies() {
        for fine in [
            &b"a\r\nb\nc\x0c\r\n"[..],
            b"a\r\n \r\nb\r\n",
            b"a \t\r\n\r\n",
            b"a \t",
            b"",
            b"\r\n\r\n",
        ] {
            assert_eq!(body_problem(fine), None, "{fine:?}");
            assert_eq!(body(fine), None, "{fine:?}");
        }
        let fixed = |b: &[u8]| body(b).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(fixed(b"a\r\r\nb\rc\r").as_deref(), Some("a\r\nbc"));
        assert_eq!(fixed(b"\r").as_deref(), Some(""));
        assert_eq!(fixed(b"a\r\n \r\n").as_deref(), Some("a\r\n\r\n"));
        assert_eq!(
            fixed(b"a \r\n \t \r\n\r\n\t").as_deref(),
            Some("a \r\n\r\n\r\n")
        );
        assert_eq!(fixed(b" \n\t\n").as_deref(), Some("\n\n"));
        assert_eq!(fixed(b"a\r\n  ").as_deref(), Some("a\r\n"));
        // A bare CR that leaves only white space on the last lines: both fixed.
        assert_eq!(fixed(b"a\r\n \r \r\n").as_deref(), Some("a\r\n\r\n"));
        assert!(
            body_problem(b"a\rb")
                .unwrap()
                .contains("bare carriage return")
        );
        assert!(body_problem(b"a\r\n \r\n").unwrap().contains("white space"));
    }
}
