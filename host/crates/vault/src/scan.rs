//! Reading a dataset back: one segment at a time, only the requested columns, and only
//! the column groups holding them decrypted.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::{Field, Schema, SchemaRef};
use rusqlite::Connection;

use crate::buffer_pool::BufferPool;
use crate::catalog::SegmentInfo;
use crate::chunked::ChunkFailure;
use crate::crypto::SecretKey;
use crate::dataset::{self, DatasetVersion};
use crate::date_filter::{self, DateRange, ScanOptions};
use crate::error::{Result, SegmentDamage, VaultError};
use crate::group_codec::{KeyedBlock, decode_group, read_and_open_blocks};
use crate::segment_check::check_identity;
use crate::segment_file::SegmentReader;
use crate::store::Vault;

/// What a scan has done so far; `segments_read` is what later issues audit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Ids of the segments returned so far, in order.
    pub segments_read: Vec<String>,
    pub groups_decrypted: u64,
    /// Plaintext bytes (Arrow IPC) produced by decryption.
    pub bytes_decrypted: u64,
    pub rows: u64,
}

/// Where an output column comes from in segments of one schema version.
#[derive(Debug, Clone)]
enum ColumnSource {
    Group(String),
    /// The column was added in a later version: older segments read as nulls.
    Absent,
}

struct VersionPlan {
    groups: BTreeSet<String>,
    sources: Vec<ColumnSource>,
}

struct PlannedSegment {
    info: SegmentInfo,
    /// Key id of each needed group, as the catalog records it.
    key_ids: HashMap<String, String>,
}

/// An iterator of record batches, one per segment in position order. Owns everything it
/// needs (including the unwrapped data keys of the groups it reads), so it can be moved
/// to another thread and outlive the borrow of the [`Vault`]. Stops after the first error.
pub struct Scan {
    dataset: String,
    schema: SchemaRef,
    segments: std::vec::IntoIter<PlannedSegment>,
    planned: usize,
    versions: HashMap<u32, VersionPlan>,
    keys: HashMap<String, SecretKey>,
    /// The date range and the output column it applies to.
    date_range: Option<(DateRange, usize)>,
    stats: ScanStats,
    /// The groups' buffers, reused from segment to segment.
    buffers: Arc<BufferPool>,
}

impl Vault {
    /// Plans a scan of `columns` (in that order) over every segment of `dataset`.
    pub fn scan(&self, dataset: &str, columns: &[&str]) -> Result<Scan> {
        self.scan_with(dataset, columns, &ScanOptions::default())
    }

    /// Like [`Vault::scan`], with options: a date range skips the segments whose
    /// recorded dates lie outside it (they are not opened, and not in
    /// [`Scan::segment_ids_read`]) and filters the rows of the others.
    pub fn scan_with(
        &self,
        dataset: &str,
        columns: &[&str],
        options: &ScanOptions,
    ) -> Result<Scan> {
        if columns.is_empty() {
            return Err(VaultError::NoColumnsRequested);
        }
        self.with_reader(|conn| self.plan_scan(conn, dataset, columns, options))
    }

