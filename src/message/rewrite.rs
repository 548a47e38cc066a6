//! Whole-message rewriting for MTAs without a milter (Exim's `transport_filter`): the same
//! header hygiene, classification header and footer as the milter, applied to the raw
//! message bytes.
//!
//! The input is one complete message: header fields, an empty line, the body; with LF line
//! endings as Exim writes it to a transport filter (CRLF works too, and is kept). Header
//! fields that stay are copied byte for byte (never re-folded or re-encoded), so a later
//! DKIM signature by the MTA covers exactly what leaves. What changes:
//! * header hygiene as the milter does it ([`Hygiene`]): every header field the daemon
//!   owns (`X-NTA7516-*`), the configured bypass header and an Authentication-Results
//!   field that claims our authserv-id are removed;
//! * `X-NTA7516-Classification: <class>` is appended to the header;
//! * `secure` mail gets the footer ([`footer::add_footer`], as the milter does).
//!
//! Anything that is not a message (no header fields, a header line that is not a field,
//! input over [`footer::MAX_MESSAGE_SIZE`]) is an error: the caller must not pass the input on.

use crate::config::{Classification, Config};
use crate::message::footer::{self, Footer, LineBreak, Outcome};
use crate::message::hygiene::{self, HEADER_CLASSIFICATION, Hygiene};

/// One header field as it appears in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name, without surrounding white space.
    pub name: &'a str,
    /// Everything after the colon up to (not including) the field's final line ending;
    /// folded lines keep their own line endings.
    pub value: &'a [u8],
    /// The whole field including its final line ending, to copy unchanged.
    pub raw: &'a [u8],
}

/// A message split at the end of its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub fields: Vec<Field<'a>>,
    /// The empty line that ends the header (`\n` or `\r\n`); empty when the input has no
    /// body and no empty line.
    pub separator: &'a [u8],
    pub body: &'a [u8],
    /// The line ending the message uses (that of its first line): `\n` or `\r\n`.
    pub eol: &'static [u8],
}

/// Why a message cannot be passed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error(
        "message larger than {} bytes: refusing to process it (never truncated)",
        footer::MAX_MESSAGE_SIZE
    )]
    TooLarge,
    #[error("not a message: {0}")]
    Unparsable(String),
}

/// The rewritten message and what was done, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub message: Vec<u8>,
    pub notes: Vec<String>,
}

/// Splits `raw` into header fields and body.
pub fn parse(raw: &[u8]) -> Result<Parsed<'_>, RewriteError> {
    if raw.len() > footer::MAX_MESSAGE_SIZE {
        return Err(RewriteError::TooLarge);
    }
    let first_line_end = raw.iter().position(|&b| b == b'\n');
    let eol: &'static [u8] = match first_line_end {
        Some(i) if i > 0 && raw[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    let mut fields: Vec<Field> = Vec::new();
    // (start of the current field, end of its name, position of its colon)
    let mut current: Option<(usize, usize, usize)> = None;
    let mut pos = 0;
    let mut line_no = 0;
    while pos < raw.len() {
        line_no += 1;
        let line_end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..line_end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() && line.ends_with(b"\n") {
            close(raw, &mut fields, current.take(), pos);
            if fields.is_empty() {
                return Err(no_fields());
            }
            return Ok(Parsed {
                fields,
                separator: line,
                body: &raw[line_end..],
                eol,
            });
        }
        if content.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            if current.is_none() {
                return Err(RewriteError::Unparsable(
                    "the first header line is a continuation line".into(),
                ));
            }
        } else {
            close(raw, &mut fields, current.take(), pos);
            let colon = content.iter().position(|&b| b == b':').ok_or_else(|| {
                RewriteError::Unparsable(format!(
                    "header line {line_no} is not a header field (no colon)"
                ))
            })?;
            let name = &content[..colon];
            let name_len = name.len()
                - name
                    .iter()
                    .rev()
                    .take_while(|&&b| b == b' ' || b == b'\t')
                    .count();
            if name_len == 0 || !name[..name_len].iter().all(|&b| (33..=126).contains(&b)) {
                return Err(RewriteError::Unparsable(format!(
                    "header line {line_no} does not start with a field name"
                )));
            }
            current = Some((pos, pos + colon, pos + colon));
        }
        pos = line_end;
    }
    // No empty line: the whole input is header (a message without a body).
    close(raw, &mut fields, current.take(), raw.len());
    if fields.is_empty() {
        return Err(no_fields());
    }
    Ok(Parsed {
        fields,
        separator: &[],
        body: &[],
        eol,
    })
}

