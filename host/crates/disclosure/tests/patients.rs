//! Distinct-patient counts: a count column linked by `carrel.patients` to the column of
//! the distinct patients behind it, the two withheld together.

mod common;

use common::*;

#[test]
fn a_cell_of_many_consultations_of_few_patients_is_withheld() {
    let table = Table::new()
        .dimension("region", &["north", "south", "east"])
        .linked("visits", &[20, 40, 60], "visits_patients")
        .count("visits_patients", &[3, 25, 30])
        .build();
    let released = release_with(&table, &no_rounding());
    // 20 is not small, but 3 patients are: both go. The column margins then take the
    // south row of each, together.
    assert_eq!(counts(&released, "visits"), vec![None, None, Some(60)]);
    assert_eq!(
        counts(&released, "visits_patients"),
        vec![None, None, Some(30)]
    );
    let report = &released.report.counts;
    assert_eq!((report[0].primary, report[0].secondary), (1, 1));
    assert_eq!((report[1].primary, report[1].secondary), (1, 1));

    // Without the link the 20 consultations would be released.
    let unlinked = Table::new()
        .count("visits", &[20])
        .count("visits_patients", &[3])
        .build();
    let released = release_with(&unlinked, &no_rounding());
    assert_eq!(counts(&released, "visits"), vec![Some(20)]);
    assert_eq!(counts(&released, "visits_patients"), vec![None]);
}

#[test]
fn a_small_consultation_count_withholds_its_patient_count_as_primary() {
    let table = Table::new()
        .linked("visits", &[5], "visits_patients")
        .count("visits_patients", &[5])
        .linked("calls", &[0], "calls_patients")
        .count("calls_patients", &[0])
        .build();
    let released = release(&table);
    assert_eq!(counts(&released, "visits"), vec![None]);
    assert_eq!(counts(&released, "visits_patients"), vec![None]);
    // Empty cells are not people, linked or not.
    assert_eq!(counts(&released, "calls"), vec![Some(0)]);
    assert_eq!(counts(&released, "calls_patients"), vec![Some(0)]);
    // Each cell is reported once, as primary.
    let primary: Vec<u64> = released.report.counts.iter().map(|c| c.primary).collect();
    assert_eq!(primary, vec![1, 1, 0, 0]);
    assert_eq!(released.report.total_redacted(), 2);
}

#[test]
fn a_withheld_patient_count_withholds_its_consultation_count_and_the_reverse() {
    // A consultation count withheld by a row total (the 3 of unknown sex would be
    // `all - visits`) withholds its patient count, which no sum involves.
    let table = Table::new()
        .linked("visits", &[20], "visits_patients")
        .count("visits_patients", &[12])
        .count("unknown", &[3])
        .total("all", &[23], "visits,unknown")
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "unknown"), vec![None]);
    assert_eq!(counts(&released, "visits"), vec![None]);
    assert_eq!(counts(&released, "visits_patients"), vec![None]);
    assert_eq!(counts(&released, "all"), vec![Some(23)]);
    let report = &released.report.counts;
    assert_eq!((report[0].primary, report[0].secondary), (0, 1));
    assert_eq!((report[1].primary, report[1].secondary), (0, 1));

    // A patient count withheld by a row total of patients withholds its consultation
    // count, which no sum involves.
    let table = Table::new()
        .linked("visits", &[20], "visits_patients")
        .count("visits_patients", &[12])
        .count("unknown_patients", &[3])
        .total("all_patients", &[15], "visits_patients,unknown_patients")
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "visits_patients"), vec![None]);
    assert_eq!(counts(&released, "visits"), vec![None]);
    assert_eq!(counts(&released, "all_patients"), vec![Some(15)]);
    let report = &released.report.counts;
    assert_eq!((report[0].primary, report[0].secondary), (0, 1));
    assert_eq!((report[1].primary, report[1].secondary), (0, 1));
}

#[test]
fn secondary_suppression_follows_a_linked_redaction() {
    // One row. The patients total comes first, so its sum is examined (and found
    // clean) before anything is withheld; it must be examined again once `f_patients`
    // is withheld as the partner of `f`.
    //
    // 3 consultations of unknown sex are withheld; `all` = f + m + unknown would give
    // them away, so the smaller part, f, goes too, and f_patients with it. Then
    // `all_patients` = f_patients + m_patients would give f_patients away, so
    // m_patients goes, and m with it.
    let table = Table::new()
        .count("f_patients", &[20])
        .count("m_patients", &[30])
        .total("all_patients", &[50], "f_patients,m_patients")
        .linked("f", &[40], "f_patients")
        .linked("m", &[50], "m_patients")
        .count("unknown", &[3])
        .total("all", &[93], "f,m,unknown")
        .build();
    let released = release_with(&table, &no_rounding());
    for withheld in ["unknown", "f", "f_patients", "m_patients", "m"] {
        assert_eq!(counts(&released, withheld), vec![None], "{withheld}");
    }
    assert_eq!(counts(&released, "all_patients"), vec![Some(50)]);
    assert_eq!(counts(&released, "all"), vec![Some(93)]);
    let json = serde_json::to_value(&released.report).unwrap();
    assert_eq!(
        json["counts"],
        serde_json::json!([
            {"column": "f_patients", "primary": 0, "secondary": 1},
            {"column": "m_patients", "primary": 0, "secondary": 1},
            {"column": "all_patients", "primary": 0, "secondary": 0},
            {"column": "f", "primary": 0, "secondary": 1},
            {"column": "m", "primary": 0, "secondary": 1},
            {"column": "unknown", "primary": 1, "secondary": 0},
            {"column": "all", "primary": 0, "secondary": 0},
        ])
    );
    assert_eq!(released.report.total_redacted(), 5);
}

#[test]
fn shares_and_rounding_of_linked_counts_are_unchanged() {
    let table = Table::new()
        .dimension("region", &["north", "south", "east"])
        .linked("visits", &[20, 42, 63], "visits_patients")
        .count("visits_patients", &[3, 21, 33])
        .share("per_patient", "visits", "visits_patients", 3)
        .build();
    let released = release(&table);
    assert_eq!(counts(&released, "visits"), vec![None, None, Some(65)]);
    assert_eq!(
        counts(&released, "visits_patients"),
        vec![None, None, Some(35)]
    );
    assert_eq!(
        shares(&released, "per_patient"),
        vec![None, None, Some(65.0 / 35.0)]
    );
    assert_eq!(released.report.shares_redacted, 2);
}
