//! Several portal nodes, end to end: two real `nta7516-milter portal` processes on one
//! real PostgreSQL (the throw-away server of tests/portal_support/pg.rs) with one key
//! file, each with its own ports, audit file and fake `sendmail`; a fake SMS webhook both
//! use; a real headless Chromium (tests/portal_browser_support).
//!
//! What it proves (portal/README.md, "Several nodes"):
//! - mail taken in by node A is read on node B: link from A's notification, code asked
//!   for on B, entered on B, message page and the byte-identical .eml from B;
//! - the code limits are the database's, not a node's: wrong codes entered alternately on
//!   A and B void a code after `TRIES_PER_CODE` and lock after `FAILS_TO_LOCK` in total,
//!   exactly as on one node;
//! - expiry runs once: a message past its retention is shredded and audited by exactly
//!   one node, the holder of the expiry lease: in the periodic passes while both run,
//!   after the holder stopped (the other node takes the lease over at its next pass),
//!   and when both start at the same moment and race for the free lease; afterwards it
//!   is gone on both;
//! - a notification (and the sender's lock notice) goes out once.
//!
//! Skipped, loudly, without PostgreSQL (unless NTA_REQUIRE_PG is set) or without
//! chromium/chromedriver (unless NTA_REQUIRE_BROWSER=1), as the other portal suites.

// Both support modules load tests/portal_support/pg.rs (the browser one by `#[path]`):
// this suite needs the process harness of the one and the WebDriver steps of the other.
#![allow(clippy::duplicate_mod)]

mod portal_browser_support;
mod portal_support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use nta7516_milter::config::portal::StoreLocation;
use nta7516_milter::portal::crypto::MasterKey;
use nta7516_milter::portal::retention::{EXPIRY_LEASE, INTERVAL};
use nta7516_milter::portal::store::Store;
use nta7516_milter::portal::store::auth::{
    CODES_PER_WINDOW, FAILS_TO_LOCK, RESEND_AFTER, TRIES_PER_CODE,
};
use portal_browser_support::{
    CHROMEDRIVER, CHROMIUM, click_and_wait, last_code, send_code, sms_stub, start_browser,
    submit_code, text, wait_file,
};
use portal_support::pg::Pg;
use portal_support::{Portal, audit_events, audit_verify};
use serde_json::Value;

const SENDER: &str = "arts@zkh.example";

/// One node: the portal process, its directory (config, audit file, log) and the
/// directory its fake `sendmail` writes into.
struct Node {
    name: &'static str,
    portal: Portal,
    mail: PathBuf,
}

impl Node {
    /// A node on `store` in `dir`; with `key`, that key file is copied in first (the
    /// nodes must share the key, or B cannot decrypt what A stored).
    fn new(name: &'static str, dir: &Path, store: &str, key: Option<&Path>, sms: u16) -> Node {
        std::fs::create_dir(dir).unwrap();
        if let Some(key) = key {
            std::fs::copy(key, dir.join("portal.key")).unwrap();
        }
        let portal = Portal::configure(dir, Some(store), "");
        // A sendmail that keeps each mail as `<recipient>-<random>.eml` (written aside and
        // renamed, so a reader never sees half of one). Called `-i -f <from> -- <rcpt>`.
        let mail = dir.join("mail");
        std::fs::create_dir(&mail).unwrap();
        let sendmail = dir.join("sendmail");
        std::fs::write(
            &sendmail,
            format!(
                "#!/bin/sh\nf=$(mktemp '{m}/.in.XXXXXX') || exit 75\ncat > \"$f\" || exit 75\n\
                 mv \"$f\" \"{m}/$5-${{f##*.}}.eml\"\n",
                m = mail.display()
            ),
        )
        .unwrap();
        chmod_x(&sendmail);
        // Portal::configure writes an unusable sendmail and SMS URL: point them here.
        let config = std::fs::read_to_string(&portal.config).unwrap();
        let config = config
            .replace(
                "sendmail = \"/nonexistent/sendmail\"",
                &format!("sendmail = \"{}\"", sendmail.display()),
            )
            .replace(
                "url = \"http://127.0.0.1:9/sms\"",
                &format!("url = \"http://127.0.0.1:{sms}/sms\""),
            );
        std::fs::write(&portal.config, config).unwrap();
        Node { name, portal, mail }
    }

