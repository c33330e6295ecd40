//! The identified consultation, as `carrel:eds/types` (wit/eds.wit) describes it: these
//! structs mirror the WIT records field for field, so a component converts between the
//! two by moving fields.

use std::collections::BTreeMap;

/// A code as the source sent it (WIT `coding`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coding {
    pub system: Option<String>,
    pub code: String,
}

/// A patient as the association identified them (WIT `identified-patient`). Direct
/// identifiers: they never reach storage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentifiedPatient {
    /// The NIR/INS, normalised (spaces removed, `2A`/`2B` upper-cased), when the source
    /// sent one; the reader refuses a payload whose NIR key does not check.
    pub nir: Option<String>,
    pub family: Option<String>,
    /// The first given name.
    pub given: Option<String>,
    /// FHIR date as sent: `YYYY-MM-DD`, or `YYYY-MM` / `YYYY` when the source only knew that.
    pub birth_date: Option<String>,
    /// FHIR administrative gender: male, female, other, unknown.
    pub sex: Option<String>,
    /// Postcode of the first address that has one, kept only when that address is in
    /// France (no country, or a French country code/name): the warehouse derives a
    /// French département from it, and a foreign postcode would name the wrong one.
    pub postcode: Option<String>,
    pub telecom: Vec<String>,
}

/// One consultation (FHIR Encounter) with its references resolved (WIT
/// `identified-consultation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifiedConsultation {
    /// The source's Encounter id (the entry's fullUrl when a transaction entry has no id).
    pub source_encounter_id: String,
    /// Encounter.period.start as sent.
    pub start: String,
    /// Encounter.class code (HH, AMB, VR, …).
    pub class_code: Option<String>,
    /// Conditions pointing at the Encounter, then Encounter.diagnosis, then
    /// Encounter.reasonCode; from each concept its ICD-10 codings, else its first coding;
    /// without repeats.
    pub diagnoses: Vec<Coding>,
    /// The first coding of Encounter.hospitalization.dischargeDisposition.
    pub discharge_disposition: Option<Coding>,
    pub patient: IdentifiedPatient,
}

/// What a payload held once accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// One per Encounter, in payload order.
    pub consultations: Vec<IdentifiedConsultation>,
    /// Bundle.id, when a Bundle was sent with one.
    pub bundle_id: Option<String>,
    /// How many Patient and Condition resources were read.
    pub patients: usize,
    pub conditions: usize,
    /// Resources of other types, which are skipped, counted by resourceType.
    pub ignored: BTreeMap<String, usize>,
}

/// Code systems whose codes are ICD-10 (CIM-10 in France) and are kept as they are.
pub fn is_icd10_system(system: &str) -> bool {
    matches!(
        system.trim_end_matches('/'),
        "http://hl7.org/fhir/sid/icd-10"
            | "http://hl7.org/fhir/sid/icd-10-fr"
            | "http://hl7.org/fhir/sid/icd-10-cm"
            | "urn:oid:2.16.840.1.113883.6.3"
            | "urn:oid:2.16.840.1.113883.6.90"
            | "https://smt.esante.gouv.fr/terminologie-cim-10"
    )
}
