//! SMS providers that carry the one-time code: `webhook`, `cm`, `spryng`, `messagebird`.
//!
//! Each provider module builds its documented request and reads its documented answer; this
//! module owns what they share: the API token (read once from `token_file`, never logged or
//! shown in `Debug`), one HTTP client with bounded timeouts and no redirects (a redirect
//! would carry the token to a host nobody configured), and a bounded response read. Every
//! failure is one [`SmsError::Provider`]: the caller audits it as a provider error and tells
//! the recipient to try again later.

mod cm;
mod messagebird;
mod spryng;
mod text;
mod webhook;

use std::fmt;
use std::time::Duration;

use crate::config::portal::{SmsConfig, SmsProvider};
use crate::portal::phone::Phone;

pub use text::{CODE_DIGITS, code_text};

/// Connecting to the provider: it is on the internet, but a few seconds is plenty.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole request, answer included: the recipient is waiting on the page.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest answer read: the documented answers are a few hundred bytes.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Largest token file: API keys are tens of bytes; anything bigger is the wrong file.
pub const MAX_TOKEN_BYTES: u64 = 4096;

/// The documented endpoint of a provider, used when `[portal.sms] url` is not set
/// (`webhook` has none: its URL is required).
pub fn default_url(provider: SmsProvider) -> Option<&'static str> {
    match provider {
        SmsProvider::Webhook => None,
        SmsProvider::Cm => Some(cm::DEFAULT_URL),
        SmsProvider::Spryng => Some(spryng::DEFAULT_URL),
        SmsProvider::MessageBird => Some(messagebird::DEFAULT_URL),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider refused or could not be reached; the recipient is told "try again later"
    /// and the failure is audited with this text (never the token).
    #[error("SMS provider error: {0}")]
    Provider(String),
}

impl SmsError {
    fn provider(what: impl Into<String>) -> Self {
        SmsError::Provider(what.into())
    }
}

/// `e` and its sources: reqwest's own text ("builder error") does not say what failed
/// (e.g. the system's CA certificates that the TLS verifier loads). Only for errors
/// without a URL: a request error's text may carry the URL.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    // bounded: an error chain is short, but nothing here trusts that
    for _ in 0..8 {
        let Some(cause) = next else { break };
        out.push_str(": ");
        out.push_str(&cause.to_string());
        next = cause.source();
    }
    out
}

/// The API token: kept out of `Debug` and every message.
#[derive(Clone)]
struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// One configured provider.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    pub config: SmsConfig,
    token: Token,
    client: reqwest::Client,
    /// Why the client trusts no certificate authority (the system has none), if so.
    no_roots: Option<String>,
}

/// Appended to a failed request's text when the system has no CA certificates.
pub const NO_ROOTS_HINT: &str =
    "no CA certificates on this system: install them (Debian: ca-certificates)";

/// One code to send, as every provider module gets it.
struct Sms<'a> {
    token: &'a str,
    sender: &'a str,
    to: &'a Phone,
    text: &'a str,
    reference: &'a str,
}

#[cfg(test)]
impl<'a> Sms<'a> {
    /// A code from sender `Zkh`, for the providers' request tests.
    fn test(token: &'a str, to: &'a Phone, text: &'a str, reference: &'a str) -> Sms<'a> {
        Sms {
            token,
            sender: "Zkh",
            to,
            text,
            reference,
        }
    }
}

/// One request as a provider module describes it.
struct Outgoing {
    /// `Authorization` header value (marked sensitive so no log shows it).
    authorization: Option<String>,
    /// Extra header (CM's product token header), also sensitive.
    extra: Option<(&'static str, String)>,
    body: serde_json::Value,
}

impl Outgoing {
    /// `body` with `Authorization: <scheme> <token>`.
    fn authorized(scheme: &str, token: &str, body: serde_json::Value) -> Outgoing {
        Outgoing {
            authorization: Some(format!("{scheme} {token}")),
            extra: None,
            body,
        }
    }

