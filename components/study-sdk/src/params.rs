//! The parameters a study is run with: `name=value` pairs chosen by the researcher at
//! submission, read through small helpers that turn a bad value into a clear
//! [`StudyError::InvalidParams`].

use std::fmt::Display;
use std::str::FromStr;

use crate::calendar::parse_date;
use crate::error::StudyError;

/// The `(name, value)` pairs of one run, in the order given. Names are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The parameters of a run; a name given twice is an invalid-params error.
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
                return Err(StudyError::invalid_params(format!(
                    "parameter `{name}` is given more than once"
                )));
            }
            params.pairs.push((name, value.into()));
        }
        Ok(params)
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, value)| value.as_str())
    }

    /// The value of `name`, or an invalid-params error saying it is missing.
    pub fn required(&self, name: &str) -> Result<&str, StudyError> {
        self.get(name)
            .ok_or_else(|| StudyError::invalid_params(format!("parameter `{name}` is required")))
    }

    /// `name` parsed as a `T` (with [`FromStr`], surrounding spaces ignored), or
    /// `default` when it is not given: `params.parse("min_age", 0u8)?`.
    pub fn parse<T>(&self, name: &str, default: T) -> Result<T, StudyError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse_optional(name)?.unwrap_or(default))
    }

    /// `name` parsed as a `T`, or `None` when it is not given.
    pub fn parse_optional<T>(&self, name: &str) -> Result<Option<T>, StudyError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        value.trim().parse().map(Some).map_err(|error: T::Err| {
            StudyError::invalid_params(format!(
                "parameter `{name}`: `{value}` is not a valid {}: {error}",
                short_type_name::<T>()
            ))
        })
    }

    /// `name` when it is one of `choices`, `default` when it is not given, else an
    /// invalid-params error listing the choices.
    pub fn one_of<'a>(
        &'a self,
        name: &str,
        choices: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str, StudyError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) if choices.contains(&value) => Ok(value),
            Some(value) => Err(StudyError::invalid_params(format!(
                "parameter `{name}`: `{value}` is not one of {}",
                choices
                    .iter()
                    .map(|choice| format!("`{choice}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// `name` as a calendar date `YYYY-MM-DD`, or `None` when it is not given.
    pub fn date(&self, name: &str) -> Result<Option<&str>, StudyError> {
        match self.get(name) {
            None => Ok(None),
            Some(value) if parse_date(value).is_some() => Ok(Some(value)),
            Some(value) => Err(StudyError::invalid_params(format!(
                "parameter `{name}`: `{value}` is not a date YYYY-MM-DD"
            ))),
        }
    }

    /// An invalid-params error naming the first parameter not in `known`, so that a
    /// typo (`form` for `from`) is not silently ignored.
    pub fn expect_only(&self, known: &[&str]) -> Result<(), StudyError> {
        match self
            .pairs
            .iter()
            .find(|(name, _)| !known.contains(&name.as_str()))
        {
            None => Ok(()),
            Some((name, _)) => Err(StudyError::invalid_params(format!(
                "unknown parameter `{name}` (this study takes {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known
                        .iter()
                        .map(|known| format!("`{known}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))),
        }
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
        let p = params(&[("from", "2024-01-01"), ("by", "national")]);
        assert_eq!(p.get("by"), Some("national"));
        assert_eq!(p.get("to"), None);
        assert_eq!(p.required("from"), Ok("2024-01-01"));
        assert_eq!(
            p.required("to"),
            Err(StudyError::InvalidParams(
                "parameter `to` is required".into()
            ))
        );
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn a_name_given_twice_is_refused() {
        let error = Params::new([("a", "1"), ("a", "2")]).unwrap_err();
        assert!(matches!(error, StudyError::InvalidParams(m) if m.contains("`a`")));
    }

    #[test]
    fn parse_uses_the_default_and_explains_bad_values() {
        let p = params(&[("min_age", " 15 "), ("max_age", "old")]);
        assert_eq!(p.parse("min_age", 0u8), Ok(15));
        assert_eq!(p.parse("missing", 7u8), Ok(7));
        let error = p.parse("max_age", 0u8).unwrap_err();
        assert_eq!(
            error,
            StudyError::InvalidParams(
                "parameter `max_age`: `old` is not a valid u8: invalid digit found in string"
                    .into()
            )
        );
        assert_eq!(p.parse_optional::<u32>("missing"), Ok(None));
    }

    #[test]
    fn choices_and_dates_are_checked() {
        let p = params(&[
            ("by", "nation"),
            ("from", "2024-02-30"),
            ("to", "2024-02-29"),
        ]);
        let error = p
            .one_of("by", &["region,age_class", "national"], "region,age_class")
            .unwrap_err();
        assert!(error.message().contains("`national`"), "{error}");
        assert_eq!(p.one_of("other", &["x"], "x"), Ok("x"));
        assert!(p.date("from").is_err());
        assert_eq!(p.date("to"), Ok(Some("2024-02-29")));
        assert_eq!(p.date("missing"), Ok(None));
    }

    #[test]
    fn unknown_names_are_reported() {
        let p = params(&[("form", "2024-01-01")]);
        let error = p.expect_only(&["from", "to"]).unwrap_err();
        assert_eq!(
            error.message(),
            "unknown parameter `form` (this study takes `from`, `to`)"
        );
        assert!(
            params(&[("to", "2024-01-01")])
                .expect_only(&["from", "to"])
                .is_ok()
        );
    }
}
