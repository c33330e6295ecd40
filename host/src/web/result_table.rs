//! A released table as HTML: dimensions, counts and shares, a page of rows at a time,
//! redacted cells marked, and the legend that says why cells are redacted and how counts
//! are rounded. What is redacted is read from the table itself: a null in a count or
//! share column marked `carrel.redacted = "null"` by disclosure control.

use arrow_array::{Array, Float64Array, RecordBatch, UInt64Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use carrel_disclosure::{Policy, metadata};
use maud::{Markup, html};

/// Rows shown on one page of a table.
pub const ROWS_PER_PAGE: usize = 250;

/// What disclosure control redacted in a run, from its report (numbers of cells only).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redactions {
    /// Count cells from 1 to `min_count - 1`.
    pub primary: u64,
    /// Count cells redacted so that no primary one can be recovered from a total.
    pub secondary: u64,
    /// Share cells redacted with their numerator or denominator.
    pub shares: u64,
    pub total: u64,
}

impl Redactions {
    /// From a run record's disclosure report; `None` when the run has none.
    pub fn of(report: &serde_json::Value) -> Option<Self> {
        let counts = report.get("counts")?.as_array()?;
        let sum = |key: &str| {
            counts
                .iter()
                .filter_map(|c| c.get(key).and_then(|v| v.as_u64()))
                .sum::<u64>()
        };
        let shares = report
            .get("shares_redacted")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let (primary, secondary) = (sum("primary"), sum("secondary"));
        let total = report
            .get("total_redacted")
            .and_then(|v| v.as_u64())
            .unwrap_or(primary + secondary + shares);
        Some(Self {
            primary,
            secondary,
            shares,
            total,
        })
    }
}

/// How one column is shown.
enum Column<'a> {
    /// A dimension (or a column of a type this page cannot show: `None`).
    Dimension(Option<ArrayFormatter<'a>>),
    Count {
        values: &'a UInt64Array,
        redactable: bool,
    },
    Share {
        values: &'a Float64Array,
        numerator: Option<&'a UInt64Array>,
        denominator: Option<&'a UInt64Array>,
    },
}

fn meta<'a>(field: &'a arrow_schema::Field, key: &str) -> Option<&'a str> {
    field.metadata().get(key).map(String::as_str)
}

fn columns<'a>(table: &'a RecordBatch, options: &'a FormatOptions<'a>) -> Vec<Column<'a>> {
    let schema = table.schema_ref();
    let count = |name: Option<&str>| -> Option<&'a UInt64Array> {
        let index = schema.index_of(name?).ok()?;
        table.column(index).as_any().downcast_ref::<UInt64Array>()
    };
    let mut out = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        let array = table.column(index).as_ref();
        let redactable = meta(field, metadata::REDACTED) == Some(metadata::REDACTED_NULL);
        let column = match meta(field, metadata::KIND) {
            Some(metadata::COUNT) => array
                .as_any()
                .downcast_ref::<UInt64Array>()
                .map(|values| Column::Count { values, redactable }),
            Some(metadata::SHARE) => {
                array
                    .as_any()
                    .downcast_ref::<Float64Array>()
                    .map(|values| Column::Share {
                        values,
                        numerator: count(meta(field, metadata::NUMERATOR)),
                        denominator: count(meta(field, metadata::DENOMINATOR)),
                    })
            }
            _ => None,
        };
        // Anything else (a dimension, or a column of an unexpected type) is shown as text.
        out.push(
            column
                .unwrap_or_else(|| Column::Dimension(ArrayFormatter::try_new(array, options).ok())),
        );
    }
    out
}

/// A count or share withheld by disclosure control.
fn redacted_cell() -> Markup {
    html! {
        td class="num redacted" title="redacted by disclosure control: see the legend" {
            "redacted"
        }
    }
}

fn cell(column: &Column<'_>, row: usize) -> Markup {
    match column {
        Column::Dimension(Some(formatter)) => html! { td { (formatter.value(row).to_string()) } },
        Column::Dimension(None) => html! { td.na { "?" } },
        Column::Count { values, .. } if values.is_valid(row) => {
            html! { td.num { (values.value(row)) } }
        }
        Column::Count { redactable, .. } => {
            if *redactable {
                redacted_cell()
            } else {
                html! { td.num {} }
            }
        }
        Column::Share { values, .. } if values.is_valid(row) => {
            html! { td.num { (format!("{:.2}%", values.value(row) * 100.0)) } }
        }
        Column::Share {
            numerator,
            denominator,
            ..
        } => {
            let withheld = |c: &Option<&UInt64Array>| c.is_none_or(|c| c.is_null(row));
            if withheld(numerator) || withheld(denominator) {
                redacted_cell()
            } else {
                html! {
                    td class="num na" title="no denominator: the share is undefined" { "n/a" }
                }
            }
        }
    }
}

