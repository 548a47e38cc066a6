//! Operator tools behind the `dkim-keygen`, `nta-record`, `self-check` and `explain`
//! subcommands. The CLI files (`src/cli/*.rs`) only parse arguments, print and pick the exit
//! code; everything that can be tested without a terminal lives here.

pub mod check;
pub mod exit;
pub mod explain;
pub mod explain_json;
pub mod keygen;
pub mod record;
pub mod selfcheck;

/// The longest character-string a TXT record can hold (RFC 1035 §3.3: one length octet).
pub const MAX_TXT_STRING: usize = 255;

/// Splits `text` into TXT character-strings of at most [`MAX_TXT_STRING`] bytes, never
/// inside a UTF-8 sequence. Verifiers join them again without separators (RFC 7208 §3.3,
/// RFC 6376 §3.6.2.2), so the split points carry no meaning.
pub fn txt_strings(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > MAX_TXT_STRING {
        let mut at = MAX_TXT_STRING;
        while !rest.is_char_boundary(at) {
            at -= 1;
        }
        let (head, tail) = rest.split_at(at);
        out.push(head);
        rest = tail;
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

/// A zone-file quoted string: `"` and `\` escaped, bytes outside printable ASCII as `\DDD`
/// (RFC 1035 §5.1), so that any zone-file parser reads back exactly these bytes.
pub fn quote_txt(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s.as_bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// A TXT record as a zone-file entry for `owner` (a name without trailing dot):
/// `owner. IN TXT "text"`, or, when the text needs several character-strings, the
/// parenthesised multi-line form every zone-file parser (BIND, Knot, NSD, PowerDNS) reads:
///
/// ```text
/// sel._domainkey.zkh.nl. IN TXT ( "v=DKIM1; k=rsa; p=MIIBIjAN…"
///         "…AQAB" )
/// ```
pub fn zone_file_txt(owner: &str, text: &str) -> String {
    let strings: Vec<String> = txt_strings(text).into_iter().map(quote_txt).collect();
    if let [one] = strings.as_slice() {
        return format!("{owner}. IN TXT {one}");
    }
    format!("{owner}. IN TXT ( {} )", strings.join("\n        "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_at_most_255_bytes_and_join_back() {
        for len in [0usize, 1, 254, 255, 256, 410, 510, 511, 1000] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let parts = txt_strings(&text);
            assert!(parts.iter().all(|p| p.len() <= MAX_TXT_STRING), "{len}");
            assert_eq!(parts.concat(), text);
            assert_eq!(parts.len(), len.div_ceil(255).max(1));
        }
        // Never inside a UTF-8 sequence.
        let text = format!("{}é{}", "a".repeat(254), "b".repeat(10));
        let parts = txt_strings(&text);
        assert_eq!(parts[0].len(), 254);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_txt("a b"), "\"a b\"");
        assert_eq!(quote_txt("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote_txt("é\t"), "\"\\195\\169\\009\"");
    }

    #[test]
    fn zone_file_lines() {
        assert_eq!(zone_file_txt("zkh.nl", "v=x"), "zkh.nl. IN TXT \"v=x\"");
        let long = "p".repeat(300);
        let line = zone_file_txt("s._domainkey.zkh.nl", &long);
        assert_eq!(
            line,
            format!(
                "s._domainkey.zkh.nl. IN TXT ( \"{}\"\n        \"{}\" )",
                "p".repeat(255),
                "p".repeat(45)
            )
        );
    }
}
