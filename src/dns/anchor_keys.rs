//! Does a trust anchor file list every key of each zone below the root that it anchors?
//!
//! hickory (0.26) trusts the DNSKEY set of a zone other than the root only when every key
//! in it is one of the anchors; otherwise it asks for the zone's DS at the parent, which a
//! private island (say `test.`) does not have, and then every answer in the zone is bogus:
//! all mail to it would be deferred. Unbound accepts a KSK alone (RFC 4035 §5: a trust
//! anchor authenticates the DNSKEY set it signs). Until hickory does too, `check-config`
//! asks each anchored zone for its keys and names the ones the file is missing.

use std::time::Duration;

use hickory_resolver::proto::dnssec::rdata::{DNSKEY, DNSSECRData};
use hickory_resolver::proto::rr::{LowerName, Name, RData, RecordType};

use super::hickory::{HickoryResolver, ResolverSetup, SetupError, load_anchors};

/// What the check found for one anchored zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneKeys {
    /// Every published key is in the file.
    Complete { zone: String },
    /// The zone publishes keys (key tag, flags) that the file does not list.
    Missing { zone: String, keys: Vec<(u16, u16)> },
    /// The keys could not be fetched (no answer, timeout): not checked.
    Unchecked { zone: String, why: String },
}

impl ZoneKeys {
    /// A problem for `check-config`, or `None`.
    pub fn problem(&self) -> Option<String> {
        let ZoneKeys::Missing { zone, keys } = self else {
            return None;
        };
        let listed: Vec<String> = keys
            .iter()
            .map(|(tag, flags)| format!("{tag} (flags {flags})"))
            .collect();
        Some(format!(
            "the anchor for {zone} lacks the zone's DNSKEY {}: for a zone below the root every key of its DNSKEY set must be listed (a KSK or DS alone is not enough: every answer in {zone} would be bogus and its mail deferred); add them, e.g. from `dig +noall +answer {zone} DNSKEY`",
            listed.join(", ")
        ))
    }
}

/// Checks every zone below the root that `setup`'s anchor file names; empty when the file
/// anchors the root (or there is no file). Each zone's keys are asked without validation,
/// bounded by `timeout`.
pub async fn check_anchored_zones(
    setup: &ResolverSetup,
    timeout: Duration,
) -> Result<Vec<ZoneKeys>, SetupError> {
    let Some(path) = &setup.trust_anchor_file else {
        return Ok(Vec::new());
    };
    let (anchors, islands) = load_anchors(path)?;
    let Some(zones) = islands else {
        return Ok(Vec::new());
    };
    let plain = HickoryResolver::build(setup, None)?;
    let mut found = Vec::with_capacity(zones.len());
    for zone in zones {
        let name = zone.fqdn();
        let shown = zone.as_str().to_string();
        let lookup =
            tokio::time::timeout(timeout, plain.lookup(name.as_str(), RecordType::DNSKEY)).await;
        let lookup = match lookup {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                found.push(ZoneKeys::Unchecked {
                    zone: shown,
                    why: e.to_string(),
                });
                continue;
            }
            Err(_) => {
                found.push(ZoneKeys::Unchecked {
                    zone: shown,
                    why: "timed out".into(),
                });
                continue;
            }
        };
        let owner = match Name::from_ascii(name.as_str()) {
            Ok(n) => LowerName::from(n),
            Err(e) => {
                found.push(ZoneKeys::Unchecked {
                    zone: shown,
                    why: e.to_string(),
                });
                continue;
            }
        };
        let published: Vec<&DNSKEY> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k),
                _ => None,
            })
            .collect();
        found.push(compare(shown, &published, |k| {
            anchors.contains_with_name(k.public_key(), &owner)
        }));
    }
    Ok(found)
}

/// The published keys that are not anchors.
fn compare(zone: String, published: &[&DNSKEY], anchored: impl Fn(&DNSKEY) -> bool) -> ZoneKeys {
    if published.is_empty() {
        return ZoneKeys::Unchecked {
            zone,
            why: "no DNSKEY records published".into(),
        };
    }
    let keys: Vec<(u16, u16)> = published
        .iter()
        .filter(|k| !anchored(k))
        .map(|k| (k.calculate_key_tag().unwrap_or(0), k.flags()))
        .collect();
    if keys.is_empty() {
        ZoneKeys::Complete { zone }
    } else {
        ZoneKeys::Missing { zone, keys }
    }
}
