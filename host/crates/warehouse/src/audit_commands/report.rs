//! The capability report of `carrel audit manifest` (built in [`super::inspect`]): grants
//! from spin.toml, imports from the binaries themselves (read with wasmtime), the findings
//! of comparing the two, and approvals from the warehouse's study register.
//!
//! # JSON format, version 1
//!
//! `carrel audit manifest --format json` prints one [`Report`] object. It is meant to be
//! stored and compared with `carrel audit diff` or any JSON tool, so it is stable: fields
//! are only added within a format version (a consumer ignores fields it does not know),
//! every field is always present (`null` or empty when it does not apply), components are
//! sorted by id, imports by name, and nothing in it depends on the time it was made.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Value of [`Report::format`].
pub const FORMAT: &str = "carrel-audit-manifest";
/// Value of [`Report::format_version`]; raised only when a field changes meaning or goes.
pub const FORMAT_VERSION: u32 = 1;

/// The whole report. See the module documentation for the stability rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always `"carrel-audit-manifest"`.
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this layout.
    pub format_version: u32,
    /// `[application]` name and version.
    pub application: ApplicationView,
    /// The manifest as named on the command line.
    pub manifest: String,
    /// The warehouse state the approvals were read from; `null` when the state directory
    /// has no catalog ("no warehouse state").
    pub warehouse: Option<WarehouseView>,
    /// Every component of the manifest (or the one asked for), sorted by id.
    pub components: Vec<ComponentReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationView {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarehouseView {
    pub state_dir: String,
    /// Studies in the register that the manifest no longer declares, sorted by id.
    pub other_studies: Vec<ApprovalView>,
}

/// One component: what it is, what it is granted, what it imports, what does not match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    pub id: String,
    /// `source` as written in the manifest.
    pub source: String,
    /// Lowercase hex sha256 of the wasm file; `null` when it is not built.
    pub sha256: Option<String>,
    /// For studies: sha256 of the manifest section an approval is bound to.
    pub manifest_sha256: Option<String>,
    pub grants: Grants,
    /// Every import of the binary, sorted by name; empty when it could not be read.
    pub imports: Vec<ImportView>,
    /// Names the binary exports (`wasi:http/incoming-handler@0.2.0`, …), sorted.
    pub exports: Vec<String>,
    /// Imports without a grant, then grants the binary cannot use, then problems reading it.
    pub findings: Vec<Finding>,
    /// For studies, when there is warehouse state: the latest submission and its fate.
    pub approval: Option<ApprovalView>,
}

/// What the manifest grants one component. Lists keep the manifest's order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Grants {
    /// `[[trigger.http]]` routes to the component; `(private)` for a private route.
    pub routes: Vec<String>,
    /// Token role its routes require (`tool.carrel.auth`).
    pub auth: Option<String>,
    pub key_value_stores: Vec<String>,
    /// SQLite databases by label (`sqlite_databases`); added within format version 1.
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    pub allowed_outbound_hosts: Vec<String>,
    /// Component variables: name → template.
    pub variables: BTreeMap<String, String>,
    /// File mounts: a pattern, or `source -> destination`.
    pub files: Vec<String>,
    pub environment: BTreeMap<String, String>,
    pub ingest: Option<IngestGrant>,
    pub keyed_hash_domains: Vec<String>,
    /// The study section (`tool.carrel.study`), for studies.
    pub study: Option<StudyGrant>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestGrant {
    pub dataset: String,
    pub pseudonymiser: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyGrant {
    /// `counts`, `model-evaluation` or `model-fit`: what the study hands the host.
    #[serde(default)]
    pub kind: String,
    /// The model a `model-evaluation` study brings, with its file's sha256.
    #[serde(default)]
    pub model: Option<ModelGrant>,
    /// The regression a `model-fit` study asks the host for.
    #[serde(default)]
    pub fit: Option<FitGrant>,
    pub title: String,
    pub purpose: String,
    pub legal_basis: String,
    pub principal_investigator: String,
    /// `consultation` or `patient`: what the study sees at a time.
    #[serde(default)]
    pub unit: String,
    /// Dataset → the exact columns the study is handed.
    pub datasets: BTreeMap<String, Vec<String>>,
    /// Parameters the study receives → their declared values.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// The output table the host fills.
    #[serde(default)]
    pub table: TableGrant,
    pub disclosure: DisclosureGrant,
    pub time_limit_seconds: u64,
    pub memory_limit_mb: u64,
    /// Last day the study may run, `YYYY-MM-DD`.
    pub expires: String,
}

/// A model to evaluate, as an auditor reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelGrant {
    pub file: String,
    /// The file's sha256 (part of the approval); none when the file cannot be read.
    pub sha256: Option<String>,
    pub features: Vec<String>,
    pub outcome: String,
    pub bins: u32,
    pub thresholds: Vec<f64>,
    pub subgroups: Vec<String>,
}

