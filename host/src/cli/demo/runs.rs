//! How the demo runs its studies: an identical earlier run (same study, parameters,
//! binary, manifest and researcher, and no data since) is reused rather than run again, so
//! `carrel demo` restarts quickly.

use carrel_warehouse::study::registry::{RunRecord, RunStatus};
use carrel_warehouse::study::{Caller, StudyService};
use time::OffsetDateTime;

/// The instant of an RFC 3339 timestamp of the catalog or the registry.
pub(crate) fn instant(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()
}

/// Runs `id` with `param` unless an identical run (same study, parameters, binary,
/// manifest and no data since) succeeded before, and says which.
pub(crate) async fn run_or_reuse(
    desk: &StudyService,
    researcher: &Caller,
    id: &str,
    param: &str,
    newest_data: Option<OffsetDateTime>,
) -> anyhow::Result<RunRecord> {
    let params: Vec<(String, String)> = param
        .split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let wasm = desk.current_wasm_sha256(id)?;
    let manifest = &desk.spec(id)?.manifest_sha256;
    // A refusal by disclosure control is as reproducible as a success.
    let previous = desk.registry.runs(Some(id))?.into_iter().find(|r| {
        (r.status == RunStatus::Succeeded
            || r.error
                .as_deref()
                .is_some_and(|e| e.starts_with("disclosure control")))
            && r.params == params
            && r.actor == researcher.actor()
            && r.wasm_sha256 == wasm
            && &r.manifest_sha256 == manifest
            && instant(&r.started_at) > newest_data
    });
    let (record, verb) = match previous {
        Some(record) => (record, "reused"),
        None => (desk.run(id, params.clone(), researcher).await?.0, "ran"),
    };
    println!(
        "Study {}: {verb} {}: {}, {} rows read, {} released{}",
        format!("{id} {param}").trim_end(),
        record.run_id,
        record.status,
        record.rows_read,
        record.rows_released,
        record
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    );
    Ok(record)
}
