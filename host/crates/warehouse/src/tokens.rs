//! Bearer tokens for ingestion clients, researchers and auditors.
//!
//! A token is shown once when created and stored only as its SHA-256, in the state
//! directory's catalog (`carrel.db`), beside the audit log that records every creation and
//! revocation in the same transaction.
//!
//! A token may carry its holder's name (`carrel tokens add --name "Dr Alice Martin"`).
//! Audit entries, run records and pages name a token's holder as
//! `Dr Alice Martin (token:ab12cd34)`, or by role for a token without a name
//! (`researcher (token:ab12cd34)`): never by the token itself.

use carrel_vault::audit::append_in_transaction;
use carrel_vault::{AuditAction, AuditEvent, CATALOG_FILE};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Mutex;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An association's ingestion client.
    Ingest,
    Researcher,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Researcher => "researcher",
            Role::Auditor => "auditor",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Role::Ingest, Role::Researcher, Role::Auditor]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no catalog in {0}: run `carrel keys init` first")]
    NoCatalog(String),
    #[error("association code `{0}` is invalid: use 1 to 32 letters, digits, `-` or `_`")]
    InvalidAssociation(String),
    #[error("an ingest token needs --association")]
    MissingAssociation,
    #[error(
        "a holder's name has 1 to {MAX_NAME_CHARS} characters, no control, bidirectional or invisible formatting character and no `token:`"
    )]
    InvalidName,
    #[error("no token with id `{0}`")]
    UnknownId(String),
    #[error("token `{0}` is already revoked")]
    AlreadyRevoked(String),
    #[error("catalog error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] carrel_vault::VaultError),
}

/// Longest holder's name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

/// Who a valid token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    pub association: Option<String>,
    pub role: Role,
    /// The holder's name, when the token was given one.
    pub name: Option<String>,
}

impl Principal {
    /// The holder as audit entries, run records and pages name them:
    /// `Dr Alice Martin (token:ab12cd34)`, or `researcher (token:ab12cd34)` without a name.
    pub fn actor(&self) -> String {
        holder_label(self.name.as_deref(), self.role, &self.token_id)
    }
}

/// `NAME (token:ID)`, with the role for a token without a name.
pub fn holder_label(name: Option<&str>, role: Role, id: &str) -> String {
    format!("{} (token:{id})", name.unwrap_or(role.as_str()))
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    /// A token that was revoked, and whom it spoke for: refusals name its id.
    Revoked(Box<Principal>),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub association: Option<String>,
    pub role: Role,
    pub name: Option<String>,
    pub created: String,
    pub revoked: Option<String>,
}

impl TokenInfo {
    /// Who the token speaks for (whether or not it is revoked).
    pub fn principal(&self) -> Principal {
        Principal {
            token_id: self.id.clone(),
            association: self.association.clone(),
            role: self.role,
            name: self.name.clone(),
        }
    }
}

pub struct TokenStore {
    conn: Mutex<Connection>,
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn valid_association(code: &str) -> bool {
    (1..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A holder's name, trimmed, if it is acceptable.
fn valid_name(name: &str) -> Option<&str> {
    let name = name.trim();
    let fine = (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| carrel_vault::text::unsafe_char(c).is_some())
        && !name.contains("token:");
    fine.then_some(name)
}

fn role_of(column: usize, text: &str) -> rusqlite::Result<Role> {
    Role::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown role `{text}`").into(),
        )
    })
}

fn token_info(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        association: r.get(1)?,
        role: role_of(2, &r.get::<_, String>(2)?)?,
        name: r.get(3)?,
        created: r.get(4)?,
        revoked: r.get(5)?,
    })
}

const INFO_COLUMNS: &str = "id, association, role, name, created, revoked";

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("operating system random source");
    hex::encode(buf)
}

