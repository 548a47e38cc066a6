//! The portal's web side: the page behind the notification's link.
//!
//! Flow (GET never changes anything: mail scanners fetch links first):
//! 1. `GET /m/<token>`: organisation, masked number, a button that asks for a code.
//! 2. `POST /m/<token>/send`: a six-digit code by SMS (limits in [`crate::portal::store::auth`]).
//! 3. `POST /m/<token>/code` (field `code`): a server-side session on success.
//! 4. `GET /m/<token>`: the message page; `/body` (the sanitised HTML, framed and
//!    sandboxed), `/part/<n>` (attachments, inline images), `/pdf`, `/eml`.
//!
//! Every POST carries a CSRF token bound to the session (or, before it, to the link) and
//! passes an Origin / Sec-Fetch-Site check; every response has strict security headers;
//! every request passes a per-address rate limit. Links carry the token in the path and
//! nothing else; no secret, code or content is logged.

mod brand;
mod files;
mod guard;
pub mod i18n;
pub mod keys;
mod link;
pub mod number;
pub mod pdf;
pub mod reply;
pub mod revoke;
mod routes;
pub mod sanitize;
pub mod session;
mod source;
mod statement;
mod switch;
mod templates;
pub mod view;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::audit::Auditor;
use crate::config::SocketSpec;
use crate::portal::phone::Phone;
use crate::portal::sms::{SmsError, SmsGateway};
use crate::portal::store::auth::AuthStore;

pub use keys::derive_secret;

/// A boxed future, so the traits below can be used as `dyn`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Largest request body read (the forms carry a code and a token).
pub const MAX_REQUEST_BODY: usize = 8 * 1024;

/// Whether the stored message can still be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    Live,
    /// Expired: its key is destroyed or about to be.
    Gone,
    /// Withdrawn by the sender or the administrator: its key is destroyed.
    Withdrawn,
}

/// One recipient of one stored message, as the web side needs it.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The store's id of this recipient (stable; the key of the code and session rows).
    pub id: String,
    pub message_id: String,
    pub address: String,
    /// `None` once the message expired (its key, which also sealed the number, is gone).
    pub phone: Option<Phone>,
    /// The envelope sender, told when the recipient gets locked.
    pub sender: String,
    pub state: MessageState,
    /// Unix seconds after which the message is gone even if the store has not yet
    /// expired it.
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("message store: {0}")]
pub struct SourceError(pub String);

/// Read access to the message store.
pub trait MessageSource: Send + Sync {
    /// The recipient whose link token hashes (SHA-256 of its 32 bytes) to `hash`.
    fn recipient_by_token_hash<'a>(
        &'a self,
        hash: &'a [u8; 32],
    ) -> BoxFuture<'a, Result<Option<Recipient>, SourceError>>;
    /// The decrypted original, byte for byte as it arrived.
    fn read_message<'a>(
        &'a self,
        message_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<u8>, SourceError>>;
}

/// Sends the code (the configured SMS provider).
pub trait CodeSender: Send + Sync {
    /// Returns the provider's reference for the audit trail.
    fn send_code<'a>(
        &'a self,
        to: &'a Phone,
        text: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<String, SmsError>>;
}

impl CodeSender for SmsGateway {
    fn send_code<'a>(
        &'a self,
        to: &'a Phone,
        text: &'a str,
        reference: &'a str,
    ) -> BoxFuture<'a, Result<String, SmsError>> {
        Box::pin(self.send(to, text, reference))
    }
}

/// Tells the sender that a recipient was locked out (by mail); the lock is audited
/// whether or not one is configured.
pub trait LockAlert: Send + Sync {
    fn recipient_locked<'a>(&'a self, recipient: &'a Recipient) -> BoxFuture<'a, ()>;
}

/// Tells the sender that a recipient opened the message for the first time
/// (`[portal] notify_opened`); called after every successful code, sends at most once.
pub trait OpenedAlert: Send + Sync {
    fn recipient_opened<'a>(&'a self, recipient: &'a Recipient) -> BoxFuture<'a, ()>;
}

