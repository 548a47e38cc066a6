//! `provider = "messagebird"`: MessageBird's (Bird's) legacy SMS REST API, `POST
//! https://rest.messagebird.com/messages` with `Authorization: AccessKey <key>`. Success is
//! `201 Created` with the message object (its `id` is the reference); the API answers
//! errors with 4xx/5xx and an `errors` list.

use serde_json::{Value, json};

use super::{Outgoing, Sms, SmsError, json, reference_of};

pub const DEFAULT_URL: &str = "https://rest.messagebird.com/messages";

pub(super) fn request(m: &Sms<'_>) -> Result<Outgoing, SmsError> {
    // The API lists recipients as numbers (international, without + or 00).
    let msisdn: u64 =
        m.to.digits().parse().map_err(|_| {
            SmsError::provider("the number does not fit MessageBird's recipient form")
        })?;
    let body = json!({
        "originator": m.sender,
        "body": m.text,
        "recipients": [msisdn],
        "reference": m.reference,
    });
    Ok(Outgoing::authorized("AccessKey", m.token, body))
}

pub(super) fn response(status: u16, body: &[u8], reference: &str) -> Result<String, SmsError> {
    if status != 201 {
        // The first error's numeric code (e.g. 2 "request not allowed", 9 "missing
        // params") says what was wrong; its description may echo the request and stays out.
        let code = json(status, body)
            .ok()
            .and_then(|v| v.get("errors")?.as_array()?.first()?.get("code")?.as_i64());
        return Err(SmsError::provider(match code {
            Some(c) => format!("MessageBird answered HTTP {status}, error code {c}"),
            None => format!("MessageBird answered HTTP {status}"),
        }));
    }
    let v = json(status, body)?;
    Ok(
        reference_of(v.get("id").filter(|id| !matches!(id, Value::Null)))
            .unwrap_or_else(|| reference.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::phone::Phone;

    #[test]
    fn shape_and_answers() {
        let to = Phone::parse("0612345678").unwrap();
        let out = request(&Sms::test("key", &to, "t", "r")).unwrap();
        assert_eq!(out.authorization.as_deref(), Some("AccessKey key"));
        assert_eq!(out.body["recipients"], json!([31612345678u64]));
        let ok = br#"{"id":"e8077d803532c0b5937c639b60216938","href":"https://rest.messagebird.com/messages/e8077d803532c0b5937c639b60216938","direction":"mt","type":"sms","originator":"Zkh","body":"t","reference":"r","recipients":{"totalCount":1,"totalSentCount":1,"items":[{"recipient":31612345678,"status":"sent"}]}}"#;
        assert_eq!(
            response(201, ok, "r").unwrap(),
            "e8077d803532c0b5937c639b60216938"
        );
        // 200 is not what the API documents for a created message.
        assert!(response(200, ok, "r").is_err());
        let e = response(
            401,
            br#"{"errors":[{"code":2,"description":"Request not allowed (incorrect access_key)","parameter":"access_key"}]}"#,
            "r",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("HTTP 401, error code 2"), "{e}");
        assert!(!e.contains("access_key"), "{e}");
    }
}
