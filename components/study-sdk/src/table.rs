//! [`CountTable`]: counts accumulated by a key of dimension values, turned into the
//! output batch at the end, so a study never builds Arrow arrays by hand.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};

use crate::error::StudyError;
use crate::fields::{count_field, dimension_field, share_field, total_field};

/// Counts by a key of dimension values (strings), such as `(week, region, age class)`.
///
/// ```
/// use carrel_study_sdk::CountTable;
///
/// let mut table = CountTable::new(&["week", "age_class"], &["coded", "ili"]);
/// table.add(&["2024-W03", "<2"], &[1, 0]);
/// table.add(&["2024-W03", "<2"], &[1, 1]);
/// table.add(&["2024-W02", "75+"], &[1, 1]);
/// assert_eq!(table.get(&["2024-W03", "<2"]), Some(&[2, 1][..]));
/// let batch = table.into_batch_with_shares(&[("ili_share", "ili", "coded")]).unwrap();
/// assert_eq!(batch.num_rows(), 2); // sorted: 2024-W02 first
/// assert_eq!(batch.num_columns(), 5);
/// ```
///
/// Adding to a key seen before allocates nothing: each dimension's values are interned
/// once, so `add` can run once per row over millions of rows.
#[derive(Debug, Clone)]
pub struct CountTable {
    dimensions: Vec<Dimension>,
    counts: Vec<String>,
    /// `(count, parts)` declared with [`CountTable::total`].
    totals: Vec<(String, Vec<String>)>,
    /// Cell of each key (one value id per dimension).
    cells: HashMap<Box<[u32]>, u32, FxBuildHasher>,
    /// The key of cell `i` at `keys[i * dimensions ..]`.
    keys: Vec<u32>,
    /// The counts of cell `i` at `values[i * counts ..]`.
    values: Vec<u64>,
    /// The key being looked up, reused from row to row.
    scratch: Vec<u32>,
}

#[derive(Debug, Clone)]
struct Dimension {
    name: String,
    ids: HashMap<Box<str>, u32, FxBuildHasher>,
    labels: Vec<Box<str>>,
    /// Values to put first, in this order (see [`CountTable::order`]).
    order: Vec<String>,
}

impl Dimension {
    fn id(&mut self, value: &str) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = u32::try_from(self.labels.len()).expect("fewer than 2^32 values");
        self.labels.push(value.into());
        self.ids.insert(value.into(), id);
        id
    }

    /// Rank of each value id in the output order.
    fn ranks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.labels.len() as u32).collect();
        let first = |id: &u32| {
            let label = &*self.labels[*id as usize];
            let position = self.order.iter().position(|value| value == label);
            (position.unwrap_or(usize::MAX), label)
        };
        ids.sort_by(|a, b| first(a).cmp(&first(b)));
        let mut ranks = vec![0; ids.len()];
        for (rank, id) in ids.into_iter().enumerate() {
            ranks[id as usize] = rank as u32;
        }
        ranks
    }
}

