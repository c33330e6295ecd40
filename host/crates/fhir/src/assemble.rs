//! From the resources of a payload to one identified consultation per Encounter:
//! references are followed (every problem reported), then rows are built.

use std::collections::HashSet;

use crate::collect::{Collector, NIR_SYSTEMS, Resources};
use crate::model::{Coding, IdentifiedConsultation, IdentifiedPatient, Ingested, is_icd10_system};
use crate::nir::validate_nir;
use crate::problem::{IssueCode, Problems, Refusal};
use crate::raw::{self, CodeableConcept, Reference};
use crate::reference::Kind;
use crate::resolve::Index;

/// Country codes and names of addresses whose postcode is a French one: France and the
/// overseas départements (ISO 3166 alpha-2, alpha-3 and numeric).
const FRENCH_COUNTRIES: &[&str] = &[
    "fr", "fra", "france", "250", "gp", "glp", "mq", "mtq", "gf", "guf", "re", "reu", "yt", "myt",
];

fn resolve_or_report(
    index: &Index<'_>,
    problems: &mut Problems,
    reference: &Reference<'_>,
    expected: Kind,
    location: impl FnOnce() -> String,
) -> Option<usize> {
    match index.resolve(reference, expected) {
        Ok(position) => Some(position),
        Err(unresolved) => {
            problems.push(
                unresolved.code(),
                location(),
                unresolved.message(reference, expected),
            );
            None
        }
    }
}

/// The links found while checking references: each Encounter's patient, and the
/// Conditions attached to Encounters (through Condition.encounter, then through
/// Encounter.diagnosis), as (encounter, condition) pairs sorted by encounter.
struct Links {
    patient_of_encounter: Vec<usize>,
    conditions_pointing_at: Vec<(usize, usize)>,
    diagnosis_conditions: Vec<(usize, usize)>,
}

fn follow_references(
    resources: &Resources<'_>,
    index: &Index<'_>,
    problems: &mut Problems,
) -> Links {
    let mut conditions_pointing_at = Vec::new();
    for (position, condition) in resources.conditions.iter().enumerate() {
        let site = condition.site;
        if let Some(subject) = &condition.resource.subject {
            resolve_or_report(index, problems, subject, Kind::Patient, || {
                site.element("Condition", "subject")
            });
        }
        if let Some(encounter) = &condition.resource.encounter
            && let Some(target) =
                resolve_or_report(index, problems, encounter, Kind::Encounter, || {
                    site.element("Condition", "encounter")
                })
        {
            conditions_pointing_at.push((target, position));
        }
    }
    // Stable: Conditions keep their payload order within an Encounter.
    conditions_pointing_at.sort_by_key(|&(encounter, _)| encounter);

    let mut patient_of_encounter = Vec::with_capacity(resources.encounters.len());
    let mut diagnosis_conditions = Vec::new();
    for (position, encounter) in resources.encounters.iter().enumerate() {
        let site = encounter.site;
        let patient = encounter.resource.subject.as_ref().and_then(|subject| {
            resolve_or_report(index, problems, subject, Kind::Patient, || {
                site.element("Encounter", "subject")
            })
        });
        // A missing subject was reported when the Encounter was read.
        patient_of_encounter.push(patient.unwrap_or(usize::MAX));
        for (diagnosis_index, diagnosis) in encounter.resource.diagnosis.iter().enumerate() {
            let location = || {
                site.element(
                    "Encounter",
                    &format!("diagnosis[{diagnosis_index}].condition"),
                )
            };
            match &diagnosis.condition {
                Some(condition) => {
                    if let Some(target) =
                        resolve_or_report(index, problems, condition, Kind::Condition, location)
                    {
                        diagnosis_conditions.push((position, target));
                    }
                }
                None => problems.push(
                    IssueCode::Required,
                    location(),
                    "the diagnosis has no condition reference".to_owned(),
                ),
            }
        }
    }
    Links {
        patient_of_encounter,
        conditions_pointing_at,
        diagnosis_conditions,
    }
}

