//! `carrel:eds/dataset`: a study reads the encrypted datasets, only the columns its
//! approved manifest grants.
//!
//! The grant (dataset → columns) is computed once per study from
//! `[component.<id>.tool.carrel.study] datasets`. Opening anything else is
//! `access-denied` for the guest and a `capability.denied` audit entry. Only the column
//! groups holding granted columns that were asked for are decrypted. `patient_id` values
//! are re-keyed with a key of this study (HMAC of the stored pseudonym), so the rows of two
//! studies cannot be joined. What was read (segments, rows, distinct patients) is kept
//! for the run record and for disclosure control.

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "carrel:eds/study",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "carrel:eds/dataset.reader": super::OpenReader,
        },
    });
}

use bindings::carrel::eds::dataset::{self, DateRange, Error as WitError};
use carrel_vault::{
    AuditAction, AuditEvent, AuditLog, DateRange as VaultRange, Scan, ScanOptions, Vault,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Dataset → granted columns, computed once per study.
pub type DatasetGrants = Arc<BTreeMap<String, BTreeSet<String>>>;

/// What one run of one study may read, and what it has read so far.
pub struct DatasetAccess {
    pub study: String,
    pub actor: String,
    pub grants: DatasetGrants,
    pub vault: Arc<Vault>,
    /// Where denials are audited; `None` for synthetic tries, which touch no real data.
    pub audit: Option<Arc<AuditLog>>,
    /// The study's own key for re-keying patient pseudonyms.
    pub patient_key: [u8; 32],
    pub read: ReadStats,
    /// Told of the reading as it goes, for a progress display.
    pub observer: Option<Arc<dyn ReadObserver>>,
}

/// Follows a run's reading: the segments each scan will decrypt when the study opens it,
/// then the segments and rows handed to the study. Only numbers, never data.
pub trait ReadObserver: Send + Sync {
    fn planned(&self, segments: u64);
    fn read(&self, segments: u64, rows: u64);
}

#[derive(Debug, Default, Clone)]
pub struct ReadStats {
    /// `dataset/segment` ids decrypted, in order.
    pub segments: Vec<String>,
    pub rows: u64,
    /// Distinct (re-keyed) patients handed out, when `patient_id` was read.
    pub patients: Option<HashSet<u64>>,
    /// What the study tried to open without a grant.
    pub denied: Vec<String>,
}

/// An opened dataset: the vault scan behind a guest's `reader` handle.
pub struct OpenReader {
    dataset: String,
    scan: Scan,
    patient_column: Option<usize>,
    /// Segments of this scan already noted in the read stats.
    segments_noted: usize,
}

pub struct DatasetView<'a> {
    pub table: &'a mut ResourceTable,
    pub access: &'a mut DatasetAccess,
}

pub trait DatasetState: Send {
    fn dataset(&mut self) -> DatasetView<'_>;
}

struct Dataset;

impl HasData for Dataset {
    type Data<'a> = DatasetView<'a>;
}

