//! Writing the (UTF-8) footer in the charset of the part that receives it.
//!
//! The charsets that matter for Dutch/European mail are written exactly: UTF-8, US-ASCII,
//! ISO-8859-1 (by code point: encoding_rs follows WHATWG and reads that label as
//! windows-1252, which would put "€" at 0x80, a control character in real Latin-1),
//! ISO-8859-15 and windows-1252 (encoding_rs's tables). For every other ASCII-compatible charset
//! (ISO-8859-2, Shift_JIS, …) ASCII is written as is. A character the target cannot
//! represent is, in plain text, transliterated ("é" → "e", "€" → "EUR", "ĳ" → "ij"),
//! or '?' when there is no sensible ASCII form; in HTML it becomes a numeric character
//! reference, which is lossless in every charset. Charsets in which ASCII bytes do not
//! mean ASCII (UTF-16/32, UTF-7, EBCDIC, HZ) are not written at all: such parts are skipped.

/// How footer characters can be written into a part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Charset {
    Utf8,
    /// US-ASCII, and every ASCII-compatible charset we have no table for.
    Ascii,
    Latin1,
    Latin9,
    Windows1252,
}

/// Maps a `charset` parameter to a [`Charset`]; `None` when appending ASCII bytes would
/// corrupt the part. A missing parameter means US-ASCII (RFC 2045 §5.2).
pub(super) fn classify(label: Option<&str>) -> Option<Charset> {
    let Some(label) = label else {
        return Some(Charset::Ascii);
    };
    let label = label.trim().trim_matches('"').to_ascii_lowercase();
    let label = label.as_str();
    Some(match label {
        "utf-8" | "utf8" | "unicode-1-1-utf-8" | "x-unicode20utf8" => Charset::Utf8,
        "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "iso_8859-1:1987" | "latin1" | "latin-1"
        | "l1" | "cp819" | "ibm819" | "iso-ir-100" | "csisolatin1" => Charset::Latin1,
        "iso-8859-15" | "iso8859-15" | "iso_8859-15" | "latin9" | "latin-9" | "l9"
        | "csisolatin9" => Charset::Latin9,
        "windows-1252" | "cp1252" | "x-cp1252" | "win-1252" | "ms-ansi" => Charset::Windows1252,
        _ if is_ascii_incompatible(label) => return None,
        _ => Charset::Ascii,
    })
}

fn is_ascii_incompatible(label: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "utf-16",
        "utf16",
        "utf-32",
        "utf32",
        "ucs-2",
        "ucs2",
        "ucs-4",
        "ucs4",
        "iso-10646-ucs",
        "csunicode",
        "unicode",
        "utf-7",
        "utf7",
        "x-utf-7",
        "hz-gb",
        "ebcdic",
        "x-ebcdic",
        "ibm037",
        "ibm273",
        "ibm277",
        "ibm278",
        "ibm280",
        "ibm284",
        "ibm285",
        "ibm297",
        "ibm420",
        "ibm424",
        "ibm500",
        "ibm870",
        "ibm871",
        "ibm875",
        "ibm1026",
        "ibm1047",
        "ibm114",
        "cp037",
        "cp273",
        "cp500",
        "cp875",
        "cp1026",
        "cp1047",
        "cp114",
    ];
    PREFIXES.iter().any(|p| label.starts_with(p))
}

/// Writes `c` into `out` if `charset` can represent it (ASCII only when `ascii_only`,
/// i.e. for a 7bit part). Returns whether it did.
pub(super) fn push_char(out: &mut Vec<u8>, c: char, charset: Charset, ascii_only: bool) -> bool {
    if c.is_ascii() {
        out.push(c as u8);
        return true;
    }
    if ascii_only {
        return false;
    }
    let byte = match charset {
        Charset::Ascii => None,
        Charset::Utf8 => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            return true;
        }
        Charset::Latin1 => u8::try_from(u32::from(c)).ok().filter(|&b| b >= 0xA0),
        Charset::Latin9 => single_byte(encoding_rs::ISO_8859_15, c),
        Charset::Windows1252 => single_byte(encoding_rs::WINDOWS_1252, c),
    };
    if let Some(b) = byte {
        out.push(b);
    }
    byte.is_some()
}

/// `c` as one byte of a single-byte `encoding` (encoding_rs's WHATWG tables), or `None`
/// when the charset has no such character. C1 controls are refused: those tables map
/// them to 0x80–0x9F, which no footer should contain.
fn single_byte(encoding: &'static encoding_rs::Encoding, c: char) -> Option<u8> {
    if c.is_control() {
        return None;
    }
    let mut buf = [0u8; 4];
    let (bytes, _, unmappable) = encoding.encode(c.encode_utf8(&mut buf));
    match *bytes {
        [b] if !unmappable => Some(b),
        _ => None,
    }
}

