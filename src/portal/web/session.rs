//! Cookies and request checks: the session cookie, the language cookie, the Origin /
//! Sec-Fetch-Site check that every POST passes besides its CSRF token.

use axum::http::{HeaderMap, HeaderValue, header};

/// `__Host-`: the browser only keeps it when Secure, Path=/ and without Domain, so no
/// other host (not even a subdomain) can set or overwrite it (RFC 6265bis 4.1.3.2).
pub const SESSION_COOKIE: &str = "__Host-nta-session";
pub const LANG_COOKIE: &str = "__Host-lang";
/// Longest cookie header read (a browser sends a few hundred bytes here).
const MAX_COOKIE_HEADER: usize = 4096;

/// The value of cookie `name`, if sent.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for value in headers.get_all(header::COOKIE) {
        let Ok(v) = value.to_str() else { continue };
        if v.len() > MAX_COOKIE_HEADER {
            continue;
        }
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=')
                && k == name
            {
                return Some(val.to_string());
            }
        }
    }
    None
}

/// `Set-Cookie` for a new session: HttpOnly, Secure, SameSite=Strict, no Max-Age (gone
/// when the browser closes; the server ends it after 15 idle or 60 minutes anyway).
pub fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("x=; Path=/"))
}

pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-nta-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

pub fn lang_cookie(lang: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={lang}; Path=/; Secure; SameSite=Strict; Max-Age=31536000"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("x=; Path=/"))
}

/// A POST must come from a page of this portal: `Sec-Fetch-Site` (sent by every current
/// browser) must be `same-origin` when present, and `Origin`, when present, must be the
/// portal's own origin (`public_url`) or the Host the request was sent to. The CSRF token
/// is checked as well; this only refuses cross-site requests early and for old browsers.
pub fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    // Under `Referrer-Policy: no-referrer` browsers send `Origin: null` with their own
    // form posts; then `Sec-Fetch-Site: same-origin` (checked above) is the proof.
    if origin == "null" {
        return headers.contains_key("sec-fetch-site");
    }
    if origin == public_origin {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_, o)), Some(h)) => o == h,
        _ => false,
    }
}

/// `scheme://host[:port]` of a URL (the part `Origin` carries).
pub fn origin_of(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            format!("{scheme}://{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn cookies() {
        let m = h(&[("cookie", "a=1; __Host-nta-session=abc; b=2")]);
        assert_eq!(cookie(&m, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&m, "c"), None);
        let c = session_cookie("xyz");
        let s = c.to_str().unwrap();
        for part in [
            "__Host-nta-session=xyz",
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
        ] {
            assert!(s.contains(part), "{s}");
        }
        assert!(!s.contains("Domain"));
        assert!(
            clear_session_cookie()
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn origin_checks() {
        let o = "https://portal.example.nl";
        assert!(same_origin(&h(&[]), o));
        assert!(same_origin(
            &h(&[
                ("origin", "https://portal.example.nl"),
                ("sec-fetch-site", "same-origin")
            ]),
            o
        ));
        assert!(!same_origin(&h(&[("origin", "https://evil.example")]), o));
        assert!(!same_origin(&h(&[("sec-fetch-site", "cross-site")]), o));
        assert!(!same_origin(&h(&[("sec-fetch-site", "same-site")]), o));
        assert!(!same_origin(&h(&[("origin", "null")]), o));
        assert!(same_origin(
            &h(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            o
        ));
        assert!(!same_origin(
            &h(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            o
        ));
        // Directly at the listener (tests, or a proxy that keeps Host).
        assert!(same_origin(
            &h(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080")
            ]),
            o
        ));
        assert_eq!(origin_of("https://portal.example.nl/base/"), o);
    }
}
