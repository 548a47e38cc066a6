//! `provider = "cm"`: CM.com's business messaging gateway, `POST
//! https://gw.messaging.cm.com/v1.0/message`. The product token travels in the body
//! (`messages.authentication.producttoken`) and, as CM's own clients send it, in the
//! `X-CM-PRODUCTTOKEN` header. CM reports the outcome in the body: `errorCode` 0 and every
//! message `"status": "Accepted"` is success, whatever the HTTP status; any other code
//! (101 authentication, 102 balance, 201 partly sent, 202 malformed, 3xx a message field,
//! 4xx refused, 500/999 CM trouble) is a failure.

use serde_json::{Value, json};

use super::{Outgoing, Sms, SmsError, json, reference_of};

pub const DEFAULT_URL: &str = "https://gw.messaging.cm.com/v1.0/message";
/// A code fits one message part; eight bounds what one send can cost.
const MAX_PARTS: u32 = 8;

pub(super) fn request(m: &Sms<'_>) -> Outgoing {
    let body = json!({
        "messages": {
            "authentication": { "producttoken": m.token },
            "msg": [{
                "from": m.sender,
                // CM wants the international form with 00 instead of +.
                "to": [{ "number": format!("00{}", m.to.digits()) }],
                "body": { "type": "auto", "content": m.text },
                "reference": m.reference,
                "minimumNumberOfMessageParts": 1,
                "maximumNumberOfMessageParts": MAX_PARTS,
            }]
        }
    });
    Outgoing::token_header("X-CM-PRODUCTTOKEN", m.token, body)
}

pub(super) fn response(status: u16, body: &[u8], reference: &str) -> Result<String, SmsError> {
    let v = json(status, body)?;
    let code = v.get("errorCode").and_then(Value::as_i64);
    let messages = v.get("messages").and_then(Value::as_array);
    let all_accepted = messages.is_some_and(|m| {
        !m.is_empty()
            && m.iter().all(|msg| {
                msg.get("status").and_then(Value::as_str) == Some("Accepted")
                    && msg
                        .get("messageErrorCode")
                        .and_then(Value::as_i64)
                        .is_none_or(|c| c == 0)
            })
    });
    match code {
        Some(0) if all_accepted => Ok(messages
            .and_then(|m| reference_of(m[0].get("reference")))
            .unwrap_or_else(|| reference.to_string())),
        Some(0) => Err(SmsError::provider(format!(
            "CM (HTTP {status}): errorCode 0 but the message was not accepted"
        ))),
        Some(c) => Err(SmsError::provider(format!(
            "CM (HTTP {status}): errorCode {c}"
        ))),
        None => Err(SmsError::provider(format!(
            "CM (HTTP {status}): no errorCode in the answer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::phone::Phone;

    #[test]
    fn request_shape() {
        let to = Phone::parse("+31612345678").unwrap();
        let out = request(&Sms::test(
            "00000000-0000-0000-0000-000000000000",
            &to,
            "t",
            "r",
        ));
        assert_eq!(out.authorization, None);
        assert_eq!(out.extra.as_ref().unwrap().0, "X-CM-PRODUCTTOKEN");
        let m = &out.body["messages"];
        assert_eq!(
            m["authentication"]["producttoken"],
            "00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(m["msg"][0]["to"][0]["number"], "0031612345678");
        assert_eq!(m["msg"][0]["from"], "Zkh");
        assert_eq!(m["msg"][0]["body"], json!({"type": "auto", "content": "t"}));
        assert_eq!(m["msg"][0]["reference"], "r");
    }

    #[test]
    fn the_body_decides() {
        let ok = br#"{"details":"Created 1 message(s)","errorCode":0,"messages":[{"to":"0031612345678","status":"Accepted","reference":"r-9","parts":1,"messageDetails":null,"messageErrorCode":0}]}"#;
        assert_eq!(response(200, ok, "r").unwrap(), "r-9");
        assert_eq!(response(201, ok, "r").unwrap(), "r-9");
        let refused = br#"{"details":"No account found for the given authentication","errorCode":101,"messages":[]}"#;
        let e = response(200, refused, "r").unwrap_err().to_string();
        assert!(e.contains("errorCode 101"), "{e}");
        assert!(
            !e.contains("No account"),
            "the answer's text stays out: {e}"
        );
        let partly = br#"{"details":"x","errorCode":0,"messages":[{"status":"Rejected","messageErrorCode":304}]}"#;
        assert!(response(200, partly, "r").is_err());
        assert!(response(500, b"<html>", "r").is_err());
        assert!(response(200, b"{}", "r").is_err());
    }
}
