//! Load: one `carrel up` under 64 concurrent ingestion clients (one per association) and
//! 4 concurrent study runs for a bounded time. No answer but success, or 429/503 with
//! `Retry-After` under overload; no record lost or duplicated; memory bounded; p99
//! ingestion latency reported.
//!
//! CI runs it for 60 s. A longer soak takes its duration in seconds from the environment:
//! `CARREL_SOAK_SECONDS=3600 cargo test --release --test soak -- --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::batches::{Batch, stored_segments, synthetic_batches};
use support::desk::{INGESTION, ili_section};
use support::{Carrel, TestApp, carrel_ok as run, guests};

const ASSOCIATIONS: usize = 64;
const STUDY_CLIENTS: usize = 4;
/// Resident memory the server must stay under, whatever the duration.
const MAX_RSS_MIB: u64 = 3 << 10;

/// What one client saw.
#[derive(Default)]
struct Tally {
    /// Acknowledged ingestion: segment id → rows.
    receipts: BTreeMap<String, u64>,
    latencies: Vec<Duration>,
    overloaded: u64,
    study_runs: u64,
    /// Anything other than success or 429/503 with Retry-After.
    errors: Vec<String>,
}

/// Waits as the server asked; a 429/503 without `Retry-After` is an error.
fn back_off(response: &reqwest::blocking::Response, tally: &mut Tally, what: &str) {
    tally.overloaded += 1;
    match response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        Some(seconds) => std::thread::sleep(Duration::from_secs(seconds.min(1))),
        None => tally
            .errors
            .push(format!("{what}: {} without Retry-After", response.status())),
    }
}

fn ingest_client(
    carrel: &Carrel,
    token: &str,
    association: usize,
    batches: &[Batch],
    stop: &AtomicBool,
) -> Tally {
    let mut tally = Tally::default();
    let mut sent = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let batch = &batches[(association + sent * ASSOCIATIONS) % batches.len()];
        let key = format!("soak-{association}-{sent}");
        let started = Instant::now();
        let response = carrel
            .client
            .post(carrel.url("/ingest/fhir"))
            .bearer_auth(token)
            .header("content-type", "application/fhir+ndjson")
            .header("idempotency-key", &key)
            .body(batch.body.clone())
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tally.errors.push(format!("{key}: {e}"));
                break;
            }
        };
        match response.status().as_u16() {
            201 => {
                tally.latencies.push(started.elapsed());
                let receipt: serde_json::Value =
                    serde_json::from_str(&response.text().unwrap()).unwrap();
                let segment = receipt["segment"].as_str().unwrap().to_owned();
                if receipt["rows_accepted"] != batch.rows {
                    tally.errors.push(format!("{key}: receipt {receipt}"));
                }
                if tally.receipts.insert(segment, batch.rows).is_some() {
                    tally
                        .errors
                        .push(format!("{key}: segment acknowledged twice"));
                }
                sent += 1;
            }
            429 | 503 => back_off(&response, &mut tally, &key),
            status => {
                let text = response.text().unwrap_or_default();
                tally.errors.push(format!("{key}: {status} {text}"));
                sent += 1;
            }
        }
    }
    tally
}

fn study_client(carrel: &Carrel, token: &str, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let response = carrel
            .client
            .post(carrel.url("/api/studies/ili-weekly/runs"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(r#"{"params": {"by": "national"}}"#)
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tally.errors.push(format!("study run: {e}"));
                break;
            }
        };
        match response.status().as_u16() {
            200 | 201 => {
                let record: serde_json::Value =
                    serde_json::from_str(&response.text().unwrap()).unwrap();
                if record["status"] == "succeeded" {
                    tally.study_runs += 1;
                } else {
                    tally.errors.push(format!("study run: {record}"));
                }
            }
            429 | 503 => back_off(&response, &mut tally, "study run"),
            status => {
                let text = response.text().unwrap_or_default();
                tally.errors.push(format!("study run: {status} {text}"));
            }
        }
    }
    tally
}

