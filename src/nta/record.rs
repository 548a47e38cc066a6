//! The NTA 7516 DNS TXT record at the apex of a recipient domain.
//!
//! Two syntaxes are in the wild (reference/nta7516.md §1.2, §1.3):
//!
//! * current: `v=NTA7516-1;startdate=2019-06;enddate=2023-07;provider=Cryptshare;ntamx=10 mx.example.nl`
//! * 2019 draft: `v=NTA7516;version:2019-06;expire:2019-10;provider:smartlockr;ntamx:mx.mail.de`
//!
//! No public text pins the grammar down and vendor prose contradicts itself (`ntamx=` vs
//! `;ntamx:`), so the parser is liberal in form (either separator, either key name,
//! whitespace, key case, unknown keys) and strict in substance (dates, provider, hosts,
//! duplicates). A record that fails here makes the domain not compliant, which sends mail
//! down the alternative secure route rather than to a host an attacker could have named.
//!
//! Everything here is pure and bounded: the input length is capped before any work, each
//! field is looked at once, and [`select`] examines a bounded number of TXT records.

use std::collections::HashSet;
use std::fmt;

use serde::{Serialize, Serializer};
use time::{Date, Month};

use crate::domain::{DomainError, DomainName};

/// Longest record text accepted. A TXT RRset that fits a DNS message (even over TCP) is
/// far shorter than 64 KiB, and a genuine NTA record is under 300 bytes; 4 KiB leaves room
/// for many `ntamx` entries while keeping a hostile record from costing real work.
pub const MAX_RECORD_LEN: usize = 4096;

/// Most `ntamx` entries accepted. Each target costs TLSA (and address) lookups later, so a
/// record must not be able to fan those out without limit.
pub const MAX_NTAMX: usize = 10;

/// Most apex TXT records [`select`] examines. The apex is shared with SPF and an
/// open-ended number of site-verification records, and the zone belongs to someone else:
/// the bound keeps one domain from costing unbounded parsing. A thousand records is the
/// size of the stress input the gateway is tested against, and far more than any real
/// zone publishes.
pub const MAX_TXT_RECORDS: usize = 1000;

/// The version tag every candidate starts with (compared case-insensitively).
const NTA_PREFIX: &str = "NTA7516";
const CURRENT_VERSION: &str = "NTA7516-1";
const LEGACY_VERSION: &str = "NTA7516";

/// Values quoted in error messages are cut to this many characters: an operator needs to
/// recognise the value, not read 4 KiB of it in a log line.
const MAX_SHOWN_CHARS: usize = 80;

/// Which of the two published forms a record was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Syntax {
    /// `v=NTA7516-1;startdate=..;enddate=..;provider=..;ntamx=PREF host`
    Current,
    /// `v=NTA7516;version:YYYY-MM;expire:YYYY-MM;provider:..;ntamx:host` (SmartLockr, 2019)
    Legacy2019,
}

/// A calendar month as written in `startdate`/`enddate` (`YYYY-MM`).
///
/// Records produced by [`parse`] always hold a year in 1000..=9999 and a month in 1..=12.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
pub struct YearMonth {
    pub year: i32,
    pub month: u8,
}

impl YearMonth {
    /// `None` unless the year has four digits and the month is 1..=12, the range [`parse`]
    /// accepts.
    pub fn new(year: i32, month: u8) -> Option<Self> {
        ((1000..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    /// Strict `YYYY-MM`: exactly four digits, a dash, two digits. A lenient reading
    /// (`2024-6`, `24-06`, `2024/06`) would guess at a certification date, and a wrong
    /// guess silently moves the validity window.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<i32> {
            b[r].iter().try_fold(0i32, |acc, &c| {
                c.is_ascii_digit().then(|| acc * 10 + i32::from(c - b'0'))
            })
        };
        let year = digits(0..4)?;
        let month = u8::try_from(digits(5..7)?).ok()?;
        Self::new(year, month)
    }

    /// The first day of the month. Hand-built values outside the range [`YearMonth::new`]
    /// accepts are clamped rather than panicking, since the fields are public.
    pub fn first_day(self) -> Date {
        let (year, month) = self.clamped();
        Date::from_calendar_date(year, month, 1).unwrap_or(Date::MIN)
    }

    /// The last day of the month, February included (leap years per the Gregorian rule).
    pub fn last_day(self) -> Date {
        let (year, month) = self.clamped();
        Date::from_calendar_date(year, month, month.length(year)).unwrap_or(Date::MAX)
    }

    fn clamped(self) -> (i32, Month) {
        // ±9999 is representable whether or not `time`'s large-dates feature is on.
        let year = self.year.clamp(-9999, 9999);
        let month = Month::try_from(self.month.clamp(1, 12)).unwrap_or(Month::January);
        (year, month)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One `ntamx` entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NtaMx {
    /// `None` for the bare-host form (Bastion, 2019 syntax).
    pub preference: Option<u16>,
    pub host: DomainName,
}

/// A successfully parsed NTA 7516 record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NtaRecord {
    pub syntax: Syntax,
    pub start: YearMonth,
    pub end: YearMonth,
    /// Trimmed, non-empty, free of control characters (it ends up in headers and logs).
    pub provider: String,
    /// In written order, duplicates kept; use [`NtaRecord::targets`] for delivery order.
    pub ntamx: Vec<NtaMx>,
    /// The TXT text exactly as given to [`parse`], for evidence and audit.
    pub raw: String,
}

/// Where a given day lies relative to a record's validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Validity {
    NotYetValid {
        #[serde(serialize_with = "serialize_date")]
        starts: Date,
    },
    /// `days_left` is 0 on the last valid day.
    Valid { days_left: i64 },
    Expired {
        #[serde(serialize_with = "serialize_date")]
        ended: Date,
    },
}

impl NtaRecord {
    /// The first day of the start month (reference §1.2).
    pub fn first_valid_day(&self) -> Date {
        self.start.first_day()
    }

