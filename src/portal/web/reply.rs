//! The reply form on the message page and `POST /m/<token>/reply` (multipart): the text
//! and up to [`MAX_REPLY_FILES`] files, at most [`MAX_REPLY_BYTES`] together. In a session
//! only, with the session's CSRF token and the Origin check; the form's fields are
//! exactly `csrf`, `text` and `attachment` (anything else is refused: nothing a visitor
//! sends becomes a recipient or a header). Each limit has its own clear message.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, multipart::Field};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::i18n::Lang;
use super::link::{Authorised, session_binding, session_for};
use super::routes::{notice_page, refused};
use super::{ReplyError, Upload, WebState, session};
pub use crate::portal::reply::{MAX_REPLY_BYTES, MAX_REPLY_FILES, MAX_REPLY_TEXT};

/// The request body limit of the reply route: the files, the text and the multipart
/// framing; above it the request is cut off (413) before it is read whole.
pub const MAX_REPLY_REQUEST: usize = MAX_REPLY_BYTES + MAX_REPLY_TEXT + 64 * 1024;
/// The CSRF field is a short MAC; anything longer is not one.
const MAX_CSRF: usize = 256;

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new().route(
        "/m/{token}/reply",
        post(reply).layer(DefaultBodyLimit::max(MAX_REPLY_REQUEST)),
    )
}

/// The texts of the reply form and its outcomes.
pub struct ReplyText {
    pub heading: &'static str,
    pub in_reply_to: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub files: &'static str,
    pub files_hint: &'static str,
    pub button: &'static str,
    pub sent_title: &'static str,
    pub sent_text: &'static str,
    pub empty: &'static str,
    pub too_long: &'static str,
    pub too_many_files: &'static str,
    pub too_big: &'static str,
    pub too_many_replies: &'static str,
    pub not_possible: &'static str,
    pub bad_form: &'static str,
    pub failed: &'static str,
    pub back: &'static str,
}

pub static NL: ReplyText = ReplyText {
    heading: "Antwoorden",
    in_reply_to: "Dit is een antwoord op uw bericht van",
    label: "Uw antwoord",
    hint: "Uw antwoord gaat beveiligd naar de afzender.",
    files: "Bijlagen (niet verplicht)",
    files_hint: "Hoogstens 5 bestanden, samen hoogstens 10 MB.",
    button: "Antwoord versturen",
    sent_title: "Antwoord verstuurd",
    sent_text: "Uw antwoord is beveiligd verstuurd naar de afzender.",
    empty: "Schrijf een antwoord of voeg een bijlage toe.",
    too_long: "Uw antwoord is te lang. Maak het korter, of stuur de tekst als bijlage.",
    too_many_files: "U kunt hoogstens 5 bijlagen meesturen.",
    too_big: "De bijlagen zijn samen te groot. Samen mogen ze hoogstens 10 MB zijn.",
    too_many_replies: "U heeft het hoogste aantal antwoorden op dit bericht bereikt. Neem op een andere manier contact op met de afzender.",
    not_possible: "Op dit bericht kunt u hier niet antwoorden. Neem op een andere manier contact op met de afzender.",
    bad_form: "Het formulier is niet goed ontvangen. Open het bericht opnieuw en probeer het nog een keer.",
    failed: "Uw antwoord kon nu niet worden verstuurd. Probeer het later opnieuw.",
    back: "Terug naar het bericht",
};

pub static EN: ReplyText = ReplyText {
    heading: "Reply",
    in_reply_to: "This is an answer to your message of",
    label: "Your reply",
    hint: "Your reply is sent securely to the sender.",
    files: "Attachments (optional)",
    files_hint: "At most 5 files, at most 10 MB together.",
    button: "Send reply",
    sent_title: "Reply sent",
    sent_text: "Your reply was sent securely to the sender.",
    empty: "Please write a reply or add an attachment.",
    too_long: "Your reply is too long. Please make it shorter, or send the text as an attachment.",
    too_many_files: "You can send at most 5 attachments.",
    too_big: "The attachments are too large together. Together they may be at most 10 MB.",
    too_many_replies: "You have reached the highest number of replies to this message. Please contact the sender in another way.",
    not_possible: "You cannot reply to this message here. Please contact the sender in another way.",
    bad_form: "The form was not received correctly. Please open the message again and try once more.",
    failed: "Your reply could not be sent now. Please try again later.",
    back: "Back to the message",
};

pub fn text(lang: Lang) -> &'static ReplyText {
    lang.pick(&NL, &EN)
}

/// Why a reply form was refused before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormError {
    Empty,
    TooLong,
    TooManyFiles,
    TooBig,
    Bad,
}

