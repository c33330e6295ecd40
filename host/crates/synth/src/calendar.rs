//! Civil dates as day numbers (days since 1970-01-01), ISO weeks, French public holidays
//! and the French legal time offset.

/// Day number of a proleptic Gregorian date.
pub fn day_number(year: i32, month: u32, day: u32) -> i64 {
    let (y, m) = if month <= 2 {
        (i64::from(year) - 1, i64::from(month) + 9)
    } else {
        (i64::from(year), i64::from(month) - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day number.
pub fn civil(day: i64) -> (i32, u32, u32) {
    let shifted = day + 719_468;
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

/// 0 for Monday … 6 for Sunday.
pub fn weekday(day: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (day + 3).rem_euclid(7) as u32
}

/// ISO 8601 week label, such as `2024-W03`.
pub fn iso_week(day: i64) -> String {
    let thursday = day - i64::from(weekday(day)) + 3;
    let (year, _, _) = civil(thursday);
    let week = (thursday - day_number(year, 1, 1)) / 7 + 1;
    format!("{year}-W{week:02}")
}

/// Easter Sunday (Gregorian computus).
fn easter(year: i32) -> i64 {
    let golden = year % 19;
    let century = year / 100;
    let epact = (century - century / 4 - (8 * century + 13) / 25 + 19 * golden + 15) % 30;
    let days_to_full_moon = epact - (epact / 28) * (1 - (29 / (epact + 1)) * ((21 - golden) / 11));
    let weekday_of_moon = (year + year / 4 + days_to_full_moon + 2 - century + century / 4) % 7;
    let offset = days_to_full_moon - weekday_of_moon;
    let month = 3 + (offset + 40) / 44;
    let day = offset + 28 - 31 * (month / 4);
    day_number(year, month as u32, day as u32)
}

/// Whether the day is a French public holiday.
pub fn is_holiday(day: i64) -> bool {
    let (year, month, dom) = civil(day);
    let fixed = matches!(
        (month, dom),
        (1, 1) | (5, 1) | (5, 8) | (7, 14) | (8, 15) | (11, 1) | (11, 11) | (12, 25)
    );
    let easter = easter(year);
    fixed || day == easter + 1 || day == easter + 39 || day == easter + 50
}

/// Last Sunday of a month.
fn last_sunday(year: i32, month: u32) -> i64 {
    let last = day_number(year, month + 1, 1) - 1;
    last - i64::from((weekday(last) + 1) % 7)
}

/// Offset of metropolitan French legal time on that day (summer time from the last
/// Sunday of March to the last Sunday of October).
pub fn metropolitan_offset(day: i64) -> &'static str {
    let (year, _, _) = civil(day);
    if day >= last_sunday(year, 3) && day < last_sunday(year, 10) {
        "+02:00"
    } else {
        "+01:00"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip_through_civil_dates() {
        assert_eq!(day_number(1970, 1, 1), 0);
        assert_eq!(civil(day_number(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil(day_number(2000, 12, 31)), (2000, 12, 31));
        assert_eq!(weekday(day_number(2024, 1, 15)), 0);
    }

    #[test]
    fn iso_weeks_follow_the_thursday_rule() {
        assert_eq!(iso_week(day_number(2024, 1, 15)), "2024-W03");
        assert_eq!(iso_week(day_number(2021, 1, 3)), "2020-W53");
        assert_eq!(iso_week(day_number(2024, 12, 30)), "2025-W01");
    }

    #[test]
    fn french_holidays_include_easter_monday_and_bastille_day() {
        assert!(is_holiday(day_number(2024, 4, 1)));
        assert!(is_holiday(day_number(2024, 7, 14)));
        assert!(is_holiday(day_number(2024, 5, 9)));
        assert!(!is_holiday(day_number(2024, 4, 2)));
    }

    #[test]
    fn summer_time_starts_on_the_last_sunday_of_march() {
        assert_eq!(metropolitan_offset(day_number(2024, 3, 30)), "+01:00");
        assert_eq!(metropolitan_offset(day_number(2024, 3, 31)), "+02:00");
        assert_eq!(metropolitan_offset(day_number(2024, 10, 27)), "+01:00");
    }
}
