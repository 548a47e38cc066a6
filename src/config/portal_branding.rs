//! Validation of `[portal.branding]` into [`Branding`]: the logo (read and type-checked
//! here, so that `check-config` already refuses a wrong file), the two colours (refused
//! below the WCAG 2.1 AA contrast of 4.5:1 against the white page), the notification text
//! (its one link and nothing else that a mail program would turn into a link) and the
//! accessibility contact.

use std::io::Read;

use toml::Spanned;

use super::error::Report;
use super::portal::{
    Branding, Colour, DEFAULT_ACCENT_COLOUR, DEFAULT_PRIMARY_COLOUR, Logo, LogoKind,
    NoticeTemplate, Piece,
};
use super::raw::RawPortalBranding;
use super::validate::{parse, path};
use crate::domain::{AddressDomain, address_parts};

/// Largest logo file: a header logo is a few KiB; this keeps a wrong path (a photo, a
/// log file) out of memory and out of every page load.
pub const MAX_LOGO_BYTES: u64 = 256 * 1024;
/// WCAG 2.1 success criterion 1.4.3 (level AA): normal text needs 4.5:1. The focus
/// outline (accent) would need only 3:1 (1.4.11); one rule for both is simpler to state.
pub const MIN_CONTRAST: f64 = 4.5;
/// The page background every colour is used against (text on it, or white text on the
/// colour: the same ratio).
const BACKGROUND: Colour = Colour([0xff, 0xff, 0xff]);
/// A notification text longer than this is no longer a short notice.
const MAX_NOTICE_CHARS: usize = 2000;
/// Mail lines must stay under 998 bytes (RFC 5322 §2.1.1), with room for the link and
/// the organisation's name put in.
const MAX_NOTICE_LINE: usize = 500;
const PLACEHOLDERS: &str = "{organisation}, {link} and {phone}";

pub(crate) fn branding(
    raw: Option<&Spanned<RawPortalBranding>>,
    from: Option<&str>,
    r: &mut Report<'_>,
) -> Option<Branding> {
    let default = RawPortalBranding::default();
    let raw = raw.map_or(&default, |s| s.get_ref());
    let logo = match &raw.logo {
        None => Some(None),
        Some(v) => parse(r, "portal.branding.logo", v, |s| logo(s).map(Some)),
    };
    let colour = |r: &mut Report<'_>, key: &str, v: &Option<Spanned<String>>, d: Colour| match v {
        None => Some(d),
        Some(v) => parse(r, key, v, colour),
    };
    let primary = colour(
        r,
        "portal.branding.primary_colour",
        &raw.primary_colour,
        DEFAULT_PRIMARY_COLOUR,
    );
    let accent = colour(
        r,
        "portal.branding.accent_colour",
        &raw.accent_colour,
        DEFAULT_ACCENT_COLOUR,
    );
    let notice = |r: &mut Report<'_>, key: &str, v: &Option<Spanned<String>>, links: usize| match v
    {
        None => Some(None),
        Some(v) => parse(r, key, v, |s| notice_template(s, links).map(Some)),
    };
    // The link lives in the Dutch part (the mail is Dutch first); the English part
    // refers to it ("the link above"), so the whole mail has it exactly once.
    let notification_nl = notice(
        r,
        "portal.branding.notification_nl",
        &raw.notification_nl,
        1,
    );
    let notification_en = notice(
        r,
        "portal.branding.notification_en",
        &raw.notification_en,
        0,
    );
    let accessibility_contact = match &raw.accessibility_contact {
        Some(v) => parse(r, "portal.branding.accessibility_contact", v, contact),
        // `from` itself is checked (and reported) by the caller.
        None => from.map(str::to_string),
    };
    Some(Branding {
        logo: logo?,
        primary: primary?,
        accent: accent?,
        notification_nl: notification_nl?,
        notification_en: notification_en?,
        accessibility_contact: accessibility_contact?,
    })
}

