//! Content-Transfer-Encoding *encoders* (RFC 2045 §6.7 quoted-printable, §6.8 base64).
//!
//! Base64 is decoded by mail-parser and encoded by data-encoding; only the MIME line
//! structure is added here. Quoted-printable is encoded here: it must keep the part's own
//! line-break style and never emit a bare CR, which is specific to splicing a re-encoded
//! part back into the original message. It is decoded here too, because mail-parser's
//! decoder gives up on the first invalid "=" and we must decode the way mail readers do
//! ([`qp_decode_lenient`]).

/// Longest encoded line RFC 2045 allows for quoted-printable and base64, excluding the line break.
pub(super) const MAX_ENCODED_LINE: usize = 76;

/// Base64 with `=` padding, `eol` after every 76 characters (57 input octets).
///
/// `trailing_eol` decides whether the last line is terminated too: the encoded text
/// replaces a region that either ended with a line break (a single-part body) or was
/// followed by the CRLF that belongs to the next boundary delimiter (RFC 2046 §5.1.1).
pub(super) fn base64_encode(data: &[u8], eol: &[u8], trailing_eol: bool) -> Vec<u8> {
    let encoded = data_encoding::BASE64.encode(data);
    let lines = encoded.len().div_ceil(MAX_ENCODED_LINE);
    let mut out = Vec::with_capacity(encoded.len() + (lines + 1) * eol.len());
    for (i, line) in encoded.as_bytes().chunks(MAX_ENCODED_LINE).enumerate() {
        if i > 0 {
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(line);
    }
    if trailing_eol && !data.is_empty() {
        out.extend_from_slice(eol);
    }
    out
}

/// Quoted-printable for text: every CRLF or lone LF in `data` is a hard line break and
/// becomes `eol`; a lone CR is encoded (`=0D`) so the output never has a bare CR or LF.
///
/// Encoded lines never exceed 76 characters: soft line breaks (`=` + `eol`) are
/// inserted before that, never inside an `=XX` triplet. Whitespace before a hard line
/// break or at the very end is encoded, because transports and decoders strip trailing
/// whitespace (RFC 2045 §6.7 rule 3).
pub(super) fn qp_encode(data: &[u8], eol: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 16);
    let mut line_len = 0usize;
    let mut i = 0usize;
    while let Some(&b) = data.get(i) {
        let crlf = b == b'\r' && data.get(i + 1) == Some(&b'\n');
        if b == b'\n' || crlf {
            out.extend_from_slice(eol);
            line_len = 0;
            i += if crlf { 2 } else { 1 };
            continue;
        }
        let at_line_end = match data.get(i + 1) {
            None | Some(b'\n') => true,
            Some(b'\r') => data.get(i + 2) == Some(&b'\n'),
            Some(_) => false,
        };
        let literal =
            matches!(b, b'!'..=b'<' | b'>'..=b'~') || (matches!(b, b' ' | b'\t') && !at_line_end);
        let width = if literal { 1 } else { 3 };
        // A unit that is not the last on its line must leave room for the soft-break '='.
        let limit = if at_line_end {
            MAX_ENCODED_LINE
        } else {
            MAX_ENCODED_LINE - 1
        };
        if line_len + width > limit {
            out.push(b'=');
            out.extend_from_slice(eol);
            line_len = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        line_len += width;
        i += 1;
    }
    out
}

/// Quoted-printable decoding as mail readers do it (RFC 2045 §6.7):
/// * `=XX` (hex digits in either case, note (1)) is the octet;
/// * `=` followed by optional white space and a line break is a soft line break (rule 5;
///   the white space is what transports add, rule 3);
/// * any other `=` is kept as it is, with what follows (note (2): "a reasonable approach
///   by a robust implementation"). HTML editors that forget to encode write
///   `text="#000000"`, and readers show that unchanged;
/// * white space before a hard line break is removed (rule 3); hard line breaks (CRLF or
///   LF) and every other octet are kept.
pub(super) fn qp_decode_lenient(data: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(data.len());
    // Literal (not encoded) white space at the end of `out`, removed at a hard break.
    let mut trailing_ws = 0usize;
    let mut i = 0usize;
    while let Some(&b) = data.get(i) {
        match b {
            b'=' => {
                if let (Some(h), Some(l)) = (
                    data.get(i + 1).copied().and_then(hex),
                    data.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(h << 4 | l);
                    trailing_ws = 0;
                    i += 3;
                    continue;
                }
                let ws = data[i + 1..]
                    .iter()
                    .take_while(|&&c| c == b' ' || c == b'\t')
                    .count();
                let rest = &data[i + 1 + ws..];
                if rest.starts_with(b"\r\n") {
                    i += 1 + ws + 2;
                } else if rest.starts_with(b"\n") || rest.is_empty() {
                    // A soft break, or a lone "=" at the very end (nothing to join).
                    i += 1 + ws + usize::from(!rest.is_empty());
                } else {
                    out.push(b'=');
                    trailing_ws = 0;
                    i += 1;
                }
            }
            b'\n' | b'\r' if b == b'\n' || data.get(i + 1) == Some(&b'\n') => {
                out.truncate(out.len() - trailing_ws);
                trailing_ws = 0;
                let n = if b == b'\r' { 2 } else { 1 };
                out.extend_from_slice(&data[i..i + n]);
                i += n;
            }
            _ => {
                out.push(b);
                trailing_ws = if b == b' ' || b == b'\t' {
                    trailing_ws + 1
                } else {
                    0
                };
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};

    fn max_line(encoded: &[u8]) -> usize {
        encoded
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
            .max()
            .unwrap_or(0)
    }

    fn no_bare_lf_or_cr(encoded: &[u8]) -> bool {
        encoded.iter().enumerate().all(|(i, &b)| match b {
            b'\n' => i > 0 && encoded[i - 1] == b'\r',
            b'\r' => encoded.get(i + 1) == Some(&b'\n'),
            _ => true,
        })
    }

    #[test]
    fn base64_known_vectors() {
        // RFC 4648 §10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                base64_encode(input.as_bytes(), b"\r\n", false),
                expected.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"", b"\r\n", true), b"");
        assert_eq!(base64_encode(b"foo", b"\r\n", true), b"Zm9v\r\n");
    }

    #[test]
    fn base64_line_length_and_round_trip() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        for n in [0, 1, 56, 57, 58, 113, 114, 115, 1000, 10_000] {
            let enc = base64_encode(&data[..n], b"\r\n", true);
            assert!(max_line(&enc) <= MAX_ENCODED_LINE);
            assert!(no_bare_lf_or_cr(&enc));
            if n == 114 {
                // Exactly two full lines.
                assert_eq!(enc.len(), 76 * 2 + 4);
            }
            assert_eq!(base64_decode(&enc).unwrap(), &data[..n]);
            let lf = base64_encode(&data[..n], b"\n", false);
            assert!(!lf.contains(&b'\r'));
            assert_eq!(base64_decode(&lf).unwrap(), &data[..n]);
        }
    }

    #[test]
    fn qp_basic() {
        assert_eq!(qp_encode(b"Hello", b"\r\n"), b"Hello");
        assert_eq!(qp_encode(b"a=b", b"\r\n"), b"a=3Db");
        assert_eq!(
            qp_encode("caf\u{e9}\r\n".as_bytes(), b"\r\n"),
            b"caf=C3=A9\r\n"
        );
        // Trailing whitespace before a line break and at the end is encoded.
        assert_eq!(qp_encode(b"a \r\nb\t", b"\r\n"), b"a=20\r\nb=09");
        // Inner whitespace stays literal; LF-only input gets the requested line break.
        assert_eq!(qp_encode(b"a b\nc", b"\r\n"), b"a b\r\nc");
        assert_eq!(qp_encode(b"a b\r\nc", b"\n"), b"a b\nc");
        // A lone CR cannot be a line break in text: encoded.
        assert_eq!(qp_encode(b"a\rb", b"\r\n"), b"a=0Db");
        assert_eq!(qp_encode(b"\r", b"\r\n"), b"=0D");
    }

    #[test]
    fn qp_soft_breaks_keep_lines_short_and_round_trip() {
        let long_ascii = "x".repeat(300);
        let long_spaces = "a ".repeat(200);
        let long_8bit = "\u{e9}".repeat(200);
        let mixed = format!(
            "{}=\u{e9} \t\r\n{}\r\n\r\n  \r\n",
            "y".repeat(74),
            "z".repeat(75)
        );
        for text in [
            long_ascii.as_str(),
            long_spaces.as_str(),
            long_8bit.as_str(),
            mixed.as_str(),
            "exactly seventy-six characters long line, not a single one more, promised!!",
        ] {
            let mut text = text.replace("\r\n", "\n").replace('\n', "\r\n");
            for suffix in ["", "\r\n", " ", "="] {
                text.push_str(suffix);
                let enc = qp_encode(text.as_bytes(), b"\r\n");
                assert!(
                    max_line(&enc) <= MAX_ENCODED_LINE,
                    "{}",
                    String::from_utf8_lossy(&enc)
                );
                assert!(no_bare_lf_or_cr(&enc));
                assert!(
                    enc.iter()
                        .all(|&b| b == b'\r' || b == b'\n' || (b' '..=b'~').contains(&b))
                );
                assert_eq!(quoted_printable_decode(&enc).unwrap(), text.as_bytes());
            }
        }
    }

    #[test]
    fn qp_lenient_decoding() {
        let d = |s: &str| String::from_utf8_lossy(&qp_decode_lenient(s.as_bytes())).into_owned();
        assert_eq!(d("caf=C3=A9 caf=c3=a9"), "café café");
        assert_eq!(d("<p text=\"#000000\">"), "<p text=\"#000000\">");
        assert_eq!(d("a=3D=ZZ=4 =\r\nb"), "a==ZZ=4 b");
        assert_eq!(d("soft= \t\nbreak=\r\n"), "softbreak");
        assert_eq!(d("end="), "end");
        assert_eq!(d("trail \t\r\nx  \ny\r"), "trail\r\nx\ny\r");
        // Valid quoted-printable decodes as mail-parser's strict decoder does.
        let text = "Caf\u{e9} = 1 \r\n\r\n".repeat(30);
        let enc = qp_encode(text.as_bytes(), b"\r\n");
        assert_eq!(qp_decode_lenient(&enc), text.as_bytes());
        assert_eq!(
            qp_decode_lenient(&enc),
            quoted_printable_decode(&enc).unwrap()
        );
    }

    #[test]
    fn qp_76_char_line_is_not_broken() {
        let line = "x".repeat(76);
        assert_eq!(qp_encode(line.as_bytes(), b"\r\n"), line.as_bytes());
        let line77 = "x".repeat(77);
        let enc = qp_encode(line77.as_bytes(), b"\r\n");
        assert_eq!(enc, format!("{}=\r\nxx", "x".repeat(75)).as_bytes());
    }

    #[test]
    fn qp_all_bytes_round_trip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let enc = qp_encode(&data, b"\r\n");
        assert!(max_line(&enc) <= MAX_ENCODED_LINE);
        assert!(no_bare_lf_or_cr(&enc));
        // LF and CRLF are line breaks, so compare against the CRLF-canonical form.
        let mut canonical = Vec::new();
        for (i, &b) in data.iter().enumerate() {
            if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
                canonical.push(b'\r');
            }
            canonical.push(b);
        }
        assert_eq!(quoted_printable_decode(&enc).unwrap(), canonical);
    }
}
