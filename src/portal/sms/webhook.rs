//! `provider = "webhook"`: the site's own gateway. `POST <url>` with
//! `Authorization: Bearer <token>` and the JSON body `{"to": "+31612345678", "text": "...",
//! "reference": "..."}`; any 2xx answer means accepted, whatever its body.

use serde_json::json;

use super::{Outgoing, Sms, SmsError, is_success};

pub(super) fn request(m: &Sms<'_>) -> Outgoing {
    let body = json!({ "to": m.to.e164(), "text": m.text, "reference": m.reference });
    Outgoing::authorized("Bearer", m.token, body)
}

/// The webhook defines no answer body, so the reference is ours.
pub(super) fn response(status: u16, _body: &[u8], reference: &str) -> Result<String, SmsError> {
    if is_success(status) {
        Ok(reference.to_string())
    } else {
        Err(SmsError::provider(format!(
            "webhook answered HTTP {status}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::phone::Phone;

    #[test]
    fn shape_and_answers() {
        let to = Phone::parse("0612345678").unwrap();
        let out = request(&Sms::test("tok", &to, "Code 123456", "r-1"));
        assert_eq!(out.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(
            out.body,
            json!({"to": "+31612345678", "text": "Code 123456", "reference": "r-1"})
        );
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(response(ok, b"", "r-1").unwrap(), "r-1");
        }
        for bad in [199, 301, 400, 401, 429, 500, 503] {
            assert!(response(bad, b"{}", "r-1").is_err(), "{bad}");
        }
    }
}
