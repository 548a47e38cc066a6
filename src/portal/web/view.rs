//! What the message page shows, taken from the stored original: sender, date, subject,
//! the body (sanitised HTML or text), inline images by Content-ID, and attachments.

use std::collections::HashMap;

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One downloadable or inline part, by its index in the parsed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub part: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

#[derive(Debug, Clone, Default)]
pub struct View {
    pub from: String,
    pub date: String,
    pub subject: String,
    /// The HTML body as sent (sanitise before showing), when there is one.
    pub html: Option<String>,
    /// The text body (or the HTML rendered as text), for the page and the PDF.
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Content-ID (without `<>`) to part index, for `cid:` images.
    pub cids: HashMap<String, usize>,
}

/// Image types shown inline in the message frame; any other part is only downloadable.
pub const INLINE_IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

fn content_type(p: &impl MimeHeaders<'static>) -> String {
    p.content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

/// Parses the original; never fails (a part mail-parser cannot read is left out).
pub fn parse(raw: &[u8]) -> View {
    let Some(msg) = MessageParser::default().parse(raw) else {
        return View {
            text: String::from_utf8_lossy(raw).into_owned(),
            ..View::default()
        };
    };
    let msg = msg.into_owned();
    let from = msg
        .from()
        .and_then(|a| a.first())
        .map(|a| match (a.name(), a.address()) {
            (Some(n), Some(addr)) => format!("{n} <{addr}>"),
            (None, Some(addr)) => addr.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .unwrap_or_default();
    let date = msg.date().map(|d| d.to_rfc822()).unwrap_or_default();
    let subject = msg.subject().unwrap_or_default().to_string();
    let html = if msg.html_body_count() > 0 && msg.html_part(0).is_some_and(|p| p.is_text_html()) {
        msg.body_html(0).map(|s| s.into_owned())
    } else {
        None
    };
    let text = msg.body_text(0).map(|s| s.into_owned()).unwrap_or_default();
    let mut cids = HashMap::new();
    for (i, p) in msg.parts.iter().enumerate() {
        if let Some(id) = p.content_id() {
            let id = id.trim().trim_start_matches('<').trim_end_matches('>');
            cids.insert(id.to_string(), i);
        }
    }
    let mut attachments = Vec::new();
    for &id in &msg.attachments {
        let i = id as usize;
        let Some(p) = msg.parts.get(i) else { continue };
        if matches!(p.body, PartType::Multipart(_)) {
            continue;
        }
        // An unnamed part with a Content-ID is an inline image of the body, shown there.
        if p.attachment_name().is_none() && p.content_id().is_some() {
            continue;
        }
        let name = p
            .attachment_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("bijlage-{i}"));
        attachments.push(Attachment {
            part: i,
            name,
            content_type: content_type(p),
            size: p.contents().len(),
        });
    }
    View {
        from,
        date,
        subject,
        html,
        text,
        attachments,
        cids,
    }
}

/// The decoded bytes and type of one part, if it is a leaf part of the message (a body,
/// attachment or inline image; never a multipart container).
pub fn part(raw: &[u8], index: usize) -> Option<(Vec<u8>, String, Option<String>)> {
    let msg = MessageParser::default().parse(raw)?;
    let p = msg.parts.get(index)?;
    if matches!(p.body, PartType::Multipart(_)) || index == 0 && msg.parts.len() > 1 {
        return None;
    }
    let ct = content_type(&p.clone().into_owned());
    Some((
        p.contents().to_vec(),
        ct,
        p.attachment_name().map(str::to_string),
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const MIXED: &[u8] = b"From: Dr. A <a@zkh.example>\r\n\
To: p@patient.example\r\n\
Subject: Uitslag onderzoek\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <m1@zkh.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/related; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<p>Beste patient, zie <b>bijlage</b>.</p><img src=\"cid:logo@zkh\" alt=\"logo\">\r\n\
--b2\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo@zkh>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
iVBORw0KGgo=\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"uitslag.pdf\"\r\n\
Content-Disposition: attachment; filename=\"uitslag.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQK\r\n\
--b1--\r\n";

    #[test]
    fn parses_headers_body_cids_and_attachments() {
        let v = parse(MIXED);
        assert_eq!(v.from, "Dr. A <a@zkh.example>");
        assert_eq!(v.subject, "Uitslag onderzoek");
        assert!(v.date.contains("2026"), "{}", v.date);
        assert!(v.html.as_deref().unwrap().contains("<b>bijlage</b>"));
        assert!(v.text.contains("Beste patient"), "{}", v.text);
        let pdf = v
            .attachments
            .iter()
            .find(|a| a.name == "uitslag.pdf")
            .unwrap();
        assert_eq!(pdf.content_type, "application/pdf");
        let (bytes, ct, name) = part(MIXED, pdf.part).unwrap();
        assert_eq!(bytes, b"%PDF-1.4\n");
        assert_eq!(
            (ct.as_str(), name.as_deref()),
            ("application/pdf", Some("uitslag.pdf"))
        );
        let logo = v.cids["logo@zkh"];
        let (bytes, ct, _) = part(MIXED, logo).unwrap();
        assert_eq!(
            (bytes.as_slice(), ct.as_str()),
            (&b"\x89PNG\r\n\x1a\n"[..], "image/png")
        );
        // The containers are not parts one can fetch.
        assert!(part(MIXED, 0).is_none());
        assert!(part(MIXED, 999).is_none());
    }

    #[test]
    fn plain_text_message() {
        let v = parse(b"From: a@b.example\r\nSubject: Hoi\r\n\r\nGewoon tekst.\r\n");
        assert_eq!(v.html, None);
        assert!(v.text.contains("Gewoon tekst."));
        assert!(v.attachments.is_empty());
    }
}
