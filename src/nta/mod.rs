//! NTA 7516 specifics: the TXT record and the DNS facts gathered about a recipient domain.

pub(crate) mod facts;
pub mod record;

/// Today's date in UTC: the day NTA record validity is judged against.
///
/// UTC rather than Europe/Amsterdam: the record's months carry no zone, and the difference
/// only matters for the first or last one or two hours of a validity window.
pub fn today_utc() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

/// Serialises a date as [`fmt_date`] writes it: the one date format of every JSON document
/// (`check`, `self-check`, `explain`, `nta-record`, the record's validity).
pub fn ser_date<S: serde::Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt_date(*d))
}

/// A date as `YYYY-MM-DD` (ISO 8601 calendar date, the form NTA records' months extend).
pub fn fmt_date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
