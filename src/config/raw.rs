//! The TOML file as written: serde structs that mirror the sections and keys one to one.
//!
//! These structs are the single source of truth for key names (`deny_unknown_fields`) and
//! for the embedded defaults (the `Default` impls below): `Config::embedded_defaults()` is
//! these defaults run through the same validation as a file, and a unit test pins
//! `config/config.toml` to them. Values keep their [`Spanned`] byte ranges so that the
//! validation step can name the line of each problem. Meaning (enums, durations, sockets)
//! is checked in `validate`, not here, so that one bad value never hides the others.

use serde::Deserialize;
use toml::Spanned;

/// A value that did not come from the file. Its empty span `0..0` has no line number.
pub(crate) fn unspanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}

type Str = Spanned<String>;
type StrList = Spanned<Vec<Spanned<String>>>;

fn strs(items: &[&str]) -> StrList {
    unspanned(items.iter().map(|s| unspanned(s.to_string())).collect())
}

pub(crate) const DEFAULT_MILTER: &str = "inet:127.0.0.1:7516";
pub(crate) const DEFAULT_MAP: &str = "inet:127.0.0.1:7517";
/// Owner and group read/write: Postfix (in the socket's group) connects, nobody else.
pub(crate) const DEFAULT_SOCKET_MODE: &str = "0660";
pub(crate) const DEFAULT_DNS_TIMEOUT: &str = "5s";
/// Local `sendmail` submissions reach `non_smtpd_milters` with client address 127.0.0.1, so
/// loopback must count as outbound for locally generated mail to be classified and signed.
pub(crate) const DEFAULT_OUTBOUND_NETWORKS: &[&str] = &["127.0.0.1/32", "::1/128"];
pub(crate) const DEFAULT_CLASSIFICATION: &str = "secure";
pub(crate) const DEFAULT_BYPASS_HEADER: &str = "X-NTA7516-Bypass";
/// `bounce` works without a relay, tells the sender at once and never delivers insecurely.
pub(crate) const DEFAULT_NON_COMPLIANT: &str = "bounce";
pub(crate) const DEFAULT_FOOTER_TEXT: &str = "\
Dit bericht is beveiligd verzonden volgens NTA 7516 (veilige e-mail in de zorg).
This message was sent securely in accordance with NTA 7516 (secure e-mail in Dutch healthcare).
";
pub(crate) const DEFAULT_FOOTER_HTML: &str = "\
<div class=\"nta7516-footer\" style=\"font-size:small;color:#555555\"><p>\
Dit bericht is beveiligd verzonden volgens NTA 7516 (veilige e-mail in de zorg).<br>\
This message was sent securely in accordance with NTA 7516 (secure e-mail in Dutch healthcare).\
</p></div>
";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    pub server: RawServer,
    pub dns: RawDns,
    pub domains: RawDomains,
    pub outbound: RawOutbound,
    pub policy: RawPolicy,
    pub dkim: Vec<Spanned<RawDkim>>,
    pub footer: RawFooter,
    pub audit: RawAudit,
    pub inbound: RawInbound,
    /// `[portal]`: absent means no portal; when present, its required keys are checked
    /// in `portal_validate` (with the section's line).
    pub portal: Option<Spanned<RawPortal>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    pub milter: Str,
    pub map: Str,
    pub socket_owner: Option<Str>,
    pub socket_group: Option<Str>,
    pub socket_mode: Str,
    pub dry_run: Spanned<bool>,
    /// Off (absent) by default: a monitoring listener is opt-in.
    pub metrics: Option<Str>,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            milter: unspanned(DEFAULT_MILTER.into()),
            map: unspanned(DEFAULT_MAP.into()),
            socket_owner: None,
            socket_group: None,
            socket_mode: unspanned(DEFAULT_SOCKET_MODE.into()),
            dry_run: unspanned(false),
            metrics: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDns {
    pub nameservers: StrList,
    pub trust_anchor_file: Option<Str>,
    pub timeout: Str,
}

