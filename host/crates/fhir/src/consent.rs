//! A patient's objection, sent as a FHIR R4 `Consent` with a deny provision: who objects
//! is read from a `contained` Patient the Consent's `patient` refers to (`#id`), or from
//! a logical reference by NIR (`patient.identifier`). Only the identifiers the
//! pseudonymiser hashes are read; the rest of the Consent is not kept.
//!
//! ```json
//! {"resourceType": "Consent", "status": "active",
//!  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
//!  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
//!  "patient": {"reference": "#p"},
//!  "contained": [{"resourceType": "Patient", "id": "p",
//!                 "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "269054958815780"}],
//!                 "name": [{"family": "Kerjean", "given": ["Maëlle"]}],
//!                 "birthDate": "1969-05-02", "gender": "female"}],
//!  "provision": {"type": "deny"}}
//! ```

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::assemble::identify;
use crate::collect::{MAX_RESOURCE_BYTES, NIR_SYSTEMS, bare_message};
use crate::depth::{MAX_DEPTH, find_too_deep};
use crate::model::IdentifiedPatient;
use crate::nir::validate_nir;
use crate::problem::{IssueCode, Problems, Refusal};
use crate::raw::{self, Text};
use crate::utf8::not_utf8;

/// How the Consent as a whole is named in problems about it.
const WHOLE: &str = "Consent";

#[derive(Deserialize)]
struct Consent<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    status: Option<Text<'a>>,
    #[serde(borrow)]
    patient: Option<raw::Reference<'a>>,
    #[serde(default, borrow)]
    contained: Vec<&'a RawValue>,
    #[serde(borrow)]
    provision: Option<Provision<'a>>,
}

#[derive(Deserialize)]
struct Provision<'a> {
    #[serde(rename = "type", borrow)]
    provision_type: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ContainedHeader<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
}

fn refusal(code: IssueCode, location: &str, message: String) -> Refusal {
    let mut problems = Problems::default();
    problems.push(code, location.to_owned(), message);
    problems.into_refusal(WHOLE)
}

/// Whether a JSON body is a FHIR resource of type `Consent` (by its first member, as
/// exporters write it, or by a full read of its header).
pub fn is_consent(body: &[u8]) -> bool {
    match raw::sniff_resource_type(body) {
        Some(found) => found == "Consent",
        None => serde_json::from_slice::<raw::Header<'_>>(body)
            .ok()
            .and_then(|h| h.resource_type)
            .is_some_and(|t| &*t == "Consent"),
    }
}

/// The identifiers of the patient who objects, from a Consent (`application/fhir+json`),
/// or a refusal naming the element and why. An active Consent with a `deny` provision is
/// an objection; any other Consent is refused, as is a NIR whose key does not check.
pub fn parse_objection(body: &[u8]) -> Result<IdentifiedPatient, Refusal> {
    if body.len() > MAX_RESOURCE_BYTES {
        return Err(refusal(
            IssueCode::TooCostly,
            WHOLE,
            format!("a Consent is at most {MAX_RESOURCE_BYTES} bytes"),
        ));
    }
    if let Some(why) = not_utf8(body) {
        return Err(refusal(IssueCode::Structure, WHOLE, why));
    }
    if let Some(too_deep) = find_too_deep(body, MAX_DEPTH) {
        return Err(refusal(
            IssueCode::Structure,
            WHOLE,
            format!(
                "JSON nested deeper than {MAX_DEPTH} levels (line {}, column {})",
                too_deep.line, too_deep.column
            ),
        ));
    }
    let consent: Consent<'_> = serde_json::from_slice(body).map_err(|error| {
        refusal(
            IssueCode::Structure,
            WHOLE,
            format!("not a readable Consent: {}", bare_message(&error)),
        )
    })?;
    if consent.resource_type.as_deref() != Some("Consent") {
        return Err(refusal(
            IssueCode::Structure,
            "Consent.resourceType",
            "an objection is a FHIR Consent resource".to_owned(),
        ));
    }
    if consent.status.as_deref().map(str::trim) != Some("active") {
        return Err(refusal(
            IssueCode::Value,
            "Consent.status",
            "only an `active` Consent registers an objection".to_owned(),
        ));
    }
    let denies = consent
        .provision
        .as_ref()
        .and_then(|p| p.provision_type.as_deref())
        .map(str::trim)
        == Some("deny");
    if !denies {
        return Err(refusal(
            IssueCode::Value,
            "Consent.provision.type",
            "an objection is a Consent whose provision type is `deny`".to_owned(),
        ));
    }
    let Some(reference) = &consent.patient else {
        return Err(refusal(
            IssueCode::Required,
            "Consent.patient",
            "the Consent does not say who objects".to_owned(),
        ));
    };
    match reference.reference.as_deref().map(str::trim) {
        Some(local) if local.starts_with('#') => {
            contained_patient(&consent.contained, &local[1..])
        }
        Some(_) => Err(refusal(
            IssueCode::NotSupported,
            "Consent.patient.reference",
            "refer to the patient as a contained Patient (`#id`) or by NIR (`patient.identifier`): the warehouse keeps no patient to point at".to_owned(),
        )),
        None => by_identifier(reference.identifier.as_ref()),
    }
}

