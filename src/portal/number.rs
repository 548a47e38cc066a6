//! A recipient without a number: the sender's side. The sender is asked for it by mail
//! with a one-time link (`/n/<token>`, only from `[outbound] networks`, `web/number.rs`);
//! once given, the recipient's notification and the sender's receipt go out at the next
//! periodic pass; without a number within `[portal] number_wait` the sender is told that
//! the message was not delivered to that recipient, and a message nobody can read any
//! more is shredded. Content-free like every portal mail.

use std::net::IpAddr;
use std::time::Duration;

use crate::audit::Event;
use crate::portal::notice::{date_now, message_id, one_line};
use crate::portal::phone::Phone;
use crate::portal::receipt::SenderMail;
use crate::portal::store::waiting::{Given, Waiting};
use crate::portal::web::{BoxFuture, NumberEntry, SourceError};

fn days(d: Duration) -> String {
    let h = d.as_secs() / 3600;
    if h.is_multiple_of(24) {
        format!("{} dagen / {} days", h / 24, h / 24)
    } else {
        format!("{h} uur / {h} hours")
    }
}

impl SenderMail {
    /// The mail asking `w.sender` for `w.address`'s number, with the one-time link.
    pub fn build_ask(&self, w: &Waiting, token: &str, wait: Duration, mid: &str) -> Vec<u8> {
        let org = one_line(&self.notifier.organisation);
        let to = one_line(&w.address);
        let link = format!("{}/n/{token}", self.public_url);
        let wait = days(wait);
        let body = format!(
            "Beste afzender,\n\
             \n\
             Uw beveiligde bericht aan {to} wacht in het portaal van {org}. Er is geen\n\
             mobiel nummer voor de sms-code. Vul het nummer in via deze link. De link werkt\n\
             een keer, en alleen vanaf het netwerk van {org}:\n\
             \n\
             {link}\n\
             \n\
             U kunt ook op deze e-mail antwoorden met het nummer in het onderwerp.\n\
             Zonder nummer binnen {wait} wordt het bericht niet afgeleverd; u krijgt dan\n\
             bericht. Deze e-mail bevat geen inhoud van het bericht.\n\
             \n\
             ---\n\
             \n\
             Dear sender,\n\
             \n\
             Your secure message to {to} is waiting in the portal of {org}. There is no\n\
             mobile number for the text message code. Please enter the number with the link\n\
             above (it works once, and only from the network of {org}), or reply to this\n\
             e-mail with the number in the subject. Without a number within {wait} the\n\
             message is not delivered; you will be told.\n\
             \n\
             This e-mail does not contain the message itself.\n"
        );
        let subject = "Mobiel nummer nodig / Mobile number needed";
        self.notifier
            .compose(&w.sender, subject, body, mid, &date_now())
            .message
    }

    /// The non-delivery notice for `w` (no number in time).
    pub fn build_not_delivered(&self, w: &Waiting, mid: &str) -> Vec<u8> {
        let org = one_line(&self.notifier.organisation);
        let to = one_line(&w.address);
        let body = format!(
            "Beste afzender,\n\
             \n\
             Uw beveiligde bericht aan {to} is niet afgeleverd: er is op tijd geen mobiel\n\
             nummer voor de sms-code gegeven. Het portaal van {org} heeft het voor deze\n\
             ontvanger gewist. Stuur het opnieuw met het nummer, bijvoorbeeld met\n\
             [sms:+31612345678] in het onderwerp.\n\
             \n\
             ---\n\
             \n\
             Dear sender,\n\
             \n\
             Your secure message to {to} was not delivered: no mobile number for the text\n\
             message code was given in time. The portal of {org} deleted it for this\n\
             recipient. Please send it again with the number, for example with\n\
             [sms:+31612345678] in the subject.\n"
        );
        let subject = "Niet afgeleverd: geen mobiel nummer / Not delivered: no mobile number";
        self.notifier
            .compose(&w.sender, subject, body, mid, &date_now())
            .message
    }

