//! One fixture per rule of `decide` (README Logic, rules 1-8), built from facts directly: no DNS,
//! no clock.

use std::time::Duration;

use time::macros::date;

use super::*;
use crate::config::Config;
use crate::dns::{Denial, DnsError, DnsResult, Mx};
use crate::domain::DomainName;
use crate::nta::facts::TargetFacts;

const TODAY: time::Date = date!(2026 - 11 - 22);
const RECORD: &str = "v=NTA7516-1;startdate=2025-11;enddate=2027-11;provider=TestProvider";
const TTL: Duration = Duration::from_secs(300);

fn dn(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn records<T>(records: Vec<T>, dnssec: Dnssec) -> DnsResult<T> {
    Ok(Answer::Records {
        records,
        dnssec,
        ttl: TTL,
    })
}

fn denied<T>(denial: Denial, dnssec: Dnssec) -> DnsResult<T> {
    Ok(Answer::Denied {
        denial,
        dnssec,
        ttl: TTL,
    })
}

fn tlsa(usage: u8) -> Tlsa {
    Tlsa {
        usage,
        selector: 1,
        matching: 1,
        data: vec![0xab; 32],
    }
}

fn mx(pref: u16, host: &str) -> Mx {
    Mx {
        preference: pref,
        exchange: Some(dn(host)),
    }
}

fn target(host: &str, tlsa: DnsResult<Tlsa>) -> TargetFacts {
    TargetFacts {
        host: dn(host),
        tlsa_name: format!("_25._tcp.{host}"),
        tlsa,
    }
}

/// A compliant domain: secure record, secure MX, secure usable TLSA.
fn compliant() -> Facts {
    Facts {
        domain: dn("zkh.test"),
        today: TODAY,
        txt: records(vec!["v=spf1 -all".into(), RECORD.into()], Dnssec::Secure),
        mx: records(vec![mx(10, "mx.zkh.test")], Dnssec::Secure),
        dmarc: Some(records(vec!["v=DMARC1; p=reject".into()], Dnssec::Secure)),
        targets: Some(vec![target(
            "mx.zkh.test",
            records(vec![tlsa(3)], Dnssec::Secure),
        )]),
    }
}

fn policy() -> PolicyConfig {
    Config::embedded_defaults().policy
}

fn codes(v: &Verdict) -> Vec<Code> {
    v.reasons().iter().map(|r| r.code).collect()
}

#[test]
fn compliant_domain() {
    let v = decide(&compliant(), &policy());
    let Verdict::Compliant(c) = v else {
        panic!("{v:?}")
    };
    assert_eq!(c.targets, vec![dn("mx.zkh.test")]);
    assert!(!c.via_ntamx);
    assert_eq!(c.provider, "TestProvider");
    assert_eq!(c.valid_until, date!(2027 - 11 - 30));
    assert_eq!(c.evidence.txt, Dnssec::Secure);
    assert_eq!(c.evidence.mx, Some(Dnssec::Secure));
    assert_eq!(c.evidence.tlsa[0].usable, 1);
}

#[test]
fn rule1_txt_lookup_failure_is_temporary() {
    for (err, code) in [
        (DnsError::Timeout, Code::DnsTimeout),
        (DnsError::ServFail, Code::DnsServfail),
        (DnsError::Bogus, Code::DnssecBogus),
        (DnsError::Refused, Code::DnsError),
    ] {
        let mut f = compliant();
        f.txt = Err(err);
        let v = decide(&f, &policy());
        assert!(matches!(v, Verdict::Temporary { .. }), "{v:?}");
        assert_eq!(codes(&v), vec![code]);
    }
}

#[test]
fn rule1_insecure_txt_is_not_compliant() {
    for status in [Dnssec::Insecure, Dnssec::Indeterminate] {
        let mut f = compliant();
        f.txt = records(vec![RECORD.into()], status);
        let v = decide(&f, &policy());
        assert_eq!(codes(&v), vec![Code::NtaRecordInsecure], "{status}");
    }
}

#[test]
fn rule1_absent_record() {
    let mut f = compliant();
    f.txt = records(vec!["v=spf1 -all".into()], Dnssec::Secure);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NtaRecordAbsent]);
    // Secure denial (no TXT at all) is the same deterministic "no".
    f.txt = denied(Denial::NoData, Dnssec::Secure);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NtaRecordAbsent]);
}

