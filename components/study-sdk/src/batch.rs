//! Typed views over the columnar `consultations` record the host hands a study: a
//! [`Batch`] of groups, each group a [`Patient`] of [`Row`]s. The views borrow the record
//! and allocate nothing: a row is a batch and an index.

use std::iter::FusedIterator;
use std::ops::Range;

use crate::bindings::carrel::eds::study_types::{CodeLists, Consultations, Texts};
use crate::calendar::Date;
use crate::clinical::{has_code_prefix, has_icd10_code};
use crate::error::StudyError;
use crate::geography::region_of_departement;

/// The columns a manifest may grant a study (`datasets = { consultations = [...] }`).
/// The host hands the study only those; a column it does not grant arrives empty, and
/// its accessor on [`Row`] answers `None` (or no codes) for every row.
pub const COLUMNS: [&str; 9] = [
    "date",
    "hour",
    "age_years",
    "sex",
    "departement",
    "visit_type",
    "association",
    "outcome",
    "diagnoses",
];

/// The key of a missing text value.
pub(crate) const MISSING: u32 = u32::MAX;
/// The age of a patient whose age is unknown.
pub(crate) const UNKNOWN_AGE: u8 = 255;

/// One batch as the host handed it: independent groups of rows.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    columns: &'a Consultations,
    rows: u32,
}

impl<'a> Batch<'a> {
    /// Checks the record's shape once, so every accessor after this can trust it: the
    /// groups cover the rows in order, and each column is empty (not granted) or holds
    /// one entry per row.
    pub(crate) fn new(columns: &'a Consultations) -> Result<Batch<'a>, StudyError> {
        let malformed = |what: String| StudyError::failed(format!("malformed batch: {what}"));
        let groups = &columns.groups;
        if groups.first().is_some_and(|first| *first != 0) {
            return Err(malformed("the first group does not start at row 0".into()));
        }
        if groups.windows(2).any(|pair| pair[0] > pair[1]) {
            return Err(malformed("the groups are not in row order".into()));
        }
        let rows = groups.last().copied().unwrap_or(0);
        let n = rows as usize;
        if columns.seeds.len() != groups.len().saturating_sub(1) {
            return Err(malformed(format!(
                "{} seeds for {} groups",
                columns.seeds.len(),
                groups.len().saturating_sub(1)
            )));
        }
        let fits = |name: &str, len: usize| match len == 0 || len == n {
            true => Ok(()),
            false => Err(malformed(format!("`{name}` has {len} values for {n} rows"))),
        };
        fits("date", columns.date.len())?;
        fits("hour", columns.hour.len())?;
        fits("age_years", columns.age_years.len())?;
        for (name, texts) in [
            ("sex", &columns.sex),
            ("departement", &columns.departement),
            ("visit_type", &columns.visit_type),
            ("association", &columns.association),
            ("outcome", &columns.outcome),
        ] {
            fits(name, texts.keys.len())?;
        }
        let offsets = &columns.diagnoses.offsets;
        let granted = offsets.len() == n + 1;
        if !(offsets.is_empty() || granted)
            || offsets.windows(2).any(|pair| pair[0] > pair[1])
            || offsets
                .last()
                .is_some_and(|end| *end as usize > columns.diagnoses.keys.len())
        {
            return Err(malformed(format!(
                "`diagnoses` has {} offsets for {n} rows",
                offsets.len()
            )));
        }
        Ok(Batch { columns, rows })
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows as usize
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The number of groups (patients, or consultations for unit `consultation`).
    pub fn groups(&self) -> usize {
        self.columns.groups.len().saturating_sub(1)
    }

    /// Group `index`, in the host's order.
    pub fn group(&self, index: usize) -> Option<Patient<'a>> {
        let start = *self.columns.groups.get(index)?;
        let end = *self.columns.groups.get(index + 1)?;
        Some(Patient {
            batch: *self,
            rows: start..end,
            seed: self.columns.seeds[index],
        })
    }

    /// Row `index` of the batch.
    pub fn row(&self, index: usize) -> Option<Row<'a>> {
        (index < self.len()).then_some(Row {
            batch: *self,
            index: index as u32,
        })
    }

    /// Every row of the batch, across groups.
    pub fn rows(&self) -> Rows<'a> {
        Rows {
            batch: *self,
            rows: 0..self.rows,
        }
    }
}

/// The rows of one group, in date order: one patient's consultations of the period (a
/// study of unit `patient`), or a single consultation (unit `consultation`).
#[derive(Debug, Clone)]
pub struct Patient<'a> {
    batch: Batch<'a>,
    rows: Range<u32>,
    seed: u64,
}

