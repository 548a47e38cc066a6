//! The sender's revoke link, `/r/<token>` (in the receipt): a GET shows what would be
//! withdrawn (metadata only) and a button; the POST withdraws. Both only from
//! `[outbound] networks` (the organisation's own clients, as for the milter's trust):
//! whoever else holds the receipt, e.g. after it was forwarded, cannot take the message
//! back, and is told to ask the organisation. The POST also passes the Origin and CSRF
//! checks of every form. A withdrawn message's key is destroyed in the same transaction
//! that records the withdrawal; the recipient's link then says "withdrawn".

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::i18n::Lang;
use super::routes::{St, common, html, notice_page, try_later, unknown};
use super::{ClientIp, WebState, session};
use crate::portal::store::{MessageSummary, Revoke};

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/r/{token}", get(page).post(withdraw))
}

/// The texts of these pages (the sender's, not the recipient's: kept apart from
/// [`super::i18n::Text`]).
pub struct RevokeText {
    pub title: &'static str,
    pub intro: &'static str,
    pub recipients: &'static str,
    pub received: &'static str,
    pub reference: &'static str,
    pub warning: &'static str,
    pub button: &'static str,
    pub done_title: &'static str,
    pub done_text: &'static str,
    pub already: &'static str,
    pub expired: &'static str,
    pub outside_title: &'static str,
    pub outside_text: &'static str,
    /// What the recipient's link says once the message is withdrawn.
    pub withdrawn_title: &'static str,
    pub withdrawn_text: &'static str,
}

pub static NL: RevokeText = RevokeText {
    title: "Bericht intrekken",
    intro: "U kunt dit beveiligde bericht intrekken. De ontvanger kan het daarna niet meer openen.",
    recipients: "Aan",
    received: "Ontvangen in het portaal",
    reference: "Kenmerk",
    warning: "Intrekken kan niet ongedaan worden gemaakt. Het bericht wordt direct gewist.",
    button: "Bericht intrekken",
    done_title: "Bericht ingetrokken",
    done_text: "Het bericht is ingetrokken en gewist. De ontvanger kan het niet meer openen.",
    already: "Dit bericht was al ingetrokken.",
    expired: "Dit bericht is al verlopen en gewist. Er is niets meer in te trekken.",
    outside_title: "Intrekken kan hier niet",
    outside_text: "Een bericht intrekken kan alleen vanaf het netwerk van de organisatie. Open de link op uw werkplek, of vraag de beheerder het bericht in te trekken.",
    withdrawn_title: "Dit bericht is ingetrokken",
    withdrawn_text: "De afzender heeft dit bericht ingetrokken. Neem contact op met de afzender als u vragen heeft.",
};

pub static EN: RevokeText = RevokeText {
    title: "Withdraw message",
    intro: "You can withdraw this secure message. The recipient can then no longer open it.",
    recipients: "To",
    received: "Received by the portal",
    reference: "Reference",
    warning: "This cannot be undone. The message is deleted at once.",
    button: "Withdraw message",
    done_title: "Message withdrawn",
    done_text: "The message has been withdrawn and deleted. The recipient can no longer open it.",
    already: "This message had already been withdrawn.",
    expired: "This message has already expired and been deleted. There is nothing left to withdraw.",
    outside_title: "You cannot withdraw from here",
    outside_text: "A message can only be withdrawn from the organisation's network. Open the link at your workplace, or ask the administrator to withdraw the message.",
    withdrawn_title: "This message has been withdrawn",
    withdrawn_text: "The sender has withdrawn this message. Please contact the sender if you have questions.",
};

pub fn text(lang: Lang) -> &'static RevokeText {
    lang.pick(&NL, &EN)
}

