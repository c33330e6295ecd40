//! What `carrel study` prints: the reading's progress, a run as a researcher sees it, and
//! a synthetic try in full.

use carrel_warehouse::progress::Progress;
use carrel_warehouse::study::metadata::terminal_safe;
use carrel_warehouse::study::registry::RunRecord;
use carrel_warehouse::study::registry::RunStatus;
use carrel_warehouse::study::spec::ReadObserver;
use carrel_warehouse::study::view::{ResearcherRun, duration_text};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Rows read, as the progress shows them, are rounded to this: the exact figure is the
/// auditors'.
const ROWS_SHOWN_TO: u64 = 1000;

/// The reading of a run as a progress bar: segments decrypted of those planned, with the
/// rows handed to the study (to the thousand) and their rate. It starts when the study
/// opens its first scan (compiling the study is not reading).
#[derive(Default)]
pub struct RunProgress {
    started: OnceLock<(Progress, Instant)>,
    rows: AtomicU64,
}

impl RunProgress {
    pub fn finish(&self) {
        if let Some((progress, _)) = self.started.get() {
            progress.finish();
        }
    }
}

fn about(n: u64) -> u64 {
    (n + ROWS_SHOWN_TO / 2) / ROWS_SHOWN_TO * ROWS_SHOWN_TO
}

impl ReadObserver for RunProgress {
    fn planned(&self, segments: u64) {
        let mut created = false;
        let (progress, _) = self.started.get_or_init(|| {
            created = true;
            (Progress::new("reading segments", segments), Instant::now())
        });
        if !created {
            progress.grow(segments);
        }
    }

    fn read(&self, segments: u64, rows: u64) {
        let Some((progress, started)) = self.started.get() else {
            return;
        };
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(
            segments,
            &format!("about {} rows, {} rows/s", about(rows), about(rate as u64)),
        );
    }
}

pub fn exit_code(status: RunStatus) -> ExitCode {
    if status == RunStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A run in full: for `study try --synthetic`, whose data holds no one. What the study
/// wrote (its log, its error text) is shown with control characters escaped.
pub fn print_record(r: &RunRecord) {
    println!(
        "run {} of {}: {}{}",
        r.run_id,
        r.study,
        r.status,
        r.error
            .as_deref()
            .map(|e| format!(": {}", terminal_safe(e)))
            .unwrap_or_default()
    );
    println!(
        "  read {} rows from {} segments; released {} rows",
        r.rows_read,
        r.segments_read.len(),
        r.rows_released
    );
    if !r.disclosure.is_null() {
        println!("  disclosure control: {}", r.disclosure);
    }
    if let Some(p) = &r.privacy {
        println!("  {}", privacy_text(p.charged, p.spent, p.budget));
    }
    if !r.model_report.is_null() {
        println!("  model report: {}", r.model_report);
    }
    for denied in &r.denied {
        println!("  denied: {}", terminal_safe(denied));
    }
    for line in &r.logs {
        println!("  log {}", terminal_safe(line));
    }
}

/// A run as a researcher sees it: no log, no error text, no figure of what was read.
pub fn print_view(r: &ResearcherRun) {
    println!(
        "run {} of {}: {}{}",
        r.run_id,
        r.study,
        r.status,
        r.researcher_error
            .as_deref()
            .map(|e| format!(": {}", terminal_safe(e)))
            .unwrap_or_default()
    );
    println!(
        "  by {}, started {}, took {}; released {} rows",
        terminal_safe(&r.actor),
        r.started_at,
        duration_text(r.duration_seconds),
        r.rows_released
    );
    let params: Vec<String> = r
        .params
        .iter()
        .map(|(k, v)| terminal_safe(&format!("{k}={v}")))
        .collect();
    if !params.is_empty() {
        println!("  parameters: {}", params.join(" "));
    }
    if !r.disclosure.is_null() {
        println!("  disclosure control: {}", r.disclosure);
    }
    if let Some(p) = &r.privacy {
        println!("  {}", privacy_text(p.charged, p.spent, p.budget));
    }
    if !r.model_report.is_null() {
        println!("  model report: {}", r.model_report);
    }
    println!(
        "  wasm sha256 {}, manifest sha256 {}{}",
        r.wasm_sha256,
        r.manifest_sha256,
        r.output_sha256
            .as_deref()
            .map(|h| format!(", output sha256 {h}"))
            .unwrap_or_default()
    );
}

/// One line per run, for `study runs`.
pub fn print_view_line(r: &ResearcherRun) {
    println!(
        "{}  {:<16} {:<9} {} rows released, took {}  {}",
        r.run_id,
        r.study,
        r.status,
        r.rows_released,
        duration_text(r.duration_seconds),
        terminal_safe(r.researcher_error.as_deref().unwrap_or(""))
    );
}

/// `privacy: this run spent ε 32; 64 of the study's budget of 2000 spent`.
fn privacy_text(charged: f64, spent: f64, budget: f64) -> String {
    let of_budget = if budget > 0.0 {
        format!("{} of the study's budget of {budget} spent", round(spent))
    } else {
        "no budget set".to_owned()
    };
    if charged == 0.0 {
        return format!("privacy: this run spent nothing (a repeat, or nothing read); {of_budget}");
    }
    format!("privacy: this run spent ε {}; {of_budget}", round(charged))
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
