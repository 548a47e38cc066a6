//! `policy.fallback_relay`: a Postfix next-hop as in `relayhost` / `transport(5)`.
//!
//! The string is handed to Postfix unchanged (the map server answers
//! `OK nta-fallback:<nexthop>`), so it is validated strictly: anything Postfix would read
//! differently, or that could break the socketmap reply (spaces), is refused here.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::domain::DomainName;

const EXPECTED: &str = "expected a Postfix next-hop: \"[host]:port\", \"[host]\", \"host\" or \
                        \"host:port\" (brackets turn off the MX lookup; an IPv6 address is \
                        written \"[2001:db8::1]\")";

/// Checks `[host]:port`, `[host]`, `host`, `host:port`. Inside brackets the host may also
/// be an IPv4 address or an IPv6 address (optionally with Postfix's `ipv6:` prefix).
pub(crate) fn check_next_hop(s: &str) -> Result<(), String> {
    let fail = |why: String| Err(format!("{s:?}: {why}; {EXPECTED}"));
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return fail("missing ']'".into());
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return fail(format!("unexpected {after:?} after ']'")),
            },
        };
        let v6 = host
            .get(..5)
            .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
            .map_or(host, |_| &host[5..]);
        if v6.parse::<Ipv6Addr>().is_ok() || host.parse::<Ipv4Addr>().is_ok() {
            return check_port(port).or_else(fail);
        }
        (host, port)
    } else {
        match s.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (s, None),
        }
    };
    if host.contains(':') {
        return fail("an IPv6 address must be written in brackets".into());
    }
    if host.is_empty() {
        return fail("missing host".into());
    }
    if let Err(e) = DomainName::parse(host) {
        return fail(format!("host {host:?}: {e}"));
    }
    // DomainName::parse is lenient (spaces, trailing dot, Unicode); Postfix is not.
    if host != host.trim() || host.ends_with('.') || !host.is_ascii() {
        return fail(format!(
            "host {host:?}: write the plain ASCII name (no spaces, no trailing dot; \
             punycode for international names)"
        ));
    }
    check_port(port).or_else(fail)
}

fn check_port(port: Option<&str>) -> Result<(), String> {
    match port {
        None => Ok(()),
        Some(p)
            if p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0) =>
        {
            Ok(())
        }
        Some(p) => Err(format!("port {p:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for ok in [
            "relay.example.nl",
            "relay.example.nl:587",
            "[relay.example.nl]",
            "[relay.example.nl]:25",
            "[192.0.2.1]",
            "[192.0.2.1]:2525",
            "[2001:db8::1]:25",
            "[ipv6:2001:db8::1]",
        ] {
            assert_eq!(check_next_hop(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "[",
            "[]",
            "[]:25",
            "[relay.example.nl",
            "[relay.example.nl]x",
            "[relay.example.nl]:",
            "relay.example.nl:",
            "relay.example.nl:0",
            "relay.example.nl:99999",
            "relay.example.nl:smtp x",
            "2001:db8::1",
            "relay example.nl",
            " relay.example.nl",
            "relay.example.nl.",
            "smtp:relay.example.nl",
            "relay.example.nl:25:25",
            "[ipv6:192.0.2.1]",
            "relaïs.example.nl",
        ] {
            assert!(check_next_hop(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_next_hop("x:0").unwrap_err().contains("[host]:port"));
    }
}