#[derive(Template)]
#[template(path = "portal/revoke.html")]
struct RevokePage {
    c: super::templates::Common,
    r: &'static RevokeText,
    recipients: Vec<String>,
    received: String,
    reference: String,
    csrf: String,
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Is `ip` one of the organisation's own clients? IPv4-mapped IPv6 counts as IPv4.
pub(super) fn internal(nets: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// The sender's pages (`/r/`, `/n/`) answer only the organisation's own clients; the
/// page for anyone else: 403 with `title` and `text` (what to do instead).
pub(super) fn outside(
    state: &WebState,
    ip: IpAddr,
    lang: Lang,
    title: &str,
    text: &str,
) -> Option<Response> {
    (!internal(&state.internal, ip))
        .then(|| notice_page(state, lang, StatusCode::FORBIDDEN, title, text))
}

fn binding(id: &str) -> String {
    format!("revoke:{id}")
}

fn here(token: &str) -> String {
    format!("/r/{token}")
}

/// The message behind the link, if the request may see it; else the page saying why.
async fn checked(
    state: &WebState,
    token: &str,
    ip: IpAddr,
    lang: Lang,
) -> Result<MessageSummary, Response> {
    let Some(revoke) = &state.revoke else {
        return Err(unknown(state, lang));
    };
    let r = text(lang);
    if let Some(refusal) = outside(state, ip, lang, r.outside_title, r.outside_text) {
        return Err(refusal);
    }
    match revoke.by_link(token).await {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(unknown(state, lang)),
        Err(e) => {
            tracing::warn!(error = %e, "portal: looking up a revoke link failed");
            Err(try_later(state, lang))
        }
    }
}

pub(super) fn utc(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

async fn page(
    State(state): St,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    let m = match checked(&state, &token, ip, lang).await {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    let r = text(lang);
    let status_text = match m.state.as_str() {
        "live" | "waiting" => None,
        "revoked" => Some(r.already),
        _ => Some(r.expired),
    };
    if let Some(t) = status_text {
        return notice_page(&state, lang, StatusCode::OK, r.title, t);
    }
    let page = RevokePage {
        c: common(&state, lang, r.title, &here(&token)),
        r,
        recipients: m.recipients.clone(),
        received: utc(m.created_at),
        reference: m.header_message_id.clone().unwrap_or_else(|| m.id.clone()),
        csrf: state.keys.csrf_token(&binding(&m.id)),
    };
    html(StatusCode::OK, page.render())
}

async fn withdraw(
    State(state): St,
    Path(token): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let lang = Lang::choose(None, &headers);
    let m = match checked(&state, &token, ip, lang).await {
        Ok(m) => m,
        Err(resp) => return resp,
    };
    if !session::same_origin(&headers, &state.origin)
        || !state.keys.csrf_ok(&binding(&m.id), &form.csrf)
    {
        return super::routes::refused(&state, lang);
    }
    let Some(revoke) = &state.revoke else {
        return unknown(&state, lang);
    };
    let r = text(lang);
    match revoke.withdraw(&m.id, ip).await {
        Ok(Revoke::Withdrawn) => {
            notice_page(&state, lang, StatusCode::OK, r.done_title, r.done_text)
        }
        Ok(Revoke::AlreadyWithdrawn) => {
            notice_page(&state, lang, StatusCode::OK, r.title, r.already)
        }
        Ok(Revoke::Expired) => notice_page(&state, lang, StatusCode::OK, r.title, r.expired),
        Ok(Revoke::Unknown) => unknown(&state, lang),
        Err(e) => {
            tracing::error!(error = %e, "portal: withdrawing a message failed");
            try_later(&state, lang)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_networks_include_mapped_ipv4() {
        let nets: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(internal(&nets, "10.1.2.3".parse().unwrap()));
        assert!(internal(&nets, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(internal(&nets, "::1".parse().unwrap()));
        assert!(!internal(&nets, "192.0.2.1".parse().unwrap()));
        assert!(!internal(&[], "10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn both_languages_have_every_text() {
        for t in [&NL, &EN] {
            for s in [
                t.title,
                t.intro,
                t.recipients,
                t.received,
                t.reference,
                t.warning,
                t.button,
                t.done_title,
                t.done_text,
                t.already,
                t.expired,
                t.outside_title,
                t.outside_text,
                t.withdrawn_title,
                t.withdrawn_text,
            ] {
                assert!(!s.is_empty());
            }
        }
    }
}
