//! A run's parameters, checked against the study's manifest before the study runs: the
//! period (`from`, `to`, snapped outwards to whole weeks, months or years when the table
//! counts by them, so that sliding a window by a day tells nothing), the grouping (`by`,
//! one of the declared ones) and the study's own declared parameters, each from its
//! declared values. Anything else is refused.

use super::manifest::{HOST_PARAMS, StudyTool};
use super::table::Dimension;
use super::tally::{day_of, days_of};

/// What a run will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// The first and last day read, in days since 1970-01-01.
    pub from: Option<i32>,
    pub to: Option<i32>,
    pub by: Option<String>,
    /// Indexes of the table's dimensions the run keeps.
    pub kept: Vec<usize>,
    /// The study's declared parameters, as it receives them.
    pub study_params: Vec<(String, String)>,
}

impl RunPlan {
    /// The parameters as the run record keeps them: dates as snapped.
    pub fn effective_params(&self) -> Vec<(String, String)> {
        let mut params = Vec::new();
        for (name, day) in [("from", self.from), ("to", self.to)] {
            if let Some(day) = day {
                params.push((name.to_owned(), day_of(day).to_string()));
            }
        }
        if let Some(by) = &self.by {
            params.push(("by".to_owned(), by.clone()));
        }
        params.extend(self.study_params.iter().cloned());
        params
    }
}

/// The granularity dates snap to: the finest time dimension the run keeps.
fn snap(tool: &StudyTool, kept: &[usize], day: time::Date, end: bool) -> time::Date {
    let kinds = tool.table().dimension_kinds();
    let kept: Vec<Dimension> = kept.iter().map(|&i| kinds[i]).collect();
    let (start, last) = if kept.contains(&Dimension::Week) {
        let monday = day - time::Duration::days(i64::from(day.weekday().number_days_from_monday()));
        (monday, monday + time::Duration::days(6))
    } else if kept.contains(&Dimension::Month) {
        let first = day.replace_day(1).expect("day 1 exists");
        let next = match day.month() {
            time::Month::December => first
                .replace_year(day.year() + 1)
                .and_then(|d| d.replace_month(time::Month::January)),
            month => first.replace_month(month.next()),
        }
        .unwrap_or(time::Date::MAX);
        (first, next.previous_day().unwrap_or(first))
    } else if kept.contains(&Dimension::Year) {
        let first = day
            .replace_month(time::Month::January)
            .and_then(|d| d.replace_day(1))
            .expect("January 1st exists");
        let last = day
            .replace_month(time::Month::December)
            .and_then(|d| d.replace_day(31))
            .expect("December 31st exists");
        (first, last)
    } else {
        (day, day)
    };
    if end { last } else { start }
}

/// Checks `params` against the study's manifest.
pub fn plan(tool: &StudyTool, params: &[(String, String)]) -> Result<RunPlan, String> {
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in params {
        if !seen.insert(name.as_str()) {
            return Err(format!("parameter `{name}` is given twice"));
        }
        if !HOST_PARAMS.contains(&name.as_str()) && !tool.params.contains_key(name) {
            let mut declared: Vec<&str> = HOST_PARAMS.to_vec();
            declared.extend(tool.params.keys().map(String::as_str));
            return Err(format!(
                "parameter `{name}` is not declared (parameters: {})",
                declared.join(", ")
            ));
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let by = get("by").map(str::to_owned);
    let kept = tool.table().kept_dimensions(by.as_deref())?;
    let day = |name: &str, end: bool| -> Result<Option<i32>, String> {
        let Some(text) = get(name) else {
            return Ok(None);
        };
        let day = super::manifest::parse_day(text)
            .map_err(|_| format!("{name}={text:?} is not a YYYY-MM-DD day"))?;
        Ok(Some(days_of(snap(tool, &kept, day, end))))
    };
    let (from, to) = (day("from", false)?, day("to", true)?);
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err("from is after to".into());
    }
    let mut study_params = Vec::new();
    for (name, values) in &tool.params {
        match get(name) {
            Some(value) if values.iter().any(|v| v == value) => {
                study_params.push((name.clone(), value.to_owned()));
            }
            Some(value) => {
                return Err(format!(
                    "{name}={value:?} is not one of its declared values ({})",
                    values.join(", ")
                ));
            }
            None => {}
        }
    }
    Ok(RunPlan {
        from,
        to,
        by,
        kept,
        study_params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> StudyTool {
        toml::from_str(
            r#"
title = "t"
purpose = "p"
legal_basis = "l"
principal_investigator = "pi"
expires = "2099-12-31"
datasets = { consultations = ["diagnoses"] }
params = { op = ["count", "twice"] }
[table]
dimensions = ["week", "region"]
measures = ["n"]
by = { national = ["week"], regional = ["region"] }
"#,
        )
        .unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn dates_snap_outwards_to_whole_iso_weeks() {
        // 2024-10-02 is a Wednesday; 2024-10-10 a Thursday.
        let plan = plan(
            &tool(),
            &params(&[("from", "2024-10-02"), ("to", "2024-10-10")]),
        )
        .unwrap();
        assert_eq!(
            plan.effective_params(),
            params(&[("from", "2024-09-30"), ("to", "2024-10-13")])
        );
        // Sliding the window by one day gives the same run.
        let slid = super::plan(
            &tool(),
            &params(&[("from", "2024-10-03"), ("to", "2024-10-09")]),
        )
        .unwrap();
        assert_eq!(slid, plan);
    }

    #[test]
    fn without_a_time_dimension_dates_are_kept_as_given() {
        let plan = plan(
            &tool(),
            &params(&[("by", "regional"), ("from", "2024-10-02")]),
        )
        .unwrap();
        assert_eq!(plan.kept, [1]);
        assert_eq!(plan.effective_params()[0].1, "2024-10-02");
    }

    #[test]
    fn undeclared_parameters_and_values_are_refused_naming_them() {
        let err = plan(&tool(), &params(&[("target", "87|2A")])).unwrap_err();
        assert!(err.contains("`target` is not declared"), "{err}");
        let err = plan(&tool(), &params(&[("op", "leak")])).unwrap_err();
        assert!(err.contains("count, twice"), "{err}");
        let err = plan(&tool(), &params(&[("by", "patient")])).unwrap_err();
        assert!(err.contains("national"), "{err}");
        let err = plan(&tool(), &params(&[("from", "2024-13-01")])).unwrap_err();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
    }

    #[test]
    fn declared_study_parameters_reach_the_study() {
        let plan = plan(&tool(), &params(&[("op", "twice")])).unwrap();
        assert_eq!(plan.study_params, params(&[("op", "twice")]));
    }
}
