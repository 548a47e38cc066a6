//! What every response carries (security headers) and what every request passes first
//! (per-address rate limit, bounded in memory).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// The pages' policy: nothing but this origin's stylesheet, images and frames (the
/// message body), forms only to this origin, no scripts at all, never framed.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The message body's own policy (shown in a sandboxed frame of the message page):
/// images of the message itself only, no scripts, no forms, framed only by this origin.
pub const BODY_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
    form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox";
/// Downloads: nothing runs even if a browser were to render one.
pub const DOWNLOAD_CSP: &str = "default-src 'none'; sandbox; frame-ancestors 'none'";

/// Sets the headers every response gets; a handler's own CSP (body, downloads) is kept.
pub fn secure_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        set(h, header::CONTENT_SECURITY_POLICY, PAGE_CSP);
    }
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        set(h, header::X_FRAME_OPTIONS, "DENY");
    }
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    // Only the logo sets its own (it is public and versioned by its URL); everything
    // else is personal and never stored.
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
        set(h, header::PRAGMA, "no-cache");
    }
    set(
        h,
        HeaderName::from_static("x-robots-tag"),
        "noindex, nofollow",
    );
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    );
}

/// Requests per address per window, and addresses tracked at most (when full, the
/// oldest windows are dropped first: memory stays bounded under a flood of addresses).
pub const REQUESTS_PER_WINDOW: u32 = 120;
pub const POSTS_PER_WINDOW: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(60);
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Default)]
struct Counter {
    start: Option<Instant>,
    all: u32,
    posts: u32,
}

/// A fixed-window counter per address (IPv6 by /64: one host has a whole /64).
#[derive(Debug, Default)]
pub struct RateLimiter {
    map: Mutex<HashMap<IpAddr, Counter>>,
}

fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl RateLimiter {
    /// Whether one more request (a POST when `post`) from `ip` is allowed now.
    pub fn allow(&self, ip: IpAddr, post: bool, now: Instant) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&bucket(ip)) {
            map.retain(|_, c| c.start.is_some_and(|s| now.duration_since(s) < WINDOW));
            if map.len() >= MAX_TRACKED {
                // Still full of live windows: a flood; forget them all rather than grow.
                map.clear();
            }
        }
        let c = map.entry(bucket(ip)).or_default();
        if c.start.is_none_or(|s| now.duration_since(s) >= WINDOW) {
            *c = Counter {
                start: Some(now),
                all: 0,
                posts: 0,
            };
        }
        c.all += 1;
        if post {
            c.posts += 1;
        }
        c.all <= REQUESTS_PER_WINDOW && c.posts <= POSTS_PER_WINDOW
    }

    #[cfg(test)]
    pub fn tracked(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_on_every_response() {
        let mut h = HeaderMap::new();
        secure_headers(&mut h);
        let get = |n: &str| h.get(n).unwrap().to_str().unwrap().to_string();
        assert!(get("content-security-policy").contains("default-src 'none'"));
        assert!(get("content-security-policy").contains("frame-ancestors 'none'"));
        assert!(!get("content-security-policy").contains("script-src"));
        assert_eq!(get("cache-control"), "no-store");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("x-content-type-options"), "nosniff");
        assert!(get("x-robots-tag").contains("noindex"));
        assert!(get("strict-transport-security").starts_with("max-age="));
        assert_eq!(get("x-frame-options"), "DENY");
        // A handler's own policy stays.
        let mut b = HeaderMap::new();
        b.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(BODY_CSP),
        );
        b.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        secure_headers(&mut b);
        assert_eq!(b.get("content-security-policy").unwrap(), BODY_CSP);
        assert_eq!(b.get("cache-control").unwrap(), "max-age=60");
        assert!(b.get("pragma").is_none());
        assert_eq!(b.get("x-content-type-options").unwrap(), "nosniff");
    }

    #[test]
    fn rate_limit_windows_and_bound() {
        let r = RateLimiter::default();
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..POSTS_PER_WINDOW {
            assert!(r.allow(ip, true, t));
        }
        assert!(!r.allow(ip, true, t));
        // Another address is not affected; the same one is again after the window.
        assert!(r.allow("192.0.2.2".parse().unwrap(), true, t));
        assert!(r.allow(ip, true, t + WINDOW));
        // One /64 is one bucket.
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..REQUESTS_PER_WINDOW {
            assert!(r.allow(a, false, t));
        }
        assert!(!r.allow(b, false, t));
        for i in 0..(MAX_TRACKED as u32 + 50) {
            r.allow(IpAddr::V4(i.into()), false, t);
        }
        assert!(r.tracked() <= MAX_TRACKED);
    }
}
