use super::*;
use mail_parser::{MimeHeaders, PartType};

const FOOTER: Footer<'static> = Footer {
    text: "Dit bericht is beveiligd verzonden.\nNTA 7516",
    html: "<p>Dit bericht is beveiligd verzonden.</p>",
};

/// Dutch with an accent, a euro sign, the Dutch ij ligature and a character no
/// single-byte charset has.
const FOOTER_INTL: Footer<'static> = Footer {
    text: "Beëindigd – € ĳs 中",
    html: "<p>Beëindigd – € 中</p>",
};

/// Splits a test message (LF line endings in the source) into what a milter sees:
/// header fields with LF-only folding, and a CRLF body.
fn milter_view(message: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let (head, body) = message.split_once("\n\n").unwrap_or((message, ""));
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

fn added(outcome: Outcome) -> (Vec<u8>, usize) {
    match outcome {
        Outcome::Added { body, parts, .. } => (body, parts),
        Outcome::Skipped(reason) => panic!("skipped: {reason}"),
    }
}

fn skipped(outcome: Outcome) -> SkipReason {
    match outcome {
        Outcome::Added { body, .. } => panic!("added:\n{}", String::from_utf8_lossy(&body)),
        Outcome::Skipped(reason) => reason,
    }
}

fn run(message: &str, footer: &Footer) -> (Vec<(String, String)>, Vec<u8>, Outcome) {
    let (headers, body) = milter_view(message);
    let outcome = add_footer(&headers, &body, footer);
    (headers, body, outcome)
}

/// The whole message again, as a mail reader would get it.
fn reassemble(headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (name, value) in headers {
        raw.extend_from_slice(format!("{name}: {}\r\n", value.replace('\n', "\r\n")).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

/// (content type, decoded text) of every text part, via mail-parser (independent of
/// the offsets logic under test).
fn texts(raw: &[u8]) -> Vec<(String, String)> {
    let message = MessageParser::default().parse(raw).unwrap();
    message
        .parts
        .iter()
        .filter_map(|p| {
            let ct = p
                .content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")))
                .unwrap_or_else(|| "text/plain".into());
            match &p.body {
                PartType::Text(t) | PartType::Html(t) => Some((ct, t.to_string())),
                _ => None,
            }
        })
        .collect()
}

fn assert_no_bare_lf(body: &[u8]) {
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && body[i - 1] == b'\r', "bare LF at {i}");
        }
    }
}

fn max_line(body: &[u8]) -> usize {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).len())
        .max()
        .unwrap_or(0)
}

fn plain_footer_crlf() -> String {
    "Dit bericht is beveiligd verzonden.\r\nNTA 7516\r\n".to_string()
}

#[test]
fn single_part_7bit_plain() {
    let (_, _, outcome) = run(
        "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\nSubject: x\n\nHello\nBye\n",
        &FOOTER,
    );
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    assert_eq!(
        body,
        format!("Hello\r\nBye\r\n\r\n{}", plain_footer_crlf()).as_bytes()
    );
}

#[test]
fn single_part_without_mime_headers_is_plain_text() {
    let (headers, body) = (
        vec![("Subject".to_string(), "hi".to_string())],
        b"Hello".to_vec(),
    );
    let (out, parts) = added(add_footer(&headers, &body, &FOOTER));
    assert_eq!(parts, 1);
    // No trailing newline in the original: one is added before the blank separator line.
    assert_eq!(
        out,
        format!("Hello\r\n\r\n{}", plain_footer_crlf()).as_bytes()
    );
    let (out, _) = added(add_footer(&[], b"", &FOOTER));
    assert_eq!(out, plain_footer_crlf().as_bytes());
}

#[test]
fn no_extra_blank_line_when_text_ends_with_one() {
    let (_, _, outcome) = run("Content-Type: text/plain\n\nHello\n\n", &FOOTER);
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        format!("Hello\r\n\r\n{}", plain_footer_crlf()).as_bytes()
    );
}

#[test]
fn single_part_8bit_utf8_gets_exact_footer() {
    let (headers, _, outcome) = run(
        "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\nGroetjes, José\n",
        &FOOTER_INTL,
    );
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        "Groetjes, José\r\n\r\nBeëindigd – € ĳs 中\r\n".as_bytes()
    );
    assert_eq!(
        texts(&reassemble(&headers, &body))[0].1,
        "Groetjes, José\r\n\r\nBeëindigd – € ĳs 中\r\n"
    );
}

#[test]
fn single_part_7bit_utf8_gets_ascii_footer() {
    // The top-level Content-Transfer-Encoding cannot change: the footer stays ASCII.
    let (_, _, outcome) = run(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\nHi\n",
        &FOOTER_INTL,
    );
    let (body, _) = added(outcome);
    assert_eq!(body, b"Hi\r\n\r\nBeeindigd - EUR ijs ?\r\n");
}

