//! Released study tables in the formats researchers download.
//!
//! CSV cells that a spreadsheet would read as a formula are escaped as OWASP's
//! CSV-injection guidance says: a text cell (or column name) beginning with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'` and is quoted, quotes inside doubled.
//! Text cells can hold what an association sent (a visit type, an outcome) or a study's
//! label; numbers are left as they are.

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;

/// Why a released table cannot be given in a format. [`DownloadError::is_about_the_run`]
/// tells a run that has no such file (404) from a stored result the host cannot read.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the stored result is not Arrow IPC")]
    NotArrow(#[source] carrel_pseudonym::PseudonymiseError),
    #[error("cannot write the table as CSV")]
    Csv(#[from] arrow_schema::ArrowError),
    #[error("only a logistic regression fitted by a model-fit study exports as ONNX")]
    NotLogisticFit,
    #[error("the released table is empty: not a fitted regression")]
    EmptyTable,
    /// The table lacks what a fitted regression has (the message says what).
    #[error("{0}")]
    NotFittedRegression(String),
}

impl DownloadError {
    /// The run released nothing in this format; not a fault of the stored result.
    pub fn is_about_the_run(&self) -> bool {
        matches!(
            self,
            Self::NotLogisticFit | Self::EmptyTable | Self::NotFittedRegression(_)
        )
    }
}

/// Characters that make a spreadsheet treat a cell as a formula.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// One CSV field: quoted when it must be (a separator, quote or line break inside) or
/// when it was escaped as a formula.
fn write_field(out: &mut String, text: &str, is_text: bool) {
    let formula = is_text && text.starts_with(FORMULA_STARTS);
    let quoted = formula || text.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quoted {
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn is_text(data_type: &DataType) -> bool {
    !(data_type.is_numeric() || matches!(data_type, DataType::Boolean))
}

fn write_batch(out: &mut String, batch: &RecordBatch) -> Result<(), DownloadError> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let text: Vec<bool> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| is_text(f.data_type()))
        .collect();
    for row in 0..batch.num_rows() {
        for (i, (column, formatter)) in batch.columns().iter().zip(&formatters).enumerate() {
            if i > 0 {
                out.push(',');
            }
            // A redacted cell is null: an empty field.
            if column.is_valid(row) {
                write_field(out, &formatter.value(row).to_string(), text[i]);
            }
        }
        out.push('\n');
    }
    Ok(())
}

/// CSV with a header row; a redacted cell is an empty field.
pub fn to_csv(ipc: &[u8]) -> Result<Vec<u8>, DownloadError> {
    let batches = carrel_pseudonym::from_ipc(ipc).map_err(DownloadError::NotArrow)?;
    let mut out = String::new();
    if let Some(first) = batches.first() {
        for (i, field) in first.schema().fields().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_field(&mut out, field.name(), true);
        }
        out.push('\n');
    }
    for batch in &batches {
        write_batch(&mut out, batch)?;
    }
    Ok(out.into_bytes())
}

/// A released logistic regression (`model-fit`) as an ONNX model, for a later evaluation.
/// `report` is the run's model report: only a logistic fit has a probability to export.
pub fn to_onnx(ipc: &[u8], report: &serde_json::Value) -> Result<Vec<u8>, DownloadError> {
    if report.get("kind").and_then(|k| k.as_str()) != Some("model-fit")
        || report.get("family").and_then(|k| k.as_str()) != Some("logistic")
    {
        return Err(DownloadError::NotLogisticFit);
    }
    let batches = carrel_pseudonym::from_ipc(ipc).map_err(DownloadError::NotArrow)?;
    let table = batches.first().ok_or(DownloadError::EmptyTable)?;
    crate::study::onnx_export::from_released(table).map_err(DownloadError::NotFittedRegression)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn csv(batch: RecordBatch) -> String {
        String::from_utf8(to_csv(&carrel_pseudonym::to_ipc(&batch).unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn cells_a_spreadsheet_would_run_as_formulas_are_escaped() {
        let labels = StringArray::from(vec![
            Some("=HYPERLINK(\"http://x\",\"y\")"),
            Some("+1"),
            Some("-2"),
            Some("@SUM(A1)"),
            Some("\tTab"),
            Some("\rCR"),
            Some("a, b"),
            Some("plain"),
            None,
        ]);
        let counts = Int64Array::from(vec![-1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let batch = RecordBatch::try_from_iter([
            ("=label", Arc::new(labels) as ArrayRef),
            ("n", Arc::new(counts) as ArrayRef),
        ])
        .unwrap();
        let text = csv(batch);
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines[0], "\"'=label\",n");
        assert_eq!(lines[1], "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-1");
        assert_eq!(lines[2], "\"'+1\",2");
        assert_eq!(lines[3], "\"'-2\",3");
        assert_eq!(lines[4], "\"'@SUM(A1)\",4");
        assert_eq!(lines[5], "\"'\tTab\",5");
        assert_eq!(lines[6], "\"'\rCR\",6");
        assert_eq!(lines[7], "\"a, b\",7");
        assert_eq!(lines[8], "plain,8");
        assert_eq!(lines[9], ",9", "a redacted cell is empty");
    }

    #[test]
    fn an_ordinary_table_is_written_as_arrow_csv_writes_it() {
        let batch = RecordBatch::try_from_iter([
            (
                "week",
                Arc::new(StringArray::from(vec!["2024-W01", "2024-W02"])) as ArrayRef,
            ),
            (
                "ili",
                Arc::new(Int64Array::from(vec![Some(15), None])) as ArrayRef,
            ),
            (
                "ili_share",
                Arc::new(Float64Array::from(vec![Some(0.125), None])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut expected = Vec::new();
        arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut expected)
            .write(&batch)
            .unwrap();
        assert_eq!(csv(batch), String::from_utf8(expected).unwrap());
    }

    #[test]
    fn a_run_without_a_logistic_fit_has_no_model_file_but_an_unreadable_result_is_the_hosts_fault()
    {
        let logistic = serde_json::json!({"kind": "model-fit", "family": "logistic"});
        let counts = serde_json::json!({"kind": "study"});
        let table =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![8, 9])) as ArrayRef)])
                .unwrap();
        let ipc = carrel_pseudonym::to_ipc(&table).unwrap();
        let not_a_fit = to_onnx(&ipc, &counts).unwrap_err();
        assert!(matches!(not_a_fit, DownloadError::NotLogisticFit));
        assert!(not_a_fit.is_about_the_run());
        let no_estimates = to_onnx(&ipc, &logistic).unwrap_err();
        assert!(matches!(
            no_estimates,
            DownloadError::NotFittedRegression(_)
        ));
        assert!(no_estimates.is_about_the_run());
        let damaged = to_onnx(b"not arrow", &logistic).unwrap_err();
        assert!(matches!(damaged, DownloadError::NotArrow(_)));
        assert!(!damaged.is_about_the_run());
        assert!(!to_csv(b"not arrow").unwrap_err().is_about_the_run());
    }
}
