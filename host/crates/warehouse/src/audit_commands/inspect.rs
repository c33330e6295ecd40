//! Builds the capability report: reads spin.toml, the study register and the binaries.

use super::classify;
use super::report::{
    ApplicationView, ApprovalView, ComponentReport, DisclosureGrant, FORMAT, FORMAT_VERSION,
    Finding, FindingKind, FitGrant, Grants, ImportView, IngestGrant, ModelGrant, Report,
    StudyGrant, TableGrant, WarehouseView,
};
use crate::carrel_settings::{CarrelTool, CarrelToolError};
use crate::manifest::{ComponentSource, FileMount, HttpRoute, LoadedManifest, ManifestError};
use crate::study::manifest::StudyManifestError;
use crate::study::registry::{RegistryError, StudyRegistry, Submission};
use carrel_runtime::error::{BoxError, with_causes};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;

impl ApprovalView {
    fn from_submission(s: Submission, current: Option<(&str, &str)>) -> Self {
        Self {
            state: s.state().as_str().to_owned(),
            matches_current: current.map(|(w, m)| w == s.wasm_sha256 && m == s.manifest_sha256),
            study: s.study,
            wasm_sha256: Some(s.wasm_sha256),
            manifest_sha256: Some(s.manifest_sha256),
            submitted_by: Some(s.submitted_by),
            submitted_at: Some(s.submitted_at),
            approved_by: s.approved_by,
            approved_at: s.approved_at,
            revoked_by: s.revoked_by,
            revoked_at: s.revoked_at,
        }
    }

    fn not_submitted(study: &str) -> Self {
        Self {
            study: study.to_owned(),
            state: "not-submitted".into(),
            wasm_sha256: None,
            manifest_sha256: None,
            submitted_by: None,
            submitted_at: None,
            approved_by: None,
            approved_at: None,
            revoked_by: None,
            revoked_at: None,
            matches_current: None,
        }
    }
}

