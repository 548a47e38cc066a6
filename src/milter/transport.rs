//! The transports through which non-sensitive mail may take the normal route.

/// Transports that deliver by SMTP to a remote host (see `message::plan::Context`).
pub const REMOTE_SMTP_TRANSPORTS: &[&str] = &[
    "smtp",
    "relay",
    crate::map::reply::TRANSPORT_DANE,
    crate::map::reply::TRANSPORT_FALLBACK,
    crate::map::reply::TRANSPORT_BOUNCE,
    crate::map::reply::TRANSPORT_DEFER,
    // The portal's LMTP service only ever carries recipients in other domains that the
    // route map sent there, like nta-bounce/nta-defer: a bypass mark sends them by SMTP.
    crate::map::reply::TRANSPORT_PORTAL,
];
