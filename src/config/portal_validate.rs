//! Validation of `[portal]` and `[portal.sms]` into [`PortalConfig`]. Like `validate`,
//! every check runs and reports before anything is assembled.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::duration::parse_duration;
use super::error::Report;
use super::portal::{
    DEFAULT_AUDIT_FILE_NAME, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_SENDMAIL, DEFAULT_SMS_SENDER,
    PortalConfig, SmsConfig, SmsProvider, StoreLocation, Submission,
};
use super::raw::{RawPortal, RawPortalSms};
use super::sections::{AuditConfig, DomainsConfig};
use super::socket::SocketSpec;
use super::validate::{parse, parse_opt, path};
use crate::domain::{AddressDomain, address_parts};

/// Shorter retention makes no sense for a patient who reads mail once a day.
pub(crate) const MIN_RETENTION: Duration = Duration::from_secs(3600);
/// A message smaller than this cannot carry a header block and a body.
pub(crate) const MIN_MAX_MESSAGE_SIZE: u64 = 64 * 1024;
/// GSM 03.38 alphanumeric originators: at most 11 characters; numeric: at most 14 digits
/// (the limits the SMS providers document).
const MAX_ALPHA_SENDER: usize = 11;
const MAX_NUMERIC_SENDER: usize = 14;

