//! Why a request to the study API failed, and the status each case answers with: chosen
//! from the error's variant, never from its message.

use carrel_runtime::responses::{HostResponse, json};
use carrel_warehouse::download_formats::DownloadError;
use carrel_warehouse::study::errors::StudyError;
use carrel_warehouse::study::metadata::MetadataError;
use carrel_warehouse::study::registry::RegistryError;
use carrel_warehouse::tokens::TokenError;
use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Study(#[from] StudyError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The token a request names (a new owner's) is unknown or unreadable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The run's parameters are refused before anything is stored.
    #[error(transparent)]
    Params(#[from] MetadataError),
    /// A released table that cannot be written in the asked format.
    #[error(transparent)]
    Download(#[from] DownloadError),
    #[error("the run task failed: {0}")]
    RunTask(#[from] tokio::task::JoinError),
}

impl ApiError {
    /// 503 when the catalog stayed locked by other writers past its wait (nothing was
    /// done: ask again), 404 for what does not exist or is not the caller's, 400 for a
    /// bad request (an unknown token, refused parameters), 500 for what the host cannot
    /// read or run, 409 for a state that forbids the action.
    pub fn status(&self) -> StatusCode {
        if self.catalog_busy() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        let registry = match self {
            Self::Registry(e) => Some(e),
            Self::Study(e) => e.registry(),
            _ => None,
        };
        match (self, registry) {
            (
                _,
                Some(
                    RegistryError::NotYours(_)
                    | RegistryError::UnknownRun(_)
                    | RegistryError::NotInManifest { .. },
                ),
            ) => StatusCode::NOT_FOUND,
            (Self::Token(_) | Self::Params(_), _) => StatusCode::BAD_REQUEST,
            (Self::Download(_) | Self::RunTask(_), _) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::CONFLICT,
        }
    }

    /// Whether the error comes from a catalog that other connections kept locked.
    pub fn catalog_busy(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(rusqlite::Error::SqliteFailure(failure, _)) =
                e.downcast_ref::<rusqlite::Error>()
                && matches!(
                    failure.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                )
            {
                return true;
            }
            cause = e.source();
        }
        false
    }

    /// `{"error": "…"}` with every cause, at [`ApiError::status`].
    pub fn response(&self) -> HostResponse {
        json(
            self.status(),
            &serde_json::json!({"error": carrel_runtime::error::with_causes(self)}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("database is locked".into()),
        )
    }

    #[test]
    fn statuses_come_from_the_variant_not_the_message() {
        let not_yours = ApiError::from(StudyError::from(RegistryError::NotYours("s".into())));
        assert_eq!(not_yours.status(), StatusCode::NOT_FOUND);
        let unknown_run = ApiError::from(RegistryError::UnknownRun("r".into()));
        assert_eq!(unknown_run.status(), StatusCode::NOT_FOUND);
        let revoked = ApiError::from(RegistryError::Revoked("s".into()));
        assert_eq!(revoked.status(), StatusCode::CONFLICT);
        // A message that reads like a 404 does not make one.
        let owners = ApiError::from(RegistryError::Owners("no study `x` of yours".into()));
        assert_eq!(owners.status(), StatusCode::CONFLICT);
        let unreadable = ApiError::from(DownloadError::NotLogisticFit);
        assert_eq!(unreadable.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_locked_catalog_is_found_through_the_causes() {
        let direct = ApiError::from(RegistryError::Database(busy()));
        assert!(direct.catalog_busy());
        assert_eq!(direct.status(), StatusCode::SERVICE_UNAVAILABLE);
        let nested = ApiError::from(StudyError::from(RegistryError::Audit(
            carrel_vault::VaultError::Sqlite(busy()),
        )));
        assert!(nested.catalog_busy());
        let other = ApiError::from(RegistryError::Database(
            rusqlite::Error::QueryReturnedNoRows,
        ));
        assert!(!other.catalog_busy());
    }
}
