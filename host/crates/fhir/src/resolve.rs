//! Finding the resource a reference points at, within one payload.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;

use crate::collect::{NIR_SYSTEMS, Resources};
use crate::problem::{IssueCode, Problems, clip};
use crate::raw::{Identifier, Reference};
use crate::reference::{Kind, Target, parse_reference};

/// Why a reference could not be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// Neither `reference` nor `identifier` is set.
    Empty,
    NotFound,
    WrongType {
        found: String,
    },
    Ambiguous(usize),
    Contained,
    Unreadable(&'static str),
}

impl Unresolved {
    pub(crate) fn code(&self) -> IssueCode {
        match self {
            Unresolved::Empty => IssueCode::Required,
            Unresolved::NotFound => IssueCode::NotFound,
            Unresolved::WrongType { .. } | Unresolved::Ambiguous(_) => IssueCode::Invalid,
            Unresolved::Contained => IssueCode::NotSupported,
            Unresolved::Unreadable(_) => IssueCode::Value,
        }
    }

    pub(crate) fn message(&self, reference: &Reference<'_>, expected: Kind) -> String {
        let shown = match (&reference.reference, &reference.identifier) {
            (Some(text), _) => format!("`{}`", clip(text)),
            (None, Some(identifier)) => format!(
                "identifier `{}|{}`",
                clip(identifier.system.as_deref().unwrap_or("")),
                clip(identifier.value.as_deref().unwrap_or(""))
            ),
            (None, None) => String::new(),
        };
        let expected = expected.name();
        match self {
            Unresolved::Empty => format!("the reference to a {expected} is empty"),
            Unresolved::NotFound => {
                format!("{shown} points at no {expected} in this payload")
            }
            Unresolved::WrongType { found } => {
                format!(
                    "{shown} points at a {}, where a {expected} is expected",
                    clip(found)
                )
            }
            Unresolved::Ambiguous(count) => {
                format!("{shown} matches {count} {expected} resources, where one is expected")
            }
            Unresolved::Contained => {
                format!(
                    "{shown} points at a contained resource, which is not read: send the {expected} as its own resource"
                )
            }
            Unresolved::Unreadable(why) => format!("{shown} cannot be read: {why}"),
        }
    }
}

/// A candidate for an identifier lookup: its type, identifier system and position.
type IdentifierHolder<'c> = (Kind, Option<&'c str>, usize);

/// The value under which an identifier is indexed and searched: a NIR without the
/// spaces people write it with, any other identifier as it is.
fn identifier_key<'v>(system: Option<&str>, value: &'v str) -> Cow<'v, str> {
    let is_nir = system.is_some_and(|system| NIR_SYSTEMS.contains(&system));
    if is_nir && value.contains(char::is_whitespace) {
        Cow::Owned(value.chars().filter(|c| !c.is_whitespace()).collect())
    } else {
        Cow::Borrowed(value)
    }
}

/// Lookups by id, fullUrl and (built only when a reference needs it) identifier.
pub(crate) struct Index<'c> {
    resources: &'c Resources<'c>,
    by_id: HashMap<(Kind, &'c str), usize>,
    by_full_url: HashMap<&'c str, (Kind, usize)>,
    by_identifier: OnceCell<HashMap<Cow<'c, str>, Vec<IdentifierHolder<'c>>>>,
}

