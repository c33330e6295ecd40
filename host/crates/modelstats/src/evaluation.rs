//! A model's performance from counts of rows per score bin and outcome, as TRIPOD+AI asks
//! a prediction model's report for: discrimination (AUROC with a 95% interval),
//! classification at thresholds (sensitivity, specificity, PPV, NPV) and calibration
//! (observed against mean predicted risk by decile, slope and intercept).
//!
//! Scores are binned by the host before anything is counted, so every figure here is a
//! function of counts: ties within a bin count as half, as for tied scores; a bin's
//! predicted risk is its midpoint.

use crate::glm::{Family, Patterns, fit};
use serde::Serialize;

/// Rows per score bin, split by outcome. Bin `b` holds scores in
/// `[edges[b], edges[b + 1])` (the last bin includes 1).
#[derive(Debug, Clone, PartialEq)]
pub struct BinCounts {
    pub edges: Vec<f64>,
    /// Rows with the outcome, per bin.
    pub events: Vec<f64>,
    /// Rows without it, per bin.
    pub non_events: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdMetrics {
    /// Rows scoring at least this are predicted positive.
    pub threshold: f64,
    pub sensitivity: Option<f64>,
    pub specificity: Option<f64>,
    pub ppv: Option<f64>,
    pub npv: Option<f64>,
}

/// One point of the calibration plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CalibrationGroup {
    pub mean_predicted: f64,
    pub observed: f64,
    pub rows: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// About ten groups of consecutive bins, each holding about a tenth of the rows.
    pub groups: Vec<CalibrationGroup>,
    /// `a + b·logit(predicted)` fitted to the outcomes: `b` is the slope (1 when the
    /// model is well calibrated), `a` the intercept (0). `None` when they cannot be fitted.
    pub slope: Option<f64>,
    pub intercept: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub rows: f64,
    pub events: f64,
    pub auroc: Option<f64>,
    pub auroc_lower: Option<f64>,
    pub auroc_upper: Option<f64>,
    pub thresholds: Vec<ThresholdMetrics>,
    pub calibration: Calibration,
    /// The ROC curve: (1 − specificity, sensitivity) at every bin edge, from (1, 1) to
    /// (0, 0).
    pub roc: Vec<(f64, f64)>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Evaluates the counts at `thresholds` (each should be a bin edge: a threshold inside a
/// bin is taken at the bin's lower edge).
pub fn evaluate(counts: &BinCounts, thresholds: &[f64]) -> Evaluation {
    let bins = counts.events.len();
    let positives: f64 = counts.events.iter().sum();
    let negatives: f64 = counts.non_events.iter().sum();
    // P(score of an event > score of a non-event) + half the ties.
    let mut above = 0.0;
    let mut concordant = 0.0;
    for b in (0..bins).rev() {
        concordant += counts.non_events[b] * (above + 0.5 * counts.events[b]);
        above += counts.events[b];
    }
    let auroc = ratio(concordant, positives * negatives);
    let (auroc_lower, auroc_upper) = match auroc {
        Some(a) => {
            // Hanley and McNeil (1982).
            let q1 = a / (2.0 - a);
            let q2 = 2.0 * a * a / (1.0 + a);
            let variance = (a * (1.0 - a)
                + (positives - 1.0) * (q1 - a * a)
                + (negatives - 1.0) * (q2 - a * a))
                / (positives * negatives);
            let half = 1.959_964 * variance.max(0.0).sqrt();
            (Some((a - half).max(0.0)), Some((a + half).min(1.0)))
        }
        None => (None, None),
    };
    let first_bin_at = |t: f64| {
        counts.edges[..bins]
            .iter()
            .rposition(|&e| e <= t + 1e-12)
            .unwrap_or(0)
    };
    let thresholds = thresholds
        .iter()
        .map(|&threshold| {
            let from = first_bin_at(threshold);
            let tp: f64 = counts.events[from..].iter().sum();
            let fp: f64 = counts.non_events[from..].iter().sum();
            let (fnn, tn) = (positives - tp, negatives - fp);
            ThresholdMetrics {
                threshold,
                sensitivity: ratio(tp, positives),
                specificity: ratio(tn, negatives),
                ppv: ratio(tp, tp + fp),
                npv: ratio(tn, tn + fnn),
            }
        })
        .collect();
    let mut roc = Vec::with_capacity(bins + 1);
    for from in 0..=bins {
        let tp: f64 = counts.events[from..].iter().sum();
        let fp: f64 = counts.non_events[from..].iter().sum();
        if let (Some(tpr), Some(fpr)) = (ratio(tp, positives), ratio(fp, negatives)) {
            roc.push((fpr, tpr));
        }
    }
    Evaluation {
        rows: positives + negatives,
        events: positives,
        auroc,
        auroc_lower,
        auroc_upper,
        thresholds,
        calibration: calibration(counts),
        roc,
    }
}

fn midpoint(counts: &BinCounts, b: usize) -> f64 {
    (counts.edges[b] + counts.edges[b + 1]) / 2.0
}

fn calibration(counts: &BinCounts) -> Calibration {
    let bins = counts.events.len();
    let total: f64 = counts.events.iter().chain(&counts.non_events).sum();
    let mut groups = Vec::new();
    let (mut rows, mut events, mut predicted) = (0.0, 0.0, 0.0);
    let mut cumulative = 0.0;
    for b in 0..bins {
        let n = counts.events[b] + counts.non_events[b];
        rows += n;
        events += counts.events[b];
        predicted += n * midpoint(counts, b);
        cumulative += n;
        // Close a group at each tenth of the rows, and at the last bin.
        let closes = cumulative >= total * (groups.len() + 1) as f64 / 10.0 || b + 1 == bins;
        if closes && rows > 0.0 {
            groups.push(CalibrationGroup {
                mean_predicted: predicted / rows,
                observed: events / rows,
                rows,
            });
            (rows, events, predicted) = (0.0, 0.0, 0.0);
        }
    }
    let mut patterns = Patterns::new(1);
    for b in 0..bins {
        let n = counts.events[b] + counts.non_events[b];
        let p = midpoint(counts, b).clamp(1e-6, 1.0 - 1e-6);
        if n > 0.0 {
            patterns.add_many(&[(p / (1.0 - p)).ln()], n, counts.events[b]);
        }
    }
    let fitted = fit(Family::Logistic, &patterns).ok();
    Calibration {
        groups,
        intercept: fitted.as_ref().map(|f| f.coefficients[0]),
        slope: fitted.as_ref().map(|f| f.coefficients[1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edges(bins: usize) -> Vec<f64> {
        (0..=bins).map(|b| b as f64 / bins as f64).collect()
    }

    #[test]
    fn a_hand_checked_auroc_counts_ties_as_half() {
        // Two bins. Events: 1 low, 3 high; non-events: 3 low, 1 high.
        // Pairs: 16; event above non-event: 3·3 = 9; ties: 1·3 + 3·1... within a bin:
        // low bin 1·3 = 3 ties, high bin 3·1 = 3 ties → 9 + 0.5·6 = 12 → 0.75.
        let counts = BinCounts {
            edges: edges(2),
            events: vec![1.0, 3.0],
            non_events: vec![3.0, 1.0],
        };
        let e = evaluate(&counts, &[0.5]);
        assert_eq!(e.auroc, Some(0.75));
        let t = &e.thresholds[0];
        assert_eq!(t.sensitivity, Some(0.75));
        assert_eq!(t.specificity, Some(0.75));
        assert_eq!(t.ppv, Some(0.75));
        assert_eq!(t.npv, Some(0.75));
        assert!(e.auroc_lower.unwrap() < 0.75 && e.auroc_upper.unwrap() > 0.75);
        assert_eq!(e.roc.first(), Some(&(1.0, 1.0)));
        assert_eq!(e.roc.last(), Some(&(0.0, 0.0)));
    }

    #[test]
    fn a_well_calibrated_model_has_slope_one_and_intercept_zero() {
        // Each bin's events are exactly its midpoint's share of 10,000 rows.
        let bins = 20;
        let e = edges(bins);
        let mid = |b: usize| (e[b] + e[b + 1]) / 2.0;
        let counts = BinCounts {
            events: (0..bins).map(|b| 10_000.0 * mid(b)).collect(),
            non_events: (0..bins).map(|b| 10_000.0 * (1.0 - mid(b))).collect(),
            edges: e.clone(),
        };
        let evaluation = evaluate(&counts, &[]);
        let c = &evaluation.calibration;
        assert!((c.slope.unwrap() - 1.0).abs() < 1e-6, "{c:?}");
        assert!(c.intercept.unwrap().abs() < 1e-6, "{c:?}");
        assert_eq!(c.groups.len(), 10);
        for g in &c.groups {
            assert!((g.mean_predicted - g.observed).abs() < 1e-9, "{g:?}");
        }
    }

    #[test]
    fn no_events_gives_no_auroc_rather_than_a_number() {
        let counts = BinCounts {
            edges: edges(2),
            events: vec![0.0, 0.0],
            non_events: vec![5.0, 5.0],
        };
        let e = evaluate(&counts, &[0.5]);
        assert_eq!(e.auroc, None);
        assert_eq!(e.thresholds[0].sensitivity, None);
    }
}
