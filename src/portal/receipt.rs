//! The sender's side of a stored message: the receipt ("delivered to the secure portal
//! for …", with the revoke link), the withdrawal behind that link, and the optional
//! first-opened notice.
//!
//! Every one of these mails is content-free like the notification: the organisation,
//! the recipients' addresses (the sender wrote to them), times and the `Message-ID`;
//! never the subject, the body, attachment names, the number or the recipient's link.
//! Submitted like the notification (`notice::Notifier`: the MTA's `sendmail`, the portal
//! mark, from `[portal] from`) and audited.
//!
//! The revoke link's token is the message id with a keyed MAC (a subkey of the master
//! key), so nothing has to be stored or sealed for it: any node can check it, and a
//! token for another message cannot be made without the key. It grants only the
//! withdrawal, and only from `[outbound] networks` (`web/revoke.rs`).

use std::net::IpAddr;
use std::sync::Arc;

use crate::audit::{Auditor, Event};
use crate::portal::crypto::MasterKey;
use crate::portal::notice::{Built, Notifier, date_now, message_id, one_line};
use crate::portal::store::{
    MessageSummary, PendingReceipt, Revoke, Store, StoreError, still_own_claim,
};
use crate::portal::web::{BoxFuture, OpenedAlert, Recipient, SourceError, Withdraw};

/// Label of the revoke link's MAC under the master key.
const REVOKE_LABEL: &[u8] = b"revoke-link";
/// Bytes of the message id and of the MAC in a revoke token (base64url: 43 characters).
const ID_BYTES: usize = 16;
const MAC_BYTES: usize = 16;

/// The revoke token of message `id` (32 hex digits).
pub fn revoke_token(key: &MasterKey, id: &str) -> String {
    let mac = key.keyed_hash(REVOKE_LABEL, &[id.as_bytes()]);
    let raw = data_encoding::HEXLOWER
        .decode(id.as_bytes())
        .unwrap_or_default();
    let mut t = raw;
    t.extend_from_slice(&mac[..MAC_BYTES]);
    data_encoding::BASE64URL_NOPAD.encode(&t)
}

/// The message id a revoke token names, if its MAC is right.
pub fn revoke_token_id(key: &MasterKey, token: &str) -> Option<String> {
    if token.len() > 64 {
        return None;
    }
    let raw = data_encoding::BASE64URL_NOPAD
        .decode(token.as_bytes())
        .ok()?;
    if raw.len() != ID_BYTES + MAC_BYTES {
        return None;
    }
    let id = data_encoding::HEXLOWER.encode(&raw[..ID_BYTES]);
    let mac = key.keyed_hash(REVOKE_LABEL, &[id.as_bytes()]);
    aws_lc_rs::constant_time::verify_slices_are_equal(&raw[ID_BYTES..], &mac[..MAC_BYTES]).ok()?;
    Some(id)
}

/// `public_url/r/<token>`.
pub fn revoke_link(public_url: &str, key: &MasterKey, id: &str) -> String {
    format!("{public_url}/r/{}", revoke_token(key, id))
}

fn utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "?".into())
}

fn reference(m: &MessageSummary) -> String {
    one_line(m.header_message_id.as_deref().unwrap_or(&m.id))
}

fn recipient_lines(m: &MessageSummary) -> String {
    m.recipients
        .iter()
        .map(|a| format!("  {}\n", one_line(a)))
        .collect()
}

/// The sender's mails and the withdrawal: shared by the intake (receipts), the
/// periodic pass (retries, revocations by `portal revoke`) and the web side.
pub struct SenderMail {
    pub store: Store,
    pub notifier: Notifier,
    pub auditor: Arc<Auditor>,
    /// `[portal] public_url`, without trailing slash.
    pub public_url: String,
    /// `[domains] own` (lower case, ASCII): where a recipient's reply may go.
    pub own_domains: Vec<String>,
    /// `[portal] number_wait` (`None`: mail without a number is refused at intake).
    pub number_wait: Option<std::time::Duration>,
}