    /// The last day of the end month (reference §1.2).
    pub fn last_valid_day(&self) -> Date {
        self.end.last_day()
    }

    /// Whole-day comparison: the window includes both its first and its last day. Time of
    /// day and time zone are the caller's concern (it picks `today`).
    pub fn validity(&self, today: Date) -> Validity {
        let first = self.first_valid_day();
        let last = self.last_valid_day();
        if today < first {
            Validity::NotYetValid { starts: first }
        } else if today > last {
            Validity::Expired { ended: last }
        } else {
            Validity::Valid {
                days_left: (last - today).whole_days(),
            }
        }
    }

    /// The `ntamx` hosts in delivery order: lowest preference first; entries without a
    /// preference after all entries with one, in written order; a host named twice is
    /// tried once, at its best position. Empty means "use the MX hosts" (reference §1.2).
    pub fn targets(&self) -> Vec<DomainName> {
        let mut ordered: Vec<&NtaMx> = self.ntamx.iter().collect();
        // Stable sort, so equal preferences keep the order the domain owner wrote.
        ordered.sort_by_key(|mx| match mx.preference {
            Some(p) => (0u8, p),
            None => (1u8, 0),
        });
        let mut seen = HashSet::with_capacity(ordered.len());
        ordered
            .into_iter()
            .filter(|mx| seen.insert(&mx.host))
            .map(|mx| mx.host.clone())
            .collect()
    }

    /// Equality of everything that affects the decision. Two TXT strings that differ only
    /// in spacing, separators or key case say the same thing and must not count as a
    /// conflict.
    fn same_content(&self, other: &Self) -> bool {
        self.syntax == other.syntax
            && self.start == other.start
            && self.end == other.end
            && self.provider == other.provider
            && self.ntamx == other.ntamx
    }
}

fn serialize_date<S: Serializer>(date: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Why a TXT string that claims to be an NTA 7516 record was rejected.
///
/// Values quoted in the variants are already prepared for display (control characters
/// escaped, cut to a readable length): the messages go straight into logs and SMTP replies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {len} bytes long; at most {MAX_RECORD_LEN} bytes are accepted")]
    TooLong { len: usize },
    #[error("record is empty")]
    Empty,
    #[error("record does not start with v=NTA7516 (first field: {first})")]
    MissingVersion { first: String },
    #[error("the v= field must be the first field, but the record starts with {first}")]
    VersionNotFirst { first: String },
    #[error("v={version} is not an NTA 7516 record")]
    NotNta { version: String },
    #[error(
        "unsupported NTA 7516 record version {version} (supported: NTA7516-1 and the 2019 form NTA7516)"
    )]
    UnsupportedVersion { version: String },
    #[error("field {field} is not of the form key=value or key:value")]
    NoSeparator { field: String },
    #[error("field {field} has an empty value")]
    EmptyValue { field: String },
    #[error("field {field} appears more than once")]
    DuplicateField { field: &'static str },
    #[error("required field {field} is missing")]
    MissingField { field: &'static str },
    #[error("{field} {value} is not a valid YYYY-MM month")]
    BadMonth { field: String, value: String },
    #[error("enddate {end} is before startdate {start}")]
    EndBeforeStart { start: YearMonth, end: YearMonth },
    #[error("provider {value} contains control characters")]
    BadProvider { value: String },
    #[error("ntamx {value} is neither \"PREFERENCE host\" nor \"host\"")]
    BadNtamxSyntax { value: String },
    #[error("ntamx {value} has an invalid preference (expected a number from 0 to 65535)")]
    BadNtamxPreference { value: String },
    #[error("ntamx {value} has an invalid host name: {reason}")]
    BadNtamxHost { value: String, reason: DomainError },
    #[error("ntamx {value} names a number or IP address, not a host name")]
    NtamxNotHostName { value: String },
    #[error("more than {MAX_NTAMX} ntamx entries")]
    TooManyNtamx,
}

impl Serialize for RecordError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The canonical field names used in errors; the alternative key is named too so the
/// operator knows either spelling counts.
const FIELD_V: &str = "v";
const FIELD_START: &str = "startdate (or version)";
const FIELD_END: &str = "enddate (or expire)";
const FIELD_PROVIDER: &str = "provider";

/// Prepares a value from the record for an error message. The zone belongs to someone
/// else, so control characters (log and header injection) and bidirectional overrides
/// (text that reads differently from what it is) are escaped.
fn shown(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_SHOWN_CHARS) {
        let bidi = matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        );
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    V,
    Start,
    End,
    Provider,
    Ntamx,
    Unknown,
}

fn classify(key: &str) -> Key {
    let is = |name: &str| key.eq_ignore_ascii_case(name);
    if is("v") {
        Key::V
    } else if is("startdate") || is("version") {
        Key::Start
    } else if is("enddate") || is("expire") {
        Key::End
    } else if is("provider") {
        Key::Provider
    } else if is("ntamx") {
        Key::Ntamx
    } else {
        Key::Unknown
    }
}

/// Splits at the first `=` or `:`, whichever comes first: both separators occur in both
/// syntaxes in practice, and values may themselves contain either (`ntamx:10 host`).
fn split_field(field: &str) -> Option<(&str, &str)> {
    let at = field.find(['=', ':'])?;
    Some((field[..at].trim(), field[at + 1..].trim()))
}

/// True when `txt` claims to be an NTA 7516 record, however malformed: such a record must
/// be reported as broken rather than silently treated as absent.
pub fn is_nta_candidate(txt: &str) -> bool {
    const TAG: &str = "v=NTA7516";
    txt.trim_start()
        .as_bytes()
        .get(..TAG.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(TAG.as_bytes()))
}

