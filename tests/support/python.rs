//! Python studies for the tests: the projects of `tests/python`, built by componentize-py
//! over the SDK (`sdk/python`) and the WIT, as `carrel build` builds a researcher's. Each
//! is built once per content (the study, the SDK, the WIT and componentize-py's version),
//! under the target's temporary directory; a 19 MB interpreter takes seconds to build and
//! to compile, so the compiled code is shared between the tests' state directories too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The componentize-py release `.ci/run` installs and `carrel study new --lang python`
/// writes into a study's build command.
pub use carrel_warehouse::study::scaffold_python::COMPONENTIZE_PY_VERSION;

/// The repository's root.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the repository")
        .to_owned()
}

/// componentize-py's version line, when it is installed.
fn componentize_py_version() -> Option<String> {
    let out = Command::new("componentize-py")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether componentize-py is installed (in CI, a missing one fails the test instead:
/// [`super::skipped_without`]).
pub fn available() -> bool {
    !super::skipped_without(
        componentize_py_version().is_some(),
        "componentize-py",
        &format!("pip install componentize-py=={COMPONENTIZE_PY_VERSION}"),
    )
}

/// The files a study's component is built from: its own `.py` files, the SDK's and the
/// WIT, sorted.
fn inputs(project: &Path) -> Vec<PathBuf> {
    let repo = repository();
    let mut files = Vec::new();
    for (dir, ext) in [
        (project.to_owned(), "py"),
        (repo.join("sdk/python/carrel_study"), "py"),
        (repo.join("wit"), "wit"),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == ext) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The component of `tests/python/<name>`, built by componentize-py unless a build of the
/// same content exists.
pub fn study(name: &str) -> PathBuf {
    use sha2::Digest;
    // One build at a time: the tests of a binary run in parallel.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let repo = repository();
    let project = repo.join("tests/python").join(name);
    let version = componentize_py_version().expect("componentize-py is installed");
    let mut hash = sha2::Sha256::new();
    hash.update(version.as_bytes());
    for file in inputs(&project) {
        hash.update(
            file.strip_prefix(&repo)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update(std::fs::read(&file).unwrap());
    }
    let key = hex::encode(&hash.finalize()[..8]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-studies");
    let wasm = dir.join(format!("{}-{key}.wasm", name.replace('-', "_")));
    if wasm.is_file() {
        return wasm;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let building = dir.join(format!(".{name}-{}.wasm", std::process::id()));
    let out = Command::new("componentize-py")
        .arg("-d")
        .arg(repo.join("wit"))
        .args([
            "-w",
            "carrel:eds/study",
            "componentize",
            "carrel_study.component",
        ])
        .arg("-p")
        .arg(&project)
        .arg("-p")
        .arg(repo.join("sdk/python"))
        .arg("-o")
        .arg(&building)
        .output()
        .expect("run componentize-py");
    assert!(
        out.status.success(),
        "componentize-py failed on tests/python/{name}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&building, &wasm).unwrap();
    wasm
}

/// Points the compiled-component cache of `state` at one shared by every test of the
/// target: what is cached there is keyed by the engine and the component's sha256, and
/// written atomically, so the tests compile a Python study once instead of once each.
/// What `state` had compiled (its ingestion components, for the import) is dropped.
pub fn share_compiled_components(state: &Path) {
    let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-components");
    std::fs::create_dir_all(&shared).unwrap();
    let own = state.join("cache");
    if own.is_dir() {
        std::fs::remove_dir_all(&own).unwrap();
    }
    std::os::unix::fs::symlink(&shared, &own).unwrap();
}