/// Resident set size of `pid` in MiB, from /proc.
fn rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn sixty_four_associations_and_four_studies_at_once_lose_nothing_and_stay_bounded() {
    let seconds: u64 = std::env::var("CARREL_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // The soak runs the study as often as it can: without a privacy budget (noise stays
    // on), or it would be spent within the minute on a fast machine.
    let studies =
        ili_section("[component.ili-weekly.tool.carrel.study.disclosure]\nepsilon_budget = 0\n");
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"soak\"\n{INGESTION}\n{studies}"
    )
    .replace("time_limit_seconds = 5", "time_limit_seconds = 120")
    .replace("memory_limit_mb = 64", "memory_limit_mb = 256");
    let app = TestApp::new(
        &manifest,
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
            ("ili_weekly.wasm", guests::ILI_WEEKLY),
        ],
    );
    let state = app.path().join("state");
    let state_arg = state.to_str().unwrap().to_owned();
    let manifest_arg = app.manifest().to_str().unwrap().to_owned();
    run(&state, &["keys", "init"]);
    let token = |args: &[&str]| {
        let out = run(&state, &[&["tokens", "add"], args].concat());
        let id = out.split_whitespace().nth(1).unwrap().to_owned();
        (id, out.lines().last().unwrap().trim().to_owned())
    };
    let ingest_tokens: Vec<String> = (0..ASSOCIATIONS)
        .map(|a| token(&["--association", &format!("sos-{a:02}"), "--role", "ingest"]).1)
        .collect();
    let (_, auditor) = token(&["--role", "auditor"]);
    let (researcher_id, researcher) = token(&["--role", "researcher"]);
    let study = ["-f", manifest_arg.as_str()];
    // The researcher submits it, so owns it and may run it.
    run(
        &state,
        &[
            &["study", "submit", "ili-weekly", "--by", &researcher_id],
            &study[..],
        ]
        .concat(),
    );
    run(
        &state,
        &[
            &["study", "approve", "ili-weekly", "--token", &auditor],
            &study[..],
        ]
        .concat(),
    );
    let batches = synthetic_batches(&app.path().join("synth"), 8000, 20, "soak");

    let config = app.path().join("runtime-config.toml");
    std::fs::write(&config, "[disclosure]\nepsilon_budget = 0\n").unwrap();
    let carrel = Carrel::start(
        &app.manifest(),
        &[
            "--state-dir",
            &state_arg,
            "--runtime-config-file",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let pid = carrel.child.id();
    let stop = AtomicBool::new(false);
    let rss = Mutex::new(Vec::new());
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let mut clients = Vec::new();
        for (association, token) in ingest_tokens.iter().enumerate() {
            let (carrel, batches, stop) = (&carrel, &batches, &stop);
            clients.push(
                scope.spawn(move || ingest_client(carrel, token, association, batches, stop)),
            );
        }
        for _ in 0..STUDY_CLIENTS {
            let (carrel, researcher, stop) = (&carrel, &researcher, &stop);
            clients.push(scope.spawn(move || study_client(carrel, researcher, stop)));
        }
        while started.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(Duration::from_millis(250));
            if let Some(mib) = rss_mib(pid) {
                rss.lock().unwrap().push(mib);
            }
        }
        stop.store(true, Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let (status, _) = carrel.terminate();
    assert!(status.success(), "carrel up exited with {status}");

    let errors: Vec<&String> = tallies.iter().flat_map(|t| &t.errors).collect();
    assert!(
        errors.is_empty(),
        "{} errors: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    let mut acknowledged = BTreeMap::new();
    for tally in &tallies {
        acknowledged.extend(tally.receipts.iter().map(|(s, r)| (s.clone(), *r)));
    }
    let stored = stored_segments(&state);
    let acknowledged_rows: u64 = acknowledged.values().sum();
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "segments stored vs acknowledged"
    );
    for (segment, rows) in &acknowledged {
        assert_eq!(stored.get(segment), Some(rows), "segment {segment}");
    }
    let study_runs: u64 = tallies.iter().map(|t| t.study_runs).sum();
    assert!(
        study_runs >= STUDY_CLIENTS as u64,
        "{study_runs} study runs"
    );

    let rss = rss.into_inner().unwrap();
    let peak = rss.iter().copied().max().unwrap_or(0);
    let half = rss.len() / 2;
    let first_half = rss[..half].iter().copied().max().unwrap_or(0);
    let second_half = rss[half..].iter().copied().max().unwrap_or(0);
    assert!(peak < MAX_RSS_MIB, "peak RSS {peak} MiB");
    let mut latencies: Vec<Duration> = tallies.iter().flat_map(|t| t.latencies.clone()).collect();
    latencies.sort();
    let overloaded: u64 = tallies.iter().map(|t| t.overloaded).sum();
    eprintln!(
        "soak {:.0} s: {} ingestion requests ({:.0}/s, {:.0} consultations/s), p50 {:?}, p99 {:?}, \
         {overloaded} answered 429/503 with Retry-After, {study_runs} study runs, \
         0 lost or duplicated of {acknowledged_rows} rows, peak RSS {peak} MiB \
         (first half {first_half}, second half {second_half})",
        elapsed.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        acknowledged_rows as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}
