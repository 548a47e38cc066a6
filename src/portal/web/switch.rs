//! Where the language switch of a page points. A page made for a link (the recipient's
//! `/m/<token>`, the sender's `/r/<token>` and `/n/<token>`, and everything under them,
//! also the notice after a POST) switches on the link's own page, which shows the same
//! state in the other language (a GET there never changes anything); the accessibility
//! statement on itself; anything else on `/`, the "link not found" page, which is what
//! every unknown path shows anyway.
//!
//! The notice pages are built deep inside handlers that do not know the request's path, so
//! [`super::front_door`] puts the target in a task-local for the request's duration
//! instead of every error path carrying it.

use super::statement::STATEMENT_PATH;

/// The links the portal mails out: the recipient's message, the sender's revoke and
/// number pages.
const LINK_PREFIXES: [&str; 3] = ["/m/", "/r/", "/n/"];

tokio::task_local! {
    static TARGET: String;
}

/// The switch target for a request path: only paths the portal itself makes, so that no
/// request can put its own text (`//other.example`) into the page's links.
pub(super) fn target(path: &str) -> String {
    if path == STATEMENT_PATH {
        return path.to_string();
    }
    for prefix in LINK_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix) {
            let token = rest.split('/').next().unwrap_or("");
            if !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return format!("{prefix}{token}");
            }
        }
    }
    "/".to_string()
}

/// Runs `f` (the rest of the request) with `target` as the switch target.
pub(super) async fn scope<F: std::future::Future>(target: String, f: F) -> F::Output {
    TARGET.scope(target, f).await
}

/// The current request's switch target (`/` outside a request).
pub(super) fn current() -> String {
    TARGET
        .try_with(String::clone)
        .unwrap_or_else(|_| "/".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(target("/m/abc_-9"), "/m/abc_-9");
        assert_eq!(target("/m/abc/send"), "/m/abc");
        assert_eq!(target("/m/abc/part/2"), "/m/abc");
        assert_eq!(target("/r/abc"), "/r/abc");
        assert_eq!(target("/n/abc"), "/n/abc");
        assert_eq!(target(STATEMENT_PATH), STATEMENT_PATH);
        for other in [
            "/",
            "/x",
            "//evil.example",
            "/m/",
            "/m/a.b",
            "/m/%2F%2Fx",
            "/x/abc",
        ] {
            assert_eq!(target(other), "/", "{other}");
        }
    }

    #[tokio::test]
    async fn scoped_per_request() {
        assert_eq!(current(), "/");
        let inside = scope("/m/t".into(), async { current() }).await;
        assert_eq!(inside, "/m/t");
        assert_eq!(current(), "/");
    }
}
