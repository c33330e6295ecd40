//! carrel's pseudonymisation: identified consultations in, rows of the canonical schema
//! (ARCHITECTURE.md) out. Identifiers become keyed hashes computed by the host, which
//! alone holds the key ([`KeyedHasher`]); everything else is coarsened by [`rules`].
//! Names, addresses, phone numbers, source ids and exact birth dates are read, never
//! written.
//!
//! Pure Rust, so it builds for wasm32-wasip2 inside the pseudonymise component.

pub mod identity;
pub mod rules;
mod schema;

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use arrow_array::builder::{Date32Builder, ListBuilder, StringBuilder, UInt8Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::ArrowError;
use carrel_fhir::IdentifiedConsultation;
use carrel_fhir::date::{days_since_epoch, parse_date_time};

pub use schema::{COLUMN_GROUPS, canonical_schema, column_groups, diagnosis_item_field, group_of};

/// Keyed-hash domain of patient pseudonyms.
pub const PATIENT_DOMAIN: &str = "patient";
/// Keyed-hash domain of consultation pseudonyms.
pub const CONSULTATION_DOMAIN: &str = "consultation";

/// HMAC under a per-domain key the caller never sees (the WIT `keyed-hash` interface).
/// Each call crosses the sandbox boundary, so [`pseudonymise`] makes one per domain.
pub trait KeyedHasher {
    type Error: std::fmt::Display;

    /// Lower-case hex digests, one per item, in order.
    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, Self::Error>;
}

#[derive(Debug, thiserror::Error)]
pub enum PseudonymiseError {
    #[error("the keyed hash of domain `{domain}` failed: {message}")]
    Hash {
        domain: &'static str,
        message: String,
    },
    #[error("the keyed hash of domain `{domain}` returned {returned} digests for {sent} items")]
    HashCount {
        domain: &'static str,
        sent: usize,
        returned: usize,
    },
    #[error("row {row}: start `{start}` is not a FHIR dateTime with a day")]
    InvalidStart { row: usize, start: String },
    #[error("building the Arrow batch failed: {0}")]
    Arrow(#[from] ArrowError),
}

/// What the patient pseudonym of a consultation is computed from: its patient's identity
/// key ([`identity::identity_key`]: the NIR when valid, else the normalised identity
/// traits `FAMILY|FIRSTGIVEN|YYYY-MM-DD|sex`).
///
/// A patient with no NIR, no name and no birth date cannot be told from any other such
/// patient, and hashing their empty traits would link them all into one; each of their
/// consultations gets a patient pseudonym of its own instead (`unlinked|association|
/// encounter id`), which can never equal a NIR or a traits string.
pub fn patient_key(association: &str, consultation: &IdentifiedConsultation) -> String {
    identity::identity_key(&consultation.patient)
        .unwrap_or_else(|| unlinked_key(association, &consultation.source_encounter_id))
}

/// The identity key of a consultation whose patient has no identity ([`patient_key`]).
pub fn unlinked_key(association: &str, source_encounter_id: &str) -> String {
    format!("unlinked|{association}|{source_encounter_id}")
}

pub(crate) fn hash_all<H: KeyedHasher>(
    hasher: &mut H,
    domain: &'static str,
    items: &[Vec<u8>],
) -> Result<Vec<String>, PseudonymiseError> {
    let digests = hasher
        .hash(domain, items)
        .map_err(|error| PseudonymiseError::Hash {
            domain,
            message: error.to_string(),
        })?;
    if digests.len() != items.len() {
        return Err(PseudonymiseError::HashCount {
            domain,
            sent: items.len(),
            returned: digests.len(),
        });
    }
    Ok(digests)
}

/// The canonical rows of `rows`, all stamped with `association`. Keyed hashes are asked
/// for in two calls (one per domain, each patient once); with no rows, none is made.
pub fn pseudonymise<H: KeyedHasher>(
    association: &str,
    rows: &[IdentifiedConsultation],
    hasher: &mut H,
) -> Result<RecordBatch, PseudonymiseError> {
    let mut starts = Vec::with_capacity(rows.len());
    for (row, consultation) in rows.iter().enumerate() {
        let invalid = || PseudonymiseError::InvalidStart {
            row,
            start: consultation.start.clone(),
        };
        let start = parse_date_time(consultation.start.trim()).map_err(|_| invalid())?;
        let (Some(month), Some(day)) = (start.date.month, start.date.day) else {
            return Err(invalid());
        };
        let hour = start.time.map_or(0, |(hour, _)| hour);
        starts.push(((start.date.year, month, day), hour));
    }

    // Each patient is hashed once, however many consultations they had.
    let mut patient_of_row = Vec::with_capacity(rows.len());
    let mut patient_items: HashMap<Vec<u8>, usize> = HashMap::new();
    for consultation in rows {
        let key = patient_key(association, consultation).into_bytes();
        let next = patient_items.len();
        patient_of_row.push(*patient_items.entry(key).or_insert(next));
    }
    let mut unique_patients = vec![Vec::new(); patient_items.len()];
    for (key, index) in patient_items {
        unique_patients[index] = key;
    }
    let consultation_items: Vec<Vec<u8>> = rows
        .iter()
        .map(|c| format!("{association}|{}", c.source_encounter_id).into_bytes())
        .collect();
    let (patient_ids, consultation_ids) = if rows.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (
            identity::patient_pseudonyms(hasher, &unique_patients)?,
            hash_all(hasher, CONSULTATION_DOMAIN, &consultation_items)?,
        )
    };

    let count = rows.len();
    let digest_bytes = consultation_ids.first().map_or(64, String::len) * count;
    let mut consultation_id = StringBuilder::with_capacity(count, digest_bytes);
    let mut patient_id = StringBuilder::with_capacity(count, digest_bytes);
    let mut association_column = StringBuilder::with_capacity(count, association.len() * count);
    let mut date = Date32Builder::with_capacity(count);
    let mut hour = UInt8Builder::with_capacity(count);
    let mut age = UInt8Builder::with_capacity(count);
    let mut sex = StringBuilder::with_capacity(count, count);
    let mut departement = StringBuilder::with_capacity(count, 2 * count);
    let mut visit_type = StringBuilder::with_capacity(count, 6 * count);
    let mut diagnoses =
        ListBuilder::with_capacity(StringBuilder::new(), count).with_field(diagnosis_item_field());
    let mut outcome = StringBuilder::with_capacity(count, 7 * count);
    for (row, consultation) in rows.iter().enumerate() {
        let patient = &consultation.patient;
        let ((year, month, day), start_hour) = starts[row];
        consultation_id.append_value(&consultation_ids[row]);
        patient_id.append_value(&patient_ids[patient_of_row[row]]);
        association_column.append_value(association);
        date.append_value(days_since_epoch(year, month, day));
        hour.append_value(start_hour);
        age.append_option(
            patient
                .birth_date
                .as_deref()
                .and_then(|birth| rules::age_years(birth, (year, month, day))),
        );
        sex.append_value(rules::sex_code(patient.sex.as_deref()));
        departement.append_option(patient.postcode.as_deref().and_then(rules::departement));
        visit_type.append_value(rules::visit_type(consultation.class_code.as_deref()));
        for coding in &consultation.diagnoses {
            diagnoses
                .values()
                .append_value(rules::diagnosis_code(coding));
        }
        diagnoses.append(true);
        outcome.append_value(rules::outcome(consultation.discharge_disposition.as_ref()));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(consultation_id.finish()),
        Arc::new(patient_id.finish()),
        Arc::new(association_column.finish()),
        Arc::new(date.finish()),
        Arc::new(hour.finish()),
        Arc::new(age.finish()),
        Arc::new(sex.finish()),
        Arc::new(departement.finish()),
        Arc::new(visit_type.finish()),
        Arc::new(diagnoses.finish()),
        Arc::new(outcome.finish()),
    ];
    Ok(RecordBatch::try_new(canonical_schema(), columns)?)
}

/// The batch as an Arrow IPC stream (schema message, one batch, end marker).
pub fn to_ipc(batch: &RecordBatch) -> Result<Vec<u8>, PseudonymiseError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Every batch of an Arrow IPC stream.
pub fn from_ipc(bytes: &[u8]) -> Result<Vec<RecordBatch>, PseudonymiseError> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}
