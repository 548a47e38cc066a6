//! The validated `[portal]` and `[portal.sms]` sections: the eDelivery portal process
//! (`nta7516-milter portal`). Absent section: no portal (`Config::portal` is `None`).

use std::path::PathBuf;
use std::time::Duration;

use super::socket::SocketSpec;

/// Default retention of a stored message: 30 days, after which its key is destroyed.
pub const DEFAULT_RETENTION: &str = "30d";
/// How long mail for a recipient without a number waits for the sender to give it
/// (`number_wait`; `"off"`: such mail is refused with 550 5.7.0 at once).
pub const DEFAULT_NUMBER_WAIT: &str = "3d";
/// The MTA's `sendmail` command that submits the portal's own mail.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
/// Largest message the LMTP intake accepts (`max_message_size`), above Postfix's default
/// `message_size_limit` (10240000) so Postfix's own limit normally applies first; LMTP 552
/// above it.
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// The portal's audit log when `audit_file` is not set but `[audit] file` is: this name in
/// the same directory (the portal keeps its own hash chain; two processes never append to
/// one file).
pub const DEFAULT_AUDIT_FILE_NAME: &str = "portal-audit.log";
/// The secret both the portal and the milter read: the portal marks its own submissions
/// (notifications) with an HMAC under it, the milter recognises them by that mark.
pub const DEFAULT_MAIL_KEY: &str = "/etc/nta7516-milter/portal-mail.key";
/// Default SMS originator (alphanumeric, at most 11 characters).
pub const DEFAULT_SMS_SENDER: &str = "Portaal";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// HTTP listener (behind the site's TLS reverse proxy).
    pub listen: SocketSpec,
    /// Base of every link in notifications, `https://...` without a trailing slash.
    pub public_url: String,
    /// LMTP intake socket (Postfix transport `nta-portal`).
    pub lmtp: SocketSpec,
    pub store: StoreLocation,
    /// The master key (`nta7516-milter portal keygen`).
    pub key_file: PathBuf,
    pub retention: Duration,
    /// Sender address of notifications: an address in one of `[domains] own`.
    pub from: String,
    /// The MTA's `sendmail` command.
    pub sendmail: PathBuf,
    /// Organisation name shown in notifications and on the pages (`organisation`; default:
    /// the domain of `from`).
    pub organisation: String,
    /// Largest message accepted over LMTP, in bytes (`max_message_size`).
    pub max_message_size: u64,
    /// The portal's own hash-chained audit log (`audit_file`); `None`: the journal only.
    pub audit_file: Option<PathBuf>,
    /// Secret file (at least 32 bytes) shared with the milter for the mark on the portal's
    /// own mail (`mail_key`).
    pub mail_key: PathBuf,
    /// Tell the sender by mail when a recipient first opens the message
    /// (`notify_opened`, default false).
    pub notify_opened: bool,
    /// `number_wait`: `None` ("off") refuses mail without a number (550 5.7.0).
    pub number_wait: Option<Duration>,
    pub sms: SmsConfig,
}

/// `store = "sqlite:PATH"` or a `postgres://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// The URL as written (it may carry a password: never log it whole).
    Postgres(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsProvider {
    Webhook,
    Cm,
    Spryng,
    MessageBird,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsConfig {
    pub provider: SmsProvider,
    /// The provider's endpoint (its documented default when not set).
    pub url: String,
    /// File holding the provider's API token; read at start, never logged.
    pub token_file: PathBuf,
    /// Originator shown on the phone (at most 11 letters/digits, or up to 14 digits).
    pub sender: String,
}

impl SmsProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsProvider::Webhook => "webhook",
            SmsProvider::Cm => "cm",
            SmsProvider::Spryng => "spryng",
            SmsProvider::MessageBird => "messagebird",
        }
    }

    /// The provider's documented endpoint, used when `url` is not set; `None` for
    /// `webhook`, whose `url` is required.
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            SmsProvider::Webhook => None,
            SmsProvider::Cm => Some("https://gw.messaging.cm.com/v1.0/message"),
            SmsProvider::Spryng => Some("https://rest.spryngsms.com/v1/messages"),
            SmsProvider::MessageBird => Some("https://rest.messagebird.com/messages"),
        }
    }
}

impl std::str::FromStr for SmsProvider {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "webhook" => Ok(SmsProvider::Webhook),
            "cm" => Ok(SmsProvider::Cm),
            "spryng" => Ok(SmsProvider::Spryng),
            "messagebird" => Ok(SmsProvider::MessageBird),
            _ => Err(format!(
                "{s:?} is not an SMS provider; expected \"webhook\", \"cm\", \"spryng\" or \"messagebird\""
            )),
        }
    }
}
