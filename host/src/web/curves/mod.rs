//! Epidemic curves of a released table, as server-side SVG: the weekly share of each
//! indicator, one line per value of a grouping dimension (region, age class…), or one
//! line when the table has no such dimension (a national table).
//!
//! Which tables get curves is read from the table, not from the study's name: a
//! dimension column whose values are all ISO weeks (`2024-W03`) and share columns
//! (`carrel.kind = "share"`) whose numerator and denominator are released count columns.
//! Each other dimension with more than one value gives one chart per share, its lines
//! summing numerator and denominator over the remaining dimensions. A point behind which
//! any cell is redacted is unknown, so it is a gap in its line, never a zero; a week
//! without a coded consultation is a gap too.

use arrow_array::{Array, RecordBatch, UInt64Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use carrel_disclosure::metadata;
use std::collections::{HashMap, HashSet};

pub use svg::svg;

mod svg;

/// More lines than this cannot be told apart: such a dimension gets no chart.
const MAX_SERIES: usize = 24;
/// A continuous week axis longer than this (ten years) is not an epidemic curve.
const MAX_WEEKS: usize = 520;

/// One chart: a share by week, one line per series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Element id, `curve-<dimension>-<share column>`.
    pub id: String,
    pub title: String,
    /// The week labels of the x axis, in order.
    pub weeks: Vec<String>,
    pub series: Vec<Series>,
}

/// One line: a share per week, `None` where it is unknown (a gap).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<Option<f64>>,
}

/// `(year, week)` of an ISO week label such as `2024-W03`.
fn parse_week(text: &str) -> Option<(i32, u8)> {
    let (year, week) = text.split_once("-W")?;
    if year.len() != 4 || week.len() != 2 {
        return None;
    }
    let (year, week): (i32, u8) = (year.parse().ok()?, week.parse().ok()?);
    time::Date::from_iso_week_date(year, week, time::Weekday::Monday).ok()?;
    Some((year, week))
}

fn week_label(date: time::Date) -> String {
    let (year, week, _) = date.to_iso_week_date();
    format!("{year:04}-W{week:02}")
}

/// Every week from the first to the last label, so that a missing week is a gap and the
/// x axis is true to time; the labels as they are when that span is implausibly long.
fn week_axis(labels: &[&str]) -> Vec<String> {
    let mut dates: Vec<time::Date> = labels
        .iter()
        .filter_map(|l| parse_week(l))
        .filter_map(|(y, w)| time::Date::from_iso_week_date(y, w, time::Weekday::Monday).ok())
        .collect();
    dates.sort();
    dates.dedup();
    let (Some(&first), Some(&last)) = (dates.first(), dates.last()) else {
        return Vec::new();
    };
    let span = ((last - first).whole_days() / 7) as usize + 1;
    if span > MAX_WEEKS {
        return dates.into_iter().map(week_label).collect();
    }
    (0..span)
        .map(|i| week_label(first + time::Duration::weeks(i as i64)))
        .collect()
}

/// The column's values as text (dimensions may be of any type).
fn texts(column: &dyn Array) -> Option<Vec<String>> {
    let formatter = ArrayFormatter::try_new(column, &FormatOptions::default()).ok()?;
    Some(
        (0..column.len())
            .map(|i| formatter.value(i).to_string())
            .collect(),
    )
}

fn kind(field: &arrow_schema::Field) -> Option<&str> {
    field.metadata().get(metadata::KIND).map(String::as_str)
}

/// A share column with its released numerator and denominator counts.
struct Share<'a> {
    name: &'a str,
    numerator: &'a UInt64Array,
    denominator: &'a UInt64Array,
    label: String,
}

fn shares(table: &RecordBatch) -> Vec<Share<'_>> {
    let schema = table.schema_ref();
    let count = |name: &str| -> Option<&UInt64Array> {
        let (index, field) = schema.column_with_name(name)?;
        (kind(field) == Some(metadata::COUNT))
            .then(|| table.column(index).as_any().downcast_ref::<UInt64Array>())
            .flatten()
    };
    schema
        .fields()
        .iter()
        .filter(|f| kind(f) == Some(metadata::SHARE))
        .filter_map(|f| {
            let numerator = f.metadata().get(metadata::NUMERATOR)?;
            let denominator = f.metadata().get(metadata::DENOMINATOR)?;
            Some(Share {
                name: f.name(),
                numerator: count(numerator)?,
                denominator: count(denominator)?,
                label: format!("{} = {numerator} / {denominator}", f.name()),
            })
        })
        .collect()
}

