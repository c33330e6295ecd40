//! Replays the regression corpus of every fuzz target (`fuzz/corpus/<target>/`: seeds,
//! minimised inputs and the reproducers of fixed crashes) on stable, in `cargo test`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../fuzz/corpus")
        .join(target)
}

/// Each input must be handled well within this; the fuzzers run with a 10 s limit, but
/// the corpus is small and a slow one here means quadratic work came back.
const PER_INPUT: Duration = Duration::from_secs(5);

fn replay(target: &str) {
    let (_, body) = carrel_fuzz_targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target {target}"));
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "{target} panics on {}", file.display());
        let took = started.elapsed();
        assert!(
            took < PER_INPUT,
            "{target} took {took:?} on {}",
            file.display()
        );
    }
}

#[test]
fn every_target_has_a_corpus_and_every_corpus_a_target() {
    let root = corpus_dir("");
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    let mut targets: Vec<String> = carrel_fuzz_targets::TARGETS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .collect();
    targets.sort();
    assert_eq!(folders, targets);
}

#[test]
fn the_fhir_bundle_corpus_replays_without_a_failure() {
    replay("fhir_bundle");
}

#[test]
fn the_fhir_ndjson_corpus_replays_without_a_failure() {
    replay("fhir_ndjson");
}

#[test]
fn the_ndjson_lines_corpus_replays_without_a_failure() {
    replay("ndjson_lines");
}

#[test]
fn the_fhir_date_corpus_replays_without_a_failure() {
    replay("fhir_date");
}

#[test]
fn the_manifest_corpus_replays_without_a_failure() {
    replay("manifest");
}

#[test]
fn the_nir_corpus_replays_without_a_failure() {
    replay("nir");
}

#[test]
fn the_fhir_consent_corpus_replays_without_a_failure() {
    replay("fhir_consent");
}
