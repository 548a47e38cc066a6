//! The SMS providers against local fakes that speak each provider's documented API: the
//! request shape (method, path, headers, JSON) is checked on the fake's side, and each
//! fake answers success or failure the way the provider documents it (CM: `errorCode` in
//! the body; Spryng: a 2xx message object; MessageBird: `201 Created`; webhook: any 2xx).

use std::time::Duration;

use nta7516_milter::config::portal::{SmsConfig, SmsProvider};
use nta7516_milter::portal::phone::Phone;
use nta7516_milter::portal::sms::{SmsGateway, code_text};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "tok-3f9a1c-secret";
/// Every fake exchange is over within this; a hang is a failure, not a stuck test.
const TEST_DEADLINE: Duration = Duration::from_secs(20);

/// One HTTP request as the fake saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves exactly one request on 127.0.0.1:0 with `status` and `body`; returns the URL
/// (with `path`) and a handle yielding what was received.
async fn fake(path: &str, status: u16, body: &str) -> (String, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}{path}", listener.local_addr().unwrap());
    let answer = body.to_string();
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        // Headers, bounded.
        let head_end = loop {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed before the request ended");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(buf.len() < 64 * 1024, "request head too large");
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap().split(' ');
        let method = first.next().unwrap().to_string();
        let path = first.next().unwrap().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("a JSON POST carries Content-Length");
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < len {
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "client closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        let reason = if (200..300).contains(&status) {
            "OK"
        } else {
            "Error"
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        );
        sock.write_all(resp.as_bytes()).await.unwrap();
        sock.shutdown().await.ok();
        Seen {
            method,
            path,
            headers,
            body: serde_json::from_slice(&body).expect("the request body is JSON"),
        }
    });
    (url, handle)
}

fn gateway(provider: SmsProvider, url: &str, dir: &tempfile::TempDir) -> SmsGateway {
    let token_file = dir.path().join("sms.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    SmsGateway::new(SmsConfig {
        provider,
        url: url.to_string(),
        token_file,
        sender: "Zkh".into(),
    })
    .unwrap()
}

fn phone() -> Phone {
    Phone::parse("06 1234 5678").unwrap()
}

fn text() -> String {
    code_text("Ziekenhuis Noord", "482913", Duration::from_secs(600))
}

/// Sends one SMS through a fake; returns the result and what the fake saw.
async fn exchange(
    provider: SmsProvider,
    path: &str,
    status: u16,
    answer: &str,
) -> (Result<String, String>, Seen) {
    let dir = tempfile::tempdir().unwrap();
    let (url, seen) = fake(path, status, answer).await;
    let g = gateway(provider, &url, &dir);
    let result = tokio::time::timeout(TEST_DEADLINE, g.send(&phone(), &text(), "ref-1"))
        .await
        .expect("the send finished in time")
        .map_err(|e| e.to_string());
    let seen = tokio::time::timeout(TEST_DEADLINE, seen)
        .await
        .expect("the fake finished in time")
        .unwrap();
    if let Err(e) = &result {
        assert!(!e.contains(TOKEN), "the token leaked into an error: {e}");
    }
    (result, seen)
}

fn common_checks(seen: &Seen, path: &str) {
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, path);
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn webhook_fixed_shape_and_any_2xx() {
    let (r, seen) = exchange(SmsProvider::Webhook, "/hook/sms", 202, "").await;
    assert_eq!(r.unwrap(), "ref-1");
    common_checks(&seen, "/hook/sms");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        seen.body,
        json!({"to": "+31612345678", "text": text(), "reference": "ref-1"})
    );
    let (r, _) = exchange(SmsProvider::Webhook, "/hook/sms", 204, "").await;
    assert!(r.is_ok());
    for bad in [400, 401, 429, 500] {
        let (r, _) = exchange(SmsProvider::Webhook, "/hook/sms", bad, "{}").await;
        let e = r.unwrap_err();
        assert!(e.contains(&format!("HTTP {bad}")), "{e}");
    }
}

