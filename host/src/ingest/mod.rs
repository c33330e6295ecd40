//! The host's half of ingestion: identified consultations in, through the pseudonymiser
//! component, checked, encrypted and appended to the dataset, with a receipt out.

mod check;
pub mod pseudonymiser;

use crate::capabilities::ingest::bindings::carrel::eds::types::{IdentifiedConsultation, Receipt};
use carrel_vault::{AuditAction, AuditEvent, ColumnGroups, Vault};
use pseudonymiser::Pseudonymiser;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch was refused whole; nothing was stored.
    #[error("refused: {0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct IngestPipeline {
    vault: Arc<Vault>,
    dataset: String,
    pseudonymiser: Pseudonymiser,
    receipts: Mutex<Connection>,
}

/// Creates `name` with the canonical consultation schema and its column groups unless it
/// exists (ingestion, synthetic tries and the study benchmark all write it).
pub fn ensure_canonical_dataset(vault: &Vault, name: &str, actor: &str) -> anyhow::Result<()> {
    if !vault.datasets()?.iter().any(|d| d == name) {
        let groups = carrel_pseudonym::column_groups()
            .iter()
            .fold(ColumnGroups::new(), |g, (group, columns)| {
                g.with_group(group, columns)
            });
        vault.create_dataset(name, &carrel_pseudonym::canonical_schema(), &groups, actor)?;
    }
    Ok(())
}

impl IngestPipeline {
    /// Creates the dataset with the canonical schema if it does not exist yet.
    pub fn new(
        vault: Arc<Vault>,
        dataset: &str,
        pseudonymiser: Pseudonymiser,
    ) -> anyhow::Result<Self> {
        ensure_canonical_dataset(&vault, dataset, carrel_vault::SYSTEM_ACTOR)?;
        let conn = Connection::open(vault.state_dir().join(carrel_vault::CATALOG_FILE))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Receipts by (association, sha256 of the batch key): a repeat gets the first
        // receipt back. The key is hashed because clients choose it freely. The table is in
        // the catalog database so that `submit` can write a receipt in the transaction of
        // the append it records; this connection only creates it and reads it.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ingest_receipts (
                association TEXT NOT NULL,
                key_sha256  TEXT NOT NULL,
                receipt     TEXT NOT NULL,
                PRIMARY KEY (association, key_sha256)
            );",
        )?;
        Ok(Self {
            vault,
            dataset: dataset.to_owned(),
            pseudonymiser,
            receipts: Mutex::new(conn),
        })
    }

    fn stored_receipt(&self, association: &str, key: &str) -> Result<Option<Receipt>, IngestError> {
        let conn = self.receipts.lock().expect("receipts lock");
        let json: Option<String> = conn
            .query_row(
                "SELECT receipt FROM ingest_receipts WHERE association = ?1 AND key_sha256 = ?2",
                params![association, key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| IngestError::Internal(e.to_string()))?;
        json.map(|j| serde_json::from_str::<StoredReceipt>(&j).map(|r| r.into_replay()))
            .transpose()
            .map_err(|e| IngestError::Internal(e.to_string()))
    }

    fn refuse(&self, association: &str, key: &str, why: String) -> IngestError {
        let event = AuditEvent::new(
            association,
            AuditAction::Other("ingest.refused".into()),
            format!("dataset:{}", self.dataset),
        )
        .with_details(serde_json::json!({"batch_key_sha256": key, "reason": why}));
        if let Err(e) = self.vault.audit().append(&event) {
            tracing::error!(error = %e, "cannot audit a refused batch");
        }
        IngestError::Refused(why)
    }

    pub async fn submit(
        &self,
        association: &str,
        batch_key: &str,
        rows: Vec<IdentifiedConsultation>,
    ) -> Result<Receipt, IngestError> {
        let key = hex::encode(Sha256::digest(batch_key.as_bytes()));
        if let Some(receipt) = self.stored_receipt(association, &key)? {
            return Ok(receipt);
        }
        if rows.is_empty() {
            return Err(self.refuse(association, &key, "the batch holds no consultation".into()));
        }
        let ipc = self
            .pseudonymiser
            .run(association, &rows)
            .await
            .map_err(|why| {
                self.refuse(association, &key, format!("pseudonymisation failed: {why}"))
            })?;
        let batch = check::canonical_rows(&ipc, association, rows.len())
            .map_err(|why| self.refuse(association, &key, why))?;
        let vault = self.vault.clone();
        let dataset = self.dataset.clone();
        let actor = association.to_owned();
        let receipt_key = key.clone();
        // The receipt is written in the append's own catalog transaction: the segment, its
        // audit entry and the receipt commit together or not at all, so a batch retried
        // after a crash is either stored with its receipt or not stored at all.
        let appended = tokio::task::spawn_blocking(move || {
            vault.append_with(&dataset, &batch, &actor, |tx, appended| {
                let stored = StoredReceipt::of(appended);
                tx.execute(
                    "INSERT INTO ingest_receipts (association, key_sha256, receipt) VALUES (?1, ?2, ?3)",
                    params![
                        actor,
                        receipt_key,
                        serde_json::to_string(&stored).expect("receipt serialises")
                    ],
                )?;
                Ok(())
            })
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))?;
        match appended {
            Ok(appended) => Ok(StoredReceipt::of(&appended).into_receipt(false)),
            Err(error) => {
                // The same batch key submitted concurrently: the other submission stored it
                // first, its receipt's primary key refused this append whole.
                if let Some(receipt) = self.stored_receipt(association, &key)? {
                    return Ok(receipt);
                }
                Err(IngestError::Internal(error.to_string()))
            }
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredReceipt {
    batch_id: String,
    rows_accepted: u64,
    segment: String,
    audit_seq: u64,
}

impl StoredReceipt {
    fn of(appended: &carrel_vault::AppendReceipt) -> Self {
        Self {
            batch_id: appended.segment_id.clone(),
            rows_accepted: appended.rows,
            segment: appended.segment_id.clone(),
            audit_seq: appended.audit_seq,
        }
    }

    fn into_receipt(self, replayed: bool) -> Receipt {
        Receipt {
            batch_id: self.batch_id,
            rows_accepted: self.rows_accepted,
            segment: self.segment,
            audit_seq: self.audit_seq,
            replayed,
        }
    }

    fn into_replay(self) -> Receipt {
        self.into_receipt(true)
    }
}
