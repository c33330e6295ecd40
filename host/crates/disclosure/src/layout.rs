//! Reads the kind of every column from its field metadata and resolves the references
//! between columns (share → numerator/denominator, total → parts, count → patients)
//! once, before any value is looked at, so that a malformed table fails the same way
//! whatever its data.

use std::collections::HashMap;

use arrow_schema::{DataType, Field, Fields, Schema};

use crate::DisclosureError;
use crate::metadata::{COUNT, DENOMINATOR, KIND, NUMERATOR, PATIENTS, SHARE, TOTAL_OF};

/// What a column is. Count and share references are *count slots*: indices into
/// [`Layout::counts`], not column indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dimension,
    Count {
        slot: usize,
    },
    Share {
        numerator: usize,
        denominator: usize,
    },
}

/// A row-total relation: in every row, `total` = sum of `parts` (all count slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Total {
    pub total: usize,
    pub parts: Vec<usize>,
}

/// A patients link: in every row, the cell of `patients` holds the distinct patients
/// behind the cell of `count` (both count slots). The two are withheld together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link {
    pub count: usize,
    pub patients: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// One entry per column of the table, in order.
    pub kinds: Vec<Kind>,
    /// Column index of each count slot.
    pub counts: Vec<usize>,
    /// Column indices of the dimension columns.
    pub dimensions: Vec<usize>,
    pub totals: Vec<Total>,
    /// In column order of the linking count column; a patients slot is the target of
    /// at most one link.
    pub links: Vec<Link>,
}

impl Layout {
    pub fn parse(schema: &Schema) -> Result<Layout, DisclosureError> {
        let fields = schema.fields();
        let mut by_name = HashMap::with_capacity(fields.len());
        for (index, field) in fields.iter().enumerate() {
            if by_name.insert(field.name().as_str(), index).is_some() {
                return Err(DisclosureError::DuplicateColumn {
                    column: field.name().clone(),
                });
            }
        }

        // First pass: the kind of each column on its own, so that references in the
        // second pass can check that they point at counts.
        let mut kinds = Vec::with_capacity(fields.len());
        let mut counts = Vec::new();
        let mut dimensions = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            let kind = match field.metadata().get(KIND).map(String::as_str) {
                None => {
                    misplaced(field, &[NUMERATOR, DENOMINATOR], SHARE)?;
                    misplaced(field, &[TOTAL_OF, PATIENTS], COUNT)?;
                    dimensions.push(index);
                    Kind::Dimension
                }
                Some(COUNT) => {
                    misplaced(field, &[NUMERATOR, DENOMINATOR], SHARE)?;
                    check_type(field, COUNT, is_integer)?;
                    counts.push(index);
                    Kind::Count {
                        slot: counts.len() - 1,
                    }
                }
                Some(SHARE) => {
                    misplaced(field, &[TOTAL_OF, PATIENTS], COUNT)?;
                    check_type(field, SHARE, |t| is_integer(t) || is_float(t))?;
                    // Resolved below, once every count has its slot.
                    Kind::Share {
                        numerator: usize::MAX,
                        denominator: usize::MAX,
                    }
                }
                Some(other) => {
                    return Err(DisclosureError::UnknownKind {
                        column: field.name().clone(),
                        kind: other.to_owned(),
                    });
                }
            };
            kinds.push(kind);
        }

        // Second pass: resolve names to count slots.
        let resolver = Resolver {
            by_name: &by_name,
            kinds: &kinds,
            fields,
            counts: &counts,
        };
        let mut resolved = kinds.clone();
        let mut totals = Vec::new();
        let mut links: Vec<Link> = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            match &kinds[index] {
                Kind::Share { .. } => {
                    resolved[index] = Kind::Share {
                        numerator: resolver.one(field, NUMERATOR)?,
                        denominator: resolver.one(field, DENOMINATOR)?,
                    };
                }
                Kind::Count { slot } => {
                    if let Some(list) = field.metadata().get(TOTAL_OF) {
                        totals.push(resolver.total(field, *slot, list)?);
                    }
                    if field.metadata().contains_key(PATIENTS) {
                        let link = resolver.link(field, *slot, &links)?;
                        links.push(link);
                    }
                }
                Kind::Dimension => {}
            }
        }
        Ok(Layout {
            kinds: resolved,
            counts,
            dimensions,
            totals,
            links,
        })
    }
}

