//! FHIR `date` and `dateTime` values, checked against the calendar (no month 13, no
//! 30 February), and the day arithmetic the pseudonymiser needs.

use crate::problem::clip;

/// A FHIR date: a year, optionally with a month, optionally with a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FhirDate {
    pub year: u16,
    pub month: Option<u8>,
    /// Only present with a month.
    pub day: Option<u8>,
}

/// A FHIR dateTime: a date, optionally with a time of day as written (local to its own
/// offset, which is not needed to know the local hour and so is only checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirDateTime {
    pub date: FhirDate,
    /// Hour and minute as written; only present with a full date.
    pub time: Option<(u8, u8)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("`{}` is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)", clip(.0))]
    DateSyntax(String),
    #[error(
        "`{}` is not a FHIR dateTime (YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with an offset)",
        clip(.0)
    )]
    DateTimeSyntax(String),
    #[error("`{}`: month {month} does not exist", clip(.value))]
    Month { value: String, month: u8 },
    #[error("`{}`: day {day} does not exist in {year}-{month:02}", clip(.value))]
    Day {
        value: String,
        year: u16,
        month: u8,
        day: u8,
    },
    #[error("`{}`: the time of day is out of range", clip(.0))]
    Time(String),
    #[error("`{}`: the offset is out of range", clip(.0))]
    Offset(String),
}

fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0')),
    )
}

fn two_digits(bytes: &[u8]) -> Option<u8> {
    if bytes.len() == 2 {
        digits(bytes).map(|n| n as u8)
    } else {
        None
    }
}

pub fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given civil date (negative before), for Arrow `date32`.
/// Howard Hinnant's days-from-civil algorithm, over the proleptic Gregorian calendar.
pub fn days_since_epoch(year: u16, month: u8, day: u8) -> i32 {
    let year = i32::from(year) - i32::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i32::from(month);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + i32::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Parses the date part (the first 4, 7 or 10 bytes) and checks it against the calendar.
fn parse_date_prefix(
    value: &str,
    bytes: &[u8],
    syntax: fn(String) -> DateError,
) -> Result<FhirDate, DateError> {
    let bad = || syntax(value.to_owned());
    let year = bytes.get(..4).and_then(digits).ok_or_else(bad)?;
    if year == 0 {
        return Err(bad());
    }
    let mut date = FhirDate {
        year: year as u16,
        month: None,
        day: None,
    };
    if bytes.len() == 4 {
        return Ok(date);
    }
    if bytes.get(4) != Some(&b'-') {
        return Err(bad());
    }
    let month = bytes.get(5..7).and_then(two_digits).ok_or_else(bad)?;
    if !(1..=12).contains(&month) {
        return Err(DateError::Month {
            value: value.to_owned(),
            month,
        });
    }
    date.month = Some(month);
    if bytes.len() == 7 {
        return Ok(date);
    }
    if bytes.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let day = bytes.get(8..10).and_then(two_digits).ok_or_else(bad)?;
    if day == 0 || day > days_in_month(date.year, month) {
        return Err(DateError::Day {
            value: value.to_owned(),
            year: date.year,
            month,
            day,
        });
    }
    date.day = Some(day);
    Ok(date)
}

/// Parses a FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn parse_date(value: &str) -> Result<FhirDate, DateError> {
    let bytes = value.as_bytes();
    if !matches!(bytes.len(), 4 | 7 | 10) {
        return Err(DateError::DateSyntax(value.to_owned()));
    }
    parse_date_prefix(value, bytes, DateError::DateSyntax)
}

