//! What the milter does to a message at end of data, computed without touching the MTA.
//!
//! `plan` takes the message as received and what it needs of the configuration generation
//! ([`Context`]) and returns the header deletions, added headers, new body and DKIM
//! signature to apply, or the reason the message must be deferred. Keeping this free of
//! milter I/O is what lets it be tested message by message; the milter only applies the
//! plan.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::config::{Classification, Config};
use crate::domain::DomainName;
/// Where a message comes from, as [`plan`] takes it.
pub use crate::message::classify::Direction;
use crate::message::classify::{self, Source};
use crate::message::dkim::{self, DkimSlot};
use crate::message::footer::{self, Footer, Outcome};
use crate::message::hygiene::{HEADER_CLASSIFICATION, HEADER_ROUTE, Hygiene};
use crate::message::portal_mark::{MarkKey, Marked};

/// What the plan reads of the configuration generation in force.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub config: &'a Config,
    /// RFC 8601 authserv-id (`hygiene::authserv_id`).
    pub authserv_id: &'a str,
    /// The `[[dkim]]` keys by domain, as loaded.
    pub dkim: &'a HashMap<DomainName, DkimSlot>,
    /// Transports that deliver by SMTP to a remote host: `X-NTA7516-Route: standard`
    /// becomes `FILTER smtp:` for the whole message, which would send local or virtual
    /// recipients over SMTP and bypass content filters (Postfix header_checks(5), FILTER);
    /// so it is only used when every recipient already goes to one of these.
    pub remote_transports: &'a [&'a str],
    /// The secret of `[portal] mail_key`, when a portal is configured and its key loaded:
    /// mail carrying a valid mark with it is the portal's own (`message::portal_mark`).
    pub portal_mark: Option<&'a MarkKey>,
}

/// The message as the milter collected it.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Envelope sender without angle brackets (empty for the null sender).
    pub sender: String,
    /// Header fields in order. Each value is everything after the colon **byte for byte as
    /// Postfix will write it out** (raw 8-bit bytes untouched, LF folding): with the milter
    /// option LEADING_SPACE that is the value Postfix sent; without it Postfix strips one
    /// space, which the milter puts back. DKIM signs these bytes; everything that reads text
    /// (classification, hygiene, From) uses the lossy view [`text`].
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// The body exceeded [`footer::MAX_MESSAGE_SIZE`] and was not kept whole.
    pub body_overflow: bool,
    /// The process-wide body budget was spent when the body arrived, so it was not kept:
    /// the message is deferred whatever its direction (`milter::budget`).
    pub body_over_budget: bool,
    /// `{rcpt_mailer}` of each recipient.
    pub rcpt_mailers: Vec<Option<String>>,
    /// Envelope recipients, in order.
    pub rcpts: Vec<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// (header name, 1-based index among headers of that name), highest index first per
    /// name so that deleting one never shifts the index of the next.
    pub delete: Vec<(String, i32)>,
    /// Header fields to append.
    pub add: Vec<(String, String)>,
    /// Signed header fields whose value must leave normalised so that every DKIM verifier
    /// hashes what we signed (`dkim::exact`): (name, 1-based index among headers of that
    /// name, the new value as stored in [`Received::headers`]).
    pub change: Vec<(String, i32, Vec<u8>)>,
    pub body: Option<Vec<u8>>,
    /// DKIM-Signature value, to insert at the top.
    pub dkim: Option<String>,
    /// Header fields to insert at the top (inbound: our Authentication-Results).
    pub insert_top: Vec<(String, String)>,
    /// New Subject value (inbound subject tag): (1-based index or 0 when absent, value
    /// bytes without the leading space; the original's raw bytes are kept).
    pub subject: Option<(i32, Vec<u8>)>,
    /// Put the message on hold with this reason (inbound DMARC p=quarantine, honoured).
    pub quarantine: Option<String>,
    /// Footer outcome for secure outbound mail: `Ok(parts)` or `Err(why skipped)`.
    pub footer: Option<Result<usize, String>>,
    /// (domain, selector) of the DKIM signature added.
    pub signed: Option<(String, String)>,
    pub classification: Option<(Classification, Source)>,
    /// Human-readable notes for the log (why a footer was skipped, why routing stays
    /// secure, which key signed).
    pub notes: Vec<String>,
}

