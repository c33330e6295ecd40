//! Dates as the host hands them (days since 1970-01-01), the [`Date`] type studies
//! reason with, and the ISO 8601 weeks surveillance reports by.

use std::fmt;
use std::ops::{Add, Sub};

/// The day number (days since 1970-01-01) of a proleptic Gregorian date, or `None`
/// when the month or day does not exist (`2023-02-29`).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i32> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    i32::try_from(era * 146_097 + day_of_era - 719_468).ok()
}

/// The `(year, month, day)` of a day number.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let shifted = i64::from(days) + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let m = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * m + 2) / 5 + 1;
    let month = if m < 10 { m + 3 } else { m - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as i32, month as u32, d as u32)
}

fn is_leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The day number of `YYYY-MM-DD` (exactly that shape, a real calendar day).
pub fn parse_date(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &text[range];
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    days_from_civil(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_date(days: i32) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// 0 for Monday … 6 for Sunday.
pub fn weekday(days: i32) -> u32 {
    // 1970-01-01 was a Thursday.
    (i64::from(days) + 3).rem_euclid(7) as u32
}

/// The ISO 8601 week of a day number as `(week-based year, week 1..=53)`. Weeks
/// start on Monday and week 1 is the one holding the year's first Thursday (so
/// January 4th): 2024-12-30 is in 2025's week 1, 2021-01-03 in 2020's week 53.
pub fn iso_week_number(days: i32) -> (i32, u32) {
    let thursday = i64::from(days) - i64::from(weekday(days)) + 3;
    let thursday = thursday.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    let (year, _, _) = civil_from_days(thursday);
    let january_first = days_from_civil(year, 1, 1).unwrap_or(thursday);
    let week = (i64::from(thursday) - i64::from(january_first)) / 7 + 1;
    (year, week as u32)
}

/// The ISO 8601 week label of a day number, such as `2024-W03`: the form the
/// warehouse's synthetic ground truth and surveillance bulletins use.
pub fn iso_week(days: i32) -> String {
    let (year, week) = iso_week_number(days);
    format!("{year:04}-W{week:02}")
}

/// The Monday starting the ISO week of a day number.
pub fn week_start(days: i32) -> i32 {
    days - weekday(days) as i32
}

/// A calendar day, as a consultation's `date` ([`crate::Row::date`]): a day number
/// (days since 1970-01-01) with its calendar read on demand. Days subtract to a number
/// of days (`later - earlier <= 7`) and a number of days adds to a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The day `days` after 1970-01-01 (before it when negative).
    pub const fn from_days(days: i32) -> Date {
        Date(days)
    }

    /// The day of a proleptic Gregorian date, `None` when it does not exist
    /// (`2023-02-29`).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        days_from_civil(year, month, day).map(Date)
    }

    /// The day of `YYYY-MM-DD` (exactly that shape, a real calendar day).
    pub fn parse(text: &str) -> Option<Date> {
        parse_date(text).map(Date)
    }

    /// Days since 1970-01-01.
    pub const fn days(self) -> i32 {
        self.0
    }

    /// `(year, month 1..=12, day 1..=31)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// 1 for January … 12 for December.
    pub fn month(self) -> u32 {
        self.ymd().1
    }

    /// Day of the month, 1..=31.
    pub fn day(self) -> u32 {
        self.ymd().2
    }

    /// 0 for Monday … 6 for Sunday.
    pub fn weekday(self) -> u32 {
        weekday(self.0)
    }

    /// The ISO 8601 week as `(week-based year, week 1..=53)`: see [`iso_week_number`].
    pub fn iso_week(self) -> (i32, u32) {
        iso_week_number(self.0)
    }

    /// The Monday starting this day's ISO week.
    pub fn week_start(self) -> Date {
        Date(week_start(self.0))
    }
}

/// `YYYY-MM-DD`.
impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.ymd();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

/// The number of days from `earlier` to `self` (negative when `self` comes first).
impl Sub for Date {
    type Output = i32;

    fn sub(self, earlier: Date) -> i32 {
        self.0.saturating_sub(earlier.0)
    }
}

/// The day `days` later.
impl Add<i32> for Date {
    type Output = Date;