/// Why the capability report could not be built. A component that cannot be read is not
/// one: the report names it as a finding.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot read {}", path.display())]
    ReadManifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no component `{id}` in {} (it has: {known})", manifest.display())]
    UnknownComponent {
        id: String,
        manifest: PathBuf,
        known: String,
    },
    #[error("reading the study register in {}", dir.display())]
    OpenRegistry {
        dir: PathBuf,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot configure the engine that reads components")]
    Engine(#[source] BoxError),
    #[error(transparent)]
    Tool(#[from] CarrelToolError),
    #[error("component `{0}` is a study without its study section")]
    NoStudySection(String),
    #[error(transparent)]
    StudyManifest(#[from] StudyManifestError),
    #[error("hashing the manifest section of study `{id}`")]
    HashSection {
        id: String,
        #[source]
        source: toml::de::Error,
    },
}

/// Why a component's binary could not be read for the report.
#[derive(Debug, thiserror::Error)]
enum BinaryError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a component carrel can load", path.display())]
    NotLoadable {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub manifest: PathBuf,
    /// Only this component.
    pub component: Option<String>,
    /// Default: `.spin` next to the manifest.
    pub state_dir: Option<PathBuf>,
}

/// An engine able to load every component carrel runs. Only types are read, so code is
/// compiled without optimisation.
fn type_engine() -> Result<wasmtime::Engine, InspectError> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    wasmtime::Engine::new(&config).map_err(|e| InspectError::Engine(e.into()))
}

pub fn build(options: &ReportOptions) -> Result<Report, InspectError> {
    let manifest = crate::manifest::load(&options.manifest)?;
    let manifest_text = std::fs::read_to_string(&options.manifest).map_err(|source| {
        InspectError::ReadManifest {
            path: options.manifest.clone(),
            source,
        }
    })?;
    let ids: Vec<&String> = match &options.component {
        Some(id) => {
            let known = manifest.manifest.component.keys();
            let (id, _) = manifest
                .manifest
                .component
                .get_key_value(id)
                .ok_or_else(|| InspectError::UnknownComponent {
                    id: id.clone(),
                    manifest: options.manifest.clone(),
                    known: known.map(String::as_str).collect::<Vec<_>>().join(", "),
                })?;
            vec![id]
        }
        None => manifest.manifest.component.keys().collect(),
    };
    let state_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::state_dir::beside_loaded(&manifest));
    let registry = if state_dir.join(carrel_vault::CATALOG_FILE).is_file() {
        Some(
            StudyRegistry::open(&state_dir).map_err(|source| InspectError::OpenRegistry {
                dir: state_dir.clone(),
                source: Box::new(source),
            })?,
        )
    } else {
        None
    };
    let engine = type_engine()?;
    let mut components = Vec::new();
    for id in ids {
        let mut report = component(&manifest, &engine, id)?;
        if report.grants.study.is_some() {
            let mut tool = CarrelTool::of(id, &manifest.manifest.component[id].tool)?
                .study
                .ok_or_else(|| InspectError::NoStudySection(id.clone()))?;
            tool.validate(id)?;
            // Without its model file, the study has only its section to approve (and
            // cannot be submitted until the file is there).
            let approval = match crate::study::manifest::approval_sha256(
                &manifest_text,
                manifest.base_dir(),
                id,
                &tool,
            ) {
                Ok((approval, _)) => approval,
                Err(_) => crate::study::manifest::manifest_section_sha256(&manifest_text, id)
                    .map_err(|source| InspectError::HashSection {
                        id: id.clone(),
                        source,
                    })?,
            };
            report.manifest_sha256 = Some(approval);
            if let Some(registry) = &registry {
                let current = report
                    .sha256
                    .as_deref()
                    .zip(report.manifest_sha256.as_deref());
                report.approval = Some(match registry.latest(id)? {
                    Some(s) => ApprovalView::from_submission(s, current),
                    None => ApprovalView::not_submitted(id),
                });
            }
        }
        components.push(report);
    }
    let warehouse = match &registry {
        None => None,
        Some(registry) => Some(WarehouseView {
            state_dir: state_dir.display().to_string(),
            other_studies: registry
                .all_latest()?
                .into_iter()
                .filter(|s| !manifest.manifest.component.contains_key(&s.study))
                .map(|s| ApprovalView::from_submission(s, None))
                .collect(),
        }),
    };
    Ok(Report {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        application: ApplicationView {
            name: manifest.manifest.application.name.clone(),
            version: manifest.manifest.application.version.clone(),
        },
        manifest: options.manifest.display().to_string(),
        warehouse,
        components,
    })
}

fn grants(manifest: &LoadedManifest, id: &str) -> Result<Grants, InspectError> {
    let c = &manifest.manifest.component[id];
    let tool = CarrelTool::of(id, &c.tool)?;
    Ok(Grants {
        routes: manifest
            .http_triggers
            .iter()
            .filter(|t| t.component == id)
            .map(|t| match &t.route {
                HttpRoute::Path(p) => p.clone(),
                HttpRoute::Private(_) => "(private)".to_owned(),
            })
            .collect(),
        auth: tool.auth.map(|r| r.as_str().to_owned()),
        key_value_stores: c.key_value_stores.clone(),
        sqlite_databases: c.sqlite_databases.clone(),
        allowed_outbound_hosts: c.allowed_outbound_hosts.clone(),
        variables: c.variables.clone(),
        files: c
            .files
            .iter()
            .map(|f| match f {
                FileMount::Pattern(p) => p.clone(),
                FileMount::Placement(p) => format!("{} -> {}", p.source, p.destination),
            })
            .collect(),
        environment: c.environment.clone(),
        ingest: tool.ingest.map(|i| IngestGrant {
            dataset: i.dataset,
            pseudonymiser: i.pseudonymiser,
        }),
        keyed_hash_domains: tool.keyed_hash_domains,
        study: tool.study.map(|mut s| {
            // An invalid section has no table to show; the manifest check says why.
            let _ = s.validate(id);
            let model = s.model.as_ref().map(|m| ModelGrant {
                file: m.file.clone(),
                sha256: crate::study::manifest::model_file_sha256(manifest.base_dir(), id, m).ok(),
                features: m.features.clone(),
                outcome: m.outcome.clone(),
                bins: m.bins,
                thresholds: m.thresholds.clone(),
                subgroups: m.subgroups.clone(),
            });
            let epsilon_per_release = s
                .table
                .is_some()
                .then(|| crate::study::budget::cost_of(&s))
                .flatten()
                .map(|c| c.epsilon);
            let fit = s.fit.as_ref().map(|f| FitGrant {
                family: f.family.clone(),
                features: f.features.clone(),
                outcome: f.outcome.clone(),
                max_parameter_fraction: f.max_parameter_fraction,
            });
            StudyGrant {
                kind: s.kind.as_str().to_owned(),
                model,
                fit,
                title: s.title,
                purpose: s.purpose,
                legal_basis: s.legal_basis,
                principal_investigator: s.principal_investigator,
                unit: match s.unit {
                    crate::study::manifest::Unit::Consultation => "consultation".into(),
                    crate::study::manifest::Unit::Patient => "patient".into(),
                },
                table: s.table.as_ref().map(table_grant).unwrap_or_default(),
                datasets: s.datasets,
                params: s.params,
                disclosure: DisclosureGrant {
                    min_count: s.disclosure.min_count,
                    rounding: s.disclosure.rounding,
                    max_rows: s.disclosure.max_rows as u64,
                    max_bytes: s.disclosure.max_bytes as u64,
                    noise_scale: s.disclosure.noise_scale,
                    epsilon_budget: s.disclosure.epsilon_budget,
                    epsilon_per_release,
                },
                time_limit_seconds: s.time_limit_seconds,
                memory_limit_mb: s.memory_limit_mb,
                expires: s.expires,
            }
        }),
    })
}

/// The declared table with each dimension's domain spelled out.
fn table_grant(table: &crate::study::table::TableSpec) -> TableGrant {
    use crate::study::table::Dimension;
    let dimensions = table
        .dimensions
        .iter()
        .zip(table.dimension_kinds())
        .map(|(name, kind)| {
            let domain = match kind {
                Dimension::Week => "ISO week of date".to_owned(),
                Dimension::Month => "month of date".to_owned(),
                Dimension::Year => "year of date".to_owned(),
                Dimension::Region => "region of departement".to_owned(),
                Dimension::AgeClass => {
                    format!("age classes {}", table.age_class_labels().join(", "))
                }
                Dimension::Label => format!(
                    "chosen by the study among {}",
                    table
                        .labels
                        .as_ref()
                        .map(|l| l.values.join(", "))
                        .unwrap_or_default()
                ),
                other => format!("{} as stored", other.source_column().unwrap_or("?")),
            };
            format!("{name}: {domain}")
        })
        .collect();
    TableGrant {
        dimensions,
        measures: table.measures.clone(),
        shares: table
            .shares
            .iter()
            .map(|(share, [n, d])| (share.clone(), format!("{n} / {d}")))
            .collect(),
        max_per_patient: table.max_per_patient,
        max_cells_per_patient: table.max_cells_per_patient,
        by: table.by.clone(),
    }
}

fn component(
    manifest: &LoadedManifest,
    engine: &wasmtime::Engine,
    id: &str,
) -> Result<ComponentReport, InspectError> {
    let grants = grants(manifest, id)?;
    let mut report = ComponentReport {
        id: id.to_owned(),
        source: match &manifest.manifest.component[id].source {
            ComponentSource::Local(p) => p.clone(),
            ComponentSource::Remote(_) => "(remote)".to_owned(),
        },
        sha256: None,
        manifest_sha256: None,
        grants,
        imports: Vec::new(),
        exports: Vec::new(),
        findings: Vec::new(),
        approval: None,
    };
    let mut problem = None;
    match manifest.component_source_path(id) {
        Err(e) => problem = Some((FindingKind::Unreadable, e.to_string())),
        Ok(path) if !path.is_file() => {
            problem = Some((
                FindingKind::NotBuilt,
                format!(
                    "{} does not exist: build it to see what it imports",
                    path.display()
                ),
            ))
        }
        Ok(path) => match read_component(engine, &path) {
            Ok((sha256, imports, exports)) => {
                report.sha256 = Some(sha256);
                report.imports = imports;
                report.exports = exports;
            }
            Err((sha256, e)) => {
                report.sha256 = sha256;
                problem = Some((FindingKind::Unreadable, with_causes(&e)));
            }
        },
    }
    // Without imports, every grant would look unused: compare only a readable binary.
    if problem.is_none() {
        report.findings = classify::compare(&mut report.imports, &report.grants);
    }
    if let Some((kind, message)) = problem {
        report.findings.push(Finding {
            kind,
            capability: None,
            subject: report.source.clone(),
            message,
        });
    }
    Ok(report)
}

type Read = (String, Vec<ImportView>, Vec<String>);

fn read_component(
    engine: &wasmtime::Engine,
    path: &Path,
) -> Result<Read, (Option<String>, BinaryError)> {
    let bytes = std::fs::read(path).map_err(|source| {
        let path = path.to_owned();
        (None, BinaryError::Read { path, source })
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    // A wasip1 module is reported as the component carrel makes of it at load.
    let component = carrel_runtime::componentize::componentize_if_module(&bytes)
        .map_err(BoxError::from)
        .and_then(|component| Component::new(engine, &component).map_err(BoxError::from))
        .map_err(|source| {
            let path = path.to_owned();
            (
                Some(sha256.clone()),
                BinaryError::NotLoadable { path, source },
            )
        })?;
    let ty = component.component_type();
    let mut imports: Vec<ImportView> = ty
        .imports(engine)
        .map(|(name, _)| classify::classify(name))
        .collect();
    imports.sort_by(|a, b| a.name.cmp(&b.name));
    let mut exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    exports.sort();
    Ok((sha256, imports, exports))
}
