//! The organisation's look (`[portal.branding]`): the colours as a generated stylesheet
//! (`/static/theme.css`, so that the pages keep their `style-src 'self'` policy and carry
//! no inline style), the logo at one fixed path, and the routes of the accessibility
//! statement.
//!
//! The logo may be an SVG. An SVG shown through `<img>` never runs script (browsers load
//! image documents without scripts or external resources), and this response also
//! carries `default-src 'none'; sandbox`, so that opening `/static/logo` on its own runs
//! nothing either; `nosniff` keeps browsers to the declared type. That is why SVG is
//! accepted rather than refused: many organisations only have their logo as SVG.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::WebState;
use super::statement::{self, STATEMENT_PATH};
use crate::config::portal::{Branding, LogoKind};

/// The fixed path of the logo; pages add `?v=<hash of the file>` so that a new logo is
/// fetched at once although the old one may be cached for a year.
pub const LOGO_PATH: &str = "/static/logo";
/// A year: the URL changes with the file, so a cached copy is never stale.
const LOGO_CACHE: &str = "public, max-age=31536000, immutable";
/// The logo's own policy: nothing inside it may load or run anything (see the module
/// comment), though an SVG's own inline style may apply.
const LOGO_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; sandbox; frame-ancestors 'none'";

/// What the pages need of the branding, prepared once at start.
#[derive(Debug)]
pub struct Brand {
    theme_css: String,
    logo: Option<(LogoKind, bytes::Bytes)>,
    /// `LOGO_PATH?v=...`, for the pages' `<img src>`.
    pub logo_url: Option<String>,
    /// The accessibility statement's contact address.
    pub contact: String,
}

impl Brand {
    pub fn new(b: &Branding) -> Brand {
        let logo_url = b.logo.as_ref().map(|l| {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &l.bytes);
            format!(
                "{LOGO_PATH}?v={}",
                data_encoding::HEXLOWER.encode(&hash.as_ref()[..8])
            )
        });
        Brand {
            theme_css: format!(
                "/* [portal.branding]: each colour at least 4.5:1 on white (WCAG 2.1 AA). */\n\
                 :root {{ --primary: {}; --accent: {}; }}\n",
                b.primary, b.accent
            ),
            logo: b
                .logo
                .as_ref()
                .map(|l| (l.kind, bytes::Bytes::from(l.bytes.clone()))),
            logo_url,
            contact: b.accessibility_contact.clone(),
        }
    }
}

pub(super) fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/static/theme.css", get(theme))
        .route(LOGO_PATH, get(logo))
        .route(STATEMENT_PATH, get(statement::page))
}

async fn theme(axum::extract::State(state): super::routes::St) -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        state.brand.theme_css.clone(),
    )
        .into_response()
}

async fn logo(axum::extract::State(state): super::routes::St) -> Response {
    let Some((kind, bytes)) = &state.brand.logo else {
        return super::routes::unknown(&state, super::i18n::Lang::Nl);
    };
    let mut resp = ([(header::CONTENT_TYPE, kind.content_type())], bytes.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(LOGO_CACHE));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(LOGO_CSP),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::portal::{Colour, Logo};

    #[test]
    fn theme_and_logo_url() {
        let mut b = Branding::plain("a@zkh.nl");
        b.primary = Colour([0x12, 0x34, 0x56]);
        let plain = Brand::new(&b);
        assert!(plain.theme_css.contains("--primary: #123456;"));
        assert!(plain.theme_css.contains("--accent: #b35900;"));
        assert_eq!(plain.logo_url, None);
        b.logo = Some(Logo {
            kind: LogoKind::Png,
            bytes: b"\x89PNG\r\n\x1a\nA".to_vec(),
        });
        let one = Brand::new(&b).logo_url.unwrap();
        b.logo.as_mut().unwrap().bytes.push(b'B');
        let two = Brand::new(&b).logo_url.unwrap();
        assert!(
            one.starts_with("/static/logo?v=") && one.len() == 15 + 16,
            "{one}"
        );
        assert_ne!(one, two, "a new file, a new URL");
    }
}
