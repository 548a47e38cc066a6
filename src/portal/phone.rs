//! A recipient's mobile number, the second factor of the portal: parsed once into E.164
//! (ITU-T E.164: `+`, country code, at most 15 digits) so that storage, SMS providers and the
//! masked display all start from one canonical form.

use std::fmt;

/// E.164 allows at most 15 digits after the `+`.
pub const MAX_E164_DIGITS: usize = 15;
/// Shortest number we accept: a country code and a subscriber number of some length.
pub const MIN_E164_DIGITS: usize = 8;
/// Dutch mobile numbers: `+31 6` followed by eight digits (Telecommunicatiewet numbering
/// plan; `+31 97` is machine-to-machine and cannot receive a code a person reads).
const NL_MOBILE_PREFIX: &str = "316";
const NL_MOBILE_DIGITS: usize = 11;

/// A validated mobile number in E.164 form, e.g. `+31612345678`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("not a phone number (expected E.164 like +31612345678 or a Dutch 06 number)")]
    Syntax,
    #[error("not a mobile number: Dutch numbers must start with +316 or 06 and have 10 digits")]
    NotMobile,
}

impl Phone {
    /// Accepts `+31612345678`, `0031612345678` and the Dutch national `0612345678`, with
    /// spaces, dots, hyphens and parentheses ignored as people write them.
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        let trimmed = input.trim();
        if trimmed.len() > 32 {
            return Err(PhoneError::Syntax);
        }
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '+' if i == 0 => plus = true,
                '0'..='9' => digits.push(c),
                ' ' | '.' | '-' | '(' | ')' => {}
                _ => return Err(PhoneError::Syntax),
            }
        }
        let international = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_string()
        } else if let Some(rest) = digits.strip_prefix('0') {
            // A national number: only the Dutch plan is known here.
            format!("31{rest}")
        } else {
            return Err(PhoneError::Syntax);
        };
        if !(MIN_E164_DIGITS..=MAX_E164_DIGITS).contains(&international.len())
            || international.starts_with('0')
        {
            return Err(PhoneError::Syntax);
        }
        if international.starts_with("31")
            && !(international.starts_with(NL_MOBILE_PREFIX)
                && international.len() == NL_MOBILE_DIGITS)
        {
            return Err(PhoneError::NotMobile);
        }
        Ok(Phone(format!("+{international}")))
    }

    /// `+31612345678`.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// The digits without `+` (`31612345678`), as Spryng and MessageBird want them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// What the recipient sees before asking for a code: `06-****5678` for a Dutch
    /// number, `+44-****5678` style otherwise. Never more than the last four digits.
    pub fn masked(&self) -> String {
        let digits = self.digits();
        let last4 = &digits[digits.len() - 4..];
        if digits.starts_with(NL_MOBILE_PREFIX) {
            format!("06-****{last4}")
        } else {
            format!("+{}-****{last4}", &digits[..2])
        }
    }
}

/// Debug shows the masked form only, so a `{:?}` in a log line cannot leak the number.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_written_forms_of_one_dutch_mobile() {
        for s in [
            "+31612345678",
            "0031612345678",
            "0612345678",
            "06-1234 5678",
            "+31 (6) 12345678",
        ] {
            assert_eq!(Phone::parse(s).unwrap().e164(), "+31612345678", "{s}");
        }
    }

    #[test]
    fn refuses_dutch_landlines_and_garbage() {
        assert_eq!(Phone::parse("0201234567"), Err(PhoneError::NotMobile));
        assert_eq!(Phone::parse("+31970123456789"), Err(PhoneError::NotMobile));
        for s in [
            "",
            "+",
            "abc",
            "+0612345678",
            "12345678",
            "+1234567",
            "+1234567890123456",
            "06 1234 567x",
        ] {
            assert_eq!(Phone::parse(s), Err(PhoneError::Syntax), "{s}");
        }
    }

    #[test]
    fn foreign_numbers_are_kept_as_given() {
        let p = Phone::parse("+447700900123").unwrap();
        assert_eq!(p.digits(), "447700900123");
        assert_eq!(p.masked(), "+44-****0123");
    }

    #[test]
    fn masking_shows_at_most_the_last_four_digits() {
        let p = Phone::parse("+31612345678").unwrap();
        assert_eq!(p.masked(), "06-****5678");
        assert_eq!(format!("{p:?}"), "Phone(06-****5678)");
    }
}
