//! Time formats of the contracts: RFC 3339 on topics, Copernica's `YYYY-MM-DD HH:MM:SS` (UTC) and
//! Unix seconds in webhook bodies.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// Now, in RFC 3339 with millisecond precision (UTC).
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Always three digits of fraction and `Z`, so the strings sort as the times do (RFC 3339's
/// usual formatter trims trailing zeros: `…:01.1Z` would sort after `…:01.12Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// Parses RFC 3339, or the `YYYY-MM-DD HH:MM:SS` form (taken as UTC), which some producers send.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t);
    }
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|p| p.assume_utc())
}

/// Copernica's body timestamp: `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn copernica(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = parse("2026-11-25T10:15:00+01:00").unwrap();
        assert_eq!(copernica(t), "2026-11-25 09:15:00");
        assert_eq!(t.unix_timestamp(), 1_795_598_100);
        assert_eq!(parse("2026-11-25 09:15:00").unwrap(), t);
        assert!(parse("yesterday").is_none());
        assert!(rfc3339(t).starts_with("2026-11-25T09:15:00"));
    }

    #[test]
    fn rfc3339_strings_sort_as_the_times_do() {
        let base = parse("2026-11-25T10:15:01Z").unwrap();
        let times: Vec<OffsetDateTime> = [0, 100, 120, 999, 1_000]
            .iter()
            .map(|ms| base + time::Duration::milliseconds(*ms))
            .collect();
        let strings: Vec<String> = times.iter().map(|t| rfc3339(*t)).collect();
        assert_eq!(strings[0], "2026-11-25T10:15:01.000Z");
        assert_eq!(strings[1], "2026-11-25T10:15:01.100Z");
        let mut sorted = strings.clone();
        sorted.sort();
        assert_eq!(sorted, strings, "string order is time order");
        for (s, t) in strings.iter().zip(&times) {
            assert_eq!(parse(s).unwrap(), *t, "round trip");
        }
    }
}