/// Parses one TXT record (its character-strings already joined).
pub fn parse(txt: &str) -> Result<NtaRecord, RecordError> {
    if txt.len() > MAX_RECORD_LEN {
        return Err(RecordError::TooLong { len: txt.len() });
    }
    let mut fields = txt.split(';').map(str::trim).filter(|f| !f.is_empty());
    let first = fields.next().ok_or(RecordError::Empty)?;
    let syntax = parse_version(first, fields.clone())?;

    let mut start: Option<YearMonth> = None;
    let mut end: Option<YearMonth> = None;
    let mut provider: Option<&str> = None;
    let mut ntamx: Vec<NtaMx> = Vec::new();

    for field in fields {
        let (key, value) = split_field(field).ok_or_else(|| RecordError::NoSeparator {
            field: shown(field),
        })?;
        let kind = classify(key);
        if kind == Key::Unknown {
            // Forward compatibility: later revisions may add keys.
            continue;
        }
        if value.is_empty() {
            return Err(RecordError::EmptyValue {
                field: shown(&key.to_ascii_lowercase()),
            });
        }
        match kind {
            Key::V => return Err(RecordError::DuplicateField { field: FIELD_V }),
            Key::Start => set_month(&mut start, FIELD_START, key, value)?,
            Key::End => set_month(&mut end, FIELD_END, key, value)?,
            Key::Provider => {
                if provider.is_some() {
                    return Err(RecordError::DuplicateField {
                        field: FIELD_PROVIDER,
                    });
                }
                // The provider name is copied into headers and audit lines; a control
                // character there is either an attack or a broken zone.
                if value.chars().any(char::is_control) {
                    return Err(RecordError::BadProvider {
                        value: shown(value),
                    });
                }
                provider = Some(value);
            }
            Key::Ntamx => {
                if ntamx.len() == MAX_NTAMX {
                    return Err(RecordError::TooManyNtamx);
                }
                ntamx.push(parse_ntamx(value)?);
            }
            Key::Unknown => unreachable!("skipped above"),
        }
    }

    let start = start.ok_or(RecordError::MissingField { field: FIELD_START })?;
    let end = end.ok_or(RecordError::MissingField { field: FIELD_END })?;
    let provider = provider.ok_or(RecordError::MissingField {
        field: FIELD_PROVIDER,
    })?;
    if end < start {
        return Err(RecordError::EndBeforeStart { start, end });
    }
    Ok(NtaRecord {
        syntax,
        start,
        end,
        provider: provider.to_string(),
        ntamx,
        raw: txt.to_string(),
    })
}

fn parse_version<'a>(
    first: &str,
    mut rest: impl Iterator<Item = &'a str>,
) -> Result<Syntax, RecordError> {
    let Some((key, value)) = split_field(first).filter(|(k, _)| classify(k) == Key::V) else {
        // Telling "v is somewhere else" from "there is no v" points the operator at the
        // actual mistake; the scan is one more linear pass over a bounded string.
        let misplaced = rest.any(|f| split_field(f).is_some_and(|(k, _)| classify(k) == Key::V));
        let first = shown(first);
        return Err(if misplaced {
            RecordError::VersionNotFirst { first }
        } else {
            RecordError::MissingVersion { first }
        });
    };
    if value.is_empty() {
        return Err(RecordError::EmptyValue {
            field: shown(&key.to_ascii_lowercase()),
        });
    }
    // Version values are compared case-insensitively because `is_nta_candidate` is: a
    // record selected as a candidate must not then fail on letter case alone.
    if value.eq_ignore_ascii_case(CURRENT_VERSION) {
        Ok(Syntax::Current)
    } else if value.eq_ignore_ascii_case(LEGACY_VERSION) {
        Ok(Syntax::Legacy2019)
    } else if value
        .as_bytes()
        .get(..NTA_PREFIX.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(NTA_PREFIX.as_bytes()))
    {
        Err(RecordError::UnsupportedVersion {
            version: shown(value),
        })
    } else {
        Err(RecordError::NotNta {
            version: shown(value),
        })
    }
}

fn set_month(
    slot: &mut Option<YearMonth>,
    field: &'static str,
    key: &str,
    value: &str,
) -> Result<(), RecordError> {
    if slot.is_some() {
        return Err(RecordError::DuplicateField { field });
    }
    let month = YearMonth::parse(value).ok_or_else(|| RecordError::BadMonth {
        field: shown(&key.to_ascii_lowercase()),
        value: shown(value),
    })?;
    *slot = Some(month);
    Ok(())
}

fn parse_ntamx(value: &str) -> Result<NtaMx, RecordError> {
    let mut parts = value.split_ascii_whitespace();
    let (preference, host) = match (parts.next(), parts.next(), parts.next()) {
        (Some(host), None, None) => (None, host),
        (Some(pref), Some(host), None) => {
            // Digits only: `u16::from_str` would also take a leading `+`.
            let pref = if pref.bytes().all(|b| b.is_ascii_digit()) {
                pref.parse::<u16>().ok()
            } else {
                None
            };
            let pref = pref.ok_or_else(|| RecordError::BadNtamxPreference {
                value: shown(value),
            })?;
            (Some(pref), host)
        }
        _ => {
            return Err(RecordError::BadNtamxSyntax {
                value: shown(value),
            });
        }
    };
    let host = DomainName::parse(host).map_err(|reason| RecordError::BadNtamxHost {
        value: shown(value),
        reason,
    })?;
    // RFC 3696 §2: a top-level label is never all digits. Such a "host" is an IP literal
    // or a preference without a host, and `_25._tcp.<it>` could never hold a TLSA record.
    let last_label = host.as_str().rsplit('.').next().unwrap_or_default();
    if last_label.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RecordError::NtamxNotHostName {
            value: shown(value),
        });
    }
    Ok(NtaMx { preference, host })
}

