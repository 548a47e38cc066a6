//! The portal's database. Placeholder module so the web side's tables compile on their
//! own; the message store proper lives beside it.

pub mod auth;
