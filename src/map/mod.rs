//! The socketmap front-end (Postfix `transport_maps` / `smtp_tls_policy_maps`, Exim
//! `${readsocket}`).

pub mod netstring;
