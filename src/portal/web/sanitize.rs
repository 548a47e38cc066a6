//! The HTML body as it may be shown: no scripts, no event handlers, no `javascript:` or
//! other active URLs, no styles, and nothing that loads from anywhere but the message
//! itself (`cid:` images become this portal's routes for that part). The result is still
//! shown in a sandboxed frame under a CSP without scripts: two independent walls.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Sanitises `html`; `cid:` image sources that name a part in `cids` become
/// `{part_base}{index}`, every other image source is removed.
pub fn sanitise(html: &str, cids: &HashMap<String, usize>, part_base: &str) -> String {
    let cids = cids.clone();
    let base = part_base.to_string();
    let own = part_base.to_string();
    ammonia::Builder::default()
        // Links may point out (opened in a new top-level context without referrer); image
        // sources only at the message's own parts.
        .url_schemes(HashSet::from(["http", "https", "mailto", "cid"]))
        .url_relative(ammonia::UrlRelative::Custom(Box::new(OnlyOwn(own))))
        .set_tag_attribute_value("a", "target", "_blank")
        .attribute_filter(move |element, attribute, value| {
            let url_attr = matches!(attribute, "src" | "srcset" | "background" | "poster");
            match (element, attribute) {
                ("img", "src") => {
                    let id = value.strip_prefix("cid:")?;
                    let index = cids.get(id.trim_start_matches('<').trim_end_matches('>'))?;
                    Some(Cow::Owned(format!("{base}{index}")))
                }
                ("a", "href") if value.starts_with("cid:") => None,
                _ if url_attr => None,
                _ => Some(Cow::Borrowed(value)),
            }
        })
        .clean(html)
        .to_string()
}

/// Relative URLs survive only when they are this message's own part routes (which the
/// filter above produced); any other relative URL in the mail is dropped.
struct OnlyOwn(String);

impl ammonia::UrlRelativeEvaluate<'_> for OnlyOwn {
    fn evaluate<'a>(&self, url: &'a str) -> Option<Cow<'a, str>> {
        let rest = url.strip_prefix(self.0.as_str())?;
        (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())).then_some(Cow::Borrowed(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        let cids = HashMap::from([("logo@zkh".to_string(), 3usize)]);
        sanitise(html, &cids, "/m/T/part/")
    }

    #[test]
    fn scripts_and_handlers_go() {
        let out = clean(
            "<p onclick=\"window.__pwned=1\">hi</p><script>window.__pwned=1</script>\
             <img src=x onerror=\"window.__pwned=1\"><svg onload=alert(1)></svg>\
             <iframe src=\"https://evil.example/\"></iframe><form action=/x><input></form>\
             <style>body{background:url(https://evil.example/t)}</style>",
        );
        for bad in [
            "script", "onerror", "onclick", "onload", "__pwned", "iframe", "evil", "form", "style",
        ] {
            assert!(!out.contains(bad), "{bad} in {out}");
        }
        assert!(out.contains("<p>hi</p>"), "{out}");
    }

    #[test]
    fn javascript_urls_go() {
        let out = clean(
            "<a href=\"javascript:window.__pwned=1\">a</a><a href=\" JaVaScRiPt:alert(1)\">b</a>\
             <a href=\"data:text/html,<script>alert(1)</script>\">c</a><a href=\"vbscript:x\">d</a>",
        );
        for bad in ["javascript", "JaVaScRiPt", "data:", "vbscript", "alert"] {
            assert!(!out.contains(bad), "{bad} in {out}");
        }
    }

    #[test]
    fn remote_content_goes_links_stay() {
        let out = clean(
            "<img src=\"https://tracker.example/p.gif\" alt=\"t\"><img src=\"//tracker.example/x\">\
             <img srcset=\"https://tracker.example/a 2x\"><video poster=\"https://t.example/p\"></video>\
             <table background=\"https://t.example/b\"><tr><td>x</td></tr></table>\
             <img src=\"/m/OTHER/eml\"><a href=\"https://www.example.org/info\">info</a>",
        );
        assert!(!out.contains("tracker"), "{out}");
        assert!(!out.contains("t.example"), "{out}");
        assert!(!out.contains("OTHER"), "{out}");
        assert!(
            out.contains(
                "<a href=\"https://www.example.org/info\" target=\"_blank\" rel=\"noopener noreferrer\">info</a>"
            ),
            "{out}"
        );
    }

    #[test]
    fn cid_images_become_part_routes() {
        let out =
            clean("<img src=\"cid:logo@zkh\" alt=\"logo\"><img src=\"cid:unknown\" alt=\"u\">");
        assert!(
            out.contains("<img src=\"/m/T/part/3\" alt=\"logo\">"),
            "{out}"
        );
        assert!(out.contains("<img alt=\"u\">"), "{out}");
    }
}
