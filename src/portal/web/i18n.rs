//! Dutch and English texts of the pages. Dutch first: the portal's recipients are mostly
//! Dutch patients; English for everyone else (chosen by `Accept-Language` or the switch).

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The switch (`?lang=`), then the cookie it set, then the first of `nl`/`en` in
    /// `Accept-Language` by q-value; Dutch when nothing matches.
    pub fn choose(query: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(l) = query.and_then(Lang::parse) {
            return l;
        }
        if let Some(l) = super::session::cookie(headers, super::session::LANG_COOKIE)
            .as_deref()
            .and_then(Lang::parse)
        {
            return l;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::Nl;
        };
        let mut best: Option<(f32, Lang)> = None;
        for item in accept.split(',').take(16) {
            let mut it = item.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(l) = Lang::parse(primary)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, l));
            }
        }
        best.map_or(Lang::Nl, |(_, l)| l)
    }

    /// The Dutch or the English one of a pair of text tables (the pages' own tables:
    /// revoke, reply, number).
    pub fn pick<T>(self, nl: &'static T, en: &'static T) -> &'static T {
        match self {
            Lang::Nl => nl,
            Lang::En => en,
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::Nl => &NL,
            Lang::En => &EN,
        }
    }
}

/// Every fixed text on the pages.
#[derive(Debug)]
pub struct Text {
    pub lang: &'static str,
    pub skip: &'static str,
    pub language: &'static str,
    /// The footer's link to the accessibility statement (its title too).
    pub accessibility: &'static str,
    pub secure_message_from: &'static str,
    pub explain: &'static str,
    pub send_code: &'static str,
    pub send_new_code: &'static str,
    pub code_sent: &'static str,
    pub code_label: &'static str,
    pub code_hint: &'static str,
    pub confirm: &'static str,
    pub no_code: &'static str,
    pub locked: &'static str,
    pub try_later: &'static str,
    pub gone_title: &'static str,
    pub gone_text: &'static str,
    pub unknown_title: &'static str,
    pub unknown_text: &'static str,
    pub refused_title: &'static str,
    pub refused_text: &'static str,
    pub busy_title: &'static str,
    pub busy_text: &'static str,
    pub from: &'static str,
    pub date: &'static str,
    pub subject: &'static str,
    pub no_subject: &'static str,
    pub message: &'static str,
    pub frame_title: &'static str,
    pub attachments: &'static str,
    pub no_attachments: &'static str,
    pub downloads: &'static str,
    pub download_pdf: &'static str,
    pub download_eml: &'static str,
    pub logout: &'static str,
    pub logged_out: &'static str,
    pub error_title: &'static str,
    pub bytes: &'static str,
}

impl Text {
    pub fn wrong_code(&self, left: i64) -> String {
        match (self.lang, left) {
            ("nl", 0) => "Deze code klopt niet. Vraag een nieuwe code aan.".into(),
            ("nl", 1) => "Deze code klopt niet. U kunt het nog 1 keer proberen.".into(),
            ("nl", n) => format!("Deze code klopt niet. U kunt het nog {n} keer proberen."),
            (_, 0) => "This code is not correct. Please request a new code.".into(),
            (_, 1) => "This code is not correct. You have 1 try left.".into(),
            (_, n) => format!("This code is not correct. You have {n} tries left."),
        }
    }

    pub fn wait_seconds(&self, s: i64) -> String {
        if self.lang == "nl" {
            format!("U kunt over {s} seconden een nieuwe code aanvragen.")
        } else {
            format!("You can request a new code in {s} seconds.")
        }
    }

    /// A file size in words people know: bytes below 1 kB, else kB or MB (Dutch with a
    /// decimal comma).
    pub fn size(&self, bytes: usize) -> String {
        let (value, unit) = match bytes {
            b if b < 1000 => return format!("{b} {}", self.bytes),
            b if b < 1_000_000 => (b.div_ceil(1000).to_string(), "kB"),
            b => {
                let tenths = b.div_ceil(100_000);
                let sep = if self.lang == "nl" { "," } else { "." };
                (format!("{}{sep}{}", tenths / 10, tenths % 10), "MB")
            }
        };
        format!("{value} {unit}")
    }

    pub fn wait_minutes(&self, s: i64) -> String {
        let m = (s + 59) / 60;
        if self.lang == "nl" {
            format!("U heeft veel codes aangevraagd. Probeer het over {m} minuten opnieuw.")
        } else {
            format!("You have requested many codes. Please try again in {m} minutes.")
        }
    }
}

