//! `provider = "spryng"`: Spryng's REST API, `POST https://rest.spryngsms.com/v1/messages`
//! with `Authorization: Bearer <api key>`. Success is a 2xx answer carrying the created
//! message object (its `id` is the reference); anything else is a failure.

use serde_json::{Value, json};

use super::{Outgoing, Sms, SmsError, is_success, json, reference_of};

pub const DEFAULT_URL: &str = "https://rest.spryngsms.com/v1/messages";

pub(super) fn request(m: &Sms<'_>) -> Outgoing {
    let body = json!({
        "body": m.text,
        "originator": m.sender,
        // Spryng wants the international number without + or 00.
        "recipients": [m.to.digits()],
        "route": "business",
        "encoding": "auto",
        "reference": m.reference,
    });
    Outgoing::authorized("Bearer", m.token, body)
}

pub(super) fn response(status: u16, body: &[u8], reference: &str) -> Result<String, SmsError> {
    if !is_success(status) {
        return Err(SmsError::provider(format!("Spryng answered HTTP {status}")));
    }
    let v = json(status, body)?;
    if !v.is_object() {
        return Err(SmsError::provider(format!(
            "Spryng answered HTTP {status} without a message object"
        )));
    }
    Ok(reference_of(v.get("id").filter(|id| !Value::is_null(id)))
        .unwrap_or_else(|| reference.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::phone::Phone;

    #[test]
    fn shape_and_answers() {
        let to = Phone::parse("0612345678").unwrap();
        let out = request(&Sms::test("key", &to, "t", "r"));
        assert_eq!(out.authorization.as_deref(), Some("Bearer key"));
        assert_eq!(out.body["recipients"], json!(["31612345678"]));
        assert_eq!(out.body["originator"], "Zkh");
        assert_eq!(out.body["body"], "t");
        let ok = br#"{"id":"9dbc5ffb-7524-4fae-9514-51decd94a44f","encoding":"plain","originator":"Zkh","body":"t","reference":"r","credits":1,"scheduled_at":null,"canceled_at":null,"created_at":"2026-12-02T12:00:00.000000Z","updated_at":"2026-12-02T12:00:00.000000Z","links":{}}"#;
        assert_eq!(
            response(200, ok, "r").unwrap(),
            "9dbc5ffb-7524-4fae-9514-51decd94a44f"
        );
        assert!(response(401, br#"{"message":"Unauthenticated."}"#, "r").is_err());
        assert!(response(422, br#"{"message":"invalid","errors":{}}"#, "r").is_err());
        assert!(response(200, b"[]", "r").is_err());
        assert!(response(200, b"not json", "r").is_err());
    }
}
