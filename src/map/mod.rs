//! The socketmap front-end (Postfix `transport_maps` / `smtp_tls_policy_maps`, Exim
//! `${readsocket}`): netstring codec, request/reply mapping, server loop.

pub mod netstring;
pub mod reply;
pub mod server;