pub(crate) fn portal(
    raw: Option<&Spanned<RawPortal>>,
    domains: Option<&DomainsConfig>,
    audit: Option<&AuditConfig>,
    r: &mut Report<'_>,
) -> Option<Option<PortalConfig>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let header = raw.span();
    let raw = raw.get_ref();
    let mut required = |key: &str, v: &Option<Spanned<String>>, hint: &str| {
        let key = format!("portal.{key}");
        if v.is_none() && !r.reported(&key) {
            r.error(
                &key,
                &header,
                format!("missing (required in [portal]); {hint}"),
            );
        }
    };
    required(
        "listen",
        &raw.listen,
        "the HTTP listener, e.g. \"inet:127.0.0.1:7580\"",
    );
    required(
        "public_url",
        &raw.public_url,
        "the https:// base of every link, e.g. \"https://portaal.zkh.example\"",
    );
    required(
        "lmtp",
        &raw.lmtp,
        "the LMTP intake socket, e.g. \"inet:127.0.0.1:7524\"",
    );
    required(
        "store",
        &raw.store,
        "\"sqlite:/var/lib/nta7516-milter/portal.db\" or a postgres:// URL",
    );
    required(
        "key_file",
        &raw.key_file,
        "create one with `nta7516-milter portal keygen`",
    );
    required("from", &raw.from, "an address in one of [domains] own");
    let listen = parse_opt(r, "portal.listen", &raw.listen, str::parse::<SocketSpec>).flatten();
    let lmtp = parse_opt(r, "portal.lmtp", &raw.lmtp, str::parse::<SocketSpec>).flatten();
    if let (Some(a), Some(b), Some(v)) = (&listen, &lmtp, &raw.lmtp)
        && a == b
    {
        r.error(
            "portal.lmtp",
            &v.span(),
            format!("{b} is also portal.listen; the two need different sockets"),
        );
    }
    let public_url = parse_opt(r, "portal.public_url", &raw.public_url, public_url).flatten();
    let store = parse_opt(r, "portal.store", &raw.store, store).flatten();
    let key_file = parse_opt(r, "portal.key_file", &raw.key_file, path).flatten();
    let retention = parse(r, "portal.retention", &raw.retention, |s| {
        let d = parse_duration(s)?;
        if d < MIN_RETENTION {
            return Err(format!(
                "{s:?} is too short; at least \"1h\" (default \"30d\")"
            ));
        }
        Ok(d)
    });
    let from = raw
        .from
        .as_ref()
        .and_then(|v| parse(r, "portal.from", v, |s| from_address(s, domains)));
    let number_wait = parse(r, "portal.number_wait", &raw.number_wait, |s| {
        if s == "off" {
            return Ok(None);
        }
        let d = parse_duration(s)?;
        if d < MIN_RETENTION {
            return Err(format!(
                "{s:?} is too short; at least \"1h\", or \"off\" (default \"3d\")"
            ));
        }
        Ok(Some(d))
    });
    let submit = match (&raw.submit, &raw.sendmail) {
        (Some(v), Some(_)) => {
            r.error(
                "portal.submit",
                &v.span(),
                "set either submit (SMTP to the local MTA) or sendmail, not both",
            );
            None
        }
        (Some(v), None) => {
            parse(r, "portal.submit", v, submit_address).map(|addr| Submission::Smtp {
                addr,
                login: raw.submit_auth.as_ref().is_some_and(|a| *a.get_ref()),
            })
        }
        (None, Some(v)) => parse(r, "portal.sendmail", v, path).map(Submission::Sendmail),
        (None, None) => Some(Submission::Sendmail(PathBuf::from(DEFAULT_SENDMAIL))),
    };
    if let (Some(a), None) = (&raw.submit_auth, &raw.submit) {
        r.error(
            "portal.submit_auth",
            &a.span(),
            "submit_auth is a login on the SMTP submission: set submit as well",
        );
    }
    let organisation = match &raw.organisation {
        Some(v) => parse(r, "portal.organisation", v, organisation),
        None => from
            .as_deref()
            .and_then(|f| f.rsplit_once('@'))
            .map(|(_, d)| d.to_string()),
    };
    let max_message_size = match &raw.max_message_size {
        None => Some(DEFAULT_MAX_MESSAGE_SIZE),
        Some(v) => match u64::try_from(*v.get_ref()) {
            Ok(n) if n >= MIN_MAX_MESSAGE_SIZE => Some(n),
            _ => {
                r.error(
                    "portal.max_message_size",
                    &v.span(),
                    format!(
                        "{} is too small; at least {MIN_MAX_MESSAGE_SIZE} bytes",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let audit_file = match &raw.audit_file {
        Some(v) => parse(r, "portal.audit_file", v, path).map(Some),
        None => Some(
            audit
                .and_then(|a| a.file.as_ref())
                .map(|p| default_audit_file(p)),
        ),
    };
    if let (Some(Some(mine)), Some(a), Some(v)) = (&audit_file, audit, &raw.audit_file)
        && a.file.as_ref() == Some(mine)
    {
        r.error(
            "portal.audit_file",
            &v.span(),
            "is also [audit] file; the portal keeps its own hash chain (two processes must \
             never append to one file)",
        );
    }
    let mail_key = parse(r, "portal.mail_key", &raw.mail_key, path);
    let branding = super::portal_branding::branding(raw.branding.as_ref(), from.as_deref(), r);
    let sms = match &raw.sms {
        Some(s) => sms(s, r),
        None => {
            if !r.reported("portal.sms") {
                r.error(
                    "portal.sms",
                    &header,
                    "missing [portal.sms] section; the one-time code goes by SMS \
                     (provider, url, token_file, sender)",
                );
            }
            None
        }
    };
    Some(Some(PortalConfig {
        listen: listen?,
        public_url: public_url?,
        lmtp: lmtp?,
        store: store?,
        key_file: key_file?,
        retention: retention?,
        from: from?,
        submit: submit?,
        organisation: organisation?,
        max_message_size: max_message_size?,
        audit_file: audit_file?,
        mail_key: mail_key?,
        branding: branding?,
        notify_opened: raw.notify_opened,
        number_wait: number_wait?,
        sms: sms?,
    }))
}

/// `submit`: `inet:` and a loopback IP address with a port. Loopback only: the mail goes
/// in plain SMTP, trusted by the MTA for its client address (`[outbound] networks`,
/// Postfix's `mynetworks`) or, with `submit_auth`, for the portal's login (Exim); a
/// password in clear never crosses a network.
fn submit_address(s: &str) -> Result<std::net::SocketAddr, String> {
    let hint = "expected \"inet:127.0.0.1:25\" (the local MTA's SMTP listener on a loopback \
                address)";
    match s.parse::<SocketSpec>() {
        Ok(SocketSpec::Inet { host, port }) => match host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_loopback() => Ok(std::net::SocketAddr::new(ip, port)),
            Ok(_) => Err(format!("{s:?} is not a loopback address and port; {hint}")),
            Err(_) => Err(format!("{s:?}: give an IP address, not a name; {hint}")),
        },
        Ok(SocketSpec::Unix(_)) => Err(format!("{s:?}: unix sockets are not supported; {hint}")),
        Err(_) => Err(format!("{s:?} is not usable; {hint}")),
    }
}

fn default_audit_file(milter_log: &std::path::Path) -> PathBuf {
    milter_log
        .parent()
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
        .join(DEFAULT_AUDIT_FILE_NAME)
}

/// `https://host[:port][/path]`, no query, fragment or user info; `http://` only for
/// loopback (a test, or a gateway on the same host). The trailing `/` is dropped.
pub(crate) fn public_url(s: &str) -> Result<String, String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("{s:?} is not a URL; expected \"https://portaal.example.nl\""))?;
    if s.contains(['?', '#', ' ', '\0']) || rest.is_empty() {
        return Err(format!(
            "{s:?}: a base URL has no query, fragment or spaces"
        ));
    }
    let host_port = rest.split('/').next().unwrap_or("");
    if host_port.contains('@') {
        return Err(format!("{s:?}: no user or password in the URL"));
    }
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
    };
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match scheme {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{s:?}: links must use https:// (http:// only for loopback: 127.0.0.0/8, ::1, localhost)"
            ));
        }
        _ => return Err(format!("{s:?}: expected an https:// URL")),
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn store(s: &str) -> Result<StoreLocation, String> {
    if let Some(p) = s.strip_prefix("sqlite:") {
        return path(p)
            .map(StoreLocation::Sqlite)
            .map_err(|e| format!("sqlite: {e}"));
    }
    if (s.starts_with("postgres://") || s.starts_with("postgresql://")) && s.len() > 13 {
        return Ok(StoreLocation::Postgres(s.to_string()));
    }
    Err(
        "expected \"sqlite:/absolute/path.db\" or \"postgres://user@host/db\" (the URL as \
         written is not repeated here: it may hold a password)"
            .into(),
    )
}