#[tokio::test]
async fn cm_errorcode_in_the_body_decides() {
    let ok = r#"{"details":"Created 1 message(s)","errorCode":0,"messages":[{"to":"0031612345678","status":"Accepted","reference":"ref-1","parts":1,"messageDetails":null,"messageErrorCode":0}]}"#;
    let (r, seen) = exchange(SmsProvider::Cm, "/v1.0/message", 200, ok).await;
    assert_eq!(r.unwrap(), "ref-1");
    common_checks(&seen, "/v1.0/message");
    assert_eq!(seen.header("x-cm-producttoken"), Some(TOKEN));
    assert_eq!(seen.header("authorization"), None);
    let msg = &seen.body["messages"]["msg"][0];
    assert_eq!(
        seen.body["messages"]["authentication"]["producttoken"],
        TOKEN
    );
    assert_eq!(msg["from"], "Zkh");
    assert_eq!(msg["to"], json!([{"number": "0031612345678"}]));
    assert_eq!(msg["body"], json!({"type": "auto", "content": text()}));
    assert_eq!(msg["reference"], "ref-1");

    // CM answers authentication failures inside the body, not (only) by status.
    let refused = r#"{"details":"No account found for the given authentication","errorCode":101,"messages":[]}"#;
    for status in [200, 400] {
        let (r, _) = exchange(SmsProvider::Cm, "/v1.0/message", status, refused).await;
        let e = r.unwrap_err();
        assert!(e.contains("errorCode 101"), "{e}");
    }
    let rejected = r#"{"details":"x","errorCode":201,"messages":[{"to":"0031612345678","status":"Rejected","reference":"ref-1","parts":0,"messageDetails":"x","messageErrorCode":304}]}"#;
    let (r, _) = exchange(SmsProvider::Cm, "/v1.0/message", 200, rejected).await;
    assert!(r.unwrap_err().contains("errorCode 201"));
}

#[tokio::test]
async fn spryng_message_object_on_2xx() {
    let ok = r#"{"id":"9dbc5ffb-7524-4fae-9514-51decd94a44f","encoding":"plain","originator":"Zkh","body":"x","reference":"ref-1","credits":1,"scheduled_at":null,"canceled_at":null,"created_at":"2026-12-02T12:00:00.000000Z","updated_at":"2026-12-02T12:00:00.000000Z","links":{"self":"/v1/messages/9dbc5ffb-7524-4fae-9514-51decd94a44f"}}"#;
    let (r, seen) = exchange(SmsProvider::Spryng, "/v1/messages", 200, ok).await;
    assert_eq!(r.unwrap(), "9dbc5ffb-7524-4fae-9514-51decd94a44f");
    common_checks(&seen, "/v1/messages");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(seen.body["recipients"], json!(["31612345678"]));
    assert_eq!(seen.body["originator"], "Zkh");
    assert_eq!(seen.body["body"], text());
    assert_eq!(seen.body["reference"], "ref-1");
    let (r, _) = exchange(
        SmsProvider::Spryng,
        "/v1/messages",
        401,
        r#"{"message":"Unauthenticated."}"#,
    )
    .await;
    assert!(r.unwrap_err().contains("HTTP 401"));
}

#[tokio::test]
async fn messagebird_201_created() {
    let ok = r#"{"id":"e8077d803532c0b5937c639b60216938","href":"https://rest.messagebird.com/messages/e8077d803532c0b5937c639b60216938","direction":"mt","type":"sms","originator":"Zkh","body":"x","reference":"ref-1","validity":null,"gateway":10,"typeDetails":{},"datacoding":"plain","mclass":1,"scheduledDatetime":null,"createdDatetime":"2026-12-02T12:00:00+00:00","recipients":{"totalCount":1,"totalSentCount":1,"totalDeliveredCount":0,"totalDeliveryFailedCount":0,"items":[{"recipient":31612345678,"status":"sent","statusDatetime":"2026-12-02T12:00:00+00:00"}]}}"#;
    let (r, seen) = exchange(SmsProvider::MessageBird, "/messages", 201, ok).await;
    assert_eq!(r.unwrap(), "e8077d803532c0b5937c639b60216938");
    common_checks(&seen, "/messages");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("AccessKey {TOKEN}").as_str())
    );
    assert_eq!(seen.body["recipients"], json!([31612345678u64]));
    assert_eq!(seen.body["originator"], "Zkh");
    assert_eq!(seen.body["body"], text());
    let (r, _) = exchange(
        SmsProvider::MessageBird,
        "/messages",
        401,
        r#"{"errors":[{"code":2,"description":"Request not allowed (incorrect access_key)","parameter":"access_key"}]}"#,
    )
    .await;
    assert!(r.unwrap_err().contains("error code 2"));
}

#[tokio::test]
async fn redirects_are_not_followed_and_unreachable_is_an_error() {
    // A redirect would carry the token elsewhere: it is an error, not followed.
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 8192];
        let _ = sock.read(&mut buf).await.unwrap();
        let resp = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:9/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        sock.write_all(resp.as_bytes()).await.unwrap();
        // Any second connection would be the redirect being followed.
        tokio::time::timeout(Duration::from_millis(500), listener.accept())
            .await
            .is_err()
    });
    let g = gateway(SmsProvider::Webhook, &format!("http://{addr}/hook"), &dir);
    let e = g
        .send(&phone(), &text(), "r")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("HTTP 307"), "{e}");
    assert!(server.await.unwrap(), "no second request");

    // Nothing listening: an error, quickly.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let g = gateway(SmsProvider::Webhook, &url, &dir);
    let started = std::time::Instant::now();
    let e = g
        .send(&phone(), &text(), "r")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot connect"), "{e}");
    assert!(!e.contains(TOKEN));
    assert!(started.elapsed() < Duration::from_secs(10));
}
