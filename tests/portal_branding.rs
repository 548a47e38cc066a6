//! `[portal.branding]` end to end: the real `nta7516-milter portal` binary configured with a
//! logo, two colours, its own notification text and an accessibility contact; a message
//! taken in over LMTP; the notification caught by a fake `sendmail`; its one link followed
//! in a real headless Chromium (chromedriver, fantoccini), axe-core on every page.
//!
//! Checked: the notification is the configured text with its one link; the logo loads (and
//! is served with its type, long caching and a sandboxing policy); the configured colours
//! are what the browser computes; `Accept-Language: en` gives English and `nl` Dutch; the
//! language switch is on every page (landing, message, notices, the accessibility
//! statement) and works from each; the footer links the statement, which names the
//! organisation, the standard and the contact, in both languages.
//!
//! Without chromium/chromedriver the browser part is skipped, unless NTA_REQUIRE_BROWSER=1.

// Both support modules load tests/portal_support/pg.rs (the browser one by `#[path]`):
// this suite needs the LMTP client of the one and the WebDriver steps of the other.
#![allow(clippy::duplicate_mod)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::Store;
use serde_json::json;

mod portal_browser_support;
mod portal_support;

use portal_browser_support::*;

const ORG: &str = "Ziekenhuis Merk";
const CONTACT: &str = "toegankelijk@zkh.example";
/// Dark green and dark red: both pass 4.5:1 on white.
const PRIMARY: (&str, &str) = ("#005a32", "rgb(0, 90, 50)");
const ACCENT: (&str, &str) = ("#8b0000", "rgb(139, 0, 0)");
const NOTICE_NL: &str = "Goedendag,\n\n{organisation} heeft een bericht voor u.\nOpen het met deze link:\n{link}\nDe code komt per sms op {phone}.\n";
const NOTICE_EN: &str =
    "{organisation} has a message for you. Open the link above. The code goes to {phone}.";

/// A fake `sendmail` that keeps every message it is given as `mail/<n>.eml`.
fn fake_sendmail(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let mail = dir.join("mail");
    std::fs::create_dir(&mail).unwrap();
    let p = dir.join("sendmail");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nn=$(ls {m} | wc -l)\ncat > {m}/$n.tmp && mv {m}/$n.tmp {m}/$n.eml\n",
            m = mail.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn wait_mail(dir: &Path) -> String {
    let path = dir.join("mail/0.eml");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(Instant::now() < deadline, "no notification was submitted");
        std::thread::sleep(Duration::from_millis(100));
    }
    String::from_utf8(std::fs::read(&path).unwrap()).unwrap()
}