#[test]
fn rule1_absent_record_wins_over_mx_trouble() {
    // Nothing about MX or TLSA can make a domain without a record compliant.
    let mut f = compliant();
    f.txt = denied(Denial::NxDomain, Dnssec::Secure);
    f.mx = Err(DnsError::Timeout);
    f.targets = None;
    let v = decide(&f, &policy());
    assert!(matches!(v, Verdict::NotCompliant { .. }), "{v:?}");
}

#[test]
fn rule1_malformed_and_conflicting() {
    let mut f = compliant();
    f.txt = records(vec!["v=NTA7516-1;startdate=2025-13".into()], Dnssec::Secure);
    assert_eq!(
        codes(&decide(&f, &policy())),
        vec![Code::NtaRecordMalformed]
    );
    f.txt = records(
        vec![RECORD.into(), RECORD.replace("TestProvider", "Other")],
        Dnssec::Secure,
    );
    assert_eq!(
        codes(&decide(&f, &policy())),
        vec![Code::NtaRecordsConflicting]
    );
}

#[test]
fn rule1_validity_window() {
    let mut f = compliant();
    f.today = date!(2027 - 11 - 30);
    assert!(matches!(decide(&f, &policy()), Verdict::Compliant(_)));
    f.today = date!(2027 - 12 - 01);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NtaRecordExpired]);
    f.today = date!(2025 - 11 - 01);
    assert!(matches!(decide(&f, &policy()), Verdict::Compliant(_)));
    f.today = date!(2025 - 10 - 31);
    assert_eq!(
        codes(&decide(&f, &policy())),
        vec![Code::NtaRecordNotYetValid]
    );
}

#[test]
fn rule2_ntamx_targets_replace_mx() {
    let mut f = compliant();
    f.txt = records(
        vec![format!(
            "{RECORD};ntamx=20 b.prov.test;ntamx=10 a.prov.test"
        )],
        Dnssec::Secure,
    );
    // The MX is insecure, which does not matter when ntamx names the targets.
    f.mx = records(vec![mx(10, "mx.zkh.test")], Dnssec::Insecure);
    f.targets = Some(vec![
        target("a.prov.test", denied(Denial::NxDomain, Dnssec::Secure)),
        target("b.prov.test", records(vec![tlsa(2)], Dnssec::Secure)),
    ]);
    let Verdict::Compliant(c) = decide(&f, &policy()) else {
        panic!()
    };
    assert!(c.via_ntamx);
    assert_eq!(c.targets, vec![dn("b.prov.test")]);
    assert_eq!(c.evidence.mx, None);
}

#[test]
fn rule2_mx_must_be_secure() {
    let mut f = compliant();
    f.mx = records(vec![mx(10, "mx.zkh.test")], Dnssec::Insecure);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::MxInsecure]);
}

#[test]
fn rule2_null_mx() {
    let mut f = compliant();
    f.mx = records(
        vec![Mx {
            preference: 0,
            exchange: None,
        }],
        Dnssec::Secure,
    );
    f.targets = Some(vec![]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NullMx]);
}

#[test]
fn rule2_no_mx() {
    let mut f = compliant();
    f.mx = denied(Denial::NoData, Dnssec::Secure);
    f.targets = Some(vec![]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NoTargets]);
}

#[test]
fn rule2_mx_lookup_failure_is_temporary() {
    let mut f = compliant();
    f.mx = Err(DnsError::ServFail);
    f.targets = Some(vec![]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::DnsServfail]);
}

#[test]
fn rule3_no_tlsa() {
    let mut f = compliant();
    f.targets = Some(vec![target(
        "mx.zkh.test",
        denied(Denial::NoData, Dnssec::Secure),
    )]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NoUsableTlsa]);
}

#[test]
fn rule3_only_pkix_usages() {
    let mut f = compliant();
    f.targets = Some(vec![target(
        "mx.zkh.test",
        records(vec![tlsa(0), tlsa(1)], Dnssec::Secure),
    )]);
    let v = decide(&f, &policy());
    assert_eq!(codes(&v), vec![Code::NoUsableTlsa]);
    assert!(v.reasons()[0].message.contains("usage 0/1"), "{v:?}");
}

