//! The notification mail: content-free (organisation, one link), submitted with the MTA's
//! `sendmail` so that the milter signs it and it takes the standard route.
//!
//! Interface shared by the intake (which calls [`Notifier::send`] after a message is stored)
//! and the web side; the body is built in this module.
//!
//! What the mail says: that the organisation sent a secure message, the one link, that a
//! code will come by SMS to the masked number, Dutch then English (the texts are in
//! `notice_text`, where the organisation's own replace them). Never the subject, the
//! body, attachment names or the sender's address: the notification leaves over ordinary
//! SMTP to a domain that is not an NTA 7516 party. It carries the portal mark
//! (`message::portal_mark`) so that the milter lets it out by the standard route instead
//! of routing it back into the portal.

use std::time::Duration;

use crate::config::portal::PortalConfig;
use crate::message::portal_mark::{HEADER_PORTAL_MARK, MarkKey, Marked};
use crate::portal::notice_text::{NoticeText, Values};
use crate::portal::phone::Phone;
use crate::portal::submit::{SUBMIT_TIMEOUT, Submit};

/// One notification for one recipient of one stored message.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The portal's id of the stored message (never shown in the mail).
    pub message: String,
    /// The recipient's address, the envelope recipient of the notification.
    pub recipient: String,
    /// The full link, `public_url` + path + token; the only URL in the mail.
    pub link: String,
    /// The masked number the code will go to, shown so the recipient knows what to expect.
    pub phone: Phone,
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    /// Submission failed in a way a later retry can fix (sendmail missing, exit 75, ...).
    #[error("notification not submitted: {0}")]
    Temporary(String),
}

/// Submits notifications through the MTA's `sendmail`.
#[derive(Debug, Clone)]
pub struct Notifier {
    pub submit: Submit,
    pub from: String,
    /// Shown in the notification (`[portal] organisation`).
    pub organisation: String,
    /// The secret of `[portal] mail_key`.
    pub mark: MarkKey,
    pub timeout: Duration,
    /// The body's texts (`[portal.branding] notification_nl` / `notification_en`).
    pub text: NoticeText,
}

/// The built mail and what the mark covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The whole message as written to sendmail (LF line ends, as sendmail expects).
    pub message: Vec<u8>,
    /// The text/plain body alone.
    pub body: String,
}

impl Notifier {
    /// From the `[portal]` section: reads `mail_key`.
    pub fn new(portal: &PortalConfig) -> Result<Notifier, NoticeError> {
        let mark =
            MarkKey::load(&portal.mail_key).map_err(|e| NoticeError::Temporary(e.to_string()))?;
        Ok(Notifier {
            submit: Submit::new(
                &portal.submit,
                portal.from.rsplit_once('@').map_or("localhost", |(_, d)| d),
                &mark,
            ),
            from: portal.from.clone(),
            organisation: portal.organisation.clone(),
            mark,
            timeout: SUBMIT_TIMEOUT,
            text: NoticeText {
                nl: portal.branding.notification_nl.clone(),
                en: portal.branding.notification_en.clone(),
            },
        })
    }