/// Why a message cannot leave now. Each maps to one 4xx reply, except a property of the
/// message itself ([`PlanError::is_permanent`]), which is a 5xx.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no DKIM key is configured for own domain {0}; refusing to send unsigned")]
    DkimKeyMissing(DomainName),
    #[error("the DKIM key for {domain} cannot be used: {error}")]
    DkimKeyUnusable { domain: DomainName, error: String },
    #[error("DKIM signing failed: {0}")]
    Sign(String),
    /// The message cannot be signed as it is, and sending it again cannot change that.
    #[error("{0}")]
    Unsignable(String),
    #[error(
        "message larger than {} bytes cannot be processed",
        footer::MAX_MESSAGE_SIZE
    )]
    TooLarge,
    #[error("internal error while preparing the message: {0}")]
    Internal(String),
    #[error("too many large messages are being processed at once; try again later")]
    Busy,
    /// Mail with the portal's envelope sender but no valid portal mark: only the portal
    /// sends as that address, and letting such mail take the secure route could make the
    /// portal store and notify about its own mail in a loop.
    #[error(
        "mail from the portal's address {0} must carry a valid portal mark; only the portal sends as it"
    )]
    PortalSender(String),
}

impl PlanError {
    /// Enhanced status code (RFC 3463) for the 451 reply.
    pub fn status_code(&self) -> &'static str {
        match self {
            PlanError::DkimKeyMissing(_) | PlanError::DkimKeyUnusable { .. } => "4.7.0",
            PlanError::Sign(_) | PlanError::Internal(_) => "4.3.0",
            PlanError::TooLarge => "4.3.4",
            // RFC 3463: X.6.0, other or undefined media error (the content).
            PlanError::Unsignable(_) => "5.6.0",
            // RFC 3463 X.3.1: mail system storage exceeded (for now).
            PlanError::Busy => "4.3.1",
            // RFC 3463 X.7.1: delivery not authorized.
            PlanError::PortalSender(_) => "5.7.1",
        }
    }

    /// The message itself is at fault: a 5xx, so the sender learns at once instead of the
    /// client retrying for days.
    pub fn is_permanent(&self) -> bool {
        matches!(self, PlanError::Unsignable(_) | PlanError::PortalSender(_))
    }
}

/// The lossy UTF-8 view of a header value, for everything that reads text.
pub fn text(value: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(value)
}

/// A value the milter adds, as it will leave: Postfix writes the space after the colon
/// (without LEADING_SPACE) or the milter supplies it (with), so it is part of the bytes.
fn added_value(value: &str) -> Vec<u8> {
    format!(" {value}").into_bytes()
}

