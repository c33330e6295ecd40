//! The disclosure policy: thresholds an operator sets for the whole warehouse and a
//! study may only tighten.

use serde::{Deserialize, Serialize};

use crate::DisclosureError;

/// How strictly a table is protected before release.
///
/// Read from TOML with every field optional (missing fields take the defaults) and
/// unknown fields refused, so a typo such as `min_cout = 20` fails loudly instead of
/// silently leaving the default in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Counts from 1 to `min_count - 1` are redacted; 0 is released. 0 or 1 disables
    /// primary suppression.
    pub min_count: u64,
    /// Released counts are rounded to the nearest multiple of this, halves up. 1 means
    /// no rounding; 0 is invalid.
    pub rounding: u64,
    /// A table with more rows than this is refused.
    pub max_rows: usize,
    /// An encoded (IPC) table larger than this is refused; see [`check_bytes`].
    pub max_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_count: 8,
            rounding: 5,
            max_rows: 5000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl Policy {
    /// Checks that the policy can be applied at all.
    pub fn validate(&self) -> Result<(), DisclosureError> {
        if self.rounding == 0 {
            return Err(DisclosureError::InvalidPolicy {
                field: "rounding",
                message: "must be at least 1 (1 means no rounding)".into(),
            });
        }
        Ok(())
    }

    /// Refuses this (study) policy if it is weaker than the operator's in any field.
    ///
    /// Rounding must be a multiple of the operator's, not merely larger: rounding to 7
    /// where the operator asked for 5 would let a researcher combine the two bases and
    /// narrow a count down below what the operator's rounding hides. Every weak field
    /// is named in the message, not just the first.
    pub fn at_least(&self, operator: &Policy) -> Result<(), DisclosureError> {
        operator.validate()?;
        self.validate()?;
        let mut weaker = Vec::new();
        if self.min_count < operator.min_count {
            weaker.push(format!(
                "min_count {} is below the operator's minimum of {}",
                self.min_count, operator.min_count
            ));
        }
        if self.rounding < operator.rounding || !self.rounding.is_multiple_of(operator.rounding) {
            weaker.push(format!(
                "rounding {} is not a multiple of the operator's rounding {}",
                self.rounding, operator.rounding
            ));
        }
        if self.max_rows > operator.max_rows {
            weaker.push(format!(
                "max_rows {} is above the operator's cap of {}",
                self.max_rows, operator.max_rows
            ));
        }
        if self.max_bytes > operator.max_bytes {
            weaker.push(format!(
                "max_bytes {} is above the operator's cap of {}",
                self.max_bytes, operator.max_bytes
            ));
        }
        if weaker.is_empty() {
            Ok(())
        } else {
            Err(DisclosureError::Refused(format!(
                "study policy is weaker than the operator's: {}",
                weaker.join("; ")
            )))
        }
    }
}

/// Refuses an encoded table of `len` bytes if it exceeds `policy.max_bytes`.
///
/// The caller holds the IPC bytes the study returned, so it checks them before even
/// decoding; [`crate::apply`] only sees the decoded batch.
pub fn check_bytes(len: usize, policy: &Policy) -> Result<(), DisclosureError> {
    if len > policy.max_bytes {
        return Err(DisclosureError::Refused(format!(
            "output is {len} bytes, above max_bytes {}",
            policy.max_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(result: Result<(), DisclosureError>) -> String {
        match result {
            Err(DisclosureError::Refused(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_min_count_8_rounding_5_5000_rows_16_mib() {
        let policy = Policy::default();
        assert_eq!(policy.min_count, 8);
        assert_eq!(policy.rounding, 5);
        assert_eq!(policy.max_rows, 5000);
        assert_eq!(policy.max_bytes, 16 * 1024 * 1024);
    }

    #[test]
    fn an_empty_toml_table_gives_the_defaults() {
        let policy: Policy = toml::from_str("").unwrap();
        assert_eq!(policy, Policy::default());
    }

    #[test]
    fn toml_fields_override_only_what_they_name() {
        let policy: Policy = toml::from_str("min_count = 11\nrounding = 10").unwrap();
        assert_eq!(policy.min_count, 11);
        assert_eq!(policy.rounding, 10);
        assert_eq!(policy.max_rows, 5000);
    }

    #[test]
    fn a_misspelt_toml_field_is_an_error_not_a_silent_default() {
        let error = toml::from_str::<Policy>("min_cout = 20").unwrap_err();
        assert!(error.to_string().contains("min_cout"), "{error}");
    }

    #[test]
    fn a_stricter_study_policy_is_accepted() {
        let operator = Policy::default();
        let study = Policy {
            min_count: 10,
            rounding: 10,
            max_rows: 100,
            max_bytes: 1024,
        };
        study.at_least(&operator).unwrap();
        operator.at_least(&operator).unwrap();
    }

    #[test]
    fn a_lower_min_count_is_refused_naming_the_field() {
        let study = Policy {
            min_count: 5,
            ..Policy::default()
        };
        let message = refusal(study.at_least(&Policy::default()));
        assert!(message.contains("min_count 5"), "{message}");
    }

    #[test]
    fn rounding_that_is_larger_but_not_a_multiple_is_refused() {
        let study = Policy {
            rounding: 7,
            ..Policy::default()
        };
        let message = refusal(study.at_least(&Policy::default()));
        assert!(message.contains("rounding 7"), "{message}");
        let lower = Policy {
            rounding: 1,
            ..Policy::default()
        };
        assert!(refusal(lower.at_least(&Policy::default())).contains("rounding 1"));
    }

    #[test]
    fn higher_caps_are_refused_and_every_weak_field_is_named() {
        let study = Policy {
            max_rows: 10_000,
            max_bytes: usize::MAX,
            ..Policy::default()
        };
        let message = refusal(study.at_least(&Policy::default()));
        assert!(message.contains("max_rows 10000"), "{message}");
        assert!(message.contains("max_bytes"), "{message}");
    }

    #[test]
    fn rounding_to_zero_is_an_invalid_policy_rather_than_a_division_by_zero() {
        let zero = Policy {
            rounding: 0,
            ..Policy::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(DisclosureError::InvalidPolicy {
                field: "rounding",
                ..
            })
        ));
        assert!(Policy::default().at_least(&zero).is_err());
        assert!(zero.at_least(&Policy::default()).is_err());
    }

    #[test]
    fn check_bytes_refuses_only_above_the_cap() {
        let policy = Policy {
            max_bytes: 100,
            ..Policy::default()
        };
        check_bytes(100, &policy).unwrap();
        assert!(refusal(check_bytes(101, &policy)).contains("101 bytes"));
    }
}
