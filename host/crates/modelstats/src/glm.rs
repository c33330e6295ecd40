//! Generalised linear models fitted by iteratively reweighted least squares, the way
//! DataSHIELD's `ds.glm` fits them, on aggregated rows: every distinct feature vector once
//! with its number of rows and the sum of their outcomes. A design of a few categorical
//! features and small integers has few distinct vectors, so ten million rows fit in
//! memory as a few thousand patterns, and each iteration costs patterns × parameters².

use crate::linalg::{Matrix, cholesky, inverse_diagonal, solve};
use serde::Serialize;
use std::collections::HashMap;

/// The regression's family, with its canonical link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// A binary outcome (0 or 1), logit link.
    Logistic,
    /// A count outcome (0, 1, 2…), log link.
    Poisson,
}

/// One distinct feature vector: how many rows had it and the sum of their outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pattern {
    pub rows: f64,
    pub outcome_sum: f64,
}

/// Rows aggregated by feature vector.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    width: usize,
    index: HashMap<Vec<u64>, usize>,
    vectors: Vec<Vec<f64>>,
    totals: Vec<Pattern>,
}

impl Patterns {
    /// Patterns of vectors of `width` features.
    pub fn new(width: usize) -> Patterns {
        Patterns {
            width,
            ..Patterns::default()
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// Distinct feature vectors so far.
    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// Adds one row. The caller checked the width and that every value is finite.
    pub fn add(&mut self, features: &[f64], outcome: f64) {
        self.add_many(features, 1.0, outcome);
    }

    /// Adds `rows` rows of one feature vector whose outcomes sum to `outcome_sum`.
    pub fn add_many(&mut self, features: &[f64], rows: f64, outcome_sum: f64) {
        debug_assert_eq!(features.len(), self.width);
        // -0.0 and 0.0 are one value.
        let key: Vec<u64> = features.iter().map(|x| (x + 0.0).to_bits()).collect();
        let next = self.vectors.len();
        let at = *self.index.entry(key).or_insert(next);
        if at == next {
            self.vectors.push(features.to_vec());
            self.totals.push(Pattern::default());
        }
        self.totals[at].rows += rows;
        self.totals[at].outcome_sum += outcome_sum;
    }

    /// Rows added.
    pub fn rows(&self) -> f64 {
        self.totals.iter().map(|p| p.rows).sum()
    }

    /// Sum of the outcomes added (events, for a binary outcome).
    pub fn outcome_sum(&self) -> f64 {
        self.totals.iter().map(|p| p.outcome_sum).sum()
    }
}

/// A fitted regression.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub family: Family,
    /// The intercept, then one coefficient per feature, on the link scale.
    pub coefficients: Vec<f64>,
    pub standard_errors: Vec<f64>,
    /// 95% Wald intervals.
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    pub rows: f64,
    pub outcome_sum: f64,
    pub iterations: u32,
    pub deviance: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no rows to fit")]
    Empty,
    #[error(
        "the design is singular: a feature is constant, or a combination of the others, over the rows"
    )]
    Singular,
    #[error(
        "perfect separation: the features predict the outcome exactly for some rows, so the coefficients have no finite estimate"
    )]
    Separation,
    #[error("the fit did not converge in {0} iterations")]
    NoConvergence(u32),
}

const MAX_ITERATIONS: u32 = 50;
/// A logistic coefficient beyond this (odds ratios beyond e^25) only arises when the
/// likelihood has no maximum.
const SEPARATED: f64 = 25.0;

/// Fits `family` to `patterns`, with an intercept.
pub fn fit(family: Family, patterns: &Patterns) -> Result<Fit, FitError> {
    if patterns.is_empty() || patterns.rows() == 0.0 {
        return Err(FitError::Empty);
    }
    let p = patterns.width + 1;
    let design = |i: usize, j: usize| -> f64 {
        if j == 0 {
            1.0
        } else {
            patterns.vectors[i][j - 1]
        }
    };
    let mut beta = vec![0.0; p];
    // Start from the overall mean, as R's glm does.
    let mean = (patterns.outcome_sum() / patterns.rows()).clamp(1e-6, 1.0 - 1e-6);
    beta[0] = match family {
        Family::Logistic => (mean / (1.0 - mean)).ln(),
        Family::Poisson => (patterns.outcome_sum() / patterns.rows()).max(1e-6).ln(),
    };
    let mut deviance = f64::INFINITY;
    for iteration in 1..=MAX_ITERATIONS {
        let mut xtwx = Matrix::zeros(p);
        let mut xtwz = vec![0.0; p];
        let mut new_deviance = 0.0;
        for (i, total) in patterns.totals.iter().enumerate() {
            let eta: f64 = (0..p).map(|j| design(i, j) * beta[j]).sum();
            let (weight, working) = match family {
                Family::Logistic => {
                    let mu = 1.0 / (1.0 + (-eta).exp());
                    let variance = (mu * (1.0 - mu)).max(1e-12);
                    let y = total.outcome_sum / total.rows;
                    new_deviance += binomial_deviance(total.rows, y, mu);
                    (total.rows * variance, eta + (y - mu) / variance)
                }
                Family::Poisson => {
                    let mu = total.rows * eta.exp();
                    let mu_safe = mu.max(1e-12);
                    new_deviance += poisson_deviance(total.outcome_sum, mu_safe);
                    (mu_safe, eta + (total.outcome_sum - mu_safe) / mu_safe)
                }
            };
            for (j, z) in xtwz.iter_mut().enumerate() {
                let xj = design(i, j);
                *z += xj * weight * working;
                for k in 0..=j {
                    xtwx.add(j, k, xj * weight * design(i, k));
                }
            }
        }
        for j in 0..p {
            for k in j + 1..p {
                let v = xtwx.at(k, j);
                xtwx.values[j * p + k] = v;
            }
        }
        let l = cholesky(&xtwx).ok_or(if iteration > 1 && family == Family::Logistic {
            FitError::Separation
        } else {
            FitError::Singular
        })?;
        beta = solve(&l, &xtwz);
        if family == Family::Logistic && beta.iter().any(|b| b.abs() > SEPARATED) {
            return Err(FitError::Separation);
        }
        let converged = (deviance - new_deviance).abs() / (new_deviance.abs() + 0.1) < 1e-10;
        deviance = new_deviance;
        if converged {
            let variances = inverse_diagonal(&l);
            let standard_errors: Vec<f64> = variances.iter().map(|v| v.sqrt()).collect();
            return Ok(Fit {
                family,
                lower: beta
                    .iter()
                    .zip(&standard_errors)
                    .map(|(b, s)| b - 1.959_964 * s)
                    .collect(),
                upper: beta
                    .iter()
                    .zip(&standard_errors)
                    .map(|(b, s)| b + 1.959_964 * s)
                    .collect(),
                coefficients: beta,
                standard_errors,
                rows: patterns.rows(),
                outcome_sum: patterns.outcome_sum(),
                iterations: iteration,
                deviance,
            });
        }
    }
    Err(FitError::NoConvergence(MAX_ITERATIONS))
}

