//! The sender's reply to the portal's request for a number (`portal::number`): mail to
//! the portal's own address (`[portal] from`, routed to the portal by the map server)
//! that answers the request (its `In-Reply-To`/`References` name the request's
//! Message-ID), from the sender who was asked, with the number in the subject (an
//! `[sms:…]` tag, or just the number). Nothing of it is stored; the reply to the MTA says
//! whether the number was taken, so a refusal reaches the sender as a bounce with the
//! reason.

use super::{Envelope, Failure, Intake, header::Facts};
use crate::audit::Event;
use crate::portal::phone::Phone;
use crate::portal::store::waiting::Given;

/// The number was stored; the recipient's notification follows.
pub const REPLY_NUMBER_STORED: &str = "250 2.0.0 Nummer opgeslagen, het bericht gaat naar de ontvanger / Number stored, the message goes to the recipient";
/// No waiting message belongs to this reply (not an answer to a request, another sender,
/// already given, or given up).
pub const REPLY_NO_WAITING: &str =
    "550 5.7.1 Geen wachtend bericht bij dit antwoord / No message is waiting for this reply";
/// No mobile number in the subject.
pub const REPLY_NO_NUMBER_IN_SUBJECT: &str = "550 5.7.0 Geen mobiel nummer in het onderwerp, bijvoorbeeld 06-12345678 / No mobile number in the subject, for example 06-12345678";
/// The portal's address together with other recipients.
pub const REPLY_ALONE: &str =
    "550 5.5.1 Stuur het nummer alleen aan het portaal / Send the number to the portal alone";

/// The number in a subject: the `[sms:…]` tag (already in `facts`), else the first run of
/// digits and separators that is a mobile number.
fn number_in(facts: &Facts) -> Option<Phone> {
    if let Some((p, _)) = &facts.phone {
        return Some(p.clone());
    }
    let subject = facts.subject.as_deref()?;
    subject
        .split(|c: char| !(c.is_ascii_digit() || "+ -().".contains(c)))
        .map(str::trim)
        .filter(|s| s.chars().filter(char::is_ascii_digit).count() >= 8)
        .find_map(|s| Phone::parse(s).ok())
}

impl Intake {
    /// Whether this transaction is for the portal's own address.
    pub(super) fn for_portal_address(&self, env: &Envelope) -> bool {
        env.recipients
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&self.own_sender))
    }

    pub(super) async fn number_reply(
        &self,
        env: &Envelope,
        facts: &Facts,
    ) -> Result<Vec<String>, Failure> {
        if env.recipients.len() != 1 {
            return Err(Failure::Refuse(
                REPLY_ALONE,
                "number reply with other recipients".into(),
            ));
        }
        let temp = |e: crate::portal::store::StoreError| {
            tracing::error!(error = %e, "portal store failed");
            Failure::Refuse(super::REPLY_TEMPORARY, format!("store: {e}"))
        };
        let sender = env
            .sender
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>');
        let waiting = self
            .store
            .waiting_by_ask(&facts.references)
            .await
            .map_err(temp)?
            .filter(|w| w.state == 0 && w.sender.eq_ignore_ascii_case(sender));
        let Some(w) = waiting else {
            return Err(Failure::Refuse(
                REPLY_NO_WAITING,
                "no waiting recipient for this reply".into(),
            ));
        };
        let Some(phone) = number_in(facts) else {
            return Err(Failure::Refuse(
                REPLY_NO_NUMBER_IN_SUBJECT,
                facts
                    .bad_phone
                    .clone()
                    .unwrap_or_else(|| "no mobile number in the subject".into()),
            ));
        };
        match self
            .store
            .give_number(&w.recipient_id, &phone)
            .await
            .map_err(temp)?
        {
            Given::Stored => {
                self.auditor.record(Event::PortalNumberGiven {
                    message: w.message_id.clone(),
                    recipient: w.address.clone(),
                    saved_to_address_book: false,
                    client_address: format!("mail from {sender}"),
                });
                Ok(vec![REPLY_NUMBER_STORED.to_string()])
            }
            Given::Spent => Err(Failure::Refuse(
                REPLY_NO_WAITING,
                "the number was given before".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(subject: &str) -> Facts {
        let (_, f) =
            super::super::header::analyse(format!("Subject: {subject}\r\n\r\n").as_bytes());
        f
    }

    #[test]
    fn numbers_in_subjects() {
        let n = |s: &str| number_in(&facts(s)).map(|p| p.e164().to_string());
        assert_eq!(
            n("Re: Mobiel nummer nodig / Mobile number needed 06-12345678").as_deref(),
            Some("+31612345678")
        );
        assert_eq!(
            n("Re: x [sms:+31687654321]").as_deref(),
            Some("+31687654321")
        );
        assert_eq!(n("Re: +31 6 1122 3344").as_deref(), Some("+31611223344"));
        assert_eq!(n("Re: Mobiel nummer nodig / Mobile number needed"), None);
        assert_eq!(n("Re: 020-1234567"), None);
        assert_eq!(n("Re: 2026-12-03"), None);
    }

    #[test]
    fn replies_are_single_ascii_lines_with_codes() {
        for r in [
            REPLY_NUMBER_STORED,
            REPLY_NO_WAITING,
            REPLY_NO_NUMBER_IN_SUBJECT,
            REPLY_ALONE,
        ] {
            assert!(
                r.is_ascii() && !r.contains(['\r', '\n']) && r.len() <= 512,
                "{r}"
            );
        }
    }
}
