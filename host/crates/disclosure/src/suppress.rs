//! Primary and secondary cell suppression over the count cells of a table.
//!
//! Secondary suppression works on *relations*: sets of cells whose sum is known to the
//! researcher (a margin group, whose total we assume is derivable, or a row total and
//! its parts, all in the table). If exactly one cell of a relation is redacted, it can
//! be recovered by subtraction, so a second one is redacted. Redacting that second
//! cell can leave another relation with a lone redaction, so the rule is applied until
//! nothing changes; a work list re-examines only the relations of newly redacted cells.
//!
//! A count cell and its patients cell (a [`Link`]) are one disclosure: whatever redacts
//! one redacts the other, and both then count as newly redacted.

use std::collections::VecDeque;

use crate::layout::{Link, Total};

/// The count cells of a table, column (count slot) by column.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    rows: usize,
    slots: usize,
    values: Vec<u64>,
    redacted: Vec<bool>,
    /// Redacted by secondary suppression (or as the partner of such a cell).
    secondary: Vec<bool>,
}

/// How many cells of each count slot were redacted, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub primary: Vec<u64>,
    pub secondary: Vec<u64>,
}

impl Grid {
    /// `columns[slot][row]`; every column must have `rows` values.
    pub fn new(rows: usize, columns: Vec<Vec<u64>>) -> Grid {
        // Kept apart from `values.len() / rows`, which says nothing when there are no rows.
        let slots = columns.len();
        let values: Vec<u64> = columns.into_iter().flatten().collect();
        let redacted = vec![false; values.len()];
        Grid {
            rows,
            slots,
            secondary: redacted.clone(),
            values,
            redacted,
        }
    }

    /// The grid of the rows `keep` marks, in order.
    pub fn retain_rows(&self, keep: &[bool]) -> Grid {
        let kept: Vec<usize> = (0..self.rows).filter(|&r| keep[r]).collect();
        let pick = |of: &Vec<u64>| -> Vec<u64> {
            (0..self.slots)
                .flat_map(|slot| kept.iter().map(move |&r| of[slot * self.rows + r]))
                .collect()
        };
        let flags = |of: &Vec<bool>| -> Vec<bool> {
            (0..self.slots)
                .flat_map(|slot| kept.iter().map(move |&r| of[slot * self.rows + r]))
                .collect()
        };
        Grid {
            rows: kept.len(),
            slots: self.slots,
            values: pick(&self.values),
            redacted: flags(&self.redacted),
            secondary: flags(&self.secondary),
        }
    }

    /// Rows with at least one count that is not redacted.
    pub fn rows_with_a_released_count(&self) -> Vec<bool> {
        (0..self.rows)
            .map(|row| (0..self.slots).any(|slot| !self.is_redacted(slot, row)))
            .collect()
    }

    /// How many cells of each slot are redacted, and why.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally {
            primary: vec![0; self.slots],
            secondary: vec![0; self.slots],
        };
        for cell in 0..self.values.len() {
            if self.secondary[cell] {
                tally.secondary[cell / self.rows] += 1;
            } else if self.redacted[cell] {
                tally.primary[cell / self.rows] += 1;
            }
        }
        tally
    }

    fn cell(&self, slot: usize, row: usize) -> usize {
        slot * self.rows + row
    }

    fn slots(&self) -> usize {
        self.slots
    }

    pub fn value(&self, slot: usize, row: usize) -> u64 {
        self.values[self.cell(slot, row)]
    }

    pub fn is_redacted(&self, slot: usize, row: usize) -> bool {
        self.redacted[self.cell(slot, row)]
    }
}

/// A set of cells adding up to something the researcher knows. `fallback` (if any) is
/// a member redacted only when no other member can be: the total of a row-total
/// relation, so that parts are preferred, as a total is usually the figure wanted.
struct Relation {
    members: Vec<usize>,
    fallback: Option<usize>,
}

