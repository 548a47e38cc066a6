//! The lock notice: when ten consecutive wrong codes lock a recipient for an hour
//! (`store::auth`), the sender of the message is told by mail, so that a person who is
//! not the recipient trying to get in does not go unnoticed.
//!
//! Submitted like the notification (`notice::Notifier`: the MTA's `sendmail`, the portal
//! mark, from `[portal] from`) and audited either way (`portal_lock_notified`,
//! `portal_lock_notice_failed`). Content-free like every portal mail: the organisation, the
//! recipient's address (the sender wrote to it), that and until when it is locked, and
//! what to do; never the subject, body, attachment names, the number or the link. Dutch,
//! then English. No retry: the lock itself is on record, and a failure is audited at WARN.

use std::sync::Arc;

use crate::audit::{Auditor, Event};
use crate::portal::notice::{Built, Notifier, date_now, message_id, one_line};
use crate::portal::web::{BoxFuture, LockAlert, Recipient};

/// Tells the sender (`Recipient::sender`) that a recipient got locked.
pub struct LockNotice {
    pub notifier: Notifier,
    pub auditor: Arc<Auditor>,
}

impl LockNotice {
    /// The notice to `sender` about `recipient`, locked for `seconds` from `now` (Unix).
    pub fn build(
        &self,
        sender: &str,
        recipient: &str,
        seconds: i64,
        now: i64,
        message_id: &str,
        date: &str,
    ) -> Built {
        let org = one_line(&self.notifier.organisation);
        let recipient = one_line(recipient);
        let until = time::OffsetDateTime::from_unix_timestamp(now.saturating_add(seconds))
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .ok()
            })
            .unwrap_or_else(|| "?".into());
        let minutes = seconds / 60;
        let body = format!(
            "Beste afzender,\n\
             \n\
             Voor een beveiligd bericht dat u via {org} aan {recipient} stuurde, is\n\
             {fails} keer achter elkaar een verkeerde sms-code ingevoerd. Het bericht is voor\n\
             deze ontvanger {minutes} minuten geblokkeerd (tot {until}).\n\
             \n\
             Was dit de ontvanger zelf, dan kan die het daarna opnieuw proberen. Zo niet, dan\n\
             probeert mogelijk iemand anders het bericht te openen: neem contact op met de\n\
             ontvanger en controleer het mobiele nummer. Deze e-mail bevat geen inhoud van\n\
             het bericht.\n\
             \n\
             ---\n\
             \n\
             Dear sender,\n\
             \n\
             For a secure message you sent through {org} to {recipient}, a wrong text\n\
             message code was entered {fails} times in a row. The message is locked for this\n\
             recipient for {minutes} minutes (until {until}).\n\
             \n\
             If this was the recipient, they can try again after that. If not, someone else\n\
             may be trying to open the message: contact the recipient and check the mobile\n\
             number. This e-mail does not contain the message itself.\n",
            fails = crate::portal::store::auth::FAILS_TO_LOCK,
        );
        let subject = format!(
            "Ontvanger geblokkeerd voor een beveiligd bericht van {org} / Recipient locked out of a secure message from {org}"
        );
        self.notifier
            .compose(sender, &subject, body, message_id, date)
    }

    /// Sends the notice and audits the outcome.
    pub async fn send(&self, r: &Recipient, seconds: i64, now: i64) {
        let sender = r
            .sender
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let result = if sender.contains('@') {
            let built = self.build(
                sender,
                &r.address,
                seconds,
                now,
                &message_id(&self.notifier.from),
                &date_now(),
            );
            self.notifier
                .submit(sender, &built.message)
                .await
                .map_err(|e| e.to_string())
        } else {
            // The null sender (a bounce) or no address at all: nobody to tell.
            Err("no sender address to tell".to_string())
        };
        match result {
            Ok(()) => {
                self.auditor.record(Event::PortalLockNotified {
                    message: r.message_id.clone(),
                    recipient: r.address.clone(),
                    sender: sender.to_string(),
                });
            }
            Err(error) => {
                tracing::warn!(message = %r.message_id, %error, "portal: lock notice not sent");
                self.auditor.record(Event::PortalLockNoticeFailed {
                    message: r.message_id.clone(),
                    recipient: r.address.clone(),
                    sender: sender.to_string(),
                    error,
                });
            }
        }
    }
}

