//! The words of a study as they were approved: title, purpose, legal basis, principal
//! investigator, expiry and the data granted, kept by the sha256 of the manifest section
//! they come from when it is submitted (an approval covers exactly a submitted section).
//! The public register shows these, not whatever the manifest says today.

use super::manifest::StudyTool;
use super::registry::{RegistryError, StudyRegistry};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// A study's text, as submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyText {
    pub title: String,
    pub purpose: String,
    pub legal_basis: String,
    pub principal_investigator: String,
    pub expires: String,
    /// Dataset → the columns granted.
    pub datasets: std::collections::BTreeMap<String, Vec<String>>,
}

impl StudyText {
    pub fn of(tool: &StudyTool) -> Self {
        Self {
            title: tool.title.clone(),
            purpose: tool.purpose.clone(),
            legal_basis: tool.legal_basis.clone(),
            principal_investigator: tool.principal_investigator.clone(),
            expires: tool.expires.clone(),
            datasets: tool.datasets.clone(),
        }
    }
}

fn create_table(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS study_texts (
            manifest_sha256 TEXT PRIMARY KEY,
            study           TEXT NOT NULL,
            text            TEXT NOT NULL
        );",
    )
}

impl StudyRegistry {
    /// Keeps the text of `study`'s section whose sha256 is `manifest_sha256`.
    pub fn keep_text(
        &self,
        study: &str,
        manifest_sha256: &str,
        text: &StudyText,
    ) -> Result<(), RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        create_table(&conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO study_texts (manifest_sha256, study, text) VALUES (?1, ?2, ?3)",
            params![
                manifest_sha256,
                study,
                serde_json::to_string(text).expect("texts serialise")
            ],
        )?;
        Ok(())
    }

    /// The text kept for the section of sha256 `manifest_sha256`, if it was submitted
    /// since texts are kept.
    pub fn text_of(&self, manifest_sha256: &str) -> Result<Option<StudyText>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        create_table(&conn)?;
        let text: Option<String> = conn
            .query_row(
                "SELECT text FROM study_texts WHERE manifest_sha256 = ?1",
                [manifest_sha256],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
