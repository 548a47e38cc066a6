//! The accessibility statement (`/toegankelijkheid`, Dutch and English, linked from the
//! footer of every page): the standard (EN 301 549, which asks WCAG 2.1 level AA), how the
//! portal is checked, what is known not to work well, and whom to tell (`[portal.branding]
//! accessibility_contact`, default `[portal] from`).
//!
//! Every claim here is one the tests check: axe-core runs on every page in a real browser
//! (tests/portal_browser.rs, tests/portal_branding.rs), the code form is used with the
//! keyboard only, and the pages have no script at all (their policy has no `script-src`).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::i18n::Lang;
use super::routes::{St, common, html};
use super::session;
use super::templates::Common;

/// The statement's fixed path (Dutch: most readers are Dutch; the page itself follows the
/// language switch).
pub const STATEMENT_PATH: &str = "/toegankelijkheid";

/// The statement's texts, written for language level B1.
#[derive(Debug)]
pub struct StatementText {
    /// After the organisation's name.
    pub intro: &'static str,
    pub standard_title: &'static str,
    pub standard: &'static str,
    pub checked_title: &'static str,
    pub checked: &'static [&'static str],
    pub limits_title: &'static str,
    pub limits: &'static [&'static str],
    pub contact_title: &'static str,
    /// Before the contact address.
    pub contact: &'static str,
    pub contact_after: &'static str,
}

pub static NL: StatementText = StatementText {
    intro: "wil dat iedereen dit berichtenportaal kan gebruiken. Ook mensen die slecht zien of geen muis gebruiken.",
    standard_title: "Welke regels wij volgen",
    standard: "Het portaal volgt de Europese norm EN 301 549. Die norm vraagt dat een website voldoet aan WCAG 2.1, niveau AA. WCAG is een lijst met regels voor websites die iedereen kan gebruiken.",
    checked_title: "Hoe wij dat controleren",
    checked: &[
        "Bij elke nieuwe versie testen wij elke pagina automatisch in een echte browser. Dat doen wij met het programma axe-core.",
        "Wij testen of alles werkt met alleen het toetsenbord, zonder muis.",
        "Het portaal gebruikt geen JavaScript. Het werkt dus ook als dat in uw browser uit staat.",
        "Een automatische test vindt niet elk probleem. Daarom horen wij graag van u als iets niet goed werkt.",
    ],
    limits_title: "Wat nog niet goed werkt",
    limits: &[
        "Het bericht en de bijlagen komen van de afzender. Die kunnen wij niet aanpassen. Kunt u een bijlage niet lezen? Vraag de afzender dan om een andere vorm.",
        "U heeft een mobiele telefoon nodig. De code komt per sms. Lukt dat niet? Neem dan contact op met de afzender.",
        "Een code werkt 10 minuten. Is de tijd voorbij? Vraag dan een nieuwe code aan.",
    ],
    contact_title: "Werkt iets niet goed?",
    contact: "Stuur een e-mail naar",
    contact_after: "Schrijf erbij op welke pagina het was en wat er misging.",
};

pub static EN: StatementText = StatementText {
    intro: "wants everyone to be able to use this message portal. This includes people who do not see well or do not use a mouse.",
    standard_title: "Which rules we follow",
    standard: "The portal follows the European standard EN 301 549. That standard asks that a website meets WCAG 2.1, level AA. WCAG is a list of rules for websites that everyone can use.",
    checked_title: "How we check this",
    checked: &[
        "With every new version we test every page automatically in a real browser. We do this with the program axe-core.",
        "We test that everything works with the keyboard only, without a mouse.",
        "The portal does not use JavaScript. So it also works when JavaScript is turned off in your browser.",
        "An automatic test does not find every problem. That is why we want to hear from you when something does not work well.",
    ],
    limits_title: "What does not work well yet",
    limits: &[
        "The message and its attachments come from the sender. We cannot change them. Can you not read an attachment? Then ask the sender for another format.",
        "You need a mobile phone. The code comes by text message. Is that a problem for you? Then contact the sender.",
        "A code works for 10 minutes. Has the time run out? Then ask for a new code.",
    ],
    contact_title: "Does something not work well?",
    contact: "Send an e-mail to",
    contact_after: "Tell us on which page it was and what went wrong.",
};

fn texts(lang: Lang) -> &'static StatementText {
    match lang {
        Lang::Nl => &NL,
        Lang::En => &EN,
    }
}

#[derive(Template)]
#[template(path = "portal/statement.html")]
struct StatementPage {
    c: Common,
    s: &'static StatementText,
    contact: String,
}

#[derive(Deserialize)]
pub(super) struct StatementQuery {
    lang: Option<String>,
}

pub(super) async fn page(
    State(state): St,
    Query(q): Query<StatementQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::choose(q.lang.as_deref(), &headers);
    let page = StatementPage {
        c: common(&state, lang, lang.text().accessibility, STATEMENT_PATH),
        s: texts(lang),
        contact: state.brand.contact.clone(),
    };
    let mut resp = html(StatusCode::OK, page.render());
    // The switch here is remembered like on the message pages.
    if let Some(l) = q.lang.as_deref().and_then(Lang::parse) {
        resp.headers_mut()
            .append(header::SET_COOKIE, session::lang_cookie(l.code()));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_say_the_same_things() {
        assert_eq!(NL.checked.len(), EN.checked.len());
        assert_eq!(NL.limits.len(), EN.limits.len());
        for t in [&NL, &EN] {
            assert!(t.standard.contains("EN 301 549") && t.standard.contains("WCAG 2.1"));
            assert!(t.checked.iter().any(|l| l.contains("axe-core")));
        }
    }
}
