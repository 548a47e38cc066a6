//! Who a request is for: the [`Link`] it names (token, browser, language), the recipient
//! behind it (unknown: 404, gone: 410, both without details), its session, the checks of a
//! POST, and [`Authorised`], where every route behind the code starts.

use std::sync::Arc;

use axum::extract::{Extension, FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::i18n::Lang;
use super::routes::{now, refused, try_later, unknown};
use super::{ClientIp, MessageState, Recipient, WebState, keys, session};

/// The parts of a request for `/m/<token>/…` that every handler of it needs. Extracting
/// it reads the path and the request only; nothing is looked up yet.
pub(super) struct Link {
    pub state: Arc<WebState>,
    pub token: String,
    pub ip: ClientIp,
    pub headers: HeaderMap,
    /// From the language cookie or `Accept-Language` (only the page takes `?lang=`).
    pub lang: Lang,
}

/// The `{token}` of the route (other path parameters are the handler's).
#[derive(Deserialize)]
struct TokenPath {
    token: String,
}

impl FromRequestParts<Arc<WebState>> for Link {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Link, Response> {
        let Path(TokenPath { token }) = Path::<TokenPath>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Extension(ip) = Extension::<ClientIp>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let lang = Lang::choose(None, &headers);
        Ok(Link {
            state: state.clone(),
            token,
            ip,
            headers,
            lang,
        })
    }
}

impl Link {
    /// The recipient behind the link, or the page that says why there is none.
    pub async fn recipient(&self) -> Result<Recipient, Response> {
        resolve(&self.state, &self.token, self.lang).await
    }

    /// The recipient of a POST made before the code (send one, enter it): from this site,
    /// with the CSRF token bound to the link.
    pub async fn link_post(&self, csrf: &str) -> Result<Recipient, Response> {
        let r = self.recipient().await?;
        if !self.post_ok(&link_binding(&r), csrf) {
            return Err(refused(&self.state, self.lang));
        }
        Ok(r)
    }

    /// The recipient and session id of a POST made in a session: from this site, with
    /// the CSRF token bound to the session.
    pub async fn session_post(&self, csrf: &str) -> Result<(Recipient, String), Response> {
        let r = self.recipient().await?;
        let Some(sid) = session_for(&self.state, &self.headers, &r).await else {
            return Err(refused(&self.state, self.lang));
        };
        if !self.post_ok(&session_binding(&sid), csrf) {
            return Err(refused(&self.state, self.lang));
        }
        Ok((r, sid))
    }

    /// Origin check and CSRF token of a POST.
    fn post_ok(&self, binding: &str, csrf: &str) -> bool {
        session::same_origin(&self.headers, &self.state.origin)
            && self.state.keys.csrf_ok(binding, csrf)
    }
}

/// Recipient, session and the stored original: where the routes behind the code start.
pub(super) struct Authorised {
    pub link: Link,
    pub r: Recipient,
    pub raw: Vec<u8>,
}

impl FromRequestParts<Arc<WebState>> for Authorised {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<WebState>,
    ) -> Result<Authorised, Response> {
        let link = Link::from_request_parts(parts, state).await?;
        let r = link.recipient().await?;
        if session_for(state, &link.headers, &r).await.is_none() {
            return Err(refused(state, link.lang));
        }
        let raw = read_message(state, link.lang, &r).await?;
        Ok(Authorised { link, r, raw })
    }
}

/// The recipient behind a link, or the page that says why there is none.
pub(super) async fn resolve(
    state: &WebState,
    token: &str,
    lang: Lang,
) -> Result<Recipient, Response> {
    let Some(hash) = keys::token_hash(token) else {
        return Err(unknown(state, lang));
    };
    match state.messages.recipient_by_token_hash(&hash).await {
        Ok(Some(r))
            if r.state == MessageState::Live && r.phone.is_some() && r.expires_at > now() =>
        {
            Ok(r)
        }
        Ok(Some(r)) if r.state == MessageState::Withdrawn => {
            let t = super::revoke::text(lang);
            Err(super::routes::notice_page(
                state,
                lang,
                axum::http::StatusCode::GONE,
                t.withdrawn_title,
                t.withdrawn_text,
            ))
        }
        Ok(Some(_)) => {
            let t = lang.text();
            Err(super::routes::notice_page(
                state,
                lang,
                axum::http::StatusCode::GONE,
                t.gone_title,
                t.gone_text,
            ))
        }
        Ok(None) => Err(unknown(state, lang)),
        Err(e) => {
            tracing::warn!(error = %e, "portal: looking up a link failed");
            Err(try_later(state, lang))
        }
    }
}

/// The stored original of `r`'s message, or the page that says to try later.
pub(super) async fn read_message(
    state: &WebState,
    lang: Lang,
    r: &Recipient,
) -> Result<Vec<u8>, Response> {
    state
        .messages
        .read_message(&r.message_id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "portal: reading a stored message failed");
            try_later(state, lang)
        })
}

/// The session id, if the browser has a live session for this recipient.
pub(super) async fn session_for(
    state: &WebState,
    headers: &HeaderMap,
    r: &Recipient,
) -> Option<String> {
    let id = session::cookie(headers, session::SESSION_COOKIE)?;
    if id.len() > 64 {
        return None;
    }
    let owner = state
        .auth
        .touch_session(&state.keys.session_hash(&id), now())
        .await
        .ok()??;
    (owner == r.id).then_some(id)
}

/// What the CSRF token of a form shown before the code is bound to.
pub(super) fn link_binding(r: &Recipient) -> String {
    format!("link:{}", r.id)
}

/// What the CSRF token of a form shown in a session is bound to.
pub(super) fn session_binding(id: &str) -> String {
    format!("session:{id}")
}
