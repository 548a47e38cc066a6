//! NTA 7516 specifics: the TXT record and the DNS facts gathered about a recipient domain.

pub mod record;
