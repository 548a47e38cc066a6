//! Every DNS test-bed fixture through the real resolver, facts gathering and `decide`, and
//! through the `check` binary (exit code and JSON), asserting verdict and reasons.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dnsbed::DnsBed;
use nta7516_milter::config::Config;
use nta7516_milter::dns::{HickoryResolver, ResolverSetup};
use nta7516_milter::domain::DomainName;
use nta7516_milter::engine::Engine;
use nta7516_milter::policy::Verdict;

struct Case {
    domain: &'static str,
    verdict: &'static str,
    /// Every reason code, in order.
    codes: &'static [&'static str],
    /// For compliant verdicts: the delivery targets.
    targets: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        domain: "compliant.test",
        verdict: "compliant",
        codes: &[],
        targets: &["mx.compliant.test"],
    },
    // MX (and TXT) reached through a secure CNAME.
    Case {
        domain: "alias.compliant.test",
        verdict: "compliant",
        codes: &[],
        targets: &["mx.compliant.test"],
    },
    Case {
        domain: "ntamx.test",
        verdict: "compliant",
        codes: &[],
        targets: &["nta.ntamx.test"],
    },
    Case {
        domain: "legacy.test",
        verdict: "compliant",
        codes: &[],
        targets: &["mx.legacy.test"],
    },
    Case {
        domain: "big.test",
        verdict: "compliant",
        codes: &[],
        targets: &["mx.big.test"],
    },
    Case {
        domain: "nodmarc.test",
        verdict: "compliant",
        codes: &[],
        targets: &["mx.nodmarc.test"],
    },
    Case {
        domain: "expired.test",
        verdict: "not_compliant",
        codes: &["nta_record_expired"],
        targets: &[],
    },
    Case {
        domain: "notyet.test",
        verdict: "not_compliant",
        codes: &["nta_record_not_yet_valid"],
        targets: &[],
    },
    Case {
        domain: "notlsa.test",
        verdict: "not_compliant",
        codes: &["no_usable_tlsa"],
        targets: &[],
    },
    Case {
        domain: "pkix.test",
        verdict: "not_compliant",
        codes: &["no_usable_tlsa"],
        targets: &[],
    },
    Case {
        domain: "insecure.test",
        verdict: "not_compliant",
        codes: &["nta_record_insecure", "mx_insecure", "no_usable_tlsa"],
        targets: &[],
    },
    Case {
        domain: "nullmx.test",
        verdict: "not_compliant",
        codes: &["null_mx"],
        targets: &[],
    },
    Case {
        domain: "twonta.test",
        verdict: "not_compliant",
        codes: &["nta_records_conflicting"],
        targets: &[],
    },
    Case {
        domain: "nonta.test",
        verdict: "not_compliant",
        codes: &["nta_record_absent"],
        targets: &[],
    },
    Case {
        domain: "spfonly.test",
        verdict: "not_compliant",
        codes: &["nta_record_absent"],
        targets: &[],
    },
    Case {
        domain: "bogus.test",
        verdict: "temporary",
        codes: &["dnssec_bogus"],
        targets: &[],
    },
    Case {
        domain: "servfail.test",
        verdict: "temporary",
        codes: &["dns_servfail"],
        targets: &[],
    },
];

fn config_for(bed: &DnsBed, extra: &str) -> Config {
    Config::from_toml_str(&format!("{}\n{extra}", bed.config_toml()), "test").unwrap()
}

fn engine(config: &Config) -> Arc<Engine<HickoryResolver>> {
    let resolver = HickoryResolver::new(&ResolverSetup {
        nameservers: config.dns.nameservers.clone(),
        trust_anchor_file: config.dns.trust_anchor_file.clone(),
    })
    .unwrap();
    Engine::new(
        Arc::new(resolver),
        config.policy.clone(),
        config.dns.timeout,
    )
}

fn codes(v: &Verdict) -> Vec<&'static str> {
    v.reasons().iter().map(|r| r.code.as_str()).collect()
}

