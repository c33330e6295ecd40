//! Approved studies: the capability manifest, the register of submissions, approvals and
//! runs, the sandbox a run executes in, and disclosure control of what comes out.
//!
//! A run goes: the study must be approved for the exact sha256 of its wasm and of its
//! manifest section, not revoked, not expired → a fresh sandbox with its limits reads
//! only granted columns → the returned table passes disclosure control (never trusted to
//! the study) → the released table, what was read and what was redacted are recorded with
//! an audit entry.

pub mod answers;
pub mod approved_text;
pub mod budget;
pub mod compiled;
mod contributions;
pub mod counting;
mod counting_thread;
pub mod errors;
pub mod evaluation;
pub mod fitting;
pub mod geography;
pub mod handout;
pub mod locality;
pub mod manifest;
pub mod metadata;
pub mod model_spec;
pub mod onnx_export;
pub mod owners;
pub mod plan;
pub mod reading;
pub mod records;
pub mod registry;
pub mod release;
pub mod row_keys;
pub mod run;
pub mod run_gate;
pub mod run_pages;
pub mod sandbox;
pub mod scaffold;
pub mod scaffold_error;
pub mod scaffold_model;
pub mod scaffold_python;
pub mod seeds;
pub mod service;
mod slot_counts;
pub mod spec;
pub mod synthetic;
pub mod table;
pub mod tally;
pub mod view;

pub use owners::Caller;
pub use registry::{ApprovalState, RunRecord, StudyRegistry, Submission};
pub use service::{StudyService, StudySpec, study_specs};
pub use view::ResearcherRun;
