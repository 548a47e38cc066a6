//! The footer text itself and where it goes in a decoded text part (see the module
//! documentation of `footer` for the rules).

use std::borrow::Cow;

use mail_parser::decoders::html::html_to_text;

use super::charset::{self, Charset};
use super::{Footer, Kind};

/// RFC 5322 §2.1.1 line length limit (without CRLF) for the footer lines we write.
pub(super) const MAX_LINE: usize = 998;

/// The plain and HTML footer texts, each derived from the other when empty.
pub(super) fn footer_sources<'a>(footer: &Footer<'a>) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
    let has_text = !footer.text.trim().is_empty();
    let has_html = !footer.html.trim().is_empty();
    match (has_text, has_html) {
        (true, true) => Some((footer.text.into(), footer.html.into())),
        (true, false) => Some((footer.text.into(), text_to_html(footer.text).into())),
        (false, true) => Some((html_to_text(footer.html).into(), footer.html.into())),
        (false, false) => None,
    }
}

fn text_to_html(text: &str) -> String {
    let mut html = String::from("<p>");
    let text = text.replace("\r\n", "\n");
    for (i, line) in text.trim_matches('\n').split('\n').enumerate() {
        if i > 0 {
            html.push_str("<br>\n");
        }
        for c in line.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                _ => html.push(c),
            }
        }
    }
    html.push_str("</p>");
    html
}

fn ends_with_line_break(s: &[u8]) -> bool {
    s.ends_with(b"\n")
}

pub(super) fn append_plain(content: &[u8], footer: &[u8], eol: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + footer.len() + 2 * eol.len());
    out.extend_from_slice(content);
    if !out.is_empty() {
        if !ends_with_line_break(&out) {
            out.extend_from_slice(eol);
        }
        // One blank line between the text and the footer, unless there already is one.
        let before_last = &out[..out.len() - 1];
        let before_last = before_last.strip_suffix(b"\r").unwrap_or(before_last);
        if !(before_last.ends_with(b"\n") || before_last.is_empty()) {
            out.extend_from_slice(eol);
        }
    }
    out.extend_from_slice(footer);
    out
}

pub(super) fn insert_html(content: &[u8], footer: &[u8], eol: &[u8]) -> Vec<u8> {
    let at = last_body_close(content).unwrap_or(content.len());
    let mut out = Vec::with_capacity(content.len() + footer.len() + eol.len());
    out.extend_from_slice(&content[..at]);
    if !out.is_empty() && !ends_with_line_break(&out) {
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(footer);
    out.extend_from_slice(&content[at..]);
    out
}

/// Position of the last `</body>` tag (any case, `</body >` too).
pub(super) fn last_body_close(html: &[u8]) -> Option<usize> {
    let mut end = html.len();
    while let Some(i) = html[..end]
        .windows(6)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body"))
    {
        match html.get(i + 6) {
            Some(b'>' | b' ' | b'\t' | b'\r' | b'\n') => return Some(i),
            _ => end = i + 5, // keep looking before this "</body…"
        }
    }
    None
}

/// The footer in the part's charset, one `eol` after each line (see module docs for the
/// charset, 7bit, line length and format=flowed rules).
pub(super) fn render_footer(
    source: &str,
    kind: Kind,
    charset: Charset,
    ascii_only: bool,
    eol: &[u8],
    flowed: bool,
) -> Vec<u8> {
    let source = source.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = Vec::with_capacity(source.len() + 16);
    for line in source.trim_matches('\n').split('\n') {
        let mut line_start = out.len();
        let mut last_space = None;
        let line = if flowed {
            line.trim_end_matches(' ')
        } else {
            line
        };
        if flowed && (line.starts_with([' ', '>']) || line.starts_with("From ")) {
            out.push(b' '); // RFC 3676 §4.4 space-stuffing
        }
        for c in line.chars() {
            if c.is_control() && c != '\t' {
                continue;
            }
            let unit = out.len();
            if !charset::push_char(&mut out, c, charset, ascii_only) {
                match kind {
                    Kind::Html => {
                        out.extend_from_slice(format!("&#x{:X};", u32::from(c)).as_bytes())
                    }
                    Kind::Plain => {
                        out.extend_from_slice(charset::transliterate(c).unwrap_or("?").as_bytes())
                    }
                }
            }
            if out.len() - line_start > MAX_LINE {
                // Break at the last space (same meaning in HTML, a word wrap in text),
                // else before this character.
                let at = last_space.take().unwrap_or(unit);
                let replaced = usize::from(at != unit);
                out.splice(at..at + replaced, eol.iter().copied());
                line_start = at + eol.len();
            }
            if c == ' ' && out.len() == unit + 1 {
                last_space = Some(unit);
            }
        }
        out.extend_from_slice(eol);
    }
    out
}
