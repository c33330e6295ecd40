mod common;

use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, Date32Array, ListArray, RecordBatch, StringArray, UInt8Array, UInt16Array,
};
use arrow_schema::{DataType, Field, Schema};
use carrel_vault::consultation::{consultation_column_groups, consultation_schema};
use carrel_vault::{ColumnGroups, SegmentDamage, VaultError, VerifyReport};
use common::{ACTOR, DATASET, consultation_batch, read_all, vault_with_consultations};

#[test]
fn every_canonical_column_survives_append_and_scan_including_nulls_and_empty_lists() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    let first = consultation_batch(0, 1000);
    let second = consultation_batch(1000, 537);
    // The generator must exercise what this test claims to cover.
    assert!(first.column_by_name("hour").unwrap().null_count() > 0);
    assert!(first.column_by_name("departement").unwrap().null_count() > 0);
    let diagnoses = first
        .column_by_name("diagnoses")
        .unwrap()
        .as_any()
        .downcast_ref::<ListArray>()
        .unwrap();
    assert!((0..diagnoses.len()).any(|i| diagnoses.value_length(i) == 0));
    vault.append(DATASET, &first, ACTOR).unwrap();
    vault.append(DATASET, &second, ACTOR).unwrap();
    let expected =
        arrow_select::concat::concat_batches(&first.schema(), &[first.clone(), second]).unwrap();
    assert_eq!(read_all(&vault, DATASET), expected);
}

#[test]
fn nullable_lists_with_null_entries_and_null_items_survive() {
    let dir = tempfile::tempdir().unwrap();
    let vault = common::vault_with_consultations(dir.path());
    let schema = Schema::new(vec![
        Field::new("code", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
        Field::new("count", DataType::UInt8, true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            true,
        ),
    ]);
    let groups = ColumnGroups::new()
        .with_group("a", &["code", "day"])
        .with_group("b", &["count", "tags"]);
    vault
        .create_dataset("sparse", &schema, &groups, ACTOR)
        .unwrap();
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.append_value([Some("x"), None]);
    tags.append_null();
    tags.append_value(Vec::<Option<&str>>::new());
    tags.append_value([Some("")]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![
            Some("é"),
            None,
            Some(""),
            Some("z"),
        ])),
        Arc::new(Date32Array::from(vec![
            None,
            Some(-1),
            Some(0),
            Some(20_000),
        ])),
        Arc::new(UInt8Array::from(vec![Some(0), Some(255), None, None])),
        Arc::new(tags.finish()),
    ];
    let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
    vault.append("sparse", &batch, ACTOR).unwrap();
    assert_eq!(read_all(&vault, "sparse"), batch);
}

#[test]
fn reading_one_group_decrypts_only_that_group() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    for start in [0, 100, 200] {
        vault
            .append(DATASET, &consultation_batch(start, 100), ACTOR)
            .unwrap();
    }
    let mut scan = vault.scan(DATASET, &["sex", "age_years"]).unwrap();
    let batches: Vec<RecordBatch> = scan.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 3);
    assert_eq!(
        scan.stats().groups_decrypted,
        3,
        "one demographics group per segment, nothing else"
    );
    assert_eq!(
        batches[1].column(0),
        consultation_batch(100, 100).column_by_name("sex").unwrap()
    );
}

#[test]
fn damaged_group_that_was_not_requested_does_not_stop_a_read_of_another() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    vault
        .append(DATASET, &consultation_batch(0, 100), ACTOR)
        .unwrap();
    let segment = &vault.segments(DATASET).unwrap()[0];
    // Blocks follow the header in group name order, so the file ends with the tag of
    // `identifiers`, the last group alphabetically.
    let mut bytes = std::fs::read(&segment.file).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(&segment.file, bytes).unwrap();

    let demographics: Vec<RecordBatch> = vault
        .scan(DATASET, &["sex", "departement"])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(demographics[0].num_rows(), 100);
    let identifiers = vault
        .scan(DATASET, &["patient_id"])
        .unwrap()
        .next()
        .unwrap();
    assert!(matches!(
        identifiers,
        Err(VaultError::Segment { damage: SegmentDamage::AuthenticationFailed { ref group }, .. }) if group == "identifiers"
    ));
}

#[test]
fn scan_returns_requested_columns_in_order_and_names_the_segments_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    vault
        .append(DATASET, &consultation_batch(0, 10), ACTOR)
        .unwrap();
    vault
        .append(DATASET, &consultation_batch(10, 20), ACTOR)
        .unwrap();
    let mut scan = vault
        .scan(DATASET, &["outcome", "date", "consultation_id"])
        .unwrap();
    assert_eq!(scan.segments_planned(), 2);
    let names: Vec<String> = scan
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(names, ["outcome", "date", "consultation_id"]);
    let rows: usize = scan.by_ref().map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 30);
    let ids: Vec<String> = vault
        .segments(DATASET)
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(scan.segment_ids_read(), ids.as_slice());
}

