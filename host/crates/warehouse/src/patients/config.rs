//! `[patients]` in the runtime config: the retention period, how often objections and
//! retention are applied while serving, and what the public register tells patients.
//!
//! ```toml
//! [patients]
//! retention_days = 7300          # consultations older than this are removed; none when absent
//! pass_interval_seconds = 3600   # while serving, a pass at most this long after it is due
//! how_to_object = "Ask the association that treated you, or write to dpo@example.org"
//! ```

use serde::{Deserialize, Deserializer};

/// How often, while serving, the warehouse looks for rows to remove, by default.
pub const DEFAULT_PASS_INTERVAL_SECONDS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientsConfig {
    /// Consultations dated more than this many days before today are removed; none are
    /// when absent.
    #[serde(default, deserialize_with = "at_least_one_day")]
    pub retention_days: Option<u32>,
    /// While serving: seconds between two looks for rows to remove (an objection
    /// registered over HTTP wakes the pass sooner).
    #[serde(default = "default_interval", deserialize_with = "at_least_one_second")]
    pub pass_interval_seconds: u64,
    /// How a patient objects, in the operator's words, for the public register.
    #[serde(default)]
    pub how_to_object: Option<String>,
}

impl Default for PatientsConfig {
    fn default() -> Self {
        Self {
            retention_days: None,
            pass_interval_seconds: DEFAULT_PASS_INTERVAL_SECONDS,
            how_to_object: None,
        }
    }
}

fn default_interval() -> u64 {
    DEFAULT_PASS_INTERVAL_SECONDS
}

fn at_least_one_day<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let days = u32::deserialize(deserializer)?;
    if days == 0 {
        return Err(serde::de::Error::custom(
            "retention_days is a number of days, at least 1 (leave it out to keep everything)",
        ));
    }
    Ok(Some(days))
}

fn at_least_one_second<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let seconds = u64::deserialize(deserializer)?;
    if seconds == 0 {
        return Err(serde::de::Error::custom(
            "pass_interval_seconds is at least 1",
        ));
    }
    Ok(seconds)
}

impl PatientsConfig {
    /// The first day kept (days since 1970-01-01) on `today`: rows dated before it are
    /// older than the retention period. `None` without a retention period.
    pub fn retention_cutoff(&self, today: time::Date) -> Option<i32> {
        let days = self.retention_days?;
        let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
            .expect("1970-01-01 is a date");
        Some((today - epoch).whole_days() as i32 - days as i32)
    }
}

/// Today (UTC), the day retention is counted from.
pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_before_the_cutoff_are_older_than_the_period() {
        let config = PatientsConfig {
            retention_days: Some(10),
            ..Default::default()
        };
        let today = time::Date::from_calendar_date(1970, time::Month::January, 31).unwrap();
        // 1970-01-31 is day 30: a consultation on day 20 is 10 days old and kept.
        assert_eq!(config.retention_cutoff(today), Some(20));
        assert_eq!(PatientsConfig::default().retention_cutoff(today), None);
    }
}