fn owned(text: &Option<raw::Text<'_>>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

pub(crate) fn identify(patient: &raw::Patient<'_>) -> IdentifiedPatient {
    let nir = NIR_SYSTEMS.iter().find_map(|system| {
        patient
            .identifier
            .iter()
            .filter(|identifier| identifier.system.as_deref() == Some(system))
            .find_map(|identifier| validate_nir(identifier.value.as_deref()?).ok())
    });
    let name = ["official", "usual"]
        .iter()
        .find_map(|wanted| {
            patient
                .name
                .iter()
                .find(|name| name.name_use.as_deref() == Some(wanted))
        })
        .or(patient.name.first());
    let postcode = patient
        .address
        .iter()
        .find(|address| {
            address
                .postal_code
                .as_deref()
                .is_some_and(|code| !code.trim().is_empty())
        })
        .filter(|address| match address.country.as_deref() {
            None => true,
            Some(country) => FRENCH_COUNTRIES
                .iter()
                .any(|french| french.eq_ignore_ascii_case(country.trim())),
        })
        .and_then(|address| owned(&address.postal_code));
    IdentifiedPatient {
        nir: nir.map(|nir| nir.into_string()),
        family: name.and_then(|name| owned(&name.family)),
        given: name.and_then(|name| name.given.iter().find_map(owned)),
        birth_date: owned(&patient.birth_date),
        sex: owned(&patient.gender),
        postcode,
        telecom: patient
            .telecom
            .iter()
            .filter_map(|contact| owned(&contact.value))
            .collect(),
    }
}

/// The codings of one consultation, in order, without repeats. The set makes each
/// addition constant time: ten thousand Conditions pointing at one Encounter would
/// otherwise be compared with each other, a hundred million times.
#[derive(Default)]
struct Diagnoses {
    listed: Vec<Coding>,
    seen: HashSet<(Option<String>, String)>,
    /// Bytes of the listed codes and systems.
    bytes: usize,
}

/// Most bytes of identified data the consultations of one payload may carry. Each
/// consultation repeats its patient and diagnoses, so a payload well under the body
/// limit could otherwise expand a thousandfold (one patient of a megabyte of telecoms
/// with a hundred thousand Encounters) and exhaust the component's memory. Real
/// payloads carry a few hundred bytes per consultation, far below this.
pub const MAX_IDENTIFIED_BYTES: usize = 64 << 20;

/// What a consultation costs beyond its strings: its fields and vectors.
const CONSULTATION_OVERHEAD: usize = 256;

fn text_len(value: &Option<String>) -> usize {
    value.as_ref().map_or(0, String::len)
}

fn identified_bytes(patient: &IdentifiedPatient) -> usize {
    let text = text_len;
    text(&patient.nir)
        + text(&patient.family)
        + text(&patient.given)
        + text(&patient.birth_date)
        + text(&patient.sex)
        + text(&patient.postcode)
        + patient
            .telecom
            .iter()
            .map(|value| value.len() + 24)
            .sum::<usize>()
}

/// Adds a concept's ICD-10 codings, or its first coding when it has none, skipping
/// codings already listed.
fn add_concept(diagnoses: &mut Diagnoses, concept: &CodeableConcept<'_>) {
    let usable = |coding: &&raw::Coding<'_>| {
        coding
            .code
            .as_deref()
            .is_some_and(|code| !code.trim().is_empty())
    };
    let is_icd10 =
        |coding: &&raw::Coding<'_>| coding.system.as_deref().is_some_and(is_icd10_system);
    let mut add = |coding: &raw::Coding<'_>| {
        let system = coding
            .system
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let code = coding.code.as_deref().unwrap_or_default().trim();
        let coding = Coding {
            system: system.map(str::to_owned),
            code: code.to_owned(),
        };
        if diagnoses
            .seen
            .insert((coding.system.clone(), coding.code.clone()))
        {
            diagnoses.bytes += coding.code.len() + text_len(&coding.system) + 32;
            diagnoses.listed.push(coding);
        }
    };
    if concept
        .coding
        .iter()
        .filter(usable)
        .any(|coding| is_icd10(&coding))
    {
        concept
            .coding
            .iter()
            .filter(usable)
            .filter(is_icd10)
            .for_each(&mut add);
    } else if let Some(first) = concept.coding.iter().find(usable) {
        add(first);
    }
}

