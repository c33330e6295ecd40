//! Write a carrel study in a few dozen lines.
//!
//! A study is a WebAssembly component of the `carrel:eds/study` world. It never counts,
//! never reads storage and never names a value that leaves the warehouse: the host hands
//! it the granted columns of one group of rows at a time (one consultation, or all of one
//! patient's), and the study answers which declared measures each row adds to. The host
//! computes every dimension of the output from the rows themselves (week, region, age
//! class, …), counts consultations and distinct patients per cell, bounds what one
//! patient adds, checks that the study is patient-local and applies disclosure control.
//! See `docs/studies.md` for the manifest section and the host's checks.
//!
//! With this crate a study is a type implementing [`Study`] and one [`export_study!`]
//! line:
//!
//! - unit `consultation` (the default): implement [`Study::consultation`], called with
//!   each [`Row`];
//! - unit `patient`: implement [`Study::patient`], called with each [`Patient`], one
//!   patient's rows in date order.
//!
//! Read a row with its typed accessors ([`Row::date`], [`Row::age_years`],
//! [`Row::diagnoses`], [`Row::has_code_prefix`], …; a column the manifest does not grant
//! reads `None`), and say what it adds to with [`Out::add`] (or [`Out::add_labelled`]
//! when the table has a study-chosen dimension), naming measures as the manifest
//! declares them. Declared parameters are in [`Out::params`].
//!
//! # Example: weekly share of influenza-like illness by age class
//!
//! The manifest section (in `spin.toml`) says what the study sees and what the table is:
//!
//! ```toml
//! [component.ili-by-age.tool.carrel.study]
//! # title, purpose, legal_basis, principal_investigator, expires…
//! unit = "consultation"
//! datasets = { consultations = ["diagnoses"] }
//!
//! [component.ili-by-age.tool.carrel.study.table]
//! dimensions = ["week", "age_class"]
//! age_classes = [2, 15, 75]          # <2, 2-14, 15-74, 75+
//! measures = ["coded", "ili"]
//! shares = { ili_share = ["ili", "coded"] }
//! ```
//!
//! `Cargo.toml` of the study:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! carrel-study-sdk = { path = "../../study-sdk" }
//! ```
//!
//! `src/lib.rs`, built with `cargo build --release --target wasm32-wasip2`. The study
//! does not know the week nor the age class of a row: the host puts each contribution in
//! the cell of its row.
//!
//! ```no_run
//! use carrel_study_sdk::prelude::*;
//!
//! struct IliByAge;
//!
//! impl Study for IliByAge {
//!     fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
//!         // The denominator: consultations with at least one ICD-10 code.
//!         if !row.has_icd10_code() {
//!             return Ok(());
//!         }
//!         out.add(row, "coded")?;
//!         if row.has_code_prefix(&["J10", "J11"]) {
//!             out.add(row, "ili")?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! carrel_study_sdk::export_study!(IliByAge);
//!
//! #[cfg(test)]
//! mod tests {
//!     use super::*;
//!     use carrel_study_sdk::testing::{Consultation, Harness};
//!
//!     #[test]
//!     fn influenza_counts_among_coded_consultations() {
//!         let harness = Harness::new(&["coded", "ili"]).granting(&["diagnoses"]);
//!         let flu = Consultation::new().diagnoses(&["J111"]);
//!         assert_eq!(harness.consultation::<IliByAge>(flu).unwrap(), ["coded", "ili"]);
//!     }
//! }
//! ```
//!
//! A study of unit `patient` sees a patient's rows together, in date order; here,
//! consultations followed by another within 7 days (`datasets = { consultations =
//! ["date"] }`, `measures = ["revisited"]`):
//!
//! ```
//! use carrel_study_sdk::prelude::*;
//!
//! struct Revisits;
//!
//! impl Study for Revisits {
//!     fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
//!         let mut rows = rows.rows().peekable();
//!         while let (Some(row), Some(next)) = (rows.next(), rows.peek()) {
//!             if let (Some(day), Some(next_day)) = (row.date(), next.date()) {
//!                 if next_day - day <= 7 {
//!                     out.add(&row, "revisited")?;
//!                 }
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! # Tests
//!
//! Everything but the host calls is plain Rust, so a study's logic is tested natively
//! with [`testing::Harness`], which hands consultations to the study as the host would.
//! The components workspace builds for wasm32-wasip2; name the native target to test:
//!
//! ```sh
//! cd components
//! cargo test -p carrel-study-sdk --target x86_64-unknown-linux-gnu
//! cargo test -p ili-weekly --target x86_64-unknown-linux-gnu
//! ```
//!
//! Natively, [`log`] has no host to write to and panics: keep it out of tested paths.
//!
//! # What is here
//!
//! - [`Study`], [`export_study!`]: the entry point; [`StudyError`]: why a run fails.
//! - [`Patient`], [`Row`], [`Date`]: the rows a study is handed; [`COLUMNS`] a manifest
//!   may grant.
//! - [`Out`]: what the rows add to; [`Spec`], [`Params`]: the approved table and the
//!   run's declared parameters.
//! - [`log`]: messages for the auditors.
//! - [`has_code_prefix`], [`has_icd10_code`], [`is_icd10_code`],
//!   [`region_of_departement`], [`REGION_NAMES`], [`iso_week`], [`parse_date`],
//!   [`format_date`]: surveillance conventions.
//! - [`features`]: feature vectors of rows from the feature strings a manifest declares
//!   for a model (`age_years`, `sex=F`, `diagnoses:J10`, …), for studies that evaluate
//!   or fit one.
//! - [`testing`]: native unit tests of a study.
//!
//! [`Out::batch`], [`Out::add_raw`] and [`Batch`] are escape hatches for tests of the
//! host's own checks; a real study never needs them.