fn contained_patient(contained: &[&RawValue], id: &str) -> Result<IdentifiedPatient, Refusal> {
    for (index, resource) in contained.iter().enumerate() {
        let location = format!("Consent.contained[{index}]");
        let header: ContainedHeader<'_> = serde_json::from_str(resource.get())
            .map_err(|error| refusal(IssueCode::Structure, &location, bare_message(&error)))?;
        if header.resource_type.as_deref() != Some("Patient") || header.id.as_deref() != Some(id) {
            continue;
        }
        let patient: raw::Patient<'_> = serde_json::from_str(resource.get()).map_err(|error| {
            refusal(
                IssueCode::Structure,
                &location,
                format!("not a readable Patient: {}", bare_message(&error)),
            )
        })?;
        for (n, identifier) in patient.identifier.iter().enumerate() {
            check_nir(identifier, &format!("{location}.identifier[{n}].value"))?;
        }
        return Ok(identify(&patient));
    }
    Err(refusal(
        IssueCode::NotFound,
        "Consent.patient.reference",
        "no contained Patient has the id the reference names".to_owned(),
    ))
}

fn by_identifier(identifier: Option<&raw::Identifier<'_>>) -> Result<IdentifiedPatient, Refusal> {
    let location = "Consent.patient.identifier";
    let Some(identifier) = identifier else {
        return Err(refusal(
            IssueCode::Required,
            "Consent.patient",
            "the patient reference has neither a contained Patient nor a NIR".to_owned(),
        ));
    };
    if !is_nir_system(identifier) {
        return Err(refusal(
            IssueCode::NotSupported,
            &format!("{location}.system"),
            format!("a patient is named by NIR (system {})", NIR_SYSTEMS[0]),
        ));
    }
    check_nir(identifier, &format!("{location}.value"))?;
    Ok(IdentifiedPatient {
        nir: identifier
            .value
            .as_deref()
            .and_then(|value| validate_nir(value).ok())
            .map(|nir| nir.into_string()),
        ..Default::default()
    })
}

fn is_nir_system(identifier: &raw::Identifier<'_>) -> bool {
    identifier
        .system
        .as_deref()
        .is_some_and(|system| NIR_SYSTEMS.contains(&system))
}

