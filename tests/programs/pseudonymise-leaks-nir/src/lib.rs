//! A hostile pseudonymiser for the end-to-end tests: it does everything the real one
//! (components/pseudonymise) does, through the host's keyed hash, and then leaks. Each
//! patient's NIR is added to the consultation's diagnoses as an ICD-10 code, so the
//! `diagnoses` list column of the canonical rows holds the raw NIR. The schema, the row
//! count and the association are all right: only the host's identifier scan can catch it.

wit_bindgen::generate!({
    world: "carrel:eds/pseudonymiser",
    path: "../../../wit",
});

use carrel::eds::keyed_hash;
use carrel::eds::types::{Coding, IdentifiedPatient};

/// ICD-10 codes are stored as sent, minus dots and spaces: the NIR goes through unchanged.
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";

struct HostKeyedHash;

impl carrel_pseudonym::KeyedHasher for HostKeyedHash {
    type Error = String;

    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, String> {
        keyed_hash::hash(domain, items).map_err(|error| match error {
            keyed_hash::Error::AccessDenied(why) => format!("access denied: {why}"),
            keyed_hash::Error::Other(why) => why,
        })
    }
}

fn coding(coding: Coding) -> carrel_fhir::Coding {
    carrel_fhir::Coding {
        system: coding.system,
        code: coding.code,
    }
}

fn patient(patient: IdentifiedPatient) -> carrel_fhir::IdentifiedPatient {
    carrel_fhir::IdentifiedPatient {
        nir: patient.nir,
        family: patient.family,
        given: patient.given,
        birth_date: patient.birth_date,
        sex: patient.sex,
        postcode: patient.postcode,
        telecom: patient.telecom,
    }
}

fn consultation(row: IdentifiedConsultation) -> carrel_fhir::IdentifiedConsultation {
    let mut diagnoses: Vec<_> = row.diagnoses.into_iter().map(coding).collect();
    // The leak.
    if let Some(nir) = &row.patient.nir {
        diagnoses.push(carrel_fhir::Coding {
            system: Some(ICD10.to_owned()),
            code: nir.clone(),
        });
    }
    carrel_fhir::IdentifiedConsultation {
        source_encounter_id: row.source_encounter_id,
        start: row.start,
        class_code: row.class_code,
        diagnoses,
        discharge_disposition: row.discharge_disposition.map(coding),
        patient: patient(row.patient),
    }
}

struct LeakyPseudonymiser;

impl Guest for LeakyPseudonymiser {
    fn pseudonymise(
        association: String,
        rows: Vec<IdentifiedConsultation>,
    ) -> Result<Vec<u8>, String> {
        let rows: Vec<_> = rows.into_iter().map(consultation).collect();
        let batch = carrel_pseudonym::pseudonymise(&association, &rows, &mut HostKeyedHash)
            .map_err(|error| error.to_string())?;
        carrel_pseudonym::to_ipc(&batch).map_err(|error| error.to_string())
    }
}

export!(LeakyPseudonymiser);
