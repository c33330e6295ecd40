//! Removal of segment files no catalog row points to. They are left by appends or
//! re-encryptions interrupted between writing the file and committing its row (or by the
//! removal of a replaced file), and readers never see them because readers go through
//! the catalog. Runs at open, under the state directory lock, so no append is in flight.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Connection;

use crate::error::{Result, io_context};
use crate::fsio;

/// Removes orphan files (and directories of datasets that were never committed);
/// returns how many files were removed.
pub(crate) fn sweep(conn: &Connection, segments_dir: &Path) -> Result<u64> {
    let datasets: HashSet<String> = conn
        .prepare("SELECT name FROM datasets")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut referenced = conn.prepare("SELECT file_name FROM segments WHERE dataset = ?1")?;
    let mut removed = 0;
    let context = |path: &Path| format!("removing orphan {}", path.display());
    for entry in std::fs::read_dir(segments_dir)
        .map_err(io_context(format!("listing {}", segments_dir.display())))?
    {
        let entry = entry.map_err(io_context(format!("listing {}", segments_dir.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() {
            std::fs::remove_file(&path).map_err(io_context(context(&path)))?;
            removed += 1;
            continue;
        }
        let known: HashSet<String> = if datasets.contains(&name) {
            referenced
                .query_map([&name], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?
        } else {
            HashSet::new()
        };
        let mut removed_here = 0;
        for file in
            std::fs::read_dir(&path).map_err(io_context(format!("listing {}", path.display())))?
        {
            let file = file.map_err(io_context(format!("listing {}", path.display())))?;
            if !known.contains(file.file_name().to_string_lossy().as_ref()) {
                std::fs::remove_file(file.path()).map_err(io_context(context(&file.path())))?;
                removed_here += 1;
            }
        }
        if removed_here > 0 {
            fsio::sync_dir(&path).map_err(io_context(format!("syncing {}", path.display())))?;
        }
        if !datasets.contains(&name) {
            std::fs::remove_dir(&path).map_err(io_context(context(&path)))?;
        }
        removed += removed_here;
    }
    if removed > 0 {
        tracing::info!(removed, "removed orphan segment files");
    }
    Ok(removed)
}
