use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::dns::{Denial, DnsError, Mx, Tlsa};

/// `denied.test` has no TXT record (secure NXDOMAIN); every other name times out.
struct Fixed;

fn answer<T>(name: &DomainName) -> DnsResult<T> {
    if name.as_str().ends_with("denied.test") {
        Ok(Answer::Denied {
            denial: Denial::NxDomain,
            dnssec: Dnssec::Secure,
            ttl: Duration::from_secs(300),
        })
    } else {
        Err(DnsError::Timeout)
    }
}

impl Resolver for Fixed {
    async fn txt(&self, name: &DomainName) -> DnsResult<String> {
        answer(name)
    }
    async fn mx(&self, name: &DomainName) -> DnsResult<Mx> {
        answer(name)
    }
    async fn tlsa(&self, name: &DomainName) -> DnsResult<Tlsa> {
        answer(name)
    }
}

async fn check(names: &[&str]) -> Checked {
    let engine = Engine::new(
        Arc::new(Fixed),
        crate::config::Config::from_toml_str("", "t")
            .unwrap()
            .policy,
        Duration::from_millis(200),
    );
    let names: Vec<DomainName> = names
        .iter()
        .map(|n| DomainName::parse(n).unwrap())
        .collect();
    run(&engine, &names).await
}

#[tokio::test]
async fn results_in_order_and_the_worst_exit_status() {
    let c = check(&["denied.test"]).await;
    assert_eq!(c.exit, exit::NOT_COMPLIANT);
    assert_eq!(c.document.version, REPORT_VERSION);
    assert_eq!(c.document.results[0].verdict, "not_compliant");

    let c = check(&["slow.test", "denied.test"]).await;
    assert_eq!(c.exit, exit::TEMPORARY_OR_USAGE);
    let got: Vec<(&str, &str)> = c
        .document
        .results
        .iter()
        .map(|r| (r.domain.as_str(), r.verdict))
        .collect();
    assert_eq!(
        got,
        [("slow.test", "temporary"), ("denied.test", "not_compliant")]
    );

    let c = check(&[]).await;
    assert_eq!(c.exit, exit::COMPLIANT);
    assert!(c.document.results.is_empty());
}

#[tokio::test]
async fn text_reports_are_separated_by_a_blank_line() {
    let c = check(&["denied.test", "slow.test"]).await;
    let one = render_text(&c.document.results[0]);
    let two = render_text(&c.document.results[1]);
    assert_eq!(render_all(&c.document), format!("{one}\n{two}"));
    assert!(
        one.starts_with("denied.test — NTA 7516: NOT COMPLIANT\n"),
        "{one}"
    );
}