pub fn plan(g: &Context<'_>, direction: &Direction, msg: &Received) -> Result<Plan, PlanError> {
    let config = g.config;
    if msg.body_over_budget {
        return Err(PlanError::Busy);
    }
    let mut p = Plan::default();

    // Header hygiene, both directions: the client's copies of our headers and of the
    // bypass header go first; a trusted client's bypass value is read before deletion.
    let mut seen: HashMap<String, i32> = HashMap::new();
    let mut bypass_values = Vec::new();
    // (name, index among that name, value)
    let mut kept: Vec<(String, i32, Vec<u8>)> = Vec::new();
    let mut deletes = Vec::new();
    let mut marks = Vec::new();
    let mut phones = 0;
    let hygiene = Hygiene::new(config, g.authserv_id);
    for (name, value) in &msg.headers {
        let idx = seen.entry(name.to_ascii_lowercase()).or_insert(0);
        *idx += 1;
        if hygiene.is_phone(name) && direction.is_outbound() {
            // The recipient's number from a trusted client, for the portal: kept (the
            // MTA drops it from mail that leaves by SMTP; DKIM does not sign it).
            phones += 1;
            kept.push((name.clone(), *idx, value.clone()));
        } else if hygiene.removes(name, value) {
            if hygiene.is_bypass(name) {
                bypass_values.push(text(value).trim().to_string());
            }
            if hygiene.is_portal_mark(name) {
                marks.push(text(value).into_owned());
            }
            deletes.push((name.clone(), *idx));
        } else {
            kept.push((name.clone(), *idx, value.clone()));
        }
    }
    deletes.sort_by(|a, b| {
        a.0.to_ascii_lowercase()
            .cmp(&b.0.to_ascii_lowercase())
            .then(b.1.cmp(&a.1))
    });
    p.delete = deletes;
    if !direction.is_outbound() {
        if !bypass_values.is_empty() {
            p.notes.push(format!(
                "bypass header {} from an untrusted client ignored and removed",
                config.policy.bypass_header
            ));
        }
        if !marks.is_empty() {
            p.notes
                .push("portal mark from an untrusted client ignored and removed".into());
        }
        return Ok(p);
    }
    if msg.body_overflow {
        return Err(PlanError::TooLarge);
    }
    if phones > 0 {
        p.notes.push(format!(
            "{} from a trusted client kept for the portal",
            crate::message::hygiene::HEADER_PHONE
        ));
    }

    let portal_mail = portal_mail(g, msg, &kept, &marks)?;
    let (class, source) = if portal_mail {
        p.notes
            .push("the portal's own mail (valid portal mark): standard route".into());
        (Classification::Standard, Source::PortalMark)
    } else {
        if !marks.is_empty() {
            p.notes
                .push("portal mark not valid for this message: ignored and removed".into());
        }
        classify::classify(config, &msg.sender, &bypass_values)
    };
    p.add.push((
        HEADER_CLASSIFICATION.to_string(),
        class.as_str().to_string(),
    ));
    if portal_mail {
        // Pickup submissions carry no {rcpt_mailer}; the portal only writes to people
        // in other domains, the ones the route map would answer for. A recipient in an
        // own domain keeps Postfix's own routing (the route map never sends those to
        // the portal, so there is no loop either way).
        match portal_route(config, msg, g.remote_transports) {
            Ok(()) => p
                .add
                .push((HEADER_ROUTE.to_string(), "standard".to_string())),
            Err(why) => p.notes.push(format!(
                "portal mail, but {why}: keeping the per-recipient routing"
            )),
        }
    } else if class == Classification::Standard {
        match all_remote(&msg.rcpt_mailers, g.remote_transports) {
            Ok(()) => p.add.push((HEADER_ROUTE.to_string(), "standard".to_string())),
            Err(t) => p.notes.push(format!(
                "not sensitive, but recipient transport {t} is not remote SMTP: keeping the secure per-recipient routing"
            )),
        }
    }
    p.classification = Some((class, source));

    // The body as it will leave: the received one, or the footered copy. Borrowed, not
    // cloned: each copy of a 25 MB attachment is 25 MB more per message in flight.
    let mut footered: Option<Vec<u8>> = None;
    if class == Classification::Secure {
        let f = Footer {
            text: &config.footer.text,
            html: &config.footer.html,
        };
        let view: Vec<(String, String)> = kept
            .iter()
            .map(|(n, _, v)| (n.clone(), text(v).into_owned()))
            .collect();
        let outcome = footer::add_footer(&view, &msg.body, &f);
        let note = outcome.to_string();
        match outcome {
            Outcome::Added { body: b, parts, .. } => {
                p.notes.push(note);
                p.footer = Some(Ok(parts));
                footered = Some(b);
            }
            Outcome::Skipped(why) => {
                p.notes.push(note);
                p.footer = Some(Err(why.to_string()));
            }
        }
    }

    // DKIM last, over the message exactly as it will leave: kept headers + ours + body.
    let from = from_domain(kept.iter().map(|(n, _, v)| (n.as_str(), v.as_slice())));
    let slot = from.as_ref().and_then(|d| g.dkim.get(d).map(|s| (d, s)));
    match (slot, &from) {
        (Some((_, Ok(key))), _) => {
            let mut headers: Vec<(String, Vec<u8>)> = Vec::with_capacity(kept.len() + 2);
            for (name, idx, value) in kept {
                let signed = dkim::SIGNED_HEADERS
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name.trim()));
                match dkim::exact::header_value(&value).filter(|_| signed) {
                    Some(fixed) => {
                        p.notes.push(format!(
                            "{name}: control characters replaced by spaces so that DKIM verifies"
                        ));
                        p.change.push((name.clone(), idx, fixed.clone()));
                        headers.push((name, fixed));
                    }
                    None => headers.push((name, value)),
                }
            }
            headers.extend(p.add.iter().map(|(n, v)| (n.clone(), added_value(v))));
            if let Some(fixed) = dkim::exact::body(footered.as_deref().unwrap_or(&msg.body)) {
                p.notes.push(
                    "body: bare CRs and white space on the trailing blank lines removed so that DKIM verifies"
                        .into(),
                );
                footered = Some(fixed);
            }
            // The body that leaves: the replacement (footer, normalisation), else the original.
            let leaving = footered.as_deref().unwrap_or(&msg.body);
            let sig = dkim::sign(key, &headers, leaving).map_err(|e| {
                if e.is_permanent() {
                    PlanError::Unsignable(e.to_string())
                } else {
                    PlanError::Sign(e.to_string())
                }
            })?;
            p.notes.push(format!(
                "DKIM signed d={} s={}",
                key.domain(),
                key.selector()
            ));
            p.dkim = Some(sig);
            p.signed = Some((key.domain().to_string(), key.selector().to_string()));
        }
        (Some((d, Err(e))), _) => {
            return Err(PlanError::DkimKeyUnusable {
                domain: d.clone(),
                error: e.to_string(),
            });
        }
        (None, Some(d)) if config.is_own_domain(d) => {
            return Err(PlanError::DkimKeyMissing(d.clone()));
        }
        (None, _) => p.notes.push(format!(
            "not DKIM-signed: no [[dkim]] key for From domain {}",
            from.map_or("(none)".to_string(), |d| d.to_string())
        )),
    }
    p.body = footered;
    Ok(p)
}

