use std::collections::HashMap;
use std::sync::Arc;

use super::dkim::abbreviate;
use super::nta::validity_check;
use super::*;
use crate::dns::{Answer, Denial, Mx, Tlsa};
use crate::message::dkim::SigningKey;
use crate::nta::record;
use crate::tools::keygen::{KeyKind, generate_pkcs8, pem};

/// Answers from a table; names not in it time out.
#[derive(Default)]
struct Table {
    txt: HashMap<String, DnsResult<String>>,
    mx: HashMap<String, DnsResult<Mx>>,
    tlsa: HashMap<String, DnsResult<Tlsa>>,
}

fn get<T: Clone>(m: &HashMap<String, DnsResult<T>>, n: &DomainName) -> DnsResult<T> {
    m.get(n.as_str()).cloned().unwrap_or(Err(DnsError::Timeout))
}

impl Resolver for Table {
    async fn txt(&self, name: &DomainName) -> DnsResult<String> {
        get(&self.txt, name)
    }
    async fn mx(&self, name: &DomainName) -> DnsResult<Mx> {
        get(&self.mx, name)
    }
    async fn tlsa(&self, name: &DomainName) -> DnsResult<Tlsa> {
        get(&self.tlsa, name)
    }
}

fn secure<T>(records: Vec<T>) -> DnsResult<T> {
    Ok(Answer::Records {
        records,
        dnssec: Dnssec::Secure,
        ttl: Duration::from_secs(300),
    })
}

fn denied<T>() -> DnsResult<T> {
    Ok(Answer::Denied {
        denial: Denial::NxDomain,
        dnssec: Dnssec::Secure,
        ttl: Duration::from_secs(300),
    })
}

fn dn(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn tlsa311() -> Tlsa {
    Tlsa {
        usage: 3,
        selector: 1,
        matching: 1,
        data: vec![7; 32],
    }
}

fn key_file(dir: &std::path::Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let der = generate_pkcs8(KeyKind::Ed25519).unwrap();
    std::fs::write(&path, pem("PRIVATE KEY", &der)).unwrap();
    path
}

/// `zkh.test` with everything in order, publishing `dkim` at `s._domainkey`.
fn zone(today: time::Date, dkim: DnsResult<String>, end_months: i32) -> Table {
    let m = |delta: i32| {
        let n = today.year() * 12 + i32::from(u8::from(today.month())) - 1 + delta;
        format!("{:04}-{:02}", n.div_euclid(12), n.rem_euclid(12) + 1)
    };
    let mut t = Table::default();
    t.txt.insert(
        "zkh.test".into(),
        secure(vec![
            format!(
                "v=NTA7516-1;startdate={};enddate={};provider=P",
                m(-12),
                m(end_months)
            ),
            "v=spf1 mx -all".into(),
        ]),
    );
    t.txt.insert(
        "_dmarc.zkh.test".into(),
        secure(vec!["v=DMARC1; p=quarantine".into()]),
    );
    t.txt.insert("s._domainkey.zkh.test".into(), dkim);
    t.mx.insert(
        "zkh.test".into(),
        secure(vec![Mx {
            preference: 10,
            exchange: Some(dn("mx.zkh.test")),
        }]),
    );
    t.tlsa
        .insert("_25._tcp.mx.zkh.test".into(), secure(vec![tlsa311()]));
    t
}

async fn run_on(table: Table, key: &std::path::Path) -> Document {
    let config = Config::from_toml_str(
        &format!(
            "[domains]\nown = [\"zkh.test\"]\n[[dkim]]\ndomain = \"zkh.test\"\nselector = \"s\"\nkey = \"{}\"\n",
            key.display()
        ),
        "t",
    )
    .unwrap();
    let engine = Engine::new(
        Arc::new(table),
        config.policy.clone(),
        Duration::from_millis(300),
    );
    run(&engine, &config, None).await
}

fn results(doc: &Document) -> Vec<(&'static str, Status)> {
    doc.domains[0]
        .checks
        .iter()
        .map(|c| (c.id, c.result))
        .collect()
}

#[tokio::test]
async fn all_pass_then_each_fault() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path(), "k.pem");
    let key = SigningKey::load(&dn("zkh.test"), "s", &path).unwrap();
    let record = key.public_key_dns_record();
    let today = crate::nta::today_utc();

    let doc = run_on(zone(today, secure(vec![record.clone()]), 12), &path).await;
    assert_eq!(doc.result, Status::Pass, "{:#?}", results(&doc));
    assert_eq!(doc.version, SELF_CHECK_VERSION);
    let text = render_text(&doc);
    assert!(text.contains("zkh.test — self-check: PASS"), "{text}");
    assert!(
        text.contains("\n  Peers see: compliant — they deliver directly with DANE to mx.zkh.test (valid until "),
        "{text}"
    );

    // Expiring this month: a warning, exit 0.
    let doc = run_on(zone(today, secure(vec![record.clone()]), 0), &path).await;
    assert_eq!(doc.result, Status::Warn);
    assert!(results(&doc).contains(&("nta_validity", Status::Warn)));
    assert_eq!(doc.result.exit_code(), 0);

    // Another key published: fail, with the record to publish as the hint.
    let other = key_file(dir.path(), "other.pem");
    let other = SigningKey::load(&dn("zkh.test"), "s", &other).unwrap();
    let doc = run_on(
        zone(today, secure(vec![other.public_key_dns_record()]), 12),
        &path,
    )
    .await;
    assert_eq!(doc.result, Status::Fail);
    let dkim = &doc.domains[0].dkim[0];
    assert!(
        dkim.detail.contains("not the public half"),
        "{}",
        dkim.detail
    );
    assert!(
        dkim.hint.as_deref().unwrap().contains(&record),
        "{:?}",
        dkim.hint
    );
    assert_eq!(doc.result.exit_code(), 1);

    // No key published; a revoked key; two keys; a timeout on the DKIM lookup only.
    for (answer, want, status) in [
        (denied(), "no key published (NXDOMAIN)", Status::Fail),
        (
            secure(vec!["v=DKIM1; k=ed25519; p=".into()]),
            "revoked",
            Status::Fail,
        ),
        (
            secure(vec![record.clone(), record.replace("v=DKIM1; ", "")]),
            "2 key records",
            Status::Fail,
        ),
        (
            secure(vec!["v=spf1 -all".into()]),
            "not a DKIM key record",
            Status::Fail,
        ),
        (
            Err(DnsError::Timeout),
            "TXT lookup failed",
            Status::Temporary,
        ),
    ] {
        let doc = run_on(zone(today, answer, 12), &path).await;
        let dkim = &doc.domains[0].dkim[0];
        assert!(dkim.detail.contains(want), "{want}: {}", dkim.detail);
        assert_eq!(dkim.result, status, "{want}");
        assert_eq!(doc.result, status, "{want}");
    }

    // Whitespace inside p= (as some DNS consoles insert) still matches.
    let spaced = record.replacen("p=", "p= ", 1);
    let doc = run_on(zone(today, secure(vec![spaced]), 12), &path).await;
    assert_eq!(doc.result, Status::Pass);
}

