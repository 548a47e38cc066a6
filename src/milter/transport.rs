//! The transports through which non-sensitive mail may take the normal route.

/// Transports that deliver by SMTP to a remote host (see `message::plan::Context`).
pub const REMOTE_SMTP_TRANSPORTS: &[&str] = &[
    "smtp",
    "relay",
    crate::mta::TRANSPORT_DANE,
    crate::mta::TRANSPORT_FALLBACK,
    crate::mta::TRANSPORT_BOUNCE,
    crate::mta::TRANSPORT_DEFER,
    // The portal's LMTP service only ever carries recipients in other domains that the
    // route map sent there, like nta-bounce/nta-defer: a bypass mark sends them by SMTP.
    crate::mta::TRANSPORT_PORTAL,
];
