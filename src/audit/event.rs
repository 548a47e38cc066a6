//! The closed set of audit events (NTA 7516 §6.4.2 and NEN 7513 for a gateway).
//!
//! Every variant carries only envelope facts and decisions: never a message body or a
//! Subject. Serialised (untagged) these fields are the line's `detail` object; the
//! variant's name is `event_type` ([`Event::name`]).

use serde::Serialize;

/// How sensitive the message was judged to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Secure,
    Standard,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Secure => "secure",
            Classification::Standard => "standard",
        }
    }
}

impl From<crate::config::Classification> for Classification {
    fn from(c: crate::config::Classification) -> Self {
        match c {
            crate::config::Classification::Secure => Classification::Secure,
            crate::config::Classification::Standard => Classification::Standard,
        }
    }
}

// The label enums the metrics share, defined below both so the two never disagree.
pub use crate::metrics::Direction;
pub use crate::policy::RouteVerdict;

/// Where in the SMTP dialogue (or the map server) a 4xx/5xx was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Connect,
    Helo,
    MailFrom,
    RcptTo,
    Data,
    Header,
    EndOfMessage,
    SocketMap,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::MailFrom => "mail_from",
            Stage::RcptTo => "rcpt_to",
            Stage::Data => "data",
            Stage::Header => "header",
            Stage::EndOfMessage => "end_of_message",
            Stage::SocketMap => "socket_map",
        }
    }
}

