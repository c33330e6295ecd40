//! A component's `files`: copied into a staging directory that is mounted read-only at `/`,
//! so the guest sees exactly what the manifest lists and nothing beside it.

use crate::error::FileMountError;
use crate::manifest::FileMount;
use std::path::{Component, Path, PathBuf};

/// Copies the files a component declares into `staging` (emptied first).
pub fn stage(
    base: &Path,
    mounts: &[FileMount],
    exclude: &[String],
    staging: &Path,
) -> Result<(), FileMountError> {
    if staging.exists() {
        std::fs::remove_dir_all(staging).map_err(|source| FileMountError::Clear {
            path: staging.to_owned(),
            source,
        })?;
    }
    std::fs::create_dir_all(staging)?;
    let excluded: Vec<glob::Pattern> = exclude
        .iter()
        .map(|p| {
            glob::Pattern::new(p).map_err(|source| FileMountError::ExcludePattern {
                pattern: p.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    let is_excluded = |rel: &Path| excluded.iter().any(|p| p.matches_path(rel));
    for mount in mounts {
        match mount {
            FileMount::Pattern(pattern) => {
                check_relative(pattern)?;
                let full = base.join(pattern);
                let matches = glob::glob(&full.to_string_lossy()).map_err(|source| {
                    FileMountError::Pattern {
                        pattern: pattern.clone(),
                        source,
                    }
                })?;
                for entry in matches {
                    let path = entry?;
                    if path.is_file() {
                        let rel = path.strip_prefix(base).expect("glob result under base");
                        if !is_excluded(rel) {
                            copy_file(&path, &staging.join(rel))?;
                        }
                    }
                }
            }
            FileMount::Placement(p) => {
                check_relative(&p.source)?;
                let destination = p.destination.trim_start_matches('/');
                check_relative(destination)?;
                let source = base.join(&p.source);
                let target = staging.join(destination);
                if source.is_dir() {
                    copy_dir(&source, &target, &|rel| {
                        is_excluded(&Path::new(&p.source).join(rel))
                    })?;
                } else if source.is_file() {
                    copy_file(&source, &target)?;
                } else {
                    return Err(FileMountError::MissingSource(p.source.clone()));
                }
            }
        }
    }
    Ok(())
}

/// Refuses absolute paths and `..`, which would reach outside the application directory.
fn check_relative(path: &str) -> Result<(), FileMountError> {
    if Path::new(path).components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(FileMountError::NotRelative(path.to_owned()));
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), FileMountError> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to).map_err(|source| FileMountError::Copy {
        from: from.to_owned(),
        to: to.to_owned(),
        source,
    })?;
    Ok(())
}

fn copy_dir(
    from: &Path,
    to: &Path,
    excluded: &dyn Fn(&Path) -> bool,
) -> Result<(), FileMountError> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(from.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            if excluded(&child) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(child);
            } else if entry.file_type()?.is_file() {
                copy_file(&entry.path(), &to.join(&child))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FilePlacement;

    #[test]
    fn patterns_and_placements_are_staged_and_exclusions_left_out() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(base.path().join("static/css")).unwrap();
        std::fs::write(base.path().join("static/index.html"), "hi").unwrap();
        std::fs::write(base.path().join("static/css/site.css"), "c").unwrap();
        std::fs::write(base.path().join("static/secret.key"), "k").unwrap();
        std::fs::write(base.path().join("notes.txt"), "n").unwrap();
        let staging = base.path().join("stage");
        stage(
            base.path(),
            &[
                FileMount::Pattern("notes.txt".into()),
                FileMount::Placement(FilePlacement {
                    source: "static".into(),
                    destination: "/www".into(),
                }),
            ],
            &["static/*.key".into()],
            &staging,
        )
        .unwrap();
        assert!(staging.join("notes.txt").is_file());
        assert!(staging.join("www/index.html").is_file());
        assert!(staging.join("www/css/site.css").is_file());
        assert!(!staging.join("www/secret.key").exists());
    }

    #[test]
    fn paths_leaving_the_application_directory_are_refused() {
        let base = tempfile::tempdir().unwrap();
        let err = stage(
            base.path(),
            &[FileMount::Pattern("../etc/passwd".into())],
            &[],
            &base.path().join("s"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("relative path"), "{err}");
    }
}
