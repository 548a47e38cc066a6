//! `audit show`: find one message's story (or one domain's, or one day's deferrals) in the
//! hash-chained audit log without grepping JSON by hand.
//!
//! A filter over the lines as written. Events of one message share its queue id, but only
//! `message_received` names the Message-ID and the addresses; so a line that matches by
//! Message-ID or address also selects the later lines of its queue id. This reads; it does
//! not check the chain (that is `audit verify`).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::lines::{Line, Lines, MAX_LINE_BYTES};

/// What to show; every criterion given must hold (an empty filter shows everything).
/// Also the options of `audit show`: the field comments are its `--help`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Message-ID (with or without <>); also selects the later lines of its queue id.
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
    /// Postfix queue id.
    #[arg(long, value_name = "ID")]
    pub queue_id: Option<String>,
    /// A sender or recipient address (case-insensitive).
    #[arg(long)]
    pub address: Option<String>,
    /// A recipient domain, or the domain of a sender or recipient.
    #[arg(long)]
    pub domain: Option<String>,
    /// Event type (repeatable): message_received, recipient_routed, deferred, ...
    #[arg(long = "event", value_name = "TYPE")]
    pub events: Vec<String>,
    /// From this time on: 2026-12-02 (UTC midnight) or 2026-12-02T08:00:00+01:00.
    #[arg(long, value_parser = parse_time)]
    pub since: Option<OffsetDateTime>,
    /// Before this time (same forms).
    #[arg(long, value_parser = parse_time)]
    pub until: Option<OffsetDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("{file}: {source}")]
    Unreadable { file: PathBuf, source: io::Error },
    #[error("{file}:{line}: not an audit record: {why}")]
    NotARecord {
        file: PathBuf,
        line: u64,
        why: String,
    },
}

/// A matching line: the record, and the line as written (for `--json`).
#[derive(Debug, Clone)]
pub struct Shown {
    pub record: Value,
    pub raw: String,
}

/// Objects of a line of one kind (`queue_id`, `message_id`, `sender`, `recipient`, ...).
fn objects<'a>(record: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    record["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |o| o["type"] == kind)
        .filter_map(|o| o["id"].as_str())
}

fn bare_message_id(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// Parses `--since`/`--until`: RFC 3339 (`2026-12-02T08:00:00Z`) or a UTC day
/// (`2026-12-02`, its start).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let day = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| {
            format!("{s:?}: expected a date (2026-12-02) or RFC 3339 time (2026-12-02T08:00:00Z)")
        })?;
    Ok(day.midnight().assume_utc())
}

/// The filter's state while reading: queue ids selected by an earlier line.
struct Matcher<'a> {
    filter: &'a Filter,
    queues: HashSet<String>,
}

impl Matcher<'_> {
    /// Whether the line's own objects match the message-identifying criteria.
    fn names_the_message(&self, r: &Value) -> bool {
        let f = self.filter;
        if let Some(want) = &f.message_id
            && !objects(r, "message_id").any(|m| bare_message_id(m) == bare_message_id(want))
        {
            return false;
        }
        if let Some(want) = &f.queue_id
            && !objects(r, "queue_id").any(|q| q == want)
        {
            return false;
        }
        if let Some(want) = &f.address {
            let mut addresses = objects(r, "sender").chain(objects(r, "recipient"));
            if !addresses.any(|a| a.eq_ignore_ascii_case(want)) {
                return false;
            }
        }
        if let Some(want) = &f.domain {
            let want = want.trim_end_matches('.');
            let in_domain = |a: &str| {
                a.rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(want))
            };
            let mut domains =
                objects(r, "recipient_domain").filter(|d| d.eq_ignore_ascii_case(want));
            let mut addresses = objects(r, "sender").chain(objects(r, "recipient"));
            if domains.next().is_none() && !addresses.any(in_domain) {
                return false;
            }
        }
        true
    }

    fn matches(&mut self, r: &Value) -> bool {
        let f = self.filter;
        let message_criteria = f.message_id.is_some()
            || f.queue_id.is_some()
            || f.address.is_some()
            || f.domain.is_some();
        let mut selected = !message_criteria || self.names_the_message(r);
        if message_criteria {
            if selected {
                // Later lines of the same queue id belong to this message.
                self.queues
                    .extend(objects(r, "queue_id").map(str::to_string));
            } else {
                selected = objects(r, "queue_id").any(|q| self.queues.contains(q));
            }
        }
        if !selected {
            return false;
        }
        if !f.events.is_empty() && !f.events.iter().any(|e| r["event_type"] == e.as_str()) {
            return false;
        }
        if f.since.is_some() || f.until.is_some() {
            let Some(t) = r["time"]
                .as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            else {
                return false;
            };
            if f.since.is_some_and(|s| t < s) || f.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        true
    }
}

/// Reads `paths` in order and returns the lines that match.
pub fn show(paths: &[PathBuf], filter: &Filter) -> Result<Vec<Shown>, ShowError> {
    let mut matcher = Matcher {
        filter,
        queues: HashSet::new(),
    };
    let mut out = Vec::new();
    for path in paths {
        read_file(path, &mut matcher, &mut out)?;
    }
    Ok(out)
}

