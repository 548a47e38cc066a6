//! The NEN 7513-shaped part of a line that does not depend on its place in the chain:
//! event type, action, outcome, user, network access point, audit source, objects and
//! the event's own fields (`detail`). Serialised outside the writer's lock.

use std::net::IpAddr;

use serde::Serialize;

use super::event::Event;

/// `AuditSourceID` and the software that wrote the line.
#[derive(Debug, Clone, Serialize)]
pub(super) struct AuditSource {
    pub id: String,
    pub software: &'static str,
}

impl AuditSource {
    pub fn local() -> Self {
        let id = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        AuditSource {
            id,
            software: concat!("nta7516-milter/", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `UserID` and what kind of identity it is.
#[derive(Serialize)]
struct User<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `NetworkAccessPointTypeCode` (1 machine name, 2 IP address) and `…ID`.
#[derive(Serialize)]
struct AccessPoint<'a> {
    type_code: u8,
    id: &'a str,
}

/// A `ParticipantObject`: its role and identifier.
#[derive(Serialize)]
struct Object<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct Body<'a> {
    event_type: &'static str,
    action: &'static str,
    outcome: u8,
    user: User<'a>,
    network_access_point: Option<AccessPoint<'a>>,
    audit_source: &'a AuditSource,
    objects: Vec<Object<'a>>,
    detail: &'a Event,
}

const SYSTEM: User<'static> = User {
    id: "nta7516-milter",
    kind: "system",
};

fn user(e: &Event) -> User<'_> {
    match e {
        Event::MessageReceived {
            sasl_user: Some(u), ..
        } => User {
            id: u,
            kind: "sasl_user",
        },
        Event::MessageReceived { sender, .. } => User {
            id: sender,
            kind: "envelope_sender",
        },
        Event::PortalCodeSent { recipient, .. }
        | Event::PortalCodeNotSent { recipient, .. }
        | Event::PortalCodeFailed { recipient, .. }
        | Event::PortalLocked { recipient, .. }
        | Event::PortalOpened { recipient, .. }
        | Event::PortalViewed { recipient, .. }
        | Event::PortalDownloaded { recipient, .. } => User {
            id: recipient,
            kind: "portal_recipient",
        },
        _ => SYSTEM,
    }
}

fn access_point(e: &Event) -> Option<AccessPoint<'_>> {
    match e {
        Event::MessageReceived { client_address, .. } => Some(AccessPoint {
            type_code: if client_address.parse::<IpAddr>().is_ok() {
                2
            } else {
                1
            },
            id: client_address,
        }),
        Event::PortalCodeSent { client_address, .. }
        | Event::PortalCodeNotSent { client_address, .. }
        | Event::PortalCodeFailed { client_address, .. }
        | Event::PortalLocked { client_address, .. }
        | Event::PortalOpened { client_address, .. }
        | Event::PortalViewed { client_address, .. }
        | Event::PortalDownloaded { client_address, .. } => Some(AccessPoint {
            type_code: 2,
            id: client_address,
        }),
        _ => None,
    }
}

/// One participant object (NEN 7513 names its type and identifier).
fn o<'a>(kind: &'static str, id: &'a str) -> Object<'a> {
    Object { kind, id }
}

/// The sender and every recipient of a message, in that order.
fn parties<'a>(sender: &'a str, recipients: &'a [String]) -> impl Iterator<Item = Object<'a>> {
    std::iter::once(o("sender", sender)).chain(recipients.iter().map(|r| o("recipient", r)))
}

