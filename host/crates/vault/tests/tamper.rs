mod common;

use carrel_vault::consultation::{consultation_column_groups, consultation_schema};
use carrel_vault::{SegmentDamage, SegmentInfo, Vault, VaultError};
use common::{ACTOR, DATASET, consultation_batch, vault_with_consultations};

const ALL_COLUMNS: [&str; 11] = [
    "consultation_id",
    "patient_id",
    "association",
    "date",
    "hour",
    "age_years",
    "sex",
    "departement",
    "visit_type",
    "diagnoses",
    "outcome",
];

/// Three segments of 100 rows each.
fn vault_with_three_segments(dir: &std::path::Path) -> (Vault, Vec<SegmentInfo>) {
    let vault = vault_with_consultations(dir);
    for start in [0, 100, 200] {
        vault
            .append(DATASET, &consultation_batch(start, 100), ACTOR)
            .unwrap();
    }
    let segments = vault.segments(DATASET).unwrap();
    (vault, segments)
}

/// Scans everything and returns the error, which must name `dataset` and `segment`.
fn scan_error(vault: &Vault, dataset: &str, segment: &str) -> SegmentDamage {
    let error = vault
        .scan(dataset, &ALL_COLUMNS)
        .unwrap()
        .find_map(Result::err)
        .expect("the scan reports the damage");
    let message = error.to_string();
    assert!(
        message.contains(dataset) && message.contains(segment),
        "message names neither: {message}"
    );
    match error {
        VaultError::Segment {
            dataset: named_dataset,
            segment: named_segment,
            damage,
        } => {
            assert_eq!(
                (named_dataset.as_str(), named_segment.as_str()),
                (dataset, segment)
            );
            damage
        }
        other => panic!("expected a segment error, got {other}"),
    }
}

#[test]
fn flipped_byte_in_segment_names_dataset_and_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    let target = &segments[1];
    let mut bytes = std::fs::read(&target.file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&target.file, bytes).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &target.id),
        SegmentDamage::AuthenticationFailed { .. }
    ));
    let checked = vault.verify_segments(DATASET).unwrap_err();
    assert!(
        matches!(checked, VaultError::Segment { damage: SegmentDamage::ChecksumMismatch, ref segment, .. } if *segment == target.id)
    );
}

#[test]
fn flipped_byte_in_segment_header_names_dataset_and_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    let target = &segments[0];
    let mut bytes = std::fs::read(&target.file).unwrap();
    bytes[16] ^= 0x01; // inside the dataset name
    std::fs::write(&target.file, bytes).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &target.id),
        SegmentDamage::Misplaced { .. }
    ));
}

#[test]
fn truncated_segment_names_dataset_and_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    let target = &segments[2];
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&target.file)
        .unwrap();
    file.set_len(target.bytes - 100).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &target.id),
        SegmentDamage::Truncated { .. }
    ));
    file.set_len(7).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &target.id),
        SegmentDamage::Truncated { .. }
    ));
}

#[test]
fn segment_moved_to_another_dataset_names_the_dataset_and_segment_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    vault
        .create_dataset(
            "copy",
            &consultation_schema(),
            &consultation_column_groups(),
            ACTOR,
        )
        .unwrap();
    vault
        .append("copy", &consultation_batch(0, 100), ACTOR)
        .unwrap();
    let victim = &vault.segments("copy").unwrap()[0];
    std::fs::copy(&segments[0].file, &victim.file).unwrap();
    let damage = scan_error(&vault, "copy", &victim.id);
    assert_eq!(
        damage,
        SegmentDamage::Misplaced {
            dataset: DATASET.into(),
            segment: segments[0].id.clone(),
            position: 0
        }
    );
}

#[test]
fn segments_swapped_between_positions_name_dataset_and_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    let swap = segments[0].file.with_extension("swap");
    std::fs::rename(&segments[0].file, &swap).unwrap();
    std::fs::rename(&segments[1].file, &segments[0].file).unwrap();
    std::fs::rename(&swap, &segments[1].file).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &segments[0].id),
        SegmentDamage::Misplaced { position: 1, .. }
    ));
}

#[test]
fn segment_with_a_forged_header_fails_authentication_at_its_new_position() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    // Identical rows make identical sizes, so only the cryptography can tell them apart.
    vault
        .append(DATASET, &consultation_batch(0, 100), ACTOR)
        .unwrap();
    vault
        .append(DATASET, &consultation_batch(0, 100), ACTOR)
        .unwrap();
    let segments = vault.segments(DATASET).unwrap();
    // Copy segment 1 over segment 0 and rewrite its header to claim segment 0's identity.
    let mut bytes = std::fs::read(&segments[1].file).unwrap();
    let id_start = 12 + 2 + DATASET.len() + 2;
    bytes[id_start..id_start + 32].copy_from_slice(segments[0].id.as_bytes());
    bytes[id_start + 32..id_start + 40].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(bytes.len() as u64, segments[0].bytes);
    std::fs::write(&segments[0].file, bytes).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &segments[0].id),
        SegmentDamage::AuthenticationFailed { .. }
    ));
}

#[test]
fn deleted_segment_file_names_dataset_and_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, segments) = vault_with_three_segments(dir.path());
    std::fs::remove_file(&segments[1].file).unwrap();
    assert!(matches!(
        scan_error(&vault, DATASET, &segments[1].id),
        SegmentDamage::Missing { .. }
    ));
}
