//! One message arriving over LMTP: header block (the number, the tag), encrypted chunks,
//! one commit, THEN the per-recipient replies, then the notifications.
//!
//! Every failure maps to one reply per recipient (RFC 2033 §4.2): 451 4.3.0 when storing
//! or the key fails (the MTA keeps the mail and retries; nothing half-stored is ever
//! visible), 552 5.3.4 over the size limit, 550 5.7.0 when a number was given but is not
//! a mobile number, or when there is none and waiting for it is off or nobody can be asked
//! (the MTA returns the mail to the sender with our text). Without a number otherwise the
//! recipient is stored waiting: unreadable (no second factor) until the sender gives one
//! (`portal::number`).

pub mod header;
mod number_reply;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncBufRead;

use crate::audit::{Auditor, Event};
use crate::portal::lmtp::data::{DotReader, Piece};
use crate::portal::notice::{Notice, Notifier};
use crate::portal::phone::Phone;
use crate::portal::store::{NewRecipient, Store, StoreError, StoredRecipient, still_own_claim};

/// Reply when the message cannot be stored now (store down, disk full, key unreadable).
pub const REPLY_TEMPORARY: &str = "451 4.3.0 Bericht tijdelijk niet op te slaan, later opnieuw / Message cannot be stored now, try again later";
/// Reply over the size limit.
pub const REPLY_TOO_BIG: &str =
    "552 5.3.4 Bericht te groot voor het portaal / Message too big for the portal";
/// Reply when the header block alone exceeds `header::MAX_HEADER_BYTES`.
pub const REPLY_HEADER_TOO_BIG: &str = "552 5.3.4 Kopregels te groot / Header block too large";
/// Reply without a usable mobile number; Postfix puts it in the bounce to the sender.
pub const REPLY_NO_PHONE: &str = "550 5.7.0 Geen mobiel nummer voor de sms-code: zet [sms:+31612345678] in het onderwerp en verstuur opnieuw / No mobile number for the SMS code: put [sms:+31612345678] in the subject and send again";

/// Reply to the portal's own mail coming back (a routing loop).
pub const REPLY_OWN_MAIL: &str = "550 5.7.1 Het portaal neemt zijn eigen berichten niet aan / The portal does not take in its own mail";

/// Everything the intake needs; shared by all connections.
pub struct Intake {
    pub store: Store,
    pub auditor: Arc<Auditor>,
    pub notifier: Notifier,
    /// `[portal] public_url`, without trailing slash.
    pub public_url: String,
    pub retention: Duration,
    pub max_message_size: u64,
    /// `[portal] from`: mail with this envelope sender is the portal's own and is never
    /// taken in (a loop guard, whatever the routing says).
    pub own_sender: String,
    /// The sender's receipt (and, for the periodic pass, retries and withdrawals).
    pub senders: Arc<crate::portal::receipt::SenderMail>,
    /// `[portal] number_wait`: `None` refuses mail without a number (550 5.7.0).
    pub number_wait: Option<Duration>,
}

/// The envelope of one LMTP transaction.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub sender: String,
    pub recipients: Vec<String>,
}

/// The link of one recipient: `public_url/m/<token>`.
pub fn link(public_url: &str, token: &str) -> String {
    format!("{public_url}/m/{token}")
}

enum Failure {
    /// Replied with this for every recipient; the rest of DATA still has to be drained.
    Refuse(&'static str, String),
    Io(io::Error),
}

impl Intake {
    /// Reads the DATA of `env` from `data` and returns one reply per recipient, in order.
    /// `Err` only when the client is gone (nothing was stored; no reply is possible).
    pub async fn deliver<R: AsyncBufRead + Unpin>(
        self: &Arc<Self>,
        env: &Envelope,
        data: &mut DotReader<'_, R>,
    ) -> io::Result<Vec<String>> {
        match self.receive(env, data).await {
            Ok(replies) => Ok(replies),
            Err(Failure::Io(e)) => Err(e),
            Err(Failure::Refuse(reply, reason)) => {
                data.drain().await?;
                tracing::warn!(reply = %reply.split(' ').take(2).collect::<Vec<_>>().join(" "), %reason, "portal intake refused a message");
                self.auditor.record(Event::PortalIntakeRefused {
                    sender: env.sender.clone(),
                    recipients: env.recipients.clone(),
                    reply: reply.split(' ').take(2).collect::<Vec<_>>().join(" "),
                    reason,
                });
                Ok(vec![reply.to_string(); env.recipients.len()])
            }
        }
    }

