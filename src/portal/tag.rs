//! The `[sms:+31612345678]` subject tag: how a sender without a trusted client (or without a
//! mail client that can set `X-NTA7516-Phone`) supplies the recipient's mobile number.
//!
//! The tag is found case-insensitively (`[SMS: 06 1234 5678]` too) and every tag is removed
//! from the subject, also a malformed one: the number is personal data that must not stay in
//! the stored subject, which the recipient and the audit trail see.

use crate::portal::phone::{Phone, PhoneError};

/// The tag's opening, compared case-insensitively.
const OPEN: &str = "[sms:";
/// A tag longer than this is no tag (a number is at most 32 characters as written,
/// `Phone::parse`): a subject with `[sms:` and a far-away `]` keeps its text.
pub const MAX_TAG_LEN: usize = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("the [sms:...] tag holds no usable mobile number: {0}")]
    Invalid(PhoneError),
    #[error("the subject has [sms:...] tags with different numbers")]
    Conflicting,
}

/// What [`take_sms_tag`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    /// The number, or why the tag(s) gave none.
    pub phone: Result<Phone, TagError>,
    /// The subject with every tag removed and the white space around them tidied.
    pub subject: String,
}

/// Finds and removes `[sms:...]` tags. `None` when the subject has no tag (it is then
/// unchanged). Several tags with the same number are one number; different numbers are
/// [`TagError::Conflicting`], never a guess.
pub fn take_sms_tag(subject: &str) -> Option<Tagged> {
    let mut rest = subject;
    let mut kept: Vec<&str> = Vec::new();
    let mut numbers: Vec<Result<Phone, PhoneError>> = Vec::new();
    while let Some(start) = find_open(rest) {
        let after = &rest[start + OPEN.len()..];
        // The content ends at the first bracket; `[` first (another tag) or none near
        // enough means this one is not a tag: keep its text and look further.
        let close = after
            .find(['[', ']'])
            .filter(|&e| after.as_bytes()[e] == b']' && e + OPEN.len() < MAX_TAG_LEN);
        let Some(end) = close else {
            kept.push(&rest[..start + OPEN.len()]);
            rest = after;
            continue;
        };
        kept.push(&rest[..start]);
        numbers.push(Phone::parse(&after[..end]));
        rest = &after[end + 1..];
    }
    if numbers.is_empty() {
        return None;
    }
    kept.push(rest);
    let phone = match numbers.iter().find_map(|n| n.as_ref().err()) {
        Some(e) => Err(TagError::Invalid(e.clone())),
        None => {
            let first = numbers[0].clone().expect("no error among the numbers");
            if numbers.iter().all(|n| n.as_ref() == Ok(&first)) {
                Ok(first)
            } else {
                Err(TagError::Conflicting)
            }
        }
    };
    Some(Tagged {
        phone,
        subject: join_tidy(&kept),
    })
}

/// Byte offset of the next `[sms:` in any letter case. ASCII-only comparison on bytes, so
/// it never splits a multi-byte character (`[` is ASCII and starts the match).
fn find_open(s: &str) -> Option<usize> {
    let open = OPEN.as_bytes();
    s.as_bytes()
        .windows(open.len())
        .position(|w| w.eq_ignore_ascii_case(open))
}

/// Joins the pieces around the removed tags: one space where a tag stood between words,
/// none at the ends.
fn join_tidy(pieces: &[&str]) -> String {
    let mut out = String::new();
    for piece in pieces {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(s: &str) -> (Result<String, TagError>, String) {
        let t = take_sms_tag(s).expect("a tag");
        (t.phone.map(|p| p.e164().to_string()), t.subject)
    }

    #[test]
    fn no_tag_no_change() {
        for s in [
            "",
            "Uitslag",
            "[sms]",
            "sms:+31612345678",
            "[sms +31612345678]",
        ] {
            assert_eq!(take_sms_tag(s), None, "{s:?}");
        }
    }

    #[test]
    fn tag_anywhere_in_any_case_is_removed() {
        let ok = |s: &str| Ok(s.to_string());
        assert_eq!(
            found("[sms:+31612345678] Uitslag bloedonderzoek"),
            (ok("+31612345678"), "Uitslag bloedonderzoek".into())
        );
        assert_eq!(
            found("Uitslag [SMS: 06-1234 5678]"),
            (ok("+31612345678"), "Uitslag".into())
        );
        assert_eq!(
            found("Uitslag  [Sms:0612345678]  van dr. Ä"),
            (ok("+31612345678"), "Uitslag van dr. Ä".into())
        );
        assert_eq!(found("[sms:0612345678]"), (ok("+31612345678"), "".into()));
        // The same number twice is one number; both tags go.
        assert_eq!(
            found("[sms:0612345678] x [sms:+31612345678]"),
            (ok("+31612345678"), "x".into())
        );
    }

    #[test]
    fn bad_or_conflicting_tags_are_removed_and_reported() {
        assert_eq!(
            found("Uitslag [sms:0201234567]"),
            (
                Err(TagError::Invalid(PhoneError::NotMobile)),
                "Uitslag".into()
            )
        );
        assert_eq!(
            found("[sms:] Uitslag"),
            (Err(TagError::Invalid(PhoneError::Syntax)), "Uitslag".into())
        );
        assert_eq!(
            found("[sms:0612345678] [sms:0687654321] Uitslag"),
            (Err(TagError::Conflicting), "Uitslag".into())
        );
        assert_eq!(
            found("[sms:0612345678] [sms:nonsense]"),
            (Err(TagError::Invalid(PhoneError::Syntax)), "".into())
        );
    }

    #[test]
    fn an_unclosed_or_overlong_tag_is_text() {
        assert_eq!(take_sms_tag("Re: [sms: and then nothing"), None);
        let far = format!("[sms:{}]", "0".repeat(MAX_TAG_LEN));
        assert_eq!(take_sms_tag(&far), None);
        // A real tag after an unclosed one is still found.
        assert_eq!(
            found("a [sms: b [sms:0612345678]"),
            (Ok("+31612345678".into()), "a [sms: b".into())
        );
        // Multi-byte text around the tag never splits a character.
        assert_eq!(
            found("ë[sms:0612345678]ë"),
            (Ok("+31612345678".into()), "ë ë".into())
        );
    }
}
