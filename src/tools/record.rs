//! `nta-record`: writes the current-syntax NTA 7516 record
//! (`v=NTA7516-1;startdate=YYYY-MM;enddate=YYYY-MM;provider=…;ntamx=PREF host`, the
//! template of Cryptshare's NTA 7516 DNS setup documentation) from checked input, and proves it with the project's own
//! parser: the printed text parses back to exactly the record that was asked for.

use time::Date;

use crate::domain::DomainName;
use crate::nta::record::{self, MAX_NTAMX, NtaMx, NtaRecord, Syntax, Validity, YearMonth};

/// What the operator asked for, as typed.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub provider: String,
    pub start: String,
    pub end: String,
    /// Each `"PREFERENCE host"`.
    pub ntamx: Vec<String>,
}

/// A record ready to publish.
#[derive(Debug, Clone)]
pub struct Built {
    /// Parsed back from [`Built::text`]; `raw` is that text.
    pub record: NtaRecord,
    /// Things worth knowing that do not make the record invalid.
    pub notes: Vec<String>,
}

impl Built {
    pub fn text(&self) -> &str {
        &self.record.raw
    }

    /// The zone-file entry at the apex of `domain`.
    pub fn zone_line(&self, domain: &DomainName) -> String {
        super::zone_file_txt(domain.as_str(), self.text())
    }
}

fn month(flag: &str, value: &str) -> Result<YearMonth, String> {
    YearMonth::parse(value.trim()).ok_or_else(|| {
        format!(
            "{flag} {value:?}: expected a month as YYYY-MM (four-digit year, month 01-12), e.g. 2025-06"
        )
    })
}

fn provider(value: &str) -> Result<&str, String> {
    let p = value.trim();
    if p.is_empty() {
        return Err("--provider is empty; give the name of your NTA 7516 service (e.g. the vendor's product name)".into());
    }
    if p.contains(';') {
        return Err(format!(
            "--provider {value:?}: must not contain ';', which separates the fields of the record"
        ));
    }
    if p.chars().any(char::is_control) {
        return Err(format!(
            "--provider {value:?}: must not contain control characters (tabs, line breaks)"
        ));
    }
    Ok(p)
}

