//! Primary suppression, rounding and secondary suppression through `apply`.

mod common;

use common::*;

#[test]
fn a_count_of_3_is_redacted_and_a_count_of_0_is_kept() {
    // No dimension, so no margin: only primary suppression applies.
    let table = Table::new()
        .count("cases", &[3])
        .count("deaths", &[0])
        .build();
    let released = release(&table);
    assert_eq!(counts(&released, "cases"), vec![None]);
    assert_eq!(counts(&released, "deaths"), vec![Some(0)]);
    assert_eq!(released.report.counts[0].primary, 1);
    assert_eq!(released.report.counts[1].primary, 0);
    assert_eq!(released.report.total_redacted(), 1);
}

#[test]
fn every_count_from_1_to_7_is_redacted_and_8_is_not() {
    let table = Table::new().count("n", &[1, 7, 8]).build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "n"), vec![None, None, Some(8)]);
}

#[test]
fn released_counts_are_rounded_to_the_nearest_5_with_halves_up() {
    let table = Table::new()
        .count("a", &[12])
        .count("b", &[13])
        .count("c", &[0])
        .count("d", &[10])
        .build();
    let released = release(&table);
    let row: Vec<_> = ["a", "b", "c", "d"]
        .iter()
        .map(|name| counts(&released, name)[0])
        .collect();
    assert_eq!(row, vec![Some(10), Some(15), Some(0), Some(10)]);
}

#[test]
fn rounding_of_1_releases_exact_counts() {
    let table = Table::new().count("a", &[13]).build();
    assert_eq!(
        counts(&release_with(&table, &no_rounding()), "a"),
        vec![Some(13)]
    );
}

#[test]
fn with_one_dimension_a_lone_redaction_takes_the_smallest_other_non_zero_cell() {
    let table = Table::new()
        .dimension("region", &["north", "south", "east", "west"])
        .count("cases", &[3, 0, 40, 20])
        .build();
    let released = release_with(&table, &no_rounding());
    // The column total (63) is assumed known: 3 would be 63 - 0 - 40 - 20.
    assert_eq!(
        counts(&released, "cases"),
        vec![None, Some(0), Some(40), None]
    );
    assert_eq!(released.report.counts[0].primary, 1);
    assert_eq!(released.report.counts[0].secondary, 1);
}

#[test]
fn two_redactions_in_a_group_need_no_secondary_suppression() {
    let table = Table::new()
        .dimension("region", &["north", "south", "east"])
        .count("cases", &[3, 5, 40])
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "cases"), vec![None, None, Some(40)]);
    assert_eq!(released.report.counts[0].secondary, 0);
}

#[test]
fn across_two_dimensions_secondary_redactions_are_iterated_until_no_lone_redaction_is_left() {
    //            jan  feb  mar
    //   north     3   50   60
    //   south    20   30   40
    //   east     70   80   90
    // 3 is alone in the north row and in the jan column, so feb/north (50) and
    // jan/south (20) are redacted; jan/south is then alone in the south row, so
    // feb/south (30) is too, which also pairs with feb/north in the feb column.
    let region = [
        "north", "north", "north", "south", "south", "south", "east", "east", "east",
    ];
    let month = [
        "jan", "feb", "mar", "jan", "feb", "mar", "jan", "feb", "mar",
    ];
    let table = Table::new()
        .dimension("region", &region)
        .dimension("month", &month)
        .count("cases", &[3, 50, 60, 20, 30, 40, 70, 80, 90])
        .build();
    let released = release_with(&table, &no_rounding());
    let redacted: Vec<bool> = counts(&released, "cases")
        .iter()
        .map(Option::is_none)
        .collect();
    assert_eq!(
        redacted,
        vec![true, true, false, true, true, false, false, false, false]
    );
    assert_eq!(released.report.counts[0].primary, 1);
    assert_eq!(released.report.counts[0].secondary, 3);
}

#[test]
fn each_count_column_is_protected_on_its_own_margins() {
    let table = Table::new()
        .dimension("region", &["north", "south"])
        .count("cases", &[3, 40])
        .count("visits", &[30, 40])
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "cases"), vec![None, None]);
    assert_eq!(counts(&released, "visits"), vec![Some(30), Some(40)]);
}

#[test]
fn a_row_total_with_one_redacted_part_gets_a_second_part_redacted() {
    let table = Table::new()
        .dimension("region", &["north"])
        .count("male", &[3])
        .count("female", &[20])
        .total("all", &[23], "male,female")
        .build();
    let released = release(&table);
    assert_eq!(counts(&released, "male"), vec![None]);
    assert_eq!(counts(&released, "female"), vec![None], "20 = 23 - 3");
    assert_eq!(counts(&released, "all"), vec![Some(25)]);
    assert_eq!(released.report.counts[1].secondary, 1);
}

#[test]
fn a_redacted_total_whose_parts_are_all_released_gets_a_part_redacted() {
    // `sub` is redacted as the partner of `other` in `all = sub + other`; it could
    // then be recomputed as a + b, so the smaller of a and b goes too.
    let table = Table::new()
        .count("a", &[10])
        .count("b", &[20])
        .total("sub", &[30], "a, b")
        .count("other", &[3])
        .total("all", &[33], "sub,other")
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "other"), vec![None]);
    assert_eq!(counts(&released, "sub"), vec![None]);
    assert_eq!(counts(&released, "a"), vec![None]);
    assert_eq!(counts(&released, "b"), vec![Some(20)]);
    assert_eq!(counts(&released, "all"), vec![Some(33)]);
    assert_eq!(released.report.total_redacted(), 3);
}

#[test]
fn a_total_with_a_single_part_is_itself_redacted_with_that_part() {
    let table = Table::new()
        .count("cases", &[3])
        .total("all", &[3], "cases")
        .build();
    let released = release(&table);
    assert_eq!(counts(&released, "all"), vec![None]);
}

#[test]
fn the_report_names_every_count_column_in_order_and_holds_no_values() {
    let table = Table::new()
        .dimension("region", &["north", "south", "east"])
        .count("cases", &[3, 9, 40])
        .count("visits", &[100, 200, 300])
        .build();
    let report = release(&table).report;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rows": 3,
            "counts": [
                {"column": "cases", "primary": 1, "secondary": 1},
                {"column": "visits", "primary": 0, "secondary": 0},
            ],
            "shares_redacted": 0,
            "total_redacted": 2,
            "rows_withheld": 0,
            "perturbation": null,
        })
    );
}
