//! Helpers of tests/portal_browser.rs: processes (portal, chromedriver, PostgreSQL),
//! the test message, WebDriver steps (click and wait, Tab, axe-core), plain HTTP.
#![allow(dead_code)]

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nta7516_milter::portal::phone::Phone;
use nta7516_milter::portal::store::{NewRecipient, Store};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_nta7516-milter");
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const AXE: &str = include_str!("../fixtures/axe.min.js");
pub const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!(
                "{what} exited {s}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not listen: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn message(trap: u16) -> Vec<u8> {
    format!(
        "From: Dr. A <a@zkh.example>\r\n\
To: p@patient.example\r\n\
Subject: Uitslag onderzoek\r\n\
Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n\
Message-ID: <m1@zkh.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: multipart/related; boundary=\"b2\"\r\n\
\r\n\
--b2\r\n\
Content-Type: text/html; charset=utf-8\r\n\
\r\n\
<html><body><p>Beste patient, zie de bijlage.</p>\
<script>window.__pwned=1</script>\
<img src=\"x\" onerror=\"window.__pwned=2\" alt=\"x\">\
<a href=\"javascript:window.__pwned=3\">klik</a>\
<img src=\"http://127.0.0.1:{trap}/remote.png\" alt=\"remote\">\
<img src=\"cid:logo@zkh\" alt=\"logo\" id=\"logo\"></body></html>\r\n\
--b2\r\n\
Content-Type: image/png\r\n\
Content-ID: <logo@zkh>\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
{PNG_1X1}\r\n\
--b2--\r\n\
--b1\r\n\
Content-Type: application/pdf; name=\"uitslag.pdf\"\r\n\
Content-Disposition: attachment; filename=\"uitslag.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJUVPRgo=\r\n\
--b1--\r\n"
    )
    .into_bytes()
}

pub async fn store_one(
    store: &Store,
    raw: &[u8],
    rcpt: &str,
    phone: &str,
    retention: Duration,
) -> String {
    let mut m = store
        .begin("a@zkh.example", Some("<m1@zkh.example>"), retention)
        .await
        .unwrap();
    m.write(raw).await.unwrap();
    let out = m
        .commit(&[NewRecipient {
            address: rcpt.into(),
            phone: Phone::parse(phone).unwrap(),
        }])
        .await
        .unwrap();
    out[0].token.clone().unwrap()
}

/// The code in the newest SMS the fake received.
pub fn last_code(sms: &Mutex<Vec<Value>>) -> String {
    let all = sms.lock().unwrap();
    code_in(all.last().expect("an SMS")["text"].as_str().unwrap())
}

/// The one six-digit code in an SMS text (fails unless there is exactly one).
pub fn code_in(text: &str) -> String {
    let mut run = String::new();
    let mut found = Vec::new();
    for c in text.chars().chain([' ']) {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            if run.len() == 6 {
                found.push(run.clone());
            }
            run.clear();
        }
    }
    assert_eq!(
        found.iter().collect::<std::collections::HashSet<_>>().len(),
        1,
        "{text}"
    );
    found[0].clone()
}

/// chromedriver on a free port and a headless Chromium session that downloads into
/// `downloads` without asking; its log and profile live in `dir`.
pub async fn start_browser(dir: &Path, downloads: &Path) -> (Kill, Client) {
    start_browser_with(dir, downloads, "nl,en").await
}

/// [`start_browser`] with the browser's `Accept-Language` list (e.g. `"en"`).
pub async fn start_browser_with(
    dir: &Path,
    downloads: &Path,
    accept_languages: &str,
) -> (Kill, Client) {
    let cd_port = free_port();
    let cd_log = dir.join("chromedriver.log");
    let f = std::fs::File::create(&cd_log).unwrap();
    let mut driver = Kill(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={cd_port}"))
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    );
    wait_port(cd_port, "chromedriver", &mut driver.0, &cd_log);
    let profile = dir.join("profile");
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     format!("--accept-lang={accept_languages}"),
                     format!("--user-data-dir={}", profile.display())],
            "prefs": {
                "download.default_directory": downloads.display().to_string(),
                "download.prompt_for_download": false,
                "intl.accept_languages": accept_languages,
                "profile.default_content_setting_values.automatic_downloads": 1
            }
        }
    });
    let caps: serde_json::Map<String, Value> = serde_json::from_value(caps).unwrap();
    let c = fantoccini::ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{cd_port}"))
        .await
        .expect("chromedriver session");
    (driver, c)
}