/// The outcome of looking for the NTA 7516 record among a domain's apex TXT records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Selection {
    /// No TXT record claims to be an NTA 7516 record.
    Absent,
    Found(NtaRecord),
    /// Exactly one record claims to be an NTA 7516 record and it does not parse.
    Malformed {
        raw: String,
        error: RecordError,
    },
    /// Several records claim to be NTA 7516 records and do not say the same thing (or
    /// some do not parse): the domain has no single statement to rely on. Distinct texts,
    /// in the order given.
    Conflicting {
        records: Vec<String>,
    },
}

/// Picks the NTA 7516 record from all TXT records at a domain's apex (each already joined
/// from its character-strings). Only the first [`MAX_TXT_RECORDS`] are examined.
pub fn select(txts: &[String]) -> Selection {
    let mut seen: HashSet<&str> = HashSet::new();
    let candidates: Vec<&str> = txts
        .iter()
        .take(MAX_TXT_RECORDS)
        .map(String::as_str)
        .filter(|t| is_nta_candidate(t))
        // Resolvers may hand back the same RR twice (or the zone lists it twice); the
        // same text cannot conflict with itself.
        .filter(|t| seen.insert(t))
        .collect();

    match candidates.as_slice() {
        [] => Selection::Absent,
        [only] => match parse(only) {
            Ok(record) => Selection::Found(record),
            Err(error) => Selection::Malformed {
                raw: (*only).to_string(),
                error,
            },
        },
        [first, rest @ ..] => {
            let conflicting = || Selection::Conflicting {
                records: candidates.iter().map(|t| (*t).to_string()).collect(),
            };
            let Ok(record) = parse(first) else {
                return conflicting();
            };
            for other in rest {
                match parse(other) {
                    Ok(other) if other.same_content(&record) => {}
                    _ => return conflicting(),
                }
            }
            Selection::Found(record)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn dn(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    fn ym(year: i32, month: u8) -> YearMonth {
        YearMonth::new(year, month).unwrap()
    }

    fn err(txt: &str) -> RecordError {
        parse(txt).expect_err(txt)
    }

    fn hosts(record: &NtaRecord) -> Vec<String> {
        record.targets().iter().map(|h| h.to_string()).collect()
    }

    const CRYPTSHARE: &str = "v=NTA7516-1;startdate=2019-06;enddate=2023-07;provider=Cryptshare;ntamx=10 nta7516-mx.myorganisation.nl";
    const BASTION: &str = "v=NTA7516-1;startdate=2024-01;enddate=2026-12;provider=Fenestrae;ntamx=nta7516.sdxmail-net.nta7516.services.sdxmail.net";
    const SMARTLOCKR: &str = "v=NTA7516;version:2019-06;expire:2019-10;provider:smartlockr;ntamx:mx.mail.de;ntamx:mx2.mail.de";
    const VALID: &str =
        "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=10 mx.example.nl";

    #[test]
    fn limits_are_pinned() {
        assert_eq!(MAX_RECORD_LEN, 4096);
        assert_eq!(MAX_NTAMX, 10);
        assert_eq!(MAX_TXT_RECORDS, 1000);
    }

    #[test]
    fn cryptshare_example() {
        let r = parse(CRYPTSHARE).unwrap();
        assert_eq!(r.syntax, Syntax::Current);
        assert_eq!(r.start, ym(2019, 6));
        assert_eq!(r.end, ym(2023, 7));
        assert_eq!(r.provider, "Cryptshare");
        assert_eq!(
            r.ntamx,
            vec![NtaMx {
                preference: Some(10),
                host: dn("nta7516-mx.myorganisation.nl"),
            }]
        );
        assert_eq!(r.raw, CRYPTSHARE);
        assert_eq!(r.first_valid_day(), date!(2019 - 06 - 01));
        assert_eq!(r.last_valid_day(), date!(2023 - 07 - 31));
        assert_eq!(hosts(&r), ["nta7516-mx.myorganisation.nl"]);
    }

    #[test]
    fn bastion_example_without_preference() {
        let r = parse(BASTION).unwrap();
        assert_eq!(r.provider, "Fenestrae");
        assert_eq!(r.ntamx.len(), 1);
        assert_eq!(r.ntamx[0].preference, None);
        assert_eq!(
            hosts(&r),
            ["nta7516.sdxmail-net.nta7516.services.sdxmail.net"]
        );
    }

    #[test]
    fn smartlockr_2019_example() {
        let r = parse(SMARTLOCKR).unwrap();
        assert_eq!(r.syntax, Syntax::Legacy2019);
        assert_eq!(r.start, ym(2019, 6));
        assert_eq!(r.end, ym(2019, 10));
        assert_eq!(r.provider, "smartlockr");
        assert_eq!(hosts(&r), ["mx.mail.de", "mx2.mail.de"]);
        assert_eq!(r.last_valid_day(), date!(2019 - 10 - 31));
    }

    #[test]
    fn no_ntamx_means_empty_targets() {
        let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X").unwrap();
        assert!(r.ntamx.is_empty());
        assert!(r.targets().is_empty());
    }

    #[test]
    fn separators_and_key_names_mix_freely() {
        let forms = [
            "v=NTA7516-1;startdate:2024-01;enddate=2025-12;provider:X;ntamx:10 mx.example.nl",
            "v=NTA7516-1;version=2024-01;expire=2025-12;provider=X;ntamx=10 mx.example.nl",
            "v=NTA7516-1;version:2024-01;enddate:2025-12;provider=X;ntamx=10 mx.example.nl",
        ];
        let expected = parse(VALID).unwrap();
        for form in forms {
            let r = parse(form).unwrap();
            assert!(r.same_content(&expected), "{form}");
        }
        let legacy = parse("v=NTA7516;startdate=2019-06;enddate=2019-10;provider=s").unwrap();
        assert_eq!(legacy.syntax, Syntax::Legacy2019);
        assert_eq!(legacy.end, ym(2019, 10));
    }

    #[test]
    fn whitespace_case_and_trailing_separators() {
        let txt = "  V = nta7516-1 ;  STARTDATE = 2024-01 ;\tEndDate: 2025-12 ; Provider = Some Provider B.V. ; NTAMX =  10   MX.Example.NL.  ;;; ";
        let r = parse(txt).unwrap();
        assert_eq!(r.syntax, Syntax::Current);
        assert_eq!(r.start, ym(2024, 1));
        assert_eq!(r.end, ym(2025, 12));
        assert_eq!(r.provider, "Some Provider B.V.");
        assert_eq!(r.ntamx[0].preference, Some(10));
        assert_eq!(r.ntamx[0].host, dn("mx.example.nl"));
        assert_eq!(r.raw, txt);
    }

    #[test]
    fn trailing_dot_hosts_and_tab_between_preference_and_host() {
        let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=5\tmx.example.nl.;ntamx=mx2.example.nl.").unwrap();
        assert_eq!(hosts(&r), ["mx.example.nl", "mx2.example.nl"]);
    }

    #[test]
    fn value_may_contain_separators() {
        let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=a=b:c").unwrap();
        assert_eq!(r.provider, "a=b:c");
    }

    #[test]
    fn unknown_keys_are_ignored_even_when_empty() {
        let r = parse("v=NTA7516-1;startdate=2024-01;foo=bar;enddate=2025-12;x-note=;provider=X;comment:hello world").unwrap();
        assert_eq!(r.provider, "X");
    }

    #[test]
    fn targets_order_by_preference_then_written_order() {
        let r = parse(
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;\
             ntamx=nopref-a.example;ntamx=20 b.example;ntamx=10 c.example;\
             ntamx=20 a.example;ntamx=nopref-b.example;ntamx=0 z.example",
        )
        .unwrap();
        assert_eq!(
            hosts(&r),
            [
                "z.example",
                "c.example",
                "b.example",
                "a.example",
                "nopref-a.example",
                "nopref-b.example"
            ]
        );
        // The written order is kept in `ntamx` itself.
        assert_eq!(r.ntamx[0].host, dn("nopref-a.example"));
    }

    #[test]
    fn targets_drop_duplicates_keeping_best_position() {
        let r = parse(
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;\
             ntamx=30 a.example;ntamx=10 b.example;ntamx=20 A.EXAMPLE.;ntamx=b.example;ntamx=40 c.example",
        )
        .unwrap();
        assert_eq!(r.ntamx.len(), 5);
        assert_eq!(hosts(&r), ["b.example", "a.example", "c.example"]);
    }

    #[test]
    fn preference_bounds() {
        let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=65535 a.example;ntamx=0 b.example;ntamx=007 c.example").unwrap();
        assert_eq!(
            r.ntamx.iter().map(|m| m.preference).collect::<Vec<_>>(),
            [Some(65535), Some(0), Some(7)]
        );
        assert_eq!(hosts(&r), ["b.example", "c.example", "a.example"]);
    }

    #[test]
    fn max_ntamx_is_accepted_one_more_is_not() {
        let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X";
        let mut txt = base.to_string();
        for i in 0..MAX_NTAMX {
            txt.push_str(&format!(";ntamx={i} mx{i}.example.nl"));
        }
        assert_eq!(parse(&txt).unwrap().ntamx.len(), MAX_NTAMX);
        txt.push_str(";ntamx=99 extra.example.nl");
        assert_eq!(err(&txt), RecordError::TooManyNtamx);
        assert_eq!(err(&txt).to_string(), "more than 10 ntamx entries");
    }

    #[test]
    fn record_length_limit() {
        let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;";
        let mut txt = base.to_string();
        txt.push_str(&"x".repeat(MAX_RECORD_LEN - base.len() - 2));
        txt.push_str("=y");
        assert_eq!(txt.len(), MAX_RECORD_LEN);
        assert!(parse(&txt).is_ok());
        txt.push(' ');
        assert_eq!(
            err(&txt),
            RecordError::TooLong {
                len: MAX_RECORD_LEN + 1
            }
        );
        // Checked before anything else: even an otherwise empty record.
        assert_eq!(
            err(&";".repeat(100_000)),
            RecordError::TooLong { len: 100_000 }
        );
    }

    #[test]
    fn long_values_from_multi_string_txt() {
        // A TXT character-string holds 255 bytes; joined records can carry longer values.
        let provider = "P".repeat(300);
        let r = parse(&format!(
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider={provider}"
        ))
        .unwrap();
        assert_eq!(r.provider, provider);

        let label = "a".repeat(255);
        let e = err(&format!(
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=10 {label}.example"
        ));
        assert!(matches!(e, RecordError::BadNtamxHost { .. }), "{e:?}");
        // The message quotes a readable prefix, not the whole value.
        assert!(e.to_string().len() < 300, "{e}");
        assert!(e.to_string().contains('…'));
    }

    #[test]
    fn empty_and_separator_only() {
        assert_eq!(err(""), RecordError::Empty);
        assert_eq!(err("   "), RecordError::Empty);
        assert_eq!(err(";;;;"), RecordError::Empty);
        assert_eq!(err(" ; ; ;"), RecordError::Empty);
    }

    #[test]
    fn missing_or_misplaced_version() {
        assert_eq!(
            err("startdate=2024-01;enddate=2025-12;provider=X"),
            RecordError::MissingVersion {
                first: "startdate=2024-01".into()
            }
        );
        assert_eq!(
            err("provider=X;v=NTA7516-1;startdate=2024-01;enddate=2025-12"),
            RecordError::VersionNotFirst {
                first: "provider=X".into()
            }
        );
        assert!(matches!(
            err("v spf1 include:x"),
            RecordError::MissingVersion { .. }
        ));
        assert_eq!(
            err("v=spf1 -all"),
            RecordError::NotNta {
                version: "spf1 -all".into()
            }
        );
        assert_eq!(
            err("v=;startdate=2024-01"),
            RecordError::EmptyValue { field: "v".into() }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;v=NTA7516-1;enddate=2025-12;provider=X"),
            RecordError::DuplicateField { field: "v" }
        );
    }

    #[test]
    fn unsupported_versions() {
        for v in [
            "NTA7516-2",
            "nta7516-0",
            "NTA75160",
            "NTA7516-1.1",
            "NTA7516-",
        ] {
            assert_eq!(
                err(&format!(
                    "v={v};startdate=2024-01;enddate=2025-12;provider=X"
                )),
                RecordError::UnsupportedVersion { version: v.into() },
                "{v}"
            );
        }
        assert_eq!(
            err("v=NTA7516-2;startdate=2024-01").to_string(),
            "unsupported NTA 7516 record version NTA7516-2 (supported: NTA7516-1 and the 2019 form NTA7516)"
        );
    }

    #[test]
    fn missing_fields() {
        assert_eq!(
            err("v=NTA7516-1;enddate=2025-12;provider=X"),
            RecordError::MissingField {
                field: "startdate (or version)"
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;provider=X"),
            RecordError::MissingField {
                field: "enddate (or expire)"
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;ntamx=10 mx.example.nl"),
            RecordError::MissingField { field: "provider" }
        );
        assert_eq!(
            err("v=NTA7516-1").to_string(),
            "required field startdate (or version) is missing"
        );
    }

    #[test]
    fn empty_values() {
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider="),
            RecordError::EmptyValue {
                field: "provider".into()
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;Provider:   "),
            RecordError::EmptyValue {
                field: "provider".into()
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=;enddate=2025-12;provider=X"),
            RecordError::EmptyValue {
                field: "startdate".into()
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx="),
            RecordError::EmptyValue {
                field: "ntamx".into()
            }
        );
        assert_eq!(
            err("v=NTA7516-1;provider=").to_string(),
            "field provider has an empty value"
        );
    }

    #[test]
    fn duplicate_fields() {
        let cases = [
            (
                "v=NTA7516-1;startdate=2024-01;startdate=2024-02;enddate=2025-12;provider=X",
                "startdate (or version)",
            ),
            (
                "v=NTA7516-1;startdate=2024-01;version=2024-01;enddate=2025-12;provider=X",
                "startdate (or version)",
            ),
            (
                "v=NTA7516;version:2019-06;expire:2019-10;expire:2019-11;provider:s",
                "enddate (or expire)",
            ),
            (
                "v=NTA7516-1;startdate=2024-01;enddate=2025-12;expire=2025-12;provider=X",
                "enddate (or expire)",
            ),
            (
                "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;PROVIDER=X",
                "provider",
            ),
        ];
        for (txt, field) in cases {
            assert_eq!(err(txt), RecordError::DuplicateField { field }, "{txt}");
        }
    }

    #[test]
    fn bad_months() {
        for value in [
            "2025-13",
            "2025-00",
            "2025-1",
            "25-01",
            "2025/01",
            "2025-011",
            "0999-01",
            "202a-01",
            "2025-0x",
            "+025-01",
            "2025-1 ",
            "２０２５-01",
            "2025–01",
        ] {
            let txt = format!("v=NTA7516-1;startdate=2024-01;enddate={value};provider=X");
            let e = err(&txt);
            assert!(
                matches!(&e, RecordError::BadMonth { field, .. } if field == "enddate"),
                "{value:?}: {e:?}"
            );
        }
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-01;enddate=2025-13;provider=X").to_string(),
            "enddate 2025-13 is not a valid YYYY-MM month"
        );
        assert_eq!(
            err("v=NTA7516;version:2019-00;expire:2019-10;provider:s").to_string(),
            "version 2019-00 is not a valid YYYY-MM month"
        );
    }

    #[test]
    fn month_range_edges() {
        assert_eq!(YearMonth::parse("1000-01"), Some(ym(1000, 1)));
        assert_eq!(YearMonth::parse("9999-12"), Some(ym(9999, 12)));
        assert_eq!(YearMonth::parse("0000-01"), None);
        assert_eq!(YearMonth::new(2024, 0), None);
        assert_eq!(YearMonth::new(10000, 1), None);
        assert_eq!(ym(2024, 3).to_string(), "2024-03");
        assert_eq!(ym(9999, 12).last_day(), date!(9999 - 12 - 31));
    }

    #[test]
    fn hand_built_out_of_range_months_do_not_panic() {
        let odd = YearMonth {
            year: i32::MAX,
            month: 200,
        };
        assert_eq!(odd.last_day(), date!(9999 - 12 - 31));
        let odd = YearMonth {
            year: i32::MIN,
            month: 0,
        };
        assert_eq!(odd.first_day(), date!(-9999 - 01 - 01));
    }

    #[test]
    fn end_before_start() {
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-06;enddate=2024-05;provider=X"),
            RecordError::EndBeforeStart {
                start: ym(2024, 6),
                end: ym(2024, 5)
            }
        );
        assert_eq!(
            err("v=NTA7516-1;startdate=2024-06;enddate=2023-12;provider=X").to_string(),
            "enddate 2023-12 is before startdate 2024-06"
        );
        // A single-month window is fine.
        let r = parse("v=NTA7516-1;startdate=2024-06;enddate=2024-06;provider=X").unwrap();
        assert_eq!(r.first_valid_day(), date!(2024 - 06 - 01));
        assert_eq!(r.last_valid_day(), date!(2024 - 06 - 30));
    }

    #[test]
    fn provider_with_control_characters() {
        let e = err("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=Evil\r\nX-Header: 1");
        assert_eq!(
            e,
            RecordError::BadProvider {
                value: "Evil\\r\\nX-Header: 1".into()
            }
        );
        assert!(!e.to_string().contains('\n'));
        // Non-ASCII but printable is a legitimate company name.
        let r = parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=Zorg Één").unwrap();
        assert_eq!(r.provider, "Zorg Één");
    }

    #[test]
    fn bad_ntamx() {
        let base = "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;ntamx=";
        let pref = |v: &str| RecordError::BadNtamxPreference { value: v.into() };
        let syntax = |v: &str| RecordError::BadNtamxSyntax { value: v.into() };
        let numeric = |v: &str| RecordError::NtamxNotHostName { value: v.into() };
        let cases = [
            ("70000 mx.example.nl", pref("70000 mx.example.nl")),
            ("65536 mx.example.nl", pref("65536 mx.example.nl")),
            ("x mx.example.nl", pref("x mx.example.nl")),
            ("-1 mx.example.nl", pref("-1 mx.example.nl")),
            ("+10 mx.example.nl", pref("+10 mx.example.nl")),
            ("10 mx.example.nl extra", syntax("10 mx.example.nl extra")),
            ("10", numeric("10")),
            ("192.0.2.25", numeric("192.0.2.25")),
            ("10 192.0.2.25", numeric("10 192.0.2.25")),
        ];
        for (value, expected) in cases {
            assert_eq!(err(&format!("{base}{value}")), expected, "{value}");
        }
        for value in [
            "10 mx..example.nl",
            "mx_exa!mple",
            "10 mx/example.nl",
            "10 .",
            "10 [192.0.2.1]",
        ] {
            let e = err(&format!("{base}{value}"));
            assert!(
                matches!(e, RecordError::BadNtamxHost { .. }),
                "{value}: {e:?}"
            );
        }
        assert_eq!(
            err(&format!("{base}10 mx..example.nl")).to_string(),
            "ntamx 10 mx..example.nl has an invalid host name: empty label in \"mx..example.nl\""
        );
        assert_eq!(
            err(&format!("{base}70000 host.example")).to_string(),
            "ntamx 70000 host.example has an invalid preference (expected a number from 0 to 65535)"
        );
    }

    #[test]
    fn field_without_separator() {
        assert_eq!(
            err("v=NTA7516-1;2024-01;2025-12;Fenestrae"),
            RecordError::NoSeparator {
                field: "2024-01".into()
            }
        );
    }

    #[test]
    fn non_ascii_and_binary_garbage() {
        for txt in [
            "\u{0}\u{1}\u{fffd}\u{fffd}",
            "v=NTA7516-1;\u{fffd}\u{fffd}",
            "ǝʌ=NTA7516-1;startdate=2024-01",
            "v=ＮＴＡ7516-1;startdate=2024-01;enddate=2025-12;provider=X",
            "v=NTA7516-1\u{0};startdate=2024-01;enddate=2025-12;provider=X",
        ] {
            assert!(parse(txt).is_err(), "{txt:?}");
        }
        // Control characters are escaped in messages, never passed through.
        let e = err("\u{1b}[31mred;v=NTA7516-1");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
        // A non-ASCII unknown key is just an unknown key.
        let r =
            parse("v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider=X;sleutel€=ja").unwrap();
        assert_eq!(r.provider, "X");
        // Cutting a long multi-byte value for the message stays on character boundaries.
        let provider = format!("\u{7}{}", "é".repeat(500));
        let e = err(&format!(
            "v=NTA7516-1;startdate=2024-01;enddate=2025-12;provider={provider}"
        ));
        let RecordError::BadProvider { value } = e else {
            panic!("{e:?}")
        };
        assert!(value.starts_with("\\u{7}éé"), "{value}");
        assert!(value.ends_with("é…"), "{value}");
        // Bidirectional overrides are shown escaped.
        let e = err("x\u{202e}lmth.exe;v=NTA7516-1");
        assert!(e.to_string().contains("\\u{202e}"), "{e}");
    }

    #[test]
    fn validity_window_boundaries() {
        let r = parse("v=NTA7516-1;startdate=2024-02;enddate=2025-02;provider=X").unwrap();
        assert_eq!(r.first_valid_day(), date!(2024 - 02 - 01));
        assert_eq!(r.last_valid_day(), date!(2025 - 02 - 28));
        assert_eq!(
            r.validity(date!(2024 - 01 - 31)),
            Validity::NotYetValid {
                starts: date!(2024 - 02 - 01)
            }
        );
        assert_eq!(
            r.validity(date!(2024 - 02 - 01)),
            Validity::Valid { days_left: 393 }
        );
        assert_eq!(
            r.validity(date!(2025 - 02 - 27)),
            Validity::Valid { days_left: 1 }
        );
        assert_eq!(
            r.validity(date!(2025 - 02 - 28)),
            Validity::Valid { days_left: 0 }
        );
        assert_eq!(
            r.validity(date!(2025 - 03 - 01)),
            Validity::Expired {
                ended: date!(2025 - 02 - 28)
            }
        );
    }

    #[test]
    fn february_last_day_in_leap_years() {
        let last = |y: i32| ym(y, 2).last_day();
        assert_eq!(last(2024), date!(2024 - 02 - 29));
        assert_eq!(last(2023), date!(2023 - 02 - 28));
        assert_eq!(last(2000), date!(2000 - 02 - 29));
        assert_eq!(last(2100), date!(2100 - 02 - 28));

        let r = parse("v=NTA7516-1;startdate=2023-01;enddate=2024-02;provider=X").unwrap();
        assert_eq!(
            r.validity(date!(2024 - 02 - 29)),
            Validity::Valid { days_left: 0 }
        );
        assert_eq!(
            r.validity(date!(2024 - 03 - 01)),
            Validity::Expired {
                ended: date!(2024 - 02 - 29)
            }
        );
        assert_eq!(ym(2024, 12).last_day(), date!(2024 - 12 - 31));
        assert_eq!(ym(2024, 4).last_day(), date!(2024 - 04 - 30));
    }

    #[test]
    fn serialization_shapes() {
        let v = serde_json::to_value(Validity::Expired {
            ended: date!(2024 - 02 - 29),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"status": "expired", "ended": "2024-02-29"})
        );
        let v = serde_json::to_value(Validity::Valid { days_left: 3 }).unwrap();
        assert_eq!(v, serde_json::json!({"status": "valid", "days_left": 3}));
        let v = serde_json::to_value(err("v=NTA7516-2")).unwrap();
        assert_eq!(
            v,
            serde_json::json!(
                "unsupported NTA 7516 record version NTA7516-2 (supported: NTA7516-1 and the 2019 form NTA7516)"
            )
        );
        let v = serde_json::to_value(parse(CRYPTSHARE).unwrap()).unwrap();
        assert_eq!(v["syntax"], "current");
        assert_eq!(v["ntamx"][0]["host"], "nta7516-mx.myorganisation.nl");
        assert_eq!(v["ntamx"][0]["preference"], 10);
        let v = serde_json::to_value(select(&[SMARTLOCKR.to_string()])).unwrap();
        assert_eq!(v["status"], "found");
        assert_eq!(v["syntax"], "legacy2019");
        let v = serde_json::to_value(select(&["v=NTA7516-9".to_string()])).unwrap();
        assert_eq!(v["status"], "malformed");
        assert_eq!(v["raw"], "v=NTA7516-9");
    }

    #[test]
    fn candidates() {
        assert!(is_nta_candidate(CRYPTSHARE));
        assert!(is_nta_candidate(SMARTLOCKR));
        assert!(is_nta_candidate("  v=nta7516-garbage"));
        assert!(is_nta_candidate("V=NTA7516"));
        assert!(!is_nta_candidate("v=spf1 -all"));
        assert!(!is_nta_candidate("v=NTA751"));
        assert!(!is_nta_candidate(""));
        assert!(!is_nta_candidate("google-site-verification=v=NTA7516"));
        assert!(!is_nta_candidate("v=NTA75é6"));
        assert!(!is_nta_candidate("é"));
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    const SPF: &str = "v=spf1 include:spf.protection.outlook.com -all";
    const VERIFY: &str = "google-site-verification=abc123";

    #[test]
    fn select_absent() {
        assert_eq!(select(&[]), Selection::Absent);
        assert_eq!(select(&strings(&[SPF, VERIFY])), Selection::Absent);
    }

    #[test]
    fn select_one_among_others() {
        let sel = select(&strings(&[SPF, VERIFY, CRYPTSHARE, "MS=ms12345"]));
        assert_eq!(sel, Selection::Found(parse(CRYPTSHARE).unwrap()));
    }

    #[test]
    fn select_identical_duplicates_count_once() {
        let sel = select(&strings(&[SMARTLOCKR, SPF, SMARTLOCKR]));
        assert_eq!(sel, Selection::Found(parse(SMARTLOCKR).unwrap()));
        // Even a malformed one repeated is one malformed record, not a conflict.
        let sel = select(&strings(&["v=NTA7516-1;bad", "v=NTA7516-1;bad"]));
        assert!(matches!(sel, Selection::Malformed { .. }), "{sel:?}");
    }

    #[test]
    fn select_equivalent_texts_are_not_a_conflict() {
        let a = VALID;
        let b =
            "v=NTA7516-1; startdate:2024-01; enddate=2025-12; PROVIDER=X; ntamx=10 MX.example.nl.;";
        assert_eq!(
            select(&strings(&[a, SPF, b])),
            Selection::Found(parse(a).unwrap())
        );
    }

    #[test]
    fn select_conflicting() {
        let other =
            "v=NTA7516-1;startdate=2024-01;enddate=2026-12;provider=X;ntamx=10 mx.example.nl";
        assert_eq!(
            select(&strings(&[VALID, SPF, other, VALID])),
            Selection::Conflicting {
                records: strings(&[VALID, other])
            }
        );
        // A broken second claim still leaves the domain without one clear statement.
        let broken = "v=NTA7516-1;startdate=2024-13";
        assert_eq!(
            select(&strings(&[VALID, broken])),
            Selection::Conflicting {
                records: strings(&[VALID, broken])
            }
        );
        assert_eq!(
            select(&strings(&[broken, VALID])),
            Selection::Conflicting {
                records: strings(&[broken, VALID])
            }
        );
        // Same content in the two syntaxes is still two different statements.
        let legacy = "v=NTA7516;version:2024-01;expire:2025-12;provider:X;ntamx:10 mx.example.nl";
        assert!(matches!(
            select(&strings(&[VALID, legacy])),
            Selection::Conflicting { .. }
        ));
    }

    #[test]
    fn select_malformed() {
        let bad = "v=NTA7516-1;startdate=2024-01;enddate=2025-12";
        assert_eq!(
            select(&strings(&[SPF, bad])),
            Selection::Malformed {
                raw: bad.to_string(),
                error: RecordError::MissingField { field: "provider" },
            }
        );
    }

    #[test]
    fn select_examines_a_bounded_number_of_records() {
        let mut txts: Vec<String> = (0..MAX_TXT_RECORDS - 1)
            .map(|i| format!("verification-{i}={}", "x".repeat(200)))
            .collect();
        txts.push(VALID.to_string());
        // Beyond the bound: neither this conflict nor the flood behind it is looked at.
        txts.push("v=NTA7516-1;startdate=1999-01;enddate=1999-02;provider=Y".to_string());
        txts.extend((0..100_000).map(|i| format!("v=NTA7516-1;n={i}")));
        let started = std::time::Instant::now();
        assert_eq!(select(&txts), Selection::Found(parse(VALID).unwrap()));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        // A thousand distinct candidates that all parse the same: linear, not pairwise.
        let txts: Vec<String> = (0..MAX_TXT_RECORDS)
            .map(|i| format!("{VALID};note={i}"))
            .collect();
        let started = std::time::Instant::now();
        assert!(matches!(select(&txts), Selection::Found(_)));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
