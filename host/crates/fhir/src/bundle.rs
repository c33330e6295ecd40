//! FHIR R4 Bundles of type transaction, batch or collection.

use crate::assemble::finish;
use crate::collect::{Collector, Site, bare_message};
use crate::depth::{MAX_DEPTH, find_too_deep};
use crate::model::Ingested;
use crate::problem::{IssueCode, Problem, Refusal, clip, cut_message};
use crate::raw::{self, Bundle, Header};
use crate::utf8::not_utf8;

/// Bundle types whose entries are resources to store. A searchset, document, history
/// or message Bundle carries something else (search results, a signed document, …).
pub const ACCEPTED_BUNDLE_TYPES: [&str; 3] = ["transaction", "batch", "collection"];

const WHOLE_BUNDLE: &str = "Bundle";

fn refuse(code: IssueCode, location: String, message: String) -> Refusal {
    Refusal {
        problems: vec![Problem {
            code,
            location,
            message: cut_message(message),
        }],
    }
}

fn malformed(error: &serde_json::Error) -> Refusal {
    refuse(
        IssueCode::Structure,
        format!("line {}, column {}", error.line(), error.column()),
        format!("malformed JSON: {}", bare_message(error)),
    )
}

/// Reads `application/fhir+json`: a Bundle whose entries are resources (fullUrl
/// `urn:uuid:…` or absolute URLs), one consultation per Encounter entry, or a refusal
/// listing every problem located by FHIRPath (`Bundle.entry[3].resource.subject`).
pub fn parse_bundle(body: &[u8]) -> Result<Ingested, Refusal> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Some(why) = not_utf8(body) {
        return Err(refuse(IssueCode::Structure, WHOLE_BUNDLE.to_owned(), why));
    }
    if let Some(too_deep) = find_too_deep(body, MAX_DEPTH) {
        return Err(refuse(
            IssueCode::Structure,
            format!("line {}, column {}", too_deep.line, too_deep.column),
            format!("JSON nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(error) => malformed(&error),
                Ok(_) => refuse(
                    IssueCode::Structure,
                    WHOLE_BUNDLE.to_owned(),
                    "expected a JSON object (a FHIR Bundle)".to_owned(),
                ),
            },
        );
    }
    let resource_type = match raw::sniff_resource_type(body) {
        Some(name) => Some(name.to_owned()),
        None => serde_json::from_slice::<Header>(body)
            .map_err(|error| malformed(&error))?
            .resource_type
            .map(|name| name.0.into_owned()),
    };
    if resource_type.as_deref() != Some("Bundle") {
        let found = resource_type.map_or("an object without resourceType".to_owned(), |name| {
            format!("a {}", clip(&name))
        });
        return Err(refuse(
            IssueCode::Structure,
            "resourceType".to_owned(),
            format!("expected a Bundle, found {found}: send single resources as NDJSON"),
        ));
    }
    let bundle: Bundle = serde_json::from_slice(body).map_err(|error| {
        if error.is_data() {
            refuse(
                IssueCode::Structure,
                WHOLE_BUNDLE.to_owned(),
                bare_message(&error),
            )
        } else {
            malformed(&error)
        }
    })?;

    let mut collector = Collector::default();
    match bundle.bundle_type.as_deref() {
        Some(kind) if ACCEPTED_BUNDLE_TYPES.contains(&kind) => {}
        Some(kind) => collector.problem(
            IssueCode::NotSupported,
            "Bundle.type".to_owned(),
            format!(
                "a {} Bundle is not ingested: send a {}",
                clip(kind),
                ACCEPTED_BUNDLE_TYPES.join(", ")
            ),
        ),
        None => collector.problem(
            IssueCode::Required,
            "Bundle.type".to_owned(),
            "the Bundle has no type".to_owned(),
        ),
    }
    for (index, entry) in bundle.entry.into_iter().enumerate() {
        // Entries without a resource (a transaction's DELETE) carry nothing to store.
        if let Some(resource) = entry.resource {
            collector.add(
                resource.get().as_bytes(),
                Site::Entry(index),
                entry.full_url,
                true,
            );
        }
    }
    finish(
        collector,
        WHOLE_BUNDLE,
        bundle.id.map(|id| id.0.into_owned()),
    )
}
