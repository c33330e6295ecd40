//! The host's check of a pseudonymiser's output, before anything is stored: the exact
//! canonical schema, one row per consultation, the authenticated association on every row,
//! and no string anywhere that parses as a valid NIR. The pseudonymiser is a sandboxed
//! component and is not trusted to have done its job.

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

pub fn canonical_rows(
    ipc: &[u8],
    association: &str,
    expected_rows: usize,
) -> Result<RecordBatch, String> {
    let batches = carrel_pseudonym::from_ipc(ipc)
        .map_err(|e| format!("the pseudonymiser's output is not an Arrow IPC stream: {e}"))?;
    let schema = carrel_pseudonym::canonical_schema();
    for batch in &batches {
        let got = batch.schema();
        if got.fields() != schema.fields() {
            let names: Vec<_> = got
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect();
            return Err(format!(
                "the pseudonymiser's output is not the canonical schema (got {})",
                names.join(", ")
            ));
        }
    }
    let batch =
        arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| e.to_string())?;
    if batch.num_rows() != expected_rows {
        return Err(format!(
            "the pseudonymiser returned {} rows for {expected_rows} consultations",
            batch.num_rows()
        ));
    }
    let associations = batch
        .column_by_name("association")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("association column missing")?;
    if associations.null_count() > 0 || associations.iter().any(|a| a != Some(association)) {
        return Err(
            "the association column names another association than the authenticated client".into(),
        );
    }
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let strings = match field.data_type() {
            DataType::Utf8 => Some(column.as_string::<i32>().clone()),
            DataType::List(_) => column
                .as_list::<i32>()
                .values()
                .as_string_opt::<i32>()
                .cloned(),
            _ => None,
        };
        if let Some(strings) = strings
            && strings
                .iter()
                .flatten()
                .any(carrel_fhir::nir::looks_like_valid_nir)
        {
            return Err(format!(
                "column `{}` holds a value that parses as a valid NIR",
                field.name()
            ));
        }
    }
    Ok(batch)
}