    /// `body` with the token in its own header `name` instead of `Authorization`.
    fn token_header(name: &'static str, token: &str, body: serde_json::Value) -> Outgoing {
        Outgoing {
            authorization: None,
            extra: Some((name, token.to_string())),
            body,
        }
    }
}

impl SmsGateway {
    /// Reads the token from `config.token_file` (surrounding white space, such as the
    /// file's final newline, removed) and builds the client. Fails when the file is
    /// unreadable, empty or too large, naming the file but never showing its content.
    pub fn new(config: SmsConfig) -> Result<SmsGateway, SmsError> {
        let token = read_token(&config.token_file)?;
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("nta7516-milter/", env!("CARGO_PKG_VERSION")))
        };
        // Without the system's CA certificates (a minimal install) the platform verifier
        // refuses to be built. Build a client that trusts nobody instead: every https
        // request then fails with NO_ROOTS_HINT, and the portal's pages that need no code
        // (the number and revoke links, the accessibility statement) still work.
        let (client, no_roots) = match builder().build() {
            Ok(c) => (c, None),
            Err(e) => {
                let why = with_causes(&e);
                let c = builder()
                    .tls_certs_only(std::iter::empty())
                    .build()
                    .map_err(|e2| {
                        SmsError::provider(format!("HTTP client: {why}; {}", with_causes(&e2)))
                    })?;
                (c, Some(why))
            }
        };
        Ok(SmsGateway {
            config,
            token: Token(token),
            client,
            no_roots,
        })
    }

    /// Set when the client trusts no certificate authority: what the platform verifier
    /// said. The caller logs it at ERROR; https providers cannot be reached then.
    pub fn no_roots(&self) -> Option<&str> {
        self.no_roots.as_deref()
    }

    /// Sends `text` to `to`; returns the provider's reference for the audit trail (its
    /// message id when it gives one, else `reference`).
    pub async fn send(&self, to: &Phone, text: &str, reference: &str) -> Result<String, SmsError> {
        let c = &self.config;
        let sms = Sms {
            token: self.token.0.as_str(),
            sender: &c.sender,
            to,
            text,
            reference,
        };
        let out = match c.provider {
            SmsProvider::Webhook => webhook::request(&sms),
            SmsProvider::Cm => cm::request(&sms),
            SmsProvider::Spryng => spryng::request(&sms),
            SmsProvider::MessageBird => messagebird::request(&sms)?,
        };
        let (status, body) = self.post(out).await?;
        match c.provider {
            SmsProvider::Webhook => webhook::response(status, &body, reference),
            SmsProvider::Cm => cm::response(status, &body, reference),
            SmsProvider::Spryng => spryng::response(status, &body, reference),
            SmsProvider::MessageBird => messagebird::response(status, &body, reference),
        }
    }

    /// POSTs the JSON body; returns the status and at most [`MAX_RESPONSE_BYTES`] of the
    /// answer. Transport errors are reported without the URL's query or the token.
    async fn post(&self, out: Outgoing) -> Result<(u16, Vec<u8>), SmsError> {
        use reqwest::header::{AUTHORIZATION, HeaderValue};
        let sensitive = |v: String| -> Result<HeaderValue, SmsError> {
            let mut v = HeaderValue::from_str(&v)
                .map_err(|_| SmsError::provider("the API token is not a valid header value"))?;
            v.set_sensitive(true);
            Ok(v)
        };
        let mut req = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&out.body);
        if let Some(a) = out.authorization {
            req = req.header(AUTHORIZATION, sensitive(a)?);
        }
        if let Some((name, value)) = out.extra {
            req = req.header(name, sensitive(value)?);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| transport_error(&e, self.no_roots.is_some()))?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| transport_error(&e, self.no_roots.is_some()))?
        {
            let room = MAX_RESPONSE_BYTES - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_RESPONSE_BYTES {
                break;
            }
        }
        Ok((status, body))
    }
}

/// What went wrong on the way, without the URL (it may carry credentials in its query).
fn transport_error(e: &reqwest::Error, no_roots: bool) -> SmsError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    };
    if no_roots {
        return SmsError::provider(format!("{what} ({NO_ROOTS_HINT})"));
    }
    SmsError::provider(what)
}

fn read_token(path: &std::path::Path) -> Result<String, SmsError> {
    use std::io::Read;
    let shown = path.display();
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| SmsError::provider(format!("token_file {shown}: {e}")))?;
    if bytes.len() as u64 > MAX_TOKEN_BYTES {
        return Err(SmsError::provider(format!(
            "token_file {shown}: larger than {MAX_TOKEN_BYTES} bytes; is this the token?"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| SmsError::provider(format!("token_file {shown}: not UTF-8 text")))?;
    let token = text.trim();
    if token.is_empty() || token.chars().any(|c| c.is_control()) {
        return Err(SmsError::provider(format!(
            "token_file {shown}: empty, or more than one line"
        )));
    }
    Ok(token.to_string())
}

/// HTTP 2xx.
fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// The answer as JSON, or a provider error naming the status (never the answer's text,
/// which may echo the number).
fn json(status: u16, body: &[u8]) -> Result<serde_json::Value, SmsError> {
    serde_json::from_slice(body)
        .map_err(|_| SmsError::provider(format!("HTTP {status} with an answer that is not JSON")))
}

/// A string field for the audit trail: printable ASCII, bounded.
fn reference_of(v: Option<&serde_json::Value>) -> Option<String> {
    let s = match v? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let s = crate::mta::sanitize(&s, 128);
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_read_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "s3cr3t-t0ken\n").unwrap();
        let g = SmsGateway::new(SmsConfig {
            provider: SmsProvider::Webhook,
            url: "http://127.0.0.1:9/".into(),
            token_file: p.clone(),
            sender: "Zkh".into(),
        })
        .unwrap();
        assert_eq!(g.token.0, "s3cr3t-t0ken");
        let debug = format!("{g:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");

        for bad in ["", "\n \n", "a\nb"] {
            std::fs::write(&p, bad).unwrap();
            let e = read_token(&p).unwrap_err().to_string();
            assert!(e.contains("empty, or more than one line"), "{bad:?}: {e}");
        }
        std::fs::write(&p, "x".repeat(MAX_TOKEN_BYTES as usize + 1)).unwrap();
        assert!(read_token(&p).is_err());
        let e = read_token(&dir.path().join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }

    #[test]
    fn documented_default_endpoints() {
        assert_eq!(default_url(SmsProvider::Webhook), None);
        assert_eq!(
            default_url(SmsProvider::Cm),
            Some("https://gw.messaging.cm.com/v1.0/message")
        );
        assert_eq!(
            default_url(SmsProvider::Spryng),
            Some("https://rest.spryngsms.com/v1/messages")
        );
        assert_eq!(
            default_url(SmsProvider::MessageBird),
            Some("https://rest.messagebird.com/messages")
        );
    }

    #[test]
    fn limits() {
        assert_eq!(MAX_RESPONSE_BYTES, 65_536);
        assert!(CONNECT_TIMEOUT < REQUEST_TIMEOUT);
        assert!(REQUEST_TIMEOUT <= Duration::from_secs(30));
    }
}