impl SenderMail {
    /// The receipt of `m` (to `sender`), with the revoke link.
    pub fn build_receipt(&self, sender: &str, m: &MessageSummary, mid: &str, date: &str) -> Built {
        let org = one_line(&self.notifier.organisation);
        let link = revoke_link(&self.public_url, self.store.key(), &m.id);
        let to = recipient_lines(m);
        let (received, until, reference) = (utc(m.created_at), utc(m.expires_at), reference(m));
        let body = format!(
            "Beste afzender,\n\
             \n\
             Uw beveiligde bericht is afgeleverd in het portaal van {org}, voor:\n\
             {to}\
             \n\
             Ontvangen: {received}. Te lezen tot: {until}.\n\
             Kenmerk: {reference}\n\
             \n\
             De ontvanger krijgt een e-mail met een link, en een code per sms om het bericht\n\
             te openen.\n\
             \n\
             Per vergissing verstuurd? Trek het bericht in via deze link. Dat kan alleen\n\
             vanaf het netwerk van {org}:\n\
             \n\
             {link}\n\
             \n\
             Deze e-mail bevat geen inhoud van het bericht.\n\
             \n\
             ---\n\
             \n\
             Dear sender,\n\
             \n\
             Your secure message was delivered to the portal of {org}, for:\n\
             {to}\
             \n\
             Received: {received}. Readable until: {until}.\n\
             Reference: {reference}\n\
             \n\
             The recipient gets an e-mail with a link, and a code by text message to open\n\
             the message. Sent by mistake? Withdraw the message with the link above (only\n\
             from the network of {org}).\n\
             \n\
             This e-mail does not contain the message itself.\n"
        );
        let subject = "Afgeleverd in het beveiligde portaal / Delivered to the secure portal";
        self.notifier.compose(sender, subject, body, mid, date)
    }

    /// The first-opened notice of `m`'s recipient `recipient` (to `sender`).
    pub fn build_opened(&self, sender: &str, recipient: &str, at: i64, mid: &str) -> Built {
        let org = one_line(&self.notifier.organisation);
        let recipient = one_line(recipient);
        let at = utc(at);
        let body = format!(
            "Beste afzender,\n\
             \n\
             {recipient} heeft uw beveiligde bericht in het portaal van {org} geopend\n\
             ({at}). U krijgt dit bericht alleen de eerste keer.\n\
             \n\
             Deze e-mail bevat geen inhoud van het bericht.\n\
             \n\
             ---\n\
             \n\
             Dear sender,\n\
             \n\
             {recipient} opened your secure message in the portal of {org} ({at}).\n\
             You only get this notice the first time.\n\
             \n\
             This e-mail does not contain the message itself.\n"
        );
        let subject = "Uw beveiligde bericht is geopend / Your secure message was opened";
        self.notifier
            .compose(sender, subject, body, mid, &date_now())
    }

    /// Sends the receipt of `p` (claimed by the caller) and records the outcome.
    pub async fn send_receipt(&self, p: &PendingReceipt) {
        if self.submit_receipt(p).await
            && let Err(e) = self.store.receipt_sent(&p.message.id).await
        {
            tracing::error!(error = %e, "cannot mark a receipt sent; it may be sent twice");
        }
    }

    /// Submits the receipt of `p` and audits the outcome; a failure is recorded for the
    /// retry. True when it was submitted: the caller then marks it sent.
    async fn submit_receipt(&self, p: &PendingReceipt) -> bool {
        let built = self.build_receipt(
            &p.sender,
            &p.message,
            &message_id(&self.notifier.from),
            &date_now(),
        );
        let id = &p.message.id;
        match self.notifier.submit(&p.sender, &built.message).await {
            Ok(()) => {
                self.auditor.record(Event::PortalReceiptSent {
                    message: id.clone(),
                    sender: p.sender.clone(),
                });
                true
            }
            Err(e) => {
                tracing::warn!(message = %id, error = %e, "receipt not sent; retried later");
                if let Err(e) = self.store.receipt_failed(id, p.attempts).await {
                    tracing::error!(error = %e, "cannot record a failed receipt");
                }
                self.auditor.record(Event::PortalReceiptFailed {
                    message: id.clone(),
                    sender: p.sender.clone(),
                    attempts: p.attempts + 1,
                    error: e.to_string(),
                });
                false
            }
        }
    }

