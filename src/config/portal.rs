//! The validated `[portal]` and `[portal.sms]` sections: the eDelivery portal process
//! (`nta7516-milter portal`). Absent section: no portal (`Config::portal` is `None`).

use std::path::PathBuf;
use std::time::Duration;

use super::socket::SocketSpec;

/// Default retention of a stored message: 30 days, after which its key is destroyed.
pub const DEFAULT_RETENTION: &str = "30d";
/// The MTA's `sendmail` command that submits the portal's own mail.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

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
