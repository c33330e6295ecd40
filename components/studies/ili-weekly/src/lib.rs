//! Syndromic surveillance: the weekly share of consultations for influenza-like illness
//! (ICD-10 J10, J11), gastroenteritis (A08, A09) and bronchiolitis (J21, counted under 2
//! years only) among consultations with at least one coded (ICD-10) diagnosis, by ISO
//! week, region and age class.
//!
//! Reads `date`, `age_years`, `departement` and `diagnoses` of dataset `consultations`.
//!
//! Parameters, all optional:
//! - `from`, `to` (`YYYY-MM-DD`): only consultations dated in `from..=to`;
//! - `by`: `region,age_class` (default), or `national` for one row per week with
//!   `region` and `age_class` set to `all`.
//!
//! Output: `week`, `region`, `age_class` (dimensions); `coded`, `ili`, `gastro`,
//! `bronchiolitis` (counts); `ili_share`, `gastro_share`, `bronchiolitis_share` (each
//! count over `coded`). A consultation whose age or département is missing is counted
//! under `unknown`.

use std::collections::HashMap;

use carrel_study_sdk::prelude::*;
use carrel_study_sdk::{FxBuildHasher, age_class_index, is_icd10_code, region_index, week_start};

/// The columns read, and the only ones the manifest needs to grant.
pub const COLUMNS: [&str; 4] = ["date", "age_years", "departement", "diagnoses"];

const ILI: &[&str] = &["J10", "J11"];
const GASTRO: &[&str] = &["A08", "A09"];
const BRONCHIOLITIS: &[&str] = &["J21"];

struct IliWeekly;

impl Study for IliWeekly {
    fn run(params: &Params) -> Result<RecordBatch, StudyError> {
        params.expect_only(&["from", "to", "by"])?;
        let by = params.one_of("by", &["region,age_class", "national"], "region,age_class")?;
        let (from, to) = (params.date("from")?, params.date("to")?);
        let batches = open_between("consultations", &COLUMNS, "date", from, to)?;
        let table = count(batches, by == "national")?;
        log::info(format!("{} rows, by {by}", table.num_rows()));
        Ok(table)
    }
}

carrel_study_sdk::export_study!(IliWeekly);

/// Region and age class numbers beyond the real ones (indexes in `REGION_NAMES` and
/// `AGE_CLASSES`): a missing value, or everybody in the national variant.
const UNKNOWN_INDEX: u8 = u8::MAX - 1;
const ALL: u8 = u8::MAX;

/// A cell of the table as numbers, cheap to hash once per row: (the Monday starting
/// the ISO week as a date32, region index, age class index). Labels are made once
/// per cell at the end.
type Cell = (i32, u8, u8);

/// Counts of a cell: coded, ili, gastro, bronchiolitis.
type Counts = [u64; 4];

/// The table over `batches` (of at least [`COLUMNS`]); with `national`, one row per
/// week. Separate from `run` so it can be tested without a host.
pub fn count(
    batches: impl IntoIterator<Item = Result<RecordBatch, StudyError>>,
    national: bool,
) -> Result<RecordBatch, StudyError> {
    let mut cells: HashMap<Cell, Counts, FxBuildHasher> = HashMap::default();
    for batch in batches {
        let batch = batch?;
        let dates = column::<Date32Array>(&batch, "date")?;
        let ages = column::<UInt8Array>(&batch, "age_years")?;
        let departements = column::<StringArray>(&batch, "departement")?;
        let diagnoses = StringLists::new(&batch, "diagnoses")?;

        for row in 0..batch.num_rows() {
            // One pass over the row's codes.
            let (mut coded, mut ili, mut gastro, mut bronchiolitis) = (false, false, false, false);
            for code in diagnoses.row(row) {
                coded |= is_icd10_code(code);
                ili |= has_code_prefix([code], ILI);
                gastro |= has_code_prefix([code], GASTRO);
                bronchiolitis |= has_code_prefix([code], BRONCHIOLITIS);
            }
            // The denominator: consultations with at least one ICD-10 code.
            if !coded {
                continue;
            }
            let age = (!ages.is_null(row)).then(|| age_class_index(ages.value(row)));
            let week = week_start(dates.value(row));
            let cell = if national {
                (week, ALL, ALL)
            } else {
                let region = match departements.is_null(row) {
                    true => None,
                    false => region_index(departements.value(row)),
                };
                let index = |i: Option<usize>| i.map_or(UNKNOWN_INDEX, |i| i as u8);
                (week, index(region), index(age))
            };
            // Bronchiolitis is counted under 2 years only (age class 0).
            let under_two = age == Some(0);
            let counts = cells.entry(cell).or_default();
            counts[0] += 1;
            counts[1] += u64::from(ili);
            counts[2] += u64::from(gastro);
            counts[3] += u64::from(under_two && bronchiolitis);
        }
    }

    // Now only a few thousand cells: turn them into labelled rows.
    let mut table = CountTable::new(
        &["week", "region", "age_class"],
        &["coded", "ili", "gastro", "bronchiolitis"],
    )
    .order("region", &REGION_NAMES)
    .order("age_class", &AGE_CLASSES);
    for ((monday, region, age), counts) in cells {
        let key = [
            iso_week(monday),
            label(region, &REGION_NAMES).to_owned(),
            label(age, &AGE_CLASSES).to_owned(),
        ];
        table.add(&key.each_ref().map(String::as_str), &counts);
    }
    table.into_batch_with_shares(&[
        ("ili_share", "ili", "coded"),
        ("gastro_share", "gastro", "coded"),
        ("bronchiolitis_share", "bronchiolitis", "coded"),
    ])
}

fn label(index: u8, names: &'static [&'static str]) -> &'static str {
    match index {
        ALL => "all",
        UNKNOWN_INDEX => UNKNOWN,
        index => names[usize::from(index)],
    }
}