/// Checks everything and renders the record; every error names the offending flag.
pub fn build(req: &Request, today: Date) -> Result<Built, String> {
    let start = month("--start", &req.start)?;
    let end = month("--end", &req.end)?;
    if end < start {
        return Err(format!(
            "--end {end} is before --start {start}: the record would never be valid"
        ));
    }
    let provider = provider(&req.provider)?;
    if req.ntamx.len() > MAX_NTAMX {
        return Err(format!(
            "{} --ntamx entries; a record may name at most {MAX_NTAMX} (receivers ignore records with more)",
            req.ntamx.len()
        ));
    }

    // Each ntamx through the project's parser, so the tool accepts exactly what receivers do.
    let mut ntamx: Vec<NtaMx> = Vec::new();
    for value in &req.ntamx {
        let example = "e.g. --ntamx \"10 nta7516-mx.zkh.nl\"";
        if value.contains(';') {
            return Err(format!(
                "--ntamx {value:?}: must not contain ';'; repeat --ntamx for each host ({example})"
            ));
        }
        let probe = format!("v=NTA7516-1;startdate={start};enddate={end};provider=x;ntamx={value}");
        let parsed = record::parse(&probe).map_err(|e| format!("--ntamx {value:?}: {e}"))?;
        let [mx] = parsed.ntamx.as_slice() else {
            return Err(format!(
                "--ntamx {value:?}: expected one preference and one host ({example})"
            ));
        };
        if mx.preference.is_none() {
            return Err(format!(
                "--ntamx {value:?}: a preference is required before the host ({example})"
            ));
        }
        if ntamx.iter().any(|m| m.host == mx.host) {
            return Err(format!("--ntamx: host {} is named twice", mx.host));
        }
        ntamx.push(mx.clone());
    }
    // Lowest preference first, as the record's definition asks; equal ones keep their order.
    ntamx.sort_by_key(|m| m.preference);

    let mut text = format!("v=NTA7516-1;startdate={start};enddate={end};provider={provider}");
    for m in &ntamx {
        text.push_str(&format!(
            ";ntamx={} {}",
            m.preference.unwrap_or_default(),
            m.host
        ));
    }

    // The round trip: what receivers will parse must be what was asked for.
    let record = record::parse(&text)
        .map_err(|e| format!("internal error: the record {text:?} does not parse: {e}"))?;
    let same = record.syntax == Syntax::Current
        && record.start == start
        && record.end == end
        && record.provider == provider
        && record.ntamx == ntamx
        && record::select(std::slice::from_ref(&text)) == record::Selection::Found(record.clone());
    if !same {
        return Err(format!(
            "internal error: the record {text:?} parses back differently: {record:?}"
        ));
    }

    let mut notes = Vec::new();
    match record.validity(today) {
        Validity::Valid { days_left } if days_left <= super::selfcheck::EXPIRY_WARNING_DAYS => notes.push(format!(
            "this record expires in {days_left} days (last valid day {})",
            crate::nta::fmt_date(record.last_valid_day())
        )),
        Validity::Valid { .. } => {}
        Validity::NotYetValid { starts } => notes.push(format!(
            "this record is not valid before {}; until then senders treat the domain as not NTA 7516 compliant",
            crate::nta::fmt_date(starts)
        )),
        Validity::Expired { ended } => notes.push(format!(
            "this record already expired on {}; senders will treat the domain as not NTA 7516 compliant",
            crate::nta::fmt_date(ended)
        )),
    }
    if record.ntamx.is_empty() {
        notes.push("no --ntamx: senders deliver NTA 7516 mail to your MX hosts, which then need DNSSEC and DANE (TLSA 3 1 1)".into());
    }
    Ok(Built { record, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 03 - 15);

    fn req(provider: &str, start: &str, end: &str, ntamx: &[&str]) -> Request {
        Request {
            provider: provider.into(),
            start: start.into(),
            end: end.into(),
            ntamx: ntamx.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn valid_records() {
        let b = build(&req("Zorgmail", "2025-06", "2027-05", &[]), TODAY).unwrap();
        assert_eq!(
            b.text(),
            "v=NTA7516-1;startdate=2025-06;enddate=2027-05;provider=Zorgmail"
        );
        let b = build(
            &req(
                " Cryptshare ",
                "2025-06",
                "2027-05",
                &["20 B.zkh.nl.", "10 a.zkh.nl"],
            ),
            TODAY,
        )
        .unwrap();
        assert_eq!(
            b.text(),
            "v=NTA7516-1;startdate=2025-06;enddate=2027-05;provider=Cryptshare;ntamx=10 a.zkh.nl;ntamx=20 b.zkh.nl"
        );
        assert_eq!(b.record.targets()[0].as_str(), "a.zkh.nl");
        let d = DomainName::parse("zkh.nl").unwrap();
        assert_eq!(b.zone_line(&d), format!("zkh.nl. IN TXT \"{}\"", b.text()));
        // Ten is the limit, and a long record is split for the zone file.
        let hosts: Vec<String> = (0..MAX_NTAMX)
            .map(|i| format!("{i} h{i}-{}.nta7516-relay.zkh.nl", "h".repeat(20)))
            .collect();
        let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let b = build(&req("P", "2025-06", "2027-05", &hosts), TODAY).unwrap();
        assert!(b.text().len() > 255);
        assert!(
            b.zone_line(&d).contains("\"\n        \""),
            "{}",
            b.zone_line(&d)
        );
    }

    #[test]
    fn notes() {
        let b = build(&req("P", "2024-01", "2025-01", &["10 a.zkh.nl"]), TODAY).unwrap();
        assert!(
            b.notes[0].contains("already expired on 2025-01-31"),
            "{:?}",
            b.notes
        );
        let b = build(&req("P", "2026-01", "2026-03", &["10 a.zkh.nl"]), TODAY).unwrap();
        assert!(b.notes[0].contains("expires in 16 days"), "{:?}", b.notes);
        let b = build(&req("P", "2026-05", "2027-03", &[]), TODAY).unwrap();
        assert!(b.notes[0].contains("not valid before 2026-05-01"));
        assert!(b.notes[1].contains("no --ntamx"));
    }

    #[test]
    fn invalid_input_is_refused_with_the_flag_named() {
        let ten: Vec<String> = (0..=MAX_NTAMX)
            .map(|i| format!("{i} h{i}.zkh.nl"))
            .collect();
        let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
        let cases: Vec<(Request, &str)> = vec![
            (req("P", "2025-13", "2027-05", &[]), "--start"),
            (req("P", "2025-6", "2027-05", &[]), "--start"),
            (req("P", "2025-06", "27-05", &[]), "--end"),
            (req("P", "2025-06", "", &[]), "--end"),
            (req("P", "2025-06", "2025-05", &[]), "before --start"),
            (req("", "2025-06", "2027-05", &[]), "--provider is empty"),
            (
                req("A;ntamx=10 evil.example", "2025-06", "2027-05", &[]),
                "';'",
            ),
            (req("A\nB", "2025-06", "2027-05", &[]), "control"),
            (
                req("P", "2025-06", "2027-05", &["mx.zkh.nl"]),
                "preference is required",
            ),
            (
                req("P", "2025-06", "2027-05", &["x mx.zkh.nl"]),
                "invalid preference",
            ),
            (
                req("P", "2025-06", "2027-05", &["70000 mx.zkh.nl"]),
                "invalid preference",
            ),
            (
                req("P", "2025-06", "2027-05", &["10 mx..zkh.nl"]),
                "invalid host name",
            ),
            (
                req("P", "2025-06", "2027-05", &["10 192.0.2.1"]),
                "not a host name",
            ),
            (req("P", "2025-06", "2027-05", &["10 a b"]), "neither"),
            (
                req("P", "2025-06", "2027-05", &["10 a.nl;ntamx=20 b.nl"]),
                "';'",
            ),
            (
                req("P", "2025-06", "2027-05", &["10 a.nl", "20 A.nl."]),
                "twice",
            ),
            (req("P", "2025-06", "2027-05", &ten), "at most 10"),
        ];
        for (r, want) in cases {
            let e = build(&r, TODAY).unwrap_err();
            assert!(e.contains(want), "{r:?}: {e}");
        }
    }
}
