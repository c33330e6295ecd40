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

/// The pseudonymiser's `patient_id` of every row must be the keyed hash the host
/// computed for that row's patient: otherwise an objection, which the host matches by
/// that hash, would miss the rows.
pub fn patient_ids(batch: &RecordBatch, expected: &[String]) -> Result<(), String> {
    let written = batch
        .column_by_name("patient_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("patient_id column missing")?;
    for (row, expected) in expected.iter().enumerate() {
        if !written.is_valid(row) || written.value(row) != expected {
            return Err(format!(
                "row {row}: the pseudonymiser's patient_id is not the host's keyed hash of the row's patient"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeHasher;

    impl carrel_pseudonym::KeyedHasher for FakeHasher {
        type Error = String;
        fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, String> {
            Ok(items
                .iter()
                .enumerate()
                .map(|(i, _)| format!("{domain}{i:060}"))
                .collect())
        }
    }

    fn rows(association: &str) -> Vec<u8> {
        let consultation = carrel_fhir::IdentifiedConsultation {
            source_encounter_id: "enc-1".into(),
            start: "2025-01-14T22:10:00+01:00".into(),
            class_code: Some("HH".into()),
            diagnoses: vec![carrel_fhir::Coding {
                system: Some("http://hl7.org/fhir/sid/icd-10".into()),
                code: "J11".into(),
            }],
            discharge_disposition: None,
            patient: carrel_fhir::IdentifiedPatient {
                nir: Some("184127645108946".into()),
                birth_date: Some("1984-12-03".into()),
                sex: Some("male".into()),
                postcode: Some("35000".into()),
                ..Default::default()
            },
        };
        let batch =
            carrel_pseudonym::pseudonymise(association, &[consultation], &mut FakeHasher).unwrap();
        carrel_pseudonym::to_ipc(&batch).unwrap()
    }

    /// Rebuilds the rows with one string column replaced, as a leaking pseudonymiser would.
    fn with_column(ipc: &[u8], name: &str, value: &str) -> Vec<u8> {
        let batch = carrel_pseudonym::from_ipc(ipc).unwrap().remove(0);
        let schema = batch.schema();
        let columns = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| {
                if f.name() == name {
                    std::sync::Arc::new(arrow_array::StringArray::from(vec![value]))
                        as arrow_array::ArrayRef
                } else {
                    c.clone()
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        carrel_pseudonym::to_ipc(&batch).unwrap()
    }

    #[test]
    fn honest_pseudonymiser_output_passes() {
        let batch = canonical_rows(&rows("sos-brest"), "sos-brest", 1).unwrap();
        assert_eq!(batch.num_rows(), 1);
    }

    #[test]
    fn output_holding_a_valid_nir_is_refused_naming_the_column() {
        let leaked = with_column(&rows("sos-brest"), "departement", "184127645108946");
        let err = canonical_rows(&leaked, "sos-brest", 1).unwrap_err();
        assert!(
            err.contains("`departement`") && err.contains("NIR"),
            "{err}"
        );
        assert!(
            !err.contains("184127645108946"),
            "the refusal must not repeat the identifier"
        );
    }

    #[test]
    fn a_patient_id_other_than_the_hosts_hash_is_refused_naming_the_row() {
        let batch = canonical_rows(&rows("sos-brest"), "sos-brest", 1).unwrap();
        let written = batch
            .column_by_name("patient_id")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_owned();
        patient_ids(&batch, std::slice::from_ref(&written)).unwrap();
        let err = patient_ids(&batch, &["f".repeat(64)]).unwrap_err();
        assert!(
            err.starts_with("row 0:") && err.contains("patient_id"),
            "{err}"
        );
    }

    #[test]
    fn output_naming_another_association_is_refused() {
        let err = canonical_rows(&rows("sos-brest"), "sos-quimper", 1).unwrap_err();
        assert!(err.contains("association"), "{err}");
    }

    #[test]
    fn output_with_missing_rows_or_not_arrow_is_refused() {
        assert!(
            canonical_rows(&rows("a"), "a", 2)
                .unwrap_err()
                .contains("1 rows for 2")
        );
        assert!(
            canonical_rows(b"not arrow", "a", 1)
                .unwrap_err()
                .contains("not an Arrow IPC stream")
        );
    }
}
