//! Writing consultations as FHIR R4 resources, by hand: every string written comes from
//! the generator's own lists, none needs JSON escaping.

use std::fmt::Write as _;

use crate::calendar::civil;
use crate::consultation::Consultation;

/// Identifier system of the NIR (INS-NIR).
pub const NIR_SYSTEM: &str = "urn:oid:1.2.250.1.213.1.4.8";
const ICD10_SYSTEM: &str = "http://hl7.org/fhir/sid/icd-10";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const DISPOSITION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/discharge-disposition";
/// Base of the fullUrls of Bundle entries.
pub const BASE_URL: &str = "https://carrel.invalid/fhir";

/// A way a record is made unacceptable to the warehouse's reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// period.start in month 13.
    InvalidDate,
    /// A NIR whose key does not check.
    WrongNirKey,
    /// The Encounter's subject points at no Patient.
    DanglingSubject,
}

impl Fault {
    pub const ALL: [Fault; 3] = [
        Fault::InvalidDate,
        Fault::WrongNirKey,
        Fault::DanglingSubject,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::InvalidDate => "invalid-date",
            Fault::WrongNirKey => "wrong-nir-key",
            Fault::DanglingSubject => "dangling-subject",
        }
    }
}

fn date(day: i64) -> String {
    let (year, month, dom) = civil(day);
    format!("{year:04}-{month:02}-{dom:02}")
}

/// A NIR with its key moved by one, so it no longer checks.
fn spoil_key(nir: &str) -> String {
    let (body, key) = nir.split_at(13);
    let key: u32 = key.parse().unwrap_or(0);
    format!("{body}{:02}", key % 97 + 1)
}

/// The three resources of one consultation, each as one line of JSON without its
/// newline, in the order Patient, Encounter, Condition (absent without a diagnosis).
pub struct Resources {
    pub patient: String,
    pub encounter: String,
    pub condition: Option<String>,
}

/// The resources of consultation `id`, spoilt by `fault` when there is one.
pub fn resources(id: u64, consultation: &Consultation, fault: Option<Fault>) -> Resources {
    let c = consultation;
    let nir = match fault {
        Some(Fault::WrongNirKey) => spoil_key(&c.nir),
        _ => c.nir.clone(),
    };
    let mut patient = String::with_capacity(420);
    let _ = write!(
        patient,
        r#"{{"resourceType":"Patient","id":"p-{id}","identifier":[{{"system":"{NIR_SYSTEM}","value":"{nir}"}}],"name":[{{"family":"{}","given":["{}"]}}],"gender":"{}","birthDate":"{}","address":[{{"postalCode":"{}","country":"FR"}}],"telecom":[{{"system":"phone","value":"{}"}}]}}"#,
        c.family,
        c.given,
        if c.female { "female" } else { "male" },
        date(c.birth),
        c.association.postcode,
        c.phone,
    );
    let start = match fault {
        Some(Fault::InvalidDate) => {
            let (year, _, dom) = civil(c.day);
            format!("{year:04}-13-{dom:02}")
        }
        _ => date(c.day),
    };
    let subject = match fault {
        Some(Fault::DanglingSubject) => format!("Patient/missing-{id}"),
        _ => format!("Patient/p-{id}"),
    };
    let mut encounter = String::with_capacity(520);
    let _ = write!(
        encounter,
        r#"{{"resourceType":"Encounter","id":"e-{id}","status":"finished","class":{{"system":"{ACT_CODE_SYSTEM}","code":"{}"}},"subject":{{"reference":"{subject}"}},"serviceProvider":{{"display":"{}"}},"period":{{"start":"{start}T{:02}:{:02}:00{}"}},"hospitalization":{{"dischargeDisposition":{{"coding":[{{"system":"{DISPOSITION_SYSTEM}","code":"{}"}}]}}}}}}"#,
        c.visit.class_code(),
        c.association.name,
        c.hour,
        c.minute,
        c.association.offset(c.day),
        c.outcome.code(),
    );
    let condition = c.diagnosis.map(|code| {
        format!(
            r#"{{"resourceType":"Condition","id":"c-{id}","subject":{{"reference":"Patient/p-{id}"}},"encounter":{{"reference":"Encounter/e-{id}"}},"code":{{"coding":[{{"system":"{ICD10_SYSTEM}","code":"{code}"}}]}}}}"#
        )
    });
    Resources {
        patient,
        encounter,
        condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spoilt_key_differs_from_the_original() {
        assert_eq!(spoil_key("284127645108993"), "284127645108994");
        assert_eq!(spoil_key("284127645108997"), "284127645108901");
    }
}
