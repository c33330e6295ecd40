//! What the host hands a study: the typed, columnar `consultations` record of the study
//! world, built from the Arrow rows the vault decrypted, holding only the columns the
//! study's manifest grants. Text is dictionary-encoded per batch, so a batch costs the
//! guest a handful of allocations rather than one per value.

use super::seeds::GroupSeeds;
use crate::capabilities::study_world::bindings::carrel::eds::study_types::{
    CodeLists, Consultations, Texts,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, UInt8Type};
use arrow_array::{Array, RecordBatch, StringArray};
use rustc_hash::FxHashMap;

/// The key of a missing text value.
pub const MISSING: u32 = u32::MAX;
/// The value of a missing age.
pub const UNKNOWN_AGE: u8 = 255;

/// Builds the record for `batch` (rows already in hand-out order), whose groups start at
/// `groups` (with the end as last entry), handing only the `granted` columns and each
/// group's random seed.
pub fn consultations(
    batch: &RecordBatch,
    groups: Vec<u32>,
    granted: &[String],
    seeds: &GroupSeeds,
) -> Result<Consultations, String> {
    let has = |name: &str| granted.iter().any(|g| g == name);
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| format!("the host read no column `{name}`"))
    };
    let mut out = Consultations {
        seeds: seeds.of_groups(batch, &groups)?,
        groups,
        date: Vec::new(),
        hour: Vec::new(),
        age_years: Vec::new(),
        sex: empty_texts(),
        departement: empty_texts(),
        visit_type: empty_texts(),
        association: empty_texts(),
        outcome: empty_texts(),
        diagnoses: CodeLists {
            values: Vec::new(),
            offsets: Vec::new(),
            keys: Vec::new(),
        },
    };
    if has("date") {
        let dates = column("date")?
            .as_primitive_opt::<Date32Type>()
            .ok_or("`date` is not a date32 column")?;
        out.date = dates.values().to_vec();
    }
    if has("hour") {
        let hours = column("hour")?
            .as_primitive_opt::<UInt8Type>()
            .ok_or("`hour` is not a uint8 column")?;
        out.hour = hours.values().to_vec();
    }
    if has("age_years") {
        let ages = column("age_years")?
            .as_primitive_opt::<UInt8Type>()
            .ok_or("`age_years` is not a uint8 column")?;
        out.age_years = (0..ages.len())
            .map(|i| match ages.is_null(i) {
                true => UNKNOWN_AGE,
                false => ages.value(i),
            })
            .collect();
    }
    for (name, slot) in [
        ("sex", &mut out.sex),
        ("departement", &mut out.departement),
        ("visit_type", &mut out.visit_type),
        ("association", &mut out.association),
        ("outcome", &mut out.outcome),
    ] {
        if has(name) {
            let strings = column(name)?
                .as_string_opt::<i32>()
                .ok_or_else(|| format!("`{name}` is not a utf8 column"))?;
            *slot = texts(strings);
        }
    }
    if has("diagnoses") {
        let lists = column("diagnoses")?
            .as_list_opt::<i32>()
            .ok_or("`diagnoses` is not a list column")?;
        out.diagnoses = code_lists(lists)?;
    }
    Ok(out)
}

fn empty_texts() -> Texts {
    Texts {
        values: Vec::new(),
        keys: Vec::new(),
    }
}

/// Dictionary interning of one batch's strings.
#[derive(Default)]
struct Dictionary<'a> {
    index: FxHashMap<&'a str, u32>,
    values: Vec<String>,
}

impl<'a> Dictionary<'a> {
    fn key(&mut self, value: &'a str) -> u32 {
        *self.index.entry(value).or_insert_with(|| {
            self.values.push(value.to_owned());
            (self.values.len() - 1) as u32
        })
    }
}

fn texts(strings: &StringArray) -> Texts {
    let mut dictionary = Dictionary::default();
    let keys = (0..strings.len())
        .map(|i| match strings.is_null(i) {
            true => MISSING,
            false => dictionary.key(strings.value(i)),
        })
        .collect();
    Texts {
        values: dictionary.values,
        keys,
    }
}

fn code_lists(lists: &arrow_array::ListArray) -> Result<CodeLists, String> {
    let codes = lists
        .values()
        .as_string_opt::<i32>()
        .ok_or("`diagnoses` does not hold utf8 codes")?;
    let mut dictionary = Dictionary::default();
    let offsets = lists.value_offsets();
    let first = offsets[0];
    let mut out_offsets = Vec::with_capacity(lists.len() + 1);
    let mut keys = Vec::with_capacity((offsets[lists.len()] - first) as usize);
    out_offsets.push(0);
    for row in 0..lists.len() {
        if !lists.is_null(row) {
            for code in offsets[row]..offsets[row + 1] {
                let code = code as usize;
                if !codes.is_null(code) {
                    keys.push(dictionary.key(codes.value(code)));
                }
            }
        }
        out_offsets.push(keys.len() as u32);
    }
    Ok(CodeLists {
        values: dictionary.values,
        offsets: out_offsets,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{Date32Array, UInt8Array};
    use std::sync::Arc;

    fn seeds() -> GroupSeeds {
        GroupSeeds::for_tests()
    }

    fn batch() -> RecordBatch {
        let mut diagnoses = ListBuilder::new(StringBuilder::new());
        diagnoses.values().append_value("J11");
        diagnoses.values().append_value("R05");
        diagnoses.append(true);
        diagnoses.append(true);
        diagnoses.values().append_value("J11");
        diagnoses.append(true);
        RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as _,
            ),
            (
                "date",
                Arc::new(Date32Array::from(vec![19000, 19001, 19002])) as _,
            ),
            (
                "age_years",
                Arc::new(UInt8Array::from(vec![Some(1), None, Some(90)])) as _,
            ),
            (
                "departement",
                Arc::new(StringArray::from(vec![Some("35"), None, Some("35")])) as _,
            ),
            ("diagnoses", Arc::new(diagnoses.finish()) as _),
        ])
        .unwrap()
    }

    #[test]
    fn only_granted_columns_are_handed_and_text_is_dictionary_encoded() {
        let granted = [
            "age_years".to_owned(),
            "departement".into(),
            "diagnoses".into(),
        ];
        let out = consultations(&batch(), vec![0, 1, 2, 3], &granted, &seeds()).unwrap();
        assert_eq!(out.seeds.len(), 3, "one seed a group");
        assert!(out.date.is_empty(), "date was not granted");
        assert_eq!(out.age_years, [1, UNKNOWN_AGE, 90]);
        assert_eq!(out.departement.values, ["35"]);
        assert_eq!(out.departement.keys, [0, MISSING, 0]);
        assert_eq!(out.diagnoses.values, ["J11", "R05"]);
        assert_eq!(out.diagnoses.offsets, [0, 2, 2, 3]);
        assert_eq!(out.diagnoses.keys, [0, 1, 0]);
    }

    #[test]
    fn a_sliced_batch_hands_its_own_rows_only() {
        let sliced = batch().slice(1, 2);
        let out = consultations(&sliced, vec![0, 2], &["diagnoses".to_owned()], &seeds()).unwrap();
        assert_eq!(out.diagnoses.offsets, [0, 0, 1]);
        assert_eq!(out.diagnoses.values, ["J11"]);
    }
}