impl LockAlert for LockNotice {
    fn recipient_locked<'a>(&'a self, recipient: &'a Recipient) -> BoxFuture<'a, ()> {
        Box::pin(
            self.send(
                recipient,
                crate::portal::store::auth::LOCK_FOR,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64),
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::portal_mark::{MarkKey, Marked};
    use crate::portal::web::MessageState;
    use std::path::PathBuf;
    use std::time::Duration;

    fn notice(sendmail: PathBuf, audit: &std::path::Path) -> LockNotice {
        LockNotice {
            notifier: Notifier {
                submit: crate::portal::submit::Submit::Sendmail(sendmail),
                from: "portaal@zkh.nl".into(),
                organisation: "Ziekenhuis Noord".into(),
                mark: MarkKey::from_bytes(&[3; 32]).unwrap(),
                timeout: Duration::from_secs(10),
                text: Default::default(),
            },
            auditor: Arc::new(Auditor::open(Some(audit)).unwrap()),
        }
    }

    fn recipient(sender: &str) -> Recipient {
        Recipient {
            id: "r1".into(),
            message_id: "0123456789abcdef0123456789abcdef".into(),
            address: "patient@gmail.test".into(),
            phone: None,
            sender: sender.into(),
            state: MessageState::Live,
            expires_at: 0,
        }
    }

    #[test]
    fn content_free_dutch_and_english_marked_for_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let n = notice("/bin/true".into(), &dir.path().join("a.log"));
        let b = n.build(
            "arts@zkh.nl",
            "patient@gmail.test",
            3600,
            1_796_000_000,
            "<id@zkh.nl>",
            "Wed, 02 Dec 2026 12:00:00 +0000",
        );
        let text = String::from_utf8(b.message.clone()).unwrap();
        let (head, body) = text.split_once("\n\n").unwrap();
        assert!(head.contains("\nTo: <arts@zkh.nl>\n"), "{head}");
        assert!(head.starts_with("From: \"Ziekenhuis Noord\" <portaal@zkh.nl>\n"));
        assert!(head.contains("Auto-Submitted: auto-generated"));
        assert!(body.contains("Beste afzender") && body.contains("Dear sender"));
        assert!(body.contains("patient@gmail.test"));
        assert!(body.contains("10 keer achter elkaar") && body.contains("10 times in a row"));
        assert!(
            body.contains("60 minuten geblokkeerd (tot 2026-11-30 01:53 UTC)"),
            "{body}"
        );
        assert!(
            body.contains("60 minutes (until 2026-11-30 01:53 UTC)"),
            "{body}"
        );
        assert!(!body.contains("://") && !body.contains("www."), "no link");
        assert!(body.lines().all(|l| l.len() < 998), "{body}");
        // The milter lets it out by the mark, as it checks the notification's.
        let mark = head
            .lines()
            .find_map(|l| l.strip_prefix("X-NTA7516-Portal-Mark: "))
            .unwrap();
        let subject = head
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap();
        assert!(subject.contains("Recipient locked out"), "{subject}");
        assert!(n.notifier.mark.verify(
            mark,
            &Marked {
                recipients: &["arts@zkh.nl".to_string()],
                message_id: "<id@zkh.nl>",
                subject,
                body: b.body.replace('\n', "\r\n").as_bytes(),
            }
        ));
    }

    fn sendmail(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("sendmail");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[tokio::test]
    async fn sent_to_the_sender_and_audited() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let sm = sendmail(
            dir.path(),
            &format!(
                "printf '%s\\n' \"$@\" > {0}.args; cat > {0}.msg",
                out.display()
            ),
        );
        let audit = dir.path().join("a.log");
        let n = notice(sm, &audit);
        n.recipient_locked(&recipient("<arts@zkh.nl>")).await;
        let args = std::fs::read_to_string(format!("{}.args", out.display())).unwrap();
        assert_eq!(args, "-i\n-f\nportaal@zkh.nl\n--\narts@zkh.nl\n");
        let msg = std::fs::read_to_string(format!("{}.msg", out.display())).unwrap();
        assert!(msg.contains("patient@gmail.test"));
        let log = std::fs::read_to_string(&audit).unwrap();
        assert!(
            log.contains("\"event_type\":\"portal_lock_notified\""),
            "{log}"
        );
        assert!(log.contains("\"sender\":\"arts@zkh.nl\""), "{log}");
    }

    #[tokio::test]
    async fn failures_and_the_null_sender_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("a.log");
        let n = notice(
            sendmail(dir.path(), "cat >/dev/null; echo down >&2; exit 75"),
            &audit,
        );
        n.recipient_locked(&recipient("arts@zkh.nl")).await;
        n.recipient_locked(&recipient("")).await;
        n.recipient_locked(&recipient("<>")).await;
        let log = std::fs::read_to_string(&audit).unwrap();
        let failed: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("\"event_type\":\"portal_lock_notice_failed\""))
            .collect();
        assert_eq!(failed.len(), 3, "{log}");
        assert!(failed[0].contains("exit 75"), "{}", failed[0]);
        assert!(failed[1].contains("no sender address"), "{}", failed[1]);
        assert!(!log.contains("portal_lock_notified"));
    }
}