impl CountTable {
    /// A table keyed by `dimensions` (output columns of type utf8, in this order)
    /// counting `counts` (output columns of type uint64, after the dimensions).
    ///
    /// Panics if a name is given twice.
    pub fn new(dimensions: &[&str], counts: &[&str]) -> CountTable {
        let mut names: Vec<&str> = dimensions.iter().chain(counts).copied().collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            panic!("CountTable: column `{}` is named twice", pair[0]);
        }
        CountTable {
            dimensions: dimensions
                .iter()
                .map(|name| Dimension {
                    name: (*name).to_owned(),
                    ids: HashMap::default(),
                    labels: Vec::new(),
                    order: Vec::new(),
                })
                .collect(),
            counts: counts.iter().map(|name| (*name).to_owned()).collect(),
            totals: Vec::new(),
            cells: HashMap::default(),
            keys: Vec::new(),
            values: Vec::new(),
            scratch: Vec::with_capacity(dimensions.len()),
        }
    }

    /// Sorts rows with these values of `dimension` first, in this order (other values
    /// follow, sorted): `.order("age_class", &AGE_CLASSES)` puts `<2` before `15-74`.
    /// Without it, values sort as strings.
    ///
    /// Panics if `dimension` is not one of the table's.
    pub fn order(mut self, dimension: &str, values: &[&str]) -> CountTable {
        let index = self.dimension_index(dimension);
        self.dimensions[index].order = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    /// Declares `count` the row total of the counts `parts` (field metadata
    /// `carrel.total_of`), so disclosure control can keep them consistent. The table
    /// does not compute it: add it like any count.
    ///
    /// Panics if one of the names is not a count of the table.
    pub fn total(mut self, count: &str, parts: &[&str]) -> CountTable {
        for name in std::iter::once(&count).chain(parts) {
            self.count_index(name);
        }
        self.totals.push((
            count.to_owned(),
            parts.iter().map(|p| (*p).to_owned()).collect(),
        ));
        self
    }

    fn dimension_index(&self, name: &str) -> usize {
        self.dimensions
            .iter()
            .position(|d| d.name == name)
            .unwrap_or_else(|| panic!("CountTable: `{name}` is not a dimension"))
    }

    fn count_index(&self, name: &str) -> usize {
        self.counts
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("CountTable: `{name}` is not a count"))
    }

    /// Adds `counts` (one per count column, in order) to the cell of `key` (one value
    /// per dimension, in order), creating the cell at zero if it is new.
    ///
    /// Panics if `key` or `counts` has the wrong length.
    pub fn add(&mut self, key: &[&str], counts: &[u64]) {
        assert_eq!(
            key.len(),
            self.dimensions.len(),
            "CountTable::add: {} key values for {} dimensions",
            key.len(),
            self.dimensions.len()
        );
        assert_eq!(
            counts.len(),
            self.counts.len(),
            "CountTable::add: {} counts for {} count columns",
            counts.len(),
            self.counts.len()
        );
        self.scratch.clear();
        for (dimension, value) in self.dimensions.iter_mut().zip(key) {
            self.scratch.push(dimension.id(value));
        }
        let cell = match self.cells.get(self.scratch.as_slice()) {
            Some(cell) => *cell as usize,
            None => {
                let cell = self.cells.len();
                self.cells.insert(
                    self.scratch.as_slice().into(),
                    u32::try_from(cell).expect("fewer than 2^32 cells"),
                );
                self.keys.extend_from_slice(&self.scratch);
                self.values
                    .extend(std::iter::repeat_n(0, self.counts.len()));
                cell
            }
        };
        let width = self.counts.len();
        for (total, count) in self.values[cell * width..(cell + 1) * width]
            .iter_mut()
            .zip(counts)
        {
            *total += count;
        }
    }

    /// The counts of `key`, `None` if nothing was added to it.
    pub fn get(&self, key: &[&str]) -> Option<&[u64]> {
        if key.len() != self.dimensions.len() {
            return None;
        }
        let ids: Vec<u32> = self
            .dimensions
            .iter()
            .zip(key)
            .map(|(dimension, value)| dimension.ids.get(*value).copied())
            .collect::<Option<_>>()?;
        let cell = *self.cells.get(ids.as_slice())? as usize;
        let width = self.counts.len();
        Some(&self.values[cell * width..(cell + 1) * width])
    }

    /// Number of cells (output rows).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The output: dimensions then counts, one row per cell, sorted by dimensions.
    pub fn into_batch(self) -> Result<RecordBatch, StudyError> {
        self.into_batch_with_shares(&[])
    }

    /// [`CountTable::into_batch`] followed by share columns `(name, numerator,
    /// denominator)` naming two of the counts; a share is null where its denominator
    /// is 0.
    pub fn into_batch_with_shares(
        self,
        shares: &[(&str, &str, &str)],
    ) -> Result<RecordBatch, StudyError> {
        let position = |name: &str| {
            self.counts.iter().position(|c| c == name).ok_or_else(|| {
                StudyError::failed(format!("share over `{name}`, which is not a count"))
            })
        };
        let shares = shares
            .iter()
            .map(|(name, numerator, denominator)| {
                Ok((*name, position(numerator)?, position(denominator)?))
            })
            .collect::<Result<Vec<_>, StudyError>>()?;

        let dims = self.dimensions.len();
        let width = self.counts.len();
        let ranks: Vec<Vec<u32>> = self.dimensions.iter().map(Dimension::ranks).collect();
        let key = |cell: usize| &self.keys[cell * dims..(cell + 1) * dims];
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by(|a, b| {
            let (a, b) = (key(*a), key(*b));
            (0..dims)
                .map(|d| ranks[d][a[d] as usize].cmp(&ranks[d][b[d] as usize]))
                .find(|ordering| ordering.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });

        let mut fields: Vec<Field> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (d, dimension) in self.dimensions.iter().enumerate() {
            fields.push(dimension_field(&dimension.name, DataType::Utf8));
            let values: StringArray = order
                .iter()
                .map(|cell| Some(&*dimension.labels[key(*cell)[d] as usize]))
                .collect();
            columns.push(Arc::new(values));
        }
        let count = |cell: usize, c: usize| self.values[cell * width + c];
        for (c, name) in self.counts.iter().enumerate() {
            fields.push(match self.totals.iter().find(|(total, _)| total == name) {
                Some((_, parts)) => {
                    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                    total_field(name, &parts)
                }
                None => count_field(name),
            });
            let values: UInt64Array = order.iter().map(|cell| count(*cell, c)).collect();
            columns.push(Arc::new(values));
        }
        for (name, numerator, denominator) in shares {
            fields.push(share_field(
                name,
                &self.counts[numerator],
                &self.counts[denominator],
            ));
            let values: Float64Array = order
                .iter()
                .map(|cell| match count(*cell, denominator) {
                    0 => None,
                    whole => Some(count(*cell, numerator) as f64 / whole as f64),
                })
                .collect();
            columns.push(Arc::new(values));
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }
}

/// The Firefox/rustc hash: much faster than SipHash on short keys, and hash flooding is
/// no concern inside a study's sandbox.
#[derive(Debug, Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().unwrap()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(i as u32 as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// [`FxHasher`] for `HashMap`s: `HashMap<K, V, FxBuildHasher>`.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, UInt64Type};

    use super::*;
    use crate::clinical::AGE_CLASSES;
    use crate::fields::{DENOMINATOR, KIND, NUMERATOR, TOTAL_OF};

    fn strings(batch: &RecordBatch, name: &str) -> Vec<String> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_string::<i32>()
            .iter()
            .map(|v| v.unwrap().to_owned())
            .collect()
    }

    fn counts(batch: &RecordBatch, name: &str) -> Vec<u64> {
        batch
            .column_by_name(name)
            .unwrap()
            .as_primitive::<UInt64Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn counts_add_up_by_key_and_rows_are_sorted() {
        let mut table = CountTable::new(&["week", "region"], &["coded", "ili"]);
        table.add(&["2024-W03", "Bretagne"], &[1, 1]);
        table.add(&["2024-W02", "Corse"], &[1, 0]);
        table.add(&["2024-W03", "Bretagne"], &[1, 0]);
        table.add(&["2024-W02", "Bretagne"], &[2, 2]);
        table.add(&["2024-W03", "Bretagne"], &[0, 0]);
        assert_eq!(table.len(), 3);
        assert_eq!(table.get(&["2024-W03", "Bretagne"]), Some(&[2, 1][..]));
        assert_eq!(table.get(&["2024-W03", "Corse"]), None);
        assert_eq!(table.get(&["2024-W09", "Corse"]), None);
        let batch = table.into_batch().unwrap();
        assert_eq!(
            strings(&batch, "week"),
            ["2024-W02", "2024-W02", "2024-W03"]
        );
        assert_eq!(strings(&batch, "region"), ["Bretagne", "Corse", "Bretagne"]);
        assert_eq!(counts(&batch, "coded"), [2, 1, 2]);
        assert_eq!(counts(&batch, "ili"), [2, 0, 1]);
        let schema = batch.schema();
        assert!(schema.field(0).metadata().is_empty());
        assert_eq!(schema.field(2).metadata()[KIND], "count");
        assert_eq!(schema.field(2).data_type(), &DataType::UInt64);
    }

    #[test]
    fn shares_divide_two_counts_and_are_null_over_zero() {
        let mut table = CountTable::new(&["age_class"], &["coded", "ili", "all"])
            .order("age_class", &AGE_CLASSES)
            .total("all", &["coded"]);
        table.add(&["75+"], &[4, 1, 4]);
        table.add(&["15-74"], &[0, 0, 3]);
        table.add(&["unknown"], &[2, 2, 2]);
        table.add(&["<2"], &[8, 2, 8]);
        table.add(&["2-14"], &[5, 0, 5]);
        let batch = table
            .into_batch_with_shares(&[("ili_share", "ili", "coded")])
            .unwrap();
        assert_eq!(
            strings(&batch, "age_class"),
            ["<2", "2-14", "15-74", "75+", "unknown"]
        );
        let shares: Vec<Option<f64>> = batch
            .column_by_name("ili_share")
            .unwrap()
            .as_primitive::<Float64Type>()
            .iter()
            .collect();
        assert_eq!(shares, [Some(0.25), Some(0.0), None, Some(0.25), Some(1.0)]);
        let schema = batch.schema();
        let share = schema.field_with_name("ili_share").unwrap();
        assert_eq!(share.metadata()[KIND], "share");
        assert_eq!(share.metadata()[NUMERATOR], "ili");
        assert_eq!(share.metadata()[DENOMINATOR], "coded");
        let total = schema.field_with_name("all").unwrap();
        assert_eq!(total.metadata()[TOTAL_OF], "coded");
        assert_eq!(total.metadata()[KIND], "count");
    }

    #[test]
    fn a_share_over_an_unknown_count_is_an_error() {
        let table = CountTable::new(&["week"], &["coded"]);
        let error = table
            .into_batch_with_shares(&[("x", "ili", "coded")])
            .unwrap_err();
        assert_eq!(error.message(), "share over `ili`, which is not a count");
    }

    #[test]
    fn an_empty_table_gives_an_empty_batch_with_its_schema() {
        let batch = CountTable::new(&["week"], &["n"])
            .into_batch_with_shares(&[("s", "n", "n")])
            .unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert_eq!(batch.num_columns(), 3);
    }

    #[test]
    fn a_table_without_dimensions_has_one_row() {
        let mut table = CountTable::new(&[], &["n"]);
        table.add(&[], &[2]);
        table.add(&[], &[3]);
        let batch = table.into_batch().unwrap();
        assert_eq!(counts(&batch, "n"), [5]);
    }

    #[test]
    #[should_panic(expected = "named twice")]
    fn names_must_be_unique() {
        CountTable::new(&["week"], &["week"]);
    }

    #[test]
    #[should_panic(expected = "3 key values for 2 dimensions")]
    fn keys_must_have_one_value_per_dimension() {
        CountTable::new(&["a", "b"], &["n"]).add(&["x", "y", "z"], &[1]);
    }

    #[test]
    fn many_keys_are_counted_exactly() {
        let mut table = CountTable::new(&["a", "b"], &["n"]);
        let labels: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
        for i in 0..30_000usize {
            table.add(&[&labels[i % 300], &labels[i % 7]], &[1]);
        }
        assert_eq!(table.len(), 2100);
        assert_eq!(table.get(&["v0", "v0"]), Some(&[15][..]));
        let batch = table.into_batch().unwrap();
        assert_eq!(counts(&batch, "n").iter().sum::<u64>(), 30_000);
    }
}
