//! What disclosure control did to a table, for the run record and the audit log.
//! Only numbers of cells, never their values: the report is shown to the researcher,
//! and "2 cells of `cases` redacted" must not say which counts they held.

use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

/// Redactions made in one count column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountReport {
    /// The column's name.
    pub column: String,
    /// Cells redacted because their count was in `1..min_count`, or because the cell
    /// linked to them by `carrel.patients` was.
    pub primary: u64,
    /// Cells redacted so that a redaction cannot be recovered from a margin or a row
    /// total, and the cells linked to those by `carrel.patients`.
    pub secondary: u64,
}

/// The cell-key perturbation a table's counts had before suppression and rounding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Perturbation {
    /// [`crate::noise::PERTURBATION_VERSION`] when it was applied.
    pub version: String,
    /// Scale of the discrete Laplace noise.
    pub scale: f64,
}

/// Summary of the disclosure control applied to one table.
///
/// Serialises as `{"rows", "counts": [{"column", "primary", "secondary"}],
/// "shares_redacted", "total_redacted"}`; `total_redacted` is computed, so it cannot
/// disagree with the other fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Rows in the released table.
    pub rows: usize,
    /// Rows left out because every count in them was withheld (perturbed tables only).
    pub rows_withheld: usize,
    /// One entry per count column, in table order.
    pub counts: Vec<CountReport>,
    /// Share cells released as null because their numerator or denominator was
    /// redacted (a share null only because its denominator is 0 is not counted).
    pub shares_redacted: u64,
    /// The perturbation applied, if any.
    pub perturbation: Option<Perturbation>,
}

impl Report {
    /// Every cell released as null because of redaction: count cells (primary and
    /// secondary) plus share cells.
    pub fn total_redacted(&self) -> u64 {
        let counts: u64 = self.counts.iter().map(|c| c.primary + c.secondary).sum();
        counts + self.shares_redacted
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Report", 6)?;
        out.serialize_field("rows", &self.rows)?;
        out.serialize_field("rows_withheld", &self.rows_withheld)?;
        out.serialize_field("counts", &self.counts)?;
        out.serialize_field("shares_redacted", &self.shares_redacted)?;
        out.serialize_field("total_redacted", &self.total_redacted())?;
        out.serialize_field("perturbation", &self.perturbation)?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_adds_primary_secondary_and_share_redactions() {
        let report = Report {
            rows: 4,
            counts: vec![
                CountReport {
                    column: "a".into(),
                    primary: 2,
                    secondary: 1,
                },
                CountReport {
                    column: "b".into(),
                    primary: 0,
                    secondary: 3,
                },
            ],
            shares_redacted: 4,
            ..Report::default()
        };
        assert_eq!(report.total_redacted(), 10);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["total_redacted"], 10);
        assert_eq!(json["counts"][1]["secondary"], 3);
        assert_eq!(json["rows"], 4);
    }
}