#[test]
fn single_part_qp_iso_8859_1() {
    let (headers, _, outcome) = run(
        "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nCaf=E9 au lait, tr=E8s long: \
         aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\nbbbbbb\n",
        &FOOTER_INTL,
    );
    let (body, _) = added(outcome);
    assert_no_bare_lf(&body);
    assert!(max_line(&body) <= 76);
    // Latin-1 has é but neither € nor ĳ nor 中.
    assert!(
        body.ends_with(b"\r\n\r\nBe=EBindigd - EUR ijs ?\r\n"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let decoded = &texts(&reassemble(&headers, &body))[0].1;
    assert_eq!(
        decoded,
        &format!(
            "Café au lait, très long: {}bbbbbb\r\n\r\nBeëindigd - EUR ijs ?\r\n",
            "a".repeat(58)
        )
    );
}

#[test]
fn windows_1252_and_latin9_get_the_euro_sign() {
    for (charset, euro) in [("windows-1252", "=80"), ("iso-8859-15", "=A4")] {
        let (_, _, outcome) = run(
            &format!(
                "Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: quoted-printable\n\nx\n"
            ),
            &Footer {
                text: "€",
                html: "",
            },
        );
        let (body, _) = added(outcome);
        assert_eq!(body, format!("x\r\n\r\n{euro}\r\n").as_bytes());
    }
}

#[test]
fn single_part_base64_utf8() {
    let original = "Hallo wereld — ".repeat(20) + "\r\nTweede regel\r\n";
    let encoded = codec::base64_encode(original.as_bytes(), b"\n", true);
    let message = format!(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{}",
        String::from_utf8(encoded).unwrap()
    );
    let (headers, _, outcome) = run(&message, &FOOTER_INTL);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    assert_no_bare_lf(&body);
    assert!(max_line(&body) <= 76);
    assert!(body.ends_with(b"\r\n"));
    let decoded = &texts(&reassemble(&headers, &body))[0].1;
    assert_eq!(decoded, &format!("{original}\r\nBeëindigd – € ĳs 中\r\n"));
}

#[test]
fn html_footer_goes_before_last_body_close() {
    let (headers, _, outcome) = run(
        "Content-Type: text/html; charset=utf-8\n\n<html><body><p>Hi</p>\n<!-- </body> -->\n</BODY></html>\n",
        &FOOTER,
    );
    let (body, _) = added(outcome);
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        "<html><body><p>Hi</p>\r\n<!-- </body> -->\r\n<p>Dit bericht is beveiligd verzonden.</p>\r\n</BODY></html>\r\n"
    );
    assert_eq!(texts(&reassemble(&headers, &body)).len(), 1);
}

#[test]
fn html_footer_on_the_same_line_as_body_close_gets_its_own_line() {
    let (_, _, outcome) = run("Content-Type: text/html\n\n<body>Hi</body >", &FOOTER);
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        b"<body>Hi\r\n<p>Dit bericht is beveiligd verzonden.</p>\r\n</body >"
    );
}

#[test]
fn html_without_body_close_is_appended() {
    let (_, _, outcome) = run(
        "Content-Type: text/html\n\n<p>Hi</p><bodyx></bodyx>\n",
        &FOOTER,
    );
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        b"<p>Hi</p><bodyx></bodyx>\r\n<p>Dit bericht is beveiligd verzonden.</p>\r\n"
    );
}

#[test]
fn html_unrepresentable_characters_become_references() {
    let (_, _, outcome) = run(
        "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n<body>x</body>",
        &FOOTER_INTL,
    );
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        b"<body>x\r\n<p>Be\xebindigd &#x2013; &#x20AC; &#x4E2D;</p>\r\n</body>"
    );
    // 7bit: ASCII only, still lossless.
    let (_, _, outcome) = run(
        "Content-Type: text/html; charset=utf-8\n\n<body>x</body>",
        &FOOTER_INTL,
    );
    let (body, _) = added(outcome);
    assert_eq!(
        body,
        b"<body>x\r\n<p>Be&#xEB;indigd &#x2013; &#x20AC; &#x4E2D;</p>\r\n</body>"
    );
}

const ALTERNATIVE: &str = "MIME-Version: 1.0
Content-Type: multipart/alternative;
\tboundary=\"alt\"

This is a preamble.
--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hallo =E2=80=94 wereld
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGJvZHk+PHA+SGFsbG88L3A+PC9ib2R5PjwvaHRtbD4=
--alt--
Epilogue.
";