impl<'a> Patient<'a> {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows, in date order.
    pub fn rows(&self) -> Rows<'a> {
        Rows {
            batch: self.batch,
            rows: self.rows.clone(),
        }
    }

    /// The `index`-th row of the group (0 is the first).
    pub fn row(&self, index: usize) -> Option<Row<'a>> {
        self.rows().nth(index)
    }

    pub fn first(&self) -> Option<Row<'a>> {
        self.rows().next()
    }

    pub fn last(&self) -> Option<Row<'a>> {
        self.rows().next_back()
    }

    /// The seed the host hands for this group: a study that draws random numbers seeds
    /// its generator with it, so that the group draws the same numbers whenever it is
    /// handed (see `seeds` in the `study` world).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The batch rows of the group.
    pub(crate) fn batch_rows(&self) -> Range<u32> {
        self.rows.clone()
    }
}

impl<'a> IntoIterator for &Patient<'a> {
    type Item = Row<'a>;
    type IntoIter = Rows<'a>;

    fn into_iter(self) -> Rows<'a> {
        self.rows()
    }
}

/// An iterator over rows, from [`Patient::rows`] or [`Batch::rows`].
#[derive(Debug, Clone)]
pub struct Rows<'a> {
    batch: Batch<'a>,
    rows: Range<u32>,
}

impl<'a> Iterator for Rows<'a> {
    type Item = Row<'a>;

    fn next(&mut self) -> Option<Row<'a>> {
        let index = self.rows.next()?;
        Some(Row {
            batch: self.batch,
            index,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<Row<'a>> {
        let index = self.rows.nth(n)?;
        Some(Row {
            batch: self.batch,
            index,
        })
    }
}

impl DoubleEndedIterator for Rows<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let index = self.rows.next_back()?;
        Some(Row {
            batch: self.batch,
            index,
        })
    }
}

impl ExactSizeIterator for Rows<'_> {}

impl FusedIterator for Rows<'_> {}

/// One consultation. Each accessor reads one column; a column the manifest does not
/// grant answers `None` (no codes for [`Row::diagnoses`]) for every row, as does a value
/// the source did not send.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    batch: Batch<'a>,
    index: u32,
}

impl<'a> Row<'a> {
    fn columns(&self) -> &'a Consultations {
        self.batch.columns
    }

    fn at(&self) -> usize {
        self.index as usize
    }

    /// Consultation start date (`date`).
    pub fn date(&self) -> Option<Date> {
        self.columns()
            .date
            .get(self.at())
            .copied()
            .map(Date::from_days)
    }

    /// Consultation start hour, 0-23 (`hour`).
    pub fn hour(&self) -> Option<u8> {
        self.columns().hour.get(self.at()).copied()
    }

    /// Age at consultation in whole years, top-coded at 90 (`age_years`); `None` when
    /// unknown.
    pub fn age_years(&self) -> Option<u8> {
        let age = *self.columns().age_years.get(self.at())?;
        (age != UNKNOWN_AGE).then_some(age)
    }

    /// `F`, `M` or `U` (`sex`).
    pub fn sex(&self) -> Option<&'a str> {
        text(&self.columns().sex, self.at())
    }

    /// INSEE département code, such as `35` or `2A` (`departement`).
    pub fn departement(&self) -> Option<&'a str> {
        text(&self.columns().departement, self.at())
    }

    /// The region of [`Row::departement`], as [`region_of_departement`] names it.
    pub fn region(&self) -> Option<&'static str> {
        self.departement().and_then(region_of_departement)
    }

    /// `home`, `centre`, `tele` or `other` (`visit_type`).
    pub fn visit_type(&self) -> Option<&'a str> {
        text(&self.columns().visit_type, self.at())
    }

    /// The association that sent the consultation (`association`).
    pub fn association(&self) -> Option<&'a str> {
        text(&self.columns().association, self.at())
    }

    /// `home`, `hospital`, `deceased` or `unknown` (`outcome`).
    pub fn outcome(&self) -> Option<&'a str> {
        text(&self.columns().outcome, self.at())
    }

    /// The consultation's codes (`diagnoses`): ICD-10 upper-case without dot (`J111`),
    /// other systems as `system|code`. None when not granted.
    pub fn diagnoses(&self) -> impl Iterator<Item = &'a str> + Clone + 'a {
        let lists: &'a CodeLists = &self.columns().diagnoses;
        let start = lists.offsets.get(self.at()).copied().unwrap_or(0) as usize;
        let end = lists.offsets.get(self.at() + 1).copied().unwrap_or(0) as usize;
        let keys = lists.keys.get(start..end).unwrap_or(&[]);
        keys.iter()
            .filter_map(|key| lists.values.get(*key as usize).map(String::as_str))
    }

    /// Whether one of the codes is an ICD-10 code (see [`crate::has_icd10_code`]).
    pub fn has_icd10_code(&self) -> bool {
        has_icd10_code(self.diagnoses())
    }

    /// Whether one of the codes starts with one of `prefixes` (see
    /// [`crate::has_code_prefix`]): `row.has_code_prefix(&["J10", "J11"])`.
    pub fn has_code_prefix(&self, prefixes: &[&str]) -> bool {
        has_code_prefix(self.diagnoses(), prefixes)
    }

    /// The row's index in the whole batch: what [`crate::Out::add_raw`] takes. A study
    /// never needs it otherwise.
    pub fn batch_index(&self) -> u32 {
        self.index
    }
}