/// The charts of `table`; none when it has no week column or no share column.
pub fn charts(table: &RecordBatch) -> Vec<Chart> {
    let rows = table.num_rows();
    let schema = table.schema_ref();
    let mut dimensions: Vec<(&str, Vec<String>)> = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        if kind(field).is_none()
            && let Some(values) = texts(table.column(index).as_ref())
        {
            dimensions.push((field.name(), values));
        }
    }
    let Some(week_at) = dimensions
        .iter()
        .position(|(_, v)| rows > 0 && v.iter().all(|w| parse_week(w).is_some()))
    else {
        return Vec::new();
    };
    let (_, week_values) = dimensions.remove(week_at);
    let shares = shares(table);
    if shares.is_empty() {
        return Vec::new();
    }
    let weeks = week_axis(&week_values.iter().map(String::as_str).collect::<Vec<_>>());
    let week_index: HashMap<&str, usize> = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| (w.as_str(), i))
        .collect();
    let row_weeks: Vec<Option<usize>> = week_values
        .iter()
        .map(|w| week_index.get(w.as_str()).copied())
        .collect();

    // Each dimension with several values groups the lines; without one, a single line
    // named after the constant values (`all` in a national table).
    let distinct: Vec<usize> = dimensions
        .iter()
        .map(|(_, v)| v.iter().collect::<HashSet<_>>().len())
        .collect();
    let mut groupings: Vec<(Option<&str>, Vec<String>)> = dimensions
        .iter()
        .zip(&distinct)
        .filter(|(_, n)| (2..=MAX_SERIES).contains(*n))
        .map(|((name, values), _)| (Some(*name), values.clone()))
        .collect();
    if distinct.iter().all(|&n| n <= 1) {
        let mut constant: Vec<&str> = dimensions
            .iter()
            .filter_map(|(_, v)| v.first().map(String::as_str))
            .collect();
        constant.dedup();
        let name = match constant.as_slice() {
            [one] if !one.is_empty() => (*one).to_owned(),
            _ => "all".to_owned(),
        };
        groupings.push((None, vec![name; rows]));
    }

    let mut out = Vec::new();
    for share in &shares {
        for (dimension, values) in &groupings {
            let series = lines(values, &row_weeks, weeks.len(), share);
            let (title, id) = match dimension {
                None => (format!("Weekly {}", share.label), "all"),
                Some(d) => (format!("Weekly {} by {d}", share.label), *d),
            };
            out.push(Chart {
                id: format!("curve-{}-{}", id_part(id), id_part(share.name)),
                title,
                weeks: weeks.clone(),
                series,
            });
        }
    }
    out
}

fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// One series per value of `values`, in order of first appearance, summing the share's
/// numerator and denominator over the rows of each (value, week).
fn lines(
    values: &[String],
    row_weeks: &[Option<usize>],
    weeks: usize,
    share: &Share<'_>,
) -> Vec<Series> {
    #[derive(Clone, Copy, Default)]
    struct Sum {
        numerator: u64,
        denominator: u64,
        redacted: bool,
    }
    let mut names: Vec<&str> = Vec::new();
    let mut sums: Vec<Vec<Sum>> = Vec::new();
    for (row, value) in values.iter().enumerate() {
        let Some(week) = row_weeks[row] else { continue };
        let slot = match names.iter().position(|n| *n == value) {
            Some(slot) => slot,
            None => {
                names.push(value);
                sums.push(vec![Sum::default(); weeks]);
                names.len() - 1
            }
        };
        let sum = &mut sums[slot][week];
        let (n, d) = (share.numerator, share.denominator);
        if n.is_null(row) || d.is_null(row) {
            sum.redacted = true;
        } else {
            sum.numerator += n.value(row);
            sum.denominator += d.value(row);
        }
    }
    names
        .into_iter()
        .zip(sums)
        .map(|(name, sums)| Series {
            name: name.to_owned(),
            points: sums
                .into_iter()
                .map(|s| {
                    (!s.redacted && s.denominator > 0)
                        .then(|| s.numerator as f64 / s.denominator as f64)
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;

    fn field(name: &str, data_type: DataType, meta: &[(&str, &str)]) -> Field {
        Field::new(name, data_type, true).with_metadata(
            meta.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<std::collections::HashMap<String, String>>(),
        )
    }

    /// A released table: week × region, `cases` over `coded`, with `cases_share`.
    fn table(rows: &[(&str, &str, Option<u64>, Option<u64>)]) -> RecordBatch {
        let count = [(metadata::KIND, metadata::COUNT)];
        let schema = Schema::new(vec![
            field("week", DataType::Utf8, &[]),
            field("region", DataType::Utf8, &[]),
            field("coded", DataType::UInt64, &count),
            field("cases", DataType::UInt64, &count),
            field(
                "cases_share",
                DataType::Float64,
                &[
                    (metadata::KIND, metadata::SHARE),
                    (metadata::NUMERATOR, "cases"),
                    (metadata::DENOMINATOR, "coded"),
                ],
            ),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(rows.iter().map(|r| r.2).collect::<UInt64Array>()),
            Arc::new(rows.iter().map(|r| r.3).collect::<UInt64Array>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.3? as f64 / r.2? as f64))
                    .collect::<Float64Array>(),
            ),
        ];
        RecordBatch::try_new(Arc::new(schema), columns).unwrap()
    }

    #[test]
    fn a_week_column_and_a_share_give_one_line_per_region_with_gaps_where_redacted() {
        let t = table(&[
            ("2024-W52", "north", Some(100), Some(10)),
            ("2024-W52", "south", Some(50), None),
            // 2025-W01 has no row at all: a gap, and the axis still shows the week.
            ("2025-W02", "north", Some(100), Some(20)),
            ("2025-W02", "south", Some(50), Some(5)),
        ]);
        let charts = charts(&t);
        assert_eq!(charts.len(), 1);
        let chart = &charts[0];
        assert_eq!(chart.id, "curve-region-cases_share");
        assert_eq!(chart.weeks, ["2024-W52", "2025-W01", "2025-W02"]);
        let names: Vec<&str> = chart.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["north", "south"]);
        assert_eq!(chart.series[0].points, [Some(0.1), None, Some(0.2)]);
        assert_eq!(chart.series[1].points, [None, None, Some(0.1)]);

        let svg = svg(chart).into_string();
        assert_eq!(svg.matches("<path class=\"series\"").count(), 2);
        // North: two subpaths (a gap, not a zero), each alone between gaps: a short dash.
        let north = svg.split("data-series=\"north\" d=\"").nth(1).unwrap();
        let d = north.split('"').next().unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert_eq!(d.matches("h4").count(), 2, "{d}");
        assert!(!d.contains('L'), "{d}");
        assert!(svg.contains(">2024-W52</text>") && svg.contains("<title"));
        assert!(svg.contains(">north</text>") && svg.contains(">south</text>"));
    }

    #[test]
    fn lines_sum_counts_over_the_other_dimensions_and_a_redacted_cell_hides_the_point() {
        let schema = Schema::new(vec![
            field("week", DataType::Utf8, &[]),
            field("region", DataType::Utf8, &[]),
            field("age", DataType::Utf8, &[]),
            field("n", DataType::UInt64, &[(metadata::KIND, metadata::COUNT)]),
            field("d", DataType::UInt64, &[(metadata::KIND, metadata::COUNT)]),
            field(
                "s",
                DataType::Float64,
                &[
                    (metadata::KIND, metadata::SHARE),
                    (metadata::NUMERATOR, "n"),
                    (metadata::DENOMINATOR, "d"),
                ],
            ),
        ]);
        let week = ["2024-W01"; 4];
        let region = ["a", "a", "b", "b"];
        let age = ["young", "old", "young", "old"];
        let n = [Some(10), Some(30), None, Some(10)];
        let d = [Some(100), Some(100), Some(50), Some(50)];
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(week)),
            Arc::new(StringArray::from_iter_values(region)),
            Arc::new(StringArray::from_iter_values(age)),
            Arc::new(n.into_iter().collect::<UInt64Array>()),
            Arc::new(d.into_iter().collect::<UInt64Array>()),
            Arc::new(Float64Array::from(vec![None::<f64>; 4])),
        ];
        let t = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let charts = charts(&t);
        let ids: Vec<&str> = charts.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["curve-region-s", "curve-age-s"]);
        assert_eq!(charts[0].series[0].points, [Some(0.2)]);
        assert_eq!(charts[0].series[1].points, [None]);
        assert_eq!(charts[1].series[0].name, "young");
        assert_eq!(charts[1].series[0].points, [None]);
        assert_eq!(charts[1].series[1].points, [Some(40.0 / 150.0)]);
    }

    #[test]
    fn a_national_table_has_one_line_and_a_table_without_weeks_or_shares_has_none() {
        let t = table(&[
            ("2024-W01", "all", Some(100), Some(10)),
            ("2024-W02", "all", Some(100), Some(12)),
        ]);
        let charts = charts(&t);
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].series.len(), 1);
        assert_eq!(charts[0].series[0].name, "all");
        assert_eq!(charts[0].title, "Weekly cases_share = cases / coded");
        let drawn = svg(&charts[0]).into_string();
        assert_eq!(drawn.matches("<path class=\"series\"").count(), 1);
        assert!(!drawn.contains("no-point"));
        // Every point redacted: still one (empty) line per series, and a word why.
        let hidden = table(&[
            ("2024-W01", "north", Some(100), None),
            ("2024-W01", "south", None, Some(2)),
        ]);
        let drawn = svg(&super::charts(&hidden)[0]).into_string();
        assert_eq!(drawn.matches("<path class=\"series\"").count(), 2);
        assert_eq!(drawn.matches(" d=\"\"").count(), 2);
        assert!(drawn.contains("class=\"no-point\""), "{drawn}");

        let not_weeks = table(&[("2024-01", "north", Some(100), Some(10))]);
        assert!(super::charts(&not_weeks).is_empty());
        let empty = table(&[]);
        assert!(super::charts(&empty).is_empty());
    }
}
