//! The NTA 7516 DNS TXT record at the apex of a recipient domain.
//!
//! Two syntaxes are in the wild (the first from Cryptshare's and Bastion's NTA 7516 DNS
//! documentation, the second from SmartLockr's 2019 prototype):
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
        #[serde(serialize_with = "crate::nta::ser_date")]
        starts: Date,
    },
    /// `days_left` is 0 on the last valid day.
    Valid { days_left: i64 },
    Expired {
        #[serde(serialize_with = "crate::nta::ser_date")]
        ended: Date,
    },
}

impl NtaRecord {
    /// The first day of the start month: `startdate` names the month validity begins.
    pub fn first_valid_day(&self) -> Date {
        self.start.first_day()
    }

    /// The last day of the end month: `enddate` names the last month of validity.
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
    /// tried once, at its best position. Empty means "use the MX hosts", as the record's
    /// definition says.
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
mod tests;