/// Redacts every count in `1..min_count` (primary; `0..min_count` when `zeros_withheld`,
/// as in a perturbed table, where a 0 must look like a small count), then applies secondary
/// suppression over the margin `groups` of every count slot and the row `totals`.
/// The two cells of a row joined by a patients `link` are always redacted together,
/// for the reason that redacted the first of them.
pub(crate) fn suppress(
    grid: &mut Grid,
    min_count: u64,
    zeros_withheld: bool,
    groups: &[Vec<usize>],
    totals: &[Total],
    links: &[Link],
) -> Tally {
    let slots = grid.slots();
    let mut tally = Tally {
        primary: vec![0; slots],
        secondary: vec![0; slots],
    };
    // Links both ways, so that either cell of a pair withholds the other.
    let mut partners: Vec<Vec<usize>> = vec![Vec::new(); slots];
    for link in links {
        partners[link.count].push(link.patients);
        partners[link.patients].push(link.count);
    }

    for cell in 0..grid.values.len() {
        let value = grid.values[cell];
        if (value >= 1 || zeros_withheld) && value < min_count && !grid.redacted[cell] {
            for redacted in withhold(grid, &partners, cell) {
                tally.primary[redacted / grid.rows] += 1;
            }
        }
    }

    let relations = relations(grid, groups, totals);
    let mut of_cell: Vec<Vec<usize>> = vec![Vec::new(); grid.values.len()];
    for (index, relation) in relations.iter().enumerate() {
        for &cell in &relation.members {
            of_cell[cell].push(index);
        }
    }

    let mut queue: VecDeque<usize> = (0..relations.len()).collect();
    let mut queued = vec![true; relations.len()];
    while let Some(index) = queue.pop_front() {
        queued[index] = false;
        let Some(cell) = second_cell(grid, &relations[index]) else {
            continue;
        };
        // The partners too, and the relations of every cell redacted here are looked at
        // again: a partner can leave a lone redaction in a sum its own cell is not in.
        for redacted in withhold(grid, &partners, cell) {
            grid.secondary[redacted] = true;
            tally.secondary[redacted / grid.rows] += 1;
            for &other in &of_cell[redacted] {
                if !queued[other] {
                    queued[other] = true;
                    queue.push_back(other);
                }
            }
        }
    }
    tally
}

/// Redacts `cell`, which is not yet redacted, and every cell of its row linked to it,
/// directly or through other links; returns the cells it redacted.
fn withhold(grid: &mut Grid, partners: &[Vec<usize>], cell: usize) -> Vec<usize> {
    let row = cell % grid.rows;
    grid.redacted[cell] = true;
    let mut redacted = vec![cell];
    let mut next = 0;
    while let Some(&cell) = redacted.get(next) {
        next += 1;
        for &slot in &partners[cell / grid.rows] {
            let partner = grid.cell(slot, row);
            if !grid.redacted[partner] {
                grid.redacted[partner] = true;
                redacted.push(partner);
            }
        }
    }
    redacted
}

fn relations(grid: &Grid, groups: &[Vec<usize>], totals: &[Total]) -> Vec<Relation> {
    let mut relations = Vec::new();
    for slot in 0..grid.slots() {
        for group in groups {
            relations.push(Relation {
                members: group.iter().map(|&row| grid.cell(slot, row)).collect(),
                fallback: None,
            });
        }
    }
    for total in totals {
        for row in 0..grid.rows {
            let total_cell = grid.cell(total.total, row);
            let mut members: Vec<usize> = total.parts.iter().map(|&p| grid.cell(p, row)).collect();
            members.push(total_cell);
            relations.push(Relation {
                members,
                fallback: Some(total_cell),
            });
        }
    }
    relations
}