    async fn receive<R: AsyncBufRead + Unpin>(
        self: &Arc<Self>,
        env: &Envelope,
        data: &mut DotReader<'_, R>,
    ) -> Result<Vec<String>, Failure> {
        // The header block, bounded.
        let mut head = Vec::new();
        let mut piece = Vec::new();
        let mut ended = false;
        loop {
            match data.next(&mut piece).await.map_err(Failure::Io)? {
                Piece::End => {
                    ended = true;
                    break;
                }
                Piece::Data => head.extend_from_slice(&piece),
            }
            if header::header_end(&head).is_some() {
                break;
            }
            if head.len() > header::MAX_HEADER_BYTES {
                return Err(Failure::Refuse(
                    REPLY_HEADER_TOO_BIG,
                    "header block too large".into(),
                ));
            }
        }
        let (head, facts) = header::analyse(&head);
        if self.for_portal_address(env) {
            let replies = self.number_reply(env, &facts).await?;
            data.drain().await.map_err(Failure::Io)?;
            return Ok(replies);
        }
        let store_err = |e: crate::portal::store::StoreError| {
            tracing::error!(error = %e, "portal store failed");
            Failure::Refuse(REPLY_TEMPORARY, format!("store: {e}"))
        };
        let (phones, source) = self.phones(env, &facts).await.map_err(store_err)?;
        // Without a number for some recipient the message waits for the sender to give
        // it; it bounces when the number given is wrong, when waiting is off, or when
        // there is nobody to ask (the null sender).
        if phones.iter().any(|(p, _)| p.is_none())
            && (facts.bad_phone.is_some()
                || self.number_wait.is_none()
                || crate::portal::store::receipt_address(&env.sender).is_none())
        {
            return Err(Failure::Refuse(
                REPLY_NO_PHONE,
                facts.bad_phone.clone().unwrap_or_else(|| {
                    "no X-NTA7516-Phone header, no [sms:] subject tag, not an answer to a \
                     reply sent through the portal, not in the address book"
                        .into()
                }),
            ));
        }
        let mut incoming = self
            .store
            .begin(&env.sender, facts.message_id.as_deref(), self.retention)
            .await
            .map_err(store_err)?;
        // From here on every exit that does not commit aborts the incoming rows.
        let result: Result<(), Failure> = async {
            incoming.write(&head).await.map_err(store_err)?;
            if incoming.size() > self.max_message_size {
                return Err(Failure::Refuse(
                    REPLY_TOO_BIG,
                    "over max_message_size".into(),
                ));
            }
            while !ended {
                match data.next(&mut piece).await.map_err(Failure::Io)? {
                    Piece::End => ended = true,
                    Piece::Data => {
                        if incoming.size() + piece.len() as u64 > self.max_message_size {
                            return Err(Failure::Refuse(
                                REPLY_TOO_BIG,
                                "over max_message_size".into(),
                            ));
                        }
                        incoming.write(&piece).await.map_err(store_err)?;
                    }
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            incoming.abort().await;
            return Err(e);
        }
        let size = incoming.size();
        let sha256 = incoming.sha256_so_far();
        let message = incoming.message_id().to_string();
        let mut recipients: Vec<NewRecipient> = Vec::new();
        let mut waiting: Vec<String> = Vec::new();
        for (a, (phone, _)) in env.recipients.iter().zip(&phones) {
            match phone {
                Some(p) => recipients.push(NewRecipient {
                    address: a.clone(),
                    phone: p.clone(),
                }),
                None => waiting.push(a.clone()),
            }
        }
        let stored = incoming
            .commit_waiting(&recipients, &waiting)
            .await
            .map_err(store_err)?;
        let new: Vec<&StoredRecipient> = stored.iter().filter(|r| !r.duplicate).collect();
        let redelivery = new.is_empty();
        let message = if redelivery {
            stored.first().map_or(message, |r| r.message_id.clone())
        } else {
            message
        };
        let audited = self.auditor.record(Event::PortalStored {
            message: message.clone(),
            message_id: facts.message_id.clone(),
            sender: env.sender.clone(),
            recipients: stored.iter().map(|r| r.address.clone()).collect(),
            recipient_count: stored.len(),
            sha256,
            size,
            redelivery,
        });
        if !audited {
            // Stored, but not on record: 451 makes the MTA redeliver, which finds the copy
            // (dedup) and records it then.
            return Err(Failure::Refuse(
                REPLY_TEMPORARY,
                "audit log unwritable".into(),
            ));
        }
        tracing::info!(%message, recipients = stored.len(), size, redelivery, source, "portal stored a message");
        if !redelivery && let Some(parent) = phones.iter().find_map(|(_, p)| p.as_deref()) {
            // Only the page's "in reply to" line depends on it: not worth a 451.
            if let Err(e) = self.store.set_parent(&message, parent).await {
                tracing::warn!(error = %e, %message, "portal: thread not recorded");
            }
        }
        let notify: Vec<StoredRecipient> = new.into_iter().cloned().collect();
        // The claim the commit stored on the notifications and the receipt alike.
        let claimed_until = notify.first().map_or(0, |r| r.notify_next);
        if !notify.is_empty() {
            let me = self.clone();
            let id = message.clone();
            tokio::spawn(async move {
                for r in notify.iter().filter(|r| r.ask_token.is_some()) {
                    me.senders.ask_after_intake(&r.recipient_id).await;
                }
                let notified = me.notify(notify).await;
                // After the recipients' notifications: the receipt says they were sent.
                let receipt = me.senders.receipt_after_intake(&id, claimed_until).await;
                // What went out, marked in one transaction (one commit, not one each).
                let receipt = receipt.then_some(id.as_str());
                if let Err(e) = me.store.mark_sent(&notified, receipt).await {
                    tracing::error!(error = %e, "cannot mark notifications and receipt sent; they may be sent twice");
                }
            });
        }
        Ok(stored
            .iter()
            .map(|r| {
                format!(
                    "250 2.0.0 Opgeslagen in het portaal / Stored in the portal ({})",
                    r.message_id
                )
            })
            .collect())
    }

    /// The number for each recipient: the trusted header or the subject tag for all of
    /// them; else each recipient's number from the thread, for an answer to a reply sent
    /// through the portal (with the message it answers), or from the address book.
    /// `None` for a recipient without one (it waits, or the message bounces).
    async fn phones(
        &self,
        env: &Envelope,
        facts: &header::Facts,
    ) -> Result<(Vec<(Option<Phone>, Option<String>)>, &'static str), StoreError> {
        if let Some((p, source)) = &facts.phone {
            let source = match source {
                header::PhoneSource::Header => "header",
                header::PhoneSource::SubjectTag => "subject_tag",
            };
            return Ok((vec![(Some(p.clone()), None); env.recipients.len()], source));
        }
        if facts.bad_phone.is_some() {
            // A number that was given but is wrong must be corrected, not replaced.
            return Ok((vec![(None, None); env.recipients.len()], "bad"));
        }
        let mut out = Vec::with_capacity(env.recipients.len());
        let mut source = "thread";
        for a in &env.recipients {
            let thread = if facts.references.is_empty() {
                None
            } else {
                self.store.thread_for(&facts.references, a).await?
            };
            match thread {
                Some(m) => out.push((Some(m.phone), Some(m.parent))),
                None => match self.store.contact(a).await? {
                    Some(p) => {
                        source = "address_book";
                        out.push((Some(p), None));
                    }
                    None => {
                        source = "waiting";
                        out.push((None, None));
                    }
                },
            }
        }
        Ok((out, source))
    }

    /// Sends each new recipient's notification; a failure leaves it pending for the
    /// periodic retry (the token stays sealed in the store until then). It was stored
    /// claimed by this node: sent on that claim while it has time left
    /// ([`still_own_claim`]); claimed again only when this node was slow, so that if
    /// another node's retry has it meanwhile, this one does not send it again.
    /// Returns the recipients whose notification went out (to be marked sent).
    async fn notify(&self, recipients: Vec<StoredRecipient>) -> Vec<String> {
        let mut sent = Vec::new();
        for r in recipients {
            let (Some(token), Some(phone)) = (&r.token, &r.phone) else {
                continue;
            };
            let at = crate::portal::store::now();
            if !still_own_claim(r.notify_next, at) {
                match self
                    .store
                    .claim_notice(&r.recipient_id, r.notify_next, at)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        // Left to the periodic retry once the stored claim lapses.
                        tracing::warn!(error = %e, "cannot claim a notification; retried later");
                        continue;
                    }
                }
            }
            if self
                .submit_notice(&r.message_id, &r.recipient_id, &r.address, token, phone, 0)
                .await
            {
                sent.push(r.recipient_id);
            }
        }
        sent
    }

