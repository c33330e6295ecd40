mod common;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Date32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use carrel_vault::ColumnGroups;
use carrel_vault::{DateRange, ScanOptions, VaultError};
use common::{ACTOR, DATASET, consultation_batch, vault_with_consultations};

/// `rows` consultations whose dates run from `first_day` upwards, one day per row.
fn batch_on_days(start: u64, rows: usize, first_day: i32) -> RecordBatch {
    let batch = consultation_batch(start, rows);
    let index = batch.schema().index_of("date").unwrap();
    let mut columns = batch.columns().to_vec();
    columns[index] = Arc::new(Date32Array::from(
        (0..rows as i32).map(|i| first_day + i).collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(batch.schema(), columns).unwrap()
}

fn range(from: i32, to: i32) -> ScanOptions {
    ScanOptions {
        date_range: Some(DateRange {
            column: "date".into(),
            from,
            to,
        }),
    }
}

fn dates_read(batches: &[RecordBatch]) -> Vec<i32> {
    batches
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<Date32Type>().values().to_vec())
        .collect()
}

#[test]
fn segments_outside_the_range_are_not_read_and_rows_are_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    for (segment, first_day) in [(0u64, 20_000), (1, 20_100), (2, 20_200)] {
        vault
            .append(DATASET, &batch_on_days(segment * 100, 50, first_day), ACTOR)
            .unwrap();
    }
    let ids: Vec<String> = vault
        .segments(DATASET)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();

    let mut scan = vault
        .scan_with(DATASET, &["date", "sex"], &range(20_110, 20_205))
        .unwrap();
    let batches: Vec<RecordBatch> = scan.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(
        scan.segment_ids_read(),
        &ids[1..],
        "the first segment is never opened"
    );
    let expected: Vec<i32> = (20_110..=20_149).chain(20_200..=20_205).collect();
    assert_eq!(
        dates_read(&batches),
        expected,
        "out-of-range rows are dropped"
    );
    assert_eq!(batches[0].num_columns(), 2);
}

#[test]
fn range_matching_no_segment_reads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    vault
        .append(DATASET, &batch_on_days(0, 20, 20_000), ACTOR)
        .unwrap();
    let mut scan = vault
        .scan_with(DATASET, &["date"], &range(21_000, 21_100))
        .unwrap();
    assert!(scan.next().is_none());
    assert!(scan.segment_ids_read().is_empty());
    assert_eq!(scan.stats().groups_decrypted, 0);
}

#[test]
fn range_on_an_unrequested_or_non_date_column_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    let unrequested = vault
        .scan_with(DATASET, &["sex"], &range(0, 1))
        .err()
        .unwrap();
    assert!(
        matches!(unrequested, VaultError::InvalidDateRange { ref column, .. } if column == "date"),
        "{unrequested}"
    );
    let not_a_date = ScanOptions {
        date_range: Some(DateRange {
            column: "sex".into(),
            from: 0,
            to: 1,
        }),
    };
    assert!(matches!(
        vault.scan_with(DATASET, &["sex"], &not_a_date),
        Err(VaultError::InvalidDateRange { .. })
    ));
    assert!(matches!(
        vault.scan_with(DATASET, &["date"], &range(5, 1)),
        Err(VaultError::InvalidDateRange { .. })
    ));
}

#[test]
fn rows_with_a_null_date_never_match_and_all_null_segments_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    let schema = Arc::new(Schema::new(vec![
        Field::new("seen", DataType::Date32, true),
        Field::new("note", DataType::Utf8, false),
    ]));
    let groups = ColumnGroups::new().with_group("visits", &["seen", "note"]);
    vault
        .create_dataset("visits", &schema, &groups, ACTOR)
        .unwrap();
    let batch = |dates: Vec<Option<i32>>| {
        let notes: Vec<String> = (0..dates.len()).map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Date32Array::from(dates)),
                Arc::new(StringArray::from(notes)),
            ],
        )
        .unwrap()
    };
    vault
        .append("visits", &batch(vec![Some(10), None, Some(12)]), ACTOR)
        .unwrap();
    vault
        .append("visits", &batch(vec![None, None]), ACTOR)
        .unwrap();
    let options = ScanOptions {
        date_range: Some(DateRange {
            column: "seen".into(),
            from: 0,
            to: 100,
        }),
    };
    let mut scan = vault
        .scan_with("visits", &["seen", "note"], &options)
        .unwrap();
    let batches: Vec<RecordBatch> = scan.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(dates_read(&batches), vec![10, 12]);
    assert_eq!(
        scan.segment_ids_read().len(),
        1,
        "the all-null segment is skipped"
    );
}