    fn add(self, days: i32) -> Date {
        Date(self.0.saturating_add(days))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> i32 {
        parse_date(text).unwrap()
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-01-15"), Some(19_737));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        for days in [-700_000, -1, 0, 59, 60, 19_737, 2_932_896] {
            assert_eq!(parse_date(&format_date(days)), Some(days), "{days}");
        }
        assert_eq!(format_date(day("2000-02-29")), "2000-02-29");
        assert_eq!(parse_date("0001-01-01"), Some(-719_162));
        assert_eq!(parse_date("9999-12-31"), Some(2_932_896));
    }

    #[test]
    fn malformed_or_impossible_dates_are_refused() {
        for text in [
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-1-15",
            "2024/01/15",
            "20240115",
            "2024-01-15T00:00",
            "+024-01-15",
            "",
        ] {
            assert_eq!(parse_date(text), None, "{text}");
        }
        assert!(parse_date("2000-02-29").is_some());
    }

    #[test]
    fn weekdays_start_on_monday() {
        assert_eq!(weekday(day("1970-01-01")), 3);
        assert_eq!(weekday(day("2024-01-15")), 0);
        assert_eq!(weekday(day("2024-01-21")), 6);
        assert_eq!(weekday(day("1969-12-29")), 0);
        assert_eq!(week_start(day("2024-01-21")), day("2024-01-15"));
    }

    #[test]
    fn iso_weeks_follow_the_thursday_rule() {
        let cases = [
            ("2024-01-15", "2024-W03"),
            ("2024-01-01", "2024-W01"),
            ("2024-12-29", "2024-W52"),
            ("2024-12-30", "2025-W01"),
            ("2021-01-03", "2020-W53"),
            ("2021-01-04", "2021-W01"),
            ("2020-12-31", "2020-W53"),
            ("2015-12-31", "2015-W53"),
            ("2016-01-03", "2015-W53"),
            ("2016-01-04", "2016-W01"),
            ("2022-01-01", "2021-W52"),
            ("2023-01-01", "2022-W52"),
            ("2023-01-02", "2023-W01"),
            ("2026-12-31", "2026-W53"),
            ("2027-01-03", "2026-W53"),
            ("2008-12-29", "2009-W01"),
            ("1970-01-01", "1970-W01"),
            ("1969-12-29", "1970-W01"),
        ];
        for (date, week) in cases {
            assert_eq!(iso_week(day(date)), week, "{date}");
        }
    }

    #[test]
    fn every_january_4th_is_in_week_1_and_weeks_follow_each_other() {
        for year in 1990..2040 {
            assert_eq!(iso_week_number(day(&format!("{year}-01-04"))), (year, 1));
        }
        // Over 60 years, each Monday starts the week after the previous one.
        let mut previous = iso_week_number(day("1999-12-27"));
        let mut monday = day("2000-01-03");
        while monday < day("2060-01-01") {
            for offset in 0..7 {
                assert_eq!(iso_week_number(monday + offset), iso_week_number(monday));
            }
            let (year, week) = iso_week_number(monday);
            let next_of_previous = if week == 1 {
                year == previous.0 + 1 && matches!(previous.1, 52 | 53)
            } else {
                year == previous.0 && week == previous.1 + 1
            };
            assert!(
                next_of_previous,
                "{} after {previous:?}",
                format_date(monday)
            );
            previous = (year, week);
            monday += 7;
        }
    }

    #[test]
    fn a_date_reads_its_calendar_and_counts_days() {
        let date = Date::parse("2024-12-30").unwrap();
        assert_eq!(date.days(), day("2024-12-30"));
        assert_eq!(date.ymd(), (2024, 12, 30));
        assert_eq!((date.year(), date.month(), date.day()), (2024, 12, 30));
        assert_eq!(date.weekday(), 0);
        assert_eq!(date.iso_week(), (2025, 1));
        assert_eq!((date + 6).week_start(), date);
        assert_eq!(date.to_string(), "2024-12-30");
        let later = Date::from_ymd(2025, 1, 6).unwrap();
        assert_eq!(later - date, 7);
        assert_eq!(date - later, -7);
        assert!(date < later);
        assert_eq!(Date::from_ymd(2023, 2, 29), None);
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
    }
}