    fn plan_scan(
        &self,
        conn: &Connection,
        dataset: &str,
        columns: &[&str],
        options: &ScanOptions,
    ) -> Result<Scan> {
        let current = dataset::load_version(
            conn,
            dataset,
            dataset::current_version_number(conn, dataset)?,
        )?;
        let fields = columns
            .iter()
            .map(|column| {
                current
                    .schema
                    .field_with_name(column)
                    .cloned()
                    .map_err(|_| VaultError::UnknownColumn {
                        dataset: dataset.to_owned(),
                        column: (*column).to_owned(),
                    })
            })
            .collect::<Result<Vec<Field>>>()?;
        let date_range = match &options.date_range {
            Some(range) => {
                let data_type = current
                    .schema
                    .field_with_name(&range.column)
                    .ok()
                    .map(|f| f.data_type());
                Some((
                    range.clone(),
                    date_filter::check_range(dataset, range, columns, data_type)?,
                ))
            }
            None => None,
        };
        let mut segments = Vec::new();
        for info in self.load_segments(conn, dataset)? {
            let wanted = match &date_range {
                Some((range, _)) => date_filter::may_match(conn, &info.id, range)?,
                None => true,
            };
            if wanted {
                segments.push(info);
            }
        }
        let mut versions = HashMap::new();
        for version in segments
            .iter()
            .map(|s| s.schema_version)
            .collect::<BTreeSet<_>>()
        {
            let loaded = if version == current.version {
                current.clone()
            } else {
                dataset::load_version(conn, dataset, version)?
            };
            versions.insert(version, plan_version(&loaded, &fields)?);
        }
        let mut group_keys = conn
            .prepare_cached("SELECT group_name, key_id FROM segment_keys WHERE segment_id = ?1")?;
        let master = self.master();
        let mut keys = HashMap::new();
        let mut planned = Vec::with_capacity(segments.len());
        for info in segments {
            let needed = &versions[&info.schema_version].groups;
            let mut key_ids = HashMap::new();
            let mut rows = group_keys.query([&info.id])?;
            while let Some(row) = rows.next()? {
                let group: String = row.get(0)?;
                let key_id: String = row.get(1)?;
                if !needed.contains(&group) {
                    continue;
                }
                if !keys.contains_key(&key_id) {
                    let key = self
                        .data_keys
                        .get(conn, &master, &key_id, dataset, &group)?
                        .ok_or_else(|| {
                            VaultError::CatalogCorrupt(format!(
                                "dataset `{dataset}` group `{group}` refers to an unknown data key"
                            ))
                        })?;
                    keys.insert(key_id.clone(), key);
                }
                key_ids.insert(group, key_id);
            }
            planned.push(PlannedSegment { info, key_ids });
        }
        Ok(Scan {
            dataset: dataset.to_owned(),
            schema: Arc::new(Schema::new(fields)),
            planned: planned.len(),
            segments: planned.into_iter(),
            versions,
            keys,
            date_range,
            stats: ScanStats::default(),
            buffers: Arc::default(),
        })
    }
}

/// Which groups segments of `version` need for `fields`, and where each field comes from.
fn plan_version(version: &DatasetVersion, fields: &[Field]) -> Result<VersionPlan> {
    let mut groups = BTreeSet::new();
    let mut sources = Vec::with_capacity(fields.len());
    for field in fields {
        match version.schema.field_with_name(field.name()) {
            Ok(stored) if stored.data_type() == field.data_type() => {
                let group = version.groups.group_of(field.name()).ok_or_else(|| {
                    VaultError::CatalogCorrupt(format!(
                        "column `{}` of `{}` has no group",
                        field.name(),
                        version.dataset
                    ))
                })?;
                groups.insert(group.to_owned());
                sources.push(ColumnSource::Group(group.to_owned()));
            }
            Ok(stored) => {
                return Err(VaultError::SchemaMismatch {
                    dataset: version.dataset.clone(),
                    field: field.name().clone(),
                    problem: format!(
                        "is stored as {} in schema version {}, not {}",
                        stored.data_type(),
                        version.version,
                        field.data_type()
                    ),
                });
            }
            Err(_) if field.is_nullable() => sources.push(ColumnSource::Absent),
            Err(_) => {
                return Err(VaultError::SchemaMismatch {
                    dataset: version.dataset.clone(),
                    field: field.name().clone(),
                    problem: format!(
                        "is absent from schema version {} and not nullable",
                        version.version
                    ),
                });
            }
        }
    }
    Ok(VersionPlan { groups, sources })
}