/// One file of a reply, as the browser sent it (name and type untrusted).
#[derive(Debug, Clone)]
pub struct Upload {
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

/// Why a reply was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// The sender is not an address in the own domains: no reply through the portal.
    NotPossible,
    /// [`crate::portal::store::MAX_REPLIES_PER_RECIPIENT`] reached.
    TooMany,
    /// Store or `sendmail` unavailable: try again later.
    Temporary,
}

/// Sends a recipient's reply to the message's sender ([`reply`]).
pub trait ReplySender: Send + Sync {
    /// Whether the message's sender can get a reply (the form is shown only then).
    fn can_reply(&self, r: &Recipient) -> bool;
    fn reply<'a>(
        &'a self,
        r: &'a Recipient,
        raw: &'a [u8],
        text: &'a str,
        files: &'a [Upload],
        client: &'a str,
    ) -> BoxFuture<'a, Result<(), ReplyError>>;
    /// When the message this one answers arrived (an answer to a reply), if it does.
    fn answers<'a>(&'a self, message_id: &'a str) -> BoxFuture<'a, Option<i64>>;
}

/// The sender's one-time link to give a waiting recipient's number (`/n/<token>`, see
/// [`number`]).
pub trait NumberEntry: Send + Sync {
    fn by_link<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::portal::store::waiting::Waiting>, SourceError>>;
    /// Stores the number (once), optionally in the address book too, and audits it.
    fn give<'a>(
        &'a self,
        w: &'a crate::portal::store::waiting::Waiting,
        phone: &'a Phone,
        remember: bool,
        client: IpAddr,
    ) -> BoxFuture<'a, Result<crate::portal::store::waiting::Given, SourceError>>;
}

/// The revoke link's side of the store (`/r/<token>`, see [`revoke`]).
pub trait Withdraw: Send + Sync {
    /// The message a revoke link token names, or `None` for a token that is not one.
    fn by_link<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::portal::store::MessageSummary>, SourceError>>;
    /// Withdraws it (key destroyed at once) and audits that, from `client`.
    fn withdraw<'a>(
        &'a self,
        message_id: &'a str,
        client: IpAddr,
    ) -> BoxFuture<'a, Result<crate::portal::store::Revoke, SourceError>>;
}

/// What [`WebState::new`] needs.
pub struct WebDeps {
    pub messages: Arc<dyn MessageSource>,
    /// The store's pool; the tables of [`crate::portal::store::auth::SCHEMA`] must exist.
    pub pool: sqlx::AnyPool,
    pub sms: Arc<dyn CodeSender>,
    pub auditor: Arc<Auditor>,
    /// `None`: the lock is only audited.
    pub alerts: Option<Arc<dyn LockAlert>>,
    /// `None`: no first-opened notice (`[portal] notify_opened = false`).
    pub opened: Option<Arc<dyn OpenedAlert>>,
    /// `None`: no revoke links (`/r/…` answers 404).
    pub revoke: Option<Arc<dyn Withdraw>>,
    /// `None`: no reply form.
    pub replies: Option<Arc<dyn ReplySender>>,
    /// `None`: no number links (`/n/…` answers 404).
    pub numbers: Option<Arc<dyn NumberEntry>>,
    /// `[outbound] networks`: where the revoke link works from.
    pub internal: Vec<ipnet::IpNet>,
    /// From [`derive_secret`] over the master key.
    pub secret: [u8; 32],
    /// Shown on every page and in the SMS.
    pub organisation: String,
    /// `public_url` (its origin is what POSTs must come from).
    pub public_url: String,
    /// `[portal.branding]`: logo, colours, the accessibility statement's contact.
    pub branding: crate::config::portal::Branding,
}

