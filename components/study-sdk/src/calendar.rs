//! Dates as Arrow stores them (`date32`: days since 1970-01-01) and the ISO 8601 weeks
//! surveillance reports by.

use std::collections::HashMap;

use crate::table::FxBuildHasher;

/// The `date32` value (days since 1970-01-01) of a proleptic Gregorian date, or `None`
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

/// The `(year, month, day)` of a `date32` value.
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

/// The `date32` value of `YYYY-MM-DD` (exactly that shape, a real calendar day).
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

/// `YYYY-MM-DD` of a `date32` value.
pub fn format_date(days: i32) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// 0 for Monday … 6 for Sunday.
pub fn weekday(days: i32) -> u32 {
    // 1970-01-01 was a Thursday.
    (i64::from(days) + 3).rem_euclid(7) as u32
}

/// The ISO 8601 week of a `date32` value as `(week-based year, week 1..=53)`. Weeks
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

/// The ISO 8601 week label of a `date32` value, such as `2024-W03`: the form the
/// warehouse's synthetic ground truth and surveillance bulletins use.
pub fn iso_week(days: i32) -> String {
    let (year, week) = iso_week_number(days);
    format!("{year:04}-W{week:02}")
}

/// The Monday starting the ISO week of a `date32` value.
pub fn week_start(days: i32) -> i32 {
    days - weekday(days) as i32
}

/// [`iso_week`] labels computed once per week and borrowed afterwards, for loops over
/// millions of rows: `weeks.label(dates.value(row))` allocates nothing after a
/// week's first day has been seen.
#[derive(Debug, Default, Clone)]
pub struct WeekLabels {
    /// Label of each Monday seen.
    by_monday: HashMap<i32, Box<str>, FxBuildHasher>,
    /// The Monday of the last lookup, for runs of rows in the same week.
    last: Option<i32>,
}

impl WeekLabels {
    pub fn new() -> WeekLabels {
        WeekLabels::default()
    }

    /// `iso_week(days)`, borrowed from the cache.
    pub fn label(&mut self, days: i32) -> &str {
        let monday = week_start(days);
        if self.last != Some(monday) {
            self.last = Some(monday);
            self.by_monday
                .entry(monday)
                .or_insert_with(|| iso_week(days).into_boxed_str());
        }
        &self.by_monday[&monday]
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
    fn week_labels_are_cached_per_week() {
        let mut weeks = WeekLabels::new();
        for days in day("2020-12-20")..day("2025-01-10") {
            assert_eq!(weeks.label(days), iso_week(days));
        }
        assert_eq!(weeks.label(day("2024-01-15")), "2024-W03");
        // 2020-W51 to 2025-W02.
        assert_eq!(weeks.by_monday.len(), 213);
    }
}