impl Scan {
    /// Schema of every batch: the requested columns as the current version declares them.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn stats(&self) -> &ScanStats {
        &self.stats
    }

    /// Ids of the segments returned so far.
    pub fn segment_ids_read(&self) -> &[String] {
        &self.stats.segments_read
    }

    /// How many segments the scan covers in total.
    pub fn segments_planned(&self) -> usize {
        self.planned
    }

    fn read_segment(&mut self, planned: &PlannedSegment) -> Result<RecordBatch> {
        let info = &planned.info;
        let damage = |damage| VaultError::Segment {
            dataset: self.dataset.clone(),
            segment: info.id.clone(),
            damage,
        };
        let reader = SegmentReader::open(&info.file, info.bytes).map_err(damage)?;
        check_identity(&reader, &self.dataset, info).map_err(damage)?;
        let plan = &self.versions[&info.schema_version];
        let missing = |group: &String| {
            damage(SegmentDamage::MissingGroup {
                group: group.clone(),
            })
        };
        let reading = |group: &str, source| VaultError::Io {
            context: format!("reading group `{group}` of {}", info.file.display()),
            source,
        };
        let mut blocks = Vec::with_capacity(plan.groups.len());
        let mut starts = Vec::with_capacity(plan.groups.len());
        for group in &plan.groups {
            let key_id = planned.key_ids.get(group).ok_or_else(|| missing(group))?;
            let block = reader.block(group).ok_or_else(|| missing(group))?;
            if &block.key_id != key_id {
                return Err(damage(SegmentDamage::CatalogMismatch(format!(
                    "group `{group}` is encrypted under another key than the catalog records"
                ))));
            }
            starts.push(reader.ciphertext_start(block));
            blocks.push(KeyedBlock {
                group: group.clone(),
                key_id: key_id.clone(),
                key: self.keys[key_id].clone(),
                nonce: block.nonce,
                chunk_size: block.chunk_size,
                tags: reader.read_tags(block).map_err(|e| reading(group, e))?,
                buffer: self.buffers.take_len(block.plaintext_len as usize),
                len: block.plaintext_len as usize,
            });
        }
        read_and_open_blocks(&reader, &mut blocks, &starts).map_err(|failure| match failure {
            ChunkFailure::Read { group, error } => reading(&blocks[group].group, error),
            ChunkFailure::Authentication { group } => damage(SegmentDamage::AuthenticationFailed {
                group: blocks[group].group.clone(),
            }),
        })?;
        let mut decoded: HashMap<String, RecordBatch> = HashMap::with_capacity(blocks.len());
        for block in blocks {
            self.stats.groups_decrypted += 1;
            self.stats.bytes_decrypted += block.len as u64;
            let group = block.group;
            let plaintext = BufferPool::arrow_buffer(&self.buffers, block.buffer, block.len);
            let batch = decode_group(&self.dataset, info, &group, plaintext)?;
            decoded.insert(group, batch);
        }
        let columns = self
            .schema
            .fields()
            .iter()
            .zip(&plan.sources)
            .map(|(field, source)| match source {
                ColumnSource::Group(group) => decoded[group.as_str()]
                    .column_by_name(field.name())
                    .cloned()
                    .ok_or_else(|| {
                        damage(SegmentDamage::Undecodable {
                            group: group.clone(),
                            reason: format!("no column `{}`", field.name()),
                        })
                    }),
                ColumnSource::Absent => Ok(new_null_array(field.data_type(), info.rows as usize)),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Iterator for Scan {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        let planned = self.segments.next()?;
        let read = self
            .read_segment(&planned)
            .and_then(|batch| match &self.date_range {
                Some((range, index)) => date_filter::filter_rows(&batch, *index, range),
                None => Ok(batch),
            });
        match read {
            Ok(batch) => {
                self.stats.rows += batch.num_rows() as u64;
                self.stats.segments_read.push(planned.info.id);
                Some(Ok(batch))
            }
            Err(error) => {
                // Nothing after a damaged segment is returned: a caller that skips errors
                // must not get a silently partial dataset.
                self.segments = Vec::new().into_iter();
                Some(Err(error))
            }
        }
    }
}