    /// Submits one notification; `Ok` once `sendmail` accepted it (exit 0).
    pub async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        let built = self.build(notice, &message_id(&self.from), &date_now());
        self.submit(&notice.recipient, &built.message).await
    }

    /// Submits one built mail to `recipient` ([`Submit`]: `sendmail` or SMTP), bounded by
    /// `timeout`; every failure is temporary (retried by the caller).
    pub(crate) async fn submit(&self, recipient: &str, message: &[u8]) -> Result<(), NoticeError> {
        self.submit
            .send(&self.from, recipient, message, self.timeout)
            .await
            .map_err(NoticeError::Temporary)
    }

    /// The notification for `notice`, with the given Message-ID and Date, marked.
    pub fn build(&self, notice: &Notice, message_id: &str, date: &str) -> Built {
        let org = one_line(&self.organisation);
        let body = self.text.body(&Values {
            organisation: &org,
            link: &notice.link,
            phone: &notice.phone.masked(),
        });
        let subject = format!("Beveiligd bericht van {org} / Secure message from {org}");
        self.compose(&notice.recipient, &subject, body, message_id, date)
    }

    /// A text/plain mail from the portal to `to`, marked: the headers every portal mail
    /// has (no URL in any of them), the subject encoded when not ASCII.
    pub(crate) fn compose(
        &self,
        to: &str,
        subject: &str,
        body: String,
        message_id: &str,
        date: &str,
    ) -> Built {
        let org = one_line(&self.organisation);
        let subject = encode_word(subject);
        let cte = if body.is_ascii() { "7bit" } else { "8bit" };
        let to = to.to_string();
        let mark = self.mark.mark(&Marked {
            recipients: std::slice::from_ref(&to),
            message_id,
            subject: &subject,
            body: body.as_bytes(),
        });
        let mut m = String::new();
        let mut h = |name: &str, value: &str| {
            m.push_str(name);
            m.push_str(": ");
            m.push_str(value);
            m.push('\n');
        };
        h("From", &format!("{} <{}>", display_name(&org), self.from));
        h("To", &format!("<{to}>"));
        h("Subject", &subject);
        h("Date", date);
        h("Message-ID", message_id);
        h("MIME-Version", "1.0");
        h("Content-Type", "text/plain; charset=utf-8");
        h("Content-Transfer-Encoding", cte);
        h("Content-Language", "nl, en");
        // RFC 3834: no auto-replies to this.
        h("Auto-Submitted", "auto-generated");
        h(HEADER_PORTAL_MARK, &mark);
        m.push('\n');
        m.push_str(&body);
        Built {
            message: m.into_bytes(),
            body,
        }
    }
}

/// The organisation's name on one line, without control characters, bounded.
pub(crate) fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(100)
        .collect();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.is_empty() {
        "Uw zorgverlener".into()
    } else {
        s
    }
}