fn from_address(s: &str, domains: Option<&DomainsConfig>) -> Result<String, String> {
    let AddressDomain::Domain(d) = address_parts(s) else {
        return Err(format!(
            "{s:?} is not an address like \"portaal@zkh.example\""
        ));
    };
    if s.contains(['<', '>', ' ']) {
        return Err(format!(
            "{s:?}: write the bare address, e.g. \"portaal@zkh.example\""
        ));
    }
    if let Some(domains) = domains
        && !domains.own.iter().any(|own| d.is_within(own))
    {
        return Err(format!(
            "{s:?} is not in [domains] own; notifications must come from an own domain so \
             that they are DKIM-signed and DMARC-aligned"
        ));
    }
    Ok(s.to_string())
}

fn organisation(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() || t.len() > 200 || t.chars().any(char::is_control) {
        return Err("1 to 200 characters on one line".into());
    }
    Ok(t.to_string())
}

fn sms(raw: &Spanned<RawPortalSms>, r: &mut Report<'_>) -> Option<SmsConfig> {
    let header: Range<usize> = raw.span();
    let raw = raw.get_ref();
    let provider = match &raw.provider {
        Some(v) => parse(r, "portal.sms.provider", v, str::parse::<SmsProvider>),
        None => {
            if !r.reported("portal.sms.provider") {
                r.error(
                    "portal.sms.provider",
                    &header,
                    "missing; \"webhook\", \"cm\", \"spryng\" or \"messagebird\"",
                );
            }
            None
        }
    };
    let url = match (&raw.url, provider) {
        (Some(v), _) => parse(r, "portal.sms.url", v, sms_url),
        (None, Some(p)) => match p.default_url() {
            Some(u) => Some(u.to_string()),
            None => {
                r.error(
                    "portal.sms.url",
                    &header,
                    "missing; required for provider \"webhook\" (the URL the code is POSTed to)",
                );
                None
            }
        },
        (None, None) => None,
    };
    let token_file = match &raw.token_file {
        Some(v) => parse(r, "portal.sms.token_file", v, path),
        None => {
            if !r.reported("portal.sms.token_file") {
                r.error(
                    "portal.sms.token_file",
                    &header,
                    "missing; the file holding the provider's API token",
                );
            }
            None
        }
    };
    let sender = match &raw.sender {
        Some(v) => parse(r, "portal.sms.sender", v, sms_sender),
        None => Some(DEFAULT_SMS_SENDER.to_string()),
    };
    Some(SmsConfig {
        provider: provider?,
        url: url?,
        token_file: token_file?,
        sender: sender?,
    })
}

/// The provider endpoint: https, or http on loopback (a local fake or gateway).
fn sms_url(s: &str) -> Result<String, String> {
    let u = public_url(s)?;
    // Query strings are refused by `public_url`; an endpoint keeps its path as written.
    Ok(if s.ends_with('/') { s.to_string() } else { u })
}

fn sms_sender(s: &str) -> Result<String, String> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let alpha = !s.is_empty()
        && s.len() <= MAX_ALPHA_SENDER
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ');
    if (numeric && digits.len() <= MAX_NUMERIC_SENDER) || alpha {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?}: at most {MAX_ALPHA_SENDER} letters/digits, or a number of at most \
             {MAX_NUMERIC_SENDER} digits"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            public_url("https://p.example.nl/").unwrap(),
            "https://p.example.nl"
        );
        assert_eq!(
            public_url("https://p.example.nl:8443/portaal").unwrap(),
            "https://p.example.nl:8443/portaal"
        );
        assert!(public_url("http://127.0.0.1:8080").is_ok());
        assert!(public_url("http://localhost").is_ok());
        assert!(public_url("http://127.0.10.1:7580").is_ok());
        assert!(public_url("http://128.0.0.1").is_err());
        assert!(public_url("http://[::1]:80").is_ok());
        for bad in [
            "",
            "p.example.nl",
            "http://p.example.nl",
            "ftp://p.example.nl",
            "https://",
            "https://u:pw@p.example.nl",
            "https://p.example.nl/?a=b",
            "https://p.example.nl/#x",
        ] {
            assert!(public_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn stores_and_senders() {
        assert_eq!(
            store("sqlite:/var/lib/p.db"),
            Ok(StoreLocation::Sqlite("/var/lib/p.db".into()))
        );
        assert!(store("sqlite:p.db").is_err());
        assert!(store("postgres://u@h/db").is_ok());
        let e = store("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!(sms_sender("Ziekenhuis").is_ok());
        assert!(sms_sender("+31612345678").is_ok());
        assert!(sms_sender("Ziekenhuis12").is_err());
        assert!(sms_sender("").is_err());
    }
}
