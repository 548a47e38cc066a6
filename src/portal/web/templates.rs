//! The pages (askama, HTML auto-escaped): one layout, a landing/code page, the message
//! page, and a notice page for every refusal or error.

use askama::Template;

use super::i18n::Text;

/// What the layout needs on every page.
pub struct Common {
    pub t: &'static Text,
    pub org: String,
    pub title: String,
    /// The page's own path, for the language switch.
    pub here: String,
    /// `[portal.branding] logo`: its URL, shown instead of the name (alt: the name).
    pub logo: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/landing.html")]
pub struct Landing {
    pub c: Common,
    pub masked: String,
    pub csrf: String,
    pub code_form: bool,
    pub info: Option<String>,
    pub error: Option<String>,
}

pub struct AttachmentRow {
    pub part: usize,
    pub name: String,
    pub content_type: String,
    pub size: usize,
}

#[derive(Template)]
#[template(path = "portal/message.html")]
pub struct MessagePage {
    pub c: Common,
    pub csrf: String,
    pub from: String,
    pub date: String,
    pub subject: String,
    pub html: bool,
    pub text: String,
    pub attachments: Vec<AttachmentRow>,
    /// The reply form's texts, when the sender can get a reply.
    pub reply: Option<&'static super::reply::ReplyText>,
    /// This message answers the recipient's reply to one that arrived then (a date).
    pub answers: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/notice.html")]
pub struct Notice {
    pub c: Common,
    pub text: String,
}

/// The message body document shown in the frame.
#[derive(Template)]
#[template(path = "portal/body.html")]
pub struct Body {
    pub lang: &'static str,
    pub title: &'static str,
    /// Already sanitised: inserted unescaped.
    pub html: String,
}
