//! Dates for `before` / `after`: absolute times (in operands and in data), relative times
//! (operands only, measured from the context's `now`) and the year-less comparison used by
//! `ignore_year`.
//!
//! Absolute times are parsed by hand rather than with `time`'s format descriptions: data values
//! are parsed on every evaluation, and one small allocation-free scanner accepting the three
//! documented shapes is both faster and easier to reason about than trying formats in turn.

use std::cmp::Ordering;

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

/// The unit of a relative time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    fn from_char(c: char) -> Option<Unit> {
        Some(match c {
            's' => Unit::Seconds,
            'm' => Unit::Minutes,
            'h' => Unit::Hours,
            'd' => Unit::Days,
            'w' => Unit::Weeks,
            'M' => Unit::Months,
            'y' => Unit::Years,
            _ => return None,
        })
    }

    /// Length in seconds; months and years as their Gregorian averages (only used for the
    /// range check, never for arithmetic).
    fn approx_seconds(self) -> i64 {
        match self {
            Unit::Seconds => 1,
            Unit::Minutes => 60,
            Unit::Hours => 3_600,
            Unit::Days => 86_400,
            Unit::Weeks => 604_800,
            Unit::Months => 2_629_746,
            Unit::Years => 31_556_952,
        }
    }
}

/// A time relative to `now`: `"-30d"`, `"+1y"`, `"now"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Relative {
    amount: i64,
    unit: Unit,
}

/// How far a relative time may reach, so that adding it to any realistic `now` stays inside
/// the range `time` can represent.
const MAX_RELATIVE_SECONDS: i64 = 1_000 * 31_556_952;

impl Relative {
    /// The moment this relative time denotes; `None` only if it falls outside the
    /// representable range (then the comparison is false).
    pub(crate) fn apply(self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.unit {
            Unit::Months => add_months(now, self.amount),
            Unit::Years => add_months(now, self.amount.checked_mul(12)?),
            unit => now.checked_add(Duration::seconds(
                self.amount.checked_mul(unit.approx_seconds())?,
            )),
        }
    }
}

/// Calendar months: the day is clamped to the target month's length (Jan 31 + 1M = Feb 28/29),
/// the time of day and the offset are kept.
fn add_months(t: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    let index = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let mut day = t.day();
    loop {
        match Date::from_calendar_date(year, month, day) {
            Ok(date) => return Some(t.replace_date(date)),
            // Every month has at least 28 days; only the day can be out of range here.
            Err(_) if day > 28 => day -= 1,
            Err(_) => return None,
        }
    }
}

/// A date operand as written in a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateLiteral {
    Absolute(OffsetDateTime),
    Relative(Relative),
}

const DATE_FORMS: &str = "expected \"YYYY-MM-DD\", \"YYYY-MM-DD HH:MM:SS\", RFC 3339, \"now\", \
                          or a relative time like \"-30d\" or \"+1y\" (units s, m, h, d, w, M, y)";

/// Parses a date operand: `"now"`, a signed relative time, or an absolute time.
pub(crate) fn parse_date_literal(s: &str) -> Result<DateLiteral, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(DateLiteral::Relative(Relative {
            amount: 0,
            unit: Unit::Seconds,
        }));
    }
    if let Some(rest) = t.strip_prefix('+').or_else(|| t.strip_prefix('-')) {
        let negative = t.starts_with('-');
        let mut chars = rest.chars();
        let unit_char = chars.next_back();
        let digits = chars.as_str();
        let unit = unit_char.and_then(Unit::from_char);
        let (Some(unit), false, true) = (
            unit,
            digits.is_empty(),
            digits.bytes().all(|b| b.is_ascii_digit()),
        ) else {
            return Err(format!("invalid relative time {s:?}; expected a sign, a whole number and a unit, like \"-30d\" or \"+1y\" (units s, m, h, d, w, M, y)"));
        };
        let too_far = || format!("relative time {s:?} reaches further than 1000 years");
        if digits.len() > 12 {
            return Err(too_far());
        }
        let amount: i64 = digits.parse().map_err(|_| too_far())?;
        if amount.saturating_mul(unit.approx_seconds()) > MAX_RELATIVE_SECONDS {
            return Err(too_far());
        }
        let amount = if negative { -amount } else { amount };
        return Ok(DateLiteral::Relative(Relative { amount, unit }));
    }
    if let Some(t) = parse_absolute(t) {
        return Ok(DateLiteral::Absolute(t));
    }
    // Split off the last character, not the last byte: the operand may be any text ("5日").
    let mut chars = t.chars();
    let last = chars.next_back();
    let head = chars.as_str();
    let unsigned_relative = !head.is_empty()
        && head.bytes().all(|b| b.is_ascii_digit())
        && last.and_then(Unit::from_char).is_some();
    if unsigned_relative {
        return Err(format!(
            "invalid date {s:?}: a relative time needs a sign, \"+{t}\" (future) or \"-{t}\" (past)"
        ));
    }
    Err(format!("invalid date {s:?}; {DATE_FORMS}"))
}