/// pdftotext (poppler-utils) of a PDF, written to `dir` first.
pub fn pdf_text(dir: &Path, pdf: &[u8]) -> String {
    let path = dir.join("check.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    assert!(out.status.success(), "pdftotext failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn axe(c: &Client, page: &str) {
    c.execute(AXE, vec![]).await.unwrap();
    let v = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document).then(r => done(r.violations.map(v => v.id + ': ' +
               v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe error ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(v, json!([]), "axe violations on {page}");
}

pub async fn text(c: &Client) -> String {
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Keys to the focused element.
pub async fn press(c: &Client, keys: &str) {
    c.active_element()
        .await
        .unwrap()
        .send_keys(keys)
        .await
        .unwrap();
}

/// Presses Tab until the element matching `css` has the focus (at most 20 times), and
/// checks that each focused element has a visible outline.
pub async fn tab_to(c: &Client, css: &str) {
    for _ in 0..20 {
        press(c, "\u{E004}").await;
        let state = c
            .execute(
                "const e = document.activeElement;
                 const s = getComputedStyle(e);
                 return [e.matches(arguments[0]), s.outlineStyle, e.tagName];",
                vec![json!(css)],
            )
            .await
            .unwrap();
        assert_ne!(state[1], json!("none"), "focus not visible: {state}");
        if state[0] == json!(true) {
            return;
        }
    }
    panic!("{css} not reachable with Tab");
}

/// Clicks and waits until the next page has loaded (a click returns before it has).
pub async fn click_and_wait(c: &Client, css: &str) {
    c.execute("window.__before_click = 1", vec![])
        .await
        .unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_new_page(c).await;
}

/// Waits until the page marked with `window.__before_click` has been replaced.
pub async fn wait_new_page(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let done = c
            .execute(
                "return window.__before_click === undefined && document.readyState === 'complete'",
                vec![],
            )
            .await;
        if matches!(done, Ok(Value::Bool(true))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no new page");
}

pub async fn submit_code(c: &Client, code: &str) {
    let input = c.find(Locator::Css("input[name=code]")).await.unwrap();
    input.send_keys(code).await.unwrap();
    click_and_wait(c, "form.code button[type=submit]").await;
}

pub async fn send_code(c: &Client) {
    click_and_wait(c, "form[action$='/send'] button").await;
}

pub fn wait_file(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if path.exists() && !dir.join(format!("{name}.crdownload")).exists() {
            std::thread::sleep(Duration::from_millis(200));
            return std::fs::read(&path).unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "download {name} did not arrive: {:?}",
        std::fs::read_dir(dir).unwrap().collect::<Vec<_>>()
    );
}

pub fn audit(dir: &Path, event: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("portal-audit.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("\"event_type\":\"{event}\"")))
        .map(str::to_string)
        .collect()
}

/// The PostgreSQL server of tests/portal_support (one harness for every portal test).
#[path = "../portal_support/pg.rs"]
mod pg;
#[allow(unused_imports)]
pub use pg::Pg;

/// One HTTP/1.1 request straight at the portal; the response head (lower-cased) and body.
pub async fn http(port: u16, request: &str) -> (String, String) {
    let (head, body) = http_as_sent(port, request).await;
    (head.to_ascii_lowercase(), body)
}

/// [`http`] with the head as the portal sent it (cookie values keep their case).
pub async fn http_as_sent(port: u16, request: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        request
            .replace("HOST", &format!("127.0.0.1:{port}"))
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

/// The fake SMS webhook on a loopback port: every request's JSON body, in order.
pub async fn sms_stub() -> (u16, Arc<Mutex<Vec<Value>>>) {
    let sms: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rec = sms.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |body: axum::body::Bytes| {
            let rec = rec.clone();
            async move {
                rec.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                (
                    [("content-type", "application/json")],
                    "{\"id\":\"fake-1\"}",
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, sms)
}