fn config(dir: &Path, web: u16, lmtp: u16, sms: u16, logo: &Path) -> String {
    let toml_text = |s: &str| s.replace('\n', "\\n");
    format!(
        r#"[domains]
own = ["zkh.example"]
[portal]
listen = "inet:127.0.0.1:{web}"
public_url = "http://127.0.0.1:{web}"
lmtp = "inet:127.0.0.1:{lmtp}"
store = "sqlite:{db}"
key_file = "{key}"
from = "portaal@zkh.example"
organisation = "{ORG}"
audit_file = "{audit}"
sendmail = "{sendmail}"
mail_key = "{mail_key}"
[portal.branding]
logo = "{logo}"
primary_colour = "{primary}"
accent_colour = "{accent}"
notification_nl = "{nl}"
notification_en = "{en}"
accessibility_contact = "{CONTACT}"
[portal.sms]
provider = "webhook"
url = "http://127.0.0.1:{sms}/sms"
token_file = "{token}"
"#,
        db = dir.join("portal.db").display(),
        key = dir.join("portal.key").display(),
        audit = dir.join("portal-audit.log").display(),
        sendmail = dir.join("sendmail").display(),
        mail_key = dir.join("mail.key").display(),
        logo = logo.display(),
        primary = PRIMARY.0,
        accent = ACCENT.0,
        nl = toml_text(NOTICE_NL),
        en = toml_text(NOTICE_EN),
        token = dir.join("sms.token").display(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let (sms_port, sms) = sms_stub().await;
    let key = dir.join("portal.key");
    let out = Command::new(BIN)
        .args(["portal", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(dir.join("sms.token"), "t0ken\n").unwrap();
    std::fs::write(dir.join("mail.key"), [7u8; 32]).unwrap();
    fake_sendmail(&dir);
    let logo_bytes = data_encoding::BASE64.decode(PNG_1X1.as_bytes()).unwrap();
    let logo = dir.join("logo.png");
    std::fs::write(&logo, &logo_bytes).unwrap();
    let (web_port, lmtp_port) = (free_port(), free_port());
    std::fs::write(
        dir.join("config.toml"),
        config(&dir, web_port, lmtp_port, sms_port, &logo),
    )
    .unwrap();
    let log = dir.join("portal.log");
    let f = std::fs::File::create(&log).unwrap();
    let mut portal = Kill(
        Command::new(BIN)
            .args(["portal", "--config"])
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap(),
    );
    wait_port(web_port, "portal web", &mut portal.0, &log);
    wait_port(lmtp_port, "portal lmtp", &mut portal.0, &log);
    let base = format!("http://127.0.0.1:{web_port}");

    // One message over LMTP; the notification is the configured text, one link.
    let mut raw = b"X-NTA7516-Phone: +31612345678\r\n".to_vec();
    raw.extend_from_slice(&message(9));
    let replies = tokio::task::spawn_blocking(move || {
        let mut l = portal_support::Lmtp::connect(lmtp_port);
        assert!(l.cmd("LHLO test").starts_with("250"));
        l.send("a@zkh.example", &["p@patient.example"], &raw)
    })
    .await
    .unwrap();
    assert!(replies[0].starts_with("250"), "{replies:?}");
    let mail = wait_mail(&dir);
    let (head, body) = mail.split_once("\n\n").unwrap();
    let urls: Vec<&str> = body
        .split_whitespace()
        .filter(|w| w.contains("://"))
        .collect();
    assert_eq!(urls.len(), 1, "{body}");
    let link = urls[0].to_string();
    assert!(link.starts_with(&format!("{base}/m/")), "{link}");
    let fill = |t: &str| {
        t.replace("{organisation}", ORG)
            .replace("{link}", &link)
            .replace("{phone}", "06-****5678")
    };
    assert_eq!(
        body,
        format!(
            "{}\n\n---\n\n{}\n",
            fill(NOTICE_NL).trim_end(),
            fill(NOTICE_EN)
        )
    );
    assert!(!head.contains("://"), "{head}");
    assert!(
        !body.contains("Uitslag onderzoek"),
        "nothing of the message"
    );

    // An expired message, stored beside the running portal, for the "gone" notice.
    let store = Store::open(
        &StoreLocation::Sqlite(dir.join("portal.db")),
        Arc::new(MasterKey::load(&key).unwrap()),
    )
    .await
    .unwrap();
    let gone = store_one(
        &store,
        &message(9),
        "r@patient.example",
        "+31611112222",
        Duration::ZERO,
    )
    .await;

    http_checks(web_port, &logo_bytes).await;

    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("NTA_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "NTA_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!("skipped: no chromium/chromedriver (set NTA_REQUIRE_BROWSER=1 to fail instead)");
        return;
    }
    for (accept, flow) in [("nl", false), ("en", true)] {
        let profile = dir.join(format!("browser-{accept}"));
        std::fs::create_dir(&profile).unwrap();
        let (driver, c) = start_browser_with(&profile, &profile, accept).await;
        let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
            c.goto(&link).await.unwrap();
            let want = if accept == "nl" {
                "Beveiligd bericht van"
            } else {
                "Secure message from"
            };
            assert!(text(&c).await.contains(want), "Accept-Language {accept}");
            frame_of_page(&c, accept).await;
            if flow {
                run(&c, &base, &link, &gone, &sms).await;
            }
        }))
        .await;
        let _ = c.close().await;
        drop(driver);
        if let Err(p) = result {
            eprintln!(
                "portal log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::panic::resume_unwind(p);
        }
    }
    drop(portal);
}

/// The logo, the theme and the statement over plain HTTP: types, caching, policies.
async fn http_checks(port: u16, logo: &[u8]) {
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n");
    let (head, _) = http(port, &get("/static/logo?v=anything")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    for h in [
        "content-type: image/png",
        "cache-control: public, max-age=31536000, immutable",
        "content-security-policy: default-src 'none'",
        "sandbox",
        "x-content-type-options: nosniff",
        &format!("content-length: {}", logo.len()),
    ] {
        assert!(head.contains(h), "logo: {h} missing in {head}");
    }
    assert!(!head.contains("no-store"), "{head}");
    // axum's own refusals are pages too (with the switch): a GET on a form's address, a
    // part number that is not one.
    for (path, status) in [("/m/abc/send", "405"), ("/m/abc/part/x", "400")] {
        let (head, page) = http(port, &get(path)).await;
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{path}: {head}"
        );
        assert!(head.contains("content-type: text/html"), "{path}: {head}");
        assert!(
            page.contains("hreflang=\"en\"") && page.contains("/toegankelijkheid"),
            "{path}: {page}"
        );
    }
    let (head, css) = http(port, &get("/static/theme.css")).await;
    assert!(head.contains("content-type: text/css"), "{head}");
    assert!(
        css.contains(&format!("--primary: {};", PRIMARY.0))
            && css.contains(&format!("--accent: {};", ACCENT.0)),
        "{css}"
    );
    for (accept, want) in [
        ("en", "Accessibility statement"),
        ("nl", "Toegankelijkheidsverklaring"),
    ] {
        let (head, page) = http(
            port,
            &format!(
                "GET /toegankelijkheid HTTP/1.1\r\nHost: HOST\r\nAccept-Language: {accept}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
        assert!(
            !head.contains("script-src") && !page.contains("style="),
            "{page}"
        );
        assert!(page.contains(want), "{accept}: {page}");
    }
}

/// What every page has: the language, the switch with both links, the footer link to the
/// statement, the logo (loaded, with the organisation as its text) and the colours.
async fn frame_of_page(c: &Client, lang: &str) {
    // Let the logo load before it is measured.
    for _ in 0..50 {
        let done = c
            .execute("return [...document.images].every(i => i.complete)", vec![])
            .await
            .unwrap();
        if done == json!(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = c
        .execute(
            "const logo = document.querySelector('header img.logo');
             const header = getComputedStyle(document.querySelector('header'));
             const link = getComputedStyle(document.querySelector('footer a'));
             return [document.documentElement.lang,
                     [...document.querySelectorAll('nav ul.lang a')].map(a => a.hreflang).join(' '),
                     document.querySelector('footer a').getAttribute('href'),
                     logo ? logo.naturalWidth : -1, logo ? logo.alt : '',
                     header.borderBottomColor, link.color];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(v[0], json!(lang), "{v}");
    assert_eq!(v[1], json!("nl en"), "language switch: {v}");
    assert_eq!(v[2], json!("/toegankelijkheid"), "{v}");
    assert!(v[3].as_i64().unwrap() > 0, "the logo did not load: {v}");
    assert_eq!(v[4], json!(ORG), "{v}");
    assert_eq!(v[5], json!(ACCENT.1), "{v}");
    assert_eq!(v[6], json!(PRIMARY.1), "{v}");
}

/// Clicks the switch to `to` and checks the page that comes is in that language.
async fn switch_to(c: &Client, to: &str) {
    click_and_wait(c, &format!("nav ul.lang a[hreflang='{to}']")).await;
    frame_of_page(c, to).await;
}

async fn run(
    c: &Client,
    base: &str,
    link: &str,
    gone: &str,
    sms: &std::sync::Mutex<Vec<serde_json::Value>>,
) {
    // Landing (English from Accept-Language): the primary colour on the button, the
    // accent as the focus outline; the switch works from here.
    let button = c
        .execute(
            "return getComputedStyle(document.querySelector('form button')).backgroundColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(button, json!(PRIMARY.1));
    tab_to(c, "form[action$='/send'] button").await;
    let outline = c
        .execute(
            "return getComputedStyle(document.activeElement).outlineColor",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(outline, json!(ACCENT.1));
    axe(c, "landing (en)").await;
    switch_to(c, "nl").await;
    assert!(text(c).await.contains("Beveiligd bericht van"));
    axe(c, "landing (nl)").await;
    switch_to(c, "en").await;

    // The statement, from the footer, in both languages.
    click_and_wait(c, "footer a").await;
    frame_of_page(c, "en").await;
    let t = text(c).await;
    for want in [
        "Accessibility statement",
        ORG,
        "EN 301 549",
        "WCAG 2.1",
        "axe-core",
        "keyboard",
        "What does not work well yet",
        CONTACT,
    ] {
        assert!(t.contains(want), "{want} not in {t}");
    }
    let mailto = c
        .find(Locator::Css("main a[href^='mailto:']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap();
    assert_eq!(mailto.as_deref(), Some(&*format!("mailto:{CONTACT}")));
    axe(c, "accessibility statement (en)").await;
    switch_to(c, "nl").await;
    let t = text(c).await;
    for want in [
        "Toegankelijkheidsverklaring",
        ORG,
        "EN 301 549",
        "toetsenbord",
        CONTACT,
    ] {
        assert!(t.contains(want), "{want} not in {t}");
    }
    axe(c, "accessibility statement (nl)").await;
    switch_to(c, "en").await;

    // Notices: an unknown link, an expired message, a refused POST; the switch on each
    // shows the same notice (or, after a POST, the link's page) in the other language.
    c.goto(&format!("{base}/m/doesnotexist")).await.unwrap();
    frame_of_page(c, "en").await;
    assert!(text(c).await.contains("Link not found"));
    switch_to(c, "nl").await;
    assert!(text(c).await.contains("Link niet gevonden"));
    axe(c, "unknown (nl)").await;
    c.goto(&format!("{base}/no/such/page")).await.unwrap();
    frame_of_page(c, "nl").await;
    switch_to(c, "en").await;
    assert!(text(c).await.contains("Link not found"));
    c.goto(&format!("{base}/m/{gone}")).await.unwrap();
    assert!(text(c).await.contains("no longer available"));
    switch_to(c, "nl").await;
    assert!(text(c).await.contains("niet meer beschikbaar"));
    axe(c, "expired (nl)").await;
    switch_to(c, "en").await;
    c.goto(link).await.unwrap();
    c.execute(
        "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())",
        vec![],
    )
    .await
    .unwrap();
    send_code(c).await;
    frame_of_page(c, "en").await;
    assert!(text(c).await.contains("Request refused"));
    switch_to(c, "nl").await;
    assert!(
        text(c).await.contains("Beveiligd bericht van"),
        "back on the link's page"
    );
    switch_to(c, "en").await;

    // The message page: the switch works there too.
    send_code(c).await;
    let code = last_code(sms);
    submit_code(c, &code).await;
    frame_of_page(c, "en").await;
    assert!(text(c).await.contains("Download as PDF"));
    axe(c, "message (en)").await;
    switch_to(c, "nl").await;
    assert!(text(c).await.contains("Download als PDF"));
}