/// The cell to redact so that `relation` no longer has a lone redacted cell, if it has
/// one: the smallest non-zero other member, else a zero member (redacting a zero
/// protects less, since a researcher may know a cell is structurally zero), else the
/// fallback. Ties go to the first column, then the first row, so results are
/// reproducible.
fn second_cell(grid: &Grid, relation: &Relation) -> Option<usize> {
    let members = &relation.members;
    if members.len() < 2 || members.iter().filter(|&&c| grid.redacted[c]).count() != 1 {
        return None;
    }
    members
        .iter()
        .copied()
        .filter(|&c| !grid.redacted[c] && Some(c) != relation.fallback)
        .min_by_key(|&c| (grid.values[c] == 0, grid.values[c], c))
        .or(relation.fallback.filter(|&c| !grid.redacted[c]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(grid: &Grid, slot: usize) -> Vec<bool> {
        (0..grid.rows)
            .map(|row| grid.is_redacted(slot, row))
            .collect()
    }

    #[test]
    fn counts_below_the_minimum_but_not_zero_are_redacted() {
        let mut grid = Grid::new(4, vec![vec![0, 1, 7, 8]]);
        let tally = suppress(&mut grid, 8, false, &[], &[], &[]);
        assert_eq!(redacted(&grid, 0), vec![false, true, true, false]);
        assert_eq!(tally.primary, vec![2]);
        assert_eq!(tally.secondary, vec![0]);
    }

    #[test]
    fn a_lone_redaction_in_a_group_takes_the_smallest_non_zero_other_cell() {
        let mut grid = Grid::new(4, vec![vec![3, 0, 40, 20]]);
        let tally = suppress(&mut grid, 8, false, &[vec![0, 1, 2, 3]], &[], &[]);
        assert_eq!(redacted(&grid, 0), vec![true, false, false, true]);
        assert_eq!(tally.secondary, vec![1]);
    }

    #[test]
    fn a_zero_cell_is_taken_only_when_no_non_zero_cell_is_left() {
        let mut grid = Grid::new(2, vec![vec![3, 0]]);
        suppress(&mut grid, 8, false, &[vec![0, 1]], &[], &[]);
        assert_eq!(redacted(&grid, 0), vec![true, true]);
    }

    #[test]
    fn a_total_is_redacted_only_when_no_part_is_left() {
        // total = only part: redacting the part alone would show it in the total.
        let mut grid = Grid::new(1, vec![vec![3], vec![3]]);
        let totals = [Total {
            total: 1,
            parts: vec![0],
        }];
        let tally = suppress(&mut grid, 8, false, &[], &totals, &[]);
        assert!(grid.is_redacted(1, 0));
        assert_eq!(tally.primary, vec![1, 1]);
        assert_eq!(tally.secondary, vec![0, 0]);

        let mut grid = Grid::new(1, vec![vec![3], vec![30]]);
        suppress(&mut grid, 8, false, &[], &totals, &[]);
        assert!(grid.is_redacted(1, 0), "30 = 3 would be recoverable");
    }

    #[test]
    fn a_small_patients_cell_withholds_its_count_cell_as_primary() {
        // Slot 0: consultations, slot 1: their patients.
        let mut grid = Grid::new(2, vec![vec![20, 40], vec![3, 30]]);
        let links = [Link {
            count: 0,
            patients: 1,
        }];
        let tally = suppress(&mut grid, 8, false, &[], &[], &links);
        assert_eq!(redacted(&grid, 0), vec![true, false]);
        assert_eq!(redacted(&grid, 1), vec![true, false]);
        assert_eq!(tally.primary, vec![1, 1]);
        assert_eq!(tally.secondary, vec![0, 0]);
    }

    #[test]
    fn links_are_followed_through_a_chain_and_both_ways() {
        // 0 → 1 → 2: a redaction anywhere in the chain withholds the whole chain.
        let mut grid = Grid::new(1, vec![vec![40], vec![30], vec![3]]);
        let links = [
            Link {
                count: 0,
                patients: 1,
            },
            Link {
                count: 1,
                patients: 2,
            },
        ];
        let tally = suppress(&mut grid, 8, false, &[], &[], &links);
        assert!((0..3).all(|slot| grid.is_redacted(slot, 0)));
        assert_eq!(tally.primary, vec![1, 1, 1]);
    }

    #[test]
    fn an_empty_grid_suppresses_nothing() {
        let mut grid = Grid::new(0, vec![vec![], vec![]]);
        let tally = suppress(&mut grid, 8, false, &[], &[], &[]);
        assert_eq!(tally.primary, vec![0, 0]);
        assert_eq!(tally.secondary, vec![0, 0]);
    }
}