fn binomial_deviance(rows: f64, y: f64, mu: f64) -> f64 {
    let term = |a: f64, b: f64| if a > 0.0 { a * (a / b).ln() } else { 0.0 };
    2.0 * rows * (term(y, mu.max(1e-300)) + term(1.0 - y, (1.0 - mu).max(1e-300)))
}

fn poisson_deviance(y: f64, mu: f64) -> f64 {
    let term = if y > 0.0 { y * (y / mu).ln() } else { 0.0 };
    2.0 * (term - (y - mu))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic generator of uniforms in (0, 1).
    struct Uniform(u64);

    impl Uniform {
        fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
    }

    #[test]
    fn a_logistic_fit_recovers_the_coefficients_it_was_drawn_from() {
        let truth = [-2.0, 0.8, -0.5, 0.03];
        let mut u = Uniform(7);
        let mut patterns = Patterns::new(3);
        for _ in 0..200_000 {
            let sex = f64::from(u.next() < 0.5);
            let home = f64::from(u.next() < 0.3);
            let age = (u.next() * 90.0).floor();
            let eta = truth[0] + truth[1] * sex + truth[2] * home + truth[3] * age;
            let y = f64::from(u.next() < 1.0 / (1.0 + (-eta).exp()));
            patterns.add(&[sex, home, age], y);
        }
        assert!(patterns.len() <= 2 * 2 * 90);
        let fit = fit(Family::Logistic, &patterns).unwrap();
        for (j, &b) in truth.iter().enumerate() {
            assert!(
                fit.lower[j] <= b && b <= fit.upper[j],
                "coefficient {j}: {b} not in [{}, {}]",
                fit.lower[j],
                fit.upper[j]
            );
        }
        assert_eq!(fit.rows, 200_000.0);
    }

    #[test]
    fn a_poisson_fit_recovers_rates() {
        // Two groups with rates 0.5 and 1.5 per row: log rates -0.693 and +0.405.
        let mut patterns = Patterns::new(1);
        for i in 0..10_000 {
            patterns.add(&[0.0], f64::from(i % 2 == 0));
            patterns.add(&[1.0], [1.0, 2.0][i % 2]);
        }
        let fit = fit(Family::Poisson, &patterns).unwrap();
        assert!((fit.coefficients[0] - 0.5f64.ln()).abs() < 1e-9, "{fit:?}");
        assert!((fit.coefficients[1] - 3.0f64.ln()).abs() < 1e-9, "{fit:?}");
    }

    #[test]
    fn a_hand_checked_two_by_two_table_gives_its_log_odds_ratio() {
        // Exposed: 30 events of 100; unexposed: 10 of 100. log OR = ln((30/70)/(10/90)).
        let mut patterns = Patterns::new(1);
        for i in 0..100 {
            patterns.add(&[1.0], f64::from(i < 30));
            patterns.add(&[0.0], f64::from(i < 10));
        }
        let fit = fit(Family::Logistic, &patterns).unwrap();
        let log_or = ((30.0 / 70.0) / (10.0 / 90.0f64)).ln();
        assert!((fit.coefficients[1] - log_or).abs() < 1e-8, "{fit:?}");
        // Its standard error is sqrt(1/30 + 1/70 + 1/10 + 1/90).
        let se = (1.0 / 30.0 + 1.0 / 70.0 + 1.0 / 10.0 + 1.0 / 90.0f64).sqrt();
        assert!((fit.standard_errors[1] - se).abs() < 1e-6, "{fit:?}");
    }

    #[test]
    fn perfect_separation_and_a_constant_feature_are_refused() {
        let mut separated = Patterns::new(1);
        for i in 0..50 {
            separated.add(&[f64::from(i % 2)], f64::from(i % 2));
        }
        assert_eq!(fit(Family::Logistic, &separated), Err(FitError::Separation));
        let mut constant = Patterns::new(1);
        for i in 0..50 {
            constant.add(&[1.0], f64::from(i % 3 == 0));
        }
        assert_eq!(fit(Family::Logistic, &constant), Err(FitError::Singular));
        assert_eq!(
            fit(Family::Logistic, &Patterns::new(2)),
            Err(FitError::Empty)
        );
    }
}
