//! Which recipients' transports let non-sensitive mail take the normal route.

/// Transports that deliver by SMTP to a remote host. `X-NTA7516-Route: standard` becomes
/// `FILTER smtp:` for the whole message, which would send local or virtual recipients
/// over SMTP and bypass content filters (Postfix header_checks(5), FILTER); so it is only used when
/// every recipient already goes to one of these.
pub const REMOTE_SMTP_TRANSPORTS: &[&str] = &[
    "smtp",
    "relay",
    crate::map::reply::TRANSPORT_DANE,
    crate::map::reply::TRANSPORT_FALLBACK,
    crate::map::reply::TRANSPORT_BOUNCE,
    crate::map::reply::TRANSPORT_DEFER,
];

/// `Ok(())` when every `{rcpt_mailer}` is a remote SMTP transport, else the first that
/// is not (or that Postfix did not tell us).
pub fn all_remote(mailers: &[Option<String>]) -> Result<(), String> {
    for m in mailers {
        match m {
            Some(m) if REMOTE_SMTP_TRANSPORTS.contains(&m.as_str()) => {}
            Some(m) => return Err(m.clone()),
            None => return Err("unknown (no {rcpt_mailer} macro)".into()),
        }
    }
    if mailers.is_empty() {
        return Err("no recipients".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_transports_only() {
        let m = |v: &[Option<&str>]| v.iter().map(|x| x.map(String::from)).collect::<Vec<_>>();
        assert!(all_remote(&m(&[Some("smtp"), Some("nta-dane")])).is_ok());
        assert_eq!(
            all_remote(&m(&[Some("smtp"), Some("local")])),
            Err("local".into())
        );
        assert!(all_remote(&m(&[None])).is_err());
        assert!(all_remote(&[]).is_err());
    }
}
