//! The same events as structured tracing events (target `nta7516_milter::audit`).
//!
//! With journald and `with_field_prefix(None)` the keys arrive upper-cased: `EVENT`,
//! `EVENT_ID`, `SEQ`, `QUEUE_ID`, `RCPT_DOMAIN`, `ROUTE`, … List fields are joined with
//! commas. `EVENT_ID` (and `SEQ` when the line reached the file) joins a journal entry
//! to its file line. Deferrals, refusals and recoveries go out at WARN, the rest at INFO.

use super::event::Event;

const TARGET: &str = "nta7516_milter::audit";

/// One field's tracing value by its kind: `str` a `String` or a type with `as_str`, `opt`
/// an `Option<String>` (absent: not recorded), `list` joined with commas, `val` as it is
/// (numbers, booleans), `len` an optional text's length in bytes.
macro_rules! value {
    (str, $f:ident) => {
        $f.as_str()
    };
    (opt, $f:ident) => {
        $f.as_deref()
    };
    (list, $f:ident) => {
        tracing::field::display($f.join(","))
    };
    (val, $f:ident) => {
        $f
    };
    (len, $f:ident) => {
        $f.as_ref().map(|t| t.len() as u64)
    };
}

/// The match over every event, each field named once: `field: kind` records it under its
/// own name, `field: kind => key` under `key`. The `@fields` rules pick each key in turn
/// (a `macro_rules!` repetition cannot choose between two names) and then call tracing.
macro_rules! emit_events {
    ($event:ident, $id:ident, $seq:ident; $(
        $level:ident $variant:ident $msg:literal {
            $($field:ident : $kind:ident $(=> $key:ident)?),* $(,)?
        }
    )*) => {
        match $event {
            $(Event::$variant { $($field),* } => emit_events!(
                @fields ($level, $msg, $event, $id, $seq) []
                $($field : $kind $(=> $key)?,)*
            ),)*
        }
    };
    (@fields $head:tt [$($done:tt)*] $field:ident : $kind:ident => $key:ident, $($rest:tt)*) => {
        emit_events!(@fields $head [$($done)* $key = value!($kind, $field),] $($rest)*)
    };
    (@fields $head:tt [$($done:tt)*] $field:ident : $kind:ident, $($rest:tt)*) => {
        emit_events!(@fields $head [$($done)* $field = value!($kind, $field),] $($rest)*)
    };
    (@fields ($level:ident, $msg:literal, $event:ident, $id:ident, $seq:ident) [$($done:tt)*]) => {
        tracing::$level!(
            target: TARGET,
            event = $event.name(),
            event_id = $id,
            seq = $seq,
            $($done)*
            $msg
        )
    };
}

