//! Messages: direction and classification, header hygiene, the MIME-aware footer, the DKIM
//! signature, the inbound verdict and the whole-message rewrite of the Exim filter. Below
//! both front-ends (milter and filter), which share every rule here.

pub(crate) mod classify;
pub mod dkim;
pub mod footer;
pub mod hygiene;
pub mod inbound;
pub mod ownership;
pub mod plan;
pub mod portal_mark;
pub mod rewrite;
