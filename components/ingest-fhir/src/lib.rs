//! `POST /ingest/fhir`: an association's FHIR R4 Bundle (`application/fhir+json`) or
//! Bulk Data NDJSON (`application/fhir+ndjson`) is read by carrel-fhir and, when nothing
//! is wrong with it, handed whole to the host through `carrel:eds/ingest.submit`, which
//! pseudonymises, encrypts, stores and audits it. A payload with any problem is refused
//! whole with a FHIR OperationOutcome and nothing is submitted.
//!
//! A FHIR `Consent` with a deny provision, sent as `application/fhir+json`, is a patient's
//! objection: its identifiers go to the host through `carrel:eds/ingest.object`.
//!
//! Idempotency: the batch key is the `Idempotency-Key` header, else Bundle.id, else the
//! SHA-256 of the body. Receipts are kept in the `default` key-value store so that a
//! replay is answered without a host call; the host's own receipts stay authoritative.

spin_sdk::wit_bindgen::generate!({
    world: "carrel:eds/ingester",
    path: "../../wit",
    runtime_path: "spin_sdk::wit_bindgen::rt",
    generate_all,
});

mod answer;

use carrel::eds::ingest::{self, IngestError};
use carrel::eds::types::{Coding, IdentifiedConsultation, IdentifiedPatient};
use carrel_fhir::{Ingested, PayloadFormat};
use sha2::{Digest, Sha256};
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{Method, Request, Response, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

use answer::{issue, outcome_response, receipt_response};

/// Longest `Idempotency-Key` accepted; the key also names a key-value entry.
const MAX_IDEMPOTENCY_KEY: usize = 200;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The batch key: namespaced by where it came from, so a Bundle.id can never collide
/// with a client's key or a body digest.
fn batch_key(header: Option<&str>, ingested: &Ingested, body: &[u8]) -> String {
    match (header, &ingested.bundle_id) {
        (Some(key), _) => format!("key:{key}"),
        (None, Some(id)) => format!("bundle:{id}"),
        (None, None) => format!("sha256:{}", hex(&Sha256::digest(body))),
    }
}

/// The header in which the host names the association of the calling ingest token. The
/// host removes the client's credentials (and any header of this name a client sends)
/// before this component sees the request.
const CALLER_ASSOCIATION: &str = "carrel-caller-association";

/// Where this association's receipt for `key` is kept. Associations choose their keys
/// independently ("batch-1" could come from two of them), so the entry is scoped by the
/// association, as the host's own receipts are.
fn receipt_entry(association: Option<&str>, key: &str) -> String {
    let scope = match association {
        Some(code) => hex(&Sha256::digest(code.as_bytes())[..12]),
        None => "anonymous".to_owned(),
    };
    format!(
        "ingest/receipts/{scope}/{}",
        hex(&Sha256::digest(key.as_bytes()))
    )
}

fn to_wit_coding(coding: carrel_fhir::Coding) -> Coding {
    Coding {
        system: coding.system,
        code: coding.code,
    }
}

fn to_wit(consultation: carrel_fhir::IdentifiedConsultation) -> IdentifiedConsultation {
    let patient = consultation.patient;
    IdentifiedConsultation {
        source_encounter_id: consultation.source_encounter_id,
        start: consultation.start,
        class_code: consultation.class_code,
        diagnoses: consultation
            .diagnoses
            .into_iter()
            .map(to_wit_coding)
            .collect(),
        discharge_disposition: consultation.discharge_disposition.map(to_wit_coding),
        patient: to_wit_patient(patient),
    }
}

fn to_wit_patient(patient: carrel_fhir::IdentifiedPatient) -> IdentifiedPatient {
    IdentifiedPatient {
        nir: patient.nir,
        family: patient.family,
        given: patient.given,
        birth_date: patient.birth_date,
        sex: patient.sex,
        postcode: patient.postcode,
        telecom: patient.telecom,
    }
}

/// A patient's objection, as a FHIR Consent with a deny provision: read here, handed to
/// the host, which keeps only the keyed hashes of the identifiers. The answer names no
/// identifier.
fn object(body: &[u8]) -> Response<String> {
    let patient = match carrel_fhir::parse_objection(body) {
        Ok(patient) => patient,
        Err(refusal) => {
            return answer::json_response(
                StatusCode::BAD_REQUEST,
                "application/fhir+json",
                carrel_fhir::operation_outcome(&refusal.problems).to_string(),
            );
        }
    };
    let patient = to_wit_patient(patient);
    match ingest::object(&patient) {
        Ok(receipt) => answer::objection_response(&receipt),
        Err(IngestError::Refused(why)) => outcome_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &[issue("processing", "Consent.patient", &why)],
        ),
        Err(IngestError::AccessDenied(why)) => outcome_response(
            StatusCode::FORBIDDEN,
            &[issue("forbidden", "Consent", &why)],
        ),
        Err(IngestError::Other(why)) => outcome_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[issue("exception", "Consent", &why)],
        ),
    }
}

