//! The DKIM check of `self-check`: the key published at `<selector>._domainkey.<domain>`
//! (RFC 6376 §3.6.2.1) against the configured `[[dkim]]` key file.

use std::time::Duration;

use super::{DkimResult, Status, within};
use crate::config::DkimConfig;
use crate::dns::{Answer, DnsError, Resolver};
use crate::domain::DomainName;
use crate::message::dkim::{KeyError, SigningKey};

/// The `k=` and `p=` of the DKIM key records among `txts` (records that carry a `p=` tag).
fn dkim_records(txts: &[String]) -> Vec<(&str, String, String)> {
    use crate::tools::keygen::record_tag;
    txts.iter()
        .filter_map(|t| {
            let p = record_tag(t, "p")?;
            let k = record_tag(t, "k").unwrap_or("rsa").to_ascii_lowercase();
            let p: String = p.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            Some((t.as_str(), k, p))
        })
        .collect()
}

pub(super) async fn dkim_entry<R: Resolver>(
    resolver: &R,
    entry: &DkimConfig,
    timeout: Duration,
) -> DkimResult {
    let name = format!("{}._domainkey.{}", entry.selector, entry.domain);
    let mut out = DkimResult {
        selector: entry.selector.clone(),
        name: name.clone(),
        key_file: entry.key.clone(),
        result: Status::Fail,
        detail: String::new(),
        hint: None,
        expected: None,
        published: Vec::new(),
        dnssec: None,
    };
    let key = match SigningKey::load(&entry.domain, &entry.selector, &entry.key) {
        Ok(k) => k,
        Err(e) => {
            out.detail = e.to_string();
            if matches!(e, KeyError::Read { .. }) {
                out.hint = Some(
                    "run self-check as a user that can read the key file (e.g. root), or fix the [[dkim]] key path".into(),
                );
            }
            return out;
        }
    };
    let expected = key.public_key_dns_record();
    out.expected = Some(expected.clone());
    let lookup = match DomainName::parse(&name) {
        Ok(n) => within(timeout, resolver.txt(&n)).await,
        Err(e) => Err(DnsError::Other(format!("{name}: {e}"))),
    };
    match lookup {
        Err(e) => {
            out.result = Status::of_error(&e);
            out.detail = format!("TXT lookup failed: {e}");
        }
        Ok(answer) => {
            out.dnssec = Some(answer.dnssec());
            out.published = answer.records().to_vec();
            let (result, detail) = judge_dkim(&answer, &key);
            out.result = result;
            out.detail = detail;
            if result != Status::Pass {
                out.hint = Some(format!(
                    "publish: {}",
                    crate::tools::zone_file_txt(&name, &expected)
                ));
            }
        }
    }
    out
}

/// The published key record(s) at the selector's name against the configured key.
fn judge_dkim(answer: &Answer<String>, key: &SigningKey) -> (Status, String) {
    let expected = key.public_key_dns_record();
    let want_k = key.algorithm().key_type();
    let want_p = crate::tools::keygen::record_tag(&expected, "p").unwrap_or_default();
    let file = key.path().display();
    let found = dkim_records(answer.records());
    match (answer, found.as_slice()) {
        (Answer::Denied { denial, .. }, _) => {
            (Status::Fail, format!("no key published ({denial})"))
        }
        (_, []) => (
            Status::Fail,
            "the TXT record there is not a DKIM key record (no p= tag)".into(),
        ),
        (_, [_, _, ..]) => (
            Status::Fail,
            format!(
                "{} key records at one name; verifiers may use any of them: keep exactly one",
                found.len()
            ),
        ),
        (_, [(_, _, p)]) if p.is_empty() => (
            Status::Fail,
            "the published key is revoked (empty p=)".into(),
        ),
        (_, [(_, k, _)]) if k != want_k => (
            Status::Fail,
            format!("published k={k} but {file} is an {} key", key.algorithm()),
        ),
        (_, [(_, _, p)]) if !same_base64(p, want_p) => (
            Status::Fail,
            format!(
                "the published key is not the public half of {file} (published p={}, expected p={}): mail signed with this key fails DKIM",
                abbreviate(p),
                abbreviate(want_p)
            ),
        ),
        (a, [_]) => {
            let size = key
                .rsa_bits()
                .map_or_else(String::new, |b| format!(", {b} bits"));
            (
                Status::Pass,
                format!("k={want_k}{size}, matches {file} ({})", a.dnssec()),
            )
        }
    }
}

fn same_base64(a: &str, b: &str) -> bool {
    let dec = |s: &str| data_encoding::BASE64.decode(s.as_bytes()).ok();
    match (dec(a), dec(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The start and end of a long base64 value: enough to tell two keys apart.
pub(super) fn abbreviate(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 24 {
        return s.to_string();
    }
    let head: String = chars[..12].iter().collect();
    let tail: String = chars[chars.len() - 8..].iter().collect();
    format!("{head}…{tail}")
}