pub struct WebState {
    messages: Arc<dyn MessageSource>,
    auth: AuthStore,
    sms: Arc<dyn CodeSender>,
    auditor: Arc<Auditor>,
    alerts: Option<Arc<dyn LockAlert>>,
    opened: Option<Arc<dyn OpenedAlert>>,
    revoke: Option<Arc<dyn Withdraw>>,
    replies: Option<Arc<dyn ReplySender>>,
    numbers: Option<Arc<dyn NumberEntry>>,
    internal: Vec<ipnet::IpNet>,
    keys: keys::Keys,
    organisation: String,
    origin: String,
    limiter: guard::RateLimiter,
    brand: brand::Brand,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("organisation", &self.organisation)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl WebState {
    pub fn new(d: WebDeps) -> Arc<WebState> {
        Arc::new(WebState {
            messages: d.messages,
            auth: AuthStore::new(d.pool),
            sms: d.sms,
            auditor: d.auditor,
            alerts: d.alerts,
            opened: d.opened,
            revoke: d.revoke,
            replies: d.replies,
            numbers: d.numbers,
            internal: d.internal,
            keys: keys::Keys::new(&d.secret),
            organisation: d.organisation,
            origin: session::origin_of(&d.public_url),
            limiter: guard::RateLimiter::default(),
            brand: brand::Brand::new(&d.branding),
        })
    }
}

/// The HTTP listener (`[portal] listen`).
pub enum WebListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl WebListener {
    pub async fn bind(spec: &SocketSpec) -> io::Result<WebListener> {
        match spec {
            SocketSpec::Inet { host, port } => Ok(WebListener::Tcp(
                tokio::net::TcpListener::bind((host.as_str(), *port)).await?,
            )),
            SocketSpec::Unix(path) => {
                // A socket left by an earlier run would make bind fail.
                let _ = std::fs::remove_file(path);
                Ok(WebListener::Unix(tokio::net::UnixListener::bind(path)?))
            }
        }
    }
}

/// The browser's address: the TCP peer, or, when the peer is the local reverse proxy
/// (loopback or the Unix socket), the last address it put in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

fn client_ip(peer: Option<IpAddr>, headers: &axum::http::HeaderMap) -> IpAddr {
    let unspecified = IpAddr::from([0u8; 4]);
    let proxied = peer.is_none_or(|p| p.is_loopback());
    if proxied
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return ip;
    }
    peer.unwrap_or(unspecified)
}

async fn front_door(
    axum::extract::State(state): axum::extract::State<Arc<WebState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    let post = req.method() == axum::http::Method::POST;
    let target = switch::target(req.uri().path());
    let lang = i18n::Lang::choose(None, req.headers());
    let mut resp = switch::scope(target, async {
        if state.limiter.allow(ip, post, std::time::Instant::now()) {
            as_page(&state, lang, next.run(req).await)
        } else {
            routes::notice_page(
                &state,
                lang,
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                lang.text().busy_title,
                lang.text().busy_text,
            )
        }
    })
    .await;
    guard::secure_headers(resp.headers_mut());
    resp
}

/// axum's own refusals (405 for a GET on a form's address, 400 for a path or form it
/// cannot read, 413, 415) are plain text: they become the notice page (same status), so
/// that every page a browser can land on has the language switch and the footer.
fn as_page(state: &WebState, lang: i18n::Lang, resp: Response) -> Response {
    let status = resp.status();
    let is_html = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !status.is_client_error() || is_html {
        return resp;
    }
    let t = lang.text();
    let (title, text) = match status {
        axum::http::StatusCode::NOT_FOUND | axum::http::StatusCode::METHOD_NOT_ALLOWED => {
            (t.unknown_title, t.unknown_text)
        }
        _ => (t.error_title, t.refused_text),
    };
    routes::notice_page(state, lang, status, title, text)
}

/// The application (for tests that drive it in process).
pub fn router(state: Arc<WebState>) -> axum::Router {
    routes::routes()
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), front_door))
        .with_state(state)
}

/// Serves the web side until `shutdown` completes (then finishes the requests in flight).
pub async fn serve(
    listener: WebListener,
    state: Arc<WebState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    spawn_purger(state.clone());
    let app = router(state);
    match listener {
        WebListener::Tcp(l) => {
            axum::serve(l, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown)
                .await
        }
        WebListener::Unix(l) => {
            axum::serve(l, app.into_make_service())
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// Removes dead sessions every few minutes (they are refused anyway; this keeps the table
/// small).
fn spawn_purger(state: Arc<WebState>) {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            let Some(state) = weak.upgrade() else { return };
            if let Err(e) = state.auth.purge_sessions(routes::now()).await {
                tracing::warn!(error = %e, "portal: purging old sessions failed");
            }
        }
    });
}