struct Resolver<'a> {
    by_name: &'a HashMap<&'a str, usize>,
    kinds: &'a [Kind],
    fields: &'a Fields,
    /// Column index of each count slot.
    counts: &'a [usize],
}

impl Resolver<'_> {
    /// The count slot of the column named by `key` on `field`, which must be present.
    fn one(&self, field: &Field, key: &'static str) -> Result<usize, DisclosureError> {
        let target = field.metadata().get(key).map(|v| v.trim()).unwrap_or("");
        if target.is_empty() {
            return Err(DisclosureError::MissingKey {
                column: field.name().clone(),
                key,
            });
        }
        self.slot(field, key, target)
    }

    fn slot(
        &self,
        field: &Field,
        key: &'static str,
        target: &str,
    ) -> Result<usize, DisclosureError> {
        let Some(&index) = self.by_name.get(target) else {
            return Err(DisclosureError::UnknownColumn {
                column: field.name().clone(),
                key,
                target: target.to_owned(),
            });
        };
        match self.kinds[index] {
            Kind::Count { slot } => Ok(slot),
            _ => Err(DisclosureError::NotACount {
                column: field.name().clone(),
                key,
                target: target.to_owned(),
            }),
        }
    }

    fn total(&self, field: &Field, total: usize, list: &str) -> Result<Total, DisclosureError> {
        let malformed = |message: String| DisclosureError::Malformed {
            column: field.name().clone(),
            message,
        };
        if list.trim().is_empty() {
            return Err(DisclosureError::MissingKey {
                column: field.name().clone(),
                key: TOTAL_OF,
            });
        }
        let mut parts = Vec::new();
        for name in list.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(malformed(format!("{TOTAL_OF} `{list}` has an empty name")));
            }
            let slot = self.slot(field, TOTAL_OF, name)?;
            if slot == total {
                return Err(malformed(format!("{TOTAL_OF} names the column itself")));
            }
            if parts.contains(&slot) {
                return Err(malformed(format!("{TOTAL_OF} names `{name}` twice")));
            }
            parts.push(slot);
        }
        Ok(Total { total, parts })
    }

    /// The patients link declared on count column `field` (slot `count`): it must name
    /// another count column, which no earlier column links to.
    fn link(&self, field: &Field, count: usize, links: &[Link]) -> Result<Link, DisclosureError> {
        let patients = self.one(field, PATIENTS)?;
        let malformed = |message: String| DisclosureError::Malformed {
            column: field.name().clone(),
            message,
        };
        if patients == count {
            return Err(malformed(format!("{PATIENTS} names the column itself")));
        }
        if let Some(earlier) = links.iter().find(|link| link.patients == patients) {
            let name = |slot: usize| self.fields[self.counts[slot]].name();
            return Err(malformed(format!(
                "{PATIENTS} names `{}`, which `{}` already names; a patients column \
                 belongs to one count column",
                name(patients),
                name(earlier.count)
            )));
        }
        Ok(Link { count, patients })
    }
}

/// Refuses metadata keys that the column's kind would ignore: a researcher who wrote
/// them expected them to protect something.
fn misplaced(
    field: &Field,
    keys: &[&'static str],
    allowed_on: &'static str,
) -> Result<(), DisclosureError> {
    match keys.iter().find(|key| field.metadata().contains_key(key)) {
        Some(key) => Err(DisclosureError::MisplacedKey {
            column: field.name().clone(),
            key,
            allowed_on,
        }),
        None => Ok(()),
    }
}

fn check_type(
    field: &Field,
    kind: &'static str,
    allowed: impl Fn(&DataType) -> bool,
) -> Result<(), DisclosureError> {
    if allowed(field.data_type()) {
        Ok(())
    } else {
        Err(DisclosureError::WrongType {
            column: field.name().clone(),
            kind,
            data_type: field.data_type().to_string(),
        })
    }
}

pub(crate) fn is_integer(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
    )
}

fn is_float(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Float16 | DataType::Float32 | DataType::Float64
    )
}