// So the paths in the generated export macro (`carrel_study_sdk::…`) also resolve here.
extern crate self as carrel_study_sdk;

mod batch;
mod calendar;
mod clinical;
mod error;
pub mod features;
mod geography;
mod host;
mod out;
mod params;
mod spec;
mod study;
pub mod testing;

/// The generated bindings of the `carrel:eds/study` world. Use the types of this crate
/// instead.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "carrel:eds/study",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "__export_study_world",
        default_bindings_module: "carrel_study_sdk::bindings",
        runtime_path: "carrel_study_sdk::__wit_bindgen::rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

pub use batch::{Batch, COLUMNS, Patient, Row, Rows};
pub use calendar::{
    Date, civil_from_days, days_from_civil, format_date, iso_week, iso_week_number, parse_date,
    week_start, weekday,
};
pub use clinical::{has_code_prefix, has_icd10_code, is_icd10_code};
pub use error::StudyError;
pub use geography::{
    REGION_NAMES, region_code_of_departement, region_index, region_of_departement,
};
#[doc(hidden)]
pub use host::__private;
pub use host::log;
pub use out::Out;
pub use params::Params;
pub use spec::Spec;
pub use study::Study;

/// Exports a [`Study`] as the component's `start` and `classify`:
/// `carrel_study_sdk::export_study!(MyStudy);` once, at the top level of the study crate
/// (a `cdylib`).
#[macro_export]
macro_rules! export_study {
    ($study:ty) => {
        const _: () = {
            struct __CarrelStudy;

            impl $crate::__private::Guest for __CarrelStudy {
                fn start(
                    table: $crate::bindings::TableSpec,
                ) -> ::std::result::Result<(), $crate::bindings::StudyError> {
                    $crate::__private::start::<$study>(table)
                }

                fn classify(
                    batch: $crate::bindings::Consultations,
                ) -> ::std::result::Result<
                    ::std::vec::Vec<$crate::bindings::Contribution>,
                    $crate::bindings::StudyError,
                > {
                    $crate::__private::classify::<$study>(batch)
                }
            }

            $crate::bindings::__export_study_world!(
                __CarrelStudy with_types_in $crate::bindings
            );
        };
    };
}

/// Everything a study usually needs: `use carrel_study_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Date, Out, Params, Patient, REGION_NAMES, Row, Spec, Study, StudyError, has_code_prefix,
        has_icd10_code, is_icd10_code, iso_week, log, region_of_departement,
    };
}