impl<'c> Index<'c> {
    /// Indexes every resource, reporting ids and fullUrls that appear twice.
    pub(crate) fn build(resources: &'c Resources<'c>, problems: &mut Problems) -> Index<'c> {
        let total = resources.len();
        let mut by_id = HashMap::with_capacity(total);
        let mut by_full_url = HashMap::new();
        for kind in [Kind::Patient, Kind::Encounter, Kind::Condition] {
            for position in 0..resources.count(kind) {
                let (id, full_url, site) = resources.keys(kind, position);
                if let Some(id) = id
                    && let Some(&first) = by_id.get(&(kind, id))
                {
                    problems.push(
                        IssueCode::Duplicate,
                        site.element(kind.name(), "id"),
                        format!(
                            "{}/{} appears twice (first at {})",
                            kind.name(),
                            clip(id),
                            resources.keys(kind, first).2.resource()
                        ),
                    );
                } else if let Some(id) = id {
                    by_id.insert((kind, id), position);
                }
                if let Some(full_url) = full_url {
                    if by_full_url.contains_key(full_url) {
                        problems.push(
                            IssueCode::Duplicate,
                            site.full_url(),
                            format!("fullUrl `{}` is used by two entries", clip(full_url)),
                        );
                    } else {
                        by_full_url.insert(full_url, (kind, position));
                    }
                }
            }
        }
        Index {
            resources,
            by_id,
            by_full_url,
            by_identifier: OnceCell::new(),
        }
    }

    fn identifiers(&self) -> &HashMap<Cow<'c, str>, Vec<IdentifierHolder<'c>>> {
        self.by_identifier.get_or_init(|| {
            let mut map: HashMap<Cow<'c, str>, Vec<IdentifierHolder<'c>>> = HashMap::new();
            for kind in [Kind::Patient, Kind::Encounter, Kind::Condition] {
                for position in 0..self.resources.count(kind) {
                    for identifier in self.resources.identifiers(kind, position) {
                        if let Some(value) = identifier.value.as_deref() {
                            let system = identifier.system.as_deref();
                            map.entry(identifier_key(system, value))
                                .or_default()
                                .push((kind, system, position));
                        }
                    }
                }
            }
            map
        })
    }

    /// Finds the one resource of `expected` type holding the identifier; a `Some("")`
    /// system asks for an identifier without a system, `None` for any system.
    fn by_identifier(
        &self,
        expected: Kind,
        system: Option<&str>,
        value: &str,
    ) -> Result<usize, Unresolved> {
        let mut found = None;
        let mut matches = 0;
        let key = identifier_key(system, value);
        for &(kind, held_system, position) in self.identifiers().get(&key).into_iter().flatten() {
            let system_matches = match system {
                None => true,
                Some("") => held_system.is_none_or(str::is_empty),
                Some(wanted) => held_system == Some(wanted),
            };
            if kind == expected && system_matches && found != Some(position) {
                found = Some(position);
                matches += 1;
            }
        }
        match (found, matches) {
            (Some(position), 1) => Ok(position),
            (None, _) => Err(Unresolved::NotFound),
            (_, count) => Err(Unresolved::Ambiguous(count)),
        }
    }

    fn by_type_and_id(
        &self,
        expected: Kind,
        type_name: &str,
        id: &str,
    ) -> Result<usize, Unresolved> {
        if type_name != expected.name() {
            return Err(Unresolved::WrongType {
                found: type_name.to_owned(),
            });
        }
        self.by_id
            .get(&(expected, id))
            .copied()
            .ok_or(Unresolved::NotFound)
    }

    fn by_full_url(&self, expected: Kind, full_url: &str) -> Option<Result<usize, Unresolved>> {
        let &(kind, position) = self.by_full_url.get(full_url)?;
        Some(if kind == expected {
            Ok(position)
        } else {
            Err(Unresolved::WrongType {
                found: kind.name().to_owned(),
            })
        })
    }

    /// The position (within its type) of the resource `reference` points at.
    pub(crate) fn resolve(
        &self,
        reference: &Reference<'_>,
        expected: Kind,
    ) -> Result<usize, Unresolved> {
        let Some(text) = reference.reference.as_deref() else {
            return match &reference.identifier {
                Some(Identifier {
                    system,
                    value: Some(value),
                }) => self.by_identifier(expected, system.as_deref(), value),
                _ => Err(Unresolved::Empty),
            };
        };
        match parse_reference(text) {
            Target::TypeAndId { type_name, id } => self.by_type_and_id(expected, type_name, id),
            Target::Urn { full_url, id } => self
                .by_full_url(expected, full_url)
                .unwrap_or_else(|| self.by_type_and_id(expected, expected.name(), id)),
            Target::Absolute { full_url, tail } => self
                .by_full_url(expected, full_url)
                .unwrap_or_else(|| match tail {
                    Some((type_name, id)) => self.by_type_and_id(expected, type_name, id),
                    None => Err(Unresolved::NotFound),
                }),
            Target::Identifier {
                type_name,
                system,
                value,
            } => {
                if type_name != expected.name() {
                    return Err(Unresolved::WrongType {
                        found: type_name.to_owned(),
                    });
                }
                self.by_identifier(expected, system.as_deref(), &value)
            }
            Target::Contained => Err(Unresolved::Contained),
            Target::Unreadable(why) => Err(Unresolved::Unreadable(why)),
        }
    }
}