/// A NIR identifier whose key does not check is refused: dropping it would register the
/// objection under fewer identities than the patient gave.
fn check_nir(identifier: &raw::Identifier<'_>, location: &str) -> Result<(), Refusal> {
    if !is_nir_system(identifier) {
        return Ok(());
    }
    match identifier.value.as_deref() {
        Some(value) => validate_nir(value).map(drop).map_err(|error| {
            refusal(
                IssueCode::Value,
                location,
                format!("the NIR does not check: {error}"),
            )
        }),
        None => Err(refusal(
            IssueCode::Required,
            location,
            "the NIR identifier has no value".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NIR: &str = "269054958815780";

    fn consent(patient: serde_json::Value, contained: serde_json::Value) -> Vec<u8> {
        json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"code": "research"}]},
            "patient": patient, "contained": contained,
            "provision": {"type": "deny"}
        })
        .to_string()
        .into_bytes()
    }

    fn contained_kerjean(nir: &str) -> serde_json::Value {
        json!([{"resourceType": "Patient", "id": "p",
                "identifier": [{"system": NIR_SYSTEMS[0], "value": nir}],
                "name": [{"family": "Kerjean", "given": ["Maëlle"]}],
                "birthDate": "1969-05-02", "gender": "female"}])
    }

    #[test]
    fn a_deny_consent_names_the_contained_patients_identifiers() {
        let body = consent(json!({"reference": "#p"}), contained_kerjean(NIR));
        assert!(is_consent(&body));
        let patient = parse_objection(&body).unwrap();
        assert_eq!(patient.nir.as_deref(), Some(NIR));
        assert_eq!(patient.family.as_deref(), Some("Kerjean"));
        assert_eq!(patient.given.as_deref(), Some("Maëlle"));
        assert_eq!(patient.birth_date.as_deref(), Some("1969-05-02"));
        assert_eq!(patient.sex.as_deref(), Some("female"));
    }

    #[test]
    fn a_deny_consent_may_name_the_patient_by_nir_alone() {
        let body = consent(
            json!({"identifier": {"system": NIR_SYSTEMS[0], "value": "2 69 05 49 588 157 80"}}),
            json!([]),
        );
        let patient = parse_objection(&body).unwrap();
        assert_eq!(patient.nir.as_deref(), Some(NIR));
        assert_eq!(patient.family, None);
    }

    #[test]
    fn a_consent_that_permits_or_is_not_active_is_not_an_objection() {
        let mut permit: serde_json::Value =
            serde_json::from_slice(&consent(json!({"reference": "#p"}), contained_kerjean(NIR)))
                .unwrap();
        permit["provision"]["type"] = json!("permit");
        let refused = parse_objection(permit.to_string().as_bytes()).unwrap_err();
        assert_eq!(refused.problems[0].location, "Consent.provision.type");
        permit["provision"]["type"] = json!("deny");
        permit["status"] = json!("draft");
        let refused = parse_objection(permit.to_string().as_bytes()).unwrap_err();
        assert_eq!(refused.problems[0].location, "Consent.status");
    }

    #[test]
    fn a_nir_that_does_not_check_is_refused_without_being_repeated() {
        let body = consent(
            json!({"reference": "#p"}),
            contained_kerjean("269054958815781"),
        );
        let refused = parse_objection(&body).unwrap_err();
        let problem = &refused.problems[0];
        assert_eq!(problem.location, "Consent.contained[0].identifier[0].value");
        assert!(problem.message.contains("does not check"), "{problem}");
        assert!(!problem.message.contains("269054958815781"), "{problem}");
    }

    #[test]
    fn a_reference_to_nothing_or_to_a_server_patient_is_refused() {
        let missing = consent(json!({"reference": "#q"}), contained_kerjean(NIR));
        assert_eq!(
            parse_objection(&missing).unwrap_err().problems[0].code,
            IssueCode::NotFound
        );
        let remote = consent(json!({"reference": "Patient/123"}), json!([]));
        assert_eq!(
            parse_objection(&remote).unwrap_err().problems[0].code,
            IssueCode::NotSupported
        );
        let nobody = consent(json!({}), json!([]));
        assert_eq!(
            parse_objection(&nobody).unwrap_err().problems[0].location,
            "Consent.patient"
        );
        assert!(!is_consent(br#"{"resourceType":"Bundle"}"#));
        assert!(parse_objection(b"{\"resourceType\":\"Consent\",").is_err());
    }
}
