//! The browser half of tests/e2e/33-portal-browser.sh: a real headless Chromium (Debian's
//! chromium + chromedriver, WebDriver) follows the link taken from the notification that
//! real Postfix delivered, asks for the code, reads it from the lab's fake SMS gateway,
//! enters it and checks the message page, the attachment and both downloads; axe-core on
//! every page.
//!
//! Ignored in `cargo test`: the case file runs it inside the lab's network namespace with
//! `NTA_E2E_PORTAL=<browser.json>` (written by the case file):
//!
//! ```json
//! {"link": "http://127.0.10.1:7581/m/<token>",   // from the delivered notification
//!  "sms_log": ".../sms.jsonl",                    // the fake gateway's requests, one a line
//!  "phone": "+31612345678", "masked": "06-****5678", "organisation": "...",
//!  "sender": "...", "subject": "...", "body": "...",
//!  "attachment_name": "...", "attachment_file": "...",   // the attached file's bytes
//!  "eml": ".../lmtp-data.eml",                    // the DATA payload Postfix sent over LMTP
//!  "work": "...",                                 // downloads, profile, logs
//!  "reply_text": "...", "reply_file": "..."}      // optional: a reply sent through the page
//! ```
//!
//! `e2e_answer_then_withdraw` (the second visit) reads `answer.json`: `answer_link`,
//! `answer_subject`, `sms_log`, `phone`, `link`, `revoke` (the receipt's revoke link),
//! `recipient`, `subject`, `work`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use serde_json::Value;

mod portal_browser_support;

use portal_browser_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by tests/e2e/33-portal-browser.sh inside the lab (NTA_E2E_PORTAL=browser.json)"]
async fn e2e_notification_link_in_a_real_browser() {
    let spec = std::env::var("NTA_E2E_PORTAL")
        .expect("NTA_E2E_PORTAL (the case file's browser.json) is not set");
    let spec: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    let work = PathBuf::from(field(&spec, "work"));
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    );
    let (driver, c) = start_browser(&work, &downloads).await;
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(flow(
        &c, &spec, &work, &downloads,
    )))
    .await;
    let _ = c.close().await;
    drop(driver);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

fn field<'a>(spec: &'a Value, name: &str) -> &'a str {
    spec[name]
        .as_str()
        .unwrap_or_else(|| panic!("browser.json: no {name}"))
}