struct ReplyForm {
    csrf: String,
    text: String,
    files: Vec<Upload>,
}

/// Reads a field whole, refusing it past `max` bytes (`over` says which limit).
async fn bounded(mut f: Field<'_>, max: usize, over: FormError) -> Result<Vec<u8>, FormError> {
    let mut out = Vec::new();
    while let Some(chunk) = f.chunk().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            FormError::TooBig
        } else {
            FormError::Bad
        }
    })? {
        if out.len() + chunk.len() > max {
            return Err(over);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn read_form(mut mp: Multipart) -> Result<ReplyForm, FormError> {
    let mut form = ReplyForm {
        csrf: String::new(),
        text: String::new(),
        files: Vec::new(),
    };
    let mut total = 0usize;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(FormError::TooBig);
            }
            Err(_) => return Err(FormError::Bad),
        };
        match field.name().unwrap_or("") {
            "csrf" => {
                let v = bounded(field, MAX_CSRF, FormError::Bad).await?;
                form.csrf = String::from_utf8(v).map_err(|_| FormError::Bad)?;
            }
            "text" => {
                let v = bounded(field, MAX_REPLY_TEXT, FormError::TooLong).await?;
                form.text = String::from_utf8(v).map_err(|_| FormError::Bad)?;
            }
            "attachment" => {
                let name = field.file_name().unwrap_or("").to_string();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let data = bounded(field, MAX_REPLY_BYTES - total, FormError::TooBig).await?;
                // A file input left empty is sent as a part without name or bytes.
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                if form.files.len() == MAX_REPLY_FILES {
                    return Err(FormError::TooManyFiles);
                }
                total += data.len();
                form.files.push(Upload {
                    name,
                    content_type,
                    data,
                });
            }
            _ => return Err(FormError::Bad),
        }
    }
    if form.text.trim().is_empty() && form.files.is_empty() {
        return Err(FormError::Empty);
    }
    Ok(form)
}

async fn reply(auth: Authorised, mp: Multipart) -> Response {
    let Authorised { link, r, raw } = auth;
    let (state, lang) = (&link.state, link.lang);
    let t = text(lang);
    if !session::same_origin(&link.headers, &state.origin) {
        return refused(state, lang);
    }
    let Some(replies) = state.replies.clone() else {
        return notice_page(
            state,
            lang,
            StatusCode::NOT_FOUND,
            t.heading,
            t.not_possible,
        );
    };
    let form = match read_form(mp).await {
        Ok(f) => f,
        Err(e) => {
            let (status, msg) = match e {
                FormError::Empty => (StatusCode::BAD_REQUEST, t.empty),
                FormError::TooLong => (StatusCode::PAYLOAD_TOO_LARGE, t.too_long),
                FormError::TooManyFiles => (StatusCode::PAYLOAD_TOO_LARGE, t.too_many_files),
                FormError::TooBig => (StatusCode::PAYLOAD_TOO_LARGE, t.too_big),
                FormError::Bad => (StatusCode::BAD_REQUEST, t.bad_form),
            };
            return notice_page(state, lang, status, t.heading, msg);
        }
    };
    // The session is the one Authorised found; its CSRF token must come with the form.
    let Some(sid) = session_for(state, &link.headers, &r).await else {
        return refused(state, lang);
    };
    if !state.keys.csrf_ok(&session_binding(&sid), &form.csrf) {
        return refused(state, lang);
    }
    let client = link.ip.0.to_string();
    match replies
        .reply(&r, &raw, &form.text, &form.files, &client)
        .await
    {
        Ok(()) => notice_page(state, lang, StatusCode::OK, t.sent_title, t.sent_text),
        Err(ReplyError::NotPossible) => notice_page(
            state,
            lang,
            StatusCode::FORBIDDEN,
            t.heading,
            t.not_possible,
        ),
        Err(ReplyError::TooMany) => notice_page(
            state,
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            t.heading,
            t.too_many_replies,
        ),
        Err(ReplyError::Temporary) => notice_page(
            state,
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            t.heading,
            t.failed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_pinned() {
        assert_eq!(MAX_REPLY_FILES, 5);
        assert_eq!(MAX_REPLY_BYTES, 10 * 1024 * 1024);
        assert_eq!(MAX_REPLY_TEXT, 64 * 1024);
        const { assert!(MAX_REPLY_REQUEST > MAX_REPLY_BYTES + MAX_REPLY_TEXT) };
        // The texts name the limits they enforce.
        assert!(NL.files_hint.contains('5') && NL.files_hint.contains("10 MB"));
        assert!(EN.too_big.contains("10 MB") && EN.too_many_files.contains('5'));
    }
}
