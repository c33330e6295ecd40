//! One rule for where every subcommand finds the warehouse's state directory:
//! `--state-dir DIR` (or the `CARREL_STATE_DIR` environment variable), else `.spin` beside
//! the application manifest (`-f/--from`, default `spin.toml` in the current directory),
//! which is where `carrel up` keeps it. So `carrel up -f app/spin.toml` and
//! `carrel tokens add -f app/spin.toml …` use one warehouse, and so does every command run
//! after `export CARREL_STATE_DIR=app/.spin`.

use crate::manifest::LoadedManifest;
use carrel_runtime::app::STATE_DIR_NAME;
use std::path::{Path, PathBuf};

/// The environment variable every `--state-dir` option reads.
pub const ENV: &str = "CARREL_STATE_DIR";

/// `--state-dir` and `-f/--from`, for subcommands that take no manifest of their own.
#[derive(Debug, Clone, clap::Args)]
pub struct StateLocation {
    /// State directory; default `.spin` beside the manifest given by `-f`, as `carrel up`
    /// uses it.
    #[arg(long, global = true, env = ENV)]
    pub state_dir: Option<PathBuf>,
    /// The application manifest whose `.spin` directory is the default state directory.
    #[arg(short = 'f', long = "from", global = true, default_value = "spin.toml")]
    pub from: PathBuf,
}

impl StateLocation {
    pub fn resolve(&self) -> PathBuf {
        resolve(self.state_dir.as_deref(), &self.from)
    }
}

/// The state directory: `explicit` if given, else `.spin` beside `manifest`.
pub fn resolve(explicit: Option<&Path>, manifest: &Path) -> PathBuf {
    explicit.map_or_else(|| beside(manifest), Path::to_owned)
}

/// `.spin` in the directory of `manifest` (the current directory for a bare file name).
pub fn beside(manifest: &Path) -> PathBuf {
    match manifest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(STATE_DIR_NAME),
        _ => PathBuf::from(STATE_DIR_NAME),
    }
}

/// `.spin` in the directory of a loaded manifest.
pub fn beside_loaded(manifest: &LoadedManifest) -> PathBuf {
    carrel_runtime::app::default_state_dir(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_is_beside_the_manifest_unless_named() {
        assert_eq!(beside(Path::new("spin.toml")), PathBuf::from(".spin"));
        assert_eq!(
            beside(Path::new("app/spin.toml")),
            PathBuf::from("app/.spin")
        );
        assert_eq!(
            resolve(Some(Path::new("/srv/state")), Path::new("app/spin.toml")),
            PathBuf::from("/srv/state")
        );
    }
}