/// Empty input, or a body without a header: passing it on would invent a message
/// (RFC 5322 §3.6 requires at least the From and Date fields).
fn no_fields() -> RewriteError {
    RewriteError::Unparsable("no header fields".into())
}

/// Ends the field that started at `cur` (start, end of name, colon) at `end`.
fn close<'a>(
    raw: &'a [u8],
    fields: &mut Vec<Field<'a>>,
    cur: Option<(usize, usize, usize)>,
    end: usize,
) {
    let Some((start, name_end, colon)) = cur else {
        return;
    };
    let raw_field = &raw[start..end];
    let eol_len = if raw_field.ends_with(b"\r\n") {
        2
    } else {
        usize::from(raw_field.ends_with(b"\n"))
    };
    let value_end = (end - eol_len).max(colon + 1);
    // The name was checked to be printable ASCII when its line was read.
    let name = std::str::from_utf8(&raw[start..name_end]).unwrap_or_default();
    fields.push(Field {
        name: name.trim_end_matches([' ', '\t']),
        value: &raw[colon + 1..value_end],
        raw: raw_field,
    });
}

/// Where the rewritten message goes, as far as header hygiene cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Destination {
    /// Out by SMTP: every `X-NTA7516-*` field goes, `X-NTA7516-Phone` included.
    #[default]
    Smtp,
    /// Our own eDelivery portal over LMTP (Exim's `nta7516_portal` transports): the
    /// portal reads the recipient's mobile number from `X-NTA7516-Phone`, so that one
    /// field stays. Only trusted clients can have set it (the ACL removes it otherwise),
    /// and the portal never passes it on.
    Portal,
}

/// The message with our header hygiene, `X-NTA7516-Classification: class` and, for
/// `secure`, the configured footer, for delivery by SMTP.
pub fn rewrite(
    raw: &[u8],
    class: Classification,
    config: &Config,
) -> Result<Rewritten, RewriteError> {
    rewrite_for(raw, class, config, Destination::Smtp)
}

