//! Datasets as the catalog knows them: versioned Arrow schemas and the mapping of each
//! column to its column group (the category whose data key encrypts it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{Schema, SchemaRef};
use rusqlite::{Connection, OptionalExtension, params};

use crate::catalog::{now_rfc3339, validate_name};
use crate::error::{Result, VaultError};

/// Which column group (category, e.g. `demographics`, `clinical`) each column belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnGroups {
    by_column: BTreeMap<String, String>,
}

impl ColumnGroups {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `columns` in `group`; a column named twice keeps its last group.
    pub fn with_group(mut self, group: &str, columns: &[&str]) -> Self {
        for column in columns {
            self.by_column
                .insert((*column).to_owned(), group.to_owned());
        }
        self
    }

    pub fn group_of(&self, column: &str) -> Option<&str> {
        self.by_column.get(column).map(String::as_str)
    }

    pub fn groups(&self) -> BTreeSet<&str> {
        self.by_column.values().map(String::as_str).collect()
    }

    /// `(column, group)` pairs in column name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.by_column.iter().map(|(c, g)| (c.as_str(), g.as_str()))
    }
}

/// One schema version of a dataset with its column groups.
#[derive(Debug, Clone)]
pub struct DatasetVersion {
    pub dataset: String,
    pub version: u32,
    pub schema: SchemaRef,
    pub groups: ColumnGroups,
}

impl DatasetVersion {
    /// Each group with the indices of its fields, in schema order, groups sorted by name.
    pub(crate) fn group_fields(&self) -> Vec<(String, Vec<usize>)> {
        let mut by_group: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, field) in self.schema.fields().iter().enumerate() {
            // validate_groups guarantees every field has a group.
            if let Some(group) = self.groups.group_of(field.name()) {
                by_group.entry(group.to_owned()).or_default().push(index);
            }
        }
        by_group.into_iter().collect()
    }
}

/// Serialises a schema as an Arrow IPC stream holding only the schema message, which
/// keeps nested field names, nullability and metadata exactly.
pub(crate) fn encode_schema(schema: &Schema) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

pub(crate) fn decode_schema(bytes: &[u8]) -> Result<Schema> {
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    Ok(reader.schema().as_ref().clone())
}

/// Every field has exactly one valid group, and no group names a missing column.
pub(crate) fn validate_groups(dataset: &str, schema: &Schema, groups: &ColumnGroups) -> Result<()> {
    let problem = |column: &str, problem: &str| VaultError::ColumnGroups {
        dataset: dataset.to_owned(),
        column: column.to_owned(),
        problem: problem.to_owned(),
    };
    if schema.fields().is_empty() {
        return Err(problem("", "(none): a dataset needs at least one column"));
    }
    let mut seen = BTreeSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(problem(field.name(), "appears twice in the schema"));
        }
        let group = groups
            .group_of(field.name())
            .ok_or_else(|| problem(field.name(), "has no column group"))?;
        validate_name("column group", group)?;
    }
    if let Some((column, _)) = groups.iter().find(|(column, _)| !seen.contains(column)) {
        return Err(problem(column, "is given a group but is not in the schema"));
    }
    Ok(())
}

/// The batch must carry exactly the version's fields (by name, in any order) with the
/// same types and nullability; the error names the first field that differs.
pub(crate) fn check_batch_schema(version: &DatasetVersion, batch_schema: &Schema) -> Result<()> {
    let mismatch = |field: &str, problem: String| VaultError::SchemaMismatch {
        dataset: version.dataset.clone(),
        field: field.to_owned(),
        problem,
    };
    for expected in version.schema.fields() {
        let Ok(actual) = batch_schema.field_with_name(expected.name()) else {
            return Err(mismatch(
                expected.name(),
                format!(
                    "is missing from the batch (schema version {})",
                    version.version
                ),
            ));
        };
        if actual.data_type() != expected.data_type() {
            return Err(mismatch(
                expected.name(),
                format!(
                    "has type {}, schema version {} expects {}",
                    actual.data_type(),
                    version.version,
                    expected.data_type()
                ),
            ));
        }
        if actual.is_nullable() != expected.is_nullable() {
            let declared = |nullable: bool| if nullable { "nullable" } else { "non-nullable" };
            return Err(mismatch(
                expected.name(),
                format!(
                    "is {} in the batch, schema version {} declares it {}",
                    declared(actual.is_nullable()),
                    version.version,
                    declared(expected.is_nullable())
                ),
            ));
        }
    }
    if let Some(extra) = batch_schema
        .fields()
        .iter()
        .find(|f| version.schema.field_with_name(f.name()).is_err())
    {
        return Err(mismatch(
            extra.name(),
            format!("is not in schema version {}", version.version),
        ));
    }
    Ok(())
}

pub(crate) fn current_version_number(conn: &Connection, dataset: &str) -> Result<u32> {
    conn.query_row(
        "SELECT current_version FROM datasets WHERE name = ?1",
        [dataset],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| VaultError::UnknownDataset(dataset.to_owned()))
}

