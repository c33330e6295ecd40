//! carrel's FHIR R4 reader: what an association sends to `POST /ingest/fhir` (a Bundle
//! or Bulk Data NDJSON) becomes one [`IdentifiedConsultation`] per Encounter, with its
//! Patient and diagnoses resolved, or is refused whole with every [`Problem`] found,
//! which [`operation_outcome`] turns into the FHIR answer.
//!
//! Resources are parsed with serde into structs that borrow from the payload and hold
//! only the elements the warehouse reads; everything else is skipped unbuilt.

mod assemble;
mod bundle;
mod collect;
mod consent;
pub mod date;
mod depth;
mod model;
mod ndjson;
pub mod nir;
mod problem;
mod raw;
mod reference;
mod resolve;
mod utf8;

pub use assemble::MAX_IDENTIFIED_BYTES;
pub use bundle::{ACCEPTED_BUNDLE_TYPES, parse_bundle};
pub use collect::{MAX_RESOURCE_BYTES, NIR_SYSTEMS};
pub use consent::{is_consent, parse_objection};
pub use depth::MAX_DEPTH;
pub use model::{Coding, IdentifiedConsultation, IdentifiedPatient, Ingested, is_icd10_system};
pub use ndjson::{ndjson_lines, parse_ndjson};
pub use nir::{Nir, NirError, looks_like_valid_nir, validate_nir};
pub use problem::{
    IssueCode, MAX_LISTED_PROBLEMS, MAX_MESSAGE_BYTES, MAX_QUOTED_CHARS, Problem, Refusal, clip,
    operation_outcome,
};

/// The two payload formats of `POST /ingest/fhir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `application/fhir+json` (or `application/json`): a Bundle.
    Bundle,
    /// `application/fhir+ndjson`, `application/x-ndjson` or `application/ndjson`.
    Ndjson,
}

impl PayloadFormat {
    /// The format named by a Content-Type header value, or `None` for any other media
    /// type or for a `charset` other than UTF-8 (FHIR JSON is UTF-8 only; other
    /// parameters such as `fhirVersion` are ignored).
    pub fn from_content_type(content_type: &str) -> Option<PayloadFormat> {
        let mut parts = content_type.split(';');
        let media_type = parts.next().unwrap_or_default().trim();
        for parameter in parts {
            if let Some((name, value)) = parameter.split_once('=')
                && name.trim().eq_ignore_ascii_case("charset")
                && !["utf-8", "utf8"]
                    .iter()
                    .any(|utf8| value.trim().trim_matches('"').eq_ignore_ascii_case(utf8))
            {
                return None;
            }
        }
        let is = |name: &str| media_type.eq_ignore_ascii_case(name);
        if is("application/fhir+json") || is("application/json") {
            Some(PayloadFormat::Bundle)
        } else if is("application/fhir+ndjson")
            || is("application/x-ndjson")
            || is("application/ndjson")
        {
            Some(PayloadFormat::Ndjson)
        } else {
            None
        }
    }

    /// Reads a payload of this format.
    pub fn parse(self, body: &[u8]) -> Result<Ingested, Refusal> {
        match self {
            PayloadFormat::Bundle => parse_bundle(body),
            PayloadFormat::Ndjson => parse_ndjson(body),
        }
    }
}