/// The fake gateway's requests so far.
fn sms_requests(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits (at most 20 s) until the fake gateway has `n` requests; the last one.
fn wait_sms(log: &Path, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = sms_requests(log);
        if all.len() >= n {
            assert_eq!(all.len(), n, "more SMS than asked for: {all:?}");
            return all[n - 1].clone();
        }
        assert!(
            Instant::now() < deadline,
            "SMS {n} did not reach the fake gateway"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn flow(c: &Client, spec: &Value, work: &Path, downloads: &Path) {
    let link = field(spec, "link");
    let sms_log = PathBuf::from(field(spec, "sms_log"));
    let before = sms_requests(&sms_log).len();

    // The landing page: organisation and masked number; the GET sent nothing.
    c.goto(link).await.unwrap();
    let t = text(c).await;
    assert!(t.contains(field(spec, "organisation")), "{t}");
    assert!(t.contains(field(spec, "masked")), "{t}");
    assert!(
        !t.contains(field(spec, "subject")),
        "content before the code: {t}"
    );
    axe(c, "landing").await;
    assert_eq!(sms_requests(&sms_log).len(), before, "an SMS from a GET");

    // Ask for the code; the fake gateway got it for the message's number.
    send_code(c).await;
    let sms = wait_sms(&sms_log, before + 1);
    assert_eq!(sms["body"]["to"], field(spec, "phone"), "{sms}");
    assert!(
        sms["authorization"]
            .as_str()
            .is_some_and(|a| a.starts_with("Bearer ")),
        "{sms}"
    );
    let code = code_in(sms["body"]["text"].as_str().unwrap());
    assert!(c.find(Locator::Css("input[name=code]")).await.is_ok());
    axe(c, "code form").await;

    // The code opens the message: sender, subject, the attachment's name.
    submit_code(c, &code).await;
    let t = text(c).await;
    for want in [
        field(spec, "subject"),
        field(spec, "sender"),
        field(spec, "attachment_name"),
    ] {
        assert!(t.contains(want), "{want} not on the message page: {t}");
    }
    axe(c, "message").await;
    // The body: in the page, or in its sandboxed frame (HTML mail).
    let body = field(spec, "body");
    if !t.contains(body) {
        c.enter_frame(0).await.unwrap();
        let framed = text(c).await;
        c.enter_parent_frame().await.unwrap();
        assert!(framed.contains(body), "{body} not shown: {t} / {framed}");
    }

    // Downloads: the PDF (its text), the original (byte-identical to what Postfix handed
    // the portal over LMTP), the attachment (byte-identical to the attached file).
    click(c, "a[type='application/pdf'][download]").await;
    let pdf = wait_file(downloads, "bericht.pdf");
    assert!(pdf.starts_with(b"%PDF"));
    let pdf_text = pdf_text(work, &pdf);
    for want in [
        field(spec, "subject"),
        field(spec, "sender"),
        body,
        field(spec, "attachment_name"),
    ] {
        assert!(
            pdf_text.contains(want),
            "{want} not in the PDF text: {pdf_text}"
        );
    }
    click(c, "a[type='message/rfc822'][download]").await;
    let eml = wait_file(downloads, "bericht.eml");
    let wire = std::fs::read(field(spec, "eml")).unwrap();
    std::fs::write(work.join("downloaded.eml"), &eml).unwrap();
    assert!(
        eml == wire,
        "the .eml ({} bytes, {}/downloaded.eml) differs from the LMTP DATA ({} bytes)",
        eml.len(),
        work.display(),
        wire.len()
    );
    let name = field(spec, "attachment_name");
    click(c, &format!("ul.attachments a[download='{name}']")).await;
    assert_eq!(
        wait_file(downloads, name),
        std::fs::read(field(spec, "attachment_file")).unwrap(),
        "the attachment"
    );

    // The English page.
    c.goto(&format!("{link}?lang=en")).await.unwrap();
    let t = text(c).await;
    assert!(t.contains("Download as PDF"), "{t}");
    axe(c, "message (en)").await;
    assert_eq!(
        sms_requests(&sms_log).len(),
        before + 1,
        "one code for the whole visit"
    );
    if spec["reply_text"].is_string() {
        reply(c, spec, link).await;
    }
}

/// The recipient answers through the page: first a form with an extra field (an attempt
/// to add a recipient) is refused, then the real reply with one attachment is sent.
async fn reply(c: &Client, spec: &Value, link: &str) {
    c.goto(&format!("{link}?lang=nl")).await.unwrap();
    c.execute(
        "const f = document.querySelector('form.reply');\
         const i = document.createElement('input');\
         i.type = 'hidden'; i.name = 'bcc'; i.value = 'evil@example.org';\
         f.appendChild(i); document.getElementById('reply-text').value = 'x';",
        vec![],
    )
    .await
    .unwrap();
    click_and_wait(c, "form.reply button[type=submit]").await;
    let t = text(c).await;
    assert!(
        t.contains("niet goed ontvangen") || t.contains("not received correctly"),
        "a form with an extra field: {t}"
    );
    c.goto(&format!("{link}?lang=nl")).await.unwrap();
    c.find(Locator::Css("#reply-text"))
        .await
        .unwrap()
        .send_keys(field(spec, "reply_text"))
        .await
        .unwrap();
    c.find(Locator::Css("#reply-files"))
        .await
        .unwrap()
        .send_keys(field(spec, "reply_file"))
        .await
        .unwrap();
    click_and_wait(c, "form.reply button[type=submit]").await;
    let t = text(c).await;
    assert!(
        t.contains("Antwoord verstuurd") || t.contains("Reply sent"),
        "{t}"
    );
    axe(c, "reply sent").await;
}

/// The second visit: the clinician's answer to the reply arrived as a new message for
/// the same recipient (same number, no number in it); its page says what it answers.
/// Then the sender withdraws the first message with the receipt's revoke link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by tests/e2e/33-portal-browser.sh inside the lab (NTA_E2E_PORTAL=answer.json)"]
async fn e2e_answer_then_withdraw() {
    let spec = std::env::var("NTA_E2E_PORTAL")
        .expect("NTA_E2E_PORTAL (the case file's answer.json) is not set");
    let spec: Value = serde_json::from_slice(&std::fs::read(&spec).unwrap()).unwrap();
    let work = PathBuf::from(field(&spec, "work"));
    let downloads = work.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let (driver, c) = start_browser(&work, &downloads).await;
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let sms_log = PathBuf::from(field(&spec, "sms_log"));
        let before = sms_requests(&sms_log).len();
        c.goto(&format!("{}?lang=nl", field(&spec, "answer_link")))
            .await
            .unwrap();
        send_code(&c).await;
        let sms = wait_sms(&sms_log, before + 1);
        assert_eq!(sms["body"]["to"], field(&spec, "phone"), "{sms}");
        submit_code(&c, &code_in(sms["body"]["text"].as_str().unwrap())).await;
        let t = text(&c).await;
        assert!(t.contains("Dit is een antwoord op uw bericht van"), "{t}");
        assert!(t.contains(field(&spec, "answer_subject")), "{t}");
        axe(&c, "answer").await;
        withdraw(&c, &spec, field(&spec, "link"), field(&spec, "revoke")).await;
    }))
    .await;
    let _ = c.close().await;
    drop(driver);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// The sender's side: the revoke link from the receipt, opened from inside the
/// organisation's network (the browser runs on an `[outbound] networks` address). The
/// page names the recipient but no content; the button withdraws; the recipient's link
/// then says "withdrawn" and the message is gone.
async fn withdraw(c: &Client, spec: &Value, link: &str, revoke: &str) {
    c.goto(&format!("{revoke}?lang=nl")).await.unwrap();
    let t = text(c).await;
    assert!(t.contains("Bericht intrekken"), "{t}");
    assert!(t.contains(field(spec, "recipient")), "{t}");
    assert!(
        !t.contains(field(spec, "subject")),
        "content on the revoke page: {t}"
    );
    axe(c, "revoke").await;
    click_and_wait(c, "main form button[type=submit]").await;
    let t = text(c).await;
    assert!(
        t.contains("Bericht ingetrokken") || t.contains("Message withdrawn"),
        "{t}"
    );
    axe(c, "withdrawn (sender)").await;
    c.goto(&format!("{link}?lang=nl")).await.unwrap();
    let t = text(c).await;
    assert!(t.contains("Dit bericht is ingetrokken"), "{t}");
    assert!(!t.contains(field(spec, "subject")), "{t}");
    axe(c, "withdrawn (recipient)").await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}