/// Reads the logo file: at most [`MAX_LOGO_BYTES`], a PNG (by its signature) or an SVG
/// (UTF-8 text whose first markup is an XML declaration, a comment or `<svg`).
pub(crate) fn logo(s: &str) -> Result<Logo, String> {
    let p = path(s)?;
    let f = std::fs::File::open(&p).map_err(|e| format!("cannot read {s:?}: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_LOGO_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {s:?}: {e}"))?;
    if bytes.len() as u64 > MAX_LOGO_BYTES {
        return Err(format!(
            "{s:?} is larger than {} KiB; a header logo needs only a few KiB",
            MAX_LOGO_BYTES / 1024
        ));
    }
    let kind = logo_kind(&bytes).ok_or_else(|| {
        format!("{s:?} is neither a PNG nor an SVG file (judged by its content, not its name)")
    })?;
    Ok(Logo { kind, bytes })
}

fn logo_kind(bytes: &[u8]) -> Option<LogoKind> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.starts_with(PNG) {
        return Some(LogoKind::Png);
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.trim_start_matches('\u{feff}').trim_start();
    let markup = ["<?xml", "<!--", "<svg"]
        .iter()
        .any(|m| start.starts_with(m));
    (markup && text.contains("<svg")).then_some(LogoKind::Svg)
}

/// `#rrggbb` with at least [`MIN_CONTRAST`] against the white page.
pub(crate) fn colour(s: &str) -> Result<Colour, String> {
    let hex = s
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("{s:?} is not a colour written as \"#rrggbb\", e.g. \"#0b3d91\""))?;
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
    let c = Colour([byte(0), byte(2), byte(4)]);
    let ratio = contrast(c, BACKGROUND);
    if ratio < MIN_CONTRAST {
        // Rounded down, so that 4.47 does not show as an acceptable "4.5".
        let shown = (ratio * 10.0).floor() / 10.0;
        return Err(format!(
            "{s:?} has a contrast of {shown:.1}:1 with the white page (and with white text on \
             it); WCAG 2.1 AA (success criterion 1.4.3) needs at least 4.5:1: choose a darker \
             colour"
        ));
    }
    Ok(c)
}

/// WCAG 2.1 relative luminance of an sRGB colour (definition under "relative luminance").
fn luminance(c: Colour) -> f64 {
    let lin = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.03928 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = c.0;
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// WCAG 2.1 contrast ratio, (L1 + 0.05) / (L2 + 0.05) with L1 the lighter: 1 to 21.
pub(crate) fn contrast(a: Colour, b: Colour) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// A notification text: known placeholders only, `{link}` exactly `links` times, nothing
/// else a mail program would make a link of (the notification's contract is one URL, the
/// portal's), short lines, no control characters.
pub(crate) fn notice_template(s: &str, links: usize) -> Result<NoticeTemplate, String> {
    let s = s.replace("\r\n", "\n");
    if s.trim().is_empty() {
        return Err("empty; leave the key out for the built-in text".into());
    }
    if s.chars().count() > MAX_NOTICE_CHARS {
        return Err(format!("longer than {MAX_NOTICE_CHARS} characters"));
    }
    if s.chars().any(|c| c.is_control() && c != '\n') {
        return Err("contains a control character (only line breaks are allowed)".into());
    }
    if s.lines().any(|l| l.chars().count() > MAX_NOTICE_LINE) {
        return Err(format!(
            "a line is longer than {MAX_NOTICE_LINE} characters"
        ));
    }
    let pieces = pieces(&s)?;
    let found = pieces.iter().filter(|p| **p == Piece::Link).count();
    if found != links {
        return Err(if links == 1 {
            format!(
                "has {{link}} {found} times; it must be there exactly once (the one link of \
                 the notification)"
            )
        } else {
            format!(
                "has {{link}} {found} times; the link is in the Dutch text \
                 (notification_nl) only, refer to it here (\"the link above\")"
            )
        });
    }
    for p in &pieces {
        if let Piece::Text(t) = p
            && let Some(w) = t.split_whitespace().find(|w| looks_like_link(w))
        {
            return Err(format!(
                "{w:?} would become a link in most mail programs; the notification has \
                 exactly one link, {{link}}"
            ));
        }
    }
    Ok(NoticeTemplate(pieces))
}

fn pieces(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err(format!(
                "a \"}}\" without \"{{\"; the placeholders are {PLACEHOLDERS}"
            ));
        }
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| {
            format!("a \"{{\" without \"}}\"; the placeholders are {PLACEHOLDERS}")
        })?;
        out.push(match &after[..close] {
            "organisation" => Piece::Organisation,
            "link" => Piece::Link,
            "phone" => Piece::Phone,
            other => {
                return Err(format!(
                    "unknown placeholder {{{other}}}; the placeholders are {PLACEHOLDERS} (the \
                     notification never carries anything of the message itself)"
                ));
            }
        });
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