fn assert_case(c: &Case, v: &Verdict, how: &str) {
    assert_eq!(v.label(), c.verdict, "{how} {}: {v:#?}", c.domain);
    assert_eq!(codes(v), c.codes, "{how} {}: {v:#?}", c.domain);
    if let Verdict::Compliant(comp) = v {
        let t: Vec<String> = comp.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(t, c.targets, "{how} {}", c.domain);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_through_check_facts_and_routing_decision() {
    let bed = DnsBed::start().await;
    let config = config_for(&bed, "");
    let engine = engine(&config);
    for c in CASES {
        let d = DomainName::parse(c.domain).unwrap();
        // `check` gathers everything; routing gathers less: both must agree.
        let (_, full) = engine.check(&d).await;
        assert_case(c, &full, "check");
        let routed = engine.decide(&d).await;
        assert_case(c, &routed.verdict, "route");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dmarc_and_spf_requirements() {
    let bed = DnsBed::start().await;
    let config = config_for(&bed, "[policy]\nrequire_dmarc = true\nrequire_spf = true\n");
    let engine = engine(&config);
    let d = DomainName::parse("nodmarc.test").unwrap();
    let (_, v) = engine.check(&d).await;
    assert_eq!(
        codes(&v),
        ["dmarc_policy_weak", "spf_policy_weak"],
        "{v:#?}"
    );
    let routed = engine.decide(&d).await;
    assert_eq!(
        codes(&routed.verdict),
        ["dmarc_policy_weak", "spf_policy_weak"]
    );
    let d = DomainName::parse("compliant.test").unwrap();
    assert_eq!(engine.decide(&d).await.verdict.label(), "compliant");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_server_is_a_timeout_within_the_deadline() {
    let bed = DnsBed::start().await;
    let toml = bed
        .config_toml()
        .replace(&bed.addr.to_string(), &DnsBed::dead_addr().to_string())
        .replace("timeout = \"2s\"", "timeout = \"1s\"");
    let config = Config::from_toml_str(&toml, "test").unwrap();
    let engine = engine(&config);
    let d = DomainName::parse("compliant.test").unwrap();
    let started = Instant::now();
    let (_, v) = engine.check(&d).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(codes(&v), ["dns_timeout"]);
    let started = Instant::now();
    assert_eq!(codes(&engine.decide(&d).await.verdict), ["dns_timeout"]);
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_evaluations_are_merged_and_cached() {
    let bed = DnsBed::start().await;
    let engine = engine(&config_for(&bed, ""));
    let d = DomainName::parse("compliant.test").unwrap();
    let all = futures::future::join_all((0..50).map(|_| engine.decide(&d))).await;
    // One evaluation served all fifty callers: they share one Arc.
    assert!(all.iter().all(|x| Arc::ptr_eq(x, &all[0])));
    assert!(engine.cached(&d).is_some());
    assert_eq!(engine.cache_len(), 1);
}

fn run_check(config: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_nta7516-milter"))
        .arg("check")
        .arg("--json")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), json)
}

#[tokio::test(flavor = "multi_thread")]
async fn check_binary_reports_every_fixture() {
    let bed = DnsBed::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, bed.config_toml()).unwrap();
    let cfg2 = cfg.clone();
    // The binary blocks; run it off the runtime that serves the test DNS.
    let results = tokio::task::spawn_blocking(move || {
        CASES
            .iter()
            .map(|c| run_check(&cfg2, &[c.domain]))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for (c, (code, json)) in CASES.iter().zip(results) {
        let expected_code = match c.verdict {
            "compliant" => 0,
            "not_compliant" => 1,
            _ => 2,
        };
        assert_eq!(code, expected_code, "{}: {json:#}", c.domain);
        assert_eq!(json["version"], 1);
        let r = &json["results"][0];
        assert_eq!(r["domain"], c.domain);
        assert_eq!(r["verdict"], c.verdict, "{json:#}");
        let got: Vec<&str> = r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap())
            .collect();
        assert_eq!(got, c.codes, "{}", c.domain);
        if c.verdict == "compliant" {
            assert_eq!(r["compliance"]["targets"][0], c.targets[0]);
            assert_eq!(r["targets"][0]["tlsa"]["outcome"], "records");
            assert_eq!(r["targets"][0]["tlsa"]["dnssec"], "secure");
            assert_eq!(r["nta_record"]["status"], "found");
            assert!(r["nta_record"]["days_left"].as_i64().unwrap() > 300);
        }
    }

    // Several domains: the worst verdict decides the exit code.
    let (code, json) = tokio::task::spawn_blocking(move || {
        run_check(&cfg, &["compliant.test", "expired.test", "bogus.test"])
    })
    .await
    .unwrap();
    assert_eq!(code, 2);
    assert_eq!(json["results"].as_array().unwrap().len(), 3);
}

/// With a trust anchor for `test.` only, a name under no anchor has no chain of trust
/// to check: insecure (RFC 4035 §4.3), so not compliant, instead of bogus (temporary,
/// deferred for ever). Names under the anchor are validated as before.
#[tokio::test(flavor = "multi_thread")]
async fn names_outside_a_non_root_trust_anchor_are_insecure_not_bogus() {
    use nta7516_milter::dns::{Answer, Denial, Dnssec, Resolver};
    let bed = DnsBed::start().await;
    let config = config_for(&bed, "");
    let resolver = HickoryResolver::new(&ResolverSetup {
        nameservers: config.dns.nameservers.clone(),
        trust_anchor_file: config.dns.trust_anchor_file.clone(),
    })
    .unwrap();
    for name in ["example.com", "_dmarc.example.com", "zzz"] {
        let got = resolver.txt(&DomainName::parse(name).unwrap()).await;
        assert!(
            matches!(
                got,
                Ok(Answer::Denied {
                    denial: Denial::NxDomain,
                    dnssec: Dnssec::Insecure,
                    ..
                })
            ),
            "{name}: {got:?}"
        );
    }
    let inside = resolver
        .txt(&DomainName::parse("compliant.test").unwrap())
        .await
        .unwrap();
    assert_eq!(inside.dnssec(), Dnssec::Secure);
    assert!(
        resolver
            .txt(&DomainName::parse("bogus.test").unwrap())
            .await
            .is_err(),
        "still bogus under the anchor"
    );

    let engine = engine(&config);
    let decision = engine
        .decide(&DomainName::parse("example.com").unwrap())
        .await;
    let v = &decision.verdict;
    assert_eq!(v.label(), "not_compliant", "{v:#?}");
    assert_eq!(
        codes(v),
        ["nta_record_insecure", "nta_record_absent", "mx_insecure"],
        "{v:#?}"
    );
}
