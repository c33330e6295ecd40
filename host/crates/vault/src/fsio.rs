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
/// catalog, wrapped keys and perhaps the master key; an existing one is made private
/// ([`secure_state_dir`]).
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return secure_state_dir(dir).map(|_| ());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes a state directory private whatever it was before: the directory and those
/// under it `0700`, every file `0600` (keeping only the owner's bits). systemd's
/// `StateDirectory=` creates it `0755`, and SQLite creates its files `0644` under the
/// usual umask. What was narrowed is logged as a warning (the directory itself, then a
/// count of the rest); returns how many entries were narrowed. Symbolic links are left
/// alone and not followed.
pub fn secure_state_dir(dir: &Path) -> io::Result<usize> {
    use std::os::unix::fs::PermissionsExt;
    let mut narrowed = 0;
    let mut inside = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path)?;
        let mode = metadata.permissions().mode() & 0o7777;
        let wanted = if metadata.is_dir() {
            0o700
        } else if metadata.is_file() {
            mode & 0o700
        } else {
            continue;
        };
        if mode != wanted && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))?;
            if path == dir {
                tracing::warn!(
                    path = %path.display(),
                    was = format!("{mode:04o}"),
                    "narrowed the permissions of the state directory to 0700: it holds keys and health data"
                );
            } else {
                inside += 1;
            }
            narrowed += 1;
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    if inside > 0 {
        tracing::warn!(
            path = %dir.display(),
            entries = inside,
            "narrowed the permissions of entries in the state directory (files to 0600, directories to 0700)"
        );
    }
    Ok(narrowed)
}

/// Creates `path` empty with mode `0600` if it does not exist, so that a database opened
/// on it (and the journal files SQLite gives the same mode) is private from the start.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
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
    #[test]
    fn a_wider_state_directory_and_its_files_are_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        use std::path::Path;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let set = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        std::fs::create_dir_all(state.join("segments/consultations")).unwrap();
        std::fs::write(state.join("carrel.db"), b"x").unwrap();
        std::fs::write(state.join("segments/consultations/s1"), b"x").unwrap();
        set(&state, 0o755);
        set(&state.join("segments"), 0o755);
        set(&state.join("carrel.db"), 0o644);
        set(&state.join("segments/consultations/s1"), 0o664);
        // The directory, `segments`, `segments/consultations` (0755 by the umask) and
        // both files.
        assert_eq!(super::secure_state_dir(&state).unwrap(), 5);
        assert_eq!(mode(&state), 0o700);
        assert_eq!(mode(&state.join("segments")), 0o700);
        assert_eq!(mode(&state.join("carrel.db")), 0o600);
        assert_eq!(mode(&state.join("segments/consultations/s1")), 0o600);
        assert_eq!(
            super::secure_state_dir(&state).unwrap(),
            0,
            "nothing left to narrow"
        );
        let fresh = state.join("new.db");
        super::create_private_file(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o600);
    }

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
    fn new_state_directory_is_private_and_an_existing_wider_one_is_narrowed() {
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
            0o700
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