#[http_service]
async fn handle(request: Request) -> Response<String> {
    if request.method() != Method::POST {
        let mut refused = outcome_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &[issue(
                "not-supported",
                "method",
                "only POST is accepted here",
            )],
        );
        refused
            .headers_mut()
            .insert("allow", "POST".parse().expect("static header"));
        return refused;
    }
    let headers = request.headers();
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(format) = PayloadFormat::from_content_type(content_type) else {
        return outcome_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &[issue(
                "not-supported",
                "Content-Type",
                "send application/fhir+json (a Bundle) or application/fhir+ndjson, in UTF-8",
            )],
        );
    };
    let idempotency_key = match headers.get("idempotency-key").map(|value| value.to_str()) {
        None => None,
        Some(Ok(key)) if (1..=MAX_IDEMPOTENCY_KEY).contains(&key.trim().len()) => {
            Some(key.trim().to_owned())
        }
        Some(_) => {
            return outcome_response(
                StatusCode::BAD_REQUEST,
                &[issue(
                    "invalid",
                    "Idempotency-Key",
                    "the Idempotency-Key header must be 1 to 200 visible ASCII characters",
                )],
            );
        }
    };
    let association = headers
        .get(CALLER_ASSOCIATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = match request.into_body().bytes().await {
        Ok(body) => body,
        Err(error) => {
            return outcome_response(
                StatusCode::BAD_REQUEST,
                &[issue(
                    "incomplete",
                    "body",
                    &format!("the body could not be read: {error:?}"),
                )],
            );
        }
    };
    if format == PayloadFormat::Bundle && carrel_fhir::is_consent(&body) {
        return object(&body);
    }
    let ingested = match format.parse(&body) {
        Ok(ingested) => ingested,
        Err(refusal) => {
            return answer::json_response(
                StatusCode::BAD_REQUEST,
                "application/fhir+json",
                carrel_fhir::operation_outcome(&refusal.problems).to_string(),
            );
        }
    };
    let key = batch_key(idempotency_key.as_deref(), &ingested, &body);
    let entry = receipt_entry(association.as_deref(), &key);
    // The store is a cache in front of the host's own receipts: when it fails, the
    // submit below still returns the first receipt for this key.
    let store = Store::open("default").await.ok();
    if let Some(store) = &store
        && let Ok(Some(stored)) = store.get(&entry).await
        && let Ok(stored) = String::from_utf8(stored)
    {
        return answer::replay_response(stored);
    }
    let rows: Vec<IdentifiedConsultation> =
        ingested.consultations.into_iter().map(to_wit).collect();
    match ingest::submit(&key, &rows) {
        Ok(receipt) => {
            let (status, body) = receipt_response(&receipt);
            if let Some(store) = &store {
                // Best effort, as above.
                let _ = store.set(&entry, body.as_bytes()).await;
            }
            if receipt.replayed {
                answer::replay_response(body)
            } else {
                answer::json_response(status, "application/json", body)
            }
        }
        Err(IngestError::Refused(why)) => outcome_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            &[issue("processing", "payload", &why)],
        ),
        Err(IngestError::AccessDenied(why)) => outcome_response(
            StatusCode::FORBIDDEN,
            &[issue("forbidden", "payload", &why)],
        ),
        Err(IngestError::Other(why)) => outcome_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[issue("exception", "payload", &why)],
        ),
    }
}