/// Is this the portal's own mail? `Ok(false)` without a mark, or a mark that does not
/// verify (it is removed either way); `Err` for mail that uses the portal's envelope
/// sender without a valid mark.
fn portal_mail(
    g: &Context<'_>,
    msg: &Received,
    kept: &[(String, i32, Vec<u8>)],
    marks: &[String],
) -> Result<bool, PlanError> {
    let Some(portal) = &g.config.portal else {
        return Ok(false);
    };
    let field = |name: &str| {
        kept.iter()
            .find(|(n, _, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, _, v)| text(v).into_owned())
            .unwrap_or_default()
    };
    let valid = match (g.portal_mark, marks) {
        // Exactly one mark: a second copy is nobody's business but a forger's.
        (Some(key), [mark]) => key.verify(
            mark,
            &Marked {
                recipients: &msg.rcpts,
                message_id: &field("Message-ID"),
                subject: &field("Subject"),
                body: &msg.body,
            },
        ),
        _ => false,
    };
    if !valid && msg.sender.trim().eq_ignore_ascii_case(portal.from.trim()) {
        return Err(PlanError::PortalSender(portal.from.clone()));
    }
    Ok(valid)
}

/// The portal's mail takes the standard route when every recipient is in another domain
/// and, where Postfix named it, already goes to a remote SMTP transport.
fn portal_route(config: &Config, msg: &Received, remote: &[&str]) -> Result<(), String> {
    if msg.rcpts.is_empty() {
        return Err("it has no recipients".into());
    }
    for (i, rcpt) in msg.rcpts.iter().enumerate() {
        let bare = rcpt.trim().trim_start_matches('<').trim_end_matches('>');
        match crate::domain::address_domain(bare) {
            Some(d) if !config.is_own_domain(&d) => {}
            _ => return Err(format!("recipient {bare} is not in another domain")),
        }
        if let Some(Some(m)) = msg.rcpt_mailers.get(i)
            && !remote.contains(&m.as_str())
        {
            return Err(format!("recipient transport {m} is not remote SMTP"));
        }
    }
    Ok(())
}

/// `Ok(())` when every `{rcpt_mailer}` is one of `remote` (remote SMTP transports), else
/// the first that is not (or that Postfix did not tell us).
pub fn all_remote(mailers: &[Option<String>], remote: &[&str]) -> Result<(), String> {
    for m in mailers {
        match m {
            Some(m) if remote.contains(&m.as_str()) => {}
            Some(m) => return Err(m.clone()),
            None => return Err("unknown (no {rcpt_mailer} macro)".into()),
        }
    }
    if mailers.is_empty() {
        return Err("no recipients".into());
    }
    Ok(())
}

/// The domain of the (first) From address, parsed by mail-parser (from the raw bytes) so
/// that display names, comments and encoded words are handled as RFC 5322 says.
pub fn from_domain<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Option<DomainName> {
    let (_, value) = headers
        .into_iter()
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("from"))?;
    let first = from_addresses(value).into_iter().next()?;
    crate::domain::address_domain(&first)
}

/// Every address of one From field value (folded lines and raw 8-bit display names
/// allowed), parsed by mail-parser from the raw bytes.
pub(crate) fn from_addresses(value: &[u8]) -> Vec<String> {
    let mut raw = b"From:".to_vec();
    for (i, &b) in value.iter().enumerate() {
        if b == b'\n' && (i == 0 || value[i - 1] != b'\r') {
            raw.push(b'\r');
        }
        raw.push(b);
    }
    raw.extend_from_slice(b"\r\n\r\n");
    let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&raw) else {
        return Vec::new();
    };
    let Some(from) = parsed.from() else {
        return Vec::new();
    };
    from.iter()
        .map(|a| a.address().unwrap_or_default().to_string())
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod portal_tests;