/// Whether a mail program would likely turn this word into a link: a scheme, `www.`, an
/// e-mail address, or a host name (labels with a final label of two or more letters, as
/// `zkh.nl`). Stricter than any one program, so that none finds a second link.
fn looks_like_link(word: &str) -> bool {
    let w = word.trim_matches(|c: char| !c.is_alphanumeric());
    let lower = w.to_ascii_lowercase();
    if lower.contains("://") || lower.starts_with("www.") || lower.starts_with("mailto:") {
        return true;
    }
    if w.contains('@') {
        return true;
    }
    let host = lower.split('/').next().unwrap_or("");
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && labels
            .last()
            .is_some_and(|t| t.len() >= 2 && t.bytes().all(|b| b.is_ascii_alphabetic()))
}

/// The accessibility contact: an e-mail address (shown as a `mailto:` link).
fn contact(s: &str) -> Result<String, String> {
    if s.contains(['<', '>', ' ', '"']) || !matches!(address_parts(s), AddressDomain::Domain(_)) {
        return Err(format!(
            "{s:?} is not a bare address like \"toegankelijkheid@zkh.example\""
        ));
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        let black = Colour([0, 0, 0]);
        assert!((contrast(black, BACKGROUND) - 21.0).abs() < 1e-9);
        assert!((contrast(BACKGROUND, BACKGROUND) - 1.0).abs() < 1e-9);
        // #767676 is the well-known lightest grey that passes on white (4.54:1).
        let grey = contrast(Colour([0x76, 0x76, 0x76]), BACKGROUND);
        assert!((grey - 4.54).abs() < 0.01, "{grey}");
        assert!(colour("#767676").is_ok());
        let e = colour("#777777").unwrap_err();
        assert!(e.contains("4.4:1") && e.contains("4.5:1"), "{e}");
        // The defaults pass their own rule.
        for d in [DEFAULT_PRIMARY_COLOUR, DEFAULT_ACCENT_COLOUR] {
            assert_eq!(colour(&d.to_string()), Ok(d));
        }
    }

    #[test]
    fn colours_are_written_rrggbb() {
        assert_eq!(colour("#0B3D91"), Ok(Colour([0x0b, 0x3d, 0x91])));
        assert_eq!(Colour([0x0b, 0x3d, 0x91]).to_string(), "#0b3d91");
        for bad in [
            "0b3d91", "#0b3d9", "#0b3d911", "#0b3d9g", "blue", "", "#fff",
        ] {
            let e = colour(bad).unwrap_err();
            assert!(e.contains("#rrggbb"), "{bad}: {e}");
        }
        let e = colour("#ffcc00").unwrap_err();
        assert!(e.contains("1.5:1"), "{e}");
    }

    fn file(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }

    #[test]
    fn logos_are_checked_by_content_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        let l = logo(&file(dir.path(), "a.png", &png)).unwrap();
        assert_eq!((l.kind, &l.bytes), (LogoKind::Png, &png));
        let svg = "\u{feff}<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(
            logo(&file(dir.path(), "a.svg", svg.as_bytes()))
                .unwrap()
                .kind,
            LogoKind::Svg
        );
        // The name does not count: a JPEG called .png, HTML called .svg.
        let e = logo(&file(dir.path(), "b.png", b"\xff\xd8\xff\xe0JFIF")).unwrap_err();
        assert!(e.contains("neither a PNG nor an SVG"), "{e}");
        assert!(logo(&file(dir.path(), "b.svg", b"<html><script>x</script>")).is_err());
        assert!(
            logo(&file(
                dir.path(),
                "c.svg",
                b"<?xml version=\"1.0\"?><html/>"
            ))
            .is_err()
        );
        assert!(logo(&file(dir.path(), "empty.png", b"")).is_err());
        let mut big = png.clone();
        big.resize(MAX_LOGO_BYTES as usize + 1, 0);
        let e = logo(&file(dir.path(), "big.png", &big)).unwrap_err();
        assert!(e.contains("larger than 256 KiB"), "{e}");
        big.truncate(MAX_LOGO_BYTES as usize);
        assert!(logo(&file(dir.path(), "max.png", &big)).is_ok());
        assert!(logo("relative.png").unwrap_err().contains("absolute"));
        let e = logo(&dir.path().join("missing.png").display().to_string()).unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn notification_text_has_one_link_and_known_placeholders() {
        let t = notice_template(
            "{organisation} stuurde u een bericht:\n{link}\nCode naar {phone}.",
            1,
        )
        .unwrap();
        assert_eq!(
            t.0,
            [
                Piece::Organisation,
                Piece::Text(" stuurde u een bericht:\n".into()),
                Piece::Link,
                Piece::Text("\nCode naar ".into()),
                Piece::Phone,
                Piece::Text(".".into()),
            ]
        );
        assert!(notice_template("Zie de link hierboven. {organisation}", 0).is_ok());
        let e = notice_template("Geen link.", 1).unwrap_err();
        assert!(e.contains("0 times") && e.contains("exactly once"), "{e}");
        let e = notice_template("{link}\n{link}", 1).unwrap_err();
        assert!(e.contains("2 times"), "{e}");
        let e = notice_template("Read it at {link}", 0).unwrap_err();
        assert!(e.contains("notification_nl"), "{e}");
        for (text, word) in [
            ("{link} of https://evil.example/x", "https://evil.example/x"),
            ("{link} of www.zkh.nl", "www.zkh.nl"),
            ("{link} of kijk op zkh.nl.", "zkh.nl."),
            ("{link} (portaal.zkh.nl/hulp)", "(portaal.zkh.nl/hulp)"),
            ("{link} mail info@zkh.nl", "info@zkh.nl"),
            ("{link} mailto:x", "mailto:x"),
            ("{link} HTTP://X", "HTTP://X"),
        ] {
            let e = notice_template(text, 1).unwrap_err();
            assert!(e.contains(word) && e.contains("one link"), "{text}: {e}");
        }
        // Ordinary sentences, numbers and abbreviations are not links.
        assert!(notice_template("{link}\nBijv. om 9.30 uur, z.o.z. e-mail. Klaar.", 1).is_ok());
        for (text, needle) in [
            ("{link} {subject}", "unknown placeholder {subject}"),
            ("{link} {Link}", "unknown placeholder {Link}"),
            ("{link} {", "without"),
            ("{link} }", "without"),
            ("", "empty"),
            ("{link}\u{7}", "control character"),
        ] {
            let e = notice_template(text, 1).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        assert!(notice_template(&format!("{{link}} {}", "a".repeat(600)), 1).is_err());
        assert!(notice_template(&format!("{{link}}\n{}", "ab\n".repeat(800)), 1).is_err());
        // CRLF from an editor is taken as LF.
        assert!(notice_template("{link}\r\nklaar", 1).is_ok());
    }

    #[test]
    fn contacts_are_addresses() {
        assert!(contact("toegankelijkheid@zkh.nl").is_ok());
        for bad in ["zkh.nl", "A <a@zkh.nl>", "a @zkh.nl", ""] {
            assert!(contact(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod section_tests {
    use crate::config::Config;
    use crate::config::portal::{DEFAULT_PRIMARY_COLOUR, LogoKind};

    const BASE: &str = r#"[domains]
own = ["zkh.nl"]
[portal]
listen = "inet:127.0.0.1:7580"
public_url = "https://portaal.zkh.nl"
lmtp = "inet:127.0.0.1:7524"
store = "sqlite:/var/lib/p.db"
key_file = "/etc/p.key"
from = "portaal@zkh.nl"
[portal.sms]
provider = "webhook"
url = "https://sms.zkh.nl/send"
token_file = "/etc/sms.token"
"#;

    fn with(branding: &str) -> String {
        format!("{BASE}[portal.branding]\n{branding}")
    }

    #[test]
    fn absent_section_is_the_plain_look() {
        let c = Config::from_toml_str(BASE, "t.toml").unwrap();
        let b = c.portal.unwrap().branding;
        assert_eq!(b, crate::config::portal::Branding::plain("portaal@zkh.nl"));
        assert_eq!(b.primary, DEFAULT_PRIMARY_COLOUR);
    }

    #[test]
    fn every_key_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let logo = dir.path().join("logo.svg");
        std::fs::write(&logo, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
        let text = with(&format!(
            "logo = \"{}\"\nprimary_colour = \"#005a32\"\naccent_colour = \"#8b0000\"\n\
             notification_nl = \"\"\"\n{{organisation}}: {{link}} ({{phone}})\n\"\"\"\n\
             notification_en = \"See the link above.\"\n\
             accessibility_contact = \"web@zkh.nl\"\n",
            logo.display()
        ));
        let b = Config::from_toml_str(&text, "t.toml")
            .unwrap_or_else(|e| panic!("{e}"))
            .portal
            .unwrap()
            .branding;
        assert_eq!(b.logo.unwrap().kind, LogoKind::Svg);
        assert_eq!(b.primary.to_string(), "#005a32");
        assert_eq!(b.accent.to_string(), "#8b0000");
        assert!(b.notification_nl.is_some() && b.notification_en.is_some());
        assert_eq!(b.accessibility_contact, "web@zkh.nl");
    }

    #[test]
    fn errors_name_file_key_and_line() {
        // The branding table starts on line 15; its keys follow.
        let text = with(
            "primary_colour = \"#ffcc00\"\naccent_colour = \"red\"\n\
             notification_nl = \"Lees {subject}\"\nnotification_en = \"{link}\"\n\
             logo = \"/nonexistent/logo.png\"\nbogus = 1\n",
        );
        let errs = Config::from_toml_str(&text, "t.toml").unwrap_err().0;
        let find = |key: &str| {
            errs.iter()
                .find(|e| e.key == key)
                .unwrap_or_else(|| panic!("no error for {key}: {errs:?}"))
        };
        let e = find("portal.branding.primary_colour");
        assert_eq!((e.file.as_str(), e.line), ("t.toml", Some(15)));
        assert!(e.message.contains("4.5:1"), "{}", e.message);
        assert_eq!(find("portal.branding.accent_colour").line, Some(16));
        let e = find("portal.branding.notification_nl");
        assert!(e.message.contains("{subject}"), "{}", e.message);
        assert_eq!(find("portal.branding.notification_en").line, Some(18));
        assert_eq!(find("portal.branding.logo").line, Some(19));
        assert!(find("portal.branding.bogus").message.contains("unknown"));
    }
}
