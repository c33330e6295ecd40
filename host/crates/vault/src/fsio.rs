//! Durable file writes: temp file, fsync, rename, fsync of the directory. After
//! [`write_durably`] returns, the file survives a crash with its full content, and before
//! the rename nothing is visible under the final name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::random_id;

/// Suffix of files being written; anything carrying it was interrupted and is garbage.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Creates `dir` (and missing parents) readable by its owner only, since it will hold the
/// catalog, wrapped keys and perhaps the master key; an existing directory is left as is.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The temporary sibling a durable write goes through: same directory (so the rename is
/// atomic), random part so concurrent writers never share one.
pub(crate) fn temp_path_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}{TEMP_SUFFIX}", &random_id()[..8]))
}

/// Writes `path` with `mode` through a temp file, `write` filling it.
pub(crate) fn write_durably(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<()>,
) -> io::Result<()> {
    let temp = temp_path_for(path);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)?;
        let mut writer = io::BufWriter::with_capacity(1 << 20, &file);
        write(&mut writer)?;
        writer.flush()?;
        drop(writer);
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        // Best effort: the temp file is garbage either way and is also swept at open.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Replaces `to` with `from` atomically and makes the rename durable.
pub(crate) fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn durable_write_leaves_only_the_final_file_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        write_durably(&path, 0o600, |w| w.write_all(b"content")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"content");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);
    }

    #[test]
    fn new_state_directory_is_private_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        create_private_dir(&state).unwrap();
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_private_dir(&state).unwrap();
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o750
        );
    }

    #[test]
    fn failed_write_leaves_no_temp_file_and_no_final_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let result = write_durably(&path, 0o600, |_| Err(io::Error::other("disk full")));
        assert!(result.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