#[test]
fn append_with_a_different_schema_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    let batch = consultation_batch(0, 5);
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let hour = batch.schema().index_of("hour").unwrap();
    fields[hour] = Field::new("hour", DataType::UInt16, true);
    let mut columns = batch.columns().to_vec();
    columns[hour] = Arc::new(UInt16Array::from(vec![Some(1); 5]));
    let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let error = vault.append(DATASET, &wrong, ACTOR).unwrap_err();
    assert!(
        matches!(&error, VaultError::SchemaMismatch { field, .. } if field == "hour"),
        "{error}"
    );
    assert!(vault.segments(DATASET).unwrap().is_empty());
}

#[test]
fn older_segments_read_as_nulls_in_a_column_added_by_a_new_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    vault
        .append(DATASET, &consultation_batch(0, 4), ACTOR)
        .unwrap();
    let mut fields: Vec<Field> = consultation_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("triage", DataType::UInt8, true));
    let schema_v2 = Arc::new(Schema::new(fields));
    let groups_v2 = consultation_column_groups().with_group("encounter", &["triage"]);
    assert_eq!(
        vault
            .add_schema_version(DATASET, &schema_v2, &groups_v2, ACTOR)
            .unwrap(),
        2
    );

    let old_shape = vault
        .append(DATASET, &consultation_batch(4, 2), ACTOR)
        .unwrap_err();
    assert!(
        matches!(&old_shape, VaultError::SchemaMismatch { field, .. } if field == "triage"),
        "{old_shape}"
    );
    let mut columns = consultation_batch(4, 2).columns().to_vec();
    columns.push(Arc::new(UInt8Array::from(vec![3, 5])));
    vault
        .append(
            DATASET,
            &RecordBatch::try_new(schema_v2, columns).unwrap(),
            ACTOR,
        )
        .unwrap();

    let batches: Vec<RecordBatch> = vault
        .scan(DATASET, &["triage", "sex"])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches[0].column(0).null_count(), 4);
    assert_eq!(
        batches[1].column(0).as_ref(),
        &UInt8Array::from(vec![3, 5]) as &dyn Array
    );
}

#[test]
fn unknown_columns_and_empty_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    assert!(
        matches!(vault.scan(DATASET, &["name"]), Err(VaultError::UnknownColumn { column, .. }) if column == "name")
    );
    assert!(matches!(
        vault.scan(DATASET, &[]),
        Err(VaultError::NoColumnsRequested)
    ));
    assert!(matches!(
        vault.scan("nope", &["sex"]),
        Err(VaultError::UnknownDataset(_))
    ));
    assert_eq!(vault.scan(DATASET, &["sex"]).unwrap().count(), 0);
}

#[test]
fn appends_from_several_threads_get_distinct_positions_and_all_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(vault_with_consultations(dir.path()));
    let threads: Vec<_> = (0..4u64)
        .map(|thread| {
            let vault = Arc::clone(&vault);
            std::thread::spawn(move || {
                for round in 0..5u64 {
                    let start = (thread * 5 + round) * 50;
                    vault
                        .append(DATASET, &consultation_batch(start, 50), ACTOR)
                        .unwrap();
                    // Interleave reads with the appends of the other threads.
                    let rows: usize = vault
                        .scan(DATASET, &["hour"])
                        .unwrap()
                        .map(|b| b.unwrap().num_rows())
                        .sum();
                    assert!(rows >= 50);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let positions: Vec<u64> = vault
        .segments(DATASET)
        .unwrap()
        .iter()
        .map(|s| s.position)
        .collect();
    assert_eq!(positions, (0..20).collect::<Vec<_>>());
    let mut ids: Vec<String> = read_all(&vault, DATASET)
        .column_by_name("consultation_id")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = consultation_batch(0, 1000)
        .column_by_name("consultation_id")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_owned())
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!(vault.verify_segments(DATASET).unwrap(), 20);
    // key.init, dataset.create, then one dataset.append per segment.
    assert!(matches!(
        vault.audit().verify().unwrap(),
        VerifyReport::Intact { entries: 22, .. }
    ));
}

#[test]
fn segment_spanning_many_chunks_round_trips_and_a_flip_in_a_middle_chunk_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    // About 5 MB of identifiers: several 1 MiB chunks, decrypted on more than one thread.
    let batch = consultation_batch(0, 40_000);
    vault.append(DATASET, &batch, ACTOR).unwrap();
    assert_eq!(read_all(&vault, DATASET), batch);

    let segment = &vault.segments(DATASET).unwrap()[0];
    let mut bytes = std::fs::read(&segment.file).unwrap();
    let inside_identifiers = bytes.len() - 2_500_000;
    bytes[inside_identifiers] ^= 0x20;
    std::fs::write(&segment.file, bytes).unwrap();
    let error = vault
        .scan(DATASET, &["patient_id"])
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(
        error,
        VaultError::Segment { damage: SegmentDamage::AuthenticationFailed { ref group }, .. } if group == "identifiers"
    ));
    assert_eq!(
        vault
            .scan(DATASET, &["outcome"])
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .num_rows(),
        40_000
    );
}
