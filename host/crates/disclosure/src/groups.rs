//! Which rows add up to a margin the researcher can derive.
//!
//! Along dimension `d`, the rows that agree on every *other* dimension are the cells of
//! one margin total (e.g. with dimensions `region` and `month`, all months of one region
//! add up to that region's total). We assume every such total is known to the
//! researcher, from this table's publication or another one, even though the table
//! does not contain it: that is the conservative assumption, and it is what makes a
//! lone redacted cell in a group recoverable by subtraction.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_cmp::make_comparator;
use arrow_schema::SortOptions;

use crate::DisclosureError;

/// The margin groups of a table: lists of row indices, each with at least two rows
/// (a group of one cell is its own margin and is protected by primary suppression
/// alone). The result depends only on the dimension columns, so it is computed once
/// and shared by every count column. With no dimension there is no group.
pub(crate) fn margin_groups(
    batch: &RecordBatch,
    dimensions: &[usize],
) -> Result<Vec<Vec<usize>>, DisclosureError> {
    let ids = dimensions
        .iter()
        .map(|&column| value_ids(batch, column))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = batch.num_rows();
    let mut groups = Vec::new();
    for along in 0..ids.len() {
        // Keyed by the ids of all dimensions but `along`; with a single dimension the
        // key is empty and the whole table is one group.
        let mut by_key: HashMap<Vec<u32>, Vec<usize>> = HashMap::new();
        let mut order = Vec::new();
        for row in 0..rows {
            let key: Vec<u32> = ids
                .iter()
                .enumerate()
                .filter(|(dimension, _)| *dimension != along)
                .map(|(_, column_ids)| column_ids[row])
                .collect();
            let members = by_key.entry(key.clone()).or_default();
            if members.is_empty() {
                order.push(key);
            }
            members.push(row);
        }
        // In order of first appearance, so that suppression is deterministic.
        for key in order {
            if let Some(members) = by_key.remove(&key)
                && members.len() >= 2
            {
                groups.push(members);
            }
        }
    }
    Ok(groups)
}

/// Dense ids for the values of one column: equal values (nulls equal to each other)
/// get the same id. Sorting with Arrow's comparator works for every comparable type
/// (strings, dates, dictionaries, structs...) without converting values to text.
fn value_ids(batch: &RecordBatch, column: usize) -> Result<Vec<u32>, DisclosureError> {
    let array = batch.column(column);
    let compare = make_comparator(array.as_ref(), array.as_ref(), SortOptions::default()).map_err(
        |error| DisclosureError::WrongType {
            column: batch.schema().field(column).name().clone(),
            kind: "dimension",
            data_type: format!("{} ({error})", array.data_type()),
        },
    )?;
    let mut rows: Vec<usize> = (0..batch.num_rows()).collect();
    rows.sort_by(|&a, &b| compare(a, b));
    let mut ids = vec![0u32; rows.len()];
    let mut next = 0u32;
    for (position, &row) in rows.iter().enumerate() {
        if position > 0 && compare(rows[position - 1], row).is_ne() {
            next += 1;
        }
        ids[row] = next;
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Int32Array, StringArray};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn equal_values_and_nulls_share_an_id() {
        let table = batch(vec![(
            "region",
            Arc::new(StringArray::from(vec![
                Some("b"),
                None,
                Some("a"),
                Some("b"),
                None,
            ])) as ArrayRef,
        )]);
        let ids = value_ids(&table, 0).unwrap();
        assert_eq!(ids[0], ids[3]);
        assert_eq!(ids[1], ids[4]);
        assert_ne!(ids[0], ids[2]);
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn one_dimension_makes_the_whole_table_one_group() {
        let table = batch(vec![(
            "region",
            Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
        )]);
        assert_eq!(margin_groups(&table, &[0]).unwrap(), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn two_dimensions_make_row_and_column_groups() {
        // region × month, 2 × 2:
        //   row 0: a/1, row 1: a/2, row 2: b/1, row 3: b/2
        let table = batch(vec![
            (
                "region",
                Arc::new(StringArray::from(vec!["a", "a", "b", "b"])) as ArrayRef,
            ),
            (
                "month",
                Arc::new(Int32Array::from(vec![1, 2, 1, 2])) as ArrayRef,
            ),
        ]);
        let groups = margin_groups(&table, &[0, 1]).unwrap();
        // Along region (same month): {0, 2}, {1, 3}; along month (same region): {0, 1}, {2, 3}.
        assert_eq!(groups, vec![vec![0, 2], vec![1, 3], vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn no_dimension_means_no_group_and_single_cells_are_not_groups() {
        let table = batch(vec![(
            "region",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        assert!(margin_groups(&table, &[]).unwrap().is_empty());
        assert!(margin_groups(&table, &[0]).unwrap().is_empty());
    }
}