/// A regression to fit, as an auditor reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitGrant {
    pub family: String,
    pub features: Vec<String>,
    pub outcome: String,
    pub max_parameter_fraction: f64,
}

/// The declared output table, as an auditor reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableGrant {
    /// Each dimension with its domain: `week: ISO week of date`, `age_class: <2, 2-14, …`.
    pub dimensions: Vec<String>,
    pub measures: Vec<String>,
    /// Share → `numerator / denominator`.
    pub shares: BTreeMap<String, String>,
    pub max_per_patient: u32,
    /// The (cell, measure) pairs one patient may add to in a run.
    #[serde(default)]
    pub max_cells_per_patient: u32,
    /// Grouping → the dimensions it keeps.
    pub by: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisclosureGrant {
    pub min_count: u64,
    pub rounding: u64,
    pub max_rows: u64,
    pub max_bytes: u64,
    /// Scale of the cell-key noise (0: none).
    #[serde(default)]
    pub noise_scale: f64,
    /// The study's privacy budget (ε) on its dataset, and what one release costs.
    #[serde(default)]
    pub epsilon_budget: f64,
    #[serde(default)]
    pub epsilon_per_release: Option<f64>,
}

/// How an import relates to grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportClass {
    /// Needs a grant (`capability` names which).
    Capability,
    /// WASI that Rust's standard library brings: given nothing beyond the grants.
    Baseline,
    /// Type definitions only.
    Types,
    /// Never granted (network sockets).
    Never,
    /// Not an interface carrel provides.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportView {
    /// The full name, `wasi:http/outgoing-handler@0.2.0`.
    pub name: String,
    /// Without the version, `wasi:http/outgoing-handler`.
    pub interface: String,
    pub version: Option<String>,
    pub class: ImportClass,
    pub capability: Option<Capability>,
    /// For capability imports: whether the manifest grants it.
    pub granted: Option<bool>,
    /// A few words for people.
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// An import of a capability the manifest does not grant: denied at run time.
    ImportWithoutGrant,
    /// An import carrel never grants (sockets).
    NeverGrantedImport,
    /// An import carrel does not provide: the component cannot start.
    UnknownImport,
    /// A grant no import can use: excess privilege to remove.
    UnusedGrant,
    /// The wasm file does not exist.
    NotBuilt,
    /// The wasm file could not be read as a component.
    Unreadable,
}

impl FindingKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::ImportWithoutGrant => "NO GRANT",
            Self::NeverGrantedImport => "NEVER GRANTED",
            Self::UnknownImport => "UNKNOWN",
            Self::UnusedGrant => "EXCESS",
            Self::NotBuilt => "NOT BUILT",
            Self::Unreadable => "UNREADABLE",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub capability: Option<Capability>,
    /// The import name or the manifest setting concerned.
    pub subject: String,
    pub message: String,
}

/// A study's latest submission as recorded in the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub study: String,
    /// `not-submitted`, `submitted`, `approved` or `revoked`.
    pub state: String,
    /// The hashes submitted (and, once approved, approved).
    pub wasm_sha256: Option<String>,
    pub manifest_sha256: Option<String>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<String>,
    /// Whether the binary and manifest section on disk are the submitted ones; `null`
    /// when there is nothing to compare.
    pub matches_current: Option<bool>,
}

