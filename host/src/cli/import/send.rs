//! `carrel import`: sends FHIR files through the same ingestion path as an association's
//! client would (the ingest component, the pseudonymiser, the host's checks), by starting
//! the app in-process on a loopback port with a short-lived token for the association.

use anyhow::{Context, bail};
use carrel_runtime::server::{ServerOptions, serve};
use carrel_warehouse::app::{App, AppOptions};
use carrel_warehouse::tokens::Role;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The route the ingest component serves in the warehouse's spin.toml.
const INGEST_ROUTE: &str = "/ingest/fhir";

#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Requests sent (a Bulk Data export directory is one).
    pub files: usize,
    pub rows: u64,
    /// Consultations not stored because their patient objected.
    pub withheld: u64,
    pub replayed_files: usize,
    pub refused: Vec<(PathBuf, String)>,
}

/// One request's worth of input: a file, or the files of a Bulk Data export directory,
/// whose references cross files (`Patient.000.ndjson`, `Encounter.000.ndjson`, …) and so
/// must be sent together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub files: Vec<PathBuf>,
}

fn is_bulk_export_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".ndjson") && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// The payloads to send: each FILE alone; in each DIR, a Bulk Data export's NDJSON files
/// together, and every other `.ndjson`/`.json` file alone, in name order (but the
/// `ground-truth.json` that `carrel synth` writes beside its data).
pub fn collect_payloads(paths: &[PathBuf]) -> anyhow::Result<Vec<Payload>> {
    let mut payloads = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| content_type(p).is_some())
                // `carrel synth` writes what its data hold beside them: not FHIR.
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()) != Some(carrel_synth::GROUND_TRUTH_FILE)
                })
                .collect();
            found.sort();
            let (bulk, single): (Vec<_>, Vec<_>) =
                found.into_iter().partition(|p| is_bulk_export_file(p));
            if !bulk.is_empty() {
                payloads.push(Payload { files: bulk });
            }
            payloads.extend(single.into_iter().map(|f| Payload { files: vec![f] }));
        } else if path.is_file() {
            payloads.push(Payload {
                files: vec![path.clone()],
            });
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    Ok(payloads)
}

fn content_type(path: &Path) -> Option<&'static str> {
    match path.extension()?.to_str()? {
        "ndjson" => Some("application/fhir+ndjson"),
        "json" => Some("application/fhir+json"),
        _ => None,
    }
}

/// Serves the app in process on a loopback port and posts `payloads` to its ingestion
/// route with a fresh ingest token for `association`. Instances left idle after the last
/// request still hold the warehouse (and its lock) until they expire or their runtime is
/// dropped, so a caller that opens the warehouse next runs this on a runtime of its own.
pub async fn import(
    options: &AppOptions,
    association: &str,
    payloads: &[Payload],
) -> anyhow::Result<ImportSummary> {
    let app = App::load(options)?;
    let warehouse = app
        .warehouse
        .as_ref()
        .context("this app has no ingestion component (no [component.*.tool.carrel] ingest)")?;
    let (token_id, token) =
        warehouse
            .tokens
            .add(Some(association), Role::Ingest, None, "import")?;
    let state_dir = app.runtime.state_dir.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}{INGEST_ROUTE}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        std::sync::Arc::new(carrel::front::Host(app)),
        listener,
        ServerOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));

    let total_bytes: u64 = payloads
        .iter()
        .flat_map(|p| &p.files)
        .map(|f| f.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    let progress = carrel_warehouse::progress::Progress::new("import", total_bytes);
    let client = reqwest::Client::new();
    let mut summary = ImportSummary::default();
    let started = Instant::now();
    for payload in payloads {
        let file = &payload.files[0];
        let mut body = Vec::new();
        for part in &payload.files {
            let bytes =
                std::fs::read(part).with_context(|| format!("cannot read {}", part.display()))?;
            body.extend_from_slice(&bytes);
            if !body.ends_with(b"\n") && !body.is_empty() {
                body.push(b'\n');
            }
        }
        let size = body.len() as u64;
        let key = format!(
            "import:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body))
        );
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .header(
                "content-type",
                content_type(file).unwrap_or("application/fhir+ndjson"),
            )
            .header("idempotency-key", key)
            .body(body)
            .timeout(Duration::from_secs(600))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        summary.files += 1;
        if status.is_success() {
            // 200 is a replay of a batch stored before: its rows are not counted again.
            if status.as_u16() == 200 {
                summary.replayed_files += 1;
            } else {
                let receipt: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                summary.rows += receipt["rows_accepted"].as_u64().unwrap_or(0);
                summary.withheld += receipt["rows_withheld"].as_u64().unwrap_or(0);
            }
        } else {
            summary.refused.push((
                file.clone(),
                format!("{status}: {}", text.chars().take(2000).collect::<String>()),
            ));
        }
        let rate = summary.rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(size, &format!("{} rows, {rate:.0} rows/s", summary.rows));
    }
    progress.finish();
    // The app (and its token store) moved into the server task; revoke through a new handle.
    carrel_warehouse::tokens::TokenStore::open(&state_dir)?.revoke(&token_id, "import")?;
    let _ = stop.send(());
    server.await??;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_export_directory_is_one_payload_other_files_go_alone_and_synths_ground_truth_is_left_out()
     {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "Patient.000.ndjson",
            "Encounter.000.ndjson",
            "consultations-0001.ndjson",
            "bundle-0001.json",
            "ground-truth.json",
            "notes.txt",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let payloads = collect_payloads(&[dir.path().to_owned()]).unwrap();
        let names: Vec<Vec<String>> = payloads
            .iter()
            .map(|p| {
                p.files
                    .iter()
                    .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                    .collect()
            })
            .collect();
        assert_eq!(
            names,
            vec![
                vec![
                    "Encounter.000.ndjson".to_owned(),
                    "Patient.000.ndjson".to_owned()
                ],
                vec!["bundle-0001.json".to_owned()],
                vec!["consultations-0001.ndjson".to_owned()],
            ]
        );
        assert!(collect_payloads(&[dir.path().join("missing")]).is_err());
    }
}
