//! Consultations of patients who objected are withheld before the pseudonymiser sees
//! them: the host computes each row's patient pseudonym itself, with the pseudonymiser's
//! own normalisation and key ([`carrel_pseudonym::identity`]), and leaves out those in
//! the objection register. The receipt and the audit count them, never saying whose.

use crate::ingest::bindings::carrel::eds::types::IdentifiedConsultation;
use crate::patients::PatientRights;
use crate::patients::objections::ObjectionSet;
use carrel_vault::{AuditAction, AuditEvent};

/// Audit action of rows withheld from a batch (counts only).
pub const WITHHELD_ACTION: &str = "ingest.withheld";

/// The identity key the pseudonymiser hashes for this row's patient
/// ([`carrel_pseudonym::patient_key`], from the WIT record).
fn identity_key(association: &str, row: &IdentifiedConsultation) -> String {
    let patient = &row.patient;
    let identified = carrel_fhir::IdentifiedPatient {
        nir: patient.nir.clone(),
        family: patient.family.clone(),
        given: patient.given.clone(),
        birth_date: patient.birth_date.clone(),
        sex: patient.sex.clone(),
        ..Default::default()
    };
    carrel_pseudonym::identity::identity_key(&identified)
        .unwrap_or_else(|| carrel_pseudonym::unlinked_key(association, &row.source_encounter_id))
}

/// Each row's patient pseudonym, as the pseudonymiser must write it.
pub fn row_pseudonyms(
    rights: &PatientRights,
    association: &str,
    rows: &[IdentifiedConsultation],
) -> Result<Vec<String>, crate::patients::PatientsError> {
    let keys: Vec<Vec<u8>> = rows
        .iter()
        .map(|row| identity_key(association, row).into_bytes())
        .collect();
    rights.pseudonyms_of(&keys)
}

/// Keeps the rows (and their pseudonyms) of patients who did not object.
pub fn retain_unobjected(
    objections: &ObjectionSet,
    rows: &mut Vec<IdentifiedConsultation>,
    pseudonyms: &mut Vec<String>,
) {
    if objections.pseudonyms.is_empty() {
        return;
    }
    let keep: Vec<bool> = pseudonyms.iter().map(|p| !objections.contains(p)).collect();
    let mut index = 0;
    rows.retain(|_| {
        index += 1;
        keep[index - 1]
    });
    pseudonyms.retain(|p| !objections.contains(p));
}

/// Audits `withheld` rows of the batch keyed `key_sha256` (stored as `segment`, or not
/// stored at all) inside the caller's transaction; returns the entry's sequence number.
pub fn audit(
    tx: &rusqlite::Transaction<'_>,
    association: &str,
    dataset: &str,
    key_sha256: &str,
    withheld: u64,
    segment: Option<&str>,
) -> rusqlite::Result<u64> {
    let event = AuditEvent::new(
        association,
        AuditAction::Other(WITHHELD_ACTION.into()),
        format!("dataset:{dataset}"),
    )
    .with_details(serde_json::json!({
        "batch_key_sha256": key_sha256,
        "rows_withheld": withheld,
        "segment": segment,
    }));
    carrel_vault::audit::append_in_transaction(tx, &event)
        .map(|head| head.seq)
        .map_err(|e| match e {
            carrel_vault::VaultError::Sqlite(e) => e,
            other => rusqlite::Error::ToSqlConversionFailure(Box::new(other)),
        })
}
