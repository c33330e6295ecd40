//! The runtime's errors. Each names what is at fault (a file, a component, a directory)
//! and keeps its cause as its source, so the binary prints the whole chain and a layer
//! above can tell the cases apart.

use crate::capabilities::key_value::KeyValueSetupError;
use crate::capabilities::outbound_http::OutboundHostError;
use crate::capabilities::sqlite::SqliteSetupError;
use crate::componentize::ComponentizeError;
use crate::dotenv::DotenvError;
use crate::manifest::{ManifestError, RouteError, VariableError};
use crate::runtime_config::RuntimeConfigError;
use std::io;
use std::path::PathBuf;

/// An error of wasmtime or WASI, kept as a cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why the engine could not be built or a component loaded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot configure the engine")]
    Config(#[source] BoxError),
    #[error("cannot read component {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot load {}", path.display())]
    NotWasm {
        path: PathBuf,
        #[source]
        source: ComponentizeError,
    },
    #[error("cannot make {} a component", path.display())]
    Componentize {
        path: PathBuf,
        #[source]
        source: ComponentizeError,
    },
    #[error("cannot compile {}", path.display())]
    Compile {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
}

/// Why a component's `files` could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum FileMountError {
    #[error("invalid exclude_files pattern `{pattern}`")]
    ExcludePattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("invalid files pattern `{pattern}`")]
    Pattern {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("files entry `{0}` must be a relative path inside the application directory")]
    NotRelative(String),
    #[error("files source `{0}` does not exist")]
    MissingSource(String),
    #[error("cannot clear {}", path.display())]
    Clear {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot stage the component's files")]
    Io(#[from] io::Error),
    #[error("cannot read a file the files pattern matched")]
    Glob(#[from] glob::GlobError),
}

/// Why an app cannot be loaded: anything wrong with it is found before the first request.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The manifest's routes or variables, named with the manifest's path.
    #[error("{}: {error}", path.display())]
    Routes { path: PathBuf, error: RouteError },
    #[error("{}", path.display())]
    Variables {
        path: PathBuf,
        #[source]
        source: VariableError,
    },
    #[error(transparent)]
    RuntimeConfig(#[from] RuntimeConfigError),
    #[error(transparent)]
    Dotenv(#[from] DotenvError),
    #[error(transparent)]
    KeyValue(#[from] KeyValueSetupError),
    #[error(transparent)]
    Sqlite(#[from] SqliteSetupError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot add the host's interfaces to the linker")]
    Linker(#[source] BoxError),
    #[error("cannot create state directory {}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the log directory of {}", path.display())]
    LogDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("component `{id}`")]
    Component {
        id: String,
        #[source]
        source: Box<ComponentError>,
    },
}

/// Why one component cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error(transparent)]
    Source(#[from] ManifestError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot link its imports")]
    Link(#[source] BoxError),
    #[error(
        "{} exports neither wasi:http/handler@0.3 nor wasi:http/incoming-handler@0.2",
        path.display()
    )]
    NotHttp { path: PathBuf },
    #[error(transparent)]
    Files(#[from] FileMountError),
    #[error(transparent)]
    Outbound(#[from] OutboundHostError),
    #[error(
        "allowed_outbound_hosts entry `http://{0}.spin.internal`: the app has no HTTP component `{0}`"
    )]
    UnknownChainedComponent(String),
    #[error(transparent)]
    KeyValue(#[from] KeyValueSetupError),
    #[error(transparent)]
    Sqlite(#[from] SqliteSetupError),
    #[error("cannot open its log files")]
    LogFiles(#[source] io::Error),
}

/// An error and its causes on one line, `outer: inner: root`, as `anyhow` writes `{:#}`.
pub fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_written_with_every_cause() {
        let error = LoadError::StateDir {
            path: "/srv/state".into(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(
            with_causes(&error),
            "cannot create state directory /srv/state: denied"
        );
    }
}
