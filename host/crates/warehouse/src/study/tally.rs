//! The host's own counting: each contribution a study makes names a row it was handed and
//! a declared measure; the host computes the row's cell from the row's own values (ISO
//! week of its date, region of its département…) and counts consultations and distinct
//! patients per cell and measure, with each patient's contributions to a cell bounded.
//! Nothing here trusts a number the study computed. Whether a contribution counts (its
//! patient's bounds) is settled apart, in [`super::contributions`].

use super::contributions::Bounds;
use super::geography::{REGION_NAMES, region_index};
use super::slot_counts::SlotCounts;
use super::table::{Dimension, MAX_DIMENSIONS, TableSpec};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, UInt8Type};
use arrow_array::{Array, PrimitiveArray, RecordBatch, StringArray};
use rustc_hash::FxHashMap;

/// A cell, one value per kept dimension (unused slots are 0).
type Key = [u32; MAX_DIMENSIONS];

/// The value of a dimension whose source is missing (no age, no département).
pub const UNKNOWN: u32 = u32::MAX;
pub const UNKNOWN_LABEL: &str = "unknown";

/// One contribution, checked against the batch it names: `row` is a row of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checked {
    pub row: u32,
    pub measure: u32,
    pub label: u32,
}

/// Counts of one run.
pub struct Tally {
    kinds: Vec<Dimension>,
    age_bounds: Vec<u8>,
    measures: usize,
    cells: Cells,
    keys: Vec<Key>,
    /// Per cell and measure (`cell * measures + measure`).
    counts: SlotCounts,
    /// Text values of each kept dimension that takes them from the data, by index.
    interned: Vec<Interner>,
}

/// The index of each cell. A row's cell is looked up in each tally that counts it, so
/// the lookup is a good share of a run: a cell of one or two dimensions (most tallies) is
/// looked up by one 64-bit word rather than by its whole key.
enum Cells {
    Narrow(FxHashMap<u64, u32>),
    Wide(FxHashMap<Key, u32>),
}

impl Cells {
    fn for_dimensions(kept: usize) -> Cells {
        match kept <= 2 {
            true => Cells::Narrow(FxHashMap::default()),
            false => Cells::Wide(FxHashMap::default()),
        }
    }

    /// The index of cell `key`, `next` if the cell is new.
    fn index_or(&mut self, key: &Key, next: u32) -> u32 {
        match self {
            Cells::Narrow(cells) => *cells
                .entry(u64::from(key[0]) | u64::from(key[1]) << 32)
                .or_insert(next),
            Cells::Wide(cells) => *cells.entry(*key).or_insert(next),
        }
    }
}

#[derive(Default)]
struct Interner {
    index: FxHashMap<String, u32>,
    values: Vec<String>,
}

impl Interner {
    fn key(&mut self, value: &str) -> u32 {
        if let Some(&key) = self.index.get(value) {
            return key;
        }
        self.values.push(value.to_owned());
        let key = (self.values.len() - 1) as u32;
        self.index.insert(value.to_owned(), key);
        key
    }
}

/// The columns a batch's cells are computed from, looked up once per batch.
pub struct Sources<'a> {
    dates: Option<&'a PrimitiveArray<Date32Type>>,
    ages: Option<&'a PrimitiveArray<UInt8Type>>,
    texts: Vec<Option<&'a StringArray>>,
}

/// A table's bounds on each patient's contributions.
pub fn bounds(table: &TableSpec) -> Bounds {
    Bounds {
        per_slot: table.max_per_patient.min(255) as u8,
        slots: table.max_cells_per_patient.min(u32::from(u16::MAX)) as u16,
    }
}

