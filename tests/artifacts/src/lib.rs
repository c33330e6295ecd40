//! Paths of the guest test programs in `tests/programs`, built for wasm32-wasip2 by
//! this crate's build script (see `build.rs`). Each constant is the absolute path of
//! a release component, e.g. [`SPIN7_PROBE`]; [`ALL`] lists them by crate name.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