/// One audit event. A closed set: adding a variant is a format change (document it in
/// the module docs' field table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Event {
    /// A message entered the gateway (NEN 7513: transfer from another system).
    MessageReceived {
        direction: Direction,
        client_address: String,
        client_name: String,
        helo: String,
        tls_version: Option<String>,
        cipher: Option<String>,
        sasl_user: Option<String>,
        queue_id: String,
        message_id: Option<String>,
        sender: String,
        recipients: Vec<String>,
    },
    /// Outbound mail classified sensitive (`secure`) or not (`standard`).
    Classified {
        queue_id: String,
        message_id: Option<String>,
        classification: Classification,
        /// How: `"bypass header (true)"`, `"sender rule"`, `"default"`.
        by: String,
        trusted_client: bool,
    },
    /// The map server (or the milter) routed one recipient domain.
    RecipientRouted {
        queue_id: Option<String>,
        recipient_domain: String,
        /// The map reply, e.g. `"nta7516:[mx.example]"`.
        route: String,
        verdict: RouteVerdict,
        /// Reason codes.
        reasons: Vec<String>,
        /// DNSSEC summary.
        evidence: String,
    },
    FooterAdded {
        queue_id: String,
        parts: usize,
    },
    FooterSkipped {
        queue_id: String,
        reason: String,
    },
    /// DKIM signature added.
    Signed {
        queue_id: String,
        domain: String,
        selector: String,
    },
    /// SPF/DKIM/DMARC results of inbound mail and whether it arrived securely.
    InboundVerified {
        queue_id: String,
        spf: String,
        dkim: String,
        dmarc: String,
        arrived_securely: bool,
        reasons: Vec<String>,
    },
    /// Every 4xx the daemon gives.
    Deferred {
        queue_id: Option<String>,
        stage: Stage,
        reason: String,
    },
    /// Put on hold in the MTA (inbound DMARC p=quarantine failure, `[inbound] dmarc =
    /// "honour"`): neither delivered nor refused until an operator releases it.
    Quarantined {
        queue_id: String,
        reason: String,
    },
    /// `[outbound] require_own_from`: outbound mail whose From header names no own
    /// domain (NTA 7516 6.1.5). The `rejected` (or, in a dry run, `would_refuse`) line
    /// after it carries the reply; `from_domains` is empty when From had no address.
    FromNotOwn {
        queue_id: String,
        sasl_user: Option<String>,
        from_domains: Vec<String>,
    },
    /// Every 5xx the daemon gives.
    Rejected {
        queue_id: Option<String>,
        stage: Stage,
        reason: String,
    },
    /// `[server] dry_run`: the reply a message would have had (`451 4.3.0`, `550 5.7.1`)
    /// and why; it went on unchanged instead.
    WouldRefuse {
        queue_id: Option<String>,
        stage: Stage,
        reply: String,
        reason: String,
    },
    /// Classification/bypass headers stripped from the message.
    HeadersRemoved {
        queue_id: String,
        names: Vec<String>,
        from_trusted_client: bool,
    },
    ConfigLoaded {
        source: String,
        generation: u64,
    },
    ConfigReloaded {
        source: String,
        generation: u64,
    },
    /// A reload was refused; the previous configuration stays in force.
    ConfigRefused {
        source: String,
        error: String,
    },
    Startup {
        version: String,
        milter: String,
        map: String,
    },
    Shutdown {
        reason: String,
    },
    /// Written by the auditor itself, before the next line, after the audit file was
    /// repaired or could not be written: `lost_events` lines are missing from the file
    /// (they went to the journal only), `torn_tail` is the incomplete last line a crash
    /// left behind (removed from the end of the file, kept here verbatim).
    AuditLogRecovered {
        reason: String,
        lost_events: u64,
        torn_tail: Option<String>,
    },
    /// Portal: a message stored encrypted for its recipients (LMTP 250 follows). Never
    /// content: the digest and size identify it. `redelivery`: the MTA delivered a copy
    /// already stored (after a crash between commit and reply); nothing new was stored.
    PortalStored {
        message: String,
        message_id: Option<String>,
        sender: String,
        recipients: Vec<String>,
        recipient_count: usize,
        sha256: String,
        size: u64,
        redelivery: bool,
    },
    /// Portal: the LMTP intake refused a message for these recipients (`reply` is what
    /// the MTA got: 550 without a mobile number, 552 over the size limit, 451 on a
    /// storage or key failure).
    PortalIntakeRefused {
        sender: String,
        recipients: Vec<String>,
        reply: String,
        reason: String,
    },
    /// Portal: the notification with the link was submitted to the MTA.
    PortalNotified {
        message: String,
        recipient_id: String,
        recipient: String,
    },
    /// Portal: submitting the notification failed; it is retried (the link token is kept
    /// sealed until then).
    PortalNotifyFailed {
        message: String,
        recipient_id: String,
        recipient: String,
        attempts: i64,
        error: String,
    },
    /// Portal: retention over; the message key was destroyed (nothing can be decrypted
    /// from here on).
    PortalExpired {
        message: String,
        sha256: String,
        recipient_count: i64,
    },
    /// Portal: the expired message's ciphertext and encrypted recipient data deleted.
    PortalShredded {
        message: String,
    },
    /// Portal: the message was withdrawn (revoked): its key destroyed and its data
    /// deleted at `revoked_at` (unix seconds). `by` is `link` (the sender's revoke link,
    /// from `client_address`) or `administrator` (`portal revoke`, recorded by the first
    /// portal pass after it).
    PortalRevoked {
        message: String,
        message_id: Option<String>,
        sender: String,
        recipient_count: i64,
        by: String,
        client_address: Option<String>,
        revoked_at: i64,
    },
    /// Portal: the sender got the receipt (delivered to the portal; the revoke link).
    PortalReceiptSent {
        message: String,
        sender: String,
    },
    /// Portal: submitting the receipt failed; it is retried while the message lives.
    PortalReceiptFailed {
        message: String,
        sender: String,
        attempts: i64,
        error: String,
    },
    /// Portal: the recipient's reply (text and `attachments` files) was submitted to the
    /// message's sender `to`; `sha256`/`size` of the mail as submitted.
    PortalReplied {
        message: String,
        recipient: String,
        to: String,
        reply_message_id: String,
        attachments: usize,
        size: u64,
        sha256: String,
        client_address: String,
    },
    /// Portal: a recipient had no number; the sender was asked for it with a one-time
    /// link (`sent` false: submitting failed, retried).
    PortalNumberAsked {
        message: String,
        recipient: String,
        sender: String,
        sent: bool,
        error: Option<String>,
    },
    /// Portal: the sender gave a waiting recipient's number through the link.
    PortalNumberGiven {
        message: String,
        recipient: String,
        saved_to_address_book: bool,
        client_address: String,
    },
    /// Portal: no number within `[portal] number_wait`; the sender was told the message
    /// was not delivered to this recipient (`notice_sent`).
    PortalNotDelivered {
        message: String,
        recipient: String,
        sender: String,
        notice_sent: bool,
    },
    /// Portal: the sender was told that a recipient opened the message for the first
    /// time (`[portal] notify_opened`); `sent` false: submitting it failed (`error`).
    PortalOpenedNotice {
        message: String,
        recipient: String,
        sender: String,
        sent: bool,
        error: Option<String>,
    },
    // Portal web side (`nta7516-milter portal`): `message` is the portal's id of the stored
    // message, `recipient` its envelope recipient, `client_address` the browser's address.
    /// A one-time code went out by SMS.
    PortalCodeSent {
        message: String,
        recipient: String,
        /// As shown to the recipient (`06-****5678`), never the full number.
        phone: String,
        provider_reference: String,
        client_address: String,
    },
    /// No code was sent: the provider failed (`reason` is its error, never the token) or a
    /// limit refused it (`too_soon`, `too_many`, `locked`).
    PortalCodeNotSent {
        message: String,
        recipient: String,
        reason: String,
        client_address: String,
    },
    /// A code was entered and not accepted (`wrong`, or `no_code` when none was valid).
    PortalCodeFailed {
        message: String,
        recipient: String,
        reason: String,
        tries_left: i64,
        client_address: String,
    },
    /// Too many consecutive failures: the recipient is locked and the sender is told.
    PortalLocked {
        message: String,
        recipient: String,
        sender: String,
        seconds: i64,
        client_address: String,
    },
    /// The sender was told by mail that a recipient got locked (`portal_locked`).
    PortalLockNotified {
        message: String,
        recipient: String,
        sender: String,
    },
    /// The lock notice could not be submitted (or there was no sender to tell).
    PortalLockNoticeFailed {
        message: String,
        recipient: String,
        sender: String,
        error: String,
    },
    /// A correct code opened a session.
    PortalOpened {
        message: String,
        recipient: String,
        client_address: String,
    },
    /// The message page was shown.
    PortalViewed {
        message: String,
        recipient: String,
        client_address: String,
    },
    /// A download: `what` is `pdf`, `eml` or `part` (then `part` is its index; names
    /// of attachments are content and not logged); `sha256` of the bytes served.
    PortalDownloaded {
        message: String,
        recipient: String,
        what: String,
        part: Option<u64>,
        sha256: String,
        size: u64,
        client_address: String,
    },
}

