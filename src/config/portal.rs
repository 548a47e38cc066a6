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

/// How the portal hands its own mail to the local MTA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// `sendmail = "/usr/sbin/sendmail"` (the default): one run per mail.
    Sendmail(PathBuf),
    /// `submit = "inet:127.0.0.1:25"`: SMTP (RFC 5321) to the MTA's listener on a loopback
    /// address, over kept-open connections; no program is started per mail.
    Smtp {
        addr: std::net::SocketAddr,
        /// `submit_auth = true`: log in (AUTH PLAIN, RFC 4616) as `nta7516-portal` with
        /// the password derived from `mail_key`. Exim trusts the portal's mark on SMTP
        /// only after this login (exim/README.md); Postfix trusts the client address.
        login: bool,
    },
}

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
    /// How the portal's own mail (notifications, receipts, replies) reaches the MTA.
    pub submit: Submission,
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
    /// `[portal.branding]`: logo, colours, notification text, accessibility contact.
    pub branding: Branding,
    /// Tell the sender by mail when a recipient first opens the message
    /// (`notify_opened`, default false).
    pub notify_opened: bool,
    /// `number_wait`: `None` ("off") refuses mail without a number (550 5.7.0).
    pub number_wait: Option<Duration>,
    pub sms: SmsConfig,
}

/// The default colours, the pages' own (both at least 4.5:1 on white).
pub const DEFAULT_PRIMARY_COLOUR: Colour = Colour([0x0b, 0x3d, 0x91]);
pub const DEFAULT_ACCENT_COLOUR: Colour = Colour([0xb3, 0x59, 0x00]);

/// `[portal.branding]`, validated; every key optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// Shown in the header of every page instead of the name (its alt text is the name).
    pub logo: Option<Logo>,
    /// Links, buttons (white text on it), the secondary button's text.
    pub primary: Colour,
    /// The keyboard focus outline and the line under the header.
    pub accent: Colour,
    /// Overrides of the notification's Dutch and English parts (`None`: the built-in text).
    pub notification_nl: Option<NoticeTemplate>,
    pub notification_en: Option<NoticeTemplate>,
    /// Where the accessibility statement sends problems (default: `[portal] from`).
    pub accessibility_contact: String,
}

impl Branding {
    /// What an empty `[portal.branding]` gives: no logo, the default colours and texts.
    pub fn plain(accessibility_contact: &str) -> Branding {
        Branding {
            logo: None,
            primary: DEFAULT_PRIMARY_COLOUR,
            accent: DEFAULT_ACCENT_COLOUR,
            notification_nl: None,
            notification_en: None,
            accessibility_contact: accessibility_contact.to_string(),
        }
    }
}

/// A logo read and type-checked at load (its bytes are served as they are).
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    pub kind: LogoKind,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Logo({:?}, {} bytes)", self.kind, self.bytes.len())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoKind {
    Png,
    Svg,
}

impl LogoKind {
    pub fn content_type(self) -> &'static str {
        match self {
            LogoKind::Png => "image/png",
            LogoKind::Svg => "image/svg+xml",
        }
    }
}

/// An sRGB colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub [u8; 3]);

impl std::fmt::Display for Colour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [r, g, b] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}")
    }
}

/// A notification text with its placeholders parsed (so that a value put in, e.g. an
/// organisation name with braces, is never read as a placeholder again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeTemplate(pub Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `{organisation}`
    Organisation,
    /// `{link}`: the one link of the notification.
    Link,
    /// `{phone}`: the masked number the code goes to.
    Phone,
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