impl Tally {
    /// Counts for `table`, keeping the dimensions `kept` (indexes into its dimensions).
    pub fn new(table: &TableSpec, kept: &[usize]) -> Tally {
        let all = table.dimension_kinds();
        let kinds: Vec<Dimension> = kept.iter().map(|&i| all[i]).collect();
        Tally {
            interned: kinds.iter().map(|_| Interner::default()).collect(),
            kinds,
            age_bounds: table.age_classes.clone(),
            measures: table.measures.len(),
            cells: Cells::for_dimensions(kept.len()),
            keys: Vec::new(),
            counts: SlotCounts::default(),
        }
    }

    /// The cell sources of `batch`, which holds every source column of the kept
    /// dimensions.
    pub fn sources<'a>(&self, batch: &'a RecordBatch) -> Result<Sources<'a>, String> {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| format!("the host read no column `{name}`"))
        };
        let mut dates = None;
        let mut ages = None;
        let mut texts = Vec::with_capacity(self.kinds.len());
        for kind in &self.kinds {
            let mut text = None;
            match (kind, kind.source_column()) {
                (_, None) => {}
                (Dimension::Week | Dimension::Month | Dimension::Year, Some(name)) => {
                    dates = Some(
                        column(name)?
                            .as_primitive_opt::<Date32Type>()
                            .ok_or("`date` is not date32")?,
                    );
                }
                (Dimension::AgeClass, Some(name)) => {
                    ages = Some(
                        column(name)?
                            .as_primitive_opt::<UInt8Type>()
                            .ok_or("`age_years` is not uint8")?,
                    );
                }
                (_, Some(name)) => {
                    text = Some(
                        column(name)?
                            .as_string_opt::<i32>()
                            .ok_or_else(|| format!("`{name}` is not utf8"))?,
                    );
                }
            }
            texts.push(text);
        }
        Ok(Sources { dates, ages, texts })
    }

    fn key(&mut self, sources: &Sources<'_>, row: usize, label: u32) -> Key {
        let mut key = [0u32; MAX_DIMENSIONS];
        for (slot, kind) in self.kinds.iter().enumerate() {
            let date = || sources.dates.expect("date read").value(row);
            key[slot] = match kind {
                // Days since 1970-01-01 of the Monday that starts the ISO week (1970-01-01
                // was a Thursday), as bits.
                Dimension::Week => (date() - (date() + 3).rem_euclid(7)) as u32,
                Dimension::Month => {
                    let day = day_of(date());
                    (day.year() * 12 + i32::from(u8::from(day.month())) - 1) as u32
                }
                Dimension::Year => day_of(date()).year() as u32,
                Dimension::AgeClass => {
                    let ages = sources.ages.expect("ages read");
                    match ages.is_null(row) {
                        true => UNKNOWN,
                        false => {
                            let age = ages.value(row);
                            self.age_bounds.iter().take_while(|&&b| age >= b).count() as u32
                        }
                    }
                }
                Dimension::Region => {
                    let text = sources.texts[slot].expect("departement read");
                    match text.is_null(row) {
                        true => UNKNOWN,
                        false => region_index(text.value(row)).map_or(UNKNOWN, |i| i as u32),
                    }
                }
                Dimension::Label => label,
                _ => {
                    let text = sources.texts[slot].expect("text column read");
                    match text.is_null(row) {
                        true => UNKNOWN,
                        false => self.interned[slot].key(text.value(row)),
                    }
                }
            };
        }
        key
    }

    /// The slot (`cell * measures + measure`) of a contribution of row `row` of the batch
    /// of `sources`: the cell is computed from the row's own values.
    pub fn slot(&mut self, sources: &Sources<'_>, row: usize, measure: u32, label: u32) -> u32 {
        let key = self.key(sources, row, label);
        let next = self.keys.len() as u32;
        let cell = self.cells.index_or(&key, next);
        if cell == next {
            self.keys.push(key);
            self.counts.resize(self.keys.len() * self.measures);
        }
        // A table has at most a few million cells (every cell is released or withheld as a
        // row), far from 2^32 slots.
        (cell as usize * self.measures + measure as usize) as u32
    }

    /// The slots opened so far (`cells * measures`).
    pub fn slots(&self) -> usize {
        self.counts.slots()
    }

    /// Adds the counts of settled contributions.
    pub fn add_counts(&mut self, counts: &SlotCounts) {
        self.counts.add(counts);
    }

    /// The cell keys of [`Tally::cells`], in the same order: per cell, the consultation
    /// and patient cell keys of each measure.
    pub fn cell_keys(&self) -> Vec<(&[u64], &[u64])> {
        let m = self.measures;
        self.release_order()
            .into_iter()
            .map(|i| {
                (
                    &self.counts.consultation_keys[i * m..(i + 1) * m],
                    &self.counts.patient_keys[i * m..(i + 1) * m],
                )
            })
            .collect()
    }

    /// The cells in release order (each dimension in its own order: time ascending,
    /// regions and age classes as declared, text alphabetically, unknown last), with
    /// their consultations and patients per measure.
    pub fn cells(&self) -> Vec<(Key, &[u64], &[u64])> {
        let m = self.measures;
        self.release_order()
            .into_iter()
            .map(|i| {
                (
                    self.keys[i],
                    &self.counts.consultations[i * m..(i + 1) * m],
                    &self.counts.patients[i * m..(i + 1) * m],
                )
            })
            .collect()
    }

    fn release_order(&self) -> Vec<usize> {
        let ranks: Vec<Vec<u32>> = self.interned.iter().map(text_ranks).collect();
        let rank = |key: &Key| -> Key {
            let mut ranked = *key;
            for (slot, kind) in self.kinds.iter().enumerate() {
                let interned = !matches!(
                    kind,
                    Dimension::Week
                        | Dimension::Month
                        | Dimension::Year
                        | Dimension::AgeClass
                        | Dimension::Region
                        | Dimension::Label
                );
                if interned && key[slot] != UNKNOWN {
                    ranked[slot] = ranks[slot][key[slot] as usize];
                }
            }
            ranked
        };
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by_key(|&i| rank(&self.keys[i]));
        order
    }

    /// The label of value `value` of kept dimension `slot`.
    pub fn label(&self, slot: usize, value: u32, table: &TableSpec) -> String {
        if value == UNKNOWN {
            return UNKNOWN_LABEL.to_owned();
        }
        match self.kinds[slot] {
            Dimension::Week => {
                let (year, week, _) = day_of(value as i32).to_iso_week_date();
                format!("{year:04}-W{week:02}")
            }
            Dimension::Month => format!("{:04}-{:02}", value / 12, value % 12 + 1),
            Dimension::Year => format!("{value:04}"),
            Dimension::AgeClass => table.age_class_labels()[value as usize].clone(),
            Dimension::Region => REGION_NAMES[value as usize].to_owned(),
            Dimension::Label => {
                table.labels.as_ref().expect("validated").values[value as usize].clone()
            }
            _ => self.interned[slot].values[value as usize].clone(),
        }
    }

    pub fn kept(&self) -> usize {
        self.kinds.len()
    }
}

/// The rank of each interned value in alphabetical order.
fn text_ranks(interner: &Interner) -> Vec<u32> {
    let mut order: Vec<u32> = (0..interner.values.len() as u32).collect();
    order.sort_by(|&a, &b| interner.values[a as usize].cmp(&interner.values[b as usize]));
    let mut ranks = vec![0; order.len()];
    for (rank, &value) in order.iter().enumerate() {
        ranks[value as usize] = rank as u32;
    }
    ranks
}

/// The calendar day of a date32 value.
pub fn day_of(days: i32) -> time::Date {
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1)
        .expect("1970-01-01 exists")
        .to_julian_day();
    time::Date::from_julian_day(epoch + days).unwrap_or(time::Date::MIN)
}

/// Days since 1970-01-01 of a calendar day.
pub fn days_of(day: time::Date) -> i32 {
    day.to_julian_day() - day_of(0).to_julian_day()
}