/// [`rewrite`] for a given destination.
pub fn rewrite_for(
    raw: &[u8],
    class: Classification,
    config: &Config,
    to: Destination,
) -> Result<Rewritten, RewriteError> {
    let parsed = parse(raw)?;
    let mut notes = Vec::new();
    let authserv_id = hygiene::authserv_id(config);
    let rules = Hygiene::new(config, &authserv_id);
    let (removed, kept): (Vec<&Field>, Vec<&Field>) = parsed.fields.iter().partition(|f| {
        rules.removes(f.name, f.value) && !(to == Destination::Portal && rules.is_phone(f.name))
    });
    if !removed.is_empty() {
        let mut names: Vec<&str> = removed.iter().map(|f| f.name).collect();
        names.dedup();
        notes.push(format!(
            "removed {} client-supplied header field(s): {}",
            removed.len(),
            names.join(", ")
        ));
    }

    let mut new_body = None;
    if class == Classification::Secure {
        let headers: Vec<(String, String)> = kept
            .iter()
            .map(|f| {
                (
                    f.name.to_string(),
                    String::from_utf8_lossy(f.value).into_owned(),
                )
            })
            .collect();
        let f = Footer {
            text: &config.footer.text,
            html: &config.footer.html,
        };
        // The header's line breaks are the message's: the body alone may not tell.
        let line_break = if parsed.eol == b"\r\n" {
            LineBreak::Crlf
        } else {
            LineBreak::Lf
        };
        let outcome = footer::add_footer_with(&headers, parsed.body, &f, line_break);
        notes.push(outcome.to_string());
        if let Outcome::Added { body, .. } = outcome {
            new_body = Some(body);
        }
    }
    let body = new_body.as_deref().unwrap_or(parsed.body);

    let added = format!("{HEADER_CLASSIFICATION}: {}", class.as_str());
    let mut out = Vec::with_capacity(raw.len() + added.len() + body.len() + 4);
    for f in &kept {
        out.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            // the last field of a body-less message without a final line ending
            out.extend_from_slice(parsed.eol);
        }
    }
    out.extend_from_slice(added.as_bytes());
    out.extend_from_slice(parsed.eol);
    if parsed.separator.is_empty() {
        out.extend_from_slice(parsed.eol);
    } else {
        out.extend_from_slice(parsed.separator);
    }
    out.extend_from_slice(body);
    notes.push(format!("classification {class}"));
    Ok(Rewritten {
        message: out,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_toml_str(
            &format!("[footer]\ntext = \"FOOTER-TEXT\"\nhtml = \"<p>FOOTER-HTML</p>\"\n{extra}"),
            "t",
        )
        .unwrap()
    }

    fn run(raw: &str, class: Classification) -> String {
        String::from_utf8(rewrite(raw.as_bytes(), class, &config("")).unwrap().message).unwrap()
    }

    #[test]
    fn parse_fields_folding_and_body() {
        let raw = b"From: a@b.nl\nSubject: one\n two\nX-Empty:\n\nbody\n\nmore\n";
        let p = parse(raw).unwrap();
        let names: Vec<&str> = p.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["From", "Subject", "X-Empty"]);
        assert_eq!(p.fields[1].value, b" one\n two");
        assert_eq!(p.fields[1].raw, b"Subject: one\n two\n");
        assert_eq!(p.fields[2].value, b"");
        assert_eq!(p.separator, b"\n");
        assert_eq!(p.body, b"body\n\nmore\n");
        assert_eq!(p.eol, b"\n");
    }

    #[test]
    fn parse_crlf_and_no_body() {
        let p = parse(b"From: a@b.nl\r\nTo: c@d.nl\r\n\r\nx\r\n").unwrap();
        assert_eq!(p.eol, b"\r\n");
        assert_eq!(p.fields[0].value, b" a@b.nl");
        assert_eq!(p.body, b"x\r\n");
        let p = parse(b"From: a@b.nl\nTo: c@d.nl").unwrap();
        assert_eq!(p.fields.len(), 2);
        assert_eq!(p.fields[1].value, b" c@d.nl");
        assert!(p.body.is_empty() && p.separator.is_empty());
        let p = parse(b"Name : v\n\n").unwrap();
        assert_eq!(p.fields[0].name, "Name");
    }

    #[test]
    fn parse_refuses_what_is_not_a_message() {
        for raw in [
            &b"not a header line\n\nbody\n"[..],
            b" continuation first: x\n\n",
            b": no name\n\n",
            b"From a@b.nl Mon Jan  1 00:00:00 2024\nFrom: a@b.nl\n\n",
            b"Na\xffme: v\n\n",
            b"",
            b"\n",
            b"\r\n\r\nbody\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(RewriteError::Unparsable(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn hygiene_classification_and_footer() {
        let raw = "Received: from x\n\tby y\nFrom: a@zkh.nl\nX-NTA7516-Route: standard\nx-nta7516-classification: standard\nX-NTA7516-Bypass: true\nSubject: s\n\nHallo\n";
        let out = run(raw, Classification::Secure);
        assert_eq!(
            out,
            "Received: from x\n\tby y\nFrom: a@zkh.nl\nSubject: s\nX-NTA7516-Classification: secure\n\nHallo\n\nFOOTER-TEXT\n"
        );
        let out = run(raw, Classification::Standard);
        assert_eq!(
            out,
            "Received: from x\n\tby y\nFrom: a@zkh.nl\nSubject: s\nX-NTA7516-Classification: standard\n\nHallo\n"
        );
    }

    #[test]
    fn only_the_portal_keeps_the_phone_header() {
        let c = config("");
        let raw =
            b"From: a@zkh.nl\nX-NTA7516-Phone: +31612345678\nX-NTA7516-Route: standard\n\nx\n";
        let smtp = rewrite(raw, Classification::Secure, &c).unwrap().message;
        assert!(!String::from_utf8_lossy(&smtp).contains("Phone"));
        let portal = rewrite_for(raw, Classification::Secure, &c, Destination::Portal)
            .unwrap()
            .message;
        let portal = String::from_utf8(portal).unwrap();
        assert!(portal.starts_with(
            "From: a@zkh.nl\nX-NTA7516-Phone: +31612345678\nX-NTA7516-Classification: secure\n\n"
        ));
        // every other field of ours still goes
        assert!(!portal.contains("X-NTA7516-Route"));
    }

    #[test]
    fn configured_bypass_header_is_removed() {
        let c = config("[policy]\nbypass_header = \"X-Ezorg-Secbypass\"\n");
        let raw = b"From: a@zkh.nl\nx-ezorg-secbypass: true\n\nx\n";
        let out = rewrite(raw, Classification::Standard, &c).unwrap();
        assert_eq!(
            out.message,
            b"From: a@zkh.nl\nX-NTA7516-Classification: standard\n\nx\n"
        );
        assert!(
            out.notes[0].contains("x-ezorg-secbypass"),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn forged_authentication_results_are_removed_as_by_the_milter() {
        let c = config("[inbound]\nauthserv_id = \"mx.zkh.nl\"\n");
        let raw = b"Authentication-Results: mx.zkh.nl; dkim=pass\nAuthentication-Results: mx.other.nl; dkim=fail\nFrom: a@zkh.nl\n\nx\n";
        let out = rewrite(raw, Classification::Standard, &c).unwrap();
        assert_eq!(
            String::from_utf8(out.message).unwrap(),
            "Authentication-Results: mx.other.nl; dkim=fail\nFrom: a@zkh.nl\nX-NTA7516-Classification: standard\n\nx\n"
        );
        assert!(
            out.notes[0]
                .starts_with("removed 1 client-supplied header field(s): Authentication-Results"),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn crlf_kept_and_body_less_messages() {
        let out = run("From: a@b.nl\r\n\r\nx\r\n", Classification::Secure);
        assert_eq!(
            out,
            "From: a@b.nl\r\nX-NTA7516-Classification: secure\r\n\r\nx\r\n\r\nFOOTER-TEXT\r\n"
        );
        let out = run("From: a@b.nl", Classification::Standard);
        assert_eq!(out, "From: a@b.nl\nX-NTA7516-Classification: standard\n\n");
    }

    #[test]
    fn skipped_footer_leaves_the_body_alone() {
        let raw = "From: a@b.nl\nContent-Type: multipart/signed; boundary=\"b\"; protocol=\"application/pkcs7-signature\"\n\n--b\nContent-Type: text/plain\n\nx\n--b--\n";
        let r = rewrite(raw.as_bytes(), Classification::Secure, &config("")).unwrap();
        let out = String::from_utf8(r.message).unwrap();
        assert!(
            out.ends_with("\n\n--b\nContent-Type: text/plain\n\nx\n--b--\n"),
            "{out}"
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("footer skipped: signed")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn non_utf8_header_values_are_copied_unchanged() {
        let raw = b"Subject: caf\xe9\nFrom: a@b.nl\n\nx\n";
        let out = rewrite(raw, Classification::Standard, &config("")).unwrap();
        assert!(out.message.starts_with(b"Subject: caf\xe9\nFrom: a@b.nl\n"));
    }

    #[test]
    fn too_large() {
        let raw = vec![b'a'; footer::MAX_MESSAGE_SIZE + 1];
        assert_eq!(parse(&raw), Err(RewriteError::TooLarge));
    }
}