fn read_file(
    path: &Path,
    matcher: &mut Matcher<'_>,
    out: &mut Vec<Shown>,
) -> Result<(), ShowError> {
    let unreadable = |source| ShowError::Unreadable {
        file: path.to_path_buf(),
        source,
    };
    let mut lines = Lines::new(BufReader::new(File::open(path).map_err(unreadable)?));
    while let Some((line_no, line)) = lines.next_line().map_err(unreadable)? {
        let not_a_record = |why: String| ShowError::NotARecord {
            file: path.to_path_buf(),
            line: line_no,
            why,
        };
        // Bounded like `audit verify`: a line longer than any record is refused; a last
        // line without its newline is shown (`verify` reports the truncation).
        let line = match line {
            Line::Complete(line) | Line::Unterminated(line) => line,
            Line::TooLong => {
                return Err(not_a_record(format!("longer than {MAX_LINE_BYTES} bytes")));
            }
        };
        if line.is_empty() {
            continue;
        }
        let record: Value =
            serde_json::from_slice(line).map_err(|e| not_a_record(e.to_string()))?;
        if matcher.matches(&record) {
            out.push(Shown {
                raw: String::from_utf8_lossy(line).into_owned(),
                record,
            });
        }
    }
    Ok(())
}

/// One line for people: time, event, outcome, then the event's own fields.
pub fn render(shown: &Shown) -> String {
    let r = &shown.record;
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let outcome = match r["outcome"].as_u64() {
        Some(0) => "ok",
        Some(4) => "minor-failure",
        Some(8) => "serious-failure",
        Some(12) => "major-failure",
        _ => "?",
    };
    let mut line = format!(
        "{} {} {}",
        text(&r["time"]),
        text(&r["event_type"]),
        outcome
    );
    if let Some(detail) = r["detail"].as_object() {
        for (k, v) in detail {
            if k == "event" {
                continue;
            }
            line.push_str(&format!(" {k}={}", text(v)));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    const RECEIVED: &str = r#"{"time":"2026-12-02T10:00:00Z","event_type":"message_received","outcome":0,"objects":[{"type":"queue_id","id":"Q1"},{"type":"message_id","id":"<m1@zkh.test>"},{"type":"sender","id":"arts@zkh.test"},{"type":"recipient","id":"p@Kliniek.example"}]}"#;
    const SIGNED: &str = r#"{"time":"2026-12-02T10:00:01Z","event_type":"signed","outcome":0,"objects":[{"type":"queue_id","id":"Q1"}]}"#;
    const OTHER: &str = r#"{"time":"2026-12-03T10:00:00Z","event_type":"signed","outcome":0,"objects":[{"type":"queue_id","id":"Q2"}]}"#;
    const ROUTED: &str = r#"{"time":"2026-12-02T10:00:02Z","event_type":"deferred","outcome":4,"objects":[{"type":"recipient_domain","id":"kliniek.example"}]}"#;

    fn run(filter: Filter) -> Vec<&'static str> {
        let mut m = Matcher {
            filter: &filter,
            queues: HashSet::new(),
        };
        [RECEIVED, SIGNED, OTHER, ROUTED]
            .into_iter()
            .filter(|l| m.matches(&rec(l)))
            .collect()
    }

    #[test]
    fn a_message_id_selects_the_later_lines_of_its_queue_id() {
        let got = run(Filter {
            message_id: Some("m1@zkh.test".into()),
            ..Filter::default()
        });
        assert_eq!(got, [RECEIVED, SIGNED]);
    }

    #[test]
    fn an_address_matches_case_insensitively() {
        let got = run(Filter {
            address: Some("P@kliniek.EXAMPLE".into()),
            ..Filter::default()
        });
        assert_eq!(got, [RECEIVED, SIGNED]);
    }

    #[test]
    fn a_domain_matches_routes_and_addresses() {
        let got = run(Filter {
            domain: Some("kliniek.example".into()),
            ..Filter::default()
        });
        assert_eq!(got, [RECEIVED, SIGNED, ROUTED]);
    }

    #[test]
    fn events_and_time_narrow_down() {
        let got = run(Filter {
            events: vec!["signed".into(), "deferred".into()],
            since: Some(parse_time("2026-12-02").unwrap()),
            until: Some(parse_time("2026-12-03").unwrap()),
            ..Filter::default()
        });
        assert_eq!(got, [SIGNED, ROUTED]);
    }

    #[test]
    fn an_empty_filter_shows_everything() {
        assert_eq!(run(Filter::default()).len(), 4);
    }

    #[test]
    fn times_are_days_or_rfc3339() {
        assert_eq!(
            parse_time("2026-12-02T08:00:00+01:00").unwrap(),
            parse_time("2026-12-02T07:00:00Z").unwrap()
        );
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn a_human_line_has_time_event_outcome_and_fields() {
        let shown = Shown {
            record: rec(
                r#"{"time":"T","event_type":"deferred","outcome":4,"detail":{"event":"deferred","stage":"rcpt_to","reason":"x y"}}"#,
            ),
            raw: String::new(),
        };
        assert_eq!(
            render(&shown),
            "T deferred minor-failure reason=x y stage=rcpt_to"
        );
    }
}