/// An ASCII stand-in for a non-ASCII character, for plain text that cannot carry it.
/// `None` when there is no reasonable one (the caller writes '?').
pub(super) fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' | 'ª' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' | '¢' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ƒ' => "f",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' | 'ĸ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' | 'Ŋ' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' | 'ŋ' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'º' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ŧ' => "T",
        'ţ' | 'ť' | 'ŧ' => "t",
        'Þ' => "Th",
        'þ' => "th",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' | 'µ' => "u",
        'Ŵ' => "W",
        'ŵ' => "w",
        'Ý' | 'Ŷ' | 'Ÿ' => "Y",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => " ",
        // Invisible characters: dropping them loses nothing.
        '\u{ad}' | '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' => "",
        '‘' | '’' | '‚' | '‛' | '′' | '´' | 'ˋ' => "'",
        '“' | '”' | '„' | '‟' | '″' | '¨' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '¬' => "-",
        '…' => "...",
        '•' | '·' | '∙' => "*",
        '†' => "+",
        '‡' => "++",
        '‹' => "<",
        '›' => ">",
        '«' => "<<",
        '»' => ">>",
        '¡' => "!",
        '¿' => "?",
        '€' => "EUR",
        '£' => "GBP",
        '¥' => "JPY",
        '©' => "(c)",
        '®' => "(R)",
        '™' => "(TM)",
        '§' => "S",
        '¶' => "P",
        '°' => "o",
        '±' => "+/-",
        '×' => "x",
        '÷' => "/",
        '¹' => "1",
        '²' => "2",
        '³' => "3",
        '¼' => "1/4",
        '½' => "1/2",
        '¾' => "3/4",
        '‰' => "o/oo",
        '¦' => "|",
        'ˆ' => "^",
        '˜' => "~",
        '¸' => ",",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(s: &str, cs: Charset, ascii_only: bool) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        s.chars()
            .all(|c| push_char(&mut out, c, cs, ascii_only))
            .then_some(out)
    }

    #[test]
    fn classification() {
        assert_eq!(classify(None), Some(Charset::Ascii));
        assert_eq!(classify(Some("UTF-8")), Some(Charset::Utf8));
        assert_eq!(classify(Some(" utf8 ")), Some(Charset::Utf8));
        assert_eq!(classify(Some("ISO-8859-1")), Some(Charset::Latin1));
        assert_eq!(classify(Some("iso-8859-15")), Some(Charset::Latin9));
        assert_eq!(classify(Some("Windows-1252")), Some(Charset::Windows1252));
        assert_eq!(classify(Some("us-ascii")), Some(Charset::Ascii));
        assert_eq!(classify(Some("iso-8859-2")), Some(Charset::Ascii));
        assert_eq!(classify(Some("Shift_JIS")), Some(Charset::Ascii));
        assert_eq!(classify(Some("UTF-16LE")), None);
        assert_eq!(classify(Some("utf-7")), None);
        assert_eq!(classify(Some("IBM037")), None);
    }

    #[test]
    fn exact_conversions() {
        assert_eq!(write("café", Charset::Latin1, false).unwrap(), b"caf\xe9");
        assert_eq!(
            write("café €", Charset::Windows1252, false).unwrap(),
            b"caf\xe9 \x80"
        );
        assert_eq!(
            write("café €", Charset::Latin9, false).unwrap(),
            b"caf\xe9 \xa4"
        );
        assert_eq!(
            write("café", Charset::Utf8, false).unwrap(),
            "café".as_bytes()
        );
        assert!(write("€", Charset::Latin1, false).is_none());
        assert!(write("½", Charset::Latin9, false).is_none());
        assert!(write("ł", Charset::Windows1252, false).is_none());
        assert!(write("é", Charset::Utf8, true).is_none());
        assert!(write("é", Charset::Ascii, false).is_none());
        // C1 controls are not written as Latin-1 bytes.
        assert!(write("\u{85}", Charset::Latin1, false).is_none());
    }

    #[test]
    fn transliterations_are_ascii() {
        for c in '\u{80}'..='\u{2fff}' {
            if let Some(t) = transliterate(c) {
                assert!(t.is_ascii(), "{c:?}");
            }
        }
        assert_eq!(transliterate('ë'), Some("e"));
        assert_eq!(transliterate('ĳ'), Some("ij"));
        assert_eq!(transliterate('€'), Some("EUR"));
        assert_eq!(transliterate('中'), None);
    }
}
