//! Write a carrel study in a few dozen lines.
//!
//! A study is a WebAssembly component of the `carrel:eds/study` world: the host runs it
//! once per approved request in a fresh sandbox, where it can open only the dataset
//! columns its manifest grants, and it returns one aggregate table. The host applies
//! disclosure control to that table (small counts suppressed, counts rounded, shares
//! recomputed) before anything leaves the sandbox.
//!
//! With this crate a study is a type implementing [`Study`] and one
//! [`export_study!`] line:
//!
//! 1. read its parameters with [`Params`] (`get`, `required`, `parse`, `date`, …);
//! 2. open the granted columns with [`open`] or [`open_between`], and loop over the
//!    Arrow record batches they yield;
//! 3. count into a [`CountTable`] keyed by dimension values, helped by [`iso_week`] /
//!    [`WeekLabels`], [`age_class`], [`region_of_departement`] and
//!    [`has_code_prefix`];
//! 4. return the table as a batch: [`CountTable::into_batch_with_shares`] marks each
//!    column with the metadata disclosure control reads ([`count_field`],
//!    [`share_field`]; every other column is a dimension).
//!
//! # Example: weekly share of influenza-like illness by age class
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
//! `src/lib.rs`, built with `cargo build --release --target wasm32-wasip2`:
//!
//! ```no_run
//! use carrel_study_sdk::prelude::*;
//!
//! struct IliByAge;
//!
//! impl Study for IliByAge {
//!     fn run(params: &Params) -> Result<RecordBatch, StudyError> {
//!         params.expect_only(&["from", "to"])?;
//!         let mut weeks = WeekLabels::new();
//!         let mut table = CountTable::new(&["week", "age_class"], &["coded", "ili"])
//!             .order("age_class", &AGE_CLASSES);
//!         // Only these columns are read; the manifest must grant them.
//!         let columns = ["date", "age_years", "diagnoses"];
//!         let batches = open_between(
//!             "consultations",
//!             &columns,
//!             "date",
//!             params.date("from")?,
//!             params.date("to")?,
//!         )?;
//!         for batch in batches {
//!             let batch = batch?;
//!             let dates = column::<Date32Array>(&batch, "date")?;
//!             let ages = column::<UInt8Array>(&batch, "age_years")?;
//!             let diagnoses = StringLists::new(&batch, "diagnoses")?;
//!             for row in 0..batch.num_rows() {
//!                 if !has_icd10_code(diagnoses.row(row)) {
//!                     continue;
//!                 }
//!                 let age = match ages.is_null(row) {
//!                     true => UNKNOWN,
//!                     false => age_class(ages.value(row)),
//!                 };
//!                 let ili = has_code_prefix(diagnoses.row(row), &["J10", "J11"]);
//!                 table.add(&[weeks.label(dates.value(row)), age], &[1, u64::from(ili)]);
//!             }
//!         }
//!         log::info(format!("{} cells", table.len()));
//!         table.into_batch_with_shares(&[("ili_share", "ili", "coded")])
//!     }
//! }
//!
//! carrel_study_sdk::export_study!(IliByAge);
//! ```
//!
//! # What is here
//!
//! - [`Study`], [`export_study!`]: the entry point.
//! - [`Params`]: the run's parameters; [`StudyError`]: why a run fails.
//! - [`open`], [`open_between`], [`Batches`]: granted dataset columns as Arrow batches;
//!   [`column`] and [`StringLists`] to read them.
//! - [`log`]: messages in the run record.
//! - [`CountTable`], [`count_field`], [`share_field`], [`total_field`],
//!   [`dimension_field`]: the output table.
//! - [`iso_week`], [`WeekLabels`], [`parse_date`], [`format_date`]: dates (Arrow
//!   `date32` is days since 1970-01-01).
//! - [`age_class`], [`AGE_CLASSES`], [`has_code_prefix`], [`has_icd10_code`],
//!   [`region_of_departement`], [`REGION_NAMES`]: surveillance conventions.
//!
//! Only the modules `host` (and the generated bindings) talk to the host; everything
//! else is plain Rust and unit-tested.

// So the paths in the generated export macro (`carrel_study_sdk::…`) also resolve here.
extern crate self as carrel_study_sdk;

mod calendar;
mod clinical;
mod columns;
mod error;
mod fields;
mod geography;
mod host;
pub mod ipc;
mod params;
mod table;

/// The generated bindings of the `carrel:eds/study` world. Use the functions of this
/// crate instead.
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

pub use arrow_array;
pub use arrow_array::RecordBatch;
pub use arrow_schema;
pub use arrow_schema::{DataType, Field};

pub use calendar::{
    WeekLabels, civil_from_days, days_from_civil, format_date, iso_week, iso_week_number,
    parse_date, week_start, weekday,
};
pub use clinical::{
    AGE_CLASSES, StringLists, UNKNOWN, age_class, age_class_index, has_code_prefix, has_icd10_code,
    is_icd10_code,
};
pub use columns::{column, column_ref};
pub use error::StudyError;
pub use fields::{count_field, dimension_field, share_field, total_field};
pub use geography::{
    REGION_NAMES, region_code_of_departement, region_index, region_of_departement,
};
#[doc(hidden)]
pub use host::__private;
pub use host::{Batches, EARLIEST, LATEST, log, open, open_between};
pub use params::Params;
pub use table::{CountTable, FxBuildHasher, FxHasher};

/// Field metadata keys the host reads (`carrel.kind`, …).
pub mod metadata {
    pub use crate::fields::{DENOMINATOR, KIND, NUMERATOR, TOTAL_OF};
}

/// A study: one run turns parameters into one aggregate table.
pub trait Study {
    /// Runs the study. The returned batch is the whole result, before disclosure
    /// control; its columns are dimensions, counts and shares (see [`CountTable`]).
    fn run(params: &Params) -> Result<RecordBatch, StudyError>;
}

/// Exports a [`Study`] as the component's `run`: `carrel_study_sdk::export_study!(MyStudy);`
/// once, at the top level of the study crate (a `cdylib`).
#[macro_export]
macro_rules! export_study {
    ($study:ty) => {
        const _: () = {
            struct __CarrelStudy;

            impl $crate::__private::Guest for __CarrelStudy {
                fn run(
                    params: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, $crate::bindings::StudyError>
                {
                    $crate::__private::run::<$study>(params)
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
    pub use crate::arrow_array::{
        Array, Date32Array, StringArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
    };
    pub use crate::{
        AGE_CLASSES, Batches, CountTable, DataType, Field, Params, REGION_NAMES, RecordBatch,
        StringLists, Study, StudyError, UNKNOWN, WeekLabels, age_class, column, count_field,
        dimension_field, format_date, has_code_prefix, has_icd10_code, iso_week, log, open,
        open_between, parse_date, region_of_departement, share_field,
    };
}
