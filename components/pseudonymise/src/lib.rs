//! The pseudonymisation component: the host calls `pseudonymise` with the identified
//! consultations of a batch and gets back canonical rows as an Arrow IPC stream. Its
//! only capability is `carrel:eds/keyed-hash`: the HMAC keys stay in the host, so the
//! pseudonyms cannot be recomputed from inside any sandbox.

wit_bindgen::generate!({
    world: "carrel:eds/pseudonymiser",
    path: "../../wit",
});

use carrel::eds::keyed_hash;
use carrel::eds::types::{Coding, IdentifiedPatient};

/// The host's keyed hash, one import call per domain and batch.
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
    carrel_fhir::IdentifiedConsultation {
        source_encounter_id: row.source_encounter_id,
        start: row.start,
        class_code: row.class_code,
        diagnoses: row.diagnoses.into_iter().map(coding).collect(),
        discharge_disposition: row.discharge_disposition.map(coding),
        patient: patient(row.patient),
    }
}

struct Pseudonymiser;

impl Guest for Pseudonymiser {
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

export!(Pseudonymiser);