/// Parses a FHIR `dateTime`: a `date`, or a full date with `Thh:mm:ss`, optional
/// fraction, and an offset (`Z` or `±hh:mm`). A time without an offset is accepted:
/// several French practice systems export local times that way, and the warehouse only
/// uses the local date and hour, which such a value states unambiguously.
pub fn parse_date_time(value: &str) -> Result<FhirDateTime, DateError> {
    let bytes = value.as_bytes();
    let syntax = || DateError::DateTimeSyntax(value.to_owned());
    if bytes.len() <= 10 {
        if !matches!(bytes.len(), 4 | 7 | 10) {
            return Err(syntax());
        }
        let date = parse_date_prefix(value, bytes, DateError::DateTimeSyntax)?;
        return Ok(FhirDateTime { date, time: None });
    }
    let date = parse_date_prefix(value, &bytes[..10], DateError::DateTimeSyntax)?;
    // Time: Thh:mm:ss
    if bytes.len() < 19 || bytes[10] != b'T' || bytes[13] != b':' || bytes[16] != b':' {
        return Err(syntax());
    }
    let hour = two_digits(&bytes[11..13]).ok_or_else(syntax)?;
    let minute = two_digits(&bytes[14..16]).ok_or_else(syntax)?;
    let second = two_digits(&bytes[17..19]).ok_or_else(syntax)?;
    // FHIR allows a leap second (60).
    if hour > 23 || minute > 59 || second > 60 {
        return Err(DateError::Time(value.to_owned()));
    }
    let mut rest = &bytes[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let fraction_len = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_len == 0 {
            return Err(syntax());
        }
        rest = &fraction[fraction_len..];
    }
    match rest {
        [] | [b'Z'] => {}
        [b'+' | b'-', offset @ ..] => {
            if offset.len() != 5 || offset[2] != b':' {
                return Err(syntax());
            }
            let offset_hours = two_digits(&offset[..2]).ok_or_else(syntax)?;
            let offset_minutes = two_digits(&offset[3..]).ok_or_else(syntax)?;
            if offset_minutes > 59
                || offset_hours > 14
                || (offset_hours == 14 && offset_minutes > 0)
            {
                return Err(DateError::Offset(value.to_owned()));
            }
        }
        _ => return Err(syntax()),
    }
    Ok(FhirDateTime {
        date,
        time: Some((hour, minute)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_partial_dates_are_read() {
        assert_eq!(
            parse_date("2024-02-29").unwrap(),
            FhirDate {
                year: 2024,
                month: Some(2),
                day: Some(29)
            }
        );
        assert_eq!(parse_date("1987-06").unwrap().day, None);
        assert_eq!(parse_date("1987").unwrap().month, None);
    }

    #[test]
    fn dates_that_are_not_on_the_calendar_are_refused() {
        assert!(matches!(
            parse_date("2024-13-01"),
            Err(DateError::Month { month: 13, .. })
        ));
        assert!(matches!(
            parse_date("2024-02-30"),
            Err(DateError::Day { day: 30, .. })
        ));
        assert!(matches!(
            parse_date("2023-02-29"),
            Err(DateError::Day { .. })
        ));
        assert!(parse_date("1900-02-29").is_err());
        assert!(parse_date("2000-02-29").is_ok());
        assert!(parse_date("0000-01-01").is_err());
        assert!(parse_date("24-01-01").is_err());
        assert!(parse_date("2024-1-01").is_err());
        assert!(parse_date("2024-01-15T10:00:00Z").is_err());
    }

    #[test]
    fn date_times_keep_the_hour_as_written_in_their_own_offset() {
        let start = parse_date_time("2024-01-15T23:30:00+01:00").unwrap();
        assert_eq!(start.date.day, Some(15));
        assert_eq!(start.time, Some((23, 30)));
        assert_eq!(
            parse_date_time("1989-10-04T02:25:16-04:00").unwrap().time,
            Some((2, 25))
        );
        assert!(parse_date_time("2024-01-15T08:00:00.123456Z").is_ok());
        assert!(parse_date_time("2024-01-15T08:00:00").is_ok());
        assert_eq!(parse_date_time("2024-01-15").unwrap().time, None);
    }

    #[test]
    fn malformed_or_impossible_date_times_are_refused() {
        for value in [
            "2024-01-15T24:00:00Z",
            "2024-01-15T10:60:00Z",
            "2024-01-15T10:00Z",
            "2024-01-15 10:00:00Z",
            "2024-01-15T10:00:00+15:00",
            "2024-01-15T10:00:00+0100",
            "2024-01-15T10:00:00.Z",
            "2024-02-30T10:00:00Z",
            "2024-01-15T10:00:00Zjunk",
            "",
        ] {
            assert!(parse_date_time(value).is_err(), "{value} was accepted");
        }
    }

    #[test]
    fn days_since_epoch_matches_known_dates() {
        assert_eq!(days_since_epoch(1970, 1, 1), 0);
        assert_eq!(days_since_epoch(1969, 12, 31), -1);
        assert_eq!(days_since_epoch(2000, 3, 1), 11_017);
        assert_eq!(days_since_epoch(2024, 1, 15), 19_737);
        assert_eq!(days_since_epoch(1900, 1, 1), -25_567);
    }
}