/// `cell-key noise of scale 3, ε 32 per release, budget 2000`, as the auditor reads it.
pub fn privacy_summary(d: &DisclosureGrant) -> String {
    if d.noise_scale <= 0.0 {
        return "no cell-key noise".to_owned();
    }
    let per_release = d
        .epsilon_per_release
        .map(|e| format!(", ε {} per release", (e * 1000.0).round() / 1000.0))
        .unwrap_or_default();
    let budget = if d.epsilon_budget > 0.0 {
        format!(", budget {}", d.epsilon_budget)
    } else {
        ", no budget".to_owned()
    };
    format!(
        "cell-key noise of scale {}{per_release}{budget}",
        d.noise_scale
    )
}

/// A capability carrel grants through the manifest, named after what it lets a component do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    OutboundHttp,
    KeyValue,
    Sqlite,
    Variables,
    Ingest,
    KeyedHash,
    Dataset,
    Files,
    Environment,
}

impl Capability {
    pub const ALL: [Capability; 9] = [
        Self::OutboundHttp,
        Self::KeyValue,
        Self::Sqlite,
        Self::Variables,
        Self::Ingest,
        Self::KeyedHash,
        Self::Dataset,
        Self::Files,
        Self::Environment,
    ];

    /// The manifest setting that grants it.
    pub fn grant_field(self) -> &'static str {
        match self {
            Self::OutboundHttp => "allowed_outbound_hosts",
            Self::KeyValue => "key_value_stores",
            Self::Sqlite => "sqlite_databases",
            Self::Variables => "variables",
            Self::Ingest => "tool.carrel.ingest",
            Self::KeyedHash => "tool.carrel.keyed_hash_domains",
            Self::Dataset => "tool.carrel.study",
            Self::Files => "files",
            Self::Environment => "environment",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::OutboundHttp => "outbound network: HTTP, TCP, Redis, MQTT, PostgreSQL",
            Self::KeyValue => "key-value store",
            Self::Sqlite => "SQLite database",
            Self::Variables => "application variables",
            Self::Ingest => "handing consultations to the host",
            Self::KeyedHash => "keyed hashing (pseudonyms)",
            Self::Dataset => "a study's log (its rows are handed to it by the host)",
            Self::Files => "files",
            Self::Environment => "environment variables",
        }
    }

    /// Whether the component's grants include this capability.
    pub fn granted(self, grants: &Grants) -> bool {
        match self {
            Self::OutboundHttp => !grants.allowed_outbound_hosts.is_empty(),
            Self::KeyValue => !grants.key_value_stores.is_empty(),
            Self::Sqlite => !grants.sqlite_databases.is_empty(),
            Self::Variables => !grants.variables.is_empty(),
            Self::Ingest => grants.ingest.is_some(),
            Self::KeyedHash => !grants.keyed_hash_domains.is_empty(),
            Self::Dataset => grants.study.is_some(),
            Self::Files => !grants.files.is_empty(),
            Self::Environment => !grants.environment.is_empty(),
        }
    }

    /// The grant as written, for messages.
    pub(super) fn grant_text(self, grants: &Grants) -> String {
        let list = |items: &[String]| format!("{items:?}");
        match self {
            Self::OutboundHttp => list(&grants.allowed_outbound_hosts),
            Self::KeyValue => list(&grants.key_value_stores),
            Self::Sqlite => list(&grants.sqlite_databases),
            Self::Variables => list(&grants.variables.keys().cloned().collect::<Vec<_>>()),
            Self::Ingest => grants
                .ingest
                .as_ref()
                .map(|i| format!("dataset {} via {}", i.dataset, i.pseudonymiser))
                .unwrap_or_default(),
            Self::KeyedHash => list(&grants.keyed_hash_domains),
            Self::Dataset => "a study section".into(),
            Self::Files => list(&grants.files),
            Self::Environment => list(&grants.environment.keys().cloned().collect::<Vec<_>>()),
        }
    }

    /// Whether an import of this class and capability lets the component use the grant.
    /// Files and the environment arrive through baseline WASI interfaces.
    pub(super) fn used_by(self, import: &ImportView) -> bool {
        match self {
            Self::Files => import.interface.starts_with("wasi:filesystem/"),
            Self::Environment => import.interface == "wasi:cli/environment",
            other => import.capability == Some(other),
        }
    }
}
