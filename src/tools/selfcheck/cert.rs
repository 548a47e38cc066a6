//! The two facts `self-check` reads from an X.509 certificate (RFC 5280 §4.1): the
//! SubjectPublicKeyInfo (TLSA selector 1) and notAfter. A bounds-checked DER walk over
//! the outer structure only; a certificate it cannot read gives `None`, never a panic.

use aws_lc_rs::digest;
use time::OffsetDateTime;

use crate::dns::Tlsa;

/// One DER element: (tag, the whole element, its contents).
type Element<'a> = (u8, &'a [u8], &'a [u8]);

/// The first DER element of `input`, and the rest of the input.
fn element(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in input.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    let whole = input.get(..end)?;
    Some(((tag, whole, whole.get(head..)?), input.get(end..)?))
}

const SEQUENCE: u8 = 0x30;

/// The elements of tbsCertificate, from its first field (with the optional `[0]` version
/// skipped): serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, …
fn tbs_fields(cert: &[u8]) -> Option<Vec<Element<'_>>> {
    let ((tag, _, body), _) = element(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let ((tag, _, tbs), _) = element(body)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut fields = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() && fields.len() < 7 {
        let (field, next) = element(rest)?;
        if !(fields.is_empty() && field.0 == 0xa0) {
            fields.push(field);
        }
        rest = next;
    }
    Some(fields)
}

/// The DER SubjectPublicKeyInfo (what TLSA selector 1 hashes).
pub fn spki(cert: &[u8]) -> Option<&[u8]> {
    let fields = tbs_fields(cert)?;
    let (tag, whole, _) = *fields.get(5)?;
    (tag == SEQUENCE).then_some(whole)
}

/// notAfter, as UTCTime (YYMMDDHHMMSSZ, RFC 5280 §4.1.2.5.1: YY < 50 is 20YY) or
/// GeneralizedTime (YYYYMMDDHHMMSSZ).
pub fn not_after(cert: &[u8]) -> Option<OffsetDateTime> {
    let fields = tbs_fields(cert)?;
    let (tag, _, validity) = *fields.get(3)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, rest) = element(validity)?;
    let ((tag, _, value), _) = element(rest)?;
    let text = std::str::from_utf8(value).ok()?.strip_suffix('Z')?;
    let full = match (tag, text.len()) {
        (0x17, 12) => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy < 50 { "20" } else { "19" })
        }
        (0x18, 14) => text.to_string(),
        _ => return None,
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| full.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        month,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(8..10)?).ok()?,
        u8::try_from(num(10..12)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

/// Does `cert` (DER) match the TLSA record's selector and matching type (RFC 6698 §2.1)?
pub fn matches(tlsa: &Tlsa, cert: &[u8]) -> bool {
    let selected = match tlsa.selector {
        0 => cert,
        1 => match spki(cert) {
            Some(s) => s,
            None => return false,
        },
        _ => return false,
    };
    match tlsa.matching {
        0 => selected == tlsa.data.as_slice(),
        1 => digest::digest(&digest::SHA256, selected).as_ref() == tlsa.data.as_slice(),
        2 => digest::digest(&digest::SHA512, selected).as_ref() == tlsa.data.as_slice(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_input_gives_none() {
        for bad in [
            &b""[..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01],
            &[0x04, 0x00],
        ] {
            assert_eq!(spki(bad), None);
            assert_eq!(not_after(bad), None);
            let t = Tlsa {
                usage: 3,
                selector: 1,
                matching: 1,
                data: vec![0; 32],
            };
            assert!(!matches(&t, bad));
        }
    }
}