/// One page (from 1) of the table, with a header saying what each column is, and the
/// number of pages.
pub fn render(table: &RecordBatch, page: usize) -> (Markup, usize) {
    let rows = table.num_rows();
    let pages = rows.div_ceil(ROWS_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let options = FormatOptions::default();
    let columns = columns(table, &options);
    let first = (page - 1) * ROWS_PER_PAGE;
    let markup = html! {
        table #result-table {
            thead {
                tr {
                    @for (field, column) in table.schema_ref().fields().iter().zip(&columns) {
                        th {
                            (field.name())
                            br;
                            span.note {
                                @match column {
                                    Column::Dimension(_) => {}
                                    Column::Count { .. } => "count",
                                    Column::Share { .. } => {
                                        "share "
                                        (meta(field, metadata::NUMERATOR).unwrap_or("?"))
                                        " / "
                                        (meta(field, metadata::DENOMINATOR).unwrap_or("?"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            tbody {
                @for row in first..rows.min(first + ROWS_PER_PAGE) {
                    tr {
                        @for column in &columns {
                            (cell(column, row))
                        }
                    }
                }
            }
        }
    };
    (markup, pages)
}

/// Why cells are redacted and how counts are rounded, with this run's numbers. `policy`
/// is the one the run applied, when it is still known.
pub fn legend(policy: Option<&Policy>, redactions: &Redactions) -> Markup {
    let threshold = match policy {
        Some(p) if p.min_count > 1 => format!(
            "from 1 to {} (under the threshold of {})",
            p.min_count - 1,
            p.min_count
        ),
        _ => "under the study's threshold".to_owned(),
    };
    let under = match policy {
        Some(p) => format!("under {}", p.min_count),
        None => "under the threshold".to_owned(),
    };
    let rounding = match policy {
        Some(p) if p.rounding > 1 => format!(
            "Counts are rounded to the nearest multiple of {} (halves up)",
            p.rounding
        ),
        Some(_) => "Counts are not rounded".to_owned(),
        None => "Counts are rounded as the study's policy says".to_owned(),
    };
    html! {
        div.legend-box #legend {
            h3 { "Reading the table" }
            ul {
                li {
                    span.mark.redacted { "redacted" }
                    " is a cell withheld by disclosure control (" (redactions.total)
                    " in this table). A count is withheld when it is " (threshold) ": "
                    span #redacted-primary { (redactions.primary) }
                    " cells here; or so that a withheld count cannot be recovered by \
                     subtraction from a total of its row or column (secondary suppression): "
                    span #redacted-secondary { (redactions.secondary) }
                    " cells. Which of the two applies to a cell is not shown, since that \
                     would say its count is " (under) "."
                }
                li {
                    "A share is withheld with its numerator or denominator: "
                    span #redacted-shares { (redactions.shares) }
                    " cells. "
                    span.mark.na { "n/a" }
                    " is a share whose denominator is 0."
                }
                li {
                    (rounding)
                    "; shares are computed from the rounded counts. 0 is released as 0: an \
                     empty cell is not a person."
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::collections::HashMap;
    use std::sync::Arc;

    fn released(kind: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        m.insert(metadata::KIND.into(), kind.into());
        m.insert(metadata::REDACTED.into(), metadata::REDACTED_NULL.into());
        m
    }

    #[test]
    fn redacted_counts_and_shares_are_marked_and_an_undefined_share_is_not() {
        let schema = Schema::new(vec![
            Field::new("region", DataType::Utf8, false),
            Field::new("coded", DataType::UInt64, true)
                .with_metadata(released(metadata::COUNT, &[])),
            Field::new("ili", DataType::UInt64, true).with_metadata(released(metadata::COUNT, &[])),
            Field::new("ili_share", DataType::Float64, true).with_metadata(released(
                metadata::SHARE,
                &[
                    (metadata::NUMERATOR, "ili"),
                    (metadata::DENOMINATOR, "coded"),
                ],
            )),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["<north>", "south", "east"])),
            Arc::new(UInt64Array::from(vec![Some(40), Some(20), Some(0)])),
            Arc::new(UInt64Array::from(vec![Some(10), None, Some(0)])),
            Arc::new(Float64Array::from(vec![Some(0.25), None, None])),
        ];
        let table = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let (html, pages) = render(&table, 1);
        let html = html.into_string();
        assert_eq!(pages, 1);
        assert_eq!(html.matches("class=\"num redacted\"").count(), 2, "{html}");
        assert_eq!(html.matches("class=\"num na\"").count(), 1, "{html}");
        assert!(html.contains("<td>&lt;north&gt;</td>"), "{html}");
        assert!(html.contains("<td class=\"num\">25.00%</td>"), "{html}");
        assert!(html.contains("share ili / coded"), "{html}");
    }

    #[test]
    fn the_legend_gives_the_threshold_the_rounding_and_this_runs_numbers() {
        let report = serde_json::json!({
            "rows": 3,
            "counts": [{"column": "a", "primary": 2, "secondary": 1},
                       {"column": "b", "primary": 0, "secondary": 3}],
            "shares_redacted": 4,
            "total_redacted": 10,
        });
        let r = Redactions::of(&report).unwrap();
        assert_eq!((r.primary, r.secondary, r.shares, r.total), (2, 4, 4, 10));
        let text = legend(Some(&Policy::default()), &r).into_string();
        assert!(
            text.contains("from 1 to 7 (under the threshold of 8)"),
            "{text}"
        );
        assert!(text.contains("nearest multiple of 5"), "{text}");
        assert!(
            text.contains("<span id=\"redacted-secondary\">4</span>"),
            "{text}"
        );
        assert!(
            legend(None, &r)
                .into_string()
                .contains("under the study's threshold")
        );
        assert_eq!(Redactions::of(&serde_json::Value::Null), None);
    }
}
