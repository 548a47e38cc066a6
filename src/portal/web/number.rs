//! The sender's one-time link to give a waiting recipient's number, `/n/<token>` (in the
//! "number needed" mail): a GET shows the recipient and a form, the POST stores the number
//! (E.164, a mobile number, else the form again with the reason) and optionally keeps it
//! in the address book. Only from `[outbound] networks`, with the Origin and CSRF checks
//! of every form; the link is spent once used.

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::i18n::Lang;
use super::revoke::outside;
use super::routes::{St, common, html, notice_page, refused, try_later, unknown};
use super::{ClientIp, WebState, session};
use crate::portal::phone::Phone;
use crate::portal::store::waiting::{Given, Waiting};

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/n/{token}", get(page).post(give))
}

pub struct NumberText {
    pub title: &'static str,
    pub intro: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub remember: &'static str,
    pub button: &'static str,
    pub done_title: &'static str,
    pub done_text: &'static str,
    pub spent: &'static str,
    pub outside_text: &'static str,
}

pub static NL: NumberText = NumberText {
    title: "Mobiel nummer invullen",
    intro: "Het beveiligde bericht wacht op het mobiele nummer van de ontvanger:",
    label: "Mobiel nummer",
    hint: "Bijvoorbeeld 06-12345678 of +31612345678.",
    remember: "Onthoud dit nummer voor dit e-mailadres",
    button: "Nummer opslaan",
    done_title: "Nummer opgeslagen",
    done_text: "Dank u. De ontvanger krijgt binnen een minuut de e-mail met de link.",
    spent: "Deze link is al gebruikt, of het bericht wacht niet meer.",
    outside_text: "Een nummer invullen kan alleen vanaf het netwerk van de organisatie. Open de link op uw werkplek.",
};

pub static EN: NumberText = NumberText {
    title: "Enter the mobile number",
    intro: "The secure message is waiting for the mobile number of the recipient:",
    label: "Mobile number",
    hint: "For example 06-12345678 or +31612345678.",
    remember: "Remember this number for this e-mail address",
    button: "Save number",
    done_title: "Number saved",
    done_text: "Thank you. The recipient gets the e-mail with the link within a minute.",
    spent: "This link was already used, or the message is no longer waiting.",
    outside_text: "A number can only be entered from the organisation's network. Open the link at your workplace.",
};

pub fn text(lang: Lang) -> &'static NumberText {
    lang.pick(&NL, &EN)
}

#[derive(Template)]
#[template(path = "portal/number.html")]
struct NumberPage {
    c: super::templates::Common,
    n: &'static NumberText,
    recipient: String,
    csrf: String,
    error: Option<String>,
    value: String,
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
}

#[derive(Deserialize)]
struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    remember: Option<String>,
}

fn binding(w: &Waiting) -> String {
    format!("number:{}", w.recipient_id)
}

async fn checked(
    state: &WebState,
    token: &str,
    ip: std::net::IpAddr,
    lang: Lang,
) -> Result<Waiting, Response> {
    let Some(numbers) = &state.numbers else {
        return Err(unknown(state, lang));
    };
    let n = text(lang);
    if let Some(refusal) = outside(state, ip, lang, n.title, n.outside_text) {
        return Err(refusal);
    }
    match numbers.by_link(token).await {
        Ok(Some(w)) if w.state == 0 => Ok(w),
        Ok(Some(_)) => Err(notice_page(state, lang, StatusCode::GONE, n.title, n.spent)),
        Ok(None) => Err(unknown(state, lang)),
        Err(e) => {
            tracing::warn!(error = %e, "portal: looking up a number link failed");
            Err(try_later(state, lang))
        }
    }
}

fn form(
    state: &WebState,
    lang: Lang,
    token: &str,
    w: &Waiting,
    error: Option<String>,
    value: String,
    status: StatusCode,
) -> Response {
    let n = text(lang);
    let page = NumberPage {
        c: common(state, lang, n.title, &format!("/n/{token}")),
        n,
        recipient: w.address.clone(),
        csrf: state.keys.csrf_token(&binding(w)),
        error,
        value,
    };
    html(status, page.render())
}

async fn page(
    State(state): St,
    Path(token): Path<String>,
    Query(q): Query<LangQuery>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    match checked(&state, &token, ip, lang).await {
        Ok(w) => form(
            &state,
            lang,
            &token,
            &w,
            None,
            String::new(),
            StatusCode::OK,
        ),
        Err(resp) => resp,
    }
}

async fn give(
    State(state): St,
    Path(token): Path<String>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    Form(f): Form<NumberForm>,
) -> Response {
    let lang = Lang::choose(None, &headers);
    let w = match checked(&state, &token, ip, lang).await {
        Ok(w) => w,
        Err(resp) => return resp,
    };
    if !session::same_origin(&headers, &state.origin) || !state.keys.csrf_ok(&binding(&w), &f.csrf)
    {
        return refused(&state, lang);
    }
    let phone = match Phone::parse(&f.number) {
        Ok(p) => p,
        Err(e) => {
            let shown: String = f.number.chars().take(32).collect();
            return form(
                &state,
                lang,
                &token,
                &w,
                Some(e.to_string()),
                shown,
                StatusCode::BAD_REQUEST,
            );
        }
    };
    let Some(numbers) = &state.numbers else {
        return unknown(&state, lang);
    };
    let n = text(lang);
    match numbers.give(&w, &phone, f.remember.is_some(), ip).await {
        Ok(Given::Stored) => notice_page(&state, lang, StatusCode::OK, n.done_title, n.done_text),
        Ok(Given::Spent) => notice_page(&state, lang, StatusCode::GONE, n.title, n.spent),
        Err(e) => {
            tracing::error!(error = %e, "portal: storing a number failed");
            try_later(&state, lang)
        }
    }
}
