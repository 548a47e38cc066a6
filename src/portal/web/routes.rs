//! The handlers. Each resolves the link token first ([`super::link`]), then the session
//! where one is needed, then does one thing.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::i18n::Lang;
use super::link::{Link, link_binding, read_message, resolve, session_binding, session_for};
use super::templates::{AttachmentRow, Common, Landing, MessagePage, Notice};
use super::{ClientIp, Recipient, WebState, files, keys, session, view};
use crate::audit::Event;
use crate::portal::store::auth::{Check, Refusal};

pub(super) type St = State<Arc<WebState>>;

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/static/portal.css", get(css))
        .route("/m/{token}", get(page))
        .route("/m/{token}/send", post(send))
        .route("/m/{token}/code", post(code))
        .route("/m/{token}/logout", post(logout))
        .route("/m/{token}/body", get(files::body))
        .route("/m/{token}/part/{n}", get(files::part))
        .route("/m/{token}/pdf", get(files::pdf_download))
        .route("/m/{token}/eml", get(files::eml))
        .merge(super::brand::routes())
        .merge(super::revoke::routes())
        .merge(super::reply::routes())
        .merge(super::number::routes())
        .fallback(fallback)
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Deserialize, Default)]
pub(super) struct PageQuery {
    lang: Option<String>,
    sent: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub(super) fn html(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal: page rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(super) fn common(state: &WebState, lang: Lang, title: &str, here: &str) -> Common {
    Common {
        t: lang.text(),
        org: state.organisation.clone(),
        title: title.to_string(),
        here: here.to_string(),
        logo: state.brand.logo_url.clone(),
    }
}

pub(super) fn notice_page(
    state: &WebState,
    lang: Lang,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response {
    let page = Notice {
        c: common(state, lang, title, &super::switch::current()),
        text: text.to_string(),
    };
    html(status, page.render())
}

pub(super) fn unknown(state: &WebState, lang: Lang) -> Response {
    let t = lang.text();
    notice_page(
        state,
        lang,
        StatusCode::NOT_FOUND,
        t.unknown_title,
        t.unknown_text,
    )
}

pub(super) fn try_later(state: &WebState, lang: Lang) -> Response {
    let t = lang.text();
    notice_page(
        state,
        lang,
        StatusCode::SERVICE_UNAVAILABLE,
        t.error_title,
        t.try_later,
    )
}

pub(super) fn refused(state: &WebState, lang: Lang) -> Response {
    let t = lang.text();
    notice_page(
        state,
        lang,
        StatusCode::FORBIDDEN,
        t.refused_title,
        t.refused_text,
    )
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../templates/portal/portal.css"),
    )
        .into_response()
}

/// Any other path: "link not found"; its language switch (to `/`) lands here too.
async fn fallback(State(state): St, Query(q): Query<PageQuery>, headers: HeaderMap) -> Response {
    let resp = unknown(&state, Lang::choose(q.lang.as_deref(), &headers));
    with_lang_cookie(resp, &q)
}

pub(super) fn here(token: &str) -> String {
    format!("/m/{token}")
}

fn with_lang_cookie(mut resp: Response, q: &PageQuery) -> Response {
    if let Some(l) = q.lang.as_deref().and_then(Lang::parse) {
        resp.headers_mut()
            .append(header::SET_COOKIE, session::lang_cookie(l.code()));
    }
    resp
}

fn landing(
    state: &WebState,
    lang: Lang,
    token: &str,
    r: &Recipient,
    code_form: bool,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = lang.text();
    let title = format!("{} {}", t.secure_message_from, state.organisation);
    let page = Landing {
        c: common(state, lang, &title, &here(token)),
        masked: r.phone.as_ref().map(|p| p.masked()).unwrap_or_default(),
        csrf: state.keys.csrf_token(&link_binding(r)),
        code_form,
        info: None,
        error,
    };
    html(status, page.render())
}

/// The landing page of a POST again, saying why (with the code form or not).
fn again(
    link: &Link,
    r: &Recipient,
    code_form: bool,
    error: String,
    status: StatusCode,
) -> Response {
    let (state, lang, token) = (&link.state, link.lang, &link.token);
    landing(state, lang, token, r, code_form, Some(error), status)
}

async fn page(
    State(state): St,
    Path(token): Path<String>,
    Query(q): Query<PageQuery>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    let r = match resolve(&state, &token, lang).await {
        Ok(r) => r,
        Err(resp) => return with_lang_cookie(resp, &q),
    };
    let resp = match session_for(&state, &headers, &r).await {
        Some(sid) => message_page(&state, lang, &token, &r, &sid, ip).await,
        None => landing(
            &state,
            lang,
            &token,
            &r,
            q.sent.is_some(),
            None,
            StatusCode::OK,
        ),
    };
    with_lang_cookie(resp, &q)
}

async fn message_page(
    state: &WebState,
    lang: Lang,
    token: &str,
    r: &Recipient,
    sid: &str,
    ip: ClientIp,
) -> Response {
    let raw = match read_message(state, lang, r).await {
        Ok(raw) => raw,
        Err(resp) => return resp,
    };
    let v = view::parse(&raw);
    let t = lang.text();
    let subject = if v.subject.trim().is_empty() {
        t.no_subject.to_string()
    } else {
        v.subject.clone()
    };
    let (reply, answers) = match &state.replies {
        Some(s) => (
            s.can_reply(r).then(|| super::reply::text(lang)),
            s.answers(&r.message_id).await.map(super::revoke::utc),
        ),
        None => (None, None),
    };
    let page = MessagePage {
        reply,
        answers,
        c: common(state, lang, &subject, &here(token)),
        csrf: state.keys.csrf_token(&session_binding(sid)),
        from: v.from,
        date: v.date,
        subject,
        html: v.html.is_some(),
        text: v.text,
        attachments: v
            .attachments
            .into_iter()
            .map(|a| AttachmentRow {
                part: a.part,
                name: a.name,
                content_type: a.content_type,
                size: a.size,
            })
            .collect(),
    };
    state.auditor.record(Event::PortalViewed {
        message: r.message_id.clone(),
        recipient: r.address.clone(),
        client_address: ip.0.to_string(),
    });
    html(StatusCode::OK, page.render())
}

/// `Err`: a page that ends the request early (the same to the browser as `Ok`).
type Reply = Result<Response, Response>;

async fn send(link: Link, Form(f): Form<CsrfForm>) -> Reply {
    let r = link.link_post(&f.csrf).await?;
    let (state, token, ip, lang) = (&link.state, &link.token, link.ip, link.lang);
    let t = lang.text();
    let not_sent = |reason: &str| Event::PortalCodeNotSent {
        message: r.message_id.clone(),
        recipient: r.address.clone(),
        reason: reason.to_string(),
        client_address: ip.0.to_string(),
    };
    let Ok(code) = keys::new_code() else {
        state
            .auditor
            .record(not_sent("random number generator failed"));
        return Err(try_later(state, lang));
    };
    let mac = state.keys.code_mac(&r.id, &code);
    match state.auth.claim_send(&r.id, &mac, now()).await {
        Ok(Ok(())) => {}
        Ok(Err(refusal)) => {
            let (reason, msg, form) = match refusal {
                Refusal::Locked(_) => ("locked", t.locked.to_string(), false),
                Refusal::TooSoon(s) => ("too_soon", t.wait_seconds(s), true),
                Refusal::TooMany(s) => ("too_many", t.wait_minutes(s), true),
            };
            state.auditor.record(not_sent(reason));
            return Err(again(&link, &r, form, msg, StatusCode::TOO_MANY_REQUESTS));
        }
        Err(e) => {
            tracing::warn!(error = %e, "portal: code table unavailable");
            return Err(try_later(state, lang));
        }
    }
    let reference = keys::new_session_id()
        .map(|s| s[..16].to_string())
        .unwrap_or_default();
    let lifetime = std::time::Duration::from_secs(crate::portal::store::auth::CODE_LIFETIME as u64);
    let text = crate::portal::sms::code_text(&state.organisation, &code, lifetime);
    let Some(phone) = &r.phone else {
        return Err(try_later(state, lang));
    };
    Ok(match state.sms.send_code(phone, &text, &reference).await {
        Ok(provider_reference) => {
            state.auditor.record(Event::PortalCodeSent {
                message: r.message_id.clone(),
                recipient: r.address.clone(),
                phone: phone.masked(),
                provider_reference,
                client_address: ip.0.to_string(),
            });
            Redirect::to(&format!("{}?sent=1", here(token))).into_response()
        }
        Err(e) => {
            let _ = state.auth.void_code(&r.id, &mac).await;
            state.auditor.record(not_sent(&e.to_string()));
            again(
                &link,
                &r,
                false,
                t.try_later.to_string(),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    })
}

/// Longest code input considered (anything longer cannot be right anyway).
const MAX_CODE_INPUT: usize = 32;

async fn code(link: Link, Form(f): Form<CodeForm>) -> Reply {
    let r = link.link_post(&f.csrf).await?;
    let (state, token, ip, lang) = (&link.state, &link.token, link.ip, link.lang);
    let t = lang.text();
    let entered: String = f
        .code
        .chars()
        .take(MAX_CODE_INPUT)
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mac = state.keys.code_mac(&r.id, &entered);
    let check = match state.auth.check(&r.id, &mac, now()).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "portal: code table unavailable");
            return Err(try_later(state, lang));
        }
    };
    let failed = |reason: &str, left: i64| Event::PortalCodeFailed {
        message: r.message_id.clone(),
        recipient: r.address.clone(),
        reason: reason.to_string(),
        tries_left: left,
        client_address: ip.0.to_string(),
    };
    Ok(match check {
        Check::Accepted => {
            let Ok(sid) = keys::new_session_id() else {
                return Err(try_later(state, lang));
            };
            if let Err(e) = state
                .auth
                .create_session(&state.keys.session_hash(&sid), &r.id, now())
                .await
            {
                tracing::warn!(error = %e, "portal: session table unavailable");
                return Err(try_later(state, lang));
            }
            state.auditor.record(Event::PortalOpened {
                message: r.message_id.clone(),
                recipient: r.address.clone(),
                client_address: ip.0.to_string(),
            });
            // In the background: the recipient's page does not wait for sendmail.
            if let Some(opened) = state.opened.clone() {
                let r = r.clone();
                tokio::spawn(async move { opened.recipient_opened(&r).await });
            }
            let mut resp = Redirect::to(&here(token)).into_response();
            resp.headers_mut()
                .append(header::SET_COOKIE, session::session_cookie(&sid));
            resp
        }
        Check::Wrong { left } => {
            state.auditor.record(failed("wrong", left));
            again(&link, &r, left > 0, t.wrong_code(left), StatusCode::OK)
        }
        Check::NoCode => {
            state.auditor.record(failed("no_code", 0));
            again(&link, &r, false, t.no_code.to_string(), StatusCode::OK)
        }
        Check::NowLocked => {
            state.auditor.record_all(vec![
                failed("wrong", 0),
                Event::PortalLocked {
                    message: r.message_id.clone(),
                    recipient: r.address.clone(),
                    sender: r.sender.clone(),
                    seconds: crate::portal::store::auth::LOCK_FOR,
                    client_address: ip.0.to_string(),
                },
            ]);
            if let Some(alerts) = &state.alerts {
                alerts.recipient_locked(&r).await;
            }
            notice_page(state, lang, StatusCode::FORBIDDEN, t.error_title, t.locked)
        }
        Check::Locked(_) => {
            state.auditor.record(failed("locked", 0));
            notice_page(state, lang, StatusCode::FORBIDDEN, t.error_title, t.locked)
        }
    })
}

async fn logout(link: Link, Form(f): Form<CsrfForm>) -> Reply {
    let (_, sid) = link.session_post(&f.csrf).await?;
    let Link { state, lang, .. } = link;
    let _ = state.auth.end_session(&state.keys.session_hash(&sid)).await;
    let t = lang.text();
    let mut resp = notice_page(&state, lang, StatusCode::OK, t.logout, t.logged_out);
    resp.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie());
    Ok(resp)
}