impl TokenStore {
    pub fn open(state_dir: &Path) -> Result<Self, TokenError> {
        let path = state_dir.join(CATALOG_FILE);
        if !path.is_file() {
            return Err(TokenError::NoCatalog(state_dir.display().to_string()));
        }
        // Opening the audit log creates its tables if this catalog predates them.
        carrel_vault::AuditLog::open(state_dir)?;
        let conn = carrel_vault::open_catalog(state_dir)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS tokens (
                id          TEXT PRIMARY KEY,
                hash        TEXT NOT NULL UNIQUE,
                association TEXT,
                role        TEXT NOT NULL,
                created     TEXT NOT NULL,
                revoked     TEXT,
                name        TEXT
            );",
        )?;
        // Catalogs from before holders' names.
        let has_name = conn
            .prepare("SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'name'")?
            .exists([])?;
        if !has_name {
            conn.execute_batch("ALTER TABLE tokens ADD COLUMN name TEXT")?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Creates a token for the holder `name` and returns (id, token). The token itself
    /// is not stored.
    pub fn add(
        &self,
        association: Option<&str>,
        role: Role,
        name: Option<&str>,
        actor: &str,
    ) -> Result<(String, String), TokenError> {
        let name = match name {
            Some(n) => Some(valid_name(n).ok_or(TokenError::InvalidName)?),
            None => None,
        };
        if let Some(a) = association
            && !valid_association(a)
        {
            return Err(TokenError::InvalidAssociation(a.to_owned()));
        }
        if role == Role::Ingest && association.is_none() {
            return Err(TokenError::MissingAssociation);
        }
        let id = random_hex(4);
        let token = format!("carrel_{}_{}", id, random_hex(24));
        let mut conn = self.conn.lock().expect("token store lock");
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO tokens (id, hash, association, role, name, created) VALUES (?1, ?2, ?3, ?4, ?5, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
            params![id, digest(&token), association, role.as_str(), name],
        )?;
        let event = AuditEvent::new(
            actor,
            AuditAction::Other("token.add".into()),
            format!("token:{id}"),
        )
        .with_details(serde_json::json!({
            "role": role.as_str(),
            "association": association,
            "holder": holder_label(name, role, &id),
        }));
        append_in_transaction(&tx, &event)?;
        tx.commit()?;
        Ok((id, token))
    }

    pub fn revoke(&self, id: &str, actor: &str) -> Result<(), TokenError> {
        let mut conn = self.conn.lock().expect("token store lock");
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let revoked: Option<Option<String>> = tx
            .query_row(
                "SELECT revoked FROM tokens WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        match revoked {
            None => return Err(TokenError::UnknownId(id.to_owned())),
            Some(Some(_)) => return Err(TokenError::AlreadyRevoked(id.to_owned())),
            Some(None) => {}
        }
        tx.execute(
            "UPDATE tokens SET revoked = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?1",
            params![id],
        )?;
        append_in_transaction(
            &tx,
            &AuditEvent::new(
                actor,
                AuditAction::Other("token.revoke".into()),
                format!("token:{id}"),
            ),
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let conn = self.conn.lock().expect("token store lock");
        let mut stmt = conn.prepare(&format!(
            "SELECT {INFO_COLUMNS} FROM tokens ORDER BY created, id"
        ))?;
        let rows = stmt.query_map([], token_info)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The token with id `id`, revoked or not.
    pub fn get(&self, id: &str) -> Result<TokenInfo, TokenError> {
        let conn = self.conn.lock().expect("token store lock");
        conn.query_row(
            &format!("SELECT {INFO_COLUMNS} FROM tokens WHERE id = ?1"),
            params![id],
            token_info,
        )
        .optional()?
        .ok_or_else(|| TokenError::UnknownId(id.to_owned()))
    }

    /// Checks a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Result<Principal, Refusal>, TokenError> {
        let conn = self.conn.lock().expect("token store lock");
        // A row of an unknown role is refused as unknown, not an error.
        let row: Option<Option<TokenInfo>> = conn
            .prepare_cached(&format!(
                "SELECT {INFO_COLUMNS} FROM tokens WHERE hash = ?1"
            ))?
            .query_row(params![digest(token)], |r| match token_info(r) {
                Err(rusqlite::Error::FromSqlConversionFailure(2, ..)) => Ok(None),
                other => other.map(Some),
            })
            .optional()?;
        Ok(match row.flatten() {
            None => Err(Refusal::Unknown),
            Some(info) if info.revoked.is_some() => {
                Err(Refusal::Revoked(Box::new(info.principal())))
            }
            Some(info) => Ok(info.principal()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let env = carrel_vault::MasterKeyEnv::unset();
        carrel_vault::init_master_key(dir.path(), &env, "test").unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn token_authenticates_until_revoked_and_is_stored_only_as_a_hash() {
        let (dir, store) = store();
        let (id, token) = store
            .add(Some("sos-brest"), Role::Ingest, None, "operator")
            .unwrap();
        let who = store.authenticate(&token).unwrap().unwrap();
        assert_eq!(who.association.as_deref(), Some("sos-brest"));
        assert_eq!(who.role, Role::Ingest);
        assert_eq!(
            store.authenticate("carrel_x_y").unwrap(),
            Err(Refusal::Unknown)
        );
        store.revoke(&id, "operator").unwrap();
        assert_eq!(
            store.authenticate(&token).unwrap(),
            Err(Refusal::Revoked(Box::new(who.clone())))
        );
        assert!(matches!(
            store.revoke(&id, "operator"),
            Err(TokenError::AlreadyRevoked(_))
        ));
        let db = std::fs::read(dir.path().join(CATALOG_FILE)).unwrap();
        assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
    }

    #[test]
    fn token_changes_are_audited() {
        let (dir, store) = store();
        let (id, _) = store.add(None, Role::Auditor, None, "operator").unwrap();
        store.revoke(&id, "operator").unwrap();
        let log = carrel_vault::AuditLog::open(dir.path()).unwrap();
        let actions: Vec<String> = log
            .entries(0)
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert!(
            actions.ends_with(&["token.add".to_owned(), "token.revoke".to_owned()]),
            "{actions:?}"
        );
        assert!(matches!(
            log.verify().unwrap(),
            carrel_vault::VerifyReport::Intact { .. }
        ));
    }

    #[test]
    fn ingest_tokens_need_a_valid_association() {
        let (_dir, store) = store();
        assert!(matches!(
            store.add(None, Role::Ingest, None, "op"),
            Err(TokenError::MissingAssociation)
        ));
        assert!(matches!(
            store.add(Some("a b"), Role::Ingest, None, "op"),
            Err(TokenError::InvalidAssociation(_))
        ));
    }

    #[test]
    fn a_token_names_its_holder_and_never_shows_the_secret() {
        let (_dir, store) = store();
        let (id, token) = store
            .add(
                None,
                Role::Researcher,
                Some("  Dr Alice Martin "),
                "operator",
            )
            .unwrap();
        let who = store.authenticate(&token).unwrap().unwrap();
        assert_eq!(who.actor(), format!("Dr Alice Martin (token:{id})"));
        assert!(!who.actor().contains(&token));
        assert_eq!(store.get(&id).unwrap().principal(), who);
        let (other, _) = store.add(None, Role::Auditor, None, "operator").unwrap();
        assert_eq!(
            store.get(&other).unwrap().principal().actor(),
            format!("auditor (token:{other})")
        );
        for bad in [
            "",
            "   ",
            "a\nb",
            "Eve (token:abcd)",
            "Dr \u{202e}evE",
            "a\u{9b}b",
        ] {
            assert!(
                matches!(
                    store.add(None, Role::Researcher, Some(bad), "operator"),
                    Err(TokenError::InvalidName)
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(store.get("nope"), Err(TokenError::UnknownId(_))));
    }

    #[test]
    fn a_catalog_from_before_holders_names_gains_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let env = carrel_vault::MasterKeyEnv::unset();
        carrel_vault::init_master_key(dir.path(), &env, "test").unwrap();
        let conn = Connection::open(dir.path().join(CATALOG_FILE)).unwrap();
        conn.execute_batch(
            "CREATE TABLE tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, association TEXT,
             role TEXT NOT NULL, created TEXT NOT NULL, revoked TEXT);
             INSERT INTO tokens VALUES ('ab12', 'h', NULL, 'researcher', 't', NULL);",
        )
        .unwrap();
        drop(conn);
        let store = TokenStore::open(dir.path()).unwrap();
        let old = store.get("ab12").unwrap();
        assert_eq!(old.name, None);
        assert_eq!(old.principal().actor(), "researcher (token:ab12)");
    }
}
