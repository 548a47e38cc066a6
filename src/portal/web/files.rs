//! What is served behind the session besides the page: the sanitised body for its frame,
//! the message's parts (attachments, inline images), the PDF and the original `.eml`.
//! Every download is audited with the SHA-256 of the bytes served.

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::link::{Authorised, Link};
use super::routes::{here, html, unknown};
use super::templates::Body;
use super::{Recipient, guard, keys, pdf, sanitize, view};
use crate::audit::Event;

pub(super) async fn body(a: Authorised) -> Response {
    let v = view::parse(&a.raw);
    let base = format!("{}/part/", here(&a.link.token));
    let clean = sanitize::sanitise(v.html.as_deref().unwrap_or(""), &v.cids, &base);
    let lang = a.link.lang;
    let doc = Body {
        lang: lang.code(),
        title: lang.text().frame_title,
        html: clean,
    };
    let mut resp = html(StatusCode::OK, doc.render());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(guard::BODY_CSP),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    resp
}

/// Types served under their own name; anything else is `application/octet-stream`.
const SAFE_TYPES: &[&str] = &["application/pdf", "text/plain"];

/// A file name safe in a header and on any file system.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, '/' | '\\' | '"' | ':' | '*' | '?' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .take(120)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "bijlage".into()
    } else {
        trimmed.to_string()
    }
}

/// RFC 6266 `Content-Disposition`: an ASCII fallback and the UTF-8 name (RFC 8187).
fn disposition(kind: &str, name: &str) -> HeaderValue {
    let name = safe_name(name);
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && c != '%' { c } else { '_' })
        .collect();
    let mut pct = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            pct.push(b as char);
        } else {
            pct.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{pct}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// One file served as a download (and audited with its hash).
struct Download<'a> {
    what: &'a str,
    part: Option<u64>,
    bytes: Vec<u8>,
    content_type: &'a str,
    name: &'a str,
}

impl<'a> Download<'a> {
    /// A download of the whole message in one form (not one of its parts).
    fn whole(what: &'a str, bytes: Vec<u8>, content_type: &'a str, name: &'a str) -> Self {
        Download {
            what,
            part: None,
            bytes,
            content_type,
            name,
        }
    }
}

fn download(link: &Link, r: &Recipient, d: Download<'_>) -> Response {
    let Download {
        what,
        part,
        bytes,
        content_type,
        name,
    } = d;
    link.state.auditor.record(Event::PortalDownloaded {
        message: r.message_id.clone(),
        recipient: r.address.clone(),
        what: what.to_string(),
        part,
        sha256: keys::sha256_hex(&bytes),
        size: bytes.len() as u64,
        client_address: link.ip.0.to_string(),
    });
    let ct = HeaderValue::from_str(content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ct);
    h.insert(header::CONTENT_DISPOSITION, disposition("attachment", name));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(guard::DOWNLOAD_CSP),
    );
    resp
}

/// `n` is extracted before [`Authorised`]: a part "number" that is none is a 400 before
/// anything is looked up.
pub(super) async fn part(Path((_, n)): Path<(String, usize)>, a: Authorised) -> Response {
    let Authorised { link, r, raw } = a;
    let Some((bytes, ct, name)) = view::part(&raw, n) else {
        return unknown(&link.state, link.lang);
    };
    let image = view::INLINE_IMAGE_TYPES.contains(&ct.as_str());
    let for_img = link
        .headers
        .get("sec-fetch-dest")
        .is_some_and(|d| d.as_bytes() == b"image");
    if image && for_img {
        // An inline image of the message body: part of viewing it, not a download.
        let mut resp = (StatusCode::OK, bytes).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&ct)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(guard::DOWNLOAD_CSP),
        );
        return resp;
    }
    let ct = if image || SAFE_TYPES.contains(&ct.as_str()) {
        ct
    } else {
        "application/octet-stream".into()
    };
    let name = name.unwrap_or_else(|| format!("bijlage-{n}"));
    let d = Download {
        what: "part",
        part: Some(n as u64),
        bytes,
        content_type: &ct,
        name: &name,
    };
    download(&link, &r, d)
}

/// The PDF's lines: labels in bold, the body as text, then the attachment names.
pub(super) fn pdf_lines(v: &view::View, t: &super::i18n::Text, org: &str) -> Vec<pdf::Line> {
    let mut lines = vec![
        pdf::Line::bold(format!("{} {org}", t.secure_message_from)),
        pdf::Line::plain(""),
    ];
    let subject = if v.subject.trim().is_empty() {
        t.no_subject
    } else {
        v.subject.as_str()
    };
    for (label, value) in [
        (t.from, v.from.as_str()),
        (t.date, v.date.as_str()),
        (t.subject, subject),
    ] {
        for (i, l) in pdf::wrap(&format!("{label}: {value}"))
            .into_iter()
            .enumerate()
        {
            lines.push(if i == 0 {
                pdf::Line::bold(l)
            } else {
                pdf::Line::plain(l)
            });
        }
    }
    lines.push(pdf::Line::plain(""));
    lines.extend(pdf::wrap(&v.text).into_iter().map(pdf::Line::plain));
    lines.push(pdf::Line::plain(""));
    lines.push(pdf::Line::bold(format!("{}:", t.attachments)));
    if v.attachments.is_empty() {
        lines.push(pdf::Line::plain(t.no_attachments));
    }
    for a in &v.attachments {
        lines.push(pdf::Line::plain(format!(
            "- {} ({} {})",
            a.name, a.size, t.bytes
        )));
    }
    lines
}

pub(super) async fn pdf_download(a: Authorised) -> Response {
    let v = view::parse(&a.raw);
    let bytes = pdf::render(&pdf_lines(
        &v,
        a.link.lang.text(),
        &a.link.state.organisation,
    ));
    let d = Download::whole("pdf", bytes, "application/pdf", "bericht.pdf");
    download(&a.link, &a.r, d)
}

pub(super) async fn eml(a: Authorised) -> Response {
    let Authorised { link, r, raw } = a;
    download(
        &link,
        &r,
        Download::whole("eml", raw, "message/rfc822", "bericht.eml"),
    )
}
