//! The eDelivery portal (`nta7516-milter portal`): the secure alternative route of NTA 7516
//! for recipients who are not NTA 7516 parties, very often the patient.
//!
//! Its own process, the only part that faces the internet. Postfix delivers secure mail for
//! non-compliant recipients over LMTP (RFC 2033); the portal stores it encrypted, mails the
//! recipient a content-free notification, and after a one-time SMS code shows the message.
//!
//! Layout (each a front-end or a layer below them; dependencies point down):
//! - `phone`: the recipient's mobile number (E.164), parsed once.
//! - `notice`: the notification mail and its submission through the MTA's `sendmail`.
//! - `sms`: the SMS providers that carry the one-time code.
//! - `tag`: the `[sms:+316…]` subject tag that supplies a number without a trusted header.
//! - `crypto`: the master key, per-message keys, chunked AES-256-GCM.
//! - `store`: SQLite / PostgreSQL, encrypted messages and recipients; `store::auth`:
//!   one-time codes, their limits, and sessions (the web side's tables).
//! - `web`: the pages behind the link (code, message, downloads).
//! - `lock_notice`: the mail that tells the sender when a recipient got locked out.
//! - `receipt`: the sender's receipt with the revoke link, the withdrawal behind it, the
//!   optional first-opened notice.
//! - `reply`: a recipient's reply through the page, to the original sender.
//! - `number`: a recipient without a number: the sender is asked, or told it was not
//!   delivered.
//! - `lmtp`, `intake`: the LMTP server and what happens to one arriving message.
//! - `retention`: the periodic job (expiry, notification retries, stale intakes).
//! - `run`: the `portal` subcommand's top level.

pub mod crypto;
pub mod intake;
pub mod lmtp;
pub mod lock_notice;
pub mod notice;
pub mod notice_text;
pub mod number;
pub mod phone;
pub mod receipt;
pub mod reply;
pub mod retention;
pub mod run;
pub mod sms;
pub mod store;
pub mod submit;
pub mod tag;
pub mod web;
