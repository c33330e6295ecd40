//! While serving: a pass whenever one is due, looked for every
//! `pass_interval_seconds` and soon after an objection is registered, and at start (a
//! pass interrupted by a crash is finished before anything else). The pass holds the
//! store gate exclusively, so it waits for running study runs and they wait for it;
//! ingestion goes on.

use super::PatientRights;
use carrel_runtime::error::with_causes;
use std::sync::Arc;
use std::time::Duration;

/// How long after an objection wakes it the pass waits, so that objections sent
/// together are removed in one pass.
const GATHER: Duration = Duration::from_secs(30);

/// Starts the schedule on the current tokio runtime; it ends with the runtime.
pub fn spawn(rights: Arc<PatientRights>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = Duration::from_secs(rights.config.pass_interval_seconds);
        let gather = GATHER.min(interval);
        loop {
            run_if_due(&rights).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = rights.wake.notified() => tokio::time::sleep(gather).await,
            }
        }
    })
}

async fn run_if_due(rights: &Arc<PatientRights>) {
    let checked = {
        let rights = rights.clone();
        tokio::task::spawn_blocking(move || rights.pass_due()).await
    };
    match checked {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return,
        Ok(Err(e)) => {
            tracing::error!(error = %with_causes(&e), "cannot tell whether a pass is due");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "the pass check failed");
            return;
        }
    }
    let gate = rights.store_gate.clone().write_owned().await;
    let worker = rights.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _exclusive = gate;
        worker.run_pass(carrel_vault::SYSTEM_ACTOR, &mut |_| {})
    })
    .await;
    match done {
        Ok(Ok(report)) => tracing::info!(
            rows_removed = report.rows_removed_total(),
            segments_rewritten = report.segments_rewritten,
            segments_removed = report.segments_removed,
            data_keys_destroyed = report.data_keys_destroyed,
            "scheduled pass done"
        ),
        Ok(Err(e)) => tracing::error!(error = %with_causes(&e), "scheduled pass failed"),
        Err(e) => tracing::error!(error = %e, "scheduled pass task failed"),
    }
}
