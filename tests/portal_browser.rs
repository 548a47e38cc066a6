//! The portal's web side in a real browser: the `nta7516-milter portal` binary, Debian's
//! chromium + chromedriver driven over WebDriver (fantoccini), a fake SMS webhook, axe-core
//! on every page. Fails (does not skip) without a browser when NTA_REQUIRE_BROWSER=1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::store::Store;
use serde_json::{Value, json};

mod portal_browser_support;

use portal_browser_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_a_real_browser_sqlite() {
    scenario(false).await;
}

/// The same on PostgreSQL (the portal's several-node store).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_in_a_real_browser_postgres() {
    scenario(true).await;
}

async fn scenario(postgres: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let pg = if postgres {
        match Pg::start(&dir) {
            Some(pg) => Some(pg),
            None => return,
        }
    } else {
        None
    };
    let downloads = dir.join("downloads");
    std::fs::create_dir(&downloads).unwrap();

    // The fake SMS webhook, and a trap nothing may ever connect to.
    let (sms_port, sms) = sms_stub().await;
    let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trap_port = trap.local_addr().unwrap().port();
    let trapped = Arc::new(AtomicUsize::new(0));
    let t = trapped.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = trap.accept().await {
            t.fetch_add(1, Ordering::SeqCst);
        }
    });

    // The portal process.
    let key = dir.join("portal.key");
    let out = Command::new(BIN)
        .args(["portal", "keygen", "--out"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("sms.token"), "t0ken\n").unwrap();
    let (web_port, lmtp_port) = (free_port(), free_port());
    let location = match &pg {
        Some(pg) => StoreLocation::Postgres(pg.url()),
        None => StoreLocation::Sqlite(dir.join("portal.db")),
    };
    let store_setting = match &location {
        StoreLocation::Postgres(url) => url.clone(),
        StoreLocation::Sqlite(path) => format!("sqlite:{}", path.display()),
    };
    let base = format!("http://127.0.0.1:{web_port}");
    std::fs::write(
        dir.join("config.toml"),
        format!(
            r#"[domains]
own = ["zkh.example"]
[portal]
listen = "inet:127.0.0.1:{web_port}"
public_url = "{base}"
lmtp = "inet:127.0.0.1:{lmtp_port}"
store = "{store_setting}"
key_file = "{key}"
from = "portaal@zkh.example"
organisation = "Ziekenhuis Test"
audit_file = "{audit}"
sendmail = "/nonexistent/sendmail"
mail_key = "{mail_key}"
[portal.sms]
provider = "webhook"
url = "http://127.0.0.1:{sms_port}/sms"
token_file = "{token}"
"#,
            key = key.display(),
            audit = dir.join("portal-audit.log").display(),
            token = dir.join("sms.token").display(),
            mail_key = dir.join("mail.key").display(),
        ),
    )
    .unwrap();
    // The secret of the mark on the portal's own mail (read at start).
    std::fs::write(dir.join("mail.key"), [7u8; 32]).unwrap();
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

    // Messages, stored beside the running portal (same database and key).
    let store = Store::open(&location, Arc::new(MasterKey::load(&key).unwrap()))
        .await
        .unwrap();
    let raw = message(trap_port);
    let day = Duration::from_secs(86400);
    let tok_a = store_one(&store, &raw, "p@patient.example", "+31612345678", day).await;
    let tok_b = store_one(&store, &raw, "q@patient.example", "+31687654321", day).await;
    let tok_gone = store_one(
        &store,
        &raw,
        "r@patient.example",
        "+31611112222",
        Duration::ZERO,
    )
    .await;

    // Plain HTTP first: headers on every response, a POST without token, a scanner's GET.
    http_checks(web_port, &tok_a, &sms).await;

    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var("NTA_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "NTA_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: no chromium/chromedriver (set NTA_REQUIRE_BROWSER=1 to fail instead)");
        return;
    }

    // The browser.
    let (driver, c) = start_browser(&dir, &downloads).await;

    // Close the browser even when a check fails, so no chromium outlives the test.
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(run(
        &c,
        &base,
        &dir,
        &downloads,
        &sms,
        &raw,
        [&tok_a, &tok_b, &tok_gone],
    )))
    .await;
    let _ = c.close().await;
    drop(driver);
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log_text.contains(tok_a.as_str()), "a token in the log");
    assert_eq!(
        trapped.load(Ordering::SeqCst),
        0,
        "remote content was loaded"
    );
    if let Err(p) = result {
        eprintln!("portal log:\n{log_text}");
        std::panic::resume_unwind(p);
    }
    drop(portal);
}