pub static NL: Text = Text {
    lang: "nl",
    skip: "Naar de inhoud",
    language: "Taal",
    accessibility: "Toegankelijkheidsverklaring",
    secure_message_from: "Beveiligd bericht van",
    explain: "U heeft een code nodig om het bericht te lezen. U krijgt de code per sms op het nummer",
    send_code: "Stuur mij een code",
    send_new_code: "Stuur een nieuwe code",
    code_sent: "De code is verstuurd naar",
    code_label: "Code uit de sms",
    code_hint: "6 cijfers, 10 minuten geldig",
    confirm: "Bevestigen",
    no_code: "Deze code is verlopen of al gebruikt. Vraag een nieuwe code aan.",
    locked: "Te veel onjuiste codes. Probeer het over een uur opnieuw. De afzender heeft hierover een e-mail gekregen.",
    try_later: "Er ging iets mis. Probeer het later opnieuw.",
    gone_title: "Dit bericht is niet meer beschikbaar",
    gone_text: "De link is verlopen. Heeft u het bericht nog nodig? Neem dan contact op met de afzender.",
    unknown_title: "Link niet gevonden",
    unknown_text: "Klopt de link? Gebruik de hele link uit de e-mail.",
    refused_title: "Verzoek geweigerd",
    refused_text: "Wij konden niet controleren of dit verzoek van u komt. Open de link uit de e-mail opnieuw.",
    busy_title: "Even wachten",
    busy_text: "U deed veel verzoeken in korte tijd. Wacht een minuut en probeer het dan opnieuw.",
    from: "Van",
    date: "Datum",
    subject: "Onderwerp",
    no_subject: "(geen onderwerp)",
    message: "Bericht",
    frame_title: "Inhoud van het bericht",
    attachments: "Bijlagen",
    no_attachments: "Geen bijlagen.",
    downloads: "Bewaren",
    download_pdf: "Download als PDF",
    download_eml: "Download het originele bericht (.eml)",
    logout: "Afmelden",
    logged_out: "U bent afgemeld.",
    error_title: "Er ging iets mis",
    bytes: "bytes",
};

pub static EN: Text = Text {
    lang: "en",
    skip: "Skip to content",
    language: "Language",
    accessibility: "Accessibility statement",
    secure_message_from: "Secure message from",
    explain: "You need a code to read the message. You get the code by text message at the number",
    send_code: "Send me a code",
    send_new_code: "Send a new code",
    code_sent: "The code was sent to",
    code_label: "Code from the text message",
    code_hint: "6 digits, valid for 10 minutes",
    confirm: "Confirm",
    no_code: "This code has expired or was already used. Please request a new code.",
    locked: "Too many wrong codes. Please try again in an hour. The sender has been told by e-mail.",
    try_later: "Something went wrong. Please try again later.",
    gone_title: "This message is no longer available",
    gone_text: "The link has expired. Do you still need the message? Please contact the sender.",
    unknown_title: "Link not found",
    unknown_text: "Is the link right? Use the whole link from the e-mail.",
    refused_title: "Request refused",
    refused_text: "We could not check that this request came from you. Please open the link from the e-mail again.",
    busy_title: "Please wait",
    busy_text: "You made many requests in a short time. Wait a minute, then try again.",
    from: "From",
    date: "Date",
    subject: "Subject",
    no_subject: "(no subject)",
    message: "Message",
    frame_title: "Content of the message",
    attachments: "Attachments",
    no_attachments: "No attachments.",
    downloads: "Keep a copy",
    download_pdf: "Download as PDF",
    download_eml: "Download the original message (.eml)",
    logout: "Sign out",
    logged_out: "You have signed out.",
    error_title: "Something went wrong",
    bytes: "bytes",
};

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept-language", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn choice() {
        assert_eq!(Lang::choose(None, &HeaderMap::new()), Lang::Nl);
        assert_eq!(Lang::choose(None, &accept("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::choose(None, &accept("de, en;q=0.5, nl;q=0.8")),
            Lang::Nl
        );
        assert_eq!(Lang::choose(None, &accept("fr")), Lang::Nl);
        assert_eq!(Lang::choose(Some("en"), &accept("nl")), Lang::En);
        let mut h = accept("en");
        h.insert("cookie", HeaderValue::from_static("__Host-lang=nl"));
        assert_eq!(Lang::choose(None, &h), Lang::Nl);
        assert_eq!(Lang::choose(Some("xx"), &h), Lang::Nl);
    }

    #[test]
    fn counted_texts() {
        assert!(NL.wrong_code(3).contains("nog 3 keer"));
        assert!(EN.wrong_code(1).contains("1 try left"));
        assert!(EN.wait_minutes(61).contains("2 minutes"));
        assert_eq!(NL.size(999), "999 bytes");
        assert_eq!(NL.size(1000), "1 kB");
        assert_eq!(EN.size(14_001), "15 kB");
        assert_eq!(NL.size(2_345_678), "2,4 MB");
        assert_eq!(EN.size(1_000_000), "1.0 MB");
    }
}
