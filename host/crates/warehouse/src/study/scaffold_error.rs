//! Why `carrel study new` wrote nothing, or stopped: each error names the file or folder.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The study's name is not a component id and package name (the message says why).
    #[error("{0}")]
    BadName(String),
    #[error(transparent)]
    Path(#[from] std::io::Error),
    #[error(transparent)]
    Date(#[from] time::error::Format),
    #[error("{} already exists: choose another name, or remove it first", path.display())]
    Exists { path: PathBuf },
    #[error(
        "{} is not inside a Cargo workspace (the components workspace, components/Cargo.toml): pass --dir components/studies",
        dir.display()
    )]
    NoWorkspace { dir: PathBuf },
    #[error("the workspace {} has no study-sdk directory to build the study on", workspace.display())]
    NoSdk { workspace: PathBuf },
    #[error(
        "no Python study SDK found: {sdk}/carrel_study and {wit}/eds.wit of the carrel repository must be at or above {}",
        dir.display()
    )]
    NoPythonSdk {
        sdk: &'static str,
        wit: &'static str,
        dir: PathBuf,
    },
    #[error("{}: add \"{member}\" to its members by hand", path.display())]
    Members {
        path: PathBuf,
        member: String,
        /// Boxed, as the TOML errors below: they are large, and returned once.
        #[source]
        source: Box<MembersError>,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read the manifest {} (pass -f <spin.toml>, or --no-manifest to print the section instead)",
        path.display()
    )]
    ManifestUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid TOML", path.display())]
    ManifestNotToml {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{} already has a component `{name}`: choose another name", path.display())]
    ComponentExists { path: PathBuf, name: String },
    #[error("the manifest section does not parse (a bug in carrel)")]
    SectionDoesNotParse(#[source] Box<toml::de::Error>),
}

/// Why a study could not be added to a workspace's `members`.
#[derive(Debug, thiserror::Error)]
pub enum MembersError {
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("no [workspace] table")]
    NoWorkspaceTable,
    #[error("cannot find a `members = [...]` array under [workspace]")]
    NoMembersArray,
}
