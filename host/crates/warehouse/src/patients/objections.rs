//! The register of objections: only the patient pseudonyms (keyed hashes, the
//! `patient_id` the pseudonymiser stores) of patients who objected, in the catalog
//! database, never an identifier. Each has a sequence number (the register's
//! generation is the largest) and whether a completed pass has removed their stored rows.

use super::PatientsError;
use carrel_vault::{AuditAction, AuditEvent};
use rusqlite::{Connection, TransactionBehavior, params};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Audit action of a registered objection (counts only).
pub const OBJECTION_ACTION: &str = "patient.objection";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS patient_objections (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    pseudonym TEXT NOT NULL UNIQUE,
    -- 1 once a completed pass has removed the patient's stored rows.
    applied   INTEGER NOT NULL DEFAULT 0
);";

/// The pseudonyms of every patient who objected, as of one generation of the register.
#[derive(Debug, Default)]
pub struct ObjectionSet {
    pub generation: i64,
    pub pseudonyms: HashSet<String>,
}

impl ObjectionSet {
    pub fn contains(&self, pseudonym: &str) -> bool {
        self.pseudonyms.contains(pseudonym)
    }
}

/// Where an objection came from, for the audit entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A FHIR Consent an association's client sent with its ingest token.
    Ingest,
    /// `carrel patients object` at the warehouse's terminal.
    Operator,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Ingest => "ingest",
            Channel::Operator => "operator",
        }
    }
}

/// What registering an objection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered {
    pub newly_registered: u32,
    pub audit_seq: u64,
}

pub struct ObjectionStore {
    conn: Mutex<Connection>,
    cached: Mutex<Arc<ObjectionSet>>,
}

impl ObjectionStore {
    pub fn open(state_dir: &Path) -> Result<Self, PatientsError> {
        let conn = carrel_vault::open_catalog(state_dir)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
            cached: Mutex::new(Arc::new(ObjectionSet::default())),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `pseudonyms` and audits the registration with counts only, in one
    /// transaction. A pseudonym registered before is not registered again.
    pub fn register(
        &self,
        pseudonyms: &[String],
        actor: &str,
        channel: Channel,
    ) -> Result<Registered, PatientsError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut newly = 0u32;
        for pseudonym in pseudonyms {
            newly += tx.execute(
                "INSERT OR IGNORE INTO patient_objections (pseudonym) VALUES (?1)",
                [pseudonym],
            )? as u32;
        }
        let event = AuditEvent::new(
            actor,
            AuditAction::Other(OBJECTION_ACTION.into()),
            "patients",
        )
        .with_details(serde_json::json!({
            "channel": channel.as_str(),
            "pseudonyms_given": pseudonyms.len(),
            "newly_registered": newly,
        }));
        let head = carrel_vault::audit::append_in_transaction(&tx, &event)?;
        tx.commit()?;
        tracing::info!(newly, "objection registered");
        Ok(Registered {
            newly_registered: newly,
            audit_seq: head.seq,
        })
    }

    /// The register as it is now (read again only when its generation changed).
    pub fn current(&self) -> Result<Arc<ObjectionSet>, PatientsError> {
        let generation = generation(&self.conn())?;
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if cached.generation != generation {
            let conn = self.conn();
            let mut statement =
                conn.prepare("SELECT pseudonym FROM patient_objections WHERE seq <= ?1")?;
            let pseudonyms = statement
                .query_map([generation], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            *cached = Arc::new(ObjectionSet {
                generation,
                pseudonyms,
            });
        }
        Ok(cached.clone())
    }

    /// How many registered pseudonyms no completed pass has applied yet.
    pub fn pending(&self) -> Result<u64, PatientsError> {
        Ok(self.conn().query_row(
            "SELECT count(*) FROM patient_objections WHERE applied = 0",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Notes that every objection up to `generation` had its stored rows removed.
    pub fn mark_applied(&self, generation: i64) -> Result<u64, PatientsError> {
        Ok(self.conn().execute(
            "UPDATE patient_objections SET applied = 1 WHERE seq <= ?1 AND applied = 0",
            params![generation],
        )? as u64)
    }

    /// How many pseudonyms are registered.
    pub fn count(&self) -> Result<u64, PatientsError> {
        Ok(self
            .conn()
            .query_row("SELECT count(*) FROM patient_objections", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }
}

/// The register's generation as `conn` sees it: inside an append's transaction, this is
/// what the append is checked against.
pub fn generation(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM patient_objections",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> ObjectionStore {
        // The audit tables live in the catalog the vault creates.
        carrel_vault::init_master_key(dir, &carrel_vault::MasterKeyEnv::unset(), "t").unwrap();
        drop(carrel_vault::Vault::open(dir, &carrel_vault::MasterKeyEnv::unset()).unwrap());
        ObjectionStore::open(dir).unwrap()
    }

    #[test]
    fn a_pseudonym_is_registered_once_and_audited_without_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let first = store
            .register(
                &["aa".repeat(32), "bb".repeat(32)],
                "sos-brest",
                Channel::Ingest,
            )
            .unwrap();
        assert_eq!(first.newly_registered, 2);
        let again = store
            .register(&["aa".repeat(32)], "operator", Channel::Operator)
            .unwrap();
        assert_eq!(again.newly_registered, 0);
        assert!(again.audit_seq > first.audit_seq);
        let set = store.current().unwrap();
        assert_eq!(set.generation, 2);
        assert!(set.contains(&"bb".repeat(32)));
        assert_eq!(store.pending().unwrap(), 2);
        assert_eq!(store.mark_applied(set.generation).unwrap(), 2);
        assert_eq!(store.pending().unwrap(), 0);
        let log = carrel_vault::AuditLog::open(dir.path()).unwrap();
        let entries = log.entries(0).unwrap();
        let objections: Vec<_> = entries
            .iter()
            .filter(|e| e.action == OBJECTION_ACTION)
            .collect();
        assert_eq!(objections.len(), 2);
        assert!(!format!("{objections:?}").contains("aaaa"));
    }
}
