//! The host's half of ingestion: identified consultations in, through the pseudonymiser
//! component, checked, encrypted and appended to the dataset, with a receipt out.

pub mod bindings;
mod check;
pub mod pseudonymiser;
pub mod record_keys;
mod withhold;

pub use withhold::WITHHELD_ACTION;

use crate::patients::PatientRights;
use bindings::carrel::eds::types::{IdentifiedConsultation, Receipt};
use carrel_runtime::error::with_causes;
use carrel_vault::{AuditAction, AuditEvent, ColumnGroups, Vault};
use pseudonymiser::Pseudonymiser;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The batch was refused whole; nothing was stored.
    #[error("refused: {0}")]
    Refused(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why an ingestion pipeline could not be set up when the app starts.
#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    /// Boxed: the vault's errors are large, and this one is returned once, at start.
    #[error(transparent)]
    Vault(Box<carrel_vault::VaultError>),
    #[error("cannot create the table of ingestion receipts")]
    Receipts(#[from] rusqlite::Error),
    #[error("cannot link the pseudonymiser")]
    Link(#[source] carrel_runtime::error::BoxError),
    #[error("not a carrel:eds/pseudonymiser component: {0}")]
    NotPseudonymiser(String),
}

impl From<carrel_vault::VaultError> for IngestSetupError {
    fn from(error: carrel_vault::VaultError) -> Self {
        Self::Vault(Box::new(error))
    }
}

pub struct IngestPipeline {
    vault: Arc<Vault>,
    dataset: String,
    pseudonymiser: Pseudonymiser,
    receipts: Mutex<Connection>,
    /// Objections: whose consultations are withheld.
    rights: Arc<PatientRights>,
}

/// Creates `name` with the stored consultation schema (canonical columns and the record
/// key) and its column groups unless it exists, and adds the record key as a new schema
/// version to a dataset made before it (ingestion, synthetic tries and the study
/// benchmark all write it).
pub fn ensure_canonical_dataset(
    vault: &Vault,
    name: &str,
    actor: &str,
) -> Result<(), carrel_vault::VaultError> {
    let groups = carrel_pseudonym::column_groups()
        .iter()
        .fold(ColumnGroups::new(), |g, (group, columns)| {
            g.with_group(group, columns)
        })
        .with_group(record_keys::RECORD_KEY_GROUP, &[record_keys::RECORD_KEY]);
    let schema = record_keys::stored_schema();
    if !vault.datasets()?.iter().any(|d| d == name) {
        vault.create_dataset(name, &schema, &groups, actor)?;
    } else if vault
        .current_version(name)?
        .schema
        .field_with_name(record_keys::RECORD_KEY)
        .is_err()
    {
        vault.add_schema_version(name, &schema, &groups, actor)?;
    }
    Ok(())
}

impl IngestPipeline {
    /// Creates the dataset with the canonical schema if it does not exist yet.
    pub fn new(
        vault: Arc<Vault>,
        dataset: &str,
        pseudonymiser: Pseudonymiser,
        rights: Arc<PatientRights>,
    ) -> Result<Self, IngestSetupError> {
        ensure_canonical_dataset(&vault, dataset, carrel_vault::SYSTEM_ACTOR)?;
        let conn = carrel_vault::open_catalog(vault.state_dir())?;
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
            rights,
        })
    }

    /// Patients' rights as this pipeline honours them (objections go there).
    pub fn rights(&self) -> &Arc<PatientRights> {
        &self.rights
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

    /// Pseudonymises, checks and stores `rows` as one segment, leaving out the
    /// consultations of patients who objected (counted in the receipt as withheld).
    pub async fn submit(
        &self,
        association: &str,
        batch_key: &str,
        mut rows: Vec<IdentifiedConsultation>,
    ) -> Result<Receipt, IngestError> {
        let key = hex::encode(Sha256::digest(batch_key.as_bytes()));
        if let Some(receipt) = self.stored_receipt(association, &key)? {
            return Ok(receipt);
        }
        if rows.is_empty() {
            return Err(self.refuse(association, &key, "the batch holds no consultation".into()));
        }
        let sent = rows.len();
        // The host hashes each row's patient itself: it decides what is withheld, and
        // checks the pseudonymiser's `patient_id` against it.
        let mut pseudonyms = withhold::row_pseudonyms(&self.rights, association, &rows)
            .map_err(|e| IngestError::Internal(with_causes(&e)))?;
        // An objection registered while this batch is on its way changes the register's
        // generation, which the append checks in its transaction: then the batch is
        // filtered again and retried, so nothing of that patient is stored after it.
        for _ in 0..MAX_OBJECTION_RETRIES {
            let objections = self
                .rights
                .objections
                .current()
                .map_err(|e| IngestError::Internal(with_causes(&e)))?;
            withhold::retain_unobjected(&objections, &mut rows, &mut pseudonyms);
            let withheld = (sent - rows.len()) as u64;
            if rows.is_empty() {
                return self.store_withheld(association, &key, withheld);
            }
            let ipc = self
                .pseudonymiser
                .run(association, &rows)
                .await
                .map_err(|why| {
                    self.refuse(association, &key, format!("pseudonymisation failed: {why}"))
                })?;
            let batch = check::canonical_rows(&ipc, association, rows.len())
                .and_then(|batch| check::patient_ids(&batch, &pseudonyms).map(|()| batch))
                .map_err(|why| self.refuse(association, &key, why))?;
            let batch = record_keys::with_record_keys(&batch)
                .map_err(|e| IngestError::Internal(e.to_string()))?;
            let stale = Arc::new(AtomicBool::new(false));
            let appended = self
                .append(
                    association,
                    &key,
                    batch,
                    withheld,
                    objections.generation,
                    stale.clone(),
                )
                .await?;
            match appended {
                Ok(appended) => {
                    return Ok(StoredReceipt::of(&appended, withheld).into_receipt(false));
                }
                Err(_) if stale.load(Ordering::SeqCst) => continue,
                Err(error) => {
                    // The same batch key submitted concurrently: the other submission
                    // stored it first, its receipt's primary key refused this append whole.
                    if let Some(receipt) = self.stored_receipt(association, &key)? {
                        return Ok(receipt);
                    }
                    return Err(IngestError::Internal(error.to_string()));
                }
            }
        }
        Err(IngestError::Internal(
            "objections kept arriving while the batch was stored; send it again".into(),
        ))
    }

    /// Appends the batch with its receipt (and, when rows were withheld, an
    /// `ingest.withheld` entry) in one transaction, refused when the objection register
    /// moved past `generation` (then `stale` is set).
    async fn append(
        &self,
        association: &str,
        key: &str,
        batch: arrow_array::RecordBatch,
        withheld: u64,
        generation: i64,
        stale: Arc<AtomicBool>,
    ) -> Result<carrel_vault::Result<carrel_vault::AppendReceipt>, IngestError> {
        let vault = self.vault.clone();
        let dataset = self.dataset.clone();
        let actor = association.to_owned();
        let receipt_key = key.to_owned();
        // The receipt is written in the append's own catalog transaction: the segment, its
        // audit entry and the receipt commit together or not at all, so a batch retried
        // after a crash is either stored with its receipt or not stored at all.
        tokio::task::spawn_blocking(move || {
            vault.append_with(&dataset, &batch, &actor, |tx, appended| {
                if crate::patients::objections::generation(tx)? != generation {
                    stale.store(true, Ordering::SeqCst);
                    return Err(rusqlite::Error::InvalidQuery);
                }
                let stored = StoredReceipt::of(appended, withheld);
                tx.execute(
                    "INSERT INTO ingest_receipts (association, key_sha256, receipt) VALUES (?1, ?2, ?3)",
                    params![
                        actor,
                        receipt_key,
                        serde_json::to_string(&stored).expect("receipt serialises")
                    ],
                )?;
                if withheld > 0 {
                    withhold::audit(tx, &actor, &dataset, &receipt_key, withheld, Some(&appended.segment_id))?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| IngestError::Internal(e.to_string()))
    }

    /// The receipt of a batch whose every row was withheld: nothing stored, the receipt
    /// and its `ingest.withheld` audit entry committed together.
    fn store_withheld(
        &self,
        association: &str,
        key: &str,
        withheld: u64,
    ) -> Result<Receipt, IngestError> {
        let internal = |e: rusqlite::Error| IngestError::Internal(e.to_string());
        let mut conn = self.receipts.lock().expect("receipts lock");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(internal)?;
        let seq = withhold::audit(&tx, association, &self.dataset, key, withheld, None)
            .map_err(internal)?;
        let stored = StoredReceipt {
            batch_id: format!("withheld-{}", &key[..16]),
            rows_accepted: 0,
            segment: String::new(),
            audit_seq: seq,
            rows_withheld: withheld,
        };
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO ingest_receipts (association, key_sha256, receipt) VALUES (?1, ?2, ?3)",
            params![
                association,
                key,
                serde_json::to_string(&stored).expect("receipt serialises")
            ],
        )
        .map_err(internal)?;
        if inserted == 0 {
            // Stored meanwhile by the same batch sent concurrently: its receipt stands.
            drop(tx);
            drop(conn);
            return self
                .stored_receipt(association, key)?
                .ok_or_else(|| IngestError::Internal("a receipt vanished".into()));
        }
        tx.commit().map_err(internal)?;
        Ok(stored.into_receipt(false))
    }
}

/// How often a batch is filtered again because objections arrived while it was stored.
const MAX_OBJECTION_RETRIES: usize = 5;

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredReceipt {
    batch_id: String,
    rows_accepted: u64,
    segment: String,
    audit_seq: u64,
    /// Receipts stored before objections existed have none.
    #[serde(default)]
    rows_withheld: u64,
}

impl StoredReceipt {
    fn of(appended: &carrel_vault::AppendReceipt, rows_withheld: u64) -> Self {
        Self {
            batch_id: appended.segment_id.clone(),
            rows_accepted: appended.rows,
            segment: appended.segment_id.clone(),
            audit_seq: appended.audit_seq,
            rows_withheld,
        }
    }

    fn into_receipt(self, replayed: bool) -> Receipt {
        Receipt {
            batch_id: self.batch_id,
            rows_accepted: self.rows_accepted,
            segment: self.segment,
            audit_seq: self.audit_seq,
            replayed,
            rows_withheld: self.rows_withheld,
        }
    }

    fn into_replay(self) -> Receipt {
        self.into_receipt(true)
    }
}
