//! The NTA 7516 checks of `self-check`: DNSSEC on the apex, the record itself, its
//! validity window and the delivery targets it names.

use super::{Check, EXPIRY_WARNING_DAYS, Status};
use crate::nta::facts::{Facts, txt_records};
use crate::nta::fmt_date;
use crate::nta::record::{self, Selection, Syntax, Validity};
use crate::tools::check::{self as report, DomainReport};

/// The peer's-view criterion `id` of the `check` report, which these checks refine.
fn criterion<'a>(r: &'a DomainReport, id: &str) -> Option<&'a report::Criterion> {
    r.criteria.iter().find(|c| c.id == id)
}

fn title_of(r: &DomainReport, id: &str, fallback: &'static str) -> &'static str {
    criterion(r, id).map_or(fallback, |c| c.title)
}

fn detail_of(r: &DomainReport, id: &str) -> String {
    criterion(r, id).map_or_else(String::new, |c| c.detail.clone())
}

pub(super) fn dnssec_check(facts: &Facts, r: &DomainReport) -> Check {
    let (result, detail) = match &facts.txt {
        Err(e) => (Status::of_error(e), format!("TXT lookup failed: {e}")),
        Ok(a) if a.is_secure() => (Status::Pass, "secure".to_string()),
        Ok(a) => (
            Status::Fail,
            format!(
                "{}: the zone is not signed or its DS is missing at the parent; peers ignore an unsigned NTA record",
                a.dnssec()
            ),
        ),
    };
    Check {
        id: "dnssec",
        title: title_of(r, "dnssec_txt", "DNSSEC on the domain's TXT records"),
        result,
        detail,
        hint: None,
    }
}

pub(super) fn nta_checks(facts: &Facts, r: &DomainReport) -> [Check; 2] {
    let record_title = title_of(r, "nta_record", "NTA 7516 record present and well-formed");
    let validity_title = "NTA 7516 record valid, not expiring within 30 days";
    if let Err(e) = &facts.txt {
        let detail = format!("TXT lookup failed: {e}");
        return [
            Check {
                id: "nta_record",
                title: record_title,
                result: Status::of_error(e),
                detail: detail.clone(),
                hint: None,
            },
            Check {
                id: "nta_validity",
                title: validity_title,
                result: Status::Skipped,
                detail: "-".into(),
                hint: None,
            },
        ];
    }
    let hint = "generate one with `nta7516-milter nta-record`";
    let (record_result, record_detail, validity) = match record::select(txt_records(&facts.txt)) {
        Selection::Found(rec) => {
            let (res, det) = if rec.syntax == Syntax::Legacy2019 {
                (
                    Status::Warn,
                    format!(
                        "{} — the 2019 syntax; publish the current v=NTA7516-1 form ({hint})",
                        detail_of(r, "nta_record")
                    ),
                )
            } else {
                (Status::Pass, detail_of(r, "nta_record"))
            };
            (res, det, Some(validity_check(&rec, facts.today)))
        }
        Selection::Absent => (
            Status::Fail,
            format!(
                "no v=NTA7516 record at the apex: peers do not treat the domain as an NTA 7516 party; {hint}"
            ),
            None,
        ),
        Selection::Malformed { error, .. } => {
            (Status::Fail, format!("malformed: {error}; {hint}"), None)
        }
        Selection::Conflicting { records } => (
            Status::Fail,
            format!(
                "{} different NTA 7516 records: peers ignore them all; keep exactly one",
                records.len()
            ),
            None,
        ),
    };
    let (validity_result, validity_detail) = validity.unwrap_or((Status::Skipped, "-".into()));
    [
        Check {
            id: "nta_record",
            title: record_title,
            result: record_result,
            detail: record_detail,
            hint: None,
        },
        Check {
            id: "nta_validity",
            title: validity_title,
            result: validity_result,
            detail: validity_detail,
            hint: None,
        },
    ]
}

pub(super) fn validity_check(rec: &record::NtaRecord, today: time::Date) -> (Status, String) {
    let window = format!(
        "{} to {}",
        fmt_date(rec.first_valid_day()),
        fmt_date(rec.last_valid_day())
    );
    match rec.validity(today) {
        Validity::Valid { days_left } if days_left <= EXPIRY_WARNING_DAYS => (
            Status::Warn,
            format!(
                "{window}: expires in {days_left} days; renew the certification and publish a later enddate before then"
            ),
        ),
        Validity::Valid { days_left } => {
            (Status::Pass, format!("{window} ({days_left} days left)"))
        }
        Validity::NotYetValid { starts } => (
            Status::Fail,
            format!(
                "{window}: not valid before {}; peers do not deliver directly until then",
                fmt_date(starts)
            ),
        ),
        Validity::Expired { ended } => (
            Status::Fail,
            format!(
                "{window}: expired on {}; peers no longer deliver directly",
                fmt_date(ended)
            ),
        ),
    }
}

pub(super) fn via_ntamx(facts: &Facts) -> bool {
    matches!(record::select(txt_records(&facts.txt)), Selection::Found(r) if !r.targets().is_empty())
}

pub(super) fn targets_check(facts: &Facts, r: &DomainReport) -> Check {
    let title = title_of(r, "targets", "Delivery targets (ntamx or MX) DNSSEC-secure");
    let (result, detail) = match (&facts.mx, via_ntamx(facts)) {
        (Err(e), false) => (Status::of_error(e), format!("MX lookup failed: {e}")),
        _ => {
            let ok = criterion(r, "targets").is_some_and(|c| c.result == "pass");
            (
                if ok { Status::Pass } else { Status::Fail },
                detail_of(r, "targets"),
            )
        }
    };
    Check {
        id: "targets",
        title,
        result,
        detail,
        hint: None,
    }
}
