//! The study desk: everything a researcher or an auditor does with studies, over one
//! warehouse. Shared by the `carrel study` commands and the `/api/studies` routes.

use super::budget;
use super::errors::{ModelCheckError, StudyError};
use super::owners::Caller;
use super::registry::{ApprovalState, RunRecord, StudyRegistry, Submission, now};
use super::sandbox::StudySandbox;
use super::spec::ReadObserver;
use super::spec::sha256_hex;
pub use super::spec::{RunContext, StudySpec, study_specs};
use crate::capabilities::keyed_hash::PseudonymSecret;
use crate::study::registry::{RegistryError, RunStatus};
use carrel_disclosure::Policy;
use carrel_runtime::engine::{EngineOptions, EpochTicker, build_engine, load_component};
use carrel_vault::{AuditLog, Vault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;

/// A study as `carrel study list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StudyListing {
    pub id: String,
    pub title: String,
    pub principal_investigator: String,
    pub expires: String,
    /// `not submitted`, `submitted`, `approved` or `revoked`.
    pub state: String,
    pub wasm_sha256: Option<String>,
    pub manifest_sha256: String,
    /// True when the binary or the manifest section on disk differ from the submission.
    pub changed_since_submission: bool,
    pub submission: Option<Submission>,
    /// The holders of the researchers' tokens that own it ([`super::owners`]).
    pub owners: Vec<String>,
}

pub struct StudyService {
    pub specs: BTreeMap<String, StudySpec>,
    pub registry: StudyRegistry,
    /// Studies get an engine of their own: their memory limits are their manifests', not
    /// the HTTP components'.
    engine: Engine,
    _ticker: EpochTicker,
    sandbox: StudySandbox,
    vault: Arc<Vault>,
    audit: Arc<AuditLog>,
    secret: PseudonymSecret,
    /// The warehouse's minimum disclosure policy; no study goes below it.
    operator_policy: Policy,
    cache_dir: PathBuf,
    /// What runs leave out (objections, retention), and the store gate they read under.
    rights: Option<Arc<crate::patients::PatientRights>>,
    compiled: super::compiled::CompiledStudies,
}

/// An engine whose instances may grow to the largest memory limit of the studies.
pub fn study_engine(specs: &BTreeMap<String, StudySpec>) -> Result<Engine, StudyError> {
    let largest = specs
        .values()
        .map(|s| s.tool.memory_limit_mb)
        .max()
        .unwrap_or(256);
    Ok(build_engine(&EngineOptions {
        instance_slots: 16,
        max_memory_bytes: (largest as usize) << 20,
        // A study run is rare and reads a lot: give its memory back when it ends.
        keep_resident_bytes: 0,
    })?)
}

fn new_run_id() -> String {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("operating system random source");
    let day = time::OffsetDateTime::now_utc();
    format!(
        "run-{:04}{:02}{:02}-{}",
        day.year(),
        u8::from(day.month()),
        day.day(),
        hex::encode(random)
    )
}

impl StudyService {
    pub fn new(
        specs: BTreeMap<String, StudySpec>,
        vault: Arc<Vault>,
        audit: Arc<AuditLog>,
        state_dir: &Path,
        operator_policy: Policy,
    ) -> Result<Self, StudyError> {
        let engine = study_engine(&specs)?;
        Ok(Self {
            specs,
            registry: StudyRegistry::open(state_dir)?,
            _ticker: EpochTicker::start(&engine),
            sandbox: StudySandbox::new(&engine)?,
            engine,
            vault,
            audit,
            secret: PseudonymSecret::load_or_create(state_dir)?,
            operator_policy,
            cache_dir: state_dir.join("cache"),
            rights: None,
            compiled: Default::default(),
        })
    }

    /// Runs leave out patients who objected and rows past retention ([`crate::patients`]).
    pub fn with_rights(mut self, rights: Arc<crate::patients::PatientRights>) -> Self {
        self.rights = Some(rights);
        self
    }