pub(crate) fn load_version(
    conn: &Connection,
    dataset: &str,
    version: u32,
) -> Result<DatasetVersion> {
    let schema_ipc: Vec<u8> = conn
        .query_row(
            "SELECT schema_ipc FROM schema_versions WHERE dataset = ?1 AND version = ?2",
            params![dataset, version],
            |row| row.get(0),
        )
        .optional()?
        .ok_or_else(|| {
            VaultError::CatalogCorrupt(format!(
                "dataset `{dataset}` has no schema version {version}"
            ))
        })?;
    let mut groups = ColumnGroups::new();
    let mut statement = conn.prepare_cached(
        "SELECT column_name, group_name FROM column_groups WHERE dataset = ?1 AND version = ?2",
    )?;
    let mut rows = statement.query(params![dataset, version])?;
    while let Some(row) = rows.next()? {
        let column: String = row.get(0)?;
        let group: String = row.get(1)?;
        groups = groups.with_group(&group, &[&column]);
    }
    Ok(DatasetVersion {
        dataset: dataset.to_owned(),
        version,
        schema: Arc::new(decode_schema(&schema_ipc)?),
        groups,
    })
}

/// Inserts a schema version with its groups and makes it the dataset's current one.
pub(crate) fn insert_version(
    conn: &Connection,
    dataset: &str,
    version: u32,
    schema: &Schema,
    groups: &ColumnGroups,
) -> Result<()> {
    let now = now_rfc3339();
    conn.execute(
        "INSERT INTO schema_versions (dataset, version, schema_ipc, created) VALUES (?1, ?2, ?3, ?4)",
        params![dataset, version, encode_schema(schema)?, now],
    )?;
    let mut statement = conn.prepare_cached(
        "INSERT INTO column_groups (dataset, version, column_name, group_name) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for field in schema.fields() {
        statement.execute(params![
            dataset,
            version,
            field.name(),
            groups.group_of(field.name())
        ])?;
    }
    conn.execute(
        "UPDATE datasets SET current_version = ?2 WHERE name = ?1",
        params![dataset, version],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field};

    fn version() -> DatasetVersion {
        DatasetVersion {
            dataset: "consultations".into(),
            version: 2,
            schema: Arc::new(Schema::new(vec![
                Field::new("sex", DataType::Utf8, false),
                Field::new("hour", DataType::UInt8, true),
            ])),
            groups: ColumnGroups::new()
                .with_group("demographics", &["sex"])
                .with_group("encounter", &["hour"]),
        }
    }

    #[test]
    fn schema_survives_encoding_with_nested_field_names() {
        let schema = Schema::new(vec![Field::new(
            "diagnoses",
            DataType::List(Arc::new(Field::new("code", DataType::Utf8, false))),
            true,
        )]);
        assert_eq!(
            decode_schema(&encode_schema(&schema).unwrap()).unwrap(),
            schema
        );
    }

    #[test]
    fn batch_with_a_different_type_names_the_field() {
        let batch_schema = Schema::new(vec![
            Field::new("sex", DataType::Utf8, false),
            Field::new("hour", DataType::UInt16, true),
        ]);
        let error = check_batch_schema(&version(), &batch_schema).unwrap_err();
        assert!(
            matches!(&error, VaultError::SchemaMismatch { field, .. } if field == "hour"),
            "{error}"
        );
    }

    #[test]
    fn batch_missing_or_adding_a_field_names_it() {
        let missing = Schema::new(vec![Field::new("sex", DataType::Utf8, false)]);
        assert!(
            matches!(check_batch_schema(&version(), &missing), Err(VaultError::SchemaMismatch { field, .. }) if field == "hour")
        );
        let extra = Schema::new(vec![
            Field::new("hour", DataType::UInt8, true),
            Field::new("sex", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        assert!(
            matches!(check_batch_schema(&version(), &extra), Err(VaultError::SchemaMismatch { field, .. }) if field == "name")
        );
    }

    #[test]
    fn groups_must_cover_every_column_and_nothing_else() {
        let v = version();
        validate_groups("d", &v.schema, &v.groups).unwrap();
        let partial = ColumnGroups::new().with_group("demographics", &["sex"]);
        assert!(validate_groups("d", &v.schema, &partial).is_err());
        let extra = v.groups.clone().with_group("clinical", &["outcome"]);
        assert!(validate_groups("d", &v.schema, &extra).is_err());
        let bad_name = ColumnGroups::new().with_group("Demo Graphics", &["sex", "hour"]);
        assert!(validate_groups("d", &v.schema, &bad_name).is_err());
    }

    #[test]
    fn group_fields_follow_schema_order() {
        assert_eq!(
            version().group_fields(),
            vec![
                ("demographics".to_owned(), vec![0]),
                ("encounter".to_owned(), vec![1])
            ]
        );
    }
}