/// The pairs of `pairs` (sorted by their first element) whose first element is `key`.
fn paired_with(pairs: &[(usize, usize)], key: usize) -> impl Iterator<Item = usize> + '_ {
    let start = pairs.partition_point(|&(first, _)| first < key);
    pairs[start..]
        .iter()
        .take_while(move |&&(first, _)| first == key)
        .map(|&(_, second)| second)
}

/// Checks every reference, then builds the rows, or refuses the payload with every
/// problem found along the way. `whole` names the payload in a problem about it all.
pub(crate) fn finish(
    collector: Collector<'_>,
    whole: &str,
    bundle_id: Option<String>,
) -> Result<Ingested, Refusal> {
    let Collector {
        resources,
        ignored,
        mut problems,
    } = collector;
    if resources.encounters.is_empty() {
        problems.push(
            IssueCode::Required,
            whole.to_owned(),
            "the payload holds no Encounter: there is no consultation to store".to_owned(),
        );
    }
    let index = Index::build(&resources, &mut problems);
    let links = follow_references(&resources, &index, &mut problems);
    if !problems.is_empty() {
        return Err(problems.into_refusal(whole));
    }

    let patients: Vec<IdentifiedPatient> = resources
        .patients
        .iter()
        .map(|p| identify(&p.resource))
        .collect();
    let patient_bytes: Vec<usize> = patients.iter().map(identified_bytes).collect();
    let mut consultations = Vec::with_capacity(resources.encounters.len());
    let mut total_bytes = 0usize;
    for (position, located) in resources.encounters.iter().enumerate() {
        let encounter = &located.resource;
        let mut diagnoses = Diagnoses::default();
        for condition in paired_with(&links.conditions_pointing_at, position)
            .chain(paired_with(&links.diagnosis_conditions, position))
        {
            if let Some(code) = &resources.conditions[condition].resource.code {
                add_concept(&mut diagnoses, code);
            }
        }
        for reason in &encounter.reason_code {
            add_concept(&mut diagnoses, reason);
        }
        let discharge_disposition = encounter
            .hospitalization
            .as_ref()
            .and_then(|stay| stay.discharge_disposition.as_ref())
            .and_then(|concept| concept.coding.iter().find(|coding| coding.code.is_some()))
            .map(|coding| Coding {
                system: owned(&coding.system),
                code: coding.code.as_deref().unwrap_or_default().trim().to_owned(),
            });
        let source_encounter_id = encounter
            .id
            .as_deref()
            .or(located.full_url.as_deref())
            .unwrap_or_default()
            .to_owned();
        let patient = links.patient_of_encounter[position];
        total_bytes += patient_bytes[patient]
            + diagnoses.bytes
            + source_encounter_id.len()
            + CONSULTATION_OVERHEAD;
        if total_bytes > MAX_IDENTIFIED_BYTES {
            let mut problems = Problems::default();
            problems.push(
                    IssueCode::TooCostly,
                    whole.to_owned(),
                    format!(
                        "the consultations up to Encounter number {} already carry more than {} MiB of identified data (each repeats its patient and diagnoses): send them in smaller payloads",
                        position + 1,
                        MAX_IDENTIFIED_BYTES >> 20
                    ),
                );
            return Err(problems.into_refusal(whole));
        }
        consultations.push(IdentifiedConsultation {
            source_encounter_id,
            start: encounter
                .period
                .as_ref()
                .and_then(|period| period.start.as_deref())
                .unwrap_or_default()
                .to_owned(),
            class_code: encounter
                .class
                .as_ref()
                .and_then(|class| owned(&class.code)),
            diagnoses: diagnoses.listed,
            discharge_disposition,
            patient: patients[patient].clone(),
        });
    }
    Ok(Ingested {
        consultations,
        bundle_id,
        patients: resources.patients.len(),
        conditions: resources.conditions.len(),
        ignored,
    })
}