impl Default for RawDns {
    fn default() -> Self {
        Self {
            nameservers: strs(&[]),
            trust_anchor_file: None,
            timeout: unspanned(DEFAULT_DNS_TIMEOUT.into()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDomains {
    pub own: StrList,
}

impl Default for RawDomains {
    fn default() -> Self {
        Self { own: strs(&[]) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawOutbound {
    pub networks: StrList,
    pub require_own_from: Spanned<bool>,
}

impl Default for RawOutbound {
    fn default() -> Self {
        Self {
            networks: strs(DEFAULT_OUTBOUND_NETWORKS),
            // Off: the defaults have no own domains (on, every outbound message would be
            // refused), and system mail from loopback (cron, root@host) often carries a
            // From outside them. README "Sender ownership" says when to turn it on.
            require_own_from: unspanned(false),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPolicy {
    pub default: Str,
    pub bypass_header: Str,
    pub non_compliant: Str,
    pub fallback_relay: Option<Str>,
    pub require_dmarc: Spanned<bool>,
    pub require_spf: Spanned<bool>,
    pub senders: Vec<Spanned<RawSenderRule>>,
}

impl Default for RawPolicy {
    fn default() -> Self {
        Self {
            default: unspanned(DEFAULT_CLASSIFICATION.into()),
            bypass_header: unspanned(DEFAULT_BYPASS_HEADER.into()),
            non_compliant: unspanned(DEFAULT_NON_COMPLIANT.into()),
            fallback_relay: None,
            require_dmarc: unspanned(false),
            require_spf: unspanned(false),
            senders: Vec::new(),
        }
    }
}

/// Required keys are `Option` here and checked in `validate`, so that a missing key is
/// reported with the line of its `[[...]]` header next to every other problem.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSenderRule {
    #[serde(rename = "match")]
    pub patterns: Option<StrList>,
    pub classification: Option<Str>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDkim {
    pub domain: Option<Str>,
    pub selector: Option<Str>,
    pub key: Option<Str>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawFooter {
    pub text: Str,
    pub html: Str,
}

impl Default for RawFooter {
    fn default() -> Self {
        Self {
            text: unspanned(DEFAULT_FOOTER_TEXT.into()),
            html: unspanned(DEFAULT_FOOTER_HTML.into()),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAudit {
    pub file: Option<Str>,
}

pub(crate) const DEFAULT_DMARC_ENFORCEMENT: &str = "none";
pub(crate) const DEFAULT_TEMP_ERROR: &str = "annotate";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawInbound {
    pub authserv_id: Option<Str>,
    pub dmarc: Str,
    pub temp_error: Str,
    pub subject_tag_insecure: Str,
    pub subject_tag_secure: Str,
}

impl Default for RawInbound {
    fn default() -> Self {
        Self {
            authserv_id: None,
            dmarc: unspanned(DEFAULT_DMARC_ENFORCEMENT.into()),
            temp_error: unspanned(DEFAULT_TEMP_ERROR.into()),
            subject_tag_insecure: unspanned(String::new()),
            subject_tag_secure: unspanned(String::new()),
        }
    }
}

pub(crate) const DEFAULT_PORTAL_RETENTION: &str = super::portal::DEFAULT_RETENTION;

/// `[portal]`. Required keys are `Option` (reported missing with the section's line).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPortal {
    pub listen: Option<Str>,
    pub public_url: Option<Str>,
    pub lmtp: Option<Str>,
    pub store: Option<Str>,
    pub key_file: Option<Str>,
    pub retention: Str,
    pub from: Option<Str>,
    pub sendmail: Option<Str>,
    pub submit: Option<Str>,
    pub submit_auth: Option<Spanned<bool>>,
    pub organisation: Option<Str>,
    pub max_message_size: Option<Spanned<i64>>,
    pub audit_file: Option<Str>,
    pub mail_key: Str,
    pub branding: Option<Spanned<RawPortalBranding>>,
    pub notify_opened: bool,
    pub number_wait: Str,
    pub sms: Option<Spanned<RawPortalSms>>,
}

impl Default for RawPortal {
    fn default() -> Self {
        Self {
            listen: None,
            public_url: None,
            lmtp: None,
            store: None,
            key_file: None,
            retention: unspanned(DEFAULT_PORTAL_RETENTION.into()),
            from: None,
            sendmail: None,
            submit: None,
            submit_auth: None,
            organisation: None,
            max_message_size: None,
            audit_file: None,
            mail_key: unspanned(super::portal::DEFAULT_MAIL_KEY.into()),
            branding: None,
            notify_opened: false,
            number_wait: unspanned(super::portal::DEFAULT_NUMBER_WAIT.into()),
            sms: None,
        }
    }
}

/// `[portal.sms]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPortalSms {
    pub provider: Option<Str>,
    pub url: Option<Str>,
    pub token_file: Option<Str>,
    pub sender: Option<Str>,
}

/// `[portal.branding]`: every key optional (the built-in look and texts).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawPortalBranding {
    pub logo: Option<Str>,
    pub primary_colour: Option<Str>,
    pub accent_colour: Option<Str>,
    pub notification_nl: Option<Str>,
    pub notification_en: Option<Str>,
    pub accessibility_contact: Option<Str>,
}