#[test]
fn rule3_insecure_tlsa() {
    let mut f = compliant();
    f.targets = Some(vec![target(
        "mx.zkh.test",
        records(vec![tlsa(3)], Dnssec::Insecure),
    )]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::NoUsableTlsa]);
}

#[test]
fn rule3_tlsa_failure_is_temporary_unless_another_target_is_usable() {
    let mut f = compliant();
    f.targets = Some(vec![target("mx.zkh.test", Err(DnsError::Bogus))]);
    assert_eq!(codes(&decide(&f, &policy())), vec![Code::DnssecBogus]);

    f.mx = records(
        vec![mx(10, "mx.zkh.test"), mx(20, "mx2.zkh.test")],
        Dnssec::Secure,
    );
    f.targets = Some(vec![
        target("mx.zkh.test", Err(DnsError::Timeout)),
        target("mx2.zkh.test", records(vec![tlsa(3)], Dnssec::Secure)),
    ]);
    let Verdict::Compliant(c) = decide(&f, &policy()) else {
        panic!()
    };
    assert_eq!(c.targets, vec![dn("mx2.zkh.test")]);
}

#[test]
fn rule4_dmarc_and_spf_only_when_required() {
    let mut f = compliant();
    f.txt = records(vec![RECORD.into(), "v=spf1 ?all".into()], Dnssec::Secure);
    f.dmarc = Some(records(vec!["v=DMARC1; p=none".into()], Dnssec::Secure));
    assert!(matches!(decide(&f, &policy()), Verdict::Compliant(_)));

    let mut p = policy();
    p.require_dmarc = true;
    p.require_spf = true;
    assert_eq!(
        codes(&decide(&f, &p)),
        vec![Code::DmarcPolicyWeak, Code::SpfPolicyWeak]
    );
    f.dmarc = Some(records(
        vec!["v=DMARC1; p=quarantine".into()],
        Dnssec::Secure,
    ));
    f.txt = records(vec![RECORD.into(), "v=spf1 mx ~all".into()], Dnssec::Secure);
    assert!(matches!(decide(&f, &p), Verdict::Compliant(_)));
    // An unsigned DMARC record can be forged: not good enough.
    f.dmarc = Some(records(vec!["v=DMARC1; p=reject".into()], Dnssec::Insecure));
    assert_eq!(codes(&decide(&f, &p)), vec![Code::DmarcPolicyWeak]);
    f.dmarc = Some(Err(DnsError::Timeout));
    assert_eq!(codes(&decide(&f, &p)), vec![Code::DnsTimeout]);
}

#[test]
fn rule5_every_deterministic_reason_is_reported() {
    let mut f = compliant();
    f.txt = records(
        vec!["v=NTA7516-1;startdate=2020-01;enddate=2020-02;provider=X".into()],
        Dnssec::Insecure,
    );
    f.targets = Some(vec![target(
        "mx.zkh.test",
        denied(Denial::NoData, Dnssec::Secure),
    )]);
    assert_eq!(
        codes(&decide(&f, &policy())),
        vec![
            Code::NtaRecordInsecure,
            Code::NtaRecordExpired,
            Code::NoUsableTlsa
        ]
    );
}

#[test]
fn spf_and_dmarc_parsers() {
    let s = |v: &[&str]| spf_all(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(s(&["v=spf1 -all"]), SpfAll::Strict);
    assert_eq!(s(&["V=SPF1 include:x ~ALL"]), SpfAll::Strict);
    assert_eq!(s(&["v=spf1 +all"]), SpfAll::Weak("+all".into()));
    assert!(matches!(s(&["v=spf1 mx"]), SpfAll::Weak(_)));
    assert_eq!(
        s(&["v=spf1 redirect=x.nl"]),
        SpfAll::Redirect("x.nl".into())
    );
    assert_eq!(s(&["v=spf10 -all"]), SpfAll::None);
    assert_eq!(s(&["v=spf1 -all", "v=spf1 ~all"]), SpfAll::Several);
    let d = |v: &[&str]| dmarc_policy(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        d(&["v=DMARC1; p=Reject; rua=mailto:a@b"]),
        Some("reject".into())
    );
    assert_eq!(d(&["v=DMARC1;p=none"]), Some("none".into()));
    assert_eq!(d(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]), None);
    assert_eq!(d(&["something else"]), None);
}
