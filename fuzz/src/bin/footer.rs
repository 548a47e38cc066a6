//! The MIME-aware footer (`message::footer::add_footer`), with header fields and body as
//! the milter passes them (see `headers_and_body`). A footer that was added must leave a
//! body that parses as the same kind of message again.

use nta7516_milter::config::Config;
use nta7516_milter::message::footer::{Footer, Outcome, add_footer};
use nta7516_milter_fuzz::headers_and_body;

fn main() {
    let config = Config::embedded_defaults();
    let footer = Footer {
        text: &config.footer.text,
        html: &config.footer.html,
    };
    afl::fuzz!(|data: &[u8]| {
        let (headers, body) = headers_and_body(data);
        if let Outcome::Added { body, parts, .. } = add_footer(&headers, body, &footer) {
            assert!(parts > 0);
            // Adding it again must not fail in a new way (no panic, no unbounded growth).
            if let Outcome::Added { body: again, .. } = add_footer(&headers, &body, &footer) {
                assert!(again.len() <= 2 * body.len() + 64 * 1024);
            }
        }
    });
}