    /// Sends one notification, audits the outcome and marks it sent (the retry's path).
    pub(crate) async fn notify_one(
        &self,
        message: &str,
        recipient_id: &str,
        address: &str,
        token: &str,
        phone: &crate::portal::phone::Phone,
        attempts: i64,
    ) {
        if self
            .submit_notice(message, recipient_id, address, token, phone, attempts)
            .await
            && let Err(e) = self.store.mark_notified(recipient_id).await
        {
            tracing::error!(error = %e, "cannot mark a notification sent; it may be sent twice");
        }
    }

    /// Submits one notification and audits the outcome; a failure is recorded for the
    /// retry. True when it was submitted: the caller then marks it sent.
    async fn submit_notice(
        &self,
        message: &str,
        recipient_id: &str,
        address: &str,
        token: &str,
        phone: &crate::portal::phone::Phone,
        attempts: i64,
    ) -> bool {
        let notice = Notice {
            message: message.to_string(),
            recipient: address.to_string(),
            link: link(&self.public_url, token),
            phone: phone.clone(),
        };
        match self.notifier.send(&notice).await {
            Ok(()) => {
                self.auditor.record(Event::PortalNotified {
                    message: message.to_string(),
                    recipient_id: recipient_id.to_string(),
                    recipient: address.to_string(),
                });
                true
            }
            Err(e) => {
                tracing::warn!(%message, error = %e, "notification not sent; retried later");
                if let Err(e) = self.store.notify_failed(recipient_id).await {
                    tracing::error!(error = %e, "cannot record a failed notification");
                }
                self.auditor.record(Event::PortalNotifyFailed {
                    message: message.to_string(),
                    recipient_id: recipient_id.to_string(),
                    recipient: address.to_string(),
                    attempts: attempts + 1,
                    error: e.to_string(),
                });
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_single_ascii_lines_with_codes() {
        for r in [
            REPLY_OWN_MAIL,
            REPLY_TEMPORARY,
            REPLY_TOO_BIG,
            REPLY_HEADER_TOO_BIG,
            REPLY_NO_PHONE,
        ] {
            assert!(r.is_ascii() && !r.contains('\r') && !r.contains('\n'));
            assert!(r.len() <= 512, "{r}");
        }
        assert!(REPLY_TEMPORARY.starts_with("451 4.3.0 "));
        assert!(REPLY_TOO_BIG.starts_with("552 5.3.4 "));
        assert!(REPLY_NO_PHONE.starts_with("550 5.7.0 "));
        assert!(REPLY_NO_PHONE.contains("[sms:+31612345678]"));
        assert_eq!(link("https://p.example", "abc"), "https://p.example/m/abc");
    }
}
