//! Durations written with a unit: `"500ms"`, `"5s"`, `"2m"`, `"1h"`, `"30d"`.

use std::time::Duration;

const UNITS: &str = "ms, s, m, h or d";

/// Parses a whole number followed by a unit (`ms`, `s`, `m`, `h`, `d` = 24 h; spaces between are
/// allowed). The unit is required because a bare `5` is ambiguous (seconds? milliseconds?).
/// Zero is accepted here; whether zero makes sense is the caller's decision. Values too
/// large for a `Duration` are an error, never a panic.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let unit = unit.trim_start();
    if number.is_empty() {
        return Err(format!(
            "{s:?} is not a duration; expected a whole number with a unit ({UNITS}), e.g. \"5s\""
        ));
    }
    if unit.starts_with(['.', ',']) {
        return Err(format!(
            "{s:?}: fractions are not supported; use a smaller unit, e.g. \"1500ms\""
        ));
    }
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => {
            return Err(format!(
                "{s:?} has no unit; add one of {UNITS}, e.g. \"{number}s\""
            ));
        }
        other => return Err(format!("{s:?}: unknown unit {other:?}; use {UNITS}")),
    };
    // `number` is all ASCII digits, so parsing can only fail by overflow.
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(millis_per_unit))
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration(" 10 s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects() {
        for bad in [
            "", "5", "s", "-5s", "+5s", "5x", "5S", "5 sec", "1.5s", "5s5", "ms5", "5h 3m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("1.5s").unwrap_err().contains("1500ms"));
    }

    #[test]
    fn overflow_is_an_error() {
        let e = parse_duration("99999999999999999999h").unwrap_err();
        assert!(e.contains("too large"), "{e}");
        assert!(parse_duration("18446744073709551615h").is_err());
        assert!(parse_duration(&"9".repeat(10_000)).is_err());
        assert_eq!(
            parse_duration("18446744073709551615ms"),
            Ok(Duration::from_millis(u64::MAX))
        );
    }
}
