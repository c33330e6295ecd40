//! What crosses the sandbox: log messages, and the glue behind [`crate::export_study!`]
//! between the generated `study` world exports and a [`crate::Study`].

use crate::bindings::carrel::eds::log as host_log;

/// Messages left for the auditors (the host bounds their number and length). On real
/// data no researcher sees them; still, never log row-level data: the auditors may not
/// see it either.
pub mod log {
    use super::host_log::{Level, log};

    pub fn debug(message: impl AsRef<str>) {
        log(Level::Debug, message.as_ref());
    }

    pub fn info(message: impl AsRef<str>) {
        log(Level::Info, message.as_ref());
    }

    pub fn warn(message: impl AsRef<str>) {
        log(Level::Warn, message.as_ref());
    }

    pub fn error(message: impl AsRef<str>) {
        log(Level::Error, message.as_ref());
    }
}

/// What [`crate::export_study!`] expands to call. Not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::sync::OnceLock;

    use crate::Study;
    use crate::bindings::carrel::eds::study_types::{
        Consultations, Contribution, StudyError as WitStudyError, TableSpec,
    };
    use crate::error::StudyError;
    use crate::spec::Spec;

    pub use crate::bindings::Guest;

    /// The table of this instance: the host calls `start` once, before any batch.
    static SPEC: OnceLock<Spec> = OnceLock::new();

    fn wit(error: StudyError) -> WitStudyError {
        WitStudyError::Failed(error.message().to_owned())
    }

    pub fn start<S: Study>(table: TableSpec) -> Result<(), WitStudyError> {
        // A panic traps the instance; leave its message for the auditors first.
        std::panic::set_hook(Box::new(|info| {
            super::log::error(format!("the study panicked: {info}"));
        }));
        let spec = Spec::from_wit(table).map_err(wit)?;
        S::start(&spec).map_err(wit)?;
        SPEC.set(spec)
            .map_err(|_| wit(StudyError::failed("`start` was called twice")))
    }

    pub fn classify<S: Study>(batch: Consultations) -> Result<Vec<Contribution>, WitStudyError> {
        let spec = SPEC
            .get()
            .ok_or_else(|| wit(StudyError::failed("`classify` was called before `start`")))?;
        crate::study::classify::<S>(spec, &batch).map_err(wit)
    }
}
