//! The SMS that carries the one-time code: organisation, code, validity. No link (a link
//! in an SMS is what phishing looks like, and the recipient already has the page open), no
//! subject, no sender name, nothing about the message. The code is the only run of six
//! digits, so a phone's "copy code" suggestion and a test can find it unambiguously.

use std::time::Duration;

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;
/// The organisation's name as shown in the SMS is cut to this many characters, so the
/// whole text stays within two SMS parts even in UCS-2.
pub const MAX_ORG_CHARS: usize = 40;

/// The SMS text, Dutch then English, e.g. "Uw code voor Zkh Noord: 123456 (10 minuten
/// geldig). Your code for Zkh Noord: 123456 (valid 10 minutes)."
pub fn code_text(organisation: &str, code: &str, valid: Duration) -> String {
    let org = shown_organisation(organisation);
    let minutes = valid.as_secs().div_ceil(60).max(1);
    format!(
        "Uw code voor {org}: {code} ({minutes} {}). Your code for {org}: {code} (valid {minutes} {}).",
        if minutes == 1 {
            "minuut geldig"
        } else {
            "minuten geldig"
        },
        if minutes == 1 { "minute" } else { "minutes" },
    )
}

/// The organisation's name made harmless for the text: no digits (the code must stay the
/// only run of six), no dots between letters or `/` (a phone turns `zkh.nl` into a link),
/// no control characters; white space collapsed, length bounded.
fn shown_organisation(organisation: &str) -> String {
    let chars: Vec<char> = organisation.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let c = match c {
            '.' if chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) => ' ',
            '/' | ':' | '@' => ' ',
            c if c.is_ascii_digit() || c.is_numeric() => continue,
            c if c.is_control() || c.is_whitespace() => ' ',
            c => c,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let out: String = out.trim_end().chars().take(MAX_ORG_CHARS).collect();
    let out = out.trim_end().to_string();
    if out.is_empty() {
        "uw zorgverlener / your care provider".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of ASCII digits in `s`.
    fn digit_runs(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .collect()
    }

    #[test]
    fn the_code_is_the_only_run_of_six_digits() {
        let t = code_text("Ziekenhuis Noord", "012345", Duration::from_secs(600));
        assert_eq!(
            t,
            "Uw code voor Ziekenhuis Noord: 012345 (10 minuten geldig). Your code for Ziekenhuis Noord: 012345 (valid 10 minutes)."
        );
        let six: Vec<&str> = digit_runs(&t)
            .into_iter()
            .filter(|r| r.len() == CODE_DIGITS)
            .collect();
        assert_eq!(six, ["012345", "012345"]);
        assert!(digit_runs(&t).iter().all(|r| r.len() == 6 || r.len() <= 2));
        // Digits in the organisation's name cannot make a second code.
        let t = code_text("Kliniek 123456", "654321", Duration::from_secs(600));
        assert!(!t.contains("123456"), "{t}");
    }

    #[test]
    fn no_link_and_bounded() {
        let t = code_text(
            "https://zkh.nl/portaal\u{7}",
            "111111",
            Duration::from_secs(300),
        );
        assert!(!t.contains("://") && !t.contains("zkh.nl"), "{t}");
        assert!(t.contains("(5 minuten geldig)"), "{t}");
        let t = code_text(&"A".repeat(500), "111111", Duration::from_secs(60));
        assert!(t.contains("(1 minuut geldig)") && t.contains("(valid 1 minute)"));
        assert!(
            t.chars().count() < 2 * 70 + 2 * MAX_ORG_CHARS,
            "{}",
            t.len()
        );
        assert!(code_text("  ", "111111", Duration::from_secs(600)).contains("care provider"));
        assert_eq!(shown_organisation("Dr. Jansen  &  Zn."), "Dr. Jansen & Zn.");
    }
}