    fn dir(&self) -> &Path {
        &self.portal.dir
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.portal.web_port)
    }

    /// The mails this node's sendmail got for `rcpt`.
    fn mails(&self, rcpt: &str) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.mail)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(&format!("{rcpt}-")) && n.ends_with(".eml")
            })
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        out.sort();
        out
    }

    /// Stops the node cleanly (it gives the expiry lease up) and keeps its log aside, as
    /// the next start truncates it.
    fn stop(&mut self, round: u32) {
        assert!(
            self.portal.stop(),
            "node {} did not stop cleanly: {}",
            self.name,
            self.portal.log()
        );
        let dir = self.dir().to_path_buf();
        std::fs::rename(
            dir.join("portal.log"),
            dir.join(format!("portal-{round}.log")),
        )
        .unwrap();
    }

    /// The node's logs so far (earlier rounds first).
    fn logs(&self) -> String {
        let mut all = String::new();
        for round in 1..=4 {
            if let Ok(t) = std::fs::read_to_string(self.dir().join(format!("portal-{round}.log"))) {
                all.push_str(&t);
            }
        }
        all + &self.portal.log()
    }
}

fn chmod_x(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A text message for `rcpt` with the number in the header (the form trusted clients
/// use); the header is kept, so the stored original is exactly these bytes.
fn mail(rcpt: &str, phone: &str, subject: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Dr. A <{SENDER}>\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\
         Date: Thu, 3 Dec 2026 10:00:00 +0100\r\nMessage-ID: <{id}@zkh.example>\r\n\
         X-NTA7516-Phone: {phone}\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Beste patient, uw uitslag ({id}) staat klaar.\r\n\
         .Deze regel begint met een punt.\r\n"
    )
    .into_bytes()
}

/// Delivers `raw` to `rcpt` over `node`'s LMTP; the portal's message id (from the reply).
fn deliver(node: &Node, rcpt: &str, raw: &[u8]) -> String {
    let mut c = node.portal.lmtp();
    c.cmd("LHLO postfix");
    let r = c.send(SENDER, &[rcpt], raw);
    assert!(
        r[0].starts_with("250 2.0.0"),
        "{r:?}\n{}",
        node.portal.log()
    );
    c.cmd("QUIT");
    let open = r[0].rfind('(').unwrap();
    r[0][open + 1..r[0].len() - 1].to_string()
}

/// The link in the one notification `node` sent to `rcpt` (waits at most 20 s: it is
/// submitted right after the intake stored the message).
fn notified_link(node: &Node, rcpt: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mails = loop {
        let m = node.mails(rcpt);
        if !m.is_empty() || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(mails.len(), 1, "notifications to {rcpt}: {mails:?}");
    let prefix = format!("{}/m/", node.base());
    mails[0]
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no link in {}", mails[0]))
        .trim()
        .to_string()
}

/// Moves a message's end of retention into the past. The shortest `retention` the
/// configuration allows is an hour (MIN_RETENTION), too long for a test: this is the
/// state such a message reaches, written directly.
async fn make_due(store: &Store, id: &str) {
    let done = sqlx::query("UPDATE portal_messages SET expires_at = $1 WHERE id = $2")
        .bind(1_i64)
        .bind(id.to_string())
        .execute(store.pool())
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(done, 1);
}

async fn state(store: &Store, id: &str) -> String {
    sqlx::query_scalar::<_, String>("SELECT state FROM portal_messages WHERE id = $1")
        .bind(id.to_string())
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// The pid in the name of the node holding the expiry lease now (`host/pid/random`,
/// src/portal/run.rs `node_name`), if one holds it.
async fn lease_holder(store: &Store) -> Option<u32> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let holder = sqlx::query_scalar::<_, String>(
        "SELECT holder FROM portal_leases WHERE name = $1 AND held_until > $2",
    )
    .bind(EXPIRY_LEASE)
    .bind(now)
    .fetch_optional(store.pool())
    .await
    .unwrap()?;
    Some(holder.split('/').nth(1).unwrap().parse().unwrap())
}

/// Waits (bounded by `within`) until message `id` is expired in the database.
async fn wait_expired(store: &Store, id: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while state(store, id).await != "expired" {
        assert!(
            Instant::now() < deadline,
            "{id} not expired within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `portal_expired` events of both nodes' audit files.
fn expired_events(nodes: &[&Node]) -> Vec<(&'static str, String)> {
    nodes
        .iter()
        .flat_map(|n| {
            audit_events(n.dir(), "portal_expired")
                .into_iter()
                .map(|l| (n.name, l))
        })
        .collect()
}

fn browser_available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("NTA_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "NTA_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing \
         (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "\n\n!!!!!!!!!! SKIPPED: no chromium/chromedriver — several portal nodes are NOT \
         tested end to end (set NTA_REQUIRE_BROWSER=1 to fail instead) !!!!!!!!!!\n"
    );
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_portal_nodes_on_one_postgresql() {
    if !browser_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let Some(pg) = Pg::start(&dir) else {
        return;
    };
    let (sms_port, sms) = sms_stub().await;
    let mut a = Node::new("A", &dir.join("a"), &pg.url(), None, sms_port);
    let key = dir.join("a").join("portal.key");
    let mut b = Node::new("B", &dir.join("b"), &pg.url(), Some(&key), sms_port);
    a.portal.start();
    b.portal.start();
    let store = Store::open(
        &StoreLocation::Postgres(pg.url()),
        Arc::new(MasterKey::load(&key).unwrap()),
    )
    .await
    .unwrap();

    let downloads = dir.join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    let (driver, c) = start_browser(&dir, &downloads).await;
    // Close the browser even when a check fails, so no chromium outlives the test.
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(scenario(
        &c, &mut a, &mut b, &store, &sms, &downloads,
    )))
    .await;
    let _ = c.close().await;
    drop(driver);
    if let Err(p) = result {
        eprintln!("node A log:\n{}\nnode B log:\n{}", a.logs(), b.logs());
        std::panic::resume_unwind(p);
    }
    store.close().await;
    drop(pg);
}

async fn scenario(
    c: &Client,
    a: &mut Node,
    b: &mut Node,
    store: &Store,
    sms: &Mutex<Vec<Value>>,
    downloads: &Path,
) {
    // Five messages, all taken in by A: one to read on B, one to lock, three to expire.
    let read = ("p@patient.example", "+31612345678", "Uitslag onderzoek");
    let lock = ("q@patient.example", "+31687654321", "Afspraak");
    let raw_read = mail(read.0, read.1, read.2, "read");
    deliver(a, read.0, &raw_read);
    deliver(a, lock.0, &mail(lock.0, lock.1, lock.2, "lock"));
    let expire_running = deliver(
        a,
        "r@patient.example",
        &mail("r@patient.example", "+31611112222", "Oud", "exp1"),
    );
    let expire_taken_over = deliver(
        a,
        "t@patient.example",
        &mail("t@patient.example", "+31655556666", "Oudst", "exp3"),
    );
    let expire_at_start = deliver(
        a,
        "s@patient.example",
        &mail("s@patient.example", "+31633334444", "Ouder", "exp2"),
    );
    // The links point at A (its public_url); the token path is the same on B.
    let (base_a, base_b) = (a.base(), b.base());
    let on_b = |link: &str| link.replacen(&base_a, &base_b, 1);
    let link_read = notified_link(a, read.0);
    let link_lock = notified_link(a, lock.0);
    let link_r = notified_link(a, "r@patient.example");
    let link_s = notified_link(a, "s@patient.example");
    let link_t = notified_link(a, "t@patient.example");

    // Due now: the nodes' periodic passes (every INTERVAL) must expire it, once.
    make_due(store, &expire_running).await;
    let due_since = Instant::now();

    // Read on B: the code is asked for on B and goes to the message's number.
    c.goto(&on_b(&link_read)).await.unwrap();
    let t = text(c).await;
    assert!(t.contains("06-****5678") && !t.contains(read.2), "{t}");
    send_code(c).await;
    let sent = sms.lock().unwrap().len();
    assert_eq!(sent, 1, "{}", text(c).await);
    assert_eq!(sms.lock().unwrap()[0]["to"], read.1);
    submit_code(c, &last_code(sms)).await;
    let t = text(c).await;
    assert!(
        t.contains(read.2) && t.contains(SENDER),
        "{t}\n{}",
        b.logs()
    );
    let body = "uw uitslag (read) staat klaar";
    if !t.contains(body) {
        c.enter_frame(0).await.unwrap();
        let framed = text(c).await;
        c.enter_parent_frame().await.unwrap();
        assert!(framed.contains(body), "{body} not shown: {t} / {framed}");
    }
    c.find(Locator::Css("a[type='message/rfc822'][download]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        wait_file(downloads, "bericht.eml"),
        raw_read,
        "the .eml from B is what A took in"
    );
    assert!(!audit_events(b.dir(), "portal_opened").is_empty());
    assert!(!audit_events(b.dir(), "portal_downloaded").is_empty());
    assert!(audit_events(a.dir(), "portal_opened").is_empty());
    // The session opened on B is the database's: A shows the message to it as well.
    c.goto(&link_read).await.unwrap();
    assert!(text(c).await.contains(read.2));

    // Replied to through B: the reply is submitted by B's sendmail to the sender, and
    // audited by B.
    c.goto(&on_b(&link_read)).await.unwrap();
    c.find(Locator::Css("#reply-text"))
        .await
        .unwrap()
        .send_keys("Antwoord via B")
        .await
        .unwrap();
    click_and_wait(c, "form.reply button[type=submit]").await;
    let t = text(c).await;
    assert!(
        t.contains("Antwoord verstuurd") || t.contains("Reply sent"),
        "{t}\n{}",
        b.logs()
    );
    let replies: Vec<String> = b
        .mails(SENDER)
        .into_iter()
        .filter(|m| m.contains("Antwoord via B"))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].contains(&format!("Reply-To: <{}>", read.0)),
        "{}",
        replies[0]
    );
    assert!(
        replies[0].contains("In-Reply-To: <read@zkh.example>"),
        "{}",
        replies[0]
    );
    assert_eq!(audit_events(b.dir(), "portal_replied").len(), 1);

    // Withdrawn through B with the revoke link of A's receipt (the browser is on
    // loopback, inside the default [outbound] networks): A's link then says so, and the
    // withdrawal is audited once, by B, whose web side did it.
    let revoke = receipt_link(a, read.0);
    c.goto(&on_b(&revoke)).await.unwrap();
    let t = text(c).await;
    assert!(t.contains(read.0) && !t.contains(read.2), "{t}");
    click_and_wait(c, "main form button[type=submit]").await;
    let t = text(c).await;
    assert!(
        t.contains("Bericht ingetrokken") || t.contains("Message withdrawn"),
        "{t}\n{}",
        b.logs()
    );
    c.goto(&format!("{link_read}?lang=nl")).await.unwrap();
    let t = text(c).await;
    assert!(
        t.contains("Dit bericht is ingetrokken") && !t.contains(read.2),
        "{t}"
    );
    assert_eq!(audit_events(b.dir(), "portal_revoked").len(), 1);

    // The code limits, shared: wrong codes alternately on B and A. A node counting on
    // its own would allow twice as many of each.
    let codes = (FAILS_TO_LOCK as u64).div_ceil(TRIES_PER_CODE as u64);
    assert!(
        codes <= CODES_PER_WINDOW as u64,
        "the lock must be reachable within one code window"
    );
    let nodes = [&*b, &*a];
    let mut sent_at: Option<Instant> = None;
    let mut left = 0;
    for fail in 1..=FAILS_TO_LOCK {
        let node = nodes[(fail % 2) as usize];
        if left == 0 {
            // A new code (through the other node than the last one), after RESEND_AFTER.
            if let Some(at) = sent_at {
                let resend = Duration::from_secs(RESEND_AFTER as u64 + 2);
                tokio::time::sleep(resend.saturating_sub(at.elapsed())).await;
            }
            let via = nodes[((fail + 1) % 2) as usize];
            let before = sms.lock().unwrap().len();
            c.goto(&format!("{}/m/{}", via.base(), token(&link_lock)))
                .await
                .unwrap();
            send_code(c).await;
            let sent = sms.lock().unwrap().len();
            assert_eq!(sent, before + 1, "{}", text(c).await);
            assert_eq!(sms.lock().unwrap()[before]["to"], lock.1);
            sent_at = Some(Instant::now());
            left = TRIES_PER_CODE;
        }
        let real = last_code(sms);
        let wrong = if real == "000000" { "111111" } else { "000000" };
        c.goto(&format!("{}/m/{}?sent=1", node.base(), token(&link_lock)))
            .await
            .unwrap();
        submit_code(c, wrong).await;
        left -= 1;
        let t = text(c).await;
        if fail == FAILS_TO_LOCK {
            assert!(t.contains("Te veel onjuiste codes"), "fail {fail}: {t}");
        } else {
            assert!(!t.contains("Te veel onjuiste codes"), "fail {fail}: {t}");
            let form = c.find(Locator::Css("input[name=code]")).await.is_ok();
            if left == 0 {
                assert!(t.contains("Vraag een nieuwe code aan") && !form, "{t}");
            } else {
                assert!(t.contains(&format!("nog {left} keer")) && form, "{t}");
            }
        }
    }
    // Locked on both: no new code from either node, and the right code no longer helps.
    let before = sms.lock().unwrap().len();
    for node in [&*a, &*b] {
        c.goto(&format!("{}/m/{}", node.base(), token(&link_lock)))
            .await
            .unwrap();
        send_code(c).await;
        assert!(text(c).await.contains("Te veel onjuiste codes"));
    }
    assert_eq!(sms.lock().unwrap().len(), before, "a code while locked");
    let failed: usize = [&*a, &*b]
        .iter()
        .map(|n| {
            audit_events(n.dir(), "portal_code_failed")
                .iter()
                .filter(|l| l.contains("\"reason\":\"wrong\""))
                .count()
        })
        .sum();
    assert_eq!(failed as i64, FAILS_TO_LOCK);
    let locked =
        audit_events(a.dir(), "portal_locked").len() + audit_events(b.dir(), "portal_locked").len();
    assert_eq!(locked, 1, "one lock");
    // The sender was told once, by the node that locked.
    let locks = |n: &Node| {
        n.mails(SENDER)
            .iter()
            .filter(|m| m.contains("geblokkeerd"))
            .count()
    };
    assert_eq!(locks(a) + locks(b), 1);

    // Expiry in the periodic passes: by now (after the resend wait) each node had at
    // least one pass since the message became due (bounded: two intervals). The node
    // that audited it is the lease holder.
    wait_expired(store, &expire_running, 2 * INTERVAL).await;
    let settle = INTERVAL + Duration::from_secs(3);
    tokio::time::sleep(settle.saturating_sub(due_since.elapsed())).await;
    let events = expired_events(&[&*a, &*b]);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].1.contains(&expire_running), "{events:?}");
    let holder = lease_holder(store).await.expect("a lease holder");
    let a_holds = holder == a.portal.pid();
    assert!(a_holds || holder == b.portal.pid(), "holder {holder}");
    assert_eq!(events[0].0, if a_holds { "A" } else { "B" });
    for link in [link_r.clone(), on_b(&link_r)] {
        c.goto(&link).await.unwrap();
        assert!(text(c).await.contains("niet meer beschikbaar"), "{link}");
    }

    // Taken over: the holder stops cleanly (gives the lease up); the other node takes
    // the lease at its next pass (within an interval) and expires what is due.
    let (holder, other) = if a_holds {
        (&mut *a, &mut *b)
    } else {
        (&mut *b, &mut *a)
    };
    holder.stop(1);
    make_due(store, &expire_taken_over).await;
    wait_expired(
        store,
        &expire_taken_over,
        INTERVAL + Duration::from_secs(15),
    )
    .await;
    assert_eq!(lease_holder(store).await, Some(other.portal.pid()));
    let by_other = audit_events(other.dir(), "portal_expired");
    assert!(
        by_other.iter().any(|l| l.contains(&expire_taken_over)),
        "{by_other:?}"
    );
    holder.portal.start();

    // Expiry at start: both nodes stopped (the holder gives the lease up), the last
    // message due, both started at the same moment: they race for the free lease.
    a.stop(2);
    b.stop(2);
    make_due(store, &expire_at_start).await;
    std::thread::scope(|s| {
        s.spawn(|| b.portal.start());
        s.spawn(|| a.portal.start());
    });
    wait_expired(store, &expire_at_start, Duration::from_secs(30)).await;
    for link in [link_s.clone(), on_b(&link_s), link_t.clone(), on_b(&link_t)] {
        c.goto(&link).await.unwrap();
        assert!(text(c).await.contains("niet meer beschikbaar"), "{link}");
    }
    let expired = [&expire_running, &expire_taken_over, &expire_at_start];
    for id in expired {
        assert!(store.read_message(id).await.is_err());
    }
    // A clean stop waits for the periodic job: both nodes' start passes are done.
    a.stop(3);
    b.stop(3);
    let events = expired_events(&[&*a, &*b]);
    assert_eq!(events.len(), expired.len(), "{events:?}");
    for id in expired {
        let by: Vec<_> = events
            .iter()
            .filter(|(_, l)| l.contains(id.as_str()))
            .collect();
        assert_eq!(by.len(), 1, "{id}: {events:?}");
        eprintln!("{id} expired by node {}", by[0].0);
    }
    let shredded = audit_events(a.dir(), "portal_shredded").len()
        + audit_events(b.dir(), "portal_shredded").len();
    assert_eq!(shredded, expired.len());
    let chunks = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM portal_chunks WHERE message_id IN ($1, $2, $3)",
    )
    .bind(expire_running.clone())
    .bind(expire_taken_over.clone())
    .bind(expire_at_start.clone())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(chunks, 0);

    // Each notification went out once, from the node that took the mail in.
    for rcpt in [
        read.0,
        lock.0,
        "r@patient.example",
        "s@patient.example",
        "t@patient.example",
    ] {
        assert_eq!(a.mails(rcpt).len(), 1, "{rcpt}");
        assert!(b.mails(rcpt).is_empty(), "{rcpt} notified by B too");
    }
    // Every periodic pass of both nodes since: the withdrawal is still on record once.
    assert_eq!(
        audit_events(a.dir(), "portal_revoked").len()
            + audit_events(b.dir(), "portal_revoked").len(),
        1
    );
    // One receipt per message, each from the node that took it in.
    assert_eq!(
        a.mails(SENDER).iter().filter(|m| m.contains("/r/")).count(),
        5
    );
    assert!(b.mails(SENDER).iter().all(|m| !m.contains("/r/")));
    assert!(
        a.mails(SENDER)
            .iter()
            .all(|m| !m.contains("Antwoord via B"))
    );
    for n in [&*a, &*b] {
        let (ok, out) = audit_verify(n.dir());
        assert!(ok, "node {}: {out}", n.name);
    }
}

/// The revoke link in the receipt `node` sent the sender for the message to `rcpt`
/// (waits at most 20 s: it follows the notification).
fn receipt_link(node: &Node, rcpt: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let prefix = format!("{}/r/", node.base());
    loop {
        let found = node
            .mails(SENDER)
            .into_iter()
            .filter(|m| m.contains(&format!("  {rcpt}\n")))
            .find_map(|m| {
                m.lines()
                    .find(|l| l.starts_with(&prefix))
                    .map(|l| l.trim().to_string())
            });
        if let Some(link) = found {
            return link;
        }
        assert!(Instant::now() < deadline, "no receipt for {rcpt}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The token of a portal link (its last path segment).
fn token(link: &str) -> &str {
    link.rsplit('/').next().unwrap()
}