    /// The receipt of a message this node just stored (claimed at intake). True when it
    /// was submitted and is still to be marked sent: the intake marks it together with
    /// the notifications, in one transaction.
    pub async fn receipt_after_intake(&self, id: &str, claimed_until: i64) -> bool {
        let now = crate::portal::store::now();
        match self.store.receipt(id).await {
            // Still the claim the intake stored (see `still_own_claim`).
            Ok(Some(p)) if p.next_at == claimed_until && still_own_claim(claimed_until, now) => {
                self.submit_receipt(&p).await
            }
            Ok(Some(p)) => match self.store.claim_receipt(id, p.next_at, now).await {
                Ok(true) => self.submit_receipt(&p).await,
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a receipt; retried later");
                    false
                }
            },
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a receipt; retried later");
                false
            }
        }
    }

    /// Receipts due at `at` whose first attempt failed (or whose node died): each claimed,
    /// then sent. Returns how many this node sent.
    pub async fn retry_receipts(&self, at: i64) -> usize {
        let due = match self.store.pending_receipts(at).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "portal receipt retry: store unavailable");
                return 0;
            }
        };
        let mut sent = 0;
        for p in due {
            match self.store.claim_receipt(&p.message.id, p.next_at, at).await {
                Ok(true) => {
                    self.send_receipt(&p).await;
                    sent += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "portal receipt claim: store unavailable");
                    break;
                }
            }
        }
        sent
    }

    /// Writes the audit event of every withdrawal not yet on record (by the web side of
    /// any node, or by `portal revoke`), each exactly once. Returns how many.
    pub async fn audit_revocations(&self) -> usize {
        let todo = match self.store.unaudited_revocations().await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "portal revocation audit: store unavailable");
                return 0;
            }
        };
        let mut done = 0;
        for r in todo {
            let id = r.message.id.clone();
            match self.store.claim_revocation_audit(&id).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "portal revocation audit: store unavailable");
                    break;
                }
            }
            let recorded = self.auditor.record(Event::PortalRevoked {
                message: id.clone(),
                message_id: r.message.header_message_id.clone(),
                sender: r.message.sender.clone(),
                recipient_count: r.message.recipients.len() as i64,
                by: r.by.clone(),
                client_address: r.client_address.clone(),
                revoked_at: r.revoked_at,
            });
            if recorded {
                tracing::info!(message = %id, by = %r.by, "portal message withdrawn");
                done += 1;
            } else if let Err(e) = self.store.unclaim_revocation_audit(&id).await {
                tracing::error!(error = %e, "portal revocation audit could not be retried");
            }
        }
        done
    }

    /// Withdraws message `id` for `by` and records it at once.
    pub async fn withdraw(
        &self,
        id: &str,
        by: &str,
        client: Option<IpAddr>,
    ) -> Result<Revoke, StoreError> {
        let client = client.map(|c| c.to_canonical().to_string());
        let done = self.store.revoke(id, by, client.as_deref()).await?;
        if done == Revoke::Withdrawn {
            self.audit_revocations().await;
        }
        Ok(done)
    }

    async fn opened(&self, r: &Recipient) {
        let sender = match self.store.claim_opened_notice(&r.message_id).await {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "portal: first-opened notice not claimed");
                return;
            }
        };
        let built = self.build_opened(
            &sender,
            &r.address,
            crate::portal::store::now(),
            &message_id(&self.notifier.from),
        );
        let result = self.notifier.submit(&sender, &built.message).await;
        if let Err(e) = &result {
            tracing::warn!(message = %r.message_id, error = %e, "portal: first-opened notice not sent");
        }
        self.auditor.record(Event::PortalOpenedNotice {
            message: r.message_id.clone(),
            recipient: r.address.clone(),
            sender,
            sent: result.is_ok(),
            error: result.err().map(|e| e.to_string()),
        });
    }
}

fn source_err(e: StoreError) -> SourceError {
    SourceError(e.to_string())
}

impl Withdraw for SenderMail {
    fn by_link<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageSummary>, SourceError>> {
        Box::pin(async move {
            let Some(id) = revoke_token_id(self.store.key(), token) else {
                return Ok(None);
            };
            self.store.summary(&id).await.map_err(source_err)
        })
    }

    fn withdraw<'a>(
        &'a self,
        message_id: &'a str,
        client: IpAddr,
    ) -> BoxFuture<'a, Result<Revoke, SourceError>> {
        Box::pin(async move {
            SenderMail::withdraw(self, message_id, "link", Some(client))
                .await
                .map_err(source_err)
        })
    }
}

impl OpenedAlert for SenderMail {
    fn recipient_opened<'a>(&'a self, recipient: &'a Recipient) -> BoxFuture<'a, ()> {
        Box::pin(self.opened(recipient))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoke_tokens_need_the_key() {
        let k = MasterKey::from_bytes(&[3; 32]);
        let other = MasterKey::from_bytes(&[4; 32]);
        let id = "00112233445566778899aabbccddeeff";
        let t = revoke_token(&k, id);
        assert_eq!(t.len(), 43);
        assert_eq!(revoke_token_id(&k, &t).as_deref(), Some(id));
        assert_eq!(revoke_token_id(&other, &t), None);
        // Another id with this MAC, a cut token, garbage, a huge one.
        let mut raw = data_encoding::BASE64URL_NOPAD.decode(t.as_bytes()).unwrap();
        raw[0] ^= 1;
        let forged = data_encoding::BASE64URL_NOPAD.encode(&raw);
        assert_eq!(revoke_token_id(&k, &forged), None);
        assert_eq!(revoke_token_id(&k, &t[..40]), None);
        assert_eq!(revoke_token_id(&k, "!!!"), None);
        assert_eq!(revoke_token_id(&k, &"A".repeat(10_000)), None);
        assert_eq!(
            revoke_link("https://p.example", &k, id),
            format!("https://p.example/r/{t}")
        );
    }
}