#[tokio::test]
async fn spf_dmarc_dane_and_dnssec() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(dir.path(), "k.pem");
    let key = SigningKey::load(&dn("zkh.test"), "s", &path).unwrap();
    let rec = secure(vec![key.public_key_dns_record()]);
    let today = crate::nta::today_utc();

    let mut t = zone(today, rec.clone(), 12);
    t.txt.insert(
        "_dmarc.zkh.test".into(),
        secure(vec!["v=DMARC1; p=none".into()]),
    );
    let Some(Ok(Answer::Records { records, .. })) = t.txt.get_mut("zkh.test") else {
        panic!()
    };
    records[1] = "v=spf1 mx ?all".into();
    let doc = run_on(t, &path).await;
    let r = results(&doc);
    assert!(r.contains(&("spf", Status::Fail)), "{r:?}");
    assert!(r.contains(&("dmarc", Status::Fail)), "{r:?}");

    // A second MX without TLSA: a warning; only that MX: a failure.
    let mut t = zone(today, rec.clone(), 12);
    t.mx.insert(
        "zkh.test".into(),
        secure(vec![
            Mx {
                preference: 10,
                exchange: Some(dn("mx.zkh.test")),
            },
            Mx {
                preference: 20,
                exchange: Some(dn("mx2.zkh.test")),
            },
        ]),
    );
    t.tlsa.insert("_25._tcp.mx2.zkh.test".into(), denied());
    let doc = run_on(t, &path).await;
    assert!(results(&doc).contains(&("dane", Status::Warn)));
    let mut t = zone(today, rec.clone(), 12);
    t.tlsa.insert("_25._tcp.mx.zkh.test".into(), denied());
    let doc = run_on(t, &path).await;
    assert!(results(&doc).contains(&("dane", Status::Fail)));

    // Bogus apex: a definite failure of our zone, not "try again later".
    let mut t = zone(today, rec, 12);
    t.txt.insert("zkh.test".into(), Err(DnsError::Bogus));
    let doc = run_on(t, &path).await;
    let r = results(&doc);
    assert_eq!(r[0], ("dnssec", Status::Fail), "{r:?}");
    assert_eq!(r[2], ("nta_validity", Status::Skipped));
}

#[test]
fn expiry_boundary() {
    let rec = record::parse("v=NTA7516-1;startdate=2025-01;enddate=2026-06;provider=P").unwrap();
    let day = |d| time::Date::from_calendar_date(2026, time::Month::May, d).unwrap();
    // The last valid day is 2026-06-30: 30 days before is 2026-05-31.
    assert_eq!(validity_check(&rec, day(30)).0, Status::Pass);
    assert_eq!(validity_check(&rec, day(31)).0, Status::Warn);
}

#[test]
fn worst_and_exit_codes() {
    use Status::*;
    assert_eq!(Pass.worst(Skipped), Pass);
    assert_eq!(Warn.worst(Pass), Warn);
    assert_eq!(Fail.worst(Temporary), Temporary);
    assert_eq!(Temporary.worst(Fail), Temporary);
    assert_eq!(
        [Pass, Skipped, Warn, Fail, Temporary].map(Status::exit_code),
        [0, 0, 0, 1, 2]
    );
    assert_eq!(abbreviate("é".repeat(40).as_str()).chars().count(), 21);
}