pub(super) fn emit(event: &Event, id: &str, seq: Option<u64>) {
    emit_events! { event, id, seq;
        info MessageReceived "audit: message received" {
            direction: str, client_address: str, client_name: str, helo: str, tls_version: opt,
            cipher: opt, sasl_user: opt, queue_id: str, message_id: opt, sender: str,
            recipients: list,
        }
        info Classified "audit: message classified" {
            queue_id: str, message_id: opt, classification: str, by: str, trusted_client: val,
        }
        info RecipientRouted "audit: recipient routed" {
            queue_id: opt, recipient_domain: str => rcpt_domain, route: str, verdict: str,
            reasons: list, evidence: str,
        }
        info FooterAdded "audit: footer added" { queue_id: str, parts: val }
        warn Quarantined "audit: message put on hold" { queue_id: str, reason: str }
        info FooterSkipped "audit: footer skipped" { queue_id: str, reason: str }
        info Signed "audit: DKIM signed" { queue_id: str, domain: str, selector: str }
        info InboundVerified "audit: inbound message verified" {
            queue_id: str, spf: str, dkim: str, dmarc: str, arrived_securely: val,
            reasons: list,
        }
        warn Deferred "audit: deferred (4xx)" { queue_id: opt, stage: str, reason: str }
        warn FromNotOwn "audit: From header not an own domain" {
            queue_id: str, sasl_user: opt, from_domains: list,
        }
        info Rejected "audit: rejected (5xx)" { queue_id: opt, stage: str, reason: str }
        warn WouldRefuse "audit: dry run, would have refused; went on unchanged" {
            queue_id: opt, stage: str, reply: str, reason: str,
        }
        info HeadersRemoved "audit: headers removed" {
            queue_id: str, names: list, from_trusted_client: val,
        }
        info ConfigLoaded "audit: configuration loaded" { source: str, generation: val }
        info ConfigReloaded "audit: configuration reloaded" { source: str, generation: val }
        warn ConfigRefused "audit: configuration refused" { source: str, error: str }
        info Startup "audit: startup" { version: str, milter: str, map: str }
        info Shutdown "audit: shutdown" { reason: str }
        warn AuditLogRecovered "audit: audit log recovered" {
            reason: str, lost_events: val, torn_tail: len => torn_tail_bytes,
        }
        info PortalStored "audit: portal stored a message" {
            message: str, message_id: opt, sender: str, recipients: list,
            recipient_count: val, sha256: str, size: val, redelivery: val,
        }
        warn PortalIntakeRefused "audit: portal intake refused a message" {
            sender: str, recipients: list, reply: str, reason: str,
        }
        info PortalNotified "audit: portal notification sent" {
            message: str, recipient_id: str, recipient: str,
        }
        warn PortalNotifyFailed "audit: portal notification failed; retried" {
            message: str, recipient_id: str, recipient: str, attempts: val, error: str,
        }
        info PortalExpired "audit: portal message expired, key destroyed" {
            message: str, sha256: str, recipient_count: val,
        }
        info PortalShredded "audit: portal message data deleted" { message: str }
        info PortalRevoked "audit: portal message withdrawn, key destroyed" {
            message: str, message_id: opt, sender: str, recipient_count: val, by: str,
            client_address: opt, revoked_at: val,
        }
        info PortalReceiptSent "audit: portal receipt sent to the sender" {
            message: str, sender: str,
        }
        warn PortalReceiptFailed "audit: portal receipt not sent; retried" {
            message: str, sender: str, attempts: val, error: str,
        }
        info PortalReplied "audit: portal reply sent to the sender" {
            message: str, recipient: str, to: str, reply_message_id: str, attachments: val,
            size: val, sha256: str, client_address: str,
        }
        info PortalNumberAsked "audit: portal asked the sender for a number" {
            message: str, recipient: str, sender: str, sent: val, error: opt,
        }
        info PortalNumberGiven "audit: portal number given by the sender" {
            message: str, recipient: str, saved_to_address_book: val, client_address: str,
        }
        warn PortalNotDelivered "audit: portal message not delivered (no number)" {
            message: str, recipient: str, sender: str, notice_sent: val,
        }
        info PortalOpenedNotice "audit: portal first-opened notice to the sender" {
            message: str, recipient: str, sender: str, sent: val, error: opt,
        }
        info PortalCodeSent "audit: portal code sent" {
            message: str, recipient: str, phone: str, provider_reference: str,
            client_address: str,
        }
        warn PortalCodeNotSent "audit: portal code not sent" {
            message: str, recipient: str, reason: str, client_address: str,
        }
        info PortalCodeFailed "audit: portal code not accepted" {
            message: str, recipient: str, reason: str, tries_left: val, client_address: str,
        }
        warn PortalLocked "audit: portal recipient locked" {
            message: str, recipient: str, sender: str, seconds: val, client_address: str,
        }
        info PortalLockNotified "audit: portal lock notice sent to the sender" {
            message: str, recipient: str, sender: str,
        }
        warn PortalLockNoticeFailed "audit: portal lock notice not sent" {
            message: str, recipient: str, sender: str, error: str,
        }
        info PortalOpened "audit: portal session opened" {
            message: str, recipient: str, client_address: str,
        }
        info PortalViewed "audit: portal message viewed" {
            message: str, recipient: str, client_address: str,
        }
        info PortalDownloaded "audit: portal download" {
            message: str, recipient: str, what: str, part: val, sha256: str, size: val,
            client_address: str,
        }
    }
}
