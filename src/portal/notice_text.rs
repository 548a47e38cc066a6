//! The notification's body: the Dutch part (with the one link), a separator, the English
//! part. Each part is the built-in text or the organisation's own
//! (`[portal.branding] notification_nl` / `notification_en`, validated at load: known
//! placeholders only, `{link}` once in the Dutch part and nowhere else, nothing else a
//! mail program would turn into a link).
//!
//! The built-in texts are written for language level B1: short sentences, common words,
//! one thing per sentence.

use crate::config::portal::{NoticeTemplate, Piece};

/// The organisation's own texts, where configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoticeText {
    pub nl: Option<NoticeTemplate>,
    pub en: Option<NoticeTemplate>,
}

/// What the placeholders stand for in one notification.
pub struct Values<'a> {
    pub organisation: &'a str,
    pub link: &'a str,
    /// The masked number (`06-****5678`), never the full one.
    pub phone: &'a str,
}

impl NoticeText {
    /// The whole text/plain body.
    pub fn body(&self, v: &Values<'_>) -> String {
        let nl = self
            .nl
            .as_ref()
            .map_or_else(|| builtin_nl(v), |t| render(t, v));
        let en = self
            .en
            .as_ref()
            .map_or_else(|| builtin_en(v), |t| render(t, v));
        format!("{}\n\n---\n\n{}\n", nl.trim_end(), en.trim_end())
    }
}

fn render(t: &NoticeTemplate, v: &Values<'_>) -> String {
    let mut out = String::new();
    for p in &t.0 {
        out.push_str(match p {
            Piece::Text(s) => s,
            Piece::Organisation => v.organisation,
            Piece::Link => v.link,
            Piece::Phone => v.phone,
        });
    }
    out
}

fn builtin_nl(v: &Values<'_>) -> String {
    let Values {
        organisation: org,
        link,
        phone,
    } = v;
    format!(
        "Beste ontvanger,\n\
         \n\
         {org} heeft u een beveiligd bericht gestuurd. Lees het bericht via deze link:\n\
         \n\
         {link}\n\
         \n\
         Op die pagina vraagt u een code aan. U krijgt de code per sms op {phone}.\n\
         In deze e-mail staat niets uit het bericht zelf.\n\
         Wij lezen geen antwoorden op deze e-mail.\n"
    )
}

fn builtin_en(v: &Values<'_>) -> String {
    let Values {
        organisation: org,
        phone,
        ..
    } = v;
    format!(
        "Dear recipient,\n\
         \n\
         {org} has sent you a secure message. Read it through the link above.\n\
         On that page you ask for a code. You get the code by text message at {phone}.\n\
         This e-mail does not contain anything from the message itself.\n\
         We do not read replies to this e-mail.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Values<'static> = Values {
        organisation: "Zkh {link}",
        link: "https://p.zkh.nl/m/abc",
        phone: "06-****5678",
    };

    #[test]
    fn builtin_and_own_texts() {
        let b = NoticeText::default().body(&V);
        assert_eq!(b.matches("https://").count(), 1, "{b}");
        assert!(b.contains("\n\n---\n\nDear recipient,"), "{b}");
        assert!(b.ends_with("this e-mail.\n"), "{b}");
        let own = NoticeText {
            nl: Some(NoticeTemplate(vec![
                Piece::Text("Bericht van ".into()),
                Piece::Organisation,
                Piece::Text(": ".into()),
                Piece::Link,
                Piece::Text(" code naar ".into()),
                Piece::Phone,
                Piece::Text("\n\n".into()),
            ])),
            en: None,
        };
        let b = own.body(&V);
        // A value that looks like a placeholder is put in as text, once.
        assert!(
            b.starts_with(
                "Bericht van Zkh {link}: https://p.zkh.nl/m/abc code naar 06-****5678\n\n---\n\nDear recipient,"
            ),
            "{b}"
        );
        assert_eq!(b.matches("https://").count(), 1, "{b}");
    }
}