#[test]
fn alternative_gets_both_footers() {
    let (headers, original, outcome) = run(ALTERNATIVE, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 2);
    assert_no_bare_lf(&body);
    assert!(max_line(&body) <= 76);
    assert!(body.starts_with(b"This is a preamble.\r\n--alt\r\n"));
    assert!(body.ends_with(b"\r\n--alt--\r\nEpilogue.\r\n"));
    let t = texts(&reassemble(&headers, &body));
    assert_eq!(t.len(), 2);
    assert_eq!(
        t[0],
        (
            "text/plain".into(),
            format!("Hallo — wereld\r\n\r\n{}", plain_footer_crlf())
        )
    );
    assert_eq!(
        t[1],
        (
            "text/html".into(),
            "<html><body><p>Hallo</p>\r\n<p>Dit bericht is beveiligd verzonden.</p>\r\n</body></html>".into()
        )
    );
    // Part headers are untouched.
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(find(&body, b"--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
    assert_ne!(body, original);
}

const PDF_BYTES: &str = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0KeJwr\nVAhUKFQwAEIIKMwBAAFPQD8KZW5kc3RyZWFtCg==";

fn mixed_with_attachments() -> String {
    format!(
        "Content-Type: multipart/mixed; boundary=\"mix\"

--mix
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Zie bijlage.
--mix
Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"
Content-Disposition: attachment; filename=\"notes.txt\"

attached text
--mix
Content-Type: application/pdf; name=\"doc.pdf\"
Content-Disposition: attachment; filename=\"doc.pdf\"
Content-Transfer-Encoding: base64

{PDF_BYTES}
--mix--
"
    )
}

#[test]
fn mixed_attachments_are_untouched() {
    let (headers, original, outcome) = run(&mixed_with_attachments(), &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    let body_text = String::from_utf8(body.clone()).unwrap();
    let original_text = String::from_utf8(original).unwrap();
    // Everything from the second part on is byte-for-byte the same.
    let tail = &original_text[original_text
        .find("\r\n--mix\r\nContent-Type: text/plain; charset=utf-8; name")
        .unwrap()..];
    assert!(body_text.ends_with(tail));
    assert!(body_text.starts_with(&format!(
        "--mix\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nZie bijlage.\r\n\r\n{}\r\n--mix\r\n",
        plain_footer_crlf()
    )));
    let t = texts(&reassemble(&headers, &body));
    assert_eq!(t[1].1, "attached text");
}

#[test]
fn mixed_alternative_nesting() {
    let message = format!(
        "Content-Type: multipart/mixed; boundary=\"outer\"\n\n--outer\n{}\n--outer\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=x.bin\n\nAAAA\n--outer--\n",
        ALTERNATIVE.replace("MIME-Version: 1.0\n", "")
    );
    let (headers, _, outcome) = run(&message, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 2);
    let t = texts(&reassemble(&headers, &body));
    assert!(t[0].1.ends_with(&plain_footer_crlf()));
    assert!(
        t[1].1
            .contains("<p>Dit bericht is beveiligd verzonden.</p>\r\n</body>")
    );
}

#[test]
fn mixed_related_alternative_nesting() {
    let message = "Content-Type: multipart/mixed; boundary=m

--m
Content-Type: multipart/related; boundary=r; type=\"multipart/alternative\"

--r
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain

plain body
--a
Content-Type: text/html

<html><body>html body <img src=\"cid:logo\"></body></html>
--a--

--r
Content-Type: image/png
Content-ID: <logo>
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--r--

--m
Content-Type: text/plain
Content-Disposition: attachment; filename=readme.txt

not the body
--m--
";
    let (headers, _, outcome) = run(message, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 2);
    let t = texts(&reassemble(&headers, &body));
    assert_eq!(t[0].1, format!("plain body\r\n\r\n{}", plain_footer_crlf()));
    assert!(t[1].1.contains("<img src=\"cid:logo\">\r\n<p>Dit bericht"));
    assert_eq!(t[2].1, "not the body");
}

#[test]
fn related_alternative_nesting() {
    let message = "Content-Type: multipart/related; boundary=r

--r
Content-Type: multipart/alternative; boundary=a

--a
Content-Type: text/plain

plain
--a
Content-Type: text/html

<p>html</p>
--a--
--r
Content-Type: image/gif

GIF
--r--
";
    let (_, _, outcome) = run(message, &FOOTER);
    assert_eq!(added(outcome).1, 2);
}

#[test]
fn first_inline_part_is_the_body_in_mixed() {
    // An attachment before the body is skipped over; a later inline text is not the body.
    let message = "Content-Type: multipart/mixed; boundary=m

--m
Content-Type: application/pdf
Content-Disposition: attachment; filename=a.pdf

%PDF
--m
Content-Type: text/plain

body
--m
Content-Type: text/plain

more
--m--
";
    let (headers, _, outcome) = run(message, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    let t = texts(&reassemble(&headers, &body));
    assert!(t[0].1.starts_with("body\r\n\r\nDit bericht"));
    assert_eq!(t[1].1, "more");
}

#[test]
fn signed_and_encrypted_are_skipped() {
    let signed = "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=s

--s
Content-Type: text/plain

signed text
--s
Content-Type: application/pgp-signature

-----BEGIN PGP SIGNATURE-----
-----END PGP SIGNATURE-----
--s--
";
    assert_eq!(skipped(run(signed, &FOOTER).2), SkipReason::Signed);
    // Signed body inside mixed (an outer disclaimer part, say): still the body.
    let wrapped = format!(
        "Content-Type: multipart/mixed; boundary=w\n\n--w\n{signed}\n--w\nContent-Type: text/plain\n\ndisclaimer\n--w--\n"
    );
    assert_eq!(skipped(run(&wrapped, &FOOTER).2), SkipReason::Signed);

    let encrypted =
        "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e

--e
Content-Type: application/pgp-encrypted

Version: 1
--e
Content-Type: application/octet-stream

-----BEGIN PGP MESSAGE-----
-----END PGP MESSAGE-----
--e--
";
    assert_eq!(skipped(run(encrypted, &FOOTER).2), SkipReason::Encrypted);

    for (ct, reason) in [
        (
            "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
            SkipReason::Encrypted,
        ),
        (
            "application/x-pkcs7-mime; name=smime.p7m",
            SkipReason::Encrypted,
        ),
        (
            "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m",
            SkipReason::Signed,
        ),
        ("application/pgp-encrypted", SkipReason::Encrypted),
    ] {
        let message = format!(
            "Content-Type: {ct}\nContent-Disposition: attachment; filename=smime.p7m\nContent-Transfer-Encoding: base64\n\nMIAGCSqGSIb3DQEHA6CAMIACAQAxggFA\n"
        );
        assert_eq!(skipped(run(&message, &FOOTER).2), reason, "{ct}");
    }
    assert!(
        SkipReason::Signed
            .to_string()
            .contains("break the signature")
    );
}

#[test]
fn attached_p7m_is_just_an_attachment() {
    let message = "Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain

see attached
--m
Content-Type: application/pkcs7-mime; name=smime.p7m
Content-Disposition: attachment; filename=smime.p7m

MIAG
--m--
";
    assert_eq!(added(run(message, &FOOTER).2).1, 1);
}

#[test]
fn inline_pgp_is_skipped() {
    let message = "Content-Type: text/plain\n\n-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhi\n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\n";
    assert_eq!(skipped(run(message, &FOOTER).2), SkipReason::Signed);
    let message = "Content-Type: text/plain\n\n-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n";
    assert_eq!(skipped(run(message, &FOOTER).2), SkipReason::Encrypted);
}

#[test]
fn no_text_body() {
    let pdf = format!(
        "Content-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n{PDF_BYTES}\n"
    );
    assert_eq!(skipped(run(&pdf, &FOOTER).2), SkipReason::NoTextBody);
    let only_attachments = "Content-Type: multipart/mixed; boundary=m

--m
Content-Type: text/plain
Content-Disposition: attachment; filename=a.txt

a
--m
Content-Type: image/png

PNG
--m--
";
    assert_eq!(
        skipped(run(only_attachments, &FOOTER).2),
        SkipReason::NoTextBody
    );
    assert_eq!(
        skipped(run("Content-Type: text/calendar\n\nBEGIN:VCALENDAR\n", &FOOTER).2),
        SkipReason::NoTextBody
    );
    // A forwarded message is not entered.
    let forwarded = "Content-Type: message/rfc822\n\nContent-Type: text/plain\n\ninner\n";
    assert_eq!(skipped(run(forwarded, &FOOTER).2), SkipReason::NoTextBody);
    // Nothing to add.
    assert_eq!(
        skipped(
            run(
                "Content-Type: text/plain\n\nx\n",
                &Footer {
                    text: " ",
                    html: ""
                }
            )
            .2
        ),
        SkipReason::NoTextBody
    );
}

#[test]
fn garbage_mime_is_skipped_not_mangled() {
    let cases = [
        // Multipart without boundary parameter.
        "Content-Type: multipart/mixed\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n",
        // Boundary never appears.
        "Content-Type: multipart/mixed; boundary=nope\n\n--x\nContent-Type: text/plain\n\nhi\n--x--\n",
        // Closing boundary missing.
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n",
        // Invalid base64.
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!! not base64 ****\n",
        // Unknown transfer encoding.
        "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n",
        // Duplicate Content-Type.
        "Content-Type: text/plain\nContent-Type: application/pdf\n\nhi\n",
        // ASCII-incompatible charset.
        "Content-Type: text/plain; charset=utf-16le\nContent-Transfer-Encoding: base64\n\nSABpAA==\n",
        // Delimiter in mid-line (mail-parser accepts it, RFC 2046 does not).
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi --b\nContent-Type: text/plain\n\nx\n--b--\n",
    ];
    for case in cases {
        let reason = skipped(run(case, &FOOTER).2);
        assert!(
            matches!(reason, SkipReason::Unparsable(_) | SkipReason::NoTextBody),
            "{case}: {reason}"
        );
    }
    // Random bytes, no panic.
    let mut x: u32 = 12345;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let headers = vec![(
        "Content-Type".to_string(),
        "multipart/mixed; boundary=\"\u{1}\"".to_string(),
    )];
    let _ = add_footer(&headers, &noise, &FOOTER);
    let _ = add_footer(&[], &noise, &FOOTER);
}

#[test]
fn lf_only_input_gives_lf_only_output() {
    let (headers, _) = milter_view(ALTERNATIVE);
    let body = milter_view(ALTERNATIVE).1;
    let lf_body: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r').collect();
    let (out, parts) = added(add_footer(&headers, &lf_body, &FOOTER));
    assert_eq!(parts, 2);
    assert!(!out.contains(&b'\r'));
    let t = texts(&reassemble(&headers, &out));
    assert!(
        t[0].1
            .ends_with("Dit bericht is beveiligd verzonden.\nNTA 7516\n")
    );
}

#[test]
fn too_large_is_skipped() {
    let body = vec![b'a'; MAX_MESSAGE_SIZE + 1];
    assert_eq!(
        add_footer(
            &[("Content-Type".into(), "text/plain".into())],
            &body,
            &FOOTER
        ),
        Outcome::Skipped(SkipReason::TooLarge)
    );
}

#[test]
fn html_only_footer_is_converted_for_plain_text() {
    let footer = Footer {
        text: "",
        html: "<p>Veilig <b>verzonden</b></p>",
    };
    let (_, _, outcome) = run(ALTERNATIVE, &footer);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 2);
    assert!(String::from_utf8_lossy(&body).contains("Veilig verzonden"));
    let footer = Footer {
        text: "A & B <c>",
        html: "",
    };
    let (_, _, outcome) = run("Content-Type: text/html\n\n<body></body>", &footer);
    assert_eq!(
        added(outcome).0,
        b"<body>\r\n<p>A &amp; B &lt;c&gt;</p>\r\n</body>"
    );
}

#[test]
fn format_flowed_footer_lines_are_fixed_and_stuffed() {
    let footer = Footer {
        text: "From us, with care   \n> quoted",
        html: "",
    };
    let (_, _, outcome) = run("Content-Type: text/plain; format=flowed\n\nHi\n", &footer);
    assert_eq!(
        added(outcome).0,
        b"Hi\r\n\r\n From us, with care\r\n > quoted\r\n"
    );
}

#[test]
fn long_footer_lines_are_wrapped_at_998() {
    let long = format!("{} {}", "x".repeat(600), "y".repeat(600));
    let unbroken = "z".repeat(2000);
    for text in [long.as_str(), unbroken.as_str()] {
        let footer = Footer { text, html: "" };
        let (_, _, outcome) = run(
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nHi\n",
            &footer,
        );
        let (body, _) = added(outcome);
        assert!(max_line(&body) <= 998);
        let without_breaks: Vec<u8> = body
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        assert_eq!(
            without_breaks.len() + usize::from(text == long),
            text.len() + 2
        );
    }
}

#[test]
fn one_megabyte_lines() {
    let line = "w".repeat(1 << 20);
    let message = format!("Content-Type: text/plain\n\n{line}\n");
    // How long these inputs take is measured in `cargo bench --bench adversarial`.
    let (body, _) = added(run(&message, &FOOTER).2);
    assert!(body.starts_with(line.as_bytes()));
    let message = format!(
        "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n{line}\n"
    );
    let (body, _) = added(run(&message, &FOOTER).2);
    assert!(max_line(&body) <= 76);
    let message = format!("Content-Type: text/plain; x=\"{line}\"\n\nhi\n");
    let _ = run(&message, &FOOTER).2;
}

#[test]
fn many_parts_and_deep_nesting() {
    // Their speed is measured in `cargo bench --bench adversarial`.
    // 10,000 parts in one multipart.
    let mut message = String::from("Content-Type: multipart/mixed; boundary=b\n\n");
    for i in 0..10_000 {
        message.push_str(&format!("--b\nContent-Type: text/plain\n\npart {i}\n"));
    }
    message.push_str("--b--\n");
    let (headers, _, outcome) = run(&message, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    let t = texts(&reassemble(&headers, &body));
    assert_eq!(t.len(), 10_000);
    assert!(t[0].1.starts_with("part 0\r\n\r\nDit"));
    assert_eq!(t[9_999].1, "part 9999");

    // Moderate nesting that real mail might have: followed.
    let nested = |depth: usize| {
        let mut m = String::from("Content-Type: multipart/mixed; boundary=b0\n\n");
        for i in 1..depth {
            m.push_str(&format!(
                "--b{}\nContent-Type: multipart/mixed; boundary=b{i}\n\n",
                i - 1
            ));
        }
        m.push_str(&format!(
            "--b{}\nContent-Type: text/plain\n\ndeep\n",
            depth - 1
        ));
        for i in (0..depth).rev() {
            m.push_str(&format!("--b{i}--\n"));
        }
        m
    };
    assert_eq!(added(run(&nested(20), &FOOTER).2).1, 1);
    assert!(matches!(
        skipped(run(&nested(40), &FOOTER).2),
        SkipReason::Unparsable(_)
    ));
    // Very deep: refused before parsing.
    assert!(matches!(
        skipped(run(&nested(10_000), &FOOTER).2),
        SkipReason::Unparsable(_)
    ));

    // Multiparts whose boundary is missing (each would make the parser rescan the rest).
    let missing = |n: usize| {
        let mut m = String::from(
            "Content-Type: multipart/mixed; boundary=top\n\n--top\nContent-Type: text/plain\n\nhi\n",
        );
        for i in 0..n {
            m.push_str(&format!(
                "--top\nContent-Type: multipart/mixed; boundary=missing{i}\n\nxx\n"
            ));
        }
        m.push_str(&"filler line\n".repeat(200_000));
        m.push_str("--top--\n");
        m
    };
    assert_eq!(added(run(&missing(4), &FOOTER).2).1, 1);
    assert!(matches!(
        skipped(run(&missing(5), &FOOTER).2),
        SkipReason::Unparsable(_)
    ));
    assert!(matches!(
        skipped(run(&missing(5_000), &FOOTER).2),
        SkipReason::Unparsable(_)
    ));

    // Chains of nested messages: the parser would build (and drop) them recursively and
    // overflow the stack; they are never entered, so nothing to do.
    let chain = "Content-Type: message/rfc822\n\n".repeat(100_000) + "hi\n";
    assert_eq!(skipped(run(&chain, &FOOTER).2), SkipReason::NoTextBody);
    let inner = "Content-Type: Message/RFC822\n\n".repeat(100_000) + "hi\n";
    let encoded = codec::base64_encode(inner.as_bytes(), b"\n", true);
    let attached = format!(
        "Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nbody\n--m\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n{}--m--\n",
        String::from_utf8(encoded).unwrap()
    );
    assert_eq!(added(run(&attached, &FOOTER).2).1, 1);
    let chain = "Content-Type: multipart/digest; boundary=d\n\n--d\n\n".repeat(10_000) + "hi\n";
    assert!(matches!(
        skipped(run(&chain, &FOOTER).2),
        SkipReason::Unparsable(_)
    ));

    // A huge boundary compared at every "--".
    let huge = "-".repeat(100_000);
    let m = format!(
        "Content-Type: multipart/mixed; boundary=\"{huge}x\"\n\n{}\n",
        "-".repeat(1 << 20)
    );
    assert!(matches!(
        skipped(run(&m, &FOOTER).2),
        SkipReason::Unparsable(_)
    ));
}

#[test]
fn folded_header_values_from_the_milter() {
    let headers = vec![
        ("Subject".to_string(), "folded\n\tsubject".to_string()),
        (
            "Content-Type".to_string(),
            "multipart/alternative;\n\tboundary=\"alt\"".to_string(),
        ),
        // A value with a bare line break that is not a continuation must not end the header.
        ("X-Odd".to_string(), "a\nb".to_string()),
    ];
    let body = milter_view(ALTERNATIVE).1;
    assert_eq!(added(add_footer(&headers, &body, &FOOTER)).1, 2);
}

#[test]
fn every_changed_part_decodes_to_original_plus_footer() {
    // For each CTE × charset, re-decoding with mail-parser gives exactly original + footer.
    let footer = Footer {
        text: "Voettekst é",
        html: "<i>Voettekst é</i>",
    };
    for cte in ["7bit", "8bit", "quoted-printable", "base64"] {
        for charset in ["utf-8", "iso-8859-1", "us-ascii"] {
            let original = "Regel één\r\nRegel twee\r\n";
            let bytes: Vec<u8> = match charset {
                "utf-8" => original.as_bytes().to_vec(),
                "iso-8859-1" => original.chars().map(|c| c as u32 as u8).collect(),
                _ => original.replace('é', "e").into_bytes(),
            };
            let encoded = match cte {
                "quoted-printable" => codec::qp_encode(&bytes, b"\r\n"),
                "base64" => codec::base64_encode(&bytes, b"\r\n", true),
                _ => bytes.clone(),
            };
            let headers = vec![
                (
                    "Content-Type".to_string(),
                    format!("text/plain; charset={charset}"),
                ),
                ("Content-Transfer-Encoding".to_string(), cte.to_string()),
            ];
            let (body, _) = added(add_footer(&headers, &encoded, &footer));
            assert_no_bare_lf(&body);
            if matches!(cte, "quoted-printable" | "base64") {
                assert!(max_line(&body) <= 76);
            }
            let expected_footer = if cte == "7bit" || charset == "us-ascii" {
                "Voettekst e"
            } else {
                "Voettekst é"
            };
            let expected_original = if charset == "us-ascii" {
                original.replace('é', "e")
            } else {
                original.to_string()
            };
            assert_eq!(
                texts(&reassemble(&headers, &body))[0].1,
                format!("{expected_original}\r\n{expected_footer}\r\n"),
                "{cte} {charset}"
            );
        }
    }
}

#[test]
fn delimiters_must_be_lines_of_their_own() {
    // mail-parser ends the attachment at the mid-line "--b" and would see a text/plain
    // "part" inside the attachment; a mail reader sees no such part.
    let fake_inside_attachment = "Content-Type: multipart/mixed; boundary=b

--b
Content-Type: application/octet-stream
Content-Disposition: attachment; filename=x.txt

data xx--b
Content-Type: text/plain

not a part
--b
Content-Type: text/plain

real body
--b--
";
    assert!(matches!(
        skipped(run(fake_inside_attachment, &FOOTER).2),
        SkipReason::Unparsable(_)
    ));
    // "--bc" is not a delimiter of boundary "b" (mail-parser matches the prefix).
    let prefix = "Content-Type: multipart/mixed; boundary=b

--bc
Content-Type: text/plain

x
--b--
";
    assert!(matches!(
        skipped(run(prefix, &FOOTER).2),
        SkipReason::Unparsable(_)
    ));
    // Transport padding after a delimiter is fine (RFC 2046 §5.1.1).
    let padded = "Content-Type: multipart/mixed; boundary=b\n\n--b  \nContent-Type: text/plain\n\nx\n--b-- \n";
    assert_eq!(added(run(padded, &FOOTER).2).1, 1);
}

#[test]
fn boundaries_with_defused_words_still_work() {
    let message = "Content-Type: multipart/alternative; boundary=\"=_Message_Digest_1\"

--=_Message_Digest_1
Content-Type: text/plain

A message about a digest.
--=_Message_Digest_1
Content-Type: text/html

<p>A message about a digest.</p>
--=_Message_Digest_1--
";
    let (headers, _, outcome) = run(message, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 2);
    let t = texts(&reassemble(&headers, &body));
    // The original words are untouched in the output.
    assert!(
        t[0].1
            .starts_with("A message about a digest.\r\n\r\nDit bericht")
    );
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("--=_Message_Digest_1--")
    );
}

#[test]
fn digest_entries_are_messages() {
    let message = "Content-Type: multipart/digest; boundary=d

--d

From: a@example.org
Subject: one

first
--d
Content-Type: text/plain

explicitly text
--d--
";
    let (body, parts) = added(run(message, &FOOTER).2);
    assert_eq!(parts, 1);
    let body = String::from_utf8(body).unwrap();
    // The entry without Content-Type is a message/rfc822, not text: left alone.
    assert!(body.contains("\r\nfirst\r\n--d\r\n"));
    assert!(body.contains("explicitly text\r\n\r\nDit bericht"));
}

#[test]
fn odd_header_values_cannot_move_the_body() {
    // A blank line inside a value must not end the header early.
    let body = b"Hello\r\n".to_vec();
    let headers = vec![(
        "Content-Type".to_string(),
        "text/plain;\n\n charset=utf-8".to_string(),
    )];
    let (out, _) = added(add_footer(&headers, &body, &FOOTER));
    assert_eq!(
        out,
        format!("Hello\r\n\r\n{}", plain_footer_crlf()).as_bytes()
    );
    // A line break without folding stays inside its field (here making it unknown).
    let headers = vec![(
        "Content-Transfer-Encoding".to_string(),
        "8bit\nX-Injected: yes".to_string(),
    )];
    assert!(matches!(
        skipped(add_footer(&headers, &body, &FOOTER)),
        SkipReason::Unparsable(_)
    ));
}

/// Thunderbird sends image-only mail as an empty text/plain beside the HTML: an empty body
/// is valid (RFC 2046 §5.1.1), and the delimiter's line break then doubles as the blank
/// line that ends the part header.
#[test]
fn empty_text_part_gets_the_footer() {
    for cte in ["7bit", "quoted-printable", "base64"] {
        let msg = format!(
            "Content-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: {cte}\n\n--XX\nContent-Type: text/html; charset=utf-8\n\n<html><body><img src=\"cid:a\"></body></html>\n--XX--\n"
        );
        let (headers, _, outcome) = run(&msg, &FOOTER);
        let (body, parts) = added(outcome);
        assert_eq!(parts, 2, "{cte}");
        assert_no_bare_lf(&body);
        let t = texts(&reassemble(&headers, &body));
        assert_eq!(t[0], ("text/plain".into(), plain_footer_crlf()), "{cte}");
        assert!(t[1].1.contains("<p>Dit bericht"), "{cte}");
        let text = String::from_utf8(body).unwrap();
        assert!(text.ends_with("\r\n</body></html>\r\n--XX--\r\n"), "{text}");
    }
    // Empty first part of a mixed message, and with LF line endings.
    let msg = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=a.png\n\niVBO\n--b--\n";
    let (headers, body) = milter_view(msg);
    let body = String::from_utf8(body).unwrap().replace("\r\n", "\n");
    let (out, parts) = added(add_footer(&headers, body.as_bytes(), &FOOTER));
    assert_eq!(parts, 1);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "--b\n\nDit bericht is beveiligd verzonden.\nNTA 7516\n\n--b\nContent-Type: image/png\nContent-Disposition: attachment; filename=a.png\n\niVBO\n--b--\n"
    );
}

/// A part header without its blank line runs into the next delimiter: mail-parser reads
/// the next part's fields as this part's, a mail reader sees two parts.
#[test]
fn delimiter_inside_a_part_header_is_refused() {
    let msg = "Content-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n--XX\n\n<b>x</b>\n--XX--\n";
    let (_, _, outcome) = run(msg, &FOOTER);
    assert!(matches!(skipped(outcome), SkipReason::Unparsable(_)));
}

/// RFC 2045 §6.7 note (2): an "=" not followed by two hex digits is kept as it is, which
/// is what mail readers show (HTML editors write `text="#000000"` unencoded).
#[test]
fn invalid_quoted_printable_is_decoded_leniently() {
    let msg = "Content-Type: text/html; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n<html><body text=\"#000000\" bgcolor=3D\"#ffffff\">caf=e9 =\nau lait =ZZ</body></html>\n";
    let (headers, _, outcome) = run(msg, &FOOTER);
    let (body, parts) = added(outcome);
    assert_eq!(parts, 1);
    assert!(max_line(&body) <= 76);
    let t = texts(&reassemble(&headers, &body));
    assert_eq!(
        t[0].1,
        "<html><body text=\"#000000\" bgcolor=\"#ffffff\">café au lait =ZZ\r\n<p>Dit bericht is beveiligd verzonden.</p>\r\n</body></html>\r\n"
    );
}

/// A part that cannot take the footer is reported, not silently dropped.
#[test]
fn part_left_without_footer_is_reported() {
    let msg = "Content-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nTekst\n--XX\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n--XX--\n";
    let (_, _, outcome) = run(msg, &FOOTER);
    let Outcome::Added { parts, skipped, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(parts, 1);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].to_string().contains("invalid base64"),
        "{skipped:?}"
    );
    assert_eq!(
        Outcome::Added {
            body: vec![],
            parts,
            skipped
        }
        .to_string(),
        "footer added to 1 part(s); 1 part(s) left without it: MIME structure not rewritten: invalid base64 in a text part"
    );
}

/// An LF-only message (as Exim hands it to a transport filter) gets an LF-only footer,
/// even when the body gives no or a misleading hint.
#[test]
fn line_breaks_follow_the_message_not_the_body() {
    for (body, expected) in [
        ("", "Dit bericht is beveiligd verzonden.\nNTA 7516\n"),
        (
            "no final newline",
            "no final newline\n\nDit bericht is beveiligd verzonden.\nNTA 7516\n",
        ),
        (
            "one\r\nstray CR\n",
            "one\r\nstray CR\n\nDit bericht is beveiligd verzonden.\nNTA 7516\n",
        ),
    ] {
        let out = added(add_footer_with(
            &[],
            body.as_bytes(),
            &FOOTER,
            LineBreak::Lf,
        ))
        .0;
        assert_eq!(String::from_utf8(out).unwrap(), expected, "{body:?}");
    }
    // Detected from the body: the majority style; CRLF (what Postfix sends) on a tie.
    let detect = |body: &str| {
        let out = added(add_footer(&[], body.as_bytes(), &FOOTER)).0;
        String::from_utf8(out).unwrap().ends_with("NTA 7516\r\n")
    };
    assert!(detect(""));
    assert!(detect("a\r\nb\r\nc\n"));
    assert!(!detect("a\nb\r\nc\n"));
    assert!(!detect("a\nb\n"));
}

/// RFC 2045 §5.2: a Content-Type without a subtype is invalid, and then text/plain.
#[test]
fn content_type_without_subtype_is_text_plain() {
    for ct in ["text", "text; charset=utf-8", "text/", "garbage"] {
        let msg = format!("Content-Type: {ct}\n\nHallo\n");
        let (_, _, outcome) = run(&msg, &FOOTER);
        let (body, parts) = added(outcome);
        assert_eq!(parts, 1, "{ct}");
        assert_eq!(
            body,
            format!("Hallo\r\n\r\n{}", plain_footer_crlf()).as_bytes()
        );
    }
    // In a multipart too; a multipart without subtype is still not text.
    let msg =
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text\n\nHallo\n--b--\n";
    assert_eq!(added(run(msg, &FOOTER).2).1, 1);
}

/// Nested boundaries whose delimiter lines coincide make one line a delimiter of both;
/// readers then see different parts (Python's email package does).
#[test]
fn nested_boundaries_that_clash_are_refused() {
    let nested = |outer: &str, inner: &str, text: &str| {
        format!(
            "Content-Type: multipart/mixed; boundary=\"{outer}\"\n\n--{outer}\nContent-Type: multipart/alternative; boundary=\"{inner}\"\n\n--{inner}\nContent-Type: text/plain\n\n{text}\n--{inner}--\n--{outer}--\n"
        )
    };
    for (outer, inner) in [("a--", "a----"), ("same", "same"), ("ab--", "ab")] {
        let reason = skipped(run(&nested(outer, inner, "body"), &FOOTER).2);
        assert!(
            reason.to_string().contains("delimiter lines coincide"),
            "{outer} {inner}: {reason}"
        );
    }
    // Boundaries that merely share a beginning (Outlook's "X" and "X_alt") are fine.
    for (outer, inner) in [("ab1", "ab2"), ("X", "X_alt"), ("ab", "abcd")] {
        assert_eq!(added(run(&nested(outer, inner, "body"), &FOOTER).2).1, 1);
    }
    // An outer delimiter (with transport padding) inside an inner text part.
    let reason = skipped(run(&nested("o", "i", "text\n--o \nmore"), &FOOTER).2);
    assert!(
        reason.to_string().contains("enclosing multipart"),
        "{reason}"
    );
    // A boundary ending in white space (RFC 2046 §5.1.1 forbids it).
    let msg = "Content-Type: multipart/mixed; boundary=\"b \"\n\n--b \nContent-Type: text/plain\n\nx\n--b --\n";
    assert!(
        skipped(run(msg, &FOOTER).2)
            .to_string()
            .contains("white space")
    );
}

/// RFC 2046 §5.1.1 wants at least one body part; where mail-parser finds none, readers
/// may find several ("--b" lines it reads as header fields).
#[test]
fn multipart_without_parts_is_refused() {
    let msg = "Content-Type: multipart/mixed; boundary=\":foo\"\n\n--:foo\n--:foo\nContent-Type: text/plain\n--:foo\nContent-Type: text/html\n--:foo--\n";
    assert!(
        skipped(run(msg, &FOOTER).2)
            .to_string()
            .contains("without any part")
    );
}

/// The parser is given every "base64" defused (`limits`), so that it decodes no part; the
/// outcome must be the one it gives when it decodes them all (which it does when the
/// message already contains the defused spelling), for good and damaged base64 alike.
#[test]
fn defused_base64_gives_the_same_outcome_as_decoded_base64() {
    let text = codec::base64_encode("Beste collega,\n\nZie bijlage.\n".as_bytes(), b"\n", true);
    let text = String::from_utf8(text).unwrap();
    let html = codec::base64_encode(b"<html><body><p>Hallo</p></body></html>\n", b"\n", true);
    let html = String::from_utf8(html).unwrap();
    let messages = [
        format!("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{text}"),
        format!("Content-Type: text/plain\nContent-Transfer-Encoding: BASE64\n\n{text}--x\n"),
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!! not base64 ****\n".to_string(),
        format!(
            "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n{text}--b1\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"scan.pdf\"\n\n{PDF_BYTES}\n--b1--\n"
        ),
        // Damaged base64 in the attachment, and a "--" line that is no delimiter.
        format!(
            "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\nTekst\n--b1\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"scan.pdf\"\n\n{PDF_BYTES}\n!!!\n--nope\n--b1--\n"
        ),
        // A text part with a "--" line that is not its delimiter.
        format!(
            "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{text}--nope\n--b1\nContent-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\n\nAAAA\n--b1--\n"
        ),
        format!(
            "Content-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{text}--XX\nContent-Type: multipart/related; boundary=\"YY\"\n\n--YY\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n{html}--YY\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--YY--\n--XX--\n"
        ),
        "Content-Type: multipart/alternative; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nTekst\n--XX\nContent-Type: text/html\nContent-Transfer-Encoding: base64\n\n!!!not base64!!!\n--XX--\n".to_string(),
        // A text part without its closing delimiter.
        format!(
            "Content-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n{text}"
        ),
    ];
    let mut footered = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let (mut headers, body) = milter_view(message);
        let defused = add_footer(&headers, &body, &FOOTER);
        // The defused spelling anywhere in the parser's copy keeps every "base64" as it is.
        headers.push(("Content-Note".into(), "base6_".into()));
        let decoded = add_footer(&headers, &body, &FOOTER);
        assert_eq!(defused, decoded, "message {i}");
        if let Outcome::Added { parts, skipped, .. } = defused {
            footered.push((i, parts, skipped.len()));
        }
    }
    // Both kinds of outcome are compared, not only refusals.
    assert_eq!(
        footered,
        [(0, 1, 0), (3, 1, 0), (4, 1, 0), (6, 2, 0), (7, 1, 1)]
    );
}
