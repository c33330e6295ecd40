//! The responses of `POST /ingest/fhir`: OperationOutcomes for refusals, JSON receipts.

use serde_json::{Value, json};
use spin_sdk::http::{Response, StatusCode};

use crate::carrel::eds::types::{ObjectionReceipt, Receipt};

/// One error issue of an OperationOutcome (http://hl7.org/fhir/issue-type codes).
pub fn issue(code: &str, expression: &str, diagnostics: &str) -> Value {
    json!({"severity": "error", "code": code, "diagnostics": diagnostics, "expression": [expression]})
}

pub fn json_response(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", content_type.parse().expect("static header"));
    response
}

pub fn outcome_response(status: StatusCode, issues: &[Value]) -> Response<String> {
    let outcome = json!({"resourceType": "OperationOutcome", "issue": issues});
    json_response(status, "application/fhir+json", outcome.to_string())
}

/// The receipt as the client sees it (201 Created), and its JSON.
pub fn receipt_response(receipt: &Receipt) -> (StatusCode, String) {
    let body = json!({
        "batch_id": receipt.batch_id,
        "rows_accepted": receipt.rows_accepted,
        "segment": receipt.segment,
        "audit_seq": receipt.audit_seq,
        "rows_withheld": receipt.rows_withheld,
    });
    (StatusCode::CREATED, body.to_string())
}

/// A receipt given again for a batch key already stored: 200 and `Idempotent-Replay`.
pub fn replay_response(body: String) -> Response<String> {
    let mut response = json_response(StatusCode::OK, "application/json", body);
    response
        .headers_mut()
        .insert("idempotent-replay", "true".parse().expect("static header"));
    response
}

/// A registered objection (201 Created): counts and the audit entry, no identifier.
pub fn objection_response(receipt: &ObjectionReceipt) -> Response<String> {
    let body = json!({
        "objection": "registered",
        "newly_registered": receipt.newly_registered,
        "audit_seq": receipt.audit_seq,
    });
    json_response(StatusCode::CREATED, "application/json", body.to_string())
}
