//! The SPF and DMARC checks of `self-check`: internet.nl's thresholds, which NTA 7516 peers
//! may also require (`[policy] require_spf`/`require_dmarc`).

use super::{Check, Status};
use crate::nta::facts::Facts;
use crate::policy::{SpfAll, dmarc_policy, spf_all};

pub(super) fn spf_check(facts: &Facts) -> Check {
    let title = "SPF ends in ~all or -all";
    let (result, detail) = match &facts.txt {
        Err(e) => (Status::of_error(e), format!("TXT lookup failed: {e}")),
        Ok(a) => {
            let spf = a
                .records()
                .iter()
                .find(|t| {
                    let t = t.trim_start().to_ascii_lowercase();
                    t == "v=spf1" || t.starts_with("v=spf1 ")
                })
                .cloned()
                .unwrap_or_default();
            match spf_all(a.records()) {
                SpfAll::Strict => (Status::Pass, spf),
                SpfAll::Redirect(to) => (
                    Status::Warn,
                    format!(
                        "{spf}: redirect={to} is not followed here; make sure {to} ends in ~all or -all"
                    ),
                ),
                SpfAll::None => (
                    Status::Fail,
                    "no SPF record; publish e.g. \"v=spf1 mx -all\"".to_string(),
                ),
                SpfAll::Several => (
                    Status::Fail,
                    "several SPF records (RFC 7208 §4.5: permerror); merge them into one"
                        .to_string(),
                ),
                SpfAll::Weak(how) => (
                    Status::Fail,
                    format!(
                        "{spf}: ends in {how}; internet.nl and NTA 7516 peers want ~all or -all"
                    ),
                ),
            }
        }
    };
    Check {
        id: "spf",
        title,
        result,
        detail,
        hint: None,
    }
}

pub(super) fn dmarc_check(facts: &Facts) -> Check {
    let title = "DMARC p=quarantine or p=reject, DNSSEC-secure";
    let (result, detail) = match &facts.dmarc {
        None => (Status::Temporary, "_dmarc was not looked up".to_string()),
        Some(Err(e)) => (
            Status::of_error(e),
            format!("_dmarc TXT lookup failed: {e}"),
        ),
        Some(Ok(a)) => match dmarc_policy(a.records()) {
            Some(p) if matches!(p.as_str(), "quarantine" | "reject") && a.is_secure() => {
                (Status::Pass, format!("p={p} ({})", a.dnssec()))
            }
            Some(p) if matches!(p.as_str(), "quarantine" | "reject") => (
                Status::Fail,
                format!(
                    "p={p}, but the record is {}; peers requiring DMARC want it DNSSEC-secure",
                    a.dnssec()
                ),
            ),
            Some(p) => (
                Status::Fail,
                format!(
                    "p={p} ({}); internet.nl and NTA 7516 peers want p=quarantine or p=reject",
                    a.dnssec()
                ),
            ),
            None => (
                Status::Fail,
                format!(
                    "no single DMARC record at _dmarc.{} ({}); publish e.g. \"v=DMARC1; p=reject\"",
                    facts.domain,
                    a.dnssec()
                ),
            ),
        },
    };
    Check {
        id: "dmarc",
        title,
        result,
        detail,
        hint: None,
    }
}