    async fn send_ask(&self, w: &Waiting, wait: Duration) {
        let Some(token) = &w.token else { return };
        let mid = message_id(&self.notifier.from);
        let mail = self.build_ask(w, token, wait, &mid);
        let result = self.notifier.submit(&w.sender, &mail).await;
        let bare = mid.trim_start_matches('<').trim_end_matches('>');
        let stored = match &result {
            Ok(()) => self.store.ask_sent(&w.recipient_id, bare).await,
            Err(_) => self.store.ask_failed(&w.recipient_id, w.attempts).await,
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "portal: the number request's state was not recorded");
        }
        self.auditor.record(Event::PortalNumberAsked {
            message: w.message_id.clone(),
            recipient: w.address.clone(),
            sender: w.sender.clone(),
            sent: result.is_ok(),
            error: result.err().map(|e| e.to_string()),
        });
    }

    /// The request of a recipient this node just stored without a number.
    pub async fn ask_after_intake(&self, rid: &str) {
        let Some(wait) = self.number_wait else { return };
        match self.store.ask(rid).await {
            Ok(Some(w)) => {
                match self
                    .store
                    .claim_ask(rid, w.ask_next, crate::portal::store::now())
                    .await
                {
                    Ok(true) => self.send_ask(&w, wait).await,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot claim a number request"),
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read a number request"),
        }
    }

    /// Requests whose first attempt failed, due at `at`: each claimed, then sent.
    pub async fn retry_asks(&self, at: i64) -> usize {
        let Some(wait) = self.number_wait else {
            return 0;
        };
        let due = self.store.pending_asks(at).await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "portal number requests: store unavailable");
            Vec::new()
        });
        let mut sent = 0;
        for w in due {
            if let Ok(true) = self.store.claim_ask(&w.recipient_id, w.ask_next, at).await {
                self.send_ask(&w, wait).await;
                sent += 1;
            }
        }
        sent
    }

    /// Gives up every wait older than `number_wait` at `at`: the sender is told, and a
    /// message no recipient can read any more is shredded. Returns how many.
    pub async fn give_up_overdue(&self, at: i64) -> usize {
        let Some(wait) = self.number_wait else {
            return 0;
        };
        let before = at.saturating_sub(i64::try_from(wait.as_secs()).unwrap_or(i64::MAX));
        let due = self
            .store
            .overdue_waiting(before)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "portal number wait: store unavailable");
                Vec::new()
            });
        let mut done = 0;
        for w in due {
            let unreadable = match self.store.give_up(&w.recipient_id).await {
                Ok(Some(u)) => u,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "portal number wait: store unavailable");
                    break;
                }
            };
            let mail = self.build_not_delivered(&w, &message_id(&self.notifier.from));
            let sent = self.notifier.submit(&w.sender, &mail).await;
            if let Err(e) = &sent {
                tracing::warn!(error = %e, "portal: non-delivery notice not sent");
            }
            let mut events = vec![Event::PortalNotDelivered {
                message: w.message_id.clone(),
                recipient: w.address.clone(),
                sender: w.sender.clone(),
                notice_sent: sent.is_ok(),
            }];
            if unreadable {
                match self.store.shred(&w.message_id).await {
                    Ok(true) => events.push(Event::PortalShredded {
                        message: w.message_id.clone(),
                    }),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "portal: shredding failed"),
                }
            }
            self.auditor.record_all(events);
            done += 1;
        }
        done
    }
}

impl NumberEntry for SenderMail {
    fn by_link<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<Waiting>, SourceError>> {
        Box::pin(async move {
            let Some(hash) = crate::portal::web::keys::token_hash(token) else {
                return Ok(None);
            };
            self.store
                .waiting_by_token_hash(&hash)
                .await
                .map_err(|e| SourceError(e.to_string()))
        })
    }

    fn give<'a>(
        &'a self,
        w: &'a Waiting,
        phone: &'a Phone,
        remember: bool,
        client: IpAddr,
    ) -> BoxFuture<'a, Result<Given, SourceError>> {
        Box::pin(async move {
            let err = |e: crate::portal::store::StoreError| SourceError(e.to_string());
            let given = self
                .store
                .give_number(&w.recipient_id, phone)
                .await
                .map_err(err)?;
            if given == Given::Stored {
                let saved = remember && self.store.contact_set(&w.address, phone).await.is_ok();
                self.auditor.record(Event::PortalNumberGiven {
                    message: w.message_id.clone(),
                    recipient: w.address.clone(),
                    saved_to_address_book: saved,
                    client_address: client.to_canonical().to_string(),
                });
            }
            Ok(given)
        })
    }
}