/// Parses an absolute time: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fraction]]` (also with `T`),
/// each optionally followed by `Z` or an offset `±HH:MM` / `±HHMM`. Times without an offset are
/// UTC, as Copernica's timestamps are. Surrounding whitespace is ignored.
pub(crate) fn parse_absolute(s: &str) -> Option<OffsetDateTime> {
    let b = s.trim().as_bytes();
    let mut cur = Cursor { b, i: 0 };
    let year = cur.digits(4)?;
    cur.expect(b'-')?;
    let month = cur.digits(2)?;
    cur.expect(b'-')?;
    let day = cur.digits(2)?;
    let date = Date::from_calendar_date(
        i32::try_from(year).ok()?,
        Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    if cur.done() {
        return Some(date.midnight().assume_utc());
    }
    match cur.next()? {
        b' ' | b'T' | b't' => {}
        _ => return None,
    }
    let hour = cur.digits(2)?;
    cur.expect(b':')?;
    let minute = cur.digits(2)?;
    let mut second = 0;
    let mut nanos = 0;
    if cur.peek() == Some(b':') {
        cur.i += 1;
        second = cur.digits(2)?;
        if cur.peek() == Some(b'.') {
            cur.i += 1;
            let start = cur.i;
            while cur.peek().is_some_and(|c| c.is_ascii_digit()) {
                cur.i += 1;
            }
            let frac = &b[start..cur.i];
            if frac.is_empty() {
                return None;
            }
            // Keep nanosecond precision, drop anything finer.
            for k in 0..9 {
                nanos = nanos * 10 + frac.get(k).map_or(0, |d| u32::from(d - b'0'));
            }
        }
    }
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let offset = match cur.next() {
        None => UtcOffset::UTC,
        Some(b'Z' | b'z') => UtcOffset::UTC,
        Some(sign @ (b'+' | b'-')) => {
            let h = i8::try_from(cur.digits(2)?).ok()?;
            if cur.peek() == Some(b':') {
                cur.i += 1;
            }
            let m = i8::try_from(cur.digits(2)?).ok()?;
            let (h, m) = if sign == b'-' { (-h, -m) } else { (h, m) };
            UtcOffset::from_hms(h, m, 0).ok()?
        }
        Some(_) => return None,
    };
    if !cur.done() {
        return None;
    }
    Some(date.with_time(time).assume_offset(offset))
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(
            digits
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    }
}

/// Orders two moments by month, day and time of day (in UTC), ignoring the year: birthdays and
/// anniversaries. `None` when either moment has no UTC form `time` can represent (a date at the
/// edge of year 9999 with a negative offset); the comparison is then false.
pub(crate) fn cmp_ignoring_year(a: OffsetDateTime, b: OffsetDateTime) -> Option<Ordering> {
    let key = |t: OffsetDateTime| {
        let t = t.checked_to_offset(UtcOffset::UTC)?;
        Some((u8::from(t.month()), t.day(), t.time()))
    };
    Some(key(a)?.cmp(&key(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn abs(s: &str) -> OffsetDateTime {
        parse_absolute(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    fn rel(s: &str) -> Relative {
        match parse_date_literal(s) {
            Ok(DateLiteral::Relative(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(abs("2026-01-01"), datetime!(2026-01-01 0:00 UTC));
        assert_eq!(abs("2026-01-01 10:00:00"), datetime!(2026-01-01 10:00 UTC));
        assert_eq!(abs("2026-01-01T10:00"), datetime!(2026-01-01 10:00 UTC));
        assert_eq!(abs("2026-01-01T10:00:00Z"), datetime!(2026-01-01 10:00 UTC));
        assert_eq!(
            abs("2026-01-01T10:00:00+01:00"),
            datetime!(2026-01-01 09:00 UTC)
        );
        assert_eq!(
            abs("2026-01-01T10:00:00-0230"),
            datetime!(2026-01-01 12:30 UTC)
        );
        assert_eq!(
            abs("2026-01-01T10:00:00.25Z"),
            datetime!(2026-01-01 10:00:00.25 UTC)
        );
        assert_eq!(abs(" 2026-01-01 "), datetime!(2026-01-01 0:00 UTC));
    }

    #[test]
    fn bad_absolute_forms() {
        for s in [
            "",
            "2026",
            "2026-1-1",
            "2026-02-30",
            "2026-13-01",
            "2026-01-01 25:00:00",
            "2026-01-01X10:00",
            "2026-01-01 10:00:00 junk",
            "2026-01-01T10:00:00.Z",
            "2026-01-01T10:00:00+1",
            "01-01-2026",
            "yesterday",
        ] {
            assert_eq!(parse_absolute(s), None, "{s:?}");
        }
    }

    #[test]
    fn relative_forms_and_arithmetic() {
        let now = datetime!(2026-03-31 12:00 UTC);
        assert_eq!(rel("now").apply(now), Some(now));
        assert_eq!(
            rel("-30d").apply(now),
            Some(datetime!(2026-03-01 12:00 UTC))
        );
        assert_eq!(
            rel("+90s").apply(now),
            Some(datetime!(2026-03-31 12:01:30 UTC))
        );
        assert_eq!(
            rel("+15m").apply(now),
            Some(datetime!(2026-03-31 12:15 UTC))
        );
        assert_eq!(rel("-2h").apply(now), Some(datetime!(2026-03-31 10:00 UTC)));
        assert_eq!(rel("+1w").apply(now), Some(datetime!(2026-04-07 12:00 UTC)));
        // Month arithmetic clamps the day.
        assert_eq!(rel("-1M").apply(now), Some(datetime!(2026-02-28 12:00 UTC)));
        assert_eq!(
            rel("+11M").apply(now),
            Some(datetime!(2027-02-28 12:00 UTC))
        );
        assert_eq!(rel("-3M").apply(now), Some(datetime!(2025-12-31 12:00 UTC)));
        assert_eq!(rel("+1y").apply(now), Some(datetime!(2027-03-31 12:00 UTC)));
        let leap = datetime!(2024-02-29 08:00 UTC);
        assert_eq!(
            rel("+1y").apply(leap),
            Some(datetime!(2025-02-28 08:00 UTC))
        );
        assert_eq!(
            rel("+4y").apply(leap),
            Some(datetime!(2028-02-29 08:00 UTC))
        );
    }

    #[test]
    fn bad_relative_forms() {
        for (s, fragment) in [
            ("-30", "invalid relative time"),
            ("+d", "invalid relative time"),
            ("-30x", "invalid relative time"),
            ("-3.5d", "invalid relative time"),
            ("+1001y", "further than 1000 years"),
            ("-99999999999999d", "further than 1000 years"),
            ("30d", "needs a sign"),
            ("tomorrow", "invalid date"),
        ] {
            let err = parse_date_literal(s).expect_err(s);
            assert!(err.contains(fragment), "{s}: {err}");
        }
        assert!(parse_date_literal("+1000y").is_ok());
    }

    #[test]
    fn year_is_ignored_but_time_is_not() {
        let birthday = abs("1990-05-01");
        assert_eq!(
            cmp_ignoring_year(birthday, abs("2026-05-01")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp_ignoring_year(birthday, abs("2026-05-01 10:00:00")),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp_ignoring_year(birthday, abs("2026-04-30")),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp_ignoring_year(abs("2000-12-31"), abs("1999-01-01")),
            Some(Ordering::Greater)
        );
        // No UTC form: the comparison is false rather than a panic.
        assert_eq!(
            cmp_ignoring_year(abs("9999-12-31T23:59:59-23:59"), birthday),
            None
        );
    }
}