/// RFC 5322 display name: a quoted string for ASCII, an RFC 2047 encoded word otherwise.
fn display_name(name: &str) -> String {
    if name.is_ascii() {
        let escaped: String = name
            .chars()
            .flat_map(|c| match c {
                '"' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    } else {
        encode_word(name)
    }
}

/// RFC 2047 `B` encoded words for non-ASCII text (each under 75 characters, split on
/// character boundaries, separated by folding white space); ASCII text as it is.
fn encode_word(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    // 39 bytes of UTF-8 -> 52 base64 characters + 12 of "=?UTF-8?B??=" = 64, so even
    // the first word after "Subject: " stays within 78 characters.
    const CHUNK: usize = 39;
    let mut words = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + CHUNK).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            data_encoding::BASE64.encode(&s.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\n ")
}

/// `<32 hex@domain of from>`: random, so nothing about the stored message shows.
pub(crate) fn message_id(from: &str) -> String {
    let mut id = [0u8; 16];
    // A failing system RNG leaves zeros; the id is then still well-formed, and unique
    // enough in practice only with the time added.
    let _ = aws_lc_rs::rand::fill(&mut id);
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "<{}.{nanos:x}@{domain}>",
        data_encoding::HEXLOWER.encode(&id)
    )
}

/// RFC 5322 date of now, in UTC.
pub(crate) fn date_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn notifier(sendmail: PathBuf, organisation: &str) -> Notifier {
        Notifier {
            submit: crate::portal::submit::Submit::Sendmail(sendmail),
            from: "portaal@zkh.nl".into(),
            organisation: organisation.into(),
            mark: MarkKey::from_bytes(&[3; 32]).unwrap(),
            timeout: Duration::from_secs(10),
            text: NoticeText::default(),
        }
    }

    fn notice() -> Notice {
        Notice {
            message: "0123456789abcdef0123456789abcdef".into(),
            recipient: "patient@gmail.test".into(),
            link: "https://portaal.zkh.nl/m/Zm9vYmFyYmF6cXV4".into(),
            phone: Phone::parse("0612345678").unwrap(),
        }
    }

    /// `http://` / `https://` / `www.` occurrences in `s`.
    fn urls(s: &str) -> Vec<&str> {
        s.split_whitespace()
            .filter(|w| w.contains("://") || w.starts_with("www."))
            .collect()
    }

    #[test]
    fn content_free_with_exactly_one_url_from_public_url() {
        let n = notifier("/usr/sbin/sendmail".into(), "Ziekenhuis Noord");
        let b = n.build(&notice(), "<id@zkh.nl>", "Wed, 02 Dec 2026 12:00:00 +0000");
        assert_eq!(urls(&b.body), ["https://portaal.zkh.nl/m/Zm9vYmFyYmF6cXV4"]);
        assert!(
            b.body
                .contains("Ziekenhuis Noord heeft u een beveiligd bericht")
        );
        assert!(
            b.body
                .contains("Ziekenhuis Noord has sent you a secure message")
        );
        assert!(b.body.contains("06-****5678") && !b.body.contains("12345678"));
        assert!(!b.body.contains(&notice().message), "no internal id");
        let text = String::from_utf8(b.message.clone()).unwrap();
        let (head, body) = text.split_once("\n\n").unwrap();
        assert_eq!(body, b.body);
        for h in [
            "From: \"Ziekenhuis Noord\" <portaal@zkh.nl>\n",
            "To: <patient@gmail.test>\n",
            "Subject: Beveiligd bericht van Ziekenhuis Noord / Secure message from Ziekenhuis Noord\n",
            "Message-ID: <id@zkh.nl>\n",
            "Content-Type: text/plain; charset=utf-8\n",
            "Content-Transfer-Encoding: 7bit\n",
            "Auto-Submitted: auto-generated\n",
        ] {
            assert!(text.contains(h), "{h:?} missing in\n{head}");
        }
        assert_eq!(urls(head), Vec::<&str>::new(), "no URL in the header");
        assert!(b.body.lines().all(|l| l.len() < 998));
        // The mark verifies as the milter will check it.
        let mark = head
            .lines()
            .find_map(|l| l.strip_prefix("X-NTA7516-Portal-Mark: "))
            .unwrap();
        assert!(n.mark.verify(
            mark,
            &Marked {
                recipients: &["<patient@gmail.test>".to_string()],
                message_id: "<id@zkh.nl>",
                subject: "Beveiligd bericht van Ziekenhuis Noord / Secure message from Ziekenhuis Noord",
                body: b.body.replace('\n', "\r\n").as_bytes(),
            }
        ));
    }

    #[test]
    fn non_ascii_names_are_encoded() {
        let n = notifier("/bin/true".into(), "Zorggroep Ëmmen \"Noord\"\u{7}");
        let b = n.build(&notice(), "<id@zkh.nl>", "d");
        let text = String::from_utf8(b.message).unwrap();
        assert!(text.contains("From: =?UTF-8?B?"), "{text}");
        assert!(text.contains("Subject: =?UTF-8?B?"), "{text}");
        assert!(text.contains("Content-Transfer-Encoding: 8bit"));
        let (head, _) = text.split_once("\n\n").unwrap();
        assert!(head.is_ascii(), "{head}");
        assert!(head.lines().all(|l| l.len() <= 78), "{head}");
        assert_eq!(display_name("A \"B\" \\C"), r#""A \"B\" \\C""#);
        assert!(message_id("portaal@zkh.nl").ends_with("@zkh.nl>"));
        assert_ne!(message_id("a@b"), message_id("a@b"));
    }

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("sendmail");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn submits_through_a_sendmail_with_the_right_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sm = script(
            dir.path(),
            &format!(
                "printf '%s\\n' \"$@\" > {0}.args; cat > {0}.msg; exit 0",
                out.display()
            ),
        );
        notifier(sm, "Zkh").send(&notice()).await.unwrap();
        let args = std::fs::read_to_string(format!("{}.args", out.display())).unwrap();
        assert_eq!(args, "-i\n-f\nportaal@zkh.nl\n--\npatient@gmail.test\n");
        let msg = std::fs::read_to_string(format!("{}.msg", out.display())).unwrap();
        assert!(msg.starts_with("From: \"Zkh\" <portaal@zkh.nl>\n"), "{msg}");
        assert!(msg.contains("\nX-NTA7516-Portal-Mark: v1 "));
    }

    #[tokio::test]
    async fn failures_are_temporary_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let e = notifier(
            script(dir.path(), "cat >/dev/null; echo 'queue full' >&2; exit 75"),
            "Z",
        )
        .send(&notice())
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("exit 75") && e.contains("queue full"), "{e}");
        let e = notifier(dir.path().join("missing"), "Z")
            .send(&notice())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot run"), "{e}");
        let mut slow = notifier(script(dir.path(), "cat >/dev/null; sleep 30"), "Z");
        slow.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let e = slow.send(&notice()).await.unwrap_err().to_string();
        assert!(e.contains("did not finish"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let mut bad = notice();
        bad.recipient = "-oQ/tmp/x@evil".into();
        assert!(slow.send(&bad).await.is_err());
    }
}