pub fn add_to_linker<T: DatasetState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    dataset::add_to_linker::<T, Dataset>(linker, T::dataset)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` day.
fn epoch_days(text: &str) -> Option<i32> {
    let day = crate::study::manifest::parse_day(text).ok()?;
    Some(
        day.to_julian_day()
            - time::Date::from_calendar_date(1970, time::Month::January, 1)
                .ok()?
                .to_julian_day(),
    )
}

impl DatasetView<'_> {
    fn deny(&mut self, what: String) -> WitError {
        let access = &mut *self.access;
        tracing::warn!(study = %access.study, "dataset access denied");
        if let Some(audit) = &access.audit {
            let event = AuditEvent::new(
                access.actor.clone(),
                AuditAction::CapabilityDenied,
                format!("study:{}", access.study),
            )
            .with_details(serde_json::json!({"capability": "carrel:eds/dataset", "denied": what}));
            if let Err(e) = audit.append(&event) {
                tracing::error!(error = %e, "cannot audit a denied dataset access");
            }
        }
        access.read.denied.push(what.clone());
        WitError::AccessDenied(format!("{what} is not granted to study `{}`", access.study))
    }

    fn open_scan(
        &mut self,
        name: &str,
        columns: &[String],
        dates: Option<DateRange>,
    ) -> Result<OpenReader, WitError> {
        let Some(granted) = self.access.grants.get(name).cloned() else {
            return Err(self.deny(format!("dataset `{name}`")));
        };
        if columns.is_empty() {
            return Err(WitError::Other("open needs at least one column".into()));
        }
        if let Some(column) = columns.iter().find(|c| !granted.contains(*c)) {
            return Err(self.deny(format!("column `{column}` of dataset `{name}`")));
        }
        let options = match dates {
            None => ScanOptions::default(),
            Some(range) => {
                let parse = |text: &str| {
                    epoch_days(text).ok_or_else(|| {
                        WitError::Other(format!("date-range: `{text}` is not a YYYY-MM-DD day"))
                    })
                };
                ScanOptions {
                    date_range: Some(VaultRange {
                        from: parse(&range.from)?,
                        to: parse(&range.to)?,
                        column: range.column,
                    }),
                }
            }
        };
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let scan = self
            .access
            .vault
            .scan_with(name, &refs, &options)
            .map_err(|e| match e {
                carrel_vault::VaultError::UnknownDataset(_)
                | carrel_vault::VaultError::UnknownColumn { .. } => {
                    WitError::NotFound(e.to_string())
                }
                other => WitError::Other(other.to_string()),
            })?;
        if let Some(observer) = &self.access.observer {
            observer.planned(scan.segments_planned() as u64);
        }
        let patient_column = columns.iter().position(|c| c == "patient_id");
        if patient_column.is_some() && self.access.read.patients.is_none() {
            self.access.read.patients = Some(HashSet::new());
        }
        Ok(OpenReader {
            dataset: name.to_owned(),
            scan,
            patient_column,
            segments_noted: 0,
        })
    }
}

/// Replaces each stored pseudonym by HMAC-SHA-256(study key, pseudonym), and notes the
/// distinct patients seen.
fn rekey_patients(
    batch: &arrow_array::RecordBatch,
    column: usize,
    key: &[u8; 32],
    seen: &mut HashSet<u64>,
) -> Result<arrow_array::RecordBatch, String> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let values = batch.column(column);
    let strings = values
        .as_string_opt::<i32>()
        .ok_or("patient_id is not a utf8 column")?;
    let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    let mut out =
        arrow_array::builder::StringBuilder::with_capacity(strings.len(), strings.len() * 64);
    for value in strings.iter() {
        match value {
            None => out.append_null(),
            Some(pseudonym) => {
                let mut m = mac.clone();
                m.update(pseudonym.as_bytes());
                let digest = m.finalize().into_bytes();
                seen.insert(u64::from_le_bytes(digest[..8].try_into().expect("8 bytes")));
                out.append_value(hex::encode(digest));
            }
        }
    }
    let mut columns = batch.columns().to_vec();
    columns[column] = Arc::new(out.finish());
    arrow_array::RecordBatch::try_new(batch.schema(), columns).map_err(|e| e.to_string())
}

impl dataset::HostReader for DatasetView<'_> {
    fn next(
        &mut self,
        reader: Resource<OpenReader>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, WitError>> {
        let open = self.table.get_mut(&reader)?;
        let Some(batch) = open.scan.next() else {
            return Ok(Ok(None));
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => return Ok(Err(WitError::Other(e.to_string()))),
        };
        for segment in &open.scan.segment_ids_read()[open.segments_noted..] {
            self.access
                .read
                .segments
                .push(format!("{}/{segment}", open.dataset));
        }
        let new_segments = open.scan.segment_ids_read().len() - open.segments_noted;
        open.segments_noted = open.scan.segment_ids_read().len();
        let batch = match (open.patient_column, self.access.read.patients.as_mut()) {
            (Some(column), Some(seen)) => {
                match rekey_patients(&batch, column, &self.access.patient_key, seen) {
                    Ok(b) => b,
                    Err(e) => return Ok(Err(WitError::Other(e))),
                }
            }
            _ => batch,
        };
        self.access.read.rows += batch.num_rows() as u64;
        if let Some(observer) = &self.access.observer {
            observer.read(new_segments as u64, batch.num_rows() as u64);
        }
        Ok(carrel_pseudonym::to_ipc(&batch)
            .map(Some)
            .map_err(|e| WitError::Other(e.to_string())))
    }

    fn drop(&mut self, reader: Resource<OpenReader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

impl dataset::Host for DatasetView<'_> {
    fn open(
        &mut self,
        name: String,
        columns: Vec<String>,
        dates: Option<DateRange>,
    ) -> wasmtime::Result<Result<Resource<OpenReader>, WitError>> {
        match self.open_scan(&name, &columns, dates) {
            Ok(reader) => Ok(Ok(self.table.push(reader)?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    fn batch(values: &[&str]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new(
                "patient_id",
                DataType::Utf8,
                false,
            )])),
            vec![Arc::new(StringArray::from(values.to_vec()))],
        )
        .unwrap()
    }

    #[test]
    fn two_studies_see_different_pseudonyms_for_the_same_patient() {
        let stored = batch(&["p1", "p2", "p1"]);
        let mut seen_a = HashSet::new();
        let mut seen_b = HashSet::new();
        let a = rekey_patients(&stored, 0, &[1; 32], &mut seen_a).unwrap();
        let b = rekey_patients(&stored, 0, &[2; 32], &mut seen_b).unwrap();
        let a = a.column(0).as_string::<i32>();
        let b = b.column(0).as_string::<i32>();
        // Within a study the same patient keeps one pseudonym, so cohorts still work…
        assert_eq!(a.value(0), a.value(2));
        assert_ne!(a.value(0), a.value(1));
        // …but nothing links it to the stored pseudonym or to another study's.
        assert_ne!(a.value(0), "p1");
        assert_ne!(a.value(0), b.value(0));
        assert_eq!(seen_a.len(), 2);
    }

    #[test]
    fn date_range_days_count_from_the_unix_epoch() {
        assert_eq!(epoch_days("1970-01-01"), Some(0));
        assert_eq!(epoch_days("2024-03-01"), Some(19783));
        assert_eq!(epoch_days("2024-02-30"), None);
    }
}
