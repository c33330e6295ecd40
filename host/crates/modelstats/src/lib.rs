//! Model statistics that the host computes itself, never a study.
//!
//! - [`glm`]: logistic and Poisson regressions fitted by iteratively reweighted least
//!   squares on aggregated rows (each distinct feature vector once, with its number of rows
//!   and the sum of its outcomes), with standard errors and 95% confidence intervals.
//! - [`evaluation`]: the performance of a model from the host's counts of rows per score
//!   bin and outcome: AUROC with a 95% confidence interval, sensitivity, specificity, PPV
//!   and NPV at thresholds, calibration by decile and its slope and intercept.
//!
//! Nothing here reads a row: the inputs are counts and aggregated patterns the host made.

pub mod evaluation;
pub mod glm;
mod linalg;

pub use evaluation::{BinCounts, Calibration, Evaluation, ThresholdMetrics, evaluate};
pub use glm::{Family, Fit, FitError, Pattern, Patterns, fit};
