//! `carrel audit verify --segments`: every segment file the catalog records is read in
//! full, its header checked against the catalog (dataset, segment, position, schema
//! version, rows, size) and its sha-256 against the one recorded when it was written. It
//! needs no key, so an auditor can run it, and it checks a restored backup: a file
//! missing, truncated, swapped for another or altered by one bit is named.

use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::catalog::{self, SegmentInfo};
use crate::error::{Result, SegmentDamage, VaultError};
use crate::segment_file::SegmentReader;
use crate::store::{Vault, catalog_datasets, catalog_segments};

/// One segment checked: which, and how far the whole check is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCheckProgress {
    pub segments_done: u64,
    pub segments_total: u64,
    pub bytes: u64,
}

/// A segment that failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedSegment {
    pub dataset: String,
    pub segment: String,
    pub damage: SegmentDamage,
}

/// What the check found, over every dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentCheckReport {
    pub datasets: u64,
    pub segments: u64,
    pub bytes: u64,
    pub damaged: Vec<DamagedSegment>,
}

/// Checks every segment of every dataset of the state directory, telling `progress`
/// after each one. A damaged segment does not stop the check: all are reported.
pub fn check_stored_segments(
    state_dir: &Path,
    progress: &mut dyn FnMut(SegmentCheckProgress),
) -> Result<SegmentCheckReport> {
    let conn = catalog::open_existing(state_dir)?;
    let names = catalog_datasets(&conn)?;
    let mut all = Vec::new();
    for name in &names {
        for segment in catalog_segments(&conn, state_dir, name)? {
            all.push((name.clone(), segment));
        }
    }
    drop(conn);
    let mut report = SegmentCheckReport {
        datasets: names.len() as u64,
        ..SegmentCheckReport::default()
    };
    let total = all.len() as u64;
    for (dataset, segment) in all {
        if let Err(damage) = check_segment(&dataset, &segment) {
            report.damaged.push(DamagedSegment {
                dataset,
                segment: segment.id.clone(),
                damage,
            });
        }
        report.segments += 1;
        report.bytes += segment.bytes;
        progress(SegmentCheckProgress {
            segments_done: report.segments,
            segments_total: total,
            bytes: segment.bytes,
        });
    }
    Ok(report)
}

/// Checks one segment file against its catalog record.
pub(crate) fn check_segment(
    dataset: &str,
    segment: &SegmentInfo,
) -> std::result::Result<(), SegmentDamage> {
    let reader = SegmentReader::open(&segment.file, segment.bytes)?;
    check_identity(&reader, dataset, segment)?;
    let unreadable = |e: std::io::Error| SegmentDamage::Unreadable(e.to_string());
    let mut file = File::open(&segment.file).map_err(unreadable)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(unreadable)?;
    if hex::encode(hasher.finalize()) != segment.sha256 {
        return Err(SegmentDamage::ChecksumMismatch);
    }
    Ok(())
}

impl Vault {
    /// Reads every segment file of a dataset in full and checks its header against the
    /// catalog and its sha256 against the recorded one. Returns how many were checked.
    pub fn verify_segments(&self, dataset: &str) -> Result<u64> {
        let segments = self.segments(dataset)?;
        for segment in &segments {
            check_segment(dataset, segment).map_err(|damage| VaultError::Segment {
                dataset: dataset.to_owned(),
                segment: segment.id.clone(),
                damage,
            })?;
        }
        Ok(segments.len() as u64)
    }
}

/// The header must name this dataset, segment, position, schema version and row count,
/// and the file must have the recorded size.
pub(crate) fn check_identity(
    reader: &SegmentReader,
    dataset: &str,
    segment: &SegmentInfo,
) -> Result<(), SegmentDamage> {
    let found = &reader.identity;
    if found.dataset != dataset
        || found.segment_id != segment.id
        || found.position != segment.position
    {
        return Err(SegmentDamage::Misplaced {
            dataset: found.dataset.clone(),
            segment: found.segment_id.clone(),
            position: found.position,
        });
    }
    if found.schema_version != segment.schema_version || found.rows != segment.rows {
        return Err(SegmentDamage::CatalogMismatch(format!(
            "header says schema version {} with {} rows, the catalog {} with {}",
            found.schema_version, found.rows, segment.schema_version, segment.rows
        )));
    }
    if reader.file_len != segment.bytes {
        return Err(SegmentDamage::CatalogMismatch(format!(
            "file is {} bytes, the catalog records {}",
            reader.file_len, segment.bytes
        )));
    }
    Ok(())
}