impl Event {
    /// `event_type` in the file, `EVENT` in the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Event::MessageReceived { .. } => "message_received",
            Event::Classified { .. } => "classified",
            Event::RecipientRouted { .. } => "recipient_routed",
            Event::FooterAdded { .. } => "footer_added",
            Event::FooterSkipped { .. } => "footer_skipped",
            Event::Quarantined { .. } => "quarantined",
            Event::Signed { .. } => "signed",
            Event::InboundVerified { .. } => "inbound_verified",
            Event::Deferred { .. } => "deferred",
            Event::FromNotOwn { .. } => "from_not_own",
            Event::Rejected { .. } => "rejected",
            Event::WouldRefuse { .. } => "would_refuse",
            Event::HeadersRemoved { .. } => "headers_removed",
            Event::ConfigLoaded { .. } => "config_loaded",
            Event::ConfigReloaded { .. } => "config_reloaded",
            Event::ConfigRefused { .. } => "config_refused",
            Event::Startup { .. } => "startup",
            Event::Shutdown { .. } => "shutdown",
            Event::AuditLogRecovered { .. } => "audit_log_recovered",
            Event::PortalStored { .. } => "portal_stored",
            Event::PortalIntakeRefused { .. } => "portal_intake_refused",
            Event::PortalNotified { .. } => "portal_notified",
            Event::PortalNotifyFailed { .. } => "portal_notify_failed",
            Event::PortalExpired { .. } => "portal_expired",
            Event::PortalShredded { .. } => "portal_shredded",
            Event::PortalRevoked { .. } => "portal_revoked",
            Event::PortalReceiptSent { .. } => "portal_receipt_sent",
            Event::PortalReceiptFailed { .. } => "portal_receipt_failed",
            Event::PortalOpenedNotice { .. } => "portal_opened_notice",
            Event::PortalReplied { .. } => "portal_replied",
            Event::PortalNumberAsked { .. } => "portal_number_asked",
            Event::PortalNumberGiven { .. } => "portal_number_given",
            Event::PortalNotDelivered { .. } => "portal_not_delivered",
            Event::PortalCodeSent { .. } => "portal_code_sent",
            Event::PortalCodeNotSent { .. } => "portal_code_not_sent",
            Event::PortalCodeFailed { .. } => "portal_code_failed",
            Event::PortalLocked { .. } => "portal_locked",
            Event::PortalLockNotified { .. } => "portal_lock_notified",
            Event::PortalLockNoticeFailed { .. } => "portal_lock_notice_failed",
            Event::PortalOpened { .. } => "portal_opened",
            Event::PortalViewed { .. } => "portal_viewed",
            Event::PortalDownloaded { .. } => "portal_downloaded",
        }
    }

    /// IHE/NEN 7513 `EventActionCode`: C create, R read, U update, D delete, E execute.
    pub fn action(&self) -> &'static str {
        match self {
            Event::MessageReceived { .. } | Event::PortalStored { .. } => "C",
            Event::PortalExpired { .. }
            | Event::PortalShredded { .. }
            | Event::PortalRevoked { .. } => "D",
            Event::ConfigLoaded { .. } => "R",
            Event::FooterAdded { .. }
            | Event::FooterSkipped { .. }
            | Event::Quarantined { .. }
            | Event::Signed { .. }
            | Event::HeadersRemoved { .. }
            | Event::ConfigReloaded { .. }
            | Event::ConfigRefused { .. } => "U",
            Event::Classified { .. }
            | Event::RecipientRouted { .. }
            | Event::InboundVerified { .. }
            | Event::Deferred { .. }
            | Event::Rejected { .. }
            | Event::FromNotOwn { .. }
            | Event::WouldRefuse { .. }
            | Event::Startup { .. }
            | Event::Shutdown { .. }
            | Event::AuditLogRecovered { .. }
            | Event::PortalIntakeRefused { .. }
            | Event::PortalNotified { .. }
            | Event::PortalNotifyFailed { .. }
            | Event::PortalLockNotified { .. }
            | Event::PortalLockNoticeFailed { .. }
            | Event::PortalReceiptSent { .. }
            | Event::PortalReceiptFailed { .. }
            | Event::PortalOpenedNotice { .. } => "E",
            Event::PortalReplied { .. } => "C",
            Event::PortalNumberAsked { .. } | Event::PortalNotDelivered { .. } => "E",
            Event::PortalNumberGiven { .. } => "U",
            Event::PortalCodeSent { .. }
            | Event::PortalCodeNotSent { .. }
            | Event::PortalCodeFailed { .. }
            | Event::PortalLocked { .. }
            | Event::PortalOpened { .. } => "E",
            Event::PortalViewed { .. } | Event::PortalDownloaded { .. } => "R",
        }
    }

    /// IHE/NEN 7513 `EventOutcomeIndicator`: 0 success, 4 minor failure (the work is
    /// retried or went ahead in a lesser form), 8 serious failure (refused), 12 major
    /// failure (not used: the daemon stops instead).
    pub fn outcome(&self) -> u8 {
        match self {
            Event::RecipientRouted {
                verdict: RouteVerdict::Temporary,
                ..
            }
            | Event::FooterSkipped { .. }
            | Event::Quarantined { .. }
            | Event::Deferred { .. }
            | Event::ConfigRefused { .. }
            | Event::AuditLogRecovered { .. }
            | Event::PortalNotifyFailed { .. }
            | Event::PortalLockNoticeFailed { .. }
            | Event::PortalReceiptFailed { .. }
            | Event::PortalOpenedNotice { sent: false, .. }
            | Event::PortalNumberAsked { sent: false, .. }
            | Event::PortalNotDelivered { .. }
            | Event::PortalCodeNotSent { .. }
            | Event::PortalCodeFailed { .. } => 4,
            Event::PortalIntakeRefused { reply, .. } if reply.starts_with('4') => 4,
            Event::Rejected { .. }
            | Event::PortalIntakeRefused { .. }
            | Event::PortalLocked { .. } => 8,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        let deferred = Event::Deferred {
            queue_id: None,
            stage: Stage::Connect,
            reason: "451 4.3.0 audit log unwritable".into(),
        };
        assert_eq!(
            (deferred.name(), deferred.action(), deferred.outcome()),
            ("deferred", "E", 4)
        );
        let temp = Event::RecipientRouted {
            queue_id: None,
            recipient_domain: "a.example".into(),
            route: String::new(),
            verdict: RouteVerdict::Temporary,
            reasons: vec![],
            evidence: String::new(),
        };
        assert_eq!(temp.outcome(), 4);
        let would = Event::WouldRefuse {
            queue_id: None,
            stage: Stage::EndOfMessage,
            reply: "451 4.3.0".into(),
            reason: "x".into(),
        };
        // Nothing was refused: the message went on.
        assert_eq!(
            (would.name(), would.action(), would.outcome()),
            ("would_refuse", "E", 0)
        );
        let shutdown = Event::Shutdown {
            reason: "SIGTERM".into(),
        };
        assert_eq!((shutdown.action(), shutdown.outcome()), ("E", 0));
        // Untagged: only the fields, the type goes in `event_type`.
        assert_eq!(
            serde_json::to_string(&shutdown).unwrap(),
            r#"{"reason":"SIGTERM"}"#
        );
        assert_eq!(
            serde_json::to_string(&Stage::RcptTo).unwrap(),
            r#""rcpt_to""#
        );
    }

    #[test]
    fn portal_events() {
        let stored = Event::PortalStored {
            message: "ab".into(),
            message_id: None,
            sender: "a@zkh.example".into(),
            recipients: vec!["p@x.example".into()],
            recipient_count: 1,
            sha256: "00".into(),
            size: 3,
            redelivery: false,
        };
        assert_eq!(
            (stored.name(), stored.action(), stored.outcome()),
            ("portal_stored", "C", 0)
        );
        let refused = |reply: &str| Event::PortalIntakeRefused {
            sender: String::new(),
            recipients: vec![],
            reply: reply.into(),
            reason: "x".into(),
        };
        assert_eq!(refused("451 4.3.0").outcome(), 4);
        assert_eq!(refused("550 5.7.0").outcome(), 8);
        let expired = Event::PortalExpired {
            message: "ab".into(),
            sha256: "00".into(),
            recipient_count: 1,
        };
        assert_eq!((expired.name(), expired.action()), ("portal_expired", "D"));
        let shredded = Event::PortalShredded {
            message: "ab".into(),
        };
        assert_eq!(shredded.action(), "D");
    }

    #[test]
    fn portal_web_events() {
        let sent = Event::PortalCodeSent {
            message: "m".into(),
            recipient: "p@x.example".into(),
            phone: "06-****5678".into(),
            provider_reference: "ref".into(),
            client_address: "192.0.2.1".into(),
        };
        assert_eq!(
            (sent.name(), sent.action(), sent.outcome()),
            ("portal_code_sent", "E", 0)
        );
        let locked = Event::PortalLocked {
            message: "m".into(),
            recipient: "p".into(),
            sender: "s".into(),
            seconds: 3600,
            client_address: "192.0.2.1".into(),
        };
        assert_eq!((locked.name(), locked.outcome()), ("portal_locked", 8));
        let dl = Event::PortalDownloaded {
            message: "m".into(),
            recipient: "p".into(),
            what: "pdf".into(),
            part: None,
            sha256: "00".into(),
            size: 1,
            client_address: "::1".into(),
        };
        assert_eq!((dl.name(), dl.action()), ("portal_downloaded", "R"));
    }

    #[test]
    fn from_the_daemon_types() {
        assert_eq!(
            Classification::from(crate::config::Classification::Standard),
            Classification::Standard
        );
        let v = crate::policy::Verdict::NotCompliant { reasons: vec![] };
        assert_eq!(RouteVerdict::from(&v), RouteVerdict::NotCompliant);
    }
}