fn objects(e: &Event) -> Vec<Object<'_>> {
    let q = |id| o("queue_id", id);
    let mid = |id| o("message_id", id);
    match e {
        Event::MessageReceived {
            queue_id,
            message_id,
            sender,
            recipients,
            ..
        } => {
            let mut v = vec![q(queue_id)];
            v.extend(message_id.as_deref().map(mid));
            v.extend(parties(sender, recipients));
            v
        }
        Event::Classified {
            queue_id,
            message_id,
            ..
        } => {
            let mut v = vec![q(queue_id)];
            v.extend(message_id.as_deref().map(mid));
            v
        }
        Event::RecipientRouted {
            queue_id,
            recipient_domain,
            ..
        } => {
            let mut v: Vec<Object<'_>> = queue_id.as_deref().map(q).into_iter().collect();
            v.push(o("recipient_domain", recipient_domain));
            v
        }
        Event::FooterAdded { queue_id, .. }
        | Event::FooterSkipped { queue_id, .. }
        | Event::Quarantined { queue_id, .. }
        | Event::Signed { queue_id, .. }
        | Event::InboundVerified { queue_id, .. }
        | Event::FromNotOwn { queue_id, .. }
        | Event::HeadersRemoved { queue_id, .. } => vec![q(queue_id)],
        Event::Deferred { queue_id, .. }
        | Event::Rejected { queue_id, .. }
        | Event::WouldRefuse { queue_id, .. } => queue_id.as_deref().map(q).into_iter().collect(),
        Event::ConfigLoaded { source, .. }
        | Event::ConfigReloaded { source, .. }
        | Event::ConfigRefused { source, .. } => vec![o("config_file", source)],
        Event::Startup { .. } | Event::Shutdown { .. } | Event::AuditLogRecovered { .. } => {
            vec![]
        }
        Event::PortalStored {
            message,
            message_id,
            sender,
            recipients,
            ..
        } => {
            let mut v = vec![o("portal_message", message)];
            v.extend(message_id.as_deref().map(mid));
            v.extend(parties(sender, recipients));
            v
        }
        Event::PortalIntakeRefused {
            sender, recipients, ..
        } => parties(sender, recipients).collect(),
        Event::PortalExpired { message, .. } | Event::PortalShredded { message } => {
            vec![o("portal_message", message)]
        }
        Event::PortalRevoked {
            message,
            message_id,
            sender,
            ..
        } => {
            let mut v = vec![o("portal_message", message)];
            v.extend(message_id.as_deref().map(mid));
            v.push(o("sender", sender));
            v
        }
        Event::PortalReceiptSent { message, sender }
        | Event::PortalReceiptFailed {
            message, sender, ..
        } => vec![o("portal_message", message), o("sender", sender)],
        Event::PortalReplied {
            message,
            recipient,
            to,
            reply_message_id,
            ..
        } => vec![
            o("portal_message", message),
            o("message_id", reply_message_id),
            o("sender", recipient),
            o("recipient", to),
        ],
        Event::PortalNumberGiven {
            message, recipient, ..
        } => vec![o("portal_message", message), o("recipient", recipient)],
        Event::PortalOpenedNotice {
            message,
            recipient,
            sender,
            ..
        }
        | Event::PortalNumberAsked {
            message,
            recipient,
            sender,
            ..
        }
        | Event::PortalNotDelivered {
            message,
            recipient,
            sender,
            ..
        } => vec![
            o("portal_message", message),
            o("recipient", recipient),
            o("sender", sender),
        ],
        Event::PortalLocked {
            message,
            recipient,
            sender,
            ..
        }
        | Event::PortalLockNotified {
            message,
            recipient,
            sender,
        }
        | Event::PortalLockNoticeFailed {
            message,
            recipient,
            sender,
            ..
        } => vec![
            o("portal_message", message),
            o("recipient", recipient),
            o("sender", sender),
        ],
        Event::PortalNotified {
            message, recipient, ..
        }
        | Event::PortalNotifyFailed {
            message, recipient, ..
        }
        | Event::PortalCodeSent {
            message, recipient, ..
        }
        | Event::PortalCodeNotSent {
            message, recipient, ..
        }
        | Event::PortalCodeFailed {
            message, recipient, ..
        }
        | Event::PortalOpened {
            message, recipient, ..
        }
        | Event::PortalViewed {
            message, recipient, ..
        }
        | Event::PortalDownloaded {
            message, recipient, ..
        } => vec![o("portal_message", message), o("recipient", recipient)],
    }
}

/// The line's chain-independent fields as a JSON object (`{...}`).
pub(super) fn body(e: &Event, source: &AuditSource) -> Vec<u8> {
    let b = Body {
        event_type: e.name(),
        action: e.action(),
        outcome: e.outcome(),
        user: user(e),
        network_access_point: access_point(e),
        audit_source: source,
        objects: objects(e),
        detail: e,
    };
    // Serialising plain strings, numbers and vectors into memory cannot fail.
    serde_json::to_vec(&b).unwrap_or_else(|_| b"{}".to_vec())
}
