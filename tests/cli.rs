//! The binary's contract on odd and bad input: domain names (case, trailing dot, IDN,
//! length limits), malformed configuration, and `check-config` exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::dnsbed::DnsBed;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

async fn check(cfg: &Path, domain: &str) -> Output {
    let mut c = bin();
    c.args(["check", "--json", "--config"]).arg(cfg).arg(domain);
    run(c).await
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_domain_names() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, bed.config_toml()).unwrap();

    // Upper case and a trailing dot name the same domain.
    let out = check(&cfg, "COMPLIANT.Test.").await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["results"][0]["domain"], "compliant.test");

    // IDN: converted to punycode, then an ordinary (securely non-existent) name.
    let out = check(&cfg, "zörg.test").await;
    assert_eq!(out.status.code(), Some(1));
    let j = json(&out);
    assert_eq!(j["results"][0]["domain"], "xn--zrg-sna.test");
    assert_eq!(j["results"][0]["reasons"][0]["code"], "nta_record_absent");

    // 253 characters is the longest valid name: a verdict within the deadline.
    let long = format!(
        "{}.{}.{}.{}.test",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(56)
    );
    assert_eq!(long.len(), 253);
    let started = Instant::now();
    let out = check(&cfg, &long).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(out.status.code(), Some(1 | 2)), "{out:?}");
    assert_eq!(json(&out)["results"][0]["domain"], long);

    // Invalid names are usage errors (exit 2) with a message, never a panic.
    for bad in [
        format!("x{long}"),
        String::new(),
        "a..b".into(),
        "foo bar.nl".into(),
        format!("{}.nl", "ü".repeat(300)),
    ] {
        let out = check(&cfg, &bad).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is not a domain name"), "{bad:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_reports_every_problem_with_file_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[server]\nmilter = \"tcp:1.2.3.4\"\n\n[dns]\ntimeout = \"5 parsecs\"\nbogus = 1\n\n[policy]\nnon_compliant = \"fallback\"\n",
    )
    .unwrap();
    let mut c = bin();
    c.arg("check-config").arg(&cfg);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = cfg.display().to_string();
    for (line, key) in [
        (2, "server.milter"),
        (5, "dns.timeout"),
        (6, "dns.bogus"),
        (9, "policy.fallback_relay"),
    ] {
        let prefix = format!("{file}:{line}: {key}");
        assert!(err.contains(&prefix), "missing {prefix:?} in:\n{err}");
    }

    // The same file given to `check` is a usage error, not a silent default.
    let mut c = bin();
    c.args(["check", "--config"]).arg(&cfg).arg("example.nl");
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dns.timeout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_accepts_the_sample_and_rejects_a_missing_file() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/config/config.toml");
    let mut c = bin();
    c.args(["check-config", sample]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let mut c = bin();
    c.args(["check-config", "/nonexistent/nta.toml"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/nta.toml"));
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_errors_exit_2() {
    for args in [
        &["check"][..],
        &["frobnicate"],
        &["check", "--bogus", "x.nl"],
    ] {
        let mut c = bin();
        c.args(args);
        let out = run(c).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// `check-config` and `serve` apply one check: an own domain needs a `[[dkim]]` entry
/// whose key loads. Before, this file passed `check-config` and then every message from
/// zkh.test was deferred.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_and_serve_refuse_an_own_domain_that_cannot_sign() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("nokey.toml");
    let missing = dir.path().join("missing.pem");
    std::fs::write(
        &cfg,
        format!(
            "[domains]\nown = [\"zkh.test\", \"ander.test\"]\n[[dkim]]\ndomain = \"ander.test\"\nselector = \"s\"\nkey = \"{}\"\n",
            missing.display()
        ),
    )
    .unwrap();
    let file = cfg.display().to_string();
    let mut c = bin();
    c.arg("check-config").arg(&cfg);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}: domains.own: zkh.test has no [[dkim]] entry"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: dkim (ander.test): ")),
        "{err}"
    );

    // serve refuses to start on the same file, before it binds anything (bounded: a
    // serve that started would be killed after 20 s and fail the test).
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot start"), "{err}");
    assert!(err.contains("zkh.test has no [[dkim]] entry"), "{err}");
}

/// An anchor for a zone below the root must list every key of the zone's DNSKEY set
/// (hickory asks for a DS otherwise, and the island has none: every answer bogus).
/// `check-config` asks the zone and names the missing keys; a complete file passes.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_names_keys_an_island_anchor_lacks() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let complete = dir.path().join("complete.toml");
    std::fs::write(&complete, bed.config_toml()).unwrap();
    let mut c = bin();
    c.arg("check-config").arg(&complete);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A real key, but not one `test.` publishes: its own key is missing from the file.
    let root = std::fs::read_to_string(&bed.root_trust_anchor_file).unwrap();
    let wrong = dir.path().join("wrong-anchor.txt");
    std::fs::write(&wrong, root.replacen(". IN DNSKEY", "test. IN DNSKEY", 1)).unwrap();
    let lacking = dir.path().join("lacking.toml");
    std::fs::write(
        &lacking,
        bed.config_toml().replace(
            &bed.trust_anchor_file.to_string_lossy().to_string(),
            &wrong.to_string_lossy(),
        ),
    )
    .unwrap();
    let mut c = bin();
    c.arg("check-config").arg(&lacking);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dns.trust_anchor_file: the anchor for test lacks the zone's DNSKEY")
            && err.contains("(flags 257)"),
        "{err}"
    );

    // The servers cannot be asked: a warning, the file itself is accepted.
    let dead = dir.path().join("dead.toml");
    std::fs::write(
        &dead,
        bed.config_toml()
            .replace(&bed.addr.to_string(), &DnsBed::dead_addr().to_string())
            .replace("\"2s\"", "\"1s\""),
    )
    .unwrap();
    let mut c = bin();
    c.arg("check-config").arg(&dead);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be checked"),
        "{out:?}"
    );
}

/// `check-config` reads the trust anchor file as the daemon does: before, a file the
/// daemon could not start with passed.
#[tokio::test(flavor = "multi_thread")]
async fn check_config_reads_the_trust_anchor_file() {
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("anchors.txt");
    std::fs::write(&anchors, "test. IN DS 12345 15 2 0123456789abcdef\n").unwrap();
    let cfg = dir.path().join("ds.toml");
    std::fs::write(
        &cfg,
        format!("[dns]\ntrust_anchor_file = \"{}\"\n", anchors.display()),
    )
    .unwrap();
    let mut c = bin();
    c.arg("check-config").arg(&cfg);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dns.trust_anchor_file: cannot read trust anchor file")
            && err.contains("DS records are not accepted"),
        "{err}"
    );
}

/// A host without a CA store (a minimal Debian without ca-certificates, as a real systemd
/// boot of the package showed): the daemon does not use DNS over TLS and must start. Before
/// the fix hickory's builder loaded the system CA store and `serve` exited at once.
#[tokio::test(flavor = "multi_thread")]
async fn serve_starts_without_a_system_ca_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("noca.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nmilter = \"unix:{0}/m.sock\"\nmap = \"unix:{0}/p.sock\"\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    // rustls-native-certs reads these instead of the system paths.
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("SSL_CERT_FILE", dir.path().join("no-such-bundle.pem"))
        .env("SSL_CERT_DIR", dir.path())
        .env("NTA_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Still running after 2 s: started (a start failure exits within milliseconds).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        exited.is_none(),
        "serve exited: {exited:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