fn text(texts: &Texts, row: usize) -> Option<&str> {
    match *texts.keys.get(row)? {
        MISSING => None,
        key => texts.values.get(key as usize).map(String::as_str),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Consultation, Harness};

    fn record(harness: &Harness) -> Consultations {
        harness.consultations(&[
            &[
                Consultation::new()
                    .date("2024-01-15")
                    .age(1)
                    .departement("35")
                    .diagnoses(&["J111", "x|R05"]),
                Consultation::new().date("2024-01-20").hour(22),
            ],
            &[Consultation::new().age(90).sex("F").visit_type("home")],
        ])
    }

    #[test]
    fn rows_read_the_granted_columns_and_none_for_the_others() {
        let harness = Harness::new(&["n"]).granting(&["age_years", "departement", "diagnoses"]);
        let columns = record(&harness);
        let batch = Batch::new(&columns).unwrap();
        assert_eq!((batch.len(), batch.groups()), (3, 2));
        let first = batch.group(0).unwrap().first().unwrap();
        assert_eq!(first.age_years(), Some(1));
        assert_eq!(first.departement(), Some("35"));
        assert_eq!(first.region(), Some("Bretagne"));
        assert_eq!(first.diagnoses().collect::<Vec<_>>(), ["J111", "x|R05"]);
        assert!(first.has_icd10_code() && first.has_code_prefix(&["J11"]));
        // Not granted.
        assert_eq!(first.date(), None);
        assert_eq!(first.sex(), None);
        let second = batch.group(0).unwrap().last().unwrap();
        assert_eq!(second.age_years(), None, "unknown age");
        assert_eq!(second.departement(), None, "not sent");
        assert_eq!(second.diagnoses().count(), 0);
        assert_eq!(second.hour(), None);
    }

    #[test]
    fn groups_hold_their_own_rows_in_order() {
        let columns = record(&Harness::new(&["n"]));
        let batch = Batch::new(&columns).unwrap();
        let patient = batch.group(0).unwrap();
        let dates: Vec<String> = patient
            .rows()
            .map(|row| row.date().unwrap().to_string())
            .collect();
        assert_eq!(dates, ["2024-01-15", "2024-01-20"]);
        assert_eq!(patient.row(1).unwrap().hour(), Some(22));
        assert!(patient.row(2).is_none());
        let other = batch.group(1).unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(
            (patient.seed(), other.seed()),
            (0, 1),
            "the harness's seeds"
        );
        let row = other.first().unwrap();
        assert_eq!(row.batch_index(), 2);
        assert_eq!((row.sex(), row.visit_type()), (Some("F"), Some("home")));
        assert_eq!(row.age_years(), Some(90));
        assert!(batch.group(2).is_none());
        assert_eq!(batch.rows().len(), 3);
    }

    #[test]
    fn an_empty_batch_has_no_groups() {
        let columns = Harness::new(&["n"]).consultations(&[]);
        let batch = Batch::new(&columns).unwrap();
        assert!(batch.is_empty());
        assert_eq!(batch.groups(), 0);
    }

    #[test]
    fn a_malformed_record_is_refused_before_any_row_is_read() {
        let good = record(&Harness::new(&["n"]));
        let mut short = good.clone();
        short.age_years.pop();
        let mut unordered = good.clone();
        unordered.groups = vec![0, 3, 2];
        let mut offsets = good.clone();
        offsets.diagnoses.offsets.pop();
        for (bad, why) in [
            (short, "`age_years` has 2 values for 3 rows"),
            (unordered, "not in row order"),
            (offsets, "`diagnoses` has 3 offsets"),
        ] {
            let error = Batch::new(&bad).unwrap_err();
            assert!(error.message().contains(why), "{error}");
        }
    }
}
