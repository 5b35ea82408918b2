//! Timestamps as AWS Step Functions reads them: Choice `Timestamp*` operators,
//! `IsTimestamp`, and Wait `Timestamp` / `TimestampPath`.
//!
//! The accepted form is RFC 3339 with an uppercase `T` and an uppercase `Z` (or a
//! numeric offset), as the ASL specification requires:
//!
//! ```text
//! YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
//! ```
//!
//! AWS reports a rejected value as not "a valid ISO-8601 extended offset date-time",
//! the wording of `java.time`'s `ISO_OFFSET_DATE_TIME`, so where RFC 3339 and that
//! parser differ we follow the parser: at most nine fraction digits, no leap second
//! (`:60`), offsets within ±18:00. Seconds stay mandatory and `t`/`z` stay rejected,
//! because the ASL specification and the AWS documentation say so.

use chrono::{DateTime, Utc};

/// A point in time with nanosecond precision, ordered by the instant it denotes
/// (the offset it was written with is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z; compared first, so field order matters.
    secs: i64,
    /// Nanoseconds within that second, `0..1_000_000_000`.
    nanos: u32,
}

/// Parses a timestamp the way AWS Step Functions does; `None` if AWS would reject it.
///
/// Why by fixed positions: Choice rules parse their variable's text at every evaluation,
/// and the cursor with a bounds check per byte plus chrono's calendar took ~300
/// instructions per timestamp (choice-heavy: 2.7 % of an execution).
pub fn parse(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS` and at least one byte of offset.
    let head: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    let d = |i: usize| -> Option<u32> {
        let c = head[i].wrapping_sub(b'0');
        (c < 10).then_some(u32::from(c))
    };
    if head[4] != b'-'
        || head[7] != b'-'
        || head[10] != b'T'
        || head[13] != b':'
        || head[16] != b':'
    {
        return None;
    }
    let year = d(0)? * 1000 + d(1)? * 100 + d(2)? * 10 + d(3)?;
    let month = d(5)? * 10 + d(6)?;
    let day = d(8)? * 10 + d(9)?;
    let hour = d(11)? * 10 + d(12)?;
    let minute = d(14)? * 10 + d(15)?;
    let second = d(17)? * 10 + d(18)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Rejects month 13, April 31, February 29 outside leap years.
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }

    let mut r = Reader { b, i: 19 };
    let mut nanos = 0u32;
    if r.peek() == Some(b'.') {
        r.i += 1;
        let start = r.i;
        while r.peek().is_some_and(|c| c.is_ascii_digit()) {
            r.i += 1;
        }
        let n = r.i - start;
        if n == 0 || n > 9 {
            return None;
        }
        let frac = b[start..r.i]
            .iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0'));
        nanos = frac * 10u32.pow((9 - n) as u32);
    }

    // Offset east of UTC, in seconds.
    let offset = match r.next()? {
        b'Z' => 0,
        sign @ (b'+' | b'-') => {
            let oh = r.digits(2)?;
            r.byte(b':')?;
            let om = r.digits(2)?;
            if om > 59 || oh * 60 + om > 18 * 60 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if r.i != b.len() {
        return None;
    }

    let days = days_from_epoch(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset;
    Some(Timestamp { secs, nanos })
}

/// Days in `month` (1-12) of `year` in the proleptic Gregorian calendar.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date of years 0000-9999 (the
/// civil-from-days algorithm run backwards: years start in March, so the leap day ends a
/// year). Unsigned throughout, with the years moved up one 400-year era so that January
/// of year 0 stays positive: divisions by constants are then multiplications, where the
/// signed ones were divide instructions (~1 % of choice-heavy's time).
fn days_from_epoch(year: u32, month: u32, day: u32) -> i64 {
    const ERA_DAYS: i64 = 146_097;
    let y = year + 400 - u32::from(month <= 2);
    let era = y / 400;
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    i64::from(era) * ERA_DAYS + i64::from(day_of_era) - 719_468 - ERA_DAYS
}

impl Timestamp {
    /// The same instant as a chrono UTC date-time (for Wait deadlines and output).
    pub fn to_utc(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.secs, self.nanos)
            .expect("a parsed timestamp lies within years 0000-9999, inside chrono's range")
    }

    /// The instant a chrono UTC date-time denotes (e.g. the execution's clock).
    pub fn from_utc(t: DateTime<Utc>) -> Timestamp {
        Timestamp {
            secs: t.timestamp(),
            // chrono encodes a leap second as nanos >= 1e9; fold it into the second.
            nanos: t.timestamp_subsec_nanos().min(999_999_999),
        }
    }
}

/// A cursor over the timestamp's bytes.
struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn byte(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> i64 {
        parse(s).expect(s).to_utc().timestamp()
    }

    #[test]
    fn accepts_the_forms_aws_accepted_in_wait_states() {
        for ok in [
            "2016-03-14T01:59:00Z",
            "2016-03-14T01:59:00.000000Z",
            "2016-03-14T01:59:00.00Z",
            "2016-03-05T21:29:29.243167252Z",
            "2012-10-09T19:00:55Z",
        ] {
            assert!(parse(ok).is_some(), "{ok} should be accepted");
        }
    }

    #[test]
    fn rejects_the_forms_aws_rejected_in_wait_states() {
        for bad in [
            "2016-03-14T01:59:00.000000",
            "2016-03-14T01:59:00",
            "2016-13-05T21:29:29Z",
            "05-12-2016T21:29:29Z",
            "2016-12-05T25:29:29Z",
            "2016-12-05 21:29:29Z",
            "2012-10-09T19:00:55",
            "2023-02-24",
            "2023-02-24 12:15:56.832957",
            "",
            " ",
            "HelloWorld",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn numeric_offsets_denote_the_same_instant_in_utc() {
        assert_eq!(
            parse("2012-10-09T19:00:55+01:00"),
            parse("2012-10-09T18:00:55Z")
        );
        assert_eq!(
            parse("2012-10-09T19:00:55-02:30"),
            parse("2012-10-09T21:30:55Z")
        );
        assert_eq!(
            parse("2012-10-09T19:00:55-00:00"),
            parse("2012-10-09T19:00:55Z")
        );
    }

    #[test]
    fn lowercase_separators_are_rejected_as_the_spec_requires() {
        assert!(parse("2016-03-14t01:59:00Z").is_none());
        assert!(parse("2016-03-14T01:59:00z").is_none());
    }

    #[test]
    fn malformed_parts_are_rejected() {
        for bad in [
            "2016-03-14T01:59Z",               // seconds are required
            "2016-03-14T01:59:00.Z",           // a fraction needs a digit
            "2016-03-14T01:59:00.1234567890Z", // more than nanoseconds
            "2016-03-14T01:59:60Z",            // no leap seconds
            "2016-03-14T24:00:00Z",
            "2016-03-14T01:60:00Z",
            "2015-02-29T00:00:00Z",
            "2016-04-31T00:00:00Z",
            "2016-00-10T00:00:00Z",
            "2016-03-00T00:00:00Z",
            "2016-03-14T01:59:00+0100",
            "2016-03-14T01:59:00+01",
            "2016-03-14T01:59:00+19:00",
            "2016-03-14T01:59:00+01:60",
            "2016-03-14T01:59:00Z ",
            " 2016-03-14T01:59:00Z",
            "+2016-03-14T01:59:00Z",
            "16-03-14T01:59:00Z",
            "2016-3-14T01:59:00Z",
            "２016-03-14T01:59:00Z",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} should be rejected");
        }
        assert!(parse("2016-02-29T00:00:00Z").is_some());
        assert!(parse("2016-03-14T01:59:00+18:00").is_some());
    }

    #[test]
    fn fraction_digits_scale_to_nanoseconds() {
        let t = parse("2016-03-14T01:59:00.5Z").unwrap().to_utc();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        let t = parse("2016-03-14T01:59:00.123456789Z").unwrap().to_utc();
        assert_eq!(t.timestamp_subsec_nanos(), 123_456_789);
    }

    #[test]
    fn timestamps_order_by_instant() {
        let a = parse("2012-10-09T19:00:55Z").unwrap();
        let b = parse("2012-10-09T19:00:56Z").unwrap();
        let c = parse("2012-10-09T19:00:55.000000001Z").unwrap();
        assert!(a < c && c < b);
        assert_eq!(parse("2012-10-09T19:00:55.000Z"), Some(a));
    }

    #[test]
    fn epoch_arithmetic_matches_chrono() {
        assert_eq!(secs("1970-01-01T00:00:00Z"), 0);
        assert_eq!(secs("2016-03-14T01:59:00Z"), 1_457_920_740);
        assert_eq!(secs("1969-12-31T23:59:59Z"), -1);
        assert_eq!(secs("0000-01-01T00:00:00Z"), -62_167_219_200);
        assert!(parse("9999-12-31T23:59:59.999999999-18:00").is_some());
    }

    #[test]
    fn round_trips_through_chrono() {
        let t = parse("2016-03-05T21:29:29.243167252+05:30").unwrap();
        assert_eq!(Timestamp::from_utc(t.to_utc()), t);
        assert_eq!(
            t.to_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2016-03-05T15:59:29.243167252Z"
        );
    }

    #[test]
    fn calendar_agrees_with_chrono_over_years_0000_to_9999() {
        use chrono::{Datelike, NaiveDate};
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in 0..=9999u32 {
            // Every day of the years around the edges and the epoch, the first and last
            // two days of every month elsewhere.
            let all = year < 5 || (1895..=2105).contains(&year) || year > 9994;
            for month in 1..=12u32 {
                for day in 1..=32u32 {
                    let near_edge = day <= 2 || day + 2 >= days_in_month(year, month);
                    if !all && !near_edge {
                        continue;
                    }
                    let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
                    let chrono = NaiveDate::from_ymd_opt(year as i32, month, day);
                    assert_eq!(parse(&text).is_some(), chrono.is_some(), "{text}");
                    if let Some(c) = chrono {
                        assert_eq!(c.year() as u32, year);
                        let days = (c - epoch).num_days();
                        assert_eq!(parse(&text).unwrap().secs, days * 86_400, "{text}");
                    }
                }
            }
        }
    }
}