async fn http_checks(port: u16, token: &str, sms: &Mutex<Vec<Value>>) {
    let get =
        |path: String| format!("GET {path} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n");
    for (path, status) in [
        (format!("/m/{token}"), "200"),
        ("/m/short".to_string(), "404"),
        ("/nothing".to_string(), "404"),
        (format!("/m/{token}/eml"), "403"),
        ("/static/portal.css".to_string(), "200"),
    ] {
        let (head, _) = http(port, &get(path.clone())).await;
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{path}: {head}"
        );
        for h in [
            "content-security-policy: default-src 'none'",
            "frame-ancestors 'none'",
            "strict-transport-security: max-age=",
            "cache-control: no-store",
            "x-robots-tag: noindex",
            "referrer-policy: no-referrer",
            "x-content-type-options: nosniff",
        ] {
            assert!(head.contains(h), "{path}: {h} missing in {head}");
        }
        assert!(!head.contains("script-src"), "{head}");
    }
    // POSTs: without a token, with a wrong one, cross-site: refused, no SMS.
    for (body, extra) in [
        ("", ""),
        ("csrf=AAAA", ""),
        (
            "csrf=AAAA",
            "Origin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\n",
        ),
    ] {
        let req = format!(
            "POST /m/{token}/send HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n{extra}\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (head, _) = http(port, &req).await;
        assert!(head.starts_with("http/1.1 403"), "{head}");
    }
    // An oversized body is refused before any handler reads it.
    let big = "x".repeat(64 * 1024);
    let req = format!(
        "POST /m/{token}/code HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\ncode={big}",
        big.len() + 5
    );
    let (head, _) = http(port, &req).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(
        sms.lock().unwrap().is_empty(),
        "no SMS from GETs or refused POSTs"
    );
}

