//! The disclosure policy: thresholds an operator sets for the whole warehouse and a
//! study may only tighten.

use serde::{Deserialize, Serialize};

use crate::DisclosureError;

/// How strictly a table is protected before release.
///
/// Read from TOML with every field optional (missing fields take the defaults) and
/// unknown fields refused, so a typo such as `min_cout = 20` fails loudly instead of
/// silently leaving the default in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Counts from 1 to `min_count - 1` are redacted; 0 is released (withheld too when the
    /// table is perturbed: see [`crate::apply_perturbed`]). 0 or 1 disables
    /// primary suppression.
    pub min_count: u64,
    /// Released counts are rounded to the nearest multiple of this, halves up. 1 means
    /// no rounding; 0 is invalid.
    pub rounding: u64,
    /// A table with more rows than this is refused.
    pub max_rows: usize,
    /// An encoded (IPC) table larger than this is refused; see [`check_bytes`].
    pub max_bytes: usize,
    /// Scale `b` of the discrete Laplace noise added to every count from its cell key
    /// before suppression and rounding (see [`crate::noise`]); 0 turns it off. Applied
    /// only to tables whose cell keys the caller gives ([`crate::apply_perturbed`]).
    pub noise_scale: f64,
    /// The differential-privacy budget of a study on a dataset: the sum of the epsilons
    /// of its releases may not exceed it. Kept by the caller; 0 means no budget.
    pub epsilon_budget: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_count: 8,
            rounding: 5,
            max_rows: 5000,
            max_bytes: 16 * 1024 * 1024,
            noise_scale: DEFAULT_NOISE_SCALE,
            epsilon_budget: DEFAULT_EPSILON_BUDGET,
        }
    }
}

/// The default noise scale: a standard deviation of about 4.2, below the rounding
/// base's spread on the counts a surveillance table releases, and far above the 1 to 7
/// a differencing attack tries to recover.
pub const DEFAULT_NOISE_SCALE: f64 = 3.0;
/// The default budget of a study on a dataset (see SECURITY.md for what a release of the
/// shipped studies spends).
pub const DEFAULT_EPSILON_BUDGET: f64 = 2000.0;

impl Policy {
    /// Checks that the policy can be applied at all.
    pub fn validate(&self) -> Result<(), DisclosureError> {
        if self.rounding == 0 {
            return Err(DisclosureError::InvalidPolicy {
                field: "rounding",
                message: "must be at least 1 (1 means no rounding)".into(),
            });
        }
        if !(self.noise_scale.is_finite() && self.noise_scale >= 0.0) {
            return Err(DisclosureError::InvalidPolicy {
                field: "noise_scale",
                message: "must be a finite number, 0 or more (0 turns noise off)".into(),
            });
        }
        if !(self.epsilon_budget.is_finite() && self.epsilon_budget >= 0.0) {
            return Err(DisclosureError::InvalidPolicy {
                field: "epsilon_budget",
                message: "must be a finite number, 0 or more (0 means no budget)".into(),
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
        if self.noise_scale < operator.noise_scale {
            weaker.push(format!(
                "noise_scale {} is below the operator's {}",
                self.noise_scale, operator.noise_scale
            ));
        }
        let unbudgeted = |b: f64| b == 0.0;
        if !unbudgeted(operator.epsilon_budget)
            && (unbudgeted(self.epsilon_budget) || self.epsilon_budget > operator.epsilon_budget)
        {
            weaker.push(format!(
                "epsilon_budget {} is above the operator's {}",
                self.epsilon_budget, operator.epsilon_budget
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
            noise_scale: 4.0,
            epsilon_budget: 10.0,
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
    fn less_noise_or_a_larger_budget_than_the_operators_is_refused() {
        let study = Policy {
            noise_scale: 1.0,
            epsilon_budget: 0.0,
            ..Policy::default()
        };
        let message = refusal(study.at_least(&Policy::default()));
        assert!(message.contains("noise_scale 1"), "{message}");
        assert!(message.contains("epsilon_budget 0"), "{message}");
        let nan = Policy {
            noise_scale: f64::NAN,
            ..Policy::default()
        };
        assert!(matches!(
            nan.validate(),
            Err(DisclosureError::InvalidPolicy {
                field: "noise_scale",
                ..
            })
        ));
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
