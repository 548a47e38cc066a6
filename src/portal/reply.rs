//! A recipient's reply through the page (NTA 7516 6.1.14: answer within the secure route):
//! a MIME message with the text and the attachments, to the original sender only, from
//! the portal's own address with the recipient's address as the name and in `Reply-To`,
//! `In-Reply-To`/`References` to the original. Submitted like every portal mail (the
//! MTA's `sendmail`, the portal mark), so the milter DKIM-signs it.
//!
//! Nothing the visitor sends becomes a header: the recipient of the reply is the stored
//! message's sender, the subject is derived from the original's, the text is the body and
//! each file one attachment (its name RFC 2231-encoded by mail-builder). Replies go only
//! to senders in `[domains] own` (they carry patient content: they must stay inside the
//! organisation), and each is recorded so that the clinician's answer to it finds its way
//! back to the same recipient (`store::thread`).

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_parser::MessageParser;

use crate::audit::Event;
use crate::message::portal_mark::{HEADER_PORTAL_MARK, Marked};
use crate::portal::notice::{NoticeError, message_id, one_line};
use crate::portal::receipt::SenderMail;
use crate::portal::web::{BoxFuture, Recipient, ReplyError, ReplySender, Upload};

/// Largest reply text (bytes) and the attachments' total and count; the web side refuses
/// more with a message saying which limit.
pub const MAX_REPLY_TEXT: usize = 64 * 1024;
pub const MAX_REPLY_FILES: usize = 5;
pub const MAX_REPLY_BYTES: usize = 10 * 1024 * 1024;
/// Longest attachment name kept (characters).
const MAX_FILE_NAME: usize = 120;

/// What the reply refers to, from the stored original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Original {
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub references: Vec<String>,
}

impl Original {
    pub fn parse(raw: &[u8]) -> Original {
        let Some(m) = MessageParser::default().parse_headers(raw) else {
            return Original::default();
        };
        let references = m
            .references()
            .as_text_list()
            .map(|l| l.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default();
        Original {
            subject: m.subject().unwrap_or_default().to_string(),
            message_id: m.message_id().map(str::to_string),
            references,
        }
    }
}

/// An attachment name without path, control characters or quotes, bounded; "bijlage"
/// when nothing is left.
pub fn file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>'))
        .take(MAX_FILE_NAME)
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "bijlage".into()
    } else {
        clean
    }
}

/// A MIME type as `type/subtype` of token characters, else `application/octet-stream`.
fn content_type(ct: &str) -> String {
    let ct = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    match ct.split_once('/') {
        Some((t, s)) if token(t) && token(s) => ct,
        _ => "application/octet-stream".into(),
    }
}

/// The reply's subject: the original's with one "Re: ".
fn subject(original: &str) -> String {
    let s = one_line(original);
    let s = if original.trim().is_empty() {
        "Antwoord / Reply".to_string()
    } else {
        s
    };
    if s.to_ascii_lowercase().starts_with("re:") {
        s
    } else {
        format!("Re: {s}")
    }
}

/// The header value of `name` in the header block of `mail` as written (unfolded).
fn written(mail: &[u8], name: &str) -> String {
    let end = mail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(mail.len());
    let head = String::from_utf8_lossy(&mail[..end]);
    let mut out: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = out.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line);
                continue;
            }
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            out = Some(v.trim_start().to_string());
        }
    }
    out.unwrap_or_default()
}

impl SenderMail {
    /// The reply of `from_address` (the portal recipient) to `to`, marked, CRLF line ends.
    #[allow(clippy::too_many_arguments)]
    pub fn build_reply(
        &self,
        from_address: &str,
        to: &str,
        original: &Original,
        text: &str,
        files: &[Upload],
        mid: &str,
        date: i64,
    ) -> Vec<u8> {
        let org = one_line(&self.notifier.organisation);
        let name = format!("{} via {org}", one_line(from_address));
        let bare_mid = mid
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        let mut refs: Vec<String> = original.references.clone();
        if let Some(m) = &original.message_id
            && !refs.contains(m)
        {
            refs.push(m.clone());
        }
        let mut b = MessageBuilder::new()
            .from(Address::new_address(Some(name), self.notifier.from.clone()))
            .reply_to(from_address.to_string())
            .to(to.to_string())
            .subject(subject(&original.subject))
            .message_id(bare_mid)
            .date(date)
            .text_body(text.replace("\r\n", "\n").replace('\r', "\n"));
        if let Some(m) = &original.message_id {
            b = b.in_reply_to(m.clone());
        }
        if !refs.is_empty() {
            b = b.references(mail_builder::headers::message_id::MessageId {
                id: refs.into_iter().map(std::borrow::Cow::Owned).collect(),
            });
        }
        for f in files {
            b = b.attachment(
                content_type(&f.content_type),
                file_name(&f.name),
                f.data.clone(),
            );
        }
        let mail = b.write_to_vec().unwrap_or_default();
        self.mark_mail(to, mail)
    }

