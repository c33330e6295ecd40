//! The run's values of the parameters a study's manifest declares
//! (`params = { name = ["value1", "value2"] }`). The host checks each value against the
//! declared ones before the study runs and passes no other parameter (`from`, `to` and
//! `by` are the host's own), so a study only reads them.

use std::fmt::Display;
use std::str::FromStr;

use crate::error::StudyError;

/// The `(name, value)` pairs of one run, in the order the host gives them. Names are
/// unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The parameters of a run; a name given twice is an error.
    pub fn new<I, K, V>(pairs: I) -> Result<Params, StudyError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = Params::default();
        for (name, value) in pairs {
            let name = name.into();
            if params.get(&name).is_some() {
                return Err(StudyError::failed(format!(
                    "parameter `{name}` is given more than once"
                )));
            }
            params.pairs.push((name, value.into()));
        }
        Ok(params)
    }

    /// The value of `name`, if the run gives it. A declared parameter the run does not
    /// set is absent: decide its default in the study.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, or an error saying it is missing.
    pub fn required(&self, name: &str) -> Result<&str, StudyError> {
        self.get(name)
            .ok_or_else(|| StudyError::failed(format!("parameter `{name}` is required")))
    }

    /// `name` parsed as a `T` (with [`FromStr`]), or `default` when it is not given:
    /// `params.parse("min_age", 0u8)?` for `params = { min_age = ["15", "65"] }`.
    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, StudyError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        value.trim().parse().map_err(|error: T::Err| {
            StudyError::failed(format!(
                "parameter `{name}`: `{value}` is not a valid {}: {error}",
                short_type_name::<T>()
            ))
        })
    }

    /// Every `(name, value)`, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// `u32` rather than `core::primitive::u32`.
fn short_type_name<T>() -> &'static str {
    let name = std::any::type_name::<T>();
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().copied()).unwrap()
    }

    #[test]
    fn values_are_found_by_name() {
        let p = params(&[("op", "count"), ("variant", "strict")]);
        assert_eq!(p.get("variant"), Some("strict"));
        assert_eq!(p.get("to"), None);
        assert_eq!(p.required("op"), Ok("count"));
        assert_eq!(
            p.required("to").unwrap_err().message(),
            "parameter `to` is required"
        );
        assert_eq!(p.len(), 2);
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            [("op", "count"), ("variant", "strict")]
        );
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let error = Params::new([("a", "1"), ("a", "2")]).unwrap_err();
        assert!(error.message().contains("`a`"), "{error}");
    }

    #[test]
    fn parse_uses_the_default_and_explains_bad_values() {
        let p = params(&[("min_age", " 15 "), ("max_age", "old")]);
        assert_eq!(p.parse("min_age", 0u8), Ok(15));
        assert_eq!(p.parse("missing", 7u8), Ok(7));
        assert_eq!(
            p.parse("max_age", 0u8).unwrap_err().message(),
            "parameter `max_age`: `old` is not a valid u8: invalid digit found in string"
        );
    }
}