#[allow(clippy::too_many_arguments)]
async fn run(
    c: &Client,
    base: &str,
    dir: &Path,
    downloads: &Path,
    sms: &Mutex<Vec<Value>>,
    raw: &[u8],
    [tok_a, tok_b, tok_gone]: [&String; 3],
) {
    let sms_count = || sms.lock().unwrap().len();
    let link_a = format!("{base}/m/{tok_a}");
    let link_b = format!("{base}/m/{tok_b}");

    // A scanner's GET (twice) sends nothing.
    c.goto(&link_a).await.unwrap();
    c.goto(&link_a).await.unwrap();
    assert_eq!(sms_count(), 0);
    let t = text(c).await;
    assert!(
        t.contains("Ziekenhuis Test") && t.contains("06-****5678"),
        "{t}"
    );
    axe(c, "landing").await;

    // Lock attack on B, part 1: a code, five wrong tries (the code is then void).
    c.goto(&link_b).await.unwrap();
    send_code(c).await;
    assert_eq!(sms_count(), 1, "{}", text(c).await);
    let started_b = Instant::now();
    let code_b = last_code(sms);
    let wrong = if code_b == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        submit_code(c, wrong).await;
    }
    assert!(text(c).await.contains("klopt niet"));
    assert!(
        c.find(Locator::Css("input[name=code]")).await.is_err(),
        "void code, no form"
    );

    // POST without CSRF token: refused, nothing sent.
    c.goto(&link_a).await.unwrap();
    c.execute(
        "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())",
        vec![],
    )
    .await
    .unwrap();
    send_code(c).await;
    assert!(text(c).await.contains("Verzoek geweigerd"));
    assert_eq!(sms_count(), 1);
    axe(c, "refused").await;

    // The happy path on A, keyboard only: Tab to the button, Enter; Tab to the code
    // field, type, Enter. Every stop shows a visible focus outline.
    c.goto(&link_a).await.unwrap();
    c.execute("window.__before_click = 1", vec![])
        .await
        .unwrap();
    tab_to(c, "form[action$='/send'] button").await;
    press(c, "\u{E007}").await;
    wait_new_page(c).await;
    assert_eq!(sms_count(), 2);
    let sent = sms.lock().unwrap().last().unwrap().clone();
    assert_eq!(sent["to"], "+31612345678");
    assert!(sent["reference"].as_str().is_some_and(|r| !r.is_empty()));
    axe(c, "code form").await;
    let code_a = last_code(sms);
    c.execute("window.__before_click = 1", vec![])
        .await
        .unwrap();
    tab_to(c, "input[name=code]").await;
    press(c, &code_a).await;
    press(c, "\u{E007}").await;
    wait_new_page(c).await;
    let t = text(c).await;
    assert!(
        t.contains("Uitslag onderzoek") && t.contains("a@zkh.example"),
        "{t}"
    );
    assert!(t.contains("uitslag.pdf"), "{t}");
    let pdf_link = c
        .find(Locator::Css("a[type='application/pdf'][download]"))
        .await
        .unwrap();
    let eml_link = c
        .find(Locator::Css("a[type='message/rfc822'][download]"))
        .await
        .unwrap();
    axe(c, "message").await;
    // Nothing of the mail ran, in the page or in its frame.
    let pwned = c
        .execute("return typeof window.__pwned", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!("undefined"));
    c.enter_frame(0).await.unwrap();
    // Let the frame's own image load.
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
    let frame = c
        .execute(
            "return [document.body.innerText, typeof window.__pwned, document.scripts.length,
                     document.querySelectorAll('[onerror]').length,
                     [...document.links].map(a => a.href).join(' '),
                     [...document.images].filter(i => (i.getAttribute('src') || '').includes('/part/'))
                       .map(i => i.naturalWidth).concat([-1])[0],
                     [...document.images].map(i => i.getAttribute('src') || '').join(' ')]",
            vec![],
        )
        .await
        .unwrap();
    c.enter_parent_frame().await.unwrap();
    assert!(
        frame[0].as_str().unwrap().contains("Beste patient"),
        "{frame}"
    );
    assert_eq!(frame[1], json!("undefined"), "{frame}");
    assert_eq!(frame[2], json!(0), "{frame}");
    assert_eq!(frame[3], json!(0), "{frame}");
    assert!(
        !frame[4].as_str().unwrap().contains("javascript"),
        "{frame}"
    );
    assert_eq!(frame[5], json!(1), "cid image shown: {frame}");
    assert!(!frame[6].as_str().unwrap().contains("remote"), "{frame}");

    // Downloads: the PDF (readable text), the original (byte-identical), the attachment.
    pdf_link.click().await.unwrap();
    let pdf = wait_file(downloads, "bericht.pdf");
    assert!(pdf.starts_with(b"%PDF"));
    let pdf_text = pdf_text(dir, &pdf);
    for want in [
        "a@zkh.example",
        "Uitslag onderzoek",
        "Beste patient",
        "uitslag.pdf",
        "2026",
    ] {
        assert!(
            pdf_text.contains(want),
            "{want} not in PDF text: {pdf_text}"
        );
    }
    eml_link.click().await.unwrap();
    assert_eq!(
        wait_file(downloads, "bericht.eml"),
        raw,
        "the .eml is the stored original"
    );
    c.find(Locator::Css("ul.attachments a[download='uitslag.pdf']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(wait_file(downloads, "uitslag.pdf"), b"%PDF-1.4\n%EOF\n");

    // English by the switch.
    c.goto(&format!("{link_a}?lang=en")).await.unwrap();
    assert!(text(c).await.contains("Download as PDF"));
    axe(c, "message (en)").await;
    c.goto(&link_a).await.unwrap();
    assert_eq!(
        c.find(Locator::Css("html"))
            .await
            .unwrap()
            .attr("lang")
            .await
            .unwrap()
            .as_deref(),
        Some("en")
    );
    c.goto(&format!("{link_a}?lang=nl")).await.unwrap();

    // Another recipient's link with A's session: not A's message, and not B's.
    c.goto(&link_b).await.unwrap();
    assert!(!text(c).await.contains("Uitslag onderzoek"));
    // Truncated and altered tokens, an expired message.
    c.goto(&format!("{base}/m/{}", &tok_a[..tok_a.len() - 1]))
        .await
        .unwrap();
    assert!(text(c).await.contains("Link niet gevonden"));
    axe(c, "unknown link").await;
    let mut altered = tok_a.to_string();
    altered.replace_range(0..1, if altered.starts_with('A') { "B" } else { "A" });
    c.goto(&format!("{base}/m/{altered}")).await.unwrap();
    assert!(text(c).await.contains("Link niet gevonden"));
    c.goto(&format!("{base}/m/{tok_gone}")).await.unwrap();
    assert!(text(c).await.contains("niet meer beschikbaar"));
    axe(c, "expired").await;

    // Replay: without the session the link shows the code page again, and the used code
    // is refused.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{link_a}?sent=1")).await.unwrap();
    assert!(!text(c).await.contains("Beste patient"));
    submit_code(c, &code_a).await;
    assert!(text(c).await.contains("verlopen of al gebruikt"));
    // The downloads need the session too.
    c.goto(&format!("{link_a}/eml")).await.unwrap();
    assert!(text(c).await.contains("Verzoek geweigerd"));

    // Lock attack on B, part 2: a new code after the resend delay, five more wrong.
    let wait = Duration::from_secs(62).saturating_sub(started_b.elapsed());
    tokio::time::sleep(wait).await;
    c.goto(&link_b).await.unwrap();
    send_code(c).await;
    assert_eq!(sms_count(), 3);
    let code_b2 = last_code(sms);
    let wrong = if code_b2 == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        submit_code(c, wrong).await;
    }
    let t = text(c).await;
    assert!(t.contains("Te veel onjuiste codes"), "{t}");
    axe(c, "locked").await;
    // Locked: even the right code does not open it, and no new code goes out.
    c.goto(&link_b).await.unwrap();
    send_code(c).await;
    assert_eq!(sms_count(), 3);

    // The audit trail: every web event with the browser's address, never content.
    for e in [
        "portal_code_sent",
        "portal_code_failed",
        "portal_locked",
        "portal_opened",
        "portal_viewed",
        "portal_downloaded",
        "portal_code_not_sent",
    ] {
        let lines = audit(dir, e);
        assert!(!lines.is_empty(), "no {e}");
        assert!(
            lines.iter().all(|l| l.contains("\"id\":\"127.0.0.1\"")),
            "{e}: {lines:?}"
        );
    }
    let all = std::fs::read_to_string(dir.join("portal-audit.log")).unwrap();
    for secret in [
        code_a.as_str(),
        "Beste patient",
        "Uitslag onderzoek",
        tok_a.as_str(),
        "+31612345678",
    ] {
        assert!(!all.contains(secret), "{secret} in the audit log");
    }
    assert_eq!(audit(dir, "portal_downloaded").len(), 3);
    // The lock tells the sender; here sendmail does not exist, so that is on record.
    let notice = audit(dir, "portal_lock_notice_failed");
    assert_eq!(notice.len(), 1, "{notice:?}");
    assert!(
        notice[0].contains("\"sender\":\"a@zkh.example\""),
        "{notice:?}"
    );
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir.join("portal-audit.log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit chain: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        audit(dir, "portal_code_sent")
            .iter()
            .any(|l| l.contains("06-****5678"))
    );
}
