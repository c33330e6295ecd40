//! The bodies of carrel's fuzz targets, one function per target of `fuzz/`. Each takes
//! the fuzzer's bytes and panics only when the code under test broke one of its own
//! promises: a panic inside it, a refusal without a reason, a reason that echoes a
//! whole hostile value back, or an accepted payload that the next stage cannot take.
//!
//! They are plain functions so that `cargo test` on stable replays every file of
//! `fuzz/corpus/<target>/` through them (tests/corpus.rs), while `cargo fuzz` on nightly
//! explores new inputs with the same checks.

mod fhir;
mod manifest;
mod nir;

pub use fhir::{fhir_bundle, fhir_consent, fhir_date, fhir_ndjson, ndjson_lines};
pub use manifest::manifest;
pub use nir::nir;

/// The body of one fuzz target.
pub type Target = fn(&[u8]);

/// Every target by the name of its folder in `fuzz/corpus/` and of its binary in
/// `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("fhir_bundle", fhir_bundle),
    ("fhir_ndjson", fhir_ndjson),
    ("fhir_consent", fhir_consent),
    ("ndjson_lines", ndjson_lines),
    ("fhir_date", fhir_date),
    ("manifest", manifest),
    ("nir", nir),
];
