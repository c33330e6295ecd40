//! The warehouse's host capabilities, one module each, in the shape of the runtime's
//! (`carrel_runtime::capabilities`): the WIT, a host struct implementing the generated
//! traits, `add_to_linker`, and the permission set computed once per app from the manifest.

pub mod ingest;
pub mod keyed_hash;
pub mod study_log;
pub mod study_world;