    /// Adds the portal mark to a built mail (headers CRLF, then the body).
    fn mark_mail(&self, to: &str, mail: Vec<u8>) -> Vec<u8> {
        let split = mail
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(mail.len(), |i| i + 2);
        let (head, body) = mail.split_at(split);
        let body = body.strip_prefix(b"\r\n").unwrap_or(body);
        let to = to.to_string();
        let mark = self.notifier.mark.mark(&Marked {
            recipients: std::slice::from_ref(&to),
            message_id: &written(&mail, "Message-ID"),
            subject: &written(&mail, "Subject"),
            body,
        });
        let mut out = Vec::with_capacity(mail.len() + 100);
        out.extend_from_slice(head);
        out.extend_from_slice(format!("{HEADER_PORTAL_MARK}: {mark}\r\n\r\n").as_bytes());
        out.extend_from_slice(body);
        out
    }

    async fn reply(
        &self,
        r: &Recipient,
        raw: &[u8],
        text: &str,
        files: &[Upload],
        client: &str,
    ) -> Result<(), ReplyError> {
        let to = r
            .sender
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        if !self.can_reply_to(&to) {
            return Err(ReplyError::NotPossible);
        }
        let temp = |e: crate::portal::store::StoreError| {
            tracing::warn!(error = %e, "portal reply: store unavailable");
            ReplyError::Temporary
        };
        if self.store.replies_sent(&r.id).await.map_err(temp)?
            >= crate::portal::store::MAX_REPLIES_PER_RECIPIENT
        {
            return Err(ReplyError::TooMany);
        }
        let original = Original::parse(raw);
        let mid = message_id(&self.notifier.from);
        let mail = self.build_reply(
            &r.address,
            &to,
            &original,
            text,
            files,
            &mid,
            crate::portal::store::now(),
        );
        self.notifier
            .submit(&to, &mail)
            .await
            .map_err(|NoticeError::Temporary(e)| {
                tracing::warn!(message = %r.message_id, error = %e, "portal reply not submitted");
                ReplyError::Temporary
            })?;
        let bare = mid.trim_start_matches('<').trim_end_matches('>');
        if let Err(e) = self
            .store
            .record_reply(bare, &r.message_id, &r.id, mail.len() as u64)
            .await
        {
            // Sent: the answer to it will need a number instead of finding the thread.
            tracing::error!(error = %e, "portal reply sent but not recorded");
        }
        self.auditor.record(Event::PortalReplied {
            message: r.message_id.clone(),
            recipient: r.address.clone(),
            to,
            reply_message_id: bare.to_string(),
            attachments: files.len(),
            size: mail.len() as u64,
            sha256: crate::portal::web::keys::sha256_hex(&mail),
            client_address: client.to_string(),
        });
        Ok(())
    }

    /// Replies go only to a plain address in one of the own domains.
    pub fn can_reply_to(&self, to: &str) -> bool {
        let Some((local, domain)) = to.rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        !local.is_empty()
            && crate::portal::store::receipt_address(to).is_some()
            && self
                .own_domains
                .iter()
                .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    }
}

impl ReplySender for SenderMail {
    fn can_reply(&self, r: &Recipient) -> bool {
        let to = r
            .sender
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        self.can_reply_to(to)
    }

    fn reply<'a>(
        &'a self,
        r: &'a Recipient,
        raw: &'a [u8],
        text: &'a str,
        files: &'a [Upload],
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), ReplyError>> {
        Box::pin(SenderMail::reply(self, r, raw, text, files, client))
    }

    fn answers<'a>(&'a self, message_id: &'a str) -> BoxFuture<'a, Option<i64>> {
        Box::pin(async move {
            match self.store.parent_of(message_id).await {
                Ok(p) => p.map(|(_, at)| at),
                Err(e) => {
                    tracing::warn!(error = %e, "portal: thread lookup failed");
                    None
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
