//! Message changes on outbound mail: the MIME-aware footer and the DKIM signature.

pub mod dkim;
pub mod footer;
pub mod inbound;
pub mod rewrite;