    pub fn spec(&self, id: &str) -> Result<&StudySpec, RegistryError> {
        self.specs.get(id).ok_or_else(|| {
            let known: Vec<&str> = self.specs.keys().map(String::as_str).collect();
            RegistryError::NotInManifest {
                id: id.to_owned(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            }
        })
    }

    /// sha256 of the study's wasm as it is on disk now.
    pub fn current_wasm_sha256(&self, id: &str) -> Result<String, StudyError> {
        let spec = self.spec(id)?;
        let bytes = std::fs::read(&spec.source).map_err(|source| StudyError::Unbuilt {
            id: id.to_owned(),
            path: spec.source.clone(),
            source,
        })?;
        Ok(sha256_hex(&bytes))
    }

    /// Records a submission by `who`: its first submitter owns the study, and only its
    /// owners (or the operator) submit it again.
    pub async fn submit(&self, id: &str, who: &Caller) -> Result<Submission, StudyError> {
        self.registry.check_submitter(id, who)?;
        let spec = self.spec(id)?;
        super::metadata::check_section(id, &spec.tool)?;
        let wasm = self.current_wasm_sha256(id)?;
        // A binary that is not a study of its kind is refused now rather than at its
        // first run; so is a model it cannot run, checked by the study in a sandbox (the
        // host parses no model file).
        let loaded = load_component(&self.engine, &spec.source, Some(&self.cache_dir))?;
        self.sandbox
            .check(&loaded.component, spec.tool.kind)
            .map_err(|source| StudyError::NotThisKind {
                id: id.to_owned(),
                source,
            })?;
        if let Some(model) = &spec.tool.model {
            check_model(&self.sandbox, &loaded.component, spec, model)
                .await
                .map_err(|source| StudyError::Model {
                    id: id.to_owned(),
                    file: model.file.clone(),
                    source,
                })?;
        }
        // What the register will show once approved: the text as submitted.
        let text = super::approved_text::StudyText::of(&spec.tool);
        self.registry.keep_text(id, &spec.manifest_sha256, &text)?;
        Ok(self
            .registry
            .submit_as(id, &wasm, &spec.manifest_sha256, who)?)
    }

    /// Approves as `who`: an auditor's token, or the operator.
    pub fn approve(&self, id: &str, who: &Caller) -> Result<Submission, StudyError> {
        let auditor = &who.approver()?;
        let spec = self.spec(id)?;
        super::metadata::check_section(id, &spec.tool)?;
        let wasm = self.current_wasm_sha256(id)?;
        Ok(self
            .registry
            .approve(id, &wasm, &spec.manifest_sha256, auditor)?)
    }

    /// Revokes as `who`: an auditor's token, or the operator.
    pub fn revoke(&self, id: &str, who: &Caller) -> Result<Submission, StudyError> {
        let auditor = &who.approver()?;
        self.spec(id)?;
        Ok(self.registry.revoke(id, auditor)?)
    }

    pub fn list(&self) -> Result<Vec<StudyListing>, StudyError> {
        let mut out = Vec::new();
        for (id, spec) in &self.specs {
            let wasm = self.current_wasm_sha256(id).ok();
            let submission = self.registry.latest(id)?;
            let changed = submission.as_ref().is_some_and(|s| {
                Some(&s.wasm_sha256) != wasm.as_ref() || s.manifest_sha256 != spec.manifest_sha256
            });
            out.push(StudyListing {
                id: id.clone(),
                title: spec.tool.title.clone(),
                principal_investigator: spec.tool.principal_investigator.clone(),
                expires: spec.tool.expires.clone(),
                state: submission
                    .as_ref()
                    .map(|s| s.state().as_str())
                    .unwrap_or("not submitted")
                    .to_owned(),
                wasm_sha256: wasm,
                manifest_sha256: spec.manifest_sha256.clone(),
                changed_since_submission: changed,
                submission,
                owners: self
                    .registry
                    .owners(id)?
                    .into_iter()
                    .map(|o| o.holder)
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Why the study may not run now, if it may not.
    fn refusal(&self, spec: &StudySpec, wasm_sha256: &str) -> Result<Option<String>, StudyError> {
        let id = &spec.id;
        let Some(submission) = self.registry.latest(id)? else {
            return Ok(Some(format!(
                "study `{id}` has never been submitted for approval"
            )));
        };
        let reason = match submission.state() {
            ApprovalState::Submitted => Some(format!(
                "study `{id}` is submitted but not approved by an auditor"
            )),
            ApprovalState::Revoked => Some(format!(
                "study `{id}` was revoked by {} at {}",
                submission.revoked_by.as_deref().unwrap_or("?"),
                submission.revoked_at.as_deref().unwrap_or("?")
            )),
            ApprovalState::Approved if submission.wasm_sha256 != wasm_sha256 => Some(format!(
                "study `{id}`: its binary changed since approval (approved sha256 {}, now {wasm_sha256})",
                submission.wasm_sha256
            )),
            ApprovalState::Approved if submission.manifest_sha256 != spec.manifest_sha256 => {
                Some(format!(
                    "study `{id}`: its manifest section changed since approval (approved sha256 {}, now {})",
                    submission.manifest_sha256, spec.manifest_sha256
                ))
            }
            ApprovalState::Approved => None,
        };
        if reason.is_some() {
            return Ok(reason);
        }
        if let Some(error) = &spec.model_error {
            return Ok(Some(error.clone()));
        }
        let expiry = spec.tool.expiry_date()?;
        let today = time::OffsetDateTime::now_utc().date();
        if today > expiry {
            return Ok(Some(format!(
                "study `{id}` expired on {}",
                spec.tool.expires
            )));
        }
        if let Err(e) = spec.tool.disclosure.at_least(&self.operator_policy) {
            return Ok(Some(format!(
                "study `{id}`: its disclosure policy is weaker than the warehouse's minimum: {e}"
            )));
        }
        Ok(None)
    }

    /// Runs an approved study on the warehouse's data and records the run, whatever its
    /// outcome. Errors are for an unknown study or a warehouse that cannot record.
    pub async fn run(
        &self,
        id: &str,
        params: Vec<(String, String)>,
        who: &Caller,
    ) -> Result<(RunRecord, u64), StudyError> {
        self.run_observed(id, params, who, None).await
    }

    /// [`StudyService::run`], with `observer` told of the reading as it goes.
    pub async fn run_observed(
        &self,
        id: &str,
        params: Vec<(String, String)>,
        who: &Caller,
        observer: Option<Arc<dyn ReadObserver>>,
    ) -> Result<(RunRecord, u64), StudyError> {
        // Only an owner (or the operator) runs a study; to anyone else it does not exist.
        self.registry.check_owner(id, who, "run")?;
        // Bounded before anything of them is kept.
        super::metadata::check_params(&params)?;
        let actor = &who.actor();
        let spec = self.spec(id)?;
        let bytes = std::fs::read(&spec.source).map_err(|source| StudyError::Unreadable {
            id: id.to_owned(),
            path: spec.source.clone(),
            source,
        })?;
        let wasm_sha256 = sha256_hex(&bytes);
        let mut record = RunRecord {
            run_id: new_run_id(),
            study: id.to_owned(),
            actor: actor.to_owned(),
            params: params.clone(),
            started_at: now(),
            finished_at: String::new(),
            status: RunStatus::Refused,
            error: None,
            wasm_sha256: wasm_sha256.clone(),
            manifest_sha256: spec.manifest_sha256.clone(),
            output_sha256: None,
            segments_read: Vec::new(),
            rows_read: 0,
            rows_released: 0,
            disclosure: serde_json::Value::Null,
            denied: Vec::new(),
            logs: Vec::new(),
            researcher_error: None,
            contributions_dropped: 0,
            locality: serde_json::Value::Null,
            privacy: None,
            model_report: serde_json::Value::Null,
        };
        let mut released = None;
        let refusal = match self.refusal(spec, &wasm_sha256)? {
            Some(reason) => Some(reason),
            // The run's privacy cost is reserved before it reads anything.
            None => match self.registry.reserve_budget(
                id,
                &record.run_id,
                &spec.tool.disclosure,
                budget::cost_of(&spec.tool),
            )? {
                Ok(spend) => {
                    record.privacy = spend;
                    None
                }
                Err(overspent) => Some(overspent.to_string()),
            },
        };
        match refusal {
            // Refused before any data was read: the reason may be shown to the researcher.
            Some(reason) => {
                record.researcher_error = Some(reason.clone());
                record.error = Some(reason);
            }
            None => {
                // The compiled component is cached by the binary's hash: compiling it anew
                // took most of a small run.
                let loaded = self
                    .compiled
                    .load(
                        id,
                        &wasm_sha256,
                        &self.engine,
                        &spec.source,
                        &self.cache_dir,
                    )
                    .map_err(|source| StudyError::Compile {
                        id: id.to_owned(),
                        source,
                    })?;
                // The file was read twice: what runs must be what was checked above.
                if loaded.sha256 != wasm_sha256 {
                    return Err(StudyError::ChangedWhileStarting { id: id.to_owned() });
                }
                let component = loaded.component;
                let reading = crate::patients::reading(self.rights.as_deref()).await?;
                let context = RunContext {
                    vault: &self.vault,
                    audit: Some(&self.audit),
                    secret: &self.secret,
                    policy: &spec.tool.disclosure,
                    actor,
                    observer,
                    exclusions: reading.as_ref().map(|r| &r.exclusions),
                };
                released = execute(
                    &self.sandbox,
                    spec,
                    &component,
                    &context,
                    &params,
                    &mut record,
                )
                .await;
            }
        }
        record.finished_at = now();
        let seq = self.registry.record_run(&mut record, released.as_deref())?;
        tracing::info!(study = id, run = %record.run_id, status = %record.status, "study run recorded");
        Ok((record, seq))
    }
}

/// Has a model-evaluation study check its model file in a sandbox, under its limits.
pub async fn check_model(
    sandbox: &StudySandbox,
    component: &wasmtime::component::Component,
    spec: &StudySpec,
    model: &super::model_spec::ModelSpec,
) -> Result<(), ModelCheckError> {
    let Some((sha256, path)) = &spec.model else {
        return Err(ModelCheckError::NoModel(
            spec.model_error
                .clone()
                .unwrap_or_else(|| "no model file".to_owned()),
        ));
    };
    let onnx = std::fs::read(path).map_err(|source| ModelCheckError::Read {
        path: path.clone(),
        source,
    })?;
    if &sha256_hex(&onnx) != sha256 {
        return Err(ModelCheckError::Changed { path: path.clone() });
    }
    let limits = super::sandbox::RunLimits {
        time: std::time::Duration::from_secs(spec.tool.time_limit_seconds),
        memory_bytes: (spec.tool.memory_limit_mb as usize) << 20,
    };
    let wit = crate::capabilities::study_world::bindings::carrel::eds::study_types::Model {
        onnx,
        features: model.features.clone(),
    };
    let summary = sandbox
        .check_model(component, limits, &wit)
        .await
        .map_err(|f| ModelCheckError::Refused(f.detail()))?;
    if summary.inputs as usize != model.features.len() {
        return Err(ModelCheckError::Inputs {
            inputs: summary.inputs as usize,
            features: model.features.len(),
        });
    }
    Ok(())
}

pub use super::run::execute;
