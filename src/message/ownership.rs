//! Sender ownership (NTA 7516 6.1.5, confirmation of origin): with `[outbound]
//! require_own_from`, outbound mail must name only our own domains in its From header.
//!
//! The From header is what the recipient reads as the author and what DMARC aligns to;
//! a trusted client (an application on an outbound network, a logged-in user whose
//! envelope sender Postfix already ties to the login with `reject_sender_login_mismatch`)
//! could otherwise send in the name of any organisation, and we would sign and deliver
//! it as ours. Every address of every From field counts (RFC 5322 3.6.2 allows a
//! mailbox list; a second From field is malformed, but a recipient may show either).

use std::fmt;

use crate::config::Config;

/// Why the From header does not show an own sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotOwn {
    /// No From field, or none with an address (a group such as `undisclosed:;`).
    NoAddress,
    /// These From domains (lower-case; `"?"` for an address without a usable domain)
    /// are outside `[domains] own`.
    Foreign(Vec<String>),
}

impl NotOwn {
    /// The domains for the audit trail (empty for [`NotOwn::NoAddress`]).
    pub fn domains(&self) -> Vec<String> {
        match self {
            NotOwn::NoAddress => Vec::new(),
            NotOwn::Foreign(d) => d.clone(),
        }
    }
}

impl fmt::Display for NotOwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotOwn::NoAddress => f.write_str(
                "the From header has no sender address; outbound mail must name its sender (sender ownership, NTA 7516 6.1.5)",
            ),
            NotOwn::Foreign(d) => write!(
                f,
                "the From header domain {} is not one of our own domains; send only in the name of our own domains (sender ownership, NTA 7516 6.1.5)",
                d.join(", ")
            ),
        }
    }
}

/// Checks the From fields among `headers` (name, raw value as the MTA sent it).
pub fn check_from<'a>(
    config: &Config,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), NotOwn> {
    let mut any = false;
    let mut foreign = Vec::new();
    for (_, value) in headers
        .into_iter()
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case("from"))
    {
        for address in super::plan::from_addresses(value) {
            any = true;
            match crate::domain::address_domain(&address) {
                Some(d) if config.is_own_domain(&d) => {}
                Some(d) => foreign.push(d.as_str().to_string()),
                None => foreign.push("?".to_string()),
            }
        }
    }
    if !any {
        return Err(NotOwn::NoAddress);
    }
    if foreign.is_empty() {
        return Ok(());
    }
    foreign.dedup();
    Err(NotOwn::Foreign(foreign))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let dkim = "[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s\"\nkey = \"/k.pem\"\n";
        Config::from_toml_str(
            &format!(
                "[domains]\nown = [\"zkh.test\"]\n[outbound]\nrequire_own_from = true\n{dkim}"
            ),
            "t",
        )
        .unwrap()
    }

    fn check(from: &[&str]) -> Result<(), NotOwn> {
        let headers: Vec<(&str, &[u8])> = from
            .iter()
            .map(|v| ("From", v.as_bytes()))
            .chain([("Subject", &b"x"[..])])
            .collect();
        check_from(&config(), headers)
    }

    #[test]
    fn own_domains_and_subdomains_pass() {
        assert_eq!(check(&["Jan <jan@zkh.test>"]), Ok(()));
        assert_eq!(check(&[" jan@Lab.ZKH.test"]), Ok(()));
        assert_eq!(check(&["a@zkh.test, \"B\" <b@poli.zkh.test>"]), Ok(()));
        assert_eq!(check(&["=?utf-8?q?J=C3=A1n?= <jan@zkh.test>"]), Ok(()));
    }

    #[test]
    fn foreign_or_missing_senders_are_named() {
        assert_eq!(
            check(&["Jan <jan@extern.test>"]),
            Err(NotOwn::Foreign(vec!["extern.test".into()]))
        );
        // A display name that looks like an own address does not count.
        assert_eq!(
            check(&["\"jan@zkh.test\" <boef@extern.test>"]),
            Err(NotOwn::Foreign(vec!["extern.test".into()]))
        );
        // One foreign address in a list, or a second From field, is enough.
        assert_eq!(
            check(&["a@zkh.test, b@extern.test"]),
            Err(NotOwn::Foreign(vec!["extern.test".into()]))
        );
        assert_eq!(
            check(&["a@zkh.test", "b@zkh.test.extern.test"]),
            Err(NotOwn::Foreign(vec!["zkh.test.extern.test".into()]))
        );
        assert_eq!(check(&[]), Err(NotOwn::NoAddress));
        assert_eq!(check(&["undisclosed-recipients:;"]), Err(NotOwn::NoAddress));
        assert_eq!(
            check(&["postmaster"]),
            Err(NotOwn::Foreign(vec!["?".into()]))
        );
        let text = NotOwn::Foreign(vec!["extern.test".into()]).to_string();
        assert!(
            text.contains("extern.test") && text.contains("6.1.5"),
            "{text}"
        );
    }
}
