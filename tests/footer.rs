//! The footer on realistic messages (tests/data/footer/*.eml, written as the usual mail
//! programs write them), through the public API, checked by re-parsing the result.

use std::path::Path;

use mail_parser::{Encoding, MessageParser, MimeHeaders, PartType};
use nta7516_milter::message::footer::{Footer, Outcome, SkipReason, add_footer};

const FOOTER: Footer<'static> = Footer {
    text: "Dit bericht is beveiligd verzonden (NTA 7516) — vragen? Zie https://example.nl/veilig",
    html: "<p style=\"color:#555\">Dit bericht is beveiligd verzonden (NTA 7516) — vragen? \
           Zie <a href=\"https://example.nl/veilig\">example.nl/veilig</a></p>",
};

enum Expect {
    Added(usize),
    Skipped(SkipReason),
}

const CASES: &[(&str, Expect)] = &[
    ("thunderbird-flowed.eml", Expect::Added(1)),
    ("outlook-related.eml", Expect::Added(2)),
    ("apple-mixed-pdf.eml", Expect::Added(2)),
    ("gmail-base64.eml", Expect::Added(2)),
    ("smime-signed.eml", Expect::Skipped(SkipReason::Signed)),
    (
        "smime-encrypted.eml",
        Expect::Skipped(SkipReason::Encrypted),
    ),
    ("calendar-only.eml", Expect::Skipped(SkipReason::NoTextBody)),
];

/// What a milter gets from Postfix: fields with LF-only folding, a CRLF body.
fn milter_view(file: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/footer")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push('\n');
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim_start().to_string()));
        }
    }
    (headers, body.replace('\n', "\r\n").into_bytes())
}

fn reassemble(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (name, value) in headers {
        raw.extend_from_slice(format!("{name}: {}\r\n", value.replace('\n', "\r\n")).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

fn text_of<'a>(body: &'a PartType<'_>) -> Option<&'a str> {
    match body {
        PartType::Text(t) | PartType::Html(t) => Some(t),
        _ => None,
    }
}

#[test]
fn sample_messages() {
    for (file, expect) in CASES {
        let (headers, body) = milter_view(file);
        let outcome = add_footer(&headers, &body, &FOOTER);
        let (new_body, parts) = match (outcome, expect) {
            (Outcome::Skipped(got), Expect::Skipped(want)) => {
                assert_eq!(&got, want, "{file}");
                continue;
            }
            (
                Outcome::Added {
                    body,
                    parts,
                    skipped,
                },
                Expect::Added(want),
            ) => {
                assert_eq!(parts, *want, "{file}");
                assert!(skipped.is_empty(), "{file}: {skipped:?}");
                (body, parts)
            }
            (Outcome::Skipped(got), _) => panic!("{file}: skipped: {got}"),
            (Outcome::Added { .. }, _) => panic!("{file}: footer added"),
        };

        // Wire format: CRLF only, legal line lengths.
        for (i, &b) in new_body.iter().enumerate() {
            if b == b'\n' {
                assert_eq!(
                    new_body.get(i.wrapping_sub(1)),
                    Some(&b'\r'),
                    "{file}: bare LF"
                );
            }
        }
        let old_raw = reassemble(&headers, &body);
        let new_raw = reassemble(&headers, &new_body);
        let old = MessageParser::default().parse(&old_raw).unwrap();
        let new = MessageParser::default().parse(&new_raw).unwrap();
        assert_eq!(
            old.parts.len(),
            new.parts.len(),
            "{file}: structure changed"
        );

        let mut changed = 0;
        for (o, n) in old.parts.iter().zip(&new.parts) {
            assert_eq!(o.headers.len(), n.headers.len(), "{file}");
            let raw_body = &new_raw[n.offset_body as usize..n.offset_end as usize];
            let limit = if n.encoding == Encoding::None {
                998
            } else {
                76
            };
            for line in raw_body.split(|&b| b == b'\n') {
                assert!(
                    line.len() <= limit + 1,
                    "{file}: line of {} octets",
                    line.len()
                );
            }
            match (text_of(&o.body), text_of(&n.body)) {
                (Some(old_text), Some(new_text)) if old_text != new_text => {
                    changed += 1;
                    // The footer's ASCII part survives any charset; the rest is checked in
                    // the unit tests.
                    assert!(new_text.contains("Dit bericht is beveiligd verzonden (NTA 7516)"));
                    if matches!(n.body, PartType::Html(_)) {
                        let at = old_text
                            .to_ascii_lowercase()
                            .rfind("</body")
                            .unwrap_or(old_text.len());
                        assert!(new_text.starts_with(&old_text[..at]), "{file}");
                        assert!(new_text.ends_with(&old_text[at..]), "{file}");
                    } else {
                        assert!(new_text.starts_with(old_text), "{file}: text changed");
                        assert!(new_text.ends_with("example.nl/veilig\r\n"), "{file}");
                    }
                }
                _ => assert_eq!(o.contents(), n.contents(), "{file}: other part changed"),
            }
            if o.is_content_type("application", "pdf") || o.is_content_type("image", "png") {
                assert_eq!(
                    old_raw[o.offset_header as usize..o.offset_end as usize],
                    new_raw[n.offset_header as usize..n.offset_end as usize],
                    "{file}: attachment bytes changed"
                );
            }
        }
        assert_eq!(changed, parts, "{file}");
    }
}

#[test]
fn charset_specific_results() {
    // windows-1252 (Outlook): the em dash exists there, so it is written exactly.
    let (headers, body) = milter_view("outlook-related.eml");
    let Outcome::Added { body: new_body, .. } = add_footer(&headers, &body, &FOOTER) else {
        panic!("skipped")
    };
    let new_raw = reassemble(&headers, &new_body);
    let new = MessageParser::default().parse(&new_raw).unwrap();
    assert!(new.body_text(0).unwrap().contains("(NTA 7516) — vragen?"));
    // 7bit UTF-8 (Thunderbird): ASCII only, the dash is transliterated; format=flowed kept.
    let (headers, body) = milter_view("thunderbird-flowed.eml");
    let Outcome::Added { body: new_body, .. } = add_footer(&headers, &body, &FOOTER) else {
        panic!("skipped")
    };
    assert!(new_body.is_ascii());
    assert!(new_body.ends_with(b"Jan\r\n\r\nDit bericht is beveiligd verzonden (NTA 7516) - vragen? Zie https://example.nl/veilig\r\n"));
}
